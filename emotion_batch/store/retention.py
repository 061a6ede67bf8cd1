"""Data retention and erasure: remove the rows of old results, of a campaign or of an ad.

Functions take a session and never commit: the caller runs each in one transaction (and holds the run
lock, so that no batch run writes meanwhile). Only database rows are removed; image files are never
touched. Faces and images (video frames and videos) are deleted explicitly (not left to ``ON DELETE CASCADE``), so the counts are
exact and nothing depends on SQLite's foreign-key pragma.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import asdict, dataclass

from sqlalchemy import delete, exists, select, update
from sqlalchemy.orm import Session

from ..exceptions import ConfigError
from .models import Ad, Campaign, FaceRow, ImageRow, Run, ShareEstimateRow, VideoFrameRow, VideoRow

_AGE = re.compile(r"^\s*(\d+)\s*([hdw])\s*$")
AGE_UNITS = {"h": "hours", "d": "days", "w": "weeks"}


@dataclass
class Removed:
    """Rows removed (or, in a dry run, that would be) per table."""

    faces: int = 0
    images: int = 0
    ads: int = 0
    campaigns: int = 0
    runs: int = 0
    video_frames: int = 0
    videos: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)

    def __str__(self) -> str:
        return ", ".join(f"{n} {name}" for name, n in self.as_dict().items())


def parse_age(text: str) -> dt.timedelta:
    """``90d``, ``12w`` or ``36h`` as a timedelta.

    Raises:
        ConfigError: another shape, or zero.
    """
    match = _AGE.match(text or "")
    if not match or int(match.group(1)) == 0:
        raise ConfigError(f"older_than must be a positive whole number followed by one of {list(AGE_UNITS)} "
                          f"(hours, days, weeks), such as 90d. Received: older_than={text!r}")
    return dt.timedelta(**{AGE_UNITS[match.group(2)]: int(match.group(1))})


def _run(session: Session, statement) -> int:
    """Execute a bulk DELETE without synchronising the session (nothing is loaded); return its row count."""
    result = session.execute(statement.execution_options(synchronize_session=False))
    return max(int(result.rowcount or 0), 0)


def _delete_images(session: Session, image_ids) -> tuple[int, int]:
    faces = _run(session, delete(FaceRow).where(FaceRow.image_id.in_(image_ids)))
    images = _run(session, delete(ImageRow).where(ImageRow.id.in_(image_ids)))
    return faces, images


def _delete_videos(session: Session, video_ids) -> tuple[int, int]:
    frames = _run(session, delete(VideoFrameRow).where(VideoFrameRow.video_id.in_(video_ids)))
    videos = _run(session, delete(VideoRow).where(VideoRow.id.in_(video_ids)))
    return frames, videos


def prune_older_than(session: Session, cutoff: dt.datetime) -> Removed:
    """Remove the results processed before ``cutoff`` (UTC).

    Deletes images with ``processed_at < cutoff`` and their faces, videos with ``processed_at < cutoff`` and
    their frames, then ads and campaigns created before
    the cutoff that have nothing left, and ``runs`` rows started before it.

    Raises:
        ConfigError: ``cutoff`` is not timezone-aware.
    """
    if not isinstance(cutoff, dt.datetime) or cutoff.tzinfo is None:
        raise ConfigError(f"cutoff must be a timezone-aware datetime. Received: cutoff={cutoff!r}")
    removed = Removed()
    old_images = select(ImageRow.id).where(ImageRow.processed_at < cutoff)
    removed.faces, removed.images = _delete_images(session, old_images)
    removed.video_frames, removed.videos = _delete_videos(
        session, select(VideoRow.id).where(VideoRow.processed_at < cutoff))
    removed.ads = _run(session, delete(Ad).where(Ad.created_at < cutoff, ~exists().where(ImageRow.ad_id == Ad.id),
                                                 ~exists().where(VideoRow.ad_id == Ad.id)))
    removed.campaigns = _run(session, delete(Campaign).where(Campaign.created_at < cutoff,
                                                             ~exists().where(Ad.campaign_id == Campaign.id)))
    old_runs = select(Run.id).where(Run.started_at < cutoff)
    for table in (ImageRow, VideoRow):
        session.execute(update(table).where(table.run_id.in_(old_runs)).values(run_id=None)
                        .execution_options(synchronize_session=False))
    removed.runs = _run(session, delete(Run).where(Run.started_at < cutoff))
    return removed


def delete_results(session: Session, *, campaign: str | None = None, ad: str | None = None) -> Removed:
    """Remove every row of one campaign, or of one ad (its campaign row stays).

    ``ad`` alone must name an ad that exists in exactly one campaign.

    Raises:
        ConfigError: neither is given, or no (single) such campaign or ad is stored.
    """
    if campaign is None and ad is None:
        raise ConfigError("campaign or ad must be given. Received: campaign=None, ad=None")
    query = select(Ad.id, Campaign.name).join(Campaign, Campaign.id == Ad.campaign_id)
    if campaign is not None:
        campaign_id = session.execute(select(Campaign.id).where(Campaign.name == campaign)).scalar()
        if campaign_id is None:
            known = session.scalars(select(Campaign.name).order_by(Campaign.name).limit(20)).all()
            raise ConfigError(f"campaign must be a stored campaign, one of {known}"
                              f"{' (first 20)' if len(known) == 20 else ''}. Received: campaign={campaign!r}")
        query = query.where(Ad.campaign_id == campaign_id)
    if ad is not None:
        query = query.where(Ad.name == ad)
    found = session.execute(query).all()
    if ad is not None:
        if not found:
            where = f" in campaign {campaign!r}" if campaign is not None else ""
            raise ConfigError(f"ad must be a stored ad{where}. Received: ad={ad!r}")
        if len(found) > 1:
            raise ConfigError(f"ad {ad!r} exists in the campaigns {sorted(c for _, c in found)}: add --campaign. "
                              f"Received: ad={ad!r}")
    ad_ids = [ad_id for ad_id, _ in found]
    removed = Removed()
    if ad_ids:
        removed.faces, removed.images = _delete_images(session, select(ImageRow.id).where(ImageRow.ad_id.in_(ad_ids)))
        removed.video_frames, removed.videos = _delete_videos(
            session, select(VideoRow.id).where(VideoRow.ad_id.in_(ad_ids)))
        removed.ads = _run(session, delete(Ad).where(Ad.id.in_(ad_ids)))
    if ad is None:
        removed.campaigns = _run(session, delete(Campaign).where(Campaign.name == campaign))
    # the shares the reports stated about what was erased (and the campaign figures that pooled it)
    for name in {c for _, c in found} | ({campaign} if ad is None else set()):
        rows = ShareEstimateRow.campaign == name
        session.execute(delete(ShareEstimateRow).where(rows if ad is None else rows & (
            (ShareEstimateRow.ad == ad) | ShareEstimateRow.ad.is_(None))))
    return removed
