"""The building blocks of every report: safe output names and paths, the Jinja2 environment with its
filters, and the PDF writer (WeasyPrint, fetching nothing but ``data:`` URLs).

WeasyPrint is imported inside the functions that need it, so importing this module (as the CLI does for
``--help``) stays cheap. The charts are in ``charts.py``, the pages in ``pages.py``, the batch in ``batch.py``.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import logging
import os
import re
import secrets
import unicodedata
from pathlib import Path
from typing import Optional, Union

import jinja2

from ..assets import asset_dir
from ..exceptions import ReportError
from ..safe_text import BIDI_CONTROLS
from .charts import EMOTION_LABELS, FONT_FAMILIES, emotion_chart_svg, figure_to_inline_svg

__all__ = [
    "AD_TEMPLATE",
    "CAMPAIGN_TEMPLATE",
    "EMOTION_LABELS",
    "FONT_FAMILIES",
    "INDEX_TEMPLATE",
    "campaign_paths",
    "display_name",
    "emotion_chart_svg",
    "figure_to_inline_svg",
    "inside",
    "make_environment",
    "report_paths",
    "safe_filename",
    "svg_as_images",
    "template",
    "write_atomic",
    "write_pdf",
]

log = logging.getLogger(__name__)

AD_TEMPLATE = "ad_report.html"
CAMPAIGN_TEMPLATE = "campaign_report.html"
INDEX_TEMPLATE = "index.html"
#: File names of each campaign's report inside its folder, and of the top-level files.
CAMPAIGN_HTML, CAMPAIGN_PDF = "index.html", "campaign.pdf"
INDEX_HTML, SUMMARY_JSON, SUMMARY_CSV, CAMPAIGNS_CSV = "index.html", "summary.json", "summary.csv", "campaigns.csv"

PathLike = Union[str, os.PathLike]

# --- safe output names -------------------------------------------------------------------------------------

MAX_NAME_CHARS = 100
MAX_NAME_BYTES = 180  # leaves room for the hash and the extension within the usual 255-byte limit
HASH_CHARS = 12
_WINDOWS_RESERVED = {"CON", "PRN", "AUX", "NUL", *(f"COM{i}" for i in range(1, 10)), *(f"LPT{i}" for i in range(1, 10))}
#: Stems of the files the reports write beside the ad reports and campaign folders: an ad or campaign
#: with such a name gets a hash, so ``<campaign>/index.html`` or ``summary.json`` is never overwritten.
_OUTPUT_RESERVED = {"INDEX", "CAMPAIGN", "SUMMARY", "CAMPAIGNS"}


def safe_filename(name: str) -> str:
    """Turn a campaign or ad name into one safe path component.

    Unicode letters, digits, combining marks and ``-_.`` are kept, spaces become ``_``, control, format
    (bidi, zero-width) and unassigned characters are dropped, everything else (``/``, ``<``, quotes...)
    becomes ``_``. Leading and trailing dots and underscores go, so the result is never ``.``, ``..`` or
    hidden. The result is cut to 100 characters (and 180 UTF-8 bytes). Whenever anything was changed, or the
    name is a reserved device name (``CON``...) or the stem of a file the reports write themselves
    (``index``, ``campaign``, ``summary``, ``campaigns``), a 12-character hash of the original name is
    appended, so two different names never give the same result and no report overwrites another.

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
    changed = safe != name or safe.split(".")[0].upper() in _WINDOWS_RESERVED | _OUTPUT_RESERVED
    if not safe:
        safe, changed = "unnamed", True
    if changed:
        digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:HASH_CHARS]
        safe = f"{safe}-{digest}"
    return safe


def inside(root: PathLike, path: PathLike, *, what: str = "") -> Path:
    """Return ``path`` after checking that it resolves inside ``root`` (symlinks followed).

    Raises:
        ReportError: the path would leave ``root``.
    """
    root = Path(root).resolve()
    resolved = Path(path).resolve()
    if not resolved.is_relative_to(root):
        raise ReportError(f"A report path must stay inside reports_dir={str(root)!r}. "
                          f"Received: {what + ', ' if what else ''}path={str(resolved)!r}")
    return Path(path)


def report_paths(reports_dir: PathLike, campaign: str, ad: str) -> tuple[Path, Path]:
    """Return the HTML and PDF paths of one ad's report: ``<reports_dir>/<campaign>/<ad>.html|.pdf``.

    Raises:
        ReportError: a path would resolve outside ``reports_dir`` (e.g. through a symlinked folder).
    """
    root = Path(reports_dir).resolve()
    stem = root / safe_filename(campaign) / safe_filename(ad)
    what = f"campaign={campaign!r}, ad={ad!r}"
    return (inside(root, stem.with_name(stem.name + ".html"), what=what),
            inside(root, stem.with_name(stem.name + ".pdf"), what=what))


def campaign_paths(reports_dir: PathLike, campaign: str) -> tuple[Path, Path]:
    """Return the HTML and PDF paths of one campaign's report: ``<reports_dir>/<campaign>/index.html`` and
    ``campaign.pdf`` (no ad report can have these names, see ``safe_filename``).

    Raises:
        ReportError: a path would resolve outside ``reports_dir``.
    """
    root = Path(reports_dir).resolve()
    folder = root / safe_filename(campaign)
    what = f"campaign={campaign!r}"
    return inside(root, folder / CAMPAIGN_HTML, what=what), inside(root, folder / CAMPAIGN_PDF, what=what)


# --- HTML ----------------------------------------------------------------------------------------------------




def display_name(name: str) -> str:
    """Return a campaign or ad name as the reports show it: bidi controls dropped, control characters as spaces.

    Jinja autoescaping still escapes the result; this only keeps a name from reordering or breaking the text
    around it.
    """
    return "".join(
        " " if unicodedata.category(char) == "Cc" else char for char in name if char not in BIDI_CONTROLS
    )


def _percent(value: Optional[float], digits: int = 1) -> str:
    return "–" if value is None else f"{100.0 * value:.{digits}f} %"


def _utc(value: Optional[dt.datetime]) -> str:
    if value is None:
        return "–"
    return value.astimezone(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def _signed(value: Optional[float], digits: int = 2) -> str:
    if value is None:
        return "–"
    text = f"{value:+.{digits}f}"
    return f"{0.0:.{digits}f}" if float(text) == 0 else text.replace("-", "\u2212")


def _number(value: Optional[float], digits: int = 1) -> str:
    return "–" if value is None else f"{value:,.{digits}f}"


def _day(value) -> str:
    if value is None:
        return "–"
    if isinstance(value, dt.datetime):
        value = value.astimezone(dt.timezone.utc).date()
    return value.isoformat()


def _ordinal(value: Optional[float]) -> str:
    if value is None:
        return "–"
    n = int(round(value))
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


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
    env.filters["signed"] = _signed
    env.filters["number"] = _number
    env.filters["day"] = _day
    env.filters["ordinal"] = _ordinal
    env.globals["emotion_labels"] = EMOTION_LABELS
    return env


def template(env: jinja2.Environment, name: str) -> jinja2.Template:
    """Return one template of ``env``.

    Raises:
        ReportError: the template is missing.
    """
    try:
        return env.get_template(name)
    except jinja2.TemplateNotFound as exc:
        raise ReportError(f"The report template {name!r} is missing from {env.loader.searchpath}") from exc


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


_INLINE_SVG = re.compile(r'<svg\b[^>]*?aria-label="([^"]*)"[^>]*>.*?</svg>', re.S)


def svg_as_images(html_text: str) -> str:
    """Replace each of our inline ``<svg>`` charts by an ``<img class="svg-chart">`` holding the same SVG as a
    ``data:`` URI. WeasyPrint draws it with the same vector code, without running the CSS cascade over every
    SVG node: about 0.1 s less per report. The HTML files keep the inline SVG (selectable, accessible)."""
    def image(match: re.Match) -> str:
        data = base64.b64encode(match.group(0).encode("utf-8")).decode("ascii")
        return f'<img class="svg-chart" alt="{match.group(1)}" src="data:image/svg+xml;base64,{data}">'

    return _INLINE_SVG.sub(image, html_text)


def write_pdf(html_text: str, pdf_path: PathLike, *, base_url: Optional[PathLike] = None,
              font_config=None) -> Path:
    """Render HTML to a PDF file with WeasyPrint, fetching nothing but ``data:`` URLs.

    The reports reference no file and no URL (styles, charts and example faces are inline), so the fetcher
    refuses every scheme but ``data:``: no network, no local file, whatever a template or a name holds.
    Fonts come from the system (fontconfig) and are embedded in the PDF.

    Args:
        html_text: the document.
        pdf_path: the file to write (atomically).
        base_url: folder relative URLs resolve against (they are refused all the same).
        font_config: a ``weasyprint.text.fonts.FontConfiguration`` to reuse across documents (a worker
            renders many reports with one), or None for a fresh one.

    Raises:
        ReportError: WeasyPrint failed.
    """
    from weasyprint import HTML

    pdf_path = Path(pdf_path)
    base = Path(base_url).resolve().as_uri() + "/" if base_url is not None else None
    try:
        pdf = HTML(string=html_text, base_url=base, url_fetcher=_data_only_fetcher()).write_pdf(
            font_config=font_config, full_fonts=not _can_subset_fonts()
        )
    except Exception as exc:  # WeasyPrint raises many kinds; the caller gets one
        raise ReportError(f"WeasyPrint could not render {str(pdf_path)!r}: {exc}") from exc
    _write_atomic(pdf_path, pdf)
    return pdf_path


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder, replaced in one step.

    Raises:
        ReportError: the file cannot be written (a full disk, no permission), naming the path and the cause.
    """
    try:
        _write_atomic(Path(path), data)
    except OSError as exc:
        raise ReportError(f"Cannot write {path}: {exc.strerror or exc}") from exc


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


