"""Evaluate a model on a labelled face set, and bundle a finished run into ``models/``."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np

from .data import FaceSet, load_fer2013
from .metrics import classification_report

log = logging.getLogger(__name__)


def predict(model, x: np.ndarray, *, batch_size: int = 512, flip_tta: bool = False) -> np.ndarray:
    """Class probabilities; ``flip_tta`` averages with the horizontally mirrored faces."""
    probs = model.predict(x.astype(np.float32), batch_size=batch_size, verbose=0)
    if flip_tta:
        probs = (probs + model.predict(x[:, :, ::-1].astype(np.float32), batch_size=batch_size, verbose=0)) / 2.0
    return probs


def evaluate(model, faces: FaceSet, *, flip_tta: bool = False) -> dict[str, Any]:
    """Every metric of ``metrics.classification_report`` for ``faces`` (hard labels)."""
    return classification_report(faces.y, predict(model, faces.x, flip_tta=flip_tta))


def load_labelled(data: str | Path, *, split: str, size: int, channels: int, labels: str = "original") -> FaceSet:
    """Faces of a FER2013-style CSV folder/file or of a ``<split>/<emotion>/`` folder tree."""
    from .data import load_folder_tree

    path = Path(data)
    if path.is_file() and path.suffix in (".csv", ".gz"):
        path = path.parent
    if (path / "fer2013.csv.gz").is_file() or (path / "fer2013.csv").is_file():
        return load_fer2013(path, split=split, size=size, channels=channels, labels=labels)
    return load_folder_tree(path, split=split, size=size, channels=channels)


def jsonable(report: dict[str, Any]) -> dict[str, Any]:
    """The report without the ROC arrays (for JSON files and manifests)."""
    return {k: v for k, v in report.items() if k != "roc"}


def bundle_run(run_dir: str | Path, *, data: str | Path, models_dir: str | Path, name: str, command: str,
               make_default: bool = True) -> dict[str, Any]:
    """Evaluate a run's best weights on PublicTest and PrivateTest and put the model into ``models_dir``.

    Returns:
        The PrivateTest metrics (without ROC arrays).
    """
    from .bundle import save_for_inference, update_manifest, write_card
    from .fit import load_best

    run = Path(run_dir)
    models = Path(models_dir)
    models.mkdir(parents=True, exist_ok=True)
    model = load_best(run)
    size, channels = int(model.input_shape[1]), int(model.input_shape[3])
    valid = load_fer2013(data, split="valid", size=size, channels=channels)
    test = load_fer2013(data, split="test", size=size, channels=channels)
    valid_metrics = evaluate(model, valid)
    test_metrics = evaluate(model, test)
    file_name = f"{name}.keras"
    sha = save_for_inference(model, models / file_name)
    card = f"{name}.md"
    write_card(models / card, name=name, model=model, run_dir=run, metrics=test_metrics, valid_metrics=valid_metrics,
               file_name=file_name, sha256=sha, command=command,
               extra={"PrivateTest accuracy with flip TTA (not used by the job)":
                      f"{evaluate(model, test, flip_tta=True)['accuracy']:.4f}"})
    (models / f"{name}.metrics.json").write_text(json.dumps(jsonable(test_metrics), indent=2) + "\n")
    update_manifest(models, name=name, file_name=file_name, sha256=sha, size=size, channels=channels, card=card,
                    metrics=test_metrics, make_default=make_default)
    log.info("bundled %s: PrivateTest accuracy %.4f", name, test_metrics["accuracy"])
    return jsonable(test_metrics)
