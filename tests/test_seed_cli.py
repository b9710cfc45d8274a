"""Every seed example, in every sample_data format, through the real CLI (DESIGN.md "JSON output") and compute().

The expected numbers come from tests/data/seed_examples.json (a copy of the design card's), an independent source;
the input files are written by sample_data/make_sample_data.py.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SEED_EXAMPLES = PROJECT_ROOT / "tests" / "data" / "seed_examples.json"
FORMATS = ["csv", "json", "parquet"]
REQUIRED_KEYS = {
    "schema_version",
    "cecli_version",
    "loss",
    "unit",
    "reduction",
    "value",
    "count",
    "mean",
    "sum",
    "weight_sum",
    "min",
    "max",
    "options",
    "input",
    "per_sample",
}
UNITS = {"e": "nats", "2": "bits", "10": "bans"}


def _case_names() -> list:
    """Case names for parametrize, read at collection time."""
    return [case["name"] for case in json.loads(SEED_EXAMPLES.read_text(encoding="utf-8"))["cases"]]


def _run_json(runner, case: dict, path: Path, extra: list[str]) -> dict:
    from cecli.cli import app

    args = [case["command"], str(path), "--format", "json"]
    if "base" in case:
        args += ["--base", str(case["base"])]
    result = runner.invoke(app, args + extra)
    assert result.exit_code == 0, (args + extra, result.output, result.exception)
    return json.loads(result.stdout)


def _check_payload(payload: dict, case: dict, reduction: str) -> None:
    expected = case["expected"]
    assert REQUIRED_KEYS <= payload.keys(), sorted(REQUIRED_KEYS - payload.keys())
    assert payload["loss"] == case["command"]
    assert payload["unit"] == UNITS[str(case.get("base", "e"))]
    assert payload["reduction"] == reduction
    assert isinstance(payload["options"], dict)
    assert isinstance(payload["input"], dict)

    per_sample = payload["per_sample"]
    assert isinstance(per_sample, list)
    assert per_sample == pytest.approx(expected["per_sample"], rel=1e-12)
    assert payload["count"] == len(expected["per_sample"])
    if "mean" in expected:
        assert payload["mean"] == pytest.approx(expected["mean"], rel=1e-12)
    if "sum" in expected:
        assert payload["sum"] == pytest.approx(expected["sum"], rel=1e-12)
    assert payload["min"] == pytest.approx(min(expected["per_sample"]), rel=1e-12)
    assert payload["max"] == pytest.approx(max(expected["per_sample"]), rel=1e-12)
    assert payload["value"] == payload[reduction]


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("name", _case_names())
def test_seed_case_default_reduction_is_mean(name, fmt, seed_cases, sample_data, runner):
    case = next(case for case in seed_cases if case["name"] == name)
    payload = _run_json(runner, case, sample_data / f"{name}.{fmt}", [])
    _check_payload(payload, case, "mean")


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("name", _case_names())
def test_seed_case_reduction_sum(name, fmt, seed_cases, sample_data, runner):
    case = next(case for case in seed_cases if case["name"] == name)
    payload = _run_json(runner, case, sample_data / f"{name}.{fmt}", ["--reduction", "sum"])
    _check_payload(payload, case, "sum")


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("name", _case_names())
def test_seed_case_through_the_python_api(name, fmt, seed_cases, sample_data):
    from cecli import compute

    case = next(c for c in seed_cases if c["name"] == name)
    base = {"base": str(case["base"])} if "base" in case else {}
    result = compute(case["command"], str(sample_data / f"{name}.{fmt}"), **base)
    expected = case["expected"]
    assert result.per_sample.tolist() == pytest.approx(expected["per_sample"], rel=1e-12)
    assert result.value == pytest.approx(expected["mean"], rel=1e-12)
    if "sum" in expected:
        assert result.partial.sum == pytest.approx(expected["sum"], rel=1e-12)


def test_python_m_cecli_value_only():
    """The real entry point in a subprocess (typer `test_script`): the seed article's printed BCE sum."""
    result = subprocess.run(
        [sys.executable, "-m", "cecli", "bce", "sample_data/seed-bce.csv", "--reduction", "sum", "--value-only"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert float(result.stdout.strip()) == pytest.approx(4.460303459760249, rel=1e-12)
