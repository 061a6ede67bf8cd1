"""Per-ad reports: self-contained HTML and PDF with the numbers of ``emotion_batch.aggregate``."""

from .render import render_ad_html, render_ad_reports, report_paths, safe_filename

__all__ = ["render_ad_html", "render_ad_reports", "report_paths", "safe_filename"]
