"""Our classifier alone on pre-cropped faces, in a process of its own; prints one JSON line.

For each backend (``keras``: TensorFlow, on a GPU where there is one; ``litert``: the model's int8 .tflite
file through LiteRT, what the job runs on CPUs) and batch size: faces/s of ``predict`` from ``uint8``
faces in host memory (cast, host-to-device copy where there is a GPU, model), best of ``--repeats``
passes (a model with a flip gate also reports the share of faces it mirrored); with a GPU also the Keras
model alone on faces already on the device, which separates the transfer from the model.

    python benchmarks/classify_worker.py crops.npy --batch-sizes 256,1024,4096 [--backends keras,litert]
    python benchmarks/classify_worker.py ../shared/datasets/fer2013 --count 20000   # real faces
    python benchmarks/classify_worker.py dev_crops.npy --count 20000   # real_photos.py --save-crops, repeated

``crops`` is a ``.npy`` file of faces or a FER2013 folder (its first ``--count`` Training faces: a real mix of
expressions, which a flip gate needs for an honest figure; the synthetic crops of ``common.face_crops`` are one
confident face).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("crops", type=Path, help=".npy file of (n, side, side) uint8 gray faces, or a FER2013 folder")
    parser.add_argument("--count", type=int, default=None,
                        help="faces: the first COUNT Training faces of a FER2013 folder (default 20000); a .npy file's "
                             "faces repeated or cut to COUNT (default: as they are)")
    parser.add_argument("--batch-sizes", default="256")
    parser.add_argument("--model", default=None, help="bundled model name or .keras file [default: bundled default]")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--backends", default="keras,litert",
                        help="comma-separated; litert is left out when the model has no LiteRT file")
    args = parser.parse_args()

    import numpy as np
    import tensorflow as tf

    from common import model_macs
    from emotion_batch.classifier import Classifier, load_classifier, locate_model
    from emotion_batch.exceptions import ConfigError

    keras_classifier = Classifier.load(args.model)
    if args.crops.is_dir():
        from emotion_batch.training.data import load_fer2013

        gray = load_fer2013(args.crops, split="train", limit=args.count or 20000).x[..., 0]
    else:
        gray = np.load(args.crops)
        if args.count:
            gray = np.resize(gray, (args.count, *gray.shape[1:]))
    faces = _faces(gray, keras_classifier.size, keras_classifier.channels)  # read once, both backends
    batches = [int(b) for b in args.batch_sizes.split(",")]
    runs = []
    for backend in args.backends.split(","):
        try:
            classifier = keras_classifier if backend == "keras" else load_classifier(args.model, backend=backend)
        except ConfigError:  # the model ships no file for this backend
            continue
        runs.append({"backend": backend, "model_id": classifier.model_id, "device": classifier.device,
                     "results": _sweep(classifier, faces, batches, args.repeats)})
    print(json.dumps({"model_id": keras_classifier.model_id, "job_backend": locate_model(args.model).backend,
                      "macs_per_face": model_macs(keras_classifier.model),
                      "threads": {"intra": tf.config.threading.get_intra_op_parallelism_threads(),
                                  "inter": tf.config.threading.get_inter_op_parallelism_threads()},
                      "runs": runs}))


def _faces(gray, size: int, channels: int):
    """``(n, side, side)`` uint8 crops as the model's ``(n, size, size, channels)`` input."""
    import numpy as np

    if gray.shape[1] != size:
        from PIL import Image

        gray = np.stack([np.asarray(Image.fromarray(f).resize((size, size))) for f in gray])
    faces = gray.reshape(len(gray), size, size, 1)
    return np.repeat(faces, 3, axis=-1) if channels == 3 else faces


def _sweep(classifier, faces, batches: list[int], repeats: int) -> list[dict]:
    results = []
    for batch in batches:
        classifier.batch_size = batch
        classifier.predict(faces[: batch])  # trace and warm up at this batch size
        classifier.mirrored = 0
        best = min(_timed(lambda: classifier.predict(faces)) for _ in range(repeats))
        row = {"batch_size": batch, "faces": len(faces), "faces_per_s": len(faces) / best}
        if classifier.flip_gate is not None:  # the share of faces classified again mirrored, in the timed passes
            row["flip_gate"] = classifier.flip_gate.below
            row["mirrored_share"] = round(classifier.mirrored / (repeats * len(faces)), 4)
        if classifier.device == "GPU" and classifier.backend == "keras":
            import tensorflow as tf

            on_device = [tf.constant(faces[i : i + batch], dtype=tf.float32) for i in range(0, len(faces), batch)]

            def model_only():
                for x in on_device:
                    out = classifier._predict(x)
                out.numpy()  # wait for the last one

            model_only()
            row["model_only_faces_per_s"] = len(faces) / min(_timed(model_only) for _ in range(repeats))
        results.append(row)
    return results


def _timed(fn) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


if __name__ == "__main__":
    main()
