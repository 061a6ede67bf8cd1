"""Training and serving must feed the model the same bytes for the same face."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from emotion_batch.exceptions import ConfigError
from emotion_batch.pipeline import RunOptions, Task, _init_worker, analyse
from emotion_batch.discover import Candidate
from emotion_batch.preprocess import face_to_tensor, square_box
from emotion_batch.training.data import load_fer2013


def _fake_fer(folder, rng, n=4):
    rows = ["emotion,pixels,Usage"]
    faces = []
    for i in range(n):
        face = rng.integers(0, 256, (48, 48), dtype=np.uint8)
        faces.append(face)
        rows.append(f"{i % 7},{' '.join(str(v) for v in face.ravel())},PrivateTest")
    (folder / "fer2013.csv").write_text("\n".join(rows) + "\n")
    return faces


@pytest.mark.parametrize("size, channels", [(48, 1), (64, 1), (48, 3)])
def test_training_and_serving_give_the_same_tensor(tmp_path, size, channels):
    faces = _fake_fer(tmp_path, np.random.default_rng(0))
    training = load_fer2013(tmp_path, split="test", size=size, channels=channels)
    # serving: the same face as a PNG file in a campaign folder, through the batch job's worker path
    ad = tmp_path / "root" / "c" / "a"
    ad.mkdir(parents=True)
    Image.fromarray(faces[2]).save(ad / "face.png")
    _init_worker(RunOptions(root=str(tmp_path / "root"), detector="none"), size, channels)
    st = (ad / "face.png").stat()
    outcome = analyse(Task(1, str(tmp_path / "root"), Candidate("c", "a", "c/a/face.png", st.st_size, st.st_mtime_ns), None, None))
    assert outcome.status == "ok" and outcome.tensors.shape == (1, size, size, channels)
    np.testing.assert_array_equal(outcome.tensors[0], training.x[2])


def test_crop_is_square_with_margin_and_edge_padded():
    image = np.zeros((100, 200), dtype=np.uint8)
    image[40:60, 90:110] = 255
    assert square_box((90, 40, 20, 20), margin=0.5, image_width=200, image_height=100) == (80, 30, 120, 70)
    tensor = face_to_tensor(image, (90, 40, 20, 20), size=40, channels=1, margin=0.5)
    assert tensor.shape == (40, 40, 1)
    assert tensor[20, 20, 0] == 255 and tensor[2, 2, 0] == 0  # face in the centre, context around it
    corner = face_to_tensor(image, (0, 0, 30, 30), size=30, channels=1, margin=0.5)
    assert corner.shape == (30, 30, 1)  # the part outside the image is padded, the face stays centred


def test_bad_arguments_name_themselves():
    with pytest.raises(ConfigError, match="channels"):
        face_to_tensor(np.zeros((10, 10), np.uint8), None, size=48, channels=2)
    with pytest.raises(ConfigError, match="Received: box"):
        face_to_tensor(np.zeros((10, 10), np.uint8), (0, 0, 0, 5), size=48, channels=1)
