"""The report charts: matplotlib figures turned into inline SVG (vector, text kept as text, no external file).

Why matplotlib and not Vega-Lite: it is already a dependency, renders offline in-process in ~50-100 ms a
chart, gives SVG that WeasyPrint draws without a browser or a JavaScript engine, and its output is
byte-stable for fixed data (``svg.hashsalt``), which keeps the rendered HTML deterministic.

matplotlib is imported inside the functions, so importing this module (as the CLI does for ``--help``)
stays cheap. Chart text is never user input: ad names reach a chart only through ``short_label``, and
matplotlib escapes text it writes into SVG.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import html
import io
import re
from collections.abc import Mapping, Sequence
from typing import Optional

from ..labels import EMOTIONS

__all__ = [
    "EMOTION_COLOURS",
    "EMOTION_LABELS",
    "FONT_FAMILIES",
    "confidence_chart_svg",
    "emotion_chart_svg",
    "figure_to_inline_svg",
    "mix_chart_svg",
    "short_label",
    "trend_chart_svg",
    "valence_chart_svg",
]

#: Display names of the classes, in ``EMOTIONS`` order.
EMOTION_LABELS = {e: e.capitalize() for e in EMOTIONS}
#: One colour per class (Okabe-Ito, readable with the common colour-vision deficiencies).
EMOTION_COLOURS = {
    "angry": "#D55E00",
    "disgust": "#009E73",
    "fear": "#CC79A7",
    "happy": "#E69F00",
    "neutral": "#BBBBBB",
    "sad": "#0072B2",
    "surprise": "#56B4E9",
}
#: The font stack of the templates and the charts; DejaVu Sans ships with matplotlib and most Linux systems.
FONT_FAMILIES = ["DejaVu Sans", "Liberation Sans", "Arial", "Helvetica"]

ACCENT = "#1f4e79"
MUTED = "#9fb3c8"
INK = "#1f2933"
WHISKER = "#243b53"
REFERENCE = "#c65d00"
GRID = "#e4e7eb"
#: Most ads one campaign chart shows; a larger campaign gets one chart per slice of this many ads.
ADS_PER_CHART = 30

_SVG_STYLE = re.compile(r'\sstyle="([^"]*)"')


def _rc() -> dict:
    return {
        "svg.fonttype": "none",
        "svg.hashsalt": "emotion_batch",  # stable ids, so the same data gives the same markup
        "font.family": "sans-serif",
        "font.sans-serif": FONT_FAMILIES,
        "font.size": 8.5,
        "text.color": INK,
        "axes.edgecolor": "#7b8794",
        "axes.labelcolor": INK,
        "xtick.color": "#52606d",
        "ytick.color": INK,
        "legend.frameon": False,
    }


def _figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height))
    FigureCanvasAgg(figure)
    return figure


def _tidy(axes, *, grid_axis: str = "x") -> None:
    axes.grid(axis=grid_axis, color=GRID, linewidth=0.6)
    axes.set_axisbelow(True)
    for side in ("top", "right"):
        axes.spines[side].set_visible(False)


def _style_to_attributes(match: re.Match) -> str:
    # Inline SVG lives in the HTML tree, whose CSS does not know SVG properties (WeasyPrint warns about every
    # one): move matplotlib's style declarations into presentation attributes, which both renderers read.
    attributes = []
    for declaration in match.group(1).split(";"):
        prop, _, value = declaration.partition(":")
        if prop.strip() and value.strip():
            attributes.append(f' {prop.strip()}="{html.escape(value.strip(), quote=True)}"')
    return "".join(attributes)


_SVG_ID = re.compile(r'(\sid="|#)([A-Za-z_][\w.-]*)(?=[")])')


def _unique_ids(svg: str) -> str:
    # matplotlib numbers its elements per figure (text_1, patch_2...): several charts in one page would
    # define the same ids. Prefix them with a hash of the chart, so each chart's ids are its own and the
    # same data still gives the same markup.
    ids = set(re.findall(r'\sid="([^"]+)"', svg))
    prefix = "c" + hashlib.sha256(svg.encode("utf-8")).hexdigest()[:8] + "-"

    def rename(match: re.Match) -> str:
        head, name = match.groups()
        return f"{head}{prefix}{name}" if name in ids else match.group(0)

    return _SVG_ID.sub(rename, svg)


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
    svg = _unique_ids(svg)
    # What matplotlib's removed stylesheet said, as inherited attributes; plus an accessible name.
    return svg.replace(
        "<svg ",
        f'<svg role="img" aria-label="{html.escape(aria_label, quote=True)}" '
        'stroke-linejoin="round" stroke-linecap="butt" ',
        1,
    )


def short_label(name: str, limit: int = 28) -> str:
    """A name cut to ``limit`` characters with an ellipsis, for chart axes (tables show the full name)."""
    return name if len(name) <= limit else name[: limit - 1].rstrip() + "…"


def emotion_chart_svg(
    shares: Mapping[str, float],
    *,
    highlight: Optional[str] = None,
    intervals: Optional[Mapping[str, tuple[float, float]]] = None,
    reference: Optional[Mapping[str, float]] = None,
    reference_label: str = "Campaign average",
) -> str:
    """Draw the share of faces per apparent expression as horizontal bars and return inline SVG markup.

    Args:
        shares: share in [0, 1] per emotion name; every name in ``EMOTIONS`` is drawn, in that order.
        highlight: the emotion whose bar is drawn in the accent colour (the dominant one).
        intervals: ``(low, high)`` per emotion, drawn as whiskers (the 95 % intervals).
        reference: a share per emotion drawn as a tick on each bar (the campaign average).
        reference_label: the legend text of ``reference``.

    Returns:
        An ``<svg>`` element without XML prolog, metadata or stylesheet, text kept as text
        (``svg.fonttype = "none"``), ready to be placed inside HTML.
    """
    import matplotlib
    from matplotlib.ticker import PercentFormatter

    values = [100.0 * float(shares.get(e) or 0.0) for e in EMOTIONS]
    labels = [EMOTION_LABELS[e] for e in EMOTIONS]
    colours = [ACCENT if e == highlight else MUTED for e in EMOTIONS]
    with matplotlib.rc_context(_rc()):
        figure = _figure(6.3, 2.45 if reference is not None else 2.25)
        axes = figure.add_subplot()
        axes.barh(labels, values, color=colours, height=0.62)
        label_at = list(values)
        if intervals is not None:
            low = [100.0 * intervals[e][0] for e in EMOTIONS]
            high = [100.0 * intervals[e][1] for e in EMOTIONS]
            axes.errorbar(values, labels, xerr=[[v - lo for v, lo in zip(values, low)],
                                                [hi - v for v, hi in zip(values, high)]],
                          fmt="none", ecolor=WHISKER, elinewidth=0.8, capsize=2.5, capthick=0.8,
                          label="95 % interval (Wilson)")
            label_at = high
        for y, (x, value) in enumerate(zip(label_at, values)):
            axes.text(x + 1.2, y, f"{value:.1f} %", va="center", fontsize=8)
        if reference is not None:
            ref = [100.0 * float(reference.get(e) or 0.0) for e in EMOTIONS]
            axes.scatter(ref, labels, marker="|", s=150, linewidths=1.8, color=REFERENCE, zorder=3,
                         label=reference_label)
        if intervals is not None or reference is not None:
            axes.legend(loc="lower right", fontsize=7.5, handlelength=1.6, borderaxespad=0.2)
        axes.invert_yaxis()
        axes.set_xlim(0, 100)
        axes.xaxis.set_major_formatter(PercentFormatter(decimals=0))
        axes.set_xlabel("Share of faces")
        _tidy(axes)
        axes.tick_params(axis="y", length=0)
        figure.tight_layout(pad=0.4)
        return figure_to_inline_svg(figure, "Share of faces per apparent expression")


def confidence_chart_svg(bins: Sequence[tuple[float, float, int]]) -> str:
    """A histogram of the classifier's confidence (the top class's probability) over an ad's faces."""
    import matplotlib

    with matplotlib.rc_context(_rc()):
        figure = _figure(3.4, 1.9)
        axes = figure.add_subplot()
        lows = [low for low, _, _ in bins]
        widths = [high - low for low, high, _ in bins]
        counts = [n for _, _, n in bins]
        colours = [MUTED if low < 0.5 else ACCENT for low in lows]
        axes.bar(lows, counts, width=widths, align="edge", color=colours, edgecolor="white", linewidth=0.6)
        axes.set_xlim(0.1, 1.0)
        axes.set_xticks([0.1, 0.3, 0.5, 0.7, 0.9])
        axes.set_xticklabels(["10", "30", "50", "70", "90"])
        axes.set_xlabel("Probability of the top expression (%)")
        axes.set_ylabel("Faces")
        axes.yaxis.get_major_locator().set_params(integer=True)
        _tidy(axes, grid_axis="y")
        figure.tight_layout(pad=0.4)
        return figure_to_inline_svg(figure, "Faces per probability of their top expression")


def trend_chart_svg(days: Sequence[dt.date], faces: Sequence[int], valences: Sequence[Optional[float]]) -> str:
    """Valence per day (points, none for days below the minimum group size) over faces per day (bars).

    The x axis counts days from the first one (plain numbers with date labels: much faster than matplotlib's
    date locators, which matters when a thousand reports are rendered).
    """
    import matplotlib

    first = min(days)
    xs = [(d - first).days for d in days]
    span = max(xs) if xs else 0
    step = max(1, (span + 8) // 8)
    ticks = list(range(0, span + 1, step))
    labels = [(first + dt.timedelta(days=t)).strftime("%d %b") for t in ticks]
    with matplotlib.rc_context(_rc()):
        figure = _figure(6.3, 2.3)
        top, bottom = figure.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [2.2, 1]})
        shown = [(x, v) for x, v in zip(xs, valences) if v is not None]
        top.axhline(0, color="#7b8794", linewidth=0.6)
        if shown:
            top.plot([x for x, _ in shown], [v for _, v in shown], color=ACCENT, marker="o", markersize=3.5,
                     linewidth=1.2)
        top.set_ylim(-1.05, 1.05)
        top.set_yticks([-1, -0.5, 0, 0.5, 1])
        top.set_ylabel("Valence")
        _tidy(top, grid_axis="y")
        bottom.bar(xs, faces, color=MUTED, width=0.8)
        bottom.set_ylabel("Faces")
        bottom.yaxis.get_major_locator().set_params(integer=True, nbins=3)
        _tidy(bottom, grid_axis="y")
        bottom.set_xticks(ticks)
        bottom.set_xticklabels(labels)
        bottom.set_xlim(-0.6, span + 0.6)
        figure.align_ylabels([top, bottom])
        figure.tight_layout(pad=0.4, h_pad=0.3)
        return figure_to_inline_svg(figure, "Valence and faces per day")


def valence_chart_svg(labels: Sequence[str], values: Sequence[float],
                      intervals: Sequence[tuple[float, float]], *, reference: Optional[float] = None) -> str:
    """Valence per ad as points with 95 % whiskers, one row per ad in the given order (best first).

    Args:
        labels: ad names (shortened with ``short_label``).
        values: valence per ad.
        intervals: ``(low, high)`` per ad.
        reference: the campaign's valence, drawn as a vertical line.
    """
    import matplotlib

    n = len(labels)
    with matplotlib.rc_context(_rc()):
        figure = _figure(6.3, 0.75 + 0.24 * max(n, 2))
        axes = figure.add_subplot()
        rows = list(range(n))
        axes.axvline(0, color="#7b8794", linewidth=0.6)
        if reference is not None:
            axes.axvline(reference, color=REFERENCE, linewidth=1.0, linestyle="--", label="Campaign valence")
        axes.errorbar(values, rows, xerr=[[v - lo for v, (lo, _) in zip(values, intervals)],
                                          [hi - v for v, (_, hi) in zip(values, intervals)]],
                      fmt="o", color=ACCENT, markersize=4, ecolor=WHISKER, elinewidth=0.8, capsize=2,
                      label="Ad valence, 95 % interval")
        axes.set_yticks(rows)
        axes.set_yticklabels([short_label(s) for s in labels])
        axes.set_ylim(n - 0.5, -0.5)
        axes.set_xlim(-1.05, 1.05)
        axes.set_xlabel("Valence (share positive − share negative)")
        axes.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncols=2, fontsize=7.5)
        _tidy(axes)
        axes.tick_params(axis="y", length=0)
        figure.tight_layout(pad=0.4)
        return figure_to_inline_svg(figure, "Valence per ad with 95 % intervals")


def mix_chart_svg(labels: Sequence[str], shares: Sequence[Mapping[str, float]]) -> str:
    """The expression mix of each ad as one 100 % stacked bar per ad (small multiples of one scale)."""
    import matplotlib
    from matplotlib.ticker import PercentFormatter

    n = len(labels)
    with matplotlib.rc_context(_rc()):
        figure = _figure(6.3, 0.95 + 0.24 * max(n, 2))
        axes = figure.add_subplot()
        rows = list(range(n))
        left = [0.0] * n
        for e in EMOTIONS:
            widths = [100.0 * float(s[e]) for s in shares]
            axes.barh(rows, widths, left=left, height=0.7, color=EMOTION_COLOURS[e], label=EMOTION_LABELS[e],
                      edgecolor="white", linewidth=0.4)
            left = [a + b for a, b in zip(left, widths)]
        axes.set_yticks(rows)
        axes.set_yticklabels([short_label(s) for s in labels])
        axes.set_ylim(n - 0.5, -0.5)
        axes.set_xlim(0, 100)
        axes.xaxis.set_major_formatter(PercentFormatter(decimals=0))
        axes.set_xlabel("Share of faces")
        axes.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncols=7, fontsize=7, handlelength=1.0,
                    columnspacing=0.9)
        for side in ("top", "right"):
            axes.spines[side].set_visible(False)
        axes.tick_params(axis="y", length=0)
        figure.tight_layout(pad=0.4)
        return figure_to_inline_svg(figure, "Apparent expression mix per ad")


def trace_chart_svg(seconds: Sequence[Mapping]) -> str:
    """An ad's second-by-second viewer trace (``video.trace.second_trace`` rows): valence with its 95 % band,
    the share of each expression, and viewers per second. Seconds below the minimum group size
    (``suppressed``) are greyed out and carry no line: too few viewers to state anything.
    """
    import matplotlib

    xs = [int(s["second"]) for s in seconds]
    shown = [s for s in seconds if not s["suppressed"]]
    span = max(xs) if xs else 0
    with matplotlib.rc_context(_rc()):
        figure = _figure(6.3, 3.6)
        top, middle, bottom = figure.subplots(3, 1, sharex=True, gridspec_kw={"height_ratios": [1.6, 1.6, 0.9]})
        for axes in (top, middle):
            for s in seconds:
                if s["suppressed"]:
                    axes.axvspan(s["second"] - 0.5, s["second"] + 0.5, color=GRID, linewidth=0)
        top.axhline(0, color="#7b8794", linewidth=0.6)
        if shown:
            sx = [s["second"] for s in shown]
            top.fill_between(sx, [s["valence_low"] for s in shown], [s["valence_high"] for s in shown],
                             color=MUTED, alpha=0.55, linewidth=0, label="95 % band across viewers")
            top.plot(sx, [s["valence"] for s in shown], color=ACCENT, marker="o", markersize=2.5, linewidth=1.2,
                     label="Valence")
            for e in EMOTIONS:
                middle.plot(sx, [s[f"share_{e}"] for s in shown], color=EMOTION_COLOURS[e], linewidth=1.1,
                            label=EMOTION_LABELS[e])
            middle.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncols=7, fontsize=6.5, handlelength=1.2,
                          columnspacing=0.8)
        top.set_ylim(-1.05, 1.05)
        top.set_yticks([-1, 0, 1])
        top.set_ylabel("Valence")
        _tidy(top, grid_axis="y")
        middle.set_ylim(0, 1.02)
        middle.set_yticks([0, 0.5, 1])
        middle.set_yticklabels(["0 %", "50 %", "100 %"])
        middle.set_ylabel("Share")
        _tidy(middle, grid_axis="y")
        bottom.bar(xs, [s["viewers"] for s in seconds], width=0.8,
                   color=[GRID if s["suppressed"] else MUTED for s in seconds])
        bottom.set_ylabel("Viewers")
        bottom.yaxis.get_major_locator().set_params(integer=True, nbins=3)
        _tidy(bottom, grid_axis="y")
        bottom.set_xlabel("Second of the ad")
        bottom.set_xlim(-0.6, span + 0.6)
        figure.align_ylabels([top, middle, bottom])
        figure.tight_layout(pad=0.4, h_pad=0.3)
        return figure_to_inline_svg(figure, "Viewers' valence and expression shares per second of the ad")
