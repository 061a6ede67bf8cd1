"""The numbers every report, export and view agrees on, computed once with polars.

- ``frames``: rows of the analyst views ``face_results`` and ``image_results`` (``sql/views.sql``), and
  the image times, as typed polars frames;
- ``tables``: per-ad and per-campaign summaries, valence, Wilson intervals, percentile ranks (norms),
  classifier confidence, trends and example faces, as pure functions of those frames;
- ``quantify``: shares corrected for the classifier's confusion (PACC, ACC, EM) with bootstrap intervals;
- ``correction``: the models' validation statistics (``models/<name>.shares.json``) applied per ad and
  per campaign;
- ``report_types``: what each ad and campaign report shows, as values (``Distribution``, ``AdReportData``,
  ``CampaignReportData``, ``ReportSet``);
- ``report_data``: those values assembled from the tables.

Valence and the failed image statuses are defined once, in ``emotion_batch.labels`` (re-exported here).

The analyst views ``ad_emotion_summary``, ``campaign_emotion_summary`` and ``daily_emotion_trend`` compute
the same numbers in SQL (``tests/test_sql_analytics.py``).
"""

from ..labels import FAILED_STATUSES, VALENCE_NEGATIVE, VALENCE_POSITIVE
from .correction import (
    CORRECTION_METHOD,
    CORRECTION_MIN_FACES,
    Correction,
    corrections,
    load_share_statistics,
    share_estimate_rows,
)
from .frames import (
    AD_KEY,
    FACE_SCHEMA,
    IMAGE_SCHEMA,
    IMAGE_TIMES_SCHEMA,
    IMAGE_TIMES_SQL,
    load_faces,
    load_image_times,
    load_images,
)
from .quantify import ConfusionStats, ShareEstimate, correct_shares, estimate_shares
from .report_data import ad_report_data, ad_reports_from_frames, build_report_set, load_report_set, select_ads
from .report_types import (
    METRICS,
    AdReportData,
    CampaignReportData,
    Comparison,
    Confidence,
    Distribution,
    ExampleFace,
    Headline,
    ReportSet,
    TrendPoint,
)
from .tables import (
    CI_METHOD,
    CONFIDENCE_BINS,
    TIME_SOURCES,
    Z95,
    ad_summary,
    campaign_summary,
    capture_trend,
    confidence_histogram,
    confidence_summary,
    daily_trend,
    percentile_ranks,
    suppress_small_ads,
    top_faces,
    valence,
    valence_interval,
    wilson_interval,
    with_intervals,
    with_time_basis,
    with_valence,
)

__all__ = [
    "AD_KEY",
    "AdReportData",
    "CI_METHOD",
    "CONFIDENCE_BINS",
    "CORRECTION_METHOD",
    "CORRECTION_MIN_FACES",
    "CampaignReportData",
    "Comparison",
    "Confidence",
    "ConfusionStats",
    "Correction",
    "Distribution",
    "ExampleFace",
    "FACE_SCHEMA",
    "FAILED_STATUSES",
    "Headline",
    "IMAGE_SCHEMA",
    "IMAGE_TIMES_SCHEMA",
    "IMAGE_TIMES_SQL",
    "METRICS",
    "ReportSet",
    "ShareEstimate",
    "TIME_SOURCES",
    "TrendPoint",
    "VALENCE_NEGATIVE",
    "VALENCE_POSITIVE",
    "Z95",
    "ad_report_data",
    "ad_reports_from_frames",
    "ad_summary",
    "build_report_set",
    "campaign_summary",
    "capture_trend",
    "confidence_histogram",
    "confidence_summary",
    "correct_shares",
    "corrections",
    "daily_trend",
    "estimate_shares",
    "load_faces",
    "load_image_times",
    "load_images",
    "load_report_set",
    "load_share_statistics",
    "percentile_ranks",
    "select_ads",
    "share_estimate_rows",
    "suppress_small_ads",
    "top_faces",
    "valence",
    "valence_interval",
    "wilson_interval",
    "with_intervals",
    "with_time_basis",
    "with_valence",
]
