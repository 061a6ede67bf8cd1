"""Render every report of a database: ad and campaign reports (HTML + PDF) in a process pool, then the index
and the machine-readable summaries.

Layout under the reports folder (every name through ``safe_filename``, every path checked to stay inside)::

    index.html                    every campaign and ad, key figures, links to the reports
    summary.json                  the ReportSet: every number of every report (emotion_batch.aggregate), with
                                  each ad's viewer-video figures (``viewer_videos``, reports.trace)
    summary.csv                   one row per ad: the same numbers, flat
    campaigns.csv                 one row per campaign
    <campaign>/index.html         the campaign report (its ads side by side, ranked, with the table)
    <campaign>/campaign.pdf       the same as PDF
    <campaign>/<ad>.html, .pdf    one ad's report

WeasyPrint takes most of the time (a few tenths of a second per page), so the reports are rendered by
worker processes, each loading the templates, WeasyPrint and the fonts once.
"""

from __future__ import annotations

import json
import logging
import multiprocessing as mp
import os
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Union

import polars as pl
from sqlalchemy.orm import Session

from ..aggregate import (
    AdReportData,
    CampaignReportData,
    ReportSet,
    TIME_SOURCES,
    load_report_set,
    load_share_statistics,
    select_ads,
)
from ..aggregate.video_ads import load_video_ads, with_video_only_ads
from ..exceptions import ReportError
from ..labels import EMOTIONS
from ..safe_text import csv_cell
from .methodology import load_manifest
from .pages import ReportOptions, render_ad_html, render_campaign_html, render_index_html
from .trace import AdTrace, load_ad_traces, summary_columns
from .render import (
    AD_TEMPLATE,
    CAMPAIGN_TEMPLATE,
    CAMPAIGNS_CSV,
    INDEX_HTML,
    INDEX_TEMPLATE,
    SUMMARY_CSV,
    SUMMARY_JSON,
    campaign_paths,
    inside,
    make_environment,
    report_paths,
    svg_as_images,
    template,
    write_atomic,
    write_pdf,
)

__all__ = ["ReportsWritten", "render_ad_reports", "render_reports", "summary_dict", "summary_frames"]

log = logging.getLogger(__name__)

PathLike = Union[str, os.PathLike]


@dataclass
class ReportsWritten:
    """What ``render_reports`` wrote, and how long it took.

    Attributes:
        ads: HTML then PDF of each rendered ad, ads sorted by campaign and ad.
        campaigns: HTML then PDF of each rendered campaign.
        index: ``index.html``, ``summary.json``, ``summary.csv``, ``campaigns.csv``.
        seconds: wall time of the whole rendering.
        workers: rendering processes used (0: in this process).
        report_set: every number the reports state (for ``ad_share_estimates``); None when nothing ran.
        traces: the viewer-video trace of every ad with recordings, by (campaign, ad).
    """

    ads: list[Path] = field(default_factory=list)
    campaigns: list[Path] = field(default_factory=list)
    index: list[Path] = field(default_factory=list)
    seconds: float = 0.0
    workers: int = 0
    report_set: Optional[ReportSet] = None
    traces: dict[tuple[str, str], AdTrace] = field(default_factory=dict)

    @property
    def all(self) -> list[Path]:
        """Every written path: ads, campaigns, then the index and summaries."""
        return [*self.ads, *self.campaigns, *self.index]


# ---- the work of one process ---------------------------------------------------------------------------------

_STATE: dict[str, Any] = {}


def _make_state(options: ReportOptions, manifest: Optional[dict], names: Sequence[str]) -> dict[str, Any]:
    from weasyprint.text.fonts import FontConfiguration

    env = make_environment(options.templates_dir)
    return {"options": options, "manifest": manifest, "templates": {n: template(env, n) for n in names},
            "fonts": FontConfiguration()}


def _init_worker(options: ReportOptions, manifest: Optional[dict], names: Sequence[str]) -> None:
    _STATE.update(_make_state(options, manifest, names))


def _render_one(task: tuple, state: dict[str, Any]) -> tuple[Path, Path]:
    import jinja2

    kind, data, html_path, pdf_path, *extra = task  # an ad's task may carry its viewer trace
    options: ReportOptions = state["options"]
    try:
        if kind == "ad":
            html_text = render_ad_html(data, template=state["templates"][AD_TEMPLATE], options=options,
                                       manifest=state["manifest"], trace=extra[0] if extra else None)
        elif kind == "campaign":
            html_text = render_campaign_html(data, template=state["templates"][CAMPAIGN_TEMPLATE], options=options,
                                             manifest=state["manifest"])
        else:
            raise ReportError(f"kind must be one of ['ad', 'campaign']. Received: kind={kind!r}")
    except jinja2.TemplateError as exc:  # a custom template (--templates_dir) with a mistake
        raise ReportError(f"The {kind} report template failed ({type(exc).__name__}: {exc}). "
                          f"Received: output={str(html_path)!r}") from exc
    write_atomic(html_path, html_text.encode("utf-8"))
    write_pdf(svg_as_images(html_text), pdf_path, base_url=html_path.parent, font_config=state["fonts"])
    return html_path, pdf_path


def _render_in_worker(task: tuple) -> tuple[Path, Path]:
    return _render_one(task, _STATE)


#: With ``workers=None``, fewer tasks than this are rendered in this process: starting a worker (importing
#: WeasyPrint, matplotlib and polars) costs about as much as rendering a few reports.
MIN_TASKS_FOR_POOL = 10


def _worker_count(options: ReportOptions, tasks: int) -> int:
    if options.workers == 0 or tasks <= 1:
        return 0
    if options.workers is None:
        if tasks < MIN_TASKS_FOR_POOL or (os.cpu_count() or 1) < 2:
            return 0
        return min(os.cpu_count() or 1, tasks)
    return min(options.workers, tasks)


def _run(tasks: list[tuple], options: ReportOptions, manifest: Optional[dict], names: Sequence[str]) -> tuple[list, int]:
    workers = _worker_count(options, len(tasks))
    if not tasks:
        return [], workers
    if workers == 0:
        state = _make_state(options, manifest, names)
        return [_render_one(task, state) for task in tasks], 0
    # spawn: never fork a process holding polars' and SQLAlchemy's threads and connections
    context = mp.get_context("spawn")
    chunk = max(1, min(16, len(tasks) // (workers * 4)))
    with ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=_init_worker,
                             initargs=(options, manifest, tuple(names))) as pool:
        return list(pool.map(_render_in_worker, tasks, chunksize=chunk)), workers


# ---- summaries ------------------------------------------------------------------------------------------------


def _corrected_columns(group: AdReportData | CampaignReportData) -> dict[str, Any]:
    """corrected (applied or not), its method and note, corrected_share_, corrected_low_ and corrected_high_
    of every emotion and the corrected valence with its interval (None where not applied or hidden)."""
    c = group.correction
    done = c is not None and c.applied
    row: dict[str, Any] = {"corrected": done if c is not None else None, "corrected_method": c.method if c else None,
                           "corrected_note": c.note if c else None}
    for e in EMOTIONS:
        row[f"corrected_share_{e}"] = c.shares[e] if done else None
    for e in EMOTIONS:
        row[f"corrected_low_{e}"] = c.intervals[e][0] if done else None
        row[f"corrected_high_{e}"] = c.intervals[e][1] if done else None
    row["corrected_valence"] = c.valence if done else None
    row["corrected_valence_low"] = c.valence_interval[0] if done else None
    row["corrected_valence_high"] = c.valence_interval[1] if done else None
    return row


def _flat(ad: AdReportData, trace: Optional[AdTrace] = None) -> dict[str, Any]:
    row: dict[str, Any] = {
        "campaign": ad.campaign, "ad": ad.ad, "images": ad.images, "images_ok": ad.images_ok,
        "images_no_face": ad.images_no_face, "images_failed": ad.images_failed, "faces": ad.faces,
        "faces_per_image": ad.faces_per_image, "suppressed": ad.suppressed,
        "suppression_reason": ad.suppression_reason, **ad.distribution_columns(), **_corrected_columns(ad),
    }
    for e in EMOTIONS:
        row[f"mean_p_{e}"] = ad.mean_probabilities[e] if ad.mean_probabilities else None
    pct = ad.comparison.percentiles if ad.comparison else {}
    row["pct_valence"] = pct.get("valence")
    for e in EMOTIONS:
        row[f"pct_share_{e}"] = pct.get(e)
    row["norm_ads"] = ad.comparison.norm_ads if ad.comparison else None
    row["campaign_valence"] = ad.comparison.campaign_valence if ad.comparison else None
    conf = ad.confidence
    row["confidence_mean"] = conf.mean if conf else None
    row["confidence_median"] = conf.median if conf else None
    row["confidence_below_half"] = conf.below_half if conf else None
    row["period_start"] = ad.period_start.isoformat() if ad.period_start else None
    row["period_end"] = ad.period_end.isoformat() if ad.period_end else None
    for source in TIME_SOURCES:
        row[f"images_dated_by_{source}"] = ad.time_sources.get(source, 0)
    row["model_ids"] = " ".join(ad.model_ids)
    return {**row, **summary_columns(trace)}  # last: the columns before them keep their places


def _flat_campaign(camp: CampaignReportData) -> dict[str, Any]:
    row: dict[str, Any] = {
        "campaign": camp.campaign, "ads": len(camp.ads), "ads_shown": len(camp.shown_ads),
        "images": camp.images, "images_ok": camp.images_ok, "images_no_face": camp.images_no_face,
        "images_failed": camp.images_failed, "faces": camp.faces, "suppressed": camp.suppressed,
        **camp.distribution_columns(), **_corrected_columns(camp),
    }
    row["period_start"] = camp.period_start.isoformat() if camp.period_start else None
    row["period_end"] = camp.period_end.isoformat() if camp.period_end else None
    row["model_ids"] = " ".join(camp.model_ids)
    return row


def summary_frames(report_set: ReportSet, traces: Optional[dict[tuple[str, str], AdTrace]] = None,
                   ) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The rows of ``summary.csv`` (one per ad) and ``campaigns.csv`` (one per campaign) as frames; the
    distribution columns are empty where the group is below the minimum group size. ``traces`` (by
    campaign and ad, ``reports.trace``) fills each ad's viewer-video columns (``trace.summary_columns``)."""
    traces = traces or {}
    ads = [_flat(a, traces.get((a.campaign, a.ad))) for a in report_set.ads]
    campaigns = [_flat_campaign(c) for c in report_set.campaigns]
    return pl.DataFrame(ads, infer_schema_length=None), pl.DataFrame(campaigns, infer_schema_length=None)


def _safe_csv(frame: pl.DataFrame) -> str:
    """The frame as CSV text whose text cells follow ``safe_text.csv_cell`` (no formulas, no bidi controls)."""
    text = [name for name, dtype in frame.schema.items() if dtype == pl.String]
    return frame.with_columns(pl.col(name).map_elements(csv_cell, return_dtype=pl.String) for name in text).write_csv()


def summary_dict(report_set: ReportSet, traces: dict[tuple[str, str], AdTrace]) -> dict[str, Any]:
    """The content of ``summary.json``: ``report_set.to_dict()`` with each ad's ``viewer_videos``
    (``AdTrace.to_dict``; None for an ad without recordings)."""
    out = report_set.to_dict()
    for ad, row in zip(report_set.ads, out["ads"]):
        trace = traces.get((ad.campaign, ad.ad))
        row["viewer_videos"] = trace.to_dict() if trace is not None else None
    return out


def _write_index(root: Path, report_set: ReportSet, options: ReportOptions,
                 traces: dict[tuple[str, str], AdTrace]) -> list[Path]:
    env = make_environment(options.templates_dir)
    rendered = {(a.campaign, a.ad) for a in report_set.ads if report_paths(root, a.campaign, a.ad)[0].is_file()}
    html_text = render_index_html(report_set, template=template(env, INDEX_TEMPLATE), options=options,
                                  rendered=rendered, traces=traces)
    paths = [inside(root, root / name) for name in (INDEX_HTML, SUMMARY_JSON, SUMMARY_CSV, CAMPAIGNS_CSV)]
    write_atomic(paths[0], html_text.encode("utf-8"))
    text = json.dumps(summary_dict(report_set, traces), indent=2, ensure_ascii=False, allow_nan=False, default=str)
    write_atomic(paths[1], (text + "\n").encode("utf-8"))
    ads, campaigns = summary_frames(report_set, traces)
    write_atomic(paths[2], _safe_csv(ads).encode("utf-8"))
    write_atomic(paths[3], _safe_csv(campaigns).encode("utf-8"))
    return paths


# ---- the batch ---------------------------------------------------------------------------------------------------


def _prepare(session: Session, reports_dir: PathLike, ads, options: ReportOptions, names: Sequence[str], *,
             campaign: Optional[str] = None, ad: Optional[str] = None):
    options.validate()
    env = make_environment(options.templates_dir)
    for name in names:  # a missing template fails here, before any work
        template(env, name)
    manifest = options.manifest if options.manifest is not None else load_manifest()
    statistics = options.statistics
    if statistics is None:
        statistics = load_share_statistics(manifest or {})
    report_set = load_report_set(session, min_faces=options.min_faces, generated_at=options.generated_at,
                                 examples_per_emotion=options.examples_per_emotion if options.examples else 0,
                                 statistics=statistics, correction_min_faces=options.correction_min_faces)
    report_set = with_video_only_ads(report_set, load_video_ads(session))  # ads with recordings and no image
    root = Path(reports_dir)
    root.mkdir(parents=True, exist_ok=True)
    return report_set, select_ads(report_set, ads, campaign=campaign, ad=ad), manifest, root


def _ad_tasks(root: Path, chosen: Sequence[AdReportData], traces: dict[tuple[str, str], AdTrace]) -> list[tuple]:
    """One task per ad: ``("ad", data, html_path, pdf_path, trace)``, ``trace`` None for an ad without videos."""
    tasks = []
    for data in chosen:
        html_path, pdf_path = report_paths(root, data.campaign, data.ad)
        html_path.parent.mkdir(exist_ok=True)
        inside(root, html_path.parent)
        tasks.append(("ad", data, html_path, pdf_path, traces.get((data.campaign, data.ad))))
    return tasks


def render_reports(
    session: Session,
    reports_dir: PathLike,
    *,
    ads: Optional[Sequence[tuple[str, str]]] = None,
    campaign: Optional[str] = None,
    ad: Optional[str] = None,
    options: ReportOptions = ReportOptions(),
) -> ReportsWritten:
    """Write the ad reports, the campaign reports of their campaigns, the index and the summaries.

    Norms (percentile ranks), campaign averages, the index and the summaries always cover every ad in the
    database; ``ads`` only limits which ad reports (and which campaigns' reports) are rendered again.

    Args:
        session: an open SQLAlchemy session; nothing is written to the database.
        reports_dir: output folder, created when missing (layout in this module's docstring).
        ads: (campaign, ad) pairs to render; None renders every ad with at least one image or viewer
            recording. Pairs without either get no report (logged as a warning).
        campaign: render only the ads of this campaign (with ``ads``: of those).
        ad: render only the ads of this name (with ``ads``: of those).
        options: paper size, examples, minimum group size, workers, templates.

    Returns:
        The written paths and the time taken. Without ``ads``, nothing is written when no ad (of
        ``campaign``, named ``ad``) has a stored image.

    Raises:
        ReportError: a template is missing, a path would leave ``reports_dir``, or rendering failed.
        ConfigError: an option or ``ads`` is malformed.
    """
    started = time.perf_counter()
    names = (AD_TEMPLATE, CAMPAIGN_TEMPLATE, INDEX_TEMPLATE)
    report_set, chosen, manifest, root = _prepare(session, reports_dir, ads, options, names, campaign=campaign, ad=ad)
    if not chosen and ads is None:
        return ReportsWritten()
    # every ad's, for the summaries and the index; loaded one ad at a time
    traces = load_ad_traces(session, [(a.campaign, a.ad) for a in report_set.ads], min_faces=options.min_faces)
    tasks = _ad_tasks(root, chosen, traces)
    wanted = {a.campaign for a in chosen}
    campaigns: list[CampaignReportData] = [c for c in report_set.campaigns if c.campaign in wanted]
    for camp in campaigns:
        html_path, pdf_path = campaign_paths(root, camp.campaign)
        html_path.parent.mkdir(exist_ok=True)
        tasks.insert(0, ("campaign", camp, html_path, pdf_path))  # the longest tasks first
    results, workers = _run(tasks, options, manifest, names)
    written = ReportsWritten(workers=workers, report_set=report_set, traces=traces)
    for task, (html_path, pdf_path) in zip(tasks, results):
        (written.ads if task[0] == "ad" else written.campaigns).extend([html_path, pdf_path])
    written.campaigns = sorted(written.campaigns, key=lambda p: (p.parent.name, p.suffix))
    written.index = _write_index(root, report_set, options, traces)
    written.seconds = time.perf_counter() - started
    log.info("Wrote %d ad and %d campaign reports to %s in %.1f s (%d workers)", len(written.ads) // 2,
                len(written.campaigns) // 2, root, written.seconds, workers)
    return written


def render_ad_reports(
    session: Session,
    reports_dir: PathLike,
    *,
    ads: Optional[Sequence[tuple[str, str]]] = None,
    min_faces: int = 10,
    templates_dir: Optional[PathLike] = None,
    generated_at=None,
    paper: str = "a4",
    examples: bool = False,
    workers: Optional[int] = 0,
    manifest: Optional[dict] = None,
) -> list[Path]:
    """Write ``<reports_dir>/<campaign>/<ad>.html`` and ``.pdf`` for every ad (or the ones in ``ads``) and
    nothing else (``render_reports`` also writes campaign reports, the index and the summaries).

    Args:
        session: an open SQLAlchemy session; nothing is written to the database.
        reports_dir: output folder, created when missing; names pass through ``safe_filename``.
        ads: (campaign, ad) pairs to report on; ``None`` reports every ad with at least one image or viewer
            recording. Pairs without either get no report (logged as a warning).
        min_faces: ads with fewer faces show counts but not the distribution of expressions.
        templates_dir: folder with ``ad_report.html`` and ``report.css``; the shipped templates by default.
        generated_at: the time printed on the reports (UTC); now when omitted.
        paper: ``a4`` or ``letter``.
        examples: show crops of the most confident faces per expression.
        workers: rendering processes (0: in this process; None: one per core).
        manifest: the model manifest for the reliability appendix; the bundled one when None.

    Returns:
        The written paths, HTML then PDF for each ad, ads sorted by campaign and ad.

    Raises:
        ReportError: a template is missing, a path would leave ``reports_dir``, or rendering failed.
        ConfigError: ``min_faces`` or ``ads`` is malformed.
    """
    options = ReportOptions(min_faces=min_faces, paper=paper, examples=examples, workers=workers,
                            templates_dir=str(templates_dir) if templates_dir is not None else None,
                            generated_at=generated_at, manifest=manifest)
    _, chosen, manifest, root = _prepare(session, reports_dir, ads, options, (AD_TEMPLATE,))
    traces = load_ad_traces(session, [(d.campaign, d.ad) for d in chosen], min_faces=options.min_faces)
    tasks = _ad_tasks(root, chosen, traces)
    results, _ = _run(tasks, options, manifest, (AD_TEMPLATE,))
    return [path for pair in results for path in pair]
