"""Face detectors behind one small interface (``Detector.detect(rgb) -> list[Face]``)."""

from __future__ import annotations

from ..exceptions import ConfigError
from .base import Detector, Face

#: Detector names accepted by ``--detector``; the first is the default (see README for the measurements).
DETECTORS = ("blazeface", "blazeface-short", "mtcnn", "haar", "none")

__all__ = ["DETECTORS", "Detector", "Face", "build_detector"]


def build_detector(name: str, *, min_score: float | None = None) -> Detector:
    """Build a detector by name; ``min_score`` overrides the detector's default threshold."""
    if name == "blazeface" or name == "blazeface-short":
        from .blazeface import BlazeFaceDetector

        variant = "full" if name == "blazeface" else "short"
        return BlazeFaceDetector(variant, **({} if min_score is None else {"min_score": min_score}))
    if name == "mtcnn":
        from .others import MTCNNDetector

        return MTCNNDetector(**({} if min_score is None else {"min_score": min_score}))
    if name == "haar":
        from .others import HaarDetector

        return HaarDetector()
    if name == "none":
        from .others import WholeImageDetector

        return WholeImageDetector()
    raise ConfigError(f"detector must be one of {list(DETECTORS)}. Received: detector={name!r}")
