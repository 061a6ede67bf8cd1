"""Training and serving must feed the model the same bytes for the same face."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from emotion_batch.exceptions import ConfigError
from emotion_batch.pipeline import RunOptions, Task, _init_worker, analyse
from emotion_batch.discover import Candidate
from emotion_batch.faces import Face
from emotion_batch.preprocess import (CropContract, crop_contract, crop_frame, eye_angle, face_frame, face_to_tensor,
                                      faces_to_tensors)
from emotion_batch.training.data import load_fer2013

from .conftest import write_fer_csv


@pytest.mark.parametrize("size, channels", [(48, 1), (64, 1), (48, 3)])
def test_training_and_serving_give_the_same_tensor(tmp_path, size, channels):
    rng = np.random.default_rng(0)
    faces = [rng.integers(0, 256, (48, 48), dtype=np.uint8) for _ in range(4)]  # noise: every grey level
    write_fer_csv(tmp_path, [(i % 7, face, "PrivateTest") for i, face in enumerate(faces)])
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


def test_contract_maps_a_box_to_its_frame():
    contract = CropContract(scale=1.2, dx=0.1, dy=-0.05)
    face = Face(100.0, 50.0, 40.0, 40.0, 0.9)  # box centre (120, 70), side 40
    cx, cy, side, angle = face_frame(face, contract)
    assert (round(cx, 6), round(cy, 6), round(side, 6), angle) == (124.0, 68.0, 48.0, 0.0)
    # a face turned 90 degrees clockwise (eyes one above the other): the offset turns with it
    turned = Face(100.0, 50.0, 40.0, 40.0, 0.9, eyes=(120.0, 60.0, 120.0, 80.0))
    cx, cy, side, angle = face_frame(turned, contract)
    assert angle == 90.0 and side == 48.0
    assert (round(cx, 6), round(cy, 6)) == (round(120 + 0.05 * 40, 6), round(70 + 0.1 * 40, 6))
    assert face_frame(turned, contract, level=False)[3] == 0.0
    # a non-square box: its side is the geometric mean
    assert face_frame(Face(0.0, 0.0, 20.0, 80.0, 1.0), CropContract(1.0))[2] == 40.0
    assert crop_contract("blazeface") != crop_contract("mtcnn")
    assert crop_contract("some-plugin").scale == 1.4  # the old 20 % margin for a detector never fitted


def test_eye_angle_signs():
    assert eye_angle(None) == 0.0
    assert eye_angle((0, 0, 10, 0)) == 0.0
    assert round(eye_angle((0, 0, 10, 10)), 6) == 45.0  # right eye lower: turned clockwise on screen
    assert round(eye_angle((0, 0, 10, -10)), 6) == -45.0


def _pattern(side=200):
    """A face-like test card: two dark eyes on a light face, a bar for the mouth, a mark at the top left."""
    img = np.full((side, side), 200, np.uint8)
    img[70:90, 55:80] = 20    # the image-left eye, centre (67.5, 80)
    img[70:90, 120:145] = 20  # the image-right eye, centre (132.5, 80)
    img[140:150, 70:130] = 60  # mouth
    img[20:40, 20:40] = 0
    return img


def test_levelling_undoes_a_turn_of_the_face(monkeypatch):
    from emotion_batch import preprocess

    monkeypatch.setitem(preprocess.CROP_CONTRACTS, "test", CropContract(1.0))
    card = _pattern()
    frame = (100.0, 100.0, 160.0, 0.0)
    upright = crop_frame(card, frame, size=48, channels=1).astype(int)
    for degrees in (-25, -10, 15, 25):
        turned = np.asarray(Image.fromarray(card).rotate(degrees, Image.Resampling.BILINEAR, center=(100, 100),
                                                         fillcolor=200))
        # where the eyes went (PIL turns counter-clockwise on screen: y flips sign)
        t = np.radians(degrees)
        def moved(x, y):
            return (100 + (x - 100) * np.cos(t) + (y - 100) * np.sin(t), 100 - (x - 100) * np.sin(t) + (y - 100) * np.cos(t))
        eyes = (*moved(67.5, 80), *moved(132.5, 80))
        face = Face(20.0, 20.0, 160.0, 160.0, 0.9, eyes=tuple(float(v) for v in eyes))
        assert round(eye_angle(face.eyes), 3) == -degrees
        levelled = faces_to_tensors(turned, [face], detector="test", size=48, channels=1)[0].astype(int)
        plain = faces_to_tensors(turned, [face], detector="test", size=48, channels=1, level=False)[0].astype(int)
        error_levelled = np.abs(levelled - upright)[4:-4, 4:-4].mean()  # corners hold the fill
        error_plain = np.abs(plain - upright)[4:-4, 4:-4].mean()
        assert error_levelled < 6, (degrees, error_levelled)
        assert error_plain > 3 * error_levelled, (degrees, error_plain, error_levelled)


def test_frames_past_the_edge_are_padded_and_none_means_the_whole_crop():
    card = _pattern()
    out = crop_frame(card, (0.0, 0.0, 100.0, 0.0), size=50, channels=1)
    assert out.shape == (50, 50, 1)
    assert (out[:20, :20] == card[0, 0]).all()  # beyond the top-left corner: the corner pixel repeated
    tilted = crop_frame(card, (10.0, 10.0, 100.0, 30.0), size=48, channels=3)
    assert tilted.shape == (48, 48, 3)
    whole = faces_to_tensors(card, [Face(0, 0, 200, 200, 1.0)], detector="none", size=48, channels=1)
    np.testing.assert_array_equal(whole[0], face_to_tensor(card, None, size=48, channels=1))
    with pytest.raises(ConfigError, match="outside the image"):
        crop_frame(card, (900.0, 900.0, 50.0, 0.0), size=48, channels=1)
