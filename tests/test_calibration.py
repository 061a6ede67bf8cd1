"""Calibration: the reliability bins and ECE on cases with a known answer, the temperature fit recovering a
known temperature, the layer that builds it into a bundled file, and the bundle that fits it on PublicTest."""

from __future__ import annotations

import json

import numpy as np
import pytest

from emotion_batch.training.calibration import (apply_temperature, fit_temperature, fit_temperature_and_bias,
                                                logit_adjustment)
from emotion_batch.training.metrics import classification_report, reliability_bins
from emotion_batch.exceptions import ConfigError

from .conftest import fake_fer, fake_ferplus



def _constant_confidence(n: int, confidence: float, correct: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` faces whose top class has probability ``confidence``; the first ``correct`` of them are right."""
    probs = np.full((n, 7), (1 - confidence) / 6)
    probs[:, 3] = confidence
    y = np.where(np.arange(n) < correct, 3, 5)
    return y, probs


def test_ece_where_the_answer_is_known():
    y, p = _constant_confidence(100, 0.8, 80)  # 80 % right at 80 % confidence: calibrated
    assert reliability_bins(y, p)["ece"] == pytest.approx(0.0, abs=1e-12)
    y, p = _constant_confidence(100, 0.8, 60)  # 60 % right at 80 %: over-confident by 0.2
    cal = reliability_bins(y, p, bins=15)
    assert cal["ece"] == pytest.approx(0.2) and cal["mce"] == pytest.approx(0.2)
    assert cal["count"][11] == 100 and sum(cal["count"]) == 100  # 0.8 lies in (0.733, 0.8]
    assert cal["accuracy"][11] == pytest.approx(0.6) and cal["confidence"][11] == pytest.approx(0.8)
    # two groups: 50 faces at 0.9 all right (gap 0.1), 50 at 0.5 none right (gap 0.5): ECE 0.3, MCE 0.5
    y1, p1 = _constant_confidence(50, 0.9, 50)
    y2, p2 = _constant_confidence(50, 0.5, 0)
    cal = reliability_bins(np.concatenate([y1, y2]), np.concatenate([p1, p2]))
    assert cal["ece"] == pytest.approx(0.3) and cal["mce"] == pytest.approx(0.5)
    report = classification_report(np.concatenate([y1, y2]), np.concatenate([p1, p2]))
    assert report["calibration"]["ece"] == pytest.approx(0.3)
    assert report["nll"] == pytest.approx(-(50 * np.log(0.9) + 50 * np.log(0.5 / 6)) / 100)  # the wrong ones give the truth (1 - 0.5) / 6


@pytest.mark.parametrize("true_t", [0.5, 2.0])
def test_the_temperature_fit_recovers_a_known_temperature(true_t):
    # labels drawn from softmax(z / T): a model reporting softmax(z) is miscalibrated by exactly T
    rng = np.random.default_rng(3)
    z = rng.normal(0.0, 2.5, size=(20_000, 7))
    truth = apply_temperature(np.exp(z) / np.exp(z).sum(axis=1, keepdims=True), true_t)
    y = np.array([rng.choice(7, p=row) for row in truth])
    model = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    t = fit_temperature(y, model)
    assert t == pytest.approx(true_t, rel=0.05)
    calibrated = apply_temperature(model, t)
    assert reliability_bins(y, calibrated)["ece"] < 0.02 < reliability_bins(y, model)["ece"]
    assert (calibrated.argmax(axis=1) == model.argmax(axis=1)).all()  # the top class never changes


def test_the_temperature_and_bias_fit_recovers_a_known_convention():
    # annotators whose shares are softmax(z / T + b) for a model reporting softmax(z): a known convention
    rng = np.random.default_rng(5)
    z = rng.normal(0.0, 2.0, size=(8_000, 7))
    model = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    true_bias = np.array([-1.2, -0.8, -2.0, 0.3, 1.4, -0.5, 0.6])
    true_bias -= true_bias.mean()
    shares = apply_temperature(model, 1.3, true_bias)
    t, bias = fit_temperature_and_bias(shares, model)
    assert t == pytest.approx(1.3, rel=1e-3)
    np.testing.assert_allclose(bias, true_bias, atol=1e-3)
    assert bias.mean() == pytest.approx(0.0, abs=1e-9)
    # the bias moves answers: the fitted file agrees with the annotators' majority where the model did not
    majority = shares.argmax(axis=1)
    assert (apply_temperature(model, t, bias).argmax(axis=1) == majority).all()
    assert (model.argmax(axis=1) != majority).mean() > 0.2
    # one-hot targets are a hard-label convention; a temperature alone is the special case of a zero bias
    t_only, flat = fit_temperature_and_bias(apply_temperature(model, 0.8), model)
    assert t_only == pytest.approx(0.8, rel=1e-3) and np.abs(flat).max() < 1e-3
    with pytest.raises(ValueError, match="same non-empty"):
        fit_temperature_and_bias(shares[:, :6], model)


def test_the_temperature_layer_matches_numpy_and_survives_saving(tmp_path, tiny_model_file):
    import keras

    from emotion_batch.model_layers import with_flip_averaging, with_temperature

    net = keras.models.load_model(tiny_model_file, compile=False)
    model = with_temperature(with_flip_averaging(net), 1.7)
    path = tmp_path / "calibrated.keras"
    model.save(path)
    loaded = keras.models.load_model(path, compile=False)
    x = np.random.default_rng(0).integers(0, 256, size=(5, 48, 48, 1)).astype("float32")
    raw = with_flip_averaging(net).predict(x, verbose=0)
    got = loaded.predict(x, verbose=0)
    np.testing.assert_allclose(got, apply_temperature(raw, 1.7), atol=1e-5)
    assert (got.argmax(axis=1) == raw.argmax(axis=1)).all()
    with pytest.raises(ValueError, match="temperature must be positive"):
        with_temperature(net, 0.0)
    # with a bias per class: the file computes softmax(log p / T + b), changes answers, and keeps the bias
    bias = [2.0, -1.0, 0.0, 0.5, -0.5, 0.0, -1.0]
    path = tmp_path / "biased.keras"
    with_temperature(with_flip_averaging(net), 1.7, bias).save(path)
    biased = keras.models.load_model(path, compile=False)
    np.testing.assert_allclose(biased.predict(x, verbose=0), apply_temperature(raw, 1.7, np.array(bias)), atol=1e-5)
    assert biased.get_layer("calibration").bias == bias and "bias" not in loaded.get_layer("calibration").get_config()


@pytest.mark.slow
def test_bundle_calibrate_fits_on_publictest_and_builds_the_temperature_in(tmp_path):
    from emotion_batch.classifier import load_classifier
    from emotion_batch.training.data import load_fer2013
    from emotion_batch.training.evaluate import bundle_run, predict
    from emotion_batch.training.fit import TrainConfig, load_best, train

    data = fake_fer(tmp_path, n_per_split=28)
    state = train(TrainConfig(data=str(data), model="tiny_test", epochs=1, batch_size=32, augment=False),
                  runs_dir=tmp_path / "runs", verbose=0)
    models = tmp_path / "models"
    metrics = bundle_run(state["run_dir"], data=data, models_dir=models, name="tiny_v2", command="cmd",
                         flip_tta=True, calibrate=True)
    entry = json.loads((models / "manifest.json").read_text())["models"]["tiny_v2"]
    # the temperature is the one PublicTest gives for the flip-averaged network
    from emotion_batch.model_layers import with_flip_averaging

    valid = load_fer2013(data, split="valid")
    expected_t = fit_temperature(valid.y, predict(with_flip_averaging(load_best(state["run_dir"])), valid.x))
    assert entry["temperature"] == pytest.approx(expected_t, abs=1e-4)
    assert entry["test_ece"] == round(metrics["calibration"]["ece"], 4)
    card = (models / "tiny_v2.md").read_text()
    assert "## Calibration" in card and f"T = {entry['temperature']:.4f}" in card and "| confidence bin |" in card
    # the bundled file (and its LiteRT twin) give the calibrated probabilities
    test = load_fer2013(data, split="test")
    raw = predict(with_flip_averaging(load_best(state["run_dir"])), test.x)
    keras_clf = load_classifier(str(models / entry["file"]), backend="keras")
    np.testing.assert_allclose(keras_clf.predict(test.x), apply_temperature(raw, entry["temperature"]), atol=2e-4)
    if "litert" in entry:
        lite = load_classifier(str(models / entry["litert"]["file"]))
        np.testing.assert_allclose(lite.predict(test.x), keras_clf.predict(test.x), atol=0.02)


def test_logit_adjustment_where_the_answer_is_known():
    y = np.array([0] * 50 + [1] * 25 + [2] * 25)  # shares 1/2, 1/4, 1/4; classes 3.. absent (counted once)
    shares = np.array([50, 25, 25, 1, 1]) / 102
    expected = -0.5 * np.log(shares)
    np.testing.assert_allclose(logit_adjustment(y, 0.5, classes=5), expected - expected.mean())
    np.testing.assert_allclose(logit_adjustment(y, 0.0, classes=5), 0.0)
    adjusted = logit_adjustment(y, 1.0, classes=5)
    assert adjusted[1] - adjusted[0] == pytest.approx(np.log(2.0))  # half as common: log 2 more log-odds
    with pytest.raises(ValueError, match="tau must be within"):
        logit_adjustment(y, 1.5, classes=5)
    with pytest.raises(ValueError, match="needs labels"):
        logit_adjustment(np.array([], dtype=int), 0.5, classes=5)


def test_logit_adjustment_moves_answers_towards_the_rare_classes():
    """Faces drawn from a calibrated model under a skewed mix of classes: the calibrated best guess under-calls
    the rare class; the adjustment raises its recall and the mean recall over classes (tau 1 aims at it)."""
    rng = np.random.default_rng(5)
    prior = np.array([0.6, 0.3, 0.1])
    y = rng.choice(3, size=30_000, p=prior)
    likelihood = rng.normal(0.0, 1.0, size=(len(y), 3))
    likelihood[np.arange(len(y)), y] += 1.0  # a weak signal for the true class
    logits = likelihood + np.log(prior)  # the calibrated posterior's log-odds
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)

    def recalls(bias):
        predicted = apply_temperature(probs, 1.0, bias).argmax(axis=1)
        return np.array([(predicted[y == c] == c).mean() for c in range(3)])

    before, after = recalls(np.zeros(3)), recalls(logit_adjustment(y, 1.0, classes=3))
    assert after[2] > before[2] + 0.2 and after.mean() > before.mean() + 0.05
    assert after[0] < before[0]  # the common class pays for it


@pytest.mark.slow
def test_bundle_with_ferplus_labels_builds_the_annotators_convention_in(tmp_path):
    from emotion_batch.classifier import load_classifier
    from emotion_batch.model_layers import with_flip_averaging
    from emotion_batch.reports.methodology import model_reliability
    from emotion_batch.training.data import load_fer2013
    from emotion_batch.training.evaluate import bundle_run, predict
    from emotion_batch.training.fit import TrainConfig, load_best, train

    data = fake_ferplus(fake_fer(tmp_path, n_per_split=28), n_per_split=28)
    state = train(TrainConfig(data=str(data), model="tiny_test", epochs=1, batch_size=32, augment=False),
                  runs_dir=tmp_path / "runs", verbose=0)
    models = tmp_path / "models"
    metrics = bundle_run(state["run_dir"], data=data, models_dir=models, name="tiny_plus", command="cmd",
                         flip_tta=True, calibrate=True, labels="ferplus-majority")
    manifest = json.loads((models / "manifest.json").read_text())
    entry = manifest["models"]["tiny_plus"]
    network = with_flip_averaging(load_best(state["run_dir"]))
    # temperature and bias are the ones PublicTest's FER+ majority labels give (rows without one left out)
    valid = load_fer2013(data, split="valid", labels="ferplus-majority")
    expected_t, expected_bias = fit_temperature_and_bias(valid.soft, predict(network, valid.x))
    assert entry["temperature"] == pytest.approx(expected_t, abs=1e-4)
    np.testing.assert_allclose(entry["bias"], expected_bias, atol=1e-4)
    # the figures are against the FER+ majority; the original labels' figures are kept beside them
    plus_test = load_fer2013(data, split="test", labels="ferplus-majority")
    assert entry["labels"] == "ferplus-majority" and metrics["n"] == len(plus_test) < 28
    bundled = load_classifier(str(models / entry["file"]), backend="keras")
    probs = bundled.predict(plus_test.x)
    np.testing.assert_allclose(probs, apply_temperature(predict(network, plus_test.x), expected_t, expected_bias), atol=2e-4)
    assert entry["test_accuracy"] == round(float((probs.argmax(axis=1) == plus_test.y).mean()), 4)
    original = load_fer2013(data, split="test")
    assert entry["original_labels"]["test_accuracy"] == round(
        float((bundled.predict(original.x).argmax(axis=1) == original.y).mean()), 4)
    card = (models / "tiny_plus.md").read_text()
    assert "against the FER+ majority" in card and "## Against FER2013's original labels" in card
    assert "Temperature and bias" in card and f"T = {entry['temperature']:.4f}" in card
    # the corrected shares' statistics are against the same labels, and the reports say what was measured
    shares = json.loads((models / "tiny_plus.shares.json").read_text())
    assert f"({len(valid)} faces, ferplus-majority labels)" in shares["data"]
    assert shares["files"][0]["counts"] == np.bincount(valid.y, minlength=7).tolist()
    (reliability,) = model_reliability([f"tiny_plus@{entry['sha256'][:12]}"], manifest)
    assert reliability.labels == "ferplus-majority" and "FER+ annotators' majority" in reliability.measured_against


@pytest.mark.slow
def test_bundle_takes_the_last_epoch_when_asked_and_says_so(tmp_path):
    """``bundle --checkpoint last``: the bundled file is the last epoch's (averaged) network, and the card says
    it is not the run's best validation epoch."""
    from emotion_batch.classifier import load_classifier
    from emotion_batch.training.data import load_fer2013
    from emotion_batch.training.evaluate import bundle_run, predict
    from emotion_batch.training.fit import TrainConfig, load_last, train

    data = fake_fer(tmp_path, n_per_split=28)
    state = train(TrainConfig(data=str(data), model="tiny_test", epochs=2, batch_size=32, augment=False, ema=0.5),
                  runs_dir=tmp_path / "runs", verbose=0)
    models = tmp_path / "models"
    bundle_run(state["run_dir"], data=data, models_dir=models, name="tiny_last", command="cmd", checkpoint="last")
    entry = json.loads((models / "manifest.json").read_text())["models"]["tiny_last"]
    test = load_fer2013(data, split="test")
    bundled = load_classifier(str(models / entry["file"]), backend="keras")
    np.testing.assert_allclose(bundled.predict(test.x), predict(load_last(state["run_dir"]), test.x), atol=1e-5)
    card = (models / "tiny_last.md").read_text()
    assert "the last epoch's weights (their moving average), not the run's best validation epoch" in card
    with pytest.raises(ConfigError, match="checkpoint must be"):
        bundle_run(state["run_dir"], data=data, models_dir=models, name="x", command="cmd", checkpoint="first")


def _skew_publictest(folder, rows):
    """Make PublicTest's rows ``rows`` happy in both conventions: FER2013's label 3 in ``fake_fer``'s CSV and all
    ten FER+ votes in ``fake_ferplus``'s file, so that PublicTest's class shares differ from the other splits'."""
    import gzip

    csv = folder / "fer2013.csv"
    lines = csv.read_text().splitlines()
    public = [i for i, line in enumerate(lines) if line.endswith(",PublicTest")]
    for i in (public[r] for r in rows):
        lines[i] = "3" + lines[i][lines[i].index(","):]
    csv.write_text("\n".join(lines) + "\n")
    path = folder / "fer2013new.csv.gz"
    with gzip.open(path, "rt") as f:
        lines = f.read().splitlines()
    header = lines[0].split(",")
    public = [i for i, line in enumerate(lines) if line.startswith("PublicTest,")]
    for i in (public[r] for r in rows):
        cells = lines[i].split(",")
        cells[2:] = ["10" if name == "happiness" else "0" for name in header[2:]]
        lines[i] = ",".join(cells)
    with gzip.open(path, "wt") as f:
        f.write("\n".join(lines) + "\n")


@pytest.mark.slow
@pytest.mark.parametrize("labels", ["ferplus-majority", "original"])
def test_bundle_builds_a_logit_adjustment_into_the_bias_and_says_so(tmp_path, labels):
    from emotion_batch.labels import EMOTIONS
    from emotion_batch.training.data import load_fer2013
    from emotion_batch.training.evaluate import bundle_run, predict
    from emotion_batch.training.fit import TrainConfig, load_best, train

    data = fake_ferplus(fake_fer(tmp_path, n_per_split=28), n_per_split=28)
    _skew_publictest(data, rows=[1, 2, 4, 5, 6, 8, 9, 11, 12, 13])  # PublicTest: mostly happy
    state = train(TrainConfig(data=str(data), model="tiny_test", epochs=1, batch_size=32, augment=False),
                  runs_dir=tmp_path / "runs", verbose=0)
    models = tmp_path / "models"
    with pytest.raises(ConfigError, match="needs calibrate"):
        bundle_run(state["run_dir"], data=data, models_dir=models, name="x", command="cmd", logit_adjust=0.5)
    bundle_run(state["run_dir"], data=data, models_dir=models, name="tiny_adj", command="cmd", calibrate=True,
               labels=labels, logit_adjust=0.5)
    entry = json.loads((models / "manifest.json").read_text())["models"]["tiny_adj"]
    valid = load_fer2013(data, split="valid", labels=labels)
    test = load_fer2013(data, split="test", labels=labels)
    adjustment = logit_adjustment(valid.y, 0.5, classes=7)
    assert np.abs(adjustment - logit_adjustment(test.y, 0.5, classes=7)).max() > 0.1  # PublicTest's shares, not PrivateTest's
    if labels == "ferplus-majority":  # the fitted bias plus the adjustment for PublicTest's class shares
        _, fitted = fit_temperature_and_bias(valid.soft, predict(load_best(state["run_dir"]), valid.x))
        np.testing.assert_allclose(entry["bias"], fitted + adjustment, atol=1e-4)
    else:  # a temperature alone is fitted: the bias is the adjustment
        np.testing.assert_allclose(entry["bias"], adjustment, atol=1e-4)
    assert entry["logit_adjust"] == 0.5
    card = (models / "tiny_adj.md").read_text()
    assert "logit adjustment of tau = 0.5" in card and "Temperature and bias" in card
    favoured = ", ".join(EMOTIONS[i] for i in np.argsort(-adjustment, kind="stable"))
    assert f"it favours, from most to least, {favoured}." in card and favoured.endswith("happy")  # PublicTest's most common
    assert ("the bias the logit adjustment below" in card) == (labels == "original")
