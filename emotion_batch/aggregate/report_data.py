"""What each report shows, assembled from the aggregate tables: one ``AdReportData`` per ad, one
``CampaignReportData`` per campaign, and the ``ReportSet`` the batch renderer, ``summary.json`` and
``summary.csv`` share.

Every number here comes from ``tables.py`` over the frames of ``frames.py``, so it can be recomputed
from the database. Groups below the minimum group size carry ``None`` in place of every distribution
field, so no renderer or export can show them by mistake.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Optional

import polars as pl
from sqlalchemy.orm import Session

from ..exceptions import ConfigError, ReportError
from ..labels import EMOTIONS
from .correction import CORRECTION_MIN_FACES, Correction, Headline, corrections, headline_of
from .quantify import ConfusionStats
from ..timeutil import as_utc
from .frames import _KEY, _check_ads, load_faces, load_image_times, load_images
from .tables import (
    CI_METHOD,
    TIME_SOURCES,
    _check_min_faces,
    _require_columns,
    ad_summary,
    campaign_summary,
    capture_trend,
    confidence_histogram,
    confidence_summary,
    percentile_ranks,
    suppress_small_ads,
    top_faces,
    valence_interval,
    with_intervals,
    with_time_basis,
    with_valence,
)

__all__ = [
    "AdReportData",
    "CampaignReportData",
    "Comparison",
    "Confidence",
    "ExampleFace",
    "METRICS",
    "ReportSet",
    "TrendPoint",
    "ad_report_data",
    "ad_reports_from_frames",
    "build_report_set",
    "load_report_set",
    "select_ads",
]

logger = logging.getLogger(__name__)

#: The metrics ads are ranked by: valence, then the share of each expression.
METRICS = ("valence", *EMOTIONS)
#: Below this many ads in the norm, reports say the percentile is an ordering of few ads, not a norm.
FEW_NORM_ADS = 20


def _iso(value: Optional[dt.datetime]) -> Optional[str]:
    return value.isoformat() if value is not None else None


def _pair(value: Optional[tuple[float, float]]) -> Optional[list[float]]:
    return list(value) if value is not None else None


@dataclass(frozen=True)
class Comparison:
    """How one ad compares with its campaign and with every ad in the database.

    Attributes:
        campaign_faces: faces of the whole campaign.
        campaign_ads: ads of the campaign with at least one image.
        campaign_suppressed: the campaign has fewer faces than the minimum group size.
        campaign_shares: the campaign's pooled share per expression (None when suppressed).
        campaign_valence: the campaign's pooled valence (None when suppressed or without faces).
        norm_ads: ads in the database with at least the minimum group size of faces: the norm.
        percentiles: percentile rank (0-100) of this ad among the norm, per metric in ``METRICS``.
        campaign_correction: the campaign's corrected shares (None when suppressed).
    """

    campaign_faces: int
    campaign_ads: int
    campaign_suppressed: bool
    campaign_shares: Optional[dict[str, float]]
    campaign_valence: Optional[float]
    norm_ads: int
    percentiles: dict[str, Optional[float]]
    campaign_correction: Optional[Correction] = None

    @property
    def few_norm_ads(self) -> bool:
        """Whether the norm has so few ads that a percentile is only an ordering."""
        return self.norm_ads < FEW_NORM_ADS

    def to_dict(self) -> dict[str, Any]:
        """The fields as JSON-ready values."""
        return {
            "campaign_faces": self.campaign_faces,
            "campaign_ads": self.campaign_ads,
            "campaign_suppressed": self.campaign_suppressed,
            "campaign_shares": self.campaign_shares,
            "campaign_valence": self.campaign_valence,
            "norm_ads": self.norm_ads,
            "percentiles": self.percentiles,
            "campaign_corrected": self.campaign_correction.to_dict() if self.campaign_correction else None,
        }


@dataclass(frozen=True)
class Confidence:
    """The distribution of the classifier's confidence (the top class's probability) over an ad's faces.

    Attributes:
        bins: ``(low, high, faces)`` per bin of ``tables.CONFIDENCE_BINS``.
        mean: mean top-class probability.
        median: median top-class probability.
        below_half: share of faces whose top class has a probability under 0.5.
    """

    bins: tuple[tuple[float, float, int], ...]
    mean: float
    median: float
    below_half: float

    def to_dict(self) -> dict[str, Any]:
        """The fields as JSON-ready values."""
        return {"bins": [list(b) for b in self.bins], "mean": self.mean, "median": self.median,
                "below_half": self.below_half}


@dataclass(frozen=True)
class TrendPoint:
    """One day of an ad's faces (day of the image's time, see ``tables.with_time_basis``); ``valence`` and
    ``shares`` are None when the day has fewer faces than the minimum group size."""

    day: dt.date
    faces: int
    valence: Optional[float]
    shares: Optional[dict[str, float]]

    def to_dict(self) -> dict[str, Any]:
        """The fields as JSON-ready values."""
        return {"day": self.day.isoformat(), "faces": self.faces, "valence": self.valence, "shares": self.shares}


@dataclass(frozen=True)
class ExampleFace:
    """One of the most confident faces of an expression: where it is, never its pixels."""

    emotion: str
    rank: int
    image_path: str
    face_index: int
    box: tuple[float, float, float, float]
    probability: float
    run_root: Optional[str]


@dataclass(frozen=True)
class AdReportData:
    """Everything one ad's report shows.

    When ``suppressed`` is true (fewer than ``min_faces`` faces) the distribution fields
    (``emotion_counts``, ``shares``, ``mean_probabilities``, ``dominant_emotion``, ``intervals``,
    ``valence``, ``valence_interval``, ``comparison``, ``confidence``, ``trend``, ``examples``,
    ``correction``) are ``None`` or empty so that no renderer or export can show them by mistake; the
    image and face counts and the period stay.

    ``shares`` and ``intervals`` are the raw shares (faces whose top expression is the class) and their
    Wilson intervals; ``correction`` holds the shares corrected for the classifier's confusion, the
    headline of the reports where it is applied (``headline``).
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
    intervals: Optional[dict[str, tuple[float, float]]] = None
    valence: Optional[float] = None
    valence_interval: Optional[tuple[float, float]] = None
    period_start: Optional[dt.datetime] = None
    period_end: Optional[dt.datetime] = None
    time_sources: dict[str, int] = field(default_factory=dict)
    comparison: Optional[Comparison] = None
    confidence: Optional[Confidence] = None
    trend: tuple[TrendPoint, ...] = ()
    examples: tuple[ExampleFace, ...] = ()
    correction: Optional[Correction] = None

    @property
    def headline(self) -> Optional[Headline]:
        """The shares the report leads with: corrected where the correction applies, raw otherwise."""
        return headline_of(self)

    @property
    def suppression_reason(self) -> Optional[str]:
        """Why the distribution is hidden, e.g. ``"fewer than 10 faces (7 found)"``; None when shown."""
        if not self.suppressed:
            return None
        noun = "face" if self.min_faces == 1 else "faces"
        return f"fewer than {self.min_faces} {noun} ({self.faces} found)"

    @property
    def readable_images(self) -> int:
        """Images that could be read (with or without a face)."""
        return self.images_ok + self.images_no_face

    @property
    def faces_per_image(self) -> Optional[float]:
        """Faces per readable image; None when no image could be read."""
        return self.faces / self.readable_images if self.readable_images else None

    @property
    def time_basis(self) -> str:
        """Which times date the images, e.g. ``"EXIF capture time for 12 images, file modification time for 1 image"``."""
        parts = [f"{TIME_SOURCES[s]} for {n} image{'s' if n != 1 else ''}"
                 for s, n in self.time_sources.items() if n]
        return ", ".join(parts) if parts else "unknown"

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
            "faces_per_image": self.faces_per_image,
            "model_ids": list(self.model_ids),
            "last_processed_at": _iso(self.last_processed_at),
            "period_start": _iso(self.period_start),
            "period_end": _iso(self.period_end),
            "time_sources": dict(self.time_sources),
            "suppressed": self.suppressed,
            "suppression_reason": self.suppression_reason,
            "emotion_counts": self.emotion_counts,
            "shares": self.shares,
            "intervals": {e: list(v) for e, v in self.intervals.items()} if self.intervals else None,
            "ci_method": CI_METHOD,
            "mean_probabilities": self.mean_probabilities,
            "dominant_emotion": self.dominant_emotion,
            "valence": self.valence,
            "valence_interval": _pair(self.valence_interval),
            "comparison": self.comparison.to_dict() if self.comparison else None,
            "confidence": self.confidence.to_dict() if self.confidence else None,
            "trend": [p.to_dict() for p in self.trend],
            "corrected": self.correction.to_dict() if self.correction else None,
        }


@dataclass(frozen=True)
class CampaignReportData:
    """Everything one campaign's report shows: its ads side by side and the pooled campaign figures.

    The pooled distribution fields are None when the whole campaign has fewer than ``min_faces`` faces;
    each ad keeps its own suppression.
    """

    campaign: str
    generated_at: dt.datetime
    min_faces: int
    ads: tuple[AdReportData, ...]
    images: int
    images_ok: int
    images_no_face: int
    images_failed: int
    faces: int
    model_ids: tuple[str, ...]
    period_start: Optional[dt.datetime]
    period_end: Optional[dt.datetime]
    suppressed: bool
    emotion_counts: Optional[dict[str, int]]
    shares: Optional[dict[str, float]]
    intervals: Optional[dict[str, tuple[float, float]]]
    valence: Optional[float]
    valence_interval: Optional[tuple[float, float]]
    dominant_emotion: Optional[str]
    correction: Optional[Correction] = None

    @property
    def headline(self) -> Optional[Headline]:
        """The shares the report leads with: corrected where the correction applies, raw otherwise."""
        return headline_of(self)

    @property
    def shown_ads(self) -> tuple[AdReportData, ...]:
        """The ads whose distribution is shown (at least the minimum group size)."""
        return tuple(a for a in self.ads if not a.suppressed)

    @property
    def suppressed_ads(self) -> tuple[AdReportData, ...]:
        """The ads whose distribution is hidden."""
        return tuple(a for a in self.ads if a.suppressed)

    def ranking(self, metric: str) -> list[AdReportData]:
        """The shown ads by ``metric`` (``valence`` or an expression's share), highest first; ties by name."""
        if metric not in METRICS:
            raise ConfigError(f"metric must be one of {list(METRICS)}. Received: metric={metric!r}")

        def value(ad: AdReportData) -> float:
            v = ad.valence if metric == "valence" else ad.shares[metric]
            return -2.0 if v is None else v

        return sorted(self.shown_ads, key=lambda a: (-value(a), a.ad))

    def to_dict(self) -> dict[str, Any]:
        """The pooled fields and the rankings (ad names) as JSON-ready values."""
        return {
            "campaign": self.campaign,
            "generated_at": self.generated_at.isoformat(),
            "min_faces": self.min_faces,
            "ads": len(self.ads),
            "images": self.images,
            "images_ok": self.images_ok,
            "images_no_face": self.images_no_face,
            "images_failed": self.images_failed,
            "faces": self.faces,
            "model_ids": list(self.model_ids),
            "period_start": _iso(self.period_start),
            "period_end": _iso(self.period_end),
            "suppressed": self.suppressed,
            "emotion_counts": self.emotion_counts,
            "shares": self.shares,
            "intervals": {e: list(v) for e, v in self.intervals.items()} if self.intervals else None,
            "valence": self.valence,
            "valence_interval": _pair(self.valence_interval),
            "dominant_emotion": self.dominant_emotion,
            "corrected": self.correction.to_dict() if self.correction else None,
            "suppressed_ads": [a.ad for a in self.suppressed_ads],
            "rankings": {m: [a.ad for a in self.ranking(m)] for m in METRICS},
        }


@dataclass(frozen=True)
class ReportSet:
    """Every ad and campaign of the database as the reports show them, with the norm they are ranked in."""

    generated_at: dt.datetime
    min_faces: int
    norm_ads: int
    ads: tuple[AdReportData, ...]
    campaigns: tuple[CampaignReportData, ...]

    def to_dict(self) -> dict[str, Any]:
        """The whole set as JSON-ready values (the content of ``summary.json``)."""
        from .tables import VALENCE_NEGATIVE, VALENCE_POSITIVE

        return {
            "generated_at": self.generated_at.isoformat(),
            "min_faces": self.min_faces,
            "ci_method": CI_METHOD,
            "valence": {"positive": list(VALENCE_POSITIVE), "negative": list(VALENCE_NEGATIVE),
                        "definition": "share of positive minus share of negative apparent expressions"},
            "norm_ads": self.norm_ads,
            "campaigns": [c.to_dict() for c in self.campaigns],
            "ads": [a.to_dict() for a in self.ads],
        }


# ---- assembly ------------------------------------------------------------------------------------------


def _per_emotion(row: dict, prefix: str) -> dict[str, Any]:
    return {e: row[f"{prefix}_{e}"] for e in EMOTIONS}


def _intervals(row: dict) -> dict[str, tuple[float, float]]:
    return {e: (row[f"ci_low_{e}"], row[f"ci_high_{e}"]) for e in EMOTIONS}


def _grouped(frame: pl.DataFrame, keys: list[str]) -> dict[tuple, list[dict]]:
    out: dict[tuple, list[dict]] = {}
    for row in frame.iter_rows(named=True):
        out.setdefault(tuple(row[k] for k in keys), []).append(row)
    return out


def _time_table(times_df: Optional[pl.DataFrame]) -> dict[tuple, dict]:
    if times_df is None or times_df.is_empty():
        return {}
    timed = with_time_basis(times_df.with_columns(pl.col(_KEY).cast(pl.String)))
    table = timed.group_by(_KEY).agg(
        pl.col("time").min().alias("start"),
        pl.col("time").max().alias("end"),
        *[(pl.col("time_source") == s).sum().cast(pl.Int64).alias(s) for s in TIME_SOURCES],
    )
    return {(r["campaign"], r["ad"]): r for r in table.iter_rows(named=True)}


def build_report_set(
    faces_df: pl.DataFrame,
    images_df: pl.DataFrame,
    times_df: Optional[pl.DataFrame] = None,
    *,
    min_faces: int = 10,
    generated_at: Optional[dt.datetime] = None,
    examples_per_emotion: int = 0,
    statistics: Optional[Mapping[str, ConfusionStats]] = None,
    correction_min_faces: int = CORRECTION_MIN_FACES,
) -> ReportSet:
    """Assemble what every ad and campaign report shows from the frames.

    The norm (percentile ranks) is every ad in the frames with at least ``min_faces`` faces: pass the
    frames of the whole database for database-wide norms.

    Args:
        faces_df: rows of ``face_results``.
        images_df: rows of ``image_results``; an ad appears when it has at least one image.
        times_df: rows of ``load_image_times`` (period, time basis, trend, example locations); without it
            the reports have no period, trend or examples.
        min_faces: the minimum group size below which distributions are suppressed.
        generated_at: the report time (UTC); now when omitted.
        examples_per_emotion: how many of the most confident faces per expression to locate (0: none).
        statistics: the models' validation statistics by model id (``correction.load_share_statistics``)
            for the corrected shares; None or empty: every shown group keeps its raw shares, saying why.
        correction_min_faces: below this many faces a group keeps its raw shares.

    Returns:
        The ``ReportSet``: ads sorted by campaign and ad, campaigns by name.
    """
    min_faces = _check_min_faces(min_faces)
    if isinstance(examples_per_emotion, bool) or not isinstance(examples_per_emotion, int) or examples_per_emotion < 0:
        raise ConfigError(f"examples_per_emotion must be an integer >= 0. Received: "
                          f"examples_per_emotion={examples_per_emotion!r}")
    generated_at = as_utc(generated_at) if generated_at else dt.datetime.now(dt.timezone.utc)
    _require_columns(faces_df, ["model_id", "processed_at"], "faces_df")
    faces_df = faces_df.with_columns(pl.col(_KEY).cast(pl.String))

    summary = with_intervals(with_valence(ad_summary(faces_df, images_df)))
    eligible = pl.col("faces") >= min_faces
    summary = percentile_ranks(summary, ["valence", *[f"share_{e}" for e in EMOTIONS]], eligible=eligible)
    summary = suppress_small_ads(summary, min_faces=min_faces)
    norm_ads = int(summary.filter(~pl.col("suppressed")).height)
    provenance = faces_df.group_by(_KEY).agg(
        pl.col("model_id").unique().sort().alias("model_ids"),
        pl.col("processed_at").max().alias("last_processed_at"),
    )
    summary = summary.join(provenance, on=_KEY, how="left").sort(_KEY)

    campaigns = with_intervals(campaign_summary(faces_df, images_df))
    campaign_rows = {r["campaign"]: r for r in campaigns.iter_rows(named=True)}
    histogram = _grouped(confidence_histogram(faces_df), _KEY)
    confidence = {(r["campaign"], r["ad"]): r for r in confidence_summary(faces_df).iter_rows(named=True)}
    times = _time_table(times_df)
    corrected_ads, corrected_campaigns = corrections(faces_df, statistics or {}, min_faces=correction_min_faces)
    trends: dict[tuple, list[dict]] = {}
    examples: dict[tuple, list[dict]] = {}
    if times_df is not None:
        trends = _grouped(capture_trend(faces_df, times_df), _KEY)
        if examples_per_emotion and not faces_df.is_empty():
            roots = times_df.select([*_KEY, "image_path", "run_root"]).with_columns(pl.col(_KEY).cast(pl.String))
            located = top_faces(faces_df, per_emotion=examples_per_emotion).join(
                roots, on=[*_KEY, "image_path"], how="left")
            examples = _grouped(located, _KEY)

    ads: list[AdReportData] = []
    for row in summary.iter_rows(named=True):
        key = (row["campaign"], row["ad"])
        shown = not row["suppressed"]
        camp = campaign_rows[row["campaign"]]
        camp_shown = camp["faces"] >= min_faces
        when = times.get(key)
        ads.append(AdReportData(
            campaign=row["campaign"], ad=row["ad"], generated_at=generated_at, min_faces=min_faces,
            images=row["images"], images_ok=row["images_ok"], images_no_face=row["images_no_face"],
            images_failed=row["images_failed"], faces=row["faces"], model_ids=tuple(row["model_ids"] or ()),
            last_processed_at=as_utc(row["last_processed_at"]), suppressed=not shown,
            emotion_counts=_per_emotion(row, "count") if shown else None,
            shares=_per_emotion(row, "share") if shown else None,
            mean_probabilities=_per_emotion(row, "mean_p") if shown else None,
            dominant_emotion=row["dominant_emotion"] if shown else None,
            intervals=_intervals(row) if shown else None,
            valence=row["valence"] if shown else None,
            valence_interval=valence_interval(_per_emotion(row, "count")) if shown else None,
            period_start=when["start"] if when else None,
            period_end=when["end"] if when else None,
            time_sources={s: when[s] for s in TIME_SOURCES} if when else {},
            comparison=Comparison(
                campaign_faces=camp["faces"], campaign_ads=camp["ads"], campaign_suppressed=not camp_shown,
                campaign_shares=_per_emotion(camp, "share") if camp_shown else None,
                campaign_valence=camp["valence"] if camp_shown else None, norm_ads=norm_ads,
                percentiles={"valence": row["pct_valence"], **{e: row[f"pct_share_{e}"] for e in EMOTIONS}},
                campaign_correction=corrected_campaigns.get(row["campaign"]) if camp_shown else None,
            ) if shown else None,
            confidence=Confidence(
                bins=tuple((b["low"], b["high"], b["faces"]) for b in histogram[key]),
                mean=confidence[key]["confidence_mean"], median=confidence[key]["confidence_median"],
                below_half=confidence[key]["confidence_below_half"],
            ) if shown else None,
            trend=tuple(
                TrendPoint(day=t["day"], faces=t["faces"],
                           valence=t["valence"] if t["faces"] >= min_faces else None,
                           shares=_per_emotion(t, "share") if t["faces"] >= min_faces else None)
                for t in trends.get(key, ())
            ) if shown else (),
            examples=tuple(
                ExampleFace(emotion=x["emotion"], rank=x["rank"], image_path=x["image_path"],
                            face_index=x["face_index"], box=(x["x"], x["y"], x["w"], x["h"]),
                            probability=x["probability"], run_root=x["run_root"])
                for x in examples.get(key, ())
            ) if shown else (),
            correction=corrected_ads.get(key) if shown else None,
        ))

    by_campaign: dict[str, list[AdReportData]] = {}
    for ad in ads:
        by_campaign.setdefault(ad.campaign, []).append(ad)
    campaign_data = []
    for name, members in sorted(by_campaign.items()):
        camp = campaign_rows[name]
        shown = camp["faces"] >= min_faces
        starts = [a.period_start for a in members if a.period_start]
        ends = [a.period_end for a in members if a.period_end]
        campaign_data.append(CampaignReportData(
            campaign=name, generated_at=generated_at, min_faces=min_faces, ads=tuple(members),
            images=camp["images"], images_ok=camp["images_ok"], images_no_face=camp["images_no_face"],
            images_failed=camp["images_failed"], faces=camp["faces"],
            model_ids=tuple(sorted({m for a in members for m in a.model_ids})),
            period_start=min(starts) if starts else None, period_end=max(ends) if ends else None,
            suppressed=not shown,
            emotion_counts=_per_emotion(camp, "count") if shown else None,
            shares=_per_emotion(camp, "share") if shown else None,
            intervals=_intervals(camp) if shown else None,
            valence=camp["valence"] if shown else None,
            valence_interval=valence_interval(_per_emotion(camp, "count")) if shown else None,
            dominant_emotion=camp["dominant_emotion"] if shown else None,
            correction=corrected_campaigns.get(name) if shown else None,
        ))
    return ReportSet(generated_at=generated_at, min_faces=min_faces, norm_ads=norm_ads, ads=tuple(ads),
                     campaigns=tuple(campaign_data))


def load_report_set(
    session: Session,
    *,
    min_faces: int = 10,
    generated_at: Optional[dt.datetime] = None,
    examples_per_emotion: int = 0,
    statistics: Optional[Mapping[str, ConfusionStats]] = None,
    correction_min_faces: int = CORRECTION_MIN_FACES,
) -> ReportSet:
    """Read every ad of the database and return the ``ReportSet`` (database-wide norms).

    Args:
        session: an open SQLAlchemy session; nothing is written.
        min_faces: the minimum group size below which distributions are suppressed.
        generated_at: the report time (UTC); now when omitted.
        examples_per_emotion: how many of the most confident faces per expression to locate (0: none).
        statistics: validation statistics by model id for the corrected shares (see ``build_report_set``).
        correction_min_faces: below this many faces a group keeps its raw shares.
    """
    return build_report_set(load_faces(session), load_images(session), load_image_times(session),
                            min_faces=min_faces, generated_at=generated_at,
                            examples_per_emotion=examples_per_emotion, statistics=statistics,
                            correction_min_faces=correction_min_faces)


def ad_reports_from_frames(
    faces_df: pl.DataFrame,
    images_df: pl.DataFrame,
    *,
    min_faces: int = 10,
    generated_at: Optional[dt.datetime] = None,
    times_df: Optional[pl.DataFrame] = None,
) -> list[AdReportData]:
    """Build the report data of every ad in the frames, sorted by campaign and ad (see ``build_report_set``).

    Args:
        faces_df: rows of ``face_results``.
        images_df: rows of ``image_results``; an ad appears when it has at least one image.
        min_faces: the minimum group size below which the distribution is suppressed.
        generated_at: the report time (UTC); now when omitted.
        times_df: rows of ``load_image_times``, for the period and the trend.

    Returns:
        One ``AdReportData`` per ad.
    """
    report_set = build_report_set(faces_df, images_df, times_df, min_faces=min_faces, generated_at=generated_at)
    return list(report_set.ads)


def ad_report_data(
    session: Session,
    campaign: str,
    ad: str,
    *,
    min_faces: int = 10,
    generated_at: Optional[dt.datetime] = None,
) -> AdReportData:
    """Read the database and return what one ad's report shows (compared with every ad in the database).

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
    for data in load_report_set(session, min_faces=min_faces, generated_at=generated_at).ads:
        if (data.campaign, data.ad) == (campaign, ad):
            return data
    raise ReportError(f"No image is stored for this ad. Received: campaign={campaign!r}, ad={ad!r}")


def select_ads(report_set: ReportSet, ads: Optional[Sequence[tuple[str, str]]]) -> list[AdReportData]:
    """The ads of ``report_set`` named in ``ads`` (all when None), logging those without any stored image."""
    pairs = _check_ads(ads)
    if pairs is None:
        return list(report_set.ads)
    wanted = set(pairs)
    chosen = [a for a in report_set.ads if (a.campaign, a.ad) in wanted]
    missing = sorted(wanted - {(a.campaign, a.ad) for a in chosen})
    if missing:
        logger.warning("No report for %d ad(s) without any stored image: %s", len(missing), missing[:10])
    return chosen
