"""The viewer-video part of an ad's report: the second-by-second trace of its viewers (``video.trace``).

``load_ad_traces`` reads the frames of the ads' recordings from ``video_frames`` and turns each ad's into an
``AdTrace``: the trace (seconds with fewer than ``min_faces`` viewers suppressed: greyed out, no numbers),
its strongest moments, and how many recordings the ad has and how many of them were usable. ``to_dict`` and
``summary_columns`` are its figures in ``summary.json`` and ``summary.csv``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Optional

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from ..store.models import Ad, Campaign, PROB_COLUMNS, VideoFrameRow, VideoRow


@dataclass(frozen=True)
class AdTrace:
    """What an ad's report shows of its viewer videos.

    Attributes:
        videos: recordings stored for the ad (any status).
        videos_ok: recordings where the viewer's face was seen.
        min_faces: the minimum number of viewers a second needs to be shown.
        seconds: the ``trace.second_trace`` rows, one per second of the ad from 0 to the last a viewer reached.
        moments: the strongest moments (``trace.strongest_moments``), strongest first.
    """

    videos: int
    videos_ok: int
    min_faces: int
    seconds: tuple[dict, ...]
    moments: tuple = ()

    @property
    def shown_seconds(self) -> int:
        return sum(1 for s in self.seconds if not s["suppressed"])

    @property
    def max_viewers(self) -> int:
        return max((s["viewers"] for s in self.seconds), default=0)

    def to_dict(self) -> dict[str, Any]:
        """The ad's viewer-video figures as JSON-ready values (``summary.json``): recordings, recordings with
        the viewer's face, seconds of the ad reached and shown (enough viewers), the most viewers in a
        second, and the strongest moments (second, expression, share and mean probability, viewers)."""
        return {
            "videos": self.videos,
            "videos_with_face": self.videos_ok,
            "min_faces": self.min_faces,
            "seconds": len(self.seconds),
            "seconds_shown": self.shown_seconds,
            "max_viewers": self.max_viewers,
            "moments": [{"second": m.second, "emotion": m.emotion, "share": m.share, "mean_p": m.mean_p,
                         "viewers": m.viewers} for m in self.moments],
        }


def summary_columns(trace: Optional[AdTrace]) -> dict[str, Any]:
    """An ad's viewer-video columns of ``summary.csv``: ``videos`` and ``videos_with_face`` (0 without
    recordings), ``trace_seconds`` and ``trace_seconds_shown`` (empty without recordings)."""
    return {
        "videos": trace.videos if trace else 0,
        "videos_with_face": trace.videos_ok if trace else 0,
        "trace_seconds": len(trace.seconds) if trace else None,
        "trace_seconds_shown": trace.shown_seconds if trace else None,
    }


def load_ad_traces(session: Session, ads: Iterable[tuple[str, str]], *, min_faces: int) -> dict[tuple[str, str], AdTrace]:
    """The ``AdTrace`` of every ad of ``ads`` that has at least one recording stored (others are left out)."""
    import polars as pl

    from ..video.trace import second_trace, strongest_moments

    wanted = set(ads)
    if not wanted:
        return {}
    # (campaign IN ... AND ad IN ...) is a superset of the pairs wanted; the pairs are picked exactly below
    near = [Campaign.name.in_(sorted({c for c, _ in wanted})), Ad.name.in_(sorted({a for _, a in wanted}))]
    counts = session.execute(
        select(Campaign.name, Ad.name, Ad.id, func.count(VideoRow.id),
               func.sum(case((VideoRow.status == "ok", 1), else_=0)))
        .select_from(VideoRow).join(Ad, Ad.id == VideoRow.ad_id).join(Campaign, Campaign.id == Ad.campaign_id)
        .where(*near).group_by(Campaign.name, Ad.name, Ad.id)).all()
    schema = {"video": pl.String, "time_ms": pl.Int64, **{p: pl.Float64 for p in PROB_COLUMNS}}
    traces: dict[tuple[str, str], AdTrace] = {}
    for campaign, ad, ad_id, videos, ok in sorted(counts, key=lambda r: (r[0], r[1])):
        if (campaign, ad) not in wanted:
            continue
        # one ad's frames at a time: memory follows the largest ad, not the database
        rows = session.execute(
            select(VideoRow.path, VideoFrameRow.time_ms, *[VideoFrameRow.__table__.c[p] for p in PROB_COLUMNS])
            .select_from(VideoFrameRow).join(VideoRow, VideoRow.id == VideoFrameRow.video_id)
            .where(VideoRow.ad_id == ad_id)).all()
        seconds: tuple[dict, ...] = ()
        moments: tuple = ()
        if rows:
            trace = second_trace(pl.DataFrame([tuple(r) for r in rows], schema=schema, orient="row"),
                                 min_faces=min_faces)
            seconds = tuple(trace.to_dicts())
            moments = tuple(strongest_moments(trace))
        traces[(campaign, ad)] = AdTrace(videos=int(videos), videos_ok=int(ok or 0), min_faces=min_faces,
                                         seconds=seconds, moments=moments)
    return traces
