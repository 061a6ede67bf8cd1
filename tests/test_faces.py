import numpy as np
import pytest
import skimage.data

from emotion_batch.exceptions import ConfigError
from emotion_batch.faces import build_detector
from emotion_batch.faces.base import iou_matrix
from emotion_batch.sample import no_face_photo, synthetic_photo


def test_blazeface_finds_the_astronaut_face(blazeface):
    faces = blazeface.detect(skimage.data.astronaut())
    assert len(faces) == 1
    f = faces[0]
    # her face lies around x 170-280, y 60-180 in the 512x512 photo
    assert iou_matrix(np.array([f.box]), np.array([[175, 70, 100, 105]]))[0, 0] > 0.5
    assert 0.5 < f.score <= 1.0


def _true_faces_found(faces, truth, min_iou: float = 0.3) -> list[int]:
    """For each found face, in the detector's order, the index of the true face it found (each found once)."""
    iou = iou_matrix(np.array([f.box for f in faces]), np.array([t[:4] for t in truth]))
    assert (iou.max(axis=1) >= min_iou).all(), f"a found face is no true face: {iou.max(axis=1)}"
    found = iou.argmax(axis=1).tolist()
    assert sorted(found) == list(range(len(truth))), f"a true face was missed or found twice: {found}"
    return found


@pytest.mark.parametrize("n", [1, 3, 5])
def test_blazeface_finds_every_face_of_group_photos(blazeface, n):
    truth: list = []
    photo = np.asarray(synthetic_photo(np.random.default_rng(n), 1280, 720, n, boxes=truth))
    faces = blazeface.detect(photo)
    assert len(faces) == n
    _true_faces_found(faces, truth)


@pytest.mark.parametrize("name", ["blazeface", "blazeface-dual", "mtcnn", "haar"])
def test_faces_come_left_to_right_then_top_to_bottom(name):
    """``face_index`` is the face's place left to right (then top to bottom), whatever order the detector's
    model gives: two rows of faces, pasted row by row, whose order left to right is another."""
    truth: list = []
    photo = np.asarray(synthetic_photo(np.random.default_rng(11), 1280, 720, 5, boxes=truth))
    left_to_right = sorted(range(len(truth)), key=lambda i: (truth[i][0], truth[i][1]))
    top_to_bottom = sorted(range(len(truth)), key=lambda i: (truth[i][1], truth[i][0]))
    assert left_to_right != list(range(len(truth))) and left_to_right != top_to_bottom  # the check can fail
    xs = sorted(t[0] for t in truth)
    assert min(b - a for a, b in zip(xs, xs[1:])) > 40  # no two faces so close in x that a box's margin decides
    faces = build_detector(name).detect(photo)
    assert _true_faces_found(faces, truth) == left_to_right


def test_blazeface_finds_no_face_in_a_packshot(blazeface):
    assert blazeface.detect(np.asarray(no_face_photo(np.random.default_rng(0), 640, 480))) == []


def test_haar_and_none_detectors():
    photo = skimage.data.astronaut()
    haar = build_detector("haar").detect(photo)
    assert len(haar) >= 1
    # her face lies around x 170-280, y 60-180 in the 512x512 photo: one box on it, none elsewhere
    iou = iou_matrix(np.array([f.box for f in haar]), np.array([[175, 70, 100, 105]]))[:, 0]
    assert iou.max() > 0.5 and (iou > 0.1).sum() == 1 == len(haar)
    whole = build_detector("none").detect(photo)
    assert [(f.x, f.y, f.w, f.h) for f in whole] == [(0, 0, 512, 512)]


def test_haar_finds_the_faces_of_a_group_photo_where_they_are():
    truth: list = []
    photo = np.asarray(synthetic_photo(np.random.default_rng(3), 1280, 720, 3, boxes=truth))
    faces = build_detector("haar").detect(photo)
    assert len(faces) == 3
    _true_faces_found(faces, truth)


def test_unknown_detector_lists_choices():
    with pytest.raises(ConfigError, match="blazeface"):
        build_detector("dlib")


def test_min_face_drops_scales_that_could_only_find_smaller_faces(blazeface):
    quick = build_detector("blazeface", min_face=64)
    assert quick.min_size == 64.0
    assert len(blazeface.views(640, 480)) > 1  # the default also looks at a finer scale, for faces down to 16 px
    assert quick.views(640, 480) == [640]  # the whole view resolves 64 px faces: no finer scale
    assert len(quick.views(1920, 1080)) > 1 and all(side >= 12 * 64 for side in quick.views(1920, 1080)[1:])
    truth: list = []
    photo = np.asarray(synthetic_photo(np.random.default_rng(4), 640, 480, 1, boxes=truth, background="scene"))
    faces = quick.detect(photo)
    assert len(faces) == 1 and truth[0][2] >= 64
    assert iou_matrix(np.array([t[:4] for t in truth]), np.array([f.box for f in faces]))[0, 0] > 0.3


def test_a_small_min_face_searches_finer_scales_and_finds_a_crowd(blazeface):
    truth: list = []
    photo = np.asarray(synthetic_photo(np.random.default_rng(1), 1920, 1080, 60, boxes=truth, background="scene"))
    assert max(np.sqrt(t[2] * t[3]) for t in truth) < 80  # every face under 80 px in a 1920x1080 photo
    fine = build_detector("blazeface", min_face=24)
    coarse_sides, fine_sides = set(blazeface.views(1920, 1080)), set(fine.views(1920, 1080))
    assert fine_sides > coarse_sides and min(fine_sides) >= 12 * 24  # one more level, still resolving 24 px

    def recall(faces):
        iou = iou_matrix(np.array([t[:4] for t in truth]), np.array([f.box for f in faces]))
        return float((iou.max(axis=1) >= 0.3).mean()), int((iou.max(axis=0) < 0.3).sum())

    assert recall(blazeface.detect(photo))[0] < 0.5  # the default's tiles resolve faces of about 64 px
    found, false = recall(fine.detect(photo))
    assert found >= 0.95 and false <= 1
    dual = build_detector("blazeface-dual", min_face=24)
    assert dual.full.fine and not dual.short.fine and dual.min_size == 24.0


@pytest.mark.parametrize("variant, width, height", [("full", 320, 256), ("short", 320, 240)])
def test_a_model_set_to_a_larger_input_finds_what_its_own_input_finds(variant, width, height):
    """A finer scale is one model call over the whole view: the full-range model's file is rewritten for a
    320x256 input (its upsampling sizes and output reshapes), the short-range one's for 320x240 (two anchor
    layers), and each must give every face the box and score that the untouched model gives it in a window
    of its own input size around that face."""
    from emotion_batch.faces.blazeface import BlazeFaceDetector, model_for_input

    detector = BlazeFaceDetector(variant)
    side = detector.size
    truth: list = []
    photo = np.asarray(synthetic_photo(np.random.default_rng(6), width, height, 4, boxes=truth, background="scene"))
    view = detector._normalise(photo)[None]
    raw, logits, anchors = detector._invoke(view)
    cells = sum((height // stride) * (width // stride) * per_cell for stride, per_cell in detector.layers)
    assert raw.shape == (cells, 16) and anchors.shape == (cells, 2)
    rows, scores = detector._decode(raw, logits, anchors)
    checked = 0
    for x, y, w, h, _ in truth:
        left = int(np.clip(x + w / 2 - side / 2, 0, width - side))
        top = int(np.clip(y + h / 2 - side / 2, 0, height - side))
        own_rows, own_scores = detector._decode(*detector._invoke(view[:, top : top + side, left : left + side]))
        own_rows += np.array([left, top, 0, 0] * 2, np.float32)
        on_face = iou_matrix(own_rows[:, :4], np.array([[x, y, w, h]], np.float32))[:, 0] > 0.5
        if not on_face.any():
            continue  # the window cuts this face: nothing to compare
        own, own_score = own_rows[on_face][own_scores[on_face].argmax()], own_scores[on_face].max()
        near = np.abs(rows[:, :2] + rows[:, 2:4] / 2 - (own[:2] + own[2:4] / 2)).max(axis=1) < 4
        assert near.any(), (x, y, w, h)
        big = rows[near][scores[near].argmax()]
        assert np.abs(big[:4] - own[:4]).max() < 3 and abs(scores[near].max() - own_score) < 0.05
        checked += 1
    assert checked >= 3
    with pytest.raises(ValueError, match=f"multiples of {detector.multiple}"):
        model_for_input(variant, height + 2, width)


def test_a_face_only_the_finer_scale_resolves_is_found_at_the_default_settings(blazeface):
    """A face of about 34 px in a 640x480 photo: about 10 px of the whole view's input, too small for it, and
    found by the one call over the half-scale view."""
    from PIL import Image

    from emotion_batch.faces.blazeface import BlazeFaceDetector
    from emotion_batch.sample import head

    portrait = head("astronaut")
    photo = np.asarray(no_face_photo(np.random.default_rng(7), 640, 480)).copy()
    photo[300:391, 500:580] = np.asarray(portrait.resize((80, 91), Image.Resampling.BILINEAR).convert("RGB"))
    assert BlazeFaceDetector("full", tile=0).detect(photo) == []  # the whole view alone
    faces = blazeface.detect(photo)
    assert len(faces) == 1 and 28 <= faces[0].w <= 40
    assert 500 < faces[0].x < faces[0].x + faces[0].w < 580 and 300 < faces[0].y < faces[0].y + faces[0].h < 391


def test_min_face_hides_smaller_faces_and_reaches_every_detector():
    truth: list = []
    photo = np.asarray(synthetic_photo(np.random.default_rng(5), 1920, 1080, 12, boxes=truth))
    smallest = min(t[2] for t in truth)
    assert len(build_detector("blazeface").detect(photo)) == 12
    assert build_detector("blazeface", min_face=3 * smallest).detect(photo) == []
    assert build_detector("haar", min_face=40).min_size == 40.0
    assert build_detector("mtcnn", min_face=40).min_size == 40.0
    with pytest.raises(ConfigError, match="min_face"):
        build_detector("blazeface", min_face=0)


@pytest.mark.parametrize("name", ["blazeface", "blazeface-short", "mtcnn"])
@pytest.mark.parametrize("degrees", [0, 20, -20])
def test_detectors_give_eyes_whose_line_follows_the_head(name, degrees):
    """The eye keypoints: inside the box, the image-left eye first, their line turned as the head is."""
    from PIL import Image

    from emotion_batch.preprocess import eye_angle
    from emotion_batch.sample import head

    canvas = Image.new("RGB", (640, 480), (128, 128, 128))
    portrait = head("astronaut")
    canvas.paste(portrait.resize((200, int(200 * portrait.height / portrait.width))), (200, 100))
    photo = np.asarray(canvas.rotate(degrees, Image.Resampling.BILINEAR, center=(300, 210), fillcolor=(128, 128, 128)))
    detector = build_detector(name)
    upright = detector.detect(np.asarray(canvas))
    faces = detector.detect(photo)
    assert len(faces) == 1 and len(upright) == 1
    face = faces[0]
    x1, y1, x2, y2 = face.eyes
    assert face.x <= x1 < x2 <= face.x + face.w and face.y <= min(y1, y2) <= face.y + face.h
    # PIL turns counter-clockwise on screen; the eye line's angle (y down) goes the other way
    assert abs(eye_angle(face.eyes) - (eye_angle(upright[0].eyes) - degrees)) < 4.0
    scaled = face.scaled(0.5)
    assert scaled.eyes == tuple(v * 0.5 for v in face.eyes)


def _close_up(box: tuple[int, int, int, int], side: int) -> np.ndarray:
    """A part of the astronaut's portrait as a ``side`` x ``side`` photo: her face filling the frame, as in a
    webcam close-up or a photo cropped to the face."""
    from PIL import Image

    return np.asarray(Image.fromarray(skimage.data.astronaut()).crop(box).resize((side, side)))


@pytest.mark.parametrize("box", [(170, 60, 280, 185), (180, 80, 270, 175)])  # the second cuts forehead and chin
@pytest.mark.parametrize("side", [128, 256])
def test_dual_blazeface_finds_close_ups_the_full_range_model_misses(box, side):
    photo = _close_up(box, side)
    assert build_detector("blazeface").detect(photo) == []  # full-range alone: nothing (the filed miss)
    faces = build_detector("blazeface-dual").detect(photo)
    assert len(faces) == 1
    f = faces[0]
    assert f.w > 0.5 * photo.shape[1] and f.eyes is not None  # the whole face, with its eyes


@pytest.mark.parametrize("side", [48, 160])
def test_dual_blazeface_finds_a_face_cut_on_every_side_by_looking_again_with_a_border(side, monkeypatch):
    photo = _close_up((190, 87, 263, 163), side)  # her face with 15 % cut off each side: no forehead, chin, ears
    dual = build_detector("blazeface-dual")
    monkeypatch.setattr(dual, "_bordered_close_up", lambda rgb: [])
    assert dual.detect(photo) == []  # neither model finds it in the photo as it is
    monkeypatch.undo()
    faces = dual.detect(photo)
    assert len(faces) == 1
    f = faces[0]
    centre = np.array([f.x + f.w / 2, f.y + f.h / 2])
    assert f.w >= 0.5 * side and (np.abs(centre - side / 2) < side / 4).all()  # the face, not a part of it


def test_dual_blazeface_keeps_crowds_and_finds_no_face_in_packshots():
    truth: list = []
    photo = np.asarray(synthetic_photo(np.random.default_rng(5), 1920, 1080, 12, boxes=truth, background="scene"))
    dual = build_detector("blazeface-dual")
    faces = dual.detect(photo)
    iou = iou_matrix(np.array([t[:4] for t in truth]), np.array([f.box for f in faces]))
    assert (iou.max(axis=1) >= 0.3).all() and len(faces) == 12  # every face once, nothing else
    assert dual.detect(np.asarray(no_face_photo(np.random.default_rng(0), 640, 480))) == []
    assert build_detector("blazeface-dual", min_score=0.8).small_min_score == 0.8  # --min-score reaches both


def test_dual_blazeface_counts_a_close_up_once_and_a_group_by_its_faces(monkeypatch):
    from emotion_batch.faces.base import Face

    dual = build_detector("blazeface-dual")
    photo = np.zeros((350, 350, 3), np.uint8)
    close_up = Face(25, 20, 300, 300, 0.8)
    part = Face(90, 160, 160, 160, 0.55)  # the short-range model sees the lower face once more, smaller
    # (full-range faces, short-range faces in the whole view, at the finer scale)
    monkeypatch.setattr(dual, "_seen", lambda rgb: ([], [part, close_up], []))
    faces = dual.detect(photo)
    assert len(faces) == 1 and faces[0].w > 250  # one face, the whole one
    # a group the short-range model took for one face: the full-range faces inside it are kept, it is not
    left, right = Face(40, 120, 100, 100, 0.9), Face(200, 120, 100, 100, 0.9)
    monkeypatch.setattr(dual, "_seen", lambda rgb: ([left, right], [Face(20, 60, 310, 250, 0.8)], []))
    assert sorted(round(f.x) for f in dual.detect(photo)) == [40, 200]


def test_dual_blazeface_takes_a_close_up_at_the_lower_score_from_the_whole_view_only(monkeypatch):
    """A large short-range face scoring 0.5-0.6 is a close-up where the whole view saw it; seen only at the
    finer scale it is one of that scale's false faces (a textured scene's large box) and is dropped, as a
    small face at that score is."""
    from emotion_batch.faces.base import Face

    dual = build_detector("blazeface-dual")
    photo = np.zeros((480, 640, 3), np.uint8)
    large, small = Face(300, 100, 150, 150, 0.55), Face(40, 40, 60, 60, 0.55)
    monkeypatch.setattr(dual, "_bordered_close_up", lambda rgb: [])
    # (full-range faces, short-range faces in the whole view, at the finer scale)
    monkeypatch.setattr(dual, "_seen", lambda rgb: ([], [], [large, small]))
    assert dual.detect(photo) == []
    monkeypatch.setattr(dual, "_seen", lambda rgb: ([], [large, small], []))
    faces = dual.detect(photo)
    assert len(faces) == 1 and faces[0].w > 140 and faces[0].x > 250  # the close-up, not the small face
    monkeypatch.setattr(dual, "_seen", lambda rgb: ([], [], [Face(300, 100, 150, 150, 0.8), Face(40, 40, 60, 60, 0.8)]))
    assert len(dual.detect(photo)) == 2  # a sure face from the finer scale is kept at any size


def test_dual_blazeface_skips_the_finer_scales_when_a_face_fills_the_photo(monkeypatch):
    """A close-up (a face of at least ``FILLS`` of the photo's shorter side, seen in a whole view) leaves no
    room for the small faces the finer scales are for: those model calls are not made, and the close-up is
    found as before. A photo with a smaller face is searched at every scale."""
    from emotion_batch.sample import head

    dual = build_detector("blazeface-dual")
    looked = []
    for model in (dual.full, dual.short):
        real = model.look
        monkeypatch.setattr(model, "look", lambda rgb, views, real=real, name=model.name: looked.append((name, views)) or real(rgb, views))
    portrait = head("astronaut")
    close_up = np.asarray(portrait.resize((480, round(480 * portrait.height / portrait.width))))[:480]
    photo = np.zeros((480, 640, 3), np.uint8)
    photo[:, 80:560] = close_up
    faces = dual.detect(photo)
    assert len(faces) == 1 and faces[0].w >= dual.FILLS * 480
    assert [views for _, views in looked] == [[640], [640]]  # each model's whole view, nothing finer
    looked.clear()
    small = np.zeros((480, 640, 3), np.uint8)
    small[200:296, 300:380] = np.asarray(portrait.resize((80, 96)))
    assert len(dual.detect(small)) == 1
    assert len(looked) == 4 and all(len(views) >= 1 for _, views in looked)  # whole views, then the finer ones
    assert {name for name, views in looked if views != [640]} == {"blazeface", "blazeface-short"}


def test_a_group_the_short_range_model_took_for_one_close_up_still_gets_the_full_range_finer_scale(monkeypatch):
    """Where only the short-range model saw a face filling the photo, the full-range model's finer scale still
    runs: its faces inside that box show a group seen as one face, and the group's faces are kept, not the box."""
    from emotion_batch.faces.blazeface import Seen

    dual = build_detector("blazeface-dual")
    photo = np.zeros((480, 640, 3), np.uint8)

    def seen(*rows) -> Seen:
        boxes = np.array([[x, y, s, s, x + 0.3 * s, y + 0.4 * s, x + 0.7 * s, y + 0.4 * s] for x, y, s in rows], np.float32)
        return Seen([boxes], [np.full(len(rows), 0.9, np.float32)], [boxes[:, 2]])

    def full_look(rgb, views):
        return seen((200, 200, 40), (300, 200, 40)) if views != [640] else Seen()  # small faces: the finer scale only

    monkeypatch.setattr(dual.full, "look", full_look)
    monkeypatch.setattr(dual.short, "look", lambda rgb, views: seen((150, 100, 300)) if views == [640] else Seen())
    faces = dual.detect(photo)
    assert sorted(round(f.x) for f in faces) == [200, 300] and all(f.w < 100 for f in faces)
