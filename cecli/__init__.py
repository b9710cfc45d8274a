"""cecli: cross-entropy losses from the command line and from Python.

The loss functions are pure NumPy (:mod:`cecli.core`); :func:`compute` reads files.
"""

__version__ = "0.1.0"

from .core import (  # noqa: E402 - __version__ first: result.py reads it
    binary_cross_entropy,
    categorical_cross_entropy,
    entropy,
    kl_divergence,
    softmax_cross_entropy,
    sparse_cross_entropy,
)
from .errors import CecliError, DataError, ExitCode, InputError, OptionError  # noqa: E402
from .reduce import Partial  # noqa: E402

__all__ = [
    "CecliError",
    "DataError",
    "ExitCode",
    "InputError",
    "LossResult",
    "OptionError",
    "Partial",
    "__version__",
    "binary_cross_entropy",
    "categorical_cross_entropy",
    "compute",
    "entropy",
    "kl_divergence",
    "softmax_cross_entropy",
    "sparse_cross_entropy",
]


def __getattr__(name: str):
    # compute() pulls in pyarrow; load it on first use so `import cecli` stays light.
    if name == "compute":
        from .pipeline import compute

        return compute
    if name == "LossResult":
        from .result import LossResult

        return LossResult
    raise AttributeError(f"module 'cecli' has no attribute {name!r}")
