"""Tests for ``cecli.numerics.reduce``: the mergeable ``Partial`` and its exact sums.

Expected sums and means are computed with ``fractions.Fraction`` (exact rational arithmetic) and rounded
once with ``float()``, which is correctly rounded; that is the contract the module promises.
"""

import bisect
import json
import math
import re
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from cecli.numerics.exact import exact_sum
from cecli.numerics.reduce import HISTOGRAM_EDGES, Histogram, Partial, ScoreState, check_reduction
from cecli.options import REDUCTIONS

pytestmark = pytest.mark.filterwarnings("error")

SEED_FILE = Path(__file__).parent / "data" / "seed_examples.json"
UNIT = 2**1127  # exact_sum counts multiples of 2**-1127
MAX = np.finfo(np.float64).max
TINY = 5e-324  # smallest subnormal


def exact(values) -> Fraction:
    return sum(map(Fraction, values), Fraction(0))  # Fraction(Fraction) is the same value


def same(a: float, b: float) -> bool:
    """Equal, treating NaN as equal to NaN."""
    return a == b or (math.isnan(a) and math.isnan(b))


def fields(partial: Partial) -> tuple:
    """The observable state of a partial, comparable with ``same``."""
    return (partial.count, partial.sum, partial.weight_sum, partial.mean, partial.min, partial.max, partial.nonfinite)


# --- Partial.of --------------------------------------------------------------------------------------------------


def test_of_without_weights():
    partial = Partial.of([0.5, 1.5, 4.0])
    assert fields(partial) == (3, 6.0, 3.0, 2.0, 0.5, 4.0, 0)


MEAN_CASES = [
    pytest.param([1.0, 2.0, 4.0], None, None, id="plain"),  # 7/3
    pytest.param([1.0, 2.0, 4.0], [1.0, 0.5, 0.25], None, id="weights"),  # (1 + 1 + 1) / 1.75 = 12/7
    pytest.param([1.0, 2.0, 4.0], None, [2.0, 2.0, 4.0], id="denominators-only"),  # D = 8: value 7/8, mean 7/3
    # D = sum(w * d) = 0.5 + 0.5 + 0 = 1: value 3 / 1; mean 3 / 1.75
    pytest.param([1.0, 2.0, 4.0], [1.0, 0.5, 0.25], [0.5, 1.0, 0.0], id="weights-and-denominators"),
    # PyTorch class-weighted mean with an ignored row: sum(l) / sum(w_y), the ignored row has d = 0
    pytest.param([0.3, 0.0, 0.6], None, [0.2, 0.0, 3.0], id="ignored-row"),
    pytest.param([0.1] * 10, None, None, id="tenths"),  # naive left-to-right sum / 10 gives 0.09999999999999999
    pytest.param([1e16, 1.0, -1e16, 3.0], None, None, id="cancellation"),  # naive sum gives 3.0, exact 4.0
    # the products w*l are exact, not rounded first (rounding them gave a mean one ulp off: ...56 for ...58)
    pytest.param([0.7, 0.2, 1e-3], [0.3, 3.0, 7.0], None, id="exact-products"),
    pytest.param([0.7, 0.2, 1e-3], [0.3, 3.0, 7.0], [0.1, 1.0, 3.0], id="exact-denominator-products"),
]


@pytest.mark.parametrize(("losses", "weights", "denominators"), MEAN_CASES)
def test_of_mean_sum_weight_sum(losses, weights, denominators):
    """sum = Σw·l, weight_sum = Σw, mean = Σw·l / Σw, D = Σw·d (Σw without d): exact, rounded once."""
    w = weights or [1.0] * len(losses)
    products = exact(Fraction(a) * Fraction(b) for a, b in zip(w, losses, strict=True))
    weight_sum = exact(w)
    denominator = (
        weight_sum
        if denominators is None
        else exact(Fraction(a) * Fraction(d) for a, d in zip(w, denominators, strict=True))
    )
    partial = Partial.of(losses, weights, denominators)
    assert partial.sum == float(products)
    assert partial.weight_sum == float(weight_sum)
    assert partial.mean == float(products / weight_sum)
    assert partial.denominator == float(denominator)
    assert partial.reduced("mean") == float(products / denominator)
    assert (partial.count, partial.min, partial.max) == (len(losses), min(losses), max(losses))


def test_rounded_products_would_be_one_ulp_off():
    """Sanity check of "exact-products": summing the rounded products w*l gives another mean."""
    naive = float(exact([0.7 * 0.3, 0.2 * 3.0, 1e-3 * 7.0]) / exact([0.3, 3.0, 7.0]))
    assert Partial.of([0.7, 0.2, 1e-3], [0.3, 3.0, 7.0]).mean != naive


def test_of_is_exact_where_naive_sums_are_not():
    # sanity check of the rows above: the naive answers really differ
    assert sum([0.1] * 10) / 10 != 0.1 and Partial.of([0.1] * 10).mean == 0.1
    assert Partial.of([1e16, 1.0, -1e16]).sum == 1.0  # the naive sum is 0.0


def test_of_accepts_numpy_arrays_and_subnormals():
    partial = Partial.of(np.array([TINY, TINY, 3 * TINY]))
    assert (partial.sum, partial.mean, partial.min, partial.max) == (
        5 * TINY,
        float(Fraction(5 * TINY) / 3),
        TINY,
        3 * TINY,
    )


def test_mean_of_huge_values_does_not_overflow():
    assert Partial.of([MAX, MAX]).mean == MAX  # (2 MAX) / 2, exact


def test_sum_beyond_float_range_is_inf():
    # the exact sum 2 * MAX is >= 2**1024 - 2**970, which rounds to inf under IEEE round-to-nearest
    assert Partial.of([MAX, MAX]).sum == math.inf


# --- empty and non-finite ----------------------------------------------------------------------------------------


def test_empty():
    assert Partial.of([]) == Partial()
    partial = Partial()
    assert (partial.count, partial.sum, partial.weight_sum, partial.nonfinite) == (0, 0.0, 0.0, 0)
    assert math.isnan(partial.mean)


def test_zero_weight_sum_mean_is_nan():
    assert math.isnan(Partial.of([1.0, 2.0], weights=[0.0, 0.0]).mean)  # 0 / 0, as torch


NONFINITE_CASES = [
    # losses, nonfinite, sum, mean, min, max
    pytest.param([1.0, math.inf], 1, math.inf, math.inf, 1.0, math.inf, id="pos-inf"),
    pytest.param([1.0, -math.inf], 1, -math.inf, -math.inf, -math.inf, 1.0, id="neg-inf"),
    pytest.param([math.inf, -math.inf], 2, math.nan, math.nan, -math.inf, math.inf, id="inf-minus-inf"),
    pytest.param([1.0, math.nan, 3.0], 1, math.nan, math.nan, 1.0, 3.0, id="nan-skipped-by-min-max"),
    pytest.param([math.nan, math.nan], 2, math.nan, math.nan, math.nan, math.nan, id="all-nan"),
    pytest.param([math.nan, math.inf], 2, math.nan, math.nan, math.inf, math.inf, id="nan-and-inf"),
]


@pytest.mark.parametrize(("losses", "nonfinite", "total", "mean", "low", "high"), NONFINITE_CASES)
def test_nonfinite(losses, nonfinite, total, mean, low, high):
    partial = Partial.of(losses)
    assert (partial.count, partial.nonfinite) == (len(losses), nonfinite)
    assert all(same(a, b) for a, b in [(partial.sum, total), (partial.mean, mean), (partial.min, low)])
    assert same(partial.max, high)


# --- merging -----------------------------------------------------------------------------------------------------

LOSSES = [0.1, 0.2, 0.3, 1e-300, TINY, 7.5, 1e16, 2.0, 1e-3]
WEIGHTS = [1.0, 0.3, 2.0, 5.0, 1.0, 0.1, 1e-16, 3.0, 0.7]
DENOMINATORS = [0.5, 0.0, 1.0, 2.0, 1.0, 0.25, 1.0, 3.0, 0.125]


@pytest.mark.parametrize(
    ("weights", "denominators"),
    [
        pytest.param(None, None, id="unweighted"),
        pytest.param(WEIGHTS, None, id="weights"),
        pytest.param(WEIGHTS, DENOMINATORS, id="weights-and-denominators"),
    ],
)
@pytest.mark.parametrize("cut", range(len(LOSSES) + 1))
def test_split_at_every_position_equals_the_whole(weights, denominators, cut):
    def part(start, stop):
        sliced = [None if xs is None else xs[start:stop] for xs in (weights, denominators)]
        return Partial.of(LOSSES[start:stop], *sliced)

    whole = Partial.of(LOSSES, weights, denominators)
    merged = part(0, cut) + part(cut, None)
    assert merged == whole
    assert merged.mean == whole.mean  # to the last bit


def test_sum_of_many_partials_equals_the_whole():
    shards = [Partial.of(LOSSES[i : i + 2], WEIGHTS[i : i + 2]) for i in range(0, len(LOSSES), 2)]
    assert sum(shards) == Partial.of(LOSSES, WEIGHTS)
    assert sum(reversed(shards)) == Partial.of(LOSSES, WEIGHTS)


def test_add_identity_and_type():
    partial = Partial.of([1.0, 2.0])
    assert 0 + partial is partial  # sum() starts from 0
    assert partial + Partial() == partial
    with pytest.raises(TypeError):
        partial + 1.0  # noqa: B018


@pytest.mark.parametrize(
    "losses",
    [
        pytest.param([1.0, math.nan, math.inf, 2.0], id="nan-and-inf"),
        pytest.param([math.inf, -math.inf, 0.5], id="both-infinities"),
        pytest.param([3.0, math.nan], id="trailing-nan"),
    ],
)
def test_split_with_nonfinite_values(losses):
    whole = Partial.of(losses)
    for cut in range(1, len(losses)):
        merged = Partial.of(losses[:cut]) + Partial.of(losses[cut:])
        assert all(same(a, b) for a, b in zip(fields(merged), fields(whole), strict=True))
        assert (merged.nan, merged.pos_inf, merged.neg_inf) == (whole.nan, whole.pos_inf, whole.neg_inf)


def test_empty_partial_is_identity_for_all_nan():
    alone = Partial.of([math.nan])
    merged = Partial() + alone
    assert same(merged.min, alone.min) and same(merged.max, alone.max)  # got inf / -inf instead of nan


# --- reductions --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reduction", "expected"),
    [
        pytest.param("mean", 12 / 7, id="mean"),  # (1 + 1 + 1) / (1 + 0.5 + 0.25)
        pytest.param("sum", 3.0, id="sum"),
        pytest.param("none", None, id="none"),  # per-sample values live elsewhere
    ],
)
def test_reduced(reduction, expected):
    assert Partial.of([1.0, 2.0, 4.0], [1.0, 0.5, 0.25]).reduced(reduction) == expected


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_check_reduction_accepts(reduction):
    assert check_reduction(reduction) == reduction


@pytest.mark.parametrize("bad", ["avg", "Mean", "", "sum "])
def test_check_reduction_lists_the_allowed_set(bad):
    with pytest.raises(ValueError, match=re.escape("one of mean, sum, none; received " + repr(bad))):
        check_reduction(bad)
    with pytest.raises(ValueError, match="mean, sum, none"):
        Partial.of([1.0]).reduced(bad)


def test_seed_sums_and_means():
    for case in json.loads(SEED_FILE.read_text())["cases"]:
        partial = Partial.of(case["expected"]["per_sample"])
        assert partial.mean == pytest.approx(case["expected"]["mean"], rel=1e-12), case["name"]
        if "sum" in case["expected"]:
            assert partial.sum == pytest.approx(case["expected"]["sum"], rel=1e-12), case["name"]


# --- exact_sum ---------------------------------------------------------------------------------------------------


def random_floats(seed: int, size: int = 400) -> np.ndarray:
    """Floats across the whole exponent range: normals, subnormals, negatives, zeros and huge values."""
    rng = np.random.default_rng(seed)
    normals = rng.standard_normal(size) * 10.0 ** rng.uniform(-300, 300, size)
    subnormals = rng.integers(1, 2**52, size // 4) * TINY * rng.choice([-1.0, 1.0], size // 4)
    huge = rng.choice([MAX, -MAX, 1e308, -1e308, 8.98846567431158e307], size // 8)
    special = np.array([0.0, -0.0, TINY, -TINY, 2.2250738585072014e-308])  # incl. the smallest normal
    values = np.concatenate([normals, subnormals, huge, special])
    rng.shuffle(values)
    return values


@pytest.mark.parametrize("seed", range(6))
def test_exact_sum_matches_fractions(seed):
    values = random_floats(seed)
    assert exact_sum(values) == exact(values.tolist()) * UNIT


@pytest.mark.parametrize(
    "values",
    [
        pytest.param([], id="empty"),
        pytest.param([0.0, -0.0], id="zeros"),
        pytest.param([TINY], id="smallest-subnormal"),  # exactly 2**53 units
        pytest.param([-TINY, TINY, -TINY], id="negative-subnormal"),
        pytest.param([MAX, MAX, MAX], id="beyond-float-range"),  # the integer holds what a float cannot
        pytest.param([1e308, -1e308, 1e-308], id="cancel-to-tiny"),
        pytest.param([0.1] * 10, id="tenths"),
        pytest.param([[1.5, -2.25], [3.0, TINY]], id="2-d-is-flattened"),
    ],
)
def test_exact_sum_edge_cases(values):
    expected = exact(np.ravel(values).tolist()) * UNIT
    assert expected.denominator == 1
    assert exact_sum(np.array(values, dtype=np.float64)) == expected


@pytest.mark.parametrize("n", [1, 3, 65536, (1 << 17) + 3])  # one block, two
@pytest.mark.parametrize(
    ("low", "high"),
    [
        (0.03, 8.2),  # the bench's losses
        (1e-7, 16.2),  # clipped at eps
        (1.0, 1.0 + 2.0**-30),  # one binade
        (1e-6, 1e6),  # more than 20 binades: the extraction rounds
        (2.0**-1010, 2.0**-1000),  # next to the subnormals: the extraction rounds
        (1e290, 1e300),  # the rounding constant would overflow: the extraction rounds
    ],
)
@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_exact_sum_with_a_lower_bound_of_the_magnitudes(n, low, high, sign):
    """``low`` (every ``|v| >= low > 0``): values on one grid sum in two parts; the same exact integer."""
    rng = np.random.default_rng(n)
    values = sign * np.exp(rng.uniform(math.log(low), math.log(high), n))
    values[0] = sign * low  # the bounds are attained
    magnitudes = np.abs(values)
    expected = exact(values.tolist()) * UNIT
    assert exact_sum(values, bound=float(magnitudes.max()), low=float(magnitudes.min())) == expected
    assert exact_sum(values, bound=high * 2, low=low / 2) == expected  # looser bounds


def test_score_states_add_rows_per_file_and_number_rows_across_files():
    """Batches of one file add their rows; `global_row` numbers (file, row in file) across the dataset."""
    first = ScoreState(file_rows={0: 3}, off_simplex=1, n_classes=4)
    second = ScoreState(file_rows={0: 2}, off_simplex=2)
    other_file = ScoreState(file_rows={1: 7})
    total = first + second + other_file
    assert total.file_rows == {0: 5, 1: 7}
    assert total.rows == 12
    assert (total.off_simplex, total.n_classes) == (3, 4)
    assert total.global_row((0, 5)) == 5
    assert total.global_row((1, 1)) == 6
    assert (other_file + first + second).file_rows == total.file_rows  # order does not matter


# --- exact weighted sums: any finite weights ---------------------------------------------------------------------

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.extra import numpy as hnp  # noqa: E402

from cecli.numerics.exact import exact_dot  # noqa: E402

PRODUCT_UNIT = 2**2254  # exact_dot and Partial count multiples of 2**-2254


def dot(weights, losses) -> Fraction:
    return sum((Fraction(w) * Fraction(v) for w, v in zip(weights, losses, strict=True)), Fraction(0))


# non-negative finite floats of every magnitude: zero, subnormals, normals up to MAX
ANY_WEIGHT = st.one_of(
    st.floats(min_value=0.0, max_value=MAX, allow_subnormal=True),
    st.sampled_from([0.0, TINY, 1e-320, 2.2250738585072014e-308, 1e-300, 1.0, 1e300, MAX]),
    st.integers(0, 2**26).map(float),  # short weights (<= 26 significant bits) take a shorter error formula
    st.integers(0, 2**26).map(lambda i: math.ldexp(i, -30)),
)
ANY_LOSS = st.one_of(
    st.floats(min_value=0.0, max_value=MAX, allow_subnormal=True),
    st.floats(min_value=0.0, max_value=50.0),
    st.sampled_from([0.0, TINY, 0.1642520, 1e-17, 100.0]),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(ANY_WEIGHT, ANY_LOSS), max_size=40))
def test_exact_dot_matches_fractions(pairs):
    weights = np.array([w for w, _ in pairs], dtype=np.float64)
    losses = np.array([v for _, v in pairs], dtype=np.float64)
    assert exact_dot(weights, losses) == dot(weights.tolist(), losses.tolist()) * PRODUCT_UNIT


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.tuples(ANY_WEIGHT, ANY_LOSS, ANY_WEIGHT), min_size=1, max_size=30),
    st.integers(min_value=0, max_value=30),
)
def test_weighted_partial_matches_fractions_and_merges(rows, cut):
    """sum = Σw·l, weight_sum = Σw, mean = Σw·l / Σw and D = Σw·d, each exact and rounded once."""
    w, losses, d = ([row[i] for row in rows] for i in range(3))
    whole = Partial.of(losses, w, d)
    total, weight_sum, denominator = dot(w, losses), sum(map(Fraction, w), Fraction(0)), dot(w, d)

    def rounded(value: Fraction) -> float:
        try:
            return float(value)
        except OverflowError:  # beyond the float range: IEEE rounding gives inf
            return math.inf

    assert whole.sum == rounded(total)
    assert whole.weight_sum == rounded(weight_sum)
    assert whole.denominator == rounded(denominator)
    if weight_sum:
        assert whole.mean == rounded(total / weight_sum)
    if denominator:
        assert whole.reduced("mean") == rounded(total / denominator)
    assert whole.nonfinite == 0
    cut = min(cut, len(rows))
    assert Partial.of(losses[:cut], w[:cut], d[:cut]) + Partial.of(losses[cut:], w[cut:], d[cut:]) == whole


@settings(max_examples=100, deadline=None)
@given(hnp.arrays(np.float64, st.integers(1, 50), elements=ANY_LOSS), ANY_WEIGHT.filter(lambda w: w > 0))
def test_mean_is_scale_free_in_equal_weights(losses, weight):
    """Equal weights, however tiny or huge, give the unweighted mean, to the last bit."""
    assert Partial.of(losses, np.full(losses.size, weight)).mean == Partial.of(losses).mean


@pytest.mark.parametrize(
    ("weight", "expected_sum"),
    [
        pytest.param(1e-320, float(Fraction(1e-320) * 3), id="subnormal-weights"),  # w*l underflowed before
        pytest.param(1e300, float(Fraction(1e300) * 3), id="huge-weights"),  # w*l overflowed before
    ],
)
def test_extreme_equal_weights_keep_the_mean(weight, expected_sum):
    losses = [0.5, 1.0, 1.5]  # mean 1, sum 3
    partial = Partial.of(losses, [weight] * 3)
    assert (partial.mean, partial.sum, partial.weight_sum) == (1.0, expected_sum, float(Fraction(weight) * 3))
    assert partial.nonfinite == 0


def test_sum_may_overflow_while_the_mean_stays_finite():
    partial = Partial.of([2.0, 4.0], [MAX, MAX])  # Σw·l = 6 MAX: beyond the float range; mean = 6 MAX / 2 MAX = 3
    assert (partial.sum, partial.weight_sum, partial.mean, partial.nonfinite) == (math.inf, math.inf, 3.0, 0)


ZERO_WEIGHT_CASES = [
    # losses, weights: a row of weight 0 adds nothing, whatever its loss (0 * inf = 0 * nan = 0)
    pytest.param([1.0, math.inf], [2.0, 0.0], id="zero-weight-inf"),
    pytest.param([1.0, math.nan], [2.0, 0.0], id="zero-weight-nan"),
]


@pytest.mark.parametrize(("losses", "weights"), ZERO_WEIGHT_CASES)
def test_zero_weight_removes_a_nonfinite_loss(losses, weights):
    partial = Partial.of(losses, weights)
    assert (partial.sum, partial.weight_sum, partial.mean, partial.nonfinite) == (2.0, 2.0, 1.0, 0)
    assert partial.count == 2  # the row is still a sample; only its weighted term is 0


def test_histogram_counts_nan_apart_so_counts_add_up():
    histogram = Histogram.of([0.5, math.nan, math.inf, 0.0, math.nan])
    assert histogram.nan == 2
    assert sum(histogram.counts) + histogram.nan == 5
    assert histogram.counts[-1] == 1  # inf falls in the last bin, whose upper edge is infinity
    merged = Histogram.of([math.nan]) + Histogram.of([1.0])
    assert (merged.nan, sum(merged.counts)) == (1, 1)


def test_denominators_count_ignores_the_weights():
    partial = Partial.of([1.0, 2.0], [3.0, 5.0], "count")  # Keras "sum_over_batch_size": Σw·l / N
    assert (partial.denominator, partial.reduced("mean"), partial.weight_sum, partial.mean) == (2.0, 6.5, 8.0, 13 / 8)


def test_reduced_sum_of_elements():
    # PyTorch sums all k columns of a multi-label row whose per-sample value is their mean
    partial = Partial.of([0.1, 0.7], None, "count")
    assert partial.reduced("sum", elements=3) == float(3 * (Fraction(0.1) + Fraction(0.7)))
    assert partial.reduced("mean", elements=3) == float((Fraction(0.1) + Fraction(0.7)) / 2)


EDGE_FACTORS = [
    2.0**995 * (1 - 2**-52), 2.0**995, 2.0**996, 2.0**-968, 2.0**-969 * 1.5, 2.0**-1022, 2.0**-1000 * 0.7,
    MAX, TINY, 1e-320, 0.1, 1.0 + 2**-52, 3.0, 0.0,
]  # fmt: skip


@pytest.mark.parametrize("a", EDGE_FACTORS)
def test_exact_dot_at_the_edges_of_the_fast_path(a):
    """Around each threshold of exact_dot (split overflow, product overflow, error underflow), against Fraction."""
    b = np.array(EDGE_FACTORS + [0.7, 1e-17, 2.5e-300])
    weights = np.full(b.size, a)
    assert exact_dot(weights, b) == dot(weights.tolist(), b.tolist()) * PRODUCT_UNIT
    for start in range(b.size):  # each pair alone, so no other pair sends the batch to the general path
        assert (
            exact_dot(weights[start : start + 1], b[start : start + 1])
            == Fraction(a) * Fraction(b[start]) * PRODUCT_UNIT
        )


# Edges by hand: 0, then 10**(k/2) for k = -12..6, then infinity; a value on an edge counts in the bin above it.
@pytest.mark.parametrize(
    ("value", "bin_"),
    [
        (-math.inf, 0),
        (-1.0, 0),
        (0.0, 0),
        (1e-6, 1),
        (math.nextafter(1e-6, 0.0), 0),
        (1.0, 13),
        (1e3, 19),
        (math.inf, 19),
    ],
)
def test_histogram_bin_of_edges_and_extremes(value, bin_):
    assert HISTOGRAM_EDGES[1] == 1e-6 and HISTOGRAM_EDGES[13] == 1.0 and HISTOGRAM_EDGES[-2] == 1e3
    assert Histogram.of([value]).counts == tuple(int(i == bin_) for i in range(20))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(allow_nan=False), max_size=50))
def test_histogram_matches_bisect_on_the_edges(values):
    expected = [0] * 20
    for value in values:
        expected[min(bisect.bisect_right(HISTOGRAM_EDGES, value) - 1, 19) if value > 0 else 0] += 1
    assert Histogram.of(values).counts == tuple(expected)
