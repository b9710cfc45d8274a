"""The normal method: a mergeable state of exact first and second moments, and its interval."""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING

import numpy as np

from cecli.numerics.exact import _PRODUCT_EXPONENT

from .exact import (
    _UNIT,
    _add_tuples,
    _exact_moments,
    _exact_rows,
    _participating,
    _ratio,
    _sqrt,
    _square_sum,
    _sum_units,
    _to_float,
    z_value,
)

if TYPE_CHECKING:
    from cecli.numerics.reduce import Partial


@dataclass(frozen=True)
class NormalState:
    """Exact sufficient statistics for the normal interval of a weighted mean loss.

    With ``x_i = d_i`` and ``y_i = a_i * l_i`` (see the module docstring) the state keeps
    ``n`` and the exact sums ``Sx, Sy, Sxx, Sxy, Syy`` — for ``a = d = w`` these are the issue's
    ``Σw, Σw·l, Σw², Σw²·l, Σw²·l²``. Every product inside the sums is exact, ``y_i`` itself
    included (Dekker's error-free product ``a l = p + e``; rows far outside ``[2**-400,
    2**400]`` are normalised by powers of two first, so ``w²·l²`` can neither overflow nor
    underflow), so ``Sy`` is the very sum :class:`cecli.numerics.reduce.Partial` divides. The reduced
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
    def of(cls, losses, weights=None, row_denominators=None, *, partial: Partial | None = None) -> NormalState:
        """Summarise per-sample `losses` with optional sample `weights` and `row_denominators`.

        Parameters
        ----------
        losses : array_like, shape (n,)
        weights : array_like, shape (n,), optional
            Sample weights ``a``; the numerator of a row is the exact ``a * l`` (0 when ``a = 0``).
        row_denominators : array_like, shape (n,), optional
            The whole denominator ``d`` of each row (not a factor of the weight, unlike
            ``Partial.of``'s `denominators`); default `weights` (or 1 per row).
        partial : Partial, optional
            ``Partial.of(losses)`` of the same rows, unweighted, when the caller has it: its exact
            ``sum(l)`` and extremes are reused (the state is the same).
        """
        if weights is None and row_denominators is None:
            fast = cls._of_unit(np.asarray(losses, dtype=np.float64), partial)
            if fast is not None:
                return fast
        x, (y,), finite = _exact_rows([losses], weights, row_denominators)
        n = y.parts[0].size
        nonfinite = 0 if finite is None else int(finite.size - n)
        first, second = _exact_moments(x, [y], n)
        return cls(_participating(x, n), nonfinite, first, second)

    @classmethod
    def _of_unit(cls, losses: np.ndarray, partial: Partial | None) -> NormalState | None:
        """:meth:`of` unit weights: ``n``, ``Sy = sum(l)`` and ``Syy = sum(l**2)``; None where it does not apply.

        The general path spends, per 65,536-row batch of the sparse bench, 0.15 ms on ``sum(l)``
        (which ``Partial.of`` has just summed, exactly, in the scorer), 0.03 ms on range checks
        and 0.48 ms on ``sum(l * l)``; here ``sum(l)`` comes from `partial` (or one bounded sum),
        and the square from :func:`_square_sum` (measured: ``Spread.grouped`` 0.52 -> 0.37 ms per batch). Only
        for non-empty, all-finite losses (the others take the general path). Every sum is exact,
        so the state is the general path's to the bit (tests/test_uncertainty.py checks it).
        """
        n = losses.size
        if n == 0 or losses.ndim != 1:
            return None
        if partial is not None and partial.count == n and not (partial.nan or partial.pos_inf or partial.neg_inf):
            low, high = partial.min, partial.max
            total = partial.scaled_sum << (_UNIT - _PRODUCT_EXPONENT)  # sum(l), units 2**-2254 -> 2**-_UNIT
        else:
            low, high, total = float(losses.min()), float(losses.max()), None
        top = max(-low, high)
        if not math.isfinite(top):  # an infinite or NaN loss: the general path's mask and count
            return None
        if total is None:
            total = _sum_units(losses, top)
        units = n << _UNIT
        return cls(n, 0, (units, total), (units, total, _square_sum(losses, low, high)))

    @classmethod
    def grouped(cls, codes, losses, weights=None, row_denominators=None) -> dict:
        """One state per distinct integer code (``--by`` group or class) of a batch."""
        from .resampling import _group_rows  # here: --ci without --by needs no resampling

        losses = np.asarray(losses, dtype=np.float64)
        return {
            code: cls.of(
                losses[index], *(None if v is None else np.asarray(v)[index] for v in (weights, row_denominators))
            )
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
        """``Sy / Sx`` correctly rounded — equal to :attr:`cecli.numerics.reduce.Partial.mean` of the same rows."""
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
