"""Reads and writes of the batch job. Every function takes a session and never commits."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
from sqlalchemy import delete, insert, select, update
from sqlalchemy.orm import Session

from ..labels import EMOTIONS
from ..timeutil import as_utc
from .models import Ad, Campaign, FaceRow, ImageRow, PROB_COLUMNS, Run, VideoFrameRow, VideoRow, utcnow


#: Face rows per ``executemany`` call, image rows per multi-row ``INSERT`` in ``write_images``.
FACE_BATCH = 5000
IMAGE_BATCH = 500


@dataclass(frozen=True)
class KnownImage:
    id: int
    size_bytes: int
    mtime_ns: int
    sha256: str | None


@dataclass
class ImageRecord:
    """What the job learnt of one image, ready to be written.

    ``faces`` holds ``(x, y, w, h, detection_score)`` tuples in original-image pixels and ``probs`` the
    matching ``(n, 7)`` probabilities.
    """

    ad_id: int
    path: str
    size_bytes: int
    mtime_ns: int
    sha256: str | None
    status: str
    error: str | None = None
    width: int | None = None
    height: int | None = None
    captured_at: dt.datetime | None = None
    faces: Sequence[tuple[float, float, float, float, float]] = ()
    probs: np.ndarray | None = None
    existing_id: int | None = None


def ad_id_for(session: Session, campaign: str, ad: str) -> int:
    """Id of the ad row, creating its campaign and ad rows when missing."""
    campaign_id = session.execute(select(Campaign.id).where(Campaign.name == campaign)).scalar()
    if campaign_id is None:
        campaign_id = session.execute(insert(Campaign).values(name=campaign, created_at=utcnow()).returning(Campaign.id)).scalar_one()
    ad_id = session.execute(select(Ad.id).where(Ad.campaign_id == campaign_id, Ad.name == ad)).scalar()
    if ad_id is None:
        ad_id = session.execute(
            insert(Ad).values(campaign_id=campaign_id, name=ad, created_at=utcnow()).returning(Ad.id)
        ).scalar_one()
    return int(ad_id)


def mark_interrupted(session: Session, *, noticed_by: int, now: dt.datetime | None = None) -> list[int]:
    """Mark the runs still ``running`` as ``interrupted``: call it holding the run lock, when no other run can be
    running, so these were killed (or lost their database) before recording their end. Their ``error`` says
    when and by which run this was noticed; ``finished_at`` stays empty (when they stopped is not known).

    Returns:
        The ids of the runs marked.
    """
    now = now or utcnow()
    ids = list(session.scalars(select(Run.id).where(Run.status == "running", Run.id != noticed_by).order_by(Run.id)))
    if ids:
        session.execute(update(Run).where(Run.id.in_(ids)).values(
            status="interrupted",
            error=f"the run ended without recording its end (killed, or the database went away); noticed by run "
                  f"{noticed_by} at {now.astimezone(dt.timezone.utc).isoformat(timespec='seconds')}"))
    return ids


def known_images(session: Session, ad_id: int) -> dict[str, KnownImage]:
    """The images already stored for one ad, by path."""
    rows = session.execute(
        select(ImageRow.path, ImageRow.id, ImageRow.size_bytes, ImageRow.mtime_ns, ImageRow.sha256).where(
            ImageRow.ad_id == ad_id
        )
    )
    return {path: KnownImage(id_, size, mtime, sha) for path, id_, size, mtime, sha in rows}


def touch_images(session: Session, changes: Iterable[tuple[int, int, int]]) -> None:
    """Record a new size/mtime for images whose content hash did not change: ``(id, size, mtime_ns)``."""
    for image_id, size, mtime in changes:
        session.execute(update(ImageRow).where(ImageRow.id == image_id).values(size_bytes=size, mtime_ns=mtime))


#: Columns of ``images`` and ``faces`` that ``write_images`` fills, in the order of its rows.
IMAGE_COLUMNS = ("ad_id", "run_id", "path", "sha256", "size_bytes", "mtime_ns", "width", "height", "status", "error",
                 "faces_count", "captured_at", "processed_at")
FACE_COLUMNS = ("image_id", "face_index", "x", "y", "w", "h", "detection_score", *PROB_COLUMNS, "top_emotion",
                "model_id")


def _image_tuples(records: Sequence[ImageRecord], run_id: int | None, now: dt.datetime) -> list[tuple]:
    return [(r.ad_id, run_id, r.path, r.sha256, r.size_bytes, r.mtime_ns, r.width, r.height, r.status, r.error,
             len(r.faces), as_utc(r.captured_at), now) for r in records]


def _face_tuples(records: Sequence[ImageRecord], image_ids: Sequence[int], model_id: str) -> Iterator[tuple]:
    for record, image_id in zip(records, image_ids):
        if not record.faces:
            continue
        probs = np.asarray(record.probs, dtype=np.float64)
        tops = [EMOTIONS[int(t)] for t in probs.argmax(axis=1)]
        for index, ((x, y, w, h, score), p, top) in enumerate(zip(record.faces, probs.tolist(), tops)):
            yield (image_id, index, float(x), float(y), float(w), float(h), float(score), *p, top, model_id)


def _write_core(session: Session, rows: list[tuple], records, model_id: str) -> int:
    images = ImageRow.__table__
    returned = session.execute(
        insert(images).returning(images.c.id, images.c.ad_id, images.c.path)
        .execution_options(insertmanyvalues_page_size=IMAGE_BATCH),
        [dict(zip(IMAGE_COLUMNS, row)) for row in rows],
    )
    id_of = {(ad_id, path): image_id for image_id, ad_id, path in returned}
    face_rows = [dict(zip(FACE_COLUMNS, row)) for row in
                 _face_tuples(records, [id_of[(r.ad_id, r.path)] for r in records], model_id)]
    for start in range(0, len(face_rows), FACE_BATCH):
        session.execute(insert(FaceRow.__table__), face_rows[start : start + FACE_BATCH])
    return len(face_rows)


def _write_copy(session: Session, rows: list[tuple], records, model_id: str) -> int:
    """PostgreSQL with psycopg 3: ids drawn from the sequence, then ``COPY`` of images and faces."""
    cursor = session.connection().connection.driver_connection.cursor()
    try:
        cursor.execute("SELECT nextval(pg_get_serial_sequence('images', 'id')) FROM generate_series(1, %s)",
                       (len(rows),))
        ids = [row[0] for row in cursor.fetchall()]
        with cursor.copy(f"COPY images (id, {', '.join(IMAGE_COLUMNS)}) FROM STDIN") as copy:
            for image_id, row in zip(ids, rows):
                copy.write_row((image_id, *row))
        faces = 0
        with cursor.copy(f"COPY faces ({', '.join(FACE_COLUMNS)}) FROM STDIN") as copy:
            for row in _face_tuples(records, ids, model_id):
                copy.write_row(row)
                faces += 1
    finally:
        cursor.close()
    return faces


def write_images(session: Session, run_id: int | None, records: Sequence[ImageRecord], *, model_id: str) -> int:
    """Insert (or replace) images and their faces; return the number of faces written.

    Bulk writes: on PostgreSQL through psycopg 3, ``COPY`` (image ids drawn from their sequence first);
    elsewhere Core multi-row ``INSERT ... RETURNING`` for the images (ids matched back by the unique
    ``(ad_id, path)``) and ``executemany`` batches of ``FACE_BATCH`` faces.
    """
    now = utcnow()
    replaced = [r for r in records if r.existing_id is not None]
    if replaced:
        ids = [r.existing_id for r in replaced]
        session.execute(delete(FaceRow).where(FaceRow.image_id.in_(ids)))
        session.execute(delete(ImageRow).where(ImageRow.id.in_(ids)))
    if not records:
        return 0
    rows = _image_tuples(records, run_id, now)
    connection = session.connection()
    if connection.dialect.name == "postgresql" and connection.dialect.driver == "psycopg":
        return _write_copy(session, rows, records, model_id)
    return _write_core(session, rows, records, model_id)


# ---- viewer videos ---------------------------------------------------------------------------------

#: Columns of ``videos`` that a ``VideoRecord`` may set besides its identity (``video.analysis.VideoStats``).
VIDEO_FIGURES = ("codec", "width", "height", "rotation", "duration_s", "fps", "sample_fps", "offset_s",
                 "frames_sampled", "frames_with_face", "faces_found", "tracks", "max_faces")
#: Columns of ``video_frames`` a frame row carries (``video.analysis.FrameResult.row()``), without the ids.
VIDEO_FRAME_COLUMNS = ("time_ms", "x", "y", "w", "h", "detection_score", *PROB_COLUMNS, "top_emotion",
                       "faces_in_frame")


@dataclass(frozen=True)
class KnownVideo:
    id: int
    size_bytes: int
    mtime_ns: int
    sha256: str | None
    sidecar_stamp: str | None = None


@dataclass
class VideoRecord:
    """What the job learnt of one recording, ready to be written: its identity, ``status`` and ``error``,
    its figures (names of ``VIDEO_FIGURES``) and the viewer's frames (rows with ``VIDEO_FRAME_COLUMNS``)."""

    ad_id: int
    path: str
    size_bytes: int
    mtime_ns: int
    sha256: str | None
    status: str
    sample_fps: float
    error: str | None = None
    sidecar_stamp: str | None = None
    figures: dict = field(default_factory=dict)
    frames: Sequence[dict] = ()
    existing_id: int | None = None


def known_videos(session: Session, ad_id: int) -> dict[str, KnownVideo]:
    """The videos already stored for one ad, by path."""
    rows = session.execute(select(VideoRow.path, VideoRow.id, VideoRow.size_bytes, VideoRow.mtime_ns,
                                  VideoRow.sha256, VideoRow.sidecar_stamp).where(VideoRow.ad_id == ad_id))
    return {path: KnownVideo(id_, size, mtime, sha, stamp) for path, id_, size, mtime, sha, stamp in rows}


def touch_video(session: Session, video_id: int, size: int, mtime_ns: int) -> None:
    """Record a new size/mtime for a video whose content hash did not change."""
    session.execute(update(VideoRow).where(VideoRow.id == video_id).values(size_bytes=size, mtime_ns=mtime_ns))


def write_video(session: Session, run_id: int | None, record: VideoRecord, *, model_id: str) -> int:
    """Insert (or replace, with its frames) one video and the viewer's frames; return the frames written.

    The caller runs it in one transaction per video, so a video is stored whole or not at all.
    """
    if record.existing_id is not None:
        session.execute(delete(VideoFrameRow).where(VideoFrameRow.video_id == record.existing_id))
        session.execute(delete(VideoRow).where(VideoRow.id == record.existing_id))
    figures = {k: v for k, v in record.figures.items() if k in VIDEO_FIGURES}
    figures["sample_fps"] = record.sample_fps
    video_id = session.execute(insert(VideoRow).values(
        ad_id=record.ad_id, run_id=run_id, path=record.path, sha256=record.sha256, size_bytes=record.size_bytes,
        mtime_ns=record.mtime_ns, sidecar_stamp=record.sidecar_stamp, status=record.status, error=record.error,
        model_id=model_id,
        processed_at=utcnow(), **figures,
    ).returning(VideoRow.id)).scalar_one()
    rows = [{"video_id": video_id, "model_id": model_id, **{k: frame[k] for k in VIDEO_FRAME_COLUMNS}}
            for frame in record.frames]
    for start in range(0, len(rows), FACE_BATCH):
        session.execute(insert(VideoFrameRow.__table__), rows[start : start + FACE_BATCH])
    return len(rows)
