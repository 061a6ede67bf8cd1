"""Data retention and erasure: `emotion-batch prune --older-than` and `emotion-batch delete --campaign/--ad`."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from emotion_batch.cli import cli
from emotion_batch.config import Settings
from emotion_batch.exceptions import ConfigError, RunLockedError
from emotion_batch.jobs import delete_job, prune_job
from emotion_batch.store.models import Ad, Campaign, FaceRow, ImageRow, Run
from emotion_batch.store.retention import Removed, parse_age
from emotion_batch.store.session import init_db, make_engine, run_lock

from .store_data import PLAN, T0, populate

NOW = T0 + dt.timedelta(days=100)


@pytest.fixture()
def db(db_url):
    """A database with the standard data at T0 and a newer campaign 95 days later; yields (engine, url)."""
    engine = make_engine(db_url)
    init_db(engine)
    with Session(engine) as session, session.begin():
        populate(session)
        populate(session, plan={("spring", "new ad"): [("ok", ["happy", "sad"], 0), ("no_face", [], 1)],
                                ("summer", "late ad"): [("ok", ["neutral"], 0)]},
                 t0=T0 + dt.timedelta(days=95))
    yield engine, db_url
    engine.dispose()


def _counts(engine) -> dict[str, int]:
    with Session(engine) as s:
        return {m.__tablename__: s.scalar(select(func.count()).select_from(m)) for m in (Run, Campaign, Ad, ImageRow, FaceRow)}


def _faces_per_campaign(engine) -> dict[str, int]:
    with engine.connect() as conn:
        return dict(conn.execute(text("SELECT campaign, count(*) FROM face_results GROUP BY campaign")).all())


def test_parse_age():
    assert parse_age("90d") == dt.timedelta(days=90)
    assert parse_age("12w") == dt.timedelta(weeks=12)
    assert parse_age(" 36h ") == dt.timedelta(hours=36)
    for bad in ("90", "3 months", "0d", "-1d", "1.5d", ""):
        with pytest.raises(ConfigError, match=r"older_than must be .*such as 90d\. Received: older_than="):
            parse_age(bad)


def test_prune_removes_old_results_and_keeps_new_ones(db):
    engine, url = db
    before = _counts(engine)
    old_faces = sum(len(tops) for images in PLAN.values() for _, tops, _ in images)
    removed, cutoff = prune_job(Settings(db=url), "30d", now=NOW)
    assert cutoff == NOW - dt.timedelta(days=30)
    assert removed == Removed(faces=old_faces, images=sum(len(v) for v in PLAN.values()), ads=len(PLAN),
                              campaigns=2, runs=1)  # winter and autumn go; summer keeps its late ad
    after = _counts(engine)
    assert after == {k: before[k] - getattr(removed, k if k != "faces" else "faces") for k in before}
    assert _faces_per_campaign(engine) == {"spring": 2, "summer": 1}
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM images WHERE run_id IS NULL")).scalar() == 0


def test_dry_run_counts_without_removing(db):
    engine, url = db
    before = _counts(engine)
    removed, _ = prune_job(Settings(db=url), "30d", now=NOW, dry_run=True)
    assert removed.images > 0 and _counts(engine) == before


def test_delete_a_campaign_removes_all_its_rows_and_nothing_else(db, tmp_path):
    engine, url = db
    before = _counts(engine)
    photo = tmp_path / "summer" / "ad_one" / "img_000.jpg"  # an image on disk stays
    photo.parent.mkdir(parents=True)
    photo.write_bytes(b"\xff\xd8 not really a jpeg")
    removed = delete_job(Settings(db=url), campaign="summer")
    assert removed.campaigns == 1 and removed.ads == 4 and removed.faces == 11 + 8 + 4 + 1
    assert _counts(engine)["faces"] == before["faces"] - removed.faces
    with engine.connect() as conn:
        for view in ("face_results", "image_results", "ad_emotion_summary", "failed_images", "daily_emotion_trend"):
            assert conn.execute(text(f"SELECT count(*) FROM {view} WHERE campaign = 'summer'")).scalar() == 0, view
        assert conn.execute(text("SELECT count(*) FROM campaign_emotion_summary WHERE campaign = 'summer'")).scalar() == 0
    assert set(_faces_per_campaign(engine)) == {"winter", "autumn", "spring"}
    assert photo.read_bytes() == b"\xff\xd8 not really a jpeg"


def test_delete_one_ad_keeps_its_campaign(db):
    engine, url = db
    removed = delete_job(Settings(db=url), campaign="summer", ad="ad two")
    assert (removed.campaigns, removed.ads, removed.images, removed.faces) == (0, 1, 4, 8)
    with engine.connect() as conn:
        ads = conn.execute(text("SELECT ad FROM ad_emotion_summary WHERE campaign = 'summer'")).scalars().all()
    assert sorted(ads) == ["ad_one", "late ad", "tie"]
    assert delete_job(Settings(db=url), ad="teaser").ads == 1  # unique across campaigns: no --campaign needed


def test_delete_names_what_it_cannot_find(db):
    _, url = db
    with pytest.raises(ConfigError, match=r"campaign must be a stored campaign, one of \['autumn', 'spring', 'summer', "
                                          r"'winter'\]\. Received: campaign='fall'"):
        delete_job(Settings(db=url), campaign="fall")
    populate_twice = make_engine(url)
    with Session(populate_twice) as session, session.begin():
        populate(session, plan={("spring", "tie"): [("ok", ["happy"], 0)]})
    populate_twice.dispose()
    with pytest.raises(ConfigError, match=r"ad 'tie' exists in the campaigns \['spring', 'summer'\]: add --campaign"):
        delete_job(Settings(db=url), ad="tie")
    with pytest.raises(ConfigError, match="ad must be a stored ad in campaign 'winter'"):
        delete_job(Settings(db=url), campaign="winter", ad="tie")


def test_delete_is_one_transaction(db, monkeypatch):
    """A failure after the faces are deleted leaves every row in place."""
    engine, url = db
    before = _counts(engine)
    import emotion_batch.store.retention as retention

    real = retention._run
    calls = []

    def failing(session, statement):
        calls.append(statement)
        if len(calls) == 3:  # faces and images are gone, the ads are next
            raise RuntimeError("connection lost")
        return real(session, statement)

    monkeypatch.setattr(retention, "_run", failing)
    with pytest.raises(RuntimeError, match="connection lost"):
        delete_job(Settings(db=url), campaign="summer")
    assert _counts(engine) == before


def test_prune_and_delete_wait_for_no_run(db):
    engine, url = db
    with run_lock(engine):
        with pytest.raises(RunLockedError):
            prune_job(Settings(db=url), "30d", now=NOW)
        with pytest.raises(RunLockedError):
            delete_job(Settings(db=url), campaign="summer")


def test_prune_and_delete_cli(db):
    engine, url = db
    runner = CliRunner()
    before = _counts(engine)
    dry = runner.invoke(cli, ["prune", "--older-than", "30d", "--db", url, "--dry-run"])
    assert dry.exit_code == 0 and "would remove" in dry.output and _counts(engine) == before
    declined = runner.invoke(cli, ["delete", "--campaign", "winter", "--db", url], input="n\n")
    assert declined.exit_code == 1 and "Aborted" in declined.output and _counts(engine) == before
    confirmed = runner.invoke(cli, ["delete", "--campaign", "winter", "--db", url], input="y\n")
    assert confirmed.exit_code == 0 and "removed" in confirmed.output and "image files are untouched" in confirmed.output
    assert "winter" not in _faces_per_campaign(engine)
    pruned = runner.invoke(cli, ["prune", "--older-than", "1w", "--db", url, "--yes", "--json"])
    assert pruned.exit_code == 0, pruned.output
    assert json.loads(pruned.stdout)["removed"]["images"] > 0  # T0 + 95 days is long ago now
    assert _counts(engine)["images"] == 0
    usage = runner.invoke(cli, ["delete", "--db", url])
    assert usage.exit_code == 2 and "--campaign" in usage.output
    bad = runner.invoke(cli, ["prune", "--older-than", "soon", "--db", url, "--yes"])
    assert bad.exit_code == 1 and "such as 90d" in bad.output
