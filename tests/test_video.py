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
