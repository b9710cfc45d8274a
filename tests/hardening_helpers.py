"""Helpers shared by the hardening tests (test_extremes, test_awkward_text, test_signals, test_hostile)."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from cecli.cli import app

PROJECT_ROOT = Path(__file__).resolve().parents[1]
EPS = 1e-7  # the default --eps
ESC = "\x1b"


# --------------------------------------------------------------------------- helpers


def cli(runner, *args):
    """Run cecli in-process; no outcome may show a traceback."""
    result = runner.invoke(app, [str(a) for a in args])
    assert "Traceback" not in result.stdout
    assert "Traceback" not in result.stderr
    return result


def strict_json(text: str) -> dict:
    """Parse JSON, refusing the non-standard NaN / Infinity tokens."""

    def refuse(token):
        raise AssertionError(f"non-strict JSON token {token}")

    return json.loads(text, parse_constant=refuse)


def error_line(result) -> str:
    assert result.stderr.count("\n") == 1, result.stderr
    return result.stderr


@pytest.fixture
def here(tmp_path, monkeypatch):
    """Run in tmp_path so that messages name files as the user typed them."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def write_parquet(path: Path, columns: dict) -> Path:
    pq.write_table(pa.table(columns), path)
    return path


# A two-row bce file of 0.9 and 0.2 (test_awkward_text, test_signals, test_hostile).
OK_VALUE = (-math.log(0.9) - math.log1p(-0.2)) / 2


TIMEOUT = 10  # seconds; each subprocess normally finishes well within 2


def cecli_process(args, *, cwd, stdin=subprocess.DEVNULL):
    env = {**os.environ, "NO_COLOR": "1", "PYTHONPATH": str(PROJECT_ROOT)}
    env.pop("CECLI_DEBUG", None)
    return subprocess.Popen(
        [sys.executable, "-m", "cecli", *map(str, args)],
        stdin=stdin,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=cwd,
        env=env,
    )


def finish(proc, timeout=TIMEOUT) -> tuple[bytes, bytes]:
    """Wait for `proc` and collect its output; kill it if it outlives `timeout`."""
    try:
        return proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise
