"""Known-answer tables for ``cecli.numerics.core``.

Expected values come from sources independent of the code under test: the seed examples in
``tests/data/seed_examples.json`` (the design card's), closed forms written with the ``math`` module (the
derivation is in the row), and PyTorch 2.13 values pasted as literals (float64 tensors,
``reduction="none"``). scipy is used only through ``pytest.importorskip``.
"""

import json
import math
from pathlib import Path

import numpy as np
import pytest

from cecli.numerics.core import (
    binary_cross_entropy,
    categorical_cross_entropy,
    entropy,
    label_weights,
    log_softmax,
    softmax_cross_entropy,
    sparse_cross_entropy,
)

pytestmark = pytest.mark.filterwarnings("error")

SEED_FILE = Path(__file__).parent / "data" / "seed_examples.json"

log = math.log


# Inputs shared by the PyTorch rows.
LOGITS = [[2.0, 1.0, 0.1], [0.5, 2.5, 0.3], [1.2, -0.7, 3.0]]
LABELS = [0, 1, 2]
ONE_HOT = [[1, 0, 0], [0, 1, 0], [0, 0, 1]]
SOFT = [[0.7, 0.2, 0.1], [0.0, 1.0, 0.0], [0.25, 0.25, 0.5]]
WEIGHTS = [0.2, 1.0, 3.0]
PROBS = [[0.5, 0.3, 0.2], [0.2, 0.2, 0.6], [0.1, 0.8, 0.1]]  # torch rows below use log(PROBS) as logits
BIN_LOGITS = [[0.3, -1.2], [2.5, 0.0], [-4.0, 7.0]]
BIN_TARGETS = [[1.0, 0.0], [0.3, 1.0], [0.0, 1.0]]


def assert_losses(actual, expected):
    """Per-sample float64 losses equal `expected` to rel 1e-9 (zeros and infinities exactly)."""
    assert isinstance(actual, np.ndarray) and actual.dtype == np.float64
    assert actual.shape == (len(expected),)
    np.testing.assert_allclose(actual, expected, rtol=1e-9, atol=0)


# --- seed examples -----------------------------------------------------------------------------------------------

RUNNERS = {
    "bce": lambda case: binary_cross_entropy(case["y_true"], case["y_pred"]),
    "cce": lambda case: categorical_cross_entropy(case["y_true"], case["y_pred"]),
    "sparse": lambda case: sparse_cross_entropy(case["y_true"], case["y_pred"]),
    "softmax": lambda case: softmax_cross_entropy(case["y_true"], case["y_pred"]),
    "entropy": lambda case: entropy(case["y_pred"], base=case.get("base")),
}
SEED_NAMES = [
    "seed-bce",
    "seed-cce",
    "seed-sparse",
    "seed-keras-cce",
    "softmax-logits",
    "seed-entropy-fair-coin",
    "seed-entropy-certain",  # [1, 0] -> 0 bits: 0 log 0 = 0
]


@pytest.fixture(scope="module")
def seed_table():
    return {case["name"]: case for case in json.loads(SEED_FILE.read_text())["cases"]}


def test_every_seed_case_is_in_the_table(seed_table):
    assert set(SEED_NAMES) == set(seed_table)


@pytest.mark.parametrize("name", SEED_NAMES)
def test_seed_examples(seed_table, name):
    case = seed_table[name]
    assert_losses(RUNNERS[case["command"]](case), case["expected"]["per_sample"])


# --- binary_cross_entropy ----------------------------------------------------------------------------------------

BCE_CASES = [
    pytest.param([1], [0.9], {}, [-log(0.9)], id="y1"),
    pytest.param([0], [0.2], {}, [-log(0.8)], id="y0"),
    pytest.param([0.3], [0.6], {}, [-(0.3 * log(0.6) + 0.7 * log(0.4))], id="soft-target"),
    # multi-label: mean over the 3 label columns (Keras)
    pytest.param([[1, 0, 1]], [[0.9, 0.2, 0.6]], {}, [-(log(0.9) + log(0.8) + log(0.6)) / 3], id="multi-label-mean"),
    # torch 2.13 F.binary_cross_entropy(p, y, reduction="none").mean(dim=1)
    pytest.param(
        BIN_TARGETS,
        [[0.6, 0.1], [0.9, 0.5], [0.02, 0.999]],
        {},
        [0.30809306971190853, 1.1682824501765625, 0.010601603825551491],
        id="torch-multi-label",
    ),
    pytest.param([1], [0.5], {"base": 2}, [1.0], id="base2-one-bit"),
    # pos_weight multiplies only the positive term: -4 log 0.25, and -log 0.75 for y=0
    pytest.param([1, 0], [0.25, 0.25], {"pos_weight": 4.0}, [-4 * log(0.25), -log(0.75)], id="pos-weight-probs"),
    # label smoothing: y*(1-s) + s/2, so y=1, s=0.2 -> 0.9 and y=0, s=1 -> 0.5
    pytest.param([1], [0.9], {"label_smoothing": 0.2}, [-(0.9 * log(0.9) + 0.1 * log(0.1))], id="smooth-0.2"),
    pytest.param([0], [0.9], {"label_smoothing": 1.0}, [-(0.5 * log(0.9) + 0.5 * log(0.1))], id="smooth-1"),
    # clipping to [eps, 1-eps]: the default eps=1e-7 turns p=0 / p=1 into -log(1e-7)
    pytest.param([1, 0], [0.0, 1.0], {}, [-log(1e-7), -log(1e-7)], id="default-eps-clips"),
    pytest.param([1], [0.05], {"eps": 0.1}, [-log(0.1)], id="eps-0.1-clips"),
    pytest.param([1], [0.0], {"eps": 0.0}, [math.inf], id="eps0-p0-y1-inf"),  # -log 0
    pytest.param([0], [0.0], {"eps": 0.0}, [0.0], id="eps0-p0-y0-zero"),  # 0 log 0 = 0
    pytest.param([1], [1.0], {"eps": 0.0}, [0.0], id="eps0-p1-y1-zero"),  # 0 log 0 = 0
    # logits: -log sigmoid(0) = log 2; -log(1 - sigmoid(2)) = log(1 + e^2); -log sigmoid(-3) = log(1 + e^3)
    pytest.param([1, 0, 1], [0.0, 2.0, -3.0], {"from_logits": True}, [log(2), log(1 + math.e**2), log(1 + math.e**3)],
                 id="logits"),
    # |x| = 800 would overflow exp: -log sigmoid(-800) = 800 + log1p(e^-800) = 800 exactly in float64
    pytest.param([1, 0, 1], [-800.0, 800.0, 800.0], {"from_logits": True}, [800.0, 800.0, 0.0], id="logits-800"),
    # torch 2.13 F.binary_cross_entropy_with_logits(x, y, reduction="none").mean(dim=1)
    pytest.param(BIN_TARGETS, BIN_LOGITS, {"from_logits": True},
                 [0.40881885590327915, 1.2610184574262475, 0.009530697185791847], id="torch-logits"),
    # torch 2.13 F.binary_cross_entropy_with_logits(x, y, pos_weight=tensor(3.0), reduction="none").mean(dim=1)
    pytest.param(BIN_TARGETS, BIN_LOGITS, {"from_logits": True, "pos_weight": 3.0},
                 [0.9631741003718063, 1.9778325582739575, 0.010442163639566092], id="torch-pos-weight-scalar"),
    # torch 2.13 F.binary_cross_entropy_with_logits(x, y, pos_weight=tensor([2.0, 0.5]), reduction="none").mean(1)
    pytest.param(BIN_TARGETS, BIN_LOGITS, {"from_logits": True, "pos_weight": [2.0, 0.5]},
                 [0.6859964781375427, 1.0995651224301435, 0.009302830572348287], id="torch-pos-weight-columns"),
    # logits with smoothing s=0.5: y=1 -> 0.75; -0.75 log sigmoid(1) - 0.25 log sigmoid(-1)
    pytest.param([1], [1.0], {"from_logits": True, "label_smoothing": 0.5},
                 [0.75 * log(1 + math.e**-1) + 0.25 * log(1 + math.e)], id="logits-smooth-0.5"),
]  # fmt: skip


@pytest.mark.parametrize(("y_true", "y_pred", "options", "expected"), BCE_CASES)
def test_binary_cross_entropy(y_true, y_pred, options, expected):
    assert_losses(binary_cross_entropy(y_true, y_pred, **options), expected)


@pytest.mark.parametrize(
    ("y_true", "y_pred", "options", "match"),
    [
        pytest.param([1, 0], [0.5], {}, "same shape", id="length-mismatch"),
        pytest.param([[1, 0]], [[0.5], [0.5]], {}, "same shape", id="shape-mismatch"),
        pytest.param([[[1]]], [[[0.5]]], {}, "dimensions", id="3-d"),
        pytest.param([1], [0.5], {"eps": -0.1}, "eps", id="eps-negative"),
        pytest.param([1], [0.5], {"eps": 0.5}, "eps", id="eps-0.5"),  # [0, 0.5) is half-open
        pytest.param([1], [0.5], {"label_smoothing": -0.1}, "label_smoothing", id="smoothing-negative"),
        pytest.param([1], [0.5], {"label_smoothing": 1.5}, "label_smoothing", id="smoothing-above-1"),
        pytest.param([1], [0.5], {"base": 1}, "base", id="base-1"),
        pytest.param([1], [0.5], {"base": 0}, "base", id="base-0"),
    ],
)
def test_binary_cross_entropy_rejects(y_true, y_pred, options, match):
    with pytest.raises(ValueError, match=match):
        binary_cross_entropy(y_true, y_pred, **options)


# --- categorical_cross_entropy -----------------------------------------------------------------------------------

CCE_CASES = [
    pytest.param([[0, 1, 0]], [[0.2, 0.7, 0.1]], {}, [-log(0.7)], id="one-hot"),
    pytest.param([[0.25, 0.75]], [[0.4, 0.6]], {}, [-(0.25 * log(0.4) + 0.75 * log(0.6))], id="soft"),
    # rows are divided by their sum before clipping (Keras): [1, 3] -> [0.25, 0.75]; [0.1, 0.3] likewise
    pytest.param([[0, 1], [0, 1]], [[1.0, 3.0], [0.1, 0.3]], {}, [-log(0.75), -log(0.75)], id="renormalised"),
    # smoothing y*(1-s) + s/C with s=0.3, C=3: [0, 1, 0] -> [0.1, 0.8, 0.1]
    pytest.param([[0, 1, 0]], [[0.2, 0.7, 0.1]], {"label_smoothing": 0.3},
                 [-(0.1 * log(0.2) + 0.8 * log(0.7) + 0.1 * log(0.1))], id="smooth-0.3"),
    # class weights: -sum_c w_c y_c log p_c
    pytest.param([[0, 1, 0], [0.5, 0, 0.5]], [[0.2, 0.7, 0.1]] * 2, {"class_weights": [1.0, 2.0, 3.0]},
                 [-2 * log(0.7), -(0.5 * log(0.2) + 1.5 * log(0.1))], id="class-weights"),
    pytest.param([[1, 0]], [[0.0, 1.0]], {}, [-log(1e-7)], id="default-eps-clips"),
    pytest.param([[1, 0]], [[0.0, 1.0]], {"eps": 0.0}, [math.inf], id="eps0-inf"),  # -log 0
    # eps=0 and p=0 on a class with label 0: 0 log 0 = 0, so -log 0.95
    pytest.param([[0, 1, 0]], [[0.05, 0.95, 0.0]], {"eps": 0.0}, [-log(0.95)], id="eps0-zero-prob-label-0"),
    pytest.param([[1, 0, 0]], [[0.5, 0.3, 0.2]], {"base": 2}, [1.0], id="base2"),  # -log2(0.5)
    pytest.param([[0, 1]], [[0.0, 0.0]], {"from_logits": True}, [log(2)], id="logits"),
    # T=2: softmax([1, 0]) -> -log(1 / (1 + e^-1))
    pytest.param([[1, 0]], [[2.0, 0.0]], {"from_logits": True, "temperature": 2.0}, [log(1 + math.e**-1)],
                 id="logits-temperature"),
    # torch 2.13 F.cross_entropy(logits, probs_target, reduction="none")
    pytest.param(SOFT, LOGITS, {"from_logits": True}, [0.8070300162778336, 0.22004952302053787, 1.5489721428216132],
                 id="torch-soft"),
    # torch 2.13 F.cross_entropy(logits, probs_target, weight=w, reduction="none")
    pytest.param(SOFT, LOGITS, {"from_logits": True, "class_weights": WEIGHTS},
                 [1.0368992104178134, 0.22004952302053787, 1.3281498570789039], id="torch-soft-weights"),
    # torch 2.13 F.cross_entropy(logits, probs_target, weight=w, label_smoothing=0.1, reduction="none")
    pytest.param(SOFT, LOGITS, {"from_logits": True, "class_weights": WEIGHTS, "label_smoothing": 0.1},
                 [1.2149268249882623, 0.4621848372746928, 1.3550243046993729], id="torch-soft-weights-smooth"),
    # same, on probabilities: torch 2.13 F.cross_entropy(log(probs), ...); log_softmax(log p) = log p
    pytest.param(SOFT, PROBS, {"class_weights": WEIGHTS, "label_smoothing": 0.1},
                 [0.9442970851444363, 1.5639542000646534, 3.5153606987355626], id="torch-probs-weights-smooth"),
    # one-hot rows give the class-index values: torch 2.13 F.cross_entropy(logits / 0.5, [0, 1, 2], label_smoothing=0.3)
    pytest.param(ONE_HOT, LOGITS, {"from_logits": True, "temperature": 0.5, "label_smoothing": 0.3},
                 [0.7264405084938141, 0.8701343441503778, 1.127551911344069], id="torch-one-hot-temperature-smooth"),
]  # fmt: skip


@pytest.mark.parametrize(("y_true", "y_pred", "options", "expected"), CCE_CASES)
def test_categorical_cross_entropy(y_true, y_pred, options, expected):
    assert_losses(categorical_cross_entropy(y_true, y_pred, **options), expected)


@pytest.mark.parametrize(
    ("y_true", "y_pred", "options", "match"),
    [
        pytest.param([[0, 1]], [[0.5, 0.3, 0.2]], {}, "same shape", id="class-count-mismatch"),
        pytest.param([[0, 1], [1, 0]], [[0.5, 0.5]], {}, "same shape", id="row-count-mismatch"),
        pytest.param([0, 1], [[0.5, 0.5]], {}, "dimensions", id="1-d-labels"),
        pytest.param([[0, 1]], [0.5, 0.5], {}, "dimensions", id="1-d-predictions"),
        pytest.param([[0, 1]], [[0.5, 0.5]], {"class_weights": [1.0]}, "class_weights", id="weights-length"),
        pytest.param([[0, 1]], [[0.5, 0.5]], {"eps": 0.7}, "eps", id="eps-too-large"),
        pytest.param([[0, 1]], [[0.5, 0.5]], {"label_smoothing": 2.0}, "label_smoothing", id="smoothing"),
        pytest.param([[0, 1]], [[0.5, 0.5]], {"from_logits": True, "temperature": 0.0}, "temperature", id="t-zero"),
        pytest.param([[0, 1]], [[0.5, 0.5]], {"from_logits": True, "temperature": -1.0}, "temperature", id="t-neg"),
    ],
)
def test_categorical_cross_entropy_rejects(y_true, y_pred, options, match):
    with pytest.raises(ValueError, match=match):
        categorical_cross_entropy(y_true, y_pred, **options)


# --- sparse_cross_entropy ----------------------------------------------------------------------------------------

SPARSE_CASES = [
    pytest.param([0, 2], [[0.5, 0.3, 0.2], [0.2, 0.2, 0.6]], {}, [-log(0.5), -log(0.6)], id="probs"),
    pytest.param([1], [[2.0, 6.0]], {}, [-log(0.75)], id="renormalised"),  # [2, 6] / 8
    pytest.param([0], [[0.25, 0.75]], {"base": 2}, [2.0], id="base2"),  # -log2(1/4)
    pytest.param([1], [[1.0, 0.0]], {"eps": 0.0}, [math.inf], id="eps0-inf"),
    # class weights: w_y * (-log p_y)
    pytest.param(LABELS, PROBS, {"class_weights": WEIGHTS}, [-0.2 * log(0.5), -log(0.2), -3 * log(0.1)],
                 id="weights"),
    # smoothing without weights: (1-s)(-log p_y) + (s/C) sum_c -log p_c, s=0.25, C=3
    pytest.param([0], [[0.5, 0.3, 0.2]], {"label_smoothing": 0.25},
                 [-(0.75 * log(0.5) + (0.25 / 3) * (log(0.5) + log(0.3) + log(0.2)))], id="smooth"),
    # torch 2.13 F.cross_entropy(log(probs), [0, 1, 2], label_smoothing=0.25, reduction="none")
    pytest.param(LABELS, PROBS, {"label_smoothing": 0.25}, [0.8120735435299574, 1.5178868883784244, 2.129298297854059],
                 id="torch-probs-smooth"),
    # torch 2.13 F.cross_entropy(log(probs), [0, 1, 2], weight=w, label_smoothing=0.1, reduction="none")
    pytest.param(LABELS, PROBS, {"class_weights": WEIGHTS, "label_smoothing": 0.1},
                 [0.3304636917587977, 1.5639542000646534, 6.470026946047096], id="torch-probs-weights-smooth"),
    # torch 2.13 F.cross_entropy(logits, [0, 1, 2], weight=w, reduction="none")
    pytest.param(LABELS, LOGITS, {"from_logits": True, "class_weights": WEIGHTS},
                 [0.08340600325556671, 0.22004952302053787, 0.5219164284648398], id="torch-logits-weights"),
    # torch 2.13 F.cross_entropy(logits, [0, 1, 2], label_smoothing=0.1, reduction="none")
    pytest.param(LABELS, LOGITS, {"from_logits": True, "label_smoothing": 0.1},
                 [0.5136966829445002, 0.3600495230205379, 0.35730547615494657], id="torch-logits-smooth"),
    # torch 2.13 F.cross_entropy(logits, [0, 1, 2], weight=w, label_smoothing=0.1, reduction="none")
    pytest.param(LABELS, LOGITS, {"from_logits": True, "class_weights": WEIGHTS, "label_smoothing": 0.1},
                 [0.35678293854223997, 0.46218483727469273, 0.629414218946715], id="torch-logits-weights-smooth"),
    # torch 2.13 F.cross_entropy(logits, [0, -100, 2], weight=w, label_smoothing=0.2, ignore_index=-100, "none")
    pytest.param([0, -100, 2], LOGITS,
                 {"from_logits": True, "class_weights": WEIGHTS, "label_smoothing": 0.2, "ignore_index": -100},
                 [0.6301598738289133, 0.0, 0.7369120094285901], id="torch-ignore-index"),
    # an ignore_index inside [0, C) also gives 0
    pytest.param([1, 0], [[0.5, 0.5], [0.25, 0.75]], {"ignore_index": 1}, [0.0, -log(0.25)], id="ignore-in-range"),
    # torch 2.13 F.cross_entropy(logits / 2.5, [0, 1, 2], reduction="none")
    pytest.param(LABELS, LOGITS, {"from_logits": True, "temperature": 2.5},
                 [0.7598644856630762, 0.6227847336676854, 0.5390572997515968], id="torch-temperature"),
]  # fmt: skip


@pytest.mark.parametrize(("labels", "y_pred", "options", "expected"), SPARSE_CASES)
def test_sparse_cross_entropy(labels, y_pred, options, expected):
    assert_losses(sparse_cross_entropy(labels, y_pred, **options), expected)


@pytest.mark.parametrize(
    ("labels", "options", "match"),
    [
        pytest.param([0, 2], {}, r"\[0, 2\); received 2", id="label-equals-C"),
        pytest.param([-1, 0], {}, r"received -1", id="negative-label"),
        pytest.param([-1, 5], {"ignore_index": -1}, r"received 5", id="out-of-range-beside-ignored"),
        pytest.param([0.0, 1.0], {}, "integers", id="float-labels"),
        pytest.param([0, 1, 1], {}, "shape", id="too-many-labels"),
        pytest.param([[0], [1]], {}, "shape", id="column-labels"),
        pytest.param([0, 1], {"class_weights": [1.0, 2.0, 3.0]}, "class_weights", id="weights-length"),
        pytest.param([0, 1], {"eps": 0.5}, "eps", id="eps-0.5"),
        pytest.param([0, 1], {"label_smoothing": 1.01}, "label_smoothing", id="smoothing"),
        pytest.param([0, 1], {"from_logits": True, "temperature": 0}, "temperature", id="t-zero"),
    ],
)
def test_sparse_cross_entropy_rejects(labels, options, match):
    with pytest.raises(ValueError, match=match):
        sparse_cross_entropy(labels, [[0.5, 0.5], [0.3, 0.7]], **options)


# --- label_weights -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("labels", "options", "expected"),
    [
        pytest.param([0, 2, 1], {}, [0.2, 3.0, 1.0], id="w-of-label"),
        pytest.param([0, -100, 2], {"ignore_index": -100}, [0.2, 0.0, 3.0], id="ignored-is-0"),
        pytest.param([2, 2], {"ignore_index": 2}, [0.0, 0.0], id="ignore-in-range"),
    ],
)
def test_label_weights(labels, options, expected):
    np.testing.assert_array_equal(label_weights(labels, WEIGHTS, **options), expected)


@pytest.mark.parametrize(
    ("labels", "options", "expected_mean"),
    [
        # torch 2.13 F.cross_entropy(logits, [0, 1, 2], weight=w, reduction="mean")
        pytest.param(LABELS, {}, 0.1965171320811772, id="weights"),
        # torch 2.13 F.cross_entropy(logits, [0, -100, 2], weight=w, label_smoothing=0.2, ignore_index=-100)
        pytest.param([0, -100, 2], {"label_smoothing": 0.2, "ignore_index": -100}, 0.42720996351796986, id="ignore"),
    ],
)
def test_label_weights_give_the_torch_mean(labels, options, expected_mean):
    ignore = {"ignore_index": options["ignore_index"]} if "ignore_index" in options else {}
    losses = sparse_cross_entropy(labels, LOGITS, from_logits=True, class_weights=WEIGHTS, **options)
    assert losses.sum() / label_weights(labels, WEIGHTS, **ignore).sum() == pytest.approx(expected_mean, rel=1e-9)


@pytest.mark.parametrize("labels", [pytest.param([-1], id="negative"), pytest.param([3], id="equals-C")])
def test_label_weights_rejects_out_of_range_labels(labels):
    with pytest.raises(ValueError):
        label_weights(labels, WEIGHTS)


# --- softmax_cross_entropy ---------------------------------------------------------------------------------------

SOFTMAX_CASES = [
    # torch 2.13 F.cross_entropy(logits, [0, 1, 2], reduction="none")
    pytest.param(LABELS, LOGITS, {}, [0.41703001627783354, 0.22004952302053787, 0.17397214282161325], id="torch-int"),
    pytest.param(ONE_HOT, LOGITS, {}, [0.41703001627783354, 0.22004952302053787, 0.17397214282161325],
                 id="torch-one-hot"),
    # torch 2.13 F.cross_entropy(logits, probs_target, reduction="none")
    pytest.param(SOFT, LOGITS, {}, [0.8070300162778336, 0.22004952302053787, 1.5489721428216132], id="torch-soft"),
    # torch 2.13 F.cross_entropy(logits / 2.5, [0, 1, 2], reduction="none")
    pytest.param(LABELS, LOGITS, {"temperature": 2.5}, [0.7598644856630762, 0.6227847336676854, 0.5390572997515968],
                 id="torch-temperature"),
    # torch 2.13 F.cross_entropy(logits, [0, -100, 2], weight=w, label_smoothing=0.2, ignore_index=-100, "none")
    pytest.param([0, -100, 2], LOGITS, {"class_weights": WEIGHTS, "label_smoothing": 0.2, "ignore_index": -100},
                 [0.6301598738289133, 0.0, 0.7369120094285901], id="torch-ignore-weights-smooth"),
    # logits of magnitude 1e4 (exp overflows): -log softmax = lse - x_y, lse = 1e4 + log(1 + e^-1e4 + ...) = 1e4
    pytest.param([1, 0], [[1e4, 0.0, -1e4]] * 2, {}, [1e4, 0.0], id="magnitude-1e4"),
    # x = [1e4, 1e4 + 1]: -log softmax_0 = log(1 + e)
    pytest.param([0], [[1e4, 1e4 + 1]], {}, [log(1 + math.e)], id="1e4-offset-1"),
    # magnitude 1e300: the loser pays the gap 2e300; a 50/50 soft label pays half of it
    pytest.param([1, 0], [[1e300, -1e300]] * 2, {}, [2e300, 0.0], id="magnitude-1e300"),
    pytest.param([[0.5, 0.5]], [[1e300, -1e300]], {}, [1e300], id="magnitude-1e300-soft"),
    pytest.param([0], [[-1e300, -1e300]], {}, [log(2)], id="equal-huge-negative"),
    pytest.param([0], [[1.0, 0.0]], {"base": 2}, [log(1 + math.e**-1) / log(2)], id="base2"),
]  # fmt: skip


@pytest.mark.parametrize(("y_true", "logits", "options", "expected"), SOFTMAX_CASES)
def test_softmax_cross_entropy(y_true, logits, options, expected):
    assert_losses(softmax_cross_entropy(y_true, logits, **options), expected)


def test_softmax_cross_entropy_huge_logits_with_small_temperature():
    # softmax([1e308, 0] / 0.5) puts all mass on class 0, so the loss is exactly 0
    assert_losses(softmax_cross_entropy([0], [[1e308, 0.0]], temperature=0.5), [0.0])


@pytest.mark.parametrize(
    ("y_true", "logits", "options", "match"),
    [
        pytest.param([0], [[1.0, 2.0]], {"temperature": 0.0}, "temperature", id="t-zero"),
        pytest.param([0], [[1.0, 2.0]], {"temperature": -2.0}, "temperature", id="t-negative"),
        pytest.param([0, 1], [[1.0, 2.0]], {}, "shape", id="label-count"),
        pytest.param([2], [[1.0, 2.0]], {}, r"\[0, 2\)", id="label-out-of-range"),
        pytest.param([[0, 1, 0]], [[1.0, 2.0]], {}, "same shape", id="one-hot-width"),
        pytest.param([0], [1.0, 2.0], {}, "dimensions", id="1-d-logits"),
        pytest.param([0], [[1.0, 2.0]], {"label_smoothing": -0.5}, "label_smoothing", id="smoothing"),
    ],
)
def test_softmax_cross_entropy_rejects(y_true, logits, options, match):
    with pytest.raises(ValueError, match=match):
        softmax_cross_entropy(y_true, logits, **options)


# --- log_softmax -------------------------------------------------------------------------------------------------

LSE_123 = 3 + log(1 + math.e**-1 + math.e**-2)  # log(e^1 + e^2 + e^3)


@pytest.mark.parametrize(
    ("logits", "options", "expected"),
    [
        pytest.param([[0.0, 0.0]], {}, [[-log(2), -log(2)]], id="uniform"),
        pytest.param([[1.0, 2.0, 3.0]], {}, [[1 - LSE_123, 2 - LSE_123, 3 - LSE_123]], id="1-2-3"),
        # T=2: [2, 0] / 2 = [1, 0]; log(e^1 + 1) = 1 + log(1 + e^-1)
        pytest.param([[2.0, 0.0]], {"temperature": 2.0}, [[-log(1 + math.e**-1), -1 - log(1 + math.e**-1)]], id="t2"),
        pytest.param([[1000.0, 0.0]], {}, [[0.0, -1000.0]], id="exp-would-overflow"),  # log1p(e^-1000) = 0
        pytest.param([[-1e300, 1e300]], {}, [[-2e300, 0.0]], id="magnitude-1e300"),
    ],
)
def test_log_softmax(logits, options, expected):
    np.testing.assert_allclose(log_softmax(logits, **options), expected, rtol=1e-9, atol=0)


def test_log_softmax_matches_scipy():
    special = pytest.importorskip("scipy.special")
    logits = np.array([[0.3, -2.0, 5.5, 1.25], [-7.0, 0.0, 0.0, 3.0]])
    np.testing.assert_allclose(log_softmax(logits, temperature=0.7), special.log_softmax(logits / 0.7, axis=1),
                               rtol=1e-9)  # fmt: skip


@pytest.mark.parametrize(
    ("logits", "options"),
    [
        pytest.param([1.0, 2.0], {}, id="1-d"),
        pytest.param([[1.0, 2.0]], {"temperature": 0.0}, id="t-zero"),
        pytest.param([[1.0, 2.0]], {"temperature": -1.0}, id="t-negative"),
    ],
)
def test_log_softmax_rejects(logits, options):
    with pytest.raises(ValueError):
        log_softmax(logits, **options)


# --- entropy -----------------------------------------------------------------------------------------------------

ENTROPY_CASES = [
    pytest.param([[0.25] * 4], {"base": 2}, [2.0], id="uniform-4-two-bits"),
    pytest.param([[0.1] * 10], {"base": 10}, [1.0], id="uniform-10-one-ban"),
    pytest.param([[0.5, 0.25, 0.25]], {}, [1.5 * log(2)], id="nats"),  # 0.5 log 2 + 2 * 0.25 log 4
    pytest.param([[1.0, 2.0, 1.0]], {"base": 2}, [1.5], id="normalised"),  # [1, 2, 1] / 4 as scipy
    pytest.param([0.2, 0.8], {}, [-(0.2 * log(0.2) + 0.8 * log(0.8))], id="1-d-is-one-row"),
    pytest.param([[3.0, 3.0], [1.0, 3.0]], {}, [log(2), -(0.25 * log(0.25) + 0.75 * log(0.75))], id="two-rows"),
    pytest.param([[0.5, 0.5, 0.0]], {"base": 2}, [1.0], id="zero-prob"),  # 0 log 0 = 0
]


@pytest.mark.parametrize(("p", "options", "expected"), ENTROPY_CASES)
def test_entropy(p, options, expected):
    assert_losses(entropy(p, **options), expected)


@pytest.mark.parametrize("base", [None, 2, 10])
def test_entropy_matches_scipy(base):
    stats = pytest.importorskip("scipy.stats")
    p = np.array([[0.1, 0.2, 0.3, 0.4], [5.0, 1.0, 1.0, 1.0], [1e-12, 1.0, 2.0, 3.0]])  # rows need not sum to 1
    np.testing.assert_allclose(entropy(p, base=base), stats.entropy(p, base=base, axis=1), rtol=1e-9)


@pytest.mark.parametrize(
    ("p", "options"),
    [pytest.param([[[0.5, 0.5]]], {}, id="3-d"), pytest.param([[0.5, 0.5]], {"base": 1}, id="base-1")],
)
def test_entropy_rejects(p, options):
    with pytest.raises(ValueError):
        entropy(p, **options)
