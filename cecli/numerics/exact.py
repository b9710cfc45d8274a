"""Exact sums of float64 arrays, as Python integers of a fixed binary unit.

Every finite float64 is an integer multiple of ``2**-1074``, and every product of two of
them a multiple of ``2**-2148``, so :func:`exact_sum` and :func:`exact_dot` return the
exact sum (of values, of products) as an integer count of ``2**-1127`` (``2**-2254`` for
products), rounded once when a value is read (:func:`_to_float`, :func:`_ratio`).
:class:`cecli.numerics.reduce.Partial` keeps its sums this way, so a mean is the same,
to the last bit, however the input was split.

Why not ``math.fsum``: it is exact for sums but not for the products ``w * l`` (each is
rounded first), and it loops in Python per element.
"""

from __future__ import annotations

import math

import numpy as np

_UNIT_EXPONENT = 1127  # 1074 (smallest subnormal) + 53 (mantissa bits): all scaled exponents >= 0
# Partial keeps its sums in units of 2**-2254: a product of two floats is a multiple of 2**-2148,
# and the binned product path below needs 106 bits under the product of two frexp fractions.
_PRODUCT_EXPONENT = 2 * _UNIT_EXPONENT
_HALF_BITS = 26
_MAX_CHUNK = 1 << 25  # keeps each bincount bin below 2**53, so the float64 bins stay exact
_SPLITTER = 134217729.0  # 2**27 + 1: Veltkamp's split of a float into two 26-bit halves
_SPLIT_SAFE = 2.0**995  # below this, x * _SPLITTER cannot overflow
_PRODUCT_SAFE = 2.0**1020  # below this, the partial products of a split cannot overflow
_PRODUCT_TINY = 2.0**-968  # at or above this, the rounding error of a product is a float (no underflow)


def exact_sum(values: np.ndarray, *, bound: float | None = None, low: float | None = None) -> int:
    """The exact sum of finite float64 `values`, as an integer count of ``2**-1127``.

    Uses error-free extraction (Rump, Ogita and Oishi, "Accurate floating-point
    summation", 2008): with ``sigma = 2**k >= n * max|v|``, ``q = (sigma + v) - sigma``
    is exact, a multiple of ``ulp(sigma) / 2``, and the float sum of all ``q`` is exact;
    ``v - q`` is exact too, at most ``ulp(sigma) / 2`` in magnitude, and is summed the
    same way until nothing is left. Values near the top of the float range take the
    slower exponent-binning path. `bound`, when the caller knows one, is any number
    ``>= max|v|`` (it saves a pass over the values); `low`, any number ``> 0`` with
    every ``|v| >= low`` (losses: :func:`_sum_in_two_parts`, two plain sums).
    """
    values = np.asarray(values, dtype=np.float64).ravel()
    if values.size == 0:
        return 0
    if low is not None and bound is not None and low > 0:
        total = _sum_in_two_parts(values, low, bound)
        if total is not None:
            return total
    n_bits = values.size.bit_length()
    top = max(float(values.max()), -float(values.min())) if bound is None else bound
    rest = values  # the caller's array: the first step writes a new one
    extracted = np.empty_like(values)
    total = 0
    while top:
        exponent = math.frexp(top)[1] + n_bits
        if exponent > 1000:  # sigma + v could overflow
            return total + _binned_sum(rest)
        sigma = math.ldexp(1.0, exponent)
        np.add(rest, sigma, out=extracted)
        np.subtract(extracted, sigma, out=extracted)
        if rest is values:
            rest = values - extracted
        else:
            np.subtract(rest, extracted, out=rest)
        total += _scaled(float(extracted.sum()))
        if not rest.any():
            break
        top = math.ldexp(1.0, exponent - 53)  # |v - q| <= ulp(sigma) / 2
    return total


def round_to_unit(values: np.ndarray, unit: int, out: np.ndarray | None = None) -> np.ndarray:
    """`values` rounded to the nearest multiple of ``2**unit`` (ties to even), exactly, for ``|v| <= 2**(unit + 51)``.

    ``(v + s) - s`` with ``s = 1.5 * 2**(unit + 52)``: the sum lies in ``[2**(unit + 52), 2**(unit + 53))``,
    whose floats are the multiples of ``2**unit``, so the addition rounds ``v`` there, and the subtraction
    is exact. `out` may be a scratch array of the same shape (or `values` itself).

    >>> round_to_unit(np.array([2.6, -2.5, 3.5, 0.25]), 0).tolist()
    [3.0, -2.0, 4.0, 0.0]
    """
    shifter = math.ldexp(1.5, unit + 52)
    out = np.add(values, shifter, out=out)
    out -= shifter
    return out


# _sum_in_two_parts: parts of at most 2**36 units, so a float sum of 2**17 of them (any order) is exact.
_SUM_PART_BITS = 36
_SUM_BLOCK = 1 << 17


def _sum_in_two_parts(values: np.ndarray, low: float, high: float) -> int | None:
    """:func:`exact_sum` of values with ``0 < low <= |v| <= high``; None beyond 20 binades.

    Every value is then a multiple of ``2**g = ulp(low)``. With the unit ``2**t``, ``t`` 36 bits
    below ``high``'s binade, :func:`round_to_unit` rounds ``v`` to ``q``, a multiple of ``2**t``
    (``|q| <= 2**(t + 36)``), and the rest ``v - q`` is an exact
    multiple of ``2**g`` of at most ``2**(t - 1)``: when that is at most ``2**(g + 36)``, the
    plain float sums of ``q`` and of the rest, over up to ``2**17`` values, are exact. Where the
    extraction above takes two rounds and a test for what is left (the sparse bench's losses:
    0.08 to 6.4), this is one round and two sums: 0.094 ms -> 0.035 ms a 65,536-row batch.
    """
    grid = math.frexp(low)[1] - 53
    unit = math.frexp(high)[1] - _SUM_PART_BITS
    if unit - 1 - grid > _SUM_PART_BITS or not (-1000 < grid and unit < 900):
        return None
    total = 0
    for start in range(0, values.size, _SUM_BLOCK):
        block = values[start : start + _SUM_BLOCK]
        rounded = round_to_unit(block, unit)
        rest = np.subtract(block, rounded)
        total += _scaled(float(rounded.sum())) + _scaled(float(rest.sum()))
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
        total += _binned(integers, exponent.astype(np.int64) + (_UNIT_EXPONENT - 53))
    return total


def _binned(integers: np.ndarray, shifts: np.ndarray) -> int:
    """``sum(integers[i] << shifts[i])`` exactly, for int64 `integers` below 2**54 and `shifts` >= 0.

    Each integer is cut into 26-bit halves whose per-shift sums (bincount, in float64) stay
    below 2**53 for up to :data:`_MAX_CHUNK` values, so the bins are exact.
    """
    high = np.bincount(shifts, weights=integers >> _HALF_BITS)
    low = np.bincount(shifts, weights=integers & ((1 << _HALF_BITS) - 1))
    total = 0
    for shift in np.flatnonzero(high).tolist():
        total += int(high[shift]) << (shift + _HALF_BITS)
    for shift in np.flatnonzero(low).tolist():
        total += int(low[shift]) << shift
    return total


def _product_error(a: np.ndarray, b: np.ndarray, product: np.ndarray) -> np.ndarray:
    """Dekker's error-free product: ``a * b - product`` exactly, for ``product = a * b`` (without FMA).

    Veltkamp's split writes ``a = a_high + a_low`` (and ``b`` alike) with halves of at most
    26 significant bits, so each partial product below is exact, and so is the error
    ``((a_high b_high - p) + a_high b_low + a_low b_high) + a_low b_low``. That holds when
    nothing overflows and no partial product underflows; :func:`exact_dot` checks that
    before it relies on it. (In place, to spare the memory traffic of 16 passes.)
    """
    if _significant_bits_at_most_26(a):  # a = a_high: two partial products vanish (integer weights, say)
        scratch = np.multiply(b, _SPLITTER)
        b_high = np.subtract(scratch, b)
        np.subtract(scratch, b_high, out=b_high)
        b_low = np.subtract(b, b_high, out=scratch)
        error = np.multiply(a, b_high, out=b_high)
        error -= product
        error += np.multiply(a, b_low, out=b_low)
        return error
    scratch = np.multiply(a, _SPLITTER)
    a_high = np.subtract(scratch, a)
    np.subtract(scratch, a_high, out=a_high)  # c - (c - a)
    a_low = np.subtract(a, a_high)
    np.multiply(b, _SPLITTER, out=scratch)
    b_high = np.subtract(scratch, b)
    np.subtract(scratch, b_high, out=b_high)
    b_low = np.subtract(b, b_high, out=scratch)
    error = np.multiply(a_high, b_high)
    error -= product
    error += np.multiply(a_high, b_low, out=a_high)
    error += np.multiply(a_low, b_high, out=b_high)
    error += np.multiply(a_low, b_low, out=a_low)
    return error


def exact_dot(a, b, *, bounds: tuple[float, float, float, float] | None = None) -> int:
    """The exact ``sum(a * b)`` of finite float64 arrays, as an integer count of ``2**-2254``.

    Each product is split without rounding into ``p + e`` (Dekker's two-product; ``e = 0``
    when every ``a`` is a power of two, such as weights of 1), and both are summed exactly
    with :func:`exact_sum`. Where a product would overflow or its error underflow
    (weights of 1e300 or 1e-320, say), every factor is first written as ``f * 2**k`` with
    ``f`` in [0.5, 1) (``frexp``), the fractions are multiplied error-free, and the
    integer halves are added per power of two, so any finite values are exact.
    `bounds`, when the caller knows them, are ``(max|a|, max|b|, min|a|, min|b|)`` or
    looser (larger maxima, smaller minima).
    """
    a = np.asarray(a, dtype=np.float64).ravel()
    b = np.asarray(b, dtype=np.float64).ravel()
    if a.size == 0:
        return 0
    if bounds is None:
        bounds = (*_abs_range(a), *_abs_range(b))
        bounds = (bounds[1], bounds[3], bounds[0], bounds[2])
    a_top, b_top, a_low, b_low = bounds
    top = a_top * b_top  # >= every |fl(a * b)|: rounding is monotonic
    if max(a_top, b_top) < _SPLIT_SAFE and top < _PRODUCT_SAFE:
        product = a * b
        if a_low * b_low < _PRODUCT_TINY:  # some product may be tiny: is its error a float?
            with np.errstate(under="ignore"):
                tiny = np.abs(product) < _PRODUCT_TINY
            safe = not tiny.any() or not ((a[tiny] != 0) & (b[tiny] != 0)).any()
        else:
            safe = True
        if safe:
            shift = _PRODUCT_EXPONENT - _UNIT_EXPONENT
            total = exact_sum(product, bound=top)
            if not _powers_of_two(a):  # a power of two times a float is exact here
                error = _product_error(a, b, product)
                total += exact_sum(error, bound=top * 2.0**-53)  # |e| <= ulp(p) / 2 <= 2**-53 |p|
            return total << shift
    return _binned_products(a, b)


def _abs_range(x: np.ndarray) -> tuple[float, float]:
    """(a lower bound of min|x|, max|x|): exact for arrays of one sign, 0 below otherwise."""
    return _abs_range_of(float(x.min()), float(x.max()))


def _abs_range_of(low: float, high: float) -> tuple[float, float]:
    if low >= 0:
        return low, high
    if high <= 0:
        return -high, -low
    return 0.0, max(high, -low)


def _significant_bits_at_most_26(x: np.ndarray) -> bool:
    """Whether every value's low 27 mantissa bits are 0: then Veltkamp's split leaves it whole."""
    return not (x.view(np.int64) & ((1 << 27) - 1)).any()


def _powers_of_two(x: np.ndarray) -> bool:
    """Whether every value is 0 or a normal power of two (its mantissa bits are all 0)."""
    return not (x.view(np.int64) & ((1 << 52) - 1)).any()


def _binned_products(a: np.ndarray, b: np.ndarray) -> int:
    """:func:`exact_dot` for any finite values, through ``frexp`` fractions and exponent bins."""
    total = 0
    for start in range(0, a.size, _MAX_CHUNK):
        fa, ea = np.frexp(a[start : start + _MAX_CHUNK])
        fb, eb = np.frexp(b[start : start + _MAX_CHUNK])
        # fa, fb in [0.5, 1) are multiples of 2**-53, so fa * fb = p + e with p a multiple
        # of 2**-54 below 2**0 and e a multiple of 2**-106 below 2**-54 in magnitude.
        product = fa * fb
        error = _product_error(fa, fb, product)
        exponent = ea.astype(np.int64) + eb
        total += _binned((product * 2.0**54).astype(np.int64), exponent + (_PRODUCT_EXPONENT - 54))
        total += _binned((error * 2.0**106).astype(np.int64), exponent + (_PRODUCT_EXPONENT - 106))
    return total


def _to_float(scaled: int, unit: int = _UNIT_EXPONENT) -> float:
    try:
        return scaled / (1 << unit)  # int / int is correctly rounded in Python
    except OverflowError:  # beyond the largest float: IEEE rounding gives infinity
        return math.inf if scaled > 0 else -math.inf


def _ratio(numerator: int, denominator: int) -> float:
    """``numerator / denominator`` of two exact integers, correctly rounded (inf beyond the float range)."""
    try:
        return numerator / denominator
    except OverflowError:
        return math.inf if (numerator > 0) == (denominator > 0) else -math.inf
