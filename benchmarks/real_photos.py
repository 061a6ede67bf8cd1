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
    python benchmarks/real_photos.py --detectors blazeface-dual --variants contract+level --fer-python /work/fer-venv/bin/python
                                     # and the `fer` package on the same photos (its Haar detector end to end,
                                     # and the whole photo as its face), run with a Python that has `fer`
    python benchmarks/real_photos.py --detectors blazeface-dual --jitter [--blur 0.5] [--model FILE]
                                     # 45 frames jittered in size and place: the spread of single frames
                                     # (how far apart two rows must be to mean something) and their average
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
                scale: float = 1.0, dx: float = 0.0, dy: float = 0.0) -> np.ndarray:
    """The model inputs of ``faces`` with one crop variant; ``scale`` multiplies the contract's frame side and
    ``dx, dy`` (box sides) move its centre."""
    if (scale, dx, dy) != (1.0, 0.0, 0.0):  # the job's own crop functions, with a moved contract
        fitted = preprocess.crop_contract(detector)
        moved = dataclasses.replace(fitted, scale=fitted.scale * scale, dx=fitted.dx + dx, dy=fitted.dy + dy)
        return np.stack([preprocess.crop_frame(rgb, preprocess.face_frame(f, moved, level=variant == "contract+level"),
                                               size=size, channels=channels) for f in faces])
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


class Blurred:
    """A classifier whose inputs are blurred first (Gaussian, ``sigma`` pixels, edges repeated)."""

    def __init__(self, classifier, sigma: float) -> None:
        self.classifier, self.sigma = classifier, sigma
        self.size, self.channels = classifier.size, classifier.channels
        self.model_id = f"{classifier.model_id}, inputs blurred (sigma {sigma:g})"

    def predict(self, faces: np.ndarray) -> np.ndarray:
        import cv2

        blurred = np.stack([cv2.GaussianBlur(f, (0, 0), self.sigma, borderType=cv2.BORDER_REPLICATE).reshape(f.shape)
                            for f in faces])
        return self.classifier.predict(blurred)


def largest_face_tensors(classifier, decoded, found_faces, detector: str, variant: str, scale: float = 1.0,
                         dx: float = 0.0, dy: float = 0.0) -> tuple[list[np.ndarray], list[int]]:
    """The model's input for each photo's largest face, and the photos that have one."""
    batch, owners = [], []
    for i, ((rgb, _), faces) in enumerate(zip(decoded, found_faces)):
        if faces:
            largest = max(faces, key=lambda f: f.w * f.h)
            batch.append(tensors_for(rgb, [largest], detector, variant, classifier.size, classifier.channels,
                                     scale, dx, dy)[0])
            owners.append(i)
    return batch, owners


def largest_face_probs(classifier, decoded, found_faces, detector: str, variant: str, scale: float = 1.0,
                       dx: float = 0.0, dy: float = 0.0) -> tuple[np.ndarray, list[int]]:
    """Each photo's probabilities for its largest face (zeros where none was found), and the photos with one."""
    batch, owners = largest_face_tensors(classifier, decoded, found_faces, detector, variant, scale, dx, dy)
    probs = np.zeros((len(decoded), len(EMOTIONS)))
    if batch:
        probs[owners] = classifier.predict(np.stack(batch))
    return probs, owners


def jitter(classifier, decoded, found_faces, detector: str) -> None:
    """Accuracy of 45 frames around the contract's (sizes x0.9-1.1, centres +-0.04 box sides): the spread of
    single frames, and the model's probabilities averaged over several of them."""
    labels = np.array([label for _, label in decoded])
    scales, shifts = (0.9, 0.95, 1.0, 1.05, 1.1), (-0.04, 0.0, 0.04)
    probs = {(s, dx, dy): largest_face_probs(classifier, decoded, found_faces, detector, "contract+level", s, dx, dy)[0]
             for s in scales for dx in shifts for dy in shifts}

    def accuracy(keys) -> float:
        total = sum(probs[k] for k in keys)
        return float(((total.argmax(axis=1) == labels) & (total.sum(axis=1) > 0)).mean())

    single = np.array([accuracy([k]) for k in probs])
    print(f"  {detector} contract+level, 45 jittered frames one at a time: mean {single.mean():.3f}, sd "
          f"{single.std():.3f}, {single.min():.3f}-{single.max():.3f}; the contract's own frame "
          f"{accuracy([(1.0, 0.0, 0.0)]):.3f}")
    print("  mean over the 9 places of each size: " + ", ".join(
        f"x{s:g} {np.mean([accuracy([(s, dx, dy)]) for dx in shifts for dy in shifts]):.3f}" for s in scales))
    averaged = {
        "3 sizes (x0.95, 1, 1.05)": [(s, 0.0, 0.0) for s in (0.95, 1.0, 1.05)],
        "5 sizes (x0.9-1.1)": [(s, 0.0, 0.0) for s in scales],
        "centre + 4 moved by 0.04": [(1.0, 0.0, 0.0)] + [(1.0, d, 0.0) for d in (-0.04, 0.04)] + [(1.0, 0.0, d) for d in (-0.04, 0.04)],
        "9 places": [(1.0, dx, dy) for dx in shifts for dy in shifts],
        "all 45": list(probs),
    }
    for label, keys in averaged.items():
        print(f"  probabilities averaged over {label}: {accuracy(keys):.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEV)
    parser.add_argument("--detectors", default="blazeface,blazeface-short,mtcnn,haar,none")
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--model", default=None, help="model name or file (default: the bundled default)")
    parser.add_argument("--scales", default="1", help="factors on the contract's frame side, e.g. 0.9,1,1.1")
    parser.add_argument("--blur", type=float, default=0.0,
                        help="Gaussian blur (sigma, pixels) of every model input after the crop (0: none)")
    parser.add_argument("--fer-python", default=None,
                        help="a Python with the `fer` package: its answers on the same photos are printed too")
    parser.add_argument("--jitter", action="store_true",
                        help="contract+level frames jittered by x0.9-1.1 in size and +-0.04 box sides in place")
    parser.add_argument("--save-crops", type=Path, default=None,
                        help="save the first detector's contract+level crops of each photo's largest face (.npy) for "
                             "classify_worker.py: real faces, as uncertain as real photos make them")
    args = parser.parse_args()
    if not args.data.is_dir():
        sys.exit(f"real_photos: no dev set at {args.data}")
    items = photos(args.data)
    classifier = load_classifier(args.model)
    if args.blur:
        classifier = Blurred(classifier, args.blur)
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
        if args.save_crops is not None and name == args.detectors.split(",")[0]:
            crops, _ = largest_face_tensors(classifier, decoded, found_faces, name, "contract+level")
            np.save(args.save_crops, np.stack(crops)[..., 0])
            print(f"  saved {len(crops)} crops to {args.save_crops}")
        for variant, scale in [(v, float(f)) for v in args.variants.split(",") for f in args.scales.split(",")]:
            if name == "none" and (variant != VARIANTS[-1] or scale != 1.0):
                continue  # the whole photo is the crop: no box to frame
            if variant == "margin-0.2" and scale != 1.0:
                continue  # the old crop has no contract to scale
            probs, owners = largest_face_probs(classifier, decoded, found_faces, name, variant, scale)
            predicted = np.full(len(decoded), -1)
            predicted[owners] = probs[owners].argmax(axis=1)
            labels = np.array([label for _, label in decoded])
            correct = predicted == labels
            recall = [correct[labels == c].mean() if (labels == c).any() else float("nan") for c in range(len(EMOTIONS))]
            shown = "whole photo" if name == "none" else variant + (f" x{scale:g}" if scale != 1.0 else "")
            print(f"{name:<16}{shown:<22}{len(owners) / len(decoded):>7.1%}{correct.mean():>10.3f}"
                  f"{(correct[owners].mean() if owners else 0):>10.3f}  " + " ".join(f"{r:>6.2f}" for r in recall)
                  + f"   ({ms:.0f} ms/photo detection)")
        if args.jitter and name != "none":
            jitter(classifier, decoded, found_faces, name)
    if args.fer_python:
        fer_rows(args.fer_python, args.data, items)


def fer_rows(python: str, data: Path, items: list[tuple[Path, int]]) -> None:
    """The `fer` package's rows (``fer_worker.py labelled``, in its own virtualenv): end to end with its Haar
    detector (the largest face; a photo without one counts as wrong) and with the whole photo as the face."""
    import json
    import subprocess

    out = subprocess.run([python, str(HERE / "fer_worker.py"), "labelled", str(data)], capture_output=True,
                         text=True, check=True).stdout
    result = json.loads(out.strip().splitlines()[-1])
    answers = {(r["label"], r["file"]): r for r in result["photos"]}
    labels = np.array([label for _, label in items])
    for key, shown in (("found", "fer, Haar (its own)"), ("whole", "fer, whole photo")):
        predicted = np.array([EMOTIONS.index(answers[(EMOTIONS[label], path.name)][key])
                              if answers[(EMOTIONS[label], path.name)][key] else -1 for path, label in items])
        correct = predicted == labels
        found = predicted >= 0
        recall = [correct[labels == c].mean() if (labels == c).any() else float("nan") for c in range(len(EMOTIONS))]
        print(f"{'fer ' + result['fer']:<16}{shown:<22}{found.mean():>7.1%}{correct.mean():>10.3f}"
              f"{(correct[found].mean() if found.any() else 0):>10.3f}  " + " ".join(f"{r:>6.2f}" for r in recall))


if __name__ == "__main__":
    main()
