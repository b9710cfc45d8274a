"""Known answers and properties of the focal, generalized cross-entropy and NLL functions of ``cecli.numerics.family``.

Every expected value is derived here, element by element with the ``math`` module, from the published
formulas and from the libraries' source written out step by step (read, not imported):

* Keras 3 ``keras/src/losses/losses.py``: ``binary_focal_crossentropy`` (smooth the targets, ``sigmoid``
  for logits, ``bce`` of the probabilities clipped to [1e-7, 1 - 1e-7], ``p_t`` and the focal factor of the
  *unclipped* ``p``, ``alpha_t`` only with ``apply_class_balancing``, mean over the last axis),
  ``categorical_focal_crossentropy`` (smooth, softmax for logits, divide by the row sum, clip, then
  ``-sum alpha (1 - p)^gamma y log p``) and ``categorical_generalized_cross_entropy`` (``(1 - p_y^q) / q``
  of the unclipped probability of the class index);
* torchvision ``torchvision/ops/focal_loss.py``: ``sigmoid_focal_loss`` (logits, ``BCE-with-logits`` times
  ``(1 - p_t)^gamma``, times ``alpha_t`` when ``alpha >= 0``);
* PyTorch ``NLLLoss``: ``-w_y * input[y]``, 0 for ``ignore_index``, the mean divided by ``sum w_y``.

The few literals are the outputs printed in Keras' own docstrings (float32, so compared at their precision).
"""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cecli.errors import CellError
from cecli.numerics.core import (
    binary_cross_entropy,
    categorical_cross_entropy,
    label_weights,
    softmax_cross_entropy,
    sparse_cross_entropy,
)
from cecli.numerics.family import (
    binary_focal_cross_entropy,
    categorical_focal_cross_entropy,
    generalized_cross_entropy,
    negative_log_likelihood,
    nll_loss,
    perplexity,
)
from cecli.numerics.reduce import Partial
from cecli.numerics.validate import check_log_probabilities

pytestmark = pytest.mark.filterwarnings("error")

SETTINGS = settings(max_examples=100, deadline=None)
KERAS_EPS = 1e-7
GAMMAS = [0.0, 0.5, 2.0, 5.0]
ALPHAS = [0.0, 0.25, 1.0]


def assert_losses(actual, expected, rtol=1e-9):
    """Per-sample float64 losses equal `expected` to `rtol` (zeros and infinities exactly)."""
    assert isinstance(actual, np.ndarray) and actual.dtype == np.float64
    assert actual.shape == (len(expected),)
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=0)


# --- the libraries' semantics, one element at a time ----------------------------------------------------------


def log(x: float) -> float:
    """Natural log with log(0) = -inf (math.log raises)."""
    return -math.inf if x == 0 else math.log(x)


def xlogy(a: float, log_b: float) -> float:
    """a * log_b with 0 * log 0 = 0."""
    return 0.0 if a == 0 else a * log_b


def times(weight: float, value: float) -> float:
    """A weight of 0 removes its term, even an infinite one (the formula's 0, not IEEE's NaN)."""
    return 0.0 if weight == 0 else weight * value


def sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x)) if x >= 0 else math.exp(x) / (1.0 + math.exp(x))


def softplus(z: float) -> float:
    """log(1 + e^z) = max(z, 0) + log1p(e^-|z|): -log sigmoid(-z), finite for any finite z."""
    return max(z, 0.0) + math.log1p(math.exp(-abs(z)))


def keras_binary_focal(y, p, *, gamma, alpha=0.25, balancing=False, smoothing=0.0, eps=KERAS_EPS):
    """Keras ``binary_focal_crossentropy`` of one element, probabilities (float64)."""
    y = y * (1 - smoothing) + 0.5 * smoothing
    clipped = min(max(p, eps), 1 - eps)
    bce = -(xlogy(y, log(clipped)) + xlogy(1 - y, log(1 - clipped)))
    p_t = y * p + (1 - y) * (1 - p)
    loss = times((1 - p_t) ** gamma, bce)  # Python: 0.0 ** 0 == 1.0, as ops.power
    if balancing:
        loss = times(y * alpha + (1 - y) * (1 - alpha), loss)
    return loss


def exact_binary_focal_logit(y, x, *, gamma, alpha=0.25, balancing=False, smoothing=0.0):
    """The same formula for a logit, exactly: bce and 1 - p_t from softplus / sigmoid (torchvision's shape)."""
    y = y * (1 - smoothing) + 0.5 * smoothing
    bce = y * softplus(-x) + (1 - y) * softplus(x)  # PyTorch binary_cross_entropy_with_logits
    p = sigmoid(x)
    p_t = p * y + (1 - p) * (1 - y)
    loss = times((1 - p_t) ** gamma, bce)
    if balancing:
        loss = times(alpha * y + (1 - alpha) * (1 - y), loss)
    return loss


def torchvision_focal(x, y, *, alpha=0.25, gamma=2.0):
    """torchvision ``sigmoid_focal_loss`` of one element, reduction='none'."""
    p = sigmoid(x)
    ce = (1 - y) * x + softplus(-x)  # binary_cross_entropy_with_logits: (1 - y) x + log(1 + e^-x)
    p_t = p * y + (1 - p) * (1 - y)
    loss = ce * (1 - p_t) ** gamma
    if alpha >= 0:
        loss = (alpha * y + (1 - alpha) * (1 - y)) * loss
    return loss


def rows_mean(per_element, targets, preds, **options):
    return [
        math.fsum(per_element(y, p, **options) for y, p in zip(ys, ps, strict=True)) / len(ys)
        for ys, ps in zip(targets, preds, strict=True)
    ]


def keras_softmax(row, temperature=1.0):
    top = max(row)
    e = [math.exp((v - top) / temperature) for v in row]
    return [v / math.fsum(e) for v in e]


def keras_categorical_focal(y, p, *, gamma, alpha=0.25, smoothing=0.0, eps=KERAS_EPS):
    """Keras ``categorical_focal_crossentropy`` of one row (probabilities; alpha a number or per class)."""
    c = len(p)
    y = [v * (1 - smoothing) + smoothing / c for v in y]
    total = math.fsum(p)
    out = [min(max(v / total, eps), 1 - eps) for v in p]
    alphas = alpha if isinstance(alpha, list) else [alpha] * c
    return math.fsum(times(a * (1 - o) ** gamma, -xlogy(t, log(o))) for a, t, o in zip(alphas, y, out, strict=True))


def one_hot(label, c):
    return [1.0 if k == label else 0.0 for k in range(c)]


def gce(y, p, *, q, smoothing=0.0):
    """(1 - p^q) / q, the expectation over the (smoothed) target row."""
    c = len(p)
    y = [v * (1 - smoothing) + smoothing / c for v in y]
    return math.fsum(t * (1 - v**q) / q for t, v in zip(y, p, strict=True))


# --- binary focal: Keras ---------------------------------------------------------------------------------------

BIN_Y = [[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [0.3, 0.0], [0.0, 0.0]]
BIN_P = [[0.9, 0.2], [0.35, 0.6], [0.05, 0.999], [0.4, 0.7], [0.01, 0.5]]


@pytest.mark.parametrize("gamma", GAMMAS)
@pytest.mark.parametrize("alpha", ALPHAS)
@pytest.mark.parametrize("balancing", [False, True])
@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_binary_focal_probabilities_equal_keras(gamma, alpha, balancing, smoothing):
    options = {"gamma": gamma, "alpha": alpha, "balancing": balancing, "smoothing": smoothing}
    expected = rows_mean(keras_binary_focal, BIN_Y, BIN_P, **options)
    actual = binary_focal_cross_entropy(
        BIN_Y, BIN_P, gamma=gamma, alpha=alpha, apply_class_balancing=balancing, label_smoothing=smoothing
    )
    assert_losses(actual, expected)


BIN_X = [[2.2, -1.4], [-0.62, 0.4], [-2.9, 6.9], [-0.4, 0.85], [-4.6, 0.0]]


@pytest.mark.parametrize("gamma", GAMMAS)
@pytest.mark.parametrize("alpha", ALPHAS)
@pytest.mark.parametrize("balancing", [False, True])
@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_binary_focal_moderate_logits_equal_keras(gamma, alpha, balancing, smoothing):
    # Keras: sigmoid first, then its probability path (the 1e-7 clip does not bind for |x| < 16).
    def keras_logit(y, x, **options):
        return keras_binary_focal(y, sigmoid(x), **options)

    options = {"gamma": gamma, "alpha": alpha, "balancing": balancing, "smoothing": smoothing}
    expected = rows_mean(keras_logit, BIN_Y, BIN_X, **options)
    actual = binary_focal_cross_entropy(
        BIN_Y,
        BIN_X,
        gamma=gamma,
        alpha=alpha,
        apply_class_balancing=balancing,
        from_logits=True,
        label_smoothing=smoothing,
    )
    assert_losses(actual, expected)


def test_binary_focal_keras_docstring_examples():
    # Printed in Keras' BinaryFocalCrossentropy docstring, from_logits=True: reduction=None arrays (float32,
    # shown cut to 4 decimals) and the reduced values (3 decimals); "sum_over_batch_size" with sample_weight
    # is sum(w * l) / N.
    y, x = [[0, 1], [0, 0]], [[-18.6, 0.51], [2.94, -12.8]]
    plain = binary_focal_cross_entropy(y, x, gamma=5, from_logits=True)
    balanced = binary_focal_cross_entropy(y, x, gamma=5, from_logits=True, apply_class_balancing=True)
    assert (np.floor(plain * 1e4) / 1e4).tolist() == [0.0017, 1.1561]
    assert (np.floor(balanced * 1e4) / 1e4).tolist() == [0.0004, 0.867]
    for gamma, balancing, mean, weighted, total in [
        (3, False, 0.647, 0.133, None),
        (3, True, 0.482, 0.097, None),
        (4, False, None, None, 1.222),
        (4, True, None, None, 0.914),
    ]:
        losses = binary_focal_cross_entropy(y, x, gamma=gamma, from_logits=True, apply_class_balancing=balancing)
        if mean is not None:
            assert round(losses.mean(), 3) == mean
            assert round((losses * [0.8, 0.2]).sum() / 2, 3) == weighted
        else:
            assert round(losses.sum(), 3) == total
    # Example 1 (one sample of four columns): 0.691, and 0.51 with class balancing.
    y1, x1 = [0, 1, 0, 0], [-18.6, 0.51, 2.94, -12.8]
    assert round(binary_focal_cross_entropy(y1, x1, gamma=2, from_logits=True).mean(), 3) == 0.691
    balanced1 = binary_focal_cross_entropy(y1, x1, gamma=2, from_logits=True, apply_class_balancing=True)
    assert round(balanced1.mean(), 2) == 0.51


@pytest.mark.parametrize("gamma", GAMMAS)
@pytest.mark.parametrize("alpha", ALPHAS)
@pytest.mark.parametrize("balancing", [False, True])
@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_binary_focal_huge_logits_are_exact_and_finite(gamma, alpha, balancing, smoothing):
    # |x| = 1e4: sigmoid is exactly 0 or 1 in float64, yet bce is ~1e4 and finite. Keras clips sigmoid(x) to
    # [1e-7, 1 - 1e-7] and would give at most -log(1e-7) = 16.118; cecli gives the exact value, as torchvision.
    y = [[1.0, 1.0, 0.0, 0.0]]
    x = [[1e4, -1e4, 1e4, -1e4]]
    options = {"gamma": gamma, "alpha": alpha, "balancing": balancing, "smoothing": smoothing}
    expected = rows_mean(exact_binary_focal_logit, y, x, **options)
    actual = binary_focal_cross_entropy(
        y, x, gamma=gamma, alpha=alpha, apply_class_balancing=balancing, from_logits=True, label_smoothing=smoothing
    )
    assert_losses(actual, expected)
    assert np.isfinite(actual).all()


def test_binary_focal_huge_logits_by_hand():
    # Wrong by 1e4 with gamma = 2: the factor (1 - p_t)^2 is 1, bce = softplus(1e4) = 1e4; right: 0.
    actual = binary_focal_cross_entropy([1.0, 0.0, 1.0, 0.0], [-1e4, 1e4, 1e4, -1e4], gamma=2.0, from_logits=True)
    assert actual.tolist() == [1e4, 1e4, 0.0, 0.0]
    # Smoothed targets 0.95 / 0.05: 1 - p_t = 0.05 exactly in the limit, bce = 0.05 * 1e4.
    smoothed = binary_focal_cross_entropy([1.0], [1e4], gamma=2.0, from_logits=True, label_smoothing=0.1)
    assert smoothed[0] == pytest.approx(0.05**2 * 0.05 * 1e4, rel=1e-12)


@pytest.mark.parametrize("gamma", GAMMAS)
@pytest.mark.parametrize(
    ("y", "p", "no_balancing", "alpha_quarter"),
    [
        # true positive at p = 0: bce = -log 0 = inf, factor (1 - 0)^gamma = 1; alpha_t = 0.25
        (1.0, 0.0, math.inf, math.inf),
        # certain and right: bce = -(1 log 1 + 0 log 0) = 0
        (1.0, 1.0, 0.0, 0.0),
        (0.0, 0.0, 0.0, 0.0),
        # certain and wrong: inf; alpha_t = 1 - 0.25
        (0.0, 1.0, math.inf, math.inf),
    ],
)
def test_binary_focal_certain_predictions_without_clipping(gamma, y, p, no_balancing, alpha_quarter):
    plain = binary_focal_cross_entropy([y], [p], gamma=gamma, eps=0.0)
    balanced = binary_focal_cross_entropy([y], [p], gamma=gamma, eps=0.0, alpha=0.25, apply_class_balancing=True)
    assert plain.tolist() == [no_balancing]
    assert balanced.tolist() == [alpha_quarter]


@pytest.mark.parametrize(
    ("y", "p", "alpha"),
    # alpha_t = 0 on an infinite bce: the term does not count (0, never NaN)
    [(1.0, 0.0, 0.0), (0.0, 1.0, 1.0)],
)
def test_binary_focal_zero_class_weight_on_infinite_term_is_zero(y, p, alpha):
    actual = binary_focal_cross_entropy([y], [p], gamma=2.0, eps=0.0, alpha=alpha, apply_class_balancing=True)
    assert actual.tolist() == [0.0]


def test_binary_focal_with_clipping_keras_keeps_unclipped_focal_factor():
    # y = 1, p = 1, eps = 1e-7: bce = -log(1 - 1e-7) > 0 but Keras' factor (1 - p_t)^2 uses p itself: 0.
    assert binary_focal_cross_entropy([1.0], [1.0], gamma=2.0).tolist() == [0.0]
    # gamma = 0: factor 0 ** 0 = 1, so the clipped bce -log1p(-1e-7) remains.
    assert_losses(binary_focal_cross_entropy([1.0], [1.0], gamma=0.0), [-math.log1p(-1e-7)])
    # y = 1, p = 0: -log(1e-7) with factor 1.
    assert_losses(binary_focal_cross_entropy([1.0], [0.0], gamma=2.0), [-math.log(1e-7)])


# --- binary focal: torchvision ---------------------------------------------------------------------------------

TV_X = [[0.3, -1.2, 2.5], [4.0, 0.0, -7.5], [1e4, -1e4, 15.0]]
TV_Y = [[1.0, 0.0, 1.0], [0.0, 1.0, 0.0], [1.0, 1.0, 0.0]]


@pytest.mark.parametrize("gamma", [*GAMMAS, 2])
@pytest.mark.parametrize("alpha", [*ALPHAS, -1.0])
def test_binary_focal_equals_torchvision_sigmoid_focal_loss(gamma, alpha):
    # torchvision.ops.sigmoid_focal_loss(inputs, targets, alpha, gamma, reduction="none") is element-wise;
    # alpha < 0 means no weighting, which is apply_class_balancing=False here.
    balancing = alpha >= 0
    for xs, ys in zip(TV_X, TV_Y, strict=True):
        expected = [torchvision_focal(x, y, alpha=alpha, gamma=gamma) for x, y in zip(xs, ys, strict=True)]
        actual = binary_focal_cross_entropy(
            ys, xs, gamma=gamma, alpha=max(alpha, 0.0), apply_class_balancing=balancing, from_logits=True
        )
        assert_losses(actual, expected)
    # reduction="mean" over all n * k elements = mean of the per-sample (row) means; "sum" = k * their sum.
    every = [
        torchvision_focal(x, y, alpha=alpha, gamma=gamma)
        for xs, ys in zip(TV_X, TV_Y, strict=True)
        for x, y in zip(xs, ys, strict=True)
    ]
    per_sample = binary_focal_cross_entropy(
        TV_Y, TV_X, gamma=gamma, alpha=max(alpha, 0.0), apply_class_balancing=balancing, from_logits=True
    )
    assert Partial.of(per_sample).mean == pytest.approx(math.fsum(every) / len(every), rel=1e-12)
    assert 3 * Partial.of(per_sample).sum == pytest.approx(math.fsum(every), rel=1e-12)


def test_binary_focal_torchvision_defaults_by_hand():
    # x = 0, y = 1: p = 0.5, ce = log 2, (1 - 0.5)^2 = 0.25, alpha_t = 0.25.
    actual = binary_focal_cross_entropy([1.0], [0.0], from_logits=True, apply_class_balancing=True)
    assert_losses(actual, [0.25 * 0.25 * math.log(2)])


# --- categorical focal: Keras ----------------------------------------------------------------------------------

CAT_Y = [[0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [1.0, 0.0, 0.0], [0.2, 0.5, 0.3]]
CAT_P = [[0.05, 0.9, 0.05], [0.1, 0.85, 0.05], [0.3, 0.3, 0.4], [0.25, 0.25, 0.5]]
CAT_X = [[0.5, 2.5, 0.3], [1.2, -0.7, 3.0], [-3.0, 0.0, 4.0], [0.0, 0.0, 0.0]]
CAT_LABELS = [1, 2, 0, 1]


@pytest.mark.parametrize("gamma", GAMMAS)
@pytest.mark.parametrize("alpha", [*ALPHAS, [0.2, 0.5, 1.0]])
@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_categorical_focal_rows_equal_keras(gamma, alpha, smoothing):
    expected = [
        keras_categorical_focal(y, p, gamma=gamma, alpha=alpha, smoothing=smoothing)
        for y, p in zip(CAT_Y, CAT_P, strict=True)
    ]
    actual = categorical_focal_cross_entropy(CAT_Y, CAT_P, gamma=gamma, alpha=alpha, label_smoothing=smoothing)
    assert_losses(actual, expected)
    expected_x = [
        keras_categorical_focal(y, keras_softmax(x), gamma=gamma, alpha=alpha, smoothing=smoothing)
        for y, x in zip(CAT_Y, CAT_X, strict=True)
    ]
    actual_x = categorical_focal_cross_entropy(
        CAT_Y, CAT_X, gamma=gamma, alpha=alpha, label_smoothing=smoothing, from_logits=True
    )
    assert_losses(actual_x, expected_x)


@pytest.mark.parametrize("gamma", GAMMAS)
@pytest.mark.parametrize("alpha", ALPHAS)
@pytest.mark.parametrize("smoothing", [0.0, 0.1])
@pytest.mark.parametrize("from_logits", [False, True])
def test_categorical_focal_class_indices_mean_their_one_hot_rows(gamma, alpha, smoothing, from_logits):
    preds = CAT_X if from_logits else CAT_P
    expected = [
        keras_categorical_focal(
            one_hot(k, 3), keras_softmax(p) if from_logits else p, gamma=gamma, alpha=alpha, smoothing=smoothing
        )
        for k, p in zip(CAT_LABELS, preds, strict=True)
    ]
    actual = categorical_focal_cross_entropy(
        CAT_LABELS, preds, gamma=gamma, alpha=alpha, label_smoothing=smoothing, from_logits=from_logits
    )
    assert_losses(actual, expected)


def test_categorical_focal_keras_docstring_examples():
    # keras.losses.categorical_focal_crossentropy docstring: [2.63401289e-04, 6.75912094e-01];
    # CategoricalFocalCrossentropy(reduction=None): [3.2058331e-05, 4.6627346e-01] (float32).
    y = [[0, 1, 0], [0, 0, 1]]
    np.testing.assert_allclose(
        categorical_focal_cross_entropy(y, [[0.05, 0.9, 0.05], [0.1, 0.85, 0.05]]),
        [2.63401289e-04, 6.75912094e-01],
        rtol=1e-6,
    )
    np.testing.assert_allclose(
        categorical_focal_cross_entropy(y, [[0.05, 0.95, 0.0], [0.1, 0.8, 0.1]]),
        [3.2058331e-05, 4.6627346e-01],
        rtol=1e-6,
    )


def test_categorical_focal_huge_logits_are_exact():
    # Row [1e4, -1e4, 0]: log-softmax [0, -2e4, -1e4] exactly; 1 - p = -expm1(log p).
    # Label 0: -log p = 0 -> 0. Label 1: (1 - 0)^2 * 2e4 * alpha. Label 2: alpha * 1e4.
    logits = [[1e4, -1e4, 0.0]] * 3
    actual = categorical_focal_cross_entropy([0, 1, 2], logits, gamma=2.0, alpha=0.25, from_logits=True)
    assert actual.tolist() == [0.0, 0.25 * 2e4, 0.25 * 1e4]
    smoothed = categorical_focal_cross_entropy(
        [0], logits[:1], gamma=0.5, alpha=1.0, from_logits=True, label_smoothing=0.3
    )
    # targets [0.8, 0.1, 0.1]: 0.8 * 0 + 0.1 * 1 * 2e4 + 0.1 * 1 * 1e4
    assert smoothed[0] == pytest.approx(0.1 * 2e4 + 0.1 * 1e4, rel=1e-12)


@pytest.mark.parametrize("gamma", [0.5, 2.0, 5.0])
def test_focal_near_certain_logits_keep_relative_precision(gamma):
    # Logits (20, 0), right class 0: 1 - p = e^-20 / (1 + e^-20), -log p = log1p(e^-20), a loss near 1e-13 or
    # below. The log-sigmoid path is exact. log_softmax (shared with softmax_cross_entropy) takes log(1 + e^-20),
    # whose rounding (1e-16 absolute) bounds the categorical result to about 1e-7 relative.
    one_minus_p = math.exp(-20) / (1 + math.exp(-20))
    expected = one_minus_p**gamma * math.log1p(math.exp(-20))
    binary = binary_focal_cross_entropy([1.0], [20.0], gamma=gamma, from_logits=True)
    assert_losses(binary, [expected], rtol=1e-13)
    categorical = categorical_focal_cross_entropy([0], [[20.0, 0.0]], gamma=gamma, alpha=1.0, from_logits=True)
    assert_losses(categorical, [expected], rtol=1e-6)


@pytest.mark.parametrize("gamma", GAMMAS)
def test_categorical_focal_certain_predictions_without_clipping(gamma):
    probs = [[0.0, 1.0, 0.0], [0.0, 1.0, 0.0]]
    # label 1 with p = 1: -log 1 = 0 (and 0 log 0 = 0 for the others); label 0 with p = 0: inf.
    assert categorical_focal_cross_entropy([1, 0], probs, gamma=gamma, eps=0.0).tolist() == [0.0, math.inf]
    assert categorical_focal_cross_entropy([[0, 1, 0], [1, 0, 0]], probs, gamma=gamma, eps=0.0).tolist() == [
        0.0,
        math.inf,
    ]
    # alpha = 0 for the class with p = 0: the term does not count.
    alpha = [0.0, 1.0, 1.0]
    assert categorical_focal_cross_entropy([1, 0], probs, gamma=gamma, eps=0.0, alpha=alpha).tolist() == [0.0, 0.0]


def test_categorical_focal_ignore_index_and_base():
    p = [[0.5, 0.5], [0.2, 0.8]]
    actual = categorical_focal_cross_entropy([-100, 1], p, gamma=2.0, ignore_index=-100)
    assert_losses(actual, [0.0, 0.25 * 0.2**2 * -math.log(0.8)])
    in_bits = categorical_focal_cross_entropy([1, 1], p, gamma=2.0, base=2)
    assert_losses(in_bits, [0.25 * 0.5**2 * 1.0, 0.25 * 0.2**2 * -math.log2(0.8)])


# --- generalized cross-entropy ---------------------------------------------------------------------------------

GCE_P = [[0.7, 0.3], [0.2, 0.8], [0.6, 0.4], [0.4, 0.6], [0.0, 1.0]]  # Keras' docstring input, and p_y = 0
GCE_LABELS = [0, 1, 0, 1, 0]


@pytest.mark.parametrize("q", [0.1, 0.5, 0.7, 1.0])
def test_gce_class_indices_equal_keras(q):
    # Keras: p = sum(y_pred * one_hot(y)); (1 - p^q) / q, no clipping; p = 0 gives 1 / q.
    expected = [(1 - p[k] ** q) / q for k, p in zip(GCE_LABELS, GCE_P, strict=True)]
    actual = generalized_cross_entropy(GCE_LABELS, GCE_P, q=q)
    assert_losses(actual, expected)
    assert actual[-1] == 1 / q
    rows = [one_hot(k, 2) for k in GCE_LABELS]
    assert_losses(generalized_cross_entropy(rows, GCE_P, q=q), expected)


@pytest.mark.parametrize("q", [0.1, 0.5, 1.0])
@pytest.mark.parametrize("smoothing", [0.0, 0.2])
def test_gce_logits_soft_rows_and_smoothing(q, smoothing):
    expected = [
        gce(one_hot(k, 3), keras_softmax(x), q=q, smoothing=smoothing) for k, x in zip(CAT_LABELS, CAT_X, strict=True)
    ]
    actual = generalized_cross_entropy(CAT_LABELS, CAT_X, q=q, from_logits=True, label_smoothing=smoothing)
    assert_losses(actual, expected)
    expected_rows = [gce(y, p, q=q, smoothing=smoothing) for y, p in zip(CAT_Y, CAT_P, strict=True)]
    assert_losses(generalized_cross_entropy(CAT_Y, CAT_P, q=q, label_smoothing=smoothing), expected_rows)


def test_gce_huge_logits_and_clipping():
    # log-softmax [0, -2e4]: p_y = 1 -> 0; p_y = e^-2e4 -> (1 - 0) / q.
    actual = generalized_cross_entropy([0, 1], [[1e4, -1e4]] * 2, q=0.5, from_logits=True)
    assert actual.tolist() == [0.0, 2.0]
    clipped = generalized_cross_entropy([0], [[0.0, 1.0]], q=0.5, eps=1e-7)
    assert_losses(clipped, [(1 - math.sqrt(1e-7)) / 0.5])


def test_gce_ignore_index_and_base():
    actual = generalized_cross_entropy([1, -1], [[0.36, 0.64], [0.5, 0.5]], q=0.5, ignore_index=-1, base=2)
    assert_losses(actual, [(1 - 0.8) / 0.5 / math.log(2), 0.0])


# --- NLL of log-probabilities ----------------------------------------------------------------------------------


def test_negative_log_likelihood_of_a_token_column():
    lp = [-0.25, 0.0, -math.inf, -1e300]
    assert negative_log_likelihood(lp).tolist() == [0.25, 0.0, math.inf, 1e300]
    assert_losses(negative_log_likelihood([-math.log(8.0)], base=2), [3.0])


def test_nll_loss_as_pytorch_with_weights_and_ignore_index():
    lp = [[math.log(0.5), math.log(0.3), math.log(0.2)], [-math.inf, math.log(0.4), math.log(0.6)], [-1.0, -2.0, -0.5]]
    labels = [1, 2, -100]
    w = [0.5, 2.0, 3.0]
    # PyTorch NLLLoss(weight=w, ignore_index=-100, reduction="none"): -w_y * input[y]; ignored rows 0.
    expected = [-2.0 * math.log(0.3), -3.0 * math.log(0.6), 0.0]
    actual = nll_loss(labels, lp, class_weights=w, ignore_index=-100)
    assert_losses(actual, expected)
    # reduction="mean": sum / sum of w_y over the rows not ignored (2 + 3).
    partial = Partial.of(actual, denominators=label_weights(labels, w, ignore_index=-100))
    assert partial.denominator == 5.0
    assert partial.reduced("mean") == pytest.approx(math.fsum(expected) / 5.0, rel=1e-15)
    # With sample weights s, PyTorch has no such argument: the rule is sum(s * l) / sum(s * w_y).
    s = [3.0, 0.25, 7.0]
    weighted = Partial.of(actual, s, denominators=label_weights(labels, w, ignore_index=-100))
    assert weighted.denominator == 3.0 * 2.0 + 0.25 * 3.0
    assert weighted.reduced("mean") == pytest.approx(
        (3.0 * expected[0] + 0.25 * expected[1]) / (3.0 * 2.0 + 0.25 * 3.0), rel=1e-15
    )
    # No class weights: the denominator counts the rows not ignored.
    unweighted = nll_loss(labels, lp, ignore_index=-100)
    counted = Partial.of(unweighted, denominators=label_weights(labels, np.ones(3), ignore_index=-100))
    assert counted.denominator == 2.0
    assert counted.reduced("mean") == pytest.approx((-math.log(0.3) - math.log(0.6)) / 2, rel=1e-15)


def test_nll_loss_probability_zero_is_inf_and_zero_weight_is_zero():
    lp = [[-math.inf, 0.0], [-math.inf, 0.0]]
    assert nll_loss([0, 1], lp).tolist() == [math.inf, 0.0]
    # PyTorch's IEEE product gives NaN for 0 * -inf; the formula's term is 0.
    assert nll_loss([0, 1], lp, class_weights=[0.0, 1.0]).tolist() == [0.0, 0.0]


@pytest.mark.parametrize(
    ("values", "message", "index", "column"),
    [
        (np.array([-0.5, 0.25, -1.0]), "log-probability 0.25 is above 0", 1, 0),
        (np.array([-0.5, -1.0, math.nan]), "log-probability is NaN", 2, 0),
        (np.array([[-0.1, -2.0], [math.inf, -1.0]]), "log-probability inf is above 0", 1, 0),
        (np.array([[-0.1, -2.0], [-1.0, 1e-12]]), "log-probability 1e-12 is above 0", 1, 1),
        (np.array([[-0.1, math.nan], [0.5, -1.0]]), "log-probability is NaN", 0, 1),
    ],
)
def test_check_log_probabilities_names_the_first_bad_value(values, message, index, column):
    with pytest.raises(CellError) as caught:
        check_log_probabilities(values)
    assert caught.value.message == message
    assert (caught.value.index, caught.value.column_index) == (index, column)
    assert caught.value.hint == (
        "log-probabilities are natural logs <= 0; for probabilities or logits use `cecli sparse` or `cecli softmax`"
    )


@pytest.mark.parametrize("values", [np.array([-math.inf, 0.0, -3.0]), np.array([[0.0, -math.inf]]), np.array([])])
def test_check_log_probabilities_accepts_zero_and_minus_infinity(values):
    assert check_log_probabilities(values) is None


def test_perplexity_per_group_and_corpus():
    # Two documents: 1 token with NLL 3, 3 tokens with NLL 1 each.
    groups = np.array([3.0, 1.0])
    assert_losses(perplexity(groups), [math.exp(3.0), math.exp(1.0)], rtol=1e-15)
    corpus = perplexity((3.0 + 3 * 1.0) / 4)  # token-weighted, what papers quote
    assert corpus == pytest.approx(math.exp(1.5), rel=1e-15)
    assert float(perplexity(groups).mean()) > corpus  # Jensen: the mean of per-group perplexities is larger
    assert perplexity(3.0, base=2) == 8.0
    assert perplexity(1000.0) == math.inf  # overflows honestly, without a warning
    assert math.isnan(perplexity(math.nan))


# --- option checks ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: binary_focal_cross_entropy([1], [0.5], gamma=-0.5), "`gamma` must be finite and >= 0; received -0.5"),
        (lambda: binary_focal_cross_entropy([1], [0.5], gamma=math.nan), "`gamma` must be finite and >= 0"),
        (lambda: binary_focal_cross_entropy([1], [0.5], alpha=1.5), "`alpha` must be in [0, 1]; received 1.5"),
        (lambda: binary_focal_cross_entropy([1], [0.5], alpha=[0.1, 0.2]), "`alpha` must be a number; received"),
        (
            lambda: categorical_focal_cross_entropy([0], [[0.5, 0.5]], alpha=[0.1, 0.2, 0.3]),
            "`alpha` must be a number or one value per class (2); received shape (3,)",
        ),
        (lambda: categorical_focal_cross_entropy([2], [[0.5, 0.5]]), "`labels` must be in [0, 2); received 2"),
        (lambda: categorical_focal_cross_entropy([0.0], [[0.5, 0.5]]), "`labels` must be integers"),
        (lambda: generalized_cross_entropy([0], [[0.5, 0.5]], q=0.0), "`q` must be in (0, 1]; received 0.0"),
        (lambda: generalized_cross_entropy([0], [[0.5, 0.5]], q=1.5), "`q` must be in (0, 1]; received 1.5"),
        (lambda: nll_loss([0, 1], [[-0.1, -2.0]]), "`labels` must have shape (1,); received (2,)"),
        (lambda: nll_loss([0], [[-0.1, -2.0]], class_weights=[1.0]), "`class_weights` needs one weight per class"),
        (lambda: perplexity(1.0, base=1), "`base` must be positive and not 1"),
    ],
)
def test_bad_options_raise_value_error(call, message):
    with pytest.raises(ValueError) as caught:
        call()
    assert str(caught.value).startswith(message)


# --- properties ------------------------------------------------------------------------------------------------

unit = st.floats(0.0, 1.0)
open_unit = st.floats(1e-6, 1.0)
moderate_logit = st.floats(-30.0, 30.0)
above_zero = st.floats(1e-3, 1.0)
gammas = st.floats(0.0, 6.0)


@st.composite
def binary_case(draw, values=unit):
    n, k = draw(st.integers(1, 5)), draw(st.integers(1, 3))
    y = np.array(draw(st.lists(st.lists(unit, min_size=k, max_size=k), min_size=n, max_size=n)))
    p = np.array(draw(st.lists(st.lists(values, min_size=k, max_size=k), min_size=n, max_size=n)))
    return y, p


@st.composite
def categorical_case(draw, values=above_zero):
    n, c = draw(st.integers(1, 5)), draw(st.integers(2, 5))
    labels = np.array(draw(st.lists(st.integers(0, c - 1), min_size=n, max_size=n)))
    scores = np.array(draw(st.lists(st.lists(values, min_size=c, max_size=c), min_size=n, max_size=n)))
    return labels, scores


smoothing = st.sampled_from([0.0, 0.1, 0.5])


@SETTINGS
@given(binary_case(), smoothing, st.sampled_from([0.0, 1e-7]))
def test_binary_focal_gamma_zero_is_binary_cross_entropy(case, s, eps):
    y, p = case
    focal = binary_focal_cross_entropy(y, p, gamma=0.0, eps=eps, label_smoothing=s)
    np.testing.assert_allclose(focal, binary_cross_entropy(y, p, eps=eps, label_smoothing=s), rtol=1e-12, atol=0)


@SETTINGS
@given(binary_case(moderate_logit), smoothing)
def test_binary_focal_gamma_zero_is_binary_cross_entropy_for_logits(case, s):
    y, x = case
    focal = binary_focal_cross_entropy(y, x, gamma=0.0, from_logits=True, label_smoothing=s)
    plain = binary_cross_entropy(y, x, from_logits=True, label_smoothing=s)
    np.testing.assert_allclose(focal, plain, rtol=1e-12, atol=1e-300)


@SETTINGS
@given(categorical_case(), smoothing)
def test_categorical_focal_gamma_zero_alpha_one_is_cross_entropy(case, s):
    labels, p = case
    focal = categorical_focal_cross_entropy(labels, p, gamma=0.0, alpha=1.0, label_smoothing=s)
    np.testing.assert_allclose(focal, sparse_cross_entropy(labels, p, label_smoothing=s), rtol=1e-12, atol=0)
    rows = np.eye(p.shape[1])[labels]
    by_rows = categorical_focal_cross_entropy(rows, p, gamma=0.0, alpha=1.0, label_smoothing=s)
    np.testing.assert_allclose(by_rows, categorical_cross_entropy(rows, p, label_smoothing=s), rtol=1e-12, atol=0)


@SETTINGS
@given(categorical_case(moderate_logit), smoothing)
def test_categorical_focal_gamma_zero_alpha_one_is_softmax_cross_entropy(case, s):
    labels, x = case
    focal = categorical_focal_cross_entropy(labels, x, gamma=0.0, alpha=1.0, from_logits=True, label_smoothing=s)
    np.testing.assert_allclose(focal, softmax_cross_entropy(labels, x, label_smoothing=s), rtol=1e-12, atol=0)


@SETTINGS
@given(binary_case(), gammas, smoothing, st.booleans())
def test_binary_focal_never_exceeds_cross_entropy(case, gamma, s, balancing):
    # (1 - p_t)^gamma <= 1 and, with alpha = 1, alpha_t = y <= 1.
    y, p = case
    focal = binary_focal_cross_entropy(y, p, gamma=gamma, alpha=1.0, apply_class_balancing=balancing, label_smoothing=s)
    assert np.all(focal <= binary_cross_entropy(y, p, label_smoothing=s) * (1 + 1e-12))


@SETTINGS
@given(binary_case(moderate_logit), gammas)
def test_binary_focal_never_exceeds_cross_entropy_for_logits(case, gamma):
    y, x = case
    focal = binary_focal_cross_entropy(y, x, gamma=gamma, from_logits=True)
    assert np.all(focal <= binary_cross_entropy(y, x, from_logits=True) * (1 + 1e-12))


@SETTINGS
@given(categorical_case(st.floats(0.0, 1.0).filter(lambda v: v > 0)), gammas, smoothing)
def test_categorical_focal_never_exceeds_cross_entropy(case, gamma, s):
    labels, p = case
    focal = categorical_focal_cross_entropy(labels, p, gamma=gamma, alpha=1.0, label_smoothing=s)
    assert np.all(focal <= sparse_cross_entropy(labels, p, label_smoothing=s) * (1 + 1e-12))


@SETTINGS
@given(st.lists(st.floats(0.0, 1.0), min_size=2, max_size=20), st.floats(1e-6, 1.0))
def test_gce_decreases_as_the_true_class_probability_grows(probabilities, q):
    p = np.sort(np.array(probabilities))
    losses = generalized_cross_entropy(np.zeros(p.size, dtype=np.int64), np.column_stack([p, 1.0 - p]), q=q)
    assert np.all(np.diff(losses) <= 0)
    distinct = np.diff(p) > 1e-3
    assert np.all(np.diff(losses)[distinct] < 0)


@SETTINGS
@given(categorical_case(open_unit))
def test_gce_tends_to_cross_entropy_as_q_goes_to_zero(case):
    # (1 - p^q) / q = -log p - q log(p)^2 / 2 - ...; at q = 1e-8 and p >= 1e-6 the gap is below 7e-8 relative.
    labels, p = case
    p = p / p.sum(axis=1, keepdims=True)
    limit = generalized_cross_entropy(labels, p, q=1e-8)
    np.testing.assert_allclose(limit, sparse_cross_entropy(labels, p, eps=0.0, renormalize="none"), rtol=1e-7, atol=0)


@SETTINGS
@given(categorical_case(moderate_logit))
def test_nll_loss_is_sparse_cross_entropy_of_the_probabilities(case):
    labels, x = case
    lp = x - np.log(np.exp(x).sum(axis=1, keepdims=True))  # log-softmax, written here
    expected = sparse_cross_entropy(labels, np.exp(lp), eps=0.0, renormalize="none")
    np.testing.assert_allclose(nll_loss(labels, lp), expected, rtol=1e-12, atol=1e-14)
    np.testing.assert_array_equal(negative_log_likelihood(lp[np.arange(labels.size), labels]), nll_loss(labels, lp))
