"""One viewer recording -> the viewer's expression at every sampled frame of the ad, and the video's figures.

The same stages as a photo, frame by frame: the job's detector finds faces in each sampled frame,
``faces_to_tensors`` frames them by the detector's crop contract, and the classifier predicts them in
batches of ``classifier.batch_size`` faces gathered across frames. Only faces and their probabilities are
kept (a few hundred bytes a face), never frames, so memory stays flat in the video's length; the viewer's
track is picked once every frame is seen (``tracking.viewer_track``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from ..exceptions import SidecarError
from ..faces.base import Detector, Face
from ..labels import EMOTIONS
from ..preprocess import faces_to_tensors
from .decode import (
    DEFAULT_MAX_DURATION_S,
    DEFAULT_MAX_FRAME_PIXELS,
    DEFAULT_SAMPLE_FPS,
    DEFAULT_WORK_SIDE,
    open_video,
    prefetch,
)
from .sidecar import find_sidecar, read_sidecar
from .tracking import DEFAULT_LINK_IOU, DEFAULT_MAX_GAP, viewer_track

log = logging.getLogger(__name__)

#: Decoded frames waiting for the detector (a bounded queue: 4 frames of 1920x1080 are 25 MB).
DEFAULT_QUEUE_FRAMES = 4


class Predictor(Protocol):
    """What ``analyze_video`` needs of a classifier (``classifier.load_classifier`` builds one)."""

    size: int
    channels: int
    batch_size: int

    def predict(self, faces: np.ndarray) -> np.ndarray: ...


@dataclass(frozen=True)
class FrameResult:
    """The viewer's face in one sampled frame: a ``video_frames`` row.

    Attributes:
        time_ms: the frame's time in the ad, in milliseconds (recording time minus the ad's offset).
        box: ``(x, y, w, h)`` in pixels of the upright frame.
        score: the detector's confidence.
        probs: the seven probabilities, in ``EMOTIONS`` order.
        emotion: the top expression.
        faces_in_frame: every face found in the frame, the viewer's included.
    """

    time_ms: int
    box: tuple[float, float, float, float]
    score: float
    probs: tuple[float, ...]
    emotion: str
    faces_in_frame: int

    def row(self) -> dict[str, Any]:
        """The frame as a flat row named as the ``faces`` table names the same things: ``time_ms, x, y, w, h,
        detection_score, p_<emotion>..., top_emotion, faces_in_frame``."""
        x, y, w, h = self.box
        return {"time_ms": self.time_ms, "x": x, "y": y, "w": w, "h": h, "detection_score": self.score,
                **{f"p_{e}": p for e, p in zip(EMOTIONS, self.probs)},
                "top_emotion": self.emotion, "faces_in_frame": self.faces_in_frame}


@dataclass(frozen=True)
class VideoStats:
    """A recording's figures: a ``videos`` row.

    Attributes:
        status: ``ok`` (the viewer's face was seen) or ``no_face``.
        codec, width, height, rotation: as displayed (``decode.VideoInfo``).
        duration_s: the declared duration, else the time of the last decoded frame.
        fps: the recording's frame rate (None where the container does not say).
        sample_fps: the sample rate.
        offset_s: where the ad starts in the recording (the sidecar's ``ad_offset_s``; 0 without one).
        frames_decoded: frames the codec decoded.
        frames_sampled: sampled frames (from the ad's start on).
        frames_with_face: sampled frames where the viewer's face was seen.
        faces_found: every face found over the sampled frames.
        tracks: face tracks found (1 for a lone viewer who never left the picture).
        max_faces: the most faces in one sampled frame.
        seconds: wall seconds the analysis took.
    """

    status: str
    codec: str
    width: int
    height: int
    rotation: int
    duration_s: float | None
    fps: float | None
    sample_fps: float
    offset_s: float
    frames_decoded: int
    frames_sampled: int
    frames_with_face: int
    faces_found: int
    tracks: int
    max_faces: int
    seconds: float


@dataclass(frozen=True)
class VideoAnalysis:
    """What ``analyze_video`` found in one recording."""

    path: str
    stats: VideoStats
    frames: list[FrameResult] = field(default_factory=list)

    def frame_rows(self) -> list[dict[str, Any]]:
        """Every ``FrameResult.row()``, in time order."""
        return [f.row() for f in self.frames]


class _FaceLog:
    """Faces of the sampled frames and their probabilities, classified in batches across frames."""

    def __init__(self, classifier: Predictor) -> None:
        self.classifier = classifier
        self.frames: list[tuple[int, list[Face]]] = []  # (time_ms, faces in upright-frame pixels)
        self.probs: list[np.ndarray] = []  # per frame: (n, 7)
        self._pending: list[np.ndarray] = []
        self._pending_frames: list[int] = []

    def add(self, time_ms: int, faces: list[Face], tensors: np.ndarray) -> None:
        self.frames.append((time_ms, faces))
        self.probs.append(np.empty((len(faces), len(EMOTIONS)), dtype=np.float32))
        if len(faces):
            self._pending.append(tensors)
            self._pending_frames.append(len(self.frames) - 1)
            if sum(len(t) for t in self._pending) >= self.classifier.batch_size:
                self.flush()

    def flush(self) -> None:
        if not self._pending:
            return
        probs = self.classifier.predict(np.concatenate(self._pending))
        start = 0
        for position, tensors in zip(self._pending_frames, self._pending):
            self.probs[position][:] = probs[start : start + len(tensors)]
            start += len(tensors)
        self._pending, self._pending_frames = [], []


def analyze_video(path: str | Path, detector: Detector, classifier: Predictor, *,
                  fps: float = DEFAULT_SAMPLE_FPS, offset_s: float | None = None,
                  max_pixels: int = DEFAULT_MAX_FRAME_PIXELS, max_duration_s: float = DEFAULT_MAX_DURATION_S,
                  work_side: int = DEFAULT_WORK_SIDE, queue_frames: int = DEFAULT_QUEUE_FRAMES,
                  min_iou: float = DEFAULT_LINK_IOU, max_gap: int = DEFAULT_MAX_GAP, level: bool = True,
                  on_frame: Callable[[int], None] | None = None) -> VideoAnalysis:
    """Follow the viewer's expression through one recording, from the ad's start on.

    Args:
        path: the recording.
        detector: the job's detector (``faces.build_detector``); its ``name`` picks the crop contract.
        classifier: the job's classifier (``classifier.load_classifier``).
        fps: frames sampled per second of the ad.
        offset_s: where the ad starts in the recording; None reads the sidecar (``sidecar.read_sidecar``).
        max_pixels, max_duration_s: the limits beyond which a recording is ``unsupported``.
        work_side: the long side frames are searched in (boxes are reported in full-size pixels).
        queue_frames: decoded frames that may wait for the detector (decoding runs in a thread).
        min_iou, max_gap: face tracking (``tracking.link_tracks``).
        level: level tilted faces by their eyes before classifying (as for photos).
        on_frame: called with the count of frames sampled so far after each one (progress).

    Returns:
        The viewer's ``FrameResult`` per sampled frame where the viewer's face was seen, and the video's
        ``VideoStats``.

    Raises:
        VideoError: the recording cannot be used (``status`` says why: ``unreadable``, ``unsupported``).
        SidecarError: the sidecar is invalid, or its offset lies beyond the end of the recording.
    """
    started = time.perf_counter()
    name = str(path)
    sidecar = None
    if offset_s is None:
        sidecar = find_sidecar(path)
        offset_s = read_sidecar(path)
    where = str(sidecar) if sidecar is not None else name
    log_faces = _FaceLog(classifier)
    size, channels = classifier.size, classifier.channels
    with open_video(path, max_pixels=max_pixels, max_duration_s=max_duration_s) as video:
        declared = video.info.duration_s
        if declared is not None and offset_s >= declared:
            raise SidecarError(f"{where}: the ad's offset of {offset_s:g} s lies beyond the end of the recording "
                               f"({declared:.2f} s). Received: ad_offset_s={offset_s!r}")
        frames = video.sample(fps, start_s=offset_s, work_side=work_side)
        source = prefetch(frames, maxsize=queue_frames) if queue_frames else frames
        try:
            for frame in source:
                found = detector.detect(frame.rgb)
                tensors = faces_to_tensors(frame.rgb, found, detector=detector.name, size=size, channels=channels,
                                           level=level)
                faces = [f.scaled(frame.scale) for f in found] if frame.scale != 1.0 else list(found)
                log_faces.add(int(round((frame.time_s - offset_s) * 1000.0)), faces, tensors)
                if on_frame is not None:
                    on_frame(len(log_faces.frames))
        finally:  # the decoding thread stops before the file closes, even when the detector raised
            source.close()
        log_faces.flush()
        info, decoded, last = video.info, video.frames_decoded, video.last_time_s
    if not log_faces.frames:
        end = f"{last:.2f} s" if last is not None else "its start"
        raise SidecarError(f"{where}: the recording ends at {end}, before the ad's offset of {offset_s:g} s. "
                           f"Received: ad_offset_s={offset_s!r}")
    viewer = viewer_track([faces for _, faces in log_faces.frames], min_iou=min_iou, max_gap=max_gap)
    results = []
    for position, index in viewer.faces.items():
        time_ms, faces = log_faces.frames[position]
        face = faces[index]
        probs = log_faces.probs[position][index]
        results.append(FrameResult(time_ms=time_ms, box=face.box, score=face.score,
                                   probs=tuple(float(p) for p in probs), emotion=EMOTIONS[int(np.argmax(probs))],
                                   faces_in_frame=len(faces)))
    counts = [len(faces) for _, faces in log_faces.frames]
    stats = VideoStats(
        status="ok" if results else "no_face", codec=info.codec, width=info.width, height=info.height,
        rotation=info.rotation, duration_s=declared if declared is not None else last, fps=info.fps,
        sample_fps=float(fps), offset_s=float(offset_s), frames_decoded=decoded, frames_sampled=len(counts),
        frames_with_face=len(results), faces_found=sum(counts), tracks=viewer.tracks, max_faces=max(counts),
        seconds=time.perf_counter() - started,
    )
    log.debug("%s: %d frames sampled, viewer in %d, %d faces, %d tracks, %.2f s", name, stats.frames_sampled,
              stats.frames_with_face, stats.faces_found, stats.tracks, stats.seconds)
    return VideoAnalysis(path=name, stats=stats, frames=results)
