"""Parquet inputs, streamed by row group."""

from __future__ import annotations

from cecli.errors import InputError

from .base import budget_rows, pa
from .inputs import Input, _arrow_fields, _one_line


class ParquetInput(Input):
    """Parquet, read by row group / record batch; a pipe is buffered in memory first."""

    format = "parquet"

    def __init__(self, display, stream, plain_path: str | None) -> None:
        super().__init__(display)
        import pyarrow.parquet as pq

        try:
            source = plain_path if plain_path is not None else pa.BufferReader(stream.read())
            if plain_path is not None:
                stream.close()
            # pre_buffer=False: read a row group at a time, so memory does not grow with the file.
            self.file = pq.ParquetFile(source, pre_buffer=False)
            schema = self.file.schema_arrow
        except (pa.ArrowException, OSError) as error:
            raise InputError(
                f"not a readable Parquet file: {_one_line(error)}",
                file=display,
                hint="the file may be truncated or corrupt",
            ) from None
        self._set_columns(_arrow_fields(schema))

    def position(self) -> int | None:
        total = self.file.metadata.num_rows
        return None if self.size is None or not total else int(self.size * self._rows_read / total)

    def record_batches(self, names, settings, numeric=frozenset()):
        self._rows_read = 0
        try:
            # One decoding thread: the caller's math has the other core (pyarrow's pool would compete).
            # Batches within the byte budget: 65,536 rows of 1,000 classes would decode 250 MB at once.
            rows = budget_rows(self._width(names), settings.batch_rows, settings.batch_bytes)
            batches = self.file.iter_batches(batch_size=rows, columns=names, use_threads=False)
            for record_batch in batches:
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

    def _width(self, names: list[str]) -> int:
        """Values per record in the `names` columns (list items counted), from the first row group's metadata."""
        metadata = self.file.metadata
        group = metadata.row_group(0) if metadata.num_row_groups else None
        if group is None or not group.num_rows:
            return len(names)
        prefixes = tuple(f"{name}." for name in names)
        wanted = set(names)
        values = 0
        for i in range(group.num_columns):
            column = group.column(i)
            path = column.path_in_schema
            if path in wanted or path.startswith(prefixes):  # a list column's leaf is "name.list.element"
                values += column.num_values
        return max(len(names), -(-values // group.num_rows))

    def close(self) -> None:
        self.file.close()
