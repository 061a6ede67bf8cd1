"""Which crop of a detected face suits the model best: variants measured on FER2013 PublicTest faces (for a
choice; PrivateTest stays for the report, ``scene_parity.py``).

Each PublicTest face is upscaled (bicubic) to a random side of 60-400 px and pasted at a random place into a
640x480 photo without faces (scikit-image's scenes, JPEG 95), as ``scene_parity.py`` does; the default
detector runs on it and the face found at the pasted face (its box centre inside the true frame) is kept
when it has eyes. Every variant is classified by the bundled model on the shipped backend and compared with
the original 48x48 crops of the same faces:

- ``true frame``: the pasted face's own frame cut from the photo (what a perfect detector and contract
  would give: the crop differs from the original only by the resampling);
- ``box frame``: the crop contract of ``preprocess.py`` (the job's crop), eyes levelled or not, and with
  levelling only from ``--min-angles`` degrees of tilt;
- ``eye frame``: a square placed from the eyes instead of the box (side and offset fitted, as medians, on
  ``--fit`` Training faces pasted the same way), and its spread against the box frame's;
- ``smoothing``: the original crops blurred (Gaussian, sigma in pixels): how much the model prefers the
  resampled faces it was trained on (its augmentation resamples every training face).

    python benchmarks/crop_variants.py                     # 1,500 PublicTest faces, 800 Training faces to fit
    python benchmarks/crop_variants.py --model FILE --jitter --sigmas 0.7   # another model; the frames' spread
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from common import machine_line  # noqa: E402
from crop_calibration import FER, load_faces, match, paste_face  # noqa: E402

from emotion_batch import preprocess  # noqa: E402
from emotion_batch.classifier import load_classifier  # noqa: E402
from emotion_batch.faces import build_detector  # noqa: E402
from emotion_batch.imaging import decode_image  # noqa: E402
from emotion_batch.sample import jpeg_bytes  # noqa: E402

DETECTOR = "blazeface-dual"


def pasted(detector, faces: np.ndarray, seed: int) -> list[tuple[int, np.ndarray, object, tuple]]:
    """``(index, photo, face found, true frame)`` for every pasted face found with its eyes."""
    rng = np.random.default_rng(seed)
    rows = []
    for i, face in enumerate(faces):
        photo, frame = paste_face(rng, face, sizes=(60, 400))
        rgb = decode_image(jpeg_bytes(Image.fromarray(photo), quality=95), name=f"face_{i}.jpg").rgb
        found = match(detector.detect(rgb), frame)
        if found is not None and found.eyes is not None:
            rows.append((i, rgb, found, frame))
    return rows


def eyes(face) -> tuple[float, float, float]:
    """The eyes' midpoint and their distance."""
    x1, y1, x2, y2 = (float(v) for v in face.eyes)
    return (x1 + x2) / 2, (y1 + y2) / 2, float(np.hypot(x2 - x1, y2 - y1))


def spread(rows: list, frame_of) -> str:
    frames = [(frame_of(f), true) for _, _, f, true in rows]
    sides = np.array([np.log(frame[2] / true[2]) for frame, true in frames])
    centres = np.array([np.hypot(frame[0] - true[0], frame[1] - true[1]) / true[2] for frame, true in frames])
    iqr = np.subtract(*np.percentile(sides, [75, 25]))
    return (f"side log-ratio IQR {iqr:.3f} (median {np.median(sides):+.3f}); centre error median "
            f"{np.median(centres):.3f}, p90 {np.percentile(centres, 90):.3f} of the true side")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=FER)
    parser.add_argument("--faces", type=int, default=1500, help="PublicTest faces, drawn at random")
    parser.add_argument("--fit", type=int, default=800, help="Training faces to fit the eye frame on")
    parser.add_argument("--min-angles", default="1,5", help="least tilts (degrees) levelled, one row each")
    parser.add_argument("--sigmas", default="0.5,0.7,1.0", help="Gaussian blurs of the original crops")
    parser.add_argument("--model", default=None, help="a bundled model's name or a .keras file (default: the default)")
    parser.add_argument("--jitter", action="store_true",
                        help="also the box frame (levelled) moved and resized a little: 27 frames, their spread")
    args = parser.parse_args()
    if not (args.data / "fer2013.csv.gz").is_file():
        sys.exit(f"crop_variants: no FER2013 at {args.data}")
    print(machine_line())
    started = time.perf_counter()
    detector = build_detector(DETECTOR)
    classifier = load_classifier(args.model)
    size, channels = classifier.size, classifier.channels

    train_faces, _ = load_faces(args.data, "train", args.fit, 1)
    fitted = pasted(detector, train_faces, 101)
    k = float(np.median([true[2] / eyes(f)[2] for _, _, f, true in fitted]))
    ox = float(np.median([(true[0] - eyes(f)[0]) / eyes(f)[2] for _, _, f, true in fitted]))
    oy = float(np.median([(true[1] - eyes(f)[1]) / eyes(f)[2] for _, _, f, true in fitted]))
    contract = preprocess.crop_contract(DETECTOR)

    def box_frame(f) -> tuple:
        return preprocess.face_frame(f, contract, level=False)

    def eye_frame(f) -> tuple:
        mx, my, d = eyes(f)
        return mx + ox * d, my + oy * d, k * d, 0.0

    faces, labels = load_faces(args.data, "valid", args.faces, 5)
    rows = pasted(detector, faces, 105)
    index = np.array([i for i, _, _, _ in rows])
    y = labels[index]
    originals = np.stack([preprocess.face_to_tensor(faces[i], None, size=size, channels=channels) for i in index])

    def accuracy(tensors: np.ndarray) -> np.ndarray:
        return classifier.predict(tensors).argmax(axis=1) == y

    base = accuracy(originals)

    def row(label: str, correct: np.ndarray) -> None:
        per = " ".join(f"{100 * (correct[y == c].mean() - base[y == c].mean()):+6.1f}" if (y == c).any() else "     -"
                       for c in range(7))
        print(f"{label:<34}{correct.mean():>9.4f}{100 * (correct.mean() - base.mean()):>+8.2f}   {per}", flush=True)

    def crops(frame_of, min_angle: float | None) -> np.ndarray:
        out = []
        for _, rgb, f, _ in rows:
            cx, cy, side, _ = frame_of(f)
            angle = preprocess.eye_angle(f.eyes) if min_angle is not None else 0.0
            angle = angle if abs(angle) >= (min_angle or 0.0) else 0.0
            out.append(preprocess.crop_frame(rgb, (cx, cy, side, angle), size=size, channels=channels))
        return np.stack(out)

    print(f"faces: {len(rows)} of {args.faces} PublicTest faces pasted at 60-400 px into 640x480 scenes found by "
          f"{DETECTOR} with their eyes (the eye frame fitted on {len(fitted)} of {args.fit} Training faces: side "
          f"{k:.3f} eye distances, centre {ox:+.3f}, {oy:+.3f} eye distances from the eyes' midpoint); model "
          f"{classifier.model_id} ({type(classifier).__name__})")
    print(f"box frame (the contract): {spread(rows, box_frame)}")
    print(f"eye frame:                {spread(rows, eye_frame)}")
    print(f"{'crop':<34}{'accuracy':>9}{'gap':>8}   gap per class: angry disgust fear happy neutral sad surprise")
    row("original 48x48 crops", base)
    row("true frame cut from the photo", accuracy(np.stack([preprocess.crop_frame(rgb, true, size=size, channels=channels)
                                                            for _, rgb, _, true in rows])))
    for m in (float(v) for v in args.min_angles.split(",")):
        row(f"box frame, levelled from {m:g} deg", accuracy(crops(box_frame, m)))
    row("box frame, not levelled", accuracy(crops(box_frame, None)))
    row("eye frame, levelled from 1 deg", accuracy(crops(eye_frame, 1.0)))
    row("eye frame, not levelled", accuracy(crops(eye_frame, None)))
    if args.jitter:
        moved = [preprocess.CropContract(contract.scale * scale, contract.dx + dx, contract.dy + dy)
                 for scale, dx, dy in itertools.product((0.95, 1.0, 1.05), (-0.04, 0.0, 0.04), (-0.04, 0.0, 0.04))]
        singles = np.array([accuracy(crops(lambda f, c=c: preprocess.face_frame(f, c, level=False), 1.0)).mean()
                            for c in moved])
        print(f"box frame levelled, 27 frames x0.95-1.05 in size and +-0.04 box sides in place, one at a time: mean "
              f"{singles.mean():.4f} ({100 * (singles.mean() - base.mean()):+.2f}), sd {singles.std():.4f}, "
              f"{singles.min():.4f}-{singles.max():.4f}", flush=True)
    import cv2

    for sigma in (float(v) for v in args.sigmas.split(",")):
        blurred = np.stack([cv2.GaussianBlur(t, (0, 0), sigma, borderType=cv2.BORDER_REPLICATE).reshape(t.shape)
                            for t in originals])
        row(f"original crops, Gaussian blur {sigma:g}", accuracy(blurred))
    print(f"(benchmark took {time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
