"""Worker processes killed mid-run (``kill -9``, a decoder crash): the run notices, retries, records and ends;
and no process of a run outlives it, after a normal exit, Ctrl-C or a killed worker."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .worker_hooks import make_tree

ROOT = Path(__file__).resolve().parent.parent
#: Seconds a scenario may take; the unfixed job waited forever on a dead worker.
LIMIT = 120


def _env() -> dict:
    return {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2"}


def _start(root: Path, db: Path, workers: int = 2) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "tests.worker_hooks", str(root), f"sqlite:///{db}", str(workers)],
                            env=_env(), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)


def _rows(db: Path, sql: str) -> list[tuple]:
    con = sqlite3.connect(db)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def _session_processes(sid: int) -> list[str]:
    """The live processes of session ``sid`` (zombies excluded): ``pid command``."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        head, _, rest = text.rpartition(")")
        fields = rest.split()
        if fields[0] != "Z" and int(fields[3]) == sid:
            found.append(f"{stat.parent.name} {head.partition('(')[2]}")
    return found


def _assert_no_process_left(sid: int, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while (left := _session_processes(sid)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not left, f"processes of the run outlived it: {left}"


def _held(tmp_path: Path, count: int, proc: subprocess.Popen) -> list[int]:
    """Wait (bounded) until ``count`` workers have taken a ``hold*`` image; their pids."""
    deadline = time.monotonic() + LIMIT
    held = tmp_path / "held"
    while time.monotonic() < deadline:
        pids = sorted(int(p.name) for p in held.glob("*")) if held.is_dir() else []
        if len(pids) >= count:
            return pids
        if proc.poll() is not None:
            pytest.fail(f"the run ended before a worker took the image: {proc.stderr.read()}")
        time.sleep(0.05)
    pytest.fail("no worker took the image")


def test_poison_image_is_retried_once_then_recorded_and_the_run_ends(tmp_path):
    root, db = tmp_path / "root", tmp_path / "r.sqlite"
    make_tree(root, [f"img{i}.png" for i in range(9)] + ["poison.png", "flaky.png"])
    proc = _start(root, db)
    out, err = proc.communicate(timeout=LIMIT)
    assert proc.returncode == 3, err  # done, but worker processes died
    summary = json.loads(out)
    # poison killed its first worker and the fresh one; flaky killed one worker, then worked
    assert summary["worker_deaths"] == 3
    assert summary["worker_killers"] == ["camp/ad/poison.png"]
    rows = dict(((p, (s, e)) for p, s, e in _rows(db, "SELECT path, status, error FROM images")))
    assert len(rows) == 11
    status, error = rows.pop("camp/ad/poison.png")
    assert status == "unreadable"
    assert error == "camp/ad/poison.png: worker died while processing (killed by SIGKILL, twice)"
    assert {s for s, _ in rows.values()} == {"ok"}  # flaky.png too: its retry worked
    [(run_status, run_error)] = _rows(db, "SELECT status, error FROM runs")
    assert run_status == "workers_died"
    assert "3 worker processes died" in run_error and "camp/ad/poison.png" in run_error
    assert _rows(db, "SELECT count(*) FROM faces") == [(10,)]
    _assert_no_process_left(proc.pid)


def test_worker_killed_from_outside_is_noticed_and_nothing_outlives_the_run(tmp_path):
    root, db = tmp_path / "root", tmp_path / "r.sqlite"
    make_tree(root, [f"img{i}.png" for i in range(6)] + ["hold.png"])
    proc = _start(root, db)
    first = _held(tmp_path, 1, proc)[0]
    os.kill(first, signal.SIGKILL)
    # the fresh worker retries the image (and holds it again); kill -9 that one too
    second = [p for p in _held(tmp_path, 2, proc) if p != first][0]
    os.kill(second, signal.SIGKILL)
    out, err = proc.communicate(timeout=LIMIT)
    assert proc.returncode == 3, err
    rows = dict(((p, (s, e)) for p, s, e in _rows(db, "SELECT path, status, error FROM images")))
    assert rows.pop("camp/ad/hold.png") == ("unreadable", "camp/ad/hold.png: worker died while processing "
                                            "(killed by SIGKILL, twice)")
    assert len(rows) == 6 and {s for s, _ in rows.values()} == {"ok"}
    assert _rows(db, "SELECT status FROM runs") == [("workers_died",)]
    _assert_no_process_left(proc.pid)


def test_ctrl_c_while_a_worker_is_busy_ends_every_process(tmp_path):
    root, db = tmp_path / "root", tmp_path / "r.sqlite"
    make_tree(root, ["hold.png", "img0.png"])
    proc = _start(root, db, workers=1)
    _held(tmp_path, 1, proc)
    os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal sends: the whole process group
    _, err = proc.communicate(timeout=LIMIT)
    assert proc.returncode == 130, err
    assert _rows(db, "SELECT status, error FROM runs") == [("interrupted", "interrupted by the user")]
    _assert_no_process_left(proc.pid)


def test_normal_exit_of_the_cli_leaves_no_process(tmp_path, tiny_model_file):
    root, db = tmp_path / "root", tmp_path / "r.sqlite"
    make_tree(root, [f"img{i}.png" for i in range(4)])
    proc = subprocess.Popen([sys.executable, "-m", "emotion_batch", "run", str(root), "--db", f"sqlite:///{db}",
                             "--model", str(tiny_model_file), "--detector", "none", "--workers", "2",
                             "--report-workers", "0", "--reports", str(tmp_path / "reports"), "-q"],
                            env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    assert _rows(db, "SELECT count(*) FROM images WHERE status = 'ok'") == [(4,)]
    _assert_no_process_left(proc.pid)


def test_cli_says_when_workers_died_and_exits_3(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from emotion_batch.cli import cli
    from emotion_batch.pipeline import RunSummary
    from emotion_batch.reports import ReportsWritten

    summary = RunSummary(run_id=7, status="workers_died", worker_deaths=2, worker_killers=["c/a/poison.png"])
    monkeypatch.setattr("emotion_batch.jobs.run_job", lambda *a, **k: (summary, ReportsWritten()))
    result = CliRunner().invoke(cli, ["run", str(tmp_path), "--db", f"sqlite:///{tmp_path / 'r.sqlite'}", "-q", "-v"])
    assert result.exit_code == 3
    assert "2 worker processes died during the run; their images were retried, 1 recorded as unreadable " \
           "(run 7, status workers_died)" in result.output
