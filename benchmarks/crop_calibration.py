"""Fit the detector box -> model frame mapping (the crop contract in ``emotion_batch/preprocess.py``).

The classifier was trained on FER2013's 48x48 frames. To crop real photos the same way, we need to know
where each detector puts its box inside such a frame. This script upscales FER2013 Training faces
(never PublicTest or PrivateTest) to random sizes, pastes them at random places into real photos without
faces (scikit-image's scenes) or into plain grey, runs each detector on the result and measures, for
every face found, the frame the face was pasted as relative to the box found:

- ``scale``: frame side / box side, where the box side is ``sqrt(w * h)``;
- ``dx``, ``dy``: frame centre minus box centre, in box sides (x to the right, y down);
- the eye line's angle in the frame (FER2013's faces are roughly level; we level real faces to 0).

The medians are the contract; the spread (IQR) says how much one box misses its frame by. With
``--check`` the script also crops every found face with the contract now in ``preprocess.py`` and prints
the median IoU of that crop with the true frame (1.0 would be the FER2013 crop itself).

    python benchmarks/crop_calibration.py                       # 600 faces, every detector
    python benchmarks/crop_calibration.py --faces 300 --detectors blazeface --check
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from common import machine_line  # noqa: E402

from emotion_batch.faces import build_detector  # noqa: E402
from emotion_batch.sample import SCENES, _source  # noqa: E402

FER = HERE.parent.parent / "shared" / "datasets" / "fer2013"


def load_faces(folder: Path, split: str, count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``count`` faces of a FER2013 split, drawn at random: ``(n, 48, 48)`` uint8 and their labels."""
    from emotion_batch.training.data import load_fer2013

    faces = load_fer2013(folder, split=split)
    rng = np.random.default_rng(seed)
    pick = rng.choice(len(faces), size=min(count, len(faces)), replace=False)
    return faces.x[pick, :, :, 0], faces.y[pick]


def scene_canvas(rng: np.random.Generator, width: int, height: int, background: str) -> Image.Image:
    if background == "plain":
        return Image.new("RGB", (width, height), tuple(int(v) for v in rng.integers(60, 200, 3)))
    scene = _source(SCENES[int(rng.integers(len(SCENES)))])
    photo = ImageOps.fit(scene, (width, height), Image.Resampling.BILINEAR,
                         centering=(float(rng.uniform(0.2, 0.8)), float(rng.uniform(0.2, 0.8))))
    return ImageOps.mirror(photo) if rng.random() < 0.5 else photo


def paste_face(rng: np.random.Generator, face: np.ndarray, *, width: int = 640, height: int = 480,
               sizes: tuple[int, int] = (100, 320), rotation: float = 0.0, background: str = "scene"
               ) -> tuple[np.ndarray, tuple[float, float, float, float]]:
    """A photo with one FER2013 face pasted at a random size and place (rotated by ``rotation`` degrees,
    counter-clockwise, about its centre); returns the photo and the true frame ``(cx, cy, side, angle)``."""
    side = int(rng.integers(sizes[0], sizes[1] + 1))
    canvas = scene_canvas(rng, width, height, background)
    patch = Image.fromarray(face).convert("RGB").resize((side, side), Image.Resampling.BICUBIC)
    mask = Image.new("L", (side, side), 255)
    if rotation:
        patch = patch.rotate(rotation, Image.Resampling.BICUBIC, expand=True)
        mask = mask.rotate(rotation, Image.Resampling.BILINEAR, expand=True)
    x = int(rng.integers(0, max(1, width - patch.width)))
    y = int(rng.integers(0, max(1, height - patch.height)))
    canvas.paste(patch, (x, y), mask)
    return np.asarray(canvas), (x + patch.width / 2.0, y + patch.height / 2.0, float(side), float(rotation))


def match(faces, frame) -> object | None:
    """The detection whose box centre lies inside the true frame, nearest its centre."""
    cx, cy, side, _ = frame
    best, best_d = None, None
    for f in faces:
        bx, by = f.x + f.w / 2, f.y + f.h / 2
        d = np.hypot(bx - cx, by - cy)
        if d < side / 2 and (best_d is None or d < best_d):
            best, best_d = f, d
    return best


def frame_iou(a: tuple[float, float, float], b: tuple[float, float, float]) -> float:
    """IoU of two axis-aligned squares given as (cx, cy, side)."""
    ax0, ay0, ax1, ay1 = a[0] - a[2] / 2, a[1] - a[2] / 2, a[0] + a[2] / 2, a[1] + a[2] / 2
    bx0, by0, bx1, by1 = b[0] - b[2] / 2, b[1] - b[2] / 2, b[0] + b[2] / 2, b[1] + b[2] / 2
    iw, ih = max(0.0, min(ax1, bx1) - max(ax0, bx0)), max(0.0, min(ay1, by1) - max(ay0, by0))
    inter = iw * ih
    return inter / (a[2] ** 2 + b[2] ** 2 - inter)


def quartiles(values: list[float]) -> str:
    q1, q2, q3 = np.percentile(values, [25, 50, 75])
    return f"{q2:+.3f} [{q1:+.3f}, {q3:+.3f}]"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=FER)
    parser.add_argument("--faces", type=int, default=600, help="FER2013 Training faces per background")
    parser.add_argument("--detectors", default="blazeface,blazeface-short,mtcnn,haar")
    parser.add_argument("--backgrounds", default="scene,plain")
    parser.add_argument("--check", action="store_true", help="also score the contract now in preprocess.py")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if not (args.data / "fer2013.csv.gz").is_file():
        sys.exit(f"crop_calibration: no FER2013 at {args.data} (../shared/datasets/fer2013)")
    print(machine_line())
    faces, _ = load_faces(args.data, "train", args.faces, args.seed)
    print(f"faces: {len(faces)} FER2013 Training faces, upscaled (bicubic) to 100-320 px, pasted into 640x480 photos; "
          f"backgrounds: {args.backgrounds}")
    from emotion_batch.preprocess import crop_contract, face_frame

    print(f"{'detector':<16}{'background':<11}{'found':>7}  {'scale (frame/box)':<26}{'dx (box sides)':<26}"
          f"{'dy (box sides)':<26}{'w/h':<8}{'eye angle (deg)':<26}" + ("  crop IoU (now)" if args.check else ""))
    for name in args.detectors.split(","):
        detector = build_detector(name)
        pooled: dict[str, list[float]] = {"scale": [], "dx": [], "dy": []}
        for background in args.backgrounds.split(","):
            rng = np.random.default_rng(args.seed + 1)
            scale, dx, dy, aspect, angles, ious = [], [], [], [], [], []
            found = 0
            for face in faces:
                photo, frame = paste_face(rng, face, background=background)
                hit = match(detector.detect(photo), frame)
                if hit is None:
                    continue
                found += 1
                side = float(np.sqrt(hit.w * hit.h))
                scale.append(frame[2] / side)
                dx.append((frame[0] - (hit.x + hit.w / 2)) / side)
                dy.append((frame[1] - (hit.y + hit.h / 2)) / side)
                aspect.append(hit.w / hit.h)
                if hit.eyes is not None:
                    x1, y1, x2, y2 = hit.eyes
                    angles.append(float(np.degrees(np.arctan2(y2 - y1, x2 - x1))))
                if args.check:
                    cx, cy, s, _ = face_frame(hit, crop_contract(name), level=False)
                    ious.append(frame_iou((cx, cy, s), frame[:3]))
            if not found:
                print(f"{name:<16}{background:<11}{0:>7}")
                continue
            for key, values in (("scale", scale), ("dx", dx), ("dy", dy)):
                pooled[key] += values
            angle = quartiles(angles) if angles else "-"
            print(f"{name:<16}{background:<11}{found / len(faces):>7.1%}  {quartiles(scale):<26}{quartiles(dx):<26}"
                  f"{quartiles(dy):<26}{np.median(aspect):<8.3f}{angle:<26}"
                  + (f"  {np.median(ious):.3f} [{np.percentile(ious, 25):.3f}]" if args.check else ""))
        if pooled["scale"]:
            print(f"  -> contract for {name}: scale={np.median(pooled['scale']):.3f}, dx={np.median(pooled['dx']):+.3f}, "
                  f"dy={np.median(pooled['dy']):+.3f} (medians over both backgrounds, {len(pooled['scale'])} faces)")


if __name__ == "__main__":
    main()
