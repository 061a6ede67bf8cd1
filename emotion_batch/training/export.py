"""Deployment exports: a TensorFlow Serving SavedModel (``<dir>/<name>/<version>/``) and TFLite files
(float32, and dynamic-range quantized)."""

from __future__ import annotations

import contextlib
import io
import logging
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from ..exceptions import ConfigError, ModelError

FORMATS = ("savedmodel", "tflite", "tflite-quant")

log = logging.getLogger(__name__)


def export_model(model, out_dir: str | Path, *, name: str, fmt: str, version: int = 1) -> Path:
    """Write one export of ``model``; return the path written.

    ``savedmodel`` writes ``out_dir/name/version/`` with a ``serving_default`` signature that takes
    ``pixels`` (float32, 0..255, ``(n, size, size, channels)``) and returns ``probabilities`` ``(n, 7)``.
    """
    import tensorflow as tf

    if fmt not in FORMATS:
        raise ConfigError(f"format must be one of {list(FORMATS)}. Received: format={fmt!r}")
    out = Path(out_dir)
    shape = [None, *model.input_shape[1:]]
    fn = tf.function(lambda pixels: {"probabilities": model(pixels, training=False)},
                     input_signature=[tf.TensorSpec(shape, tf.float32, name="pixels")])
    if fmt == "savedmodel":
        target = out / name / str(version)
        if target.exists():
            raise ConfigError(f"That SavedModel version exists already. Received: path={str(target)!r}")
        module = tf.Module()
        module.model = model
        module.serve = fn
        tf.saved_model.save(module, str(target), signatures={"serving_default": fn})
        return target
    # from_keras_model freezes the weights into the file; from_concrete_functions([...], model) kept them as
    # resource variables that the LiteRT interpreter read uninitialised (all-NaN outputs with TF 2.21)
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if fmt == "tflite-quant":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    target = out / f"{name}{'.quant' if fmt == 'tflite-quant' else ''}.tflite"
    out.mkdir(parents=True, exist_ok=True)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):  # Keras prints its temporary SavedModel's signatures on stdout
        flat = converter.convert()
    log.debug("TFLite converter said: %s", printed.getvalue())
    target.write_bytes(flat)
    return target


def export_files(ref, out_dir: str | Path, *, formats: Sequence[str] = FORMATS,
                 version: int = 1) -> Iterator[tuple[str, Path]]:
    """Write each export of ``formats`` of a located Keras model file (``classifier.locate_model(...,
    backend="keras")``, hash-checked there) into ``out_dir``, named after the model; yield ``(format, path)`` as
    each is written. A model with a flip gate (``classifier.FlipGate``) is exported with flip averaging on every
    face (``flip_averaged``): a served file has no gate, and averaging every face is what the gate approximates."""
    from ..classifier import Classifier

    classifier = Classifier.from_file(ref)
    network = classifier.model if ref.flip_gate is None else flip_averaged(classifier.model)
    for fmt in formats:
        yield fmt, export_model(network, out_dir, name=ref.name, fmt=fmt, version=version)


def flip_averaged(model):
    """A bundled one-pass file (its network, then its ``TemperatureScaling`` if it was calibrated) rebuilt with
    flip averaging built in before the same calibration: what ``bundle --flip-tta`` without a gate would have
    written for that network."""
    import keras

    from ..model_layers import TemperatureScaling, with_flip_averaging, with_temperature

    nested = [layer for layer in model.layers if isinstance(layer, keras.Model)]
    if len(nested) > 1:
        raise ModelError(f"A gated model must hold one network (and its calibration). Received: model={model.name!r}")
    averaged = with_flip_averaging(nested[0] if nested else model)
    calibration = [layer for layer in model.layers if isinstance(layer, TemperatureScaling)]
    if not calibration:
        return averaged
    return with_temperature(averaged, calibration[0].temperature, calibration[0].bias)


def tflite_predict(path: str | Path, faces: np.ndarray, *, threads: int = 2) -> np.ndarray:
    """Probabilities from a TFLite export through the LiteRT interpreter, one batch resized to fit."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path), num_threads=threads)
    inp = interpreter.get_input_details()[0]
    interpreter.resize_tensor_input(inp["index"], list(faces.shape))
    interpreter.allocate_tensors()
    interpreter.set_tensor(inp["index"], faces.astype(np.float32))
    interpreter.invoke()
    return interpreter.get_tensor(interpreter.get_output_details()[0]["index"])


def savedmodel_predict(path: str | Path, faces: np.ndarray) -> np.ndarray:
    """Probabilities from a SavedModel export's ``serving_default`` signature (as TF Serving runs it)."""
    import tensorflow as tf

    loaded = tf.saved_model.load(str(path))
    return loaded.signatures["serving_default"](pixels=tf.constant(faces.astype(np.float32)))["probabilities"].numpy()
