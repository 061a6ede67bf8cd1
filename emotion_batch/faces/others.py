"""The other detectors: MTCNN (weights in the ``mtcnn`` package), OpenCV Haar cascades (``opencv-python-headless<5``),
and ``none`` for inputs that already are face crops."""

from __future__ import annotations

import numpy as np

from ..exceptions import DetectorError
from .base import Face, clip_faces, non_max_suppression, sort_faces


class WholeImageDetector:
    """``--detector none``: the whole image is one face (48x48 data sets, pre-cropped faces)."""

    name = "none"

    def detect(self, rgb: np.ndarray) -> list[Face]:
        height, width = rgb.shape[:2]
        return [Face(0.0, 0.0, float(width), float(height), 1.0)]


class MTCNNDetector:
    """MTCNN (Zhang et al. 2016) from the ``mtcnn`` package; slower, strong on small and turned faces."""

    name = "mtcnn"

    def __init__(self, *, min_score: float = 0.9, min_size: float = 16.0) -> None:
        try:
            from mtcnn import MTCNN
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise DetectorError("The mtcnn detector needs the package mtcnn (pip install mtcnn)") from exc
        # all three stages: ONet refines the boxes and gives the five landmarks (the eyes level the crop)
        self._mtcnn = MTCNN(stages="face_and_landmarks_detection")
        self.min_score, self.min_size = min_score, min_size

    def detect(self, rgb: np.ndarray) -> list[Face]:
        height, width = rgb.shape[:2]
        found = self._mtcnn.detect_faces(rgb, box_format="xywh", output_type="json")
        kept = [f for f in found if float(f["confidence"]) >= self.min_score]
        if not kept:
            return []
        boxes = np.array([[float(v) for v in f["box"]] + _mtcnn_eyes(f) for f in kept], dtype=np.float32)
        scores = np.array([float(f["confidence"]) for f in kept], dtype=np.float32)
        faces = non_max_suppression(boxes, scores, iou=0.4)  # MTCNN can return nested boxes of one face
        return sort_faces(clip_faces(faces, width, height, min_size=self.min_size))


def _mtcnn_eyes(found: dict) -> list[float]:
    """MTCNN's eye landmarks as ``[x1, y1, x2, y2]``, the image-left (the person's right) eye first."""
    points = found.get("keypoints") or {}
    right, left = points.get("right_eye"), points.get("left_eye")
    if right is None or left is None:
        return []
    # mtcnn names the eyes as seen in the image: "left_eye" is the one on the image's left
    return [float(left[0]), float(left[1]), float(right[0]), float(right[1])]


class HaarDetector:
    """OpenCV's Haar cascade ``frontalface_alt2`` (needs opencv-python-headless 4.x: 5.0 dropped cascades).

    Haar gives no probability: every face it returns has score 1.0.
    """

    name = "haar"

    def __init__(self, *, min_size: float = 24.0) -> None:
        try:
            import cv2
        except ImportError as exc:  # pragma: no cover
            raise DetectorError("The haar detector needs opencv-python-headless<5") from exc
        if not hasattr(cv2, "CascadeClassifier") or not hasattr(cv2, "data"):
            raise DetectorError(f"OpenCV {cv2.__version__} has no Haar cascades; install opencv-python-headless<5")
        self._cv2 = cv2
        self._cascade = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_alt2.xml")
        if self._cascade.empty():
            raise DetectorError("OpenCV's haarcascade_frontalface_alt2.xml could not be loaded")
        self.min_size = min_size

    def detect(self, rgb: np.ndarray) -> list[Face]:
        height, width = rgb.shape[:2]
        gray = self._cv2.cvtColor(rgb, self._cv2.COLOR_RGB2GRAY)
        gray = self._cv2.equalizeHist(gray)
        found = self._cascade.detectMultiScale(gray, scaleFactor=1.1, minNeighbors=5,
                                               minSize=(int(self.min_size), int(self.min_size)))
        faces = [Face(float(x), float(y), float(w), float(h), 1.0) for (x, y, w, h) in found]
        return sort_faces(clip_faces(faces, width, height, min_size=self.min_size))
