"""Awkward text: BOM and CRLF, quoted fields, missing and non-finite cells, rows far from summing to 1.

Error lines were taken from real runs and are asserted exactly.
"""

from __future__ import annotations

import json
import math

import hardening_helpers
import pytest
from hardening_helpers import OK_VALUE, cli, error_line, strict_json

here = hardening_helpers.here  # the fixture, under the name the tests ask for

# --------------------------------------------------------------------------- awkward text


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("bom-crlf.csv", b"\xef\xbb\xbfy_true,y_pred\r\n1,0.9\r\n0,0.2\r\n"),
        ("bom-crlf.tsv", b"\xef\xbb\xbfy_true\ty_pred\r\n1\t0.9\r\n0\t0.2\r\n"),
        ("bom-crlf.ndjson", b'\xef\xbb\xbf{"y_true": 1, "y_pred": 0.9}\r\n{"y_true": 0, "y_pred": 0.2}\r\n'),
        ("bom-crlf.json", b'\xef\xbb\xbf[{"y_true": 1, "y_pred": 0.9},\r\n {"y_true": 0, "y_pred": 0.2}]\r\n'),
        ("headerless-bom-crlf.csv", b"\xef\xbb\xbf1,0.9\r\n0,0.2\r\n"),
    ],
    ids=["csv", "tsv", "ndjson", "json", "headerless-csv"],
)
def test_bom_and_crlf_just_work(runner, write_file, here, name, content):
    write_file(name, content)
    result = cli(runner, "bce", name, "--value-only")
    assert result.exit_code == 0, result.stderr
    assert float(result.stdout) == pytest.approx(OK_VALUE, rel=1e-12)
    assert result.stderr == ""


def test_quoted_fields_with_commas(runner, write_file, here):
    write_file("quoted.csv", 'id,y_true,y_pred\n"a,b",1,0.9\n"c, ""d""",0,0.2\n')
    result = cli(runner, "bce", "quoted.csv", "--keep", "id", "-f", "ndjson")
    assert result.exit_code == 0, result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["id"] for r in records] == ["a,b", 'c, "d"']
    assert records[0]["loss"] == pytest.approx(-math.log(0.9), rel=1e-12)
    assert records[1]["loss"] == pytest.approx(-math.log1p(-0.2), rel=1e-12)


MISSING_HINT = "(fill in every cell, or drop the row)"
NONFINITE_HINT = "(remove or fix rows with missing or infinite values)"


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("y_true,y_pred\n1,0.9\n0,\n", f"x.csv:3:y_pred: missing value {MISSING_HINT}"),
        ("y_true,y_pred\n1,0.9\n,0.3\n", f"x.csv:3:y_true: missing value {MISSING_HINT}"),
        ("y_true,y_pred\n1,0.9\n0,0.1\n1, \n", f"x.csv:4:y_pred: missing value {MISSING_HINT}"),
        ("y_true,y_pred\n1,0.9\n0,nan\n", f"x.csv:3:y_pred: probability is NaN {NONFINITE_HINT}"),
        ("y_true,y_pred\n1,0.9\n0,NaN\n", f"x.csv:3:y_pred: probability is NaN {NONFINITE_HINT}"),
        ("y_true,y_pred\n1,0.9\n0,inf\n", f"x.csv:3:y_pred: probability is inf {NONFINITE_HINT}"),
        ("y_true,y_pred\n1,0.9\n0,-inf\n", f"x.csv:3:y_pred: probability is -inf {NONFINITE_HINT}"),
        ("y_true,y_pred\n1,0.9\nnan,0.3\n", f"x.csv:3:y_true: label is NaN {NONFINITE_HINT}"),
        ("y_true,y_pred\n1,0.9\ninf,0.3\n", f"x.csv:3:y_true: label is inf {NONFINITE_HINT}"),
        ("y_true,y_pred\n1,0.9\n-inf,0.3\n", f"x.csv:3:y_true: label is -inf {NONFINITE_HINT}"),
    ],
    ids=[
        "empty-pred",
        "empty-label",
        "blank-pred",
        "nan-pred",
        "NaN-pred",
        "inf-pred",
        "minus-inf-pred",
        "nan-label",
        "inf-label",
        "minus-inf-label",
    ],
)
def test_missing_and_nonfinite_cells_name_row_and_column(runner, write_file, here, content, expected):
    write_file("x.csv", content)
    result = cli(runner, "bce", "x.csv", "-f", "json")
    assert result.exit_code == 3
    assert result.stdout == ""
    assert error_line(result) == f"cecli: error: {expected}\n"


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("x.ndjson", '{"y_true": 1, "y_pred": 0.9}\n{"y_true": 0, "y_pred": null}\n', "x.ndjson:2:y_pred"),
        ("x.json", '[{"y_true": 1, "y_pred": 0.9}, {"y_true": null, "y_pred": 0.2}]', "x.json:2:y_true"),
    ],
    ids=["ndjson-null", "json-null"],
)
def test_json_nulls_are_missing_values(runner, write_file, here, name, content, expected):
    write_file(name, content)
    result = cli(runner, "bce", name, "-f", "json")
    assert result.exit_code == 3
    line = error_line(result)
    assert line.startswith(f"cecli: error: {expected}: missing value")


def test_nonfinite_score_for_softmax(runner, write_file, here):
    write_file("s.csv", "label,s0,s1\n0,1,2\n1,3,nan\n")
    result = cli(runner, "softmax", "s.csv", "-f", "json")
    assert result.exit_code == 3
    assert error_line(result) == f"cecli: error: s.csv:3:s1: score is NaN {NONFINITE_HINT}\n"


OFF_SIMPLEX = "1 of 2 prediction rows do not sum to 1 (|sum - 1| > 0.001); they were divided by their sum"


@pytest.mark.parametrize("loss", ["sparse", "cce"])
def test_rows_far_from_summing_to_one_warn(runner, write_file, here, loss):
    if loss == "sparse":
        write_file("off.csv", "y_true,p_0,p_1,p_2\n0,0.5,0.5,0.5\n1,0.1,0.8,0.1\n")
    else:
        write_file("off.csv", "y_0,y_1,y_2,p_0,p_1,p_2\n1,0,0,0.5,0.5,0.5\n0,1,0,0.1,0.8,0.1\n")
    result = cli(runner, loss, "off.csv", "-f", "json")
    assert result.exit_code == 0
    document = strict_json(result.stdout)
    assert OFF_SIMPLEX in document["warnings"]
    assert result.stderr == f"cecli: warning: {OFF_SIMPLEX}\n"
    # the first row is divided by its sum 1.5: p = 1/3
    expected = [math.log(3), -math.log(0.8)]
    assert document["per_sample"] == pytest.approx(expected, rel=1e-12)

    quiet = cli(runner, loss, "off.csv", "-f", "json", "-q")
    assert quiet.exit_code == 0
    assert quiet.stderr == ""
    assert OFF_SIMPLEX in strict_json(quiet.stdout)["warnings"]


def test_multi_hot_label_row_points_to_bce(runner, write_file, here):
    write_file("multi.csv", "y_0,y_1,y_2,p_0,p_1,p_2\n0,1,0,0.3,0.3,0.4\n1,1,0,0.3,0.3,0.4\n")
    result = cli(runner, "cce", "multi.csv", "-f", "json")
    assert result.exit_code == 3
    line = error_line(result)
    assert line.startswith("cecli: error: multi.csv:3:y_0: ")
    assert "`cecli bce`" in line


def test_multi_hot_label_row_message(runner, write_file, here):
    write_file("multi.csv", "y_0,y_1,y_2,p_0,p_1,p_2\n1,1,0,0.3,0.3,0.4\n")
    result = cli(runner, "cce", "multi.csv")
    assert result.exit_code == 3
    assert error_line(result) == (
        "cecli: error: multi.csv:2:y_0: label row sums to 2, expected one-hot or soft labels summing to 1 "
        "(for several true labels per row use `cecli bce` (multi-label))\n"
    )


def test_cce_class_count_mismatch(runner, write_file, here):
    write_file("mismatch.csv", "y_0,y_1,p_0,p_1,p_2\n1,0,0.3,0.3,0.4\n")
    result = cli(runner, "cce", "mismatch.csv", "-y", "y_0,y_1", "-p", "p_0,p_1,p_2")
    assert result.exit_code == 3
    assert error_line(result) == (
        "cecli: error: mismatch.csv: 2 label columns (y_0, y_1) but 3 prediction columns "
        "(select one label column per prediction column with -y and -p)\n"
    )


@pytest.mark.parametrize(
    ("labels", "expected"),
    [
        ("y_true\n1\n0\n", "labels.csv: has fewer rows than preds.csv"),
        ("y_true\n1\n0\n1\n0\n", "labels.csv: has 1 more rows than preds.csv (3)"),
    ],
    ids=["labels-shorter", "labels-longer"],
)
def test_labels_file_row_count_mismatch(runner, write_file, here, labels, expected):
    write_file("preds.csv", "y_pred\n0.9\n0.2\n0.3\n")
    write_file("labels.csv", labels)
    result = cli(runner, "bce", "preds.csv", "--labels", "labels.csv", "-f", "json")
    assert result.exit_code == 3
    assert result.stdout == ""
    assert error_line(result) == f"cecli: error: {expected} (--labels needs exactly one row per input row)\n"


def test_all_zero_weights(runner, write_file, here):
    write_file("w.csv", "y_true,y_pred,w\n1,0.9,0\n0,0.2,0.0\n")
    result = cli(runner, "bce", "w.csv", "-w", "w")
    assert result.exit_code == 3
    assert error_line(result) == (
        "cecli: error: w.csv: the weights of all counted rows are 0, so the mean is undefined "
        "(check the weight column (-w) and --class-weights)\n"
    )


@pytest.mark.parametrize("loss", ["sparse", "softmax"])
def test_no_rows_left_after_ignore_index(runner, write_file, here, loss):
    write_file("ign.csv", "y_true,p_0,p_1\n-100,0.5,0.5\n-100,0.1,0.9\n")
    result = cli(runner, loss, "ign.csv", "--ignore-index", "-100")
    assert result.exit_code == 3
    assert error_line(result) == (
        "cecli: error: ign.csv: every row has the ignore index -100, so no row counts (check --ignore-index)\n"
    )


def test_malformed_ndjson_line_closes_its_files(runner, write_file, here):
    write_file(
        "bad.ndjson", '{"y_true": 1, "y_pred": 0.5}\n{"y_true": 0, "y_pred": 0.2}\n{"y_true": 1, "y_pred": "0.3}\n'
    )
    result = cli(runner, "bce", "bad.ndjson")
    assert result.exit_code == 3
    assert error_line(result).startswith("cecli: error: bad.ndjson:3: invalid JSON at column ")
