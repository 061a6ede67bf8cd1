"""What each report shows, assembled from the aggregate tables into the values of ``report_types.py``: one
``AdReportData`` per ad, one ``CampaignReportData`` per campaign, and the ``ReportSet`` the batch renderer,
``summary.json`` and ``summary.csv`` share.

Every number here comes from ``tables.py`` over the frames of ``frames.py``, so it can be recomputed
from the database. Groups below the minimum group size get no ``Distribution`` (and no comparison,
confidence, trend, examples or correction), so no renderer or export can show them by mistake.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping, Sequence
from typing import Any, Optional

import polars as pl
from sqlalchemy.orm import Session

from ..exceptions import ConfigError, ReportError
from ..labels import EMOTIONS
from ..timeutil import as_utc
from .correction import CORRECTION_MIN_FACES, corrections
from .frames import AD_KEY, check_ads, load_faces, load_image_times, load_images
from .quantify import ConfusionStats
from .report_types import (
    AdReportData,
    CampaignReportData,
    Comparison,
    Confidence,
    Distribution,
    ExampleFace,
    ReportSet,
    TrendPoint,
)
from .tables import (
    TIME_SOURCES,
    ad_summary,
    campaign_summary,
    capture_trend,
    check_min_faces,
    confidence_histogram,
    confidence_summary,
    percentile_ranks,
    require_columns,
    suppress_small_ads,
    top_faces,
    with_intervals,
    with_time_basis,
    with_valence,
)

__all__ = [
    "ad_report_data",
    "ad_reports_from_frames",
    "build_report_set",
    "load_report_set",
    "select_ads",
]

log = logging.getLogger(__name__)


def _grouped(frame: pl.DataFrame) -> dict[tuple, list[dict]]:
    """The rows of ``frame`` by (campaign, ad), in their order."""
    return {key: part.to_dicts() for key, part in frame.partition_by(AD_KEY, as_dict=True, maintain_order=True).items()}


def _time_table(times_df: Optional[pl.DataFrame]) -> dict[tuple, dict]:
    if times_df is None or times_df.is_empty():
        return {}
    timed = with_time_basis(times_df.with_columns(pl.col(AD_KEY).cast(pl.String)))
    table = timed.group_by(AD_KEY).agg(
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
    min_faces = check_min_faces(min_faces)
    if isinstance(examples_per_emotion, bool) or not isinstance(examples_per_emotion, int) or examples_per_emotion < 0:
        raise ConfigError(f"examples_per_emotion must be an integer >= 0. Received: "
                          f"examples_per_emotion={examples_per_emotion!r}")
    generated_at = as_utc(generated_at) if generated_at else dt.datetime.now(dt.timezone.utc)
    require_columns(faces_df, ["model_id", "processed_at"], "faces_df")
    faces_df = faces_df.with_columns(pl.col(AD_KEY).cast(pl.String))

    summary = with_intervals(with_valence(ad_summary(faces_df, images_df)))
    eligible = pl.col("faces") >= min_faces
    summary = percentile_ranks(summary, ["valence", *[f"share_{e}" for e in EMOTIONS]], eligible=eligible)
    summary = suppress_small_ads(summary, min_faces=min_faces)
    norm_ads = int(summary.filter(~pl.col("suppressed")).height)
    provenance = faces_df.group_by(AD_KEY).agg(
        pl.col("model_id").unique().sort().alias("model_ids"),
        pl.col("processed_at").max().alias("last_processed_at"),
    )
    summary = summary.join(provenance, on=AD_KEY, how="left").sort(AD_KEY)

    campaign_rows = {r["campaign"]: r for r in with_intervals(campaign_summary(faces_df, images_df)).iter_rows(named=True)}
    pooled = {name: Distribution.from_row(r) if r["faces"] >= min_faces else None for name, r in campaign_rows.items()}
    corrected_ads, corrected_campaigns = corrections(faces_df, statistics or {}, min_faces=correction_min_faces)
    corrected_campaigns = {name: c for name, c in corrected_campaigns.items() if pooled.get(name)}
    histogram = _grouped(confidence_histogram(faces_df))
    confidence = {(r["campaign"], r["ad"]): r for r in confidence_summary(faces_df).iter_rows(named=True)}
    times = _time_table(times_df)
    trends: dict[tuple, list[dict]] = {}
    examples: dict[tuple, list[dict]] = {}
    if times_df is not None:
        trends = _grouped(capture_trend(faces_df, times_df))
        if examples_per_emotion and not faces_df.is_empty():
            roots = times_df.select([*AD_KEY, "image_path", "run_root"]).with_columns(pl.col(AD_KEY).cast(pl.String))
            located = top_faces(faces_df, per_emotion=examples_per_emotion).join(
                roots, on=[*AD_KEY, "image_path"], how="left")
            examples = _grouped(located)

    def shown(row: dict[str, Any], key: tuple[str, str]) -> dict[str, Any]:
        """The fields of an ad at or above the minimum group size."""
        camp = campaign_rows[row["campaign"]]
        conf = confidence[key]
        return {
            "distribution": Distribution.from_row(row),
            "comparison": Comparison(
                campaign_faces=camp["faces"], campaign_ads=camp["ads"], campaign=pooled[row["campaign"]],
                norm_ads=norm_ads,
                percentiles={"valence": row["pct_valence"], **{e: row[f"pct_share_{e}"] for e in EMOTIONS}},
                campaign_correction=corrected_campaigns.get(row["campaign"])),
            "confidence": Confidence(bins=tuple((b["low"], b["high"], b["faces"]) for b in histogram[key]),
                                     mean=conf["confidence_mean"], median=conf["confidence_median"],
                                     below_half=conf["confidence_below_half"]),
            "trend": tuple(_trend_point(t, min_faces) for t in trends.get(key, ())),
            "examples": tuple(
                ExampleFace(emotion=x["emotion"], rank=x["rank"], image_path=x["image_path"],
                            face_index=x["face_index"], box=(x["x"], x["y"], x["w"], x["h"]),
                            probability=x["probability"], run_root=x["run_root"])
                for x in examples.get(key, ())),
            "correction": corrected_ads.get(key),
        }

    ads: list[AdReportData] = []
    for row in summary.iter_rows(named=True):
        key = (row["campaign"], row["ad"])
        when = times.get(key)
        ads.append(AdReportData(
            campaign=row["campaign"], ad=row["ad"], generated_at=generated_at, min_faces=min_faces,
            images=row["images"], images_ok=row["images_ok"], images_no_face=row["images_no_face"],
            images_failed=row["images_failed"], faces=row["faces"], model_ids=tuple(row["model_ids"] or ()),
            last_processed_at=as_utc(row["last_processed_at"]),
            period_start=when["start"] if when else None,
            period_end=when["end"] if when else None,
            time_sources={s: when[s] for s in TIME_SOURCES} if when else {},
            **({"distribution": None} if row["suppressed"] else shown(row, key)),
        ))

    by_campaign: dict[str, list[AdReportData]] = {}
    for ad in ads:
        by_campaign.setdefault(ad.campaign, []).append(ad)
    campaign_data = []
    for name, members in sorted(by_campaign.items()):
        camp = campaign_rows[name]
        starts = [a.period_start for a in members if a.period_start]
        ends = [a.period_end for a in members if a.period_end]
        campaign_data.append(CampaignReportData(
            campaign=name, generated_at=generated_at, min_faces=min_faces, ads=tuple(members),
            images=camp["images"], images_ok=camp["images_ok"], images_no_face=camp["images_no_face"],
            images_failed=camp["images_failed"], faces=camp["faces"],
            model_ids=tuple(sorted({m for a in members for m in a.model_ids})),
            period_start=min(starts) if starts else None, period_end=max(ends) if ends else None,
            distribution=pooled[name], correction=corrected_campaigns.get(name),
        ))
    return ReportSet(generated_at=generated_at, min_faces=min_faces, norm_ads=norm_ads, ads=tuple(ads),
                     campaigns=tuple(campaign_data))


def _trend_point(row: dict[str, Any], min_faces: int) -> TrendPoint:
    """A day of the trend; its valence and shares only at or above the minimum group size."""
    if row["faces"] < min_faces:
        return TrendPoint(day=row["day"], faces=row["faces"], valence=None, shares=None)
    return TrendPoint(day=row["day"], faces=row["faces"], valence=row["valence"],
                      shares={e: row[f"share_{e}"] for e in EMOTIONS})


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
    min_faces = check_min_faces(min_faces)
    for data in load_report_set(session, min_faces=min_faces, generated_at=generated_at).ads:
        if (data.campaign, data.ad) == (campaign, ad):
            return data
    raise ReportError(f"No image is stored for this ad. Received: campaign={campaign!r}, ad={ad!r}")


def select_ads(report_set: ReportSet, ads: Optional[Sequence[tuple[str, str]]] = None, *,
               campaign: Optional[str] = None, ad: Optional[str] = None) -> list[AdReportData]:
    """The ads of ``report_set`` named in ``ads`` (all when None) that are of ``campaign`` and named ``ad`` (where
    given), logging the pairs of ``ads`` without any stored image."""
    pairs = check_ads(ads)
    chosen = [a for a in report_set.ads if (campaign is None or a.campaign == campaign) and (ad is None or a.ad == ad)]
    if pairs is None:
        return chosen
    wanted = set(pairs)
    chosen = [a for a in chosen if (a.campaign, a.ad) in wanted]
    missing = sorted(wanted - {(a.campaign, a.ad) for a in report_set.ads})
    if missing:
        log.warning("No report for %d ad(s) without any stored image: %s", len(missing), missing[:10])
    return chosen
