"""The same data gives the same output in every format; header detection never eats a data row silently;
kept and grouped values that an output cannot hold are one clear error line.

Expected values are written out here (losses from ``math.log``, exact means with ``fractions``), never copied
from cecli's output.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import math
import re
from fractions import Fraction

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cecli.cli import app
from cecli.io import convert as io_convert

# Sparse, 3 classes with dyadic probabilities (each row sums to exactly 1): an int fold, a string id (one with a
# leading zero, which stays text), a float column (with an integral value), a text column with nulls, a boolean.
NAMES = ["label", "p_0", "p_1", "p_2", "fold", "id", "temp", "note", "flag"]
ROWS = [
    [0, 0.5, 0.25, 0.25, 0, "r1", 0.5, "ok", True],
    [1, 0.125, 0.75, 0.125, 1, "007", 1.0, None, False],
    [2, 0.25, 0.25, 0.5, 0, "x-2", -0.125, "bad", True],
    [1, 0.5, 0.0625, 0.4375, 1, "r 4", 2.25, None, False],
    [0, 0.875, 0.0625, 0.0625, 2, "r5", 0.001, "ok", True],
]
TYPES = [pa.int64(), pa.float64(), pa.float64(), pa.float64(), pa.int64(), pa.string(), pa.float64()]
TYPES += [pa.string(), pa.bool_()]
LOSSES = [-math.log(row[1 + row[0]]) for row in ROWS]  # sparse: -log p[label]
ARGS = ["sparse", "--by", "fold,note", "--keep", "id,temp,note,flag,label", "--top", "3", "--per-class", "-f", "json"]


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value) if isinstance(value, float) else str(value)


def _records() -> list[dict]:
    return [dict(zip(NAMES, row, strict=True)) for row in ROWS]


def _write(path, fmt: str) -> None:
    """Write ROWS as `fmt` (``.gz`` variants compressed)."""
    if fmt.endswith(".gz"):
        inner = path.with_suffix("")
        _write(inner, fmt.removesuffix(".gz"))
        path.write_bytes(gzip.compress(inner.read_bytes()))
        inner.unlink()
        return
    if fmt in ("csv", "tsv"):
        sep = "," if fmt == "csv" else "\t"
        lines = [sep.join(NAMES)] + [sep.join(_cell(v) for v in row) for row in ROWS]
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    elif fmt == "json":
        path.write_text(json.dumps(_records()), encoding="utf-8")
    elif fmt == "json-columns":
        path.write_text(json.dumps({n: [row[i] for row in ROWS] for i, n in enumerate(NAMES)}), encoding="utf-8")
    elif fmt == "ndjson":
        path.write_text("".join(json.dumps(r) + "\n" for r in _records()), encoding="utf-8")
    else:
        columns = {n: pa.array([row[i] for row in ROWS], TYPES[i]) for i, n in enumerate(NAMES)}
        pq.write_table(pa.table(columns), path)


FORMATS = {  # format -> file name
    "csv": "d.csv",
    "tsv": "d.tsv",
    "json": "d.json",
    "json-columns": "c.json",
    "ndjson": "d.ndjson",
    "parquet": "d.parquet",
    "csv.gz": "d.csv.gz",
    "json.gz": "d.json.gz",
    "ndjson.gz": "d.ndjson.gz",
}
REPORTED = {"json-columns": "json"}  # input.format as cecli reports it


def _without_input_source(stdout: str, path: str, fmt: str) -> str:
    """The JSON text with input.path, input.paths and input.format blanked out, byte for byte otherwise."""
    document = json.loads(stdout)
    assert document["input"]["path"] == path and document["input"]["paths"] == [path]
    assert document["input"]["format"] == fmt
    text = stdout.replace(f'"path": {json.dumps(path)}, "paths": [{json.dumps(path)}]', '"path": "P", "paths": ["P"]')
    return text.replace(f'"format": "{fmt}"', '"format": "F"', 1)


def _exact_mean(values) -> float:
    return float(sum(map(Fraction, values), Fraction(0)) / len(values))


def _summary(indices) -> dict:
    values = [LOSSES[i] for i in indices]
    return {
        "count": len(values),
        "value": _exact_mean(values),  # the default reduction, mean, of an unweighted group
        "mean": _exact_mean(values),
        "sum": math.fsum(values),
        "weight_sum": float(len(values)),
        "denominator": float(len(values)),
        "min": min(values),
        "max": max(values),
    }


def _run(runner, tmp_path, monkeypatch, args):
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, args, prog_name="cecli")
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def reference(runner, tmp_path, monkeypatch) -> str:
    """The CSV document, checked against values derived here, with its input source blanked out."""
    _write(tmp_path / "d.csv", "csv")
    code, stdout, stderr = _run(runner, tmp_path, monkeypatch, [*ARGS[:1], "d.csv", *ARGS[1:]])
    assert (code, stderr) == (0, "")
    document = json.loads(stdout)
    kept = ["id", "temp", "note", "flag", "label"]
    # Numbers print as JSON numbers: the float 1.0 is 1, 0.001 stays 0.001; "007" stays text; null and booleans.
    values = {
        0: ["r1", 0.5, "ok", True, 0],
        1: ["007", 1, None, False, 1],
        2: ["x-2", -0.125, "bad", True, 2],
        3: ["r 4", 2.25, None, False, 1],
        4: ["r5", 0.001, "ok", True, 0],
    }
    order = sorted(range(len(ROWS)), key=lambda i: (-LOSSES[i], i))[:3]
    assert document["top"] == [
        {"row": i + 1, "loss": LOSSES[i], **dict(zip(kept, values[i], strict=True))} for i in order
    ]
    assert json.dumps(document["top"][0]["temp"]) == "2.25"
    assert [json.dumps(row["temp"]) for row in document["top"]] == [json.dumps(values[i][1]) for i in order]
    # Groups: numbers first, then text, null last, within each column in turn.
    groups = [((0, "bad"), [2]), ((0, "ok"), [0]), ((1, None), [1, 3]), ((2, "ok"), [4])]
    assert document["by"] == [{"key": {"fold": f, "note": n}, **_summary(rows)} for (f, n), rows in groups]
    classes = [[0, 4], [1, 3], [2]]
    assert document["per_class"] == [{"class": str(c), "index": c, **_summary(rows)} for c, rows in enumerate(classes)]
    assert document["per_sample"] == LOSSES
    assert document["warnings"] == []
    return _without_input_source(stdout, "d.csv", "csv")


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_the_same_data_gives_byte_identical_json_in_every_format(runner, tmp_path, monkeypatch, reference, fmt):
    name = FORMATS[fmt]
    _write(tmp_path / name, fmt)
    code, stdout, stderr = _run(runner, tmp_path, monkeypatch, [*ARGS[:1], name, *ARGS[1:]])
    assert (code, stderr) == (0, "")
    reported = REPORTED.get(fmt, fmt.removesuffix(".gz"))
    assert _without_input_source(stdout, name, reported) == reference


@pytest.mark.parametrize("fmt", ["csv", "tsv", "ndjson", "parquet", "json"])
def test_per_sample_lines_and_out_files_are_identical_in_every_format(runner, tmp_path, monkeypatch, fmt):
    name = FORMATS[fmt]
    _write(tmp_path / name, fmt)
    keep = ["--keep", "id,temp,note,flag,label"]
    lines = {}
    for out in ("ndjson", "csv"):
        code, stdout, stderr = _run(runner, tmp_path, monkeypatch, ["sparse", name, *keep, "-f", out])
        assert (code, stderr) == (0, "")
        lines[out] = stdout
    rows = [
        ("r1", "0.5", "ok", "true", "0"),
        ("007", "1", "", "false", "1"),
        ("x-2", "-0.125", "bad", "true", "2"),
        ("r 4", "2.25", "", "false", "1"),
        ("r5", "0.001", "ok", "true", "0"),
    ]
    expected_csv = "row,loss,id,temp,note,flag,label\n" + "".join(
        f"{i + 1},{LOSSES[i]!r},{','.join(row)}\n" for i, row in enumerate(rows)
    )
    assert lines["csv"] == expected_csv
    expected_ndjson = "".join(
        json.dumps(
            {
                "row": i + 1,
                "loss": LOSSES[i],
                "id": row[0],
                "temp": json.loads(row[1]),
                "note": row[2] or None,
                "flag": row[3] == "true",
                "label": int(row[4]),
            }
        )
        + "\n"
        for i, row in enumerate(rows)
    )
    assert lines["ndjson"] == expected_ndjson
    # --out writes the same values: NDJSON byte for byte, CSV cell for cell (pyarrow writes the file).
    code, _, stderr = _run(runner, tmp_path, monkeypatch, ["sparse", name, *keep, "--out", "o.ndjson"])
    assert (code, stderr) == (0, "")
    assert (tmp_path / "o.ndjson").read_text() == expected_ndjson
    code, _, stderr = _run(runner, tmp_path, monkeypatch, ["sparse", name, *keep, "--out", "o.csv"])
    assert (code, stderr) == (0, "")
    written = list(csv.reader(io.StringIO((tmp_path / "o.csv").read_text())))
    assert [r[2:] for r in written] == [["id", "temp", "note", "flag", "label"], *map(list, rows)]


@pytest.mark.parametrize("fmt", ["csv", "ndjson", "parquet", "json"])
def test_batch_size_does_not_change_a_byte(runner, tmp_path, monkeypatch, reference, fmt):
    name = FORMATS[fmt]
    _write(tmp_path / name, fmt)
    outputs = set()
    for rows in ("1", "2", "65536"):
        code, stdout, stderr = _run(runner, tmp_path, monkeypatch, [*ARGS[:1], name, *ARGS[1:], "--batch-rows", rows])
        assert (code, stderr) == (0, "")
        outputs.add(_without_input_source(stdout, name, fmt))
    assert outputs == {reference}


def test_split_files_give_the_same_groups_and_kept_values(runner, tmp_path, monkeypatch, reference):
    """'1' in one file and '0.5' in the next: each cell is typed alone, so no column changes type between files."""
    header, *lines = [",".join(NAMES)] + [",".join(_cell(v) for v in row) for row in ROWS]
    (tmp_path / "a.csv").write_text("\n".join([header, *lines[:2]]) + "\n")
    (tmp_path / "b.csv").write_text("\n".join([header, *lines[2:]]) + "\n")
    code, stdout, stderr = _run(runner, tmp_path, monkeypatch, [*ARGS[:1], "a.csv", "b.csv", *ARGS[1:]])
    assert (code, stderr) == (0, "")
    document, expected = json.loads(stdout), json.loads(reference)
    for key in ("top", "by", "per_class", "per_sample", "value", "mean", "sum"):
        assert json.dumps(document[key]) == json.dumps(expected[key])


# --- how a CSV cell is typed --------------------------------------------------------------------------------

CELLS = [  # CSV text -> the JSON value cecli prints
    ("7", 7),
    ("007", "007"),
    ("-0.5", -0.5),
    ("1e3", 1000),
    ("1.0", 1),
    ("-0", 0),
    ("2.5E-3", 0.0025),
    ("true", True),
    ("FALSE", False),
    ("nan", "nan"),
    ("+1", "+1"),
    (".5", ".5"),
    ("", None),
    ("x7", "x7"),
    ("12345678901234567890", 12345678901234567890),
    ("9007199254740993.0", 9007199254740992.0),  # not below 2**53 after rounding: stays a float
    (" 7", " 7"),
]


@pytest.mark.parametrize("batch_rows", ["1", "3", "65536"])
def test_csv_cells_are_typed_one_by_one_as_json_would_type_them(runner, tmp_path, monkeypatch, batch_rows):
    text = "y_true,y_pred,v\n" + "".join(f"1,0.5,{cell}\n" for cell, _ in CELLS)
    (tmp_path / "v.csv").write_text(text)
    args = ["bce", "v.csv", "--keep", "v", "-f", "ndjson", "--batch-rows", batch_rows]
    code, stdout, stderr = _run(runner, tmp_path, monkeypatch, args)
    assert (code, stderr) == (0, "")
    values = [json.loads(line)["v"] for line in stdout.splitlines()]
    assert [json.dumps(v) for v in values] == [json.dumps(v) for _, v in CELLS]


def test_a_non_finite_csv_number_is_null_with_a_warning(runner, tmp_path, monkeypatch):
    (tmp_path / "v.csv").write_text("y_true,y_pred,v\n1,0.5,1e400\n0,0.5,2\n")
    code, stdout, stderr = _run(runner, tmp_path, monkeypatch, ["bce", "v.csv", "--keep", "v", "-f", "ndjson"])
    assert code == 0
    assert [json.loads(line)["v"] for line in stdout.splitlines()] == [None, 2]
    assert stderr == (
        "cecli: warning: column 'v': 1 kept or grouped value is NaN or infinite "
        "(written as null; a Parquet --out file keeps them)\n"
    )


_CELL_TEXT = st.one_of(
    st.sampled_from(["", "true", "False", "nan", "007", "-0", "1e400", "x"]),
    st.integers(-(10**20), 10**20).map(str),
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.text(alphabet="0123456789.-+eE", max_size=6),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(_CELL_TEXT, min_size=1, max_size=8))
def test_the_vectorized_column_typing_equals_the_cell_by_cell_rule(cells):
    """Columns take fast paths (all text, all integers, all numbers); they must type each cell as the rule does."""
    one_by_one = io_convert._Nonfinite()
    expected = [io_convert._text_value(cell, one_by_one) for cell in cells]
    whole = io_convert._Nonfinite()
    actual = io_convert._pass_through(pa.array(cells, pa.string()), True, whole)
    assert json.dumps(actual) == json.dumps(expected)
    assert [type(v) for v in actual] == [type(v) for v in expected]
    assert whole.count == one_by_one.count


# --- the table prints values as JSON does ---------------------------------------------------------------------


def test_the_table_prints_kept_and_grouped_values_as_json_does(runner, tmp_path, monkeypatch):
    (tmp_path / "t.csv").write_text("y_true,y_pred,flag,note\n1,0.9,true,\n0.0,0.2,false,x\n")
    args = ["bce", "t.csv", "--keep", "y_true,flag,note", "--by", "y_true", "-f", "table"]
    code, stdout, stderr = _run(runner, tmp_path, monkeypatch, args)
    assert (code, stderr) == (0, "")
    rows = [line.split() for line in stdout.splitlines()]
    assert ["1", f"{-math.log(0.9):.6f}", "1", "true", "null"] in rows
    assert ["2", f"{-math.log1p(-0.2):.6f}", "0", "false", "x"] in rows
    by = stdout[stdout.index("by y_true") : stdout.index("distribution")]
    assert [r.split()[0] for r in by.splitlines()[4:6]] == ["0", "1"]  # not 0.0 and 1.0


# --- header detection -------------------------------------------------------------------------------------

_LOSS_08 = _exact_mean([-math.log1p(-0.2), -math.log(0.8)])  # rows (0, 0.2) and (1, 0.8); log(1-p) as log1p(-p)
_WARN_1 = (
    "cecli: warning: h.csv:1: the header has names that look like numbers ('1'); if the first row is data, "
    "pass --no-header (--header silences this warning)\n"
)
_AMBIGUOUS = (
    "cecli: error: h.csv:1:2: the first row holds numbers and an empty cell: a data row with a missing value, "
    "or a header without a name (pass --no-header if it is data, or name every column)\n"
)
HEADERS = [
    # content, flag, exit code, stdout, stderr
    ("1,\n0,0.2\n1,0.8\n", None, 3, "", _AMBIGUOUS),
    (
        "1,\n0,0.2\n1,0.8\n",
        "--no-header",
        3,
        "",
        "cecli: error: h.csv:1:2: missing value (fill in every cell, or drop the row)\n",
    ),
    (
        "1,\n0,0.2\n1,0.8\n",
        "--header",
        3,
        "",
        "cecli: error: h.csv:1:2: empty column name in the header (name every column)\n",
    ),
    ("1,0.9x\n0,0.2\n1,0.8\n", None, 0, f"{_LOSS_08!r}\n", _WARN_1),
    ("1,0.9x\n0,0.2\n1,0.8\n", "--header", 0, f"{_LOSS_08!r}\n", ""),
    (
        "1,0.9x\n0,0.2\n1,0.8\n",
        "--no-header",
        3,
        "",
        "cecli: error: h.csv:1:2: not a number: '0.9x' (every cell of this column must be a number)\n",
    ),
    (
        "y_true,\n0,0.2\n1,0.8\n",
        None,
        3,
        "",
        "cecli: error: h.csv:1:2: empty column name in the header "
        "(name every column, or pass --no-header if the first row is data)\n",
    ),
    (
        ",y_true,y_pred\n0,0,0.2\n1,1,0.8\n",
        None,
        3,
        "",
        "cecli: error: h.csv:1:1: empty column name in the header "
        "(name every column, or pass --no-header if the first row is data)\n",
    ),
    (
        "y,y\n0,0.2\n1,0.8\n",
        None,
        3,
        "",
        "cecli: error: h.csv:1: duplicate column name 'y' (give every column a unique name)\n",
    ),
    (
        "y,y\n0,0.2\n1,0.8\n",
        "--no-header",
        3,
        "",
        "cecli: error: h.csv:1:1: not a number: 'y' (every cell of this column must be a number)\n",
    ),
    ("0,0.2\n1,0.8\n", None, 0, f"{_LOSS_08!r}\n", ""),
    ("y_true,y_pred\n0,0.2\n1,0.8\n", None, 0, f"{_LOSS_08!r}\n", ""),
    (
        "id,2023,y_true,y_pred\na,1,0,0.2\nb,2,1,0.8\n",
        None,
        0,
        f"{_LOSS_08!r}\n",
        "cecli: warning: h.csv:1: the header has names that look like numbers ('2023'); if the first row is data, "
        "pass --no-header (--header silences this warning)\n",
    ),
]


@pytest.mark.parametrize(("content", "flag", "code", "stdout", "stderr"), HEADERS)
def test_header_detection_warns_or_stops_instead_of_eating_a_data_row(
    runner, tmp_path, monkeypatch, content, flag, code, stdout, stderr
):
    (tmp_path / "h.csv").write_text(content)
    args = ["bce", "h.csv", "--value-only", *([flag] if flag else [])]
    assert _run(runner, tmp_path, monkeypatch, args) == (code, stdout, stderr)


def test_a_header_warning_is_in_the_json_and_names_the_tsv_file(runner, tmp_path, monkeypatch):
    (tmp_path / "h.tsv").write_text("1\t0.9x\n0\t0.2\n1\t0.8\n")
    code, stdout, stderr = _run(runner, tmp_path, monkeypatch, ["bce", "h.tsv", "-f", "json", "--summary-only"])
    message = _WARN_1.removeprefix("cecli: warning: ").replace("h.csv", "h.tsv")
    assert (code, stderr) == (0, f"cecli: warning: {message}")
    assert json.loads(stdout)["warnings"] == [message.rstrip("\n")]
    assert json.loads(stdout)["value"] == _LOSS_08


def test_cecli_columns_shows_the_header_warning(runner, tmp_path, monkeypatch):
    (tmp_path / "h.csv").write_text("1,0.9x\n0,0.2\n1,0.8\n")
    assert _run(runner, tmp_path, monkeypatch, ["columns", "h.csv"]) == (0, "1\t1\tint64\n2\t0.9x\tdouble\n", _WARN_1)
    assert _run(runner, tmp_path, monkeypatch, ["columns", "h.csv", "--header"]) == (
        0,
        "1\t1\tint64\n2\t0.9x\tdouble\n",
        "",
    )


def test_an_ambiguous_first_row_in_tsv_stops_too(runner, tmp_path, monkeypatch):
    (tmp_path / "h.tsv").write_text("1\t\n0\t0.2\n")
    assert _run(runner, tmp_path, monkeypatch, ["bce", "h.tsv"]) == (3, "", _AMBIGUOUS.replace("h.csv", "h.tsv"))


# --- kept and grouped values that an output cannot hold -----------------------------------------------------


def _parquet(path, **columns) -> None:
    base = {"y_true": pa.array([1, 0], pa.int64()), "y_pred": pa.array([0.9, 0.2])}
    pq.write_table(pa.table({**base, **columns}), path)


def test_a_kept_column_whose_type_changes_between_shards_cannot_go_to_a_parquet_out(runner, tmp_path, monkeypatch):
    (tmp_path / "dump").mkdir()
    _parquet(tmp_path / "dump" / "a.parquet", id=pa.array([7, 8]))
    _parquet(tmp_path / "dump" / "b.parquet", id=pa.array([None, "x"]))
    args = ["bce", "dump", "--keep", "id", "--out", "o.parquet", "-f", "json", "--summary-only"]
    code, stdout, stderr = _run(runner, tmp_path, monkeypatch, args)
    assert (code, stdout) == (3, "")
    assert stderr == (
        "cecli: error: dump/b.parquet:2:id: string value where earlier rows have int64, and a Parquet --out column "
        "has one type (write --out as .csv or .ndjson, or give the column one type in every file)\n"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dump"]  # nothing left behind
    # The same data into NDJSON and CSV: each value as it is.
    code, stdout, stderr = _run(runner, tmp_path, monkeypatch, ["bce", "dump", "--keep", "id", "-f", "ndjson"])
    assert (code, stderr) == (0, "")
    assert [json.loads(line)["id"] for line in stdout.splitlines()] == [7, 8, None, "x"]
    code, _, stderr = _run(runner, tmp_path, monkeypatch, ["bce", "dump", "--keep", "id", "--out", "o.csv"])
    assert (code, stderr) == (0, "")
    assert [r[2] for r in csv.reader(io.StringIO((tmp_path / "o.csv").read_text()))] == ["id", "7", "8", "", "x"]


@pytest.mark.parametrize("source", ["file", "stdin"])
def test_csv_kept_columns_go_to_a_parquet_out_as_the_text_csv_output_writes(runner, tmp_path, monkeypatch, source):
    """CSV has no types to keep; whether y_true was parsed as a number (a file) or as text (stdin) does not show."""
    text = "y_true,y_pred,id,v\n1,0.9,,1.0\n0.0,0.2,007,true\n"  # null first, with one row a batch
    (tmp_path / "k.csv").write_text(text)
    args = ["bce", "k.csv" if source == "file" else "-", "--keep", "y_true,id,v", "--out", "o.parquet"]
    args += ["--batch-rows", "1"]
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, [*args, "--value-only"], input=text if source == "stdin" else None)
    assert (result.exit_code, result.stderr) == (0, "")
    table = pq.read_table(tmp_path / "o.parquet")
    assert [table.schema.field(n).type for n in ("y_true", "id", "v")] == [pa.string()] * 3
    assert table.select(["y_true", "id", "v"]).to_pylist() == [
        {"y_true": "1", "id": None, "v": "1"},
        {"y_true": "0", "id": "007", "v": "true"},
    ]


@pytest.mark.parametrize("batch_rows", ["1", "65536"])
def test_a_kept_column_null_first_takes_its_later_type_in_a_parquet_out(runner, tmp_path, monkeypatch, batch_rows):
    (tmp_path / "dump").mkdir()
    _parquet(tmp_path / "dump" / "a.parquet", id=pa.nulls(2))
    _parquet(tmp_path / "dump" / "b.parquet", id=pa.array(["x", None]))
    args = ["bce", "dump", "--keep", "id", "--out", "o.parquet", "--batch-rows", batch_rows, "--value-only"]
    code, stdout, stderr = _run(runner, tmp_path, monkeypatch, args)
    assert (code, stderr) == (0, "")
    table = pq.read_table(tmp_path / "o.parquet")
    assert table.schema.field("id").type == pa.string()
    assert table.column("id").to_pylist() == [None, None, "x", None]
    assert table.column("row").to_pylist() == [1, 2, 3, 4]


def test_an_ndjson_column_null_on_the_first_line_takes_its_type_from_the_next(runner, tmp_path, monkeypatch):
    lines = ['{"y_true": 1, "y_pred": 0.9, "id": null}', '{"y_true": 0, "y_pred": 0.2, "id": "x"}']
    (tmp_path / "n.ndjson").write_text("\n".join(lines) + "\n")
    args = ["bce", "n.ndjson", "--keep", "id", "--out", "o.parquet", "--batch-rows", "1", "-f", "ndjson"]
    code, stdout, stderr = _run(runner, tmp_path, monkeypatch, args)
    assert (code, stderr) == (0, "")
    assert [json.loads(line)["id"] for line in stdout.splitlines()] == [None, "x"]
    assert pq.read_table(tmp_path / "o.parquet").column("id").to_pylist() == [None, "x"]


def test_a_list_column_kept_into_csv_is_json_text(runner, tmp_path, monkeypatch):
    _parquet(tmp_path / "l.parquet", probs=pa.array([[0.25, 0.75], [1.0, 0.0]]))
    code, _, stderr = _run(runner, tmp_path, monkeypatch, ["bce", "l.parquet", "--keep", "probs", "--out", "o.csv"])
    assert (code, stderr) == (0, "")
    rows = list(csv.reader(io.StringIO((tmp_path / "o.csv").read_text())))
    assert [r[2] for r in rows] == ["probs", "[0.25, 0.75]", "[1, 0]"]
    code, stdout, stderr = _run(runner, tmp_path, monkeypatch, ["bce", "l.parquet", "--keep", "probs", "-f", "csv"])
    assert (code, stderr) == (0, "")
    assert [r[2] for r in csv.reader(io.StringIO(stdout))] == ["probs", "[0.25, 0.75]", "[1, 0]"]


def test_a_list_column_cannot_be_a_by_column(runner, tmp_path, monkeypatch):
    _parquet(tmp_path / "l.parquet", probs=pa.array([[0.25, 0.75], [1.0, 0.0]]))
    assert _run(runner, tmp_path, monkeypatch, ["bce", "l.parquet", "--by", "probs"]) == (
        2,
        "",
        "cecli: error: --by column 'probs' holds lists, not single values (group by a column of numbers or text)\n",
    )


_NAN_WARNING = (
    "column 'v': 2 kept or grouped values are NaN or infinite (written as null; a Parquet --out file keeps them)"
)


def test_nan_in_a_kept_float_column_is_null_with_a_warning(runner, tmp_path, monkeypatch):
    pq.write_table(
        pa.table({"y_true": [1, 0, 1], "y_pred": [0.9, 0.2, 0.5], "v": [math.nan, 1.5, -math.inf]}), tmp_path / "v.pq"
    )
    code, stdout, stderr = _run(runner, tmp_path, monkeypatch, ["bce", "v.pq", "--keep", "v", "-f", "ndjson"])
    assert (code, stderr) == (0, f"cecli: warning: {_NAN_WARNING}\n")
    assert [json.loads(line)["v"] for line in stdout.splitlines()] == [None, 1.5, None]
    code, stdout, stderr = _run(
        runner, tmp_path, monkeypatch, ["bce", "v.pq", "--keep", "v", "--top", "1", "-f", "json"]
    )
    assert code == 0
    document = json.loads(stdout)
    assert document["top"] == [{"row": 3, "loss": -math.log(0.5), "v": None}]
    assert document["warnings"] == [_NAN_WARNING]
    code, _, _ = _run(runner, tmp_path, monkeypatch, ["bce", "v.pq", "--keep", "v", "--out", "o.ndjson"])
    assert code == 0
    assert [json.loads(line)["v"] for line in (tmp_path / "o.ndjson").read_text().splitlines()] == [None, 1.5, None]
    code, _, _ = _run(runner, tmp_path, monkeypatch, ["bce", "v.pq", "--keep", "v", "--out", "o.parquet"])
    assert code == 0
    kept = pq.read_table(tmp_path / "o.parquet").column("v").to_pylist()  # Parquet holds NaN: kept as is
    assert math.isnan(kept[0]) and kept[1:] == [1.5, -math.inf]


def test_nan_and_null_in_a_by_column_are_one_null_group(runner, tmp_path, monkeypatch):
    pq.write_table(
        pa.table({"y_true": [1, 0, 1, 0], "y_pred": [0.9, 0.2, 0.5, 0.5], "v": [math.nan, 1.5, None, math.inf]}),
        tmp_path / "v.pq",
    )
    code, stdout, stderr = _run(runner, tmp_path, monkeypatch, ["bce", "v.pq", "--by", "v", "-f", "json"])
    assert code == 0
    losses = [-math.log(0.9), -math.log1p(-0.2), -math.log(0.5), -math.log1p(-0.5)]
    by = json.loads(stdout)["by"]
    assert [(g["key"], g["count"], g["sum"]) for g in by] == [
        ({"v": 1.5}, 1, losses[1]),
        ({"v": None}, 3, math.fsum([losses[0], losses[2], losses[3]])),
    ]
    assert stderr == f"cecli: warning: {_NAN_WARNING}\n"


def test_groups_that_print_differently_stay_apart_and_alike_merge(runner, tmp_path, monkeypatch):
    """CSV ``1`` and ``1.0`` print alike (one group); ``true`` and ``1`` do not, though Python has 1 == True."""
    (tmp_path / "g.csv").write_text("y_true,y_pred,g\n1,0.5,1\n1,0.5,1.0\n1,0.5,true\n1,0.5,x\n1,0.5,\n")
    code, stdout, stderr = _run(runner, tmp_path, monkeypatch, ["bce", "g.csv", "--by", "g", "-f", "json"])
    assert (code, stderr) == (0, "")
    assert [(g["key"]["g"], g["count"]) for g in json.loads(stdout)["by"]] == [(1, 2), (True, 1), ("x", 1), (None, 1)]
    assert re.search(r'"key": \{"g": true\}', stdout)


def test_an_infinite_weight_sum_is_null_with_a_warning(runner, tmp_path, monkeypatch):
    (tmp_path / "w.csv").write_text("y_true,y_pred,w\n1,0.9,1e308\n0,0.2,1e308\n")
    args = ["bce", "w.csv", "-w", "w", "--by", "y_true", "-f", "json", "--summary-only"]
    code, stdout, stderr = _run(runner, tmp_path, monkeypatch, args)
    assert code == 0
    document = json.loads(stdout)
    assert document["weight_sum"] is None
    assert [g["weight_sum"] for g in document["by"]] == [1e308, 1e308]
    messages = ["weight_sum is inf (written as null)", "denominator is inf (written as null)"]
    assert document["warnings"] == messages
    assert stderr == ""  # a number written as null is named in the document's warnings, as for losses


def test_the_dask_engine_gives_the_same_groups_kept_values_and_header_warning(tmp_path):
    """Group keys and kept values cross processes typed (``1`` and ``true`` stay apart); warnings travel too."""
    import distributed

    from cecli.pipeline import compute

    folder = tmp_path / "dump"
    folder.mkdir()
    (folder / "a.csv").write_text("y_true,2,g\n1,0.5,1\n1,0.5,true\n")
    pq.write_table(pa.table({"y_true": [0, 1], "2": [0.25, 0.5], "g": pa.array(["x", None])}), folder / "b.parquet")
    spec = {"y": "y_true", "p": "2", "by": "g", "keep": "g", "top": 4, "per_sample": False}
    local = compute("bce", str(folder), **spec).to_dict(per_sample=False)
    with distributed.LocalCluster(
        processes=False, n_workers=1, threads_per_worker=1, dashboard_address="127.0.0.1:0"
    ) as c:
        remote = compute("bce", str(folder), **spec, engine="dask", scheduler=c.scheduler_address)
    remote = remote.to_dict(per_sample=False)
    assert [(g["key"]["g"], g["count"]) for g in local["by"]] == [(1, 1), (True, 1), ("x", 1), (None, 1)]
    assert json.dumps(remote["by"]) == json.dumps(local["by"])
    assert json.dumps(remote["top"]) == json.dumps(local["top"])
    warning = (
        f"{folder / 'a.csv'}:1: the header has names that look like numbers ('2'); if the first row is data, "
        "pass --no-header (--header silences this warning)"
    )
    assert local["warnings"] == [warning]
    assert remote["warnings"][0] == warning


def test_header_warnings_come_from_every_file_and_the_labels_file(runner, tmp_path, monkeypatch):
    (tmp_path / "p.csv").write_text("y_pred,7\n0.9,a\n0.2,b\n")
    (tmp_path / "l.csv").write_text("y_true,5\n1,x\n0,y\n")
    args = ["bce", "p.csv", "--labels", "l.csv", "-y", "y_true", "-p", "y_pred", "--value-only"]
    value = _exact_mean([-math.log(0.9), -math.log1p(-0.2)])
    warning = "cecli: warning: {}:1: the header has names that look like numbers ('{}'); if the first row is data, "
    warning += "pass --no-header (--header silences this warning)\n"
    assert _run(runner, tmp_path, monkeypatch, args) == (
        0,
        f"{value!r}\n",
        warning.format("l.csv", 5) + warning.format("p.csv", 7),
    )
    (tmp_path / "q.csv").write_text("y_true,y_pred\n1,0.9\n")
    (tmp_path / "r.csv").write_text("1,\n0,0.2\n")
    code, stdout, stderr = _run(runner, tmp_path, monkeypatch, ["bce", "q.csv", "r.csv", "--value-only"])
    assert (code, stdout, stderr) == (3, "", _AMBIGUOUS.replace("h.csv", "r.csv"))
