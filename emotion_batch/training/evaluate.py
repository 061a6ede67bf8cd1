"""Evaluate a model on a labelled face set, and bundle a finished run into ``models/``."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from ..exceptions import ConfigError
from .data import FaceSet, load_fer2013
from .metrics import classification_report

log = logging.getLogger(__name__)


def _probabilities(model, x: np.ndarray, batch_size: int) -> np.ndarray:
    if hasattr(model, "model_id"):  # a job's classifier (either backend): it batches itself
        return model.predict(x)
    return model.predict(x.astype(np.float32), batch_size=batch_size, verbose=0)


def predict(model, x: np.ndarray, *, batch_size: int = 512, flip_tta: bool = False) -> np.ndarray:
    """Class probabilities from a Keras model or a job's classifier (``classifier.load_classifier``);
    ``flip_tta`` averages with the horizontally mirrored faces."""
    probs = _probabilities(model, x, batch_size)
    if flip_tta:
        probs = (probs + _probabilities(model, np.ascontiguousarray(x[:, :, ::-1]), batch_size)) / 2.0
    return probs


def evaluate(model, faces: FaceSet, *, flip_tta: bool = False) -> dict[str, Any]:
    """Every metric of ``metrics.classification_report`` for ``faces`` (hard labels), from a Keras model or a
    job's classifier."""
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


class Evaluation(NamedTuple):
    """What ``evaluate_to_folder`` measured and wrote."""

    model_id: str
    report: dict[str, Any]
    paths: list[Path]  # evaluation.json, .html and .pdf
    labels: str  # what the report scored against


def evaluate_to_folder(model: str | None, *, data: str | Path, out_dir: str | Path, sha256: str | None = None,
                       backend: str = "auto", split: str = "test", labels: str = "auto",
                       flip_tta: bool = False) -> Evaluation:
    """Load a model as the batch job does (``classifier.load_classifier``), evaluate it on ``split`` of ``data``
    (``load_labelled``) and write ``evaluation.json``, ``.html`` and ``.pdf`` into ``out_dir``. ``labels``
    ``auto`` scores against the labels the model answers in (``model_labels``)."""
    from ..classifier import load_classifier
    from .report import write_evaluation_report

    classifier = load_classifier(model, sha256=sha256, backend=backend, batch_size=512)
    if labels == "auto":
        labels = model_labels(classifier.model_id)
    faces = load_labelled(data, split=split, size=classifier.size, channels=classifier.channels, labels=labels)
    if not faces.source.startswith("FER2013"):  # a folder tree: its folders are the labels
        labels = "the folders'"
    report = evaluate(classifier, faces, flip_tta=flip_tta)
    gate = classifier.flip_gate
    how = ("" if gate is None else f"; flip gate {gate.below:g}: {100 * classifier.mirrored / len(faces.y):.1f} % of "
           f"the faces{' (and of their mirror images)' if flip_tta else ''} classified again mirrored")
    paths = write_evaluation_report(report, out_dir, model_id=classifier.model_id,
                                    data=f"{faces.source}, split {split}{how}")
    return Evaluation(classifier.model_id, report, paths, labels)


def model_labels(model_id: str) -> str:
    """The labels a model answers in: its manifest entry's ``labels`` (``ferplus-majority`` for a file bundled
    with ``--labels ferplus-majority``), else ``original`` (also for a file the manifest does not hold)."""
    from ..classifier import bundled_models, manifest_entry

    found = manifest_entry(model_id, bundled_models())
    return str(found[0].get("labels", "original")) if found else "original"


def jsonable(report: dict[str, Any]) -> dict[str, Any]:
    """The report without the ROC arrays (for JSON files and manifests)."""
    return {k: v for k, v in report.items() if k != "roc"}


#: The labels a bundled file can answer in and be measured against (``bundle_run``).
BUNDLE_LABELS = ("original", "ferplus-majority")

#: The most accuracy a quantized LiteRT file may lose against its Keras model (PrivateTest) to be bundled.
MAX_QUANT_LOSS = 0.005


def _write_share_statistics(models: Path, *, name: str, model, sha: str, quant, valid: FaceSet, data,
                            command: str, labels: str = "original", flip_gate=None) -> Path:
    """``<name>.shares.json``: the PublicTest statistics of the bundled Keras file and of its LiteRT file
    (``training.share_stats``), measured through the job's classifiers (with the model's flip gate)."""
    from ..classifier import Classifier
    from .share_stats import classifier_statistics, save_statistics

    entries = [classifier_statistics(Classifier(model, model_id=f"{name}@{sha[:12]}", batch_size=512,
                                                flip_gate=flip_gate), valid, file_name=f"{name}.keras")]
    if quant is not None:
        entries.append(classifier_statistics(quant, valid, file_name=f"{name}.quant.tflite"))
    return save_statistics(models, name=name, entries=entries, faces=len(valid),
                           command=command or f"emotion-batch bundle ... --data {data}", labels=labels)


def _gate_rows(gate, mirrored_share: float, model, test: FaceSet) -> dict[str, str]:
    """The card's rows on a flip gate: what it does, how many faces it mirrored, and PrivateTest accuracy of
    the file's one pass and of flip averaging on every face, beside the gated figure the card leads with."""
    from dataclasses import replace

    from ..classifier import Classifier

    every = Classifier(model, model_id="every", batch_size=512, flip_gate=replace(gate, below=float("inf")))
    return {"test-time augmentation": f"flip gate: the faces whose top probability from one pass is below "
                                      f"{gate.below:g} are classified again mirrored and averaged "
                                      f"({100 * mirrored_share:.1f} % of PublicTest's faces); the file holds the one pass",
            "PrivateTest accuracy, one pass for every face (no mirror)": f"{evaluate(model, test)['accuracy']:.4f}",
            "PrivateTest accuracy, flip averaging on every face": f"{evaluate(every, test)['accuracy']:.4f}"}


def bundle_run(run_dir: str | Path, *, data: str | Path, models_dir: str | Path, name: str, command: str,
               make_default: bool = True, max_quant_loss: float = MAX_QUANT_LOSS,
               flip_tta: bool = False, calibrate: bool = False, labels: str = "original",
               checkpoint: str = "best", logit_adjust: float = 0.0, flip_gate: float | None = None) -> dict[str, Any]:
    """Evaluate a run's weights (``checkpoint``) on PublicTest and PrivateTest and put the model into ``models_dir``.

    Beside the ``.keras`` file it writes ``<name>.shares.json`` (the PublicTest statistics the reports'
    corrected shares need, ``training.share_stats``) and the dynamic-range quantized ``<name>.quant.tflite``
    that the job runs on CPUs (``classifier.LiteRTClassifier``), evaluated through the LiteRT interpreter; it is left
    out (the job then runs the Keras file everywhere) when it loses more than ``max_quant_loss`` accuracy.
    ``flip_tta`` bundles the model with test-time flip averaging built in (``layers.with_flip_averaging``):
    every face is classified as the mean of it and its mirror image, at twice the arithmetic.
    ``calibrate`` fits a temperature on PublicTest (``calibration.fit_temperature``) and builds it into the
    bundled file (``layers.with_temperature``): the file's probabilities are then calibrated everywhere it runs.
    ``labels`` is the convention the file answers in and is measured against: ``original`` (FER2013's labels)
    or ``ferplus-majority`` (the FER+ annotators' majority: with ``calibrate``, a temperature and a per-class
    bias are fitted on PublicTest's FER+ majority labels, ``calibration.fit_temperature_and_bias``; the card,
    the manifest and the corrected shares' statistics use the FER+ majority, and the card also shows the
    PrivateTest figures against the original labels).
    ``checkpoint`` picks the weights: ``best`` (the run's own choice, ``best.weights.h5``) or ``last`` (the last
    finished epoch's weight average, ``fit.load_last``), for a choice made on another figure than the run's
    (the calibrated PublicTest accuracy of two bundles, say); the card says which.
    ``logit_adjust`` (``tau``, with ``calibrate``) adds ``calibration.logit_adjustment`` of PublicTest's class
    shares to the fitted bias: answers move from the common classes towards the rare ones.
    ``flip_gate`` (with ``flip_tta``) bundles the network's one pass instead (with the same calibration, fitted on
    the flip-averaged probabilities) and records a ``classifier.FlipGate`` in the manifest: the job then mirrors
    only the faces whose top probability is below ``flip_gate``. Every figure is measured that way.

    Returns:
        The PrivateTest metrics (without ROC arrays).
    """
    from ..classifier import Classifier, FlipGate, LiteRTClassifier, sha256_file
    from .bundle import save_for_inference, update_manifest, write_card
    from .export import export_model
    from .fit import load_best, load_last

    loaders = {"best": load_best, "last": load_last}
    if logit_adjust and not calibrate:
        raise ConfigError(f"a logit adjustment is built in with the calibration: it needs calibrate. "
                          f"Received: logit_adjust={logit_adjust!r}, calibrate={calibrate!r}")
    if not 0.0 <= logit_adjust <= 1.0:
        raise ConfigError(f"logit_adjust must be within 0..1. Received: logit_adjust={logit_adjust!r}")
    if checkpoint not in loaders:
        raise ConfigError(f"checkpoint must be one of {list(loaders)}. Received: checkpoint={checkpoint!r}")
    if flip_gate is not None and not (flip_tta and 0.0 < flip_gate <= 1.0):
        raise ConfigError(f"a flip gate needs flip_tta and a threshold within (0, 1]. "
                          f"Received: flip_gate={flip_gate!r}, flip_tta={flip_tta!r}")
    run = Path(run_dir)
    models = Path(models_dir)
    models.mkdir(parents=True, exist_ok=True)
    model = loaders[checkpoint](run)
    single = model
    if flip_tta:
        from ..model_layers import with_flip_averaging

        model = with_flip_averaging(model)
    size, channels = int(model.input_shape[1]), int(model.input_shape[3])
    if labels not in BUNDLE_LABELS:
        raise ConfigError(f"labels must be one of {list(BUNDLE_LABELS)}. Received: labels={labels!r}")
    original_test = load_fer2013(data, split="test", size=size, channels=channels)
    if labels == "original":
        valid = load_fer2013(data, split="valid", size=size, channels=channels)
        test = original_test
    else:  # the faces with a clear FER+ majority, labelled with it
        valid = load_fer2013(data, split="valid", size=size, channels=channels, labels="ferplus-majority")
        test = load_fer2013(data, split="test", size=size, channels=channels, labels="ferplus-majority")
    uncalibrated = bias = None
    temperature = 1.0
    network = single if flip_gate is not None else model  # what the file holds (with a gate: one pass)
    if calibrate:
        from .calibration import fit_temperature, fit_temperature_and_bias, logit_adjustment
        from ..model_layers import with_temperature

        valid_probs = predict(model, valid.x)
        if labels == "original":
            temperature = fit_temperature(valid.y, valid_probs)
        else:
            temperature, bias = fit_temperature_and_bias(valid.soft, valid_probs)
        adjustment = None
        if logit_adjust:
            adjustment = logit_adjustment(valid.y, logit_adjust, classes=valid.soft.shape[1])
            bias = adjustment if bias is None else bias + adjustment
        uncalibrated = jsonable(evaluate(model, test))
        network = with_temperature(network, temperature, None if bias is None else bias.tolist())
        log.info("temperature %.4f%s (fitted on PublicTest)", temperature,
                 "" if bias is None else ", bias " + " ".join(f"{b:+.3f}" for b in bias))
    model = network
    gate = None if flip_gate is None else FlipGate(below=float(flip_gate), temperature=float(temperature),
                                                   bias=None if bias is None else tuple(float(b) for b in bias))
    scored = model if gate is None else Classifier(model, model_id=f"{name}@keras", batch_size=512, flip_gate=gate)
    valid_metrics = evaluate(scored, valid)
    mirrored_share = None if gate is None else scored.mirrored / len(valid.y)
    test_metrics = evaluate(scored, test)
    original_metrics = None if labels == "original" else jsonable(evaluate(scored, original_test))
    file_name = f"{name}.keras"
    sha = save_for_inference(model, models / file_name)
    quant_path = export_model(model, models, name=name, fmt="tflite-quant")
    quant_sha = sha256_file(quant_path)
    quant = LiteRTClassifier(quant_path, model_id=f"{name}@{quant_sha[:12]}", batch_size=512, flip_gate=gate)
    quant_metrics = jsonable(evaluate(quant, test))
    litert = {"file": quant_path.name, "sha256": quant_sha, "metrics": quant_metrics,
              "size_mb": round(quant_path.stat().st_size / 1e6, 3)}
    loss = test_metrics["accuracy"] - quant_metrics["accuracy"]
    if loss > max_quant_loss:
        log.warning("the quantized file loses %.2f accuracy points; not bundled", 100 * loss)
        quant_path.unlink()
        litert = None
    card = f"{name}.md"
    write_card(models / card, name=name, model=model, run_dir=run, metrics=test_metrics, valid_metrics=valid_metrics,
               file_name=file_name, sha256=sha, command=command, litert=litert,
               calibration=None if uncalibrated is None else {"temperature": temperature, "before": uncalibrated,
                                                              "bias": None if bias is None else bias.tolist(),
                                                              "logit_adjust": logit_adjust,
                                                              "adjustment": None if adjustment is None else adjustment.tolist()},
               labels=labels, original_metrics=original_metrics, checkpoint=checkpoint,
               extra=(_gate_rows(gate, mirrored_share, model, test)
                      if gate is not None else
                      {"test-time augmentation": "flip averaging built in (the mean of each face and its mirror image)",
                       "PrivateTest accuracy of the network alone, one pass, before calibration":
                       f"{evaluate(single, test)['accuracy']:.4f}"} if flip_tta else
                      {"PrivateTest accuracy with flip TTA (not used by the job)":
                       f"{evaluate(model, test, flip_tta=True)['accuracy']:.4f}"}))
    (models / f"{name}.metrics.json").write_text(json.dumps(jsonable(test_metrics), indent=2) + "\n")
    _write_share_statistics(models, name=name, model=model, sha=sha, quant=quant if litert else None,
                            valid=valid, data=data, command=command, labels=labels, flip_gate=gate)
    update_manifest(models, name=name, file_name=file_name, sha256=sha, size=size, channels=channels, card=card,
                    metrics=test_metrics, make_default=make_default, litert=litert,
                    temperature=temperature if calibrate else None, bias=bias, labels=labels,
                    original_metrics=original_metrics, logit_adjust=logit_adjust,
                    flip_gate=None if gate is None else gate.as_entry())
    log.info("bundled %s: PrivateTest accuracy %.4f", name, test_metrics["accuracy"])
    return jsonable(test_metrics)
