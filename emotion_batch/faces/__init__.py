"""Face detectors behind one small interface (``Detector.detect(rgb) -> list[Face]``)."""

from __future__ import annotations

from ..exceptions import ConfigError
from .base import Detector, Face

#: Detector names accepted by ``--detector``; the first is the default (see README for the measurements).
DETECTORS = ("blazeface-dual", "blazeface", "blazeface-short", "mtcnn", "haar", "none")

__all__ = ["DETECTORS", "Detector", "Face", "build_detector"]


def build_detector(name: str, *, min_score: float | None = None, min_face: float | None = None) -> Detector:
    """Build a detector by name.

    Args:
        name: one of ``DETECTORS``.
        min_score: overrides the detector's default detection threshold.
        min_face: smallest face side to report, in pixels of the searched image (default: the detector's
            own, 16 px; 24 px for ``haar``). BlazeFace and Haar also search faster for larger values:
            BlazeFace needs no finer scale where the whole image already resolves faces that large. Given
            explicitly, it also makes BlazeFace search scales fine enough for faces that small (crowds; more
            arithmetic a photo); by default BlazeFace's finer scale resolves faces of about 1/30 of the long side.
    """
    if min_face is not None and not min_face > 0:
        raise ConfigError(f"min_face must be a positive number of pixels. Received: min_face={min_face!r}")
    kwargs = {} if min_score is None else {"min_score": min_score}
    size = {} if min_face is None else {"min_size": float(min_face)}
    if name == "blazeface-dual":
        from .blazeface import DualBlazeFaceDetector

        return DualBlazeFaceDetector(**kwargs, **size)
    if name == "blazeface" or name == "blazeface-short":
        from .blazeface import BlazeFaceDetector

        variant = "full" if name == "blazeface" else "short"
        return BlazeFaceDetector(variant, **kwargs, **size)
    if name == "mtcnn":
        from .others import MTCNNDetector

        return MTCNNDetector(**kwargs, **size)
    if name == "haar":
        from .others import HaarDetector

        return HaarDetector(**size)
    if name == "none":
        from .others import WholeImageDetector

        return WholeImageDetector()
    raise ConfigError(f"detector must be one of {list(DETECTORS)}. Received: detector={name!r}")
