"""Training writes its history and checkpoints and resumes; metrics are right where the answer is known."""

from __future__ import annotations

import json

import numpy as np
import pytest

from emotion_batch.exceptions import ConfigError
from emotion_batch.labels import EMOTIONS
from emotion_batch.training.architectures import build_from_spec, load_spec, spec_names
from emotion_batch.training.fit import TrainConfig, balanced_index, class_weights, train
from emotion_batch.training.metrics import classification_report

from .conftest import fake_fer, fake_ferplus


def test_ferplus_votes_mix_into_the_original_targets(tmp_path):
    from emotion_batch.exceptions import DataError
    from emotion_batch.labels import FER2013_TO_INDEX
    from emotion_batch.training.data import ferplus_soft_mix, load_fer2013

    data = fake_ferplus(fake_fer(tmp_path))
    faces = load_fer2013(data, split="train")
    mixed = ferplus_soft_mix(data, faces, split="train", weight=0.25)
    neutral = EMOTIONS.index("neutral")
    for i in (1, 6, 11, 13):  # rows with votes: 0.75 on the label, 0.25 x (0.6 label + 0.4 neutral)
        label = FER2013_TO_INDEX[i % 7]
        expected = np.zeros(7, dtype=np.float32)
        expected[label] += 0.75 + 0.25 * 0.6
        expected[neutral] += 0.25 * 0.4
        np.testing.assert_allclose(mixed.soft[i], expected, atol=1e-6)
    np.testing.assert_array_equal(mixed.soft[0], faces.soft[0])  # no vote on our classes: the label alone
    np.testing.assert_allclose(mixed.soft.sum(axis=1), 1.0, atol=1e-6)
    np.testing.assert_array_equal(mixed.y, faces.y)  # hard labels stay the original ones
    with pytest.raises(DataError, match="do not line up"):
        ferplus_soft_mix(data, faces.subset(np.arange(10)), split="train", weight=0.25)


def test_ferplus_majority_lines_up_with_the_original_rows(tmp_path):
    """``ferplus_majority``: one label per row of the CSV, -1 where the annotators gave no clear majority, and
    the same faces and labels ``load_fer2013(labels="ferplus-majority")`` keeps."""
    from emotion_batch.exceptions import DataError
    from emotion_batch.training.data import ferplus_majority, load_fer2013

    data = fake_ferplus(fake_fer(tmp_path, n_per_split=30), n_per_split=30)
    majority = ferplus_majority(data, split="valid")
    original = load_fer2013(data, split="valid")
    assert majority.shape == (30,)
    assert (majority[::10] == -1).all()  # every 10th row: all ten votes "unknown"
    voted = np.ones(30, dtype=bool)
    voted[::10] = False
    # elsewhere 6 of 10 votes for the row's own class (and 4 for neutral): the majority is the original label
    np.testing.assert_array_equal(majority[voted], original.y[voted])
    kept = load_fer2013(data, split="valid", labels="ferplus-majority")
    np.testing.assert_array_equal(majority[majority >= 0], kept.y)
    np.testing.assert_array_equal(original.x[majority >= 0], kept.x)
    np.testing.assert_array_equal(ferplus_majority(data, split="valid", limit=7), majority[:7])
    with pytest.raises(DataError, match="split must be one of"):
        ferplus_majority(data, split="PublicTest")


def test_weight_average_and_bfloat16_training(tmp_path):
    import keras

    from emotion_batch.training.fit import load_best

    data = fake_ferplus(fake_fer(tmp_path))
    config = TrainConfig(data=str(data), model="tiny_test", epochs=2, batch_size=16, optimizer="sgd",
                         learning_rate=0.05, precision="mixed_bfloat16", ema=0.9, ferplus_weight=0.3, name="avg")
    state = train(config, runs_dir=tmp_path / "runs", verbose=0)
    run = tmp_path / "runs" / "avg"
    assert state["run_dir"] == str(run)
    assert keras.mixed_precision.global_policy().name == "float32"  # the policy does not leak out of train()
    history = json.loads((run / "history.json").read_text())
    assert all(0.0 <= h["ema_val_accuracy"] <= 1.0 for h in history)
    best = max(history, key=lambda h: max(h["ema_val_accuracy"], h["val_accuracy"]))
    best_epoch = best["epoch"]
    assert state["best_epoch"] == best_epoch  # chosen by the better of the average and the raw weights
    assert state["best_weights"] == ("raw" if best["val_accuracy"] > best["ema_val_accuracy"] else "average")
    last = keras.models.load_model(run / "last.keras")
    assert last.get_layer("block1_conv1").dtype_policy.name == "mixed_bfloat16"
    assert last.get_layer("predictions").dtype_policy.name == "float32"
    kept = load_best(run)  # the kept weights, rebuilt in float32
    assert kept.get_layer("block1_conv1").dtype_policy.name == "float32"
    if best_epoch == 2 and state["best_weights"] == "average":  # the kept weights are the average, not the last raw weights
        assert not np.allclose(kept.get_layer("block1_conv1").get_weights()[0], last.get_layer("block1_conv1").get_weights()[0])
    with pytest.raises(ConfigError, match="ema must be"):
        TrainConfig(data=str(data), ema=1.5).validate()
    with pytest.raises(ConfigError, match="with labels='original'"):
        TrainConfig(data=str(data), labels="ferplus-soft", ferplus_weight=0.2).validate()


@pytest.mark.parametrize("average_wins", [True, False])
def test_the_better_of_the_weight_average_and_the_raw_weights_is_kept(tmp_path, monkeypatch, average_wins):
    import keras

    from emotion_batch.training import fit

    recorder_class = fit._recorder_class

    def rigged():  # the average's validation still runs (and writes its weights); its score is forced
        class Rigged(recorder_class()):
            def _ema_accuracy(self, epoch):
                super()._ema_accuracy(epoch)
                return 2.0 if average_wins else -1.0

        return Rigged

    monkeypatch.setattr(fit, "_recorder_class", rigged)
    data = fake_fer(tmp_path)
    config = TrainConfig(data=str(data), model="tiny_test", epochs=1, batch_size=16, optimizer="sgd",
                         learning_rate=0.05, ema=0.5, name="which")
    state = train(config, runs_dir=tmp_path / "runs", verbose=0)
    run = tmp_path / "runs" / "which"
    assert state["best_weights"] == ("average" if average_wins else "raw")
    history = json.loads((run / "history.json").read_text())
    assert state["best_val_accuracy"] == pytest.approx(2.0 if average_wins else history[0]["val_accuracy"])
    model = fit.load_best(run)
    kept = model.get_layer("block1_conv1").get_weights()[0]
    raw = keras.models.load_model(run / "last.keras").get_layer("block1_conv1").get_weights()[0]
    assert np.allclose(kept, raw) != average_wins  # the raw weights kept exactly when they won
    if not average_wins:  # the average was measured and written, and is not what was kept
        model.load_weights(run / "ema.weights.h5")
        assert not np.allclose(model.get_layer("block1_conv1").get_weights()[0], kept)


def test_batch_norm_statistics_are_measured_again_for_the_weights_in_the_model():
    import keras

    from emotion_batch.training.fit import recalibrate_batch_norm

    rng = np.random.default_rng(0)
    x = rng.normal([3.0, -1.0, 0.5], [2.0, 0.5, 1.0], size=(96, 3)).astype(np.float32)
    model = keras.Sequential([keras.Input((3,)), keras.layers.BatchNormalization(momentum=0.9)])
    bn = model.layers[0]
    assert recalibrate_batch_norm(model, x, batch_size=32) == 1
    batches = x.reshape(3, 32, 3)  # the equal-weight mean of the three batches' statistics
    np.testing.assert_allclose(bn.moving_mean.numpy(), batches.mean(axis=1).mean(axis=0), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(bn.moving_variance.numpy(), batches.var(axis=1).mean(axis=0), rtol=1e-4)
    assert bn.momentum == 0.9  # training goes on with its own momentum
    recalibrate_batch_norm(model, x[:10], batch_size=32)  # fewer faces than a batch: one batch of them all
    np.testing.assert_allclose(bn.moving_mean.numpy(), x[:10].mean(axis=0), rtol=1e-5, atol=1e-5)
    assert recalibrate_batch_norm(keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)]), x) == 0


def test_the_weight_average_is_kept_with_its_own_batch_norm_statistics(tmp_path):
    import keras

    from emotion_batch.training import fit
    from emotion_batch.training.fit import load_best, load_splits, recalibrate_batch_norm

    data = fake_fer(tmp_path)
    config = TrainConfig(data=str(data), model="tiny_test", epochs=1, batch_size=16, optimizer="sgd",
                         learning_rate=0.05, ema=0.9, name="bn")
    train(config, runs_dir=tmp_path / "runs", verbose=0)
    run = tmp_path / "runs" / "bn"
    kept, last = load_best(run), keras.models.load_model(run / "last.keras")

    def statistics(model):
        return [v.numpy() for v in model.non_trainable_variables if "moving" in v.path]

    # the kept average's statistics are those measured for it on the run's fixed sample of training faces
    train_set, _ = load_splits(config, size=48, channels=1)
    sample = train_set.x[np.random.default_rng(config.seed).permutation(len(train_set))[: fit.BN_FACES]]
    stored = statistics(kept)
    recalibrate_batch_norm(kept, sample)
    for a, b in zip(stored, statistics(kept)):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)
    # the raw weights trained on with their own statistics: the checkpoint to resume from is not the average's
    assert not all(np.allclose(a, b) for a, b in zip(stored, statistics(last)))


def test_a_run_starts_from_a_bundled_files_weights(tmp_path):
    import keras

    from emotion_batch.training.fit import load_best
    from emotion_batch.model_layers import with_flip_averaging

    data = fake_fer(tmp_path)
    train(TrainConfig(data=str(data), model="tiny_test", epochs=1, batch_size=16, name="first"), runs_dir=tmp_path / "runs", verbose=0)
    first = load_best(tmp_path / "runs" / "first")
    bundled = tmp_path / "first.keras"
    with_flip_averaging(first).save(bundled)  # the bundled files wrap the network in flip averaging
    # learning rate 0: the new run's weights are the file's, whatever its own seed would have drawn
    config = TrainConfig(data=str(data), model="tiny_test", epochs=1, batch_size=16, optimizer="sgd", learning_rate=0.0,
                         schedule="constant", seed=7, augment=False, init=str(bundled), name="second")
    train(config, runs_dir=tmp_path / "runs", verbose=0)
    second = keras.models.load_model(tmp_path / "runs" / "second" / "last.keras")
    moving = [v.path for v in second.weights if "moving" in v.path]  # batch-norm statistics still update
    for ours, theirs in zip(second.weights, first.weights):
        if ours.path not in moving:
            np.testing.assert_allclose(keras.ops.convert_to_numpy(ours), keras.ops.convert_to_numpy(theirs), atol=1e-6)
    other = tmp_path / "other.keras"
    keras.Sequential([keras.Input((48, 48, 1)), keras.layers.Flatten(), keras.layers.Dense(7, activation="softmax")]).save(other)
    with pytest.raises(ConfigError, match="not a model of this spec"):
        train(TrainConfig(data=str(data), model="tiny_test", epochs=1, init=str(other), name="third"), runs_dir=tmp_path / "runs", verbose=0)


def _constant_teacher(path, probabilities, shape=(48, 48, 1)):
    """A .keras model that gives every face the same class probabilities (zero kernel, bias log p)."""
    import keras

    q = np.asarray(probabilities, dtype=np.float32)
    inputs = keras.Input(shape)
    pooled = keras.layers.GlobalAveragePooling2D()(inputs)
    out = keras.layers.Dense(7, activation="softmax", kernel_initializer="zeros",
                             bias_initializer=keras.initializers.Constant(np.log(q)))(pooled)
    keras.Model(inputs, out).save(path)
    return str(path)


def test_distillation_mixes_the_teachers_mean_probabilities_into_the_targets(tmp_path, monkeypatch):
    from emotion_batch.training import fit
    from emotion_batch.training.data import load_fer2013

    data = fake_fer(tmp_path)
    q1 = np.array([0.4, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1])
    q2 = np.array([0.1, 0.1, 0.1, 0.4, 0.1, 0.1, 0.1])
    one, two = _constant_teacher(tmp_path / "one.keras", q1), _constant_teacher(tmp_path / "two.keras", q2)
    faces = load_fer2013(data, split="train")
    mean = (q1 + q2) / 2
    np.testing.assert_allclose(fit.teacher_targets([one, two], faces), np.tile(mean, (len(faces), 1)), atol=1e-5)
    soft = fit.teacher_targets([one, two], faces, temperature=2.0)[0]
    np.testing.assert_allclose(soft, np.sqrt(mean) / np.sqrt(mean).sum(), atol=1e-5)  # T = 2 softens
    assert soft.max() < mean.max()
    mixed = fit.distil_mix(faces, fit.teacher_targets([one], faces), 0.3)
    np.testing.assert_allclose(mixed.soft, 0.7 * faces.soft + 0.3 * q1, atol=1e-5)
    np.testing.assert_array_equal(mixed.y, faces.y)  # the hard labels stay

    seen = []  # the training run's own targets: the cleaned training faces mixed with the teacher
    real = fit.make_dataset
    monkeypatch.setattr(fit, "make_dataset", lambda f, **kw: (seen.append((f, kw["training"])), real(f, **kw))[1])
    config = TrainConfig(data=str(data), model="tiny_test", epochs=1, batch_size=16, teachers=[one],
                         teacher_weight=0.5, name="student")
    fit.train(config, runs_dir=tmp_path / "runs", verbose=0)
    trained = [f for f, training in seen if training][0]
    np.testing.assert_allclose(trained.soft, 0.5 * np.eye(7)[trained.y] + 0.5 * q1, atol=1e-5)
    assert json.loads((tmp_path / "runs" / "student" / "config.json").read_text())["teachers"] == [one]

    # an interrupted run resumes on the targets it started with (kept in its folder), not predicted again,
    # and refuses other distillation options
    state_path = tmp_path / "runs" / "student" / "state.json"
    state = json.loads(state_path.read_text())
    state_path.write_text(json.dumps({**state, "done": False}))
    with pytest.raises(ConfigError, match=r"other options \(teacher_weight\)"):
        fit.train(TrainConfig(**{**config.__dict__, "teacher_weight": 0.2, "epochs": 2}), runs_dir=tmp_path / "runs", verbose=0)
    with pytest.raises(ConfigError, match=r"other options \(geometric_share\)"):  # nor another augmentation
        fit.train(TrainConfig(**{**config.__dict__, "geometric_share": 0.5, "epochs": 2}), runs_dir=tmp_path / "runs", verbose=0)
    monkeypatch.setattr(fit, "teacher_targets", lambda *a, **k: pytest.fail("the teachers were asked again"))
    seen.clear()
    assert fit.train(TrainConfig(**{**config.__dict__, "epochs": 2}), runs_dir=tmp_path / "runs", verbose=0)["epoch"] == 2
    resumed = [f for f, training in seen if training][0]
    np.testing.assert_allclose(resumed.soft, trained.soft, atol=1e-6)
    monkeypatch.undo()

    with pytest.raises(ConfigError, match="needs both teachers"):
        TrainConfig(data=str(data), teachers=[one]).validate()
    with pytest.raises(ConfigError, match="needs both teachers"):
        TrainConfig(data=str(data), teacher_weight=0.5).validate()
    rgb = _constant_teacher(tmp_path / "rgb.keras", q1, shape=(48, 48, 3))
    with pytest.raises(ConfigError, match="takes"):
        fit.teacher_targets([rgb], faces)
    with pytest.raises(ConfigError, match="a teacher must be"):
        fit.teacher_targets([str(tmp_path / "missing.keras")], faces)


@pytest.mark.slow
def test_original_architectures_build_from_their_specs():
    assert {"model_1_concept", "model_2_best", "model_3_best_nodropout", "model_4_best_nodropout_nobatchn", "resx_small"} <= set(spec_names())
    best = build_from_spec(load_spec("model_2_best"))
    assert 19_000_000 < best.count_params() < 21_000_000  # the original's ~20M parameters
    names = [layer.name for layer in best.layers]
    assert "block1_conv1" in names and "block3_bn2" in names and "block1_conv1" in names
    nodrop = build_from_spec(load_spec("model_3_best_nodropout"))
    assert not any("drop" in layer.name for layer in nodrop.layers)
    assert build_from_spec(load_spec("resx_small")).count_params() < 300_000


def test_bad_spec_is_refused_with_the_reason():
    spec = load_spec("tiny_test")
    spec["blocks"][0]["layers"].append({"type": "lstm"})
    with pytest.raises(ConfigError, match="layer type must be one of"):
        build_from_spec(spec)


def test_train_writes_history_checkpoints_and_resumes(tmp_path):
    data = fake_fer(tmp_path)
    config = TrainConfig(data=str(data), model="tiny_test", epochs=1, batch_size=32, augment=True)
    state = train(config, runs_dir=tmp_path / "runs", verbose=0)
    run = tmp_path / "runs" / "tiny_test_adam_gray_32_none"
    assert state["run_dir"] == str(run)
    history = json.loads((run / "history.json").read_text())
    assert [h["epoch"] for h in history] == [1]
    assert {"loss", "accuracy", "val_loss", "val_accuracy", "lr", "seconds"} <= set(history[0])
    assert (run / "last.keras").is_file() and (run / "best.weights.h5").is_file()
    assert state["best_epoch"] == 1 and state["epoch"] == 1
    # an interrupted 2-epoch run: not done, one epoch finished; the next call resumes at epoch 2
    saved = json.loads((run / "state.json").read_text())
    (run / "state.json").write_text(json.dumps({**saved, "done": False}))
    resumed = train(TrainConfig(**{**config.__dict__, "epochs": 2}), runs_dir=tmp_path / "runs", verbose=0)
    history2 = json.loads((run / "history.json").read_text())
    assert [h["epoch"] for h in history2] == [1, 2]
    assert history2[0] == history[0]  # the first epoch was not redone
    assert resumed["epoch"] == 2 and resumed["done"] is True
    # a finished run is not trained again
    assert train(TrainConfig(**{**config.__dict__, "epochs": 2}), runs_dir=tmp_path / "runs", verbose=0)["epoch"] == 2


def test_balancing_helpers():
    y = np.array([0] * 10 + [1] * 2 + [3] * 5)
    idx = balanced_index(y, 8, np.random.default_rng(0))
    counts = np.bincount(y[idx], minlength=7)
    assert counts[0] == 10 and counts[1] == 8 and counts[3] == 8 and counts[2] == 0
    w = class_weights(y)
    assert w[1] > w[3] > w[0] and w[2] == 0
    assert (w[y] * 1).sum() == pytest.approx(len(y))


def test_metrics_where_the_answer_is_known():
    y = np.array([0, 1, 2, 3, 4, 5, 6] * 3)
    perfect = np.eye(7)[y] * 0.9 + 0.1 / 7
    report = classification_report(y, perfect)
    assert report["accuracy"] == 1.0 and report["macro_f1"] == 1.0
    assert report["macro_auc"] == pytest.approx(1.0) and report["micro_auc"] == pytest.approx(1.0)
    # every 'fear' face called 'sad': fear recall 0, sad precision 3/6
    wrong = perfect.copy()
    fear, sad = EMOTIONS.index("fear"), EMOTIONS.index("sad")
    wrong[y == fear] = np.eye(7)[sad] * 0.9 + 0.1 / 7
    r = classification_report(y, wrong)
    assert r["accuracy"] == pytest.approx(18 / 21)
    assert r["per_class"]["fear"]["recall"] == 0.0
    assert r["per_class"]["sad"]["precision"] == pytest.approx(0.5)
    assert r["confusion_matrix"][fear][sad] == 3
    # random scores have AUC near 0.5
    rng = np.random.default_rng(0)
    yy = rng.integers(0, 7, 5000)
    assert classification_report(yy, rng.dirichlet(np.ones(7), 5000))["macro_auc"] == pytest.approx(0.5, abs=0.03)


def test_runs_are_ranked_by_validation_accuracy(tmp_path):
    from emotion_batch.training.runs import list_runs

    for name, acc in [("a_adam_gray_64_none", 0.41), ("b_sgd_gray_64_none", 0.63), ("c_rmsprop_gray_32_weights", 0.55)]:
        run = tmp_path / name
        run.mkdir()
        (run / "state.json").write_text(json.dumps({"best_val_accuracy": acc, "best_epoch": 3, "epoch": 5, "done": True}))
        (run / "config.json").write_text(json.dumps({"model": name[0], "optimizer": name.split("_")[1], "epochs": 5}))
    ranked = list_runs(tmp_path)
    assert [r["run"] for r in ranked] == ["b_sgd_gray_64_none", "c_rmsprop_gray_32_weights", "a_adam_gray_64_none"]
    assert ranked[0]["optimizer"] == "sgd" and ranked[0]["done"] is True


def test_models_command_shows_the_best_and_the_worst_runs(tmp_path):
    from click.testing import CliRunner

    from emotion_batch.cli import cli

    for i, acc in enumerate([0.41, 0.63, 0.55, 0.50, 0.60]):
        run = tmp_path / f"run{i}"
        run.mkdir()
        (run / "state.json").write_text(json.dumps({"best_val_accuracy": acc, "best_epoch": i + 1, "epoch": 9,
                                                    "done": i != 4}))
    result = CliRunner().invoke(cli, ["models", "--runs", str(tmp_path), "--top", "2"])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == ["rank  val acc      epoch  run",
                                          "   1   0.6300     2/9     run1",
                                          "   2   0.6000     5/9     run4  (unfinished)",
                                          "   ...",
                                          "   4   0.5000     4/9     run3",
                                          "   5   0.4100     1/9     run0"]
    every = CliRunner().invoke(cli, ["models", "--runs", str(tmp_path), "--top", "3"]).output.splitlines()
    assert [line.split()[0] for line in every[1:]] == ["1", "2", "3", "4", "5"]
    none = CliRunner().invoke(cli, ["models", "--runs", str(tmp_path / "none")])
    assert none.exit_code == 1 and "No training runs" in none.output


@pytest.mark.parametrize("fmt, tolerance", [("savedmodel", 1e-5), ("tflite", 1e-5), ("tflite-quant", 2e-2)])
def test_exports_match_the_keras_model(tmp_path, tiny_model_file, fmt, tolerance):
    import keras

    from emotion_batch.training.export import export_model, savedmodel_predict, tflite_predict

    model = keras.models.load_model(tiny_model_file, compile=False)
    faces = np.random.default_rng(0).integers(0, 256, (16, 48, 48, 1)).astype(np.float32)
    expected = model.predict(faces, verbose=0)
    path = export_model(model, tmp_path, name="tiny", fmt=fmt)
    got = savedmodel_predict(path, faces) if fmt == "savedmodel" else tflite_predict(path, faces)
    assert got.shape == (16, 7)
    np.testing.assert_allclose(got, expected, atol=tolerance)


def test_export_model_command_prints_one_line_per_export(tmp_path, tiny_model_file):
    from click.testing import CliRunner

    from emotion_batch.cli import cli

    out = tmp_path / "export"
    result = CliRunner().invoke(cli, ["export-model", "--model", str(tiny_model_file), "--out", str(out),
                                      "--format", "tflite", "--format", "tflite-quant"])
    assert result.exit_code == 0, result.output
    name = tiny_model_file.stem
    assert result.output.splitlines() == [f"emotion-batch: tflite: {out / (name + '.tflite')}",
                                          f"emotion-batch: tflite-quant: {out / (name + '.quant.tflite')}"]
    assert (out / f"{name}.tflite").stat().st_size > 0


def test_evaluate_command_reports_the_metrics_it_computes(tmp_path, tiny_model_file):
    import keras
    from click.testing import CliRunner

    from emotion_batch.cli import cli
    from emotion_batch.training.data import load_fer2013

    data = fake_fer(tmp_path, n_per_split=28)
    out = tmp_path / "eval"
    result = CliRunner().invoke(cli, ["evaluate", "--model", str(tiny_model_file), "--data", str(data), "--out", str(out)])
    assert result.exit_code == 0, result.output
    written = json.loads((out / "evaluation.json").read_text())
    faces = load_fer2013(data, split="test")
    model = keras.models.load_model(tiny_model_file, compile=False)
    expected = classification_report(faces.y, model.predict(faces.x.astype("float32"), verbose=0))
    assert written["n"] == 28
    assert written["accuracy"] == pytest.approx(expected["accuracy"])
    assert written["confusion_matrix"] == expected["confusion_matrix"]
    assert f"accuracy {expected['accuracy']:.4f}" in result.output
    assert (out / "evaluation.pdf").read_bytes().startswith(b"%PDF")
    assert "Confusion matrix" in (out / "evaluation.html").read_text()
    # calibration: the ECE of the same probabilities, and the reliability diagram beside the ROC curves
    assert written["calibration"]["ece"] == pytest.approx(expected["calibration"]["ece"])
    assert written["calibration"]["count"] == expected["calibration"]["count"]
    assert "Reliability diagram" in (out / "evaluation.html").read_text()


def test_evaluate_scores_a_model_against_the_labels_it_answers_in(tmp_path):
    from click.testing import CliRunner

    from emotion_batch.classifier import bundled_models
    from emotion_batch.cli import cli
    from emotion_batch.training.data import load_fer2013
    from emotion_batch.training.evaluate import model_labels

    manifest = bundled_models()
    plus = next(n for n, e in manifest["models"].items() if e.get("labels") == "ferplus-majority")
    original = next(n for n, e in manifest["models"].items() if "labels" not in e)
    assert model_labels(f"{plus}@{manifest['models'][plus]['sha256'][:12]}") == "ferplus-majority"
    assert model_labels(f"{original}@{manifest['models'][original]['sha256'][:12]}") == "original"
    assert model_labels("private@0123456789ab") == "original"  # a file outside the manifest
    data = fake_ferplus(fake_fer(tmp_path, n_per_split=28), n_per_split=28)
    majority = load_fer2013(data, split="test", labels="ferplus-majority")
    assert len(majority) < 28  # rows without a clear FER+ majority are left out
    for labels, expected_n in (("auto", len(majority)), ("original", 28)):
        out = tmp_path / labels
        result = CliRunner().invoke(cli, ["evaluate", "--model", plus, "--data", str(data), "--labels", labels,
                                          "--out", str(out)])
        assert result.exit_code == 0, result.output
        assert json.loads((out / "evaluation.json").read_text())["n"] == expected_n
        assert f"({'ferplus-majority' if labels == 'auto' else 'original'} labels)" in result.output


def test_share_statistics_are_measured_on_publictest_through_the_job_classifier(tmp_path, tiny_classifier):
    from emotion_batch.aggregate.quantify import ConfusionStats
    from emotion_batch.training.data import load_fer2013
    from emotion_batch.training.share_stats import STATS_SPLIT, classifier_statistics, write_model_statistics

    assert STATS_SPLIT == "valid"  # PublicTest: PrivateTest stays the untouched test split
    data = fake_fer(tmp_path, n_per_split=28)
    faces = load_fer2013(data, split=STATS_SPLIT)
    entry = classifier_statistics(tiny_classifier, faces, file_name="tiny.keras")
    expected = classification_report(faces.y, tiny_classifier.predict(faces.x))
    assert entry["model_id"] == tiny_classifier.model_id and entry["backend"] == "keras"
    assert entry["confusion"] == expected["confusion_matrix"]
    assert entry["counts"] == [4] * len(EMOTIONS)
    path = write_model_statistics(tmp_path / "tiny.shares.json", name="tiny", entries=[entry], data="fake",
                                  command="test")
    document = json.loads(path.read_text())
    stats = ConfusionStats.from_dict(document["files"][0])
    assert np.allclose(stats.mean_probabilities.sum(axis=1), 1.0, atol=1e-5)
    assert document["classes"] == list(EMOTIONS) and document["format"] == 1


def test_share_statistics_file_is_named_after_the_model_and_names_its_split(tmp_path):
    from emotion_batch.aggregate.correction import SHARES_SUFFIX
    from emotion_batch.training.share_stats import save_statistics

    path = save_statistics(tmp_path, name="tiny", entries=[], faces=28, command="test")
    assert path == tmp_path / f"tiny{SHARES_SUFFIX}"
    document = json.loads(path.read_text())
    assert document["data"] == "FER2013 PublicTest (28 faces, original labels)" and document["model"] == "tiny"
    assert document["command"] == "test" and document["files"] == []


def test_model_stats_command_is_there_and_needs_the_data_folder(tmp_path):
    from click.testing import CliRunner

    from emotion_batch.cli import cli

    runner = CliRunner()
    shown = runner.invoke(cli, ["model-stats", "--help"])
    assert shown.exit_code == 0 and "PublicTest" in shown.output and "shares.json" in shown.output
    missing = runner.invoke(cli, ["model-stats", "vgg_gap_small_v1", "--data", str(tmp_path / "none")])
    assert missing.exit_code == 2 and "does not exist" in missing.output


def _affine_fits(before: np.ndarray, after: np.ndarray) -> list[tuple[float, float]]:
    """For the face ``before`` and then its mirror image: the share of ``after``'s pixels that a straight
    line (refitted on the best-fitting pixels: erased ones are outliers) maps from it, and that line's slope."""
    fits = []
    for source in (before.ravel(), before[:, ::-1].ravel()):
        inliers = np.ones(source.size, bool)
        for _ in range(3):
            a, b = np.polyfit(source[inliers], after.ravel()[inliers], 1)
            residual = np.abs(a * source + b - after.ravel())
            inliers = residual <= np.percentile(residual, 60)
        fits.append((float(np.mean(residual < 0.5)), float(a)))
    return fits


def _unresampled(before: np.ndarray, after: np.ndarray) -> float:
    """The share of an augmented face's pixels that are an affine function of the same (or the mirrored)
    pixels of the face before: contrast, brightness and flips keep that, a rotation, shift or zoom does not
    (it resamples); random erasing replaces at most a fifth of the face."""
    return max(share for share, _ in _affine_fits(before, after))


@pytest.mark.parametrize("pipeline", ["tf.data", "numpy"])
@pytest.mark.parametrize("share", [0.0, 0.5, 1.0])
def test_geometric_share_leaves_the_rest_of_the_faces_unresampled(share, pipeline):
    """``--geometric-share``: only that share of the training faces is rotated, shifted or zoomed (each
    resampled, so blurred); the rest keep their own pixels, as the test crops do. The same for the tf.data
    augmenter and the NumPy one that the other Keras backends use."""
    from emotion_batch.training.fit import augment_numpy, make_augmenter

    rng = np.random.default_rng(0)
    faces = rng.uniform(100, 150, (64, 48, 48, 1)).astype(np.float32)  # noise: no resampling leaves it affine
    if pipeline == "tf.data":
        import tensorflow as tf

        out, _, _ = make_augmenter(7, share)(tf.constant(faces), tf.zeros((64, 7)), tf.ones(64))
        out = out.numpy()
    else:
        out = augment_numpy(faces, np.random.default_rng(7), share)
    kept = np.array([_unresampled(f[..., 0], o[..., 0]) >= 0.75 for f, o in zip(faces, out)])
    expected = {0.0: 64, 1.0: 0}.get(share)
    if expected is not None:
        assert kept.sum() == expected
    else:
        assert 16 <= kept.sum() <= 48  # about half
    with pytest.raises(ConfigError):
        TrainConfig(data="x", geometric_share=1.5).validate()


def test_numpy_resampling_matches_scipy_with_mirrored_edges():
    """The NumPy augmenter's bilinear sampling is SciPy's ``map_coordinates(order=1, mode="mirror")``, also
    for positions far outside the face."""
    from scipy import ndimage

    from emotion_batch.training.fit import _bilinear_mirror

    rng = np.random.default_rng(3)
    faces = rng.uniform(0, 255, (5, 12, 9, 2)).astype(np.float32)
    rows = rng.uniform(-15, 27, (5, 12, 9)).astype(np.float32)
    cols = rng.uniform(-15, 24, (5, 12, 9)).astype(np.float32)
    got = _bilinear_mirror(faces, rows, cols)
    sample = np.broadcast_to(np.arange(5, dtype=np.float32)[:, None, None], rows.shape)
    for ch in range(2):
        want = ndimage.map_coordinates(faces[..., ch], [sample, rows, cols], order=1, mode="mirror")
        np.testing.assert_allclose(got[..., ch], want, atol=1e-3)


def test_numpy_augmenter_mirrors_recolours_and_erases_like_the_tf_one():
    """Without resampling (share 0) each augmented face is its own pixels or their mirror image, recoloured
    (contrast 0.7-1.3), with at most a fifth of the area replaced by noise in about half the faces; the same
    generator seed gives the same batch."""
    from emotion_batch.training.fit import augment_numpy

    rng = np.random.default_rng(1)
    faces = rng.uniform(60, 190, (200, 20, 20, 1)).astype(np.uint8)
    out = augment_numpy(faces, np.random.default_rng(5), 0.0)
    assert out.dtype == np.float32 and out.shape == faces.shape and out.min() >= 0 and out.max() <= 255
    np.testing.assert_array_equal(out, augment_numpy(faces, np.random.default_rng(5), 0.0))
    assert not np.array_equal(out, augment_numpy(faces, np.random.default_rng(6), 0.0))
    mirrored, erased = 0, 0
    for face, got in zip(faces.astype(np.float64), out.astype(np.float64)):
        fits = _affine_fits(face[..., 0], got[..., 0])
        (plain, _), (flip, _) = fits
        share, slope = max(fits)
        assert share >= 0.78, "an unresampled face is an affine function of itself or its mirror image"
        assert 0.65 <= slope <= 1.35
        mirrored += flip > plain
        erased += share < 0.999
    assert 60 <= mirrored <= 140 and 60 <= erased <= 140  # about half each


def test_training_on_the_numpy_batches_writes_the_same_run(tmp_path, monkeypatch):
    """The input pipeline of the other Keras backends (a ``PyDataset``), run here under TensorFlow: every
    face once per epoch in a new order, and a training run on it writes its history, the weight average's
    validation and the checkpoints, as the tf.data pipeline does."""
    from emotion_batch.training import fit

    data = fake_fer(tmp_path)
    faces = fit.load_fer2013(data, split="train")
    batches = fit.make_array_batches(faces, batch_size=16, training=True, augment=True, weights=None, seed=3)
    first = np.concatenate([batches[i][1].argmax(axis=1) for i in range(len(batches))])
    batches.on_epoch_end()
    second = np.concatenate([batches[i][1].argmax(axis=1) for i in range(len(batches))])
    assert len(batches) == 4 and sorted(first) == sorted(faces.y) == sorted(second)
    assert not np.array_equal(batches.order, np.arange(len(faces)))
    x, y, w = batches[0]
    assert x.dtype == np.float32 and x.shape == (16, 48, 48, 1) and y.shape == (16, 7) and np.all(w == 1)
    np.testing.assert_array_equal(batches[0][0], x)  # a batch is the same whichever thread asks for it
    valid = fit.make_array_batches(faces, batch_size=50, training=False, augment=False, weights=None)
    np.testing.assert_array_equal(np.concatenate([valid[i][0] for i in range(len(valid))]), faces.x.astype(np.float32))

    monkeypatch.setattr(fit, "make_dataset", fit.make_array_batches)
    state = train(TrainConfig(data=str(data), model="tiny_test", epochs=2, batch_size=32, ema=0.9, name="np"),
                  runs_dir=tmp_path / "runs", verbose=0)
    history = json.loads((tmp_path / "runs" / "np" / "history.json").read_text())
    assert [h["epoch"] for h in history] == [1, 2] and all("ema_val_accuracy" in h for h in history)
    assert state["done"] and (tmp_path / "runs" / "np" / "best.weights.h5").is_file()


def test_the_last_epoch_is_loaded_as_its_weight_average(tmp_path):
    """``load_last`` (``bundle --checkpoint last``): the last epoch's weights, averaged where the run kept a
    moving average, on a fresh model without optimizer state; the raw weights where it kept none."""
    import keras

    from emotion_batch.training.fit import load_best, load_last

    data = fake_fer(tmp_path)
    base = dict(data=str(data), model="tiny_test", epochs=2, batch_size=32, augment=False, schedule="constant")
    averaged = train(TrainConfig(**base, ema=0.5, name="ema"), runs_dir=tmp_path / "runs", verbose=0)
    plain = train(TrainConfig(**base, name="plain"), runs_dir=tmp_path / "runs", verbose=0)
    x = np.random.default_rng(0).uniform(0, 255, (6, 48, 48, 1)).astype(np.float32)

    trained = keras.models.load_model(tmp_path / "runs" / "ema" / "last.keras")
    raw = trained.predict(x, verbose=0)
    trained.optimizer.finalize_variable_values(trained.trainable_variables)
    model = load_last(averaged["run_dir"])
    assert getattr(model, "optimizer", None) is None
    np.testing.assert_allclose(model.predict(x, verbose=0), trained.predict(x, verbose=0), atol=1e-6)
    assert not np.allclose(model.predict(x, verbose=0), raw, atol=1e-4)  # the average, not the raw weights

    last_plain = keras.models.load_model(tmp_path / "runs" / "plain" / "last.keras")
    np.testing.assert_allclose(load_last(plain["run_dir"]).predict(x, verbose=0), last_plain.predict(x, verbose=0), atol=1e-6)
    assert load_best(plain["run_dir"]) is not None
    # a run saved under another backend whose optimizer class is its own (PyTorch's): a clear refusal
    import zipfile

    saved = tmp_path / "runs" / "ema" / "last.keras"
    with zipfile.ZipFile(saved) as z:
        files = {name: z.read(name) for name in z.namelist()}
    config = json.loads(files["config.json"])
    config["compile_config"]["optimizer"]["module"] = "keras.src.backend.torch.optimizers.torch_sgd"
    files["config.json"] = json.dumps(config).encode()
    with zipfile.ZipFile(saved, "w") as z:
        for name, content in files.items():
            z.writestr(name, content)
    with pytest.raises(ConfigError, match="does not load under the tensorflow backend.*--checkpoint best"):
        load_last(averaged["run_dir"])
    (tmp_path / "runs" / "plain" / "last.keras").unlink()
    with pytest.raises(ConfigError, match="no last.keras"):
        load_last(plain["run_dir"])
