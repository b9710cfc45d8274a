"""Arrow IPC inputs (``.arrow``, ``.feather``, ``.ipc``, ``.arrows``): the file format (which is
Feather v2) and the stream format, read record batch by record batch.

A plain file is read through an ordinary file handle, not a memory map: each record batch is read
when it is needed, only its selected columns (``included_fields``), into memory that is freed with
the batch, so the resident memory stays at about one batch whatever the file's size (a map's pages
stay resident once touched). A batch larger than ``--batch-rows`` is cut into slices of that many
rows. The stream format is read as it arrives, also from a pipe or a decompressed ``.gz``/``.zst``;
the file format needs to seek (its index is at the end), so on a pipe or a decompressed stream it
is read into memory first, as Parquet is. Dictionary-encoded columns (pandas categoricals) are
read as their values. Rows in messages are records, 1-based, as for Parquet. Feather v1 is refused:
pyarrow deprecated reading it (25.0) and it has no record batches, so it could only be read whole.
"""

from __future__ import annotations

from collections.abc import Iterator

from cecli.errors import InputError

from .base import pa
from .inputs import Input, _arrow_fields, _one_line, _rechunk
from .streams import ARROW_FILE_MAGIC, FEATHER_V1_MAGIC

_HINT = "the file may be truncated or corrupt"


class IpcInput(Input):
    """An Arrow IPC file or stream, read by record batch."""

    format = "arrow"

    def __init__(self, display: str, stream, head: bytes, plain_path: str | None) -> None:
        super().__init__(display)
        import pyarrow.ipc  # noqa: F401 - makes pa.ipc available

        if head.startswith(FEATHER_V1_MAGIC):
            raise InputError(
                "a Feather v1 file, which cecli does not read",
                file=display,
                hint="write it again as Feather v2 or Arrow IPC (pyarrow.feather.write_feather's default)",
            )
        self._path = plain_path
        self._is_file = head.startswith(ARROW_FILE_MAGIC)
        self._done = 0  # record batches read (file format), for progress
        self._source = None
        self._reader = None
        try:
            if self._is_file:
                self._source = pa.OSFile(plain_path) if plain_path is not None else pa.BufferReader(stream.read())
                reader = pa.ipc.open_file(self._source)
                self._count = reader.num_record_batches
            else:
                self._source = pa.OSFile(plain_path) if plain_path is not None else stream
                reader = self._reader = pa.ipc.open_stream(self._source)
            schema = reader.schema
        except (pa.ArrowException, OSError) as error:
            self.close()
            raise InputError(f"not a readable Arrow IPC file: {_one_line(error)}", file=display, hint=_HINT) from None
        finally:
            if plain_path is not None or self._is_file:
                stream.close()  # read or not needed: the source above holds the data
        self._set_columns(_arrow_fields(pa.schema([_decoded(field) for field in schema])))
        self._indices = {field.name: i for i, field in enumerate(schema)}

    def position(self) -> int | None:
        if self.size is None:
            return None
        if self._is_file:
            return int(self.size * self._done / self._count) if self._count else None
        try:
            return self._source.tell()
        except (OSError, ValueError, pa.ArrowException):
            return None

    def record_batches(self, names, settings, numeric=frozenset()) -> Iterator[pa.RecordBatch]:
        try:
            if self._is_file:
                fields = sorted(self._indices[n] for n in names)
                options = pa.ipc.IpcReadOptions(use_threads=False, included_fields=fields)
                reader = pa.ipc.open_file(self._source, options=options)
                batches = (reader.get_batch(i) for i in range(reader.num_record_batches))
            else:
                if self._reader is None:  # a second pass over a plain file: read it again
                    self._source.close()
                    self._source = pa.OSFile(self._path)
                    self._reader = pa.ipc.open_stream(self._source)
                batches, self._reader = self._reader, None
            self._done = 0
            for record_batch in batches:
                self._done += 1
                record_batch = _decode_dictionaries(record_batch.select(names))
                yield from _rechunk(record_batch, settings.batch_rows)
        except GeneratorExit:  # closed early, or collected at exit when `pa` may be gone: nothing to report
            raise
        except (pa.ArrowException, OSError) as error:
            raise InputError(f"cannot read Arrow IPC data: {_one_line(error)}", file=self.display, hint=_HINT) from None

    def close(self) -> None:
        if self._source is not None:
            self._source.close()


def _decoded(field: pa.Field) -> pa.Field:
    """A field as cecli reads it: a dictionary-encoded column as its values."""
    return field.with_type(field.type.value_type) if pa.types.is_dictionary(field.type) else field


def _decode_dictionaries(record_batch: pa.RecordBatch) -> pa.RecordBatch:
    if not any(pa.types.is_dictionary(field.type) for field in record_batch.schema):
        return record_batch
    columns = [c.dictionary_decode() if pa.types.is_dictionary(c.type) else c for c in record_batch.columns]
    return pa.RecordBatch.from_arrays(columns, names=record_batch.schema.names)
