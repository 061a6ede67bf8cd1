"""Face crop -> model tensor. The ONLY place this happens: training and inference both call it.

A tensor is ``uint8`` of shape ``(size, size, channels)``; the model itself rescales to [0, 1]
(its first layer), so the same bytes feed Keras, TFLite and TF Serving.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image

from .exceptions import ConfigError

#: Default extra context around a detector box, as a fraction of the box side on each side.
#: FER2013 crops show the forehead and chin; detector boxes are tighter than that.
DEFAULT_MARGIN = 0.2


def square_box(
    box: Sequence[float], *, margin: float, image_width: int, image_height: int
) -> tuple[int, int, int, int]:
    """Return the integer square ``(left, top, right, bottom)`` around a box, grown by ``margin``.

    The square may extend past the image; ``face_to_tensor`` pads with edge pixels there.
    """
    x, y, w, h = (float(v) for v in box)
    if w <= 0 or h <= 0:
        raise ConfigError(f"A face box needs a positive width and height. Received: box={tuple(box)!r}")
    side = max(w, h) * (1.0 + 2.0 * margin)
    cx, cy = x + w / 2.0, y + h / 2.0
    left = int(round(cx - side / 2.0))
    top = int(round(cy - side / 2.0))
    side_i = max(1, int(round(side)))
    del image_width, image_height  # the square is not clipped: padding keeps the face centred
    return left, top, left + side_i, top + side_i


def face_to_tensor(
    image: np.ndarray,
    box: Sequence[float] | None = None,
    *,
    size: int,
    channels: int,
    margin: float = DEFAULT_MARGIN,
) -> np.ndarray:
    """Crop one face and turn it into the model's input tensor.

    Args:
        image: ``HxW`` (grayscale) or ``HxWx3`` (RGB) ``uint8`` array.
        box: ``(x, y, w, h)`` of the face in pixels, or ``None`` when the image is already a face crop.
        size: side of the square model input.
        channels: 1 for grayscale models, 3 for RGB models.
        margin: extra context around ``box`` on each side, as a fraction of the box side.

    Returns:
        ``uint8`` array of shape ``(size, size, channels)``.
    """
    if channels not in (1, 3):
        raise ConfigError(f"channels must be 1 (grayscale) or 3 (RGB). Received: channels={channels!r}")
    if size < 8:
        raise ConfigError(f"size must be at least 8 pixels. Received: size={size!r}")
    array = np.asarray(image)
    if array.dtype != np.uint8:
        raise ConfigError(f"image must be uint8. Received: dtype={array.dtype}")
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] != 3):
        raise ConfigError(f"image must be HxW or HxWx3. Received: shape={array.shape}")

    if box is not None:
        height, width = array.shape[:2]
        left, top, right, bottom = square_box(box, margin=margin, image_width=width, image_height=height)
        pad_left, pad_top = max(0, -left), max(0, -top)
        pad_right, pad_bottom = max(0, right - width), max(0, bottom - height)
        crop = array[max(0, top) : min(height, bottom), max(0, left) : min(width, right)]
        if crop.size == 0:
            raise ConfigError(f"The face box lies outside the image. Received: box={tuple(box)!r}")
        if pad_left or pad_top or pad_right or pad_bottom:
            pads = [(pad_top, pad_bottom), (pad_left, pad_right)] + ([(0, 0)] if crop.ndim == 3 else [])
            crop = np.pad(crop, pads, mode="edge")
        array = crop

    pil = Image.fromarray(np.ascontiguousarray(array))
    if channels == 1 and pil.mode != "L":
        pil = pil.convert("L")
    elif channels == 3 and pil.mode != "RGB":
        pil = pil.convert("RGB")
    if pil.size != (size, size):
        pil = pil.resize((size, size), Image.Resampling.BILINEAR)
    out = np.asarray(pil, dtype=np.uint8)
    if channels == 1:
        out = out[:, :, None]
    return out


def faces_to_batch(
    images: Sequence[np.ndarray], *, size: int, channels: int, boxes: Sequence[Sequence[float] | None] | None = None,
    margin: float = DEFAULT_MARGIN,
) -> np.ndarray:
    """Stack ``face_to_tensor`` of many faces into one ``(n, size, size, channels)`` ``uint8`` batch."""
    if boxes is None:
        boxes = [None] * len(images)
    if len(boxes) != len(images):
        raise ConfigError(f"boxes and images differ in length. Received: {len(boxes)} boxes, {len(images)} images")
    out = np.empty((len(images), size, size, channels), dtype=np.uint8)
    for i, (img, box) in enumerate(zip(images, boxes)):
        out[i] = face_to_tensor(img, box, size=size, channels=channels, margin=margin)
    return out
