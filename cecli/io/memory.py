"""Data in memory as an input: Arrow tables and streams, DataFrames, and mappings of NumPy arrays.

:func:`cecli.compute` reads these as it reads a file: the columns are listed first, then
the selected ones stream as record batches of ``--batch-rows`` rows, so the scorer sees
ordinary batches. Accepted:

- anything with the Arrow PyCapsule stream interface (``__arrow_c_stream__``): a pyarrow
  ``Table``, ``RecordBatch`` or ``RecordBatchReader``, a pandas (>= 2.2) or Polars
  DataFrame, a DuckDB relation; none of those libraries is imported. A pandas index is not
  a column (``df.reset_index()`` makes it one);
- anything with the Arrow PyCapsule array interface (``__arrow_c_array__``) holding a
  struct (a ``RecordBatch``);
- a mapping of column names to NumPy arrays (or what :func:`numpy.asarray` takes), all of
  one length: a 1-D array is a column, a 2-D array ``(rows, classes)`` a class-vector
  column (as a list column of a Parquet file); a masked array's masked values are missing.

Rows in messages are the 1-based records, as for Parquet; the input is named
:data:`TABLE_NAME` (``labels=``: :data:`LABELS_NAME`) in messages and in the result's
``input.path``, and its format is ``"memory"``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Protocol, runtime_checkable

import numpy as np

from cecli.errors import InputError, OptionError

from .base import ReadSettings, pa
from .inputs import Input, _arrow_fields, _one_line, _rechunk

TABLE_NAME = "<table>"
LABELS_NAME = "<labels>"
MEMORY_FORMAT = "memory"


@runtime_checkable
class ArrowStreamExportable(Protocol):
    """An object that exports its data as an Arrow C stream (the Arrow PyCapsule interface)."""

    def __arrow_c_stream__(self, requested_schema: object | None = None) -> object: ...


def in_memory(source: object) -> bool:
    """Whether `source` is data in memory (not a path): an Arrow stream or array, or a mapping."""
    return isinstance(source, Mapping) or hasattr(source, "__arrow_c_stream__") or hasattr(source, "__arrow_c_array__")


class MemoryInput(Input):
    """Data in memory, streamed in record batches of ``settings.batch_rows`` rows.

    A stream (a ``RecordBatchReader``, a DuckDB relation's result) is read once; the data are
    never copied whole, except where the producer itself converts (pandas builds an Arrow
    table when asked for its stream).
    """

    format = MEMORY_FORMAT

    def __init__(self, display: str, source: object) -> None:
        super().__init__(display)
        self._arrays: dict[str, np.ndarray] | None = None
        self._stream = None
        if isinstance(source, Mapping):
            self._arrays = _checked_arrays(source, display)
            fields = [(name, _numpy_type(array), array.ndim == 2) for name, array in self._arrays.items()]
        else:
            self._stream = _arrow_stream(source, display)
            fields = _arrow_fields(_without_pandas_index(self._stream.schema))
        self._set_columns(fields)

    def record_batches(
        self, names: list[str], settings: ReadSettings, numeric: frozenset[str] = frozenset()
    ) -> Iterator[pa.RecordBatch]:
        if self._arrays is not None:
            yield from _array_batches(self._arrays, names, settings.batch_rows, self.display)
            return
        stream, self._stream = self._stream, None
        if stream is None:
            raise InputError("an in-memory stream can be read only once", file=self.display, hint="pass a table")
        try:
            for record_batch in stream:
                yield from _rechunk(record_batch.select(names), settings.batch_rows)
        except GeneratorExit:  # closed early, or collected at exit when `pa` may be gone: nothing to report
            raise
        except pa.ArrowException as error:
            raise InputError(f"cannot read the data: {_one_line(error)}", file=self.display) from None

    def close(self) -> None:
        if self._stream is not None:
            self._stream.close()
            self._stream = None


def _arrow_stream(source: object, display: str) -> pa.RecordBatchReader:
    """A ``RecordBatchReader`` over `source`, through the PyCapsule interface (no import of its library)."""
    try:
        if isinstance(source, pa.RecordBatchReader):
            return source
        if hasattr(source, "__arrow_c_stream__"):
            return pa.RecordBatchReader.from_stream(source)
        record_batch = pa.record_batch(source)
        return pa.RecordBatchReader.from_batches(record_batch.schema, [record_batch])
    except (pa.ArrowException, TypeError, ValueError) as error:  # e.g. a Series: one array, not a table
        raise InputError(
            f"cannot read the data: {_one_line(error)}",
            file=display,
            hint="give a table of named columns (a DataFrame, not a Series or an array)",
        ) from None


def _without_pandas_index(schema: pa.Schema) -> pa.Schema:
    """`schema` without the columns pandas adds for a DataFrame's index (``__index_level_0__``)."""
    metadata = (schema.metadata or {}).get(b"pandas")
    if metadata is None:
        return schema
    import json  # here: only a pandas DataFrame's schema has this metadata (json, about 1 ms of start-up)

    try:
        index = {name for name in json.loads(metadata).get("index_columns", []) if isinstance(name, str)}
    except (ValueError, AttributeError):
        return schema
    return pa.schema([field for field in schema if field.name not in index])


def _checked_arrays(mapping: Mapping, display: str) -> dict[str, np.ndarray]:
    """The arrays of `mapping` by name, checked: string names, 1-D or 2-D, one length.

    Raises
    ------
    InputError
        For an empty mapping, a name that is not a string, an array of another shape or length.
    """
    if not mapping:
        raise InputError("the mapping holds no arrays", file=display, hint="map column names to arrays")
    arrays: dict[str, np.ndarray] = {}
    rows = None
    for name, value in mapping.items():
        if not isinstance(name, str):
            raise InputError(
                f"column name {name!r} is not a string", file=display, hint="map column names (str) to arrays"
            )
        array = value if isinstance(value, np.ndarray) else np.asarray(value)
        if array.ndim not in (1, 2):
            raise InputError(
                f"the array has {array.ndim} dimensions",
                file=display,
                column=name,
                hint="give a 1-D column or a 2-D (rows, classes) array",
            )
        if array.ndim == 2 and array.shape[1] == 0:
            raise InputError("the 2-D array has no columns", file=display, column=name, hint="give one per class")
        if rows is not None and len(array) != rows:
            first = next(iter(arrays))
            raise InputError(
                f"has {len(array)} rows where {first!r} has {rows}",
                file=display,
                column=name,
                hint="every array needs one value (or row) per sample",
            )
        rows = len(array)
        arrays[name] = array
    return arrays


def _numpy_type(array: np.ndarray) -> str:
    """The column type as an Arrow reader names it (float64 -> ``double``; 2-D ``fixed_size_list<...>[C]``)."""
    try:
        value_type = pa.from_numpy_dtype(array.dtype)
    except (pa.ArrowException, TypeError, NotImplementedError):
        return str(array.dtype)  # e.g. object: typed when converted
    return str(pa.list_(value_type, array.shape[1]) if array.ndim == 2 else value_type)


def _array_batches(
    arrays: dict[str, np.ndarray], names: list[str], rows: int, display: str
) -> Iterator[pa.RecordBatch]:
    """Record batches of the `names` arrays, `rows` at a time (each slice converted on its own)."""
    total = len(next(iter(arrays.values())))
    for start in range(0, total, rows):
        columns = [_to_arrow(arrays[name][start : start + rows], name, display) for name in names]
        yield pa.RecordBatch.from_arrays(columns, names=names)


def _to_arrow(part: np.ndarray, name: str, display: str) -> pa.Array:
    """A slice of a column as an Arrow array: 1-D as values, 2-D as fixed-size lists (one per row)."""
    mask = np.ma.getmaskarray(part) if isinstance(part, np.ma.MaskedArray) else None
    data = np.ma.getdata(part)
    try:
        if data.ndim == 1:
            return pa.array(data, mask=mask)
        width = data.shape[1]
        flat = np.ascontiguousarray(data).reshape(-1)
        values = pa.array(flat, mask=None if mask is None else np.ascontiguousarray(mask).reshape(-1))
        return pa.FixedSizeListArray.from_arrays(values, width)
    except (pa.ArrowException, TypeError, ValueError) as error:
        raise InputError(
            f"cannot convert the {data.dtype} array: {_one_line(error)}",
            file=display,
            column=name,
            hint="give arrays of numbers (or text for kept and grouped columns)",
        ) from None


def open_memory(source: object, display: str = TABLE_NAME) -> MemoryInput:
    """Open in-memory `source` as an :class:`~cecli.io.inputs.Input` named `display`.

    Raises
    ------
    OptionError
        If `source` is neither a path nor data in memory (see the module's list).
    InputError
        If the data cannot be read as a table.
    """
    if not in_memory(source):
        raise not_data(source)
    return MemoryInput(display, source)


def not_data(source: object) -> OptionError:
    """The error for a `source` that is neither a path nor data in memory."""
    return OptionError(
        f"cannot read data of type {type(source).__name__}",
        hint="give a path, a pyarrow Table or RecordBatchReader, a DataFrame or a mapping of names to arrays",
    )
