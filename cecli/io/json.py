"""JSON and NDJSON inputs: records of numbers, text, booleans and lists of numbers."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator

import numpy as np

from cecli.errors import InputError

from .base import pa
from .inputs import Input, _arrow_fields, _one_line
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

        parse_options = pa_json.ParseOptions(
            explicit_schema=pa.schema([(n, _arrow_kind(self._kinds[n])) for n in names]),
            unexpected_field_behavior="ignore",
        )

        def parse(block: bytes) -> pa.Table:
            # One parse block per block (a line longer than _NDJSON_BLOCK_BYTES makes a longer block).
            options = pa_json.ReadOptions(block_size=len(block) + 1, use_threads=False)
            return pa_json.read_json(pa.py_buffer(block), read_options=options, parse_options=parse_options)

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
                    yield from _joined(parts, settings.batch_rows)
                    parts, rows = [], 0
            yield from _joined(parts, settings.batch_rows)
        except GeneratorExit:  # closed early, or collected at exit when `pa` may be gone: nothing to report
            raise
        except pa.ArrowInvalid as error:
            raise self._locate(error, names, done) from None

    def close(self) -> None:
        self._stream.close()

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
                    for name in names:
                        misfit = _misfit(record.get(name), self._kinds[name])
                        if misfit is not None:
                            return InputError(
                                f"{misfit} where earlier rows have {_expected(self._kinds[name])}",
                                file=self.display,
                                row=number,
                                column=name,
                                hint="use one type per column",
                            )
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


def _joined(tables: list[pa.Table], rows: int) -> Iterator[pa.RecordBatch]:
    """The rows of `tables` as record batches of up to `rows` rows (one copy into whole batches)."""
    if tables:
        table = tables[0] if len(tables) == 1 else pa.concat_tables(tables)
        yield from table.combine_chunks().to_batches(max_chunksize=rows)


_JSON_DEPTH = 100  # deeper than any record cecli reads (3 levels: array, object, list)


_JSON_HINT = "cecli reads records of numbers, text, booleans and lists of numbers"


_KIND_WORDS = {"number": "a number", "boolean": "a boolean", "text": "text", "list": "a list", "object": "an object"}


_KIND_PLURALS = {"number": "numbers", "boolean": "booleans", "text": "text", "list": "lists", "object": "objects"}


class _TooDeep(json.JSONDecodeError):
    """JSON nested deeper than Python's parser follows (it raised RecursionError)."""


def _json_int(text: str) -> int | float:
    """A JSON integer: an int when it fits int64 (class labels stay integers), else the nearest float64.

    JSON sets no size limit on numbers. As CSV and NDJSON (read by pyarrow) do, a number
    outside the int64 range is read as float64 (``inf`` beyond about 1.8e308); the checks on
    values then judge it (a 30-digit label is outside the classes, a 30-digit logit is fine).
    """
    if len(text) <= 20:
        value = int(text)
        if -(1 << 63) <= value < 1 << 63:
            return value
    return float(text)


def _widen(value):
    """`value` with its integers beyond int64 as `_json_int` reads them (in lists and objects too)."""
    if isinstance(value, int) and not isinstance(value, bool) and not -(1 << 63) <= value < 1 << 63:
        return _json_int(str(value))
    if isinstance(value, list):
        return [_widen(item) for item in value]
    if isinstance(value, dict):
        return {key: _widen(item) for key, item in value.items()}
    return value


def _json_loads(text: str | bytes, **options):
    """``json.loads``, with too deep nesting a JSONDecodeError and integers of any length read.

    Integers too long for Python's ``int`` (over 4300 digits) are read as `_json_int` reads
    them; the other integers beyond int64 are widened when their column is made (`_widen`).
    ``NaN``, ``Infinity`` and ``-Infinity`` (which Python's json writes) are read as numbers, as
    pyarrow's NDJSON reader reads them; the checks on values then judge them.
    """
    if isinstance(text, bytes):
        text = text.decode("utf-8")
    try:
        try:
            return json.loads(text, **options)
        except ValueError as error:
            if isinstance(error, json.JSONDecodeError) or "digits" not in str(error):
                raise
            return json.loads(text, parse_int=_json_int, **options)
    except RecursionError:
        depth = 0
        for token in re.finditer(r'"(?:[^"\\]|\\.)*"|[\[\]{}]', text):
            depth += {"[": 1, "{": 1, "]": -1, "}": -1}.get(token.group(), 0)
            if depth > _JSON_DEPTH:
                raise _TooDeep("nested too deeply", text, token.start()) from None
        raise _TooDeep("nested too deeply", text, 0) from None


def _json_hint(error: ValueError) -> str:
    return _JSON_HINT if isinstance(error, _TooDeep) else "each line must be one JSON object"


def _json_message(error: ValueError) -> str:
    if isinstance(error, _TooDeep):
        return f"JSON nested too deeply at column {error.colno}"
    if isinstance(error, json.JSONDecodeError):
        return f"invalid JSON at column {error.colno}: {error.msg}"
    return f"invalid JSON: {error}"  # e.g. invalid UTF-8


def _json_kind(value) -> str:
    """The JSON type of a parsed value: null, boolean, number, text, list or object."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "text"
    return "list" if isinstance(value, list) else "object"


def _arrow_kind(kind: str) -> pa.DataType:
    """The Arrow type an NDJSON column of a JSON type is read as (lists as lists of numbers)."""
    if kind == "list":
        return pa.list_(pa.float64())
    if kind == "object":
        return pa.struct([])  # a column of objects is listed, and refused if chosen
    return {"boolean": pa.bool_(), "text": pa.string()}.get(kind, pa.float64())


def _expected(kind: str) -> str:
    return "a list of numbers" if kind == "list" else _KIND_WORDS[kind]


def _misfit(value, kind: str) -> str | None:
    """What `value` is when it is not of JSON type `kind`, else ``None`` (null fits every type)."""
    got = _json_kind(value)
    if got == "null" or (got == kind and got != "list"):
        return None
    if got != kind:
        return _KIND_WORDS[got]
    odd = next((_json_kind(item) for item in value if _json_kind(item) not in ("number", "null")), None)
    return None if odd is None else f"a list holding {_KIND_WORDS[odd]}"


def _first_misfit(values: list) -> tuple[int, str] | None:
    """The 1-based row and description of the first value whose JSON type differs from the values before it.

    Items of lists are compared with the items before them in the same way.
    """
    first = inner = None
    for number, value in enumerate(values, 1):
        kind = _json_kind(value)
        if kind == "null":
            continue
        first = first or kind
        if kind != first:
            return number, f"{_KIND_WORDS[kind]} where earlier rows have {_KIND_WORDS[first]}"
        for item in value if kind == "list" else ():
            item_kind = _json_kind(item)
            if item_kind == "null":
                continue
            inner = inner or item_kind
            if item_kind != inner:
                return (
                    number,
                    f"a list holding {_KIND_WORDS[item_kind]} where earlier values are {_KIND_PLURALS[inner]}",
                )
    return None


class _Scanner:
    """The structure of JSON text as its blocks stream past: the bytes outside strings that matter.

    It follows strings (with their backslash escapes) and the nesting depth from block to block,
    with NumPy over the few bytes that matter (quotes, backslashes, brackets, braces, commas,
    line ends); a block of plain numbers costs a few passes over its bytes.
    """

    def __init__(self) -> None:
        self.depth = 0  # nesting depth at the end of what was scanned
        self._in_string = False
        self._backslashes = 0  # the backslashes that ended the last block (they may escape a quote)

    def scan(self, data: np.ndarray, block) -> tuple[np.ndarray, ...]:
        """The places (in `block`) of its brackets, braces, commas and line ends outside strings, their
        bytes, their step in depth (+1, -1 or 0), and the depth before and after each."""
        where = np.flatnonzero(_special(data))
        kinds = data[where]
        quotes = kinds == 34
        real = quotes.copy()
        # A quote after an odd run of backslashes is escaped (rare: find those one by one).
        at = where[quotes]
        maybe = np.flatnonzero((at > 0) & (data[np.maximum(at - 1, 0)] == 92))
        if self._backslashes and at.size and at[0] == 0:
            maybe = np.concatenate([[0], maybe])
        quote_places = np.flatnonzero(quotes)
        for index in maybe.tolist():
            position = int(at[index])
            run = 0
            while position - run - 1 >= 0 and block[position - run - 1] == 92:
                run += 1
            if run == position:
                run += self._backslashes
            if run % 2:
                real[quote_places[index]] = False
        inside = (np.cumsum(real) + self._in_string) % 2 == 1  # a quote that opens a string is marked inside
        outside = ~inside & ~quotes & (kinds != 92)
        if real.any():
            self._in_string = bool(inside[np.flatnonzero(real)[-1]])
        tail = 0
        while tail < len(block) and block[-1 - tail] == 92:  # without copying the block
            tail += 1
        self._backslashes = tail + (self._backslashes if tail == len(block) else 0)
        spots, kinds = where[outside], kinds[outside]
        step = np.zeros(len(kinds), np.int64)
        step[(kinds == 123) | (kinds == 91)] = 1
        step[(kinds == 125) | (kinds == 93)] = -1
        after = self.depth + np.cumsum(step)
        before = after - step
        if len(after):
            self.depth = int(after[-1])
        return spots, kinds, step, before, after


class _ArrayRecords(io.RawIOBase):
    """The records of a JSON array of objects as NDJSON, one record per line, converted as the bytes stream past.

    Every byte keeps its place, so no copy of the data is made beyond the block read: outside
    strings the array's ``[`` becomes a blank and its ``]`` a line end, a comma between records a
    line end, and a line end inside a record a blank (raw line ends cannot be inside a JSON
    string). Line N of the result is then record N (see `_Scanner`). What lies between
    records is checked here (a record that is not an object, a missing or extra comma, text
    after the array, an array cut short); what lies inside a record is checked by the NDJSON
    reader that reads the result.
    """

    def __init__(self, stream, display: str) -> None:
        self._stream = stream
        self._display = display
        self._structure = _Scanner()  # depth 1 between records
        self._last = _OPEN_NONE  # the last structural event outside records (see _EVENTS)
        self._start = True
        self.records = 0  # records begun so far
        self.error: InputError | None = None

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        if not self.closed:
            self._stream.close()
        super().close()

    def readinto(self, buffer) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def read(self, size: int = -1) -> bytearray:
        if self.error is not None:
            raise self.error
        block = bytearray(self._stream.read(size if size and size > 0 else 1 << 22))
        if block:
            del block[self._convert(block) :]
        elif self._last != _CLOSE_ARRAY:
            self._fail(
                "the JSON array is not closed: the input ends inside it",
                row=self.records or None,
                hint="the file may be cut short",
            )
        if self.error is not None and not block:
            raise self.error
        return block

    def _fail(self, message: str, *, row: int | None, hint: str, keep: int = 0) -> int:
        """Note the error, raised on the next read; the records before it (`keep` bytes) are still read."""
        self.error = InputError(message, file=self._display, row=row, hint=hint)
        return keep

    def _convert(self, block: bytearray) -> int:
        """Convert `block` in place; return how many of its bytes hold whole records before an error."""
        data = np.frombuffer(block, np.uint8)
        if self._start:
            self._start = False
            if block.startswith(_BOM):
                data[:3] = 32
        if self._last == _CLOSE_ARRAY:  # after the array: only white space
            if block.strip():
                return self._fail("text after the JSON array", row=None, hint="a JSON document holds one array")
            return len(block)
        spots, kinds, step, before, after = self._structure.scan(data, block)
        data[spots[(kinds == 10) | (kinds == 13)]] = 32
        # The events outside records, in order: array opened and closed, record begun and ended, comma.
        events = np.full(len(kinds), -1, np.int64)
        events[(step == 1) & (before <= 1)] = _OTHER
        events[(step == -1) & (after <= 1)] = _OTHER
        events[(kinds == 44) & (before == 1)] = _COMMA
        events[(kinds == 91) & (before == 0)] = _OPEN_ARRAY
        events[(kinds == 123) & (before == 1)] = _OPEN_RECORD
        events[(kinds == 125) & (after == 1)] = _CLOSE_RECORD
        events[(kinds == 93) & (after == 0)] = _CLOSE_ARRAY
        events[after < 0] = _OTHER
        chosen = np.flatnonzero(events >= 0)
        sequence = events[chosen]
        previous = np.concatenate([[self._last], sequence[:-1]])
        bad = np.flatnonzero(~_ALLOWED[previous, sequence])
        begun = np.cumsum(sequence == _OPEN_RECORD)
        spots = spots[chosen]
        if bad.size:
            first = int(bad[0])
            record = self.records + int(begun[first]) + (sequence[first] != _OPEN_RECORD)
            # The bytes up to the last separator before the error hold whole records: read them first.
            separators = np.flatnonzero((sequence[:first] == _COMMA) | (sequence[:first] == _OPEN_ARRAY))
            keep = int(spots[separators[-1]]) + 1 if separators.size else 0
            self._mark(data, spots[:first], sequence[:first])
            if previous[first] == _CLOSE_ARRAY:
                return self._fail(
                    "text after the JSON array", row=None, hint="a JSON document holds one array", keep=len(block)
                )
            if previous[first] == _CLOSE_RECORD and sequence[first] == _OPEN_RECORD:
                message = "invalid JSON: a comma is missing before the record"
                return self._fail(message, row=record, hint="use [{...}, {...}]", keep=keep)
            return self._fail("record is not a JSON object", row=record, hint="use [{...}, {...}]", keep=keep)
        if sequence.size:
            self.records += int(begun[-1])
            self._last = int(sequence[-1])
        self._mark(data, spots, sequence)
        if self._last == _CLOSE_ARRAY and block[int(spots[-1]) + 1 :].strip():
            return self._fail(
                "text after the JSON array", row=None, hint="a JSON document holds one array", keep=len(block)
            )
        return len(block)

    @staticmethod
    def _mark(data: np.ndarray, spots: np.ndarray, sequence: np.ndarray) -> None:
        """Turn the array's ``[`` into a blank, and the commas between records and its ``]`` into line ends."""
        data[spots[sequence == _OPEN_ARRAY]] = 32
        data[spots[(sequence == _COMMA) | (sequence == _CLOSE_ARRAY)]] = 10


def _special(data: np.ndarray) -> np.ndarray:
    """Where `data` holds a quote, backslash, bracket, brace, comma or line end.

    Comparisons, about twice as fast as looking each byte up in a table: ``b | 0x20`` is ``{`` for
    ``{`` and ``[`` only, and ``}`` for ``}`` and ``]`` only.
    """
    folded = data | 0x20
    found = folded == 0x7B
    found |= folded == 0x7D
    for byte in b'"\\,\n\r':
        found |= data == byte
    return found


# Events outside records (see _ArrayRecords) and the ones that may follow each other.
_OPEN_NONE, _OPEN_ARRAY, _OPEN_RECORD, _CLOSE_RECORD, _COMMA, _CLOSE_ARRAY, _OTHER = range(7)
_ALLOWED = np.zeros((7, 7), bool)
for _before, _after in [
    (_OPEN_NONE, _OPEN_ARRAY),
    (_OPEN_ARRAY, _OPEN_RECORD),
    (_OPEN_RECORD, _CLOSE_RECORD),
    (_CLOSE_RECORD, _COMMA),
    (_CLOSE_RECORD, _CLOSE_ARRAY),
    (_COMMA, _OPEN_RECORD),
]:
    _ALLOWED[_before, _after] = True


class JsonArrayInput(NdjsonInput):
    """A JSON array of records too long to hold whole, streamed: read as NDJSON (see `_ArrayRecords`).

    As for NDJSON, its columns are the keys of its first record and a column's type is that of
    its first non-null value in the first 64 KiB; a row number in a message is the 1-based record.
    """

    format = "json"

    def __init__(self, display, head: bytes, stream, reopen) -> None:
        records = _ArrayRecords(stream, display)
        self._records = records
        self._reopen_array = reopen
        converted = bytearray(head)
        del converted[_ArrayRecords(None, display)._convert(converted) :]
        super().__init__(display, bytes(converted[: converted.rfind(b"\n") + 1]), records, None)

    def record_batches(self, names, settings, numeric=frozenset()):
        try:
            yield from super().record_batches(names, settings, numeric)
        except InputError as error:
            if error is not self._records.error or self._reopen_array is None:
                raise
            raise self._locate(error, names, 0) from None  # an earlier record may be wrong too

    def _locate(self, error: Exception, names: list[str], done: int) -> InputError:
        """The first wrong record, found by reading the records again one by one (else from `error`)."""
        if self._reopen_array is None:
            return error if isinstance(error, InputError) else super()._locate(error, names, done)
        try:
            with self._reopen_array() as stream, _ArrayRecords(stream, self.display) as records:
                for number, line in enumerate(io.BufferedReader(records, buffer_size=1 << 20), 1):
                    try:
                        record = _json_loads(line.strip())
                    except ValueError as bad:
                        message = _json_message(bad).replace(" at column", " in the record at character")
                        return InputError(message, file=self.display, row=number, hint=_JSON_HINT)
                    for name in names:
                        misfit = _misfit(record.get(name), self._kinds[name])
                        if misfit is not None:
                            return InputError(
                                f"{misfit} where earlier rows have {_expected(self._kinds[name])}",
                                file=self.display,
                                row=number,
                                column=name,
                                hint="use one type per column",
                            )
        except InputError as found:
            return found
        return error if isinstance(error, InputError) else super()._locate(error, names, done)


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
            misfit = _misfit(value, kind)
            if misfit is not None:
                return InputError(
                    f"{misfit} where earlier rows have {_expected(kind)}",
                    file=self.display,
                    row=row,
                    column=name,
                    hint="use one type per column",
                )
        return InputError("cannot read the column", file=self.display, column=name, hint="use one type per column")


def json_input(display: str, head: bytes, stream, reopen, path: str | None = None) -> Input:
    """A JSON document: one that goes on beyond its first 64 KiB is streamed, an array of records as
    NDJSON (`JsonArrayInput`), an object of columns in a plain file column by column (`JsonColumnsInput`);
    any other is read whole (`JsonInput`, whose messages name line and column)."""
    from .streams import _HEAD_BYTES

    text = head.removeprefix(_BOM).lstrip()
    if len(head) >= _HEAD_BYTES and text.startswith(b"["):
        converted = bytearray(head)
        scanner = _ArrayRecords(None, display)
        scanner._convert(converted)
        # An error in the head is found again, with its line and column, in the whole document.
        if scanner.error is None and scanner._last != _CLOSE_ARRAY and b"\n" in converted:
            return JsonArrayInput(display, head, stream, reopen)  # longer than the head, a record in it
    if len(head) >= _HEAD_BYTES and text.startswith(b"{") and path is not None:
        return JsonColumnsInput(display, stream, path)
    return JsonInput(display, stream)


class JsonInput(Input):
    """A JSON document: an array of records, or an object of equally long columns.

    Each column holds one JSON type (booleans are not numbers; a list column holds lists of one type).
    """

    format = "json"

    def __init__(self, display, stream) -> None:
        super().__init__(display)
        try:
            document = _json_loads(stream.read().decode("utf-8-sig"), object_pairs_hook=_unique_keys)
        except UnicodeDecodeError:
            raise InputError("invalid UTF-8 text", file=display, hint="save the file as UTF-8") from None
        except _DuplicateKey as error:
            raise InputError(
                f"duplicate key {error.key!r} in a JSON object", file=display, hint="give every column a unique name"
            ) from None
        except _TooDeep as error:
            raise InputError(
                f"JSON nested too deeply at line {error.lineno} column {error.colno}", file=display, hint=_JSON_HINT
            ) from None
        except ValueError as error:
            raise InputError(
                f"invalid JSON at line {error.lineno} column {error.colno}: {error.msg}",
                file=display,
                hint="for one record per line use --input-format ndjson",
            ) from None
        finally:
            stream.close()
        columns = self._columns_of(document)
        arrays = {name: self._column(name, values) for name, values in columns.items()}
        self.table = pa.table(arrays) if arrays else pa.table({})
        self._set_columns(_arrow_fields(self.table.schema))

    def _column(self, name: str, values: list) -> pa.Array:
        """The Arrow array of a column, or an InputError naming the first value unlike those before it."""
        odd = None
        try:
            array = pa.array(values)
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError) as error:
            odd = _first_misfit(values)
            if odd is None:
                try:
                    array = pa.array(_widen(values))  # integers beyond int64 become float64
                except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
                    raise InputError(
                        f"cannot read the column: {_one_line(error)}",
                        file=self.display,
                        column=name,
                        hint="use one type per column",
                    ) from None
        else:
            # pyarrow reads [1.5, true] as [1.5, 1.0]: booleans among numbers are refused here too.
            odd = _first_misfit(values) if _has_boolean(array.type, values) else None
        if odd is not None:
            raise InputError(odd[1], file=self.display, row=odd[0], column=name, hint="use one type per column")
        return array

    def _columns_of(self, document) -> dict[str, list]:
        if document == [] or document == {}:
            raise InputError(
                f"the JSON document is {json.dumps(document)}: no records",
                file=self.display,
                hint='use [{"y_true": 1, "y_pred": 0.9}, ...] or {"y_true": [...], "y_pred": [...]}',
            )
        if isinstance(document, dict):
            lengths = {name: len(v) if isinstance(v, list) else None for name, v in document.items()}
            for name, length in lengths.items():
                if length is None:
                    raise InputError(
                        "column is not a list", file=self.display, column=name, hint='use {"column": [v1, v2, ...]}'
                    )
            if len(set(lengths.values())) > 1:
                first = next(iter(lengths))
                odd = next(n for n, k in lengths.items() if k != lengths[first])
                raise InputError(
                    f"has {lengths[odd]} values but {first!r} has {lengths[first]}",
                    file=self.display,
                    column=odd,
                    hint="every column needs one value per row",
                )
            return document
        if isinstance(document, list):
            names: dict[str, None] = {}
            for number, record in enumerate(document, 1):
                if not isinstance(record, dict):
                    raise InputError(
                        "record is not a JSON object", file=self.display, row=number, hint="use [{...}, {...}]"
                    )
                names.update(dict.fromkeys(record))
            return {name: [record.get(name) for record in document] for name in names}
        raise InputError(
            "JSON must be an array of records or an object of columns",
            file=self.display,
            hint='use [{"y_true": 1, "y_pred": 0.9}] or {"y_true": [...], "y_pred": [...]}',
        )

    def record_batches(self, names, settings, numeric=frozenset()):
        yield from self.table.select(names).to_batches(max_chunksize=settings.batch_rows)


class _DuplicateKey(Exception):
    def __init__(self, key: str) -> None:
        self.key = key


def _unique_keys(pairs: list[tuple[str, object]]) -> dict:
    keys = [k for k, _ in pairs]
    if len(set(keys)) != len(keys):
        raise _DuplicateKey(next(k for k in keys if keys.count(k) > 1))
    return dict(pairs)


def _has_boolean(arrow_type: pa.DataType, values: list) -> bool:
    """Whether a column that pyarrow read as numbers (or lists of numbers) holds a boolean."""
    if pa.types.is_floating(arrow_type):
        return any(type(value) is bool for value in values)
    if pa.types.is_list(arrow_type) and pa.types.is_floating(arrow_type.value_type):
        return any(type(item) is bool for value in values if value for item in value)
    return False
