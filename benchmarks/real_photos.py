"""Accuracy on real photos: the LFW dev set (../shared/datasets/lfw-expressions-dev), per detector and crop.

Every photo holds one face and is labelled by its folder. Each photo goes through the job's own
functions (decode, detect, ``preprocess.faces_to_tensors``, the bundled classifier) with each crop
variant; the largest face found is the photo's answer, and a photo where no face is found counts as
wrong. The labels are one student's, so compare the variants with each other; the absolute figure is
not a claim.

Variants: ``margin-0.2`` (the crop before the contract: the box's longer side grown by 20 % on every
side), ``contract`` (the fitted contract, eyes not levelled), ``contract+level`` (what the job does).

    python benchmarks/real_photos.py                                   # every detector, every variant
    python benchmarks/real_photos.py --detectors blazeface-short --variants contract+level
    python benchmarks/real_photos.py --detectors blazeface-dual --variants contract+level --scales 0.9,1,1.1,1.2
                                     # the contract's frame side times each factor, centre unchanged
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from common import machine_line  # noqa: E402

from emotion_batch import preprocess  # noqa: E402
from emotion_batch.classifier import load_classifier  # noqa: E402
from emotion_batch.faces import build_detector  # noqa: E402
from emotion_batch.imaging import ImageError, decode_image  # noqa: E402
from emotion_batch.labels import EMOTIONS  # noqa: E402

DEV = HERE.parent.parent / "shared" / "datasets" / "lfw-expressions-dev" / "lfw"
VARIANTS = ("margin-0.2", "contract", "contract+level")


def photos(root: Path) -> list[tuple[Path, int]]:
    out = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and p.name in EMOTIONS):
        out += [(f, EMOTIONS.index(folder.name)) for f in sorted(folder.iterdir()) if f.suffix.lower() in (".jpg", ".jpeg", ".png")]
    return out


def tensors_for(rgb: np.ndarray, faces, detector: str, variant: str, size: int, channels: int,
                scale: float = 1.0) -> np.ndarray:
    if scale != 1.0:
        saved = preprocess.CROP_CONTRACTS.get(detector)
        fitted = preprocess.crop_contract(detector)
        preprocess.CROP_CONTRACTS[detector] = dataclasses.replace(fitted, scale=fitted.scale * scale)
        try:
            return tensors_for(rgb, faces, detector, variant, size, channels)
        finally:
            if saved is None:
                del preprocess.CROP_CONTRACTS[detector]
            else:
                preprocess.CROP_CONTRACTS[detector] = saved
    if variant == "margin-0.2":
        old = {name: preprocess.FALLBACK_CONTRACT for name in preprocess.CROP_CONTRACTS}
        saved = dict(preprocess.CROP_CONTRACTS)
        preprocess.CROP_CONTRACTS.update(old)
        try:
            # the old square: the longer box side, not sqrt(w h); the same for the square boxes of BlazeFace
            return np.stack([preprocess.face_to_tensor(rgb, f.box, size=size, channels=channels, margin=0.2) for f in faces])
        finally:
            preprocess.CROP_CONTRACTS.update(saved)
    return preprocess.faces_to_tensors(rgb, faces, detector=detector, size=size, channels=channels,
                                       level=variant == "contract+level")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEV)
    parser.add_argument("--detectors", default="blazeface,blazeface-short,mtcnn,haar,none")
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--model", default=None, help="model name or file (default: the bundled default)")
    parser.add_argument("--scales", default="1", help="factors on the contract's frame side, e.g. 0.9,1,1.1")
    args = parser.parse_args()
    if not args.data.is_dir():
        sys.exit(f"real_photos: no dev set at {args.data}")
    items = photos(args.data)
    classifier = load_classifier(args.model)
    print(machine_line())
    print(f"data: {len(items)} photos of {args.data}; model {classifier.model_id}; largest face per photo; "
          "a photo without a face found counts as wrong")
    decoded = []
    for path, label in items:
        try:
            decoded.append((decode_image(path.read_bytes(), name=path.name).rgb, label))
        except ImageError as exc:
            print(f"  skipped {path.name}: {exc}")
    header = f"{'detector':<16}{'variant':<22}{'found':>7}{'accuracy':>10}{'of found':>10}  " + " ".join(f"{e[:5]:>6}" for e in EMOTIONS)
    print(header)
    for name in args.detectors.split(","):
        detector = build_detector(name)
        started = time.perf_counter()
        found_faces = [detector.detect(rgb) for rgb, _ in decoded]
        ms = (time.perf_counter() - started) * 1000 / len(decoded)
        for variant, scale in [(v, float(f)) for v in args.variants.split(",") for f in args.scales.split(",")]:
            if name == "none" and (variant != VARIANTS[-1] or scale != 1.0):
                continue  # the whole photo is the crop: no box to frame
            batch, owners = [], []
            for i, ((rgb, _), faces) in enumerate(zip(decoded, found_faces)):
                if not faces:
                    continue
                largest = max(faces, key=lambda f: f.w * f.h)
                batch.append(tensors_for(rgb, [largest], name, variant, classifier.size, classifier.channels, scale)[0])
                owners.append(i)
            predicted = np.full(len(decoded), -1)
            if batch:
                predicted[owners] = classifier.predict(np.stack(batch)).argmax(axis=1)
            labels = np.array([label for _, label in decoded])
            correct = predicted == labels
            recall = [correct[labels == c].mean() if (labels == c).any() else float("nan") for c in range(len(EMOTIONS))]
            shown = "whole photo" if name == "none" else variant + (f" x{scale:g}" if scale != 1.0 else "")
            print(f"{name:<16}{shown:<22}{len(owners) / len(decoded):>7.1%}{correct.mean():>10.3f}"
                  f"{(correct[owners].mean() if owners else 0):>10.3f}  " + " ".join(f"{r:>6.2f}" for r in recall)
                  + f"   ({ms:.0f} ms/photo detection)")


if __name__ == "__main__":
    main()
