"""The aggregate tables: per-ad and per-campaign summaries, valence, intervals, norms, confidence, trends.

Pure functions of the frames ``frames.py`` loads; nothing here touches the database. The analyst views
``ad_emotion_summary``, ``campaign_emotion_summary`` and ``daily_emotion_trend`` (``sql/``) compute the
same numbers as ``ad_summary``, ``campaign_summary`` and ``daily_trend`` (``tests/test_sql_analytics.py``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any, Optional

import polars as pl

from ..exceptions import ConfigError, ReportError
from ..labels import EMOTIONS, FAILED_STATUSES, VALENCE_NEGATIVE, VALENCE_POSITIVE
from ..store.models import IMAGE_STATUSES, PROB_COLUMNS
from .frames import AD_KEY

__all__ = [
    "CI_METHOD",
    "CONFIDENCE_BINS",
    "TIME_SOURCES",
    "Z95",
    "ad_summary",
    "campaign_summary",
    "capture_trend",
    "check_min_faces",
    "confidence_histogram",
    "confidence_summary",
    "daily_trend",
    "percentile_ranks",
    "require_columns",
    "suppress_small_ads",
    "top_faces",
    "valence",
    "valence_interval",
    "wilson_interval",
    "with_intervals",
    "with_time_basis",
    "with_valence",
]


def require_columns(frame: pl.DataFrame, names: Iterable[str], what: str) -> None:
    """Raise ``ReportError`` naming the columns of ``names`` that ``frame`` (called ``what``) lacks."""
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
    require_columns(faces_df, [*AD_KEY, "top_emotion", *PROB_COLUMNS], "faces_df")
    require_columns(images_df, [*AD_KEY, "status"], "images_df")
    _require_values(faces_df, "top_emotion", EMOTIONS, "faces_df")
    _require_values(images_df, "status", IMAGE_STATUSES, "images_df")
    keys_as_text = pl.col(AD_KEY).cast(pl.String)
    faces_df = faces_df.with_columns(keys_as_text)
    images_df = images_df.with_columns(keys_as_text, pl.col("status").cast(pl.String))

    status = pl.col("status")
    per_images = images_df.group_by(AD_KEY).agg(
        pl.len().cast(pl.Int64).alias("images"),
        (status == "ok").sum().cast(pl.Int64).alias("images_ok"),
        (status == "no_face").sum().cast(pl.Int64).alias("images_no_face"),
        status.is_in(list(FAILED_STATUSES)).sum().cast(pl.Int64).alias("images_failed"),
    )
    per_faces = faces_df.group_by(AD_KEY).agg(
        pl.len().cast(pl.Int64).alias("faces"),
        *[(pl.col("top_emotion") == e).sum().cast(pl.Int64).alias(f"count_{e}") for e in EMOTIONS],
        *[pl.col(f"p_{e}").cast(pl.Float64).mean().alias(f"mean_p_{e}") for e in EMOTIONS],
    )
    counts = ["faces", *[f"count_{e}" for e in EMOTIONS]]
    summary = per_images.join(per_faces, on=AD_KEY, how="left").with_columns(pl.col(counts).fill_null(0))

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
        *AD_KEY,
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
    return summary.select(order).sort(AD_KEY)


def check_min_faces(min_faces: Any) -> int:
    """Return ``min_faces``, the minimum group size, after checking it is an integer >= 1 (``ConfigError``)."""
    if isinstance(min_faces, bool) or not isinstance(min_faces, int) or min_faces < 1:
        raise ConfigError(f"min_faces must be an integer >= 1. Received: min_faces={min_faces!r}")
    return min_faces


def suppress_small_ads(summary: pl.DataFrame, *, min_faces: int = 10) -> pl.DataFrame:
    """Hide the expression distribution of ads (or campaigns) with fewer than ``min_faces`` faces.

    Args:
        summary: the frame ``ad_summary`` (or ``campaign_summary``) returns, possibly with the columns
            ``with_valence``, ``with_intervals`` and ``percentile_ranks`` add.
        min_faces: the minimum group size; 1 hides only ads without faces.

    Returns:
        The summary with a boolean ``suppressed`` column added and, where it is true, the per-emotion counts,
        shares, mean probabilities, the dominant emotion and, where present, ``valence*``, ``ci_*``,
        ``pct_*`` and ``confidence_*`` columns set to null. Images and faces stay.
    """
    min_faces = check_min_faces(min_faces)
    hidden = [
        *[f"{prefix}_{e}" for prefix in ("count", "share", "mean_p") for e in EMOTIONS],
        "dominant_emotion",
    ]
    require_columns(summary, ["faces", *hidden], "summary")
    optional = ("valence", "ci_", "pct_", "confidence_")
    hidden += [c for c in summary.columns if c not in hidden and c.startswith(optional)]
    suppressed = pl.col("faces") < min_faces
    return summary.with_columns(
        *[pl.when(~suppressed).then(pl.col(name)).alias(name) for name in hidden],
        suppressed.alias("suppressed"),
    )


# ---- valence, campaign summary and daily trend (the analyst views ad/campaign_emotion_summary and
# ---- daily_emotion_trend in sql/ compute the same numbers; tests/test_sql_analytics.py checks it)


def valence(counts: dict[str, int]) -> Optional[float]:
    """Return the valence of a group of faces from its top-emotion counts.

    ``valence = share(VALENCE_POSITIVE) - share(VALENCE_NEGATIVE)`` (``labels``: happy, and angry, disgust,
    fear and sad): -1 when every face looks negative, +1 when every face looks positive, 0 for all-neutral (or
    balanced) groups. Shares are of the faces whose
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
    require_columns(summary, ["faces", *[f"count_{e}" for e in EMOTIONS]], "summary")
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
    require_columns(faces_df, [*keys, "top_emotion", "processed_at"], "faces_df")
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


# ---- 95 % intervals ------------------------------------------------------------------------------------

#: The normal quantile of a two-sided 95 % interval.
Z95 = 1.959963984540054
#: How the reports name the interval of a share.
CI_METHOD = "Wilson score interval, 95 %"


def wilson_interval(k: int, n: int, *, z: float = Z95) -> Optional[tuple[float, float]]:
    """Return the Wilson score interval of the share ``k / n``.

    ``(p + z²/2n ± z·sqrt(p(1-p)/n + z²/4n²)) / (1 + z²/n)`` with ``p = k/n``: unlike the textbook
    ``p ± z·sqrt(p(1-p)/n)`` it stays inside [0, 1] and is not zero-width at 0 % or 100 %, which matters
    for the small groups of one ad. The bounds are clipped to [0, 1] and to contain ``p`` only against
    floating-point rounding.

    Args:
        k: faces in the class, ``0 <= k <= n``.
        n: faces in the group.
        z: the normal quantile (1.96 for 95 %).

    Returns:
        ``(low, high)``, or None when ``n`` is 0.

    Raises:
        ReportError: ``k`` or ``n`` is negative, or ``k > n``.
    """
    if n < 0 or k < 0 or k > n:
        raise ReportError(f"wilson_interval needs 0 <= k <= n. Received: k={k!r}, n={n!r}")
    if n == 0:
        return None
    p = k / n
    z2 = z * z
    denominator = 1.0 + z2 / n
    centre = (p + z2 / (2 * n)) / denominator
    half = z / denominator * math.sqrt(p * (1.0 - p) / n + z2 / (4.0 * n * n))
    return min(max(centre - half, 0.0), p), max(min(centre + half, 1.0), p)


def valence_interval(counts: dict[str, int], *, z: float = Z95) -> Optional[tuple[float, float]]:
    """Return an approximate 95 % interval of ``valence(counts)``.

    Valence is the difference of two shares of one multinomial sample, whose variance is
    ``(p₊ + p₋ − (p₊ − p₋)²) / n``; the interval is the normal approximation, clipped to [-1, 1].

    Returns:
        ``(low, high)``, or None for a group without faces.
    """
    value = valence(counts)
    if value is None:
        return None
    n = sum(counts[e] for e in EMOTIONS)
    positive = sum(counts[e] for e in VALENCE_POSITIVE) / n
    negative = sum(counts[e] for e in VALENCE_NEGATIVE) / n
    half = z * math.sqrt(max(positive + negative - value * value, 0.0) / n)
    return max(value - half, -1.0), min(value + half, 1.0)


def with_intervals(summary: pl.DataFrame) -> pl.DataFrame:
    """Add ``ci_low_<e>`` and ``ci_high_<e>`` (``wilson_interval`` of each share) to a frame with ``faces``
    and ``count_<e>`` columns; null where there are no faces or the counts are suppressed."""
    require_columns(summary, ["faces", *[f"count_{e}" for e in EMOTIONS]], "summary")
    n = pl.col("faces").cast(pl.Float64)
    z2 = Z95 * Z95
    columns = []
    for e in EMOTIONS:
        p = pl.col(f"count_{e}").cast(pl.Float64) / n
        denominator = 1.0 + z2 / n
        centre = (p + z2 / (2.0 * n)) / denominator
        half = Z95 / denominator * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt()
        valid = (pl.col("faces") > 0) & pl.col(f"count_{e}").is_not_null()
        low = pl.min_horizontal(pl.max_horizontal(centre - half, pl.lit(0.0)), p)
        high = pl.max_horizontal(pl.min_horizontal(centre + half, pl.lit(1.0)), p)
        columns += [pl.when(valid).then(low).alias(f"ci_low_{e}"), pl.when(valid).then(high).alias(f"ci_high_{e}")]
    return summary.with_columns(columns)


# ---- norms: where an ad stands among all ads -------------------------------------------------------------


def percentile_ranks(summary: pl.DataFrame, metrics: Sequence[str], *, eligible: pl.Expr) -> pl.DataFrame:
    """Add ``pct_<metric>``: the percentile rank of each eligible row's value among all eligible rows.

    The percentile rank is ``100 · (B + E/2) / N``: ``B`` rows with a lower value, ``E`` rows with the same
    value (the row itself included), ``N`` eligible rows, so the lowest of many ads is near 0, the
    highest near 100 and the median at 50. Rows that are not eligible (e.g. below the minimum group size)
    or have a null value get null and do not count in ``N``.

    Args:
        summary: one row per ad with the ``metrics`` columns.
        metrics: columns to rank (e.g. ``valence``, ``share_happy``).
        eligible: a boolean expression selecting the norm population.
    """
    require_columns(summary, list(metrics), "summary")
    out = summary
    for metric in metrics:
        member = eligible & pl.col(metric).is_not_null()
        value = pl.when(member).then(pl.col(metric))
        n = member.sum()
        rank = value.rank("average")
        out = out.with_columns(pl.when(member).then(100.0 * (rank - 0.5) / n).alias(f"pct_{metric}"))
    return out


# ---- classifier confidence ----------------------------------------------------------------------------

#: Edges of the confidence histogram: the top class's probability is at least 1/7, so the first bin is 0.1-0.2.
CONFIDENCE_BINS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)


def _top_probability() -> pl.Expr:
    return pl.max_horizontal([pl.col(name) for name in PROB_COLUMNS]).cast(pl.Float64).alias("top_probability")


def confidence_histogram(faces_df: pl.DataFrame, *, by: Sequence[str] = ("campaign", "ad")) -> pl.DataFrame:
    """Count faces per group and bin of the top class's probability (``CONFIDENCE_BINS``).

    Returns:
        One row per group and bin, every bin present (zero counts too), sorted: the ``by`` columns,
        ``bin`` (0-based), ``low``, ``high`` (the bin is ``[low, high)``, the last one ``[0.9, 1.0]``),
        ``faces``.
    """
    keys = list(by)
    require_columns(faces_df, [*keys, *PROB_COLUMNS], "faces_df")
    last = len(CONFIDENCE_BINS) - 2
    # floor(10 p) - 1 puts p = 0.3 into [0.3, 0.4) (10 * 0.3 rounds up, (0.3 - 0.1) * 10 down)
    index = ((_top_probability() * 10).floor().cast(pl.Int64) - 1).clip(0, last).alias("bin")
    counted = faces_df.with_columns(pl.col(keys).cast(pl.String), index).group_by([*keys, "bin"]).agg(
        pl.len().cast(pl.Int64).alias("faces"))
    bins = pl.DataFrame({"bin": list(range(last + 1)), "low": list(CONFIDENCE_BINS[:-1]),
                         "high": list(CONFIDENCE_BINS[1:])}, schema={"bin": pl.Int64, "low": pl.Float64,
                                                                   "high": pl.Float64})
    groups = faces_df.select(pl.col(keys).cast(pl.String)).unique()
    grid = groups.join(bins, how="cross")
    return (grid.join(counted, on=[*keys, "bin"], how="left").with_columns(pl.col("faces").fill_null(0))
            .select([*keys, "bin", "low", "high", "faces"]).sort([*keys, "bin"]))


def confidence_summary(faces_df: pl.DataFrame, *, by: Sequence[str] = ("campaign", "ad")) -> pl.DataFrame:
    """Per group: ``faces``, ``confidence_mean`` and ``confidence_median`` of the top class's probability
    and ``confidence_below_half`` (share of faces whose top class has a probability under 0.5)."""
    keys = list(by)
    require_columns(faces_df, [*keys, *PROB_COLUMNS], "faces_df")
    top = faces_df.with_columns(pl.col(keys).cast(pl.String), _top_probability())
    return top.group_by(keys).agg(
        pl.len().cast(pl.Int64).alias("faces"),
        pl.col("top_probability").mean().alias("confidence_mean"),
        pl.col("top_probability").median().alias("confidence_median"),
        (pl.col("top_probability") < 0.5).mean().alias("confidence_below_half"),
    ).sort(keys)


# ---- time: capture time where known -------------------------------------------------------------------

#: Values of ``time_source`` in ``with_time_basis``, best first, and how the reports name them.
TIME_SOURCES = {"exif": "EXIF capture time", "file": "file modification time", "processed": "processing time"}


#: File times before 1980-01-01 UTC (the earliest time a ZIP archive can hold) count as not recorded.
MIN_FILE_TIME_NS = 315_532_800 * 10**9


def with_time_basis(times_df: pl.DataFrame) -> pl.DataFrame:
    """Add ``time`` and ``time_source`` to the rows of ``load_image_times``.

    ``time`` is the EXIF capture time where the image has one (``exif``), else the file's modification
    time where it was recorded (``file``; a time before 1980, as archives and some copies leave behind,
    counts as not recorded), else the time the image was processed (``processed``). Times are UTC (EXIF
    times are the camera's wall clock).
    """
    require_columns(times_df, ["captured_at", "mtime_ns", "processed_at"], "times_df")
    file_time = (pl.from_epoch(pl.col("mtime_ns"), time_unit="ns").dt.cast_time_unit("us")
                 .dt.replace_time_zone("UTC"))
    has_file = pl.col("mtime_ns").is_not_null() & (pl.col("mtime_ns") >= MIN_FILE_TIME_NS)
    captured = pl.col("captured_at").dt.convert_time_zone("UTC")
    processed = pl.col("processed_at").dt.convert_time_zone("UTC")
    return times_df.with_columns(
        pl.when(pl.col("captured_at").is_not_null()).then(captured)
        .when(has_file).then(file_time).otherwise(processed).alias("time"),
        pl.when(pl.col("captured_at").is_not_null()).then(pl.lit("exif"))
        .when(has_file).then(pl.lit("file")).otherwise(pl.lit("processed")).alias("time_source"),
    )


def capture_trend(faces_df: pl.DataFrame, times_df: pl.DataFrame) -> pl.DataFrame:
    """Count faces per ad and UTC day of the image's ``time`` (``with_time_basis``), as ``daily_trend`` does
    per day of processing.

    Returns:
        One row per ad and day with faces, sorted: ``campaign``, ``ad``, ``day``, ``faces``, ``count_<e>``,
        ``share_<e>``, ``valence``, ``dominant_emotion``.
    """
    require_columns(faces_df, [*AD_KEY, "image_path", "top_emotion"], "faces_df")
    _require_values(faces_df, "top_emotion", EMOTIONS, "faces_df")
    keys = [*AD_KEY, "image_path"]
    timed = with_time_basis(times_df).select([*keys, "time"]).with_columns(pl.col(keys).cast(pl.String))
    joined = faces_df.with_columns(pl.col(keys).cast(pl.String)).join(timed, on=keys, how="left")
    if joined["time"].null_count():
        raise ReportError(f"times_df lacks {joined['time'].null_count()} image(s) of faces_df. "
                          f"Received: times_df rows={times_df.height}")
    return daily_trend(joined.with_columns(pl.col("time").alias("processed_at")))


# ---- example faces -----------------------------------------------------------------------------------


def top_faces(faces_df: pl.DataFrame, *, per_emotion: int = 3) -> pl.DataFrame:
    """The ``per_emotion`` faces of each ad with the highest probability of each class, among the faces whose
    top class it is (ties: image path, then face index).

    Returns:
        Columns ``campaign``, ``ad``, ``emotion``, ``rank`` (1-based), ``image_path``, ``face_index``, ``x``,
        ``y``, ``w``, ``h``, ``probability``; sorted by campaign, ad, emotion (``EMOTIONS`` order), rank.
    """
    if isinstance(per_emotion, bool) or not isinstance(per_emotion, int) or per_emotion < 1:
        raise ConfigError(f"per_emotion must be an integer >= 1. Received: per_emotion={per_emotion!r}")
    require_columns(faces_df, [*AD_KEY, "image_path", "face_index", "x", "y", "w", "h", "top_emotion",
                                *PROB_COLUMNS], "faces_df")
    order = {e: i for i, e in enumerate(EMOTIONS)}
    probability = pl.coalesce([pl.when(pl.col("top_emotion") == e).then(pl.col(f"p_{e}")) for e in EMOTIONS])
    ranked = (
        faces_df.with_columns(pl.col(AD_KEY).cast(pl.String), probability.cast(pl.Float64).alias("probability"),
                              pl.col("top_emotion").alias("emotion"))
        .sort([*AD_KEY, "emotion", "probability", "image_path", "face_index"],
              descending=[False, False, False, True, False, False])
        .with_columns(pl.int_range(1, pl.len() + 1).over([*AD_KEY, "emotion"]).cast(pl.Int64).alias("rank"))
        .filter(pl.col("rank") <= per_emotion)
        .with_columns(pl.col("emotion").replace_strict(order, return_dtype=pl.Int64).alias("_order"))
    )
    columns = [*AD_KEY, "emotion", "rank", "image_path", "face_index", "x", "y", "w", "h", "probability"]
    return ranked.sort([*AD_KEY, "_order", "rank"]).select(columns)
