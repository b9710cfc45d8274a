"""A long JSON array of records, streamed: a structure scanner turns it into NDJSON as it is read."""

from __future__ import annotations

import io

import numpy as np

from cecli.errors import InputError

from .json_values import (
    _JSON_HINT,
    _json_loads,
    _json_message,
)
from .ndjson import NdjsonInput
from .streams import _BOM


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
                    misfit = self._type_error(record, names, number)
                    if misfit is not None:
                        return misfit
        except InputError as found:
            return found
        return error if isinstance(error, InputError) else super()._locate(error, names, done)


def goes_on(head: bytes, display: str) -> bool:
    """Whether the JSON array that `head` begins holds a whole record and goes on beyond it, without
    a syntax error in it (an error in the head is found again, with its line and column, by the
    reader of whole documents)."""
    converted = bytearray(head)
    scanner = _ArrayRecords(None, display)
    scanner._convert(converted)
    return scanner.error is None and scanner._last != _CLOSE_ARRAY and b"\n" in converted
