"""Exact sums for the uncertainty states: of floats and of products of two (or four) floats, in integers
of a fixed binary unit, and the one rounding of a ratio, a square root or a p-value at the end."""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from itertools import combinations_with_replacement

import numpy as np

from cecli.numerics.exact import exact_sum, round_to_unit

# reduce.exact_sum counts units of 2**-_REDUCE_UNIT; read the unit off 1.0 rather than a private name.
_REDUCE_UNIT = exact_sum(np.ones(1)).bit_length() - 1


# The normal states' second moments sum products of four floats, (a * l)**2, multiples of 2**-4296;
# the binned path below splits each into normalised halves and needs about 370 bits more below
# that (53-bit mantissas of the halves' error terms), so 2**-4800 makes every exact sum here an integer.
_UNIT = 4800


assert _REDUCE_UNIT >= 1074 and _UNIT >= _REDUCE_UNIT  # every float is a multiple of 2**-1074


_SPLITTER = 134217729.0  # 2**27 + 1: Veltkamp's split of a double into two 26-bit halves


# Inside this range Dekker's product a*b = p + e is exact: no overflow in the split, and every partial
# product stays above the normal range's floor (2**-400 * 2**-400 / 2**106 > 2**-1022).
_SAFE_LOW, _SAFE_HIGH = 2.0**-400, 2.0**400


_MAX_CHUNK = 1 << 25  # bincount bins of 27-bit halves stay below 2**52, exact in float64


def _sum_units(values: np.ndarray, bound: float | None = None) -> int:
    """Exact ``sum(values)`` as an integer count of ``2**-_UNIT`` (`bound`: any number ``>= max|v|``)."""
    return exact_sum(values, bound=bound) << (_UNIT - _REDUCE_UNIT)


def _split(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    t = a * _SPLITTER
    high = t - (t - a)
    return high, a - high


def _two_product(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Dekker's error-free product: ``a * b == p + e`` exactly, for `a`, `b` in the safe range."""
    p = a * b
    a_high, a_low = _split(a)
    if b is a:  # a square: the two cross terms are one, doubled exactly
        return p, ((a_high * a_high - p) + 2.0 * (a_high * a_low)) + a_low * a_low
    b_high, b_low = _split(b)
    e = ((a_high * b_high - p) + a_high * b_low + a_low * b_high) + a_low * b_low
    return p, e


def _in_safe_range(a: np.ndarray) -> bool:
    magnitude = np.abs(a)
    return bool((((magnitude >= _SAFE_LOW) & (magnitude <= _SAFE_HIGH)) | (magnitude == 0)).all())


def _shifted_sum(values: np.ndarray, shifts: np.ndarray) -> int:
    """Exact ``sum(values * 2**shifts)`` in units of ``2**-_UNIT``, for any exponents.

    Each value's 53-bit integer mantissa is binned by its total exponent (as in
    :func:`cecli.numerics.exact._binned_sum`), so products beyond the float range stay exact.
    """
    total = 0
    for start in range(0, values.size, _MAX_CHUNK):
        mantissa, exponent = np.frexp(values[start : start + _MAX_CHUNK])
        integers = (mantissa * 2.0**53).astype(np.int64)  # exact: at most 53 significant bits
        scale = exponent.astype(np.int64) + shifts[start : start + _MAX_CHUNK] + (_UNIT - 53)
        lowest = int(scale.min())
        assert lowest >= 0, "exact unit too coarse"
        high = np.bincount(scale - lowest, weights=integers >> 26)
        low = np.bincount(scale - lowest, weights=integers & ((1 << 26) - 1))
        for shift in np.flatnonzero(high).tolist():
            total += int(high[shift]) << (shift + lowest + 26)
        for shift in np.flatnonzero(low).tolist():
            total += int(low[shift]) << (shift + lowest)
    return total


def _product_sum(a: np.ndarray, b: np.ndarray, shifts: np.ndarray | None = None) -> int:
    """Exact ``sum(a * b * 2**shifts)`` (the products unrounded) in units of ``2**-_UNIT``.

    In the common range (and without `shifts`) this is Dekker's error-free product summed
    with :func:`cecli.numerics.exact.exact_sum`; otherwise both factors are first normalised per row
    by a power of two (``a = fa * 2**ea`` with ``0.5 <= |fa| < 1``, exact), so nothing can
    overflow or underflow, and the exponents are added back by exponent binning.
    """
    if a.size == 0:
        return 0
    if shifts is None and _in_safe_range(a) and (b is a or _in_safe_range(b)):
        p, e = _two_product(a, b)
        return _sum_units(p) + _sum_units(e)
    fraction_a, exponent_a = np.frexp(a)
    fraction_b, exponent_b = (fraction_a, exponent_a) if b is a else np.frexp(b)
    p, e = _two_product(fraction_a, fraction_a if b is a else fraction_b)
    total = exponent_a.astype(np.int64) + exponent_b
    if shifts is not None:
        total += shifts
    return _shifted_sum(p, total) + _shifted_sum(e, total)


# The positive square sum (_positive_square_sum) cuts values into pieces of at most 2**20 units, so a product
# of two is at most 2**40 units and a dot product of 8,192 of them stays below 2**53 units: exact in float64
# in any order. 8,192 is also below the 10,000 elements above which OpenBLAS computes a dot product on
# several threads, which then spin and take the core of the decoding thread (measured: 65,536-element dots
# took 4 us alone but 26 us, and 127 us at 10,001, on the shared machine; 1.1-1.4 us per 8,192 chunk).
_PIECE_BITS = 20
_DOT_LENGTH = 1 << 13
_BLOCK_ROWS = 1 << 17  # scratch of at most _MAX_PIECES MiB, and under 2**10 chunk sums per int64 total
_MAX_PIECES = 5  # 20 + 4 * 21 = 104 bits: positive values spanning up to 51 binades


def _square_sum(values: np.ndarray, low: float, high: float) -> int:
    """Exact ``sum(values**2)`` in units of ``2**-_UNIT``, for finite `values` from `low` to `high` (their min and max).

    The same integer as ``_product_sum(values, values)``, faster for positive values (losses):
    :func:`_positive_square_sum`. Otherwise Dekker's square ``v**2 = p + e`` written in place (two
    scratch arrays instead of eight temporaries), both sums given their bound (``p <= fl(top**2)``,
    ``|e| <= ulp(p) / 2 <= 2**-53 p``) instead of a min/max pass each.
    """
    top = max(-low, high)
    if values.size == 0 or top > _SAFE_HIGH:
        return _product_sum(values, values)
    if low >= _SAFE_LOW:
        pieces = _positive_square_sum(values, low, high)
        if pieces is not None:
            return pieces
    elif not _in_safe_range(values):  # tiny non-zero values: may underflow
        return _product_sum(values, values)
    # Veltkamp's split v = hi + lo (as _split), then e = ((hi**2 - p) + 2 hi lo) + lo**2 (as _two_product)
    hi = np.multiply(values, _SPLITTER)
    lo = np.subtract(hi, values)
    np.subtract(hi, lo, out=hi)
    np.subtract(values, hi, out=lo)
    p = values * values
    error = np.multiply(hi, hi)
    error -= p
    np.multiply(hi, lo, out=hi)
    hi *= 2.0
    error += hi
    np.multiply(lo, lo, out=lo)
    error += lo
    bound = top * top  # fl is monotone: every fl(v * v) <= fl(top * top)
    return _sum_units(p, bound) + _sum_units(error, bound * 2.0**-52)


def _positive_square_sum(values: np.ndarray, low: float, high: float) -> int | None:
    """Exact ``sum(values**2)`` in units of ``2**-_UNIT`` for values in ``[low, high]``, ``0 < low``, in the
    safe range; None when they span too many binades (more than :data:`_MAX_PIECES` pieces).

    Every value is a multiple of the grid ``2**g = ulp(low)``. Each is cut into pieces on fixed
    binary units, the same for every row: ``v = A + B + C`` with ``A`` rounded to a multiple of
    ``2**t`` (``t`` 20 bits below ``high``'s binade: ``|A| <= 2**(t + 20)``), ``B`` the rest
    rounded to ``2**(t - 21)`` (``|B| <= 2**(t - 1)``: 20 bits again), and so on down to the grid.
    Then ``sum(v**2) = sum over pieces x, y of sum(x * y)``, each a sum of multiples of
    ``2**(tx + ty)``; over 8,192 rows it stays below ``2**53`` of them, so the float64 dot product
    (BLAS, on one thread) is exact in whatever order it adds. Measured on the sparse bench (65,536
    losses from 0.08 to 6.4: three pieces, six dot products a chunk): 0.21 ms -> 0.12 ms a batch,
    where Dekker's square and two exact sums take 21 passes over the batch.
    """
    grid = math.frexp(low)[1] - 53
    units = [math.frexp(high)[1] - _PIECE_BITS]
    while units[-1] - 1 - grid > _PIECE_BITS:  # the rest after rounding to 2**unit still has > 20 bits
        units.append(units[-1] - _PIECE_BITS - 1)
    if len(units) + 1 > _MAX_PIECES:
        return None
    units.append(grid)  # the unit of the rest
    total = 0
    for start in range(0, values.size, _BLOCK_ROWS):
        block = values[start : start + _BLOCK_ROWS]
        length = min(_DOT_LENGTH, block.size)
        chunks = -(-block.size // length)
        pieces = np.empty((len(units), chunks * length))
        rest = pieces[-1]
        source = block
        if block.size % length:  # the last chunk is filled up with zeros, which add nothing
            rest[: block.size] = block
            rest[block.size :] = 0.0
            source = rest
        for piece, unit in zip(pieces[:-1], units[:-1], strict=True):  # |source| <= 2**(unit + 20)
            round_to_unit(source, unit, out=piece)
            np.subtract(source, piece, out=rest)
            source = rest
        pieces = pieces.reshape(len(units), chunks, length)
        for j, k in combinations_with_replacement(range(len(units)), 2):
            sums = _row_dots(pieces[j], pieces[k])  # exact multiples of 2**(tj + tk), below 2**53 of them
            count = int(np.ldexp(sums, -(units[j] + units[k])).astype(np.int64).sum())
            total += count << (units[j] + units[k] - 2 * grid + (j != k))
    return total << (_UNIT + 2 * grid)


def _row_dots(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``sum(a * b, axis=1)`` as BLAS dot products of each row (float64, 2-D, rows of equal length)."""
    if hasattr(np, "vecdot"):  # NumPy 2: one call for every row
        return np.vecdot(a, b)
    return np.array([np.dot(x, y) for x, y in zip(a, b, strict=True)])


@dataclass(frozen=True)
class _Exact:
    """Row values held exactly as ``sum(parts) * 2**shifts`` (``shifts`` None: 0)."""

    parts: tuple[np.ndarray, ...]
    shifts: np.ndarray | None = None

    @classmethod
    def product(cls, a: np.ndarray, b: np.ndarray) -> _Exact:
        """``a * b`` exactly: Dekker's ``p + e`` in the safe range, else of the normalised factors."""
        if _in_safe_range(a) and _in_safe_range(b):
            return cls(_two_product(a, b))
        fraction_a, exponent_a = np.frexp(a)
        fraction_b, exponent_b = np.frexp(b)
        return cls(_two_product(fraction_a, fraction_b), exponent_a.astype(np.int64) + exponent_b)

    def __getitem__(self, index) -> _Exact:
        return _Exact(tuple(part[index] for part in self.parts), None if self.shifts is None else self.shifts[index])

    def total(self) -> int:
        """Exact sum of the values in units of ``2**-_UNIT``."""
        if self.shifts is None:
            return sum(_sum_units(part) for part in self.parts)
        return sum(_shifted_sum(part, self.shifts) for part in self.parts)

    def dot(self, other: _Exact) -> int:
        """Exact ``sum(self * other)`` in units of ``2**-_UNIT``."""
        shifts = (
            other.shifts if self.shifts is None else self.shifts if other.shifts is None else self.shifts + other.shifts
        )
        if other is self:  # (p + e)**2 = p*p + 2 p*e + e*e, each square on the faster square path
            total = 0
            for j, k in combinations_with_replacement(range(len(self.parts)), 2):
                a, b = self.parts[j], self.parts[k]
                total += _product_sum(a, a if j == k else b, shifts) << (j != k)
            return total
        return sum(_product_sum(a, b, shifts) for a in self.parts for b in other.parts)


def _rows(losses, weights, row_denominators) -> tuple[np.ndarray | None, list[np.ndarray]]:
    """``x`` (``None`` for 1 per row) and the float numerators ``y = fl(a * l)`` of each loss array (resampling).

    As :func:`_exact_rows`: a row of weight 0 has the numerator 0 whatever its loss (``0 * inf = 0``).
    """
    weights = None if weights is None else np.asarray(weights, dtype=np.float64)
    if row_denominators is None:
        row_denominators = weights
    x = None if row_denominators is None else np.asarray(row_denominators, dtype=np.float64)
    zero = None if weights is None or weights.all() else weights == 0
    ys = []
    for values in losses:
        values = np.asarray(values, dtype=np.float64)
        if weights is not None:
            with np.errstate(invalid="ignore", over="ignore"):  # 0 * inf is set to 0 below; an overflow is honest inf
                values = values * weights
            if zero is not None:
                values[zero] = 0.0
        ys.append(values)
    return x, ys


def _exact_rows(losses, weights, row_denominators) -> tuple[np.ndarray | None, list[_Exact], np.ndarray | None]:
    """``x``, the exact numerators ``y = a * l`` of each loss array, and the finite-row mask.

    As :meth:`cecli.numerics.reduce.Partial.of`: a row of weight 0 adds 0 to the numerators whatever
    its loss (``0 * inf = 0``). The mask (``None`` when all are finite) keeps the rows whose
    ``x``, ``a`` and losses are finite; the others make the statistics NaN.
    """
    weights = None if weights is None else np.asarray(weights, dtype=np.float64)
    x = (
        None
        if (weights if row_denominators is None else row_denominators) is None
        else np.asarray(weights if row_denominators is None else row_denominators, dtype=np.float64)
    )
    values = [np.asarray(v, dtype=np.float64) for v in losses]
    if weights is not None:
        zero = weights == 0
        if zero.any():
            values = [np.where(zero, 0.0, v) for v in values]
    finite = _finite_rows(x, values if weights is None else [weights, *values])
    if finite is not None:
        x = None if x is None else x[finite]
        weights = None if weights is None else weights[finite]
        values = [v[finite] for v in values]
    ys = [_Exact((v,)) if weights is None else _Exact.product(weights, v) for v in values]
    return x, ys, finite


def _exact_moments(x: np.ndarray | None, ys: list[_Exact], n: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Exact first and second moments of ``(x, *ys)`` over `n` finite rows, as :func:`_moments`."""
    first = [n << _UNIT if x is None else _sum_units(x)] + [y.total() for y in ys]
    variables = [None if x is None else _Exact((x,)), *ys]
    second = []
    for j, k in combinations_with_replacement(range(len(variables)), 2):
        if j == 0 and x is None:
            second.append(n << _UNIT if k == 0 else first[k])  # x = 1: sum(x*x) = n, sum(x*y) = sum(y)
        else:
            second.append(variables[j].dot(variables[k]))
    return tuple(first), tuple(second)


def _finite_rows(x: np.ndarray | None, ys: list[np.ndarray]) -> np.ndarray | None:
    """Mask of rows whose values are all finite, or ``None`` when they all are."""
    finite = np.ones(ys[0].shape, dtype=bool)
    for values in ys if x is None else [x, *ys]:
        finite &= np.isfinite(values)
    return None if finite.all() else finite


def _participating(x: np.ndarray | None, n: int) -> int:
    """Rows with a non-zero denominator weight: the rows the mean is an average over."""
    return n if x is None else int(np.count_nonzero(x))


def _add_tuples(a: tuple, b: tuple) -> tuple:
    return tuple(p + q for p, q in zip(a, b, strict=True))


def _to_float(value: Fraction) -> float:
    """`value` correctly rounded (infinite beyond the float range)."""
    try:
        return float(value)  # Fraction -> float is int / int: correctly rounded
    except OverflowError:
        return math.inf if value > 0 else -math.inf


def _sqrt(value: Fraction) -> float:
    """``sqrt(value)`` for a non-negative rational, correctly rounded (one rounding)."""
    if value == 0:
        return 0.0
    numerator, denominator = value.numerator, value.denominator
    # scale so the integer square root has at least 60 bits, then round with a sticky bit
    shift = max(0, 122 - (numerator.bit_length() - denominator.bit_length()))
    shift += shift & 1
    quotient, remainder = divmod(numerator << shift, denominator)
    root = math.isqrt(quotient)
    inexact = remainder != 0 or root * root != quotient
    result = float((root << 1) | inexact)  # int -> float rounds to nearest; the sticky bit breaks ties
    return math.ldexp(result, -(shift // 2) - 1)


def z_value(level: float) -> float:
    """The two-sided normal quantile ``z = Phi^-1((1 + level) / 2)``, e.g. 1.959964 for 0.95.

    Raises ``ValueError`` unless ``0 < level < 1``.

    Examples
    --------
    >>> round(z_value(0.95), 6)
    1.959964
    """
    level = float(level)
    if not 0.0 < level < 1.0:
        raise ValueError(f"the confidence `level` must be between 0 and 1 (exclusive); received {level!r}")
    from statistics import NormalDist  # here: statistics (and random) cost 1 ms of --ci's start-up

    return NormalDist().inv_cdf((1.0 + level) / 2.0)


def _normal_p_value(estimate: Fraction, se: float) -> float:
    """Two-sided ``p = 2 * (1 - Phi(|estimate| / se)) = erfc(|z| / sqrt(2))``."""
    if se == 0.0:
        return 1.0 if estimate == 0 else 0.0
    return math.erfc(abs(_to_float(estimate)) / se / math.sqrt(2.0))


def _ratio(first: tuple, second: tuple, n: int, coefficients: tuple[int, ...]) -> tuple[Fraction, Fraction]:
    """The ratio ``R = sum(c . y) / sum(x)`` and ``var(R)`` of the ratio estimator, exactly.

    ``var(R) = n / (n - 1) * sum_i (c . y_i - R x_i)**2 / sum(x)**2`` with the square expanded
    into the exact second moments:
    ``sum (c.y - R x)^2 = sum_jk c_j c_k S(y_j y_k) - 2 R sum_j c_j S(x y_j) + R^2 S(x x)``.
    """
    k = len(first)
    index = {pair: i for i, pair in enumerate(combinations_with_replacement(range(k), 2))}
    c = (0, *coefficients)
    total_x = first[0]
    numerator = sum(cj * s for cj, s in zip(c, first, strict=True))
    ratio = Fraction(numerator, total_x)
    cross = sum(c[j] * c[m] * second[index[min(j, m), max(j, m)]] for j in range(1, k) for m in range(1, k))
    mixed = sum(c[j] * second[index[0, j]] for j in range(1, k))
    squares = cross - 2 * ratio * mixed + ratio * ratio * second[index[0, 0]]
    # squares counts 2**-_UNIT and total_x**2 counts 2**-(2 * _UNIT)
    variance = Fraction(n, n - 1) * squares * (1 << _UNIT) / (Fraction(total_x) * total_x)
    return ratio, variance
