"""Custom Keras layers of the bundled models, registered so that ``.keras`` files that hold them load.

Imported only where Keras already is (building, bundling, loading a model): it imports Keras at its top.
"""

from __future__ import annotations

import keras


@keras.saving.register_keras_serializable(package="emotion_batch")
class HorizontalFlip(keras.layers.Layer):
    """Mirrors a batch of images left to right (``(n, height, width, channels)``)."""

    def call(self, inputs):
        return keras.ops.flip(inputs, axis=2)

    def compute_output_shape(self, input_shape):
        return input_shape


def with_flip_averaging(model: keras.Model) -> keras.Model:
    """A model that returns the mean of ``model``'s probabilities for each face and its mirror image
    (test-time flip augmentation built into the one file the job, the API and the exports run).

    Args:
        model: a classifier taking ``(size, size, channels)`` faces and returning probabilities.

    Returns:
        A functional model with the same input and output shapes, named ``<model>_flipavg``.
    """
    inputs = keras.Input(shape=model.input_shape[1:], name="pixels")
    mirrored = HorizontalFlip(name="tta_flip")(inputs)
    outputs = keras.layers.Average(name="tta_average")([model(inputs), model(mirrored)])
    return keras.Model(inputs, outputs, name=f"{model.name}_flipavg")


@keras.saving.register_keras_serializable(package="emotion_batch")
class TemperatureScaling(keras.layers.Layer):
    """Probabilities in, calibrated probabilities out: ``softmax(log(p) / temperature + bias)`` (see
    ``training.calibration``). Without ``bias`` the most probable class never changes; a per-class ``bias``
    (log-odds added to each class) moves the answers to another labelling convention, such as the FER+
    annotators' majority."""

    def __init__(self, temperature: float = 1.0, bias=None, **kwargs) -> None:
        super().__init__(**kwargs)
        if not temperature > 0:
            raise ValueError(f"temperature must be positive. Received: temperature={temperature!r}")
        self.temperature = float(temperature)
        self.bias = None if bias is None else [float(b) for b in bias]

    def call(self, inputs):
        logits = keras.ops.log(keras.ops.maximum(keras.ops.cast(inputs, "float32"), 1e-12)) / self.temperature
        if self.bias is not None:
            logits = logits + keras.ops.convert_to_tensor(self.bias, dtype="float32")
        return keras.ops.softmax(logits, axis=-1)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "temperature": self.temperature,
                **({"bias": self.bias} if self.bias is not None else {})}


def with_temperature(model: keras.Model, temperature: float, bias=None) -> keras.Model:
    """``model`` followed by ``TemperatureScaling(temperature, bias)``: one file whose probabilities are
    calibrated, for the job, the API and every export alike. Named ``<model>_t``."""
    inputs = keras.Input(shape=model.input_shape[1:], name="pixels")
    outputs = TemperatureScaling(temperature, bias, name="calibration", dtype="float32")(model(inputs))
    return keras.Model(inputs, outputs, name=f"{model.name}_t")
