"""Numeric extremes: logits of 1e300, subnormal and rounding probabilities, one and ten thousand classes.

Expected numbers are closed forms computed by hand with ``math.log`` / ``math.log1p``,
never with ``cecli.numerics.core``.
"""

from __future__ import annotations

import math
import subprocess
from pathlib import Path

import hardening_helpers
import numpy as np
import pyarrow as pa
import pytest
from hardening_helpers import EPS, cecli_process, cli, finish, strict_json, write_parquet

here = hardening_helpers.here  # the fixture, under the name the tests ask for

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
