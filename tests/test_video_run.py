"""Viewer videos in the batch job (local engine): stored with their frames in one transaction per video,
unchanged ones never reopened, changed ones redone whole, bad input a recorded status naming the file."""

from __future__ import annotations

import json
import os

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select
from sqlalchemy.orm import sessionmaker

from emotion_batch.cli import cli
from emotion_batch.labels import EMOTIONS
from emotion_batch.pipeline import RunOptions, run_batch
from emotion_batch.store.models import ImageRow, Run, VideoFrameRow, VideoRow
from emotion_batch.store.session import make_engine
from emotion_batch.video import batch as video_batch
from emotion_batch.video.synthetic import make_viewer_video


@pytest.fixture()
def factory(db_url):
    engine = make_engine(db_url)
    yield sessionmaker(bind=engine, expire_on_commit=False)
    engine.dispose()


@pytest.fixture()
def sqlite_factory(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'results.sqlite'}")
    yield sessionmaker(bind=engine, expire_on_commit=False)
    engine.dispose()


def _video(path, *, seconds: float = 2.0, seed: int = 7):
    path.parent.mkdir(parents=True, exist_ok=True)
    make_viewer_video(path, seconds=seconds, fps=10, size=(480, 360), seed=seed)  # a face of ~115 px
    return path


def _on_grid(times: list[int], count: int) -> bool:
    """The times are the 2 fps sample grid, each within one frame of the 10 fps recording (frames nobody refers
    to are not decoded, so the nearest decoded frame may be the next one)."""
    return len(times) == count and all(abs(t - 500 * k) <= 100 for k, t in enumerate(times))


def _run(factory, classifier, root, **kw):
    kw.setdefault("workers", 0)
    kw.setdefault("video_fps", 2.0)
    return run_batch(factory, classifier, RunOptions(root=str(root), **kw))


def _videos(factory) -> dict[str, VideoRow]:
    with factory() as s:
        return {v.path: v for v in s.scalars(select(VideoRow))}


def _frames(factory) -> list[VideoFrameRow]:
    with factory() as s:
        return list(s.scalars(select(VideoFrameRow).order_by(VideoFrameRow.video_id, VideoFrameRow.time_ms)))


def test_a_run_stores_videos_with_their_frames_beside_images_and_a_rerun_skips_them(
        factory, tiny_classifier, tmp_path, monkeypatch):
    from emotion_batch.sample import synthetic_photo
    import numpy as np

    root = tmp_path / "campaigns"
    _video(root / "spring" / "teaser" / "viewers" / "v1.mp4")
    synthetic_photo(np.random.default_rng(1), 320, 240, 1).save(root / "spring" / "teaser" / "photo.jpg")
    summary = _run(factory, tiny_classifier, root)
    assert summary.status == "ok"
    assert (summary.images_found, summary.processed) == (1, 1)
    assert (summary.videos_found, summary.videos_processed, summary.videos_ok) == (1, 1, 1)
    [video] = _videos(factory).values()
    assert video.path == "spring/teaser/viewers/v1.mp4" and video.status == "ok" and video.error is None
    assert video.run_id == summary.run_id and video.model_id == tiny_classifier.model_id
    assert video.sample_fps == 2.0 and video.offset_s == 0.0 and video.duration_s == pytest.approx(2.0, abs=0.15)
    assert video.frames_sampled == 4 and video.frames_with_face == 4 and video.tracks == 1
    assert len(video.sha256) == 64 and video.size_bytes == os.path.getsize(root / video.path)
    frames = _frames(factory)
    assert len(frames) == video.frames_with_face == summary.video_frames
    assert _on_grid([f.time_ms for f in frames], 4)
    for f in frames:
        probs = [getattr(f, f"p_{e}") for e in EMOTIONS]
        assert sum(probs) == pytest.approx(1.0, abs=1e-4) and f.top_emotion == EMOTIONS[probs.index(max(probs))]
        assert f.w >= 64 and f.faces_in_frame == 1 and f.model_id == tiny_classifier.model_id

    def never(*args, **kwargs):
        raise AssertionError("an unchanged video was opened")

    monkeypatch.setattr(video_batch, "analyze_video", never)
    again = _run(factory, tiny_classifier, root)
    assert (again.videos_unchanged, again.videos_processed, again.unchanged) == (1, 0, 1)
    assert len(_frames(factory)) == len(frames)
    # a new mtime with the same content: hashed, not analysed, its mtime recorded
    os.utime(root / video.path, ns=(video.mtime_ns + 10**9, video.mtime_ns + 10**9))
    touched = _run(factory, tiny_classifier, root)
    assert (touched.videos_unchanged, touched.videos_processed) == (1, 0)
    assert _videos(factory)[video.path].mtime_ns == video.mtime_ns + 10**9


def test_a_changed_video_is_redone_whole_without_duplicate_frames(sqlite_factory, tiny_classifier, tmp_path):
    root = tmp_path / "campaigns"
    path = _video(root / "spring" / "teaser" / "v1.mp4", seconds=2.0)
    _run(sqlite_factory, tiny_classifier, root)
    first = _videos(sqlite_factory)["spring/teaser/v1.mp4"]
    _video(path, seconds=3.0, seed=8)
    summary = _run(sqlite_factory, tiny_classifier, root)
    assert (summary.videos_processed, summary.videos_unchanged) == (1, 0)
    [second] = _videos(sqlite_factory).values()
    assert second.sha256 != first.sha256 and second.frames_sampled == 6
    frames = _frames(sqlite_factory)
    assert _on_grid([f.time_ms for f in frames], 6)
    assert {f.video_id for f in frames} == {second.id}
    # --reprocess redoes it although nothing changed, still without duplicates
    assert _run(sqlite_factory, tiny_classifier, root, reprocess=True).videos_processed == 1
    assert len(_frames(sqlite_factory)) == 6 and len(_videos(sqlite_factory)) == 1


def test_bad_videos_and_sidecars_are_recorded_statuses_naming_the_file(sqlite_factory, tiny_classifier, tmp_path):
    root = tmp_path / "campaigns"
    ad = root / "spring" / "teaser"
    good = _video(ad / "good.mp4")
    (ad / "corrupt.mp4").write_bytes(os.urandom(4000))
    (ad / "truncated.mp4").write_bytes(good.read_bytes()[:1500])
    (ad / "text.webm").write_text("not a video\n")
    _video(ad / "offset.mp4")
    (ad / "offset.json").write_text(json.dumps({"ad_offset_s": "soon"}))
    summary = _run(sqlite_factory, tiny_classifier, root)
    assert summary.status == "ok" and summary.videos_found == 5
    rows = _videos(sqlite_factory)
    assert rows["spring/teaser/good.mp4"].status == "ok"
    assert rows["spring/teaser/offset.mp4"].status == "bad_sidecar"
    assert "spring/teaser/offset.json" in rows["spring/teaser/offset.mp4"].error
    for name in ("corrupt.mp4", "truncated.mp4", "text.webm"):
        row = rows[f"spring/teaser/{name}"]
        assert row.status in ("unreadable", "unsupported"), (name, row.status, row.error)
        assert row.error.startswith(f"spring/teaser/{name}"), row.error  # relative to ROOT, as the row's path
        assert str(root) not in row.error
    assert summary.videos_failed == 4 and summary.videos_ok == 1
    assert {p for p, _, _ in summary.failures} == {p for p in rows if not p.endswith("good.mp4")}
    with sqlite_factory() as s:  # failed videos have no frames
        assert s.scalar(select(func.count(func.distinct(VideoFrameRow.video_id)))) == 1


def test_a_run_killed_mid_video_loses_that_video_only_and_the_next_run_finishes(sqlite_factory, tiny_classifier,
                                                                                 tmp_path, monkeypatch):
    root = tmp_path / "campaigns"
    for name in ("a.mp4", "b.mp4"):
        _video(root / "spring" / "teaser" / name)
    real = video_batch.analyze_video

    def dies_on_b(path, *args, **kwargs):
        if str(path).endswith("b.mp4"):
            raise KeyboardInterrupt  # as far as the database is concerned, what kill -9 does mid-video
        return real(path, *args, **kwargs)

    monkeypatch.setattr(video_batch, "analyze_video", dies_on_b)
    with pytest.raises(KeyboardInterrupt):
        _run(sqlite_factory, tiny_classifier, root)
    assert list(_videos(sqlite_factory)) == ["spring/teaser/a.mp4"]
    monkeypatch.setattr(video_batch, "analyze_video", real)
    summary = _run(sqlite_factory, tiny_classifier, root)
    assert (summary.videos_processed, summary.videos_unchanged) == (1, 1)
    assert sorted(_videos(sqlite_factory)) == ["spring/teaser/a.mp4", "spring/teaser/b.mp4"]
    frames = _frames(sqlite_factory)
    assert len(frames) == len({(f.video_id, f.time_ms) for f in frames}) == 8


def test_video_detector_defaults_to_64_px_faces_unless_given():
    assert video_batch.video_detector("blazeface").min_size == 64
    assert video_batch.video_detector("blazeface", min_face=30).min_size == 30


def test_run_command_counts_videos_and_takes_video_fps(tmp_path, tiny_model_file):
    root = tmp_path / "campaigns"
    _video(root / "spring" / "teaser" / "v1.mp4")
    db = f"sqlite:///{tmp_path / 'r.sqlite'}"
    args = ["run", str(root), "--db", db, "--model", str(tiny_model_file), "--workers", "0", "--no-reports",
            "--video-fps", "1"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert "1 videos found, 1 processed (1 ok, 0 no face, 0 failed), 0 unchanged, 2 frames with a face" in result.output
    bad = CliRunner().invoke(cli, [*args[:-1], "0"])
    assert bad.exit_code == 2 and "--video-fps" in bad.output
    engine = make_engine(db)
    try:
        with sessionmaker(bind=engine)() as s:
            assert s.scalar(select(VideoRow.sample_fps)) == 1.0
            assert s.scalar(select(func.count()).select_from(ImageRow)) == 0
            assert s.scalar(select(Run.status)) == "ok"
    finally:
        engine.dispose()


def test_a_changed_sidecar_redoes_its_video_with_the_new_offset(sqlite_factory, tiny_classifier, tmp_path):
    root = tmp_path / "campaigns"
    path = _video(root / "spring" / "teaser" / "v1.mp4", seconds=3.0)
    sidecar = path.with_suffix(".json")
    sidecar.write_text('{"ad_offset_s": 0.5}')
    _run(sqlite_factory, tiny_classifier, root)
    assert _videos(sqlite_factory)["spring/teaser/v1.mp4"].offset_s == 0.5
    assert _run(sqlite_factory, tiny_classifier, root).videos_unchanged == 1
    sidecar.write_text('{"ad_offset_s": 1.0}')
    os.utime(sidecar, ns=(sidecar.stat().st_mtime_ns + 10**9,) * 2)
    summary = _run(sqlite_factory, tiny_classifier, root)
    assert (summary.videos_processed, summary.videos_unchanged) == (1, 0)
    [row] = _videos(sqlite_factory).values()
    assert row.offset_s == 1.0 and row.frames_sampled == 4  # 2 s of the ad left at 2 fps
    assert _on_grid([f.time_ms for f in _frames(sqlite_factory)], 4)
    sidecar.unlink()  # back to an offset of 0
    assert _run(sqlite_factory, tiny_classifier, root).videos_processed == 1
    assert _videos(sqlite_factory)["spring/teaser/v1.mp4"].offset_s == 0.0
    assert len(_frames(sqlite_factory)) == 6


def test_image_workers_start_only_when_there_is_an_image_to_read(sqlite_factory, tiny_classifier, tmp_path,
                                                                 monkeypatch):
    from PIL import Image

    from emotion_batch import workers

    started = []
    real = workers.WorkerPool

    def counting_pool(*args, **kwargs):
        started.append(args[0])
        return real(*args, **kwargs)

    monkeypatch.setattr(workers, "WorkerPool", counting_pool)
    root = tmp_path / "campaigns"
    _video(root / "spring" / "teaser" / "v1.mp4", seconds=1.0)
    summary = _run(sqlite_factory, tiny_classifier, root, workers=2)
    assert summary.videos_ok == 1 and started == []  # recordings alone: no image worker process
    Image.new("RGB", (64, 48), "gray").save(root / "spring" / "teaser" / "photo.jpg")
    summary = _run(sqlite_factory, tiny_classifier, root, workers=2)
    assert summary.processed == 1 and started == [2]  # the new image: the pool starts once
    summary = _run(sqlite_factory, tiny_classifier, root, workers=2)
    assert summary.processed == 0 and started == [2]  # nothing new: no pool either
