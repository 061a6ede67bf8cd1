"""Reports: per-ad and per-campaign HTML and PDF, an index, and summary.json/CSV, all from the numbers of
``emotion_batch.aggregate``.

- ``render``: safe output names and paths, the Jinja2 environment, the PDF writer;
- ``charts``: matplotlib charts as inline SVG;
- ``pages``: the ad, campaign and index pages;
- ``methodology``: per-class reliability from the model manifest;
- ``examples``: in-memory crops of example faces (``--examples``);
- ``batch``: everything in a process pool, then the index and the summaries.
"""

from .batch import ReportsWritten, render_ad_reports, render_reports, summary_frames
from .pages import PAPER_SIZES, ReportOptions, render_ad_html, render_campaign_html, render_index_html
from .render import campaign_paths, report_paths, safe_filename

__all__ = [
    "PAPER_SIZES",
    "ReportOptions",
    "ReportsWritten",
    "campaign_paths",
    "render_ad_html",
    "render_ad_reports",
    "render_campaign_html",
    "render_index_html",
    "render_reports",
    "report_paths",
    "safe_filename",
    "summary_frames",
]
