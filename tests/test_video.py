"""Viewer videos: decoding, sidecars, bad input, tracking, the per-video analysis and the second-by-second
trace, on small synthetic videos made in tmp_path (a few seconds, small frames)."""

from __future__ import annotations

import json
import math
import threading
from pathlib import Path

import numpy as np
import pytest

av = pytest.importorskip("av")

from emotion_batch.exceptions import ConfigError, SidecarError, VideoError  # noqa: E402
from emotion_batch.video.decode import open_video, prefetch, probe_video  # noqa: E402
from emotion_batch.video.sidecar import parse_sidecar, read_sidecar  # noqa: E402
from emotion_batch.video.synthetic import write_video  # noqa: E402


def _levels(n: int, *, width: int = 64, height: int = 48):
    """Frames whose grey level says their number: frame i is uniformly ``10 + 4 * i`` (i < 60)."""
    for i in range(n):
        yield np.full((height, width, 3), 10 + 4 * i, dtype=np.uint8)


def _noise(n: int, *, width: int = 64, height: int = 48, seed: int = 0):
    rng = np.random.default_rng(seed)
    for _ in range(n):
        yield rng.integers(0, 256, (height, width, 3), dtype=np.uint8)


# ---- decoding: which frames, when, upright ----

@pytest.mark.parametrize("codec, suffix", [("libx264", ".mp4"), ("mpeg4", ".mp4"), ("libvpx-vp9", ".webm")])
def test_frames_are_sampled_by_presentation_time(tmp_path, codec, suffix):
    # a high bit rate keeps flat grey levels exact enough to read the frame's number from them
    path = write_video(tmp_path / f"levels{suffix}", _levels(60), fps=30, codec=codec, options={"b": "4M"})
    with open_video(path) as video:
        assert (video.info.width, video.info.height, video.info.fps) == (64, 48, 30.0)
        assert video.info.duration_s == pytest.approx(2.0, abs=0.05)
        frames = list(video.sample(5))
    assert [f.index for f in frames] == list(range(10))
    for f in frames:
        assert f.rgb.shape == (48, 64, 3) and f.rgb.dtype == np.uint8
        assert abs(f.time_s - f.index / 5) <= 1 / 30 + 1e-6  # at most one source frame from its grid point
        shown = round(f.time_s * 30)  # the frame's number, from its time ...
        assert abs(float(f.rgb.mean()) - (10 + 4 * shown)) < 2  # ... is the one its pixels say


def test_sampling_starts_at_the_offset_and_each_frame_is_used_once(tmp_path):
    path = write_video(tmp_path / "levels.mp4", _levels(60), fps=30)
    with open_video(path) as video:
        frames = list(video.sample(2, start_s=0.5))
    assert [f.index for f in frames] == [0, 1, 2]
    assert [round(f.time_s * 2) / 2 for f in frames] == [0.5, 1.0, 1.5]
    with open_video(path) as video:  # sampling faster than the source: every frame at most once
        frames = list(video.sample(60, skip_nonref=False))
    times = [f.time_s for f in frames]
    assert len(times) == len(set(times)) == 60


def test_skipping_unreferenced_frames_decodes_less_and_stays_within_a_frame(tmp_path):
    path = write_video(tmp_path / "levels.mp4", _levels(60), fps=30)
    with open_video(path) as video:
        skipped = list(video.sample(5))
        decoded_skipping = video.frames_decoded
    with open_video(path) as video:
        full = list(video.sample(5, skip_nonref=False))
        decoded_all = video.frames_decoded
    assert decoded_all == 60 and decoded_skipping < decoded_all
    assert [f.index for f in skipped] == [f.index for f in full]
    assert all(abs(a.time_s - b.time_s) <= 1 / 30 + 1e-6 for a, b in zip(skipped, full))


@pytest.mark.parametrize("rotation, corner", [(90, "bottom-left"), (-90, "top-right"), (180, "bottom-right")])
def test_rotation_metadata_turns_frames_upright(tmp_path, rotation, corner):
    """A white mark in the stored frame's top-left corner; the display matrix says how to turn it."""
    def marked():
        for _ in range(10):
            frame = np.zeros((48, 64, 3), dtype=np.uint8)
            frame[:12, :12] = 255
            yield frame

    path = write_video(tmp_path / "turned.mp4", marked(), fps=10, rotation=rotation)
    with open_video(path) as video:
        frame = next(video.sample(5))
        info = video.info
    turned = rotation % 180 != 0
    assert frame.rgb.shape == ((64, 48, 3) if turned else (48, 64, 3))
    assert (info.width, info.height, info.rotation) == ((48, 64) if turned else (64, 48)) + (rotation % 360,)
    rows, cols = np.nonzero(frame.rgb[:, :, 0] > 200)
    h, w = frame.rgb.shape[:2]
    at = ("top" if rows.mean() < h / 2 else "bottom") + "-" + ("left" if cols.mean() < w / 2 else "right")
    assert at == corner


def test_large_frames_are_reduced_to_the_work_side(tmp_path):
    path = write_video(tmp_path / "wide.mp4", _levels(6, width=320, height=240), fps=10)
    with open_video(path) as video:
        frame = next(video.sample(5, work_side=160))
    assert frame.rgb.shape == (120, 160, 3) and frame.scale == pytest.approx(2.0)


# ---- bad input: a clear error naming the file, and the status its row records ----

def _mdat_end(data: bytes) -> int:
    return data.index(b"mdat") + 4


@pytest.mark.parametrize("case, status, words", [
    ("text", "unreadable", "not a readable video"),
    ("empty", "unreadable", "empty file"),
    ("truncated_index_last", "unreadable", "not a readable video"),
    ("truncated_faststart", "unreadable", "truncated"),
    ("zero_frames", "unreadable", "zero frames"),
    ("corrupt", "unreadable", "corrupt video stream"),
    ("audio_only", "unreadable", "no video stream (streams: audio)"),
    ("unknown_codec", "unsupported", "cannot be decoded by this FFmpeg build"),
    ("missing", "unreadable", "no such file"),
])
def test_bad_input_is_a_clear_error_naming_the_file(tmp_path, case, status, words):
    target = tmp_path / f"{case}.mp4"
    if case == "text":
        target.write_text("hello, I am a text file with a video name\n" * 20)
    elif case == "empty":
        target.write_bytes(b"")
    elif case == "truncated_index_last":  # the MP4 index comes last and is cut off
        data = write_video(tmp_path / "whole.mp4", _noise(60), fps=30).read_bytes()
        target.write_bytes(data[: len(data) // 2])
    elif case in ("truncated_faststart", "zero_frames", "corrupt"):
        data = write_video(tmp_path / "whole.mp4", _noise(150), fps=30, faststart=True).read_bytes()
        if case == "truncated_faststart":
            data = data[: len(data) // 2]
        elif case == "zero_frames":  # the index says 150 frames, the file ends where they begin
            data = data[: _mdat_end(data)]
        else:
            rng = np.random.default_rng(0)
            start = len(data) // 3
            data = data[:start] + rng.integers(0, 256, 2000, dtype=np.uint8).tobytes() + data[start + 2000:]
        target.write_bytes(data)
    elif case == "audio_only":
        with av.open(str(target), "w") as container:
            stream = container.add_stream("aac", rate=8000)
            frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            frame.sample_rate = 8000
            for packet in [*stream.encode(frame), *stream.encode()]:
                container.mux(packet)
    elif case == "unknown_codec":  # an AVI whose codec tag no FFmpeg decoder knows
        target = tmp_path / "unknown_codec.avi"
        data = write_video(tmp_path / "m.avi", _levels(10), fps=10, codec="mjpeg", pix_fmt="yuvj420p").read_bytes()
        target.write_bytes(data.replace(b"MJPG", b"QQZZ").replace(b"mjpg", b"qqzz"))
    with pytest.raises(VideoError) as caught:
        with open_video(target) as video:
            for _ in video.sample(5):
                pass
    assert caught.value.status == status
    message = str(caught.value)
    assert message.startswith(str(target)) and words in message


def test_limits_refuse_huge_frames_and_long_recordings(tmp_path):
    path = write_video(tmp_path / "levels.mp4", _levels(60), fps=30)
    with pytest.raises(VideoError, match=r"64x48 = 3,072 pixels are above the limit of 3,000") as caught:
        probe_video(path, max_pixels=3000)
    assert caught.value.status == "unsupported"
    with pytest.raises(VideoError, match=r"duration of 2.0 s is above the limit of 1 s") as caught:
        probe_video(path, max_duration_s=1)
    assert caught.value.status == "unsupported"


def test_bad_sample_rates_are_refused(tmp_path):
    path = write_video(tmp_path / "levels.mp4", _levels(10), fps=10)
    for fps in (0, -1, 61, True, float("nan")):
        with pytest.raises(ConfigError, match="fps must be a number in"):
            with open_video(path) as video:
                next(video.sample(fps))


def test_prefetch_keeps_order_raises_the_producers_error_and_stops_early():
    assert list(prefetch(iter(range(50)), maxsize=3)) == list(range(50))

    def failing():
        yield 1
        raise VideoError("x.mp4: corrupt video stream")

    with pytest.raises(VideoError, match="corrupt"):
        list(prefetch(failing(), maxsize=2))

    made = []

    def endless():
        for i in range(10_000):
            made.append(i)
            yield i

    consumer = prefetch(endless(), maxsize=2)
    assert [next(consumer) for _ in range(3)] == [0, 1, 2]
    consumer.close()
    assert len(made) <= 3 + 2 + 2  # bounded: the producer stopped a queue's length ahead
    assert not any(t.name == "video-prefetch" for t in threading.enumerate())


# ---- the sidecar: where the ad starts ----

def test_sidecar_gives_the_offset_and_its_absence_zero(tmp_path):
    video = tmp_path / "viewer.mp4"
    assert read_sidecar(video) == 0.0
    (tmp_path / "viewer.json").write_text(json.dumps({"ad_offset_s": 2.4}))
    assert read_sidecar(video) == 2.4
    other = tmp_path / "other.mov"
    (tmp_path / "other.mov.json").write_text('{"ad_offset_s": -1}')
    assert read_sidecar(other) == -1.0


@pytest.mark.parametrize("text, words", [
    ("{not json", "not valid JSON"),
    ("[2.4]", "must be a JSON object"),
    ('{"ad_ofset_s": 2.4}', "unknown keys ['ad_ofset_s']"),
    ("{}", "ad_offset_s is missing"),
    ('{"ad_offset_s": "2.4"}', "must be a finite number of seconds. Received: ad_offset_s='2.4'"),
    ('{"ad_offset_s": true}', "must be a finite number"),
    ('{"ad_offset_s": NaN}', "must be a finite number"),
    ('{"ad_offset_s": 1e9}', "must lie within"),
])
def test_bad_sidecars_are_clear_errors_naming_the_sidecar(tmp_path, text, words):
    (tmp_path / "viewer.json").write_text(text)
    with pytest.raises(SidecarError) as caught:
        read_sidecar(tmp_path / "viewer.mp4")
    assert caught.value.status == "bad_sidecar"
    assert str(caught.value).startswith(str(tmp_path / "viewer.json")) and words in str(caught.value)


def test_two_sidecars_for_one_video_are_refused(tmp_path):
    (tmp_path / "viewer.json").write_text('{"ad_offset_s": 1}')
    (tmp_path / "viewer.mp4.json").write_text('{"ad_offset_s": 2}')
    with pytest.raises(SidecarError, match="two sidecars for one video"):
        read_sidecar(tmp_path / "viewer.mp4")


def test_parse_sidecar_accepts_integers_and_bytes():
    assert parse_sidecar(b'{"ad_offset_s": 3}', name="x.json") == 3.0
    assert math.isclose(parse_sidecar('{"ad_offset_s": 0.25}', name="x.json"), 0.25)


# ---- tracking: the viewer's face across frames ----

from emotion_batch.faces.base import Face  # noqa: E402
from emotion_batch.video.tracking import link_tracks, viewer_track  # noqa: E402


def _face(x, y, side, score=0.9):
    return Face(float(x), float(y), float(side), float(side), score)


def test_tracks_link_moving_faces_and_tolerate_short_gaps():
    viewer = [_face(100 + 3 * i, 80, 120) for i in range(12)]
    frames = [[f] for f in viewer]
    frames[4] = frames[5] = []  # the detector missed two frames
    tracks = link_tracks(frames, max_gap=2)
    assert len(tracks) == 1 and [p for p, _ in tracks[0].members] == [0, 1, 2, 3, 6, 7, 8, 9, 10, 11]
    assert len(link_tracks(frames, max_gap=1)) == 2  # a gap longer than allowed starts a new track


def test_the_viewer_is_the_largest_steadiest_track_and_others_are_only_counted():
    frames = []
    for i in range(20):
        faces = [_face(200, 100, 150)]  # the viewer, large and always there
        if 5 <= i < 8:
            faces.append(_face(20, 20, 260))  # someone passing close to the camera: larger, briefly
        if i % 2 == 0:
            faces.append(_face(500, 300, 40))  # a face on a poster behind, small
        frames.append(sorted(faces, key=lambda f: f.x))  # detectors sort left to right
    viewer = viewer_track(frames)
    assert all(frames[p][k].x == 200 for p, k in viewer.faces.items()) and len(viewer.faces) == 20
    assert viewer.tracks == 3 and viewer.other_faces == 3 + 10


def test_a_viewer_who_leaves_and_comes_back_is_one_viewer():
    frames = [[_face(200, 100, 150)] for _ in range(10)] + [[] for _ in range(10)] + \
             [[_face(210, 105, 150)] for _ in range(10)]
    frames[25].append(_face(600, 100, 60))  # another face elsewhere during the second part
    viewer = viewer_track(frames, max_gap=3)
    assert sorted(viewer.faces) == list(range(10)) + list(range(20, 30))
    assert viewer.tracks == 3 and viewer.other_faces == 1


def test_tracking_without_faces_and_bad_settings():
    assert viewer_track([[], []]).faces == {}
    with pytest.raises(ConfigError, match="min_iou must be in"):
        link_tracks([], min_iou=0)
    with pytest.raises(ConfigError, match="max_gap must be an integer"):
        link_tracks([], max_gap=-1)


# ---- the per-video analysis: a fake detector and classifier that read what the test drew ----

from emotion_batch.labels import EMOTIONS  # noqa: E402
from emotion_batch.video.analysis import analyze_video  # noqa: E402

#: the grey level a drawn "face" has for each expression the fake classifier reads back
LEVELS = {"happy": 230, "neutral": 150, "surprise": 190, "sad": 110}


class SquareDetector:
    """Finds bright squares on a black background (every connected region above 60)."""

    name = "squares"

    def detect(self, rgb):
        from scipy import ndimage

        labels, _ = ndimage.label(rgb[:, :, 0] > 60)
        faces = []
        for region in ndimage.find_objects(labels):
            ys, xs = region
            faces.append(Face(float(xs.start), float(ys.start), float(xs.stop - xs.start),
                              float(ys.stop - ys.start), 0.99))
        return sorted(faces, key=lambda f: f.x)


class LevelClassifier:
    """Puts 0.9 on the expression whose level is nearest to the crop's centre; counts its batches."""

    size, channels, batch_size = 16, 1, 8

    def __init__(self):
        self.batches = []

    def predict(self, faces):
        self.batches.append(len(faces))
        centre = faces[:, 6:10, 6:10, 0].reshape(len(faces), -1).mean(axis=1)
        names = list(LEVELS)
        nearest = np.abs(centre[:, None] - np.array([LEVELS[n] for n in names])[None]).argmin(axis=1)
        probs = np.full((len(faces), len(EMOTIONS)), 0.1 / 6, dtype=np.float32)
        probs[np.arange(len(faces)), [EMOTIONS.index(names[i]) for i in nearest]] = 0.9
        return probs


def _scene(seconds, fps, draw, *, width=160, height=120):
    """Frames of a black scene where ``draw(frame, t)`` paints the faces at time ``t``."""
    for i in range(int(round(seconds * fps))):
        frame = np.zeros((height, width, 3), dtype=np.uint8)
        draw(frame, i / fps)
        yield frame


def _schedule(t):
    """The viewer's expression over the recording: neutral, happy from 2 s, surprise from 4 s, sad from 5 s."""
    return "neutral" if t < 2 else "happy" if t < 4 else "surprise" if t < 5 else "sad"


def test_known_expressions_at_known_times_come_back_within_one_sampled_frame(tmp_path):
    def draw(frame, t):
        frame[30:90, 50:110] = LEVELS[_schedule(t)]

    path = write_video(tmp_path / "viewer.mp4", _scene(6, 30, draw), fps=30, options={"b": "2M"})
    classifier = LevelClassifier()
    result = analyze_video(path, SquareDetector(), classifier, fps=5, queue_frames=2)
    stats = result.stats
    assert (stats.status, stats.frames_sampled, stats.frames_with_face, stats.tracks) == ("ok", 30, 30, 1)
    assert stats.offset_s == 0.0 and stats.duration_s == pytest.approx(6.0, abs=0.05) and stats.fps == 30.0
    assert classifier.batches == [8, 8, 8, 6]  # batches gathered across frames
    for frame in result.frames:
        assert frame.box == pytest.approx((50, 30, 60, 60), abs=1.5)
        expected = _schedule(frame.time_ms / 1000)
        if expected != frame.emotion:  # only a frame next to a change may show either side of it
            assert any(abs(frame.time_ms / 1000 - c) <= 0.2 for c in (2, 4, 5)), (frame.time_ms, frame.emotion)
    assert [f.emotion for f in result.frames].count("happy") in (9, 10, 11)


def test_the_sidecar_offset_moves_the_ad_clock(tmp_path):
    def draw(frame, t):
        frame[30:90, 50:110] = LEVELS[_schedule(t)]

    path = write_video(tmp_path / "viewer.mp4", _scene(6, 30, draw), fps=30, options={"b": "2M"})
    (tmp_path / "viewer.json").write_text('{"ad_offset_s": 2.0}')
    result = analyze_video(path, SquareDetector(), LevelClassifier(), fps=5)
    assert result.stats.offset_s == 2.0 and result.stats.frames_sampled == 20
    assert result.frames[0].time_ms == 0 and result.frames[-1].time_ms == pytest.approx(3800, abs=34)
    happy = [f.time_ms for f in result.frames if f.emotion == "happy"]
    assert min(happy) < 200 and 1800 <= max(happy) <= 2200  # happy from the ad's start to its 2nd second

    (tmp_path / "viewer.json").write_text('{"ad_offset_s": 7.5}')
    with pytest.raises(SidecarError, match=r"viewer.json: the ad's offset of 7.5 s lies beyond the end") as caught:
        analyze_video(path, SquareDetector(), LevelClassifier())
    assert caught.value.status == "bad_sidecar"
    (tmp_path / "viewer.json").write_text('{"ad_offset": 1}')
    with pytest.raises(SidecarError, match="unknown keys"):
        analyze_video(path, SquareDetector(), LevelClassifier())


def test_a_face_only_in_seconds_2_to_4_and_a_second_face_not_traced(tmp_path):
    def draw(frame, t):
        if 2 <= t < 4:
            frame[20:100, 20:100] = LEVELS["happy"]  # the viewer: large, seconds 2-4 only
        if t >= 1:
            frame[5:25, 130:150] = LEVELS["sad"]  # a small face from 1 s on (someone behind)

    path = write_video(tmp_path / "two.mp4", _scene(5, 25, draw), fps=25, options={"b": "2M"})
    result = analyze_video(path, SquareDetector(), LevelClassifier(), fps=5)
    times = [f.time_ms for f in result.frames]
    assert all(1800 <= t <= 4000 for t in times) and len(times) in (9, 10, 11)
    assert {f.emotion for f in result.frames} == {"happy"}
    assert {f.faces_in_frame for f in result.frames} == {2}
    assert result.stats.tracks == 2 and result.stats.max_faces == 2
    assert result.stats.faces_found == len(times) + 20  # the small face in every frame from 1 s on


def test_a_video_without_faces_is_no_face(tmp_path):
    path = write_video(tmp_path / "empty_room.mp4", _scene(2, 10, lambda frame, t: None), fps=10)
    result = analyze_video(path, SquareDetector(), LevelClassifier())
    assert result.stats.status == "no_face" and result.frames == [] and result.stats.frames_sampled == 10


# ---- the second-by-second trace ----

import polars as pl  # noqa: E402

from emotion_batch.aggregate.tables import Z95  # noqa: E402
from emotion_batch.video.trace import second_trace, strongest_moments, viewer_seconds  # noqa: E402


def _rows(video, seconds_votes, *, per_second=5, **extra):
    """Frames of one viewer: ``seconds_votes[s]`` is the class shown in second ``s`` (None: no face)."""
    rows = []
    for s, vote in enumerate(seconds_votes):
        if vote is None:
            continue
        for k in range(per_second):
            probs = {f"p_{e}": (0.7 if e == vote else 0.05) for e in EMOTIONS}
            rows.append({**extra, "video": video, "time_ms": s * 1000 + k * 1000 // per_second, **probs})
    return rows


def test_the_trace_counts_each_viewer_once_a_second_with_shares_valence_and_its_band():
    frames = pl.DataFrame(
        _rows("a", ["happy", "happy", "sad", None, "neutral"])
        + _rows("b", ["happy", "neutral", "sad", None, "neutral"], per_second=3)
        + _rows("c", ["happy", "angry", None, None, "happy"])
    )
    trace = second_trace(frames, min_faces=2)
    assert trace["second"].to_list() == [0, 1, 2, 3, 4]
    assert trace["viewers"].to_list() == [3, 3, 2, 0, 3]
    assert trace["frames"].to_list() == [13, 13, 8, 0, 13]
    assert trace["share_happy"].to_list()[:3] == [1.0, pytest.approx(1 / 3), 0.0]
    assert trace["count_neutral"].to_list()[4] == 2 and trace["share_happy"].to_list()[4] == pytest.approx(1 / 3)
    # valence: the mean of +1 (happy), -1 (angry, disgust, fear, sad), 0 (neutral, surprise) over viewers
    assert trace["valence"].to_list()[:3] == [1.0, 0.0, -1.0]
    assert trace["valence_sd"].to_list()[0] == 0.0 and trace["valence_sd"].to_list()[1] == pytest.approx(1.0)
    assert (trace["valence_low"][1], trace["valence_high"][1]) == (-1.0, 1.0)  # +1, 0, -1: the band is clipped
    half = Z95 * (1 / 3) ** 0.5 / 3 ** 0.5  # 0, 0, +1: sd sqrt(1/3), over sqrt(3) viewers
    assert (trace["valence_low"][4], trace["valence_high"][4]) == (pytest.approx(1 / 3 - half),
                                                                   pytest.approx(1 / 3 + half))
    assert trace["suppressed"].to_list() == [False, False, False, True, False]
    assert trace["mean_p_happy"].to_list()[0] == pytest.approx(0.7)
    assert trace.row(3, named=True)["share_happy"] is None  # a second without viewers is shown as no fact

    strict = second_trace(frames, min_faces=3)
    assert strict["suppressed"].to_list() == [False, False, True, True, False]
    assert strict.row(2, named=True)["valence"] is None and strict.row(2, named=True)["viewers"] == 2


def test_trace_groups_seconds_until_the_ads_end_and_checks_its_input():
    frames = pl.DataFrame(_rows("a", ["happy", "sad"], ad="x") + _rows("b", ["sad"], ad="y"))
    trace = second_trace(frames, min_faces=1, by=["ad"], until_s=2)
    assert trace.select("ad", "second", "viewers").rows() == [("x", 0, 1), ("x", 1, 1), ("x", 2, 0),
                                                             ("y", 0, 1), ("y", 1, 0), ("y", 2, 0)]
    with pytest.raises(Exception, match=r"frames lacks the columns \['p_angry'\]"):
        second_trace(frames.drop("p_angry"))
    with pytest.raises(ConfigError, match="min_faces must be an integer >= 1"):
        second_trace(frames, min_faces=0)
    assert viewer_seconds(frames.with_columns(pl.lit(-5).alias("time_ms"))).height == 0


def test_strongest_moments_are_distinct_peaks_of_unsuppressed_seconds():
    votes = {  # 4 viewers, 8 seconds: a happy peak at 2 (and its shoulder at 3), surprise at 6, happy at 5
        "a": ["neutral", "happy", "happy", "happy", "neutral", "happy", "surprise", "neutral"],
        "b": ["neutral", "neutral", "happy", "happy", "neutral", "happy", "surprise", "neutral"],
        "c": ["neutral", "neutral", "happy", "neutral", "neutral", "neutral", "surprise", "happy"],
        "d": ["neutral", "neutral", "happy", "neutral", "sad", "neutral", None, "happy"],
    }
    frames = pl.DataFrame([r for video, v in votes.items() for r in _rows(video, v)])
    trace = second_trace(frames, min_faces=4)
    moments = strongest_moments(trace)
    assert [(m.second, m.emotion, m.share) for m in moments] == [(2, "happy", 1.0), (5, "happy", 0.5),
                                                                  (7, "happy", 0.5)]  # a tie: the earlier first
    # second 6 (surprise 3/3) is suppressed with 3 viewers; allowed with min_faces 3 it is the second peak
    moments = strongest_moments(second_trace(frames, min_faces=3), n=2)
    assert [(m.second, m.emotion) for m in moments] == [(2, "happy"), (6, "surprise")]
    assert [m.second for m in strongest_moments(trace, n=3, min_gap_s=1)] == [2, 3, 5]
    with pytest.raises(ConfigError, match="emotions must be names of"):
        strongest_moments(trace, emotions=["joy"])


def test_the_trace_of_synthetic_viewers_with_known_expressions_is_right_to_the_second(tmp_path):
    """Three recordings; one starts 1.5 s before the ad (its sidecar says so). Known expressions per
    second of the ad come back as the trace's shares, and the strongest moments are where they were put."""
    def draw_for(lead_in):
        def draw(frame, t):
            ad_t = t - lead_in
            if ad_t >= 0:
                frame[30:90, 50:110] = LEVELS[_schedule(ad_t)]
        return draw

    frames = []
    for name, lead_in in (("v1", 0.0), ("v2", 0.0), ("v3", 1.5)):
        path = write_video(tmp_path / f"{name}.mp4", _scene(6 + lead_in, 20, draw_for(lead_in)), fps=20,
                           options={"b": "2M"})
        if lead_in:
            (tmp_path / f"{name}.json").write_text(json.dumps({"ad_offset_s": lead_in}))
        result = analyze_video(path, SquareDetector(), LevelClassifier(), fps=5)
        frames += [{"video": name, **row} for row in result.frame_rows()]
    trace = second_trace(pl.DataFrame(frames), min_faces=3)
    assert trace["viewers"].to_list() == [3] * 6
    top = [max(EMOTIONS, key=lambda e: row[f"share_{e}"]) for row in trace.iter_rows(named=True)]
    assert top == ["neutral", "neutral", "happy", "happy", "surprise", "sad"]
    assert trace["share_happy"].to_list() == [0.0, 0.0, 1.0, 1.0, 0.0, 0.0]
    assert trace["valence"].to_list() == [0.0, 0.0, 1.0, 1.0, 0.0, -1.0]
    moments = strongest_moments(trace)
    assert [(m.second, m.emotion) for m in moments] == [(2, "happy"), (4, "surprise")]


# ---- the real detector, crop and bundled model: the sample viewer video and a real face in seconds 2-4 ----

from emotion_batch.video.synthetic import make_viewer_video, viewer_schedule  # noqa: E402


@pytest.fixture(scope="module")
def job_stages():
    """The job's own detector and bundled classifier (LiteRT, no TensorFlow), as `run` builds them."""
    from emotion_batch.classifier import load_classifier
    from emotion_batch.faces import build_detector

    return build_detector("blazeface-dual"), load_classifier(threads=1, batch_size=16)


def test_the_sample_viewer_video_shows_its_schedule_and_gives_a_trace(tmp_path, job_stages):
    path = tmp_path / "viewer.mp4"
    schedule = make_viewer_video(path, seconds=6.0, fps=10, size=(240, 180))
    assert [(s.start_s, s.pose) for s in schedule] == [(0.0, "neutral"), (2.0, "smile"), (4.0, "neutral")]
    assert schedule == viewer_schedule(6.0)
    info = probe_video(path)
    assert (info.width, info.height, info.fps, info.codec) == (240, 180, 10.0, "h264")
    assert info.duration_s == pytest.approx(6.0, abs=0.05)
    result = analyze_video(path, *job_stages, fps=5)
    stats = result.stats
    assert stats.status == "ok" and stats.frames_sampled == 30 and stats.tracks == 1
    assert stats.frames_with_face >= 27  # the viewer is found in (nearly) every sampled frame
    for frame in result.frames:  # the box is her face, in the middle of the picture
        x, y, w, h = frame.box
        assert 80 < x + w / 2 < 160 and 30 < w < 110 and sum(frame.probs) == pytest.approx(1.0, abs=1e-3)
    trace = second_trace(pl.DataFrame([{"video": "v", **r} for r in result.frame_rows()]), min_faces=1)
    assert trace["second"].to_list() == list(range(6)) and set(trace["viewers"].to_list()) == {1}


def test_a_real_face_only_in_seconds_2_to_4(tmp_path, job_stages):
    from emotion_batch.sample import head

    face = np.asarray(head("astronaut").resize((110, 125)))

    def draw(frame, t):
        frame[:] = 170
        if 2 <= t < 4:
            frame[40:165, 65:175] = face

    path = write_video(tmp_path / "two_seconds.mp4", _scene(6, 10, draw, width=240, height=180), fps=10)
    result = analyze_video(path, *job_stages, fps=5)
    times = [f.time_ms for f in result.frames]
    assert all(2000 - 200 <= t < 4000 + 200 for t in times)  # never outside its seconds (one sampled frame)
    assert len(times) >= 9 and result.stats.tracks == 1  # and found in (nearly) all 10 of them


def test_the_sample_campaign_can_carry_viewer_videos(tmp_path):
    from emotion_batch.sample import make_sample_campaigns

    plain = make_sample_campaigns(tmp_path / "plain")
    counts = make_sample_campaigns(tmp_path / "with", videos=True)
    assert counts["autumn_teaser/social_cut"] == plain["autumn_teaser/social_cut"] + 2
    folder = tmp_path / "with" / "autumn_teaser" / "social_cut"
    assert probe_video(folder / "viewer_01.mp4").duration_s == pytest.approx(8.0, abs=0.1)
    assert read_sidecar(folder / "viewer_02.mp4") == 1.0 and read_sidecar(folder / "viewer_01.mp4") == 0.0
    assert not list((tmp_path / "plain").rglob("*.mp4"))


def test_a_detector_error_stops_the_decoding_thread_before_the_file_closes(tmp_path):
    class Failing(SquareDetector):
        calls = 0

        def detect(self, rgb):
            self.calls += 1
            if self.calls == 3:
                raise RuntimeError("detector broke")
            return super().detect(rgb)

    path = write_video(tmp_path / "viewer.mp4", _scene(4, 30, lambda f, t: None), fps=30)
    with pytest.raises(RuntimeError, match="detector broke"):
        analyze_video(path, Failing(), LevelClassifier(), queue_frames=2)
    assert not any(t.name == "video-prefetch" for t in threading.enumerate())
