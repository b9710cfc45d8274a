"""Keep the docs honest (STYLE.md #26): every command has help with an example and is in the README."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from typer.main import get_command

from cecli.cli import app

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
REQUIRED_COMMANDS = ["bce", "cce", "sparse", "softmax", "entropy", "columns"]
LOSS_COMMANDS = REQUIRED_COMMANDS[:5]
COMMANDS = sorted(get_command(app).commands)  # every registered command, including any added later
LONG_COLUMN_FLAGS = {"--y-true", "--y-pred"}
UNIVERSAL = {"-h", "--help"}


@pytest.fixture
def plain_help(runner, monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.setenv("TERM", "dumb")

    def run(*args: str) -> str:
        result = runner.invoke(app, [*args, "--help"], prog_name="cecli")
        assert result.exit_code == 0, result.output
        return result.stdout

    return run


def _flags(help_text: str) -> set[str]:
    return set(re.findall(r"(?<![\w-])(--?[a-z][a-z0-9-]*)", help_text)) - {"-", "--"}


def test_the_app_has_the_commands_of_the_design():
    assert set(REQUIRED_COMMANDS) <= set(COMMANDS)


@pytest.mark.parametrize("name", COMMANDS)
def test_command_has_help_with_an_example(name, plain_help):
    command = get_command(app).commands[name]
    assert command.help and "Example:" in command.help
    example = next(line for line in command.help.splitlines() if "Example:" in line)
    assert f"cecli {name}" in example
    assert "Example:" in plain_help(name)


@pytest.mark.parametrize("name", COMMANDS)
def test_command_is_in_the_readme(name):
    assert re.search(rf"`?cecli {name}\b", README)


@pytest.mark.parametrize("name", LOSS_COMMANDS)
def test_every_help_flag_is_in_the_readme(name, plain_help):
    flags = _flags(plain_help(name)) - UNIVERSAL
    assert flags, "no flags found in the help text"
    missing = sorted(flag for flag in flags if not re.search(rf"(?<![\w-]){re.escape(flag)}(?![\w-])", README))
    assert missing == []


def test_long_column_flags_are_in_the_readme():
    assert all(flag in README for flag in LONG_COLUMN_FLAGS)


def test_eps_help_shows_the_clipping_interval(plain_help):
    # The help wraps at 80 columns whatever the terminal: compare the words, not the line breaks.
    assert "Clip probabilities to [eps, 1-eps]; 0 disables (default 1e-7)." in " ".join(plain_help("bce").split())


def test_readme_test_command_is_the_ci_command():
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    match = re.search(r"^TEST_CMD=\((.*)\)$", ci, re.MULTILINE)
    assert match
    ci_command = shlex.split(match.group(1))
    readme_lines = [line for line in README.splitlines() if "pytest" in line and "pip install -e" in line]
    assert len(readme_lines) == 1
    readme_command = shlex.split(readme_lines[0].rsplit("&&", 1)[1])
    assert readme_command == ci_command
