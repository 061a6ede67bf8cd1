"""The methodology appendix: how reliable each model is per class, read at render time from the model manifest.

The numbers come from ``models/manifest.json`` (written by ``emotion-batch bundle`` from the model's test
evaluation, the same numbers as its model card), looked up by the ``model_id`` stored on the faces
(``<name>@<first 12 hex digits of the file's sha256>``); the id of a model's quantized LiteRT file finds
that file's own metrics (the manifest's ``litert`` entry). A model whose name is not in the manifest, or whose
hash differs from the manifest's (an older or a private model), is reported as of unknown reliability:
nothing is hard-coded here, so retraining and re-bundling the model updates every later report.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Optional

from ..classifier import manifest_entry
from ..labels import EMOTIONS

__all__ = ["ClassReliability", "ModelReliability", "load_manifest", "model_reliability"]

log = logging.getLogger(__name__)

UNKNOWN = "reliability unknown for this model"


@dataclass(frozen=True)
class ClassReliability:
    """Precision, recall and F1 of one class on the model's test split."""

    emotion: str
    precision: float
    recall: float
    f1: float


@dataclass(frozen=True)
class ModelReliability:
    """What the manifest says about one model id; ``classes`` is empty when it is unknown."""

    model_id: str
    known: bool
    accuracy: Optional[float] = None
    macro_f1: Optional[float] = None
    card: Optional[str] = None
    classes: tuple[ClassReliability, ...] = ()
    labels: str = "original"  # what the figures were measured against (the manifest's ``labels``)
    logit_adjust: float = 0.0  # the tau of a logit adjustment built into the file's bias (the manifest's)
    flip_gate: Optional[float] = None  # the threshold of the model's flip gate (the manifest's), if any

    @property
    def measured_against(self) -> str:
        """The labels of the test figures, in words."""
        return ("the FER+ annotators' majority (FER2013 PrivateTest)" if self.labels == "ferplus-majority"
                else "FER2013's original labels (PrivateTest)")

    @property
    def tilt(self) -> str:
        """What a logit adjustment in the file does to its answers, in words ('' without one)."""
        if not self.logit_adjust:
            return ""
        return (f"Its answers lean towards the rarer expressions: each expression's probability is divided by its "
                f"share of the faces it was calibrated on (FER2013 PublicTest) to the power {self.logit_adjust:g} (a "
                "logit adjustment), so doubtful faces go to the rarer expressions more often, and to the common ones "
                "less often, than without it; its test figures here include it.")

    @property
    def second_look(self) -> str:
        """What a flip gate does to the answers, in words ('' without one)."""
        if self.flip_gate is None:
            return ""
        return (f"Faces it was unsure of (top probability below {self.flip_gate:g}) were classified a second time "
                "from their mirror image and the two answers averaged; its test figures here were measured that way.")

    @property
    def note(self) -> str:
        """A one-line reading aid: the least and the most reliable classes, or that reliability is unknown."""
        if not self.known or not self.classes:
            return UNKNOWN
        ranked = sorted(self.classes, key=lambda c: (c.f1, c.recall, EMOTIONS.index(c.emotion)))
        weakest = ", ".join(f"{c.emotion} (F1 {c.f1:.2f})" for c in ranked[:2])
        best = ranked[-1]
        return (f"Least reliable classes: {weakest}; most reliable: {best.emotion} (F1 {best.f1:.2f}). "
                "Read shares of the weak classes with caution.")


def load_manifest() -> Optional[dict]:
    """The bundled models' manifest, or None (logged) when it cannot be read."""
    from ..classifier import bundled_models
    from ..exceptions import EmotionBatchError

    try:
        return bundled_models()
    except (EmotionBatchError, OSError, ValueError) as exc:
        log.warning("The model manifest cannot be read (%s); reliability is shown as unknown", exc)
        return None


def _number(value: Any) -> Optional[float]:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _one(model_id: str, manifest: Optional[Mapping]) -> ModelReliability:
    found = manifest_entry(model_id, manifest)
    if found is None:  # a name the manifest does not hold, or same name and another file
        return ModelReliability(model_id=model_id, known=False)
    model, entry = found  # entry: the metrics of this very file (its Keras file or its LiteRT file)
    card = str(model["card"]) if model.get("card") else None
    per_class = entry.get("per_class") if isinstance(entry.get("per_class"), Mapping) else {}
    classes = []
    for emotion in EMOTIONS:
        values = per_class.get(emotion)
        if not isinstance(values, Mapping):
            continue
        numbers = [_number(values.get(k)) for k in ("precision", "recall", "f1")]
        if None not in numbers:
            classes.append(ClassReliability(emotion, *numbers))
    return ModelReliability(
        model_id=model_id, known=bool(classes), accuracy=_number(entry.get("test_accuracy")),
        macro_f1=_number(entry.get("test_macro_f1")), card=card, classes=tuple(classes),
        labels=str(model.get("labels", "original")), logit_adjust=_number(model.get("logit_adjust")) or 0.0,
        flip_gate=_gate(model),
    )


def _gate(model: Mapping) -> Optional[float]:
    """The threshold of a manifest entry's flip gate (``classifier.FlipGate.from_entry``), if it has a readable
    one (a report shows what it can rather than fail on a damaged manifest)."""
    from ..classifier import FlipGate
    from ..exceptions import ModelError

    try:
        gate = FlipGate.from_entry(model)
    except ModelError:
        return None
    return None if gate is None else gate.below


def model_reliability(model_ids: Iterable[str], manifest: Optional[Mapping]) -> list[ModelReliability]:
    """Look every model id up in ``manifest`` (see ``load_manifest``); one entry per id, in the given order.

    Args:
        model_ids: ids stored on the faces (``name@sha256-prefix``).
        manifest: the parsed ``models/manifest.json``; None makes every model unknown.
    """
    return [_one(model_id, manifest) for model_id in dict.fromkeys(model_ids)]
