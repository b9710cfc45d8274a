"""sample_data/: make_sample_data.py reproduces the committed files, and every number its README (and the main README's
table of sample commands) shows is what cecli prints, within a few ulps of the seed's independent values."""

from __future__ import annotations

import json
import math
import re
import shlex
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from cecli.cli import app

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SAMPLE_DATA = PROJECT_ROOT / "sample_data"
SCRIPT = SAMPLE_DATA / "make_sample_data.py"
SAMPLE_README = (SAMPLE_DATA / "README.md").read_text(encoding="utf-8")
MAIN_README = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")
SEED = {
    case["name"]: case for case in json.loads((PROJECT_ROOT / "tests/data/seed_examples.json").read_text())["cases"]
}

# Sample files written by hand, not by make_sample_data.py (their README commands are tested in test_cli_family.py).
HAND_WRITTEN = {"tokens.csv"}
# A table row whose first cell is a cecli command and whose second cell starts with the number it prints.
COMMAND_ROW = re.compile(r"^\| `(cecli [^`]+)` \| `([-0-9.e]+)`(.*)\|$", re.MULTILINE)
# A row of the per-sample table: | `case`, `case` | v, v, v |
PER_SAMPLE_ROW = re.compile(r"^\| (`[^|]+`) \| ([-0-9.e, ]+) \|$", re.MULTILINE)


def _assert_prints(printed: str, documented: str) -> None:
    """The documented digits exactly with NumPy 2 (what CI installs, README says so); NumPy 1's exp and log, at the
    tested floor, may differ in the last digits (the softmax case)."""
    if int(np.__version__.split(".")[0]) >= 2:
        assert printed == documented
    else:
        assert abs(float(printed) - float(documented)) <= 8 * math.ulp(float(documented)), (printed, documented)


def _section(text: str, title: str) -> str:
    return text.split(f"## {title}", 1)[1].split("\n## ", 1)[0]


def _command_rows() -> list:
    rows = COMMAND_ROW.findall(_section(SAMPLE_README, "Expected numbers"))
    main_rows = COMMAND_ROW.findall(MAIN_README.split("The sample files reproduce", 1)[1].split("\n\n", 2)[1])
    assert len(rows) == 12 and len(main_rows) == 5  # the parser sees every row
    return [
        pytest.param(*row, id=f"{where}: {row[0]}")
        for where, found in (("sample", rows), ("main", main_rows))
        for row in found
    ]


def _per_sample_rows() -> list:
    rows = PER_SAMPLE_ROW.findall(_section(SAMPLE_README, "Expected numbers"))
    assert len(rows) == 6
    return [pytest.param(name, values, id=name) for names, values in rows for name in re.findall(r"`([^`]+)`", names)]


def _case_of(command: list[str]) -> dict:
    (path,) = [word for word in command if word.startswith("sample_data/")]
    return SEED[Path(path).stem]


def _run(runner, monkeypatch, args: list[str]) -> str:
    monkeypatch.chdir(PROJECT_ROOT)
    result = runner.invoke(app, args, prog_name="cecli")
    assert (result.exit_code, result.stderr) == (0, ""), result.output
    return result.stdout


@pytest.mark.parametrize(("command", "number", "note"), _command_rows())
def test_every_documented_number_is_what_cecli_prints(runner, monkeypatch, command, number, note):
    args = shlex.split(command)[1:]
    printed = _run(runner, monkeypatch, args)
    assert printed.endswith("\n") and "\n" not in printed[:-1]
    _assert_prints(printed[:-1], number)
    # ... and within a few units in the last place of the seed's independent value (also the bracketed one).
    case = _case_of(args)
    key = "sum" if "--reduction sum" in command else "mean"
    assert math.isclose(float(number), case["expected"][key], rel_tol=2e-15, abs_tol=0)
    seed_note = re.search(r"seed: `?([-0-9.e]+)`?", note)
    if seed_note:
        assert float(seed_note.group(1)) == case["expected"][key]
        assert seed_note.group(1) != number  # only shown where it differs


@pytest.mark.parametrize(("name", "values"), _per_sample_rows())
def test_every_documented_per_sample_value_is_what_cecli_prints(runner, monkeypatch, name, values):
    case = SEED[name]
    base = ["--base", str(case["base"])] if "base" in case else []
    args = [case["command"], f"sample_data/{name}.csv", *base, "--reduction", "none", "--value-only"]
    printed = _run(runner, monkeypatch, args).split()
    assert len(printed) == len(values.split(", "))
    for shown, documented in zip(printed, values.split(", "), strict=True):
        _assert_prints(shown, documented)
    for shown, seed in zip(printed, case["expected"]["per_sample"], strict=True):
        assert math.isclose(float(shown), seed, rel_tol=2e-15, abs_tol=0)


@pytest.mark.parametrize("name", sorted(SEED))
def test_documented_sums_and_means_are_the_per_sample_values_summed_exactly_and_rounded_once(name):
    """The README's claim: a sum is the correctly rounded sum of the printed per-sample values, a mean that / n."""
    rows = {
        found: values
        for names, values in PER_SAMPLE_ROW.findall(SAMPLE_README)
        for found in re.findall(r"`([^`]+)`", names)
    }
    exact = sum(Fraction(float(value)) for value in rows[name].split(", "))  # the floats, exactly
    count = len(rows[name].split(", "))
    documented = {
        ("sum" if "--reduction sum" in command else "mean"): float(number)
        for command, number, _ in COMMAND_ROW.findall(_section(SAMPLE_README, "Expected numbers"))
        if f"sample_data/{name}.csv" in command
    }
    assert documented, f"{name} has a documented value"
    if "sum" in documented:
        assert documented["sum"] == float(exact)
    if "mean" in documented:
        assert documented["mean"] == float(exact / count)


def test_make_sample_data_writes_the_committed_files(tmp_path):
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--out-dir", str(tmp_path)], capture_output=True, text=True, timeout=120
    )
    assert (done.returncode, done.stderr) == (0, "")
    written = sorted(path.name for path in tmp_path.iterdir())
    committed = sorted(
        path.name
        for path in SAMPLE_DATA.iterdir()
        if path.suffix in (".csv", ".json", ".parquet") and path.name not in HAND_WRITTEN
    )
    assert written == committed == sorted(f"{name}.{ext}" for name in SEED for ext in ("csv", "json", "parquet"))
    assert len(done.stdout.splitlines()) == len(written)
    for name in written:
        if name.endswith(".parquet"):  # the bytes name the pyarrow version that wrote them; the data must match
            ours, theirs = pq.read_table(tmp_path / name), pq.read_table(SAMPLE_DATA / name)
            assert ours.schema == theirs.schema and ours.to_pylist() == theirs.to_pylist(), name
        else:
            assert (tmp_path / name).read_bytes() == (SAMPLE_DATA / name).read_bytes(), name


def test_make_sample_data_with_a_missing_seed_file_is_one_line(tmp_path):
    done = subprocess.run(
        [sys.executable, str(SCRIPT), str(tmp_path / "none.json"), "--out-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (done.returncode, done.stdout) == (3, "")
    assert done.stderr == (
        f"make_sample_data.py: error: cannot read seed examples from {tmp_path / 'none.json'}: "
        f"[Errno 2] No such file or directory: '{tmp_path / 'none.json'}'\n"
    )


def test_make_sample_data_without_pyarrow_says_how_to_run_it(tmp_path):
    fake = tmp_path / "site" / "pyarrow"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ModuleNotFoundError('no pyarrow here', name='pyarrow')\n")
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--out-dir", str(tmp_path / "out")],
        env={"PYTHONPATH": str(tmp_path / "site"), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == (
        "make_sample_data.py: error: no module named 'pyarrow' "
        "(run it with the Python where cecli is installed: pip install -e .)\n"
    )
    assert not (tmp_path / "out").exists()
