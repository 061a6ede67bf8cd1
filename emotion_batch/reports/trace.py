"""The viewer-video part of an ad's report: the second-by-second trace of its viewers (``video.trace``).

``load_ad_traces`` reads the frames of the ads' recordings from ``video_frames`` and turns each ad's into an
``AdTrace``: the trace (seconds with fewer than ``min_faces`` viewers suppressed: greyed out, no numbers),
its strongest moments, and how many recordings the ad has and how many of them were usable.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

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
        select(Campaign.name, Ad.name, func.count(VideoRow.id), func.sum(case((VideoRow.status == "ok", 1), else_=0)))
        .select_from(VideoRow).join(Ad, Ad.id == VideoRow.ad_id).join(Campaign, Campaign.id == Ad.campaign_id)
        .where(*near).group_by(Campaign.name, Ad.name)).all()
    counts = {(c, a): (int(n), int(ok or 0)) for c, a, n, ok in counts if (c, a) in wanted}
    if not counts:
        return {}
    rows = session.execute(
        select(Campaign.name.label("campaign"), Ad.name.label("ad"), VideoRow.path.label("video"),
               VideoFrameRow.time_ms, *[VideoFrameRow.__table__.c[p] for p in PROB_COLUMNS])
        .select_from(VideoFrameRow).join(VideoRow, VideoRow.id == VideoFrameRow.video_id)
        .join(Ad, Ad.id == VideoRow.ad_id).join(Campaign, Campaign.id == Ad.campaign_id).where(*near)
    ).all()
    schema = {"campaign": pl.String, "ad": pl.String, "video": pl.String, "time_ms": pl.Int64,
              **{p: pl.Float64 for p in PROB_COLUMNS}}
    frames = pl.DataFrame([tuple(r) for r in rows], schema=schema, orient="row")
    traces: dict[tuple[str, str], AdTrace] = {}
    for (campaign, ad), (videos, ok) in sorted(counts.items()):
        mine = frames.filter((pl.col("campaign") == campaign) & (pl.col("ad") == ad))
        seconds: tuple[dict, ...] = ()
        moments: tuple = ()
        if mine.height:
            trace = second_trace(mine.drop("campaign", "ad"), min_faces=min_faces)
            seconds = tuple(trace.to_dicts())
            moments = tuple(strongest_moments(trace))
        traces[(campaign, ad)] = AdTrace(videos=videos, videos_ok=ok, min_faces=min_faces, seconds=seconds,
                                         moments=moments)
    return traces

