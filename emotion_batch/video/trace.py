"""The second-by-second trace of an ad: how its viewers' expressions move, second by second.

Pure functions of the viewers' frames (``analysis.FrameResult.row()`` with a ``video`` column naming the
viewer's recording, or the rows of ``video_frames``), with polars:

1. A viewer-second is one viewer in one second of the ad (``time_ms // 1000``): the mean of that viewer's
   sampled frames' probabilities in that second, and its top class (the argmax of that mean) as the
   viewer's vote. Every viewer counts once a second, however many frames the sample rate gives.
2. A second of the ad: ``viewers`` (with a face that second), ``share_<e>`` (viewers whose vote is
   ``e``), ``mean_p_<e>`` (mean over viewers) and ``valence = share(happy) - share(angry + disgust +
   fear + sad)``, the definition photos use (``aggregate.valence``). As the mean of each viewer's
   ``+1 / -1 / 0``, valence has a spread across viewers: ``valence_sd`` and the 95 % band
   ``valence_low .. valence_high`` (mean +- 1.96 sd / sqrt(viewers), within [-1, 1]).
3. Seconds with fewer than ``min_faces`` viewers are ``suppressed``: their distribution is null (greyed
   out in a chart, never drawn as a fact), as ``aggregate.suppress_small_ads`` does for small ads.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import polars as pl

from ..aggregate.tables import Z95, check_min_faces
from ..labels import VALENCE_NEGATIVE, VALENCE_POSITIVE
from ..exceptions import ConfigError, ReportError
from ..labels import EMOTIONS

#: The columns ``second_trace`` needs (besides its ``by`` columns).
FRAME_COLUMNS = ("video", "time_ms", *[f"p_{e}" for e in EMOTIONS])
#: Expressions whose peaks ``strongest_moments`` looks for by default.
MOMENT_EMOTIONS = ("happy", "surprise")


def _vote_valence() -> pl.Expr:
    vote = pl.col("vote")
    positive = [EMOTIONS.index(e) for e in VALENCE_POSITIVE]
    negative = [EMOTIONS.index(e) for e in VALENCE_NEGATIVE]
    return pl.when(vote.is_in(positive)).then(1.0).when(vote.is_in(negative)).then(-1.0).otherwise(0.0)


def viewer_seconds(frames: pl.DataFrame, *, by: Sequence[str] = ()) -> pl.DataFrame:
    """One row per viewer and second of the ad: ``frames``, ``mean_p_<e>``, ``vote`` (the top class's name)
    and ``v`` (the vote's valence: +1, -1 or 0). Frames before the ad (negative ``time_ms``) are dropped."""
    missing = [c for c in (*by, *FRAME_COLUMNS) if c not in frames.columns]
    if missing:
        raise ReportError(f"frames lacks the columns {missing}. Received: columns={frames.columns}")
    keys = [*by, "second", "video"]
    out = (
        frames.filter(pl.col("time_ms") >= 0)
        .with_columns((pl.col("time_ms") // 1000).cast(pl.Int64).alias("second"))
        .group_by(keys)
        .agg(pl.len().cast(pl.Int64).alias("frames"), *[pl.col(f"p_{e}").mean().alias(f"mean_p_{e}") for e in EMOTIONS])
        .with_columns(pl.concat_list([pl.col(f"mean_p_{e}") for e in EMOTIONS]).list.arg_max().alias("vote"))
        .with_columns(_vote_valence().alias("v"))
        .with_columns(pl.col("vote").replace_strict(dict(enumerate(EMOTIONS)), return_dtype=pl.String()))
    )
    return out.sort(keys)


def second_trace(frames: pl.DataFrame, *, min_faces: int = 10, by: Sequence[str] = (),
                 until_s: int | None = None) -> pl.DataFrame:
    """The trace of an ad (or of every group of ``by``, e.g. ``("campaign", "ad")``), one row per second.

    Args:
        frames: the viewers' sampled frames: ``video``, ``time_ms`` (in the ad) and ``p_<e>``.
        min_faces: seconds with fewer viewers are ``suppressed``.
        by: grouping columns.
        until_s: the last second to show (the ad's length); by default the last second any viewer reaches.

    Returns:
        Every second from 0 to the last (seconds without viewers included, with ``viewers`` 0), sorted:
        the ``by`` columns, ``second``, ``viewers``, ``frames``, ``count_<e>``, ``share_<e>``,
        ``mean_p_<e>``, ``valence``, ``valence_sd``, ``valence_low``, ``valence_high``, ``suppressed``.
    """
    min_faces = check_min_faces(min_faces)
    if until_s is not None and (isinstance(until_s, bool) or not isinstance(until_s, int) or until_s < 0):
        raise ConfigError(f"until_s must be an integer >= 0. Received: until_s={until_s!r}")
    by = list(by)
    per_viewer = viewer_seconds(frames, by=by)
    if until_s is not None:
        per_viewer = per_viewer.filter(pl.col("second") <= until_s)
    n = pl.len().cast(pl.Int64)
    sd = pl.col("v").std(ddof=1)
    seconds = per_viewer.group_by([*by, "second"]).agg(
        n.alias("viewers"),
        pl.col("frames").sum().cast(pl.Int64).alias("frames"),
        *[(pl.col("vote") == e).sum().cast(pl.Int64).alias(f"count_{e}") for e in EMOTIONS],
        *[pl.col(f"mean_p_{e}").mean().alias(f"mean_p_{e}") for e in EMOTIONS],
        pl.col("v").mean().alias("valence"),
        sd.alias("valence_sd"),
    )
    # every second from 0 to the last, per group: a gap in the ad is a row with no viewers, not a missing row
    if by:
        ends = per_viewer.group_by(by).agg(pl.col("second").max().alias("_last"))
    else:
        ends = pl.DataFrame({"_last": [per_viewer["second"].max() if per_viewer.height else None]},
                            schema={"_last": pl.Int64})
    if until_s is not None:
        ends = ends.with_columns(pl.lit(until_s, dtype=pl.Int64).alias("_last"))
    grid = (ends.drop_nulls("_last").with_columns(pl.int_ranges(0, pl.col("_last") + 1).alias("second"))
            .explode("second").drop("_last").with_columns(pl.col("second").cast(pl.Int64)))
    trace = grid.join(seconds, on=[*by, "second"], how="left").with_columns(
        pl.col("viewers").fill_null(0), pl.col("frames").fill_null(0),
        *[pl.col(f"count_{e}").fill_null(0) for e in EMOTIONS])
    has = pl.col("viewers") > 0
    half = pl.lit(Z95) * pl.col("valence_sd").fill_null(0.0) / pl.col("viewers").cast(pl.Float64).sqrt()
    trace = trace.with_columns(
        *[pl.when(has).then(pl.col(f"count_{e}") / pl.col("viewers")).alias(f"share_{e}") for e in EMOTIONS],
        pl.when(has).then((pl.col("valence") - half).clip(-1.0, 1.0)).alias("valence_low"),
        pl.when(has).then((pl.col("valence") + half).clip(-1.0, 1.0)).alias("valence_high"),
    )
    hidden = [*[f"{p}_{e}" for p in ("count", "share", "mean_p") for e in EMOTIONS],
              "valence", "valence_sd", "valence_low", "valence_high"]
    suppressed = pl.col("viewers") < min_faces
    trace = trace.with_columns(*[pl.when(~suppressed).then(pl.col(c)).alias(c) for c in hidden],
                               suppressed.alias("suppressed"))
    order = [*by, "second", "viewers", "frames", *[f"count_{e}" for e in EMOTIONS],
             *[f"share_{e}" for e in EMOTIONS], *[f"mean_p_{e}" for e in EMOTIONS],
             "valence", "valence_sd", "valence_low", "valence_high", "suppressed"]
    return trace.select(order).sort([*by, "second"])


@dataclass(frozen=True)
class Moment:
    """One of an ad's strongest moments: the second where the share of ``emotion`` peaks.

    Attributes:
        second: the second of the ad (``second`` to ``second + 1`` s).
        emotion: the expression.
        share: the share of viewers whose vote was ``emotion`` that second.
        mean_p: the mean probability of ``emotion`` that second.
        viewers: viewers with a face that second.
    """

    second: int
    emotion: str
    share: float
    mean_p: float
    viewers: int


def strongest_moments(trace: pl.DataFrame, *, n: int = 3, emotions: Sequence[str] = MOMENT_EMOTIONS,
                      min_gap_s: int = 2) -> list[Moment]:
    """The ``n`` strongest moments of one ad's trace: the seconds of highest share of ``emotions``.

    Strongest first (share, then mean probability, then the earlier second); suppressed seconds never
    count, and a moment within ``min_gap_s`` seconds of a stronger one is the same peak, so it is skipped.

    Args:
        trace: ``second_trace`` of one ad (no ``by`` columns, or one group).
        n: how many moments at most.
        emotions: the expressions to look at (names of ``EMOTIONS``).
        min_gap_s: the least distance between two moments, in seconds (1 allows neighbouring seconds).

    Returns:
        Up to ``n`` moments; fewer when fewer seconds have a share above 0.
    """
    unknown = [e for e in emotions if e not in EMOTIONS]
    if unknown or not emotions:
        raise ConfigError(f"emotions must be names of {list(EMOTIONS)}. Received: emotions={list(emotions)!r}")
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ConfigError(f"n must be an integer >= 1. Received: n={n!r}")
    if isinstance(min_gap_s, bool) or not isinstance(min_gap_s, int) or min_gap_s < 1:
        raise ConfigError(f"min_gap_s must be an integer >= 1. Received: min_gap_s={min_gap_s!r}")
    shown = trace.filter(~pl.col("suppressed"))
    candidates = pl.concat([
        shown.select(pl.col("second"), pl.lit(e).alias("emotion"), pl.col(f"share_{e}").alias("share"),
                     pl.col(f"mean_p_{e}").alias("mean_p"), pl.col("viewers"))
        for e in emotions
    ]).filter(pl.col("share") > 0).sort(["share", "mean_p", "second"], descending=[True, True, False])
    moments: list[Moment] = []
    for row in candidates.iter_rows(named=True):
        if all(abs(row["second"] - m.second) >= min_gap_s for m in moments):
            moments.append(Moment(second=int(row["second"]), emotion=row["emotion"], share=float(row["share"]),
                                  mean_p=float(row["mean_p"]), viewers=int(row["viewers"])))
            if len(moments) == n:
                break
    return moments
