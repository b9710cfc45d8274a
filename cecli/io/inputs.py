"""An opened input (:class:`Input`): its columns, the selected columns streamed as
:class:`~cecli.io.base.Batch` objects, and the alignment of two inputs row by row.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator

import numpy as np

from cecli.errors import InputError, OptionError

from .base import Batch, CellError, ReadSettings, budget_rows, pa
from .columns import Column, Selection
from .convert import _codes, _floats, _Nonfinite, _pass_through, class_indices, to_matrix
from .streams import _Chain, _Lines


class Input:
    """An opened input: its display name, format, columns and a batch iterator."""

    format: str = ""
    header_lines: int = 0  # lines before the first record, for line numbers in messages
    headerless: bool = False
    untyped: bool = False  # CSV/TSV: kept and grouped cells are typed one by one (see _text_value)
    size: int | None = None  # bytes, for progress
    raw = None  # the underlying byte stream, for progress
    # Line-based text (CSV, NDJSON): a reader skips blank lines, so the record at an index is found
    # again by re-reading the file (`_reopen`), or, for a stream read once, from the `_lines` noted.
    _reopen: Callable | None = None
    _lines: _Lines | None = None
    _whitespace_is_blank = False
    # Hive partition keys from the file's path below the folder given (name -> text, None for null):
    # columns of the file whose cells are typed as a CSV cell's (see add_partitions).
    partitions: dict[str, str | None] = {}  # noqa: RUF012 - replaced, never changed in place

    def position(self) -> int | None:
        """Bytes consumed so far (an estimate), or ``None`` when unknown."""
        try:
            return self.raw.tell() if self.size is not None else None
        except (OSError, ValueError, AttributeError):
            return None

    def __init__(self, display: str) -> None:
        self.display = display
        self.columns: list[Column] = []
        self.warnings: list[str] = []  # e.g. a header that looks like data; shown with the result

    def user_row(self, index: int) -> int:
        """The 1-based row a user sees for the record at 0-based `index`.

        The physical line of a CSV/TSV/NDJSON file, as an editor counts them (blank lines, which
        hold no record, included; the header is line 1); else the 1-based record.
        """
        record = index + self.header_lines
        if self._lines is not None:
            return self._lines.line_of(record)
        if self._reopen is None:
            return record + 1
        lines = _Lines(whitespace_is_blank=self._whitespace_is_blank)
        with self._reopen() as stream:  # only on an error: read up to the record again
            while lines.records <= record and (chunk := stream.read(1 << 20)):
                lines.feed(chunk)
        return lines.line_of(record)

    def _track_lines(self, stream, reopen) -> None:
        """Keep what `user_row` needs: a way to reopen the file, else the blank lines of `stream`."""
        self._reopen = reopen
        if reopen is None and isinstance(getattr(stream, "raw", None), _Chain):
            self._lines = stream.raw.lines = _Lines(whitespace_is_blank=self._whitespace_is_blank)

    def record_batches(
        self, names: list[str], settings: ReadSettings, numeric: frozenset[str] = frozenset()
    ) -> Iterator[pa.RecordBatch]:
        """Arrow batches of the `names` columns; `numeric` ones may be parsed as numbers directly."""
        raise NotImplementedError

    def describe_types(self) -> list[Column]:
        """Columns with their types (may read a sample of the data)."""
        return self.columns

    def _plain_numbers(self) -> np.ndarray | None:
        """All records as one float64 matrix, when the input can be parsed without pyarrow; else ``None``."""
        return None

    @property
    def own_columns(self) -> list[Column]:
        """The columns in the file itself, without the partition keys (which come last)."""
        return self.columns[: len(self.columns) - len(self.partitions)]

    def add_partitions(self, partitions: dict[str, str | None]) -> None:
        """Add hive partition keys as columns after the file's own, each its value on every row.

        A value is typed as a CSV cell is (:func:`~cecli.io.convert._text_value`: ``split=7``
        is the number 7, ``split=a`` the text ``"a"``), so ``--by`` and ``--keep`` print it as
        if the column were in the file; null is a null.

        Raises
        ------
        InputError
            If a key is also a column of the file: which one is meant would be a guess.
        """
        own = {c.name for c in self.columns}
        for key in partitions:
            if key in own:
                raise InputError(
                    f"the partition key {key!r} of the folder path is also a column of the file",
                    file=self.display,
                    hint=f"rename the folder {key}=... or the column",
                )
        self.partitions = dict(partitions)
        start = len(self.columns)
        self.columns = [*self.columns, *(Column(start + i + 1, key, "string") for i, key in enumerate(partitions))]

    def _with_partitions(self, record_batch: pa.RecordBatch, names: list[str]) -> pa.RecordBatch:
        """`record_batch` with the partition columns among `names` appended."""
        keys = [name for name in names if name in self.partitions]
        if not keys:
            return record_batch
        n = record_batch.num_rows
        arrays = [pa.repeat(pa.scalar(self.partitions[key], pa.string()), n) for key in keys]
        return pa.RecordBatch.from_arrays([*record_batch.columns, *arrays], names=[*record_batch.schema.names, *keys])

    def _set_columns(self, fields: list[tuple[str, str, bool]]) -> None:
        """Set the columns from (name, type, is_list) triples."""
        duplicates = sorted(name for name, count in Counter(f[0] for f in fields).items() if count > 1)
        if duplicates:
            raise InputError(
                f"duplicate column name {duplicates[0]!r}", file=self.display, hint="give every column a unique name"
            )
        self.columns = [Column(i + 1, *f) for i, f in enumerate(fields)]

    def batches(
        self,
        selection: Selection,
        settings: ReadSettings,
        *,
        roles: tuple[str, ...] = ("labels", "predictions", "weight"),
        class_names: list[str] | None = None,
        class_labels: bool = False,
        prefetch: Callable[[Iterator[pa.RecordBatch]], Iterator[pa.RecordBatch]] | None = None,
    ) -> Iterator[Batch]:
        """Stream the selected roles as float64 arrays (labels as (n, k), predictions (n, C)).

        `prefetch`, if given, wraps the iterator of decoded Arrow batches (e.g. to decode
        in another thread); the conversion to NumPy happens in the caller's thread.

        Raises
        ------
        DataError
            For a missing, non-numeric or ragged cell; the error names file, row and column.
        """
        nested = [c for c in selection.by if c.is_list or c.type.startswith(("struct", "map"))]
        if nested and "predictions" in roles:
            raise OptionError(
                f"--by column {nested[0].name!r} holds {'lists' if nested[0].is_list else 'records'}, "
                "not single values",
                hint="group by a column of numbers or text",
            )
        selected = {c.name for role in ("labels", "predictions", "weight") for c in selection.columns(role)}
        partitioned = not selected.isdisjoint(self.partitions)
        values = None if selection.keep or selection.by or partitioned else self._plain_numbers()
        if values is not None:
            yield from _plain_batches(values, self.columns, selection, settings, roles)
            return
        wanted = [getattr(selection, r) for r in roles]
        names: dict[str, None] = {}  # ordered and without duplicates, in linear time
        for part in wanted + [selection.keep, selection.by if "predictions" in roles else ()]:
            for column in (part,) if isinstance(part, Column) else part or ():
                names[column.name] = None
        names = list(names)
        offset = 0
        width = None
        numeric = {c.name for role in roles if role != "labels" or not class_labels for c in selection.columns(role)}
        own = [name for name in names if name not in self.partitions]
        record_batches = self.record_batches(own, settings, frozenset(numeric) - set(self.partitions))
        numbers = [c for role in roles for c in selection.columns(role)]
        record_batches = _within_budget(
            record_batches if prefetch is None else prefetch(record_batches),
            scalars=sum(not c.is_list for c in numbers),
            lists=[c.name for c in numbers if c.is_list],
            settings=settings,
        )
        for record_batch in record_batches:
            record_batch = self._with_partitions(record_batch, names)
            try:
                batch = Batch(offset, record_batch.num_rows)
                for role in roles:
                    columns = getattr(selection, role)
                    if columns is None or columns == ():
                        continue
                    if role == "weight":
                        batch.arrays[role] = _floats(record_batch.column(columns.name), columns.name)
                    elif role == "labels" and class_labels and len(columns) == 1 and not columns[0].is_list:
                        array = record_batch.column(columns[0].name)
                        batch.arrays[role] = class_indices(array, columns[0].name, class_names)[:, None]
                    else:
                        matrix = to_matrix(record_batch, columns)
                        if role == "predictions":
                            if width is not None and matrix.shape[1] != width and record_batch.num_rows:
                                raise CellError(
                                    f"list has {matrix.shape[1]} values where earlier rows have {width}",
                                    index=0,
                                    column=columns[0].name,
                                    hint="every row needs one value per class",
                                )
                            width = matrix.shape[1] if record_batch.num_rows else width
                        batch.arrays[role] = matrix
                for column in selection.keep:
                    nonfinite = _Nonfinite()
                    array = record_batch.column(column.name)
                    untyped = self.untyped or column.name in self.partitions
                    batch.keep[column.name] = _pass_through(array, untyped, nonfinite)
                    if not untyped:  # CSV has no types to keep: a Parquet --out gets the text
                        batch.kept[column.name] = array
                    batch.nonfinite[column.name] = nonfinite.count
                for column in selection.by if "predictions" in roles else ():
                    nonfinite = _Nonfinite()
                    untyped = self.untyped or column.name in self.partitions
                    batch.groups[column.name] = _codes(record_batch.column(column.name), untyped, nonfinite)
                    batch.nonfinite.setdefault(column.name, nonfinite.count)
            except CellError as error:
                raise error.locate(file=self.display, row=self.user_row(offset + error.index)) from None
            except InputError as error:
                raise error.locate(file=self.display) from None
            yield batch
            offset += record_batch.num_rows

    def close(self) -> None:
        """Release the underlying file."""


def _within_budget(
    record_batches: Iterator[pa.RecordBatch], *, scalars: int, lists: list[str], settings: ReadSettings
) -> Iterator[pa.RecordBatch]:
    """`record_batches` cut (zero-copy) into pieces of at most :func:`~cecli.io.base.budget_rows` rows.

    The width of a row is the number of numbers read from it: one per scalar column, the values
    per row of each list column (known only once a batch is read, for variable-size lists).
    Every format goes through here; Parquet also reads batches of that size (`batch_rows_for`).
    """
    for record_batch in record_batches:
        n = record_batch.num_rows
        width = scalars + sum(_values_per_row(record_batch.column(name), n) for name in lists)
        rows = budget_rows(width, settings.batch_rows, settings.batch_bytes)
        if n <= rows:
            yield record_batch
            continue
        for start in range(0, n, rows):
            yield record_batch.slice(start, rows)


def _values_per_row(array: pa.Array, n: int) -> int:
    """Values per row of a list column (rounded up), from its type or its offsets; 1 if empty."""
    if pa.types.is_fixed_size_list(array.type):
        return array.type.list_size
    if not n:
        return 1
    offsets = array.offsets
    return -(-(offsets[n].as_py() - offsets[0].as_py()) // n)


def _plain_batches(
    values: np.ndarray, own: list[Column], selection: Selection, settings: ReadSettings, roles
) -> Iterator[Batch]:
    """Batches of a parsed matrix `values`, laid out as pyarrow's are (column-major float64).

    Selected columns are found by name among this input's columns `own`, as pyarrow finds
    them: the selection may have been made on another file whose columns come in another order.
    """
    index = {c.name: c.position - 1 for c in own}
    width = sum(len(selection.columns(role)) for role in roles)
    step = budget_rows(width, settings.batch_rows, settings.batch_bytes)
    for start in range(0, len(values), step):
        rows = values[start : start + step]
        batch = Batch(start, len(rows))
        for role in roles:
            columns = getattr(selection, role)
            if role == "weight" and columns is not None:
                batch.arrays[role] = rows[:, index[columns.name]].copy()
            elif role != "weight" and columns:
                batch.arrays[role] = np.asfortranarray(rows[:, [index[c.name] for c in columns]])
        yield batch


def _arrow_fields(schema: pa.Schema) -> list[tuple[str, str, bool]]:
    lists = (pa.types.is_list, pa.types.is_large_list, pa.types.is_fixed_size_list)
    return [(f.name, str(f.type), any(is_list(f.type) for is_list in lists)) for f in schema]


def _rechunk(record_batch: pa.RecordBatch, rows: int) -> Iterator[pa.RecordBatch]:
    for start in range(0, max(record_batch.num_rows, 1), rows):
        piece = record_batch.slice(start, rows)
        if piece.num_rows:
            yield piece


def _one_line(error: Exception) -> str:
    """An error's text on one line (pyarrow's may span several)."""
    return "; ".join(line.strip() for line in str(error).splitlines() if line.strip())


def aligned(left: Iterator[Batch], right: Iterator[Batch], *, left_name: str, right_name: str) -> Iterator[Batch]:
    """Merge two batch streams record by record (for ``--labels``), re-slicing as needed.

    Raises
    ------
    InputError
        If one stream ends before the other.
    """
    pending: list[Batch] = []
    right_iter = iter(right)
    buffer: Batch | None = None
    seen_left = 0
    for batch in left:
        seen_left += batch.size
        pending_rows = batch.size
        parts = []
        while pending_rows:
            if buffer is None or buffer.size == 0:
                buffer = next(right_iter, None)
                if buffer is None:
                    raise InputError(
                        f"has fewer rows than {left_name}",
                        file=right_name,
                        hint="--labels needs exactly one row per input row",
                    )
            take = min(pending_rows, buffer.size)
            parts.append(_slice(buffer, 0, take))
            buffer = _slice(buffer, take, buffer.size)
            pending_rows -= take
        merged = Batch(
            batch.offset,
            batch.size,
            dict(batch.arrays),
            dict(batch.keep),
            dict(batch.groups),
            dict(batch.kept),
            dict(batch.nonfinite),
        )
        for role in parts[0].arrays if parts else ():
            merged.arrays[role] = np.concatenate([p.arrays[role] for p in parts])
        yield merged
    del pending
    leftover = (buffer.size if buffer is not None else 0) + sum(b.size for b in right_iter)
    if leftover:
        raise InputError(
            f"has {leftover} more rows than {left_name} ({seen_left})",
            file=right_name,
            hint="--labels needs exactly one row per input row",
        )


def _slice(batch: Batch, start: int, stop: int) -> Batch:
    return Batch(
        batch.offset + start,
        stop - start,
        {k: v[start:stop] for k, v in batch.arrays.items()},
        {k: v[start:stop] for k, v in batch.keep.items()},
        {k: (codes[start:stop], values) for k, (codes, values) in batch.groups.items()},
        {k: v.slice(start, stop - start) for k, v in batch.kept.items()},
        dict(batch.nonfinite),
    )
