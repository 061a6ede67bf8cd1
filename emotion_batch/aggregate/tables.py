"""The numbers every report, export and view agrees on, computed once with polars.

Rows come from the analyst views ``face_results`` and ``image_results`` (``sql/views.sql``), never from the
tables, so that these numbers and what analysts query in SQL are the same.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Optional

import polars as pl
from sqlalchemy import DateTime, Float, Integer, String, column, text
from sqlalchemy.orm import Session

from .exceptions import ConfigError, ReportError
from .labels import EMOTIONS
from .store.models import IMAGE_STATUSES, PROB_COLUMNS

__all__ = [
    "AdReportData",
    "FACE_SCHEMA",
    "IMAGE_SCHEMA",
    "ad_report_data",
    "ad_reports_from_frames",
    "ad_summary",
    "campaign_summary",
    "daily_trend",
    "load_faces",
    "load_images",
    "suppress_small_ads",
    "valence",
    "with_valence",
]

logger = logging.getLogger(__name__)

#: Columns of ``face_results`` as polars types; also the schema of an empty result.
FACE_SCHEMA: dict[str, pl.DataType] = {
    "campaign": pl.String(),
    "ad": pl.String(),
    "image_path": pl.String(),
    "face_index": pl.Int64(),
    "x": pl.Float64(),
    "y": pl.Float64(),
    "w": pl.Float64(),
    "h": pl.Float64(),
    "detection_score": pl.Float64(),
    "top_emotion": pl.String(),
    **{name: pl.Float64() for name in PROB_COLUMNS},
    "model_id": pl.String(),
    "processed_at": pl.Datetime("us", time_zone="UTC"),
}

#: Columns of ``image_results`` as polars types.
IMAGE_SCHEMA: dict[str, pl.DataType] = {
    "campaign": pl.String(),
    "ad": pl.String(),
    "image_path": pl.String(),
    "status": pl.String(),
    "error": pl.String(),
    "faces": pl.Int64(),
}

#: Image statuses counted as failed in ``ad_summary``.
FAILED_STATUSES = ("unreadable", "unsupported")

_KEY = ["campaign", "ad"]
# Above this many (campaign, ad) pairs the filter is applied in polars instead of in the SQL text.
_MAX_SQL_PAIRS = 200


def _sql_type(dtype: pl.DataType):
    # Typed result columns, so that SQLite and PostgreSQL hand back the same Python types.
    if isinstance(dtype, pl.Datetime):
        return DateTime(timezone=True)
    if isinstance(dtype, pl.Int64):
        return Integer()
    if isinstance(dtype, pl.Float64):
        return Float()
    if isinstance(dtype, pl.String):
        return String()
    raise ReportError(f"dtype must be one of Datetime, Int64, Float64, String. Received: dtype={dtype!r}")


def _typed_select(view: str, schema: dict[str, pl.DataType], where: str):
    sql_columns = [column(name, _sql_type(dtype)) for name, dtype in schema.items()]
    return text(f"SELECT {', '.join(schema)} FROM {view}{where}").columns(*sql_columns)


def _check_ads(ads: Optional[Iterable[tuple[str, str]]]) -> Optional[list[tuple[str, str]]]:
    if ads is None:
        return None
    pairs = []
    for pair in ads:
        if not (
            isinstance(pair, Sequence)
            and not isinstance(pair, str)
            and len(pair) == 2
            and all(isinstance(p, str) for p in pair)
        ):
            raise ConfigError(f"ads must be a list of (campaign, ad) string pairs. Received: ads item={pair!r}")
        pairs.append((pair[0], pair[1]))
    return list(dict.fromkeys(pairs))


def _to_utc(value: Optional[dt.datetime]) -> Optional[dt.datetime]:
    # SQLite hands back naive datetimes (stored as UTC); PostgreSQL aware ones in the session time zone.
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=dt.timezone.utc)
    return value.astimezone(dt.timezone.utc)


def _load_view(session: Session, view: str, schema: dict[str, pl.DataType], ads) -> pl.DataFrame:
    pairs = _check_ads(ads)
    if pairs is not None and not pairs:
        return pl.DataFrame(schema=schema)
    where, params = "", {}
    if pairs is not None and len(pairs) <= _MAX_SQL_PAIRS:
        where = " WHERE " + " OR ".join(f"(campaign = :c{i} AND ad = :a{i})" for i in range(len(pairs)))
        for i, (campaign, ad) in enumerate(pairs):
            params[f"c{i}"] = campaign
            params[f"a{i}"] = ad
    rows = session.execute(_typed_select(view, schema, where), params).all()
    columns = dict(zip(schema, zip(*rows))) if rows else {name: () for name in schema}
    data = {
        name: [_to_utc(v) for v in values] if isinstance(schema[name], pl.Datetime) else list(values)
        for name, values in columns.items()
    }
    frame = pl.DataFrame(data, schema=schema)
    if pairs is not None and len(pairs) > _MAX_SQL_PAIRS:
        wanted = pl.DataFrame(pairs, schema={"campaign": pl.String(), "ad": pl.String()}, orient="row")
        frame = frame.join(wanted, on=_KEY, how="semi")
    return frame


def load_faces(session: Session, *, ads: Optional[Sequence[tuple[str, str]]] = None) -> pl.DataFrame:
    """Return the rows of the ``face_results`` view, one per detected face.

    Args:
        session: an open SQLAlchemy session (SQLite or PostgreSQL); nothing is written.
        ads: optional (campaign, ad) pairs to restrict to; ``None`` reads every ad.

    Returns:
        A frame with the columns and types of ``FACE_SCHEMA`` (``processed_at`` in UTC), sorted by
        campaign, ad, image_path, face_index.
    """
    frame = _load_view(session, "face_results", FACE_SCHEMA, ads)
    return frame.sort(["campaign", "ad", "image_path", "face_index"])


def load_images(session: Session, *, ads: Optional[Sequence[tuple[str, str]]] = None) -> pl.DataFrame:
    """Return the rows of the ``image_results`` view, one per image file (also those without a face).

    Args:
        session: an open SQLAlchemy session; nothing is written.
        ads: optional (campaign, ad) pairs to restrict to; ``None`` reads every ad.

    Returns:
        A frame with the columns and types of ``IMAGE_SCHEMA``, sorted by campaign, ad, image_path.
    """
    frame = _load_view(session, "image_results", IMAGE_SCHEMA, ads)
    return frame.sort(["campaign", "ad", "image_path"])


def _require_columns(frame: pl.DataFrame, names: Iterable[str], what: str) -> None:
    missing = [name for name in names if name not in frame.columns]
    if missing:
        raise ReportError(f"{what} lacks the columns {missing}. Received: columns={frame.columns}")


def _require_values(frame: pl.DataFrame, name: str, allowed: Sequence[str], what: str) -> None:
    unknown = frame.filter(~pl.col(name).is_in(list(allowed)))[name].unique().sort().to_list()
    if unknown:
        raise ReportError(f"{what}.{name} must be one of {list(allowed)}. Received: {name}={unknown[:10]}")


def ad_summary(faces_df: pl.DataFrame, images_df: pl.DataFrame) -> pl.DataFrame:
    """Summarise every ad that has at least one image.

    Args:
        faces_df: rows of ``face_results`` (see ``load_faces``).
        images_df: rows of ``image_results`` (see ``load_images``).

    Returns:
        One row per (campaign, ad), sorted by campaign and ad, with ``images``, ``images_ok``,
        ``images_no_face``, ``images_failed`` (unreadable + unsupported), ``faces``, then for each emotion
        ``e`` in ``EMOTIONS`` order ``count_<e>`` (faces whose top emotion is ``e``), ``share_<e>``
        (count / faces) and ``mean_p_<e>`` (mean probability), and ``dominant_emotion`` (highest share,
        ties going to the earlier emotion in ``EMOTIONS``). Shares, means and the dominant emotion are
        null for an ad without faces; otherwise the shares of an ad sum to 1.

    Raises:
        ReportError: a column is missing, or a face has a top emotion outside ``EMOTIONS``, or an image a
            status outside ``IMAGE_STATUSES``.
    """
    _require_columns(faces_df, [*_KEY, "top_emotion", *PROB_COLUMNS], "faces_df")
    _require_columns(images_df, [*_KEY, "status"], "images_df")
    _require_values(faces_df, "top_emotion", EMOTIONS, "faces_df")
    _require_values(images_df, "status", IMAGE_STATUSES, "images_df")
    keys_as_text = pl.col(_KEY).cast(pl.String)
    faces_df = faces_df.with_columns(keys_as_text)
    images_df = images_df.with_columns(keys_as_text, pl.col("status").cast(pl.String))

    status = pl.col("status")
    per_images = images_df.group_by(_KEY).agg(
        pl.len().cast(pl.Int64).alias("images"),
        (status == "ok").sum().cast(pl.Int64).alias("images_ok"),
        (status == "no_face").sum().cast(pl.Int64).alias("images_no_face"),
        status.is_in(list(FAILED_STATUSES)).sum().cast(pl.Int64).alias("images_failed"),
    )
    per_faces = faces_df.group_by(_KEY).agg(
        pl.len().cast(pl.Int64).alias("faces"),
        *[(pl.col("top_emotion") == e).sum().cast(pl.Int64).alias(f"count_{e}") for e in EMOTIONS],
        *[pl.col(f"p_{e}").cast(pl.Float64).mean().alias(f"mean_p_{e}") for e in EMOTIONS],
    )
    counts = ["faces", *[f"count_{e}" for e in EMOTIONS]]
    summary = per_images.join(per_faces, on=_KEY, how="left").with_columns(pl.col(counts).fill_null(0))

    has_faces = pl.col("faces") > 0
    dominant_index = pl.concat_list([pl.col(f"count_{e}") for e in EMOTIONS]).list.arg_max()
    summary = summary.with_columns(
        *[
            pl.when(has_faces).then(pl.col(f"count_{e}") / pl.col("faces")).alias(f"share_{e}")
            for e in EMOTIONS
        ],
        pl.when(has_faces)
        .then(dominant_index.replace_strict(dict(enumerate(EMOTIONS)), return_dtype=pl.String()))
        .alias("dominant_emotion"),
    )
    order = [
        *_KEY,
        "images",
        "images_ok",
        "images_no_face",
        "images_failed",
        "faces",
        *[f"count_{e}" for e in EMOTIONS],
        *[f"share_{e}" for e in EMOTIONS],
        *[f"mean_p_{e}" for e in EMOTIONS],
        "dominant_emotion",
    ]
    return summary.select(order).sort(_KEY)


def _check_min_faces(min_faces: Any) -> int:
    if isinstance(min_faces, bool) or not isinstance(min_faces, int) or min_faces < 1:
        raise ConfigError(f"min_faces must be an integer >= 1. Received: min_faces={min_faces!r}")
    return min_faces


def suppress_small_ads(summary: pl.DataFrame, *, min_faces: int = 10) -> pl.DataFrame:
    """Hide the expression distribution of ads with fewer than ``min_faces`` faces.

    Args:
        summary: the frame ``ad_summary`` returns.
        min_faces: the minimum group size; 1 hides only ads without faces.

    Returns:
        The summary with a boolean ``suppressed`` column added and, where it is true, the per-emotion counts,
        shares, mean probabilities and the dominant emotion set to null. Images and faces stay.
    """
    min_faces = _check_min_faces(min_faces)
    hidden = [
        *[f"{prefix}_{e}" for prefix in ("count", "share", "mean_p") for e in EMOTIONS],
        "dominant_emotion",
    ]
    _require_columns(summary, ["faces", *hidden], "summary")
    suppressed = pl.col("faces") < min_faces
    return summary.with_columns(
        *[pl.when(~suppressed).then(pl.col(name)).alias(name) for name in hidden],
        suppressed.alias("suppressed"),
    )


@dataclass(frozen=True)
class AdReportData:
    """Everything one ad's report shows.

    When ``suppressed`` is true (fewer than ``min_faces`` faces) the distribution fields
    (``emotion_counts``, ``shares``, ``mean_probabilities``, ``dominant_emotion``) are ``None`` so that no
    renderer or export can show them by mistake; the image and face counts stay.
    """

    campaign: str
    ad: str
    generated_at: dt.datetime
    min_faces: int
    images: int
    images_ok: int
    images_no_face: int
    images_failed: int
    faces: int
    model_ids: tuple[str, ...]
    last_processed_at: Optional[dt.datetime]
    suppressed: bool
    emotion_counts: Optional[dict[str, int]]
    shares: Optional[dict[str, float]]
    mean_probabilities: Optional[dict[str, float]]
    dominant_emotion: Optional[str]

    @property
    def suppression_reason(self) -> Optional[str]:
        """Why the distribution is hidden, e.g. ``"fewer than 10 faces (7 found)"``; None when shown."""
        if not self.suppressed:
            return None
        noun = "face" if self.min_faces == 1 else "faces"
        return f"fewer than {self.min_faces} {noun} ({self.faces} found)"

    def to_dict(self) -> dict[str, Any]:
        """Return the fields as JSON-ready values (ISO 8601 times, lists for tuples)."""
        return {
            "campaign": self.campaign,
            "ad": self.ad,
            "generated_at": self.generated_at.isoformat(),
            "min_faces": self.min_faces,
            "images": self.images,
            "images_ok": self.images_ok,
            "images_no_face": self.images_no_face,
            "images_failed": self.images_failed,
            "faces": self.faces,
            "model_ids": list(self.model_ids),
            "last_processed_at": self.last_processed_at.isoformat() if self.last_processed_at else None,
            "suppressed": self.suppressed,
            "suppression_reason": self.suppression_reason,
            "emotion_counts": self.emotion_counts,
            "shares": self.shares,
            "mean_probabilities": self.mean_probabilities,
            "dominant_emotion": self.dominant_emotion,
        }


def ad_reports_from_frames(
    faces_df: pl.DataFrame,
    images_df: pl.DataFrame,
    *,
    min_faces: int = 10,
    generated_at: Optional[dt.datetime] = None,
) -> list[AdReportData]:
    """Build the report data of every ad in the frames, sorted by campaign and ad.

    Args:
        faces_df: rows of ``face_results``.
        images_df: rows of ``image_results``; an ad appears when it has at least one image.
        min_faces: the minimum group size below which the distribution is suppressed.
        generated_at: the report time (UTC); now when omitted.

    Returns:
        One ``AdReportData`` per ad.
    """
    min_faces = _check_min_faces(min_faces)
    generated_at = _to_utc(generated_at) if generated_at else dt.datetime.now(dt.timezone.utc)
    summary = suppress_small_ads(ad_summary(faces_df, images_df), min_faces=min_faces)
    _require_columns(faces_df, ["model_id", "processed_at"], "faces_df")
    provenance = faces_df.with_columns(pl.col(_KEY).cast(pl.String)).group_by(_KEY).agg(
        pl.col("model_id").unique().sort().alias("model_ids"),
        pl.col("processed_at").max().alias("last_processed_at"),
    )
    summary = summary.join(provenance, on=_KEY, how="left").sort(_KEY)

    reports = []
    for row in summary.iter_rows(named=True):
        shown = not row["suppressed"]
        reports.append(
            AdReportData(
                campaign=row["campaign"],
                ad=row["ad"],
                generated_at=generated_at,
                min_faces=min_faces,
                images=row["images"],
                images_ok=row["images_ok"],
                images_no_face=row["images_no_face"],
                images_failed=row["images_failed"],
                faces=row["faces"],
                model_ids=tuple(row["model_ids"] or ()),
                last_processed_at=_to_utc(row["last_processed_at"]),
                suppressed=not shown,
                emotion_counts={e: row[f"count_{e}"] for e in EMOTIONS} if shown else None,
                shares={e: row[f"share_{e}"] for e in EMOTIONS} if shown else None,
                mean_probabilities={e: row[f"mean_p_{e}"] for e in EMOTIONS} if shown else None,
                dominant_emotion=row["dominant_emotion"] if shown else None,
            )
        )
    return reports


def ad_report_data(
    session: Session,
    campaign: str,
    ad: str,
    *,
    min_faces: int = 10,
    generated_at: Optional[dt.datetime] = None,
) -> AdReportData:
    """Read one ad from the database and return what its report shows.

    Args:
        session: an open SQLAlchemy session; nothing is written.
        campaign: the campaign folder name.
        ad: the ad folder name.
        min_faces: the minimum group size below which the distribution is suppressed.
        generated_at: the report time (UTC); now when omitted.

    Raises:
        ReportError: no image of that ad is stored.
    """
    min_faces = _check_min_faces(min_faces)
    pairs = [(campaign, ad)]
    reports = ad_reports_from_frames(
        load_faces(session, ads=pairs),
        load_images(session, ads=pairs),
        min_faces=min_faces,
        generated_at=generated_at,
    )
    if not reports:
        raise ReportError(f"No image is stored for this ad. Received: campaign={campaign!r}, ad={ad!r}")
    return reports[0]


# ---- valence, campaign summary and daily trend (the analyst views ad/campaign_emotion_summary and
# ---- daily_emotion_trend in sql/ compute the same numbers; tests/test_sql_analytics.py checks it)

#: Emotions counted as positive and as negative in ``valence``; neutral and surprise count as neither
#: (surprise is as often a startled as a pleased face).
VALENCE_POSITIVE = ("happy",)
VALENCE_NEGATIVE = ("angry", "disgust", "fear", "sad")


def valence(counts: dict[str, int]) -> Optional[float]:
    """Return the valence of a group of faces from its top-emotion counts.

    ``valence = share(happy) - share(angry + disgust + fear + sad)``: -1 when every face looks negative,
    +1 when every face looks happy, 0 for all-neutral (or balanced) groups. Shares are of the faces whose
    top emotion is the class, as in ``ad_summary``.

    Args:
        counts: faces per emotion; every name in ``EMOTIONS`` must be present.

    Returns:
        The valence, or None for a group without faces.
    """
    missing = [e for e in EMOTIONS if e not in counts]
    if missing:
        raise ReportError(f"counts lacks the emotions {missing}. Received: counts={counts!r}")
    faces = sum(counts[e] for e in EMOTIONS)
    if faces == 0:
        return None
    return (sum(counts[e] for e in VALENCE_POSITIVE) - sum(counts[e] for e in VALENCE_NEGATIVE)) / faces


def _valence_expr() -> pl.Expr:
    net = pl.sum_horizontal([pl.col(f"count_{e}") for e in VALENCE_POSITIVE]) - pl.sum_horizontal(
        [pl.col(f"count_{e}") for e in VALENCE_NEGATIVE]
    )
    return pl.when(pl.col("faces") > 0).then(net / pl.col("faces")).alias("valence")


def _dominant_expr() -> pl.Expr:
    index = pl.concat_list([pl.col(f"count_{e}") for e in EMOTIONS]).list.arg_max()
    return (
        pl.when(pl.col("faces") > 0)
        .then(index.replace_strict(dict(enumerate(EMOTIONS)), return_dtype=pl.String()))
        .alias("dominant_emotion")
    )


def with_valence(summary: pl.DataFrame) -> pl.DataFrame:
    """Add a ``valence`` column (see ``valence``) to a frame with ``faces`` and ``count_<emotion>`` columns,
    before ``dominant_emotion`` when there is one; null where there are no faces."""
    _require_columns(summary, ["faces", *[f"count_{e}" for e in EMOTIONS]], "summary")
    out = summary.with_columns(_valence_expr())
    if "dominant_emotion" in out.columns:
        order = [c for c in out.columns if c not in ("valence", "dominant_emotion")] + ["valence", "dominant_emotion"]
        out = out.select(order)
    return out


def campaign_summary(faces_df: pl.DataFrame, images_df: pl.DataFrame) -> pl.DataFrame:
    """Summarise every campaign that has at least one image, as ``ad_summary`` does every ad.

    Args:
        faces_df: rows of ``face_results``.
        images_df: rows of ``image_results``.

    Returns:
        One row per campaign, sorted: ``campaign``, ``ads`` (ads with images), the image and face counts,
        ``count_<e>``, ``share_<e>`` and ``mean_p_<e>`` over all the campaign's faces (an ad with more faces
        weighs more), ``valence`` and ``dominant_emotion``; the columns of the view
        ``campaign_emotion_summary``.
    """
    per_ad = ad_summary(faces_df, images_df)
    counts = ["images", "images_ok", "images_no_face", "images_failed", "faces", *[f"count_{e}" for e in EMOTIONS]]
    weighted = [(pl.col(f"mean_p_{e}").fill_null(0.0) * pl.col("faces")).sum().alias(f"sum_p_{e}") for e in EMOTIONS]
    summary = per_ad.group_by("campaign").agg(pl.len().cast(pl.Int64).alias("ads"), *[pl.col(c).sum() for c in counts],
                                              *weighted)
    has_faces = pl.col("faces") > 0
    summary = summary.with_columns(
        *[pl.when(has_faces).then(pl.col(f"count_{e}") / pl.col("faces")).alias(f"share_{e}") for e in EMOTIONS],
        *[pl.when(has_faces).then(pl.col(f"sum_p_{e}") / pl.col("faces")).alias(f"mean_p_{e}") for e in EMOTIONS],
        _valence_expr(),
        _dominant_expr(),
    )
    order = ["campaign", "ads", *counts, *[f"share_{e}" for e in EMOTIONS], *[f"mean_p_{e}" for e in EMOTIONS],
             "valence", "dominant_emotion"]
    return summary.select(order).sort("campaign")


def daily_trend(faces_df: pl.DataFrame, *, by: Sequence[str] = ("campaign", "ad")) -> pl.DataFrame:
    """Count faces per group and UTC day of ``processed_at``: the view ``daily_emotion_trend`` (by ad).

    Args:
        faces_df: rows of ``face_results``.
        by: the grouping columns, ``("campaign", "ad")`` or ``("campaign",)``.

    Returns:
        One row per group and day with faces, sorted: the ``by`` columns, ``day`` (a date), ``faces``,
        ``count_<e>``, ``share_<e>``, ``valence`` and ``dominant_emotion``.
    """
    keys = list(by)
    if keys not in (["campaign", "ad"], ["campaign"]):
        raise ConfigError(f"by must be one of [('campaign', 'ad'), ('campaign',)]. Received: by={by!r}")
    _require_columns(faces_df, [*keys, "top_emotion", "processed_at"], "faces_df")
    _require_values(faces_df, "top_emotion", EMOTIONS, "faces_df")
    day = pl.col("processed_at").dt.convert_time_zone("UTC").dt.date().alias("day")
    trend = faces_df.with_columns(pl.col(keys).cast(pl.String), day).group_by([*keys, "day"]).agg(
        pl.len().cast(pl.Int64).alias("faces"),
        *[(pl.col("top_emotion") == e).sum().cast(pl.Int64).alias(f"count_{e}") for e in EMOTIONS],
    )
    trend = trend.with_columns(
        *[(pl.col(f"count_{e}") / pl.col("faces")).alias(f"share_{e}") for e in EMOTIONS],
        _valence_expr(),
        _dominant_expr(),
    )
    order = [*keys, "day", "faces", *[f"count_{e}" for e in EMOTIONS], *[f"share_{e}" for e in EMOTIONS],
             "valence", "dominant_emotion"]
    return trend.select(order).sort([*keys, "day"])
