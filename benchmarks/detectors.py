"""Recall, false positives and speed of each face detector, by face size: generated photos with known face
boxes, crowds of small faces, and real close-ups.

Generated photos are made from scikit-image's public-domain portraits (frontal astronaut; the cameraman in
profile as the hard case) pasted at known places; a detection matches a true face when IoU >= 0.3. The crowd
settings paste 30 and 150 faces and also print recall per true face size (sqrt(w*h) of the face box:
16-40, 40-80, 80+ px). The close-up setting reads the real-photo dev set
(``../shared/datasets/lfw-expressions-dev``: one face filling most of each photo, no boxes): its face counts as
found when a box at least a quarter of the photo's shorter side has its centre in the middle half of the photo;
every other box is a false positive. The no-face setting cuts 190 squares of 64-640 px out of 19 scikit-image
photos without faces (a cat, a rocket, textures, text, a colour wheel...): every box there is a false face.

    python benchmarks/detectors.py                # 40 photos per setting, every detector
    python benchmarks/detectors.py --detectors blazeface-dual,blazeface --photos 20

A detector written ``NAME:PX`` runs with ``--min-face-size PX`` (BlazeFace then searches finer scales).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import machine_line  # noqa: E402

from emotion_batch.faces import build_detector  # noqa: E402
from emotion_batch.faces.base import iou_matrix  # noqa: E402
from emotion_batch.sample import synthetic_photo  # noqa: E402

DEV = Path(__file__).resolve().parent.parent.parent / "shared" / "datasets" / "lfw-expressions-dev"

SETTINGS = [  # (label, width, height, faces, profile share)
    ("640x480, 1 face", 640, 480, 1, 0.0),
    ("1280x720, 3 faces", 1280, 720, 3, 0.0),
    ("1920x1080, 5 faces", 1920, 1080, 5, 0.0),
    ("1920x1080, 12 small faces", 1920, 1080, 12, 0.0),
    ("1280x720, 3 faces, 30% profile", 1280, 720, 3, 0.3),
    ("1280x720, crowd of 30", 1280, 720, 30, 0.0),
    ("1920x1080, crowd of 150", 1920, 1080, 150, 0.0),
]
SIZES = ((16, 40), (40, 80), (80, 10_000))  # true face side buckets (px) for the crowd rows
#: scikit-image's photos without faces (a cat, a rocket, textures, text, a colour wheel...) for the no-face row
NO_FACE = ("coffee", "chelsea", "rocket", "hubble_deep_field", "immunohistochemistry", "brick", "grass", "gravel",
           "coins", "moon", "page", "horse", "clock", "text", "colorwheel", "logo", "retina", "cell",
           "stereo_motorcycle")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photos", type=int, default=40)
    parser.add_argument("--detectors", default="blazeface-dual,blazeface-dual:24,blazeface,blazeface-short,mtcnn,haar")
    parser.add_argument("--dev", type=Path, default=DEV, help="the close-up dev set (skipped when missing)")
    parser.add_argument("--dev-photos", type=int, default=0, help="close-ups to use (0: all)")
    parser.add_argument("--background", choices=["scene", "gradient"], default="scene",
                        help="behind the faces: a real photo without faces (as cluttered as an ad photo) or a smooth gradient")
    args = parser.parse_args()
    detectors = {}
    for name in args.detectors.split(","):
        base, _, px = name.partition(":")
        detectors[name] = build_detector(base, min_face=float(px) if px else None)
    print(f"# {machine_line()}; {args.photos} generated photos per setting, background {args.background}; "
          "one process, detectors run one after another on the same photos")
    print(f"{'setting':<34}{'detector':<17}{'recall':>8}{'false pos':>10}{'ms/photo':>10}")
    if args.dev.is_dir():
        close_ups(args.dev, detectors, args.dev_photos)
    no_faces(detectors)
    for label, w, h, n, profile in SETTINGS:
        rng = np.random.default_rng(0)
        photos = []
        for _ in range(args.photos):
            truth: list = []
            photos.append((np.asarray(synthetic_photo(rng, w, h, n, profile_share=profile, boxes=truth, background=args.background)), truth))
        for name, det in detectors.items():
            det.detect(photos[0][0])  # warm-up
            false_pos = 0
            started = time.perf_counter()
            results = [det.detect(img) for img, _ in photos]
            ms = (time.perf_counter() - started) * 1000 / len(photos)
            sides, hits = [], []
            for (img, truth), faces in zip(photos, results):
                sides += [float(np.sqrt(t[2] * t[3])) for t in truth]
                if not faces:
                    hits += [False] * len(truth)
                    continue
                iou = iou_matrix(np.array([t[:4] for t in truth]), np.array([f.box for f in faces]))
                hits += list(iou.max(axis=1) >= 0.3)
                false_pos += int((iou.max(axis=0) < 0.3).sum())
            sides_a, hits_a = np.array(sides), np.array(hits)
            print(f"{label:<34}{name:<17}{hits_a.mean():>8.3f}{false_pos:>10}{ms:>10.1f}", flush=True)
            if n >= 30:
                for lo, hi in SIZES:
                    inside = (sides_a >= lo) & (sides_a < hi)
                    if inside.any():
                        span = f"{lo}-{hi} px" if hi < 10_000 else f"{lo}+ px"
                        print(f"{'  faces ' + span + f' ({int(inside.sum())})':<34}{name:<17}"
                              f"{hits_a[inside].mean():>8.3f}{'':>10}{'':>10}", flush=True)


def no_faces(detectors: dict) -> None:
    """190 square crops without faces: 10 of each of 19 photos, of sides 64-640 px (resized where the photo is
    smaller) at random places: every box is a false face. The close-up look fires on photos where nothing
    was found, so this is where its false faces show."""
    import skimage.data
    from PIL import Image

    rng = np.random.default_rng(0)
    crops = []
    for name in NO_FACE:
        image = getattr(skimage.data, name)()
        image = image[0] if isinstance(image, tuple) else image
        photo = Image.fromarray(np.asarray(image, dtype=np.uint8) * (255 if image.dtype == bool else 1)).convert("RGB")
        for side in np.geomspace(64, 640, 10).astype(int):
            short = min(photo.size)
            cut = int(min(side, short))
            left, top = int(rng.integers(0, photo.width - cut + 1)), int(rng.integers(0, photo.height - cut + 1))
            crops.append(np.asarray(photo.crop((left, top, left + cut, top + cut)).resize((side, side), Image.Resampling.BILINEAR)))
    for name, det in detectors.items():
        det.detect(crops[0])
        started = time.perf_counter()
        false_pos = sum(len(det.detect(c)) for c in crops)
        ms = (time.perf_counter() - started) * 1000 / len(crops)
        print(f"{f'no face, {len(crops)} crops 64-640 px':<34}{name:<17}{'-':>8}{false_pos:>10}{ms:>10.1f}", flush=True)


def close_ups(root: Path, detectors: dict, limit: int) -> None:
    """The real close-ups: one face filling most of each photo (see the module's docstring for the rule)."""
    from emotion_batch.imaging import decode_image

    files = sorted(p for p in root.rglob("*.jpg"))
    if limit:
        files = files[:: max(1, len(files) // limit)][:limit]
    photos = [decode_image(p.read_bytes(), name=str(p)).rgb for p in files]
    label = f"close-ups, real ({len(photos)} photos)"
    for name, det in detectors.items():
        det.detect(photos[0])
        started = time.perf_counter()
        results = [det.detect(img) for img in photos]
        ms = (time.perf_counter() - started) * 1000 / len(photos)
        found = false_pos = 0
        for img, faces in zip(photos, results):
            h, w = img.shape[:2]
            covering = [
                np.sqrt(f.w * f.h) >= 0.25 * min(w, h)
                and w / 4 <= f.x + f.w / 2 <= 3 * w / 4 and h / 4 <= f.y + f.h / 2 <= 3 * h / 4
                for f in faces
            ]
            found += int(any(covering))
            false_pos += len(faces) - min(1, sum(covering))
        print(f"{label:<34}{name:<17}{found / len(photos):>8.3f}{false_pos:>10}{ms:>10.1f}", flush=True)


if __name__ == "__main__":
    main()
