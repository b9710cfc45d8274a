"""Colour and width of the table: no escape code unless asked for, numbers never cut, titles on one line."""

from __future__ import annotations

import io
import math
import re

import pytest

from cecli.cli import app
from cecli.cli.app import _colour

# Ten rows y=1 with p = 0.05, 0.15, ..., 0.95 (loss -ln p), and a long kept id that has to fold.
P = [round(0.05 + 0.1 * i, 2) for i in range(10)]
CSV = "id,y_true,y_pred,split\n" + "".join(
    f"sample-with-a-long-identifier-{i:02d},1,{p},{'ab'[i % 2]}\n" for i, p in enumerate(P)
)
ESC = "\x1b"


@pytest.fixture
def table(runner, tmp_path, monkeypatch):
    path = tmp_path / "t.csv"
    path.write_text(CSV, encoding="utf-8")

    def run(columns: int, *args: str, env: dict | None = None) -> str:
        monkeypatch.setenv("COLUMNS", str(columns))
        for name, value in (env or {}).items():
            monkeypatch.setenv(name, value)
        result = runner.invoke(app, ["bce", str(path), "-f", "table", *args], prog_name="cecli")
        assert (result.exit_code, result.stderr) == (0, ""), result.output
        return result.stdout

    return run


@pytest.mark.parametrize("columns", [40, 60, 80])
@pytest.mark.parametrize("precision", [3, 6, 12])
def test_every_per_sample_number_is_printed_whole(table, columns, precision):
    text = table(columns, "--keep", "id", "--by", "split", "--precision", str(precision), "--color", "never")
    for p in P:
        assert f" {-math.log(p):.{precision}f} " in text
    assert "…" not in text.replace("… 0 more rows", "")
    assert max(len(line) for line in text.splitlines()) <= columns
    # the group means, by hand: -ln p over the even and the odd rows
    for parity in (0, 1):
        mean = sum(-math.log(p) for p in P[parity::2]) / 5
        assert f" {mean:.{precision}f} " in text


@pytest.mark.parametrize("columns", [40, 60, 80])
def test_titles_are_one_line(table, columns):
    lines = table(columns, "--by", "split", "--color", "never").splitlines()
    for title in ("cecli bce: per-sample loss", "by split", "summary", "distribution of per-sample loss (nats)"):
        assert title in lines


def test_columns_that_do_not_fit_are_left_out_and_named(table):
    text = table(40, "--by", "split", "--color", "never")
    assert "(sum, min, max left out at this width; -f json has them)" in " ".join(text.split())
    wide = table(80, "--by", "split", "--color", "never")
    assert "left out" not in wide
    assert re.search(r"group +count +value +mean +sum +min +max", wide)


def test_the_more_rows_caption_is_one_line(runner, tmp_path, monkeypatch):
    path = tmp_path / "many.csv"
    path.write_text("y_true,y_pred\n" + "1,0.5\n" * 25, encoding="utf-8")
    monkeypatch.setenv("COLUMNS", "80")
    result = runner.invoke(app, ["bce", str(path), "-f", "table"], prog_name="cecli")
    assert "… 5 more rows (-f json or --out for all)" in result.stdout.splitlines()


@pytest.mark.parametrize("columns", [40, 60, 80])
@pytest.mark.parametrize(
    "args, env",
    [
        (["--color", "never"], {}),
        (["--color", "never"], {"TERM": "xterm-256color", "NO_COLOR": ""}),
        ([], {"NO_COLOR": "1", "TERM": "xterm-256color"}),
        (["--color", "auto"], {"NO_COLOR": "1"}),
    ],
)
def test_never_and_no_color_mean_no_escape_code(table, columns, args, env):
    assert ESC not in table(columns, "--by", "split", *args, env=env)


@pytest.mark.parametrize("columns", [40, 60, 80])
@pytest.mark.parametrize("env", [{}, {"NO_COLOR": "1"}, {"TERM": "dumb"}])
def test_always_colours_even_in_a_pipe(table, columns, env):
    text = table(columns, "--color", "always", env=env)
    assert f"{ESC}[1mcecli bce: per-sample loss{ESC}[0m" in text
    plain = re.sub(r"\x1b\[[0-9;]*m", "", text)
    assert f" {-math.log(0.05):.6f} " in plain


@pytest.mark.parametrize(
    "setting, env, codes",
    [("never", {}, False), ("auto", {"NO_COLOR": "1"}, False), ("always", {"NO_COLOR": "1"}, True)],
)
def test_the_progress_bar_follows_the_colour_setting(setting, env, codes, monkeypatch):
    """The bar's console on stderr is built with the same settings as the table's."""
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn

    monkeypatch.delenv("NO_COLOR", raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    stream = io.StringIO()
    options = {"force_terminal": True, **_colour(setting)}  # stderr a terminal, as when the bar is shown
    progress = Progress(TextColumn("[bold blue]cecli"), BarColumn(), console=Console(file=stream, **options))
    progress.add_task("reading", total=10, completed=5)
    progress.console.print(progress.make_tasks_table(progress.tasks))
    assert (re.search(r"\x1b\[[0-9;]*m", stream.getvalue()) is not None) is codes


# --------------------------------------------------------------------------- ignored rows and non-finite losses

# sparse, --eps 0: row 1 puts probability 0 on its class (loss +inf), row 2 is ignored (label 9),
# row 3 has p = 0.5 (loss ln 2).
SPARSE = "y,p0,p1\n1,1,0\n9,0.5,0.5\n0,0.5,0.5\n"
SPARSE_ARGS = ["-y", "y", "-p", "p0,p1", "--ignore-index", "9", "--eps", "0", "-q"]
LN2 = math.log(2)


@pytest.fixture
def sparse(runner, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "s.csv").write_text(SPARSE, encoding="utf-8")

    def run(*args: str):
        result = runner.invoke(app, ["sparse", "s.csv", *SPARSE_ARGS, *args], prog_name="cecli")
        assert (result.exit_code, result.stderr) == (0, ""), result.output
        return result.stdout

    return run


def test_json_null_is_explained_by_nonfinite_rows(sparse):
    import json

    document = json.loads(sparse("-f", "json"))
    assert document["per_sample"] == [None, None, LN2]
    assert document["nonfinite_rows"] == [{"row": 1, "loss": "inf"}]
    assert "1 per-sample losses are not finite (null, listed in nonfinite_rows)" in document["warnings"]


def test_json_nonfinite_rows_is_empty_when_every_loss_is_finite(runner, tmp_path):
    import json

    (tmp_path / "ok.csv").write_text("y_true,y_pred\n1,0.5\n", encoding="utf-8")
    document = json.loads(runner.invoke(app, ["bce", str(tmp_path / "ok.csv"), "-f", "json"]).stdout)
    assert (document["per_sample"], document["nonfinite_rows"]) == ([LN2], [])


def test_ndjson_marks_the_nonfinite_loss(sparse):
    assert sparse("-f", "ndjson") == (
        f'{{"row": 1, "loss": null, "nonfinite": "inf"}}\n{{"row": 2, "loss": null}}\n{{"row": 3, "loss": {LN2!r}}}\n'
    )


def test_csv_writes_inf_and_leaves_an_ignored_row_empty(sparse):
    assert sparse("-f", "csv") == f"row,loss\n1,inf\n2,\n3,{LN2!r}\n"


def test_value_only_per_sample_says_ignored(sparse):
    assert sparse("--value-only", "--reduction", "none") == f"inf\nignored\n{LN2!r}\n"
    assert sparse("--value-only", "--reduction", "none", "--precision", "3") == "inf\nignored\n0.693\n"


def test_table_says_ignored_and_inf(sparse):
    lines = sparse("-f", "table", "--color", "never").splitlines()
    assert [line.split() for line in lines[4:7]] == [["1", "inf"], ["2", "ignored"], ["3", f"{LN2:.6f}"]]
    summary = " ".join(sparse("-f", "table", "--color", "never").split("summary")[1].split())
    assert "value inf" in summary and "max inf" in summary and f"min {LN2:.6f}" in summary


def test_out_files_keep_the_distinction(sparse, tmp_path):
    import pyarrow.parquet as pq

    sparse("--out", "o.csv", "-f", "json")
    lines = (tmp_path / "o.csv").read_text(encoding="utf-8").splitlines()
    assert lines[1:] == ["1,inf", "2,", f"3,{LN2!r}"]
    sparse("--out", "o.ndjson", "-f", "json")
    assert (tmp_path / "o.ndjson").read_text(encoding="utf-8") == sparse("-f", "ndjson")
    sparse("--out", "o.parquet", "-f", "json")
    losses = pq.read_table(tmp_path / "o.parquet").column("loss").to_pylist()
    assert losses[0] == math.inf and losses[1] is None and losses[2] == LN2


# --------------------------------------------------------------------------- input leniency where there is no doubt

# y = 1 with p = 0.9 and y = 0 with p = 0.2: mean of -ln 0.9 and -ln(1 - 0.2), the latter as log1p(-0.2)
# (ln(1 - p) for the float p = 0.2, without the rounding of 1 - p)
BCE_MEAN = (-math.log(0.9) - math.log1p(-0.2)) / 2


def _value(runner, path, *args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, ["bce", str(path), "--value-only", *args], prog_name="cecli")
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.parametrize(
    "text, args",
    [
        ("y_true,y_pred\n1, 0.9\n0, 0.2\n", []),
        ("y_true, y_pred\n1 , 0.9 \n 0,0.2\n", []),
        ("y_true,y_pred\n1,\t0.9\n0,0.2\t\n", []),
        ("y_true\ty_pred\n1\t 0.9\n0 \t0.2\n", ["--input-format", "tsv"]),
        ("y_true;y_pred\n1; 0.9\n0;  0.2\n", ["--delimiter", ";"]),
        ("y_true,y_pred\nTrue,0.9\nFalse,0.2\n", []),
        ("y_true,y_pred\ntrue,0.9\nfalse,0.2\n", []),
        ("y_true,y_pred\n TRUE ,0.9\nfalse,0.2\n", []),
        ("y_true,y_pred\n1,0.9\nfalse,0.2\n", []),
    ],
)
def test_spaces_and_boolean_words_are_read(runner, tmp_path, text, args):
    path = tmp_path / "in.csv"
    path.write_text(text, encoding="utf-8")
    assert _value(runner, path, *args) == (0, f"{BCE_MEAN!r}\n", "")


@pytest.mark.parametrize(
    "text, line, shown",
    [
        ("y_true,y_pred\n1, 0.9\n0, x\n", 3, "' x'"),
        ("y_true,y_pred\n1, 0.9\n0, 0.2\n0, 1 2\n", 4, "' 1 2'"),
        ("y_true,y_pred\nyes,0.9\n", 2, "'yes'"),
    ],
)
def test_a_cell_that_is_still_not_a_number_is_named(runner, tmp_path, text, line, shown):
    path = tmp_path / "in.csv"
    path.write_text(text, encoding="utf-8")
    column = "y_true" if "yes" in text else "y_pred"
    assert _value(runner, path) == (
        3,
        "",
        f"cecli: error: {path}:{line}:{column}: not a number: {shown} (every cell of this column must be a number)\n",
    )


def test_blank_cell_is_still_missing(runner, tmp_path):
    path = tmp_path / "in.csv"
    path.write_text("y_true,y_pred\n1,0.9\n0,   \n", encoding="utf-8")
    assert _value(runner, path) == (
        3,
        "",
        f"cecli: error: {path}:3:y_pred: missing value (fill in every cell, or drop the row)\n",
    )


def test_small_and_streamed_paths_agree_on_spaces(tmp_path, monkeypatch):
    from cecli.io import csv as io_csv
    from cecli.pipeline import compute

    path = tmp_path / "in.csv"
    path.write_text("y_true,y_pred\n1, 0.9\n0,0.2 \n", encoding="utf-8")
    small = compute("bce", str(path)).per_sample.tolist()
    monkeypatch.setattr(io_csv, "_SMALL_CSV_BYTES", 0)  # every input through pyarrow
    assert compute("bce", str(path)).per_sample.tolist() == small == [-math.log(0.9), -math.log1p(-0.2)]


@pytest.mark.parametrize(
    "text, hint",
    [
        ("1\t0.9\n0\t0.2\n", "the input looks tab-separated: use --input-format tsv or --delimiter tab"),
        ("y_true\ty_pred\n1\t0.9\n", "the input looks tab-separated: use --input-format tsv or --delimiter tab"),
        ("1 0.9\n0 0.2\n", "the input looks separated by ' ': use --delimiter ' '"),
        ("y;p\n1;0.9\n", "the input looks separated by ';': use --delimiter ';'"),
    ],
)
def test_one_column_stdin_suggests_the_delimiter(runner, text, hint):
    result = runner.invoke(app, ["bce", "-", "-f", "json"], input=text, prog_name="cecli")
    assert result.exit_code == 3
    assert result.stderr.startswith("cecli: error: <stdin>: cannot tell which columns hold the predictions;")
    assert result.stderr.endswith(f" ({hint})\n")


def test_a_wide_file_lists_ten_columns_and_the_count(runner, tmp_path):
    path = tmp_path / "wide.csv"
    names = [f"c{i}" for i in range(2001)]
    path.write_text(",".join(names) + "\n" + ",".join(["0.5"] * 2001) + "\n", encoding="utf-8")
    result = runner.invoke(app, ["bce", str(path), "-y", "nope", "-p", "c1"], prog_name="cecli")
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr == (
        f"cecli: error: no column named 'nope' in {path} (columns are: "
        "c0, c1, c2, c3, c4, c5, c6, c7, c8, c9, ... (2001 in all))\n"
    )


@pytest.mark.parametrize("batch_rows", ["1000", "65536"])
def test_boolean_words_after_numeric_batches_of_a_file(runner, tmp_path, batch_rows):
    """A file's numeric columns are parsed as numbers first; a `True` far down is read as 1 all the same."""
    import json

    labels = [i % 2 for i in range(5000)]
    preds = [round(0.05 + 0.9 * ((i * 7919) % 1000) / 1000, 6) for i in range(5000)]
    cells = [str(y) for y in labels]
    cells[3000] = "True" if labels[3000] else "false"
    cells[4999] = " TRUE" if labels[4999] else "FALSE "

    def per_sample(name: str, column: list[str]) -> list[float]:
        path = tmp_path / name
        rows = "".join(f"{c},{p}\n" for c, p in zip(column, preds, strict=True))
        path.write_text("y_true,y_pred\n" + rows, encoding="utf-8")
        result = runner.invoke(app, ["bce", str(path), "-f", "json", "--batch-rows", batch_rows], prog_name="cecli")
        assert (result.exit_code, result.stderr) == (0, "")
        return json.loads(result.stdout)["per_sample"]

    words = per_sample("words.csv", cells)
    assert words == per_sample("digits.csv", [str(y) for y in labels])  # the same bits as 1 and 0
    expected = [-math.log(p) if y else -math.log1p(-p) for y, p in zip(labels, preds, strict=True)]
    assert all(math.isclose(a, b, rel_tol=1e-15) for a, b in zip(words, expected, strict=True))
