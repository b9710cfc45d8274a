"""Every choice list of cecli, written once: the CLI builds its choice types from these.

A module of its own, apart from :mod:`cecli.options` (which re-exports them), so that the CLI
reads them at start-up without creating the options' dataclasses: about 2 ms of
``cecli --version``, measured with ``python -X importtime``. ``LOSSES`` come from the loss
registry, ``REDUCTIONS`` from the numerics that compute them (which import nothing above them).
"""

from .losses import REGISTRY
from .numerics import REDUCTIONS

LOSSES = tuple(REGISTRY)
BASES = {"e": ("nats", None), "2": ("bits", 2.0), "10": ("bans", 10.0)}
LIKES = ("keras", "torch", "sklearn")
FORMATS = ("csv", "tsv", "json", "ndjson", "parquet", "arrow", "npy", "npz")  # input formats
OUTPUT_FORMATS = ("table", "json", "ndjson", "csv")
ENGINES = ("local", "dask")
COLORS = ("auto", "always", "never")

__all__ = ["BASES", "COLORS", "ENGINES", "FORMATS", "LIKES", "LOSSES", "OUTPUT_FORMATS", "REDUCTIONS"]
