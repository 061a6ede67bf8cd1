"""The flip gate: mirror only the uncertain faces. Its arithmetic on known probabilities, which faces it
mirrors in both backends' shared loop, the manifest round trip, and a bundle that records one."""

from __future__ import annotations

import json

import numpy as np
import pytest

from emotion_batch.classifier import FlipGate, _BatchPredictor, load_classifier, locate_model
from emotion_batch.exceptions import ConfigError
from emotion_batch.training.calibration import apply_temperature

from .conftest import tiny_ferplus_run


def _probabilities(rng, n: int) -> np.ndarray:
    p = rng.dirichlet(np.full(7, 0.7), size=n)
    return p / p.sum(axis=1, keepdims=True)


@pytest.mark.parametrize("temperature, bias", [(1.0, None), (0.6, (-0.2, 1.5, 0.1, -0.4, -0.3, -0.5, -0.2))])
def test_combine_is_the_calibration_of_the_mean_of_the_uncalibrated_passes(temperature, bias):
    rng = np.random.default_rng(0)
    p1, p2 = _probabilities(rng, 50), _probabilities(rng, 50)
    gate = FlipGate(below=0.8, temperature=temperature, bias=bias)
    # what a file with flip averaging and then the calibration built in answers
    expected = apply_temperature((p1 + p2) / 2, temperature, bias)
    got = gate.combine(apply_temperature(p1, temperature, bias), apply_temperature(p2, temperature, bias))
    np.testing.assert_allclose(got, expected, atol=1e-5)
    if bias is None and temperature == 1.0:  # no calibration: the plain mean
        np.testing.assert_allclose(got, (p1 + p2) / 2, atol=1e-6)


class _HalfSighted(_BatchPredictor):
    """A backend whose answer is a known function of a face's left half only, so that mirroring changes it;
    it records every batch it is given."""

    size, channels, batch_size = 4, 1, 3

    def __init__(self, gate: FlipGate | None) -> None:
        self.flip_gate = gate
        self.calls: list[np.ndarray] = []

    def answer(self, faces: np.ndarray) -> np.ndarray:
        left = faces[:, :, :2, 0].reshape(len(faces), -1).mean(axis=1)  # 0..255
        top = 0.3 + 0.65 * left / 255.0  # the top class's probability grows with the left half's brightness
        cls = (faces[:, 0, 0, 0] // 40).astype(int) % 7
        out = np.tile(((1 - top) / 6)[:, None], (1, 7))
        out[np.arange(len(faces)), cls] = top
        return out.astype(np.float32)

    def _run(self, chunk: np.ndarray) -> np.ndarray:
        self.calls.append(chunk.copy())
        return self.answer(chunk)


def test_the_gate_mirrors_exactly_the_faces_below_its_threshold():
    rng = np.random.default_rng(1)
    faces = rng.integers(0, 256, size=(10, 4, 4, 1), dtype=np.uint8)
    gate = FlipGate(below=0.7, temperature=0.8, bias=(0.1, -0.1, 0.0, 0.2, 0.0, -0.2, 0.0))
    backend = _HalfSighted(gate)
    one_pass = backend.answer(faces.astype(np.float32))
    uncertain = np.flatnonzero(one_pass.max(axis=1) < 0.7)
    assert 0 < len(uncertain) < len(faces)  # the case mixes both kinds of face
    got = backend.predict(faces)
    mirrored = backend.answer(faces[:, :, ::-1].astype(np.float32))
    np.testing.assert_array_equal(np.delete(got, uncertain, axis=0), np.delete(one_pass, uncertain, axis=0))
    np.testing.assert_allclose(got[uncertain], gate.combine(one_pass[uncertain], mirrored[uncertain]), atol=1e-6)
    # one pass over every face (batches of 3), then the mirror images of the uncertain ones only
    assert backend.mirrored == len(uncertain)
    assert sum(len(c) for c in backend.calls) == len(faces) + len(uncertain)
    second_calls = -(-len(uncertain) // 3)
    second = np.concatenate(backend.calls[-second_calls:])
    np.testing.assert_array_equal(second, faces[uncertain, :, ::-1].astype(np.float32))
    # without a gate, one pass and nothing mirrored
    plain = _HalfSighted(None)
    np.testing.assert_array_equal(plain.predict(faces), one_pass)
    assert plain.mirrored == 0 and sum(len(c) for c in plain.calls) == len(faces)


def test_the_manifest_round_trip_and_the_gate_follows_the_file(tmp_path, monkeypatch, tiny_model_file):
    import pickle
    import shutil

    import emotion_batch.classifier as classifier
    from emotion_batch.classifier import open_classifier
    from emotion_batch.exceptions import ModelError
    from emotion_batch.serve.inference import model_card

    gate = FlipGate(below=0.8, temperature=0.6124972115654842, bias=(0.123456789,) * 7)
    assert FlipGate.from_entry(json.loads(json.dumps({"flip_gate": gate.as_entry()}))) == gate  # full precision
    assert FlipGate.from_entry({"temperature": 0.6}) is None
    for broken in ({"below": "x"}, {"temperature": 0.6}, {"below": 0.8, "temperature": 0}, {"below": 0.8, "bias": [1.0]}):
        with pytest.raises(ModelError, match="flip_gate"):
            FlipGate.from_entry({"flip_gate": broken})
    models = tmp_path / "models"
    models.mkdir()
    shutil.copy(tiny_model_file, models / "tiny.keras")
    sha = classifier.sha256_file(models / "tiny.keras")
    entry = {"file": "tiny.keras", "sha256": sha, "card": None, "flip_gate": gate.as_entry()}
    (models / "manifest.json").write_text(json.dumps({"default": "tiny", "models": {"tiny": entry}}))
    monkeypatch.setattr(classifier, "asset_dir", lambda kind: models)
    ref = locate_model(None, backend="keras")
    job = load_classifier(None, backend="keras")
    assert ref.flip_gate == gate and job.flip_gate == gate
    # the same file by path, or a copy of it, answers the same way under the same id; another file has no gate
    copy = tmp_path / "copy.keras"
    shutil.copy(tiny_model_file, copy)
    assert locate_model(str(models / "tiny.keras")).flip_gate == gate and locate_model(str(copy)).flip_gate == gate
    other = tmp_path / "other.keras"
    other.write_bytes(copy.read_bytes() + b"another file")
    assert locate_model(str(other)).flip_gate is None
    # a Ray actor gets the gate with the pickled ModelFile; the API's card says it
    assert open_classifier(pickle.loads(pickle.dumps(ref))).flip_gate == gate
    assert model_card(job, "blazeface")["flip_gate"] == 0.8


@pytest.mark.slow
def test_bundle_with_a_flip_gate_ships_one_pass_and_the_job_mirrors_the_uncertain_faces(tmp_path, monkeypatch):
    import keras
    from click.testing import CliRunner

    import emotion_batch.classifier as classifier
    from emotion_batch.classifier import LiteRTClassifier
    from emotion_batch.cli import cli
    from emotion_batch.model_layers import with_flip_averaging
    from emotion_batch.training.data import load_fer2013
    from emotion_batch.training.evaluate import bundle_run, evaluate_to_folder, predict
    from emotion_batch.training.export import export_files, tflite_predict
    from emotion_batch.training.fit import load_best

    data, state = tiny_ferplus_run(tmp_path)
    models = tmp_path / "models"
    with pytest.raises(ConfigError, match="a flip gate needs flip_tta"):
        bundle_run(state["run_dir"], data=data, models_dir=models, name="x", command="cmd", flip_gate=0.8)
    # without a calibration the file is the bare network, and its export averages it with the mirror image
    bundle_run(state["run_dir"], data=data, models_dir=models, name="tiny_bare", command="cmd", flip_tta=True,
               flip_gate=0.9, make_default=False)
    monkeypatch.setattr(classifier, "asset_dir", lambda kind: models)
    (_, bare_export), = list(export_files(locate_model("tiny_bare", backend="keras"), tmp_path / "bare",
                                          formats=["tflite"]))
    bare_test = load_fer2013(data, split="test")
    np.testing.assert_allclose(tflite_predict(bare_export, bare_test.x),
                               predict(with_flip_averaging(load_best(state["run_dir"])), bare_test.x), atol=2e-4)
    below = 0.5
    metrics = bundle_run(state["run_dir"], data=data, models_dir=models, name="tiny_gate", command="cmd",
                         flip_tta=True, calibrate=True, labels="ferplus-majority", flip_gate=below)
    entry = json.loads((models / "manifest.json").read_text())["models"]["tiny_gate"]
    gate = FlipGate.from_entry(entry)
    assert gate.below == below and gate.temperature == pytest.approx(entry["temperature"], abs=1e-4)
    np.testing.assert_allclose(gate.bias, entry["bias"], atol=1e-4)
    network = load_best(state["run_dir"])
    test = load_fer2013(data, split="test", labels="ferplus-majority")
    # the file holds one pass, calibrated; named by its path it keeps its model's gate
    one = predict(keras.models.load_model(models / entry["file"], compile=False), test.x)
    assert load_classifier(str(models / entry["file"])).flip_gate == gate
    np.testing.assert_allclose(one, apply_temperature(predict(network, test.x), gate.temperature, gate.bias), atol=2e-4)
    # by name the job's classifier mirrors the uncertain faces: flip averaging's answer there, one pass elsewhere
    every = apply_temperature(predict(with_flip_averaging(network), test.x), gate.temperature, gate.bias)
    job = load_classifier("tiny_gate", backend="keras")
    got = job.predict(test.x)
    uncertain = one.max(axis=1) < below
    assert job.mirrored == uncertain.sum() > 0
    np.testing.assert_allclose(got[uncertain], every[uncertain], atol=2e-4)
    np.testing.assert_allclose(got[~uncertain], one[~uncertain], atol=2e-4)
    assert metrics["accuracy"] == pytest.approx(float((got.argmax(axis=1) == test.y).mean()))
    assert entry["test_accuracy"] == round(metrics["accuracy"], 4)
    # the LiteRT file too: its own one pass decides which faces it mirrors
    lite_one = LiteRTClassifier(models / entry["litert"]["file"], model_id="one pass").predict(test.x)
    lite = load_classifier("tiny_gate", backend="litert")
    lite_got = lite.predict(test.x)
    lite_uncertain = lite_one.max(axis=1) < below
    assert lite.mirrored == lite_uncertain.sum()
    np.testing.assert_array_equal(lite_got[~lite_uncertain], lite_one[~lite_uncertain])
    assert entry["litert"]["test_accuracy"] == round(float((lite_got.argmax(axis=1) == test.y).mean()), 4)
    # an export has no gate: it averages every face with its mirror image, and says so
    result = CliRunner().invoke(cli, ["export-model", "--model", "tiny_gate", "--out", str(tmp_path / "export"),
                                      "--format", "tflite"])
    assert result.exit_code == 0, result.output
    assert "the exports average every face with its mirror image" in result.output
    np.testing.assert_allclose(tflite_predict(tmp_path / "export" / "tiny_gate.tflite", test.x), every, atol=2e-4)
    # emotion-batch evaluate measures the same way and says how many faces it mirrored
    result = evaluate_to_folder("tiny_gate", data=data, out_dir=tmp_path / "eval", backend="keras")
    assert result.report["accuracy"] == pytest.approx(metrics["accuracy"])
    saved = json.loads((tmp_path / "eval" / "evaluation.json").read_text())
    assert f"flip gate {below:g}: {100 * uncertain.sum() / len(test.y):.1f} % of the faces classified again mirrored" in saved["data"]
    card = (models / "tiny_gate.md").read_text()
    assert f"flip gate: the faces whose top probability from one pass is below {below:g}" in card
    assert "PrivateTest accuracy, flip averaging on every face" in card
