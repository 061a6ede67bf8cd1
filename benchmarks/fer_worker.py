"""The `fer` package's side of benchmarks/peers.py, run with the Python of a virtualenv that has `fer`.

It imports nothing from emotion_batch (that virtualenv need not have it) and prints one JSON line.

    /work/fer-venv/bin/python benchmarks/fer_worker.py photos DIR      # FER(mtcnn=False).detect_emotions per photo
    /work/fer-venv/bin/python benchmarks/fer_worker.py crops FILE.npy  # its classifier on 48x48 face crops
    /work/fer-venv/bin/python benchmarks/fer_worker.py labelled DIR    # its answer for each DIR/<label>/ photo
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def photos(folder: Path) -> dict:
    """End to end as a fer user does it: read each file, detect (Haar, fer's default), classify."""
    import cv2
    from fer.fer import FER

    detector = FER(mtcnn=False)
    files = sorted(p for p in folder.rglob("*.jpg"))
    detector.detect_emotions(cv2.imread(str(files[0])))  # warm-up: the interpreter and the cascade
    faces = 0
    started = time.perf_counter()
    for path in files:
        faces += len(detector.detect_emotions(cv2.imread(str(path))))
    seconds = time.perf_counter() - started
    return {"photos": len(files), "faces": faces, "seconds": seconds}


def crops(npy: Path) -> dict:
    """Classify pre-cropped 48x48 gray faces: fer's own per-face public path (``detect_emotions`` with the
    box given), and its classifier alone on faces already resized to 64x64 and scaled (its fastest)."""
    import cv2
    import numpy as np
    from fer.fer import FER

    faces = np.load(npy)
    detector = FER(mtcnn=False)
    classify = detector._classify_emotions  # what detect_emotions calls after cropping
    full = [(0, 0, faces.shape[2], faces.shape[1])]
    bgr = [cv2.cvtColor(f, cv2.COLOR_GRAY2BGR) for f in faces]
    detector.detect_emotions(bgr[0], face_rectangles=full)
    started = time.perf_counter()
    for img in bgr:
        detector.detect_emotions(img, face_rectangles=full)
    public_seconds = time.perf_counter() - started

    started = time.perf_counter()
    ready = np.stack([cv2.resize(f, (64, 64)) for f in faces]).astype("float32") / 255.0
    ready = (ready - 0.5) * 2.0
    prep_seconds = time.perf_counter() - started
    classify(ready[:8])
    started = time.perf_counter()
    probs = classify(ready)
    model_seconds = time.perf_counter() - started
    assert len(probs) == len(faces)
    return {"faces": len(faces), "public_seconds": public_seconds, "prep_seconds": prep_seconds,
            "model_seconds": model_seconds}


def labelled(folder: Path) -> dict:
    """fer's top expression for every photo of ``folder/<label>/``: end to end (its Haar detector, the largest
    face; None when it finds none) and with the whole photo given as the face's box."""
    import cv2
    from fer.fer import FER

    detector = FER(mtcnn=False)
    rows = []
    for path in sorted(p for p in folder.glob("*/*") if p.suffix.lower() in (".jpg", ".jpeg", ".png")):
        image = cv2.imread(str(path))
        found = detector.detect_emotions(image)
        largest = max(found, key=lambda f: f["box"][2] * f["box"][3]) if found else None
        whole = detector.detect_emotions(image, face_rectangles=[(0, 0, image.shape[1], image.shape[0])])
        rows.append({"file": path.name, "label": path.parent.name,
                     "found": None if largest is None else max(largest["emotions"], key=largest["emotions"].get),
                     "whole": max(whole[0]["emotions"], key=whole[0]["emotions"].get) if whole else None})
    import fer

    return {"fer": fer.__version__, "photos": rows}


def main() -> None:
    mode, target = sys.argv[1], Path(sys.argv[2])
    if mode == "photos":
        result = photos(target)
    elif mode == "crops":
        result = crops(target)
    elif mode == "labelled":
        result = labelled(target)
    else:
        raise SystemExit(f"mode must be photos, crops or labelled. Received: mode={mode!r}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
