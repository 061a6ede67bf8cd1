"""Reads and writes of the batch job. Every function takes a session and never commits."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from sqlalchemy import delete, insert, select, update
from sqlalchemy.orm import Session

from ..labels import EMOTIONS
from .models import Ad, Campaign, FaceRow, ImageRow, PROB_COLUMNS, utcnow


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


def write_images(session: Session, run_id: int, records: Sequence[ImageRecord], *, model_id: str) -> int:
    """Insert (or replace) images and their faces; return the number of faces written."""
    now = utcnow()
    replaced = [r for r in records if r.existing_id is not None]
    if replaced:
        ids = [r.existing_id for r in replaced]
        session.execute(delete(FaceRow).where(FaceRow.image_id.in_(ids)))
        session.execute(delete(ImageRow).where(ImageRow.id.in_(ids)))
    rows = [
        {
            "ad_id": r.ad_id, "run_id": run_id, "path": r.path, "sha256": r.sha256, "size_bytes": r.size_bytes,
            "mtime_ns": r.mtime_ns, "width": r.width, "height": r.height, "status": r.status, "error": r.error,
            "faces_count": len(r.faces), "captured_at": r.captured_at, "processed_at": now,
        }
        for r in records
    ]
    if not rows:
        return 0
    ids = session.scalars(insert(ImageRow).returning(ImageRow.id, sort_by_parameter_order=True), rows).all()
    face_rows = []
    for image_id, record in zip(ids, records):
        if not record.faces:
            continue
        probs = np.asarray(record.probs, dtype=np.float64)
        top = probs.argmax(axis=1)
        for index, ((x, y, w, h, score), p, t) in enumerate(zip(record.faces, probs, top)):
            row = {"image_id": image_id, "face_index": index, "x": float(x), "y": float(y), "w": float(w),
                   "h": float(h), "detection_score": float(score), "top_emotion": EMOTIONS[int(t)], "model_id": model_id}
            row.update({col: float(v) for col, v in zip(PROB_COLUMNS, p)})
            face_rows.append(row)
    for start in range(0, len(face_rows), 5000):
        session.execute(insert(FaceRow), face_rows[start : start + 5000])
    return len(face_rows)
