"""The evaluation report: metrics, per-class table, confusion matrix, ROC curves and the reliability diagram,
as HTML and PDF."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from ..assets import asset_dir
from ..reports.render import EMOTION_LABELS, FONT_FAMILIES, figure_to_inline_svg, make_environment, write_pdf

_RC = {"svg.fonttype": "none", "svg.hashsalt": "emotion_batch", "font.family": "sans-serif",
       "font.sans-serif": FONT_FAMILIES, "font.size": 8.5}


@contextlib.contextmanager
def _chart(size: tuple[float, float]) -> Iterator[tuple[Any, Any]]:
    """A matplotlib figure of ``size`` inches with one axes, drawn under the reports' style (``_RC``); turn it
    into inline SVG inside the block so the style applies."""
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    with matplotlib.rc_context(_RC):
        figure = Figure(figsize=size)
        FigureCanvasAgg(figure)
        yield figure, figure.add_subplot()


def confusion_svg(report: dict[str, Any]) -> str:
    """Row-normalised confusion matrix (recall on the diagonal) with counts, as inline SVG."""
    cm = np.asarray(report["confusion_matrix"], dtype=float)
    norm = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    labels = [EMOTION_LABELS.get(n, n) for n in report["labels"]]
    with _chart((5.2, 4.3)) as (figure, ax):
        ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
        for i in range(cm.shape[0]):
            for j in range(cm.shape[1]):
                ax.text(j, i, f"{norm[i, j]:.2f}\n({int(cm[i, j])})", ha="center", va="center", fontsize=6.5,
                        color="white" if norm[i, j] > 0.55 else "#1f2933")
        ax.set_xticks(range(len(labels)), labels, rotation=35, ha="right")
        ax.set_yticks(range(len(labels)), labels)
        ax.set_xlabel("Predicted")
        ax.set_ylabel("True")
        figure.tight_layout(pad=0.4)
        return figure_to_inline_svg(figure, "Confusion matrix, rows normalised")


def roc_svg(report: dict[str, Any]) -> str:
    """One-vs-rest ROC curves of every class plus micro and macro averages, as inline SVG."""
    with _chart((5.2, 4.0)) as (figure, ax):
        for name in report["labels"]:
            fpr, tpr = report["roc"][name]
            ax.plot(fpr, tpr, linewidth=1, label=f"{EMOTION_LABELS.get(name, name)} ({report['per_class'][name]['auc']:.3f})")
        for key, style in (("micro", ":"), ("macro", "--")):
            fpr, tpr = report["roc"][key]
            ax.plot(fpr, tpr, style, color="black", linewidth=1.4,
                    label=f"{key} average ({report[f'{key}_auc']:.3f})")
        ax.plot([0, 1], [0, 1], color="#9aa5b1", linewidth=0.6)
        ax.set_xlabel("False positive rate")
        ax.set_ylabel("True positive rate")
        ax.legend(fontsize=6.5, loc="lower right", frameon=False)
        figure.tight_layout(pad=0.4)
        return figure_to_inline_svg(figure, "ROC curves, one class against the rest")


def reliability_svg(report: dict[str, Any]) -> str:
    """Reliability diagram: accuracy against mean confidence per confidence bin (bars), the diagonal a
    calibrated model follows, and the share of faces in each bin, as inline SVG."""
    cal = report["calibration"]
    edges = np.asarray(cal["edges"])
    filled = [i for i, n in enumerate(cal["count"]) if n]
    width = float(edges[1] - edges[0])
    with _chart((5.2, 4.0)) as (figure, ax):
        ax.bar([edges[i] for i in filled], [cal["accuracy"][i] for i in filled], width=width, align="edge",
               color="#3e7cb1", edgecolor="white", linewidth=0.5, label="accuracy in the bin")
        ax.plot([cal["confidence"][i] for i in filled], [cal["confidence"][i] for i in filled], "o", color="#e4572e",
                markersize=3, label="mean confidence in the bin")
        ax.plot([0, 1], [0, 1], color="#9aa5b1", linewidth=0.8, label="calibrated")
        share = np.asarray(cal["count"], dtype=float) / max(1, sum(cal["count"]))
        ax.bar(edges[:-1], share, width=width, align="edge", bottom=0, color="#9aa5b1", alpha=0.35,
               label="share of faces")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_xlabel("Probability of the most probable class")
        ax.set_ylabel("Accuracy")
        ax.set_title(f"ECE {cal['ece']:.3f} ({cal['bins']} bins)", fontsize=8.5)
        ax.legend(fontsize=6.5, loc="upper left", frameon=False)
        figure.tight_layout(pad=0.4)
        return figure_to_inline_svg(figure, "Reliability diagram")


def write_evaluation_report(report: dict[str, Any], out_dir: str | Path, *, model_id: str, data: str,
                            templates_dir: str | Path | None = None) -> list[Path]:
    """Write ``evaluation.json``, ``evaluation.html`` and ``evaluation.pdf`` into ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    plain = {k: v for k, v in report.items() if k != "roc"}
    json_path = out / "evaluation.json"
    json_path.write_text(json.dumps({"model_id": model_id, "data": data, **plain}, indent=2) + "\n")
    env = make_environment(templates_dir or asset_dir("templates"))
    html = env.get_template("evaluation.html").render(
        report=plain, model_id=model_id, data=data, labels={n: EMOTION_LABELS.get(n, n) for n in report["labels"]},
        generated_at=dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        confusion_svg=confusion_svg(report), roc_svg=roc_svg(report), reliability_svg=reliability_svg(report),
    )
    html_path = out / "evaluation.html"
    html_path.write_text(html, encoding="utf-8")
    pdf_path = write_pdf(html, out / "evaluation.pdf", base_url=out)
    return [json_path, html_path, pdf_path]
