"""Help text at every width, the exit-code epilog, literal brackets, and no shell-completion hook."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
import typer

from cecli import __version__
from cecli.cli import app

COMMAND = typer.main.get_command(app)
COMMANDS = sorted(COMMAND.commands)
EXIT_CODES = (
    "Exit codes: 0 ok; 1 a --fail-above or --fail-below gate failed (only then); 2 usage error;"
    " 3 bad or unreadable input, or output that cannot be written; 4 internal error (a bug);"
    " 130 interrupted; 141 stdout closed early; 143 terminated."
)


def _help(columns: int, *args: str) -> str:
    """The help as a terminal of `columns` columns shows it (a real process: CliRunner fixes the width at 80)."""
    env = {**os.environ, "COLUMNS": str(columns), "LINES": "50"}
    result = subprocess.run([sys.executable, "-m", "cecli", *args, "--help"], capture_output=True, text=True, env=env)
    assert (result.returncode, result.stderr) == (0, "")
    return result.stdout


def _flags(name: str) -> list[str]:
    return [flag for param in COMMAND.commands[name].params for flag in (*param.opts, *param.secondary_opts)]


@pytest.mark.parametrize("columns", [60, 80, 100])
@pytest.mark.parametrize("name", COMMANDS)
def test_every_flag_name_is_printed_whole(name, columns):
    text = _help(columns, name)
    printed = set(re.findall(r"(?<![\w-])(--?[a-z][a-z0-9-]*)", text))
    flags = ["-h", "--help", *(flag for flag in _flags(name) if flag.startswith("-"))]
    assert len(flags) > 5
    assert sorted(set(flags) - printed) == []
    assert "…" not in text
    assert max(map(len, text.splitlines())) <= min(columns, 80) - 2
    assert " ".join(text.split()).endswith(EXIT_CODES)  # the epilog


@pytest.mark.parametrize("columns", [60, 80, 100])
def test_the_epilog_lists_the_exit_codes(columns):
    text = _help(columns)
    assert max(map(len, text.splitlines())) <= min(columns, 80) - 2
    assert " ".join(text.split()).endswith(EXIT_CODES)


@pytest.mark.parametrize("name", ["bce", "cce", "sparse", "softmax"])
def test_brackets_print_literally(name):
    words = " ".join(_help(80, name).split())
    assert "pip install 'cecli[dask]'" in words
    assert "--like [keras|torch|sklearn]" in words or "--like <keras|torch|sklearn>" in words


def test_like_says_what_each_preset_changes():
    words = " ".join(_help(80, "cce").split())
    assert "see README" not in words
    assert (
        "Give the number this library gives. keras: clip 1e-7, mean divides by the row count, class weights become"
        " sample weights; torch: no clipping (bce clamps each log at -100), weighted bce mean divides by the row"
        " count; sklearn: clip 2.2e-16, rows not renormalised."
    ) in words


def test_input_help_says_several_inputs_are_pooled():
    words = " ".join(_help(80, "bce").split())
    assert "Several inputs are pooled: their rows are read, in order, as one dataset." in words


def test_bce_help_fits_in_a_screenful_at_80_columns():
    assert len(_help(80, "bce").splitlines()) <= 85


@pytest.mark.parametrize("shell", ["bash_source", "zsh_source", "fish_source", "bash_complete"])
def test_the_completion_variable_changes_nothing(runner, shell):
    env = {"_CECLI_COMPLETE": shell, "COMP_WORDS": "cecli b", "COMP_CWORD": "1"}
    result = runner.invoke(app, ["--version"], prog_name="cecli", env=env)
    assert (result.exit_code, result.stdout, result.stderr) == (0, f"cecli {__version__}\n", "")
    scored = runner.invoke(app, ["bce", "-", "-f", "json"], input="y_true,y_pred\n1,0.5\n", env=env)
    assert scored.exit_code == 0
    assert '"value": 0.6931471805599453' in scored.stdout  # ln 2, the loss of p = 0.5
