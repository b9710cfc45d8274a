"""Bad input through the CLI: exit code and the exact one-line message (DESIGN.md "Exit codes and errors").

Every case writes real files to a temporary folder, runs ``cecli`` in-process from that folder (so paths in the
messages are the short relative names) and checks the whole stderr: ``cecli: error: FILE:ROW:COLUMN: what (hint)``.
Cases marked xfail describe what DESIGN.md asks for where cecli does not do it yet.
"""

from __future__ import annotations

import gc
import math
import os
import subprocess
import sys
import warnings

import pytest

from cecli.cli import app
from cecli.io import csv as io_csv

OK_CSV = "y_true,y_pred\n1,0.9\n0,0.2\n"
SPARSE_CSV = "label,p_0,p_1\n0,0.2,0.8\n1,0.5,0.5\n"

USAGE, BAD_INPUT = 2, 3


def case(id_, files, args, code, stderr, *, xfail=None):
    marks = [pytest.mark.xfail(strict=True, reason=xfail)] if xfail else []
    return pytest.param(files, args, code, stderr, id=id_, marks=marks)


CASES = [
    case(
        "missing-column",
        {"ok.csv": OK_CSV},
        ["bce", "ok.csv", "-p", "zz"],
        USAGE,
        "cecli: error: no column named 'zz' in ok.csv (columns are: y_true, y_pred)\n",
    ),
    case(
        "missing-weight-column",
        {"ok.csv": OK_CSV},
        ["bce", "ok.csv", "-w", "zz"],
        USAGE,
        "cecli: error: no column named 'zz' in ok.csv (columns are: y_true, y_pred)\n",
    ),
    case(
        "position-out-of-range",
        {"ok.csv": OK_CSV},
        ["bce", "ok.csv", "-p", "3-4"],
        USAGE,
        "cecli: error: `-p 3-4` is outside the 2 columns of ok.csv "
        "(positions are 1-based; columns are: y_true, y_pred)\n",
    ),
    case(
        "empty-spec-item",
        {"ok.csv": OK_CSV},
        ["bce", "ok.csv", "-p", ","],
        USAGE,
        "cecli: error: empty item in `-p ,` (separate column names with single commas)\n",
    ),
    case(
        "glob-matches-nothing",
        {"ok.csv": OK_CSV},
        ["bce", "ok.csv", "-p", "q_*"],
        USAGE,
        "cecli: error: `-p q_*` matches no column of ok.csv (columns are: y_true, y_pred)\n",
    ),
    case(
        "probability-above-one",
        {"p.csv": "y_true,y_pred\n1,0.9\n0,1.5\n"},
        ["bce", "p.csv"],
        BAD_INPUT,
        "cecli: error: p.csv:3:y_pred: probability 1.5 is outside [0, 1] "
        "(pass --from-logits if these are raw scores)\n",
    ),
    case(
        "probability-below-zero-json-record",  # JSON rows are 1-based records, not lines
        {"p.json": '[{"y_true": 1, "y_pred": 0.9}, {"y_true": 0, "y_pred": -0.25}]'},
        ["bce", "p.json"],
        BAD_INPUT,
        "cecli: error: p.json:2:y_pred: probability -0.25 is outside [0, 1] "
        "(pass --from-logits if these are raw scores)\n",
    ),
    case(
        "bce-label-outside-unit-interval",
        {"y.csv": "y_true,y_pred\n1,0.9\n2,0.2\n"},
        ["bce", "y.csv"],
        BAD_INPUT,
        "cecli: error: y.csv:3:y_true: label 2.0 is outside [0, 1] (labels must be in [0, 1])\n",
    ),
    case(
        "sparse-label-out-of-range",
        {"s.csv": "label,p_0,p_1,p_2\n0,0.2,0.3,0.5\n3,0.2,0.3,0.5\n"},
        ["sparse", "s.csv"],
        BAD_INPUT,
        "cecli: error: s.csv:3:label: label 3 is out of range for 3 classes (labels must be in [0, 2])\n",
    ),
    case(
        "sparse-label-not-integer",
        {"s.csv": "label,p_0,p_1\n0,0.2,0.8\n1.5,0.5,0.5\n"},
        ["sparse", "s.csv"],
        BAD_INPUT,
        "cecli: error: s.csv:3:label: label 1.5 is not an integer class index "
        "(labels must be integers in [0, 2); for one-hot labels use `cecli cce`)\n",
    ),
    case(
        "sparse-unknown-class-name",
        {"s.csv": "label,p_cat,p_dog\ncat,0.2,0.8\nbird,0.5,0.5\n"},
        ["sparse", "s.csv"],
        BAD_INPUT,
        "cecli: error: s.csv:3:label: label 'bird' is not a class name (classes are: cat, dog)\n",
    ),
    case(
        "nan-prediction",
        {"n.csv": "y_true,y_pred\n1,0.9\n0,nan\n"},
        ["bce", "n.csv"],
        BAD_INPUT,
        "cecli: error: n.csv:3:y_pred: probability is NaN (remove or fix rows with missing or infinite values)\n",
    ),
    case(
        "inf-prediction",
        {"n.csv": "y_true,y_pred\n1,0.9\n0,inf\n"},
        ["bce", "n.csv"],
        BAD_INPUT,
        "cecli: error: n.csv:3:y_pred: probability is inf (remove or fix rows with missing or infinite values)\n",
    ),
    case(
        "empty-cell",
        {"e.csv": "y_true,y_pred\n1,0.9\n0,\n"},
        ["bce", "e.csv"],
        BAD_INPUT,
        "cecli: error: e.csv:3:y_pred: missing value (fill in every cell, or drop the row)\n",
    ),
    case(
        "non-numeric-cell",
        {"t.csv": "y_true,y_pred\n1,0.9\n0,abc\n"},
        ["bce", "t.csv"],
        BAD_INPUT,
        "cecli: error: t.csv:3:y_pred: not a number: 'abc' (every cell of this column must be a number)\n",
    ),
    case(
        "ragged-csv-row",
        {"r.csv": "y_true,y_pred\n1,0.9\n0,0.2,3\n"},
        ["bce", "r.csv"],
        BAD_INPUT,
        "cecli: error: r.csv:3: row has 3 fields, the header has 2 "
        "(quote fields that contain the delimiter, or fix the row)\n",
    ),
    case(
        "ragged-json-lists",
        {"r.json": '{"y_true": [[0, 1], [1, 0]], "y_pred": [[0.1, 0.9], [0.3, 0.3, 0.4]]}'},
        ["cce", "r.json"],
        BAD_INPUT,
        "cecli: error: r.json:2:y_pred: list has 3 values where the other rows have 2 "
        "(every row needs one value per class)\n",
    ),
    case(
        "json-columns-of-different-length",
        {"c.json": '{"y_true": [1, 0], "y_pred": [0.9]}'},
        ["bce", "c.json"],
        BAD_INPUT,
        "cecli: error: c.json: column 'y_pred': has 1 values but 'y_true' has 2 "
        "(every column needs one value per row)\n",
    ),
    case(
        "json-mixed-types-in-column",
        {"m.json": '[{"y_true": 1, "y_pred": 0.9}, {"y_true": 0, "y_pred": 0.2}, {"y_true": 0, "y_pred": "x"}]'},
        ["bce", "m.json"],
        BAD_INPUT,
        "cecli: error: m.json:3:y_pred: text where earlier rows have a number (use one type per column)\n",
    ),
    case(
        "ndjson-mixed-types-in-column",
        {"m.ndjson": '{"y_true": 1, "y_pred": 0.9}\n{"y_true": 0, "y_pred": "x"}\n'},
        ["bce", "m.ndjson"],
        BAD_INPUT,
        "cecli: error: m.ndjson:2:y_pred: text where earlier rows have a number (use one type per column)\n",
    ),
    case(
        "ndjson-invalid-line",
        {"b.ndjson": '{"y_true": 1, "y_pred": 0.9}\n{"y_true": 0, "y_pred": 0.2\n'},
        ["bce", "b.ndjson"],
        BAD_INPUT,
        "cecli: error: b.ndjson:2: invalid JSON at column 28: Expecting ',' delimiter "
        "(each line must be one JSON object)\n",
    ),
    case(
        "truncated-json",
        {"t.json": '[{"y_true": 1, "y_pred": 0.9},'},
        ["bce", "t.json"],
        BAD_INPUT,
        "cecli: error: t.json: invalid JSON at line 1 column 31: Expecting value "
        "(for one record per line use --input-format ndjson)\n",
    ),
    case(
        "json-array-of-non-records",
        {"a.json": "[1, 2]"},
        ["bce", "a.json"],
        BAD_INPUT,
        "cecli: error: a.json:1: record is not a JSON object (use [{...}, {...}])\n",
    ),
    case(
        "empty-file",
        {"empty.csv": ""},
        ["bce", "empty.csv"],
        BAD_INPUT,
        "cecli: error: empty.csv: the input is empty (give a file with a header and rows of data)\n",
    ),
    case(
        "header-only-csv",
        {"h.csv": "y_true,y_pred\n"},
        ["bce", "h.csv"],
        BAD_INPUT,
        "cecli: error: h.csv: no data rows (the input has a header but no rows to score)\n",
    ),
    case(
        "unknown-input-format",
        {"ok.csv": OK_CSV},
        ["bce", "ok.csv", "--input-format", "xml"],
        USAGE,
        "cecli: error: Invalid value for '--input-format': 'xml' is not one of "
        "'csv', 'tsv', 'json', 'ndjson', 'parquet', 'arrow', 'npy', 'npz'. (see 'cecli bce --help')\n",
    ),
    case(
        "labels-file-longer",
        {"p.csv": "y_pred\n0.9\n0.2\n", "y.csv": "y_true\n1\n0\n1\n"},
        ["bce", "p.csv", "--labels", "y.csv"],
        BAD_INPUT,
        "cecli: error: y.csv: has 1 more rows than p.csv (2) (--labels needs exactly one row per input row)\n",
    ),
    case(
        "labels-file-shorter",
        {"p.csv": "y_pred\n0.9\n0.2\n0.3\n", "y.csv": "y_true\n1\n0\n"},
        ["bce", "p.csv", "--labels", "y.csv"],
        BAD_INPUT,
        "cecli: error: y.csv: has fewer rows than p.csv (--labels needs exactly one row per input row)\n",
    ),
    case(
        "missing-path",
        {},
        ["bce", "missing.csv"],
        BAD_INPUT,
        "cecli: error: missing.csv: No such file or directory (check the path)\n",
    ),
    case(
        "folder-without-data-files",
        {"d/notes.txt": "not data"},
        ["bce", "d"],
        BAD_INPUT,
        "cecli: error: d: the folder holds no data files (expected .csv, .parquet, ... files)\n",
    ),
    case(
        "input-glob-matches-nothing",
        {"ok.csv": OK_CSV},
        ["bce", "x*.csv"],
        BAD_INPUT,
        "cecli: error: x*.csv: the pattern matches no file (check the pattern)\n",
    ),
    case(
        "cce-all-zero-label-row",
        {"z.csv": "y_0,y_1,p_0,p_1\n0,1,0.2,0.8\n0,0,0.5,0.5\n"},
        ["cce", "z.csv"],
        BAD_INPUT,
        "cecli: error: z.csv:3:y_0: label row is all zeros, expected one-hot or soft labels summing to 1 "
        "(for several true labels per row use `cecli bce` (multi-label))\n",
    ),
    case(
        "cce-multi-hot-label-row",
        {"z.csv": "y_0,y_1,p_0,p_1\n1,1,0.2,0.8\n"},
        ["cce", "z.csv"],
        BAD_INPUT,
        "cecli: error: z.csv:2:y_0: label row sums to 2, expected one-hot or soft labels summing to 1 "
        "(for several true labels per row use `cecli bce` (multi-label))\n",
    ),
    case(
        "negative-weight",
        {"w.csv": "y_true,y_pred,w\n1,0.9,1\n0,0.2,-1\n"},
        ["bce", "w.csv", "-w", "w"],
        BAD_INPUT,
        "cecli: error: w.csv:3:w: weight -1.0 is negative (sample weights must be finite and >= 0)\n",
    ),
    case(
        "all-weights-zero",
        {"w.csv": "y_true,y_pred,w\n1,0.9,0\n0,0.2,0\n"},
        ["bce", "w.csv", "-w", "w"],
        BAD_INPUT,
        "cecli: error: w.csv: the weights of all counted rows are 0, so the mean is undefined "
        "(check the weight column (-w) and --class-weights)\n",
    ),
    case(
        "duplicate-column-names",
        {"d.csv": "y_true,y_pred,y_pred\n1,0.9,0.8\n"},
        ["bce", "d.csv"],
        BAD_INPUT,
        "cecli: error: d.csv:1: duplicate column name 'y_pred' (give every column a unique name)\n",
    ),
    case(
        "option-not-applicable",
        {"ok.csv": OK_CSV},
        ["cce", "ok.csv", "--pos-weight", "2"],
        USAGE,
        "cecli: error: No such option: --pos-weight (Possible options: --class-weights, --weight-col) "
        "(see 'cecli cce --help')\n",
    ),
    case(
        "entropy-has-no-from-logits",
        {"ok.csv": OK_CSV},
        ["entropy", "ok.csv", "--from-logits"],
        USAGE,
        "cecli: error: No such option: --from-logits (see 'cecli entropy --help')\n",
    ),
    case(
        "gate-with-reduction-none",
        {"ok.csv": OK_CSV},
        ["bce", "ok.csv", "--fail-above", "1", "--reduction", "none"],
        USAGE,
        "cecli: error: --fail-above cannot be combined with --reduction none "
        "(a gate needs a reduced value: use --reduction mean or sum)\n",
    ),
    case(
        "summary-only-with-ndjson",
        {"ok.csv": OK_CSV},
        ["bce", "ok.csv", "-f", "ndjson", "--summary-only"],
        USAGE,
        "cecli: error: --summary-only cannot be combined with -f ndjson (-f ndjson prints only per-sample lines)\n",
    ),
    case(
        "eps-out-of-range",
        {"ok.csv": OK_CSV},
        ["bce", "ok.csv", "--eps", "0.7"],
        USAGE,
        "cecli: error: --eps must be in [0, 0.5); received 0.7\n",
    ),
    case(
        "class-weights-wrong-length",
        {"s.csv": SPARSE_CSV},
        ["sparse", "s.csv", "--class-weights", "1,2,3"],
        USAGE,
        "cecli: error: --class-weights has 3 weights but there are 2 classes (give one weight per prediction column)\n",
    ),
    case(
        "out-unknown-extension",
        {"ok.csv": OK_CSV},
        ["bce", "ok.csv", "--out", "losses.txt"],
        USAGE,
        "cecli: error: cannot tell the format of --out losses.txt "
        "(use a .csv, .ndjson (either may end in .gz or .zst), .parquet or .arrow name)\n",
    ),
    case(
        "invalid-parquet-bytes",
        {"bad.parquet": b"PAR1garbagePAR1"},
        ["bce", "bad.parquet"],
        BAD_INPUT,
        "cecli: error: bad.parquet: not a readable Parquet file: Parquet file size is 15 bytes, smaller than the "
        "size reported by footer's (1701273954bytes) (the file may be truncated or corrupt)\n",
    ),
    case(
        "invalid-utf8-csv",
        {"l.csv": b"y_true,y_pred\n1,0.9\n0,0.2\xff\n"},
        ["bce", "l.csv"],
        BAD_INPUT,
        "cecli: error: l.csv:3: invalid UTF-8 text (save the file as UTF-8)\n",
    ),
    case(
        "every-row-ignored",
        {"s.csv": "label,p_0,p_1\n-1,0.2,0.8\n-1,0.5,0.5\n"},
        ["sparse", "s.csv", "--ignore-index", "-1"],
        BAD_INPUT,
        "cecli: error: s.csv: every row has the ignore index -1, so no row counts (check --ignore-index)\n",
    ),
]


@pytest.mark.parametrize("csv_block_bytes", [None, 8], ids=["one-block", "8-byte-blocks"])
@pytest.mark.parametrize(("files", "args", "code", "stderr"), CASES)
def test_bad_input_is_one_line_and_an_exit_code(
    runner, write_file, tmp_path, monkeypatch, files, args, code, stderr, csv_block_bytes
):
    """Every case also runs with CSV parsed in 8-byte blocks (each line its own block, in parallel)."""
    if csv_block_bytes is not None:
        monkeypatch.setattr(io_csv, "_CSV_BLOCK_BYTES", csv_block_bytes)
    for name, content in files.items():
        write_file(name, content)
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, args, prog_name="cecli")
    stdout, output, actual, exit_code = result.stdout, result.output, result.stderr, result.exit_code
    assert stdout == ""
    assert actual == stderr
    assert exit_code == code
    assert "Traceback" not in output
    assert "Traceback" not in actual


@pytest.mark.parametrize(
    ("name", "content"),
    [
        pytest.param("empty.csv", "", id="empty-file"),
        pytest.param("d.csv", "y_true,y_pred,y_pred\n1,0.9,0.8\n", id="duplicate-columns"),
        pytest.param(
            "m.ndjson",
            '{"y_true": 1, "y_pred": 0.9}\n{"y_true": 0, "y_pred": "x"}\n',
            id="ndjson-type",
        ),
    ],
)
def test_errors_close_the_input(runner, write_file, tmp_path, monkeypatch, name, content):
    write_file(name, content)
    monkeypatch.chdir(tmp_path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = runner.invoke(app, ["bce", name], prog_name="cecli")
        assert result.exit_code == BAD_INPUT
        del result
        gc.collect()
    assert [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)] == []


def test_cecli_debug_adds_the_traceback(runner, write_file, tmp_path, monkeypatch):
    write_file("p.csv", "y_true,y_pred\n1,1.5\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CECLI_DEBUG", "1")
    result = runner.invoke(app, ["bce", "p.csv"])
    assert result.exit_code == BAD_INPUT
    assert "Traceback" in result.stderr
    assert result.stderr.endswith(
        "cecli: error: p.csv:2:y_pred: probability 1.5 is outside [0, 1] (pass --from-logits if these are raw scores)\n"
    )


MIXED_TWO_RECORDS = '[{"y_true": 1, "y_pred": 0.9}, {"y_true": 0, "y_pred": "x"}]'


def test_json_mixed_types_message_does_not_depend_on_hash_seed(write_file, tmp_path):
    write_file("m.json", MIXED_TWO_RECORDS)
    messages = set()
    for seed in range(4):
        env = {**os.environ, "PYTHONHASHSEED": str(seed), "NO_COLOR": "1"}
        done = subprocess.run(
            [sys.executable, "-m", "cecli", "bce", "m.json"], cwd=tmp_path, env=env, capture_output=True, text=True
        )
        assert done.returncode == BAD_INPUT
        messages.add(done.stderr)
    # The same as NDJSON: the first record sets the column's type.
    expected = "cecli: error: m.json:2:y_pred: text where earlier rows have a number (use one type per column)\n"
    assert messages == {expected}


# --------------------------------------------------------------------------- option values and combinations

OK_MEAN = (-math.log(0.9) - math.log(0.8)) / 2  # OK_CSV: -log p for y = 1, -log(1 - p) for y = 0


def _conflict(first, second, why):
    return f"cecli: error: {first} cannot be combined with {second} ({why})\n"


_VALUE = "--value-only prints just the reduced number"
_LINES = "prints only per-sample lines"
_DEFAULT_JSON = "; -f json is the default when stdout is not a terminal)"

# Every pair of options that cannot both apply (README "Options"): usage error naming both.
CONFLICTS = [
    pytest.param(["--value-only", "-f", "json"], _conflict("--value-only", "-f json", _VALUE), id="value-only+json"),
    pytest.param(["--value-only", "-f", "table"], _conflict("--value-only", "-f table", _VALUE), id="value-only+table"),
    pytest.param(["--value-only", "-f", "csv"], _conflict("--value-only", "-f csv", _VALUE), id="value-only+csv"),
    pytest.param(
        ["--value-only", "--top", "3", "--by", "g"], _conflict("--value-only", "--top 3", _VALUE), id="value-only+top"
    ),
    pytest.param(["--value-only", "--by", "g"], _conflict("--value-only", "--by", _VALUE), id="value-only+by"),
    pytest.param(
        ["--value-only", "--color", "always"],
        _conflict("--value-only", "--color always", _VALUE),
        id="value-only+color",
    ),
    pytest.param(
        ["--value-only", "--keep", "g"],
        _conflict("--keep", "--value-only", "kept columns go with per-sample values: add --out FILE"),
        id="keep+value-only",
    ),
    pytest.param(
        ["--summary-only", "--reduction", "none", "--value-only"],
        _conflict(
            "--summary-only",
            "--reduction none",
            "--reduction none gives only per-sample values, which --summary-only leaves out",
        ),
        id="summary-only+reduction-none+value-only",
    ),
    pytest.param(
        ["--summary-only", "--reduction", "none", "-f", "json"],
        _conflict(
            "--summary-only",
            "--reduction none",
            "--reduction none gives only per-sample values, which --summary-only leaves out",
        ),
        id="summary-only+reduction-none",
    ),
    pytest.param(
        ["--fail-below", "0.1", "--reduction", "none"],
        _conflict("--fail-below", "--reduction none", "a gate needs a reduced value: use --reduction mean or sum"),
        id="fail-below+reduction-none",
    ),
    pytest.param(
        ["--summary-only", "-f", "csv"],
        _conflict("--summary-only", "-f csv", f"-f csv {_LINES}"),
        id="summary-only+csv",
    ),
    pytest.param(
        ["--top", "2", "-f", "ndjson"], _conflict("--top 2", "-f ndjson", f"-f ndjson {_LINES}"), id="top+ndjson"
    ),
    pytest.param(["--by", "g", "-f", "csv"], _conflict("--by", "-f csv", f"-f csv {_LINES}"), id="by+csv"),
    pytest.param(
        ["--precision", "3", "-f", "json"],
        _conflict(
            "--precision 3", "-f json", "-f json keeps full precision; --precision is for -f table and --value-only"
        ),
        id="precision+json",
    ),
    pytest.param(
        ["--precision", "3", "-f", "ndjson"],
        _conflict(
            "--precision 3", "-f ndjson", "-f ndjson keeps full precision; --precision is for -f table and --value-only"
        ),
        id="precision+ndjson",
    ),
    pytest.param(
        ["--precision", "3"],  # CliRunner's stdout is not a terminal: json by default, and the message says so
        _conflict(
            "--precision 3", "-f json", "-f json keeps full precision; --precision is for -f table and --value-only"
        )[:-2]
        + _DEFAULT_JSON
        + "\n",
        id="precision+default-json",
    ),
    pytest.param(
        ["--color", "always", "-f", "json"],
        _conflict("--color always", "-f json", "only -f table has colour"),
        id="color+json",
    ),
    pytest.param(
        ["--keep", "g", "-f", "json"],
        _conflict(
            "--keep", "-f json", "JSON per_sample holds only losses: add --out FILE or --top K, or use -f ndjson or csv"
        ),
        id="keep+json",
    ),
    pytest.param(
        ["--keep", "g", "--summary-only", "-f", "table"],
        _conflict("--keep", "--summary-only", "kept columns go with per-sample values: add --out FILE or --top K"),
        id="keep+summary-only-table",
    ),
    pytest.param(
        ["--scheduler", "tcp://127.0.0.1:8786"],
        _conflict("--scheduler", "--engine local", "a scheduler is for --engine dask; --engine local is the default"),
        id="scheduler+engine-local",
    ),
    pytest.param(
        ["--wait-for-workers", "5"],
        _conflict("--wait-for-workers", "--engine local", "it is how long --engine dask waits for a worker"),
        id="wait-for-workers+engine-local",
    ),
    pytest.param(
        ["--input-format", "json", "--delimiter", ";"],
        _conflict("--delimiter", "--input-format json", "only CSV has a delimiter"),
        id="delimiter+json",
    ),
    pytest.param(
        ["--input-format", "tsv", "--delimiter", ";"],
        _conflict("--delimiter", "--input-format tsv", "TSV is tab-delimited: use --input-format csv with --delimiter"),
        id="delimiter+tsv",
    ),
    pytest.param(
        ["--input-format", "parquet", "--no-header"],
        _conflict("--no-header", "--input-format parquet", "only CSV has a header row"),
        id="no-header+parquet",
    ),
    pytest.param(
        ["--delimiter", ";;"],
        "cecli: error: --delimiter must be one ASCII character; received ';;' (such as ';' or '|', or tab)\n",
        id="delimiter-two-chars",
    ),
    pytest.param(
        ["--delimiter", ""],
        "cecli: error: --delimiter is empty (give one character, such as ';', or tab)\n",
        id="delimiter-empty",
    ),
    pytest.param(
        ["--delimiter", "§"],
        "cecli: error: --delimiter must be one ASCII character; received '§' (such as ';' or '|', or tab)\n",
        id="delimiter-not-ascii",
    ),
    pytest.param(
        ["--delimiter", '"'],
        "cecli: error: --delimiter cannot be '\"' (quotes and line ends have their own meaning in CSV)\n",
        id="delimiter-quote",
    ),
    pytest.param(
        ["--batch-rows", "100000000000"],
        "cecli: error: Invalid value for '--batch-rows': 100000000000 is not in the range 1<=x<=10000000. "
        "(see 'cecli bce --help')\n",
        id="batch-rows-too-large",
    ),
    pytest.param(
        ["--batch-rows", "0"],
        "cecli: error: Invalid value for '--batch-rows': 0 is not in the range 1<=x<=10000000. "
        "(see 'cecli bce --help')\n",
        id="batch-rows-zero",
    ),
]


@pytest.mark.parametrize(("args", "stderr"), CONFLICTS)
def test_options_that_cannot_both_apply_are_a_usage_error(runner, write_file, tmp_path, monkeypatch, args, stderr):
    write_file("g.csv", "y_true,y_pred,g\n1,0.9,a\n0,0.2,b\n")
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["bce", "g.csv", "-y", "y_true", "-p", "y_pred", *args], prog_name="cecli")
    assert (result.exit_code, result.stderr, result.stdout) == (USAGE, stderr, "")


@pytest.mark.parametrize(
    ("command", "stderr"),
    [
        pytest.param(
            ["columns", "g.csv", "--input-format", "ndjson", "--delimiter", "|"],
            _conflict("--delimiter", "--input-format ndjson", "only CSV has a delimiter"),
            id="columns-delimiter+ndjson",
        ),
        pytest.param(
            ["columns", "g.csv", "--delimiter", "ab"],
            "cecli: error: --delimiter must be one ASCII character; received 'ab' (such as ';' or '|', or tab)\n",
            id="columns-delimiter-two-chars",
        ),
        pytest.param(
            ["sparse", "g.csv", "--value-only", "--per-class"],
            _conflict("--value-only", "--per-class", _VALUE),
            id="sparse-value-only+per-class",
        ),
        pytest.param(
            ["sparse", "s.csv", "--per-class", "-f", "csv"],
            _conflict("--per-class", "-f csv", f"-f csv {_LINES}"),
            id="sparse-per-class+csv",
        ),
        pytest.param(
            ["entropy", "s.csv", "-p", "p_0,p_1", "--color", "always", "-f", "ndjson"],
            _conflict("--color always", "-f ndjson", "only -f table has colour"),
            id="entropy-color+ndjson",
        ),
    ],
)
def test_the_same_rule_in_every_command(runner, write_file, tmp_path, monkeypatch, command, stderr):
    write_file("g.csv", "y_true,y_pred,g\n1,0.9,a\n0,0.2,b\n")
    write_file("s.csv", SPARSE_CSV)
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, command, prog_name="cecli")
    assert (result.exit_code, result.stderr, result.stdout) == (USAGE, stderr, "")


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(["--value-only", "--summary-only"], id="value-only+summary-only"),  # redundant, not contradictory
        pytest.param(["--value-only", "--out", "o.csv"], id="value-only+out"),
        pytest.param(["--value-only", "--keep", "g", "--out", "o.csv"], id="value-only+keep+out"),
        pytest.param(["--value-only", "--precision", "17"], id="value-only+precision"),
    ],
)
def test_options_that_combine_give_the_value(runner, write_file, tmp_path, monkeypatch, args):
    write_file("g.csv", "y_true,y_pred,g\n1,0.9,a\n0,0.2,b\n")
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["bce", "g.csv", "-y", "y_true", "-p", "y_pred", *args], prog_name="cecli")
    assert (result.exit_code, result.stderr) == (0, "")
    assert float(result.stdout) == pytest.approx(OK_MEAN, rel=1e-15)


@pytest.mark.parametrize("delimiter", ["\t", "tab", "TAB", "\\t"])
def test_tab_delimiter_spellings(runner, write_file, tmp_path, monkeypatch, delimiter):
    write_file("t.txt", "y_true\ty_pred\n1\t0.9\n0\t0.2\n")
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["bce", "t.txt", "--input-format", "csv", "--delimiter", delimiter, "--value-only"])
    assert (result.exit_code, result.stderr) == (0, "")
    assert float(result.stdout) == pytest.approx(OK_MEAN, rel=1e-15)


def test_semicolon_delimiter(runner, write_file, tmp_path, monkeypatch):
    write_file("s.csv", "y_true;y_pred\n1;0.9\n0;0.2\n")
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["bce", "s.csv", "--delimiter", ";", "--value-only"])
    assert (result.exit_code, result.stderr) == (0, "")
    assert float(result.stdout) == pytest.approx(OK_MEAN, rel=1e-15)
