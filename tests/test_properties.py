"""Hypothesis properties of ``cecli.numerics.core`` and ``cecli.numerics.reduce`` (the scipy ``test_entropy.py`` way).

Softmax and sigmoid are computed here with plain NumPy, independently of ``cecli.numerics.core``.
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from cecli.numerics.core import (
    binary_cross_entropy,
    categorical_cross_entropy,
    entropy,
    softmax_cross_entropy,
    sparse_cross_entropy,
)
from cecli.numerics.reduce import Partial

pytestmark = pytest.mark.filterwarnings("error")

SETTINGS = settings(max_examples=100, deadline=None)
# Different formulas round differently; losses near 0 need an absolute floor.
CLOSE = {"rtol": 1e-9, "atol": 1e-12}

rows = st.integers(1, 8)
classes = st.integers(2, 6)
unit = st.floats(0.0, 1.0)
moderate_logit = st.floats(-20.0, 20.0)


def softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


@st.composite
def logits_and_labels(draw):
    n, c = draw(rows), draw(classes)
    logits = draw(arrays(np.float64, (n, c), elements=moderate_logit))
    labels = draw(arrays(np.int64, n, elements=st.integers(0, c - 1)))
    return logits, labels


@st.composite
def distributions(draw, zeros=False):
    """Rows of non-negative weights divided by their sum; with `zeros`, entries may be exactly 0."""
    n, c = draw(rows), draw(classes)
    positive = st.floats(1e-6, 1.0)
    weights = draw(arrays(np.float64, (n, c), elements=st.just(0.0) | positive if zeros else positive))
    weights[np.arange(n), draw(arrays(np.int64, n, elements=st.integers(0, c - 1)))] += 1e-3  # no all-zero row
    return weights / weights.sum(axis=1, keepdims=True)


@SETTINGS
@given(st.data())
def test_bce_logits_path_equals_probability_path(data):
    shape = data.draw(st.tuples(rows, st.integers(1, 4)))
    x = data.draw(arrays(np.float64, shape, elements=moderate_logit))
    y = data.draw(arrays(np.float64, shape, elements=unit))
    p = 1.0 / (1.0 + np.exp(-x))
    # 1 - p loses up to eps/(1-p) relative accuracy when p is rounded near 1 (|x| <= 20: about 5e-8)
    np.testing.assert_allclose(
        binary_cross_entropy(y, x, from_logits=True), binary_cross_entropy(y, p, eps=0.0), rtol=1e-6, atol=1e-12
    )


@SETTINGS
@given(logits_and_labels(), st.floats(0.0, 1.0), st.floats(0.25, 4.0))
def test_softmax_equals_sparse_on_softmax_probabilities(case, smoothing, temperature):
    logits, labels = case
    expected = sparse_cross_entropy(labels, softmax(logits / temperature), eps=0.0, label_smoothing=smoothing)
    actual = softmax_cross_entropy(labels, logits, temperature=temperature, label_smoothing=smoothing)
    np.testing.assert_allclose(actual, expected, **CLOSE)


@SETTINGS
@given(distributions(zeros=True), st.data())
def test_softmax_equals_categorical_on_softmax_probabilities(targets, data):
    logits = data.draw(arrays(np.float64, targets.shape, elements=moderate_logit))
    np.testing.assert_allclose(
        softmax_cross_entropy(targets, logits), categorical_cross_entropy(targets, softmax(logits), eps=0.0), **CLOSE
    )


@SETTINGS
@given(distributions(), st.floats(0.0, 1.0), st.data())
def test_sparse_equals_categorical_on_one_hot(p, smoothing, data):
    n, c = p.shape
    labels = data.draw(arrays(np.int64, n, elements=st.integers(0, c - 1)))
    weights = data.draw(st.none() | arrays(np.float64, c, elements=st.floats(0.0, 10.0)))
    one_hot = np.eye(c)[labels]
    options = {"label_smoothing": smoothing, "class_weights": weights}
    np.testing.assert_allclose(
        sparse_cross_entropy(labels, p, **options), categorical_cross_entropy(one_hot, p, **options), **CLOSE
    )


@SETTINGS
@given(distributions(zeros=True))
def test_entropy_is_cross_entropy_with_itself(p):
    np.testing.assert_allclose(entropy(p), categorical_cross_entropy(p, p, eps=0.0), **CLOSE)


@SETTINGS
@given(st.data())
def test_losses_are_non_negative(data):
    n, c = data.draw(rows), data.draw(classes)
    y = data.draw(arrays(np.float64, (n, c), elements=unit))
    p = data.draw(arrays(np.float64, (n, c), elements=st.floats(1e-3, 1.0)))
    x = data.draw(arrays(np.float64, (n, c), elements=st.floats(-1e6, 1e6)))
    labels = data.draw(arrays(np.int64, n, elements=st.integers(0, c - 1)))
    smoothing = data.draw(st.floats(0.0, 1.0))
    for losses in [
        binary_cross_entropy(y, p, label_smoothing=smoothing),
        binary_cross_entropy(y, x, from_logits=True, pos_weight=2.0),
        categorical_cross_entropy(y, p, label_smoothing=smoothing),
        sparse_cross_entropy(labels, p, label_smoothing=smoothing),
        softmax_cross_entropy(labels, x),
        softmax_cross_entropy(y, x, label_smoothing=smoothing),
        entropy(p),
    ]:
        assert losses.shape == (n,)
        assert np.all(losses >= 0), losses


losses_and_weights = st.integers(0, 30).flatmap(
    lambda n: st.tuples(
        arrays(np.float64, n, elements=st.floats(0.0, 1e6)),
        arrays(np.float64, n, elements=st.floats(0.0, 100.0)),
    )
)


@SETTINGS
@given(losses_and_weights, st.randoms(use_true_random=False))
def test_partial_mean_is_row_order_invariant(case, random):
    losses, weights = case
    order = list(range(len(losses)))
    random.shuffle(order)
    assert Partial.of(losses[order]).mean == Partial.of(losses).mean or len(losses) == 0
    shuffled, whole = Partial.of(losses[order], weights[order]), Partial.of(losses, weights)
    assert shuffled == whole
    assert shuffled.mean == whole.mean or np.isnan(whole.mean)  # NaN only when the weights sum to 0


@SETTINGS
@given(losses_and_weights, st.lists(st.integers(0, 30), max_size=4))
def test_partials_of_a_split_input_merge_to_the_whole(case, cuts):
    losses, weights = case
    bounds = [0, *sorted(min(cut, len(losses)) for cut in cuts), len(losses)]
    parts = [Partial.of(losses[a:b], weights[a:b]) for a, b in zip(bounds, bounds[1:], strict=False)]
    assert sum(parts) == Partial.of(losses, weights)


@SETTINGS
@given(st.data(), st.sampled_from([0.0, 1e-7]), st.sampled_from([None, 2.5]), st.sampled_from([None, -100.0]))
def test_bce_hard_label_rows_do_not_depend_on_soft_rows_beside_them(data, eps, pos_weight, log_floor):
    """0/1 labels take a one-term fast path; a soft label in the batch forces the full formula: same bits."""
    n = data.draw(rows)
    y = np.asarray(data.draw(st.lists(st.sampled_from([0.0, 1.0]), min_size=n, max_size=n)))
    p = np.asarray(data.draw(st.lists(unit, min_size=n, max_size=n)))
    options = {"eps": eps, "pos_weight": pos_weight, "log_floor": log_floor}
    with np.errstate(divide="ignore", invalid="ignore"):
        hard = binary_cross_entropy(y, p, **options)
        mixed = binary_cross_entropy(np.append(y, 0.5), np.append(p, 0.5), **options)
    np.testing.assert_array_equal(hard, mixed[:-1])
