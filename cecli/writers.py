"""Per-sample output files (``--out``), written batch by batch and renamed into place.

The file appears whole or not at all: rows go to a hidden temporary file in the same
folder, which replaces `path` only after the last batch. Any exception (including
SIGTERM, which the CLI turns into ``SystemExit``) removes the temporary file.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import tempfile

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from .errors import OptionError

ROW_GROUP_ROWS = 1 << 18  # buffer this many rows per write: bounded memory, sensible row groups
OUT_FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet", ".ndjson": "ndjson", ".jsonl": "ndjson"}


class PerSampleWriter:
    """Write ``row``, ``loss`` and kept columns; ``loss`` is null for rows that do not count.

    ``row`` is the 1-based record number in the input (not a line number).
    """

    def __init__(self, path: str, keep: list[str]) -> None:
        self.format = OUT_FORMATS.get(os.path.splitext(path.lower())[1])
        if self.format is None:
            raise OptionError(f"cannot tell the format of --out {path}", hint="use a .csv, .parquet or .ndjson name")
        folder = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(folder):
            raise OptionError(f"the folder of --out {path} does not exist", hint="create it first")
        self.path = path
        self.keep = keep
        self._folder = folder
        self._tmp: str | None = None
        self._file = None
        self._writer = None
        self._pending: list[pa.Table] = []
        self._pending_rows = 0

    def __enter__(self) -> PerSampleWriter:
        fd, self._tmp = tempfile.mkstemp(prefix=f".{os.path.basename(self.path)}.", suffix=".tmp", dir=self._folder)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(self._tmp, 0o666 & ~umask)  # as an ordinary new file, not mkstemp's 0600
        self._file = os.fdopen(fd, "wb")
        return self

    def write(self, offset: int, losses: np.ndarray, counted: np.ndarray, keep: dict[str, list]) -> None:
        rows = np.arange(offset + 1, offset + 1 + losses.size, dtype=np.int64)
        if self.format == "ndjson":
            lines = []
            for i, (loss, ok) in enumerate(zip(losses.tolist(), counted.tolist(), strict=True)):
                record = {"row": int(rows[i]), "loss": loss if ok and math.isfinite(loss) else None}
                record.update({name: keep[name][i] for name in self.keep})
                lines.append(json.dumps(record, allow_nan=False, default=str))
            self._file.write(("\n".join(lines) + "\n").encode() if lines else b"")
            return
        loss_array = pa.array(losses, mask=~(counted & np.isfinite(losses)), type=pa.float64())
        columns = {"row": pa.array(rows), "loss": loss_array}
        columns.update({name: pa.array(keep[name]) for name in self.keep})
        self._pending.append(pa.table(columns))
        self._pending_rows += losses.size
        if self._pending_rows >= ROW_GROUP_ROWS:
            self._flush()

    def _flush(self) -> None:
        """Write the buffered batches as one table (one Parquet row group, not one per batch)."""
        if self._pending:
            self._write(pa.concat_tables(self._pending))
            self._pending, self._pending_rows = [], 0

    def _write(self, table: pa.Table) -> None:
        if self._writer is None:
            if self.format == "parquet":
                # Row numbers and losses are (nearly) all distinct: dictionaries would only cost time and memory.
                self._writer = pq.ParquetWriter(self._file, table.schema, use_dictionary=self.keep)
            else:
                # The header as `-f csv` writes it (quoted only where needed); pyarrow would quote every name.
                header = io.StringIO()
                csv.writer(header, lineterminator="\n").writerow(table.schema.names)
                self._file.write(header.getvalue().encode())
                options = pa_csv.WriteOptions(include_header=False)
                self._writer = pa_csv.CSVWriter(self._file, table.schema, write_options=options)
        self._writer.write_table(table.cast(self._writer.schema) if self.format == "parquet" else table)

    def __exit__(self, exc_type, exc, tb) -> bool:
        try:
            if exc_type is None:
                self._flush()
            if self._writer is None and exc_type is None and self.format != "ndjson":
                # No rows: still a valid file, with the header / schema.
                empty = {"row": pa.array([], pa.int64()), "loss": pa.array([], pa.float64())}
                self._write(pa.table({**empty, **{name: pa.array([], pa.string()) for name in self.keep}}))
            if self._writer is not None:
                self._writer.close()
            self._file.close()
            if exc_type is None:
                os.replace(self._tmp, self.path)
                self._tmp = None
        finally:
            if self._tmp is not None and os.path.exists(self._tmp):
                os.unlink(self._tmp)
        return False
