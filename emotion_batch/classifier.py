"""The expression classifier: load a Keras model checked against its recorded hash, predict in batches.

TensorFlow is imported only when a classifier is built (never at import time), and uses a GPU
automatically where one is visible.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .assets import asset_dir
from .exceptions import ConfigError, ModelError
from .labels import EMOTIONS

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class ModelInfo:
    """A model file and what the manifest records of it."""

    name: str
    path: Path
    sha256: str | None
    size: int
    channels: int
    card: Path | None = None

    @property
    def model_id(self) -> str:
        digest = self.sha256 or sha256_file(self.path)
        return f"{self.name}@{digest[:12]}"


def bundled_models() -> dict:
    """The manifest of the models shipped in ``models/``."""
    path = asset_dir("models") / MANIFEST
    if not path.is_file():
        raise ModelError(f"No model manifest in {str(path.parent)!r}")
    return json.loads(path.read_text())


def resolve_model(model: str | None = None, *, sha256: str | None = None) -> ModelInfo:
    """Find a model: ``None`` gives the bundled default, a name gives a bundled model, a path any file.

    A file given by path is checked against ``sha256`` when that is given; its input shape is read from
    the model itself when it is loaded.
    """
    if model is None or not (model.endswith(".keras") or Path(model).is_file()):
        manifest = bundled_models()
        name = model or manifest["default"]
        entries = manifest["models"]
        if name not in entries:
            raise ConfigError(f"Unknown bundled model; expected one of {sorted(entries)}. Received: model={name!r}")
        entry = entries[name]
        folder = asset_dir("models")
        card = folder / entry["card"] if entry.get("card") else None
        return ModelInfo(name=name, path=folder / entry["file"], sha256=entry["sha256"],
                         size=entry["input"]["size"], channels=entry["input"]["channels"], card=card)
    path = Path(model)
    if not path.is_file():
        raise ModelError(f"Model file not found. Received: model={model!r}")
    return ModelInfo(name=path.stem, path=path, sha256=sha256, size=0, channels=0)


def verify_model(model: str | None = None, *, sha256: str | None = None) -> tuple[ModelInfo, str]:
    """Find a model as ``resolve_model`` does and check its file against the recorded sha256.

    Returns:
        ``(info, actual_sha256)``; the model id written with every face is ``f"{info.name}@{actual[:12]}"``.

    Raises:
        ModelError: the file is missing or its hash differs from the recorded one.
    """
    info = resolve_model(model, sha256=sha256)
    if not info.path.is_file():
        raise ModelError(f"Model file is missing. Received: path={str(info.path)!r}")
    actual = sha256_file(info.path)
    if info.sha256 is not None and actual != info.sha256:
        raise ModelError(
            f"Model file does not match its recorded sha256 (corrupt or replaced). "
            f"Received: path={str(info.path)!r}, sha256={actual}, expected={info.sha256}"
        )
    return info, actual


class Classifier:
    """Predicts the seven class probabilities of batches of face tensors.

    Build it once per job with ``Classifier.load`` and pass it down.
    """

    def __init__(self, model, *, model_id: str, batch_size: int = 256) -> None:
        import tensorflow as tf

        if batch_size < 1:
            raise ConfigError(f"batch_size must be positive. Received: batch_size={batch_size!r}")
        shape = model.input_shape
        if len(shape) != 4 or shape[1] != shape[2] or shape[3] not in (1, 3):
            raise ModelError(f"The model must take square 1- or 3-channel images. Received: input_shape={shape}")
        if model.output_shape[-1] != len(EMOTIONS):
            raise ModelError(f"The model must output {len(EMOTIONS)} classes. Received: output_shape={model.output_shape}")
        self.model = model
        self.model_id = model_id
        self.size = int(shape[1])
        self.channels = int(shape[3])
        self.batch_size = batch_size
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
        info, actual = verify_model(model, sha256=sha256)
        import keras
        import tensorflow as tf

        for gpu in tf.config.list_physical_devices("GPU"):
            try:
                tf.config.experimental.set_memory_growth(gpu, True)
            except RuntimeError:  # already initialised
                pass
        try:
            net = keras.models.load_model(info.path, compile=False)
        except (OSError, ValueError) as exc:
            raise ModelError(f"Model file could not be loaded ({exc}). Received: path={str(info.path)!r}") from exc
        return cls(net, model_id=f"{info.name}@{actual[:12]}", batch_size=batch_size)

    def predict(self, faces: np.ndarray) -> np.ndarray:
        """Probabilities ``(n, 7)`` for ``uint8`` tensors ``(n, size, size, channels)``, in ``batch_size`` chunks."""
        faces = np.asarray(faces)
        if faces.ndim != 4 or faces.shape[1:] != (self.size, self.size, self.channels):
            raise ConfigError(
                f"faces must have shape (n, {self.size}, {self.size}, {self.channels}). Received: shape={faces.shape}"
            )
        out = np.empty((faces.shape[0], len(EMOTIONS)), dtype=np.float32)
        for start in range(0, faces.shape[0], self.batch_size):
            chunk = faces[start : start + self.batch_size].astype(np.float32)
            out[start : start + chunk.shape[0]] = self._predict(chunk).numpy()
        return out
