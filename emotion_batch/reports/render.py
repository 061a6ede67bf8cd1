"""Render the per-ad reports: self-contained HTML (Jinja2) and PDF (WeasyPrint) with an inline SVG chart.

matplotlib and WeasyPrint are imported inside the functions that need them, so importing this module (as the
CLI does for ``--help``) stays cheap.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import html
import io
import logging
import os
import re
import secrets
import unicodedata
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Optional, Union

import jinja2
from markupsafe import Markup
from sqlalchemy.orm import Session

from ..aggregate import AdReportData, ad_reports_from_frames, load_faces, load_images
from ..assets import asset_dir
from ..exceptions import ReportError
from ..labels import EMOTIONS

__all__ = [
    "AD_TEMPLATE",
    "display_name",
    "emotion_chart_svg",
    "make_environment",
    "render_ad_html",
    "render_ad_reports",
    "report_paths",
    "safe_filename",
    "write_pdf",
]

logger = logging.getLogger(__name__)

AD_TEMPLATE = "ad_report.html"
#: Display names of the classes, in ``EMOTIONS`` order.
EMOTION_LABELS = {e: e.capitalize() for e in EMOTIONS}
#: The font stack of the templates and the chart; DejaVu Sans ships with matplotlib and most Linux systems.
FONT_FAMILIES = ["DejaVu Sans", "Liberation Sans", "Arial", "Helvetica"]

PathLike = Union[str, os.PathLike]

# --- safe output names -------------------------------------------------------------------------------------

MAX_NAME_CHARS = 100
MAX_NAME_BYTES = 180  # leaves room for the hash and the extension within the usual 255-byte limit
HASH_CHARS = 12
_WINDOWS_RESERVED = {"CON", "PRN", "AUX", "NUL", *(f"COM{i}" for i in range(1, 10)), *(f"LPT{i}" for i in range(1, 10))}


def safe_filename(name: str) -> str:
    """Turn a campaign or ad name into one safe path component.

    Unicode letters, digits, combining marks and ``-_.`` are kept, spaces become ``_``, control, format
    (bidi, zero-width) and unassigned characters are dropped, everything else (``/``, ``<``, quotes...)
    becomes ``_``. Leading and trailing dots and underscores go, so the result is never ``.``, ``..`` or
    hidden. The result is cut to 100 characters (and 180 UTF-8 bytes). Whenever anything was changed, a
    12-character hash of the original name is appended, so two different names never give the same result.

    Raises:
        ReportError: ``name`` is not a string.
    """
    if not isinstance(name, str):
        raise ReportError(f"name must be a str. Received: name={name!r}")
    kept = []
    for char in name:
        category = unicodedata.category(char)
        if char in "-_." or category[0] in "LNM":
            kept.append(char)
        elif category[0] == "Z" and category != "Zs" or category[0] == "C":
            continue  # line/paragraph separators, controls, bidi marks, surrogates, private use, unassigned
        else:
            kept.append("_")  # spaces, punctuation, symbols, path separators
    safe = re.sub("_{2,}", "_", "".join(kept)).strip("._")
    cut = safe[:MAX_NAME_CHARS]
    while len(cut.encode("utf-8")) > MAX_NAME_BYTES:
        cut = cut[:-1]
    safe = cut.rstrip(".")
    changed = safe != name or safe.split(".")[0].upper() in _WINDOWS_RESERVED
    if not safe:
        safe, changed = "unnamed", True
    if changed:
        digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:HASH_CHARS]
        safe = f"{safe}-{digest}"
    return safe


def report_paths(reports_dir: PathLike, campaign: str, ad: str) -> tuple[Path, Path]:
    """Return the HTML and PDF paths of one ad's report: ``<reports_dir>/<campaign>/<ad>.html|.pdf``.

    Raises:
        ReportError: a path would resolve outside ``reports_dir`` (e.g. through a symlinked folder).
    """
    root = Path(reports_dir).resolve()
    stem = root / safe_filename(campaign) / safe_filename(ad)
    paths = (stem.with_name(stem.name + ".html"), stem.with_name(stem.name + ".pdf"))
    for path in paths:
        if not path.resolve().is_relative_to(root):
            raise ReportError(
                f"A report path must stay inside reports_dir={str(root)!r}. "
                f"Received: campaign={campaign!r}, ad={ad!r}, path={str(path.resolve())!r}"
            )
    return paths


# --- chart ---------------------------------------------------------------------------------------------------

_SVG_STYLE = re.compile(r'\sstyle="([^"]*)"')


def _style_to_attributes(match: re.Match) -> str:
    # Inline SVG lives in the HTML tree, whose CSS does not know SVG properties (WeasyPrint warns about every
    # one): move matplotlib's style declarations into presentation attributes, which both renderers read.
    attributes = []
    for declaration in match.group(1).split(";"):
        prop, _, value = declaration.partition(":")
        if prop.strip() and value.strip():
            attributes.append(f' {prop.strip()}="{html.escape(value.strip(), quote=True)}"')
    return "".join(attributes)


def emotion_chart_svg(shares: Mapping[str, float], *, highlight: Optional[str] = None) -> str:
    """Draw the share of faces per apparent expression as horizontal bars and return inline SVG markup.

    Args:
        shares: share in [0, 1] per emotion name; every name in ``EMOTIONS`` is drawn, in that order.
        highlight: the emotion whose bar is drawn in the accent colour (the dominant one).

    Returns:
        An ``<svg>`` element without XML prolog, metadata or stylesheet, text kept as text
        (``svg.fonttype = "none"``), ready to be placed inside HTML.
    """
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import PercentFormatter

    values = [100.0 * float(shares.get(e) or 0.0) for e in EMOTIONS]
    labels = [EMOTION_LABELS[e] for e in EMOTIONS]
    colours = ["#1f4e79" if e == highlight else "#9fb3c8" for e in EMOTIONS]
    rc = {
        "svg.fonttype": "none",
        "svg.hashsalt": "emotion_batch",  # stable ids, so the same data gives the same markup
        "font.family": "sans-serif",
        "font.sans-serif": FONT_FAMILIES,
        "font.size": 8.5,
        "text.color": "#1f2933",
        "axes.edgecolor": "#7b8794",
        "xtick.color": "#52606d",
        "ytick.color": "#1f2933",
    }
    with matplotlib.rc_context(rc):
        figure = Figure(figsize=(6.3, 2.25))
        FigureCanvasAgg(figure)
        axes = figure.add_subplot()
        bars = axes.barh(labels, values, color=colours, height=0.62)
        axes.bar_label(bars, labels=[f"{v:.1f} %" for v in values], padding=3, fontsize=8)
        axes.invert_yaxis()
        axes.set_xlim(0, 100)
        axes.xaxis.set_major_formatter(PercentFormatter(decimals=0))
        axes.set_xlabel("Share of faces")
        axes.grid(axis="x", color="#e4e7eb", linewidth=0.6)
        axes.set_axisbelow(True)
        for side in ("top", "right"):
            axes.spines[side].set_visible(False)
        axes.tick_params(axis="y", length=0)
        figure.tight_layout(pad=0.4)
        return figure_to_inline_svg(figure, "Share of faces per apparent expression")


def figure_to_inline_svg(figure, aria_label: str) -> str:
    """A matplotlib figure as an ``<svg>`` element fit for inline HTML and WeasyPrint: no prolog, metadata
    or stylesheet; style declarations moved into presentation attributes; an accessible name."""
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", metadata={"Date": None, "Creator": None})
    svg = buffer.getvalue()
    svg = svg[svg.index("<svg") :]
    svg = re.sub(r"\s*<metadata>.*?</metadata>", "", svg, flags=re.S)
    svg = re.sub(r"\s*<style[^>]*>.*?</style>", "", svg, flags=re.S)
    svg = _SVG_STYLE.sub(_style_to_attributes, svg)
    # What matplotlib's removed stylesheet said, as inherited attributes; plus an accessible name.
    return svg.replace(
        "<svg ",
        f'<svg role="img" aria-label="{html.escape(aria_label, quote=True)}" '
        'stroke-linejoin="round" stroke-linecap="butt" ',
        1,
    )


# --- HTML ----------------------------------------------------------------------------------------------------


#: Bidi embedding/override/isolate controls and marks: a name showing them could read backwards.
_BIDI_CONTROLS = {"\u061c", "\u200e", "\u200f", *map(chr, range(0x202A, 0x202F)), *map(chr, range(0x2066, 0x206A))}


def display_name(name: str) -> str:
    """Return a campaign or ad name as the reports show it: bidi controls dropped, control characters as spaces.

    Jinja autoescaping still escapes the result; this only keeps a name from reordering or breaking the text
    around it.
    """
    return "".join(
        " " if unicodedata.category(char) == "Cc" else char for char in name if char not in _BIDI_CONTROLS
    )


def _percent(value: Optional[float], digits: int = 1) -> str:
    return "–" if value is None else f"{100.0 * value:.{digits}f} %"


def _utc(value: Optional[dt.datetime]) -> str:
    if value is None:
        return "–"
    return value.astimezone(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def make_environment(templates_dir: Optional[PathLike] = None) -> jinja2.Environment:
    """Return the Jinja2 environment of the reports: autoescaping on for HTML, strict undefined names.

    Args:
        templates_dir: folder of ``ad_report.html`` and ``report.css``; the shipped ``templates`` by default.
    """
    folder = Path(templates_dir) if templates_dir is not None else asset_dir("templates")
    if not folder.is_dir():
        raise ReportError(f"templates_dir must be an existing folder. Received: templates_dir={str(folder)!r}")
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(folder),
        autoescape=jinja2.select_autoescape(
            enabled_extensions=("html", "htm", "xml", "svg"), disabled_extensions=("css",), default=True
        ),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["percent"] = _percent
    env.filters["utc"] = _utc
    env.filters["display_name"] = display_name
    return env


def _template(env: jinja2.Environment, name: str) -> jinja2.Template:
    try:
        return env.get_template(name)
    except jinja2.TemplateNotFound as exc:
        raise ReportError(f"The report template {name!r} is missing from {env.loader.searchpath}") from exc


def _render_html(template: jinja2.Template, data: AdReportData) -> str:
    rows, chart = [], None
    if not data.suppressed:
        rows = [
            {
                "name": e,
                "label": EMOTION_LABELS[e],
                "count": data.emotion_counts[e],
                "share": data.shares[e],
                "mean_probability": data.mean_probabilities[e],
            }
            for e in EMOTIONS
        ]
        # Markup: our own SVG, holding no user-provided text.
        chart = Markup(emotion_chart_svg(data.shares, highlight=data.dominant_emotion))
    return template.render(
        data=data,
        emotions=rows,
        chart_svg=chart,
        dominant_label=EMOTION_LABELS.get(data.dominant_emotion or ""),
        generated_at_iso=data.generated_at.astimezone(dt.timezone.utc).isoformat(timespec="seconds"),
    )


def render_ad_html(data: AdReportData, *, templates_dir: Optional[PathLike] = None) -> str:
    """Return the self-contained HTML report of one ad (styles and chart inline, no external URL)."""
    return _render_html(_template(make_environment(templates_dir), AD_TEMPLATE), data)


# --- PDF -----------------------------------------------------------------------------------------------------


def _data_only_fetcher():
    # WeasyPrint >= 66 takes a URLFetcher instance; this one refuses every scheme but data:, so a report
    # never reads local files or the network whatever ends up in it.
    from weasyprint.urls import URLFetcher

    return URLFetcher(allowed_protocols=("data",), allow_redirects=False, timeout=1)


def _can_subset_fonts() -> bool:
    """Whether HarfBuzz-subset is there. Without it WeasyPrint subsets fonts with fontTools and warns on
    every PDF; embedding the whole fonts instead keeps the PDF right and quiet (only larger)."""
    try:
        from weasyprint.text.ffi import harfbuzz, harfbuzz_subset

        return bool(harfbuzz_subset) and bool(harfbuzz.hb_version_atleast(4, 1, 0))
    except (ImportError, AttributeError):
        return False


def write_pdf(html_text: str, pdf_path: PathLike, *, base_url: Optional[PathLike] = None) -> Path:
    """Render HTML to a PDF file with WeasyPrint, fetching nothing but ``data:`` URLs.

    Raises:
        ReportError: WeasyPrint failed.
    """
    from weasyprint import HTML

    pdf_path = Path(pdf_path)
    base = Path(base_url).resolve().as_uri() + "/" if base_url is not None else None
    try:
        pdf = HTML(string=html_text, base_url=base, url_fetcher=_data_only_fetcher()).write_pdf(
            full_fonts=not _can_subset_fonts()
        )
    except Exception as exc:  # WeasyPrint raises many kinds; the caller gets one
        raise ReportError(f"WeasyPrint could not render {str(pdf_path)!r}: {exc}") from exc
    _write_atomic(pdf_path, pdf)
    return pdf_path


def _write_atomic(path: Path, data: bytes) -> None:
    # A crash never leaves half a report under the final name; the file gets the usual umask permissions.
    partial = path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}.partial")
    try:
        with open(partial, "xb") as handle:
            handle.write(data)
        os.replace(partial, path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise


# --- the batch -----------------------------------------------------------------------------------------------


def render_ad_reports(
    session: Session,
    reports_dir: PathLike,
    *,
    ads: Optional[Sequence[tuple[str, str]]] = None,
    min_faces: int = 10,
    templates_dir: Optional[PathLike] = None,
    generated_at: Optional[dt.datetime] = None,
) -> list[Path]:
    """Write ``<reports_dir>/<campaign>/<ad>.html`` and ``.pdf`` for every ad (or the ones in ``ads``).

    Args:
        session: an open SQLAlchemy session; nothing is written to the database.
        reports_dir: output folder, created when missing; names pass through ``safe_filename``.
        ads: (campaign, ad) pairs to report on; ``None`` reports every ad with at least one image. Pairs
            without any stored image get no report (logged as a warning).
        min_faces: ads with fewer faces show counts but not the distribution of expressions.
        templates_dir: folder with ``ad_report.html`` and ``report.css``; the shipped templates by default.
        generated_at: the time printed on the reports (UTC); now when omitted.

    Returns:
        The written paths, HTML then PDF for each ad, ads sorted by campaign and ad.

    Raises:
        ReportError: a template is missing, a path would leave ``reports_dir``, or rendering failed.
        ConfigError: ``min_faces`` or ``ads`` is malformed.
    """
    ads = None if ads is None else list(ads)
    template = _template(make_environment(templates_dir), AD_TEMPLATE)
    base_url = Path(template.filename).parent if template.filename else None
    reports = ad_reports_from_frames(
        load_faces(session, ads=ads), load_images(session, ads=ads), min_faces=min_faces, generated_at=generated_at
    )
    if ads is not None:
        missing = sorted({tuple(pair) for pair in ads} - {(r.campaign, r.ad) for r in reports})
        if missing:
            logger.warning("No report for %d ad(s) without any stored image: %s", len(missing), missing[:10])

    root = Path(reports_dir)
    root.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for data in reports:
        html_path, pdf_path = report_paths(root, data.campaign, data.ad)
        html_path.parent.mkdir(exist_ok=True)
        html_text = _render_html(template, data)
        _write_atomic(html_path, html_text.encode("utf-8"))
        write_pdf(html_text, pdf_path, base_url=base_url)
        logger.info("Wrote the report of campaign=%r ad=%r to %s", data.campaign, data.ad, pdf_path)
        written += [html_path, pdf_path]
    return written
