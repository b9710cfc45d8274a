"""Mergeable partial sums and the reductions built from them.

A :class:`Partial` summarises any number of per-sample losses. Partials of batches,
files or cluster tasks combine with ``+`` (or ``sum()``), and the sums inside are
*exact*: every finite float64 is an integer multiple of ``2**-1074``, so each batch's
sum is kept as a Python integer of that unit and only rounded once, when a value is
read. The mean is therefore the same, to the last bit, however the input was split.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

REDUCTIONS = ("mean", "sum", "none")

_UNIT_EXPONENT = 1127  # 1074 (smallest subnormal) + 53 (mantissa bits): all scaled exponents >= 0
_HALF_BITS = 26
_MAX_CHUNK = 1 << 25  # keeps each bincount bin below 2**53, so the float64 bins stay exact


def check_reduction(reduction: str) -> str:
    """Return `reduction` if it is one of :data:`REDUCTIONS`, else raise ``ValueError``."""
    if reduction not in REDUCTIONS:
        raise ValueError(f"`reduction` must be one of {', '.join(REDUCTIONS)}; received {reduction!r}")
    return reduction


def exact_sum(values: np.ndarray) -> int:
    """The exact sum of finite float64 `values`, as an integer count of ``2**-1127``.

    Uses error-free extraction (Rump, Ogita and Oishi, "Accurate floating-point
    summation", 2008): with ``sigma = 2**k >= n * max|v|``, ``q = (sigma + v) - sigma``
    is exact, a multiple of ``ulp(sigma) / 2``, and the float sum of all ``q`` is exact;
    ``v - q`` is exact too and is summed the same way until nothing is left. Values
    near the top of the float range take the slower exponent-binning path.
    """
    values = np.asarray(values, dtype=np.float64).ravel()
    n_bits = values.size.bit_length()
    total = 0
    rest = values.copy()
    extracted = np.empty_like(rest)
    while rest.size:
        top = max(float(rest.max()), -float(rest.min()))
        if top == 0.0:
            return total
        exponent = math.frexp(top)[1] + n_bits
        if exponent > 1000:  # sigma + v could overflow
            return total + _binned_sum(rest)
        sigma = math.ldexp(1.0, exponent)
        np.add(rest, sigma, out=extracted)
        np.subtract(extracted, sigma, out=extracted)
        np.subtract(rest, extracted, out=rest)
        total += _scaled(float(extracted.sum()))
    return total


def _scaled(exact: float) -> int:
    numerator, denominator = exact.as_integer_ratio()  # denominator is a power of two <= 2**1074
    return numerator * ((1 << _UNIT_EXPONENT) // denominator)


def _binned_sum(values: np.ndarray) -> int:
    """Exact sum by binning integer mantissas per exponent (any finite values)."""
    total = 0
    for start in range(0, values.size, _MAX_CHUNK):
        chunk = values[start : start + _MAX_CHUNK]
        mantissa, exponent = np.frexp(chunk)
        integers = (mantissa * 2.0**53).astype(np.int64)  # exact: at most 53 significant bits
        scale = exponent.astype(np.int64) + (_UNIT_EXPONENT - 53)
        high = np.bincount(scale, weights=integers >> _HALF_BITS)
        low = np.bincount(scale, weights=integers & ((1 << _HALF_BITS) - 1))
        for shift in np.flatnonzero(high).tolist():
            total += int(high[shift]) << (shift + _HALF_BITS)
        for shift in np.flatnonzero(low).tolist():
            total += int(low[shift]) << shift
    return total


def _to_float(scaled: int) -> float:
    try:
        return scaled / (1 << _UNIT_EXPONENT)  # int / int is correctly rounded in Python
    except OverflowError:  # beyond the largest float: IEEE rounding gives infinity
        return math.inf if scaled > 0 else -math.inf


@dataclass(frozen=True)
class Partial:
    """Sufficient statistics of a set of per-sample losses.

    ``sum`` is ``sum(a * l)`` and ``weight_sum`` is ``sum(d)``, where ``a`` is the sample
    weight and ``d`` the denominator weight (the sample weight, times the class weight
    of the label for class-weighted sparse losses, as in PyTorch). Without weights both
    are 1 per sample. Rows with a non-finite loss are counted in `nonfinite` and make
    the sums non-finite, honestly.
    """

    count: int = 0
    scaled_sum: int = field(default=0, repr=False)
    scaled_weight_sum: int = field(default=0, repr=False)
    min: float = math.inf
    max: float = -math.inf
    nan: int = 0
    pos_inf: int = 0
    neg_inf: int = 0

    @classmethod
    def of(cls, losses, weights=None, denominators=None) -> Partial:
        """Summarise `losses` with optional sample `weights` and mean `denominators`.

        Parameters
        ----------
        losses : array_like, shape (n,)
        weights : array_like, shape (n,), optional
            Sample weights ``a`` (numerator).
        denominators : array_like, shape (n,), optional
            Denominator weights ``d``; defaults to `weights` (or 1 per sample).
        """
        losses = np.asarray(losses, dtype=np.float64)
        if losses.size == 0:
            return cls()
        weighted = losses if weights is None else losses * np.asarray(weights, dtype=np.float64)
        if denominators is None:
            denominators = weights
        finite = np.isfinite(weighted)
        all_finite = bool(finite.all())
        nan = 0 if all_finite else int(np.isnan(weighted).sum())
        pos_inf = 0 if all_finite else int(np.isposinf(weighted).sum())
        neg_inf = 0 if all_finite else int(np.isneginf(weighted).sum())
        scaled_sum = exact_sum(weighted if all_finite else weighted[finite])
        if denominators is None:
            scaled_weight_sum = losses.size << _UNIT_EXPONENT
        else:
            scaled_weight_sum = exact_sum(denominators)
        if not nan:
            low, high = float(losses.min()), float(losses.max())
        elif nan < losses.size:
            low, high = float(np.nanmin(losses)), float(np.nanmax(losses))
        else:
            low = high = math.nan
        return cls(losses.size, scaled_sum, scaled_weight_sum, low, high, nan, pos_inf, neg_inf)

    def __add__(self, other: Partial) -> Partial:
        if not isinstance(other, Partial):
            return NotImplemented
        if not other.count:
            return self
        if not self.count:
            return other
        return Partial(
            self.count + other.count,
            self.scaled_sum + other.scaled_sum,
            self.scaled_weight_sum + other.scaled_weight_sum,
            _nan_min(self.min, other.min),
            _nan_max(self.max, other.max),
            self.nan + other.nan,
            self.pos_inf + other.pos_inf,
            self.neg_inf + other.neg_inf,
        )

    def __radd__(self, other) -> Partial:
        return self if other == 0 else self.__add__(other)  # lets sum() start from 0

    @property
    def nonfinite(self) -> int:
        """Number of samples whose (weighted) loss is NaN or infinite."""
        return self.nan + self.pos_inf + self.neg_inf

    @property
    def sum(self) -> float:
        """``sum(a * l)``, correctly rounded."""
        if self.nan or (self.pos_inf and self.neg_inf):
            return math.nan
        if self.pos_inf or self.neg_inf:
            return math.inf if self.pos_inf else -math.inf
        return _to_float(self.scaled_sum)

    @property
    def weight_sum(self) -> float:
        """``sum(d)``, the denominator of the mean, correctly rounded."""
        return _to_float(self.scaled_weight_sum)

    @property
    def mean(self) -> float:
        """``sum(a * l) / sum(d)``, correctly rounded; NaN when nothing counts."""
        if self.count == 0 or self.scaled_weight_sum == 0:
            return math.nan
        if self.nonfinite:
            return self.sum / self.weight_sum if self.weight_sum > 0 else math.nan
        try:
            return self.scaled_sum / self.scaled_weight_sum  # int / int rounds correctly
        except OverflowError:
            return math.inf if self.scaled_sum > 0 else -math.inf

    def reduced(self, reduction: str) -> float | None:
        """The value of `reduction` (``None`` for ``"none"``)."""
        check_reduction(reduction)
        return {"mean": self.mean, "sum": self.sum, "none": None}[reduction]


def _nan_min(a: float, b: float) -> float:
    return b if math.isnan(a) else a if math.isnan(b) else min(a, b)


def _nan_max(a: float, b: float) -> float:
    return b if math.isnan(a) else a if math.isnan(b) else max(a, b)


# Fixed histogram edges (in the result's unit): 0, then half-decades from 1e-6 to 1e3, then
# infinity. Fixed edges make histograms of batches, files and tasks add up exactly.
HISTOGRAM_EDGES = (0.0, *(10.0 ** (k / 2) for k in range(-12, 7)), math.inf)
_INNER_EDGES = np.asarray(HISTOGRAM_EDGES[1:-1])


def _octave_tables() -> tuple[np.ndarray, np.ndarray]:
    """Per binary exponent e: the bin of 2**e and the one inner edge inside [2**e, 2**(e+1)), if any.

    A half-decade (a factor 3.16) is wider than an octave, so each octave meets at most two
    bins and one comparison with the exact edge settles a value's bin.
    """
    exponents = np.arange(-1023, 1025)  # the biased exponent field, shifted; -1023: zero and subnormals
    with np.errstate(over="ignore"):
        low = np.ldexp(1.0, exponents)
        high = np.ldexp(1.0, exponents + 1)
    low[0] = 0.0
    first_bin = np.searchsorted(_INNER_EDGES, low, side="right")
    split = _INNER_EDGES[np.minimum(first_bin, _INNER_EDGES.size - 1)]
    split = np.where((first_bin < _INNER_EDGES.size) & (split < high), split, np.nan)  # NaN: never >=
    return first_bin, split


_OCTAVE_BIN, _OCTAVE_SPLIT = _octave_tables()


@dataclass(frozen=True)
class Histogram:
    """Counts of per-sample losses in :data:`HISTOGRAM_EDGES` bins (last bin includes inf)."""

    counts: tuple[int, ...] = (0,) * (len(HISTOGRAM_EDGES) - 1)

    @classmethod
    def of(cls, losses) -> Histogram:
        """Count `losses` (NaN left out; negative values and -inf fall in the first bin)."""
        losses = np.asarray(losses, dtype=np.float64)
        if np.isnan(losses).any():
            losses = losses[~np.isnan(losses)]
        # The biased exponent field picks the octave and the tables turn it into a bin with one
        # exact comparison: searchsorted(edges, losses, side="right") - 1, about 2x faster.
        octave = losses.view(np.int64) >> 52
        np.maximum(octave, 0, out=octave)  # a negative value (sign bit set) shifts to < 0: bin 0
        bins = _OCTAVE_BIN.take(octave)
        bins += losses >= _OCTAVE_SPLIT.take(octave)
        return cls(tuple(np.bincount(bins, minlength=len(HISTOGRAM_EDGES) - 1).tolist()))

    def __add__(self, other: Histogram) -> Histogram:
        return Histogram(tuple(a + b for a, b in zip(self.counts, other.counts, strict=True)))


@dataclass(frozen=True)
class TopK:
    """The `k` largest per-sample losses with their 1-based row and kept values.

    Ties keep the earlier row, so the selection does not depend on how input was split.
    """

    k: int
    rows: tuple[tuple[float, int, tuple], ...] = ()

    def add(self, losses: np.ndarray, first: tuple[int, int], kept: dict[str, list], counted: np.ndarray) -> TopK:
        """Merge a batch whose first record is at `first` = (file index, 1-based row in that file).

        Rows are kept as (file index, row) so that tasks on different machines agree;
        :meth:`ScoreState.global_row` turns them into dataset row numbers.
        """
        if self.k == 0 or losses.size == 0:
            return self
        candidates = np.flatnonzero(counted & ~np.isnan(losses))
        if candidates.size > self.k:
            # argpartition picks k by value; keep every tie of the k-th value so earlier rows can win below.
            kth = np.partition(losses[candidates], candidates.size - self.k)[candidates.size - self.k]
            candidates = candidates[losses[candidates] >= kth]
        names = list(kept)
        file_index, first_row = first
        batch = [
            (float(losses[i]), (file_index, first_row + int(i)), tuple(kept[n][int(i)] for n in names))
            for i in candidates
        ]
        return TopK(self.k, self._best(self.rows + tuple(batch)))

    def _best(self, rows, k: int | None = None) -> tuple:
        return tuple(sorted(rows, key=lambda r: (-r[0], r[1]))[: self.k if k is None else k])

    def __add__(self, other: TopK) -> TopK:
        return TopK(self.k, self._best(self.rows + other.rows))


def grouped(codes: np.ndarray, losses, weights=None, denominators=None) -> dict[int, Partial]:
    """One :class:`Partial` per distinct integer code (e.g. a group or class id)."""
    codes = np.asarray(codes)
    if codes.size == 0:
        return {}
    order = np.argsort(codes, kind="stable")
    sorted_codes = codes[order]
    starts = np.flatnonzero(np.r_[True, sorted_codes[1:] != sorted_codes[:-1]])
    ends = np.r_[starts[1:], sorted_codes.size]
    parts = {}
    for start, end in zip(starts.tolist(), ends.tolist(), strict=True):
        index = order[start:end]
        parts[int(sorted_codes[start])] = Partial.of(
            np.asarray(losses)[index],
            None if weights is None else np.asarray(weights)[index],
            None if denominators is None else np.asarray(denominators)[index],
        )
    return parts


def merge_groups(total: dict, part: dict) -> dict:
    """Add the partials of `part` into `total` (a new dict), key by key."""
    merged = dict(total)
    for key, value in part.items():
        merged[key] = merged[key] + value if key in merged else value
    return merged


@dataclass(frozen=True)
class ScoreState:
    """Everything a computation accumulates, mergeable with ``+`` across batches, files and tasks.

    `groups` maps a ``--by`` key (a tuple of values) and `per_class` a class index to a
    :class:`Partial`; `file_rows` maps each input file's index to its number of rows
    (summed when batches of one file are added).
    """

    partial: Partial = Partial()
    hits: Partial = Partial()  # accuracy: the weighted mean of 1 (right) / 0 (wrong) per sample
    histogram: Histogram = Histogram()
    top: TopK = TopK(0)
    per_class: dict | None = None
    groups: dict = field(default_factory=dict)
    file_rows: dict = field(default_factory=dict)
    off_simplex: int = 0
    n_classes: int | None = None
    nonfinite: dict = field(default_factory=dict)  # --keep/--by column -> NaN or infinite values (printed as null)
    notes: tuple = ()  # warnings about the input (e.g. a header that looks like data), in file order

    @property
    def rows(self) -> int:
        return sum(self.file_rows.values())

    def global_row(self, position: tuple[int, int]) -> int:
        """The 1-based dataset row of (file index, row in file)."""
        file_index, row = position
        return sum(n for index, n in self.file_rows.items() if index < file_index) + row

    def __add__(self, other: ScoreState) -> ScoreState:
        if not isinstance(other, ScoreState):
            return NotImplemented
        return ScoreState(
            self.partial + other.partial,
            self.hits + other.hits,
            self.histogram + other.histogram,
            TopK(k := max(self.top.k, other.top.k), self.top._best(self.top.rows + other.top.rows, k)),
            None
            if self.per_class is None and other.per_class is None
            else merge_groups(self.per_class or {}, other.per_class or {}),
            merge_groups(self.groups, other.groups),
            {i: self.file_rows.get(i, 0) + other.file_rows.get(i, 0) for i in self.file_rows | other.file_rows},
            self.off_simplex + other.off_simplex,
            self.n_classes if self.n_classes is not None else other.n_classes,
            {k: self.nonfinite.get(k, 0) + other.nonfinite.get(k, 0) for k in self.nonfinite | other.nonfinite},
            self.notes + other.notes,
        )
