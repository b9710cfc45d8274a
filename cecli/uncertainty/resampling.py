"""Resampling: the exact resampled sums of a Poisson bootstrap (draws from :mod:`.draws`), mergeable across
batches, files and machines (:class:`BootstrapState`)."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from cecli.numerics.exact import round_to_unit

from .draws import _MAX_COUNT, _check_draws, poisson_counts
from .exact import _finite_rows, _participating, _rows, z_value

# Every finite float is a sum of at most a few "digits" d * 2**p on the fixed grid
# p = 38 j - 1074 with |d| <= 2**37. A block of B rows times draws |c| <= 8 then gives
# |sum_i c d| <= 8 * B * 2**37 < 2**53, so one float64 matrix product per block is exact in
# any summation order (every partial sum is an integer below 2**53), and the result is the same
# for any split of the rows. Rows with values at or above 2**977 are summed in Python integers.
_DIGIT_BITS = 38


_GRID_BOTTOM = -1074


_TOP_DIGIT = 53  # the highest digit whose round_to_unit constant 1.5 * 2**(p + 52) is a finite float


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
        extracted = round_to_unit(rest, position)
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
    losses: list, weights, row_denominators, codes, counted, first_row: int, draws, *, with_x: bool
) -> dict:
    """``{code: (rows taking part, non-finite rows, resampled sums, variables)}`` of a batch.

    The variables are the numerators ``y`` of each loss array (non-finite rows set to 0: they
    keep their draws but add nothing), then ``x`` if `with_x`. Rows not `counted` keep their
    row numbers (and so every other row its draws) but belong to no group.
    """
    if isinstance(first_row, bool) or not isinstance(first_row, int) or first_row < 0:
        raise ValueError(f"`first_row` must be a non-negative integer (0-based); received {first_row!r}")
    x, ys = _rows(losses, weights, row_denominators)
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

    def ratios(self, divisors: _Sums) -> np.ndarray:
        """Each ``self[r] / divisors[r]`` correctly rounded; NaN where the divisor is 0."""
        shift = self.exponent - divisors.exponent
        top, bottom = (shift, 0) if shift >= 0 else (0, -shift)
        return np.array(
            [
                _divide(n << top, d << bottom) if d else math.nan
                for n, d in zip(self.values, divisors.values, strict=True)
            ]
        )


class _Resampled:
    """What the resampled states share (:class:`BootstrapState`, and the paired states of :mod:`.paired`).

    Each is a frozen dataclass ``(draws, seed, count, nonfinite, *sums)``: the number of draws
    (its field is named `_DRAWS`), their key, the rows taking part, the rows with a non-finite loss
    and the exact sums (the fields `_SUMS`, ``None`` until a batch had rows). A subclass says how its
    rows are drawn (`_draws`) and turns a group's sums into a state (`_state`); `_grouped` does
    the rest, and ``+`` merges states of the same draws.
    """

    _DRAWS: ClassVar[str] = "resamples"
    _SUMS: ClassVar[tuple[str, ...]]
    _WITH_X: ClassVar[bool] = True  # whether the denominators x are resampled too

    @classmethod
    def _grouped(cls, codes, losses: list, weights, row_denominators, first_row: int, draws: int, seed: int, counted):
        """``{code: state}`` of a batch: the draws of `losses` (one array, or A's and B's) made once, shared by
        the groups."""
        _check_draws(draws, seed)
        made = cls._draws(seed, first_row, draws)
        groups = _resampled_groups(
            losses, weights, row_denominators, codes, counted, first_row, made, with_x=cls._WITH_X
        )
        return {
            code: cls._state(draws, seed, count, nonfinite, sums, variables)
            for code, (count, nonfinite, sums, variables) in groups.items()
        }

    @classmethod
    def _draws(cls, seed: int, first_row: int, draws: int):
        return _poisson_draws(seed, first_row, draws)

    def __add__(self, other):
        if not isinstance(other, type(self)):
            return NotImplemented
        _same_draws(self, other)
        if getattr(other, self._SUMS[0]) is None:
            return self
        if getattr(self, self._SUMS[0]) is None:
            return other
        return dataclasses.replace(
            self,
            count=self.count + other.count,
            nonfinite=self.nonfinite + other.nonfinite,
            **{name: getattr(self, name) + getattr(other, name) for name in self._SUMS},
        )

    def __radd__(self, other):
        return self if other == 0 else self.__add__(other)


@dataclass(frozen=True)
class BootstrapState(_Resampled):
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
    numerators: _Sums | None = field(default=None, repr=False)  # sum_i c[i, r] y_i
    denominators: _Sums | None = field(default=None, repr=False)  # sum_i c[i, r] x_i

    _SUMS = ("numerators", "denominators")

    @classmethod
    def of(
        cls, losses, weights=None, row_denominators=None, *, first_row: int, resamples: int, seed: int, counted=None
    ):
        """Summarise a batch whose first row is global row `first_row` (0-based, over all files).

        Parameters
        ----------
        losses, weights, row_denominators : array_like, shape (n,)
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
        groups = cls._grouped(None, [losses], weights, row_denominators, first_row, resamples, seed, counted)
        return groups.get(None, cls(resamples, seed))

    @classmethod
    def grouped(
        cls,
        codes,
        losses,
        weights=None,
        row_denominators=None,
        *,
        first_row: int,
        resamples: int,
        seed: int,
        counted=None,
    ):
        """One state per distinct integer code (``--by`` group or class) of a batch.

        The draws of a row are its own wherever it goes, so a group's state is the one
        :meth:`of` would give on that group's rows alone (with their global row numbers).
        """
        return cls._grouped(codes, [losses], weights, row_denominators, first_row, resamples, seed, counted)

    @classmethod
    def _state(cls, resamples: int, seed: int, count: int, nonfinite: int, sums: list, variables: list):
        return cls(resamples, seed, count, nonfinite, sums[0], sums[1])

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
