"""Packaging: floors without upper pins, the licence, package data, and option conversion that is the same under
every supported Typer (0.29 would convert through pydantic; cecli converts its own options, see cli._Convert)."""

from __future__ import annotations

import csv
import importlib.metadata
import importlib.resources
import io
import json
import math
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version
from typer.main import get_command

from cecli.cli import app

PROJECT_ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text(encoding="utf-8"))
README = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")
RUNTIME = [Requirement(text) for text in PYPROJECT["project"]["dependencies"]]
EXTRAS = {
    extra: [Requirement(text) for text in requirements]
    for extra, requirements in PYPROJECT["project"]["optional-dependencies"].items()
}


def _floor(requirement: Requirement) -> Version:
    (floor,) = [Version(spec.version) for spec in requirement.specifier if spec.operator == ">="]
    return floor


@pytest.mark.parametrize(
    "requirement",
    [*RUNTIME, *(r for requirements in EXTRAS.values() for r in requirements if r.name != "cecli")],
    ids=str,
)
def test_every_dependency_has_a_floor_and_no_upper_pin(requirement):
    operators = {spec.operator for spec in requirement.specifier}
    assert operators == {">="}, f"{requirement}: only a >= floor, so cecli installs beside the newest releases"


def test_the_readme_states_the_runtime_floors():
    match = re.search(r"\*\*Requirements:\*\* Python ≥ 3\.11 and ((?:`[^`]+`, )*`[^`]+`):", README)
    assert match, "README's Set up section lists the floors"
    stated = sorted(re.findall(r"`([^`]+)`", match.group(1)))
    assert stated == sorted(str(requirement) for requirement in RUNTIME)
    assert PYPROJECT["project"]["requires-python"] == ">=3.11"


def test_our_rich_floor_meets_the_installed_typers_own():
    """rich>=13.7 could never be installed with Typer (which needs >=13.8): our floor must satisfy Typer's."""
    (ours,) = [requirement for requirement in RUNTIME if requirement.name == "rich"]
    typers = [Requirement(text) for text in importlib.metadata.requires("typer") or []]
    (theirs,) = [requirement for requirement in typers if requirement.name == "rich"]
    assert theirs.specifier.contains(_floor(ours))
    (typer,) = [requirement for requirement in RUNTIME if requirement.name == "typer"]
    assert typer.specifier.contains(importlib.metadata.version("typer"))


def test_the_plot_extra_is_in_the_test_extra_so_ci_exercises_it():
    test_names = {requirement.name for requirement in EXTRAS["test"]}
    assert {requirement.name for requirement in EXTRAS["plot"]} == {"matplotlib"}
    assert {"matplotlib", "jsonschema"} <= test_names


def test_the_licence_is_mit_and_shipped():
    text = (PROJECT_ROOT / "LICENSE").read_text(encoding="utf-8")
    assert text.startswith("MIT License\n\nCopyright (c) 2026 the cecli authors\n")
    assert 'THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND' in text
    assert PYPROJECT["project"]["license"] == "MIT"
    assert PYPROJECT["project"]["license-files"] == ["LICENSE"]


def test_the_schema_is_package_data():
    assert PYPROJECT["tool"]["setuptools"]["package-data"]["cecli"] == ["schema.json"]
    schema = json.loads((importlib.resources.files("cecli") / "schema.json").read_text(encoding="utf-8"))
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"


def test_the_readme_recommends_an_isolated_tool_install():
    assert "pipx install ." in README and "uv tool install ." in README


# --------------------------------------------------------------------------- option conversion

USAGE = 2


@pytest.mark.parametrize(
    ("args", "stderr"),
    [
        (["sparse", "--ignore-index", "x"], "Invalid value for '--ignore-index': 'x' is not a valid int."),
        (["bce", "--batch-rows", "0"], "Invalid value for '--batch-rows': 0 is not in the range 1<=x<=10000000."),
        (["bce", "--batch-rows", "1.5"], "Invalid value for '--batch-rows': '1.5' is not a valid int range."),
        (["bce", "--top", "-1"], "Invalid value for '--top': -1 is not in the range x>=0."),
        (["bce", "--precision", "18"], "Invalid value for '--precision': 18 is not in the range 0<=x<=17."),
        (["bce", "--eps", "abc"], "Invalid value for '--eps': 'abc' is not a valid float."),
        (["softmax", "--temperature", "hot"], "Invalid value for '--temperature': 'hot' is not a valid float."),
        (["bce", "--fail-above", ""], "Invalid value for '--fail-above': '' is not a valid float."),
        (
            ["bce", "--reduction", "Mean"],
            "Invalid value for '--reduction': 'Mean' is not one of 'mean', 'sum', 'none'.",
        ),
        (
            ["bce", "--input-format", "xml"],
            "Invalid value for '--input-format': 'xml' is not one of "
            "'csv', 'tsv', 'json', 'ndjson', 'parquet', 'arrow', 'npy', 'npz'.",
        ),
    ],
    ids=lambda value: value[1] if isinstance(value, list) else None,
)
def test_a_bad_option_value_is_the_same_usage_line_under_any_typer(runner, write_file, args, stderr):
    data = write_file("in.csv", "y,p_0,p_1\n1,0.1,0.9\n")
    result = runner.invoke(app, [args[0], str(data), *args[1:]], prog_name="cecli")
    assert (result.exit_code, result.stdout) == (USAGE, "")
    assert result.stderr == f"cecli: error: {stderr} (see 'cecli {args[0]} --help')\n"


def test_good_option_values_are_converted(runner, write_file):
    data = write_file("in.csv", "y,p\n1,0.9\n0,0.2\n")
    args = ["bce", str(data), "--reduction", "sum", "--base", "2", "--precision", "4", "--batch-rows", " 1"]
    result = runner.invoke(app, [*args, "--eps", "1e-9", "--fail-above", "1_0", "--value-only"])
    assert (result.exit_code, result.stderr) == (0, "")
    assert result.stdout == f"{(-math.log(0.9) - math.log(0.8)) / math.log(2):.4f}\n"


def test_several_inputs_and_no_input(runner, write_file):
    first = write_file("a.csv", "y,p\n1,0.5\n")
    second = write_file("b.csv", "y,p\n0,0.5\n")
    result = runner.invoke(app, ["bce", str(first), str(second), "--reduction", "sum", "--value-only"])
    assert (result.exit_code, result.stdout) == (0, f"{2 * math.log(2)!r}\n")
    result = runner.invoke(app, ["bce", "--value-only"], input="1,0.5\n")
    assert (result.exit_code, result.stdout) == (0, f"{math.log(2)!r}\n")


@pytest.mark.parametrize("name", sorted(get_command(app).commands))
def test_no_command_imports_pydantic(name):
    """Typer 0.29 would import pydantic (about 50 ms) to convert any option, --help included; cecli never does."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "cecli", name, "--help"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0 and f"cecli {name}" in done.stdout
    imported = {line.rsplit("|", 1)[-1].strip().split(".")[0] for line in done.stderr.splitlines() if "|" in line}
    assert "typer" in imported and "pydantic" not in imported


# --------------------------------------------------------------------------- consistency


def test_a_bare_cecli_is_a_usage_error_on_stderr(runner):
    result = runner.invoke(app, [], prog_name="cecli")
    assert (result.exit_code, result.stdout) == (USAGE, "")
    commands = ", ".join(get_command(app).commands)  # in the order --help lists them
    assert commands.startswith("bce, cce, sparse, softmax, entropy, kl, nll, columns, schema")
    assert result.stderr == f"cecli: error: missing command, one of: {commands} (see 'cecli --help')\n"


def test_out_csv_is_written_as_format_csv_prints_it(runner, write_file, tmp_path):
    """The header is unquoted in both (pyarrow alone would write "row","loss"); the rows parse the same."""
    data = write_file("k.csv", 'id,y,p\na,1,0.9\n"b,c",0,0.2\n')
    out = tmp_path / "o.csv"
    args = ["bce", str(data), "-y", "y", "-p", "p", "--keep", "id", "-f", "csv", "--out", str(out)]
    result = runner.invoke(app, args, prog_name="cecli")
    assert (result.exit_code, result.stderr) == (0, "")
    expected = [["row", "loss", "id"], ["1", repr(-math.log(0.9)), "a"], ["2", repr(-math.log1p(-0.2)), "b,c"]]
    assert list(csv.reader(io.StringIO(result.stdout))) == expected
    written = out.read_text(encoding="utf-8")
    assert written.splitlines()[0] == result.stdout.splitlines()[0] == "row,loss,id"
    assert list(csv.reader(io.StringIO(written))) == expected
