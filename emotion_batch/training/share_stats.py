"""Measure what a bundled model does to faces of each true class, for the corrected shares of the reports.

``emotion-batch model-stats NAME --data FER2013`` (and ``bundle``) classify FER2013 PublicTest, the split
models are selected on (never PrivateTest, which stays the untouched test split), through the very
classifier the job builds (``classifier.load_classifier``: the same file, backend and, where the manifest
gives one, temperature), and write ``models/<NAME>.shares.json``: per model file (the Keras file and its
LiteRT file, each with its own sha256, since the job's faces carry the id of the file that classified
them) the validation class counts (against the labels the model answers in: FER2013's original ones, or the FER+
majority for a model bundled with ``--labels ferplus-majority``), the confusion matrix of top-1 decisions, and the mean and covariance
of the probability vectors of each true class (``aggregate.quantify.ConfusionStats``).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Optional

from ..aggregate.correction import SHARES_FORMAT, SHARES_SUFFIX
from ..aggregate.quantify import ConfusionStats
from ..labels import EMOTIONS
from .data import FER_SPLITS, load_fer2013

__all__ = ["classifier_statistics", "model_statistics", "save_statistics", "write_model_statistics"]

log = logging.getLogger(__name__)

#: The split the statistics are measured on.
STATS_SPLIT = "valid"


def classifier_statistics(classifier, faces, *, file_name: str, temperature: Optional[float] = None) -> dict[str, Any]:
    """The statistics of one job classifier (either backend) on labelled faces, as a ``files`` entry.

    ``temperature`` is the one the manifest records for the file (``correction.manifest_temperature``): the
    reports use the statistics only while the manifest still says the same; by default the classifier's
    own ``temperature`` attribute, if it has one."""
    probabilities = classifier.predict(faces.x)
    stats = ConfusionStats.from_predictions(faces.y, probabilities)
    name, _, _ = classifier.model_id.partition("@")
    accuracy = float((probabilities.argmax(axis=1) == faces.y).mean())
    return {
        "backend": classifier.backend,
        "file": file_name,
        "model_id": classifier.model_id,
        "temperature": temperature if temperature is not None else getattr(classifier, "temperature", None),
        "accuracy": round(accuracy, 4),
        **stats.to_dict(),
    }


def write_model_statistics(path: Path, *, name: str, entries: Sequence[dict[str, Any]], data: str,
                           command: str) -> Path:
    """Write ``<name>.shares.json`` with one entry per model file."""
    document = {
        "format": SHARES_FORMAT,
        "model": name,
        "classes": list(EMOTIONS),
        "data": data,
        "computed_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "command": command,
        "files": list(entries),
    }
    path.write_text(compact_json(document) + "\n")
    return path


def save_statistics(folder: Path, *, name: str, entries: Sequence[dict[str, Any]], faces: int, command: str,
                    labels: str = "original") -> Path:
    """Write ``<folder>/<name>.shares.json``: ``entries`` measured on ``faces`` faces of the ``STATS_SPLIT``
    against ``labels`` (``original`` or ``ferplus-majority``, the labels the model answers in)."""
    return write_model_statistics(folder / f"{name}{SHARES_SUFFIX}", name=name, entries=entries,
                                  data=f"FER2013 {FER_SPLITS[STATS_SPLIT]} ({faces} faces, {labels} labels)",
                                  command=command)


def compact_json(document: Any) -> str:
    """JSON with one line per innermost list of numbers (a matrix row), indented otherwise."""
    text = json.dumps(document, indent=1)
    return re.sub(r"\[\s*([-+0-9.eE,\s]+?)\s*\]", lambda m: "[" + ", ".join(m.group(1).split()).replace(",,", ",") + "]",
                  text)


def model_statistics(name: Optional[str], data: str | Path, *, backends: Sequence[str] = ("keras", "litert"),
                     command: str = "") -> Path:
    """Measure the statistics of a bundled model on FER2013 PublicTest and write ``<name>.shares.json``
    beside the model file, for each of ``backends`` the model has a file for.

    Args:
        name: a bundled model's name; None for the manifest's default.
        data: the FER2013 folder (``fer2013.csv.gz``).
        backends: ``keras`` and/or ``litert``; a model without a LiteRT file gets the Keras entry only.
        command: the command line, recorded in the file.

    Returns:
        The written path.
    """
    from ..aggregate.correction import manifest_temperature
    from ..classifier import bundled_models, locate_model, model_backends, open_classifier

    manifest = bundled_models()
    name = name or manifest["default"]
    labels = manifest["models"].get(name, {}).get("labels", "original")  # the labels the model answers in
    has = model_backends(name)
    entries, faces, folder = [], {}, None
    for backend in backends:
        if backend not in has:  # a model without a LiteRT file
            continue
        ref = locate_model(name, backend=backend)
        classifier = open_classifier(ref, batch_size=512)
        key = (classifier.size, classifier.channels)
        if key not in faces:
            faces[key] = load_fer2013(data, split=STATS_SPLIT, size=classifier.size, channels=classifier.channels,
                                      labels=labels)
        entries.append(classifier_statistics(classifier, faces[key], file_name=ref.path.name,
                                             temperature=manifest_temperature(classifier.model_id, manifest)))
        folder = ref.path.parent
        log.info("%s (%s): PublicTest accuracy %.4f", classifier.model_id, backend, entries[-1]["accuracy"])
    if folder is None:
        from ..exceptions import ConfigError

        raise ConfigError(f"backends must name keras and/or litert. Received: backends={list(backends)!r}")
    return save_statistics(folder, name=name, entries=entries, faces=len(next(iter(faces.values()))),
                           command=command or f"emotion-batch model-stats {name} --data {data}", labels=labels)
