"""The production paths the README documents besides our own API: the TF Serving request example against the
SavedModel export's signature, and the LiteRT example against a TFLite export. Both must give the Keras
model's probabilities for the same faces."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from emotion_batch.imaging import decode_image
from emotion_batch.labels import EMOTIONS
from emotion_batch.faces import DETECTORS, build_detector
from emotion_batch.preprocess import faces_to_tensors

from .serve_helpers import group_photo

ROOT = Path(__file__).resolve().parent.parent


def _run_example(*args: str) -> str:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2"}
    result = subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env, cwd=ROOT, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


@pytest.fixture(scope="module")
def photo(tmp_path_factory) -> Path:
    data, _ = group_photo(seed=8, faces=2)
    path = tmp_path_factory.mktemp("photo") / "two_faces.jpg"
    path.write_bytes(data)
    return path


@pytest.fixture(scope="module")
def expected(photo, tiny_classifier) -> np.ndarray:
    """What the batch job's default detector and its crop give for the photo: the examples must agree."""
    decoded = decode_image(photo.read_bytes(), name=photo.name)
    detector = build_detector(DETECTORS[0])
    faces = detector.detect(decoded.rgb)
    assert len(faces) == 2
    return tiny_classifier.predict(faces_to_tensors(decoded.rgb, faces, detector=detector.name, size=48, channels=1))


def test_tf_serving_request_example_fits_the_savedmodel_signature(tmp_path, photo, expected, tiny_classifier):
    import tensorflow as tf

    from emotion_batch.training.export import export_model

    path = export_model(tiny_classifier.model, tmp_path, name="tiny", fmt="savedmodel")
    assert path == tmp_path / "tiny" / "1"  # the layout tensorflow/serving expects under /models/<name>
    body = json.loads(_run_example("examples/tf_serving_request.py", str(photo), "--print-body"))
    assert body["signature_name"] == "serving_default" and len(body["instances"]) == 2

    signature = tf.saved_model.load(str(path)).signatures["serving_default"]
    inputs = signature.structured_input_signature[1]
    assert list(inputs) == ["pixels"] and inputs["pixels"].dtype == tf.float32
    assert inputs["pixels"].shape.as_list() == [None, 48, 48, 1]
    assert list(signature.structured_outputs) == ["probabilities"]
    # what TF Serving does with the row format: stack the instances' named input and call the signature
    pixels = tf.constant(np.array([row["pixels"] for row in body["instances"]], dtype=np.float32))
    got = signature(pixels=pixels)["probabilities"].numpy()
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_litert_example_matches_the_keras_model(tmp_path, photo, expected, tiny_classifier):
    pytest.importorskip("ai_edge_litert")
    from emotion_batch.training.export import export_model

    path = export_model(tiny_classifier.model, tmp_path, name="tiny", fmt="tflite")
    faces = json.loads(_run_example("examples/litert_predict.py", str(path), str(photo)))
    assert len(faces) == 2
    got = np.array([[face["probabilities"][k] for k in EMOTIONS] for face in faces])
    np.testing.assert_allclose(got, expected, atol=1e-4)
    assert [f["top_emotion"] for f in faces] == [EMOTIONS[i] for i in expected.argmax(axis=1)]
