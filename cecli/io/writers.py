"""Per-sample output files (``--out``), written batch by batch and renamed into place.

The format comes from the name: ``.csv``, ``.ndjson``/``.jsonl`` (either one optionally
compressed: ``.gz`` gzip, ``.zst`` Zstandard), ``.parquet``/``.pq``, ``.arrow``/``.feather``/
``.ipc`` (an Arrow IPC file, which Feather v2 is; Parquet and Arrow files keep the types of
kept columns). The file appears whole or not at all: rows go to a hidden temporary file in the same
folder, which replaces `path` only after the last batch. Any exception (including
SIGTERM, which the CLI turns into ``SystemExit``) removes the temporary file. A write the
system refuses (permission denied, read-only file system, disk full) is an
:class:`~cecli.errors.OutputError` naming the path and the reason.
"""

from __future__ import annotations

import io
import os
import tempfile

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from cecli.errors import OptionError, OutputError
from cecli.lines import cell_text, csv_header, csv_lines, ndjson_lines

from .base import CellError

ROW_GROUP_ROWS = 1 << 18  # buffer this many rows per write: bounded memory, sensible row groups
OUT_FORMATS = {
    ".csv": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".ndjson": "ndjson",
    ".jsonl": "ndjson",
    ".arrow": "arrow",
    ".feather": "arrow",
    ".ipc": "arrow",
}
OUT_COMPRESSIONS = {".gz": "gzip", ".zst": "zstd"}  # for the text formats; Parquet and Arrow compress inside
_TYPED = ("parquet", "arrow")  # formats with one type per column, kept as read
_LINES = {"ndjson": ndjson_lines, "csv": csv_lines}  # text formats, the same bytes as -f ndjson / -f csv


class PerSampleWriter:
    """Write ``row``, ``loss`` and kept columns; ``loss`` is null for rows that do not count.

    ``row`` is the 1-based record number in the input (not a line number).
    """

    def __init__(self, path: str, keep: list[str]) -> None:
        self.format, self.compression = out_format(path)
        folder = os.path.dirname(os.path.abspath(path))
        if os.path.isdir(path):
            raise OptionError(f"--out {path} is a folder", hint="give a file name, such as losses.csv")
        if not os.path.isdir(folder):
            raise OptionError(f"the folder of --out {path} does not exist", hint="create it first")
        self.path = path
        self.keep = keep
        self._folder = folder
        self._tmp: str | None = None
        self._file = None
        self._sink = None  # where rows go: the file, or a compressor writing to it
        self._writer = None
        self._schema: pa.Schema | None = None  # the first table's (Parquet and Arrow: each later one is cast to it)
        self._pending: list[pa.Table] = []
        self._pending_rows = 0
        self._types: dict[str, pa.DataType] = {}  # Parquet: each kept column's type, once known

    def __enter__(self) -> PerSampleWriter:
        try:
            fd, self._tmp = tempfile.mkstemp(prefix=f".{os.path.basename(self.path)}.", suffix=".tmp", dir=self._folder)
        except OSError as error:
            raise _refused(error, self.path) from None
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(self._tmp, 0o666 & ~umask)  # as an ordinary new file, not mkstemp's 0600
        self._file = io.BufferedWriter(_OutFile(fd, self.path))
        self._sink = self._file
        if self.compression is not None:
            # pyarrow's codecs run without the GIL; a write the system refuses surfaces as our OutputError.
            self._sink = pa.CompressedOutputStream(self._file, self.compression)
        if self.format == "csv":  # as -f csv writes it
            self._sink.write(csv_header(self.keep).encode("utf-8", "backslashreplace"))
        return self

    def write(
        self,
        offset: int,
        losses: np.ndarray,
        counted: np.ndarray,
        keep: dict[str, list],
        kept: dict[str, pa.Array] | None = None,
    ) -> None:
        """Write one batch: `keep` holds the kept columns as JSON values, `kept` typed ones as read (Parquet types).

        Raises
        ------
        CellError
            When a kept column's type differs from earlier batches' in a Parquet file (``index`` is
            the batch's first row with such a value), which has one type per column.
        """
        if self.format in _LINES:  # the bytes -f ndjson / -f csv print
            lines = _LINES[self.format](offset + 1, losses, counted, {name: keep[name] for name in self.keep})
            self._sink.write(lines)
            return
        rows = np.arange(offset + 1, offset + 1 + losses.size, dtype=np.int64)
        # null only for an ignored row; a loss that is not finite stays inf/nan
        loss_array = pa.array(losses, mask=~counted, type=pa.float64())
        columns = {"row": pa.array(rows), "loss": loss_array}
        for name in self.keep:
            if self.format in _TYPED and kept and name in kept:
                columns[name] = self._typed(name, kept[name])
            else:  # as -f csv writes them (CSV input has no types to keep)
                columns[name] = self._typed(
                    name, pa.array([None if v is None else cell_text(v) for v in keep[name]], pa.string())
                )
        self._pending.append(pa.table(columns))
        self._pending_rows += losses.size
        if self._pending_rows >= ROW_GROUP_ROWS:
            self._flush()

    def _typed(self, name: str, array: pa.Array) -> pa.Array:
        """`array` in the Parquet (Arrow) type of column `name`: the first non-null type seen (a wider integer
        or float is cast to it, integers to a float type); anything else is an error."""
        import pyarrow.compute as pc

        if pa.types.is_dictionary(array.type):
            array = array.dictionary_decode()
        known = self._types.get(name)
        if pa.types.is_null(array.type) or array.type == known:
            return array
        if known is None:
            self._types[name] = array.type
            return array
        if _kind(array.type) == _kind(known) or (_kind(known) == "float" and _kind(array.type) == "int"):
            try:
                return array.cast(known)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                pass
        index = pc.indices_nonzero(array.is_valid())[0].as_py()
        raise CellError(
            f"{array.type} value where earlier rows have {known}, and a Parquet --out column has one type",
            index=index,
            column=name,
            hint="write --out as .csv or .ndjson, or give the column one type in every file",
        )

    def _flush(self) -> None:
        """Write the buffered batches as one table (one Parquet row group, not one per batch)."""
        if self._pending:
            # A column that was null so far takes its later type, or text if it is null throughout.
            for name in self.keep:
                self._types.setdefault(name, pa.string())
            schema = pa.schema(
                [("row", pa.int64()), ("loss", pa.float64())] + [(name, self._types[name]) for name in self.keep]
            )
            self._pending = [table.cast(schema) for table in self._pending]
            self._write(pa.concat_tables(self._pending))
            self._pending, self._pending_rows = [], 0

    def _write(self, table: pa.Table) -> None:
        if self._writer is None:
            self._schema = table.schema
            if self.format == "parquet":
                # Row numbers and losses are (nearly) all distinct: dictionaries would only cost time and memory.
                self._writer = pq.ParquetWriter(self._file, table.schema, use_dictionary=self.keep)
            else:
                self._writer = pa.ipc.new_file(self._sink, table.schema)
        self._writer.write_table(table.cast(self._schema))

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc_type is not None:
            self._file.raw.dropping = True  # the first error is the one to report, not a full disk on close
        try:
            if exc_type is None:
                self._flush()
            if self._writer is None and exc_type is None and self.format in _TYPED:
                # No rows: still a valid file, with the schema.
                empty = {"row": pa.array([], pa.int64()), "loss": pa.array([], pa.float64())}
                kept = {name: pa.array([], self._types.get(name, pa.string())) for name in self.keep}
                self._write(pa.table({**empty, **kept}))
            if self._writer is not None:
                self._writer.close()
            if self._sink is not self._file:
                self._sink.close()  # the compressor's last block and trailer; it closes the file too
            self._file.close()
            if exc_type is None:
                try:
                    os.replace(self._tmp, self.path)
                except OSError as error:
                    raise _refused(error, self.path) from None
                self._tmp = None
        finally:
            if not self._file.closed:  # a write failed before the close
                self._file.raw.dropping = True
                if self._sink is not self._file and not self._sink.closed:
                    self._sink.close()
                self._file.close()
            if self._tmp is not None and os.path.exists(self._tmp):
                os.unlink(self._tmp)
        return False


def out_format(path: str) -> tuple[str, str | None]:
    """(format, compression) of an ``--out`` name: ``x.csv.gz`` -> ("csv", "gzip"), ``x.arrow`` -> ("arrow", None).

    >>> out_format("losses.ndjson.zst")
    ('ndjson', 'zstd')

    Raises
    ------
    OptionError
        For a name without a known extension, or a compressed Parquet or Arrow name.
    """
    root, ext = os.path.splitext(path.lower())
    compression = OUT_COMPRESSIONS.get(ext)
    if compression is not None:
        root, ext = os.path.splitext(root)
    fmt = OUT_FORMATS.get(ext)
    if fmt is None:
        raise OptionError(
            f"cannot tell the format of --out {path}",
            hint="use a .csv, .ndjson (either may end in .gz or .zst), .parquet or .arrow name",
        )
    if compression is not None and fmt in _TYPED:
        raise OptionError(
            f"--out {path}: {'a Parquet' if fmt == 'parquet' else 'an Arrow IPC'} file is compressed inside, "
            "not as a whole",
            hint=f"name it {os.path.splitext(path)[0]}",
        )
    return fmt, compression


def _kind(arrow_type: pa.DataType) -> str:
    if pa.types.is_integer(arrow_type):
        return "int"
    if pa.types.is_floating(arrow_type):
        return "float"
    if pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type):
        return "text"
    return str(arrow_type)


class _OutFile(io.FileIO):
    """The temporary file under the writers: a write the system refuses (disk full, file too
    large, I/O error) becomes an :class:`OutputError` naming ``--out``, wherever it happens
    (our writes, pyarrow's, a flush on close). After that, or once the run has failed, further
    writes are dropped: the file is removed anyway.
    """

    def __init__(self, fd: int, path: str) -> None:
        super().__init__(fd, "wb")
        self.path = path
        self.dropping = False

    def write(self, data) -> int:
        view = memoryview(data).cast("B")
        if self.dropping:
            return view.nbytes
        try:
            done = 0
            while done < view.nbytes:  # a raw write may be partial
                done += super().write(view[done:])
        except OSError as error:
            self.dropping = True
            raise _refused(error, self.path) from None
        return view.nbytes


def _refused(error: OSError, path: str) -> OutputError:
    reason = os.strerror(error.errno) if error.errno else str(error)
    return OutputError(f"cannot write --out: {reason}", file=path, hint="nothing was written; choose another place")
