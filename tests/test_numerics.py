"""Numbers cecli must get right at the edges (issue 11, "Trust"): exact weighted sums for any finite weights,
``0 * anything = 0`` for zero weights, NaN never called infinite, histogram counts that add up, and gates
that can fail.

Every expected number is derived here from the documented formula with ``math`` and ``fractions`` (exact
rational arithmetic, rounded once with ``float()``); the command runs as the user runs it, in a subprocess
with ``-W error`` where a NumPy ``RuntimeWarning`` must not reach stderr.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import pytest

from cecli.numerics.reduce import Histogram, Partial, ScoreState
from cecli.pipeline import _result

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SEED_BCE = [(0, 0.07), (1, 0.91), (1, 0.74), (0, 0.23), (1, 0.55), (0, 0.48), (1, 0.12)]  # sample_data/seed-bce.csv
MAX = 1.7976931348623157e308


def run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    """``python -W error -m cecli ARGS`` in `tmp_path`: any Python warning becomes an error (and a traceback)."""
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT), "NO_COLOR": "1"}
    env.pop("CECLI_DEBUG", None)
    command = [sys.executable, "-W", "error", "-m", "cecli", *args]
    return subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)


def strict(text: str) -> dict:
    def refuse(token):
        raise ValueError(f"non-standard JSON token {token}")

    return json.loads(text, parse_constant=refuse)


def bce(y: int, p: float) -> float:
    """-(y log p + (1 - y) log(1 - p)), log(1 - p) as log1p(-p) (README "Numeric conventions")."""
    return -math.log(p) if y == 1 else -math.log1p(-p)


def exact_mean(weights, losses) -> float:
    total = sum((Fraction(w) * Fraction(v) for w, v in zip(weights, losses, strict=True)), Fraction(0))
    return float(total / sum(map(Fraction, weights), Fraction(0)))


def write_seed_bce(tmp_path: Path, weights) -> str:
    text = "y_true,y_pred,w\n" + "".join(f"{y},{p},{w!r}\n" for (y, p), w in zip(SEED_BCE, weights, strict=True))
    (tmp_path / "weighted.csv").write_text(text, encoding="utf-8")
    return "weighted.csv"


# --- class 5: weighted sums are exact for any finite weights ------------------------------------------------------

SEED_LOSSES = [bce(y, p) for y, p in SEED_BCE]


@pytest.mark.parametrize(
    "weight",
    [
        pytest.param(1e-320, id="subnormal"),  # w*l underflowed: the mean came out as 0.6371... off in the 5th digit
        pytest.param(1e300, id="huge"),  # w*l with l > 1.8 overflowed: null and "losses are infinite"
        pytest.param(0.1, id="tenth"),  # w*l rounded before the exact sum
    ],
)
def test_equal_weights_of_any_size_give_the_unweighted_mean(tmp_path, weight):
    path = write_seed_bce(tmp_path, [weight] * 7)
    result = run(tmp_path, "bce", path, "-w", "w", "-f", "json", "--summary-only")
    assert (result.returncode, result.stderr) == (0, "")
    document = strict(result.stdout)
    unweighted = float(sum(map(Fraction, SEED_LOSSES), Fraction(0)) / 7)
    assert document["value"] == document["mean"] == pytest.approx(unweighted, rel=1e-15)
    # scale-free: the same bits as the run without weights
    plain = strict(run(tmp_path, "bce", path, "-y", "y_true", "-p", "y_pred", "-f", "json", "--summary-only").stdout)
    assert document["value"] == plain["value"]
    assert document["weight_sum"] == float(7 * Fraction(weight))
    assert document["sum"] == pytest.approx(float(Fraction(weight) * sum(map(Fraction, SEED_LOSSES))), rel=1e-15)
    assert document["warnings"] == []


def test_mixed_extreme_weights_are_exact(tmp_path):
    weights = [1e300, 1e-300, 1.0, 5e-324, 3e299, 0.0, 7.5]
    path = write_seed_bce(tmp_path, weights)
    result = run(tmp_path, "bce", path, "-w", "w", "--value-only")
    assert (result.returncode, result.stderr) == (0, "")
    assert float(result.stdout) == pytest.approx(exact_mean(weights, SEED_LOSSES), rel=1e-15)


def test_sum_beyond_the_float_range_is_null_with_warnings_and_the_mean_stays_exact(tmp_path):
    weights = [MAX] * 7  # Σw and Σw·l overflow as floats; the mean does not
    path = write_seed_bce(tmp_path, weights)
    result = run(tmp_path, "bce", path, "-w", "w", "-f", "json", "--summary-only")
    assert (result.returncode, result.stderr) == (0, "")
    document = strict(result.stdout)  # strict JSON: no Infinity token
    assert document["value"] == document["mean"] == pytest.approx(exact_mean(weights, SEED_LOSSES), rel=1e-15)
    assert (document["sum"], document["weight_sum"], document["denominator"]) == (None, None, None)
    assert document["warnings"] == [
        "sum is inf (written as null)",
        "weight_sum is inf (written as null)",
        "denominator is inf (written as null)",
    ]


def test_huge_weights_with_huge_losses(tmp_path):
    """Softmax losses of about 4e9 (scores 4e9 apart) times weights of 1e300: the mean is exact, no loss is infinite."""
    rows = [(0, 0.0, 4e9, 1e300), (1, 0.0, 1.0, 1e300), (0, 4e9, 0.0, 1.0)]
    text = "y,s_0,s_1,w\n" + "".join(f"{y},{a!r},{b!r},{w!r}\n" for y, a, b, w in rows)
    (tmp_path / "s.csv").write_text(text, encoding="utf-8")
    result = run(tmp_path, "softmax", "s.csv", "-y", "y", "-p", "s_0,s_1", "-w", "w", "-f", "json", "--summary-only")
    assert (result.returncode, result.stderr) == (0, "")
    document = strict(result.stdout)

    def loss(y, scores):  # -log softmax(s)[y] = logsumexp(s) - s[y]
        top = max(scores)
        return top + math.log(sum(math.exp(s - top) for s in scores)) - scores[y]

    losses = [loss(y, [a, b]) for y, a, b, _ in rows]
    weights = [w for *_, w in rows]
    assert document["value"] == pytest.approx(exact_mean(weights, losses), rel=1e-15)
    assert document["value"] == pytest.approx(2000000000.1566325, rel=1e-15)  # (4e9 + log(1 + e**-1)) / 2
    # Σw·l is about 4e309, beyond the float range: only that key is null (with its warning); nothing is "infinite"
    assert sum(Fraction(w) * Fraction(v) for w, v in zip(weights, losses, strict=True)) > Fraction(MAX)
    assert document["sum"] is None
    assert document["warnings"] == ["sum is inf (written as null)", "perplexity is inf (written as null)"]


# --- class 4: a zero weight removes its term; no NaN, no RuntimeWarning ------------------------------------------

L2, L_6, L_4 = math.log(2), -math.log(0.6), -math.log(0.4)
S = 0.1  # label smoothing


def sparse_smoothed(label: int, probabilities, weights) -> float:
    """PyTorch: (1 - s) w_y (-log p_y) + (s / C) Σ_c w_c (-log p_c), with 0 · (-log 0) = 0."""
    terms = [0.0 if w == 0 else -w * math.log(p) for w, p in zip(weights, probabilities, strict=True)]
    return (1 - S) * terms[label] + S / len(probabilities) * sum(terms)


ZERO_WEIGHT_CASES = [
    pytest.param(
        "sparse",
        "y,p_0,p_1,p_2\n1,0,0.6,0.4\n2,0.25,0.25,0.5\n0,0,0.5,0.5\n",
        ["--eps", "0", "--class-weights", "0,1,1", "--label-smoothing", "0.1"],
        # mean divides by Σ w_y = 1 + 1 + 0
        (
            sparse_smoothed(1, [0, 0.6, 0.4], [0, 1, 1])
            + sparse_smoothed(2, [0.25, 0.25, 0.5], [0, 1, 1])
            + sparse_smoothed(0, [0, 0.5, 0.5], [0, 1, 1])
        )
        / 2,
        id="sparse-smoothing",
    ),
    pytest.param(
        "sparse",
        "y,p_0,p_1,p_2\n0,0,0.5,0.5\n1,0.4,0.6,0\n",
        ["--eps", "0", "--class-weights", "0,1,1"],
        (0.0 + L_6) / 1,  # row 1: 0 · (-log 0) = 0, and its w_y = 0 leaves the denominator
        id="sparse-label-weight-0",
    ),
    pytest.param(
        "cce",
        "y_0,y_1,y_2,p_0,p_1,p_2\n0,1,0,0,0.6,0.4\n1,0,0,0,0.5,0.5\n",
        ["--eps", "0", "--class-weights", "0,1,1", "--label-smoothing", "0.1"],
        # -Σ w_c y_c log p_c with y = (1 - s) onehot + s / C; class 0 has weight 0; mean over N = 2
        (
            ((1 - S + S / 3) * L_6 + S / 3 * L_4)  # row 1
            + (S / 3 * L2 + S / 3 * L2)  # row 2: its own class has weight 0 and p = 0
        )
        / 2,
        id="cce-smoothing",
    ),
    pytest.param(
        "softmax",
        "y,s_0,s_1,s_2\n1,0,1,1\n",
        # (0 - 1) / 1e-309 overflows to -inf: log p_0 = -inf exactly where the class weight is 0
        [
            "-y",
            "y",
            "-p",
            "s_0,s_1,s_2",
            "--temperature",
            "1e-309",
            "--class-weights",
            "0,1,1",
            "--label-smoothing",
            "0.1",
        ],
        (1 - S) * L2 + S / 3 * (L2 + L2),
        id="softmax-smoothing",
    ),
    pytest.param(
        "bce",
        "y_true,y_pred\n1,0\n0,0.2\n",
        ["--eps", "0", "--pos-weight", "0"],
        (0.0 - math.log1p(-0.2)) / 2,  # -(0 · 1 · log 0 + 0 · log 1) = 0
        id="bce-pos-weight-0",
    ),
    pytest.param(
        "bce",
        "y_true,y_pred\n1,0\n0,0.2\n",
        ["--eps", "0", "--pos-weight", "0", "--label-smoothing", "0.1"],
        # y becomes 0.95 / 0.05; -(0 · y log p + (1 - y) log(1 - p))
        (-(0.05 * math.log1p(-0.0)) - 0.95 * math.log1p(-0.2)) / 2,
        id="bce-pos-weight-0-smoothing",
    ),
    pytest.param(
        "sparse",
        "y,p_0,p_1,p_2\n0,0,0.5,0.5\n1,0.4,0.6,0\n",
        ["--like", "keras", "--eps", "0", "--class-weights", "0,1,1"],
        (0.0 + L_6) / 2,  # Keras: class weight 0 as a sample weight of row 1, mean over N = 2
        id="keras-class-weight-0",
    ),
]


@pytest.mark.parametrize(("loss", "content", "options", "expected"), ZERO_WEIGHT_CASES)
def test_zero_weight_on_an_infinite_log_is_zero_not_nan(tmp_path, loss, content, options, expected):
    (tmp_path / "in.csv").write_text(content, encoding="utf-8")
    result = run(tmp_path, loss, "in.csv", *options, "-f", "json")
    assert (result.returncode, result.stderr) == (0, "")  # no RuntimeWarning, no "infinite", no "NaN"
    document = strict(result.stdout)
    assert document["value"] == pytest.approx(expected, rel=1e-14)
    assert None not in document["per_sample"]
    assert document["warnings"] == []
    assert sum(document["histogram"]["counts"]) == document["count"] and document["histogram"]["nan"] == 0


def test_zero_sample_weight_on_an_infinite_loss(tmp_path):
    """0 · inf = 0 in Σw·l: the row adds nothing; its per-sample value is still inf (null) and max says so."""
    (tmp_path / "in.csv").write_text("y_true,y_pred,w\n1,0,0\n0,0.2,1\n1,0.5,3\n", encoding="utf-8")
    result = run(tmp_path, "bce", "in.csv", "-w", "w", "--eps", "0", "-f", "json")
    assert (result.returncode, result.stderr) == (0, "")
    document = strict(result.stdout)
    expected = (1 * -math.log1p(-0.2) + 3 * L2) / 4
    assert (document["value"], document["weight_sum"]) == (pytest.approx(expected, rel=1e-15), 4.0)
    assert document["per_sample"] == [None, pytest.approx(-math.log1p(-0.2)), pytest.approx(L2)]
    assert document["warnings"] == [
        "max is inf (written as null)",
        "1 per-sample losses are not finite (null, listed in nonfinite_rows)",
    ]
    assert document["nonfinite_rows"] == [{"row": 1, "loss": "inf"}]
    assert document["histogram"]["counts"][-1] == 1  # +inf falls in the last bin
    assert sum(document["histogram"]["counts"]) + document["histogram"]["nan"] == document["count"] == 3


def test_infinite_losses_are_counted_in_the_histogram_and_called_infinite(tmp_path):
    (tmp_path / "in.csv").write_text("y_true,y_pred\n1,0\n0,0.2\n0,1\n", encoding="utf-8")
    result = run(tmp_path, "bce", "in.csv", "--eps", "0", "-f", "json")
    assert result.returncode == 0
    reason = "(a probability of exactly 0 or 1 on the wrong side of a label; --eps 0 turns off clipping)"
    assert result.stderr == f"cecli: warning: 2 of 3 losses are infinite {reason}\n"
    histogram = strict(result.stdout)["histogram"]
    assert (histogram["counts"][-1], histogram["nan"], sum(histogram["counts"])) == (2, 0, 3)


def test_nan_losses_are_never_called_infinite():
    """A NaN loss (from a caller's own losses) gets its own warning and its own histogram count."""
    from cecli.io.columns import Column, Selection

    selection = Selection((Column(1, "y", "double"),), (Column(2, "x", "double"),))
    losses = [1.0, math.nan, math.inf, 0.5]
    state = ScoreState(partial=Partial.of(losses), histogram=Histogram.of(losses), file_rows={0: 4}, n_classes=1)
    result = _result(state, _options(), selection, ["x.csv"], None, None, fmt="csv")
    assert [w for w in result.warnings if "losses are" in w] == [
        "1 of 4 losses are infinite",
        "1 of 4 losses are NaN (not a number)",
    ]
    document = result.to_dict()
    assert document["histogram"]["nan"] == 1
    assert sum(document["histogram"]["counts"]) + document["histogram"]["nan"] == document["count"] == 4


def _options():
    from cecli.options import LossOptions

    return LossOptions(loss="bce", from_logits=True)


# --- class 3: a gate that can never fail is a usage error --------------------------------------------------------


@pytest.mark.parametrize(
    ("flag", "value"),
    [("--fail-above", "nan"), ("--fail-above", "NaN"), ("--fail-below", "nan"), ("--fail-below", "-nan")],
)
def test_nan_threshold_is_a_usage_error(tmp_path, flag, value):
    (tmp_path / "in.csv").write_text("y_true,y_pred\n1,0.9\n0,0.2\n", encoding="utf-8")
    result = run(tmp_path, "bce", "in.csv", flag, value)
    assert (result.returncode, result.stdout) == (2, "")
    name = flag
    assert result.stderr == (
        f"cecli: error: {name} nan is a gate that can never fail (no value compares with NaN) (give {name} a number)\n"
    )


@pytest.mark.parametrize(
    ("content", "options", "code"),
    [
        pytest.param("y_true,y_pred\n1,0.9\n0,0.2\n", ["--fail-above", "inf"], 0, id="finite-below-inf"),
        pytest.param("y_true,y_pred\n1,0.9\n0,0.2\n", ["--fail-below", "-inf"], 0, id="finite-above-minus-inf"),
        pytest.param("y_true,y_pred\n1,0.9\n0,0.2\n", ["--fail-below", "inf"], 1, id="every-number-below-inf"),
        # an infinite loss is not above inf: --fail-above inf fails only on NaN (README)
        pytest.param("y_true,y_pred\n1,0\n", ["--eps", "0", "--fail-above", "inf"], 0, id="inf-not-above-inf"),
    ],
)
def test_infinite_thresholds_are_legal(tmp_path, content, options, code):
    (tmp_path / "in.csv").write_text(content, encoding="utf-8")
    result = run(tmp_path, "bce", "in.csv", *options, "-q", "--value-only")
    assert result.returncode == code, result.stderr


def test_multi_label_accuracy_is_an_exact_weighted_mean(tmp_path):
    """accuracy = Σ w·(right columns) / (k·Σw): the share per row (1/3, 2/3) is never rounded on the way."""
    # 1, 2 and 1 of 3 columns right; rounding w·(1/3) per row first gives 0.4247311827956989, one ulp low
    rows = [((1, 0, 1), (0.9, 0.6, 0.2), 2.5), ((0, 1, 1), (0.3, 0.7, 0.2), 1.7), ((1, 1, 0), (0.2, 0.4, 0.1), 2.0)]
    text = "y_a,y_b,y_c,p_a,p_b,p_c,w\n" + "".join(",".join(map(str, [*y, *p, w])) + "\n" for y, p, w in rows)
    (tmp_path / "m.csv").write_text(text, encoding="utf-8")
    args = ["bce", "m.csv", "-y", "y_a,y_b,y_c", "-p", "p_a,p_b,p_c", "-w", "w", "-f", "json", "--summary-only"]
    result = run(tmp_path, *args)
    assert (result.returncode, result.stderr) == (0, "")
    right = [sum((pi >= 0.5) == (yi >= 0.5) for yi, pi in zip(y, p, strict=True)) for y, p, _ in rows]
    assert right == [1, 2, 1]
    weights = [Fraction(w) for *_, w in rows]
    expected = sum(w * r for w, r in zip(weights, right, strict=True)) / (3 * sum(weights))
    assert strict(result.stdout)["accuracy"] == float(expected) == 0.42473118279569894
