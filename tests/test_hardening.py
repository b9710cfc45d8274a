"""Hardening: numeric extremes, awkward text, pipes and signals, hostile column names.

Expected numbers are closed forms computed by hand with ``math.log`` / ``math.log1p``,
never with ``cecli.numerics.core``. Error lines were taken from real runs and are asserted
exactly. Tests for behaviour that is wrong today are ``xfail(strict=True)`` with the
reason; they describe the correct behaviour.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from cecli.cli import app

PROJECT_ROOT = Path(__file__).resolve().parents[1]
EPS = 1e-7  # the default --eps
ESC = "\x1b"


# --------------------------------------------------------------------------- helpers


def cli(runner, *args):
    """Run cecli in-process; no outcome may show a traceback."""
    result = runner.invoke(app, [str(a) for a in args])
    assert "Traceback" not in result.stdout
    assert "Traceback" not in result.stderr
    return result


def strict_json(text: str) -> dict:
    """Parse JSON, refusing the non-standard NaN / Infinity tokens."""

    def refuse(token):
        raise AssertionError(f"non-strict JSON token {token}")

    return json.loads(text, parse_constant=refuse)


def error_line(result) -> str:
    assert result.stderr.count("\n") == 1, result.stderr
    return result.stderr


@pytest.fixture
def here(tmp_path, monkeypatch):
    """Run in tmp_path so that messages name files as the user typed them."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def write_parquet(path: Path, columns: dict) -> Path:
    pq.write_table(pa.table(columns), path)
    return path


# --------------------------------------------------------------------------- numeric extremes


def test_bce_logits_of_1e300_are_exact(runner, write_file, here):
    # -log sigmoid(x) for huge |x| is max(-x, 0) (+ log1p(exp(-|x|)) = 0): exactly 0 or 1e300.
    write_file("logits.csv", "y_true,y_pred\n1,1e300\n0,-1e300\n1,-1e300\n0,1e300\n")
    result = cli(runner, "bce", "logits.csv", "--from-logits", "-f", "json")
    assert result.exit_code == 0, result.stderr
    document = strict_json(result.stdout)
    assert document["per_sample"] == [0.0, 0.0, 1e300, 1e300]
    assert document["value"] == pytest.approx(5e299, rel=1e-12)
    # exp(mean) overflows, so only a derived perplexity may be reported as null
    assert [w for w in document["warnings"] if not w.startswith("perplexity")] == []
    assert result.stderr == ""


def test_softmax_scores_of_1e300_are_finite(runner, write_file, here):
    # log-sum-exp of (1e300, -1e300, 0) is 1e300, so the loss is 1e300 - x[label].
    write_file("scores.csv", "label,s0,s1,s2\n0,1e300,-1e300,0\n2,-1e300,1e300,0\n1,-1e300,1e300,-1e300\n")
    result = cli(runner, "softmax", "scores.csv", "-f", "json")
    assert result.exit_code == 0, result.stderr
    document = strict_json(result.stdout)
    assert document["per_sample"] == [0.0, 1e300, 0.0]
    assert document["value"] == pytest.approx(1e300 / 3, rel=1e-12)
    assert [w for w in document["warnings"] if not w.startswith("perplexity")] == []


def test_subnormal_probability(runner, write_file, here):
    # 1e-320 is subnormal; -log(1e-320) is an ordinary number and -log1p(-1e-320) = 1e-320.
    write_file("tiny.csv", "y_true,y_pred\n1,1e-320\n0,1e-320\n")
    result = cli(runner, "bce", "tiny.csv", "--eps", "0", "-f", "json")
    assert result.exit_code == 0, result.stderr
    per_sample = strict_json(result.stdout)["per_sample"]
    assert per_sample[0] == pytest.approx(-math.log(1e-320), rel=1e-12)
    assert per_sample[1] == pytest.approx(-math.log1p(-1e-320), rel=1e-12)
    assert per_sample[1] > 0


def test_probability_that_rounds_to_one_is_clipped_by_default(runner, write_file, here):
    # "0.99999999999999999" parses to exactly 1.0; the default clip makes it 1 - 1e-7.
    assert float("0.99999999999999999") == 1.0
    write_file("near1.csv", "y_true,y_pred\n1,0.99999999999999999\n0,0.99999999999999999\n")
    result = cli(runner, "bce", "near1.csv", "-f", "json")
    assert result.exit_code == 0, result.stderr
    per_sample = strict_json(result.stdout)["per_sample"]
    assert per_sample[0] == pytest.approx(-math.log(1.0 - EPS), rel=1e-12)
    assert per_sample[1] == pytest.approx(-math.log1p(-(1.0 - EPS)), rel=1e-12)


@pytest.mark.parametrize(
    ("content", "expected_per_sample", "infinite"),
    [
        # the true class has p = 0 exactly, no clipping: the loss is +inf, reported as null
        ("y_true,y_pred\n1,0\n", [None], "1 of 1"),
        # p rounds to 1.0 on the wrong side of a 0 label
        ("y_true,y_pred\n1,0.99999999999999999\n0,0.99999999999999999\n", [0.0, None], "1 of 2"),
    ],
    ids=["p-zero-true-class", "p-rounds-to-one"],
)
def test_eps_zero_infinite_loss_is_null_with_warning(runner, write_file, here, content, expected_per_sample, infinite):
    write_file("inf.csv", content)
    result = cli(runner, "bce", "inf.csv", "--eps", "0", "-f", "json")
    assert result.exit_code == 0
    document = strict_json(result.stdout)
    assert document["value"] is None
    assert document["per_sample"] == expected_per_sample
    assert "value is inf (written as null)" in document["warnings"]
    reason = "(a probability of exactly 0 or 1 on the wrong side of a label; --eps 0 turns off clipping)"
    assert result.stderr == f"cecli: warning: {infinite} losses are infinite {reason}\n"


P16 = [0.5, 0.25, 0.75, 0.125]  # exactly representable in float16


@pytest.mark.parametrize(
    ("dtype", "y", "p", "expected"),
    [
        (pa.float16(), [1, 0, 1, 0], P16, [-math.log(0.5), -math.log1p(-0.25), -math.log(0.75), -math.log1p(-0.125)]),
        (pa.float32(), [1, 0, 1, 0], P16, [-math.log(0.5), -math.log1p(-0.25), -math.log(0.75), -math.log1p(-0.125)]),
        # integer probabilities 0/1 are clipped to [eps, 1 - eps]
        (
            pa.int8(),
            [1, 0, 1, 0],
            [1, 0, 1, 1],
            [-math.log(1 - EPS), -math.log1p(-EPS), -math.log(1 - EPS), -math.log1p(-(1 - EPS))],
        ),
        (
            pa.int64(),
            [1, 0, 1, 0],
            [1, 0, 1, 1],
            [-math.log(1 - EPS), -math.log1p(-EPS), -math.log(1 - EPS), -math.log1p(-(1 - EPS))],
        ),
    ],
    ids=["float16", "float32", "int8", "int64"],
)
def test_parquet_numeric_types(runner, here, dtype, y, p, expected):
    write_parquet(here / "typed.parquet", {"y_true": pa.array(y, pa.int8()), "y_pred": pa.array(p, dtype)})
    result = cli(runner, "bce", "typed.parquet", "-f", "json")
    assert result.exit_code == 0, result.stderr
    document = strict_json(result.stdout)
    assert document["per_sample"] == pytest.approx(expected, rel=1e-12)
    assert document["value"] == pytest.approx(math.fsum(expected) / 4, rel=1e-12)


@pytest.mark.parametrize(
    ("loss", "expected"),
    [
        # one class: p / sum(p) = 1, clipped to 1 - eps
        ("sparse", -math.log(1 - EPS)),
        # one score: log softmax of a single value is 0
        ("softmax", 0.0),
    ],
    ids=["sparse", "softmax"],
)
@pytest.mark.parametrize("layout", ["parquet-list", "csv-column"])
def test_one_class(runner, write_file, here, loss, expected, layout):
    if layout == "parquet-list":
        write_parquet(
            here / "one.parquet",
            {"label": [0, 0], "probs": pa.array([[1.0], [0.7]], type=pa.list_(pa.float64()))},
        )
        name = "one.parquet"
    else:
        name = write_file("one.csv", "label,p_0\n0,1.0\n0,0.7\n").name
    result = cli(runner, loss, name, "-y", "label", "-f", "json")
    assert result.exit_code == 0, result.stderr
    document = strict_json(result.stdout)
    assert document["input"]["classes"] == 1
    second = expected if loss == "sparse" else 0.0  # 0.7 alone normalises to 1 as well
    assert document["per_sample"] == pytest.approx([expected, second], rel=1e-12, abs=1e-300)


def _logsumexp(row) -> float:
    top = max(row)
    return top + math.log(math.fsum(math.exp(v - top) for v in row))


@pytest.fixture(scope="module")
def wide_probabilities() -> tuple[list[int], np.ndarray]:
    rng = np.random.default_rng(10_000)
    matrix = rng.random((3, 10_000)) + 1e-3
    matrix /= matrix.sum(axis=1, keepdims=True)
    return [0, 9_999, 5_000], matrix


@pytest.mark.parametrize("loss", ["sparse", "softmax"])
def test_ten_thousand_classes_parquet_list(runner, here, wide_probabilities, loss):
    labels, matrix = wide_probabilities
    write_parquet(
        here / "wide.parquet",
        {"label": labels, "probs": pa.array(list(matrix), type=pa.list_(pa.float64()))},
    )
    result = cli(runner, loss, "wide.parquet", "-f", "json")
    assert result.exit_code == 0, result.stderr
    document = strict_json(result.stdout)
    assert document["input"]["classes"] == 10_000
    rows = [row.tolist() for row in matrix]
    if loss == "sparse":
        expected = [-math.log(row[k] / math.fsum(row)) for k, row in zip(labels, rows, strict=True)]
    else:  # the probabilities used as raw scores
        expected = [_logsumexp(row) - row[k] for k, row in zip(labels, rows, strict=True)]
    assert document["per_sample"] == pytest.approx(expected, rel=1e-12)


def _wide_csv(path: Path, labels: list[int], matrix: np.ndarray) -> Path:
    header = "label," + ",".join(f"p_{i}" for i in range(matrix.shape[1]))
    lines = [f"{k}," + ",".join(repr(v) for v in row.tolist()) for k, row in zip(labels, matrix, strict=True)]
    path.write_text("\n".join([header, *lines]) + "\n", encoding="utf-8")
    return path


def test_wide_csv_classes(runner, here, wide_probabilities):
    # 2,000 columns keeps this fast; the 10,000-column CSV is the performance test below.
    labels, matrix = wide_probabilities
    labels = [0, 1_999, 1_000]
    matrix = matrix[:, :2_000]
    _wide_csv(here / "wide.csv", labels, matrix)
    result = cli(runner, "sparse", "wide.csv", "-f", "json")
    assert result.exit_code == 0, result.stderr
    document = strict_json(result.stdout)
    assert document["input"]["classes"] == 2_000
    rows = [row.tolist() for row in matrix]
    expected = [-math.log(row[k] / math.fsum(row)) for k, row in zip(labels, rows, strict=True)]
    assert document["per_sample"] == pytest.approx(expected, rel=1e-12)


def test_ten_thousand_class_csv_through_the_cli(tmp_path, wide_probabilities):
    labels, matrix = wide_probabilities
    _wide_csv(tmp_path / "wide.csv", labels, matrix)
    # Speed is measured by bench/, not here; the timeout only stops a regression to quadratic column
    # selection (once ~10 s for this file; linear now, well under a second) from stalling the suite.
    proc = cecli_process(["sparse", "wide.csv", "-y", "label", "-p", "p_*", "--value-only"], cwd=tmp_path)
    try:
        out, err = finish(proc, timeout=60)
    except subprocess.TimeoutExpired:
        raise AssertionError("3 rows x 10,000 classes took more than 60 s") from None
    assert (proc.returncode, err) == (0, b"")
    rows = [row.tolist() for row in matrix]
    expected = math.fsum(-math.log(row[k] / math.fsum(row)) for k, row in zip(labels, rows, strict=True)) / 3
    assert float(out) == pytest.approx(expected, rel=1e-12)


# --------------------------------------------------------------------------- awkward text

OK_VALUE = (-math.log(0.9) - math.log1p(-0.2)) / 2


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


# --------------------------------------------------------------------------- pipes and signals

TIMEOUT = 10  # seconds; each subprocess normally finishes well within 2


def cecli_process(args, *, cwd, stdin=subprocess.DEVNULL):
    env = {**os.environ, "NO_COLOR": "1", "PYTHONPATH": str(PROJECT_ROOT)}
    env.pop("CECLI_DEBUG", None)
    return subprocess.Popen(
        [sys.executable, "-m", "cecli", *map(str, args)],
        stdin=stdin,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=cwd,
        env=env,
    )


def finish(proc, timeout=TIMEOUT) -> tuple[bytes, bytes]:
    """Wait for `proc` and collect its output; kill it if it outlives `timeout`."""
    try:
        return proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise


@pytest.fixture(scope="module")
def big_csv(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("big") / "big.csv"
    rows = "".join(f"{i % 2},0.{i % 97 + 1:02d}\n" for i in range(300_000))
    path.write_text("y_true,y_pred\n" + rows, encoding="ascii")
    return path


def test_stdout_closed_early_is_quiet(big_csv):
    # The same as `cecli bce big.csv -f ndjson | head -1`.
    proc = cecli_process(["bce", big_csv, "-f", "ndjson"], cwd=big_csv.parent)
    first = proc.stdout.readline()
    proc.stdout.close()
    try:
        err = proc.stderr.read()
        proc.wait(timeout=TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stderr.close()
    assert json.loads(first) == {"row": 1, "loss": pytest.approx(-math.log1p(-0.01), rel=1e-12)}
    assert err == b""
    assert proc.returncode == 141


def _open_fifo_for_writing(path: Path, proc, deadline: float) -> int:
    """Open a FIFO once `proc` has opened it for reading (never blocks forever)."""
    while True:
        try:
            fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
        except OSError:  # ENXIO: no reader yet
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"cecli never opened the FIFO: {proc.stderr.read()!r}") from None
            time.sleep(0.02)
            continue
        os.set_blocking(fd, True)
        return fd


def _feed_without_eof(fd: int) -> None:
    # Far more than a pipe buffer (64 KiB): once os.write returns, cecli has read most of
    # it and is waiting for more, i.e. it is certainly mid-run.
    os.write(fd, b"y_true,y_pred\n" + b"1,0.5\n" * 200_000)
    time.sleep(0.3)


def test_sigint_mid_read_exits_130_promptly(tmp_path):
    fifo = tmp_path / "in.csv"
    os.mkfifo(fifo)
    proc = cecli_process(["bce", fifo, "-f", "json"], cwd=tmp_path)
    fd = _open_fifo_for_writing(fifo, proc, time.monotonic() + TIMEOUT)
    try:
        _feed_without_eof(fd)
        proc.send_signal(signal.SIGINT)
        _, err = finish(proc, timeout=10)  # a hang would be until EOF, i.e. forever
    finally:
        os.close(fd)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130
    assert err == b"cecli: error: interrupted\n"


def test_sigint_mid_read_exits_130(tmp_path):
    # As above, but the writer closes after the signal (Ctrl-C in a shell also ends the writer).
    fifo = tmp_path / "in.csv"
    os.mkfifo(fifo)
    proc = cecli_process(["bce", fifo, "-f", "json"], cwd=tmp_path)
    fd = _open_fifo_for_writing(fifo, proc, time.monotonic() + TIMEOUT)
    try:
        _feed_without_eof(fd)
        proc.send_signal(signal.SIGINT)
        time.sleep(0.2)
    finally:
        os.close(fd)
    out, err = finish(proc)
    assert proc.returncode == 130
    assert err == b"cecli: error: interrupted\n"
    assert out == b""


def _sigterm_during_out(folder: Path, *, close_input: bool):
    proc = cecli_process(
        ["bce", "-", "--input-format", "csv", "-f", "json", "--out", "out.parquet", "--batch-rows", "100"],
        cwd=folder,
        stdin=subprocess.PIPE,
    )
    try:
        proc.stdin.write(b"y_true,y_pred\n" + b"1,0.5\n" * 100_000)
        proc.stdin.flush()
        deadline = time.monotonic() + TIMEOUT
        while not any(name.startswith(".out.parquet") for name in os.listdir(folder)):
            assert proc.poll() is None and time.monotonic() < deadline, "no temporary --out file appeared"
            time.sleep(0.02)
        time.sleep(0.3)  # blocked reading stdin, with rows already written to the temporary file
        proc.send_signal(signal.SIGTERM)
        if close_input:
            time.sleep(0.2)
            proc.stdin.close()
        proc.wait(timeout=10 if not close_input else TIMEOUT)  # a hang lasts until EOF
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for stream in (proc.stdin, proc.stdout, proc.stderr):
            if not stream.closed:
                stream.close()
    return proc.returncode, sorted(os.listdir(folder))


def test_sigterm_during_out_leaves_nothing_promptly(tmp_path):
    code, left = _sigterm_during_out(tmp_path, close_input=False)
    assert code != 0
    assert left == []


def test_sigterm_during_out_leaves_nothing(tmp_path):
    code, left = _sigterm_during_out(tmp_path, close_input=True)
    assert code != 0
    assert left == []  # neither out.parquet nor a hidden .out.parquet.*.tmp


def _write_fifo_in_background(fifo: Path, data: bytes) -> threading.Thread:
    def write() -> None:
        with open(fifo, "wb") as stream:  # blocks until cecli opens the FIFO
            stream.write(data)

    thread = threading.Thread(target=write, daemon=True)
    thread.start()
    return thread


def _parquet_bytes(path: Path) -> bytes:
    write_parquet(path, {"y_true": [1, 0], "y_pred": [0.9, 0.2]})
    return path.read_bytes()


@pytest.mark.parametrize("kind", ["csv", "parquet"])
def test_reading_a_fifo(tmp_path, kind):
    data = b"y_true,y_pred\n1,0.9\n0,0.2\n" if kind == "csv" else _parquet_bytes(tmp_path / "src.parquet")
    fifo = tmp_path / f"in.{kind}"
    os.mkfifo(fifo)
    writer = _write_fifo_in_background(fifo, data)
    proc = cecli_process(["bce", fifo, "--value-only"], cwd=tmp_path)
    out, err = finish(proc)
    writer.join(timeout=TIMEOUT)
    assert (proc.returncode, err) == (0, b"")
    assert float(out) == pytest.approx(OK_VALUE, rel=1e-12)


def test_reading_a_fifo_without_extension_sniffs_parquet(tmp_path):
    data = _parquet_bytes(tmp_path / "src.parquet")
    fifo = tmp_path / "in"
    os.mkfifo(fifo)
    writer = _write_fifo_in_background(fifo, data)
    proc = cecli_process(["bce", fifo, "--value-only"], cwd=tmp_path)
    out, err = finish(proc)
    writer.join(timeout=TIMEOUT)
    assert (proc.returncode, err) == (0, b"")
    assert float(out) == pytest.approx(OK_VALUE, rel=1e-12)


@pytest.mark.parametrize("kind", ["csv", "parquet"])
def test_dev_stdin_as_path(tmp_path, kind):
    data = b"y_true,y_pred\n1,0.9\n0,0.2\n" if kind == "csv" else _parquet_bytes(tmp_path / "src.parquet")
    proc = cecli_process(["bce", "/dev/stdin", "--value-only"], cwd=tmp_path, stdin=subprocess.PIPE)
    try:
        out, err = proc.communicate(data, timeout=TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert (proc.returncode, err) == (0, b"")
    assert float(out) == pytest.approx(OK_VALUE, rel=1e-12)


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
