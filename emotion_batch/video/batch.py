"""The batch job's video stage: every new or changed recording of a run -> a ``videos`` row and its
``video_frames``, one transaction per video.

Recordings are analysed after the run's images, one video per task (``VideoAnalyser``): by the local
engine in its main process, one at a time, decoding in a thread ahead of the detector
(``analysis.analyze_video``) while the run's classifier predicts the faces of many frames per call; by
the Ray engine in its actors. Either way the driver writes the results (``store_videos``). A recording's rows are written only once it is analysed whole, in one transaction
that also removes the rows of its previous version, so a run killed mid-video loses that video alone and
the next run analyses it again, without duplicates. An unchanged recording (same size and mtime as
stored, and the same sidecar) is never opened; one whose content hash did not change only has its size and mtime
updated; a changed sidecar redoes its recording.
Bad input is a recorded status (``decode.VIDEO_STATUSES``) with an error naming the file, never a crash.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..classifier import sha256_file
from ..discover import Candidate
from ..exceptions import ConfigError, VideoError
from ..faces import build_detector
from ..faces.base import Detector
from ..store.repository import VideoRecord, touch_video, write_video
from .decode import VIDEO_STATUSES
from .analysis import analyze_video

log = logging.getLogger(__name__)

#: The smallest face side searched for in recordings unless ``--min-face-size`` says otherwise: a webcam
#: viewer's face is large (README "Viewer videos"), and larger faces let BlazeFace skip its finer scale.
VIDEO_MIN_FACE = 64.0
#: Statuses counted as failed in a run's summary.
FAILED_VIDEO_STATUSES = tuple(s for s in VIDEO_STATUSES if s not in ("ok", "no_face"))


@dataclass(frozen=True)
class VideoTask:
    """One recording a run analyses: its ad, where it is, and what is stored of it (if anything)."""

    ad_id: int
    root: str
    candidate: Candidate
    existing_id: int | None
    known_sha256: str | None
    sidecar_stamp: str | None = None  # the sidecars now (``sidecar.sidecar_stamp``)
    sidecar_changed: bool = False  # they differ from those the stored rows were made with


def video_detector(detector: str, *, min_score: float | None = None, min_face: float | None = None) -> Detector:
    """The run's detector for recordings: ``min_face`` is ``VIDEO_MIN_FACE`` unless given."""
    return build_detector(detector, min_score=min_score, min_face=min_face if min_face is not None else VIDEO_MIN_FACE)


def _relative(message: str, root: str) -> str:
    """The message with ROOT's absolute prefix removed, so that it names the file as the row's path does."""
    return message.replace(str(Path(root)) + os.sep, "")


def analyse_video_task(task: VideoTask, detector: Detector, classifier: Any, *, fps: float, work_side: int,
                       level: bool = True, reprocess: bool = False) -> VideoRecord | None:
    """What one recording gives: a ``VideoRecord`` to write, or None when its content is the one stored.

    Raises:
        ConfigError: PyAV is not installed (the run cannot read any video).
    """
    cand = task.candidate
    path = Path(task.root) / cand.path

    def record(status: str, error: str | None, sha: str | None, **kwargs: Any) -> VideoRecord:
        return VideoRecord(ad_id=task.ad_id, path=cand.path, size_bytes=cand.size, mtime_ns=cand.mtime_ns, sha256=sha,
                           status=status, sample_fps=float(fps), error=error, existing_id=task.existing_id,
                           sidecar_stamp=task.sidecar_stamp, **kwargs)

    try:
        sha = sha256_file(path)  # in 1 MiB blocks: a recording is never read whole
    except OSError as exc:
        return record("unreadable", f"{cand.path}: cannot read file ({exc.strerror or exc})", None)
    if task.known_sha256 == sha and not task.sidecar_changed and not reprocess:
        return None
    try:
        result = analyze_video(path, detector, classifier, fps=fps, work_side=work_side, level=level)
    except VideoError as exc:  # SidecarError included: status bad_sidecar
        return record(exc.status, _relative(str(exc), task.root), sha)
    except ConfigError:
        raise
    except Exception as exc:  # one bad recording must never end the batch; the row records what happened
        log.exception("unexpected error on %s", cand.path)
        return record("unreadable", f"{cand.path}: unexpected {type(exc).__name__}: {exc}", sha)
    stats = result.stats
    error = None if stats.status == "ok" else f"{cand.path}: no face in {stats.frames_sampled} sampled frames"
    return record(stats.status, error, sha, figures=dataclasses.asdict(stats), frames=result.frame_rows())


class VideoAnalyser:
    """Analyses recordings with one detector (``video_detector``) and one classifier, built once: what each
    engine runs per video (the local engine in its main process, the Ray engine in its actors).

    Args:
        classifier: the run's classifier (``classifier.load_classifier``).
        detector: the detector's name; ``min_score``, ``min_face`` as for ``video_detector``.
        fps, work_side, level, reprocess: as for ``analyse_video_task``.
    """

    def __init__(self, classifier: Any, *, detector: str, fps: float, work_side: int, min_score: float | None = None,
                 min_face: float | None = None, level: bool = True, reprocess: bool = False) -> None:
        self.classifier = classifier
        self.detector = video_detector(detector, min_score=min_score, min_face=min_face)
        self.fps, self.work_side, self.level, self.reprocess = fps, work_side, level, reprocess

    def __call__(self, task: VideoTask) -> VideoRecord | None:
        return analyse_video_task(task, self.detector, self.classifier, fps=self.fps, work_side=self.work_side,
                                  level=self.level, reprocess=self.reprocess)


def store_videos(session_factory, results: Iterable[tuple[VideoTask, VideoRecord | None]], summary, *,
                 run_id: int | None, model_id: str, progress: Callable[[int], None] | None = None
                 ) -> list[tuple[str, str]]:
    """Write each analysed recording in its own transaction (``None``: only its new size and mtime) as the
    results come, and count them on ``summary`` (``pipeline.RunSummary``: ``videos_processed``,
    ``videos_ok`` ..., ``video_frames``, ``failures``).

    Returns:
        The ``(campaign, ad)`` pairs whose videos were stored anew.
    """
    changed: dict[tuple[str, str], None] = {}
    for task, record in results:
        cand = task.candidate
        with session_factory.begin() as session:
            if record is None:
                touch_video(session, task.existing_id, cand.size, cand.mtime_ns)
            else:
                summary.video_frames += write_video(session, run_id, record, model_id=model_id)
        if record is None:
            summary.videos_unchanged += 1
        else:
            summary.videos_processed += 1
            if record.status in FAILED_VIDEO_STATUSES:
                summary.videos_failed += 1
            elif record.status in ("ok", "no_face"):
                setattr(summary, f"videos_{record.status}", getattr(summary, f"videos_{record.status}") + 1)
            else:
                raise ConfigError(f"status must be one of {['ok', 'no_face', *FAILED_VIDEO_STATUSES]}. "
                                  f"Received: status={record.status!r}")
            if record.status != "ok" and len(summary.failures) < 100:
                summary.failures.append((cand.path, record.status, record.error or ""))
            changed[(cand.campaign, cand.ad)] = None
            log.info("%s: %s, %d frames with the viewer's face", cand.path, record.status, len(record.frames))
        if progress:
            progress(1)
    return list(changed)


def run_videos(session_factory, classifier, tasks: Sequence[VideoTask], summary, *, run_id: int | None,
               detector: str, fps: float, work_side: int, min_score: float | None = None,
               min_face: float | None = None, level: bool = True, reprocess: bool = False,
               progress: Callable[[int], None] | None = None) -> list[tuple[str, str]]:
    """Analyse every task in this process, one after the other, and store each (``store_videos``).

    Returns:
        The ``(campaign, ad)`` pairs whose videos were stored anew.
    """
    if not tasks:
        return []
    analyser = VideoAnalyser(classifier, detector=detector, fps=fps, work_side=work_side, min_score=min_score,
                             min_face=min_face, level=level, reprocess=reprocess)
    return store_videos(session_factory, ((task, analyser(task)) for task in tasks), summary, run_id=run_id,
                        model_id=classifier.model_id, progress=progress)
