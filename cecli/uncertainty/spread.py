"""The uncertainty of one reduced value as the loss commands report it (``--ci``, ``--bootstrap``).

A :class:`Spread` holds the states of one set of rows (the whole input, a ``--by`` group or a
``--per-class`` class): always the :class:`NormalState` (``stderr``), and the
:class:`BootstrapState` under ``--bootstrap``. It adds with ``+`` like every state, so batches,
files and Dask tasks merge exactly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from .exact import z_value
from .normal import NormalState

if TYPE_CHECKING:
    from .resampling import BootstrapState


def row_denominators(weights, denominators, n: int):
    """Each row's whole denominator ``x`` of the reduced mean, from the scorer's mean `denominators`.

    ``x = a * d`` for sample weights ``a`` (None: 1 per row) and the per-row factors ``d`` that
    :meth:`Partial.of <cecli.numerics.reduce.Partial.of>` multiplies by ``a`` (PyTorch's class weight
    of the label); ``x = 1`` for each of the `n` rows when `denominators` is ``"count"`` (Keras' and
    PyTorch's mean over rows); None when there are no factors (the states then take ``a``, or 1).
    The product is the float ``fl(a * d)``; one that overflows is ``inf`` and makes the interval
    null, as an infinite loss would.

    >>> row_denominators(np.array([2.0, 0.5]), np.array([3.0, 4.0]), 2).tolist()
    [6.0, 2.0]
    >>> row_denominators(None, "count", 3).tolist()
    [1.0, 1.0, 1.0]
    >>> row_denominators(np.array([2.0]), None, 1) is None
    True
    """
    if denominators is None:
        return None
    if isinstance(denominators, str):  # "count": the mean divides by the number of rows
        return np.ones(n)
    with np.errstate(over="ignore"):  # an infinite share makes the interval null, as a loss would
        return denominators if weights is None else weights * denominators


@dataclass(frozen=True)
class Spread:
    """The normal state of a set of rows and, under ``--bootstrap``, its bootstrap state."""

    normal: NormalState = NormalState()
    bootstrap: BootstrapState | None = None

    @classmethod
    def grouped(
        cls,
        codes,
        losses,
        weights,
        row_denominators,
        counted,
        *,
        first_row: int,
        resamples=None,
        seed=None,
        partial=None,
    ) -> dict:
        """``{code: Spread}`` of a batch (one entry ``None`` when `codes` is None).

        Parameters
        ----------
        codes : array_like of int, shape (n,), or None
            The group (or class) of each row; None for one group of every row.
        losses, weights : array_like, shape (n,)
            Per-sample losses and sample weights ``a`` (None: 1 per row); the numerator of a row
            is ``a * l``.
        row_denominators : array_like, shape (n,), or None
            The whole per-row denominator ``x`` of the reduced mean (None: ``a``, or 1): the
            product of the weight and PyTorch's class weight, or 1 per row for a mean over rows.
        counted : array_like of bool, shape (n,)
            The rows that count (not ``--ignore-index``); the others keep their row number.
        first_row : int
            The global 0-based row number of the batch's first row (over all files, in order).
        resamples, seed : int, optional
            ``--bootstrap N`` and ``--seed S``; no bootstrap state without them.
        partial : Partial, optional
            ``Partial.of`` of the counted rows' losses, unweighted, when the caller has it (see
            :meth:`NormalState.of`); used for one group of every row (`codes` None).
        """
        losses = np.asarray(losses, dtype=np.float64)
        every = bool(counted.all())

        def only(values):
            return values if values is None or every else np.asarray(values)[counted]

        if codes is None:
            normal = {None: NormalState.of(only(losses), only(weights), only(row_denominators), partial=partial)}
        else:
            normal = NormalState.grouped(only(np.asarray(codes)), only(losses), only(weights), only(row_denominators))
        if resamples is None:
            return {code: cls(state) for code, state in normal.items()}
        from .resampling import BootstrapState  # here: the normal interval needs no resampling

        boot = BootstrapState.grouped(
            codes,
            losses,
            weights,
            row_denominators,
            first_row=first_row,
            resamples=resamples,
            seed=seed,
            counted=None if every else counted,
        )
        return {code: cls(state, boot.get(code, BootstrapState(resamples, seed))) for code, state in normal.items()}

    def __add__(self, other: Spread) -> Spread:
        if not isinstance(other, Spread):
            return NotImplemented
        boot = None if self.bootstrap is None else self.bootstrap + other.bootstrap
        return Spread(self.normal + other.normal, boot)

    @property
    def stderr(self) -> float:
        """The normal method's standard error of the mean (NaN when it has none)."""
        return self.normal.stderr

    def interval(self, value: float | None, level: float) -> tuple[float, float]:
        """``(low, high)``: ``value -/+ z * stderr`` (normal), or the bootstrap's percentile interval.

        NaN when there is none: a loss is infinite or NaN, or fewer than 2 rows have weight.
        """
        if self.bootstrap is not None:
            if self.normal.nonfinite or self.normal.count < 2:
                return math.nan, math.nan
            return self.bootstrap.interval(level)
        se = self.stderr
        if value is None or math.isnan(se):
            return math.nan, math.nan
        z = z_value(level)
        return value - z * se, value + z * se
