"""The batch job end to end on a real campaign tree, with a tiny real model."""

from __future__ import annotations

import os
import time

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.orm import sessionmaker

from emotion_batch.exceptions import ConfigError, RunLockedError
from emotion_batch.labels import EMOTIONS
from emotion_batch.pipeline import RunOptions, run_batch
from emotion_batch.store.models import Ad, Campaign, FaceRow, ImageRow, Run
from emotion_batch.store.session import make_engine, run_lock


@pytest.fixture()
def factory(db_url):
    """A session factory on an empty database, once on SQLite and once on PostgreSQL (``db_url``)."""
    engine = make_engine(db_url)
    yield sessionmaker(bind=engine, expire_on_commit=False)
    engine.dispose()


def _run(factory, classifier, root, **kw):
    kw.setdefault("workers", 0)
    return run_batch(factory, classifier, RunOptions(root=str(root), **kw))


def _counts(factory):
    with factory() as s:
        return {m.__tablename__: s.scalar(select(func.count()).select_from(m)) for m in (Run, Campaign, Ad, ImageRow, FaceRow)}


def test_first_run_records_every_image_and_face(factory, tiny_classifier, campaign_tree):
    summary = _run(factory, tiny_classifier, campaign_tree["root"])
    expected = campaign_tree["expected"]
    assert summary.status == "ok"
    assert summary.images_found == len(expected) == summary.processed
    with factory() as s:
        rows = {r.image_path: (r.status, r.faces, r.error) for r in s.execute(text("SELECT * FROM image_results"))}
        assert {p: (st, n) for p, (st, n, _) in rows.items()} == expected
        for path, (status, _, error) in rows.items():
            assert (error is None) == (status == "ok"), path
            if status != "ok":
                assert path in error  # the message names the file
        faces = s.execute(text("SELECT * FROM face_results ORDER BY image_path, face_index")).mappings().all()
        assert len(faces) == sum(n for _, n in expected.values()) == summary.faces
        for f in faces:
            probs = [f[f"p_{e}"] for e in EMOTIONS]
            assert sum(probs) == pytest.approx(1.0, abs=1e-4)
            assert f["top_emotion"] == EMOTIONS[probs.index(max(probs))]
            assert f["model_id"] == tiny_classifier.model_id
            assert f["w"] > 20 and f["h"] > 20 and 0 < f["detection_score"] <= 1
        group = [f for f in faces if f["image_path"].endswith("GROUP.JPG")]
        assert [f["face_index"] for f in group] == [0, 1, 2]
        rotated = s.execute(select(ImageRow.width, ImageRow.height).where(ImageRow.path.like("%rotated.jpg"))).one()
        assert tuple(rotated) == (640, 480)  # EXIF-oriented size, not the stored 480x640
        assert {c for (c,) in s.execute(select(Campaign.name))} == {"summer", "winter"}
        run = s.scalars(select(Run)).one()
        assert (run.status, run.images_processed, run.faces) == ("ok", len(expected), summary.faces)
    assert set(summary.ads_with_new_results) == {("summer", "ad_one"), ("summer", "ad two"), ("winter", "teaser")}


def test_rerun_adds_nothing_and_decodes_nothing(factory, tiny_classifier, campaign_tree, monkeypatch):
    _run(factory, tiny_classifier, campaign_tree["root"])
    before = _counts(factory)

    def no_decoding(*a, **k):
        raise AssertionError("an unchanged image was decoded")

    monkeypatch.setattr("emotion_batch.pipeline.decode_image", no_decoding)
    monkeypatch.setattr("emotion_batch.pipeline.hashlib.sha256", no_decoding)
    summary = _run(factory, tiny_classifier, campaign_tree["root"])
    assert summary.processed == 0 and summary.unchanged == len(campaign_tree["expected"])
    assert summary.ads_with_new_results == []
    after = _counts(factory)
    assert after == {**before, "runs": before["runs"] + 1}


def test_changed_file_is_replaced_touched_file_only_rehashed(factory, tiny_classifier, campaign_tree):
    root = campaign_tree["root"]
    _run(factory, tiny_classifier, root)
    before = _counts(factory)
    # same bytes, new mtime: hashed, found identical, not reprocessed
    touched = root / "summer" / "ad_one" / "single_0.jpg"
    os.utime(touched, ns=(time.time_ns(), time.time_ns() + 10**9))
    # a different picture at a known path: processed again, old faces replaced
    (root / "summer" / "ad_one" / "single_1.jpg").write_bytes((root / "summer" / "ad_one" / "nested" / "deeper" / "GROUP.JPG").read_bytes())
    summary = _run(factory, tiny_classifier, root)
    assert summary.processed == 1 and summary.unchanged == len(campaign_tree["expected"]) - 1
    after = _counts(factory)
    assert after["images"] == before["images"]
    assert after["faces"] == before["faces"] + 2  # one face became three
    with factory() as s:
        row = s.execute(select(ImageRow.mtime_ns).where(ImageRow.path == "summer/ad_one/single_0.jpg")).scalar_one()
        assert row == touched.stat().st_mtime_ns


def test_reprocess_redoes_everything_without_duplicates(factory, tiny_classifier, campaign_tree):
    _run(factory, tiny_classifier, campaign_tree["root"])
    before = _counts(factory)
    summary = _run(factory, tiny_classifier, campaign_tree["root"], reprocess=True)
    assert summary.processed == len(campaign_tree["expected"])
    after = _counts(factory)
    assert {k: v for k, v in after.items() if k != "runs"} == {k: v for k, v in before.items() if k != "runs"}


def test_worker_processes_give_the_same_rows(factory, tiny_classifier, campaign_tree, tmp_path):
    _run(factory, tiny_classifier, campaign_tree["root"], workers=2, chunk_images=3)
    other = make_engine(f"sqlite:///{tmp_path / 'serial.sqlite'}")
    serial = sessionmaker(bind=other)
    _run(serial, tiny_classifier, campaign_tree["root"], workers=0)
    query = text("SELECT image_path, face_index, x, p_happy, top_emotion FROM face_results")

    def rows(session):  # rounded and sorted in Python: the same on both engines, whatever their collation
        return sorted((p, i, round(x, 3), round(h, 5), t) for p, i, x, h, t in session.execute(query))

    with factory() as a, serial() as b:
        assert rows(a) == rows(b)
    other.dispose()


def test_overlapping_run_stops_at_once(factory, tiny_classifier, campaign_tree):
    engine = factory.kw["bind"]
    with run_lock(engine):
        started = time.monotonic()
        with pytest.raises(RunLockedError, match="Another emotion-batch run"):
            _run(factory, tiny_classifier, campaign_tree["root"])
        assert time.monotonic() - started < 5
    assert _run(factory, tiny_classifier, campaign_tree["root"]).processed == len(campaign_tree["expected"])


def test_next_run_marks_runs_left_running_as_interrupted(factory, tiny_classifier, tmp_path):
    """A run killed with kill -9 (or whose database went away) never records its end: its row says
    'running' until the next run, holding the lock, knows better."""
    from emotion_batch.store.models import utcnow

    root = tmp_path / "root"
    (root / "c" / "a").mkdir(parents=True)
    _run(factory, tiny_classifier, root)  # creates the schema
    with factory.begin() as s:
        s.add(Run(root="/r", detector="none", model_id="m@0", status="running", started_at=utcnow()))
    summary = _run(factory, tiny_classifier, root)
    assert summary.status == "ok"
    with factory() as s:
        rows = {r.id: (r.status, r.error, r.finished_at) for r in s.scalars(select(Run))}
    assert summary.runs_marked_interrupted == [2] and summary.run_id == 3
    status, error, finished = rows[2]
    assert status == "interrupted" and finished is None
    assert error.startswith("the run ended without recording its end") and "noticed by run 3 at 20" in error
    assert rows[3][0] == "ok" and rows[1][0] == "ok"


def test_huge_image_is_refused_before_decoding(factory, tiny_classifier, tmp_path):
    from PIL import Image

    ad = tmp_path / "root" / "c" / "a"
    ad.mkdir(parents=True)
    Image.new("L", (6000, 5000), 128).save(ad / "huge.png")  # 30 MP, a few KB on disk
    summary = _run(factory, tiny_classifier, tmp_path / "root", max_pixels=20_000_000)
    assert summary.unsupported == 1
    with factory() as s:
        status, error = s.execute(text("SELECT status, error FROM image_results")).one()
    assert status == "unsupported" and "c/a/huge.png" in error and "20,000,000" in error


def test_min_face_reaches_the_worker_processes(factory, tiny_classifier, campaign_tree):
    """--min-face larger than every face in the tree: the workers' detectors report no face at all."""
    summary = _run(factory, tiny_classifier, campaign_tree["root"], workers=1, min_face=5000)
    assert summary.status == "ok" and summary.faces == 0
    with factory() as s:
        statuses = {r.status for r in s.execute(text("SELECT status FROM image_results"))}
    assert "ok" not in statuses and "no_face" in statuses
    with pytest.raises(ConfigError, match="min_face"):
        RunOptions(root=str(campaign_tree["root"]), min_face=0).validate()


def test_one_walk_of_root_sizes_the_progress_bar_and_feeds_the_run(tiny_classifier, campaign_tree, tmp_path,
                                                                     monkeypatch):
    from emotion_batch import discover
    from emotion_batch.config import Settings
    from emotion_batch.jobs import run_job

    root = campaign_tree["root"]
    listings = []
    real_scandir = discover._scandir

    def counting_scandir(path, stats, base):
        if path == base:  # every walk of ROOT starts by listing ROOT itself
            listings.append(path)
        return real_scandir(path, stats, base)

    monkeypatch.setattr(discover, "_scandir", counting_scandir)
    settings = Settings(db=f"sqlite:///{tmp_path / 'bar.sqlite'}")
    files = len(campaign_tree["expected"]) + len(campaign_tree["videos"])
    for run in ("first", "again"):  # new files, then unchanged ones (skipped without a task)
        totals, handled = [], []
        listings.clear()
        summary, _ = run_job(settings, RunOptions(root=str(root), workers=0), classifier=tiny_classifier,
                             on_total=totals.append, progress=handled.append, render=False)
        assert len(listings) == 1, run
        assert totals == [files] == [summary.images_found + summary.videos_found], run
        assert sum(handled) == files, run


class _ClassifyingExecutor:
    """An executor that says it classifies (``Executor.classifies``), in this process; ``forget`` drops the
    probabilities of the outcomes with faces, breaking its word."""

    classifies, worker_deaths, device = True, 0, "test:CPU"

    def __init__(self, classifier, options, *, forget: bool = False):
        from emotion_batch.pipeline import Analyser

        self.classifier, self.forget = classifier, forget
        self.analyser = Analyser(options, classifier.size, classifier.channels)

    def map(self, tasks):
        from emotion_batch.pipeline import classify_outcomes

        for task in tasks:
            outcome = self.analyser(task)
            if not self.forget:
                classify_outcomes(self.classifier, [outcome])
            yield outcome

    def map_videos(self, tasks):
        return iter(())

    def close(self, *, terminate=False):
        pass


def test_an_executor_that_classifies_is_taken_at_its_word_and_checked(factory, tiny_classifier, campaign_tree):
    from types import SimpleNamespace

    from emotion_batch.exceptions import EngineError

    options = RunOptions(root=str(campaign_tree["root"]), workers=0)
    named = SimpleNamespace(model_id=tiny_classifier.model_id)  # names the model; nothing here may call it
    summary = run_batch(factory, named, options, executor=lambda: _ClassifyingExecutor(tiny_classifier, options))
    assert summary.status == "ok" and summary.device == "test:CPU"
    assert summary.faces == sum(n for _, n in campaign_tree["expected"].values())
    with pytest.raises(EngineError, match=r"classifies, yet returned summer/.+ \(\d faces\) without"):
        again = RunOptions(root=str(campaign_tree["root"]), workers=0, reprocess=True)
        run_batch(factory, named, again, executor=lambda: _ClassifyingExecutor(tiny_classifier, again, forget=True))
    with factory() as s:
        assert s.scalars(select(Run.status).order_by(Run.id)).all() == ["ok", "failed"]
