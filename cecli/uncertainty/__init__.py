"""How sure is a loss? Mergeable, exact states for confidence intervals and paired tests.

Every state here summarises a batch of rows, adds with ``+`` (and ``sum()``) across batches,
files and Dask tasks, and gives the same result *to the last bit* however the rows were split
or in which order the states were added: all sums are exact (Python integers counting a fixed
power-of-two unit) and only the final statistic is rounded.

Rows enter as per-sample losses ``l`` with optional sample weights ``a`` and row denominators
``d`` (`row_denominators`, default ``a``): each row contributes the numerator ``y = a * l`` and
the denominator ``x = d`` (1 without weights). ``d`` is the whole per-row denominator; the
`denominators` of :meth:`cecli.numerics.reduce.Partial.of` (and of the scorer) are factors that
it multiplies by ``a``, so a caller passes ``a * denominators`` here. In the normal states ``y``
is the exact product (``0 * anything = 0``), as :meth:`cecli.numerics.reduce.Partial.of` sums it, so
their mean is :attr:`cecli.numerics.reduce.Partial.mean` bit for bit; the resampling states use the
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

from .exact import z_value
from .normal import NormalState
from .spread import Spread

# Imported on first use: --ci's normal interval needs neither the resampled states (whose Poisson table is
# computed in exact decimals when the module loads) nor the paired ones (only compare): 2.5 ms of start-up.
_LAZY = {
    "BootstrapState": "resampling",
    "POISSON_THRESHOLDS": "draws",
    "poisson_counts": "draws",
    "swap_signs": "draws",
    "PairedBootstrapState": "paired",
    "PairedNormalState": "paired",
    "RandomizationState": "paired",
}


def __getattr__(name: str):
    """The resampled and paired states and their helpers, imported on first use."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "BootstrapState",
    "NormalState",
    "POISSON_THRESHOLDS",
    "PairedBootstrapState",
    "PairedNormalState",
    "RandomizationState",
    "Spread",
    "poisson_counts",
    "swap_signs",
    "z_value",
]
