"""The analyst views as SQLAlchemy selects with filters: what ``emotion-batch export`` streams.

Each select returns the columns of its view in ``sql/views*.sql``, in the same order, computed from the
tables so that the filters (campaigns, ads, a UTC time range on ``images.processed_at``) apply before
anything is counted: a summary "since May 1" counts only the faces processed since then. Tests check
every select against its view and against ``emotion_batch.aggregate`` on SQLite and PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import Date, Float, Integer, Select, String, and_, case, cast, column, func, literal, select, table
from sqlalchemy.exc import CompileError
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement

from ..exceptions import ConfigError
from ..labels import EMOTIONS, FAILED_STATUSES, VALENCE_NEGATIVE, VALENCE_POSITIVE
from ..timeutil import as_utc
from .models import Ad, Campaign, FaceRow, ImageRow, PROB_COLUMNS, ShareEstimateRow, VideoFrameRow, VideoRow

#: What ``export`` can write, each the rows of one view (``share-estimates``: of the table ``ad_share_estimates``;
#: ``videos`` and ``video-frames``: of the tables ``videos`` and ``video_frames`` with campaign and ad names).
DATASETS = ("faces", "images", "failed-images", "ad-summary", "campaign-summary", "daily-trend", "share-estimates",
            "videos", "video-frames", "second-trace")

_f, _i, _a, _c = FaceRow.__table__, ImageRow.__table__, Ad.__table__, Campaign.__table__
_v, _vf = VideoRow.__table__, VideoFrameRow.__table__


class utc_day(FunctionElement):
    """The UTC calendar day of a timestamp column, spelt for each engine (as in ``views.<dialect>.sql``)."""

    type = Date()
    inherit_cache = True
    name = "utc_day"


@compiles(utc_day, "sqlite")
def _utc_day_sqlite(element, compiler, **kw):
    return f"date({compiler.process(element.clauses, **kw)})"


@compiles(utc_day, "postgresql")
def _utc_day_postgresql(element, compiler, **kw):
    return f"CAST(timezone('UTC', {compiler.process(element.clauses, **kw)}) AS DATE)"


@compiles(utc_day)
def _utc_day_other(element, compiler, **kw):
    raise CompileError(f"dialect must be one of ['sqlite', 'postgresql']. Received: dialect={compiler.dialect.name!r}")


_WHEN = re.compile(r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?(Z|[+-]\d{2}:?\d{2})?$")


def parse_when(value: str, *, name: str, end: bool = False) -> dt.datetime:
    """A UTC instant from ``YYYY-MM-DD`` or an ISO 8601 date-time (no offset: UTC).

    A bare date as ``end`` (the ``--until`` bound) means the end of that day, so that ``--until 2024-05-31``
    includes May 31.

    Raises:
        ConfigError: the text is neither.
    """
    text = value.strip()
    if not _WHEN.match(text):
        raise ConfigError(f"{name} must be a date YYYY-MM-DD or a date-time YYYY-MM-DDTHH:MM[:SS] (UTC unless it "
                          f"has an offset). Received: {name}={value!r}")
    try:
        when = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise ConfigError(f"{name} is not a valid date ({exc}). Received: {name}={value!r}") from exc
    if len(text) == 10 and end:
        when += dt.timedelta(days=1)
    return as_utc(when)


@dataclass(frozen=True)
class Filters:
    """Which rows an export covers; empty tuples and ``None`` mean no restriction.

    ``since`` and ``until`` bound ``images.processed_at`` (UTC): ``since <= processed_at < until``.
    """

    campaigns: tuple[str, ...] = ()
    ads: tuple[str, ...] = ()
    since: dt.datetime | None = None
    until: dt.datetime | None = None

    @classmethod
    def from_options(cls, *, campaigns: Iterable[str] = (), ads: Iterable[str] = (), since: str | None = None,
                     until: str | None = None) -> "Filters":
        """Build from command-line text (``--since``/``--until`` as ``parse_when`` reads them)."""
        filters = cls(
            campaigns=tuple(campaigns), ads=tuple(ads),
            since=parse_when(since, name="since") if since else None,
            until=parse_when(until, name="until", end=True) if until else None,
        )
        filters.validate()
        return filters

    def validate(self) -> None:
        for name in ("since", "until"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, dt.datetime) or value.tzinfo is None):
                raise ConfigError(f"{name} must be a timezone-aware datetime. Received: {name}={value!r}")
        if self.since is not None and self.until is not None and self.since >= self.until:
            raise ConfigError(f"since must be before until. Received: since={self.since.isoformat()}, "
                              f"until={self.until.isoformat()}")

    def on_ads(self) -> list:
        """Conditions on ``ads``/``campaigns`` columns."""
        conds = []
        if self.campaigns:
            conds.append(_c.c.name.in_(self.campaigns))
        if self.ads:
            conds.append(_a.c.name.in_(self.ads))
        return conds

    def on_time(self, column=_i.c.processed_at) -> list:
        conds = []
        if self.since is not None:
            conds.append(column >= self.since)
        if self.until is not None:
            conds.append(column < self.until)
        return conds

    def ad_ids(self):
        """A subquery of the ids of the ads the filters allow, or None when every ad is allowed."""
        conds = self.on_ads()
        if not conds:
            return None
        return select(_a.c.id).join(_c, _c.c.id == _a.c.campaign_id).where(*conds)

    def on_images(self) -> list:
        """Conditions on ``images`` rows: their ad and their time."""
        ids = self.ad_ids()
        return ([_i.c.ad_id.in_(ids)] if ids is not None else []) + self.on_time()


def _faces_join():
    return _f.join(_i, _i.c.id == _f.c.image_id).join(_a, _a.c.id == _i.c.ad_id).join(_c, _c.c.id == _a.c.campaign_id)


def faces_select(filters: Filters = Filters()) -> Select:
    """The rows of ``face_results``: one per face, ordered by campaign, ad, image_path, face_index."""
    return (
        select(
            _c.c.name.label("campaign"), _a.c.name.label("ad"), _i.c.path.label("image_path"), _f.c.face_index,
            _f.c.x, _f.c.y, _f.c.w, _f.c.h, _f.c.detection_score, _f.c.top_emotion,
            *[_f.c[name] for name in PROB_COLUMNS], _f.c.model_id, _i.c.processed_at,
        )
        .select_from(_faces_join())
        .where(*filters.on_ads(), *filters.on_time())
        .order_by(_c.c.name, _a.c.name, _i.c.path, _f.c.face_index)
    )


def _images_from():
    return _i.join(_a, _a.c.id == _i.c.ad_id).join(_c, _c.c.id == _a.c.campaign_id)


def images_select(filters: Filters = Filters()) -> Select:
    """The rows of ``image_results`` and their ``processed_at``, ordered by campaign, ad, image_path."""
    return (
        select(_c.c.name.label("campaign"), _a.c.name.label("ad"), _i.c.path.label("image_path"), _i.c.status,
               _i.c.error, _i.c.faces_count.label("faces"), _i.c.processed_at)
        .select_from(_images_from())
        .where(*filters.on_ads(), *filters.on_time())
        .order_by(_c.c.name, _a.c.name, _i.c.path)
    )


def failed_images_select(filters: Filters = Filters()) -> Select:
    """The rows of ``failed_images``, ordered by campaign, ad, image_path."""
    return (
        select(_c.c.name.label("campaign"), _a.c.name.label("ad"), _i.c.path.label("image_path"), _i.c.status,
               _i.c.error, _i.c.size_bytes, _i.c.processed_at, _i.c.run_id)
        .select_from(_images_from())
        .where(_i.c.status.in_(FAILED_STATUSES), *filters.on_ads(), *filters.on_time())
        .order_by(_c.c.name, _a.c.name, _i.c.path)
    )


def _count_of(condition):
    return func.sum(case((condition, 1), else_=0))


def _emotion_columns(src, *, means: bool) -> list:
    """faces, count_*, share_*, [mean_p_*], valence, dominant_emotion over the subquery ``src``."""
    counts = {e: src.c[f"count_{e}"] for e in EMOTIONS}
    faces = src.c.faces
    columns = [func.coalesce(faces, 0).label("faces")]
    columns += [func.coalesce(counts[e], 0).label(f"count_{e}") for e in EMOTIONS]
    columns += [(cast(counts[e], Float) / faces).label(f"share_{e}") for e in EMOTIONS]
    if means:
        columns += [src.c[f"mean_p_{e}"] for e in EMOTIONS]
    net = counts[VALENCE_POSITIVE[0]]
    for e in VALENCE_POSITIVE[1:]:
        net = net + counts[e]
    for e in VALENCE_NEGATIVE:
        net = net - counts[e]
    columns.append((cast(net, Float) / faces).label("valence"))
    whens = []
    for i, e in enumerate(EMOTIONS):
        conds = [counts[e] > counts[o] if j < i else counts[e] >= counts[o] for j, o in enumerate(EMOTIONS) if o != e]
        whens.append((and_(*conds), literal(e, String())))
    columns.append(case(*whens).label("dominant_emotion"))
    return columns


def _face_aggregates(*, means: bool) -> list:
    out = [func.count().label("faces")]
    out += [_count_of(_f.c.top_emotion == e).label(f"count_{e}") for e in EMOTIONS]
    if means:
        out += [func.avg(_f.c[f"p_{e}"], type_=Float).label(f"mean_p_{e}") for e in EMOTIONS]
    return out


def _image_aggregates(status) -> list:
    return [
        func.count().label("images"),
        _count_of(status == "ok").label("images_ok"),
        _count_of(status == "no_face").label("images_no_face"),
        _count_of(status.in_(FAILED_STATUSES)).label("images_failed"),
    ]


def ad_summary_select(filters: Filters = Filters()) -> Select:
    """The rows of ``ad_emotion_summary`` over the filtered images and faces, ordered by campaign, ad."""
    im = select(_i.c.ad_id, *_image_aggregates(_i.c.status)).where(*filters.on_images()).group_by(_i.c.ad_id).subquery("im")
    fa = (
        select(_i.c.ad_id, *_face_aggregates(means=True))
        .select_from(_f.join(_i, _i.c.id == _f.c.image_id))
        .where(*filters.on_images())
        .group_by(_i.c.ad_id)
        .subquery("fa")
    )
    return (
        select(_c.c.name.label("campaign"), _a.c.name.label("ad"), im.c.images, im.c.images_ok, im.c.images_no_face,
               im.c.images_failed, *_emotion_columns(fa, means=True))
        .select_from(im.join(_a, _a.c.id == im.c.ad_id).join(_c, _c.c.id == _a.c.campaign_id)
                     .outerjoin(fa, fa.c.ad_id == im.c.ad_id))
        .order_by(_c.c.name, _a.c.name)
    )


def campaign_summary_select(filters: Filters = Filters()) -> Select:
    """The rows of ``campaign_emotion_summary`` over the filtered images and faces, ordered by campaign."""
    im = (
        select(_a.c.campaign_id, func.count(_i.c.ad_id.distinct()).label("ads"), *_image_aggregates(_i.c.status))
        .select_from(_i.join(_a, _a.c.id == _i.c.ad_id))
        .where(*filters.on_images())
        .group_by(_a.c.campaign_id)
        .subquery("im")
    )
    fa = (
        select(_a.c.campaign_id, *_face_aggregates(means=True))
        .select_from(_f.join(_i, _i.c.id == _f.c.image_id).join(_a, _a.c.id == _i.c.ad_id))
        .where(*filters.on_images())
        .group_by(_a.c.campaign_id)
        .subquery("fa")
    )
    return (
        select(_c.c.name.label("campaign"), im.c.ads, im.c.images, im.c.images_ok, im.c.images_no_face,
               im.c.images_failed, *_emotion_columns(fa, means=True))
        .select_from(im.join(_c, _c.c.id == im.c.campaign_id).outerjoin(fa, fa.c.campaign_id == im.c.campaign_id))
        .order_by(_c.c.name)
    )


def daily_trend_select(filters: Filters = Filters()) -> Select:
    """The rows of ``daily_emotion_trend`` over the filtered faces, ordered by campaign, ad, day."""
    day = utc_day(_i.c.processed_at)
    d = (
        select(_i.c.ad_id, day.label("day"), *_face_aggregates(means=False))
        .select_from(_f.join(_i, _i.c.id == _f.c.image_id))
        .where(*filters.on_images())
        .group_by(_i.c.ad_id, day)
        .subquery("d")
    )
    columns = [col for col in _emotion_columns(d, means=False)]
    columns[: 1 + len(EMOTIONS)] = [d.c.faces, *[d.c[f"count_{e}"] for e in EMOTIONS]]  # never NULL here
    return (
        select(_c.c.name.label("campaign"), _a.c.name.label("ad"), d.c.day, *columns)
        .select_from(d.join(_a, _a.c.id == d.c.ad_id).join(_c, _c.c.id == _a.c.campaign_id))
        .order_by(_c.c.name, _a.c.name, d.c.day)
    )


def share_estimates_select(filters: Filters = Filters()) -> Select:
    """The rows of ``ad_share_estimates`` (the shares the last reports stated), ``ad`` null for a whole
    campaign; ``--campaign`` and ``--ad`` apply, a time range does not (the estimates cover every face).

    Raises:
        ConfigError: ``since`` or ``until`` is given.
    """
    if filters.since is not None or filters.until is not None:
        raise ConfigError("share-estimates cover every face of an ad; since and until do not apply to them. "
                          f"Received: since={filters.since}, until={filters.until}")
    e = ShareEstimateRow.__table__
    conds = ([e.c.campaign.in_(filters.campaigns)] if filters.campaigns else []) + (
        [e.c.ad.in_(filters.ads)] if filters.ads else [])
    return (select(e.c.campaign, e.c.ad, e.c.model_id, e.c.method, e.c["class"], e.c.share, e.c.lower, e.c.upper,
                   e.c.faces, e.c.computed_at)
            .where(*conds).order_by(e.c.campaign, e.c.ad.is_not(None), e.c.ad, e.c.method, e.c.id))


def _videos_from():
    return _v.join(_a, _a.c.id == _v.c.ad_id).join(_c, _c.c.id == _a.c.campaign_id)


def videos_select(filters: Filters = Filters()) -> Select:
    """One row per viewer recording (the table ``videos`` with campaign and ad names), ordered by campaign, ad,
    video_path; ``since``/``until`` bound the videos' ``processed_at``."""
    figures = ("duration_s", "fps", "sample_fps", "offset_s", "frames_sampled", "frames_with_face", "faces_found",
               "tracks", "max_faces", "codec", "width", "height", "rotation", "size_bytes", "sha256", "model_id",
               "processed_at", "run_id")
    return (
        select(_c.c.name.label("campaign"), _a.c.name.label("ad"), _v.c.path.label("video_path"), _v.c.status,
               _v.c.error, *[_v.c[name] for name in figures])
        .select_from(_videos_from())
        .where(*filters.on_ads(), *filters.on_time(_v.c.processed_at))
        .order_by(_c.c.name, _a.c.name, _v.c.path)
    )


def video_frames_select(filters: Filters = Filters()) -> Select:
    """One row per sampled frame with the viewer's face, ordered by campaign, ad, video_path, time_ms (the time in
    the ad); ``since``/``until`` bound the videos' ``processed_at``."""
    return (
        select(_c.c.name.label("campaign"), _a.c.name.label("ad"), _v.c.path.label("video_path"), _vf.c.time_ms,
               _vf.c.x, _vf.c.y, _vf.c.w, _vf.c.h, _vf.c.detection_score, _vf.c.top_emotion,
               *[_vf.c[name] for name in PROB_COLUMNS], _vf.c.faces_in_frame, _vf.c.model_id, _v.c.processed_at)
        .select_from(_vf.join(_videos_from(), _v.c.id == _vf.c.video_id))
        .where(*filters.on_ads(), *filters.on_time(_v.c.processed_at))
        .order_by(_c.c.name, _a.c.name, _v.c.path, _vf.c.time_ms)
    )


#: The view ``ad_second_trace`` (``sql/views.sql``), its columns typed for the export writers.
SECOND_TRACE = table(
    "ad_second_trace",
    column("campaign", String()), column("ad", String()),
    *[column(name, Integer()) for name in ("second", "viewers", "frames", *[f"count_{e}" for e in EMOTIONS])],
    *[column(f"{kind}_{e}", Float()) for kind in ("share", "mean_p") for e in EMOTIONS],
    column("valence", Float()),
)


def second_trace_select(filters: Filters = Filters()) -> Select:
    """The rows of the view ``ad_second_trace``, ordered by campaign, ad, second; ``--campaign`` and ``--ad``
    apply, a time range does not (a second of an ad pools every viewer).

    Raises:
        ConfigError: ``since`` or ``until`` is given.
    """
    if filters.since is not None or filters.until is not None:
        raise ConfigError("second-trace pools every viewer of an ad; since and until do not apply to it. "
                          f"Received: since={filters.since}, until={filters.until}")
    t = SECOND_TRACE
    conds = ([t.c.campaign.in_(filters.campaigns)] if filters.campaigns else []) + (
        [t.c.ad.in_(filters.ads)] if filters.ads else [])
    return select(*t.c).where(*conds).order_by(t.c.campaign, t.c.ad, t.c.second)


_SELECTS = {
    "faces": faces_select,
    "images": images_select,
    "failed-images": failed_images_select,
    "ad-summary": ad_summary_select,
    "campaign-summary": campaign_summary_select,
    "daily-trend": daily_trend_select,
    "share-estimates": share_estimates_select,
    "videos": videos_select,
    "video-frames": video_frames_select,
    "second-trace": second_trace_select,
}


def dataset_select(dataset: str, filters: Filters = Filters()) -> Select:
    """The select of one of ``DATASETS``.

    Raises:
        ConfigError: ``dataset`` is not one of ``DATASETS``.
    """
    if dataset not in _SELECTS:
        raise ConfigError(f"dataset must be one of {list(DATASETS)}. Received: dataset={dataset!r}")
    filters.validate()
    return _SELECTS[dataset](filters)
