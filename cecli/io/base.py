"""What every reader shares: the read settings, a :class:`Batch` of columns, :class:`~cecli.errors.CellError`,
the formats, and pyarrow imported on first use.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from cecli.errors import CellError  # noqa: F401 - the readers' error of a bad value, defined with the others

DEFAULT_BATCH_ROWS = 1 << 16


STDIN_NAME = "<stdin>"


class _LazyPyarrow:
    """Stands in for the ``pa`` module until first used, then imports pyarrow and replaces itself.

    pyarrow takes about 35 ms to import (its .compute, .csv, .json and .parquet parts, imported
    where used, about 50 ms more), and a small CSV one-liner needs none of it.
    """

    def __getattr__(self, name: str):
        import pyarrow

        globals()["pa"] = pyarrow
        value = getattr(pyarrow, name)
        self.__dict__[name] = value  # the modules that imported this stand-in read it from here next time
        return value


pa = _LazyPyarrow()


@dataclass(frozen=True)
class ReadSettings:
    """How to read an input: forced format, delimiter, header mode and batch size."""

    input_format: str | None = None
    delimiter: str | None = None
    header: bool | None = None  # None: a first row of numbers only is data, anything else is a header
    batch_rows: int = DEFAULT_BATCH_ROWS


@dataclass
class Batch:
    """Arrays of one batch of records (float64 or float32; integer class labels stay integers).

    `offset` is the index of its first record.
    """

    offset: int
    size: int
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    keep: dict[str, list] = field(default_factory=dict)  # JSON values (see _json_value)
    groups: dict[str, tuple[np.ndarray, list]] = field(default_factory=dict)  # codes, distinct keys (_group_key)
    kept: dict[str, pa.Array] = field(default_factory=dict)  # typed --keep columns as read, for a Parquet --out
    nonfinite: dict[str, int] = field(default_factory=dict)  # NaN/inf kept or grouped values, turned into None
