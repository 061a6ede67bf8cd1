"""Schema under version control: the Alembic migrations, the models, sql/schema.sql and sql/views*.sql agree,
an empty database is created at the newest revision, an older one is refused until `emotion-batch db upgrade`."""

from __future__ import annotations

import os

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from click.testing import CliRunner
from sqlalchemy import inspect, text
from sqlalchemy.orm import Session

from emotion_batch.assets import asset_dir
from emotion_batch.cli import cli
from emotion_batch.exceptions import SchemaError
from emotion_batch.store.models import Base
from emotion_batch.store.schema import (
    BASELINE,
    VERSION_TABLE,
    alembic_config,
    head_revision,
    reference_schema_sql,
    revisions,
    schema_status,
    upgrade,
)
from emotion_batch.store.session import init_db, make_engine, view_statements

from .store_data import assert_rows_equal, populate, populate_videos

VIEWS = {"face_results", "image_results", "ad_emotion_summary", "campaign_emotion_summary", "failed_images",
         "daily_emotion_trend", "ad_second_trace"}


@pytest.fixture()
def engine(db_url):
    engine = make_engine(db_url)
    yield engine
    engine.dispose()


def _views(engine) -> set[str]:
    return set(inspect(engine).get_view_names())


def _as_before_migrations(engine) -> None:
    """The database an emotion-batch without migrations made: the baseline tables and views, no version table."""
    upgrade(engine, BASELINE)
    with engine.begin() as conn:
        conn.exec_driver_sql(f"DROP TABLE {VERSION_TABLE}")


def test_revisions_form_one_line_from_the_baseline():
    assert revisions()[0] == BASELINE and revisions()[-1] == head_revision()
    assert len(set(revisions())) == len(revisions())


def test_empty_database_gets_the_schema_at_head(engine):
    assert schema_status(engine).state == "empty"
    init_db(engine)
    status = schema_status(engine)
    assert (status.state, status.current) == ("current", head_revision())
    assert set(inspect(engine).get_table_names()) >= {"runs", "campaigns", "ads", "images", "faces", VERSION_TABLE}
    assert _views(engine) == VIEWS
    init_db(engine)  # a second time changes nothing
    assert schema_status(engine).current == head_revision()


def test_migrations_produce_exactly_the_models(engine):
    init_db(engine)
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE, "compare_type": True})
        diff = compare_metadata(context, Base.metadata)
    assert diff == [], f"models and migrations drifted apart; add a migration: {diff}"


def test_reference_ddl_file_is_generated_from_the_models():
    on_disk = (asset_dir("sql") / "schema.sql").read_text(encoding="utf-8")
    assert on_disk == reference_schema_sql(), (
        "sql/schema.sql differs from the models; regenerate it as its header says")
    for name in ("pk_faces", "uq_images_ad_id_path", "fk_faces_image_id_images", "ix_runs_started_at",
                 "ix_images_processed_at", "TIMESTAMP WITH TIME ZONE"):
        assert name in on_disk


def test_views_files_match_the_views_the_migrations_create(engine):
    """Every view in sql/views*.sql, run as a plain query, returns what the migrated database's view returns."""
    init_db(engine)
    with Session(engine) as session, session.begin():
        populate(session)
        populate_videos(session)
    statements = [s for s in view_statements(engine.dialect.name) if s.upper().startswith("CREATE VIEW")]
    names = [s.split()[2] for s in statements]
    assert set(names) == VIEWS
    with engine.connect() as conn:
        for name, statement in zip(names, statements):
            body = statement.split(" AS", 1)[1]
            from_file = [dict(r) for r in conn.execute(text(f"SELECT * FROM ({body}) q")).mappings()]
            from_db = [dict(r) for r in conn.execute(text(f"SELECT * FROM {name}")).mappings()]
            assert from_db, name
            keys = [k for k in ("campaign", "ad", "image_path", "face_index", "day", "second") if k in from_db[0]]
            assert_rows_equal(from_file, from_db, keys=keys, rel=1e-12)


def test_outdated_database_is_refused_until_db_upgrade(engine, tmp_path, tiny_model_file):
    upgrade(engine, BASELINE)
    with pytest.raises(SchemaError, match="emotion-batch db upgrade"):
        init_db(engine)
    url = engine.url.render_as_string(hide_password=False)
    runner = CliRunner()
    root = tmp_path / "root"
    (root / "c" / "a").mkdir(parents=True)
    refused = runner.invoke(cli, ["run", str(root), "--db", url, "--model", str(tiny_model_file), "--workers", "0",
                                  "--no-reports"])
    assert refused.exit_code == 1 and "emotion-batch db upgrade" in refused.output and BASELINE in refused.output
    report = runner.invoke(cli, ["report", "--db", url, "--reports", str(tmp_path / "r")])
    assert report.exit_code == 1 and "emotion-batch db upgrade" in report.output
    status = runner.invoke(cli, ["db", "status", "--db", url, "--json"])
    assert status.exit_code == 0 and '"state": "outdated"' in status.output
    done = runner.invoke(cli, ["db", "upgrade", "--db", url])
    assert done.exit_code == 0, done.output
    assert f"{BASELINE} -> {head_revision()}" in done.output
    assert schema_status(engine).state == "current"
    again = runner.invoke(cli, ["db", "upgrade", "--db", url])
    assert again.exit_code == 0 and "already at revision" in again.output


def test_database_from_before_migrations_keeps_its_rows_through_the_upgrade(engine):
    _as_before_migrations(engine)
    with engine.begin() as conn:
        conn.exec_driver_sql("INSERT INTO campaigns (name, created_at) VALUES ('old', '2024-01-01 00:00:00')")
    status = schema_status(engine)
    assert (status.state, status.current) == ("outdated", None)
    with pytest.raises(SchemaError, match="from before migrations"):
        init_db(engine)
    assert upgrade(engine) == (None, head_revision())
    with engine.connect() as conn:
        assert conn.execute(text("SELECT name FROM campaigns")).scalars().all() == ["old"]
        assert conn.execute(text("SELECT count(*) FROM ad_emotion_summary")).scalar() == 0
    assert _views(engine) == VIEWS


def test_newer_or_foreign_database_is_refused(engine):
    init_db(engine)
    with engine.begin() as conn:
        conn.execute(text(f"UPDATE {VERSION_TABLE} SET version_num = 'f00d'"))
    with pytest.raises(SchemaError, match="newer emotion-batch"):
        init_db(engine)
    with pytest.raises(SchemaError, match="does not know"):
        upgrade(engine)
    with engine.begin() as conn:
        conn.exec_driver_sql(f"DROP TABLE {VERSION_TABLE}")
        for view in VIEWS:
            conn.exec_driver_sql(f"DROP VIEW {view}")
        conn.exec_driver_sql("DROP TABLE faces")
    with pytest.raises(SchemaError, match="not made by emotion-batch"):
        init_db(engine)


def test_every_migration_downgrades_and_upgrades_again(engine):
    init_db(engine)
    with engine.begin() as conn:
        command.downgrade(alembic_config(connection=conn), "base")
    assert schema_status(engine).state == "empty" and _views(engine) == set()
    init_db(engine)
    assert schema_status(engine).state == "current" and _views(engine) == VIEWS


def test_unknown_revision_is_a_clear_error(engine):
    with pytest.raises(SchemaError, match="revision must be one of"):
        upgrade(engine, "nope")


def test_migrations_run_without_an_ini_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no alembic.ini anywhere near
    engine = make_engine(f"sqlite:///{tmp_path / 'x.sqlite'}")
    init_db(engine)
    assert schema_status(engine).state == "current"
    engine.dispose()
    assert not list(tmp_path.glob("*.ini"))


@pytest.fixture()
def small_filesystem(tmp_path):
    """A 1 MB tmpfs mounted on ``tmp_path/small`` (needs root: skipped otherwise)."""
    import subprocess

    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs to fill needs root")
    mnt = tmp_path / "small"
    mnt.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mnt)], capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", str(mnt)], check=True)


def test_schema_creation_on_a_full_disk_leaves_an_empty_database(small_filesystem):
    """The disk fills while the schema is created, at every point from the first table to the last: the
    database stays empty (never half a schema that no later run accepts), and once space is freed the next
    run creates the whole schema."""
    from emotion_batch.exceptions import DatabaseError
    from emotion_batch.store.schema import schema_status
    from emotion_batch.store.session import init_db

    mnt = small_filesystem
    failures = 0
    for free_kb in range(8, 400, 8):
        for leftover in mnt.iterdir():
            leftover.unlink()
        stat = os.statvfs(mnt)
        (mnt / "filler").write_bytes(b"\0" * max(0, stat.f_bavail * stat.f_frsize - free_kb * 1024))
        engine = make_engine(f"sqlite:///{mnt / 'r.sqlite'}")
        try:
            init_db(engine)
        except DatabaseError as exc:
            assert "database or disk is full" in str(exc) or "disk I/O error" in str(exc)  # SQLite's words for ENOSPC
            failures += 1
        else:
            break
        finally:
            engine.dispose()
        (mnt / "filler").unlink()
        engine = make_engine(f"sqlite:///{mnt / 'r.sqlite'}")
        try:
            assert schema_status(engine).state == "empty", f"{free_kb} KB free"
            init_db(engine)  # space freed: the next run makes the whole schema
            assert schema_status(engine).state == "current"
        finally:
            engine.dispose()
    assert failures >= 5, "the disk never filled while the schema was created"
