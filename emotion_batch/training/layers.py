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
