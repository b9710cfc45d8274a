"""NDJSON input: one JSON record per line, parsed in blocks on every core."""

from __future__ import annotations

import io
import os
import re
from collections.abc import Iterator

from cecli.errors import InputError

from .base import pa
from .inputs import Input, _arrow_fields
from .json_values import (
    _arrow_kind,
    _json_hint,
    _json_kind,
    _json_loads,
    _json_message,
    _misfit_error,
)
from .streams import _BOM


class NdjsonInput(Input):
    """Newline-delimited JSON records, streamed with pyarrow's JSON reader.

    A column's type is that of its first non-null value in the first 64 KiB (a column that is
    null there is read as numbers); every later value must have the same JSON type.
    """

    format = "ndjson"
    _whitespace_is_blank = True

    def __init__(self, display, head: bytes, stream, reopen) -> None:
        super().__init__(display)
        self._stream = stream
        self._track_lines(stream, reopen)
        text = head.removeprefix(_BOM)
        body = text.lstrip()
        row = len(_LINE_END.findall(text, 0, len(text) - len(body))) + 1  # after leading blank lines
        lines = _LINE_END.split(body)
        try:
            record = _json_loads(lines[0])
        except ValueError as error:
            raise InputError(_json_message(error), file=display, row=row, hint=_json_hint(error)) from None
        if not isinstance(record, dict):
            raise InputError("a line is not a JSON object", file=display, row=row, hint="each line must be {...}")
        kinds = {name: _json_kind(value) for name, value in record.items()}
        for line in lines[1:-1]:  # the head's other complete lines, for columns that start with null
            if "null" not in kinds.values():
                break
            try:
                later = _json_loads(line) if line.strip() else {}
            except ValueError:
                break  # reported when the data is read
            for name, kind in kinds.items():
                if kind == "null" and isinstance(later, dict):
                    kinds[name] = _json_kind(later.get(name))
        self._kinds = {name: "number" if kind == "null" else kind for name, kind in kinds.items()}
        self._set_columns(_arrow_fields(pa.schema([(n, _arrow_kind(k)) for n, k in self._kinds.items()])))

    def record_batches(self, names, settings, numeric=frozenset()):
        """Arrow batches of `names`, parsed in blocks of whole lines on every core, in order.

        pyarrow's streaming JSON reader parses on one core and holds about 50 times its block
        in parser state: blocks of 1 MiB parsed by ``read_json`` on a pool sized to the machine
        use every core and keep memory at a few blocks. The small tables are joined again into
        batches of `settings.batch_rows` rows.
        """
        import pyarrow.json as pa_json

        from .csv import _newline_blocks
        from .pool import cores, ordered_map

        pool = _parsing_pool()
        parse_options = pa_json.ParseOptions(
            explicit_schema=pa.schema([(n, _arrow_kind(self._kinds[n])) for n in names]),
            unexpected_field_behavior="ignore",
        )

        def parse(block: bytes) -> pa.Table:
            # One parse block per block (a line longer than _NDJSON_BLOCK_BYTES makes a longer block).
            options = pa_json.ReadOptions(block_size=len(block) + 1, use_threads=False)
            return pa_json.read_json(
                pa.py_buffer(block), read_options=options, parse_options=parse_options, memory_pool=pool
            )

        done = 0
        parts: list[pa.Table] = []
        rows = 0
        try:
            blocks = _newline_blocks(self._stream, _NDJSON_BLOCK_BYTES)
            for table in ordered_map(parse, blocks, cores(), name="cecli-json"):
                done += table.num_rows
                parts.append(table)
                rows += table.num_rows
                if rows >= settings.batch_rows:
                    yield from _joined(parts, settings.batch_rows, pool)
                    parts, rows = [], 0
            yield from _joined(parts, settings.batch_rows, pool)
        except GeneratorExit:  # closed early, or collected at exit when `pa` may be gone: nothing to report
            raise
        except pa.ArrowInvalid as error:
            raise self._locate(error, names, done) from None

    def close(self) -> None:
        self._stream.close()

    def _type_error(self, record: dict, names: list[str], number: int) -> InputError | None:
        """The error of the first of `names` whose value in `record` (row `number`) differs in JSON type
        from the column's, else ``None``."""
        for name in names:
            error = _misfit_error(record.get(name), self._kinds[name], file=self.display, row=number, column=name)
            if error is not None:
                return error
        return None

    def _locate(self, error: Exception, names: list[str], done: int) -> InputError:
        """The error pyarrow found, on its line: found again by reading the file line by line,
        or for a stream that cannot be reread, from pyarrow's message (`done` records were read)."""
        if self._reopen is not None:
            with self._reopen() as stream, io.TextIOWrapper(stream, encoding="utf-8-sig", errors="replace") as lines:
                for number, line in enumerate(lines, 1):  # universal newlines: \n, \r\n and \r end a line
                    if not line.strip():
                        continue
                    try:
                        record = _json_loads(line.rstrip("\r\n"))
                    except ValueError as bad:
                        return InputError(_json_message(bad), file=self.display, row=number, hint=_json_hint(bad))
                    if not isinstance(record, dict):
                        return InputError(
                            "line is not a JSON object", file=self.display, row=number, hint="each line must be {...}"
                        )
                    misfit = self._type_error(record, names, number)
                    if misfit is not None:
                        return misfit
        message = str(error).removeprefix("JSON parse error: ")
        # e.g. "Column(/y_pred) changed from number to string in row 3" (the row counts from the block's start)
        changed = re.match(r"Column\(/(.*?)(/\[\])?\) changed from (\w+) to (\w+)(?: in row (\d+))?", message)
        if changed:
            name, inner, before, after, row = changed.groups()
            words = {"number": "a number", "string": "text", "boolean": "a boolean", "object": "an object"}
            words["array"] = "a list"
            got, had = words.get(after, after), words.get(before, before)
            had = "a list of numbers" if before == "array" else had  # as a list column is described above
            return InputError(
                f"a list holding {got} where earlier rows have a list of numbers"
                if inner
                else f"{got} where earlier rows have {had}",
                file=self.display,
                row=None if row is None else self.user_row(done + int(row)),
                column=name,
                hint="use one type per column",
            )
        return InputError(
            f"invalid JSON: {message}", file=self.display, hint="check that every line is one JSON object"
        )


_LINE_END = re.compile(rb"\r\n|\r|\n")


_NDJSON_BLOCK_BYTES = 1 << 20


def _joined(tables: list[pa.Table], rows: int, pool: pa.MemoryPool | None) -> Iterator[pa.RecordBatch]:
    """The rows of `tables` as record batches of up to `rows` rows (one copy into whole batches)."""
    if tables:
        table = tables[0] if len(tables) == 1 else pa.concat_tables(tables)
        yield from table.combine_chunks(memory_pool=pool).to_batches(max_chunksize=rows)


def _parsing_pool() -> pa.MemoryPool | None:
    """The Arrow memory pool for parsed JSON: jemalloc where pyarrow has it, else pyarrow's default.

    pyarrow's default allocator, mimalloc, keeps the pages each parsing thread has freed for
    that thread: how much it holds depends on how the threads interleave. Measured on the bench's
    1M-line NDJSON with another process busy on one core (farm-bench, 9 alternating pairs): peak
    RSS 129-154 MiB with mimalloc, 105-109 MiB with jemalloc, the same time (alone on the
    machine both about 106 MiB). The Parquet and CSV readers keep the default: for the whole
    process jemalloc made Parquet 1.15x slower and CSV 1.01-1.03x (README, Performance).
    ``ARROW_DEFAULT_MEMORY_POOL``, when set, is the user's choice and is kept.
    """
    if os.environ.get("ARROW_DEFAULT_MEMORY_POOL"):
        return None
    try:
        return pa.jemalloc_memory_pool()
    except NotImplementedError:  # a pyarrow built without jemalloc (e.g. on Windows)
        return None
