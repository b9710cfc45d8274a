"""The numbers: pure NumPy per-sample losses, array checks, exact sums and mergeable reductions.

:mod:`~cecli.numerics.core` (the six losses of the CLI), :mod:`~cecli.numerics.family`
(focal, generalized cross-entropy, NLL), :mod:`~cecli.numerics.validate` (array checks
that report the first bad index), :mod:`~cecli.numerics.exact` (exact sums and dot
products) and :mod:`~cecli.numerics.reduce` (:class:`~cecli.numerics.reduce.Partial` and
the other mergeable states). Nothing here reads files or knows about the CLI; these
modules import only NumPy, the standard library and :mod:`cecli.errors`.
"""

# Here, not in core, so that the options (read at start-up) take them without importing NumPy.
DEFAULT_EPS = 1e-7
REDUCTIONS = ("mean", "sum", "none")
