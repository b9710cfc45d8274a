"""A long JSON object of columns, streamed column by column from its own file handles."""

from __future__ import annotations

import re

import numpy as np

from cecli.errors import InputError

from .base import pa
from .inputs import Input, _arrow_fields
from .json_array import _Scanner
from .json_values import (
    _JSON_HINT,
    _arrow_kind,
    _DuplicateKey,
    _json_kind,
    _json_loads,
    _json_message,
    _misfit_error,
)


class _ColumnItems:
    """The values of one column of a JSON object of columns, read from its own handle on the file.

    `start` and `end` are the places of the column's ``[`` and ``]``; `take(n)` returns the
    text of the next `n` values (separated by their commas) and where each ends.
    """

    def __init__(self, path: str, start: int, end: int, display: str) -> None:
        try:
            self._file = open(path, "rb")  # noqa: SIM115 - closed by close()
            self._file.seek(start + 1)
        except OSError as error:
            raise InputError(f"cannot read: {error.strerror or error}", file=display, hint="check the file") from None
        self._left = end - start - 1  # bytes of the column still to read
        self._display = display
        self._scanner = _Scanner()
        self._text = bytearray()
        self._commas: list[int] = []  # places in _text of the commas between values

    def take(self, n: int) -> tuple[bytes, list[int]]:
        """The text of the next `n` values (fewer at the end) and the commas between them (places in it)."""
        while len(self._commas) < n and self._left > 0:
            try:
                block = self._file.read(min(self._left, 1 << 18))
            except OSError as error:
                message = f"cannot read: {error.strerror or error}"
                raise InputError(message, file=self._display, hint="check the file") from None
            if not block:
                raise InputError("the file changed while it was read", file=self._display, hint="read it again")
            self._left -= len(block)
            spots, kinds, _, before, _ = self._scanner.scan(np.frombuffer(block, np.uint8), block)
            base = len(self._text)
            self._commas += (spots[(kinds == 44) & (before == 0)] + base).tolist()
            self._text += block
        if len(self._commas) >= n:
            cut = self._commas[n - 1]
            text, commas = bytes(self._text[:cut]), self._commas[: n - 1]
            del self._text[: cut + 1]
            self._commas = [c - cut - 1 for c in self._commas[n:]]
        else:  # the last values
            text, commas = bytes(self._text), self._commas
            self._text, self._commas = bytearray(), []
        return text, commas

    def close(self) -> None:
        self._file.close()


def _column_spans(stream, display: str) -> dict[str, tuple[int, int, int]]:
    """Each column of a JSON object of columns: the places of its ``[`` and ``]`` and its number of values.

    One pass over the document, read in blocks as `_Scanner` follows it. The messages are those of
    `JsonInput` for a column that is not a list and for a duplicate name; a syntax error between the
    columns is named without its line.
    """
    scanner = _Scanner()
    spans: dict[str, tuple[int, int, int]] = {}
    offset = 0  # of the block in the file
    key_from: int | None = None  # where the text of the key being read starts in this block
    carry = b""  # the key's text from earlier blocks
    opened: tuple[str, int] | None = None  # the column being read and the place of its [
    commas = 0  # commas between the values of the open column so far
    done = False

    def fail(message: str, column: str | None = None, hint: str = "check the JSON syntax"):
        raise InputError(message, file=display, column=column, hint=hint)

    def not_a_list(text: bytes):
        name = text.split(b":", 1)[0].strip()
        try:
            column = _json_loads(name) if name else None
        except ValueError:
            column = None
        fail("column is not a list", column=column, hint='use {"column": [v1, v2, ...]}')

    def key_of(text: bytes) -> str:
        found = re.fullmatch(rb'\s*("(?:[^"\\]|\\.)*")\s*:\s*', text)
        if found is None:
            fail("invalid JSON: a column's name is not followed by ':' and a list")
        name = _json_loads(found.group(1))
        if name in spans:
            raise _DuplicateKey(name)
        return name

    while block := stream.read(1 << 20):
        if done:
            if block.strip():
                fail("text after the JSON document", hint="a JSON document holds one object")
            continue
        spots, kinds, _, before, after = scanner.scan(np.frombuffer(block, np.uint8), block)
        inner = spots[(kinds == 44) & (before == 2)]  # commas between a column's values
        counted = 0  # of inner, counted for the open column
        for index in np.flatnonzero(((before <= 1) | (after <= 1)) & (kinds != 10) & (kinds != 13)).tolist():
            spot, kind, was, now = int(spots[index]), int(kinds[index]), int(before[index]), int(after[index])
            if was == 0 and kind == 123 and not spans and opened is None and key_from is None:  # it begins
                key_from, carry = spot + 1, b""
            elif was == 1 and kind == 91 and key_from is not None:  # a column's list begins
                opened, commas = (key_of(carry + block[key_from:spot]), offset + spot), 0
                key_from, carry = None, b""
                counted = int(np.searchsorted(inner, spot))
            elif now == 1 and kind == 93 and opened is not None:  # and ends
                upto = int(np.searchsorted(inner, spot))
                commas += upto - counted
                counted = upto
                start = opened[1]
                empty = commas == 0 and start >= offset and not block[start - offset + 1 : spot].strip()
                spans[opened[0]] = (start, offset + spot, 0 if empty else commas + 1)
                opened = None
            elif was == 1 and kind == 44 and opened is None and key_from is None:  # between two columns
                key_from, carry = spot + 1, b""
            elif was == 1 and kind in (44, 123) and key_from is not None:  # a value that is not a list
                not_a_list(carry + block[key_from:spot])
            elif now == 0 and kind == 125 and opened is None:  # the document ends
                if key_from is not None and (carry + block[key_from:spot]).strip():
                    not_a_list(carry + block[key_from:spot])
                done = True
                if block[spot + 1 :].strip():
                    fail("text after the JSON document", hint="a JSON document holds one object")
                break
            else:
                fail("invalid JSON: brackets, braces or commas do not match")
        if opened is not None:
            commas += len(inner) - counted
        if key_from is not None and not done:
            carry += block[key_from:]
            key_from = 0
            if len(carry) > 1 << 20:
                fail("invalid JSON: a column's name is not followed by a list")
        offset += len(block)
    if not done:
        fail("the JSON document is not closed: the input ends inside it", hint="the file may be cut short")
    return spans


class JsonColumnsInput(Input):
    """A JSON object of columns longer than its first 64 KiB, in a file: each column read from its own handle.

    A first pass finds where each column's list lies and how many values it holds (`_column_spans`);
    the batches then take the next values of every column, parsed by pyarrow. A column's type is that
    of its first non-null value among its first 1000 (all null: numbers); every later value must have
    the same JSON type. A row number in a message is the 1-based record.
    """

    format = "json"

    def __init__(self, display: str, stream, path: str) -> None:
        super().__init__(display)
        self._path = path
        try:
            spans = _column_spans(stream, display)
        except _DuplicateKey as error:
            raise InputError(
                f"duplicate key {error.key!r} in a JSON object", file=display, hint="give every column a unique name"
            ) from None
        finally:
            stream.close()
        if not spans:
            raise InputError(
                "the JSON document is {}: no records",
                file=display,
                hint='use [{"y_true": 1, "y_pred": 0.9}, ...] or {"y_true": [...], "y_pred": [...]}',
            )
        counts = {name: n for name, (_, _, n) in spans.items()}
        first = next(iter(counts))
        for name, n in counts.items():
            if n != counts[first]:
                raise InputError(
                    f"has {n} values but {first!r} has {counts[first]}",
                    file=display,
                    column=name,
                    hint="every column needs one value per row",
                )
        self._spans, self._rows, self._rows_read = spans, counts[first], 0
        self._kinds = {name: self._kind(name) for name in spans}
        self._set_columns(_arrow_fields(pa.schema([(n, _arrow_kind(k)) for n, k in self._kinds.items()])))

    def position(self) -> int | None:
        """Bytes consumed so far, estimated from the rows read (the first pass read the whole file)."""
        return None if self.size is None or not self._rows else int(self.size * self._rows_read / self._rows)

    def _kind(self, name: str) -> str:
        """The JSON type of the column's first non-null value among its first 1000 (all null: a number)."""
        items = _ColumnItems(self._path, *self._spans[name][:2], self.display)
        try:
            text, _ = items.take(1000)
        finally:
            items.close()
        try:
            values = _json_loads(b"[" + text + b"]")
        except ValueError:
            return "number"  # the error is reported with its row when the column is read
        return next((_json_kind(v) for v in values if v is not None), "number")

    def record_batches(self, names, settings, numeric=frozenset()):
        from functools import partial

        import pyarrow.json as pa_json

        from .pool import cores, ordered_map

        readers = {name: _ColumnItems(self._path, *self._spans[name][:2], self.display) for name in names}
        schemas = {name: pa.schema([("v", pa.list_(_arrow_kind(self._kinds[name])))]) for name in names}

        def values(name: str, offset: int, n: int) -> pa.Array:
            # The next n values as a one-row list, parsed by pyarrow and flattened (each column has its own
            # reader, so the columns of a batch are read and parsed on every core).
            text, commas = readers[name].take(n)
            line = b'{"v": [' + text + b"]}\n"
            try:
                table = pa_json.read_json(
                    pa.py_buffer(line),
                    read_options=pa_json.ReadOptions(block_size=len(line) + 1, use_threads=False),
                    parse_options=pa_json.ParseOptions(explicit_schema=schemas[name]),
                )
            except pa.ArrowInvalid:
                raise self._locate(name, text, commas, offset) from None
            return table.column("v").combine_chunks().flatten()

        workers = min(cores(), len(names))
        try:
            for offset in range(0, self._rows, settings.batch_rows):
                n = min(settings.batch_rows, self._rows - offset)
                read = ordered_map(partial(values, offset=offset, n=n), names, workers, name="cecli-json")
                record_batch = pa.RecordBatch.from_arrays(list(read), names=names)
                self._rows_read = offset + n
                yield record_batch
        finally:
            for reader in readers.values():
                reader.close()

    def _locate(self, name: str, text: bytes, commas: list[int], offset: int) -> InputError:
        """The first value of a batch of column `name` that is not JSON or not of the column's type."""
        bounds = [-1, *commas, len(text)]
        kind = self._kinds[name]
        for index in range(len(bounds) - 1):
            row = offset + index + 1
            try:
                value = _json_loads(text[bounds[index] + 1 : bounds[index + 1]].strip())
            except ValueError as bad:
                message = _json_message(bad).replace(" at column", " in the value at character")
                return InputError(message, file=self.display, row=row, column=name, hint=_JSON_HINT)
            misfit = _misfit_error(value, kind, file=self.display, row=row, column=name)
            if misfit is not None:
                return misfit
        return InputError("cannot read the column", file=self.display, column=name, hint="use one type per column")
