"""Ads known only from their viewer videos: an ad folder with recordings and no image.

``report_data`` builds an ad from its image rows, so an ad whose folder holds only viewer videos is not in
its ``ReportSet``. ``with_video_only_ads`` adds each such ad with zero images and faces (its distribution of
photos suppressed; its report is the viewers' second-by-second trace, ``reports.trace``) to its campaign,
and a campaign of such ads only as a campaign with zero images. Norms, campaign pools and share estimates
are those of faces in images, so they do not change.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Optional

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..store.models import Ad, Campaign, VideoRow
from ..timeutil import as_utc
from .report_types import AdReportData, CampaignReportData, ReportSet

__all__ = ["VideoAd", "load_video_ads", "with_video_only_ads"]


@dataclass(frozen=True)
class VideoAd:
    """An ad with at least one stored viewer recording (any status).

    Attributes:
        campaign: the campaign folder name.
        ad: the ad folder name.
        videos: recordings stored for the ad.
        model_ids: the models that classified its recordings' frames (of recordings with a face).
        last_processed_at: when the last of its recordings was stored (UTC).
    """

    campaign: str
    ad: str
    videos: int
    model_ids: tuple[str, ...]
    last_processed_at: Optional[dt.datetime]


def load_video_ads(session: Session) -> list[VideoAd]:
    """Every ad with at least one row in ``videos``, sorted by campaign and ad."""
    def joined(*columns):
        return (select(Campaign.name, Ad.name, *columns).select_from(VideoRow).join(Ad, Ad.id == VideoRow.ad_id)
                .join(Campaign, Campaign.id == Ad.campaign_id))

    counts = session.execute(joined(func.count(VideoRow.id), func.max(VideoRow.processed_at))
                             .group_by(Campaign.name, Ad.name)).all()
    models: dict[tuple[str, str], set[str]] = {}
    for campaign, ad, model_id in session.execute(joined(VideoRow.model_id).where(VideoRow.frames_with_face > 0)
                                                  .distinct()):
        models.setdefault((campaign, ad), set()).add(model_id)
    return [VideoAd(campaign=c, ad=a, videos=int(n), model_ids=tuple(sorted(models.get((c, a), ()))),
                    last_processed_at=as_utc(last) if last is not None else None)
            for c, a, n, last in sorted(counts, key=lambda r: (r[0], r[1]))]


def _empty_ad(video: VideoAd, report_set: ReportSet) -> AdReportData:
    return AdReportData(
        campaign=video.campaign, ad=video.ad, generated_at=report_set.generated_at, min_faces=report_set.min_faces,
        images=0, images_ok=0, images_no_face=0, images_failed=0, faces=0, model_ids=video.model_ids,
        last_processed_at=video.last_processed_at, distribution=None,
    )


def _empty_campaign(name: str, ads: tuple[AdReportData, ...], report_set: ReportSet) -> CampaignReportData:
    return CampaignReportData(
        campaign=name, generated_at=report_set.generated_at, min_faces=report_set.min_faces, ads=ads, images=0,
        images_ok=0, images_no_face=0, images_failed=0, faces=0,
        model_ids=tuple(sorted({m for a in ads for m in a.model_ids})), period_start=None, period_end=None,
        distribution=None,
    )


def with_video_only_ads(report_set: ReportSet, videos: Iterable[VideoAd]) -> ReportSet:
    """``report_set`` with every ad of ``videos`` that has no image added as an ad of zero images and faces.

    Args:
        report_set: the ads and campaigns built from the images (``build_report_set``).
        videos: the ads with viewer recordings (``load_video_ads``); those already in ``report_set`` (they
            have images too) are left as they are.

    Returns:
        A new ``ReportSet`` (the same object when nothing is added): ads sorted by campaign and ad, each
        added ad in its campaign's ``ads`` (a campaign made for it when it has no image either), campaigns
        sorted by name. ``norm_ads`` and every figure of faces are unchanged.
    """
    known = {(a.campaign, a.ad) for a in report_set.ads}
    added = [_empty_ad(v, report_set) for v in videos if (v.campaign, v.ad) not in known]
    if not added:
        return report_set
    by_campaign: dict[str, list[AdReportData]] = {}
    for ad in added:
        by_campaign.setdefault(ad.campaign, []).append(ad)
    campaigns = {c.campaign: c for c in report_set.campaigns}
    for name, members in by_campaign.items():
        camp = campaigns.get(name)
        if camp is None:
            campaigns[name] = _empty_campaign(name, tuple(sorted(members, key=lambda a: a.ad)), report_set)
        else:
            ads = tuple(sorted([*camp.ads, *members], key=lambda a: a.ad))
            models = tuple(sorted({*camp.model_ids, *(m for a in members for m in a.model_ids)}))
            campaigns[name] = replace(camp, ads=ads, model_ids=models)
    return replace(report_set, ads=tuple(sorted([*report_set.ads, *added], key=lambda a: (a.campaign, a.ad))),
                   campaigns=tuple(campaigns[name] for name in sorted(campaigns)))
