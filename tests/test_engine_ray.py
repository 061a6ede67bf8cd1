"""The Ray engine gives exactly the local engine's rows, on a local Ray instance and a small real campaign."""

from __future__ import annotations

import os

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.orm import sessionmaker

from emotion_batch.exceptions import ConfigError, ModelError
from emotion_batch.pipeline import RunOptions, run_batch
from emotion_batch.store.models import FaceRow, ImageRow, Run
from emotion_batch.store.session import make_engine

ray = pytest.importorskip("ray", reason="the Ray engine needs the ray extra: pip install 'emotion-batch[ray]'")
pytest.importorskip("ray.data", reason="the Ray engine needs Ray Data: pip install 'emotion-batch[ray]'")

from emotion_batch.classifier import locate_model  # noqa: E402
from emotion_batch.engines.ray_engine import run_batch_ray  # noqa: E402

FACE_QUERY = text("SELECT campaign, ad, image_path, face_index, x, y, w, h, detection_score, top_emotion, p_angry, "
                  "p_disgust, p_fear, p_happy, p_neutral, p_sad, p_surprise, model_id FROM face_results")
IMAGE_QUERY = text("SELECT campaign, ad, image_path, status, error, faces FROM image_results")


@pytest.fixture(scope="module")
def local_ray():
    """A two-CPU Ray instance in this machine, for the module's tests."""
    ray.init(num_cpus=2, include_dashboard=False, object_store_memory=200 * 2**20, log_to_driver=False,
             runtime_env={"env_vars": {"TF_CPP_MIN_LOG_LEVEL": "2"}})
    yield ray
    ray.shutdown()


def _factory(path):
    return sessionmaker(bind=make_engine(f"sqlite:///{path}"), expire_on_commit=False)


def _rows(factory, query):
    def norm(value):
        return round(value, 4) if isinstance(value, float) else value

    with factory() as session:
        return sorted(tuple(norm(v) for v in row) for row in session.execute(query))


def _counts(factory):
    with factory() as s:
        return {m.__tablename__: s.scalar(select(func.count()).select_from(m)) for m in (Run, ImageRow, FaceRow)}


def test_ray_engine_gives_the_local_rows_and_reruns_add_nothing(local_ray, tiny_classifier, tiny_model_file,
                                                                 campaign_tree, tmp_path):
    root = str(campaign_tree["root"])
    local = _factory(tmp_path / "local.sqlite")
    distributed = _factory(tmp_path / "ray.sqlite")
    run_batch(local, tiny_classifier, RunOptions(root=root, workers=0))
    model = locate_model(str(tiny_model_file))
    assert model.model_id == tiny_classifier.model_id
    # chunk_images=4: several actor calls, several chunks written, two actors busy; batch_size: the actors'
    # faces per model call, as the local classifier's
    summary = run_batch_ray(distributed, model, RunOptions(root=root, engine="ray", workers=2, chunk_images=4,
                                                           batch_size=8))

    expected = campaign_tree["expected"]
    assert summary.status == "ok" and summary.processed == len(expected) and summary.device == "ray:CPU"
    assert summary.unreadable == sum(1 for s, _ in expected.values() if s == "unreadable")
    ray_faces, local_faces = _rows(distributed, FACE_QUERY), _rows(local, FACE_QUERY)
    assert len(ray_faces) == sum(n for _, n in expected.values()) == summary.faces
    assert ray_faces == local_faces
    assert _rows(distributed, IMAGE_QUERY) == _rows(local, IMAGE_QUERY)
    with distributed() as s:
        assert {p: (st, n) for _, _, p, st, _, n in _rows(distributed, IMAGE_QUERY)} == expected
        assert s.scalars(select(Run.status)).all() == ["ok"]

    before = _counts(distributed)
    again = run_batch_ray(distributed, model, RunOptions(root=root, engine="ray", workers=2, batch_size=8))
    assert again.processed == 0 and again.unchanged == len(expected)
    assert _counts(distributed) == {**before, "runs": before["runs"] + 1}

    # a changed file goes through the actors again and replaces its old row, as in the local engine
    changed = campaign_tree["root"] / "summer" / "ad_one" / "single_1.jpg"
    changed.write_bytes((campaign_tree["root"] / "summer" / "ad_one" / "nested" / "deeper" / "GROUP.JPG").read_bytes())
    os.utime(changed, ns=(changed.stat().st_atime_ns, changed.stat().st_mtime_ns + 10**9))
    third = run_batch_ray(distributed, model, RunOptions(root=root, engine="ray", workers=2, batch_size=8))
    run_batch(local, tiny_classifier, RunOptions(root=root, workers=0))
    assert third.processed == 1
    assert _rows(distributed, FACE_QUERY) == _rows(local, FACE_QUERY)


def test_ray_engine_refuses_bad_options_and_models(tiny_model_file, tmp_path):
    with pytest.raises(ConfigError, match="engine"):
        RunOptions(root=str(tmp_path), engine="spark").validate()
    with pytest.raises(ConfigError, match="need engine='ray'"):
        RunOptions(root=str(tmp_path), ray_address="auto").validate()
    with pytest.raises(ModelError, match="sha256"):
        locate_model(str(tiny_model_file), sha256="0" * 64)
    factory = _factory(tmp_path / "x.sqlite")
    with pytest.raises(ConfigError, match="workers must be 1 or more"):
        from emotion_batch.engines.ray_engine import RayExecutor

        RayExecutor(RunOptions(root=str(tmp_path), engine="ray", workers=0), locate_model(str(tiny_model_file)))
    with pytest.raises(ConfigError, match="engine='ray'"):
        run_batch_ray(factory, locate_model(str(tiny_model_file)), RunOptions(root=str(tmp_path)))


def test_an_actor_that_cannot_load_the_model_fails_the_run(local_ray, tiny_model_file, campaign_tree, tmp_path):
    import dataclasses

    from emotion_batch.exceptions import EngineError

    factory = _factory(tmp_path / "ray.sqlite")
    replaced = dataclasses.replace(locate_model(str(tiny_model_file)), sha256="0" * 64)  # the node's file differs
    with pytest.raises(EngineError, match="does not match its recorded sha256"):
        run_batch_ray(factory, replaced, RunOptions(root=str(campaign_tree["root"]), engine="ray", workers=1))
    with factory() as s:
        status, error = s.execute(select(Run.status, Run.error)).one()
    assert status == "failed" and "EngineError" in error
    assert _counts(factory)["images"] == 0


def test_cli_runs_the_ray_engine(local_ray, tiny_model_file, campaign_tree, tmp_path):
    import json

    from click.testing import CliRunner

    from emotion_batch.cli import cli

    db = tmp_path / "cli.sqlite"
    args = ["run", str(campaign_tree["root"]), "--db", f"sqlite:///{db}", "--model", str(tiny_model_file),
            "--engine", "ray", "--workers", "2", "--no-reports", "--json"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["processed"] == len(campaign_tree["expected"]) and summary["device"] == "ray:CPU"
    assert summary["faces"] == sum(n for _, n in campaign_tree["expected"].values())
    bad = CliRunner().invoke(cli, ["run", str(campaign_tree["root"]), "--db", f"sqlite:///{db}", "--ray-gpus", "1"])
    assert bad.exit_code == 1 and "need engine='ray'" in bad.output


VIDEO_QUERY = text("SELECT path, status, error, sample_fps, offset_s, frames_sampled, frames_with_face, faces_found, "
                   "tracks, model_id FROM videos")
VIDEO_FRAME_QUERY = text("SELECT v.path, f.time_ms, f.x, f.y, f.w, f.h, f.detection_score, f.p_angry, f.p_disgust, "
                         "f.p_fear, f.p_happy, f.p_neutral, f.p_sad, f.p_surprise, f.top_emotion, f.faces_in_frame, "
                         "f.model_id FROM video_frames f JOIN videos v ON v.id = f.video_id")


def test_ray_engine_takes_videos_one_per_task_with_the_local_rows(local_ray, tiny_classifier, tiny_model_file,
                                                                   tmp_path):
    from emotion_batch.video.synthetic import make_viewer_video

    root = tmp_path / "campaigns"
    ad = root / "spring" / "teaser"
    ad.mkdir(parents=True)
    make_viewer_video(ad / "viewer.mp4", seconds=2.0, fps=10, size=(480, 360))
    (ad / "broken.mp4").write_bytes(os.urandom(2000))
    local = _factory(tmp_path / "local.sqlite")
    distributed = _factory(tmp_path / "ray.sqlite")
    run_batch(local, tiny_classifier, RunOptions(root=str(root), workers=0, video_fps=2.0))
    model = locate_model(str(tiny_model_file))
    summary = run_batch_ray(distributed, model, RunOptions(root=str(root), engine="ray", workers=2, video_fps=2.0,
                                                           batch_size=8))
    assert (summary.videos_found, summary.videos_processed, summary.videos_ok, summary.videos_failed) == (2, 2, 1, 1)
    assert _rows(distributed, VIDEO_QUERY) == _rows(local, VIDEO_QUERY)
    frames = _rows(distributed, VIDEO_FRAME_QUERY)
    assert len(frames) == 4 and frames == _rows(local, VIDEO_FRAME_QUERY)
    again = run_batch_ray(distributed, model, RunOptions(root=str(root), engine="ray", workers=2, video_fps=2.0,
                                                         batch_size=8))
    assert (again.videos_unchanged, again.videos_processed) == (2, 0)
