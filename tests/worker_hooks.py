"""Workers that die the way real ones do, and a script running the batch job with them (no TensorFlow).

``python -m tests.worker_hooks ROOT DB WORKERS`` runs ``run_batch`` on ROOT with the ``none`` detector,
a stub classifier and ``CrashingAnalyser`` in the worker processes; it prints the summary as JSON and
exits like ``emotion-batch run``: 0, 3 when worker processes died, 130 on Ctrl-C.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

from emotion_batch.pipeline import Analyser

SIZE, CHANNELS = 48, 1


class StubClassifier:
    """What ``run_batch`` needs of a classifier: the same probabilities for every face."""

    size, channels, model_id, device = SIZE, CHANNELS, "stub@0", "CPU"

    def predict(self, tensors: np.ndarray) -> np.ndarray:
        return np.full((len(tensors), 7), 1 / 7, dtype=np.float32)


class CrashingAnalyser(Analyser):
    """Dies with ``SIGKILL`` (what the out-of-memory killer or a crash in a native decoder does) on files
    named ``poison*`` every time, on ``flaky*`` only the first time; on ``hold*`` it writes its pid to
    ``<ROOT>/../held/<pid>`` and waits to be killed from outside."""

    def __call__(self, task):
        name = Path(task.candidate.path).name
        marks = Path(task.root).parent
        if name.startswith("poison"):
            os.kill(os.getpid(), signal.SIGKILL)
        if name.startswith("flaky"):
            marker = marks / "flaky-crashed"
            if not marker.exists():
                marker.touch()
                os.kill(os.getpid(), signal.SIGKILL)
        if name.startswith("hold"):
            held = marks / "held"
            held.mkdir(exist_ok=True)
            (held / str(os.getpid())).touch()
            time.sleep(600)  # until the test kills this process
        return super().__call__(task)


def make_tree(root: Path, names: list[str], *, size: int = 64) -> None:
    """ROOT/camp/ad/<name> small grey PNGs (the ``none`` detector takes each as one face)."""
    ad = root / "camp" / "ad"
    ad.mkdir(parents=True, exist_ok=True)
    for i, name in enumerate(names):
        Image.fromarray(np.full((size, size, 3), (40 + 10 * i) % 256, dtype=np.uint8)).save(ad / name)


def main(argv: list[str]) -> int:
    from sqlalchemy.orm import sessionmaker

    from emotion_batch.pipeline import RunOptions, _Executor, run_batch
    from emotion_batch.store.session import make_engine

    root, db, workers = argv[0], argv[1], int(argv[2])
    options = RunOptions(root=root, detector="none", workers=workers, chunk_images=4)
    engine = make_engine(db)
    factory = sessionmaker(bind=engine, expire_on_commit=False)
    try:
        summary = run_batch(factory, StubClassifier(), options,
                            executor=lambda: _Executor(options, SIZE, CHANNELS, analyser=CrashingAnalyser))
    except KeyboardInterrupt:
        return 130
    finally:
        engine.dispose()
    print(json.dumps(summary.as_dict(), default=str))
    return 3 if summary.status == "workers_died" else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
