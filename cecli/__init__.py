"""cecli: cross-entropy losses from the command line and from Python.

The loss functions are pure NumPy (:mod:`cecli.numerics.core`); :func:`compute` reads files,
:func:`compare` compares two models' losses on the same rows.
"""

from importlib import import_module

from .errors import CecliError, DataError, ExitCode, InputError, OptionError

__version__ = "0.1.0"

# Loaded on first use, so `import cecli` (and `cecli --version`) imports neither NumPy nor pyarrow.
_LAZY = {
    "binary_cross_entropy": "numerics.core",
    "categorical_cross_entropy": "numerics.core",
    "entropy": "numerics.core",
    "kl_divergence": "numerics.core",
    "softmax_cross_entropy": "numerics.core",
    "sparse_cross_entropy": "numerics.core",
    "Partial": "numerics.reduce",
    "LossResult": "result",
    "compute": "pipeline",
    "Comparison": "comparison_result",
    "compare": "comparison",
    "ReadSettings": "io.base",
}

__all__ = [
    "CecliError",
    "Comparison",
    "DataError",
    "ExitCode",
    "InputError",
    "LossResult",
    "OptionError",
    "Partial",
    "ReadSettings",
    "__version__",
    "binary_cross_entropy",
    "categorical_cross_entropy",
    "compare",
    "compute",
    "entropy",
    "kl_divergence",
    "softmax_cross_entropy",
    "sparse_cross_entropy",
]


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'cecli' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
