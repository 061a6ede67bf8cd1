"""The classifier's two backends: the bundled int8 LiteRT file agrees with its Keras model, a face's
probabilities do not depend on its batch, the backend is chosen as documented and hashes are checked."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from emotion_batch.classifier import (
    Classifier, LiteRTClassifier, bundled_models, choose_backend, load_classifier, locate_model,
)
from emotion_batch.exceptions import ConfigError, ModelError
from emotion_batch.labels import EMOTIONS
from emotion_batch.training.evaluate import MAX_QUANT_LOSS

from .conftest import FER_DIR, fake_fer


def _faces(n: int, seed: int = 0) -> np.ndarray:
    """Real faces (the sample's public-domain portraits), boxes jittered, flipped, brightness scaled."""
    from emotion_batch.preprocess import face_to_tensor
    from emotion_batch.sample import _FACES, head

    rng = np.random.default_rng(seed)
    heads = {name: np.asarray(head(name)) for name in _FACES}
    out = []
    for i in range(n):
        name = list(heads)[i % len(heads)]
        x, y, w, h = _FACES[name]
        dx, dy, ds = rng.uniform(-0.1, 0.1, 3) * w
        face = face_to_tensor(heads[name], (x + dx, y + dy, w + ds, h + ds), size=48, channels=1)
        face = np.clip(face.astype(np.float32) * rng.uniform(0.6, 1.3), 0, 255).astype(np.uint8)
        out.append(face[:, ::-1] if rng.random() < 0.5 else face)
    return np.stack(out)


def _one_pixel_over(faces: np.ndarray) -> np.ndarray:
    """The faces moved one pixel to the right, the first column repeated."""
    return np.concatenate([faces[:, :, :1], faces[:, :, :-1]], axis=2)


def _bundled_pair():
    entry = bundled_models()["models"][bundled_models()["default"]]
    if "litert" not in entry:
        pytest.skip("the bundled default model ships no LiteRT file")
    return Classifier.load(None), load_classifier(None, backend="litert")


def test_bundled_litert_file_agrees_with_its_keras_model():
    keras_clf, lite = _bundled_pair()
    assert isinstance(lite, LiteRTClassifier) and lite.backend == "litert" and lite.device == "CPU"
    assert (lite.size, lite.channels) == (keras_clf.size, keras_clf.channels)
    # the two files of one bundled model share its name; the digest says which file made a number
    assert lite.model_id.split("@")[0] == keras_clf.model_id.split("@")[0]
    assert lite.model_id != keras_clf.model_id
    faces = _faces(300)
    if FER_DIR.is_dir():  # real faces from the validation split too, when the shared data is here
        from emotion_batch.training.data import load_fer2013

        faces = np.concatenate([faces, load_fer2013(FER_DIR, split="valid", limit=300).x])
    expected, got = keras_clf.predict(faces), lite.predict(faces)
    assert got.shape == expected.shape == (len(faces), len(EMOTIONS))
    np.testing.assert_allclose(got.sum(axis=1), 1.0, atol=1e-4)
    # the model card: the LiteRT file was bundled because it lost at most MAX_QUANT_LOSS of PrivateTest accuracy
    entry = bundled_models()["models"][bundled_models()["default"]]
    assert entry["test_accuracy"] - entry["litert"]["test_accuracy"] <= MAX_QUANT_LOSS
    # int8 weights move the probabilities far less than the model itself moves them for the same faces one
    # pixel over (a crop that close is the same face): a yardstick of this model, not of today's numbers.
    # (vgg_gap_small_v1 on these 600 faces: max 0.028, mean 0.0015, 1.0 % other top class; one pixel over:
    # 0.31, 0.016, 9 %.)
    shifted = keras_clf.predict(_one_pixel_over(faces))
    quantized, moved = np.abs(got - expected), np.abs(shifted - expected)
    assert quantized.max() < moved.max() / 4
    assert quantized.mean() < moved.mean() / 4
    assert (got.argmax(1) != expected.argmax(1)).mean() <= (shifted.argmax(1) != expected.argmax(1)).mean() / 3


def test_a_faces_probabilities_do_not_depend_on_its_batch(tiny_model_file, tmp_path):
    import keras

    from emotion_batch.training.export import export_model

    path = export_model(keras.models.load_model(tiny_model_file, compile=False), tmp_path, name="tiny", fmt="tflite-quant")
    clf = LiteRTClassifier(path, model_id="tiny@x", batch_size=64)
    faces = np.random.default_rng(1).integers(0, 256, (100, 48, 48, 1)).astype(np.uint8)
    faces[1:] //= 4  # the other faces of the batch are much darker
    together = clf.predict(faces)  # two chunks: 64 + 36, the interpreter resized in between
    alone = np.concatenate([clf.predict(faces[i : i + 1]) for i in (0, 70, 99)])
    np.testing.assert_array_equal(together[[0, 70, 99]], alone)
    again = clf.predict(faces)
    np.testing.assert_array_equal(again, together)
    with pytest.raises(ConfigError, match=r"faces must have shape \(n, 48, 48, 1\)"):
        clf.predict(np.zeros((2, 64, 64, 1), np.uint8))
    # a batch of 256 is run as model calls of at most MAX_ROWS faces, with the same probabilities
    wide = LiteRTClassifier(path, model_id="tiny@x", batch_size=256)
    many = np.concatenate([faces, faces, faces[:56]])  # 256 faces
    np.testing.assert_array_equal(wide.predict(many)[[0, 170, 255]], together[[0, 70, 55]])
    assert max(wide._by_rows) == LiteRTClassifier.MAX_ROWS < 256


def test_backend_choice(monkeypatch, tmp_path):
    import emotion_batch.classifier as classifier

    real_gpu_visible = classifier.gpu_visible
    keras_only, both, tflite = {"keras"}, {"keras", "litert"}, {"litert"}  # the backends a model has a file for
    monkeypatch.setattr(classifier, "gpu_visible", lambda: False)
    assert choose_backend(both) == "litert" and choose_backend(keras_only) == "keras"
    assert choose_backend(tflite) == "litert" and choose_backend(both, "keras") == "keras"
    monkeypatch.setattr(classifier, "gpu_visible", lambda: True)
    assert choose_backend(both) == "keras"  # a GPU runs the Keras file
    assert choose_backend(both, "litert") == "litert"
    assert choose_backend(both, gpu=False) == "litert" and choose_backend(keras_only, gpu=False) == "keras"
    monkeypatch.setattr(classifier, "gpu_visible", lambda: False)
    assert choose_backend(both, gpu=True) == "keras"  # Ray actors given a GPU share, whatever this machine has
    with pytest.raises(ConfigError, match="needs a bundled model with a LiteRT file"):
        choose_backend(keras_only, "litert")
    with pytest.raises(ConfigError, match="runs on the litert backend only"):
        choose_backend(tflite, "keras")
    with pytest.raises(ConfigError, match=r"backend must be one of \['auto', 'keras', 'litert'\]"):
        choose_backend(both, "onnx")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "-1")
    assert real_gpu_visible() is False


def test_a_tflite_file_is_checked_against_its_hash(tiny_model_file, tmp_path):
    import keras

    from emotion_batch.classifier import sha256_file
    from emotion_batch.training.export import export_model

    path = export_model(keras.models.load_model(tiny_model_file, compile=False), tmp_path, name="tiny", fmt="tflite-quant")
    good = sha256_file(path)
    clf = load_classifier(str(path), sha256=good)
    assert isinstance(clf, LiteRTClassifier) and clf.model_id == f"tiny.quant@{good[:12]}"
    with pytest.raises(ModelError, match="does not match its recorded sha256"):
        load_classifier(str(path), sha256="0" * 64)
    broken = tmp_path / "broken.tflite"
    broken.write_bytes(b"not a flatbuffer")
    with pytest.raises(ModelError, match="could not be loaded.*broken.tflite"):
        load_classifier(str(broken))


@pytest.mark.slow
@pytest.mark.parametrize("max_loss, bundled", [(1.0, True), (-1.0, False)])
def test_bundle_writes_the_quantized_file_with_its_own_metrics(tmp_path, max_loss, bundled):
    from emotion_batch.reports.methodology import model_reliability
    from emotion_batch.training.evaluate import bundle_run
    from emotion_batch.training.fit import TrainConfig, train

    data = fake_fer(tmp_path, n_per_split=28)
    state = train(TrainConfig(data=str(data), model="tiny_test", epochs=1, batch_size=32, augment=False),
                  runs_dir=tmp_path / "runs", verbose=0)
    models = tmp_path / "models"
    metrics = bundle_run(state["run_dir"], data=data, models_dir=models, name="tiny_v1", command="cmd",
                         max_quant_loss=max_loss)
    manifest = json.loads((models / "manifest.json").read_text())
    entry = manifest["models"]["tiny_v1"]
    card = (models / "tiny_v1.md").read_text()
    assert manifest["default"] == "tiny_v1" and entry["test_accuracy"] == round(metrics["accuracy"], 4)
    if not bundled:  # it lost more than allowed: no file, no entry, the card says the job runs Keras
        assert "litert" not in entry and not (models / "tiny_v1.quant.tflite").exists()
        assert "No quantized LiteRT file is bundled" in card
        return
    from emotion_batch.classifier import sha256_file

    quant = models / entry["litert"]["file"]
    assert entry["litert"]["sha256"] == sha256_file(quant)
    assert set(entry["litert"]["per_class"]) == set(EMOTIONS)
    assert entry["litert"]["sha256"] in card and "The LiteRT file the job runs on CPUs" in card
    # what the LiteRT file measured is what the reports' appendix shows for faces it classified
    lite_id = f"tiny_v1@{entry['litert']['sha256'][:12]}"
    keras_id = f"tiny_v1@{entry['sha256'][:12]}"
    lite, keras_rel = model_reliability([lite_id, keras_id], manifest)
    assert lite.known and keras_rel.known
    assert lite.accuracy == entry["litert"]["test_accuracy"] and keras_rel.accuracy == entry["test_accuracy"]
    # a copy of the bundle elsewhere resolves by path, and its LiteRT file runs
    copy = tmp_path / "copy.quant.tflite"
    shutil.copy(quant, copy)
    assert load_classifier(str(copy)).predict(_faces(3)).shape == (3, 7)


def test_the_job_on_litert_stores_its_model_id_and_never_imports_tensorflow(tmp_path):
    import subprocess
    import sys

    from PIL import Image
    from sqlalchemy import create_engine, text

    from .conftest import ROOT

    _, lite = _bundled_pair()
    root = tmp_path / "campaigns" / "spring" / "banner"
    root.mkdir(parents=True)
    faces = _faces(12)
    for i, face in enumerate(faces):
        Image.fromarray(face[:, :, 0]).save(root / f"face_{i}.png")
    db = tmp_path / "results.sqlite"
    code = ("import sys; from emotion_batch.cli import cli\n"
            f"cli(['run', {str(tmp_path / 'campaigns')!r}, '--db', 'sqlite:///{db}', '--detector', 'none', "
            "'--no-reports', '-q', '--workers', '0'], standalone_mode=False)\n"
            "print('tensorflow imported:', 'tensorflow' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "tensorflow imported: False" in done.stdout
    with create_engine(f"sqlite:///{db}").connect() as conn:
        rows = conn.execute(text("SELECT image_path, model_id, p_happy FROM face_results")).all()
    assert len(rows) == 12 and {r.model_id for r in rows} == {lite.model_id}
    expected = lite.predict(faces)[:, EMOTIONS.index("happy")]
    stored = {int(r.image_path.rsplit("_", 1)[1].split(".")[0]): r.p_happy for r in rows}
    np.testing.assert_allclose([stored[i] for i in range(12)], expected, atol=1e-6)


def test_the_api_card_of_the_litert_file_shows_its_own_metrics():
    from emotion_batch.serve.inference import model_card

    keras_clf, lite = _bundled_pair()
    entry = bundled_models()["models"][bundled_models()["default"]]
    lite_card, keras_card = model_card(lite, "blazeface"), model_card(keras_clf, "blazeface")
    assert lite_card["bundled"] is True and keras_card["bundled"] is True
    assert lite_card["test_accuracy"] == entry["litert"]["test_accuracy"]
    assert keras_card["test_accuracy"] == entry["test_accuracy"]
    assert lite_card["device"] == "CPU" and lite_card["card"] == keras_card["card"]
    # both files say whether the job mirrors the doubtful faces (the manifest's flip gate)
    gate = (entry.get("flip_gate") or {}).get("below")
    assert lite_card["flip_gate"] == keras_card["flip_gate"] == gate


def test_flip_averaging_is_the_mean_of_a_face_and_its_mirror_and_survives_save_and_export(tmp_path, tiny_model_file):
    import keras

    from emotion_batch.training.export import export_model
    from emotion_batch.model_layers import with_flip_averaging

    single = keras.models.load_model(tiny_model_file, compile=False)
    wrapped = with_flip_averaging(single)
    faces = np.random.default_rng(2).integers(0, 256, (8, 48, 48, 1)).astype(np.float32)
    expected = (single.predict(faces, verbose=0) + single.predict(faces[:, :, ::-1], verbose=0)) / 2
    np.testing.assert_allclose(wrapped.predict(faces, verbose=0), expected, atol=1e-6)
    assert not np.allclose(single.predict(faces, verbose=0), expected, atol=1e-4)  # the mirror does count
    path = tmp_path / "tta.keras"
    wrapped.save(path)
    loaded = Classifier.load(str(path), batch_size=4)  # the registered layer loads with the file
    np.testing.assert_allclose(loaded.predict(faces.astype(np.uint8)), expected, atol=1e-5)
    quant = export_model(wrapped, tmp_path, name="tta", fmt="tflite-quant")
    np.testing.assert_allclose(LiteRTClassifier(quant, model_id="tta@x").predict(faces.astype(np.uint8)), expected,
                               atol=2e-2)
