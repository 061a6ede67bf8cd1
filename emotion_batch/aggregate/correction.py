"""Corrected shares per ad and per campaign: each model's validation statistics, read from
``models/<name>.shares.json``, applied to the probabilities stored on the faces (``quantify.py``).

The statistics of a model file are used only for faces that file classified (the ``model_id`` on the face
names the file by its sha256; a calibrated model has its temperature built into the file, so the hash
covers it): a retrained, re-bundled or recalibrated model is another file and needs
``emotion-batch model-stats NAME`` again (``bundle`` does it), and until then its ads fall back to the raw
shares, saying why.
"""

from __future__ import annotations

import json
import logging
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import numpy as np
import polars as pl

from ..classifier import manifest_entry
from ..exceptions import ReportError
from ..labels import EMOTIONS, VALENCE_WEIGHTS
from ..store.models import PROB_COLUMNS
from .frames import AD_KEY
from .quantify import BOOTSTRAP_DRAWS, ConfusionStats, estimate_shares

__all__ = [
    "CORRECTION_METHOD",
    "CORRECTION_MIN_FACES",
    "CORRECTION_METHOD_NAMES",
    "Correction",
    "SHARES_FORMAT",
    "SHARES_SUFFIX",
    "corrections",
    "share_estimate_rows",
    "load_share_statistics",
    "manifest_temperature",
    "statistics_for",
]

log = logging.getLogger(__name__)

#: The version of the ``<model>.shares.json`` layout.
SHARES_FORMAT = 1
#: The statistics of a bundled model live beside it as ``<name>.shares.json``.
SHARES_SUFFIX = ".shares.json"
#: The correction the reports apply (chosen by ``benchmarks/quantification.py``).
CORRECTION_METHOD = "pacc"
#: Below this many faces the reports show the raw shares: the benchmark's error of the corrected shares is
#: not lower than the raw shares' there (the correction removes bias but adds noise).
CORRECTION_MIN_FACES = 20
#: How the reports name each method.
CORRECTION_METHOD_NAMES = {
    "pacc": "probabilistic adjusted classify and count",
    "acc": "adjusted classify and count",
    "em": "EM prior adjustment (Saerens, Latinne and Decaestecker 2002)",
}
#: Decimals of the corrected shares and bounds.
DIGITS = 6


def load_share_statistics(manifest: Optional[Mapping] = None,
                          models_dir: Optional[Path] = None) -> dict[str, ConfusionStats]:
    """The validation statistics of every bundled model file, by model id (``<name>@<sha256 prefix>``).

    Files that are missing or malformed, and entries of files the manifest no longer holds (another hash:
    retrained, re-bundled or recalibrated), are left out (logged): their faces get no correction.

    Args:
        manifest: the parsed ``models/manifest.json``; the bundled one when None.
        models_dir: the folder of the ``<name>.shares.json`` files; the bundled models' when None.
    """
    from ..assets import asset_dir
    from ..classifier import bundled_models
    from ..exceptions import EmotionBatchError

    try:
        manifest = bundled_models() if manifest is None else manifest
        folder = asset_dir("models") if models_dir is None else Path(models_dir)
    except EmotionBatchError as exc:
        log.warning("No model statistics: %s", exc)
        return {}
    models = manifest.get("models") if isinstance(manifest, Mapping) else None
    found: dict[str, ConfusionStats] = {}
    for name in models if isinstance(models, Mapping) else ():
        path = folder / f"{name}{SHARES_SUFFIX}"
        if not path.is_file():
            continue
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
            entries = document["files"] if document.get("format") == SHARES_FORMAT else None
            if not isinstance(entries, list):
                raise ReportError(f"expected format {SHARES_FORMAT} with a list of files")
            for entry in entries:
                model_id = str(entry["model_id"])
                current = manifest_entry(model_id, manifest)
                if current is None or not model_id.startswith(f"{name}@"):
                    log.info("%s: statistics of %s, which the manifest no longer holds", path.name, model_id)
                    continue
                found[model_id] = ConfusionStats.from_dict(entry)
        except (OSError, ValueError, KeyError, TypeError, AttributeError, ReportError) as exc:
            log.warning("Model statistics %s cannot be read (%s); no correction for %s", path, exc, name)
    return found


def manifest_temperature(model_id: str, manifest: Optional[Mapping]) -> Optional[float]:
    """The temperature the manifest records for a model file (its own entry's, else its model's), or None.

    Recorded with a file's statistics for the reader; the file's hash already covers a built-in temperature."""
    found = manifest_entry(model_id, manifest)
    if found is None:
        return None
    model, metrics = found
    return metrics.get("temperature", model.get("temperature"))


def statistics_for(model_ids: Iterable[str], statistics: Mapping[str, ConfusionStats]) -> dict[str, ConfusionStats]:
    """The statistics of those ``model_ids`` that have some."""
    return {m: statistics[m] for m in model_ids if m in statistics}


@dataclass(frozen=True)
class Correction:
    """The corrected shares of a group of faces (an ad, a campaign), or why there are none.

    When ``applied`` is false the reports show the raw shares as the headline and ``note`` says why
    (too few faces, or no statistics for a model that classified them); the other fields are then None.

    Attributes:
        applied: whether the corrected shares are the headline.
        method: the method's key (``pacc``...), or ``raw`` when not applied.
        faces: faces in the group.
        note: why the correction is not applied; None when it is.
        shares: the estimated true share per expression (``EMOTIONS`` order).
        intervals: the 95 % bootstrap interval of each share.
        valence: valence from the corrected shares, with its 95 % interval in ``valence_interval``.
        dominant_emotion: the expression with the highest corrected share.
    """

    applied: bool
    method: str
    faces: int
    note: Optional[str] = None
    shares: Optional[dict[str, float]] = None
    intervals: Optional[dict[str, tuple[float, float]]] = None
    valence: Optional[float] = None
    valence_interval: Optional[tuple[float, float]] = None
    dominant_emotion: Optional[str] = None

    @property
    def method_name(self) -> str:
        """The method in words."""
        return CORRECTION_METHOD_NAMES.get(self.method, "none (raw shares)")

    def to_dict(self) -> dict[str, Any]:
        """The fields as JSON-ready values."""
        return {
            "applied": self.applied, "method": self.method, "faces": self.faces, "note": self.note,
            "shares": self.shares,
            "intervals": {e: list(v) for e, v in self.intervals.items()} if self.intervals else None,
            "valence": self.valence,
            "valence_interval": list(self.valence_interval) if self.valence_interval else None,
            "dominant_emotion": self.dominant_emotion,
        }


def _seed(*names: str) -> int:
    """A seed fixed by the group's names, so a report shows the same interval every time it is rendered."""
    return zlib.crc32("\0".join(names).encode("utf-8", "surrogatepass"))


def correct_group(probabilities: np.ndarray, model_ids: np.ndarray, statistics: Mapping[str, ConfusionStats], *,
                  names: tuple[str, ...], min_faces: int = CORRECTION_MIN_FACES, method: str = CORRECTION_METHOD,
                  draws: int = BOOTSTRAP_DRAWS) -> Correction:
    """The ``Correction`` of one group of faces: their probabilities ``(n, 7)`` and the model id of each."""
    n = int(probabilities.shape[0])
    if n < min_faces:
        return Correction(applied=False, method="raw", faces=n,
                          note=f"fewer than {min_faces} faces: with so few faces the correction adds more "
                               "uncertainty than it removes")
    models = sorted(set(model_ids.tolist()))
    missing = [m for m in models if m not in statistics]
    if missing:
        return Correction(applied=False, method="raw", faces=n,
                          note=f"no validation statistics for the model {', '.join(missing)}")
    parts = [(probabilities[model_ids == m], statistics[m]) for m in models]
    estimate = estimate_shares(parts, method=method, draws=draws, seed=_seed(*names))
    shares, intervals = estimate.as_dicts()
    value, low, high = estimate.interval_of(VALENCE_WEIGHTS)
    dominant = EMOTIONS[int(np.argmax(estimate.shares))]
    # rounded: the last bits of a bootstrap differ between BLAS builds; reports and goldens should not
    return Correction(applied=True, method=method, faces=n, shares={e: _r(v) for e, v in shares.items()},
                      intervals={e: (_r(a), _r(b)) for e, (a, b) in intervals.items()}, valence=_r(value),
                      valence_interval=(_r(max(low, -1.0)), _r(min(high, 1.0))), dominant_emotion=dominant)


def _r(value: float) -> float:
    return round(float(value), DIGITS)


def corrections(faces_df: pl.DataFrame, statistics: Mapping[str, ConfusionStats], *,
                min_faces: int = CORRECTION_MIN_FACES, method: str = CORRECTION_METHOD,
                draws: int = BOOTSTRAP_DRAWS) -> tuple[dict[tuple[str, str], Correction], dict[str, Correction]]:
    """The ``Correction`` of every ad and of every campaign (all its faces pooled) of ``faces_df``.

    Args:
        faces_df: rows of ``face_results`` (``campaign``, ``ad``, ``model_id`` and the probabilities).
        statistics: validation statistics by model id (``load_share_statistics``).
        min_faces: below this many faces a group keeps its raw shares.
        method: ``pacc``, ``acc`` or ``em``.
        draws: bootstrap draws per interval.

    Returns:
        ``({(campaign, ad): Correction}, {campaign: Correction})`` for the groups with at least one face.
    """
    if faces_df.is_empty():
        return {}, {}
    frame = faces_df.select(*[pl.col(k).cast(pl.String) for k in AD_KEY], pl.col("model_id").cast(pl.String),
                            *[pl.col(c).cast(pl.Float64) for c in PROB_COLUMNS]).sort(AD_KEY)

    def correct(part: pl.DataFrame, names: tuple[str, ...]) -> Correction:
        return correct_group(part.select(PROB_COLUMNS).to_numpy(), part["model_id"].to_numpy(), statistics,
                             names=names, min_faces=min_faces, method=method, draws=draws)

    ads = frame.partition_by(AD_KEY, as_dict=True, maintain_order=True)
    campaigns = frame.partition_by("campaign", as_dict=True, maintain_order=True)
    return ({key: correct(part, key) for key, part in ads.items()},
            {name: correct(part, (name,)) for (name,), part in campaigns.items()})


def share_estimate_rows(report_set: Any) -> list[dict[str, Any]]:
    """The rows of the table ``ad_share_estimates`` for a ``ReportSet``: for every shown ad and campaign
    (``ad`` None) the raw share of each expression with its Wilson interval (method ``raw``) and, where the
    correction applies, the corrected share with its bootstrap interval (its method). Keys are the
    attributes of ``store.models.ShareEstimateRow``."""
    rows: list[dict[str, Any]] = []
    groups = [(a.campaign, a.ad, a) for a in report_set.ads]
    groups += [(c.campaign, None, c) for c in report_set.campaigns]
    for campaign, ad, group in groups:
        if group.suppressed or group.shares is None:
            continue
        common = {"campaign": campaign, "ad": ad, "model_id": " ".join(group.model_ids), "faces": group.faces,
                  "computed_at": report_set.generated_at}
        estimates = [("raw", group.shares, group.intervals)]
        if group.correction is not None and group.correction.applied:
            estimates.append((group.correction.method, group.correction.shares, group.correction.intervals))
        for method, shares, intervals in estimates:
            for e in EMOTIONS:
                low, high = intervals[e] if intervals else (shares[e], shares[e])
                rows.append({**common, "method": method, "emotion": e, "share": shares[e], "lower": low,
                             "upper": high})
    return rows
