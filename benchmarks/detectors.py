"""Recall, false positives and speed of each face detector on generated photos with known face boxes.

Photos are made from scikit-image's public-domain portraits (frontal astronaut; the cameraman in
profile as the hard case) pasted at known places; a detection matches a true face when IoU >= 0.3.

    python benchmarks/detectors.py                # 40 photos per setting, every detector
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from emotion_batch.faces import build_detector  # noqa: E402
from emotion_batch.faces.base import iou_matrix  # noqa: E402
from emotion_batch.sample import synthetic_photo  # noqa: E402

SETTINGS = [  # (label, width, height, faces, profile share)
    ("640x480, 1 face", 640, 480, 1, 0.0),
    ("1280x720, 3 faces", 1280, 720, 3, 0.0),
    ("1920x1080, 5 faces", 1920, 1080, 5, 0.0),
    ("1920x1080, 12 small faces", 1920, 1080, 12, 0.0),
    ("1280x720, 3 faces, 30% profile", 1280, 720, 3, 0.3),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photos", type=int, default=40)
    parser.add_argument("--detectors", default="blazeface,blazeface-short,mtcnn,haar")
    parser.add_argument("--background", choices=["scene", "gradient"], default="scene",
                        help="behind the faces: a real photo without faces (as cluttered as an ad photo) or a smooth gradient")
    args = parser.parse_args()
    detectors = {name: build_detector(name) for name in args.detectors.split(",")}
    print(f"{'setting':<34}{'detector':<17}{'recall':>8}{'false pos':>10}{'ms/photo':>10}")
    for label, w, h, n, profile in SETTINGS:
        rng = np.random.default_rng(0)
        photos = []
        for _ in range(args.photos):
            truth: list = []
            photos.append((np.asarray(synthetic_photo(rng, w, h, n, profile_share=profile, boxes=truth, background=args.background)), truth))
        for name, det in detectors.items():
            det.detect(photos[0][0])  # warm-up
            found = total = false_pos = 0
            started = time.perf_counter()
            results = [det.detect(img) for img, _ in photos]
            ms = (time.perf_counter() - started) * 1000 / len(photos)
            for (img, truth), faces in zip(photos, results):
                total += len(truth)
                if not faces:
                    continue
                iou = iou_matrix(np.array([t[:4] for t in truth]), np.array([f.box for f in faces]))
                found += int((iou.max(axis=1) >= 0.3).sum())
                false_pos += int((iou.max(axis=0) < 0.3).sum())
            print(f"{label:<34}{name:<17}{found / total:>8.3f}{false_pos:>10}{ms:>10.1f}", flush=True)


if __name__ == "__main__":
    main()
