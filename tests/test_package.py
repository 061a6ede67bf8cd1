"""Templates, models and SQL must work from a non-editable install, not only from the source tree."""

from __future__ import annotations

import pytest

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_non_editable_install_carries_templates_models_and_sql(tmp_path):
    target = tmp_path / "site"
    build = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", "--no-compile",
         "--target", str(target), str(ROOT)],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )
    assert build.returncode == 0, build.stderr
    probe = (
        "import json, emotion_batch\n"
        "from emotion_batch.assets import asset_dir\n"
        "from emotion_batch.classifier import bundled_models, locate_model, sha256_file\n"
        "from emotion_batch.store.session import view_statements\n"
        "from emotion_batch.store.schema import schema_status\n"
        "from emotion_batch.store.session import init_db, make_engine\n"
        "info = locate_model(None, backend='keras')\n"
        "engine = make_engine('sqlite:///fresh.sqlite'); init_db(engine)\n"
        "print(json.dumps({'pkg': emotion_batch.__file__, 'templates': sorted(p.name for p in asset_dir('templates').iterdir()),"
        " 'model': str(info.path), 'hash_ok': sha256_file(info.path) == bundled_models()['models'][info.name]['sha256'],"
        " 'litert': str(locate_model(None, backend='litert').path), 'views': len(view_statements()),"
        " 'pg_views': len(view_statements('postgresql')), 'queries': sorted(p.name for p in (asset_dir('sql') / 'queries').iterdir()),"
        " 'schema': schema_status(engine).as_dict()}))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(target)}
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout)
    assert found["pkg"].startswith(str(target))
    assert found["model"].startswith(str(target / "emotion_batch" / "_assets" / "models"))
    assert found["hash_ok"] is True
    assert found["litert"].startswith(str(target / "emotion_batch" / "_assets" / "models"))  # hash checked by locate_model
    assert "ad_report.html" in found["templates"]
    # DROP + CREATE per view: the two stable views and the analyst views; the daily trend per dialect
    from emotion_batch.store.session import view_statements

    assert found["views"] == len(view_statements()) >= 10
    assert found["pg_views"] == len(view_statements("postgresql")) == found["views"] + 2
    assert "ad_summary.sql" in found["queries"]
    # the Alembic migrations ship inside the package and run without an alembic.ini
    assert found["schema"]["state"] == "current" and found["schema"]["current"] == found["schema"]["head"]
