"""Scene parity: FER2013 PrivateTest faces pasted into photos, end to end through ``emotion-batch run``,
against the same faces classified from their original 48x48 crops.

Both are scored against the labels the model answers in (its manifest entry's ``labels``: the FER+
annotators' majority for v3 onwards, on the faces that have a clear one; else FER2013's original labels),
and the other convention is printed below for comparison. ``--split valid`` runs PublicTest faces
instead: for development, since PrivateTest is for reporting only.

Any change to detection or cropping must keep the first within 1 point of the second. Each PrivateTest
face is upscaled (bicubic) to a random side of 60-400 px, optionally turned by a random 10-25 degrees
either way, and pasted at a random place into a 640x480 photo without faces (scikit-image's scenes), saved
as a JPEG (quality 95) under ``<tmp>/scenes/parity/<true class>/``; the original crops go as PNGs under
``<tmp>/crops/parity/<true class>/``. Both trees are run by the CLI as a user would (``--detector none`` for
the crops), and the stored ``face_results`` are read back: the largest face of a photo is its answer; a
photo where no face is found counts as wrong ("all"), and "found" scores only the photos with a face,
beside the crops' accuracy on those same faces.

    python benchmarks/scene_parity.py                       # all 3,574 faces, upright, the default detector
    python benchmarks/scene_parity.py --rotate --detector blazeface-short
    python benchmarks/scene_parity.py --split valid --labels original   # development; another convention
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from common import machine_line  # noqa: E402
from crop_calibration import FER, paste_face  # noqa: E402

from emotion_batch.exceptions import DataError  # noqa: E402
from emotion_batch.faces import DETECTORS  # noqa: E402
from emotion_batch.labels import EMOTIONS  # noqa: E402
from emotion_batch.sample import jpeg_bytes  # noqa: E402
from emotion_batch.training.data import FER_SPLITS, ferplus_majority, load_fer2013  # noqa: E402
from emotion_batch.training.evaluate import model_labels  # noqa: E402

LABELS = ("model", "original", "ferplus-majority")


def load_split(folder: Path, split: str, count: int, seed: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """``count`` faces of a FER2013 split drawn at random (as ``crop_calibration.load_faces`` draws them),
    ``(n, 48, 48)`` ``uint8``, and their labels in both conventions (FER+ majority ``-1`` where the
    annotators gave none; left out where the folder has no FER+ votes)."""
    faces = load_fer2013(folder, split=split)
    pick = np.random.default_rng(seed).choice(len(faces), size=min(count, len(faces)), replace=False)
    labels = {"original": faces.y[pick]}
    try:
        labels["ferplus-majority"] = ferplus_majority(folder, split=split)[pick]
    except DataError as exc:  # a FER2013 folder without the FER+ votes: the original labels only
        print(f"scene_parity: no FER+ majority labels ({exc})")
    return faces.x[pick, :, :, 0], labels


def write_trees(base: Path, faces: np.ndarray, labels: np.ndarray, *, rotate: bool, seed: int) -> None:
    rng = np.random.default_rng(seed)
    for i, (face, label) in enumerate(zip(faces, labels)):
        name = EMOTIONS[int(label)]
        crop_dir, scene_dir = base / "crops" / "parity" / name, base / "scenes" / "parity" / name
        if i == 0 or not crop_dir.is_dir():
            crop_dir.mkdir(parents=True, exist_ok=True)
            scene_dir.mkdir(parents=True, exist_ok=True)
        Image.fromarray(face).save(crop_dir / f"face_{i:05d}.png")
        angle = float(rng.uniform(10, 25) * rng.choice([-1, 1])) if rotate else 0.0
        photo, _ = paste_face(rng, face, sizes=(60, 400), rotation=angle)
        (scene_dir / f"face_{i:05d}.jpg").write_bytes(jpeg_bytes(Image.fromarray(photo), quality=95))


def run_job(root: Path, db: Path, detector: str, extra: list[str]) -> float:
    started = time.perf_counter()
    cmd = [sys.executable, "-m", "emotion_batch", "run", str(root), "--db", f"sqlite:///{db}", "--no-reports", "-q",
           "--detector", detector, *extra]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"scene_parity: {' '.join(cmd)} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return time.perf_counter() - started


def answers(db: Path, count: int) -> tuple[np.ndarray, str]:
    """The predicted class of each face index (-1: no face found), the largest face of each photo, and the
    model id that answered."""
    out = np.full(count, -1)
    area = np.zeros(count)
    with sqlite3.connect(db) as conn:
        models = {m for (m,) in conn.execute("SELECT DISTINCT model_id FROM face_results")}
        for path, w, h, top in conn.execute("SELECT image_path, w, h, top_emotion FROM face_results"):
            i = int(Path(path).stem.split("_")[1])
            if w * h > area[i]:
                area[i], out[i] = w * h, EMOTIONS.index(top)
    if len(models) != 1:
        sys.exit(f"scene_parity: expected one model in {db}, found {sorted(models)}")
    return out, models.pop()


def per_class(correct: np.ndarray, labels: np.ndarray) -> str:
    return " ".join(f"{correct[labels == c].mean():>6.3f}" if (labels == c).any() else "     -" for c in range(len(EMOTIONS)))


def table(title: str, crops: np.ndarray, scenes: np.ndarray, labels: np.ndarray) -> None:
    """The accuracy of the crops and the scenes against ``labels`` (faces with ``-1`` left out)."""
    scored = labels >= 0
    crops, scenes, labels = crops[scored], scenes[scored], labels[scored]
    found = scenes >= 0
    crop_ok, scene_ok = crops == labels, scenes == labels
    print(f"{title}: {scored.sum()} faces")
    print(f"{'':<30}{'accuracy':>9}  " + " ".join(f"{e[:6]:>6}" for e in EMOTIONS))
    print(f"{'original crops':<30}{crop_ok.mean():>9.4f}  {per_class(crop_ok, labels)}")
    print(f"{'scenes, end to end (all)':<30}{scene_ok.mean():>9.4f}  {per_class(scene_ok, labels)}")
    print(f"{'scenes, faces found':<30}{scene_ok[found].mean():>9.4f}  {per_class(scene_ok[found], labels[found])}")
    print(f"{'crops, the same faces':<30}{crop_ok[found].mean():>9.4f}  {per_class(crop_ok[found], labels[found])}")
    print(f"faces found: {found.mean():.1%}; parity gap (scenes all - crops): {100 * (scene_ok.mean() - crop_ok.mean()):+.2f} points; "
          f"on the faces found: {100 * (scene_ok[found].mean() - crop_ok[found].mean()):+.2f} points "
          f"(target: within 1 point)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=FER)
    parser.add_argument("--split", default="test", choices=["test", "valid"],
                        help="PrivateTest (test, for reporting) or PublicTest (valid, for development)")
    parser.add_argument("--faces", type=int, default=3574, help="faces of the split (drawn at random; all by default)")
    parser.add_argument("--labels", default="model", choices=LABELS,
                        help="score against these labels (model: the ones the model answers in)")
    parser.add_argument("--detector", default=DETECTORS[0], choices=[d for d in DETECTORS if d != "none"])
    parser.add_argument("--rotate", action="store_true", help="turn every pasted face by 10-25 degrees either way")
    parser.add_argument("--model", default=None)
    parser.add_argument("--keep", type=Path, help="build the trees and databases here (default: a temporary folder)")
    parser.add_argument("--seed", type=int, default=3)
    args = parser.parse_args()
    if not (args.data / "fer2013.csv.gz").is_file():
        sys.exit(f"scene_parity: no FER2013 at {args.data}")
    print(machine_line())
    faces, labels = load_split(args.data, args.split, args.faces, args.seed)
    extra = ["--model", args.model] if args.model else []
    with tempfile.TemporaryDirectory(prefix="scene-parity-") as tmp:
        base = args.keep or Path(tmp)
        base.mkdir(parents=True, exist_ok=True)
        write_trees(base, faces, labels["original"], rotate=args.rotate, seed=args.seed)
        for db in ("crops.sqlite", "scenes.sqlite"):
            (base / db).unlink(missing_ok=True)
        crop_s = run_job(base / "crops", base / "crops.sqlite", "none", extra)
        scene_s = run_job(base / "scenes", base / "scenes.sqlite", args.detector, extra)
        (crops, model_id), (scenes, _) = answers(base / "crops.sqlite", len(faces)), answers(base / "scenes.sqlite", len(faces))
    chosen = model_labels(model_id) if args.labels == "model" else args.labels
    if chosen not in labels:
        sys.exit(f"scene_parity: {model_id} is to be scored against the {chosen} labels, and {args.data} has no "
                 "FER+ votes (row_index.csv.gz, fer2013new.csv.gz); pass --labels original")
    print(f"faces: {len(faces)} FER2013 {FER_SPLITS[args.split]} faces, upscaled to 60-400 px, "
          f"{'turned 10-25 degrees either way, ' if args.rotate else 'upright, '}pasted into 640x480 scenes (JPEG 95); "
          f"detector {args.detector}; model {model_id} (answers in the {model_labels(model_id)} labels); "
          f"wall time crops {crop_s:.0f} s, scenes {scene_s:.0f} s (start-up included)")
    table(f"against the {chosen} labels", crops, scenes, labels[chosen])
    other = "original" if chosen != "original" else "ferplus-majority"
    if other in labels:
        print()
        table(f"for comparison, against the {other} labels", crops, scenes, labels[other])


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    main()
