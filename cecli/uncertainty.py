"""How sure is a loss? Mergeable, exact states for confidence intervals and paired tests.

Every state here summarises a batch of rows, adds with ``+`` (and ``sum()``) across batches,
files and Dask tasks, and gives the same result *to the last bit* however the rows were split
or in which order the states were added: all sums are exact (Python integers counting a fixed
power-of-two unit) and only the final statistic is rounded.

Rows enter as per-sample losses ``l`` with optional sample weights ``a`` and denominator
weights ``d`` (default ``a``; the whole per-row denominator, where ``Partial.of``'s
`denominators` are factors it multiplies by ``a``): each row contributes the numerator
``y = a * l`` and the denominator ``x = d`` (1 without weights). In the normal states ``y``
is the exact product (``0 * anything = 0``), as :meth:`cecli.reduce.Partial.of` sums it, so
their mean is :attr:`cecli.reduce.Partial.mean` bit for bit; the resampling states use the
float product ``fl(a * l)`` (a relative change of at most ``2**-53`` per row, far below
their Monte-Carlo error). The reduced value is the ratio ``m = sum(y) / sum(x)``, and each
method below treats rows as independent draws from a
population of rows (the dump is a sample of the data the model will meet):

``normal``
    ``m +/- z * se`` with the ratio-estimator (delta-method) standard error. Cheap, streaming,
    exact; assumes the mean is approximately normal, i.e. many rows and no single row
    dominating the sums.
Poisson bootstrap (:class:`BootstrapState`)
    the percentile interval of ``N`` resampled means; no normality assumption, still
    streaming, costs ``N`` exact sums per group.
Paired tests (:class:`PairedNormalState`, :class:`PairedBootstrapState`,
:class:`RandomizationState`)
    model B against baseline A on the *same* rows; the per-row pairing removes the variation
    of difficulty between rows, which is usually most of it.

When the normal interval is not enough: with few rows (say under 30, or under 30 rows with a
non-zero weight), with heavy tails (a handful of rows with huge losses — confident mistakes —
carrying much of the sum; the sample variance is then itself noisy and the interval too
narrow), or with very unequal weights. Use the bootstrap then, and more rows. No interval
exists when a loss is infinite or NaN: the statistics are NaN.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from decimal import Decimal, localcontext
from fractions import Fraction
from itertools import combinations_with_replacement
from statistics import NormalDist

import numpy as np

from cecli.reduce import exact_sum

# ---------------------------------------------------------------------------------------------
# Exact sums of floats and of products of two floats
# ---------------------------------------------------------------------------------------------

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


def _sum_units(values: np.ndarray) -> int:
    """Exact ``sum(values)`` as an integer count of ``2**-_UNIT``."""
    return exact_sum(values) << (_UNIT - _REDUCE_UNIT)


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
    :func:`cecli.reduce._binned_sum`), so products beyond the float range stay exact.
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
    with :func:`cecli.reduce.exact_sum`; otherwise both factors are first normalised per row
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


def _rows(losses, weights, denominators) -> tuple[np.ndarray | None, list[np.ndarray]]:
    """``x`` (``None`` for 1 per row) and the float numerators ``y = fl(a * l)`` of each loss array (resampling)."""
    weights = None if weights is None else np.asarray(weights, dtype=np.float64)
    if denominators is None:
        denominators = weights
    x = None if denominators is None else np.asarray(denominators, dtype=np.float64)
    ys = []
    for values in losses:
        values = np.asarray(values, dtype=np.float64)
        ys.append(values if weights is None else values * weights)
    return x, ys


def _exact_rows(losses, weights, denominators) -> tuple[np.ndarray | None, list[_Exact], np.ndarray | None]:
    """``x``, the exact numerators ``y = a * l`` of each loss array, and the finite-row mask.

    As :meth:`cecli.reduce.Partial.of`: a row of weight 0 adds 0 to the numerators whatever
    its loss (``0 * inf = 0``). The mask (``None`` when all are finite) keeps the rows whose
    ``x``, ``a`` and losses are finite; the others make the statistics NaN.
    """
    weights = None if weights is None else np.asarray(weights, dtype=np.float64)
    x = (
        None
        if (weights if denominators is None else denominators) is None
        else np.asarray(weights if denominators is None else denominators, dtype=np.float64)
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


# ---------------------------------------------------------------------------------------------
# Rounding once
# ---------------------------------------------------------------------------------------------


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


# ---------------------------------------------------------------------------------------------
# The normal method
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NormalState:
    """Exact sufficient statistics for the normal interval of a weighted mean loss.

    With ``x_i = d_i`` and ``y_i = a_i * l_i`` (see the module docstring) the state keeps
    ``n`` and the exact sums ``Sx, Sy, Sxx, Sxy, Syy`` — for ``a = d = w`` these are the issue's
    ``Σw, Σw·l, Σw², Σw²·l, Σw²·l²``. Every product inside the sums is exact, ``y_i`` itself
    included (Dekker's error-free product ``a l = p + e``; rows far outside ``[2**-400,
    2**400]`` are normalised by powers of two first, so ``w²·l²`` can neither overflow nor
    underflow), so ``Sy`` is the very sum :class:`cecli.reduce.Partial` divides. The reduced
    value and its standard error are

    .. math::

        m = Sy / Sx, \\qquad
        se = \\frac{\\sqrt{\\tfrac{n}{n-1} \\sum_i (y_i - m x_i)^2}}{Sx}, \\qquad
        \\sum_i (y_i - m x_i)^2 = Syy - 2 m Sxy + m^2 Sxx,

    the standard error of a ratio estimator (Cochran, *Sampling Techniques*, 1977, §6.4; the
    delta method). The expansion is evaluated in exact rational arithmetic and rounded once,
    so it cannot cancel catastrophically. For unit weights it is exactly ``s / sqrt(n)`` with
    the ``n - 1`` sample standard deviation ``s``. ``n`` counts the rows with ``x != 0``
    (rows with zero weight are not part of the average).

    Assumptions: rows are independent draws, and ``n`` is large enough for the mean to be
    normal (central limit theorem). The interval is too narrow for heavy-tailed losses
    (a few confident mistakes dominate), for few rows (under about 30), or for very
    unequal weights; use :class:`BootstrapState` then. A NaN or infinite loss (or weight)
    makes every statistic NaN.

    Examples
    --------
    >>> state = NormalState.of([1.0, 2.0]) + NormalState.of([3.0, 4.0])
    >>> state.mean, round(state.stderr, 12)
    (2.5, 0.645497224368)
    """

    count: int = 0
    nonfinite: int = 0
    first: tuple[int, ...] = (0, 0)
    second: tuple[int, ...] = (0, 0, 0)

    @classmethod
    def of(cls, losses, weights=None, denominators=None) -> NormalState:
        """Summarise per-sample `losses` with optional sample `weights` and `denominators`.

        Parameters
        ----------
        losses : array_like, shape (n,)
        weights : array_like, shape (n,), optional
            Sample weights ``a``; the numerator of a row is the exact ``a * l`` (0 when ``a = 0``).
        denominators : array_like, shape (n,), optional
            Denominator weights ``d``; default `weights` (or 1 per row).
        """
        x, (y,), finite = _exact_rows([losses], weights, denominators)
        n = y.parts[0].size
        nonfinite = 0 if finite is None else int(finite.size - n)
        first, second = _exact_moments(x, [y], n)
        return cls(_participating(x, n), nonfinite, first, second)

    @classmethod
    def grouped(cls, codes, losses, weights=None, denominators=None) -> dict:
        """One state per distinct integer code (``--by`` group or class) of a batch."""
        losses = np.asarray(losses, dtype=np.float64)
        return {
            code: cls.of(losses[index], *(None if v is None else np.asarray(v)[index] for v in (weights, denominators)))
            for code, index in _group_rows(codes, losses.size)
        }

    def __add__(self, other: NormalState) -> NormalState:
        if not isinstance(other, NormalState):
            return NotImplemented
        return NormalState(
            self.count + other.count,
            self.nonfinite + other.nonfinite,
            _add_tuples(self.first, other.first),
            _add_tuples(self.second, other.second),
        )

    def __radd__(self, other) -> NormalState:
        return self if other == 0 else self.__add__(other)  # lets sum() start from 0

    def _defined(self) -> bool:
        return not self.nonfinite and self.first[0] != 0

    @property
    def mean(self) -> float:
        """``Sy / Sx`` correctly rounded — equal to :attr:`cecli.reduce.Partial.mean` of the same rows."""
        return _to_float(Fraction(self.first[1], self.first[0])) if self._defined() else math.nan

    @property
    def stderr(self) -> float:
        """The standard error ``se`` of the mean (NaN with fewer than 2 rows or a non-finite loss)."""
        if not self._defined() or self.count < 2:
            return math.nan
        return _sqrt(_ratio(self.first, self.second, self.count, (1,))[1])

    def interval(self, level: float = 0.95) -> tuple[float, float]:
        """The normal interval ``(m - z * se, m + z * se)``, ``z = Phi^-1((1 + level) / 2)``."""
        z = z_value(level)
        mean, se = self.mean, self.stderr
        return mean - z * se, mean + z * se


# ---------------------------------------------------------------------------------------------
# Counter-based random draws
# ---------------------------------------------------------------------------------------------

_BOOTSTRAP_STREAM, _RANDOMIZATION_STREAM = 0, 1


def _poisson_thresholds() -> tuple[int, ...]:
    """``round(F(k) * 2**16)`` for the Poisson(1) CDF ``F``, in exact decimal arithmetic."""
    with localcontext() as context:
        context.prec = 50
        term, cdf, thresholds = Decimal(-1).exp(), Decimal(0), []
        for k in range(1, 30):
            cdf += term
            term /= k
            threshold = int((cdf * 65536).to_integral_value())
            if threshold >= 65536:
                return tuple(thresholds)
            thresholds.append(threshold)
    raise AssertionError("unreachable")  # pragma: no cover


POISSON_THRESHOLDS = _poisson_thresholds()
# count(u) = number of thresholds <= u, for a uniform 16-bit u: Poisson(1) with probabilities
# rounded to multiples of 2**-16 (at most 2**-17 off each, counts 0..8).
_POISSON_TABLE = np.searchsorted(np.asarray(POISSON_THRESHOLDS), np.arange(65536), side="right").astype(np.float64)
_MAX_COUNT = len(POISSON_THRESHOLDS)
_SIGN_TABLE = np.array([1.0, -1.0])


def _check_draws(resamples: int, seed: int) -> None:
    if isinstance(resamples, bool) or not isinstance(resamples, int) or resamples < 1:
        raise ValueError(f"the number of resamples must be a positive integer; received {resamples!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**64:
        raise ValueError(f"`seed` must be an integer from 0 to 2**64 - 1; received {seed!r}")


def _philox(seed: int, stream: int, first_row: int, rows: int, counters: int) -> np.ndarray:
    """Random 64-bit words, shape ``(rows, 4 * counters)``: 4 per Philox counter.

    Philox4x64-10 (Salmon et al., 2011) is a counter-based generator: its output at a counter
    depends only on the key and that counter. Row ``i`` (0-based, global) and column block ``b``
    use the 256-bit counter ``i + 2**64 * b``, so a row's draws depend on neither the batch,
    file or task it is read in nor on how many draws are taken (resample ``r`` of a row is the
    same with 100 or 1000 resamples). The key is ``seed + 2**64 * stream``.
    """
    words = np.empty((rows, 4 * counters), dtype="<u8")
    for block in range(counters):
        generator = np.random.Philox(key=seed + (stream << 64), counter=first_row + (block << 64))
        # consecutive counters are consecutive rows; little-endian words make the 16-bit and 8-bit
        # views below the same on every machine
        words[:, 4 * block : 4 * block + 4] = generator.random_raw(4 * rows).reshape(rows, 4)
    return words


def poisson_counts(seed: int, first_row: int, rows: int, resamples: int) -> np.ndarray:
    """Poisson(1) bootstrap counts of `rows` rows from global row `first_row` (0-based).

    Returns a float64 array of shape ``(rows, resamples)``; entry ``(i, r)`` is how often row
    ``first_row + i`` occurs in resample ``r``. Each count is a 16-bit uniform draw of
    :func:`_philox` turned into a count by inverting the Poisson(1) CDF rounded to
    multiples of ``2**-16`` (:data:`POISSON_THRESHOLDS`): counts 0 to 8, each probability
    within ``2**-17`` of Poisson(1)'s, far below the Monte-Carlo error of any bootstrap.
    """
    _check_draws(resamples, seed)
    counters = -(-resamples // 16)  # 4 words of 4 counts of 16 bits per counter
    raw = _philox(seed, _BOOTSTRAP_STREAM, first_row, rows, counters)
    uniforms = raw.view("<u2").reshape(rows, 16 * counters)[:, :resamples]
    return _POISSON_TABLE.take(uniforms, mode="clip")  # 16-bit indices are always in range; "clip" skips the checks


def swap_signs(seed: int, first_row: int, rows: int, trials: int) -> np.ndarray:
    """Approximate-randomization signs, shape ``(rows, trials)``: -1 (swap A and B) or +1.

    Each is one fair random bit of :func:`_philox` (its own stream), so a row's swaps do
    not depend on batch boundaries either.
    """
    _check_draws(trials, seed)
    counters = -(-trials // 256)  # 4 words of 64 bits per counter
    raw = _philox(seed, _RANDOMIZATION_STREAM, first_row, rows, counters)
    bits = np.unpackbits(raw.view(np.uint8).reshape(rows, 32 * counters), axis=1, bitorder="little")[:, :trials]
    return _SIGN_TABLE.take(bits, mode="clip")


# ---------------------------------------------------------------------------------------------
# Exact resampled sums: sum_i c[i, r] * v[i] for every resample r
# ---------------------------------------------------------------------------------------------

# Every finite float is a sum of at most a few "digits" d * 2**p on the fixed grid
# p = 38 j - 1074 with |d| <= 2**37. A block of B rows times draws |c| <= 8 then gives
# |sum_i c d| <= 8 * B * 2**37 < 2**53, so one float64 matrix product per block is exact in
# any summation order (every partial sum is an integer below 2**53), and the result is the same
# for any split of the rows. Rows with values at or above 2**977 are summed in Python integers.
_DIGIT_BITS = 38
_GRID_BOTTOM = -1074
_TOP_DIGIT = 53  # the highest digit whose rounding constant 1.5 * 2**(p + 52) is a finite float
_HUGE = 2.0 ** (_GRID_BOTTOM + _DIGIT_BITS * _TOP_DIGIT + _DIGIT_BITS - 1)
_BLOCK = 4096
assert _MAX_COUNT * _BLOCK * 2 ** (_DIGIT_BITS - 1) < 2**53
_FLUSH_BLOCKS = 512  # int64 accumulators hold 2**9 block results below 2**53 each


def _digits(values: np.ndarray) -> list[tuple[int, np.ndarray]]:
    """``values`` as exact integer-valued digit columns ``(j, d)`` with ``values = sum d * 2**p_j``."""
    rest = values.copy()
    top = float(np.abs(rest).max()) if rest.size else 0.0
    if top == 0.0:
        return []
    exponent = math.frexp(top)[1]  # top < 2**exponent
    j = max(0, -(-(exponent - _GRID_BOTTOM - _DIGIT_BITS + 1) // _DIGIT_BITS))
    digits = []
    while True:
        position = _GRID_BOTTOM + _DIGIT_BITS * j
        rounding = math.ldexp(1.5, position + 52)  # its ulp is 2**position
        extracted = (rest + rounding) - rounding  # rest rounded to a multiple of 2**position, exactly
        rest -= extracted
        digits.append((j, np.ldexp(extracted, -position)))
        if j == 0 or not rest.any():
            return digits
        j -= 1


def _units(value: float) -> int:
    """A finite float as an integer count of ``2**-1074``."""
    numerator, denominator = value.as_integer_ratio()
    return numerator * ((1 << -_GRID_BOTTOM) // denominator)


def _group_rows(codes, rows: int, counted: np.ndarray | None = None) -> list[tuple[int | None, np.ndarray | slice]]:
    """``(code, row indices)`` per distinct code of the counted rows (one group ``None`` without codes)."""
    if codes is None:
        if counted is None:
            return [(None, slice(0, rows))]
        index = np.flatnonzero(counted)
        return [(None, index)] if index.size else []
    codes = np.asarray(codes)
    if codes.shape != (rows,):
        raise ValueError(f"`codes` must have one entry per row ({rows}); received shape {codes.shape}")
    order = np.argsort(codes, kind="stable")
    if counted is not None:
        order = order[counted[order]]
    ordered = codes[order]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]]) if order.size else np.empty(0, dtype=np.int64)
    ends = np.r_[starts[1:], order.size]
    return [(ordered[a].item(), order[a:b]) for a, b in zip(starts.tolist(), ends.tolist(), strict=True)]


def _resampled_sums(variables: list[np.ndarray | None], rows: int, draws, codes=None, counted=None) -> dict:
    """``{code: [sums of v for v in variables]}`` with the sums ``sum_i draws[i, r] * v[i]`` for every ``r``.

    Exact (see the grid comment above). `draws(start, stop)` returns the float64 draw matrix of
    rows ``start:stop`` of the batch, drawn once and shared by all groups; a variable ``None``
    stands for 1 per row; `codes` (one integer per row, optional) splits the rows into groups;
    rows not `counted` (optional mask) take part in no group.
    """
    huge = np.zeros(rows, dtype=bool)
    for v in variables:
        if v is not None:
            huge |= np.abs(v) >= _HUGE
    totals: dict = {}
    accumulators: dict = {}  # (code, variable, digit) -> int64 sums of at most _FLUSH_BLOCKS blocks
    pending = 0
    for start in range(0, rows, _BLOCK):
        stop = min(rows, start + _BLOCK)
        counts = draws(start, stop)
        resamples = counts.shape[1]
        block_codes = None if codes is None else np.asarray(codes)[start:stop]
        block_counted = None if counted is None else counted[start:stop]
        for code, index in _group_rows(block_codes, stop - start, block_counted):
            group_counts = counts[index]
            group_huge = huge[start:stop][index]
            group_totals = totals.setdefault(code, [[0] * resamples for _ in variables])
            columns, targets = [], []
            for number, v in enumerate(variables):
                values = np.ones(group_counts.shape[0]) if v is None else v[start:stop][index]
                if group_huge.any():
                    values = np.where(group_huge, 0.0, values)
                for j, digit in _digits(values):
                    columns.append(digit)
                    targets.append((code, number, j))
            if columns:
                products = group_counts.T @ np.column_stack(columns)  # exact: see the grid comment above
                for column, key in enumerate(targets):
                    if key not in accumulators:
                        accumulators[key] = np.zeros(resamples, dtype=np.int64)
                    accumulators[key] += products[:, column].astype(np.int64)
            for i in np.flatnonzero(group_huge).tolist():  # rare: values beyond the grid, in Python integers
                row = group_counts[i].astype(np.int64).tolist()
                for number, v in enumerate(variables):
                    value = 1 << -_GRID_BOTTOM if v is None else _units(float(v[start:stop][index][i]))
                    group_totals[number] = [t + c * value for t, c in zip(group_totals[number], row, strict=True)]
        pending += 1
        if pending == _FLUSH_BLOCKS or stop == rows:
            for (code, number, j), sums in accumulators.items():
                shift = _DIGIT_BITS * j
                group = totals[code]
                group[number] = [t + (c << shift) for t, c in zip(group[number], sums.tolist(), strict=True)]
            accumulators.clear()
            pending = 0
    return {code: [_Sums.of(t, _GRID_BOTTOM) for t in sums] for code, sums in totals.items()}


def _poisson_draws(seed: int, first_row: int, resamples: int):
    def draws(start: int, stop: int) -> np.ndarray:
        return poisson_counts(seed, first_row + start, stop - start, resamples)

    return draws


def _resampled_groups(
    losses: list, weights, denominators, codes, counted, first_row: int, draws, *, with_x: bool
) -> dict:
    """``{code: (rows taking part, non-finite rows, resampled sums, variables)}`` of a batch.

    The variables are the numerators ``y`` of each loss array (non-finite rows set to 0: they
    keep their draws but add nothing), then ``x`` if `with_x`. Rows not `counted` keep their
    row numbers (and so every other row its draws) but belong to no group.
    """
    if isinstance(first_row, bool) or not isinstance(first_row, int) or first_row < 0:
        raise ValueError(f"`first_row` must be a non-negative integer (0-based); received {first_row!r}")
    x, ys = _rows(losses, weights, denominators)
    rows = ys[0].size
    if rows == 0:
        return {}
    if counted is not None:
        counted = np.asarray(counted, dtype=bool)
        if counted.shape != (rows,):
            raise ValueError(f"`counted` must have one entry per row ({rows}); received shape {counted.shape}")
        ys = [np.where(counted, y, 0.0) for y in ys]  # what an uncounted row holds does not matter
        x = None if x is None else np.where(counted, x, 0.0)
    finite = _finite_rows(x, ys)
    variables = [_without(y, finite) for y in ys]
    if with_x:
        variables.append(_without(np.ones(rows) if x is None and finite is not None else x, finite))
    sums = _resampled_sums(variables, rows, draws, codes, counted)
    groups = {}
    for code, index in _group_rows(codes, rows, counted):
        size = ys[0][index].size
        nonfinite = 0 if finite is None else int(size - np.count_nonzero(finite[index]))
        parts = [None if v is None else v[index] for v in variables]
        groups[code] = (_participating(None if x is None else x[index], size), nonfinite, sums[code], parts)
    return groups


def _without(values: np.ndarray | None, finite: np.ndarray | None) -> np.ndarray | None:
    """`values` with the non-finite rows set to 0: they keep their draws but add nothing."""
    if values is None or finite is None:
        return values
    return np.where(finite, values, 0.0)


def _percentile_interval(estimates: np.ndarray, level: float) -> tuple[float, float]:
    """Linear-interpolated percentiles ``level/2`` either side (NumPy's and SciPy's default)."""
    alpha = 1.0 - level
    z_value(level)  # validates the level
    estimates = estimates[~np.isnan(estimates)]
    if estimates.size == 0:
        return math.nan, math.nan
    low, high = np.quantile(estimates, [alpha / 2.0, 1.0 - alpha / 2.0])
    return float(low), float(high)


def _divide(numerator: int, denominator: int) -> float:
    try:
        return numerator / denominator  # int / int is correctly rounded in Python
    except OverflowError:
        return math.inf if (numerator > 0) == (denominator > 0) else -math.inf


@dataclass(frozen=True)
class _Sums:
    """Exact per-resample sums ``values[r] * 2**exponent``, in a canonical (smallest) form.

    Sums of losses counted in ``2**-1074`` would carry about a thousand trailing zero bits
    each; dropping them keeps ``N`` sums per group to about ``N`` machine words, and the
    canonical form (some value odd, or all zero with exponent 0) makes equal sums compare equal.
    """

    values: tuple[int, ...]
    exponent: int = 0

    @classmethod
    def of(cls, values: list[int], exponent: int) -> _Sums:
        low = 0
        for v in values:
            low |= v
        if low == 0:
            return cls(tuple(values), 0)
        shift = (low & -low).bit_length() - 1  # trailing zeros common to all values
        return cls(tuple(v >> shift for v in values), exponent + shift)

    def __add__(self, other: _Sums) -> _Sums:
        low = min(self.exponent, other.exponent)
        a, b = self.exponent - low, other.exponent - low
        return _Sums.of([(p << a) + (q << b) for p, q in zip(self.values, other.values, strict=True)], low)

    def __sub__(self, other: _Sums) -> _Sums:
        return self + _Sums(tuple(-v for v in other.values), other.exponent)

    def ratios(self, denominators: _Sums) -> np.ndarray:
        """Each ``self[r] / denominators[r]`` correctly rounded; NaN where the denominator is 0."""
        shift = self.exponent - denominators.exponent
        top, bottom = (shift, 0) if shift >= 0 else (0, -shift)
        return np.array(
            [
                _divide(n << top, d << bottom) if d else math.nan
                for n, d in zip(self.values, denominators.values, strict=True)
            ]
        )


@dataclass(frozen=True)
class BootstrapState:
    """Streaming, mergeable Poisson bootstrap of a weighted mean loss.

    Resample ``r`` gives row ``i`` the weight ``c[i, r] ~ Poisson(1)`` (:func:`poisson_counts`,
    keyed by `seed` and the global row number) and has the mean

    .. math:: m_r = \\frac{\\sum_i c_{ir} y_i}{\\sum_i c_{ir} x_i}.

    The state keeps those two sums exactly for each resample (``2 N`` integers however many
    rows, stored without their common trailing zero bits: about ``2 N`` machine words per
    group), so it merges across batches, files and tasks and gives the same interval for any
    split. The interval is the percentile interval: the ``(1 - level) / 2`` and
    ``(1 + level) / 2`` quantiles of the ``m_r`` (linear interpolation, as
    ``scipy.stats.bootstrap(method="percentile")``); resamples that draw no row with weight
    are left out.

    The Poisson bootstrap (Hanley and MacGibbon, 2006; Chamandy et al., 2012) approximates the
    classic multinomial bootstrap for large ``n`` without knowing ``n`` in advance. It assumes
    independent rows but not normality; it still needs enough rows to represent the tail
    (with a few rows, or a tail carried by a handful of rows, every interval is optimistic).
    Its Monte-Carlo error shrinks like ``1 / sqrt(N)``: use ``N >= 1000`` for a 95 % interval.
    Merging two states that saw the same rows counts them twice: give every row to one state.

    Examples
    --------
    >>> a = BootstrapState.of([1.0, 2.0, 3.0], first_row=0, resamples=200, seed=7)
    >>> b = BootstrapState.of([4.0, 5.0], first_row=3, resamples=200, seed=7)
    >>> (a + b) == BootstrapState.of([1.0, 2.0, 3.0, 4.0, 5.0], first_row=0, resamples=200, seed=7)
    True
    """

    resamples: int
    seed: int
    count: int = 0
    nonfinite: int = 0
    numerators: _Sums | None = field(default=None, repr=False)
    denominators: _Sums | None = field(default=None, repr=False)

    @classmethod
    def of(cls, losses, weights=None, denominators=None, *, first_row: int, resamples: int, seed: int, counted=None):
        """Summarise a batch whose first row is global row `first_row` (0-based, over all files).

        Parameters
        ----------
        losses, weights, denominators : array_like, shape (n,)
            As in :meth:`NormalState.of`.
        first_row : int
            The 0-based number of the batch's first row in the whole dataset (all files, in
            order): it keys the draws, so it must not depend on how the input was split.
        resamples, seed : int
            ``N`` and the key of the draws.
        counted : array_like of bool, shape (n,), optional
            Rows to use; the others (e.g. ``ignore_index`` rows, whatever their loss) still
            occupy their row number, so the draws of the other rows do not move.
        """
        groups = cls.grouped(
            None,
            losses,
            weights,
            denominators,
            first_row=first_row,
            resamples=resamples,
            seed=seed,
            counted=counted,
        )
        return groups.get(None, cls(resamples, seed))

    @classmethod
    def grouped(
        cls, codes, losses, weights=None, denominators=None, *, first_row: int, resamples: int, seed: int, counted=None
    ):
        """One state per distinct integer code (``--by`` group or class) of a batch.

        The draws of a row are its own wherever it goes, so a group's state is the one
        :meth:`of` would give on that group's rows alone (with their global row numbers).
        """
        _check_draws(resamples, seed)
        draws = _poisson_draws(seed, first_row, resamples)
        groups = _resampled_groups([losses], weights, denominators, codes, counted, first_row, draws, with_x=True)
        return {
            code: cls(resamples, seed, count, nonfinite, sums[0], sums[1])
            for code, (count, nonfinite, sums, _) in groups.items()
        }

    def __add__(self, other: BootstrapState) -> BootstrapState:
        if not isinstance(other, BootstrapState):
            return NotImplemented
        _same_draws(self, other)
        if other.numerators is None:
            return self
        if self.numerators is None:
            return other
        return BootstrapState(
            self.resamples,
            self.seed,
            self.count + other.count,
            self.nonfinite + other.nonfinite,
            self.numerators + other.numerators,
            self.denominators + other.denominators,
        )

    def __radd__(self, other) -> BootstrapState:
        return self if other == 0 else self.__add__(other)

    def means(self) -> np.ndarray:
        """The ``N`` resampled means ``m_r`` (NaN for a resample without weight; all NaN if a loss is not finite)."""
        if self.numerators is None or self.nonfinite:
            return np.full(self.resamples, math.nan)
        return self.numerators.ratios(self.denominators)

    def interval(self, level: float = 0.95) -> tuple[float, float]:
        """The percentile interval of :meth:`means` at `level` (e.g. 0.95)."""
        return _percentile_interval(self.means(), level)


def _same_draws(a, b) -> None:
    if (a.resamples, a.seed) != (b.resamples, b.seed):
        raise ValueError(
            "cannot merge states drawn with different resamples or seeds: "
            f"{a.resamples, a.seed} and {b.resamples, b.seed}"
        )


# ---------------------------------------------------------------------------------------------
# Paired comparison of model B against baseline A on the same rows
# ---------------------------------------------------------------------------------------------


def _outcomes(losses_a, losses_b, x, finite) -> tuple[int, int, int]:
    """(wins, ties, losses) of B against A over the rows that take part (finite, ``x != 0``).

    `x` holds the finite rows only (``finite`` is their mask, ``None`` for all rows).
    """
    a = np.asarray(losses_a, dtype=np.float64)
    b = np.asarray(losses_b, dtype=np.float64)
    if finite is not None:
        a, b = a[finite], b[finite]
    if x is not None:
        a, b = a[x != 0], b[x != 0]
    return int(np.count_nonzero(b < a)), int(np.count_nonzero(b == a)), int(np.count_nonzero(b > a))


@dataclass(frozen=True)
class PairedNormalState:
    """Exact sufficient statistics of a paired comparison: B's mean loss minus A's.

    On the same rows, with ``x_i = d_i`` and the exact numerators ``u_i = a_i lA_i`` (baseline A)
    and ``v_i = a_i lB_i`` (candidate B), as :class:`NormalState`, the difference of the two reduced values and
    its standard error are

    .. math::

        D = \\frac{\\sum v - \\sum u}{\\sum x}, \\qquad
        se = \\frac{\\sqrt{\\tfrac{n}{n-1} \\sum_i (v_i - u_i - D x_i)^2}}{\\sum x},

    i.e. :class:`NormalState` applied to the per-row differences ``v_i - u_i``, taken exactly
    (the state keeps the exact moments of ``(x, u, v)``). The two-sided p-value of
    ``H0: D = 0`` is ``p = 2 (1 - Phi(|D| / se))``, and the interval is ``D +/- z se``.
    Pairing removes the variation of difficulty between rows, so this is far tighter than
    comparing two separate intervals. Assumptions are those of :class:`NormalState`, on the
    differences: the test is unreliable with few rows or when a few rows carry most of the
    difference; use :class:`PairedBootstrapState` or :class:`RandomizationState` then.
    ``wins``/``ties``/``losses`` count the rows (with ``x != 0``) where B's loss is
    lower/equal/higher than A's.

    Examples
    --------
    >>> state = PairedNormalState.of([1.0, 2.0, 3.0], [0.5, 1.0, 3.5])
    >>> state.difference, state.wins, state.ties, state.losses
    (-0.3333333333333333, 2, 0, 1)
    """

    count: int = 0
    nonfinite: int = 0
    first: tuple[int, ...] = (0, 0, 0)
    second: tuple[int, ...] = (0,) * 6
    wins: int = 0
    ties: int = 0
    losses: int = 0

    @classmethod
    def of(cls, losses_a, losses_b, weights=None, denominators=None) -> PairedNormalState:
        """Summarise paired per-sample losses of A (baseline) and B (candidate) on the same rows."""
        x, ys, finite = _exact_rows([losses_a, losses_b], weights, denominators)
        n = ys[0].parts[0].size
        outcomes = _outcomes(losses_a, losses_b, x, finite)
        nonfinite = 0 if finite is None else int(finite.size - n)
        first, second = _exact_moments(x, ys, n)
        return cls(_participating(x, n), nonfinite, first, second, *outcomes)

    @classmethod
    def grouped(cls, codes, losses_a, losses_b, weights=None, denominators=None) -> dict:
        """One state per distinct integer code of a batch."""
        losses_a, losses_b = np.asarray(losses_a, dtype=np.float64), np.asarray(losses_b, dtype=np.float64)
        return {
            code: cls.of(
                losses_a[index],
                losses_b[index],
                *(None if v is None else np.asarray(v)[index] for v in (weights, denominators)),
            )
            for code, index in _group_rows(codes, losses_a.size)
        }

    def __add__(self, other: PairedNormalState) -> PairedNormalState:
        if not isinstance(other, PairedNormalState):
            return NotImplemented
        return PairedNormalState(
            self.count + other.count,
            self.nonfinite + other.nonfinite,
            _add_tuples(self.first, other.first),
            _add_tuples(self.second, other.second),
            self.wins + other.wins,
            self.ties + other.ties,
            self.losses + other.losses,
        )

    def __radd__(self, other) -> PairedNormalState:
        return self if other == 0 else self.__add__(other)

    def _defined(self) -> bool:
        return not self.nonfinite and self.first[0] != 0

    def _exact_difference(self) -> Fraction:
        return Fraction(self.first[2] - self.first[1], self.first[0])

    @property
    def difference(self) -> float:
        """``D``, correctly rounded (NaN when undefined)."""
        return _to_float(self._exact_difference()) if self._defined() else math.nan

    @property
    def stderr(self) -> float:
        """The standard error of ``D`` (NaN with fewer than 2 rows or a non-finite loss)."""
        if not self._defined() or self.count < 2:
            return math.nan
        return _sqrt(_ratio(self.first, self.second, self.count, (-1, 1))[1])

    def interval(self, level: float = 0.95) -> tuple[float, float]:
        """``(D - z se, D + z se)`` with ``z = Phi^-1((1 + level) / 2)``."""
        z = z_value(level)
        difference, se = self.difference, self.stderr
        return difference - z * se, difference + z * se

    def p_value(self) -> float:
        """Two-sided normal p-value of ``H0: D = 0`` (1 when ``D = se = 0``, 0 when only ``se = 0``)."""
        se = self.stderr
        if math.isnan(se):
            return math.nan
        return _normal_p_value(self._exact_difference(), se)


@dataclass(frozen=True)
class PairedBootstrapState:
    """Streaming paired Poisson bootstrap of ``D`` = B's mean loss minus A's.

    The same counts ``c[i, r]`` (:func:`poisson_counts`) weight both models' rows, so each
    resample keeps the pairing: ``D_r = (sum c v - sum c u) / sum c x`` (exact sums per
    resample, as in :class:`BootstrapState`). The interval is the percentile interval of the
    ``D_r``. The two-sided p-value is the sign-flip share, doubled:

    .. math:: p = \\min\\Bigl(1, \\frac{2 (\\min(\\#\\{D_r \\le 0\\}, \\#\\{D_r \\ge 0\\}) + 1)}{N + 1}\\Bigr),

    over the ``N`` resamples that drew a row with weight. It is the smallest ``1 - level`` at
    which the percentile interval (approximately) excludes 0, so the p-value and the interval
    agree; the ``+1`` keeps ``p >= 2 / (N + 1)`` (a finite number of resamples cannot show more).
    Identical models give ``p = 1``. This is not sacrebleu's ``--paired-bs`` p-value, which
    compares the centred absolute resampled differences with the observed one; the sign-flip
    share answers the same question ("could the sign of D be chance?") and is dual to the
    reported interval. Comparisons with 0 are exact (integer sums). Assumptions are those of :class:`BootstrapState`.
    """

    resamples: int
    seed: int
    count: int = 0
    nonfinite: int = 0
    difference_sums: _Sums | None = field(default=None, repr=False)  # sum_i c[i, r] (v_i - u_i)
    denominators: _Sums | None = field(default=None, repr=False)

    @classmethod
    def of(
        cls,
        losses_a,
        losses_b,
        weights=None,
        denominators=None,
        *,
        first_row: int,
        resamples: int,
        seed: int,
        counted=None,
    ):
        """Summarise a batch of paired losses (arguments as in :meth:`BootstrapState.of`)."""
        groups = cls.grouped(
            None,
            losses_a,
            losses_b,
            weights,
            denominators,
            first_row=first_row,
            resamples=resamples,
            seed=seed,
            counted=counted,
        )
        return groups.get(None, cls(resamples, seed))

    @classmethod
    def grouped(
        cls,
        codes,
        losses_a,
        losses_b,
        weights=None,
        denominators=None,
        *,
        first_row: int,
        resamples: int,
        seed: int,
        counted=None,
    ):
        """One state per distinct integer code of a batch (see :meth:`BootstrapState.grouped`)."""
        _check_draws(resamples, seed)
        draws = _poisson_draws(seed, first_row, resamples)
        pairs = [losses_a, losses_b]
        groups = _resampled_groups(pairs, weights, denominators, codes, counted, first_row, draws, with_x=True)
        return {
            code: cls(resamples, seed, count, nonfinite, sums[1] - sums[0], sums[2])
            for code, (count, nonfinite, sums, _) in groups.items()
        }

    def __add__(self, other: PairedBootstrapState) -> PairedBootstrapState:
        if not isinstance(other, PairedBootstrapState):
            return NotImplemented
        _same_draws(self, other)
        if other.difference_sums is None:
            return self
        if self.difference_sums is None:
            return other
        return PairedBootstrapState(
            self.resamples,
            self.seed,
            self.count + other.count,
            self.nonfinite + other.nonfinite,
            self.difference_sums + other.difference_sums,
            self.denominators + other.denominators,
        )

    def __radd__(self, other) -> PairedBootstrapState:
        return self if other == 0 else self.__add__(other)

    def differences(self) -> np.ndarray:
        """The ``N`` resampled differences ``D_r`` (NaN for a resample without weight)."""
        if self.difference_sums is None or self.nonfinite:
            return np.full(self.resamples, math.nan)
        return self.difference_sums.ratios(self.denominators)

    def interval(self, level: float = 0.95) -> tuple[float, float]:
        """The percentile interval of :meth:`differences`."""
        return _percentile_interval(self.differences(), level)

    def p_value(self) -> float:
        """The doubled sign-flip share (see the class docstring); NaN when undefined."""
        if self.difference_sums is None or self.nonfinite:
            return math.nan
        signs = [
            (v > 0) - (v < 0)
            for v, d in zip(self.difference_sums.values, self.denominators.values, strict=True)
            if d > 0  # every denominator weight is >= 0, so the sign of D_r is the numerator's
        ]
        if not signs:
            return math.nan
        at_most_zero = sum(s <= 0 for s in signs)
        at_least_zero = sum(s >= 0 for s in signs)
        return min(1.0, 2.0 * (min(at_most_zero, at_least_zero) + 1) / (len(signs) + 1))


@dataclass(frozen=True)
class RandomizationState:
    """Streaming paired approximate randomization test of ``H0``: A and B are exchangeable.

    In trial ``t`` each row's two losses are swapped with probability 1/2 (:func:`swap_signs`,
    ``s[i, t] = -1`` for a swap), which flips the sign of the row's contribution to the
    difference of the means; with ``Sx`` unchanged the trial's difference is
    ``D_t = sum_i s[i, t] (v_i - u_i) / Sx``. The two-sided p-value is

    .. math:: p = \\frac{\\#\\{t : |D_t| \\ge |D|\\} + 1}{N + 1}

    (Noreen, *Computer-Intensive Methods for Testing Hypotheses*, 1989; Riezler and Maxwell,
    2005), compared exactly on the integer sums. It is an exact-level test for any ``N``:
    identical models give ``p = 1`` and a difference no trial reaches gives ``1 / (N + 1)``.
    sacrebleu's ``--paired-ar`` counts ``>`` instead of ``>=``, which gives identical
    systems ``p = 1 / (N + 1)``; ``>=`` is the valid randomization p-value. The test assumes
    only that rows are independent; it tests exchangeability (a null stronger than "equal
    means"), and answers "is there a difference", not "how large".
    """

    trials: int
    seed: int
    count: int = 0
    nonfinite: int = 0
    sums: _Sums | None = field(default=None, repr=False)  # (sum(v - u), *[sum_i s[i, t] (v_i - u_i) for t])

    @property
    def resamples(self) -> int:  # the name _same_draws checks
        return self.trials

    @classmethod
    def of(
        cls,
        losses_a,
        losses_b,
        weights=None,
        denominators=None,
        *,
        first_row: int,
        trials: int,
        seed: int,
        counted=None,
    ):
        """Summarise a batch of paired losses (arguments as in :meth:`BootstrapState.of`)."""
        groups = cls.grouped(
            None,
            losses_a,
            losses_b,
            weights,
            denominators,
            first_row=first_row,
            trials=trials,
            seed=seed,
            counted=counted,
        )
        return groups.get(None, cls(trials, seed))

    @classmethod
    def grouped(
        cls,
        codes,
        losses_a,
        losses_b,
        weights=None,
        denominators=None,
        *,
        first_row: int,
        trials: int,
        seed: int,
        counted=None,
    ):
        """One state per distinct integer code of a batch (see :meth:`BootstrapState.grouped`)."""
        _check_draws(trials, seed)

        def draws(start: int, stop: int) -> np.ndarray:
            return swap_signs(seed, first_row + start, stop - start, trials)

        pairs = [losses_a, losses_b]
        groups = _resampled_groups(pairs, weights, denominators, codes, counted, first_row, draws, with_x=False)
        states = {}
        for code, (count, nonfinite, sums, (u, v)) in groups.items():
            observed = _Sums.of([exact_sum(v) - exact_sum(u)], -_REDUCE_UNIT)
            states[code] = cls(trials, seed, count, nonfinite, _concat(observed, sums[1] - sums[0]))
        return states

    def __add__(self, other: RandomizationState) -> RandomizationState:
        if not isinstance(other, RandomizationState):
            return NotImplemented
        _same_draws(self, other)
        if other.sums is None:
            return self
        if self.sums is None:
            return other
        return RandomizationState(
            self.trials, self.seed, self.count + other.count, self.nonfinite + other.nonfinite, self.sums + other.sums
        )

    def __radd__(self, other) -> RandomizationState:
        return self if other == 0 else self.__add__(other)

    def p_value(self) -> float:
        """``(#{|D_t| >= |D|} + 1) / (N + 1)``; NaN when no rows or a loss is not finite."""
        if self.sums is None or self.nonfinite:
            return math.nan
        observed, *swapped = self.sums.values
        extreme = sum(abs(s) >= abs(observed) for s in swapped)
        return (extreme + 1) / (self.trials + 1)


def _concat(first: _Sums, rest: _Sums) -> _Sums:
    """The sums of `first` followed by those of `rest`, on a common exponent."""
    low = min(first.exponent, rest.exponent)
    values = [v << (first.exponent - low) for v in first.values] + [v << (rest.exponent - low) for v in rest.values]
    return _Sums.of(values, low)
