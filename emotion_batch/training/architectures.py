"""Keras architectures built from declarative JSON specs (``training/specs/*.json``).

A spec names an input, a list of blocks and a head; the softmax layer over the seven classes is added
by the builder. Block kinds: ``plain`` (layers in sequence) and ``residual`` (layers in sequence plus a
1x1 projection shortcut, added at the end). Layer types are listed in ``LAYER_TYPES``.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

from ..exceptions import ConfigError
from ..labels import NUM_CLASSES

LAYER_TYPES = ("conv", "sepconv", "bn", "relu", "maxpool", "avgpool", "dropout", "flatten", "dense", "gap")
BLOCK_KINDS = ("plain", "residual")
_SHORT = {"conv": "conv", "sepconv": "sepconv", "bn": "bn", "relu": "relu", "maxpool": "pool",
          "avgpool": "avgpool", "dropout": "drop", "flatten": "flatten", "dense": "dense", "gap": "gap"}


def spec_names() -> list[str]:
    """Names of the specs shipped with the package."""
    folder = resources.files("emotion_batch.training") / "specs"
    return sorted(p.name[: -len(".json")] for p in folder.iterdir() if p.name.endswith(".json"))


def load_spec(name_or_path: str | Path) -> dict[str, Any]:
    """Load a shipped spec by name, or any spec file by path."""
    path = Path(name_or_path)
    if path.suffix == ".json" and path.is_file():
        text = path.read_text()
    else:
        candidate = resources.files("emotion_batch.training") / "specs" / f"{name_or_path}.json"
        if not candidate.is_file():
            raise ConfigError(
                f"Unknown architecture; expected a spec file or one of {spec_names()}. "
                f"Received: model={str(name_or_path)!r}"
            )
        text = candidate.read_text()
    spec = json.loads(text)
    validate_spec(spec)
    return spec


def validate_spec(spec: dict[str, Any]) -> None:
    """Check a spec's shape before anything is built; raise ``ConfigError`` naming the bad part."""
    for key in ("name", "input", "blocks", "head"):
        if key not in spec:
            raise ConfigError(f"An architecture spec needs the key {key!r}. Received: keys={sorted(spec)}")
    size, channels = spec["input"].get("size"), spec["input"].get("channels")
    if not isinstance(size, int) or size < 16 or channels not in (1, 3):
        raise ConfigError(f"input needs size >= 16 and channels 1 or 3. Received: input={spec['input']!r}")
    for block in spec["blocks"]:
        kind = block.get("kind", "plain")
        if kind not in BLOCK_KINDS:
            raise ConfigError(f"block kind must be one of {list(BLOCK_KINDS)}. Received: kind={kind!r}")
        if kind == "residual" and "shortcut" not in block:
            raise ConfigError(f"a residual block needs a 'shortcut'. Received: block={block.get('name')!r}")
        for layer in block["layers"]:
            _check_layer(layer)
    for layer in spec["head"]:
        _check_layer(layer)


def _check_layer(layer: dict[str, Any]) -> None:
    kind = layer.get("type")
    if kind not in LAYER_TYPES:
        raise ConfigError(f"layer type must be one of {list(LAYER_TYPES)}. Received: type={kind!r}")
    if kind in ("conv", "sepconv") and not isinstance(layer.get("filters"), int):
        raise ConfigError(f"a {kind} layer needs integer 'filters'. Received: layer={layer!r}")
    if kind == "dense" and not isinstance(layer.get("units"), int):
        raise ConfigError(f"a dense layer needs integer 'units'. Received: layer={layer!r}")
    if kind == "dropout" and not 0.0 <= float(layer.get("rate", -1)) < 1.0:
        raise ConfigError(f"a dropout layer needs 0 <= rate < 1. Received: layer={layer!r}")


def _make_layer(layer: dict[str, Any], name: str, weight_decay: float):
    import keras

    reg = keras.regularizers.L2(weight_decay) if weight_decay else None
    kind = layer["type"]
    if kind == "conv":
        return keras.layers.Conv2D(
            layer["filters"], layer.get("kernel", 3), strides=layer.get("strides", 1), padding="same",
            activation=layer.get("activation"), use_bias=layer.get("bias", True), kernel_regularizer=reg,
            kernel_initializer="he_normal", name=name,
        )
    if kind == "sepconv":
        return keras.layers.SeparableConv2D(
            layer["filters"], layer.get("kernel", 3), strides=layer.get("strides", 1), padding="same",
            activation=layer.get("activation"), use_bias=layer.get("bias", False),
            pointwise_regularizer=reg, name=name,
        )
    if kind == "bn":
        return keras.layers.BatchNormalization(name=name)
    if kind == "relu":
        return keras.layers.ReLU(name=name)
    if kind == "maxpool":
        return keras.layers.MaxPooling2D(layer.get("pool", 2), strides=layer.get("strides"), padding="same", name=name)
    if kind == "avgpool":
        return keras.layers.AveragePooling2D(layer.get("pool", 2), strides=layer.get("strides"), padding="same", name=name)
    if kind == "dropout":
        return keras.layers.Dropout(float(layer["rate"]), name=name)
    if kind == "flatten":
        return keras.layers.Flatten(name=name)
    if kind == "dense":
        return keras.layers.Dense(layer["units"], activation=layer.get("activation"), kernel_regularizer=reg, name=name)
    if kind == "gap":
        return keras.layers.GlobalAveragePooling2D(name=name)
    raise ConfigError(f"layer type must be one of {list(LAYER_TYPES)}. Received: type={kind!r}")


def _apply_layers(x, layers: list[dict[str, Any]], prefix: str, weight_decay: float):
    counts: dict[str, int] = {}
    for layer in layers:
        short = _SHORT[layer["type"]]
        counts[short] = counts.get(short, 0) + 1
        x = _make_layer(layer, f"{prefix}_{short}{counts[short]}", weight_decay)(x)
    return x


def build_from_spec(spec: dict[str, Any], *, num_classes: int = NUM_CLASSES, name: str | None = None):
    """Build a Keras functional model from a spec.

    Args:
        spec: a dict as returned by ``load_spec``.
        num_classes: size of the softmax output.
        name: model name; defaults to the spec's name.

    Returns:
        An uncompiled ``keras.Model`` taking ``(size, size, channels)`` pixel values in 0..255 and
        returning class probabilities.
    """
    import keras

    validate_spec(spec)
    if num_classes < 2:
        raise ConfigError(f"num_classes must be at least 2. Received: num_classes={num_classes!r}")
    size, channels = spec["input"]["size"], spec["input"]["channels"]
    weight_decay = float(spec.get("weight_decay", 0.0))
    inputs = keras.Input(shape=(size, size, channels), name="pixels")
    x = keras.layers.Rescaling(1.0 / 255.0, name="rescale")(inputs)
    for i, block in enumerate(spec["blocks"], start=1):
        prefix = block.get("name", f"block{i}")
        if block.get("kind", "plain") == "residual":
            sc = block["shortcut"]
            shortcut = keras.layers.Conv2D(
                sc["filters"], 1, strides=sc.get("strides", 1), padding="same", use_bias=False,
                name=f"{prefix}_shortcut_conv",
            )(x)
            shortcut = keras.layers.BatchNormalization(name=f"{prefix}_shortcut_bn")(shortcut)
            x = _apply_layers(x, block["layers"], prefix, weight_decay)
            x = keras.layers.Add(name=f"{prefix}_add")([x, shortcut])
        else:
            x = _apply_layers(x, block["layers"], prefix, weight_decay)
    x = _apply_layers(x, spec["head"], "head", weight_decay)
    # float32 whatever the global policy: a softmax in bfloat16 loses the small probabilities
    outputs = keras.layers.Dense(num_classes, activation="softmax", dtype="float32", name="predictions")(x)
    return keras.Model(inputs, outputs, name=name or spec["name"])
