"""What the reports show, as values: one ``AdReportData`` per ad, one ``CampaignReportData`` per campaign, the
``ReportSet`` the batch renderer, ``summary.json`` and ``summary.csv`` share, and the ``Distribution`` of
expressions that ads and campaigns alike hold (``report_data.py`` assembles them from the tables).

A group below the minimum group size holds no ``Distribution`` (``distribution`` is None), so every
distribution field reads None and no renderer or export can show it by mistake.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Optional

from ..exceptions import ConfigError
from ..labels import EMOTIONS, VALENCE_NEGATIVE, VALENCE_POSITIVE
from .correction import Correction
from .tables import CI_METHOD, TIME_SOURCES, valence_interval

__all__ = [
    "AdReportData",
    "CampaignReportData",
    "Comparison",
    "Confidence",
    "Distribution",
    "ExampleFace",
    "FEW_NORM_ADS",
    "Headline",
    "METRICS",
    "ReportSet",
    "TrendPoint",
]

#: The metrics ads are ranked by: valence, then the share of each expression.
METRICS = ("valence", *EMOTIONS)
#: Below this many ads in the norm, reports say the percentile is an ordering of few ads, not a norm.
FEW_NORM_ADS = 20


def _iso(value: Optional[dt.datetime]) -> Optional[str]:
    return value.isoformat() if value is not None else None


def _pair(value: Optional[tuple[float, float]]) -> Optional[list[float]]:
    return list(value) if value is not None else None


def _per_emotion(row: Mapping[str, Any], prefix: str) -> dict[str, Any]:
    return {e: row[f"{prefix}_{e}"] for e in EMOTIONS}


@dataclass(frozen=True)
class Distribution:
    """The apparent expressions of a group of faces (an ad, a campaign) at or above the minimum group size.

    Attributes:
        counts: faces whose top expression is each class (``EMOTIONS`` order).
        shares: ``counts / faces``, the raw shares.
        intervals: the Wilson interval of each share (``tables.CI_METHOD``).
        valence: share of positive minus share of negative faces (``tables.valence``).
        valence_interval: its 95 % interval (``tables.valence_interval``).
        dominant: the expression with the highest share (ties: the earlier in ``EMOTIONS``).
        mean_probabilities: the mean probability of each class over the faces (shown for ads).
    """

    counts: dict[str, int]
    shares: dict[str, float]
    intervals: dict[str, tuple[float, float]]
    valence: Optional[float]
    valence_interval: Optional[tuple[float, float]]
    dominant: Optional[str]
    mean_probabilities: dict[str, float]

    #: The keys of ``to_dict`` (in ``summary.json``) and of ``columns`` (in ``summary.csv``, ``campaigns.csv``).
    FIELDS: ClassVar[tuple[str, ...]] = ("emotion_counts", "shares", "intervals", "valence", "valence_interval",
                                         "dominant_emotion")
    COLUMNS: ClassVar[tuple[str, ...]] = (
        "dominant_emotion", "valence", "valence_low", "valence_high",
        *(f"count_{e}" for e in EMOTIONS), *(f"share_{e}" for e in EMOTIONS),
        *(f"ci_{bound}_{e}" for e in EMOTIONS for bound in ("low", "high")),
    )

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Distribution:
        """The distribution of a row of ``ad_summary`` or ``campaign_summary`` with ``with_valence`` and
        ``with_intervals`` columns."""
        counts = _per_emotion(row, "count")
        return cls(counts=counts, shares=_per_emotion(row, "share"),
                   intervals={e: (row[f"ci_low_{e}"], row[f"ci_high_{e}"]) for e in EMOTIONS},
                   valence=row["valence"], valence_interval=valence_interval(counts),
                   dominant=row["dominant_emotion"], mean_probabilities=_per_emotion(row, "mean_p"))

    def to_dict(self) -> dict[str, Any]:
        """The ``FIELDS`` as JSON-ready values."""
        values = (self.counts, self.shares, {e: list(v) for e, v in self.intervals.items()}, self.valence,
                  _pair(self.valence_interval), self.dominant)
        return dict(zip(self.FIELDS, values, strict=True))

    def columns(self) -> dict[str, Any]:
        """The ``COLUMNS``: the dominant expression, valence with its interval, then count, share and interval
        of every expression."""
        values = (self.dominant, self.valence, *(self.valence_interval or (None, None)),
                  *(self.counts[e] for e in EMOTIONS), *(self.shares[e] for e in EMOTIONS),
                  *(bound for e in EMOTIONS for bound in self.intervals[e]))
        return dict(zip(self.COLUMNS, values, strict=True))


@dataclass(frozen=True)
class Headline:
    """The shares a report leads with (chart, key figures): corrected, or raw with the reason why.

    Attributes:
        corrected: whether these are the corrected shares.
        shares, intervals, valence, valence_interval, dominant_emotion: as in ``AdReportData``.
        note: why the raw shares lead (too few faces, no statistics for the model); None when corrected.
    """

    corrected: bool
    shares: dict[str, float]
    intervals: Optional[dict[str, tuple[float, float]]]
    valence: Optional[float]
    valence_interval: Optional[tuple[float, float]]
    dominant_emotion: Optional[str]
    note: Optional[str] = None


def _through(holder: str, name: str, doc: str) -> property:
    """A read-only attribute: ``self.<holder>.<name>``, None while ``self.<holder>`` is None (hidden)."""

    def get(self: Any) -> Any:
        value = getattr(self, holder)
        return getattr(value, name) if value is not None else None

    return property(get, doc=doc)


class _Shown:
    """The distribution fields of an ad or a campaign, read through its ``distribution`` (None: hidden)."""

    distribution: Optional[Distribution]
    correction: Optional[Correction]

    emotion_counts = _through("distribution", "counts", "Faces per top expression; None when hidden.")
    shares = _through("distribution", "shares", "The raw share of each expression; None when hidden.")
    intervals = _through("distribution", "intervals", "The Wilson interval of each share; None when hidden.")
    valence = _through("distribution", "valence", "Valence; None when hidden.")
    valence_interval = _through("distribution", "valence_interval", "The 95 % interval of valence; None when hidden.")
    dominant_emotion = _through("distribution", "dominant", "The most frequent expression; None when hidden.")

    @property
    def suppressed(self) -> bool:
        """Whether the distribution is hidden (fewer than ``min_faces`` faces)."""
        return self.distribution is None

    @property
    def headline(self) -> Optional[Headline]:
        """The shares the report leads with: corrected where the correction applies, raw otherwise; None when
        the distribution is hidden."""
        d, c = self.distribution, self.correction
        if d is None:
            return None
        if c is not None and c.applied:
            return Headline(True, c.shares, c.intervals, c.valence, c.valence_interval, c.dominant_emotion)
        return Headline(False, d.shares, d.intervals, d.valence, d.valence_interval, d.dominant,
                        note=c.note if c is not None else None)

    def distribution_dict(self) -> dict[str, Any]:
        """``Distribution.to_dict``, its keys with None when hidden."""
        return self.distribution.to_dict() if self.distribution else dict.fromkeys(Distribution.FIELDS)

    def distribution_columns(self) -> dict[str, Any]:
        """``Distribution.columns``, empty when hidden."""
        return self.distribution.columns() if self.distribution else dict.fromkeys(Distribution.COLUMNS)


@dataclass(frozen=True)
class Comparison:
    """How one ad compares with its campaign and with every ad in the database.

    Attributes:
        campaign_faces: faces of the whole campaign.
        campaign_ads: ads of the campaign with at least one image.
        campaign: the campaign's pooled distribution (None when the campaign is below the minimum group size).
        norm_ads: ads in the database with at least the minimum group size of faces: the norm.
        percentiles: percentile rank (0-100) of this ad among the norm, per metric in ``METRICS``.
        campaign_correction: the campaign's corrected shares (None when suppressed).
    """

    campaign_faces: int
    campaign_ads: int
    campaign: Optional[Distribution]
    norm_ads: int
    percentiles: dict[str, Optional[float]]
    campaign_correction: Optional[Correction] = None

    @property
    def campaign_suppressed(self) -> bool:
        """Whether the campaign has fewer faces than the minimum group size."""
        return self.campaign is None

    @property
    def few_norm_ads(self) -> bool:
        """Whether the norm has so few ads that a percentile is only an ordering."""
        return self.norm_ads < FEW_NORM_ADS

    campaign_shares = _through("campaign", "shares", "The campaign's pooled share per expression; None when hidden.")
    campaign_valence = _through("campaign", "valence", "The campaign's pooled valence; None when hidden.")

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
class AdReportData(_Shown):
    """Everything one ad's report shows.

    When ``suppressed`` is true (fewer than ``min_faces`` faces) ``distribution`` is None, so its fields
    (``emotion_counts``, ``shares``, ``mean_probabilities``, ``dominant_emotion``, ``intervals``,
    ``valence``, ``valence_interval``) read None, and ``comparison``, ``confidence``, ``trend``, ``examples``
    and ``correction`` are None or empty, so that no renderer or export can show them by mistake; the image
    and face counts and the period stay.

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
    distribution: Optional[Distribution]
    period_start: Optional[dt.datetime] = None
    period_end: Optional[dt.datetime] = None
    time_sources: dict[str, int] = field(default_factory=dict)
    comparison: Optional[Comparison] = None
    confidence: Optional[Confidence] = None
    trend: tuple[TrendPoint, ...] = ()
    examples: tuple[ExampleFace, ...] = ()
    correction: Optional[Correction] = None

    mean_probabilities = _through("distribution", "mean_probabilities",
                                  "The mean probability of each class; None when hidden.")

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
            **self.distribution_dict(),
            "ci_method": CI_METHOD,
            "mean_probabilities": self.mean_probabilities,
            "comparison": self.comparison.to_dict() if self.comparison else None,
            "confidence": self.confidence.to_dict() if self.confidence else None,
            "trend": [p.to_dict() for p in self.trend],
            "corrected": self.correction.to_dict() if self.correction else None,
        }


@dataclass(frozen=True)
class CampaignReportData(_Shown):
    """Everything one campaign's report shows: its ads side by side and the pooled campaign figures.

    ``distribution`` (the pooled figures) is None when the whole campaign has fewer than ``min_faces`` faces;
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
    distribution: Optional[Distribution]
    correction: Optional[Correction] = None

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
            **self.distribution_dict(),
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
