"""Parquet inputs, streamed by row group."""

from __future__ import annotations

import contextlib

from cecli.errors import InputError

from .base import budget_rows, pa
from .inputs import Input, _arrow_fields, _one_line


class ParquetInput(Input):
    """Parquet, read by row group / record batch; a pipe is buffered in memory first."""

    format = "parquet"

    def __init__(self, display, stream, seekable: str | pa.NativeFile | None) -> None:
        """`seekable` is a local path or a URL's open file, read where needed; else `stream` is read whole."""
        super().__init__(display)
        try:
            self._source = seekable if seekable is not None else stream.read()
            if seekable is not None:
                stream.close()
            self.file = self._open()
            schema = self.file.schema_arrow
        except (pa.ArrowException, OSError) as error:
            raise InputError(
                f"not a readable Parquet file: {_one_line(error)}",
                file=display,
                hint="the file may be truncated or corrupt",
            ) from None
        self._set_columns(_arrow_fields(schema))

    def _open(self, metadata=None):
        """A reader of the file (`metadata`, if given, is not parsed again)."""
        import pyarrow.parquet as pq

        source = pa.BufferReader(self._source) if isinstance(self._source, bytes) else self._source
        # pre_buffer=False: read what is decoded when it is decoded, so memory does not grow with the file;
        # buffer_size: read a column chunk through a buffer rather than whole (see _READ_BUFFER).
        return pq.ParquetFile(source, pre_buffer=False, metadata=metadata, buffer_size=_READ_BUFFER)

    def position(self) -> int | None:
        total = self.file.metadata.num_rows
        return None if self.size is None or not total else int(self.size * self._rows_read / total)

    def record_batches(self, names, settings, numeric=frozenset()):
        self._rows_read = 0
        try:
            # Batches within the byte budget: 65,536 rows of 1,000 classes would decode 250 MB at once.
            rows = budget_rows(self._width(names), settings.batch_rows, settings.batch_bytes)
            for record_batch in self._decoded(names, rows, settings.batch_bytes):
                self._rows_read += record_batch.num_rows
                yield record_batch
        except GeneratorExit:  # closed early, or collected at exit when `pa` may be gone: nothing to report
            raise
        except (pa.ArrowException, OSError) as error:
            raise InputError(
                f"cannot read Parquet data: {_one_line(error)}",
                file=self.display,
                hint="the file may be truncated or corrupt",
            ) from None

    def _decoded(self, names: list[str], rows: int, budget: int):
        """The `names` columns as record batches of up to `rows` rows, in order.

        Runs of row groups (`_pieces`) are decoded whole on a pool of one thread per core (at most
        `_MAX_DECODERS`), each thread with its own reader, at most one more piece than threads ahead
        of the caller: every core decodes (on 2 cores the caller's math shares them), and memory
        holds about threads + 2 pieces of at most `budget` bytes each. A file of one piece, one
        core, a URL (one open file) or a row group beyond the budget streams on this thread a batch
        at a time, its memory bounded by the batch. pyarrow's own pool (``use_threads=True``)
        decodes the columns of one batch at a time in parallel: measured 1.05x slower than this
        thread alone on 10 columns of floats.
        """
        from .pool import cores, ordered_map

        metadata = self.file.metadata
        workers = min(cores(), _MAX_DECODERS)
        reopened = isinstance(self._source, (str, bytes))  # a URL's one open file is read on one thread
        pieces = _pieces(metadata, names, rows, budget) if reopened and workers > 1 else None
        if pieces is None or len(pieces) < 2:
            yield from self.file.iter_batches(batch_size=rows, columns=names, use_threads=False)
            return
        import threading

        local = threading.local()
        readers = []

        def decode(piece: list[int]) -> list[pa.RecordBatch]:
            reader = getattr(local, "reader", None)
            if reader is None:
                reader = local.reader = self._open(metadata)
                readers.append(reader)
            if len(piece) == 1:  # one call for the whole row group: about 10 % faster than batch by batch
                return reader.read_row_group(piece[0], columns=names, use_threads=False).to_batches(rows)
            # Small row groups: batches of `rows` rows across them, as the one-thread path reads them.
            return list(reader.iter_batches(batch_size=rows, row_groups=piece, columns=names, use_threads=False))

        try:
            with contextlib.closing(ordered_map(decode, pieces, workers, name="cecli-parquet")) as decoded:
                for batches in decoded:
                    yield from batches
        finally:
            for reader in readers:
                reader.close()

    def _width(self, names: list[str]) -> int:
        """Values per record in the `names` columns (list items counted), from the first row group's metadata."""
        metadata = self.file.metadata
        group = metadata.row_group(0) if metadata.num_row_groups else None
        if group is None or not group.num_rows:
            return len(names)
        values = sum(column.num_values for column in _chunks(group, names))
        return max(len(names), -(-values // group.num_rows))

    def close(self) -> None:
        self.file.close()


# The caller's conversion and math take about 0.7 times the CPU of the decoding (0.15 against 0.21 s
# on the bench's 10M-row dump), so beyond about two decoding threads the caller is the limit and more
# threads would only hold more decoded row groups (up to 64 MiB each). Four leave room for costlier
# codecs; memory then stays within about 6 pieces on any machine.
_MAX_DECODERS = 4


# Without a buffer size pyarrow reads each column chunk whole before decoding its first page: the
# softmax bench file (50k rows of 1,000 float32 logits, one row group, one 191 MiB column chunk)
# then peaked at 402 MiB. Read through a 1 MiB buffer, page by page: 206 MiB and 0.76x the time
# (farm-bench, 5 alternating pairs); the same time on the 10M-row dump of 1M-row groups.
_READ_BUFFER = 1 << 20


# Bytes per value decoded; text takes at least its 4-byte offset.
_WIDTHS = {"BOOLEAN": 1, "INT32": 4, "FLOAT": 4, "INT64": 8, "DOUBLE": 8, "INT96": 12, "BYTE_ARRAY": 4}


def _decoded_bytes(group, names: list[str]) -> int:
    """About how many bytes the `names` columns of row group `group` (metadata) take decoded.

    Parquet's uncompressed size, or the values times their width where that is more (a
    dictionary-encoded column is smaller in the file than decoded).
    """
    return sum(
        max(column.total_uncompressed_size, column.num_values * _WIDTHS.get(column.physical_type, 0))
        for column in _chunks(group, names)
    )


def _chunks(group, names: list[str]):
    """The column chunks of row group `group` (metadata) that hold the `names` columns."""
    prefixes = tuple(f"{name}." for name in names)
    wanted = set(names)
    for i in range(group.num_columns):
        column = group.column(i)
        path = column.path_in_schema
        if path in wanted or path.startswith(prefixes):  # a list column's leaf is "name.list.element"
            yield column


def _pieces(metadata, names: list[str], rows: int, budget: int) -> list[list[int]] | None:
    """The row groups in runs to decode at once, each within `budget` bytes decoded and closed once it
    holds `rows` rows (the last, or one the budget closes, may hold fewer); ``None`` if a row group
    alone is beyond the budget.

    Whole row groups of 1M rows are one piece each; row groups of 1,000 rows are joined 66 to a
    piece, so that batches stay `rows` rows long (decoded one by one, 1,000-row batches took
    twice the time of the whole file).
    """
    pieces: list[list[int]] = []
    piece: list[int] = []
    piece_rows = piece_bytes = 0
    for index in range(metadata.num_row_groups):
        group = metadata.row_group(index)
        size = _decoded_bytes(group, names)
        if size > budget:
            return None
        if piece and (piece_rows >= rows or piece_bytes + size > budget):
            pieces.append(piece)
            piece, piece_rows, piece_bytes = [], 0, 0
        piece.append(index)
        piece_rows += group.num_rows
        piece_bytes += size
    return pieces + [piece] if piece else pieces
