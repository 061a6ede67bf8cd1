"""The ``serve`` command as a user meets it: fast help without TensorFlow or FastAPI, clear failures."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from emotion_batch.cli import cli

ROOT = Path(__file__).resolve().parent.parent


def test_serve_help_imports_neither_tensorflow_nor_fastapi():
    code = ("import sys; from emotion_batch.cli import cli; sys.argv=['emotion-batch','serve','--help']\n"
            "try: cli()\nexcept SystemExit: pass\n"
            "assert 'tensorflow' not in sys.modules and 'fastapi' not in sys.modules, 'heavy import'")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert result.returncode == 0, result.stderr
    for option in ("--max-upload-mb", "--max-pixels", "--batch-wait-ms", "--no-batching", "--db", "--detector"):
        assert option in result.stdout


def test_serve_fails_cleanly_on_a_missing_model(tmp_path):
    result = CliRunner().invoke(cli, ["serve", "--model", str(tmp_path / "missing.keras"), "--port", "8999"])
    assert result.exit_code == 1
    assert "Model file not found" in result.output and "missing.keras" in result.output
    assert "Traceback" not in result.output


def test_serve_refuses_impossible_limits(tiny_model_file):
    result = CliRunner().invoke(cli, ["serve", "--model", str(tiny_model_file), "--max-upload-mb", "10",
                                      "--max-request-mb", "1"])
    assert result.exit_code == 1 and "max_request_bytes" in result.output
    bad = CliRunner().invoke(cli, ["serve", "--port", "70000"])
    assert bad.exit_code == 2
