"""Help text at every width, the exit-code epilog, literal brackets, and no shell-completion hook."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
import typer

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
    assert sorted(set(flags) - printed) == []
    assert "…" not in text
    assert not re.search(r"\w-\n", text)  # no word, flag or option value broken at a hyphen
    assert max(map(len, text.splitlines())) <= min(columns, 80) - 2
    assert " ".join(text.split()).endswith(_epilog(name))  # the epilog


def _epilog(name: str) -> str:
    """The exit codes as `cecli NAME --help` lists them: compare's gate has --fail-if-worse too."""
    return (
        EXIT_CODES.replace("1 a --fail-above or", "1 a --fail-if-worse, --fail-above or")
        if name == "compare"
        else EXIT_CODES
    )


@pytest.mark.parametrize("columns", [60, 80, 100])
def test_the_epilog_lists_the_exit_codes(columns):
    text = _help(columns)
    assert max(map(len, text.splitlines())) <= min(columns, 80) - 2
    assert not re.search(r"\w-\n", text)
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


def _complete(runner, tmp_path, monkeypatch, shell: str, line: str) -> list[str]:
    """What cecli answers a shell completing `line` (bash: the words; zsh and fish: the line) in `tmp_path`."""
    monkeypatch.chdir(tmp_path)
    words = line.split()
    env = {"_CECLI_COMPLETE": f"complete_{shell}", "_TYPER_COMPLETE_FISH_ACTION": "get-args"}
    if shell == "bash":
        env.update(COMP_WORDS=line, COMP_CWORD=str(len(words) - (0 if line.endswith(" ") else 1)))
    else:
        env["_TYPER_COMPLETE_ARGS"] = line
    result = runner.invoke(app, [], prog_name="cecli", env=env)
    assert (result.exit_code, result.stderr) == (0, "")
    if shell == "zsh":  # _arguments '*: :(("a":"help" "b"))'
        return re.findall(r'"((?:[^"\\]|\\.)*)"(?::"(?:[^"\\]|\\.)*")?', result.stdout.partition("((")[2])
    return [item.split("\t")[0] for item in result.stdout.splitlines() if item]


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
@pytest.mark.parametrize(
    "line, expected",
    [
        ("cecli s", [name for name in COMMANDS if name.startswith("s")]),  # sparse, softmax (and more to come)
        ("cecli bce --lab", ["--labels", "--label-smoothing"]),
        ("cecli bce --like ", ["keras", "torch", "sklearn"]),
        ("cecli sparse --reduction s", ["sum"]),
        ("cecli bce d.csv -y ", ["id", "y_true", "y_pred", "split"]),
        ("cecli bce d.csv --keep id,y_", ["id,y_true", "id,y_pred"]),
        ("cecli bce --labels other.csv d.csv --by s", ["split"]),
        ("cecli bce missing.csv -p ", []),
    ],
)
def test_completion(runner, tmp_path, monkeypatch, shell, line, expected):
    (tmp_path / "d.csv").write_text("id,y_true,y_pred,split\na,1,0.9,x\n", encoding="utf-8")
    (tmp_path / "other.csv").write_text("label\n1\n", encoding="utf-8")
    assert sorted(_complete(runner, tmp_path, monkeypatch, shell, line)) == sorted(expected)


@pytest.mark.parametrize("value", ["source_bash", "bash_source", "source_zsh", "zsh_source", "source_fish"])
def test_completion_scripts(runner, value):
    result = runner.invoke(app, [], prog_name="cecli", env={"_CECLI_COMPLETE": value})
    assert (result.exit_code, result.stderr) == (0, "")
    shell = value.replace("source", "").strip("_")
    marker = {"bash": "complete -o default -F _cecli_completion cecli", "zsh": "#compdef cecli"}.get(
        shell, "complete --command cecli"
    )
    assert marker in result.stdout
    assert f"_CECLI_COMPLETE=complete_{shell}" in result.stdout
