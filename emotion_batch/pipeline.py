"""The batch job: folders -> images -> faces -> tensors -> probabilities -> rows.

Worker processes read, hash, decode, detect and crop (each builds its detector once); the main
process classifies faces in large batches and writes images with their faces in chunked transactions,
while the workers go on decoding. Unchanged files (same size and mtime as stored) are never opened.
Viewer recordings found beside the images are analysed after them, one at a time in the main process (the
Ray engine: one per actor task), each stored in one transaction (``video/batch.py``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import logging
import os
import signal
import socket
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.exc import SQLAlchemyError

from .discover import Candidate, Walk, walk_root
from .exceptions import ConfigError, DatabaseError, EngineError, ImageError
from .faces import DETECTORS, build_detector
from .imaging import DEFAULT_MAX_PIXELS, DEFAULT_WORK_SIDE, decode_image
from .preprocess import faces_to_tensors
from .store.models import Run, utcnow
from .store.repository import (ImageRecord, ad_id_for, known_images, known_videos, mark_interrupted, touch_images,
                               write_images)
from .store.messages import db_reason, safe_url
from .store.session import init_db, run_lock
from .video.decode import DEFAULT_SAMPLE_FPS, MAX_SAMPLE_FPS

log = logging.getLogger(__name__)

#: The runners of ``RunOptions.engine``: worker processes here, or Ray Data actors on a cluster.
ENGINES = ("local", "ray")


@dataclass
class RunOptions:
    """Options of one batch run (``emotion-batch run``)."""

    root: str
    detector: str = DETECTORS[0]
    batch_size: int = 256
    workers: int | None = None  # None: one per CPU core; 0: everything in this process
    reprocess: bool = False
    chunk_images: int = 256
    max_pixels: int = DEFAULT_MAX_PIXELS
    work_side: int = DEFAULT_WORK_SIDE
    follow_symlinks: bool = False  # take image files that symbolic links point to outside ROOT
    level_eyes: bool = True  # turn each face crop so that its eyes are level (detectors that give eyes)
    min_score: float | None = None
    min_face: float | None = None  # smallest face side in pixels of the searched image; None: the detector's own
    engine: str = "local"  # local: worker processes on this machine; ray: Ray Data actors (engines/ray_engine.py)
    ray_address: str | None = None  # with engine="ray": "auto", "ray://host:10001", or None for a local Ray
    ray_gpus: float = 0.0  # with engine="ray": GPUs per actor (0: CPU actors)
    video_fps: float = DEFAULT_SAMPLE_FPS  # frames sampled per second of a viewer recording

    def validate(self) -> None:
        if self.detector not in DETECTORS:
            raise ConfigError(f"detector must be one of {list(DETECTORS)}. Received: detector={self.detector!r}")
        if self.batch_size < 1:
            raise ConfigError(f"batch_size must be positive. Received: batch_size={self.batch_size!r}")
        if self.workers is not None and self.workers < 0:
            raise ConfigError(f"workers must be 0 or more. Received: workers={self.workers!r}")
        if self.min_face is not None and not self.min_face > 0:
            raise ConfigError(f"min_face must be a positive number of pixels. Received: min_face={self.min_face!r}")
        if self.chunk_images < 1:
            raise ConfigError(f"chunk_images must be positive. Received: chunk_images={self.chunk_images!r}")
        if self.engine not in ENGINES:
            raise ConfigError(f"engine must be one of {list(ENGINES)}. Received: engine={self.engine!r}")
        if self.engine != "ray" and (self.ray_address is not None or self.ray_gpus):
            raise ConfigError(f"ray_address and ray_gpus need engine='ray'. Received: engine={self.engine!r}")
        if self.ray_gpus < 0:
            raise ConfigError(f"ray_gpus must be 0 or more. Received: ray_gpus={self.ray_gpus!r}")
        if not 0 < self.video_fps <= MAX_SAMPLE_FPS:
            raise ConfigError(f"video_fps must be above 0 and at most {MAX_SAMPLE_FPS:g}. "
                              f"Received: video_fps={self.video_fps!r}")


@dataclass
class RunSummary:
    """What one run did, counted as it goes: returned by ``run_batch``, printed by ``emotion-batch run``
    (``--json``: ``as_dict``). Images and recordings are counted apart (``videos_*``); ``failures`` names the
    first 100 files that gave no ok row, and ``ads_with_new_results`` the ads whose reports are rendered again.
    """

    run_id: int | None = None
    status: str = "running"
    images_found: int = 0
    unchanged: int = 0
    processed: int = 0
    ok: int = 0
    no_face: int = 0
    unreadable: int = 0
    unsupported: int = 0
    faces: int = 0
    videos_found: int = 0
    videos_unchanged: int = 0
    videos_processed: int = 0
    videos_ok: int = 0
    videos_no_face: int = 0
    videos_failed: int = 0  # unreadable, unsupported, bad_sidecar
    video_frames: int = 0  # video_frames rows written: sampled frames with the viewer's face
    hidden_skipped: int = 0
    non_images_skipped: int = 0
    special_skipped: int = 0  # FIFOs, sockets, devices, dangling links, links to folders
    links_skipped: int = 0  # links to image files outside ROOT (without ``follow_symlinks``)
    unreadable_folders: list[tuple[str, str]] = field(default_factory=list)
    runs_marked_interrupted: list[int] = field(default_factory=list)  # earlier runs found killed (status 'running')
    worker_deaths: int = 0  # worker processes that died (killed, or crashed in a decoder) during the run
    worker_killers: list[str] = field(default_factory=list)  # images recorded as failed because their worker died twice
    failures: list[tuple[str, str, str]] = field(default_factory=list)  # (path, status, error), first 100
    seconds: float = 0.0
    ads_with_new_results: list[tuple[str, str]] = field(default_factory=list)
    model_id: str = ""
    detector: str = ""
    device: str = ""

    @property
    def images_per_second(self) -> float:
        return self.processed / self.seconds if self.seconds > 0 else 0.0

    @property
    def faces_per_second(self) -> float:
        return self.faces / self.seconds if self.seconds > 0 else 0.0

    def as_dict(self) -> dict:
        out = dataclasses.asdict(self)
        out["images_per_second"] = round(self.images_per_second, 2)
        out["faces_per_second"] = round(self.faces_per_second, 2)
        out["seconds"] = round(self.seconds, 3)
        return out


@dataclass(frozen=True)
class Task:
    """One new or changed image to analyse: its ad's id, ROOT and the file, and what is stored of it
    (``existing_id``, ``known_sha256``: None for a new file; equal content found by the hash is only touched)."""

    ad_id: int
    root: str
    candidate: Candidate
    existing_id: int | None
    known_sha256: str | None


@dataclass
class Outcome:
    """What analysing one ``Task`` gave: its status, and for ``ok`` its boxes (original pixels) with their
    model tensors, which ``classify_outcomes`` turns into ``probs`` and drops. ``same_content`` means the file's
    hash is the stored one: nothing to write but its new size and mtime."""

    task: Task
    sha256: str | None
    status: str  # ok | no_face | unreadable | unsupported | same_content
    error: str | None = None
    width: int | None = None
    height: int | None = None
    captured_at: object = None
    boxes: list[tuple[float, float, float, float, float]] = field(default_factory=list)
    tensors: np.ndarray | None = None
    probs: np.ndarray | None = None  # (faces, 7), once classified (``classify_outcomes``)


# ---- the worker side -------------------------------------------------------------------------------


class Analyser:
    """Reads, hashes, decodes, detects and crops images; builds its detector once.

    One lives in each worker process of the local engine and in each Ray actor.

    Args:
        options: the run's options (detector, limits, eye levelling, reprocess).
        size: side of the classifier's square input.
        channels: channels of the classifier's input (1 or 3).
    """

    def __init__(self, options: RunOptions, size: int, channels: int) -> None:
        self.options = options
        self.size = size
        self.channels = channels
        self.detector = build_detector(options.detector, min_score=options.min_score, min_face=options.min_face)

    def __call__(self, task: Task) -> Outcome:
        """The outcome of one image: its faces as model tensors, or why there are none."""
        options = self.options
        cand = task.candidate
        path = Path(task.root) / cand.path
        try:
            data = path.read_bytes()
        except OSError as exc:
            return Outcome(task, None, "unreadable", f"{cand.path}: cannot read file ({exc.strerror or exc})")
        sha = hashlib.sha256(data).hexdigest()
        if task.known_sha256 == sha and not options.reprocess:
            return Outcome(task, sha, "same_content")
        try:
            decoded = decode_image(data, name=cand.path, max_pixels=options.max_pixels, work_side=options.work_side)
            del data
            faces = self.detector.detect(decoded.rgb)
            boxes = [(f.x * decoded.scale, f.y * decoded.scale, f.w * decoded.scale, f.h * decoded.scale, f.score)
                     for f in faces]
            tensors = faces_to_tensors(decoded.rgb, faces, detector=options.detector, size=self.size,
                                       channels=self.channels, level=options.level_eyes)
        except ImageError as exc:
            return Outcome(task, sha, exc.status, str(exc))
        except Exception as exc:  # one bad image must never end the batch; the row records what happened
            log.exception("unexpected error on %s", cand.path)
            return Outcome(task, sha, "unreadable", f"{cand.path}: unexpected {type(exc).__name__}: {exc}")
        status = "ok" if boxes else "no_face"
        return Outcome(task, sha, status, None if boxes else f"{cand.path}: no face found",
                       decoded.width, decoded.height, decoded.captured_at, boxes, tensors)


_WORKER: dict = {}


def _init_worker(options: RunOptions, size: int, channels: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and ends the pool
    _WORKER["analyser"] = Analyser(options, size, channels)


def analyse(task: Task) -> Outcome:
    """Read, hash, decode, detect and crop one image (in a worker, or in-process with ``workers=0``)."""
    return _WORKER["analyser"](task)


def analyse_many(tasks: list[Task]) -> list[Outcome]:
    """``analyse`` over several images in one round trip to a worker (small files cost more in IPC than in work)."""
    analyser = _WORKER["analyser"]
    return [analyser(task) for task in tasks]


#: A worker call takes images until it holds this many or this many bytes of files (one large photo
#: goes alone; 64x64 crops go 32 at a time).
CALL_IMAGES = 32
CALL_BYTES = 1 << 20


class Executor(Protocol):
    """Turns tasks into outcomes: the local worker pool, or an engine's (``engines/``).

    ``map`` may yield outcomes in any order. ``close`` ends its workers (``terminate=True`` after an error or
    Ctrl-C) and returns when they are gone. ``worker_deaths`` counts worker processes that died during ``map``
    (0 where the engine recovers on its own); ``run_batch`` reads it after ``map`` to set the run's status.

    ``classifies`` says who classifies. False: ``map`` yields tensors and ``run_batch`` classifies them in this
    process with the run's classifier, which also analyses the recordings. True: the executor runs the model
    itself; ``map`` yields outcomes with ``probs`` set wherever there are faces (``run_batch`` checks every one),
    ``map_videos(tasks) -> Iterator[(VideoTask, VideoRecord | None)]`` analyses the recordings (``video.batch``,
    one video per task) and ``device`` names where the model runs (the run summary's).
    """

    classifies: bool
    worker_deaths: int

    def map(self, tasks: Iterator[Task]) -> Iterator[Outcome]: ...

    def close(self, *, terminate: bool = False) -> None: ...


class _Executor:
    """Runs ``Analyser`` over tasks in worker processes (``workers.WorkerPool``), a few images per round trip
    (``CALL_IMAGES``, ``CALL_BYTES``), or in this process with ``workers=0``.

    A worker that dies is noticed at once: the image it held is tried once more in a fresh worker, then
    recorded as ``unreadable`` ("worker died while processing"); ``worker_deaths`` counts the deaths.

    Args:
        analyser: what each worker builds from ``(options, size, channels)`` and calls on each task
            (tests pass one that crashes on chosen files).
    """

    classifies = False  # the main process classifies, in large batches

    def __init__(self, options: RunOptions, size: int, channels: int, *, analyser=Analyser) -> None:
        from .workers import WorkerPool

        workers = options.workers if options.workers is not None else (os.cpu_count() or 1)
        self.workers = workers
        self.pool = None
        self.analyser = None
        self._start_pool = None
        if workers == 0:
            self.analyser = analyser(options, size, channels)
            signal.signal(signal.SIGINT, signal.default_int_handler)
        else:  # started at the first image: a run of recordings alone, or of unchanged files, starts no worker
            self._start_pool = lambda: WorkerPool(workers, analyser, (options, size, channels), died=_died,
                                                  weight=lambda task: task.candidate.size, call_items=CALL_IMAGES,
                                                  call_bytes=CALL_BYTES)

    @property
    def worker_deaths(self) -> int:
        return self.pool.deaths if self.pool is not None else 0

    def map(self, tasks: Iterator[Task]) -> Iterator[Outcome]:
        if self.analyser is not None:
            for task in tasks:
                yield self.analyser(task)
            return
        tasks = iter(tasks)
        first = next(tasks, None)
        if first is None:
            return
        if self.pool is None:
            self.pool = self._start_pool()
        yield from self.pool.map(itertools.chain([first], tasks))

    def close(self, *, terminate: bool = False) -> None:
        if self.pool is not None:
            self.pool.close(terminate=terminate)
            self.pool = None


#: The error of an image whose worker process died on it twice (a decoder crash, the OOM killer).
WORKER_DIED = "worker died while processing"


def _died(task: Task, how: str) -> Outcome:
    return Outcome(task, None, "unreadable", f"{task.candidate.path}: {WORKER_DIED} ({how}, twice)")


# ---- the main side ---------------------------------------------------------------------------------


def run_batch(
    session_factory: sessionmaker[Session],
    classifier,
    options: RunOptions,
    *,
    progress: Callable[[int], None] | None = None,
    on_total: Callable[[int], None] | None = None,
    executor: Callable[[], Executor] | None = None,
) -> RunSummary:
    """Process every new or changed image and recording under ``options.root`` and store the results.

    Takes the database's run lock (``RunLockedError`` when another run holds it), walks ROOT once
    (``discover.walk_root``), creates the schema on an empty database and refuses an outdated one
    (``SchemaError``: run ``emotion-batch db upgrade``), records a ``runs`` row, and commits every
    ``chunk_images`` images (each image with all its faces, atomically), so an interrupted run loses at most
    one uncommitted chunk and the next run finishes the rest.

    Args:
        session_factory: sessions on the results database (written from this process only).
        classifier: the run's classifier (``classifier.load_classifier``), called in this process; with an
            executor that classifies (``Executor.classifies``), the ``classifier.ModelFile`` it runs, read
            for its ``model_id`` alone.
        options: the run's options.
        progress: called with the number of files handled since its last call.
        on_total: called once, before any file is handled, with the number of files the walk found (images
            and recordings): the length of a progress bar.
        executor: builds what turns tasks into outcomes (default: the local worker processes of
            ``options.workers``); the Ray engine passes its own. Discovery, the incremental skip, the lock,
            the runs row and every write stay here, whatever the executor.
    """
    options.validate()
    engine = session_factory.kw["bind"]
    summary = RunSummary(detector=options.detector, model_id=classifier.model_id)
    started = time.monotonic()
    try:
        with run_lock(engine) as locked:
            walk = walk_root(options.root, follow_symlinks=options.follow_symlinks, videos=True)
            if on_total is not None:
                on_total(walk.candidates)
            init_db(engine)  # under the lock: two first runs on an empty database do not both create it
            _run_locked(session_factory, classifier, options, walk, summary, locked, started, progress, executor)
    except SQLAlchemyError as exc:  # one line for the CLI, naming the database and the cause
        raise DatabaseError(f"Writing to the database {safe_url(engine.url)} failed: {db_reason(exc)}") from exc
    return summary


def _run_locked(session_factory, classifier, options: RunOptions, walk: Walk, summary: RunSummary, locked: bool,
                started: float, progress, executor) -> None:
    """The run itself, under the lock on a database with the schema: its row, the images, its end."""
    with session_factory.begin() as session:
        run = Run(root=str(Path(options.root).resolve()), detector=options.detector, model_id=classifier.model_id,
                  host=socket.gethostname(), pid=os.getpid(), status="running", started_at=utcnow())
        session.add(run)
        session.flush()
        summary.run_id = run.id
        if locked:  # no other run can be running: rows still 'running' are runs that were killed
            summary.runs_marked_interrupted = mark_interrupted(session, noticed_by=run.id)
    if summary.runs_marked_interrupted:
        log.warning("runs %s never recorded their end (killed?): marked interrupted",
                    summary.runs_marked_interrupted)
    runner = None
    try:
        runner = executor() if executor is not None else _Executor(options, classifier.size, classifier.channels)
        summary.device = runner.device if runner.classifies else classifier.device
        _process(session_factory, classifier, options, walk, runner, summary, progress)
    except KeyboardInterrupt:
        if runner is not None:
            runner.close(terminate=True)
        _finish_run(session_factory, summary, "interrupted", "interrupted by the user", started)
        raise
    except BaseException as exc:
        if runner is not None:
            runner.close(terminate=True)
        _finish_run(session_factory, summary, "failed", f"{type(exc).__name__}: {exc}", started)
        raise
    summary.worker_deaths = runner.worker_deaths
    runner.close()
    if summary.worker_deaths:
        killers = ", ".join(summary.worker_killers) or "none"
        _finish_run(session_factory, summary, "workers_died",
                    f"{summary.worker_deaths} worker processes died; their images were retried; recorded as "
                    f"unreadable after killing a worker twice: {killers}", started)
    else:
        _finish_run(session_factory, summary, "ok", None, started)


def _finish_run(session_factory, summary: RunSummary, status: str, error: str | None, started: float) -> None:
    summary.status = status
    summary.seconds = time.monotonic() - started
    folder_errors = "; ".join(f"{p}: {e}" for p, e in summary.unreadable_folders)
    text = "; ".join(t for t in (error, folder_errors and f"unreadable folders: {folder_errors}") if t) or None
    try:
        with session_factory.begin() as session:
            session.execute(update(Run).where(Run.id == summary.run_id).values(
                status=status, finished_at=utcnow(), images_seen=summary.images_found,
                images_processed=summary.processed, faces=summary.faces, error=text))
    except SQLAlchemyError as exc:  # the database went away: the run row stays 'running'
        log.error("could not record the end of run %s: %s", summary.run_id, exc)


def _tasks(session_factory, options: RunOptions, walk: Walk, summary: RunSummary, progress,
           videos: list) -> Iterator[Task]:
    """The image tasks of the walk, ad by ad; the ads' new or changed recordings are appended to ``videos``."""
    from .video.batch import VideoTask
    from .video.sidecar import sidecar_stamp

    root = str(Path(options.root).resolve())
    for campaign, ad, found in walk.ads:
        candidates = [c for c in found if c.kind == "image"]
        recordings = [c for c in found if c.kind == "video"]
        summary.images_found += len(candidates)
        summary.videos_found += len(recordings)
        if not candidates and not recordings:
            continue
        with session_factory.begin() as session:
            ad_id = ad_id_for(session, campaign, ad)
            known = known_images(session, ad_id)
            stored_videos = known_videos(session, ad_id) if recordings else {}
        skipped = 0
        for cand in recordings:
            old = stored_videos.get(cand.path)
            stamp = sidecar_stamp(Path(root) / cand.path)
            same_sidecar = old is not None and old.sidecar_stamp == stamp
            if same_sidecar and not options.reprocess and old.size_bytes == cand.size and old.mtime_ns == cand.mtime_ns:
                summary.videos_unchanged += 1
                skipped += 1
                continue
            videos.append(VideoTask(ad_id, root, cand, old.id if old else None, old.sha256 if old else None,
                                    stamp, old is not None and not same_sidecar))
        for cand in candidates:
            old = known.get(cand.path)
            if old is not None and not options.reprocess and old.size_bytes == cand.size and old.mtime_ns == cand.mtime_ns:
                summary.unchanged += 1
                skipped += 1
                continue
            yield Task(ad_id, root, cand, old.id if old else None, old.sha256 if old else None)
        if progress and skipped:
            progress(skipped)


def _process(session_factory, classifier, options: RunOptions, walk: Walk, executor: Executor, summary: RunSummary,
             progress) -> None:
    """The heart of a run: the walk's tasks through ``executor``, their outcomes classified (here, unless the
    executor classifies) and written in chunks of ``options.chunk_images`` images or ``options.batch_size``
    faces; unchanged content only touched (size, mtime); then the recordings, one transaction each; then the
    walk's counts on ``summary``."""
    touched: list[tuple[int, int, int]] = []
    pending: list[Outcome] = []
    pending_faces = 0
    new_ads: dict[tuple[str, str], None] = {}
    videos: list = []

    def flush() -> None:
        nonlocal pending, pending_faces, touched
        if not pending and not touched:
            return
        if executor.classifies:
            _check_classified(pending, executor)
        else:
            classify_outcomes(classifier, pending)
        records = _records(pending)
        try:
            with session_factory.begin() as session:
                summary.faces += write_images(session, summary.run_id, records, model_id=classifier.model_id)
                touch_images(session, touched)
        except SQLAlchemyError as exc:
            raise DatabaseError(f"Writing results to {safe_url(session_factory.kw['bind'].url)} failed: "
                                f"{db_reason(exc)}") from exc
        for o in pending:
            new_ads[(o.task.candidate.campaign, o.task.candidate.ad)] = None
            setattr(summary, o.status, getattr(summary, o.status) + 1)
            if o.error and WORKER_DIED in o.error:
                summary.worker_killers.append(o.task.candidate.path)
            if o.status != "ok" and len(summary.failures) < 100:
                summary.failures.append((o.task.candidate.path, o.status, o.error or ""))
        summary.processed += len(pending)
        if progress:
            progress(len(pending) + len(touched))
        pending, pending_faces, touched = [], 0, []

    for outcome in executor.map(_tasks(session_factory, options, walk, summary, progress, videos)):
        if outcome.status == "same_content":
            c = outcome.task.candidate
            touched.append((outcome.task.existing_id, c.size, c.mtime_ns))
            summary.unchanged += 1
            continue
        pending.append(outcome)
        pending_faces += len(outcome.boxes)
        if pending_faces >= options.batch_size or len(pending) >= options.chunk_images:
            flush()
    flush()
    if videos:
        from .video.batch import run_videos, store_videos

        if executor.classifies:  # the executor analyses them (Ray actors); this process writes them
            changed = store_videos(session_factory, executor.map_videos(videos), summary, run_id=summary.run_id,
                                   model_id=classifier.model_id, progress=progress)
        else:  # here, with the run's classifier
            changed = run_videos(session_factory, classifier, videos, summary, run_id=summary.run_id,
                                 detector=options.detector, fps=options.video_fps, work_side=options.work_side,
                                 min_score=options.min_score, min_face=options.min_face, level=options.level_eyes,
                                 reprocess=options.reprocess, progress=progress)
        new_ads.update(dict.fromkeys(changed))  # their reports show the viewers' trace
    stats = walk.stats
    summary.hidden_skipped = stats.hidden
    summary.non_images_skipped = stats.not_image
    summary.special_skipped = stats.special
    summary.links_skipped = stats.links_outside
    summary.unreadable_folders = list(stats.unreadable_dirs)
    summary.ads_with_new_results = list(new_ads)


def classify_outcomes(classifier, outcomes: Iterable[Outcome]) -> None:
    """Set ``probs`` on every outcome with face tensors, in one batched ``predict`` call, and drop the tensors."""
    todo = [o for o in outcomes if o.tensors is not None and len(o.tensors)]
    if not todo:
        return
    probs = classifier.predict(np.concatenate([o.tensors for o in todo]))
    offset = 0
    for o in todo:
        o.probs = probs[offset : offset + len(o.tensors)]
        offset += len(o.tensors)
        o.tensors = None


def _check_classified(outcomes: list[Outcome], executor: Executor) -> None:
    """The contract of an executor that classifies: every outcome with faces comes with one row of
    probabilities per face."""
    for o in outcomes:
        if o.boxes and (o.probs is None or len(o.probs) != len(o.boxes)):
            raise EngineError(f"{type(executor).__name__} classifies, yet returned {o.task.candidate.path} "
                              f"({len(o.boxes)} faces) without one row of probabilities per face. Received: "
                              f"probs={None if o.probs is None else np.shape(o.probs)}")


def _records(outcomes: list[Outcome]) -> list[ImageRecord]:
    """The rows of classified outcomes."""
    records = []
    for o in outcomes:
        c = o.task.candidate
        records.append(ImageRecord(
            ad_id=o.task.ad_id, path=c.path, size_bytes=c.size, mtime_ns=c.mtime_ns, sha256=o.sha256,
            status=o.status, error=o.error, width=o.width, height=o.height, captured_at=o.captured_at,
            faces=o.boxes, probs=o.probs if o.boxes else None, existing_id=o.task.existing_id,
        ))
    return records
