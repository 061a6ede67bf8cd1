"""Fit a model from a spec: tf.data input with augmentation, class balancing, history, checkpoints, resume.

A run lives in ``<runs_dir>/<model>_<optimizer>_<colormode>_<batch>_<balance>/``:

- ``config.json``   the options of the run (what ``emotion-batch train`` was given)
- ``spec.json``     the architecture spec it was built from
- ``history.json``  one record per finished epoch (loss, accuracy, val_loss, val_accuracy, lr, seconds)
- ``last.keras``    the whole model with optimizer state after the last finished epoch (for resume)
- ``best.weights.h5`` weights of the epoch with the best validation accuracy (with ``ema``: that epoch's weight
                    average or its raw weights, whichever validated better)
- ``state.json``    epoch reached, best validation accuracy and epoch (and ``best_weights``: ``average`` or
                    ``raw``), early-stopping counter, done flag
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..exceptions import ConfigError
from ..labels import NUM_CLASSES
from .architectures import build_from_spec, load_spec
from .data import FaceSet, clean, ferplus_soft_mix, load_fer2013, load_folder_tree

log = logging.getLogger(__name__)

OPTIMIZERS = ("adam", "sgd", "rmsprop")
SCHEDULES = ("cosine", "plateau", "constant")
LABELS = ("original", "ferplus-majority", "ferplus-soft")
PRECISIONS = ("float32", "mixed_bfloat16")


@dataclass
class TrainConfig:
    """Everything a training run depends on; written to ``config.json``."""

    data: str
    model: str = "resx_small"
    data_format: str = "auto"  # auto | fer2013 | folders
    labels: str = "original"
    optimizer: str = "adam"
    learning_rate: float = 2e-3
    schedule: str = "cosine"
    batch_size: int = 64
    epochs: int = 60
    patience: int = 20
    balance: str = "none"  # none | weights | augment-<N>
    augment: bool = True
    # share of each batch given the random rotation, shift and zoom (each resamples, so blurs, the face); the
    # rest keep their own sharp pixels, as the 48x48 test crops are (1.0: every face, the runs before it)
    geometric_share: float = 1.0
    label_smoothing: float = 0.0
    precision: str = "float32"  # float32 | mixed_bfloat16
    ema: float = 0.0  # momentum of the weights' moving average (0: none); selection then uses the average
    ferplus_weight: float = 0.0  # weight of the FER+ vote shares mixed into the original targets
    teachers: list[str] = field(default_factory=list)  # run folders, .keras files or bundled names (distillation)
    teacher_weight: float = 0.0  # weight of the teachers' mean probabilities mixed into the targets
    teacher_temperature: float = 1.0  # softens the teachers' probabilities (p ** (1 / T), renormalised)
    name: str | None = None  # run folder name (default: derived from the options)
    init: str | None = None  # start from these weights: a bundled model's name or a .keras file of the same spec
    limit: int | None = None
    seed: int = 1337
    extra: dict[str, Any] = field(default_factory=dict)

    def validate(self) -> None:
        if self.optimizer not in OPTIMIZERS:
            raise ConfigError(f"optimizer must be one of {list(OPTIMIZERS)}. Received: optimizer={self.optimizer!r}")
        if self.schedule not in SCHEDULES:
            raise ConfigError(f"schedule must be one of {list(SCHEDULES)}. Received: schedule={self.schedule!r}")
        if self.labels not in LABELS:
            raise ConfigError(f"labels must be one of {list(LABELS)}. Received: labels={self.labels!r}")
        if self.data_format not in ("auto", "fer2013", "folders"):
            raise ConfigError(f"data_format must be auto, fer2013 or folders. Received: data_format={self.data_format!r}")
        if self.batch_size < 1 or self.epochs < 1:
            raise ConfigError(f"batch_size and epochs must be positive. Received: batch_size={self.batch_size}, epochs={self.epochs}")
        if self.precision not in PRECISIONS:
            raise ConfigError(f"precision must be one of {list(PRECISIONS)}. Received: precision={self.precision!r}")
        if not (self.ema == 0.0 or 0.0 < self.ema < 1.0):
            raise ConfigError(f"ema must be 0 (off) or within (0, 1). Received: ema={self.ema!r}")
        if not 0.0 <= self.geometric_share <= 1.0:
            raise ConfigError(f"geometric_share must be within 0..1. Received: geometric_share={self.geometric_share!r}")
        if not 0.0 <= self.ferplus_weight <= 1.0:
            raise ConfigError(f"ferplus_weight must be within 0..1. Received: ferplus_weight={self.ferplus_weight!r}")
        if self.ferplus_weight and self.labels != "original":
            raise ConfigError("ferplus_weight mixes FER+ votes into the original labels; use it with labels='original'. "
                              f"Received: labels={self.labels!r}")
        if not 0.0 <= self.teacher_weight <= 1.0:
            raise ConfigError(f"teacher_weight must be within 0..1. Received: teacher_weight={self.teacher_weight!r}")
        if bool(self.teacher_weight) != bool(self.teachers):
            raise ConfigError("distillation needs both teachers and a teacher_weight above 0. "
                              f"Received: teachers={self.teachers!r}, teacher_weight={self.teacher_weight!r}")
        if not self.teacher_temperature > 0:
            raise ConfigError(f"teacher_temperature must be above 0. Received: teacher_temperature={self.teacher_temperature!r}")
        balance_target(self.balance)

    def run_name(self, channels: int) -> str:
        if self.name:
            return self.name
        colormode = "gray" if channels == 1 else "rgb"
        return f"{Path(self.model).stem}_{self.optimizer}_{colormode}_{self.batch_size}_{self.balance}"


def balance_target(balance: str) -> int | None:
    """Parse ``none``/``weights``/``augment-N``; return N for ``augment-N``."""
    if balance in ("none", "weights"):
        return None
    if balance.startswith("augment-") and balance[len("augment-"):].isdigit() and int(balance[8:]) > 0:
        return int(balance[8:])
    raise ConfigError(f"balance must be none, weights or augment-<N>. Received: balance={balance!r}")


def load_splits(config: TrainConfig, *, size: int, channels: int) -> tuple[FaceSet, FaceSet]:
    """Training and validation sets for a config (FER2013 CSV or class-per-folder tree)."""
    root = Path(config.data)
    fmt = config.data_format
    if fmt == "auto":
        fmt = "fer2013" if (root / "fer2013.csv.gz").is_file() or (root / "fer2013.csv").is_file() else "folders"
    if fmt == "fer2013":
        train = load_fer2013(root, split="train", size=size, channels=channels, labels=config.labels, limit=config.limit)
        if config.ferplus_weight:
            train = ferplus_soft_mix(root, train, split="train", weight=config.ferplus_weight, limit=config.limit)
        valid = load_fer2013(root, split="valid", size=size, channels=channels, labels=config.labels, limit=config.limit)
        test = load_fer2013(root, split="test", size=size, channels=channels, labels="original", limit=config.limit)
        train, report = clean(train, valid, test)
    else:
        train = load_folder_tree(root, split="train", size=size, channels=channels)
        valid = load_folder_tree(root, split="valid", size=size, channels=channels)
        train, report = clean(train, valid)
    log.info("cleaning: %s", report)
    return train, valid


def balanced_index(y: np.ndarray, target: int, rng: np.random.Generator) -> np.ndarray:
    """Indices that bring every class up to ``target`` samples by repetition (augmentation varies repeats)."""
    parts = []
    for c in range(NUM_CLASSES):
        idx = np.flatnonzero(y == c)
        if idx.size == 0:
            continue
        if idx.size < target:
            idx = np.concatenate([idx, rng.choice(idx, target - idx.size, replace=True)])
        parts.append(idx)
    out = np.concatenate(parts)
    rng.shuffle(out)
    return out


def class_weights(y: np.ndarray) -> np.ndarray:
    """Per-class weights ``n / (k * count)`` (classes absent from ``y`` get weight 0)."""
    counts = np.bincount(y, minlength=NUM_CLASSES).astype(np.float64)
    present = counts > 0
    w = np.zeros(NUM_CLASSES)
    w[present] = counts.sum() / (present.sum() * counts[present])
    return w.astype(np.float32)


def make_augmenter(seed: int, geometric_share: float = 1.0):
    """Return a batch function: flip, small rotation/shift/zoom (for ``geometric_share`` of the faces: each
    resamples, so blurs, the face), brightness/contrast, random erasing."""
    import keras
    import tensorflow as tf

    geometric = [
        keras.layers.RandomRotation(0.04, fill_mode="reflect", seed=seed, dtype="float32"),
        keras.layers.RandomTranslation(0.08, 0.08, fill_mode="reflect", seed=seed + 1, dtype="float32"),
        keras.layers.RandomZoom((-0.1, 0.1), fill_mode="reflect", seed=seed + 2, dtype="float32"),
    ]

    def augment(x, y, w):
        x = tf.cast(x, tf.float32)
        x = tf.image.random_flip_left_right(x, seed=seed)
        b = tf.shape(x)[0]
        if geometric_share > 0.0:
            moved = x
            for layer in geometric:
                moved = layer(moved, training=True)
            x = moved if geometric_share >= 1.0 else tf.where(tf.random.uniform([b, 1, 1, 1]) < geometric_share, moved, x)
        height, width = tf.shape(x)[1], tf.shape(x)[2]
        contrast = tf.random.uniform([b, 1, 1, 1], 0.7, 1.3)
        brightness = tf.random.uniform([b, 1, 1, 1], -25.0, 25.0)
        mean = tf.reduce_mean(x, axis=[1, 2, 3], keepdims=True)
        x = (x - mean) * contrast + mean + brightness
        # random erasing: with probability 0.5 one rectangle of 2-20% of the area becomes noise
        area = tf.random.uniform([b], 0.02, 0.2)
        aspect = tf.exp(tf.random.uniform([b], np.log(0.3), np.log(3.3)))
        eh = tf.clip_by_value(tf.sqrt(area * aspect) * tf.cast(height, tf.float32), 1.0, tf.cast(height, tf.float32))
        ew = tf.clip_by_value(tf.sqrt(area / aspect) * tf.cast(width, tf.float32), 1.0, tf.cast(width, tf.float32))
        top = tf.random.uniform([b]) * (tf.cast(height, tf.float32) - eh)
        left = tf.random.uniform([b]) * (tf.cast(width, tf.float32) - ew)
        rows = tf.cast(tf.range(height), tf.float32)[None, :, None]
        cols = tf.cast(tf.range(width), tf.float32)[None, None, :]
        inside = (
            (rows >= top[:, None, None]) & (rows < (top + eh)[:, None, None])
            & (cols >= left[:, None, None]) & (cols < (left + ew)[:, None, None])
            & (tf.random.uniform([b, 1, 1]) < 0.5)
        )
        noise = tf.random.uniform(tf.shape(x), 0.0, 255.0)
        x = tf.where(inside[..., None], noise, x)
        return tf.clip_by_value(x, 0.0, 255.0), y, w

    return augment


def make_dataset(faces: FaceSet, *, batch_size: int, training: bool, augment: bool, weights: np.ndarray | None,
                 index: np.ndarray | None = None, seed: int = 0, geometric_share: float = 1.0):
    """A ``tf.data`` pipeline of ``(pixels, soft labels, sample weights)`` batches."""
    import tensorflow as tf

    idx = np.arange(len(faces)) if index is None else index
    w = np.ones(len(idx), dtype=np.float32) if weights is None else weights[faces.y[idx]]
    ds = tf.data.Dataset.from_tensor_slices((faces.x[idx], faces.soft[idx], w))
    if training:
        ds = ds.shuffle(len(idx), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size)
    if training and augment:
        ds = ds.map(make_augmenter(seed, geometric_share), num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE)


def augment_numpy(x: np.ndarray, rng: np.random.Generator, geometric_share: float = 1.0) -> np.ndarray:
    """``make_augmenter``'s augmentations in NumPy and SciPy, for Keras backends without TensorFlow (JAX,
    PyTorch): mirror half the faces; for ``geometric_share`` of them a random rotation (up to 0.04 of a turn),
    shift (up to 8 % per axis) and zoom (up to 10 %), resampled bilinearly with reflected edges; contrast
    0.7-1.3 and brightness -25..25 around each face's mean; and for half of them one rectangle of 2-20 % of
    the area (aspect 0.3-3.3) filled with noise.

    Args:
        x: a batch ``(n, height, width, channels)`` of pixel values in 0..255 (any dtype).
        rng: the random generator (one per batch: the same seed gives the same batch).
        geometric_share: share of the faces that get the rotation, shift and zoom.

    Returns:
        The augmented batch, float32 in 0..255, same shape.
    """
    x = np.asarray(x, dtype=np.float32).copy()
    n, height, width, channels = x.shape
    flip = rng.random(n) < 0.5
    x[flip] = x[flip, :, ::-1]
    moved = np.flatnonzero(rng.random(n) < geometric_share) if geometric_share > 0.0 else np.zeros(0, int)
    if moved.size:
        m = moved.size
        angle = rng.uniform(-0.04, 0.04, m) * 2.0 * np.pi
        zoom = 1.0 + rng.uniform(-0.1, 0.1, m)  # > 1 shows more of the image (the face gets smaller)
        shift_r, shift_c = rng.uniform(-0.08, 0.08, m) * height, rng.uniform(-0.08, 0.08, m) * width
        rr, cc = np.meshgrid(np.arange(height, dtype=np.float32), np.arange(width, dtype=np.float32), indexing="ij")
        cr, ccen = (height - 1) / 2.0, (width - 1) / 2.0
        dr, dc = rr[None] - cr, cc[None] - ccen
        cos = (np.cos(angle) * zoom).astype(np.float32)[:, None, None]
        sin = (np.sin(angle) * zoom).astype(np.float32)[:, None, None]
        src_r = cos * dr - sin * dc + cr - shift_r[:, None, None]
        src_c = sin * dr + cos * dc + ccen - shift_c[:, None, None]
        x[moved] = _bilinear_mirror(x[moved], src_r, src_c)
    contrast = rng.uniform(0.7, 1.3, (n, 1, 1, 1)).astype(np.float32)
    brightness = rng.uniform(-25.0, 25.0, (n, 1, 1, 1)).astype(np.float32)
    mean = x.mean(axis=(1, 2, 3), keepdims=True)
    x = (x - mean) * contrast + mean + brightness
    area = rng.uniform(0.02, 0.2, n)
    aspect = np.exp(rng.uniform(np.log(0.3), np.log(3.3), n))
    eh = np.clip(np.sqrt(area * aspect) * height, 1.0, height)
    ew = np.clip(np.sqrt(area / aspect) * width, 1.0, width)
    top, left = rng.random(n) * (height - eh), rng.random(n) * (width - ew)
    rows, cols = np.arange(height)[None, :, None], np.arange(width)[None, None, :]
    inside = ((rows >= top[:, None, None]) & (rows < (top + eh)[:, None, None])
              & (cols >= left[:, None, None]) & (cols < (left + ew)[:, None, None])
              & (rng.random((n, 1, 1)) < 0.5))
    erased = np.flatnonzero(inside.any(axis=(1, 2)))
    if erased.size:
        noise = rng.uniform(0.0, 255.0, (erased.size, height, width, channels)).astype(np.float32)
        x[erased] = np.where(inside[erased, :, :, None], noise, x[erased])
    return np.clip(x, 0.0, 255.0, out=x)


def _mirror_index(i: np.ndarray, n: int) -> np.ndarray:
    """Integer pixel indices folded into ``0..n-1`` by reflection about the edge pixels (``d c b | a b c d |
    c b a``, SciPy's ``mirror`` mode)."""
    if n == 1:
        return np.zeros_like(i)
    period = 2 * (n - 1)
    k = np.abs(i) % period
    return np.where(k > n - 1, period - k, k)


def _bilinear_mirror(images: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Sample ``images`` ``(m, height, width, channels)`` at the real positions ``rows``/``cols``
    ``(m, height, width)`` bilinearly, reflecting positions outside the image (``mirror``)."""
    m, height, width, _ = images.shape
    r0, c0 = np.floor(rows), np.floor(cols)
    fr, fc = (rows - r0)[..., None], (cols - c0)[..., None]
    r0, c0 = r0.astype(np.int64), c0.astype(np.int64)
    ra, rb = _mirror_index(r0, height), _mirror_index(r0 + 1, height)
    ca, cb = _mirror_index(c0, width), _mirror_index(c0 + 1, width)
    flat = images.reshape(m * height * width, -1)
    base = (np.arange(m) * (height * width))[:, None, None]
    ra, rb = base + ra * width, base + rb * width

    def at(r, c):
        return np.take(flat, (r + c).ravel(), axis=0).reshape(m, height, width, -1)

    top = at(ra, ca) * (1.0 - fc) + at(ra, cb) * fc
    bottom = at(rb, ca) * (1.0 - fc) + at(rb, cb) * fc
    return (top * (1.0 - fr) + bottom * fr).astype(np.float32)


def make_array_batches(faces: FaceSet, *, batch_size: int, training: bool, augment: bool, weights: np.ndarray | None,
                       index: np.ndarray | None = None, seed: int = 0, geometric_share: float = 1.0, workers: int = 4):
    """``make_dataset`` for any Keras backend: a ``keras.utils.PyDataset`` of ``(pixels, soft labels, sample
    weights)`` batches, shuffled every epoch when ``training``, augmented by ``augment_numpy`` in ``workers``
    threads (each batch from its own generator seeded by the seed, the epoch and the batch number)."""
    import keras

    idx = np.arange(len(faces)) if index is None else np.asarray(index)
    w = np.ones(len(idx), dtype=np.float32) if weights is None else weights[faces.y[idx]].astype(np.float32)

    class ArrayBatches(keras.utils.PyDataset):
        def __init__(self) -> None:
            super().__init__(workers=workers if training and augment else 1, use_multiprocessing=False)
            self.epoch = 0
            self.order = self._order()

        def _order(self) -> np.ndarray:
            if not training:
                return np.arange(len(idx))
            return np.random.default_rng([seed, self.epoch]).permutation(len(idx))

        def __len__(self) -> int:
            return int(np.ceil(len(idx) / batch_size))

        def __getitem__(self, i: int):
            pick = self.order[i * batch_size : (i + 1) * batch_size]
            x = faces.x[idx[pick]]
            if training and augment:
                x = augment_numpy(x, np.random.default_rng([seed, self.epoch, i]), geometric_share)
            else:
                x = x.astype(np.float32)
            return x, faces.soft[idx[pick]], w[pick]

        def on_epoch_end(self) -> None:
            self.epoch += 1
            self.order = self._order()

    return ArrayBatches()


def _teacher_file(source: str) -> Path:
    """The file holding a teacher's weights: a run folder's ``best.weights.h5``, a ``.keras`` file, or a bundled
    model's Keras file (by name)."""
    from ..classifier import locate_model

    path = Path(source)
    if path.is_dir() and (path / "best.weights.h5").is_file():
        return path / "best.weights.h5"
    if path.suffix == ".keras" and path.is_file():
        return path
    if path.suffix or path.is_dir():
        raise ConfigError(f"a teacher must be a run folder with best.weights.h5, a .keras file or a bundled model's "
                          f"name. Received: teacher={source!r}")
    return locate_model(source, backend="keras").path


def _load_teacher(source: str):
    """A teacher model (see ``_teacher_file``)."""
    import keras

    from .. import model_layers  # noqa: F401  (registers the bundled files' layers)

    path = _teacher_file(source)
    return load_best(path.parent) if path.name == "best.weights.h5" else keras.models.load_model(path, compile=False)


def teacher_targets(teachers: list[str], faces: FaceSet, *, temperature: float = 1.0, batch_size: int = 512) -> np.ndarray:
    """The teachers' mean class probabilities for ``faces``: each teacher sees every face and its mirror image
    (the two averaged), the teachers are averaged, and ``temperature`` above 1 softens the mean
    (``p ** (1 / T)``, renormalised), as the soft targets of knowledge distillation. The teachers are built
    in float32 whatever the global precision policy."""
    import keras

    if not len(faces):
        return np.zeros((0, NUM_CLASSES), np.float32)
    x = faces.x
    total = np.zeros((len(faces), NUM_CLASSES), np.float64)
    previous_policy = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("float32")
    try:
        models = [(source, _load_teacher(source)) for source in teachers]
    finally:
        keras.mixed_precision.set_global_policy(previous_policy)
    for source, model in models:
        if tuple(model.input_shape[1:]) != tuple(x.shape[1:]):
            raise ConfigError(f"teacher {source!r} takes {tuple(model.input_shape[1:])} faces, the student's data is "
                              f"{tuple(x.shape[1:])}")
        p = np.zeros((len(faces), NUM_CLASSES), np.float64)
        for start in range(0, len(faces), batch_size):  # uint8 in, one float32 batch at a time
            chunk = x[start : start + batch_size].astype(np.float32)
            p[start : start + len(chunk)] = (model.predict_on_batch(chunk) + model.predict_on_batch(chunk[:, :, ::-1])) / 2.0
        total += p
        log.info("teacher %s: agrees with the labels on %.3f of %d faces", source,
                 float((p.argmax(axis=1) == faces.y).mean()), len(faces))
    mean = total / len(teachers)
    soft = np.power(np.clip(mean, 1e-12, 1.0), 1.0 / temperature)
    return (soft / soft.sum(axis=1, keepdims=True)).astype(np.float32)


def distil_mix(faces: FaceSet, teacher: np.ndarray, weight: float) -> FaceSet:
    """``(1 - w) * targets + w * teacher``: cross-entropy against the mix is ``(1 - w)`` times the original
    loss plus ``w`` times the KL divergence to the teachers, up to a constant (as ``ferplus_soft_mix`` does
    with the FER+ votes)."""
    soft = ((1.0 - weight) * faces.soft + weight * teacher).astype(np.float32)
    return FaceSet(faces.x, faces.y, soft, f"{faces.source} + teachers (weight {weight:g})")


def _cached_teacher_targets(config: TrainConfig, faces: FaceSet, run_dir: Path, *, resuming: bool) -> np.ndarray:
    """``teacher_targets`` for a run, kept in its folder (``teacher_targets.npz``) under the teachers' weights'
    sha256, the temperature and the face count: a resumed run trains on the targets it started with, without
    predicting them again, even if a teacher's run went on training since (said in the log)."""
    from ..classifier import sha256_file

    key = json.dumps([[sha256_file(_teacher_file(t)) for t in config.teachers], config.teacher_temperature, len(faces)])
    cache = run_dir / "teacher_targets.npz"
    if cache.is_file():
        with np.load(cache) as stored:
            if str(stored["key"]) == key:
                return stored["targets"]
            if resuming and stored["targets"].shape == (len(faces), NUM_CLASSES):
                log.warning("the teachers' weights changed since %s started: it keeps the targets it started with",
                            run_dir.name)
                return stored["targets"]
    targets = teacher_targets(config.teachers, faces, temperature=config.teacher_temperature)
    np.savez(cache, key=np.array(key), targets=targets)
    return targets


def load_initial_weights(model, init: str) -> None:
    """Copy the weights of a bundled model (by name) or of a ``.keras`` file into ``model`` (same spec)."""
    import keras

    from ..classifier import locate_model
    from .. import model_layers  # noqa: F401  (registers the bundled files' layers)

    path = Path(init) if Path(init).suffix == ".keras" else locate_model(init, backend="keras").path
    if not path.is_file():
        raise ConfigError(f"init must name a bundled model or an existing .keras file. Received: init={init!r}")
    source = keras.models.load_model(path, compile=False)
    inner = [layer for layer in source.layers if isinstance(layer, keras.Model)]
    while len(inner) == 1:  # a bundled file wraps the trained network (flip averaging, then calibration)
        source = inner[0]
        inner = [layer for layer in source.layers if isinstance(layer, keras.Model)]
    theirs, ours = source.get_weights(), model.get_weights()
    if [w.shape for w in theirs] != [w.shape for w in ours]:
        raise ConfigError(f"init {str(path)!r} is not a model of this spec: its weights have other shapes")
    model.set_weights(theirs)
    log.info("starting from the weights of %s", path)


def _atomic_json(path: Path, payload: Any) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(payload, indent=2) + "\n")
    os.replace(tmp, path)


def _make_optimizer(config: TrainConfig, steps_per_epoch: int):
    import keras

    lr: Any = config.learning_rate
    if config.schedule == "cosine":
        total = max(1, steps_per_epoch * config.epochs)
        warmup = min(total // 10, steps_per_epoch * 2)
        lr = keras.optimizers.schedules.CosineDecay(
            config.learning_rate * 0.1, decay_steps=total - warmup, alpha=0.01,
            warmup_target=config.learning_rate, warmup_steps=warmup,
        )
    ema = {"use_ema": True, "ema_momentum": config.ema} if config.ema else {}
    if config.optimizer == "adam":
        return keras.optimizers.Adam(learning_rate=lr, **ema)
    if config.optimizer == "sgd":
        return keras.optimizers.SGD(learning_rate=lr, momentum=0.9, nesterov=True, **ema)
    if config.optimizer == "rmsprop":
        return keras.optimizers.RMSprop(learning_rate=lr, **ema)
    raise ConfigError(f"optimizer must be one of {list(OPTIMIZERS)}. Received: optimizer={config.optimizer!r}")


#: Training faces the weight average's batch-norm statistics are measured on, each epoch.
BN_FACES = 4096


def recalibrate_batch_norm(model, x: np.ndarray, *, batch_size: int = 256) -> int:
    """Measure every batch-norm layer's moving mean and variance again, for the model's current weights, on
    the faces ``x``: each batch is run in training mode and the layers' statistics become the equal-weight
    mean of the batches' (the last batch is dropped if smaller). Return the number of layers measured.

    A weight average needs this: Keras averages the trainable weights only, so the average otherwise runs with
    the statistics of the raw weights, which fit it badly while the learning rate is high (the vgg_gap_wide
    teacher at epoch 10: PublicTest 0.492 with them, 0.557 with its own, the raw weights 0.526)."""
    import keras

    layers = [layer for layer in model._flatten_layers() if isinstance(layer, keras.layers.BatchNormalization)]
    if not layers:
        return 0
    momenta = [layer.momentum for layer in layers]
    try:
        for k, start in enumerate(range(0, max(len(x) - batch_size, 0) + 1, batch_size)):
            for layer in layers:
                layer.momentum = k / (k + 1.0)  # the running mean of the batches' statistics, in eager calls
            model(x[start : start + batch_size].astype(np.float32), training=True)
    finally:
        for layer, momentum in zip(layers, momenta):
            layer.momentum = momentum
    return len(layers)


def _recorder_class():
    import keras

    class RunRecorder(keras.callbacks.Callback):
        """Appends history, saves last/best checkpoints and the run state, stops early on patience."""

        def __init__(self, run_dir: Path, state: dict[str, Any], patience: int, ema_valid=None,
                     bn_faces: np.ndarray | None = None) -> None:
            super().__init__()
            self.run_dir = run_dir
            self.ema_valid = ema_valid
            self.bn_faces = bn_faces
            self.state = state
            self.patience = patience
            self.history_path = run_dir / "history.json"
            self.history = json.loads(self.history_path.read_text()) if self.history_path.is_file() else []
            self._t0 = time.monotonic()

        def on_epoch_begin(self, epoch, logs=None):
            self._t0 = time.monotonic()

        def on_epoch_end(self, epoch, logs=None):
            logs = dict(logs or {})
            opt = self.model.optimizer
            lr = opt.learning_rate
            record = {"epoch": epoch + 1, **{k: float(v) for k, v in logs.items()}, "lr": float(np.asarray(lr))}
            if self.ema_valid is not None:
                record["ema_val_accuracy"] = self._ema_accuracy(epoch + 1)
            record["seconds"] = round(time.monotonic() - self._t0, 2)  # the weight average's validation included
            raw = float(logs.get("val_accuracy", float("nan")))
            # with a weight average, the better of the two is the epoch's candidate: the average leads while the
            # learning rate is high, the raw weights can overtake it as a cosine schedule ends (the vgg_gap_wide
            # teacher's last epoch: raw 0.873, its average 0.864)
            average = "ema_val_accuracy" in record and not raw > record["ema_val_accuracy"]
            val = record["ema_val_accuracy"] if average else raw
            self.history = [h for h in self.history if h["epoch"] < epoch + 1] + [record]
            _atomic_json(self.history_path, self.history)
            if val > self.state["best_val_accuracy"]:
                self.state.update(best_val_accuracy=float(val), best_epoch=epoch + 1, wait=0,
                                  best_weights="average" if average else "raw")
                if average:
                    os.replace(self.run_dir / "ema.weights.h5", self.run_dir / "best.weights.h5")
                else:
                    self.model.save_weights(self.run_dir / "best.weights.h5")
            else:
                self.state["wait"] += 1
            self.state["epoch"] = epoch + 1
            tmp = self.run_dir / "last.tmp.keras"
            self.model.save(tmp)
            os.replace(tmp, self.run_dir / "last.keras")
            _atomic_json(self.run_dir / "state.json", self.state)
            log.info("epoch %d: %s", epoch + 1, {k: round(v, 4) for k, v in record.items() if isinstance(v, float)})
            if self.state["wait"] >= self.patience:
                log.info("early stop: no val_accuracy gain for %d epochs", self.patience)
                self.model.stop_training = True

        def _ema_accuracy(self, epoch: int) -> float:
            """Validation accuracy of the weights' moving average, with batch-norm statistics measured for it on
            training faces (``recalibrate_batch_norm``); those weights go to ``ema.weights.h5``, and the raw
            weights and statistics are put back for training to go on."""
            variables = self.model.trainable_variables
            statistics = [v for v in self.model.non_trainable_variables if "moving" in v.path]
            current = [v.numpy() for v in variables + statistics]
            self.model.optimizer.finalize_variable_values(variables)  # the averages into the model
            for v in variables:  # copies: under JAX, evaluate() donates the model's buffers, which would
                v.assign(v.numpy())  # otherwise be the optimizer's averages themselves (deleted on a GPU)
            try:
                if self.bn_faces is not None:
                    recalibrate_batch_norm(self.model, self.bn_faces)
                self.model.save_weights(self.run_dir / "ema.weights.h5")
                result = self.model.evaluate(self.ema_valid, verbose=0, return_dict=True)
            finally:
                for v, value in zip(variables + statistics, current):
                    v.assign(value)
            log.info("epoch %d: weight average val_accuracy %.4f", epoch, result["accuracy"])
            return float(result["accuracy"])

    return RunRecorder


def train(config: TrainConfig, *, runs_dir: str | Path, verbose: int = 2) -> dict[str, Any]:
    """Train (or resume) one run; return its state (``best_val_accuracy``, ``best_epoch``, ``run_dir`` ...).

    A run directory that already holds ``state.json`` is resumed from ``last.keras``; one marked done is
    returned as it is.
    """
    import keras

    config.validate()
    spec = load_spec(config.model)
    size, channels = spec["input"]["size"], spec["input"]["channels"]
    run_dir = Path(runs_dir) / config.run_name(channels)
    run_dir.mkdir(parents=True, exist_ok=True)
    state_path = run_dir / "state.json"
    state: dict[str, Any] = (
        json.loads(state_path.read_text()) if state_path.is_file()
        else {"epoch": 0, "best_val_accuracy": -1.0, "best_epoch": 0, "wait": 0, "done": False}
    )
    if state.get("done"):
        log.info("run %s is already done", run_dir.name)
        return {**state, "run_dir": str(run_dir)}
    if state["epoch"] > 0 and (run_dir / "config.json").is_file():
        before, now, default = json.loads((run_dir / "config.json").read_text()), asdict(config), asdict(TrainConfig(data=""))
        changed = [k for k in ("teachers", "teacher_weight", "teacher_temperature", "geometric_share")
                   if before.get(k, default[k]) != now[k]]
        if changed:
            raise ConfigError(f"run {run_dir.name} was started with other options ({', '.join(changed)}): "
                              "resume it with the same ones, or give the new run another --name")
    _atomic_json(run_dir / "config.json", asdict(config))
    _atomic_json(run_dir / "spec.json", spec)

    keras.utils.set_random_seed(config.seed)
    previous_policy = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(config.precision)  # layers built or loaded below take it
    try:
        train_set, valid_set = load_splits(config, size=size, channels=channels)
        if config.teachers:
            train_set = distil_mix(train_set, _cached_teacher_targets(config, train_set, run_dir, resuming=state["epoch"] > 0), config.teacher_weight)
            keras.utils.set_random_seed(config.seed)  # loading the teachers drew random numbers: the student's don't move
        rng = np.random.default_rng(config.seed)
        target = balance_target(config.balance)
        index = balanced_index(train_set.y, target, rng) if target else None
        weights = class_weights(train_set.y) if config.balance == "weights" else None
        # tf.data under TensorFlow; a NumPy PyDataset under the other backends (a GPU machine with JAX or
        # PyTorch and no TensorFlow trains the same specs into the same run folders)
        batches = make_dataset if keras.backend.backend() == "tensorflow" else make_array_batches
        train_ds = batches(train_set, batch_size=config.batch_size, training=True, augment=config.augment,
                           weights=weights, index=index, seed=config.seed, geometric_share=config.geometric_share)
        valid_ds = batches(valid_set, batch_size=512, training=False, augment=False, weights=None)
        n_train = len(index) if index is not None else len(train_set)
        steps = int(np.ceil(n_train / config.batch_size))

        last = run_dir / "last.keras"
        if state["epoch"] > 0 and last.is_file():
            log.info("resuming %s from epoch %d", run_dir.name, state["epoch"])
            model = keras.models.load_model(last)
        else:
            model = build_from_spec(spec)
            if config.init:
                load_initial_weights(model, config.init)
            model.compile(
                optimizer=_make_optimizer(config, steps),
                loss=keras.losses.CategoricalCrossentropy(label_smoothing=config.label_smoothing),
                metrics=[keras.metrics.CategoricalAccuracy(name="accuracy")],
            )
        # the weight average's batch-norm statistics: measured on a fixed sample of the training faces
        bn_faces = train_set.x[np.random.default_rng(config.seed).permutation(len(train_set))[:BN_FACES]] if config.ema else None
        callbacks = [_recorder_class()(run_dir, state, config.patience, ema_valid=valid_ds if config.ema else None,
                                       bn_faces=bn_faces)]
        if config.schedule == "plateau":
            callbacks.append(keras.callbacks.ReduceLROnPlateau(monitor="val_accuracy", factor=0.5, patience=5, min_lr=1e-5))
        if state["epoch"] < config.epochs and state["wait"] < config.patience:
            model.fit(train_ds, validation_data=valid_ds, epochs=config.epochs, initial_epoch=state["epoch"],
                      callbacks=callbacks, verbose=verbose)
    finally:
        keras.mixed_precision.set_global_policy(previous_policy)
    state["done"] = True
    state["train_size"] = n_train
    state["train_classes"] = train_set.class_counts()
    _atomic_json(state_path, state)
    return {**state, "run_dir": str(run_dir)}


def _from_run_spec(run: Path):
    """A fresh, uncompiled model of a run's architecture (its ``spec.json``)."""
    return build_from_spec(json.loads((run / "spec.json").read_text()))


def load_best(run_dir: str | Path):
    """Rebuild a run's model from its spec and load its best weights."""
    run = Path(run_dir)
    model = _from_run_spec(run)
    model.load_weights(run / "best.weights.h5")
    return model


def load_last(run_dir: str | Path):
    """Rebuild a run's model from its spec with the weights of its last finished epoch (``last.keras``): the
    weights' moving average where the run kept one (``--ema``), with the batch-norm statistics that training
    measured (at the end of a cosine schedule the average and the raw weights agree, and so do their
    statistics). No optimizer state comes along."""
    import keras

    from .. import model_layers  # noqa: F401  (registers the bundled files' layers)

    run = Path(run_dir)
    if not (run / "last.keras").is_file():
        raise ConfigError(f"run {run.name} has no last.keras to bundle its last epoch from")
    try:
        trained = keras.models.load_model(run / "last.keras")
    except (TypeError, ValueError) as exc:  # e.g. saved under PyTorch: its optimizer class is the backend's own
        raise ConfigError(f"run {run.name}: last.keras does not load under the {keras.backend.backend()} backend "
                          f"({str(exc).splitlines()[0][:160]}); bundle its best epoch (--checkpoint best), or bundle "
                          "it under the backend it was trained with") from exc
    optimizer = getattr(trained, "optimizer", None)
    if optimizer is not None and getattr(optimizer, "use_ema", False):
        optimizer.finalize_variable_values(trained.trainable_variables)
    model = _from_run_spec(run)
    model.set_weights(trained.get_weights())
    return model
