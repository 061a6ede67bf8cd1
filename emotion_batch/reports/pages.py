"""The three kinds of page: one ad's report, one campaign's report, the index; as self-contained HTML.

Each ``render_*_html`` function turns the data of ``emotion_batch.aggregate`` into the context its
template needs (rows, inline SVG charts, example crops, the model's reliability) and renders it. Every
string from a folder name reaches the page through Jinja2 autoescaping; the SVG charts are our own markup.
"""

from __future__ import annotations

import datetime as dt
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import jinja2
from markupsafe import Markup

from ..aggregate import (
    CI_METHOD,
    CORRECTION_METHOD,
    CORRECTION_MIN_FACES,
    METRICS,
    VALENCE_NEGATIVE,
    VALENCE_POSITIVE,
    AdReportData,
    CampaignReportData,
    ReportSet,
)
from ..aggregate.correction import CORRECTION_METHOD_NAMES
from ..exceptions import ConfigError
from ..labels import EMOTIONS
from .trace import AdTrace
from .charts import (
    ADS_PER_CHART,
    EMOTION_LABELS,
    confidence_chart_svg,
    emotion_chart_svg,
    mix_chart_svg,
    short_label,
    trace_chart_svg,
    trend_chart_svg,
    valence_chart_svg,
)
from .methodology import model_reliability
from .render import display_name, safe_filename

__all__ = ["PAPER_SIZES", "ReportOptions", "render_ad_html", "render_campaign_html", "render_index_html"]

#: ``--paper`` choices and their CSS page sizes.
PAPER_SIZES = {"a4": "A4", "letter": "letter"}


@dataclass(frozen=True)
class ReportOptions:
    """How reports are rendered.

    Attributes:
        min_faces: minimum group size below which shares are suppressed.
        paper: ``a4`` or ``letter``.
        examples: show crops of the most confident faces per expression (personal data: off by default).
        examples_per_emotion: how many crops per expression when ``examples`` is on.
        workers: rendering processes; 0 renders in this process, None one per core.
        templates_dir: folder with the templates and ``report.css``; the shipped ones by default.
        generated_at: the time printed on the reports (UTC); now when None.
        manifest: the model manifest the reliability appendix reads; None reads the bundled one.
        statistics: the models' validation statistics by model id for the corrected shares; None reads the
            bundled ``models/<name>.shares.json`` of the models in ``manifest``.
        correction_min_faces: below this many faces a group's reports lead with the raw shares.
    """

    min_faces: int = 10
    paper: str = "a4"
    examples: bool = False
    examples_per_emotion: int = 3
    workers: Optional[int] = 0
    templates_dir: Optional[str] = None
    generated_at: Optional[dt.datetime] = None
    manifest: Optional[Mapping] = None
    statistics: Optional[Mapping[str, Any]] = None
    correction_min_faces: int = CORRECTION_MIN_FACES

    def validate(self) -> "ReportOptions":
        """Return self after checking every field.

        Raises:
            ConfigError: a field has a value that cannot be used.
        """
        if self.paper not in PAPER_SIZES:
            raise ConfigError(f"paper must be one of {list(PAPER_SIZES)}. Received: paper={self.paper!r}")
        for name, low in (("min_faces", 1), ("examples_per_emotion", 1), ("correction_min_faces", 1)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ConfigError(f"{name} must be an integer >= {low}. Received: {name}={value!r}")
        if self.workers is not None and (isinstance(self.workers, bool) or not isinstance(self.workers, int)
                                         or self.workers < 0):
            raise ConfigError(f"workers must be None or an integer >= 0. Received: workers={self.workers!r}")
        return self


def _svg(markup: str) -> Markup:
    # Markup: our own SVG; names reach it only through matplotlib, which escapes text it writes.
    return Markup(markup)


def _common(options: ReportOptions, generated_at: dt.datetime, model_ids: Sequence[str],
            manifest: Optional[Mapping]) -> dict[str, Any]:
    return {
        "page_size": PAPER_SIZES[options.paper],
        "generated_at_iso": generated_at.astimezone(dt.timezone.utc).isoformat(timespec="seconds"),
        "min_faces": options.min_faces,
        "ci_method": CI_METHOD,
        "valence_positive": [EMOTION_LABELS[e] for e in VALENCE_POSITIVE],
        "valence_negative": [EMOTION_LABELS[e] for e in VALENCE_NEGATIVE],
        "reliability": model_reliability(model_ids, manifest),
        "emotions": list(EMOTIONS),
        "correction_min_faces": options.correction_min_faces,
        "correction_method_name": CORRECTION_METHOD_NAMES[CORRECTION_METHOD],
    }


def running_title(*names: str) -> str:
    """The page header's title: the display names joined by " / ", each cut to 40 characters."""
    return " / ".join(short_label(display_name(n), 40) for n in names)


# ---- one ad ------------------------------------------------------------------------------------------------


def ad_context(data: AdReportData, options: ReportOptions, manifest: Optional[Mapping],
               trace: Optional["AdTrace"] = None) -> dict[str, Any]:
    """Everything ``ad_report.html`` shows of one ad (``trace``: its viewer videos, ``reports.trace``)."""
    rows: list[dict] = []
    charts: dict[str, Optional[Markup]] = {"distribution": None, "confidence": None, "trend": None}
    head = data.headline
    if head is not None:
        comparison = data.comparison
        corrected = data.correction if head.corrected else None
        for e in EMOTIONS:
            rows.append({
                "name": e,
                "label": EMOTION_LABELS[e],
                "count": data.emotion_counts[e],
                "share": data.shares[e],
                "ci": data.intervals[e] if data.intervals else None,
                "corrected_share": corrected.shares[e] if corrected else None,
                "corrected_ci": corrected.intervals[e] if corrected else None,
                "mean_probability": data.mean_probabilities[e],
                "campaign_share": comparison.campaign_shares[e] if comparison and comparison.campaign_shares else None,
                "percentile": comparison.percentiles.get(e) if comparison else None,
            })
        reference = comparison.campaign_shares if comparison and comparison.campaign_shares else None
        if head.corrected:  # the campaign's corrected shares beside the ad's, or none
            camp = comparison.campaign_correction if comparison else None
            reference = camp.shares if camp is not None and camp.applied else None
        charts["distribution"] = _svg(emotion_chart_svg(head.shares, highlight=head.dominant_emotion,
                                                        intervals=head.intervals, reference=reference))
        if data.confidence is not None:
            charts["confidence"] = _svg(confidence_chart_svg(data.confidence.bins))
        if len(data.trend) >= 2:
            charts["trend"] = _svg(trend_chart_svg([p.day for p in data.trend], [p.faces for p in data.trend],
                                                   [p.valence for p in data.trend]))
    examples, examples_failed = {}, 0
    if options.examples and data.examples:
        from .examples import example_thumbnails

        examples, examples_failed = example_thumbnails(data.examples)
    return {
        **_common(options, data.generated_at, data.model_ids, manifest),
        "data": data,
        "emotions": rows,
        "chart_svg": charts["distribution"],
        "charts": charts,
        "headline": head,
        "reference_shown": reference is not None if head is not None else False,
        "dominant_label": EMOTION_LABELS.get(head.dominant_emotion if head else ""),
        "running_title": running_title(data.campaign, data.ad),
        "examples_requested": options.examples,
        "examples": examples,
        "examples_failed": examples_failed,
        "trace": trace,
        "trace_svg": _svg(trace_chart_svg(trace.seconds)) if trace is not None and trace.shown_seconds else None,
    }


def render_ad_html(data: AdReportData, *, template: jinja2.Template, options: ReportOptions,
                   manifest: Optional[Mapping] = None, trace: Optional["AdTrace"] = None) -> str:
    """Return the self-contained HTML report of one ad (styles, charts and crops inline, no external URL)."""
    return template.render(**ad_context(data, options, manifest, trace))


# ---- one campaign --------------------------------------------------------------------------------------------


def _chunks(items: Sequence, size: int) -> list[Sequence]:
    return [items[i : i + size] for i in range(0, len(items), size)] or [items]


def campaign_context(data: CampaignReportData, options: ReportOptions,
                     manifest: Optional[Mapping]) -> dict[str, Any]:
    """Everything ``campaign_report.html`` shows of one campaign."""
    by_valence = data.ranking("valence")
    rankings = []
    for metric in METRICS:
        ranked = data.ranking(metric)
        value = (lambda a: a.valence) if metric == "valence" else (lambda a, m=metric: a.shares[m])
        rankings.append({
            "metric": metric,
            "label": "Valence" if metric == "valence" else EMOTION_LABELS[metric],
            "kind": "signed" if metric == "valence" else "percent",
            "top": [(a, value(a)) for a in ranked[:3]],
            "lowest": (ranked[-1], value(ranked[-1])) if len(ranked) > 3 else None,
        })
    valence_charts, mix_charts = [], []
    for part in _chunks(by_valence, ADS_PER_CHART):
        if not part:
            break
        valence_charts.append(_svg(valence_chart_svg([display_name(a.ad) for a in part], [a.valence for a in part],
                                                     [a.valence_interval for a in part], reference=data.valence)))
        mix_charts.append(_svg(mix_chart_svg([display_name(a.ad) for a in part], [a.shares for a in part])))
    distribution = None
    head = data.headline
    if head is not None:
        distribution = _svg(emotion_chart_svg(head.shares, highlight=head.dominant_emotion, intervals=head.intervals))
    return {
        **_common(options, data.generated_at, data.model_ids, manifest),
        "data": data,
        "ranked_ads": by_valence,
        "rankings": rankings,
        "valence_charts": valence_charts,
        "mix_charts": mix_charts,
        "distribution_svg": distribution,
        "headline": head,
        "dominant_label": EMOTION_LABELS.get(head.dominant_emotion if head else ""),
        "running_title": running_title(data.campaign),
    }


def render_campaign_html(data: CampaignReportData, *, template: jinja2.Template, options: ReportOptions,
                         manifest: Optional[Mapping] = None) -> str:
    """Return the self-contained HTML report of one campaign: its ads side by side, ranked, with the table."""
    return template.render(**campaign_context(data, options, manifest))


# ---- the index -------------------------------------------------------------------------------------------------


def _href(*parts: str) -> str:
    return "/".join(urllib.parse.quote(p, safe="") for p in parts)


def render_index_html(report_set: ReportSet, *, template: jinja2.Template, options: ReportOptions,
                      rendered: Optional[set[tuple[str, str]]] = None,
                      traces: Optional[Mapping[tuple[str, str], AdTrace]] = None) -> str:
    """Return ``index.html``: every campaign and ad with its key figures and relative links to its reports.

    Args:
        report_set: every ad and campaign.
        template: ``index.html``.
        options: the report options (paper size is irrelevant here).
        rendered: (campaign, ad) pairs whose reports exist; None means all.
        traces: the viewer-video traces by (campaign, ad) (``reports.trace``): an ad with recordings says how
            many, and its strongest moment.
    """
    traces = traces or {}
    campaigns = []
    for camp in report_set.campaigns:
        folder = safe_filename(camp.campaign)
        ads = []
        for ad in camp.ads:
            stem = safe_filename(ad.ad)
            has_report = rendered is None or (ad.campaign, ad.ad) in rendered
            ads.append({"data": ad, "html": _href(folder, stem + ".html") if has_report else None,
                        "pdf": _href(folder, stem + ".pdf") if has_report else None,
                        "trace": traces.get((ad.campaign, ad.ad))})
        campaigns.append({"data": camp, "html": _href(folder, "index.html"), "pdf": _href(folder, "campaign.pdf"),
                          "ads": ads, "videos": sum(a["trace"].videos for a in ads if a["trace"] is not None)})
    return template.render(
        report_set=report_set,
        campaigns=campaigns,
        min_faces=report_set.min_faces,
        ci_method=CI_METHOD,
        generated_at_iso=report_set.generated_at.astimezone(dt.timezone.utc).isoformat(timespec="seconds"),
        page_size=PAPER_SIZES[options.paper],
    )


def relative_to_reports(path: Path, reports_dir: Path) -> str:
    """A written path as shown in messages: relative to the reports folder."""
    return path.resolve().relative_to(reports_dir.resolve()).as_posix()
