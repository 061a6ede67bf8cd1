"""Compare training runs by validation accuracy, the way the original project ranked its runs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def list_runs(runs_dir: str | Path) -> list[dict[str, Any]]:
    """Every run under ``runs_dir`` with a ``state.json``, best validation accuracy first."""
    rows = []
    for state_path in sorted(Path(runs_dir).glob("*/state.json")):
        run = state_path.parent
        state = json.loads(state_path.read_text())
        config = json.loads((run / "config.json").read_text()) if (run / "config.json").is_file() else {}
        history = json.loads((run / "history.json").read_text()) if (run / "history.json").is_file() else []
        rows.append({
            "run": run.name,
            "best_val_accuracy": float(state.get("best_val_accuracy", -1.0)),
            "best_epoch": int(state.get("best_epoch", 0)),
            "epochs": int(state.get("epoch", 0)),
            "planned_epochs": int(config.get("epochs", 0)),
            "done": bool(state.get("done", False)),
            "model": config.get("model", "?"),
            "optimizer": config.get("optimizer", "?"),
            "batch_size": config.get("batch_size", "?"),
            "balance": config.get("balance", "?"),
            "labels": config.get("labels", "?"),
            "train_seconds": round(sum(h.get("seconds", 0.0) for h in history), 1),
        })
    rows.sort(key=lambda r: r["best_val_accuracy"], reverse=True)
    return rows


def ranking(rows: list[dict[str, Any]], *, top: int) -> list[str]:
    """The lines of a ranking of ``list_runs`` rows: every run, or the best and the worst ``top`` with a line
    of dots between them; unfinished runs are marked."""
    ranked: list[tuple[int, dict[str, Any]] | None] = list(enumerate(rows, 1))
    if len(rows) > 2 * top:
        ranked = ranked[:top] + [None] + ranked[-top:]
    lines = [f"{'rank':>4}  {'val acc':>7}  {'epoch':>9}  run"]
    for item in ranked:
        if item is None:
            lines.append("   ...")
            continue
        rank, r = item
        flag = "" if r["done"] else "  (unfinished)"
        lines.append(f"{rank:>4}  {r['best_val_accuracy']:>7.4f}  {r['best_epoch']:>4}/{r['epochs']:<4}  "
                     f"{r['run']}{flag}")
    return lines
