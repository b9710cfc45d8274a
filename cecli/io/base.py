"""What every reader shares: the read settings, a :class:`Batch` of columns, :class:`~cecli.errors.CellError`,
the formats, and pyarrow imported on first use.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from cecli.errors import CellError  # noqa: F401 - the readers' error of a bad value, defined with the others

DEFAULT_BATCH_ROWS = 1 << 16

# A batch's working set, 8 bytes x FLOAT64_COPIES x (numbers per row), stays within BATCH_BYTES
# for any class count (see budget_rows). FLOAT64_COPIES is the peak number of float64-sized copies
# of the numbers read that are alive at once, measured with tracemalloc on 2,000 x 1,000 batches:
# scoring peaks at 2.0 (softmax, cce: the shifted logits and the exp scratch), 3.0 (sparse with
# label smoothing), 3.8 (bce) and 4.1 (entropy) copies; the Arrow batch and its column-major
# float32 copy add 1 more. (The reader thread may hold two more decoded Arrow batches.)
BATCH_BYTES = 64 << 20
FLOAT64_COPIES = 5


def budget_rows(width: int, batch_rows: int = DEFAULT_BATCH_ROWS, budget: int = BATCH_BYTES) -> int:
    """Rows per batch for `width` numbers a row: ``min(batch_rows, budget // (8 * FLOAT64_COPIES * width))``.

    At least 1 row. Ten classes keep the default 65,536 rows; 1,000 classes get 1,677 rows
    (a 64 MB working set, where 65,536 rows of them would hold 2.6 GB).

    Examples
    --------
    >>> budget_rows(10), budget_rows(1000), budget_rows(10**7)
    (65536, 1677, 1)
    """
    return max(1, min(batch_rows, budget // (8 * FLOAT64_COPIES * max(width, 1))))


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
    batch_bytes: int = BATCH_BYTES  # the float64 working-set budget of one batch (budget_rows)


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
