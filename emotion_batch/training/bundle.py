"""Put a trained model into ``models/``: weights without optimizer state, sha256 in the manifest, a model card."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import numpy as np

from ..classifier import MANIFEST, sha256_file
from ..labels import EMOTIONS


def save_for_inference(model, path: str | Path) -> str:
    """Save a model without optimizer state (Keras 3 ``.keras``); return its sha256."""
    import keras

    clean = keras.models.clone_model(model)
    clean.set_weights(model.get_weights())
    clean.save(path)
    return sha256_file(path)


def _distillation_row(config: dict[str, Any]) -> str:
    """The card's row naming the teachers a run was distilled from (none for a run without)."""
    if not config.get("teachers"):
        return ""
    return (f"| distilled from | {', '.join(f'`{t}`' for t in config['teachers'])} (weight {config['teacher_weight']}, "
            f"temperature {config['teacher_temperature']}) |\n")


def write_card(path: Path, *, name: str, model, run_dir: Path, metrics: dict[str, Any], valid_metrics: dict[str, Any],
               file_name: str, sha256: str, command: str, extra: dict[str, Any],
               litert: dict[str, Any] | None = None, calibration: dict[str, Any] | None = None,
               labels: str = "original", original_metrics: dict[str, Any] | None = None,
               checkpoint: str = "best") -> None:
    """Write the model card (markdown) from a run's files and its evaluation (and that of its quantized
    LiteRT file, ``litert``: file, sha256, size_mb, metrics; and the temperature, and bias, built into the file
    with the PrivateTest metrics before them, ``calibration``: temperature, bias, before). ``labels`` names the
    labels ``metrics`` were measured against; ``original_metrics``, the same file against FER2013's original
    labels when those were others. ``checkpoint``: the weights bundled, ``best`` or ``last`` (see ``bundle_run``)."""
    config = json.loads((run_dir / "config.json").read_text())
    state = json.loads((run_dir / "state.json").read_text())
    which = {"average": " (its weight average)", "raw": " (its raw weights, which beat their average)"}
    checkpoint_text = (f"best validation epoch {state['best_epoch']}{which.get(state.get('best_weights'), '')}"
                       if checkpoint == "best" else
                       f"bundled: the last epoch's weights{' (their moving average)' if config.get('ema') else ''}, "
                       f"not the run's best validation epoch {state['best_epoch']}")
    history = json.loads((run_dir / "history.json").read_text())
    size_mb = Path(path.parent / file_name).stat().st_size / 1e6
    rows = "\n".join(
        f"| {c} | {m['precision']:.3f} | {m['recall']:.3f} | {m['f1']:.3f} | {m['auc']:.3f} | {m['support']} |"
        for c, m in metrics["per_class"].items()
    )
    if litert:
        q = litert["metrics"]
        litert_text = f"""
## The LiteRT file the job runs on CPUs

`{litert['file']}` ({litert['size_mb']:.2f} MB, sha256 `{litert['sha256']}`): the same weights, dynamic-range
quantized (int8 weights, activations quantized per face at run time by XNNPACK), run by the LiteRT
interpreter without TensorFlow (`--backend litert`, the default without a GPU). Measured on PrivateTest
through the interpreter: accuracy **{q['accuracy']:.4f}** ({100 * (q['accuracy'] - metrics['accuracy']):+.2f} points),
macro-F1 {q['macro_f1']:.4f}; recall """ + ", ".join(f"{c} {m['recall']:.3f}" for c, m in q["per_class"].items()) + ".\n"
    else:
        litert_text = "\nNo quantized LiteRT file is bundled: the job runs the Keras file on every machine.\n"
    cm = metrics["confusion_matrix"]
    cm_rows = "\n".join(f"| **{EMOTIONS[i]}** | " + " | ".join(str(v) for v in row) + " |" for i, row in enumerate(cm))
    path.write_text(f"""# Model card: {name}

| | |
|---|---|
| file | `{file_name}` ({size_mb:.2f} MB, no optimizer state) |
| sha256 | `{sha256}` |
| architecture | `{config['model']}` spec ({model.count_params():,} parameters), input {model.input_shape[1]}x{model.input_shape[2]}x{model.input_shape[3]} |
| classes | {', '.join(EMOTIONS)} (apparent facial expressions, not inner feelings) |
| trained | {dt.date.today().isoformat()}, {state['epoch']} epochs ({checkpoint_text}) |
| data | FER2013 (`../shared/datasets/fer2013/`), {config['labels']} labels |
| split | train on `Training` ({state.get('train_size', '?')} faces after cleaning), select on `PublicTest`, report on `PrivateTest` (never used for a choice) |
| options | optimizer {config['optimizer']}, lr {config['learning_rate']} ({config['schedule']}), batch {config['batch_size']}, balance {config['balance']}, label smoothing {config['label_smoothing']}, augmentation {config['augment']}, weight average {config.get('ema', 0.0)}, FER+ vote weight {config.get('ferplus_weight', 0.0)} |
{_distillation_row(config)}{''.join(f'| {k} | {v} |' + chr(10) for k, v in extra.items())}
## Results on FER2013 PrivateTest ({metrics['n']} faces, {LABEL_TEXT[labels]})

| metric | value |
|---|---|
| accuracy | **{metrics['accuracy']:.4f}** |
| macro-F1 | {metrics['macro_f1']:.4f} |
| weighted-F1 | {metrics['weighted_f1']:.4f} |
| macro AUC (one-vs-rest) | {metrics['macro_auc']:.4f} |
| micro AUC | {metrics['micro_auc']:.4f} |
| PublicTest (validation) accuracy | {valid_metrics['accuracy']:.4f} |

Per-class reliability (PrivateTest):

| class | precision | recall | F1 | AUC | support |
|---|---|---|---|---|---|
{rows}

Confusion matrix (rows: true class, columns: predicted, in the order {', '.join(EMOTIONS)}):

| | {' | '.join(EMOTIONS)} |
|---|{'---|' * len(EMOTIONS)}
{cm_rows}

{_original_text(original_metrics)}
{calibration_text(metrics, calibration, labels=labels)}
{litert_text}
## Training history

Validation accuracy by epoch: {', '.join(f"{h['val_accuracy']:.3f}" for h in history)}

## How it was made

```
{command}
```

## Limits

FER2013 faces are 48x48 grayscale web images, mostly frontal, of adults; the classes are posed or
apparent expressions labelled by crowd workers. Expect lower reliability on profile faces, children,
occlusions and on the weak classes above (compare their recall with happy's). The scores describe
what a face looks like, not what the person feels.
""")


#: How a card names the labels its figures were measured against.
LABEL_TEXT = {
    "original": "original labels",
    "ferplus-majority": "against the FER+ majority: the faces where more than half of the FER+ annotators' "
                        "votes on the seven classes agree",
}


def _original_text(original: dict[str, Any] | None) -> str:
    """The card's section with the file's PrivateTest figures against FER2013's original labels (when its main
    figures are against other labels)."""
    if not original:
        return ""
    recalls = ", ".join(f"{c} {m['recall']:.3f}" for c, m in original["per_class"].items())
    return f"""
## Against FER2013's original labels (PrivateTest, {original['n']} faces)

Accuracy {original['accuracy']:.4f}, macro-F1 {original['macro_f1']:.4f}; recall {recalls}. The file answers
as the FER+ annotators' majority does, which differs from the original single label on about a third of
FER2013's faces, so these figures are lower by design.
"""


def calibration_text(metrics: dict[str, Any], calibration: dict[str, Any] | None, *, labels: str = "original") -> str:
    """The card's calibration section: ECE and log-likelihood (before and after the temperature, when one is
    built in) and the reliability table of PrivateTest, bin by bin."""
    after = metrics["calibration"]
    bins = after["bins"]
    if calibration:
        before = calibration["before"]
        tau = float(calibration.get("logit_adjust") or 0.0)
        follows = labels == "ferplus-majority"
        if calibration.get("bias") is None:
            what = f"""Temperature scaling: the file divides the log-probabilities by **T = {calibration['temperature']:.4f}**, fitted
on PublicTest to minimise their negative log-likelihood (it never changes the most probable class)."""
        else:
            bias = ", ".join(f"{c} {b:+.3f}" for c, b in zip(EMOTIONS, calibration["bias"]))
            fitted = ("both fitted on PublicTest to minimise the negative log-likelihood of the FER+ annotators' majority "
                      "labels" if follows else "the temperature fitted on PublicTest to minimise the negative "
                      "log-likelihood of its labels, the bias the logit adjustment below")
            because = ": it is what makes the file follow the annotators' majority" if follows else ""
            what = f"""Temperature and bias: the file divides the log-probabilities by **T = {calibration['temperature']:.4f}** and adds a
log-odds bias per class ({bias}), {fitted}. Unlike a temperature alone, the bias changes answers{because}
("before" is the network against the same labels)."""
        if tau:
            adjustment = np.asarray(calibration["adjustment"], dtype=np.float64)
            favoured = ", ".join(EMOTIONS[i] for i in np.argsort(-adjustment, kind="stable"))
            what += f"""

The bias includes a **logit adjustment of tau = {tau:g}**: minus {tau:g} times the log of each class's share of
PublicTest's labels (Menon et al., 2021; {", ".join(f"{c} {a:+.3f}" for c, a in zip(EMOTIONS, adjustment))}), which
moves doubtful answers towards the classes that are rare there, which a calibrated best guess under PublicTest's
mix of expressions under-calls: it favours, from most to least, {favoured}. The table below shows what it does
to the calibration."""
        head = f"""{what}

| PrivateTest | before | after |
|---|---|---|
| expected calibration error ({bins} bins, top class) | {before['calibration']['ece']:.4f} | **{after['ece']:.4f}** |
| maximum calibration error | {before['calibration']['mce']:.4f} | {after['mce']:.4f} |
| negative log-likelihood | {before['nll']:.4f} | {metrics['nll']:.4f} |
{"" if calibration.get("bias") is None else f"| accuracy | {before['accuracy']:.4f} | {metrics['accuracy']:.4f} |" + chr(10)}"""
    else:
        head = f"""No temperature is built in. PrivateTest expected calibration error ({bins} bins, top class):
**{after['ece']:.4f}**; maximum calibration error {after['mce']:.4f}; negative log-likelihood {metrics['nll']:.4f}.
"""
    rows = "\n".join(
        f"| {lo:.3f}-{hi:.3f} | {n} | {'' if c is None else f'{c:.3f}'} | {'' if a is None else f'{a:.3f}'} |"
        for lo, hi, n, c, a in zip(after["edges"][:-1], after["edges"][1:], after["count"], after["confidence"],
                                   after["accuracy"]) if n
    )
    return f"""
## Calibration

{head}
Reliability on PrivateTest (faces grouped by the probability of their most probable class; a calibrated
model's accuracy in each row equals its mean confidence):

| confidence bin | faces | mean confidence | accuracy |
|---|---|---|---|
{rows}
"""


def _reliability(metrics: dict[str, Any]) -> dict[str, Any]:
    """The test metrics a manifest entry records (the reports' methodology appendix reads them)."""
    return {
        "test_accuracy": round(metrics["accuracy"], 4), "test_macro_f1": round(metrics["macro_f1"], 4),
        **({"test_ece": round(metrics["calibration"]["ece"], 4)} if "calibration" in metrics else {}),
        "per_class": {c: {k: round(v, 4) for k, v in m.items() if k in ("precision", "recall", "f1")}
                      for c, m in metrics["per_class"].items()},
    }


def update_manifest(models_dir: Path, *, name: str, file_name: str, sha256: str, size: int, channels: int,
                    card: str, metrics: dict[str, Any], make_default: bool,
                    litert: dict[str, Any] | None = None, temperature: float | None = None,
                    bias: Any = None, labels: str = "original", original_metrics: dict[str, Any] | None = None,
                    logit_adjust: float = 0.0, flip_gate: dict[str, Any] | None = None) -> None:
    """Record a bundled file in the manifest: its hash, input, card and test metrics (``labels``: what they were
    measured against; a file with a bias records it, and one that answers in another convention its accuracy
    against FER2013's original labels too; ``logit_adjust``: the tau of a logit adjustment in its bias;
    ``flip_gate``: ``classifier.FlipGate.as_entry``, which the job's classifiers read back)."""
    path = models_dir / MANIFEST
    manifest = json.loads(path.read_text()) if path.is_file() else {"default": name, "models": {}}
    manifest["models"][name] = {
        "file": file_name, "sha256": sha256, "input": {"size": size, "channels": channels}, "card": card,
        "classes": list(EMOTIONS), **_reliability(metrics),
    }
    if temperature is not None:
        manifest["models"][name]["temperature"] = round(float(temperature), 4)
    if bias is not None:
        manifest["models"][name]["bias"] = [round(float(b), 4) for b in bias]
    if logit_adjust:
        manifest["models"][name]["logit_adjust"] = float(logit_adjust)
    if flip_gate is not None:
        manifest["models"][name]["flip_gate"] = flip_gate
    if labels != "original":
        manifest["models"][name]["labels"] = labels
    if original_metrics is not None:
        manifest["models"][name]["original_labels"] = {"test_accuracy": round(original_metrics["accuracy"], 4),
                                                       "test_macro_f1": round(original_metrics["macro_f1"], 4)}
    if litert:
        manifest["models"][name]["litert"] = {"file": litert["file"], "sha256": litert["sha256"],
                                              "quantization": "dynamic-range int8", **_reliability(litert["metrics"])}
    if make_default:
        manifest["default"] = name
    path.write_text(json.dumps(manifest, indent=2) + "\n")
