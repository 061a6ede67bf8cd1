"""Where the CLI promises one line, the library raises one of our errors naming the path and the cause:
a database file that cannot be written, a disk filling during a run, reports onto a full filesystem."""

from __future__ import annotations

import datetime as dt
import os
import subprocess

import pytest
from sqlalchemy.orm import Session, sessionmaker

from emotion_batch.exceptions import DatabaseError, ReportError
from emotion_batch.pipeline import RunOptions, run_batch
from emotion_batch.reports import ReportOptions, render_reports
from emotion_batch.store.session import init_db, make_engine

from .store_data import populate
from .worker_hooks import StubClassifier, make_tree


def _run(db, root):
    engine = make_engine(f"sqlite:///{db}")
    try:
        return run_batch(sessionmaker(bind=engine, expire_on_commit=False), StubClassifier(),
                         RunOptions(root=str(root), detector="none", workers=0, chunk_images=2))
    finally:
        engine.dispose()


def _mount_small(mnt, size="1m"):
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs to fill needs root")
    mnt.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mnt)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")


def _fill(mnt, leave_bytes: int = 0):
    stat = os.statvfs(mnt)
    with open(mnt / "filler", "wb") as handle:
        try:
            handle.write(b"\0" * max(0, stat.f_bavail * stat.f_frsize - leave_bytes))
        except OSError:
            pass


def test_an_immutable_database_file_is_one_line(tmp_path):
    db, root = tmp_path / "r.sqlite", tmp_path / "root"
    make_tree(root, ["a.png", "b.png"])
    _run(db, root)
    (root / "camp" / "ad" / "c.png").write_bytes((root / "camp" / "ad" / "a.png").read_bytes() + b"\0")
    if subprocess.run(["chattr", "+i", str(db)], capture_output=True).returncode != 0:
        pytest.skip("chattr +i does not work on this filesystem")
    try:
        with pytest.raises(DatabaseError) as info:
            _run(db, root)
    finally:
        subprocess.run(["chattr", "-i", str(db)], check=True)
    message = str(info.value)
    assert "\n" not in message and str(db) in message and "readonly" in message, message


def test_a_disk_filling_during_a_run_is_one_line(tmp_path):
    mnt = tmp_path / "small"
    _mount_small(mnt, "2m")
    try:
        db, root = mnt / "r.sqlite", tmp_path / "root"
        make_tree(root, [f"img{i}.png" for i in range(40)])
        init_db(engine := make_engine(f"sqlite:///{db}"))
        engine.dispose()
        _fill(mnt, leave_bytes=48 * 1024)  # room for the run's row, not for its images
        with pytest.raises(DatabaseError) as info:
            _run(db, root)
        message = str(info.value)
        assert "\n" not in message and str(db) in message, message
        assert "full" in message or "disk I/O error" in message, message
    finally:
        subprocess.run(["umount", str(mnt)], check=True)


def test_reports_onto_a_full_filesystem_are_one_line(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'r.sqlite'}")
    init_db(engine)
    with Session(engine) as session, session.begin():
        populate(session)
    mnt = tmp_path / "reports"
    _mount_small(mnt)
    try:
        _fill(mnt)
        with Session(engine) as session, pytest.raises(ReportError) as info:
            render_reports(session, mnt, ads=[], options=ReportOptions(
                min_faces=1, generated_at=dt.datetime(2024, 6, 1, tzinfo=dt.timezone.utc), workers=0))
        message = str(info.value)
        assert message.startswith(f"Cannot write {mnt}/") and message.endswith("No space left on device"), message
    finally:
        engine.dispose()
        subprocess.run(["umount", str(mnt)], check=True)
