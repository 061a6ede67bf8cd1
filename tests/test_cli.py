"""The command line as a user meets it: exit codes, messages, --json, and real processes killed mid-run."""

from __future__ import annotations

import hashlib
import io
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import click
import numpy as np
import pytest
from click.testing import CliRunner

from emotion_batch import __version__
from emotion_batch.cli import cli

ROOT = Path(__file__).resolve().parent.parent


def _env() -> dict:
    return {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2"}


def test_help_is_fast_and_imports_no_tensorflow():
    code = "import sys; from emotion_batch.cli import cli; sys.argv=['emotion-batch','--help']\n" \
           "try: cli()\nexcept SystemExit: pass\nassert 'tensorflow' not in sys.modules, 'tensorflow imported'"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=_env(), timeout=60)
    assert result.returncode == 0, result.stderr
    assert "ROOT/<campaign>/<ad>" in result.stdout


def test_version_and_usage_errors():
    runner = CliRunner()
    assert runner.invoke(cli, ["--version"]).output.strip().endswith(__version__)
    bad = runner.invoke(cli, ["run", "x", "--detector", "dlib"])
    assert bad.exit_code == 2 and "blazeface" in bad.output
    assert runner.invoke(cli, ["run"]).exit_code == 2


def test_run_help_lists_its_options_under_headings_in_the_order_of_a_run():
    from emotion_batch.cli import run

    result = CliRunner().invoke(cli, ["run", "--help"])
    assert result.exit_code == 0, result.output
    heading, under = None, {}
    for line in result.output.splitlines():
        if line.endswith(":") and not line.startswith(" "):
            heading = line[:-1]
        elif line.startswith("  -"):  # an option's first line (wrapped help is indented further)
            under.update({word.rstrip(","): heading for word in line.split("  ")[1].split() if word.startswith("-")})
    headings = list(dict.fromkeys(under.values()))
    assert headings == ["Input", "Detection", "Model", "Storage", "Reports", "Engine", "Output"]
    declared = {opt for p in run.params if not isinstance(p, click.Argument) for opt in p.opts} | {"-h", "--help"}
    assert set(under) == declared  # every option under one heading, none left out
    assert (under["--reprocess"], under["--detector"], under["--model"], under["--db"], under["--reports"],
            under["--engine"], under["--json"]) == tuple(headings)


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_draws_a_count_or_a_bar_and_its_quiet_twin_nothing(monkeypatch):
    from emotion_batch.cli_common import progress

    err = _Terminal()
    monkeypatch.setattr(sys, "stderr", err)
    with progress("rows", quiet=False) as rows:  # export: rows counted as they stream, the line ended at the end
        rows(1500)
        rows(2)
    assert err.getvalue() == "\r1,500 rows\r1,502 rows\n"
    err = _Terminal()
    monkeypatch.setattr(sys, "stderr", err)
    with progress("files", quiet=False) as bar:  # run: a bar once the total is known
        bar.total(4)
        bar(4)
    assert "files" in err.getvalue() and "4/4" in err.getvalue()
    for quiet, stream in [(True, _Terminal()), (False, io.StringIO())]:  # -q or --json; stderr not a terminal
        monkeypatch.setattr(sys, "stderr", stream)
        with progress("files", quiet=quiet) as bar:
            bar.total(4)
            bar(4)
        assert stream.getvalue() == ""


def test_run_json_summary_and_rerun(tmp_path, campaign_tree, tiny_model_file, db_url):
    db = db_url
    args = ["run", str(campaign_tree["root"]), "--db", db, "--model", str(tiny_model_file), "--workers", "0",
            "--no-reports", "--json"]
    first = CliRunner().invoke(cli, args)
    assert first.exit_code == 0, first.output
    summary = json.loads(first.stdout)
    expected = campaign_tree["expected"]
    assert summary["processed"] == len(expected)
    assert summary["faces"] == sum(n for _, n in expected.values())
    assert summary["unreadable"] == sum(1 for s, _ in expected.values() if s == "unreadable")
    assert summary["non_images_skipped"] == campaign_tree["not_image"] - len(campaign_tree["videos"])
    assert (summary["videos_found"], summary["videos_failed"]) == (1, 1)
    assert {tuple(f[:2]) for f in summary["failures"]} >= {("summer/ad two/truncated.jpg", "unreadable")}
    second = json.loads(CliRunner().invoke(cli, args).stdout)
    assert second["processed"] == 0 and second["unchanged"] == len(expected)
    assert (second["videos_processed"], second["videos_unchanged"]) == (0, 1)


def test_missing_root_and_dead_database_exit_1_with_a_message(tmp_path, campaign_tree, tiny_model_file):
    runner = CliRunner()
    missing = runner.invoke(cli, ["run", str(tmp_path / "nowhere"), "--db", f"sqlite:///{tmp_path}/a.sqlite",
                                  "--model", str(tiny_model_file), "--workers", "0"])
    assert missing.exit_code == 1 and "nowhere" in missing.output
    dead = runner.invoke(cli, ["run", str(campaign_tree["root"]), "--db", "sqlite:////dev/null/sub/x.sqlite",
                               "--model", str(tiny_model_file), "--workers", "0"])
    assert dead.exit_code == 1 and "/dev/null/sub/x.sqlite" in dead.output
    unparsable = runner.invoke(cli, ["run", str(campaign_tree["root"]), "--db", "not a url",
                                     "--model", str(tiny_model_file), "--workers", "0"])
    assert unparsable.exit_code == 1 and "SQLAlchemy URL" in unparsable.output


def test_tampered_model_is_refused(tmp_path, campaign_tree, tiny_model_file):
    result = CliRunner().invoke(cli, ["run", str(campaign_tree["root"]), "--db", f"sqlite:///{tmp_path}/a.sqlite",
                                      "--model", str(tiny_model_file), "--model-sha256", "0" * 64])
    assert result.exit_code == 1 and "does not match its recorded sha256" in result.output


def _big_tree(root: Path, n: int) -> int:
    from emotion_batch.sample import synthetic_photo

    rng = np.random.default_rng(11)
    photo = synthetic_photo(rng, 320, 240, 1)
    for i in range(n):
        folder = root / "camp" / f"ad{i % 3}"
        folder.mkdir(parents=True, exist_ok=True)
        photo.rotate(i % 7 - 3).save(folder / f"img_{i:04d}.jpg", quality=85)
    return n


def _count(db: Path | str, sql: str) -> int:
    """A count from the database ``db``, a SQLite file or a URL; 0 while the table does not exist yet."""
    if isinstance(db, str):
        return _count_url(db, sql)
    if not db.exists():
        return 0
    con = sqlite3.connect(db, timeout=30)
    try:
        return con.execute(sql).fetchone()[0]
    except sqlite3.OperationalError:
        return 0
    finally:
        con.close()


def _count_url(url: str, sql: str) -> int:
    from sqlalchemy import create_engine, text
    from sqlalchemy.exc import SQLAlchemyError
    from sqlalchemy.pool import NullPool

    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            return conn.execute(text(sql)).scalar() or 0
    except SQLAlchemyError:
        return 0
    finally:
        engine.dispose()


def _start(root, db, model):
    url = db if isinstance(db, str) else f"sqlite:///{db}"
    cmd = [sys.executable, "-m", "emotion_batch", "run", str(root), "--db", url, "--model", str(model),
           "--workers", "0", "--batch-size", "8", "--no-reports", "-q"]
    return subprocess.Popen(cmd, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)


def _wait_for_rows(proc, db, minimum, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _count(db, "SELECT count(*) FROM images") >= minimum:
            return
        if proc.poll() is not None:
            pytest.fail(f"run ended before it could be interrupted: {proc.stderr.read()}")
        time.sleep(0.05)
    pytest.fail("no rows appeared")


@pytest.mark.slow
@pytest.mark.parametrize("how", ["kill", "ctrl-c"])
def test_run_killed_midway_resumes_without_duplicates(tmp_path, tiny_model_file, how, db_url):
    root = tmp_path / "campaigns"
    db = tmp_path / "r.sqlite" if db_url.startswith("sqlite") else db_url  # a file for sqlite3, or a PostgreSQL URL
    total = _big_tree(root, 240)
    proc = _start(root, db, tiny_model_file)
    _wait_for_rows(proc, db, 8)
    os.killpg(proc.pid, signal.SIGKILL if how == "kill" else signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    done = _count(db, "SELECT count(*) FROM images")
    assert 0 < done < total, "the run should have been stopped part-way"
    if how == "ctrl-c":
        assert proc.returncode == 130 and "interrupted" in err
        assert _count(db, "SELECT count(*) FROM runs WHERE status = 'interrupted'") == 1
    else:
        assert proc.returncode == -signal.SIGKILL
    if isinstance(db, str):  # the server drops a dead client's advisory lock: no stale lock blocks the resume
        from .db_engines import wait_until

        assert wait_until(lambda: _count(db, "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'") == 0)
    # every stored image has all its faces: images and faces are committed together
    assert _count(db, "SELECT count(*) FROM images WHERE faces_count <> (SELECT count(*) FROM faces f WHERE f.image_id = images.id)") == 0
    resumed = _start(root, db, tiny_model_file)
    out, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err
    assert (out, err) == ("", ""), "a quiet (-q) run prints nothing, native libraries included (cron mails any output)"
    assert _count(db, "SELECT count(*) FROM images") == total
    assert _count(db, "SELECT count(*) FROM (SELECT ad_id, path FROM images GROUP BY ad_id, path HAVING count(*) > 1)") == 0
    assert _count(db, "SELECT count(*) FROM faces") == _count(db, "SELECT sum(faces_count) FROM images")


def _pdf_text(path: Path) -> str:
    from pypdf import PdfReader

    return " ".join(" ".join((page.extract_text() or "").split()) for page in PdfReader(str(path)).pages)


def _page_size(path: Path) -> tuple[int, int]:
    from pypdf import PdfReader

    box = PdfReader(str(path)).pages[0].mediabox
    return round(float(box.width)), round(float(box.height))


def test_run_renders_reports_and_report_rerenders_from_the_database(tmp_path, campaign_tree, tiny_model_file):
    db = f"sqlite:///{tmp_path / 'r.sqlite'}"
    reports = tmp_path / "reports"
    result = CliRunner().invoke(cli, ["run", str(campaign_tree["root"]), "--db", db, "--reports", str(reports),
                                      "--model", str(tiny_model_file), "--workers", "0", "--min-faces", "2",
                                      "--examples", "--report-workers", "0"])
    assert result.exit_code == 0, result.output
    assert f"3 ad reports, 2 campaign reports, index and summaries in {reports}; open {reports / 'index.html'}" in result.output
    pdf = reports / "summer" / "ad_one.pdf"
    html = reports / "summer" / "ad_one.html"
    assert pdf.read_bytes().startswith(b"%PDF") and html.is_file()
    assert _page_size(pdf) == (595, 842)  # A4 by default
    text = _pdf_text(pdf)
    expected = {p: v for p, v in campaign_tree["expected"].items() if p.startswith("summer/ad_one/")}
    assert "ad_one" in text and "summer" in text
    n_images, n_faces = len(expected), sum(n for _, n in expected.values())
    assert f"{n_images} {n_faces} 0 0" in text  # images, faces, no face, failed
    # --examples: crops of the images under ROOT, inline only
    assert "data:image/jpeg;base64," in html.read_text(encoding="utf-8")
    # "ad two" has a space: its files are "ad_two" and the first 12 hex digits of the name's SHA-256
    ad_two = "ad_two-" + hashlib.sha256("ad two".encode("utf-8")).hexdigest()[:12]
    assert {p.name for p in (reports / "summer").iterdir()} == {"ad_one.html", "ad_one.pdf", f"{ad_two}.html",
                                                                f"{ad_two}.pdf", "index.html", "campaign.pdf"}
    summary = json.loads((reports / "summary.json").read_text(encoding="utf-8"))
    assert {(a["campaign"], a["ad"], a["faces"]) for a in summary["ads"]} >= {("summer", "ad_one", n_faces)}
    assert (reports / "index.html").is_file() and (reports / "summary.csv").is_file()
    # the images folder is gone: `report` needs the database alone
    import shutil

    shutil.rmtree(campaign_tree["root"])
    pdf.unlink()
    again = CliRunner().invoke(cli, ["report", "--db", db, "--reports", str(reports), "--campaign", "summer", "--json",
                                     "--paper", "letter", "--min-faces", "2", "--examples", "--report-workers", "0"])
    assert again.exit_code == 0, again.output
    out = json.loads(again.stdout)
    written = out["reports"]
    assert len(written) == 4 and all(Path(p).is_file() for p in written)  # summer's two ads, HTML + PDF
    assert {Path(p).parent.name for p in written} == {"summer"}
    assert [Path(p).name for p in out["campaign_reports"]] == ["index.html", "campaign.pdf"]
    assert [Path(p).name for p in out["index"]] == ["index.html", "summary.json", "summary.csv", "campaigns.csv"]
    assert pdf.is_file() and f"{n_images} {n_faces} 0 0" in _pdf_text(pdf)
    assert _page_size(pdf) == (612, 792)  # --paper letter
    again_html = html.read_text(encoding="utf-8")
    assert "data:image/jpeg" not in again_html and "image not available" in again_html


def test_report_on_an_empty_database_says_what_to_do(tmp_path):
    result = CliRunner().invoke(cli, ["report", "--db", f"sqlite:///{tmp_path / 'empty.sqlite'}"])
    assert result.exit_code == 1 and "emotion-batch run ROOT" in result.output
