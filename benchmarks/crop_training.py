"""The issue's crop lever, measured: a bundled network fine-tuned on random sharp crops of the 48 px faces and
scored with ten-crop averaging. Not a benchmark of speed: it trains (about 30 minutes on 2 CPU cores in
bfloat16) and prints each epoch's PublicTest accuracy, then the chosen epoch's PublicTest and PrivateTest figures.

``vgg_gap_small`` ends in global average pooling, so the same weights take any input size: the fine-tune feeds
the network ``--crop`` px squares cut at random integer offsets from the 48 px faces (after the job's usual
training augmentation with half the faces rotated, shifted or zoomed: ``fit.make_augmenter``), so the crops keep
the faces' own pixels. At test time each face gives ten views (the centre and the four corners, each with its
mirror image), averaged. The epoch is chosen on PublicTest's ten-crop accuracy; PrivateTest is printed for the
chosen epoch only (reported, never chosen on). The labels are FER2013's original ones unless ``--labels``.

    python benchmarks/crop_training.py ../shared/datasets/fer2013 --out ~/runs/crop44      # v2's network, 44 px
    python benchmarks/crop_training.py DATA --init vgg_gap_small_v1 --crop 40 --epochs 16 --lr 0.01 --out DIR

Each epoch's weights are kept in ``--out`` (``epNN.weights.h5``, with ``history.json``), and the chosen epoch's
ten-crop probabilities as ``valid_ten.npy`` and ``test_ten.npy``. An existing folder is refused: no resume.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from common import machine_line  # noqa: E402

SIDE = 48


def random_crops(crop: int):
    """A ``tf.data`` batch function cutting one ``crop`` px square at a random integer offset from each face
    (``crop_and_resize`` with a box of exactly ``crop`` pixels samples the pixels themselves: no resampling)."""
    import tensorflow as tf

    last = float(SIDE - 1)

    def cut(x, y, w):
        b = tf.shape(x)[0]
        top = tf.cast(tf.random.uniform([b], 0, SIDE - crop + 1, dtype=tf.int32), tf.float32)
        left = tf.cast(tf.random.uniform([b], 0, SIDE - crop + 1, dtype=tf.int32), tf.float32)
        boxes = tf.stack([top / last, left / last, (top + crop - 1) / last, (left + crop - 1) / last], axis=1)
        return tf.image.crop_and_resize(x, boxes, tf.range(b), (crop, crop), method="bilinear"), y, w

    return cut


def ten_views(x: np.ndarray, crop: int) -> list[np.ndarray]:
    """The centre and four corner ``crop`` px squares of 48 px faces, each followed by its mirror image."""
    x = x.astype(np.float32)
    mid, end = (SIDE - crop) // 2, SIDE - crop
    views = []
    for top, left in [(mid, mid), (0, 0), (0, end), (end, 0), (end, end)]:
        view = x[:, top : top + crop, left : left + crop]
        views += [view, np.ascontiguousarray(view[:, :, ::-1])]
    return views


def scores(model, x: np.ndarray, y: np.ndarray, crop: int) -> tuple[dict[str, float], np.ndarray]:
    """Accuracy of the centre crop, the centre crop with its mirror, and all ten views; and the ten views' mean."""
    probs = [model.predict(view, batch_size=512, verbose=0) for view in ten_views(x, crop)]
    ten = np.mean(probs, axis=0)
    accuracy = lambda p: round(float((p.argmax(1) == y).mean()), 4)  # noqa: E731
    return {"centre": accuracy(probs[0]), "centre+flip": accuracy((probs[0] + probs[1]) / 2), "ten": accuracy(ten)}, ten


def per_class(p: np.ndarray, y: np.ndarray) -> dict[str, object]:
    from emotion_batch.training.metrics import classification_report

    report = classification_report(y, p)
    return {"accuracy": round(report["accuracy"], 4), "macro_f1": round(report["macro_f1"], 4),
            "recall": {name: round(c["recall"], 3) for name, c in report["per_class"].items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data", help="the FER2013 folder")
    parser.add_argument("--out", required=True, type=Path, help="a new folder for the epochs' weights")
    parser.add_argument("--init", default="vgg_gap_small_v2", help="bundled model name or .keras file to start from")
    parser.add_argument("--labels", default="original", choices=["original", "ferplus-majority", "ferplus-soft"])
    parser.add_argument("--crop", type=int, default=44, help="side of the training and test crops, px (< 48)")
    parser.add_argument("--epochs", type=int, default=16)
    parser.add_argument("--lr", type=float, default=0.01, help="peak of the cosine schedule (one warm-up epoch)")
    parser.add_argument("--precision", default="mixed_bfloat16", choices=["float32", "mixed_bfloat16"])
    parser.add_argument("--limit", type=int, default=None, help="first N faces of each split (a rehearsal)")
    args = parser.parse_args()
    if not 24 <= args.crop < SIDE:
        parser.error(f"--crop must be within 24..47. Received: crop={args.crop}")
    if args.epochs < 2:
        parser.error(f"--epochs must be at least 2 (one warm-up epoch, then the cosine). Received: epochs={args.epochs}")
    if args.out.exists():
        parser.error(f"--out must be a new folder (no resume). Received: out={str(args.out)!r}")

    import keras

    from emotion_batch.training.architectures import build_from_spec, load_spec
    from emotion_batch.training.data import load_fer2013
    from emotion_batch.training.fit import TrainConfig, load_initial_weights, load_splits, make_dataset

    print(machine_line(), flush=True)
    print(f"conditions: init {args.init}, labels {args.labels}, crop {args.crop} px, {args.epochs} epochs, SGD "
          f"Nesterov lr {args.lr} cosine, batch 128, label smoothing 0.1, {args.precision}; PublicTest chooses, "
          "PrivateTest reported for the chosen epoch only", flush=True)
    train, valid = load_splits(TrainConfig(data=args.data, labels=args.labels, limit=args.limit), size=SIDE, channels=1)
    labels = "ferplus-majority" if args.labels != "original" else "original"
    test = load_fer2013(args.data, split="test", labels=labels, limit=args.limit)

    keras.mixed_precision.set_global_policy(args.precision)
    spec = copy.deepcopy(load_spec("vgg_gap_small"))
    spec["input"]["size"] = args.crop
    model = build_from_spec(spec, name=f"vgg_gap_small_crop{args.crop}")
    load_initial_weights(model, args.init)  # the same weights, any input size: the spec's layers are unchanged

    import tensorflow as tf

    batches = make_dataset(train, batch_size=128, training=True, augment=True, weights=None, seed=7, geometric_share=0.5)
    batches = batches.map(random_crops(args.crop), num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)
    steps = int(np.ceil(len(train) / 128))
    schedule = keras.optimizers.schedules.CosineDecay(
        args.lr * 0.1, decay_steps=steps * (args.epochs - 1), alpha=0.01, warmup_target=args.lr, warmup_steps=steps)
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=schedule, momentum=0.9, nesterov=True),
                  loss=keras.losses.CategoricalCrossentropy(label_smoothing=0.1), metrics=["accuracy"])

    args.out.mkdir(parents=True)
    history, best, valid_ten = [], None, None
    for epoch in range(1, args.epochs + 1):
        start = time.perf_counter()
        fitted = model.fit(batches, epochs=1, verbose=0)
        figures, ten = scores(model, valid.x, valid.y, args.crop)
        history.append({"epoch": epoch, "loss": round(fitted.history["loss"][0], 4),
                        "train_accuracy": round(fitted.history["accuracy"][0], 4), **figures,
                        "seconds": round(time.perf_counter() - start, 1)})
        print(json.dumps(history[-1]), flush=True)
        model.save_weights(args.out / f"ep{epoch:02d}.weights.h5")
        (args.out / "history.json").write_text(json.dumps(history, indent=1))
        if best is None or figures["ten"] > best["ten"]:
            best, valid_ten = history[-1], ten

    model.load_weights(args.out / f"ep{best['epoch']:02d}.weights.h5")
    test_figures, test_ten = scores(model, test.x, test.y, args.crop)
    np.save(args.out / "valid_ten.npy", valid_ten)
    np.save(args.out / "test_ten.npy", test_ten)
    print(f"chosen epoch {best['epoch']} (PublicTest ten-crop {best['ten']})")
    print("PublicTest, ten views:", json.dumps(per_class(valid_ten, valid.y)))
    print(f"PrivateTest ({len(test)} faces, {labels} labels; reported, not chosen on): one pass {test_figures}; "
          "ten views:", json.dumps(per_class(test_ten, test.y)))


if __name__ == "__main__":
    main()
