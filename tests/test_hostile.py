"""Hostile column names and values: markup and escape sequences never reach the terminal; no eval, exec or pickle."""

from __future__ import annotations

import hardening_helpers
import pytest
from hardening_helpers import ESC, OK_VALUE, PROJECT_ROOT, cli, error_line

here = hardening_helpers.here  # the fixture, under the name the tests ask for

# --------------------------------------------------------------------------- hostile names and values

MARKUP = "[bold]x[/bold]"
ANSI = "\x1b[31mred"


@pytest.fixture
def hostile_csv(write_file, here) -> str:
    # columns: 1 y_true, 2 "[bold]x[/bold]" (predictions), 3 an ANSI escape, 4 markup values
    content = f"y_true,{MARKUP},{ANSI},note\n1,0.9,a{ESC}[2Jb,[red]v[/red]\n0,0.2,c,[link=x]y[/link]\n"
    write_file("hostile.csv", content)
    return "hostile.csv"


def test_markup_in_names_and_values_prints_literally(runner, hostile_csv):
    result = cli(runner, "bce", hostile_csv, "-y", "1", "-p", "2", "--keep", "2,4", "-f", "table", "--color", "never")
    assert result.exit_code == 0, result.stderr
    assert MARKUP in result.stdout
    assert "[red]v[/red]" in result.stdout
    assert "[link=x]y[/link]" in result.stdout


def test_escape_sequences_never_reach_table_output(runner, hostile_csv):
    result = cli(runner, "bce", hostile_csv, "-y", "1", "-p", "2", "--keep", "3", "-f", "table", "--color", "never")
    assert result.exit_code == 0, result.stderr
    assert ESC not in result.stdout


def test_escape_sequences_never_reach_columns_listing(runner, hostile_csv):
    result = cli(runner, "columns", hostile_csv)
    assert result.exit_code == 0, result.stderr
    assert ESC not in result.stdout
    assert MARKUP in result.stdout


def test_missing_column_error_shows_repr_of_unprintable_names(runner, hostile_csv):
    result = cli(runner, "bce", hostile_csv, "-y", "y_true", "-p", "nope")
    assert result.exit_code == 2
    assert ESC not in result.stderr
    assert error_line(result) == (
        f"cecli: error: no column named 'nope' in hostile.csv (columns are: y_true, {MARKUP}, '\\x1b[31mred', note)\n"
    )


def test_unprintable_cell_in_error_is_escaped(runner, write_file, here):
    write_file("cell.csv", f"y_true,y_pred\nz{ESC}[31m,0.9\n")
    result = cli(runner, "bce", "cell.csv")
    assert result.exit_code == 3
    assert ESC not in result.stderr
    assert error_line(result) == (
        "cecli: error: cell.csv:2:y_true: not a number: 'z\\x1b[31m' (every cell of this column must be a number)\n"
    )


def test_column_with_brackets_selectable_by_exact_name(runner, hostile_csv):
    result = cli(runner, "bce", hostile_csv, "-y", "y_true", "-p", MARKUP, "--value-only")
    assert result.exit_code == 0, result.stderr
    assert float(result.stdout) == pytest.approx(OK_VALUE, rel=1e-12)


def test_no_eval_exec_or_pickle_in_sources():
    forbidden = ("eval(", "exec(", "pickle", "yaml.load")
    hits = [
        f"{path.relative_to(PROJECT_ROOT)}:{number}: {line.strip()}"
        for path in sorted((PROJECT_ROOT / "cecli").rglob("*.py"))
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if any(word in line for word in forbidden)
    ]
    assert hits == []
