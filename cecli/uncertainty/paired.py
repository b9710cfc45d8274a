"""Paired comparison of model B against baseline A on the same rows: normal, bootstrap and approximate
randomization (:class:`RandomizationState`)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np

from cecli.numerics.exact import exact_sum

from .draws import swap_signs
from .exact import (
    _REDUCE_UNIT,
    _add_tuples,
    _exact_moments,
    _exact_rows,
    _normal_p_value,
    _participating,
    _ratio,
    _sqrt,
    _to_float,
    z_value,
)
from .resampling import _group_rows, _percentile_interval, _Resampled, _Sums


def _outcomes(losses_a, losses_b, x) -> tuple[int, int, int]:
    """(wins, ties, losses) of B against A: the rows where B's loss is lower, equal or higher than A's.

    Every row with weight takes part (``x != 0``; every row when `x` is None), also where a loss is
    infinite: an infinite loss is higher than every finite one, so B's infinite loss against A's finite
    one is a loss for B, A's infinite loss against B's finite one a win, and two infinite losses a tie
    (a model that puts probability 0 on the truth has lost that row, whatever the mean says). A row
    where either loss (or ``x``) is NaN has no order and counts in none of the three.
    """
    a = np.asarray(losses_a, dtype=np.float64)
    b = np.asarray(losses_b, dtype=np.float64)
    if x is not None:
        x = np.asarray(x, dtype=np.float64)
        weighted = (x != 0) & ~np.isnan(x)
        a, b = a[weighted], b[weighted]
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
    lower/equal/higher than A's, infinite losses included (higher than any finite loss; two
    infinite losses tie), while ``D`` is then undefined; rows with a NaN loss count in none.

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
    def of(cls, losses_a, losses_b, weights=None, row_denominators=None) -> PairedNormalState:
        """Summarise paired per-sample losses of A (baseline) and B (candidate) on the same rows."""
        x, ys, finite = _exact_rows([losses_a, losses_b], weights, row_denominators)
        n = ys[0].parts[0].size
        outcomes = _outcomes(losses_a, losses_b, weights if row_denominators is None else row_denominators)
        nonfinite = 0 if finite is None else int(finite.size - n)
        first, second = _exact_moments(x, ys, n)
        return cls(_participating(x, n), nonfinite, first, second, *outcomes)

    @classmethod
    def grouped(cls, codes, losses_a, losses_b, weights=None, row_denominators=None) -> dict:
        """One state per distinct integer code of a batch."""
        losses_a, losses_b = np.asarray(losses_a, dtype=np.float64), np.asarray(losses_b, dtype=np.float64)
        return {
            code: cls.of(
                losses_a[index],
                losses_b[index],
                *(None if v is None else np.asarray(v)[index] for v in (weights, row_denominators)),
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


class _PairedResampled(_Resampled):
    """The constructors of the paired resampled states, whose number of draws is `resamples`
    (:class:`PairedBootstrapState`) or `trials` (:class:`RandomizationState`): their `_DRAWS`."""

    @classmethod
    def of(
        cls,
        losses_a,
        losses_b,
        weights=None,
        row_denominators=None,
        *,
        first_row: int,
        seed: int,
        counted=None,
        **draws,
    ):
        """Summarise a batch of paired losses of A and B on the same rows (arguments as in
        :meth:`BootstrapState.of`; the number of draws is given as ``resamples=N`` or ``trials=N``, as the class
        names it)."""
        n = cls._count(draws)
        groups = cls._grouped(None, [losses_a, losses_b], weights, row_denominators, first_row, n, seed, counted)
        return groups.get(None, cls(n, seed))

    @classmethod
    def grouped(
        cls,
        codes,
        losses_a,
        losses_b,
        weights=None,
        row_denominators=None,
        *,
        first_row: int,
        seed: int,
        counted=None,
        **draws,
    ):
        """One state per distinct integer code of a batch (see :meth:`BootstrapState.grouped`)."""
        n = cls._count(draws)
        return cls._grouped(codes, [losses_a, losses_b], weights, row_denominators, first_row, n, seed, counted)

    @classmethod
    def _count(cls, draws: dict) -> int:
        """The number of draws, given under the class's own name (`_DRAWS`)."""
        if list(draws) != [cls._DRAWS]:
            given = ", ".join(f"`{name}`" for name in draws) or "none"
            raise TypeError(f"{cls.__name__} takes the number of draws as `{cls._DRAWS}`; received {given}")
        return draws[cls._DRAWS]


@dataclass(frozen=True)
class PairedBootstrapState(_PairedResampled):
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
    denominators: _Sums | None = field(default=None, repr=False)  # sum_i c[i, r] x_i

    _SUMS = ("difference_sums", "denominators")

    @classmethod
    def _state(cls, resamples: int, seed: int, count: int, nonfinite: int, sums: list, variables: list):
        return cls(resamples, seed, count, nonfinite, sums[1] - sums[0], sums[2])

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
class RandomizationState(_PairedResampled):
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

    _DRAWS = "trials"
    _SUMS = ("sums",)
    _WITH_X = False  # a swap leaves the denominator as it is

    @property
    def resamples(self) -> int:  # the name _same_draws checks
        return self.trials

    @classmethod
    def _draws(cls, seed: int, first_row: int, trials: int):
        def draws(start: int, stop: int) -> np.ndarray:
            return swap_signs(seed, first_row + start, stop - start, trials)

        return draws

    @classmethod
    def _state(cls, trials: int, seed: int, count: int, nonfinite: int, sums: list, variables: list):
        u, v = variables
        observed = _Sums.of([exact_sum(v) - exact_sum(u)], -_REDUCE_UNIT)
        return cls(trials, seed, count, nonfinite, _concat(observed, sums[1] - sums[0]))

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
