"""ORM models of the results database (SQLAlchemy 2.x, typed declarative).

Analysts should not query these tables directly but the views ``face_results`` and ``image_results``
(``sql/views.sql``), whose columns later schema changes keep.
"""

from __future__ import annotations

import datetime as dt
from typing import Optional

from sqlalchemy import (
    BigInteger,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    Index,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

from ..labels import EMOTIONS
from ..timeutil import as_utc, utcnow

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

#: Values of ``images.status``.
IMAGE_STATUSES = ("ok", "no_face", "unreadable", "unsupported")
#: Values of ``runs.status``: ``workers_died`` is a finished run during which worker processes died (the
#: images they held were retried; ``error`` names those recorded as failed); ``interrupted`` is also set by
#: the next run on rows of runs that were killed and so never finished.
RUN_STATUSES = ("running", "ok", "workers_died", "failed", "interrupted")
#: Probability columns of ``faces``, in ``EMOTIONS`` order.
PROB_COLUMNS = tuple(f"p_{name}" for name in EMOTIONS)


class UTCDateTime(TypeDecorator):
    """A timezone-aware timestamp stored in UTC: ``TIMESTAMP WITH TIME ZONE`` on PostgreSQL, UTC text on SQLite.

    Aware values are converted to UTC before they are written (SQLite would otherwise keep their local
    wall time), naive values are taken as UTC, and every value read back is aware and in UTC.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        return as_utc(value)

    def process_result_value(self, value, dialect):
        return as_utc(value)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Run(Base):
    """One invocation of ``emotion-batch run``."""

    __tablename__ = "runs"
    __table_args__ = (Index("ix_runs_started_at", "started_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    started_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    finished_at: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime())
    status: Mapped[str] = mapped_column(String(16), default="running")
    root: Mapped[str] = mapped_column(Text)
    detector: Mapped[str] = mapped_column(String(32))
    model_id: Mapped[str] = mapped_column(String(128))
    host: Mapped[str] = mapped_column(String(255), default="")
    pid: Mapped[int] = mapped_column(Integer, default=0)
    images_seen: Mapped[int] = mapped_column(Integer, default=0)
    images_processed: Mapped[int] = mapped_column(Integer, default=0)
    faces: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[Optional[str]] = mapped_column(Text)


class Campaign(Base):
    __tablename__ = "campaigns"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(512), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)

    ads: Mapped[list["Ad"]] = relationship(back_populates="campaign", cascade="all, delete-orphan")


class Ad(Base):
    __tablename__ = "ads"
    __table_args__ = (UniqueConstraint("campaign_id", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(512))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)

    campaign: Mapped[Campaign] = relationship(back_populates="ads")


class ImageRow(Base):
    """One image file: where it is, what it was, and what came of it."""

    __tablename__ = "images"
    __table_args__ = (UniqueConstraint("ad_id", "path"), Index("ix_images_status", "status"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ad_id: Mapped[int] = mapped_column(ForeignKey("ads.id", ondelete="CASCADE"), index=True)
    run_id: Mapped[Optional[int]] = mapped_column(ForeignKey("runs.id", ondelete="SET NULL"), index=True)
    path: Mapped[str] = mapped_column(Text)  # relative to ROOT, with forward slashes
    sha256: Mapped[Optional[str]] = mapped_column(String(64), index=True)
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    mtime_ns: Mapped[int] = mapped_column(BigInteger)
    width: Mapped[Optional[int]] = mapped_column(Integer)
    height: Mapped[Optional[int]] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))
    error: Mapped[Optional[str]] = mapped_column(Text)
    faces_count: Mapped[int] = mapped_column(Integer, default=0)
    captured_at: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime())
    processed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)


class FaceRow(Base):
    """One detected face with its box, detection score and the seven class probabilities."""

    __tablename__ = "faces"
    __table_args__ = (UniqueConstraint("image_id", "face_index"), Index("ix_faces_top_emotion", "top_emotion"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    image_id: Mapped[int] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"), index=True)
    face_index: Mapped[int] = mapped_column(Integer)
    x: Mapped[float] = mapped_column(Float)
    y: Mapped[float] = mapped_column(Float)
    w: Mapped[float] = mapped_column(Float)
    h: Mapped[float] = mapped_column(Float)
    detection_score: Mapped[float] = mapped_column(Float)
    p_angry: Mapped[float] = mapped_column(Float)
    p_disgust: Mapped[float] = mapped_column(Float)
    p_fear: Mapped[float] = mapped_column(Float)
    p_happy: Mapped[float] = mapped_column(Float)
    p_neutral: Mapped[float] = mapped_column(Float)
    p_sad: Mapped[float] = mapped_column(Float)
    p_surprise: Mapped[float] = mapped_column(Float)
    top_emotion: Mapped[str] = mapped_column(String(16))
    model_id: Mapped[str] = mapped_column(String(128))


#: Values of ``ad_share_estimates.method``: the raw shares, and the corrections of ``aggregate.quantify``.
ESTIMATE_METHODS = ("raw", "pacc", "acc", "em")


class ShareEstimateRow(Base):
    """One expression share of an ad (or, with ``ad`` null, of a whole campaign) as the last reports stated
    it: raw (faces whose top expression is the class, Wilson interval) or corrected for the classifier's
    confusion (``method``, bootstrap interval). Written at report time, replacing the previous report's rows;
    groups below the minimum group size have no rows."""

    __tablename__ = "ad_share_estimates"
    __table_args__ = (Index("ix_ad_share_estimates_campaign_ad", "campaign", "ad"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    campaign: Mapped[str] = mapped_column(String(512))
    ad: Mapped[Optional[str]] = mapped_column(String(512))
    model_id: Mapped[str] = mapped_column(Text)
    method: Mapped[str] = mapped_column(String(16))
    emotion: Mapped[str] = mapped_column("class", String(16))
    share: Mapped[float] = mapped_column(Float)
    lower: Mapped[float] = mapped_column(Float)
    upper: Mapped[float] = mapped_column(Float)
    faces: Mapped[int] = mapped_column(Integer)
    computed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class VideoRow(Base):
    """One viewer recording (``ROOT/<campaign>/<ad>/**/<file>.mp4``): where it is, what it was, what came of it.

    ``status`` is one of ``video.decode.VIDEO_STATUSES``; ``offset_s`` is where the ad starts in the
    recording (its sidecar's ``ad_offset_s``, 0 without one). A changed file (or sidecar: ``sidecar_stamp``)
    is redone whole: its row and its frames are replaced in one transaction.
    """

    __tablename__ = "videos"
    __table_args__ = (UniqueConstraint("ad_id", "path"), Index("ix_videos_status", "status"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ad_id: Mapped[int] = mapped_column(ForeignKey("ads.id", ondelete="CASCADE"), index=True)
    run_id: Mapped[Optional[int]] = mapped_column(ForeignKey("runs.id", ondelete="SET NULL"), index=True)
    path: Mapped[str] = mapped_column(Text)  # relative to ROOT, with forward slashes
    sha256: Mapped[Optional[str]] = mapped_column(String(64), index=True)
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    mtime_ns: Mapped[int] = mapped_column(BigInteger)
    sidecar_stamp: Mapped[Optional[str]] = mapped_column(Text)  # the sidecars' names, sizes, mtimes; None: none
    status: Mapped[str] = mapped_column(String(16))
    error: Mapped[Optional[str]] = mapped_column(Text)
    codec: Mapped[Optional[str]] = mapped_column(String(32))
    width: Mapped[Optional[int]] = mapped_column(Integer)
    height: Mapped[Optional[int]] = mapped_column(Integer)
    rotation: Mapped[Optional[int]] = mapped_column(Integer)
    duration_s: Mapped[Optional[float]] = mapped_column(Float)
    fps: Mapped[Optional[float]] = mapped_column(Float)
    sample_fps: Mapped[float] = mapped_column(Float)
    offset_s: Mapped[Optional[float]] = mapped_column(Float)
    frames_sampled: Mapped[int] = mapped_column(Integer, default=0)
    frames_with_face: Mapped[int] = mapped_column(Integer, default=0)
    faces_found: Mapped[int] = mapped_column(Integer, default=0)
    tracks: Mapped[int] = mapped_column(Integer, default=0)
    max_faces: Mapped[int] = mapped_column(Integer, default=0)
    model_id: Mapped[str] = mapped_column(String(128))
    processed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)


class VideoFrameRow(Base):
    """The viewer's face in one sampled frame of a recording: its time in the ad, box, scores and probabilities."""

    __tablename__ = "video_frames"
    __table_args__ = (UniqueConstraint("video_id", "time_ms"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    video_id: Mapped[int] = mapped_column(ForeignKey("videos.id", ondelete="CASCADE"), index=True)
    time_ms: Mapped[int] = mapped_column(Integer)  # time in the ad (recording time minus the ad's offset)
    x: Mapped[float] = mapped_column(Float)
    y: Mapped[float] = mapped_column(Float)
    w: Mapped[float] = mapped_column(Float)
    h: Mapped[float] = mapped_column(Float)
    detection_score: Mapped[float] = mapped_column(Float)
    p_angry: Mapped[float] = mapped_column(Float)
    p_disgust: Mapped[float] = mapped_column(Float)
    p_fear: Mapped[float] = mapped_column(Float)
    p_happy: Mapped[float] = mapped_column(Float)
    p_neutral: Mapped[float] = mapped_column(Float)
    p_sad: Mapped[float] = mapped_column(Float)
    p_surprise: Mapped[float] = mapped_column(Float)
    top_emotion: Mapped[str] = mapped_column(String(16))
    faces_in_frame: Mapped[int] = mapped_column(Integer)
    model_id: Mapped[str] = mapped_column(String(128))
