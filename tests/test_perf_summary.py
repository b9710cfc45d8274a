"""The summary path's fast code gives exactly what the plain formulas give (issue 19, round 2).

Every expected value is computed independently: histogram bins with ``bisect`` on the documented
edges, one value at a time.
"""

import bisect
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cecli.numerics.reduce import HISTOGRAM_EDGES, Histogram, Partial

pytestmark = pytest.mark.filterwarnings("error")


def bisect_histogram(values) -> tuple[tuple[int, ...], int]:
    """Bin i holds edge_i <= v < edge_(i+1); v <= 0 (and -inf) in bin 0, +inf in the last; NaN apart."""
    counts = [0] * (len(HISTOGRAM_EDGES) - 1)
    nan = 0
    for value in values:
        if math.isnan(value):
            nan += 1
        else:
            counts[min(bisect.bisect_right(HISTOGRAM_EDGES, value) - 1, len(counts) - 1) if value > 0 else 0] += 1
    return tuple(counts), nan


ON_AND_BESIDE_EDGES = [
    v for edge in HISTOGRAM_EDGES[1:-1] for v in (math.nextafter(edge, 0.0), edge, math.nextafter(edge, math.inf))
]


@pytest.mark.parametrize(
    "values",
    [
        [],
        [math.nan, math.nan],
        [0.0, -0.0, -1.0, -math.inf, math.inf, 5e-324, 1e308],
        ON_AND_BESIDE_EDGES,
        ON_AND_BESIDE_EDGES + [math.nan, math.inf, -math.inf],
        [1.0] * 7,  # every value on one edge: the extremes are equal
        [0.5, 0.5, 2.0],  # extremes between edges: only the edges between them are counted
    ],
)
def test_histogram_of_edge_cases_matches_bisect(values):
    histogram = Histogram.of(np.array(values, dtype=np.float64))
    assert (histogram.counts, histogram.nan) == bisect_histogram(values)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.one_of(st.floats(), st.sampled_from(ON_AND_BESIDE_EDGES)), max_size=80),
    st.integers(min_value=1, max_value=80),
)
def test_histogram_of_batches_adds_up_to_the_bisect_counts(values, batch):
    """Any split into batches, NaN and infinities included, adds up to the per-value bins."""
    parts = [Histogram.of(np.array(values[i : i + batch], dtype=np.float64)) for i in range(0, len(values), batch)]
    total = sum(parts, Histogram())
    assert (total.counts, total.nan) == bisect_histogram(values)


@pytest.mark.parametrize(
    "hits",
    [[], [True], [False], [True, False, True], [False] * 5, [True] * 70_000, [i % 3 == 0 for i in range(100_001)]],
)
def test_partial_of_booleans_is_partial_of_ones_and_zeros(hits):
    """Accuracy's hits as booleans: the same sufficient statistics as the 1.0/0.0 floats they stand for."""
    booleans = np.array(hits, dtype=bool)
    fast = Partial.of(booleans)
    assert fast == Partial.of(booleans.astype(np.float64))
    right = sum(hits)
    assert (fast.count, fast.sum, fast.weight_sum) == (len(hits), float(right), float(len(hits)))
    if hits:
        assert (fast.min, fast.max, fast.mean) == (float(all(hits)), float(any(hits)), right / len(hits))


def test_weighted_booleans_take_the_general_path():
    weights = np.array([0.5, 2.0, 0.25])
    partial = Partial.of(np.array([True, False, True]), weights)
    assert partial == Partial.of(np.array([1.0, 0.0, 1.0]), weights)
    assert partial.sum == 0.75 and partial.weight_sum == 2.75
