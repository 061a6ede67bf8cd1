"""Face crop -> model tensor. The ONLY place this happens: training and inference both call it.

A tensor is ``uint8`` of shape ``(size, size, channels)``; the model itself rescales to [0, 1]
(its first layer), so the same bytes feed Keras, TFLite and TF Serving.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image

from .exceptions import ConfigError

#: Old default extra context around a detector box (a fraction of the box side on each side), kept for
#: ``face_to_tensor(..., margin=...)`` callers; the job and the API crop by the calibrated contract below.
DEFAULT_MARGIN = 0.2


@dataclass(frozen=True)
class CropContract:
    """Where a detector's box lies inside the frame the model was trained on (FER2013's 48x48 framing).

    With ``b = sqrt(w * h)`` the box side and ``(bx, by)`` its centre, the frame is the square of side
    ``scale * b`` centred at ``(bx + dx * b, by + dy * b)``; when the face is levelled, the offset turns
    with it. Fitted per detector by ``benchmarks/crop_calibration.py`` (FER2013 Training faces pasted
    into photos at known places).
    """

    scale: float
    dx: float = 0.0
    dy: float = 0.0


#: The fitted contracts (``python benchmarks/crop_calibration.py``; README, "The crop").
CROP_CONTRACTS: dict[str, CropContract] = {
    # medians over 600 faces x 2 backgrounds (scene, plain); FER2013 frames are 1.08-1.19 boxes wide, a
    # little above the box's centre for BlazeFace (its boxes reach lower, to the chin)
    "blazeface": CropContract(1.152, 0.005, -0.043),
    "blazeface-dual": CropContract(1.152, 0.005, -0.043),  # both models, boxes in the full-range geometry
    "blazeface-short": CropContract(1.189, 0.001, -0.095),
    "mtcnn": CropContract(1.111, 0.007, -0.006),
    "haar": CropContract(1.078, -0.003, 0.006),
}
#: For a detector without a fitted contract (a plug-in): the old 20 % margin on each side.
FALLBACK_CONTRACT = CropContract(1.0 + 2.0 * DEFAULT_MARGIN)
#: Faces tilted less than this (degrees) are cropped without turning: a turn costs a resampling.
MIN_LEVEL_ANGLE = 1.0


def crop_contract(detector: str) -> CropContract:
    """The crop contract of a detector by name (``FALLBACK_CONTRACT`` for one that was never fitted)."""
    return CROP_CONTRACTS.get(detector, FALLBACK_CONTRACT)


def eye_angle(eyes: Sequence[float] | None) -> float:
    """Angle of the eye line in degrees, positive when the face is turned clockwise in the image (y down);
    0 without eyes."""
    if eyes is None:
        return 0.0
    x1, y1, x2, y2 = (float(v) for v in eyes)
    if x1 == x2 and y1 == y2:
        return 0.0
    return float(np.degrees(np.arctan2(y2 - y1, x2 - x1)))


def face_frame(face, contract: CropContract, *, level: bool = True) -> tuple[float, float, float, float]:
    """The frame ``(cx, cy, side, angle)`` to crop for a detected face (anything with ``x, y, w, h`` and
    ``eyes``): its centre and side in image pixels, and the angle in degrees to turn it by so that the
    eyes are level (0 when ``level`` is off or the face has no eyes)."""
    w, h = float(face.w), float(face.h)
    if w <= 0 or h <= 0:
        raise ConfigError(f"A face box needs a positive width and height. Received: box={(face.x, face.y, w, h)!r}")
    b = float(np.sqrt(w * h))
    angle = eye_angle(getattr(face, "eyes", None)) if level else 0.0
    theta = np.radians(angle)
    # the offset is along the face's own axes: turned with the face
    ox = contract.dx * b * np.cos(theta) - contract.dy * b * np.sin(theta)
    oy = contract.dx * b * np.sin(theta) + contract.dy * b * np.cos(theta)
    return float(face.x) + w / 2.0 + ox, float(face.y) + h / 2.0 + oy, contract.scale * b, angle


def crop_frame(image: np.ndarray, frame: tuple[float, float, float, float], *, size: int, channels: int) -> np.ndarray:
    """Cut a frame ``(cx, cy, side, angle)`` out of an image as the model's ``(size, size, channels)`` input.

    Beyond the image's edges the edge pixels are repeated (as ``face_to_tensor`` always did). A frame
    turned by ``angle`` is cut from a region around it, brought to at most 4x the output size (an
    antialiased resize), turned about its centre so that the eyes are level, then resized to ``size``.
    """
    _check_shape(size, channels)
    array = _as_image_array(image)
    cx, cy, side, angle = (float(v) for v in frame)
    if side <= 0:
        raise ConfigError(f"A frame needs a positive side. Received: frame={tuple(frame)!r}")
    turn = abs(angle) >= MIN_LEVEL_ANGLE
    theta = np.radians(angle)
    half = side / 2.0 * ((abs(np.cos(theta)) + abs(np.sin(theta))) if turn else 1.0)
    left, top = int(round(cx - half)), int(round(cy - half))
    extent = max(1, int(round(2 * half)))
    region = _cut(array, left, top, extent)
    pil = Image.fromarray(np.ascontiguousarray(region))
    pil = pil.convert("L") if channels == 1 and pil.mode != "L" else pil
    pil = pil.convert("RGB") if channels == 3 and pil.mode != "RGB" else pil
    if turn:
        limit = 4 * size * extent / side  # the region at which the frame is 4x the output size
        if extent > limit:
            pil = pil.resize((int(round(limit)),) * 2, Image.Resampling.BILINEAR)
        k = pil.width / extent
        centre = ((cx - left) * k, (cy - top) * k)
        # PIL turns counter-clockwise for a positive angle: that undoes a clockwise tilt of the eyes
        pil = pil.rotate(angle, Image.Resampling.BILINEAR, center=centre)
        s = side * k
        pil = pil.crop((int(round(centre[0] - s / 2)), int(round(centre[1] - s / 2)),
                        int(round(centre[0] - s / 2)) + max(1, int(round(s))),
                        int(round(centre[1] - s / 2)) + max(1, int(round(s)))))
    if pil.size != (size, size):
        pil = pil.resize((size, size), Image.Resampling.BILINEAR)
    out = np.asarray(pil, dtype=np.uint8)
    return out[:, :, None] if channels == 1 else out


def faces_to_tensors(image: np.ndarray, faces: Sequence, *, detector: str, size: int, channels: int,
                     level: bool = True) -> np.ndarray:
    """The model inputs of every face found in an image, ``(n, size, size, channels)`` ``uint8``: what the
    batch job, the Ray engine and the API all feed the classifier.

    ``detector`` names the detector that found the faces: its crop contract frames them; ``none`` means
    the image is already a face crop (the 48x48 data sets), used whole, exactly as in training.
    """
    out = np.empty((len(faces), size, size, channels), dtype=np.uint8)
    if detector == "none":
        for i in range(len(faces)):
            out[i] = face_to_tensor(image, None, size=size, channels=channels)
        return out
    contract = crop_contract(detector)
    for i, face in enumerate(faces):
        out[i] = crop_frame(image, face_frame(face, contract, level=level), size=size, channels=channels)
    return out


def _check_shape(size: int, channels: int) -> None:
    if channels not in (1, 3):
        raise ConfigError(f"channels must be 1 (grayscale) or 3 (RGB). Received: channels={channels!r}")
    if size < 8:
        raise ConfigError(f"size must be at least 8 pixels. Received: size={size!r}")


def _as_image_array(image: np.ndarray) -> np.ndarray:
    array = np.asarray(image)
    if array.dtype != np.uint8:
        raise ConfigError(f"image must be uint8. Received: dtype={array.dtype}")
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] != 3):
        raise ConfigError(f"image must be HxW or HxWx3. Received: shape={array.shape}")
    return array


def _cut(array: np.ndarray, left: int, top: int, extent: int) -> np.ndarray:
    """The square ``[left, left + extent) x [top, top + extent)`` of an image, edge pixels repeated beyond it."""
    height, width = array.shape[:2]
    right, bottom = left + extent, top + extent
    crop = array[max(0, top) : min(height, bottom), max(0, left) : min(width, right)]
    if crop.size == 0:
        raise ConfigError(f"The face frame lies outside the image. Received: frame at ({left}, {top}), side {extent}")
    pads = [(max(0, -top), max(0, bottom - height)), (max(0, -left), max(0, right - width))]
    if any(p for pair in pads for p in pair):
        crop = np.pad(crop, pads + ([(0, 0)] if crop.ndim == 3 else []), mode="edge")
    return crop


def face_to_tensor(
    image: np.ndarray,
    box: Sequence[float] | None = None,
    *,
    size: int,
    channels: int,
    margin: float = DEFAULT_MARGIN,
) -> np.ndarray:
    """Turn a face crop (or one box of an image, grown by a plain margin) into the model's input tensor.

    Training calls it with ``box=None`` on FER2013's crops, as ``faces_to_tensors`` does for
    ``--detector none``; detected faces go through ``faces_to_tensors`` and their detector's contract.

    Args:
        image: ``HxW`` (grayscale) or ``HxWx3`` (RGB) ``uint8`` array.
        box: ``(x, y, w, h)`` of the face in pixels, or ``None`` when the image is already a face crop.
        size: side of the square model input.
        channels: 1 for grayscale models, 3 for RGB models.
        margin: extra context around ``box`` on each side, as a fraction of the box's longer side.

    Returns:
        ``uint8`` array of shape ``(size, size, channels)``.
    """
    _check_shape(size, channels)
    array = _as_image_array(image)
    if box is not None:
        x, y, w, h = (float(v) for v in box)
        if w <= 0 or h <= 0:
            raise ConfigError(f"A face box needs a positive width and height. Received: box={tuple(box)!r}")
        return crop_frame(array, (x + w / 2.0, y + h / 2.0, max(w, h) * (1.0 + 2.0 * margin), 0.0),
                          size=size, channels=channels)
    pil = Image.fromarray(np.ascontiguousarray(array))
    if channels == 1 and pil.mode != "L":
        pil = pil.convert("L")
    elif channels == 3 and pil.mode != "RGB":
        pil = pil.convert("RGB")
    if pil.size != (size, size):
        pil = pil.resize((size, size), Image.Resampling.BILINEAR)
    out = np.asarray(pil, dtype=np.uint8)
    return out[:, :, None] if channels == 1 else out
