"""The expression classifier: load a model checked against its recorded hash, predict in batches.

Two backends behind one interface (``predict``, ``size``, ``channels``, ``model_id``, ``device``):
``keras`` runs the ``.keras`` file with TensorFlow, on a GPU automatically where one is visible;
``litert`` runs the model's dynamic-range quantized ``.tflite`` file with the LiteRT interpreter on the
CPU (XNNPACK's int8 kernels, several times faster there, and no TensorFlow import). ``auto`` (the
default) takes LiteRT on machines without a GPU when the model ships such a file. Neither backend's
framework is imported at import time.

A bundled model may carry a flip gate (``FlipGate``, from its manifest entry): both backends then mirror
only the faces whose top probability is below the gate's threshold and average those faces with their
mirror images, which gives nearly all of flip averaging's accuracy at a fraction of its arithmetic.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np

from .assets import asset_dir
from .exceptions import ConfigError, ModelError
from .labels import EMOTIONS
from .native import quiet_native_stderr

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


BACKENDS = ("auto", "keras", "litert")


@dataclass(frozen=True)
class FlipGate:
    """Flip averaging for the uncertain faces only: a face whose top probability (from the file, one pass) is
    below ``below`` is classified again mirrored, and its answer becomes the file's calibration applied to the
    mean of the two passes' probabilities before calibration, exactly what a file with flip averaging built in
    (``model_layers.with_flip_averaging`` then ``with_temperature``) answers for it. Confident faces keep
    the one pass's answer. Read from a bundled model's manifest entry (``flip_gate``), whichever way its file is
    named (by the model's name, or by a path to the file or to a copy of it: the entry whose file has the same
    sha256), so that one model id always means one way of answering.

    Attributes:
        below: the threshold on the one pass's top probability (a face is mirrored when its top probability is
            strictly below it: 1 mirrors every face short of certain, a value above 1 every face).
        temperature: the temperature built into the file (1 for a file without calibration).
        bias: the per-class log-odds bias built into the file, if any.
    """

    below: float
    temperature: float = 1.0
    bias: tuple[float, ...] | None = None

    @classmethod
    def from_entry(cls, entry: Mapping) -> "FlipGate | None":
        """The gate of a manifest entry (``flip_gate``: ``below``, and the file's exact ``temperature`` and
        ``bias``); None for an entry without one."""
        gate = entry.get("flip_gate")
        if gate is None:
            return None
        try:
            below, temperature, bias = float(gate["below"]), float(gate.get("temperature", 1.0)), gate.get("bias")
            bias = None if bias is None else tuple(float(b) for b in bias)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ModelError(f"The manifest's flip_gate is malformed ({exc!r}). Received: flip_gate={gate!r}") from exc
        if not (below > 0 and temperature > 0) or (bias is not None and len(bias) != len(EMOTIONS)):
            raise ModelError(f"The manifest's flip_gate needs below > 0, temperature > 0 and {len(EMOTIONS)} biases. "
                             f"Received: flip_gate={gate!r}")
        return cls(below=below, temperature=temperature, bias=bias)

    def as_entry(self) -> dict:
        """What ``from_entry`` reads back (full precision: the inverse must match the file's own numbers)."""
        return {"below": self.below, "temperature": self.temperature,
                "bias": None if self.bias is None else list(self.bias)}

    def uncertain(self, probs: np.ndarray) -> np.ndarray:
        """The rows of one pass's probabilities ``(n, 7)`` whose faces are classified again mirrored."""
        return np.flatnonzero(probs.max(axis=1) < self.below)

    def combine(self, probs: np.ndarray, mirrored: np.ndarray) -> np.ndarray:
        """The answers for faces whose file outputs are ``probs`` and whose mirror images' are ``mirrored``:
        both taken back through the file's calibration (``softmax(T * (log q - bias))``, its inverse),
        averaged, and calibrated again."""
        from .training.calibration import apply_temperature

        t = self.temperature
        back = None if self.bias is None else -t * np.asarray(self.bias, dtype=np.float64)
        mean = (apply_temperature(probs, 1.0 / t, back) + apply_temperature(mirrored, 1.0 / t, back)) / 2.0
        return apply_temperature(mean, t, self.bias).astype(np.float32)


@dataclass(frozen=True)
class ModelFile:
    """Which file classifies, on which backend, with which hash: the model of a run, resolved once
    (``locate_model``) and passed down. Later layers read it and decide nothing again; the Ray engine ships
    it to its actors, which check the hash on their node (``verify``) before loading it.

    Attributes:
        name: the model's name (the manifest's, or the file's stem).
        path: the absolute path of the ``.keras`` or ``.tflite`` file the backend runs.
        backend: ``keras`` (TensorFlow, a GPU where one is visible) or ``litert`` (the LiteRT interpreter, CPU).
        sha256: the file's actual sha256 (equal to the recorded one where there is one).
        card: the bundled model's card (Markdown); None for a file given by path.
        flip_gate: the bundled model's ``FlipGate``, if it has one; None for a file given by path.
    """

    name: str
    path: Path
    backend: str
    sha256: str
    card: Path | None = None
    flip_gate: FlipGate | None = None

    @property
    def model_id(self) -> str:
        """The id written with every face: ``<name>@<first 12 hex digits of the file's sha256>``."""
        return f"{self.name}@{self.sha256[:12]}"

    def verify(self) -> "ModelFile":
        """This description, after checking that the file at ``path`` here still has its sha256 (a Ray actor's
        node may hold another file at the same path).

        Raises:
            ModelError: the file is missing or its hash differs.
        """
        _check_file(self.path, self.sha256)
        return self


def bundled_models() -> dict:
    """The manifest of the models shipped in ``models/``."""
    path = asset_dir("models") / MANIFEST
    if not path.is_file():
        raise ModelError(f"No model manifest in {str(path.parent)!r}")
    return json.loads(path.read_text())


def manifest_entry(model_id: str, manifest: Mapping | None) -> tuple[Mapping, Mapping] | None:
    """The manifest entry of a model id (``<name>@<sha256 prefix>``) and the metrics measured for that very
    file: the entry itself for its ``.keras`` file, its ``litert`` part for its quantized file; None for a
    name the manifest does not hold or a digest that matches neither file (another or an older model)."""
    name, _, digest = model_id.partition("@")
    entries = manifest.get("models") if isinstance(manifest, Mapping) else None
    entry = entries.get(name) if isinstance(entries, Mapping) else None
    if not isinstance(entry, Mapping) or not digest:
        return None
    litert = entry.get("litert")
    if isinstance(litert, Mapping) and str(litert.get("sha256") or "").startswith(digest):
        return entry, litert
    if str(entry.get("sha256") or "").startswith(digest):
        return entry, entry
    return None


class _Files(NamedTuple):
    name: str
    files: dict[str, tuple[Path, str | None]]
    card: Path | None
    flip_gate: FlipGate | None


def _model_files(model: str | None, sha256: str | None) -> _Files:
    """A model's name, its files by backend (``keras``, ``litert``: the path and the recorded sha256, if any),
    its card and its flip gate: ``None`` gives the bundled default, a name a bundled model, a path that one
    file (checked against ``sha256`` when given; a ``.tflite`` file is LiteRT's, any other Keras')."""
    if model is None or not (model.endswith((".keras", ".tflite")) or Path(model).is_file()):
        manifest = bundled_models()
        name = model or manifest["default"]
        entries = manifest["models"]
        if name not in entries:
            raise ConfigError(f"Unknown bundled model; expected one of {sorted(entries)}. Received: model={name!r}")
        entry = entries[name]
        folder = asset_dir("models")
        files = {"keras": (folder / entry["file"], entry["sha256"])}
        litert = entry.get("litert") or {}
        if litert.get("file"):
            files["litert"] = (folder / litert["file"], litert.get("sha256"))
        return _Files(name, files, folder / entry["card"] if entry.get("card") else None, FlipGate.from_entry(entry))
    path = Path(model)
    if not path.is_file():
        raise ModelError(f"Model file not found. Received: model={model!r}")
    return _Files(path.stem, {"litert" if path.suffix == ".tflite" else "keras": (path, sha256)}, None, None)


def model_backends(model: str | None = None) -> tuple[str, ...]:
    """The backends a model has a file for: ``keras`` and/or ``litert`` (a bundled model's, or a file's by its
    suffix)."""
    return tuple(_model_files(model, None).files)


def gpu_visible() -> bool:
    """Whether an NVIDIA GPU is there for TensorFlow, judged without importing it (device nodes, and
    ``CUDA_VISIBLE_DEVICES`` not set to hide them)."""
    if os.environ.get("CUDA_VISIBLE_DEVICES", None) in ("", "-1"):
        return False
    return any(Path("/dev").glob("nvidia[0-9]*"))


def choose_backend(available: Collection[str], backend: str = "auto", *, gpu: bool | None = None,
                   model: str | None = None) -> str:
    """The backend a model runs on, given the backends it has a file for (``model_backends``): ``auto`` takes
    LiteRT where the model has a LiteRT file and the classifier has no GPU, TensorFlow/Keras otherwise; a
    ``.tflite`` file runs on LiteRT only. The one place the backend is decided.

    Args:
        available: the backends the model has a file for.
        backend: ``auto``, ``keras`` or ``litert``.
        gpu: whether the classifier runs with a GPU (Ray actors given a GPU share); None: whether this
            machine shows one (``gpu_visible``).
        model: the model as named, for messages.
    """
    if backend == "auto":
        if "keras" not in available:
            return "litert"
        if "litert" in available and not (gpu_visible() if gpu is None else gpu):
            return "litert"
        return "keras"
    if backend == "keras":
        if "keras" not in available:
            raise ConfigError(f"A .tflite file runs on the litert backend only. Received: model={model!r}, backend='keras'")
        return "keras"
    if backend == "litert":
        if "litert" not in available:
            raise ConfigError("backend='litert' needs a bundled model with a LiteRT file or a .tflite path. "
                              f"Received: model={model!r}, backend='litert'")
        return "litert"
    raise ConfigError(f"backend must be one of {list(BACKENDS)}. Received: backend={backend!r}")


def _check_file(path: Path, expected: str | None) -> str:
    """The sha256 of a model file, checked against ``expected`` where there is one.

    Raises:
        ModelError: the file is missing or its hash differs from ``expected``.
    """
    if not path.is_file():
        raise ModelError(f"Model file is missing. Received: path={str(path)!r}")
    actual = sha256_file(path)
    if expected is not None and actual != expected:
        raise ModelError(
            f"Model file does not match its recorded sha256 (corrupt or replaced). "
            f"Received: path={str(path)!r}, sha256={actual}, expected={expected}"
        )
    return actual


def locate_model(model: str | None = None, *, sha256: str | None = None, backend: str = "auto",
                 gpu: bool | None = None) -> ModelFile:
    """Resolve a run's model once: find its files (``None``: the bundled default; a name: a bundled model; a
    path: any file), choose the backend (``choose_backend``, with ``gpu``) and check that file's sha256.

    Raises:
        ConfigError: an unknown model or backend, or a backend the model has no file for.
        ModelError: the file is missing or its hash differs from the recorded one (or from ``sha256``).
    """
    name, files, card, gate = _model_files(model, sha256)
    chosen = choose_backend(files, backend, gpu=gpu, model=model or name)
    path, expected = files[chosen]
    actual = _check_file(path, expected)
    if gate is None and card is None:  # a file given by path: a bundled model's file keeps its gate
        gate = _bundled_gate(actual)
    return ModelFile(name=name, path=path.resolve(), backend=chosen, sha256=actual, card=card, flip_gate=gate)


def _bundled_gate(sha256: str) -> FlipGate | None:
    """The flip gate of the bundled model one of whose files has this sha256 (None for any other file, or
    without a readable manifest)."""
    try:
        manifest = bundled_models()
    except (ModelError, ConfigError, OSError, ValueError):
        return None
    for name in manifest.get("models", {}):
        found = manifest_entry(f"{name}@{sha256}", manifest)  # either of its files
        if found is not None:
            return FlipGate.from_entry(found[0])
    return None


def load_classifier(model: str | None = None, *, sha256: str | None = None, batch_size: int = 256,
                    backend: str = "auto", threads: int | None = None):
    """Build the classifier of a job: ``locate_model`` then ``open_classifier``."""
    return open_classifier(locate_model(model, sha256=sha256, backend=backend), batch_size=batch_size,
                           threads=threads)


def open_classifier(ref: ModelFile, *, batch_size: int = 256, threads: int | None = None):
    """The classifier of a located model file: a ``Classifier`` (Keras) or a ``LiteRTClassifier``, both with the
    same ``predict``, ``size``, ``channels``, ``model_id`` (the file's) and ``device``, and the model's flip gate.
    ``threads`` applies to LiteRT (default: one per core)."""
    if ref.backend == "litert":
        return LiteRTClassifier(ref.path, model_id=ref.model_id, batch_size=batch_size, threads=threads,
                                flip_gate=ref.flip_gate)
    if ref.backend == "keras":
        return Classifier.from_file(ref, batch_size=batch_size)
    raise ConfigError(f"backend must be 'keras' or 'litert'. Received: backend={ref.backend!r}")


_COUNTER = threading.Lock()


class _BatchPredictor:
    """The shape checks, the batch loop and the flip gate that every backend shares; a backend implements
    ``_run``. ``mirrored`` counts the faces the gate has classified a second time."""

    size: int
    channels: int
    batch_size: int
    flip_gate: FlipGate | None = None
    mirrored: int = 0

    @staticmethod
    def _check(shape: tuple, classes: int, batch_size: int) -> tuple[int, int]:
        """Validate a model's input shape ``(n, size, size, channels)`` and class count; return size, channels."""
        if batch_size < 1:
            raise ConfigError(f"batch_size must be positive. Received: batch_size={batch_size!r}")
        if len(shape) != 4 or shape[1] != shape[2] or not shape[1] or shape[3] not in (1, 3):
            raise ModelError(f"The model must take square 1- or 3-channel images. Received: input_shape={shape}")
        if classes != len(EMOTIONS):
            raise ModelError(f"The model must output {len(EMOTIONS)} classes. Received: classes={classes}")
        return int(shape[1]), int(shape[3])

    def _run(self, chunk: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def predict(self, faces: np.ndarray) -> np.ndarray:
        """Probabilities ``(n, 7)`` for ``uint8`` tensors ``(n, size, size, channels)``, in ``batch_size`` chunks
        (with a flip gate, the uncertain faces then again mirrored: ``FlipGate``)."""
        faces = np.asarray(faces)
        if faces.ndim != 4 or faces.shape[1:] != (self.size, self.size, self.channels):
            raise ConfigError(
                f"faces must have shape (n, {self.size}, {self.size}, {self.channels}). Received: shape={faces.shape}"
            )
        out = self._passes(faces)
        if self.flip_gate is not None:
            rows = self.flip_gate.uncertain(out)
            if rows.size:
                out[rows] = self.flip_gate.combine(out[rows], self._passes(faces[rows, :, ::-1]))
                with _COUNTER:  # the API calls predict from several threads
                    self.mirrored += int(rows.size)
        return out

    def _passes(self, faces: np.ndarray) -> np.ndarray:
        out = np.empty((faces.shape[0], len(EMOTIONS)), dtype=np.float32)
        for start in range(0, faces.shape[0], self.batch_size):
            chunk = faces[start : start + self.batch_size].astype(np.float32)
            out[start : start + chunk.shape[0]] = self._run(chunk)
        return out


class Classifier(_BatchPredictor):
    """Predicts the seven class probabilities of batches of face tensors with a Keras model (TensorFlow;
    a GPU where one is visible).

    Build it once per job (``load_classifier``, or ``Classifier.load`` for the Keras backend) and pass it down.
    """

    backend = "keras"

    def __init__(self, model, *, model_id: str, batch_size: int = 256, flip_gate: FlipGate | None = None) -> None:
        import tensorflow as tf

        self.size, self.channels = self._check(tuple(model.input_shape), int(model.output_shape[-1]), batch_size)
        self.model = model
        self.model_id = model_id
        self.batch_size = batch_size
        self.flip_gate = flip_gate
        self._predict = tf.function(
            lambda x: model(x, training=False),
            input_signature=[tf.TensorSpec([None, self.size, self.size, self.channels], tf.float32)],
            reduce_retracing=True,
        )
        self.device = "GPU" if tf.config.list_logical_devices("GPU") else "CPU"

    @classmethod
    def load(cls, model: str | None = None, *, sha256: str | None = None, batch_size: int = 256) -> "Classifier":
        """Load a bundled model by name (default: the manifest's default) or a ``.keras`` file by path,
        after checking the file's sha256 against the recorded one."""
        return cls.from_file(locate_model(model, sha256=sha256, backend="keras"), batch_size=batch_size)

    @classmethod
    def from_file(cls, ref: ModelFile, *, batch_size: int = 256) -> "Classifier":
        """Load a ``.keras`` file that ``locate_model`` checked."""
        import keras
        import tensorflow as tf

        from . import model_layers  # noqa: F401  (registers the custom layers bundled models hold)

        for gpu in tf.config.list_physical_devices("GPU"):
            try:
                tf.config.experimental.set_memory_growth(gpu, True)
            except RuntimeError:  # already initialised
                pass
        try:
            net = keras.models.load_model(ref.path, compile=False)
        except (OSError, ValueError) as exc:
            raise ModelError(f"Model file could not be loaded ({exc}). Received: path={str(ref.path)!r}") from exc
        return cls(net, model_id=ref.model_id, batch_size=batch_size, flip_gate=ref.flip_gate)

    def _run(self, chunk: np.ndarray) -> np.ndarray:
        return self._predict(chunk).numpy()


class LiteRTClassifier(_BatchPredictor):
    """Predicts with a ``.tflite`` file through the LiteRT interpreter (XNNPACK), without TensorFlow.

    The bundled models' quantized files have int8 weights; XNNPACK quantizes activations per face, so a
    face's probabilities do not depend on the other faces of its batch. Resizing an interpreter makes
    XNNPACK set the whole graph up again (a profile of the job showed a quarter of the main process in
    it, since every flush ends with a batch of another size), so a batch is padded to the next power of
    two (at most ``batch_size``) and each such size keeps an interpreter of its own: at most
    log2(batch_size) + 1 of them, each set up once. One thread at a time (a lock).

    A model call takes at most ``MAX_ROWS`` faces (larger batches are cut): each interpreter holds the
    activations of its rows, so the largest one sets the classifier's memory (at 256 rows about 150 MiB
    more than at 64), and on this 2-core CPU 64 faces a call ran as fast as 256 (1,421 against 1,220
    faces/s, ``benchmarks/classify_worker.py``, 8,000 crops, idle). It also keeps the memory of a short
    viewer video (50 faces) and of a long one alike.
    """

    backend = "litert"
    device = "CPU"
    MAX_ROWS = 64

    def __init__(self, path: str | Path, *, model_id: str, batch_size: int = 256, threads: int | None = None,
                 flip_gate: FlipGate | None = None) -> None:
        if threads is not None and threads < 1:
            raise ConfigError(f"threads must be 1 or more. Received: threads={threads!r}")
        self._path = str(path)
        self._threads = threads or os.cpu_count() or 1
        first = self._interpreter()
        inp, out = first.get_input_details()[0], first.get_output_details()[0]
        shape = tuple(int(v) for v in inp["shape"])
        self.size, self.channels = self._check(shape, int(out["shape"][-1]), batch_size)
        self._input, self._output = inp["index"], out["index"]
        self._by_rows = {1: first}
        self.model_id = model_id
        self.batch_size = batch_size
        self.flip_gate = flip_gate
        self._lock = threading.Lock()

    def _interpreter(self, *, resize_to: tuple[int, ...] | None = None):
        from ai_edge_litert.interpreter import Interpreter

        try:
            interpreter = Interpreter(model_path=self._path, num_threads=self._threads)
            if resize_to is not None:
                interpreter.resize_tensor_input(self._input, list(resize_to))
            with quiet_native_stderr():  # "INFO: Created TensorFlow Lite XNNPACK delegate for CPU."
                interpreter.allocate_tensors()
        except (RuntimeError, ValueError) as exc:
            raise ModelError(f"Model file could not be loaded ({exc}). Received: path={self._path!r}") from exc
        return interpreter

    def _run(self, chunk: np.ndarray) -> np.ndarray:
        n = chunk.shape[0]  # at most batch_size: predict cuts the faces into such chunks
        if n > self.MAX_ROWS:
            return np.concatenate([self._run(chunk[i : i + self.MAX_ROWS]) for i in range(0, n, self.MAX_ROWS)])
        rows = min(1 << (n - 1).bit_length(), self.batch_size, self.MAX_ROWS)
        if rows != n:
            chunk = np.concatenate([chunk, np.zeros((rows - n, *chunk.shape[1:]), chunk.dtype)])
        with self._lock:
            interpreter = self._by_rows.get(rows)
            if interpreter is None:
                interpreter = self._by_rows[rows] = self._interpreter(resize_to=chunk.shape)
            interpreter.set_tensor(self._input, chunk)
            interpreter.invoke()
            return interpreter.get_tensor(self._output)[:n].copy()
