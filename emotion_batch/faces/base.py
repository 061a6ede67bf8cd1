"""The face detector interface: an RGB array in, a list of ``Face`` boxes out."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np


@dataclass(frozen=True)
class Face:
    """A face box in pixels of the image it was found in, the detector's confidence in [0, 1], and the
    centres of the two eyes where the detector gives them: ``(x1, y1, x2, y2)``, first the eye that lies
    on the image's left in an upright face (the person's right eye), so that the eye line's angle says
    how far the head is turned in the image plane (``preprocess`` levels it)."""

    x: float
    y: float
    w: float
    h: float
    score: float
    eyes: tuple[float, float, float, float] | None = None

    def scaled(self, factor: float) -> "Face":
        eyes = None if self.eyes is None else tuple(v * factor for v in self.eyes)
        return Face(self.x * factor, self.y * factor, self.w * factor, self.h * factor, self.score, eyes)

    @property
    def box(self) -> tuple[float, float, float, float]:
        return (self.x, self.y, self.w, self.h)


class Detector(Protocol):
    """Finds faces in one RGB ``uint8`` image of shape ``(H, W, 3)``."""

    name: str

    def detect(self, rgb: np.ndarray) -> list[Face]: ...


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Intersection over union of boxes ``(x, y, w, h)``: ``a`` is ``(n, 4)``, ``b`` is ``(m, 4)``."""
    ax2, ay2 = a[:, 0] + a[:, 2], a[:, 1] + a[:, 3]
    bx2, by2 = b[:, 0] + b[:, 2], b[:, 1] + b[:, 3]
    iw = np.clip(np.minimum(ax2[:, None], bx2[None]) - np.maximum(a[:, 0, None], b[None, :, 0]), 0, None)
    ih = np.clip(np.minimum(ay2[:, None], by2[None]) - np.maximum(a[:, 1, None], b[None, :, 1]), 0, None)
    inter = iw * ih
    union = (a[:, 2] * a[:, 3])[:, None] + (b[:, 2] * b[:, 3])[None] - inter
    return inter / np.maximum(union, 1e-9)


def non_max_suppression(boxes: np.ndarray, scores: np.ndarray, *, iou: float, weighted: bool = False,
                        weights: np.ndarray | None = None) -> list[Face]:
    """Greedy NMS over ``(x, y, w, h)`` boxes; ``weighted`` averages each kept box with its suppressed
    neighbours by score (MediaPipe's blending), which steadies BlazeFace boxes, or by ``weights`` where given.
    Rows of 8 values carry the eyes ``(x1, y1, x2, y2)`` after the box, blended the same way."""
    order = np.argsort(-scores)
    boxes, scores = boxes[order], scores[order]
    weights = scores if weights is None else weights[order]
    alive = np.ones(len(boxes), dtype=bool)
    faces: list[Face] = []
    for i in range(len(boxes)):
        if not alive[i]:
            continue
        overlap = iou_matrix(boxes[i : i + 1, :4], boxes[:, :4])[0]
        group = alive & (overlap >= iou)
        group[i] = True
        if weighted:
            w = weights[group]
            box = (boxes[group] * w[:, None]).sum(axis=0) / w.sum()
        else:
            box = boxes[i]
        values = [float(v) for v in box]
        eyes = tuple(values[4:8]) if len(values) >= 8 else None
        faces.append(Face(*values[:4], score=float(scores[i]), eyes=eyes))
        alive &= ~group
    return faces


def sort_faces(faces: list[Face]) -> list[Face]:
    """Order faces left to right, then top to bottom, so ``face_index`` is stable across runs."""
    return sorted(faces, key=lambda f: (round(f.x), round(f.y)))


def clip_faces(faces: list[Face], width: int, height: int, *, min_size: float) -> list[Face]:
    """Clip boxes to the image and drop those smaller than ``min_size`` pixels."""
    out = []
    for f in faces:
        x0, y0 = max(0.0, f.x), max(0.0, f.y)
        x1, y1 = min(float(width), f.x + f.w), min(float(height), f.y + f.h)
        if x1 - x0 >= min_size and y1 - y0 >= min_size:
            out.append(Face(x0, y0, x1 - x0, y1 - y0, f.score, f.eyes))
    return out
