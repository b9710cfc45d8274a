"""CSV and TSV inputs: pyarrow's streaming reader, parallel blocks for large files, and the
small-CSV path without pyarrow.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator

import numpy as np

from cecli.errors import CecliError, InputError, printable

from .base import CellError, pa
from .columns import Column
from .convert import _NUMBER, _floats
from .inputs import Input, _one_line
from .streams import _BOM


class CsvInput(Input):
    """CSV or TSV, streamed with pyarrow (a small all-numeric input is parsed without it, see `_plain_numbers`)."""

    _number_labels: frozenset[str] = frozenset()  # class-label columns to read as numbers (see `batches`)

    def __init__(self, display, head: bytes, stream, reopen, delimiter: str, header: bool | None) -> None:
        super().__init__(display)
        self.format = "tsv" if delimiter == "\t" else "csv"
        self.untyped = True
        self.delimiter = delimiter
        self._stream = stream
        self._track_lines(stream, reopen)
        whole = len(head) < _SMALL_CSV_BYTES  # then `head` holds the whole input (see _peek)
        try:
            text = head.removeprefix(_BOM).decode("utf-8")
        except UnicodeDecodeError as error:
            whole = False
            text = head.removeprefix(_BOM)[: error.start].decode("utf-8")
            if "\n" not in text:
                raise InputError(
                    "the first line is not valid UTF-8 text", file=display, hint="save the file as UTF-8"
                ) from None
        first_line = re.split(r"\r\n|\r|\n", text, maxsplit=1)[0]  # pyarrow also ends a line at a lone \r
        try:
            first = next(csv.reader([first_line], delimiter=delimiter), [])
        except csv.Error as error:
            raise InputError(f"cannot read the first line: {error}", file=display, hint="check the file") from None
        if not first:
            raise InputError("the first line is empty", file=display, hint="start the file with a header or data row")
        self.has_header = header if header is not None else self._is_header(first)
        self.headerless = not self.has_header
        self.header_lines = 1 if self.has_header else 0
        names = [c.strip() for c in first] if self.has_header else [str(i + 1) for i in range(len(first))]
        if self.has_header and "" in names:
            raise InputError(
                "empty column name in the header",
                file=display,
                row=1,
                column=str(names.index("") + 1),
                hint="name every column" + (", or pass --no-header if the first row is data" if header is None else ""),
            )
        try:
            self._set_columns([(n, "string", False) for n in names])
        except InputError as error:  # a duplicate name: the header is line 1
            raise error.locate(row=1) from None
        self._head_text = text
        self._whole = whole

    def _is_header(self, cells: list[str]) -> bool:
        """Whether the first row is a header, when neither --header nor --no-header says so.

        A row of numbers only is data. A row of numbers and empty cells could be either (data
        with a missing value, or a header with unnamed columns): an error asks which. Any other
        row is the header; numbers among its names get a warning, as it may be data with a typo.
        """
        numbers = [cell.strip() for cell in cells if _NUMBER.match(cell)]
        empty = [i for i, cell in enumerate(cells, 1) if not cell.strip()]
        if len(numbers) == len(cells):
            return False
        if numbers and len(numbers) + len(empty) == len(cells):
            raise InputError(
                "the first row holds numbers and an empty cell: a data row with a missing value, "
                "or a header without a name",
                file=self.display,
                row=1,
                column=str(empty[0]),
                hint="pass --no-header if it is data, or name every column",
            )
        if numbers:
            self.warnings.append(
                f"{printable(self.display)}:1: the header has names that look like numbers "
                f"({', '.join(map(repr, numbers))}); "
                "if the first row is data, pass --no-header (--header silences this warning)"
            )
        return True

    def _plain_numbers(self) -> np.ndarray | None:
        """A small input's records as a float64 matrix when every cell is a plain number, else ``None``.

        Importing pyarrow takes longer than the rest of a one-liner's work. A whole input under
        8 KiB whose data lines (LF or CRLF, none blank, no quotes) each hold one plain decimal
        number per column is parsed with ``float``, which rounds correctly as pyarrow does (a
        test compares them). Anything else, every error included, is left to pyarrow.
        """
        if not self._whole or any(ch in "0123456789.+-eE" for ch in self.delimiter):
            return None
        text = self._head_text
        body = text.partition("\n")[2] if self.header_lines else text
        width = len(self.own_columns)
        # Checked line by line and cell by cell with one small pattern: a regex for the whole body, built
        # for its width and delimiter, took 0.35 ms of a one-liner to compile, this one 0.09 ms.
        lines = body.split("\n")
        last = lines.pop()  # "" after a final line end; else a last line without one, where a \r is not a line end
        cells = []
        for line in [line.removesuffix("\r") for line in lines] + ([last] if last else []):
            row = line.split(self.delimiter)
            if len(row) != width:
                return None
            cells += row
        plain = re.compile(_PLAIN_NUMBER).fullmatch  # re's cache keeps it compiled for later inputs
        if not cells or not all(map(plain, cells)):
            return None
        return np.array([float(cell) for cell in cells]).reshape(-1, width)

    def batches(self, selection, settings, **options):
        # Class labels reach the reader as text (they may be class names, see `class_indices`),
        # which main converts with pyarrow.compute: importing it and the cast cost 6% of the
        # CPU of the bench's 2M-row CSV. A label column that is neither kept nor grouped by is
        # read as numbers instead, block by block, when that gives what the text would.
        labels: frozenset[str] = frozenset()
        if options.get("class_labels") and "labels" in options.get("roles", ("labels",)):
            text = {c.name for c in (*selection.keep, *selection.by)}  # printed as their text
            labels = frozenset(name for name in selection.names("labels") if name not in text)
        self._number_labels = labels
        return super().batches(selection, settings, **options)

    def describe_types(self) -> list[Column]:
        import pyarrow.csv as pa_csv

        try:
            sample = pa_csv.read_csv(
                io.BytesIO(self._head_text.rsplit("\n", 1)[0].encode()),
                read_options=self._read_options(1 << 20),
                parse_options=pa_csv.ParseOptions(delimiter=self.delimiter),
            )
        except pa.ArrowInvalid:
            return self.columns
        types = {c.name: str(sample.schema.field(c.position - 1).type) for c in self.own_columns}
        return [Column(c.position, c.name, types.get(c.name, c.type)) for c in self.columns]

    def _read_options(self, block_size: int, *, skip_header: bool = True, use_threads: bool = True):
        import pyarrow.csv as pa_csv

        return pa_csv.ReadOptions(
            column_names=[c.name for c in self.own_columns],
            skip_rows=self.header_lines if skip_header else 0,
            block_size=block_size,
            use_threads=use_threads,
        )

    def record_batches(self, names, settings, numeric=frozenset()):
        # Numeric columns parse straight to float64 (twice as fast as text + cast). pyarrow's
        # errors name no row: the block that failed is then searched for the cause (`_block_error`).
        try:
            yield from self._parse_blocks(self._stream, names, numeric, settings)
        except _BlockError as failed:
            raise self._block_error(failed, names, numeric) from None

    def _parse_blocks(self, stream, names, numeric, settings) -> Iterator[pa.RecordBatch]:
        """Parse `stream` in blocks of whole lines, one per core at a time, and yield batches in order.

        pyarrow's streaming reader parses on one core; blocks parsed in parallel by
        ``read_csv`` on a pool sized to the machine (:func:`~cecli.io.pool.cores`) use every
        core, and memory stays bounded by a few blocks per core. Cutting at a
        line end is safe because quoted fields spanning lines are not supported anyway.
        A line longer than pyarrow's parse block (1 MiB) is read too: its block is then
        parsed again as one piece. A block that fails raises :class:`_BlockError`.
        """
        import pyarrow.csv as pa_csv

        # The first block holds the header line, if any; each block is parsed by one thread.
        read_options = [self._read_options(1 << 20, skip_header=first, use_threads=False) for first in (True, False)]
        parse_options = pa_csv.ParseOptions(delimiter=self.delimiter)
        convert = self._convert_options(names, numeric)
        # Class labels read as numbers while every block's labels are numbers (see `batches`):
        # `as_numbers[0]` is dropped at the first block whose labels are text (class names).
        labels = self._number_labels.intersection(names) - numeric
        as_numbers = [self._convert_options(names, numeric | labels) if labels else None]

        def parse(block: bytes, first: bool) -> pa.Table:
            def read(types) -> pa.Table:
                def attempt(options) -> pa.Table:
                    return pa_csv.read_csv(
                        pa.py_buffer(block), read_options=options, parse_options=parse_options, convert_options=types
                    )

                try:
                    return attempt(read_options[0 if first else 1])
                except pa.ArrowInvalid as error:  # "straddling object straddles two block boundaries"
                    if "straddl" not in str(error):
                        raise
                return attempt(self._read_options(len(block) + 1, skip_header=first, use_threads=False))

            try:
                numbers, text_labels = as_numbers[0], False
                if numbers is not None:
                    try:
                        table = read(numbers)
                        # A missing label is null as a number: as text, it keeps the message of the text.
                        if not any(table.column(name).null_count for name in labels):
                            return table
                    except pa.ArrowInvalid:
                        text_labels = True  # unless the block fails as text too, for another reason
                table = read(convert)
                if text_labels:  # class names: the next blocks read the labels as text at once
                    as_numbers[0] = None
                return table
            except pa.ArrowInvalid as error:
                if numeric and (table := self._lenient_block(block, first, names, numeric)) is not None:
                    return table
                raise _BlockError(error, block, first) from None

        def tables() -> Iterator[pa.Table]:
            blocks = _newline_blocks(stream, _CSV_BLOCK_BYTES)
            first = next(blocks, b"")
            second = next(blocks, None)
            if second is None:  # a small input: no threads needed
                yield parse(first, True)
                return
            from itertools import chain

            from .pool import cores, ordered_map

            # One parser per core (on one core, no thread), results in order.
            numbered = chain([(first, True), (second, False)], ((block, False) for block in blocks))
            yield from ordered_map(lambda item: parse(*item), numbered, cores(), name="cecli-csv")

        done = 0
        try:
            for table in tables():
                yield from table.to_batches(max_chunksize=settings.batch_rows)
                done += table.num_rows
        except _BlockError as failed:
            failed.records_before = done
            raise

    def _lenient_block(self, block: bytes, first: bool, names, numeric) -> pa.Table | None:
        """`block` with every column as text, when its numeric columns hold numbers once read leniently.

        pyarrow's float conversion takes surrounding spaces but not ``true``/``false``, which
        :func:`_lenient` reads as 1 and 0; ``None`` leaves the error to :meth:`_block_error`.
        """
        import pyarrow.csv as pa_csv

        try:
            table = pa_csv.read_csv(
                pa.py_buffer(block),
                read_options=self._read_options(len(block) + 1, skip_header=first, use_threads=False),
                parse_options=pa_csv.ParseOptions(delimiter=self.delimiter),
                convert_options=self._convert_options(names, frozenset()),
            )
            for name in numeric:
                _floats(table.column(name).combine_chunks(), name)
        except (pa.ArrowInvalid, CellError):
            return None
        return table

    def _convert_options(self, names, numeric):
        import pyarrow.csv as pa_csv

        types = {n: pa.float64() if n in numeric else pa.string() for n in names}
        # Only an empty cell is missing; "nan" and "NA" are values, to be judged by validation.
        return pa_csv.ConvertOptions(
            include_columns=names, column_types=types, null_values=[""], strings_can_be_null=False
        )

    def _block_error(self, failed: _BlockError, names, numeric) -> CecliError:
        """The error of a block pyarrow could not read, on its line.

        The block is parsed again with every column as text: a bad number then parses and
        `_floats` names it; a ragged row or invalid UTF-8 in a chosen column fails again, and
        the block's rows are read one by one with Python's csv module to find it.
        """
        import pyarrow.csv as pa_csv

        def row(index: int) -> int:
            return self.user_row(failed.records_before + index)

        try:
            table = pa_csv.read_csv(
                pa.py_buffer(failed.block),
                read_options=self._read_options(len(failed.block) + 1, skip_header=failed.first, use_threads=False),
                parse_options=pa_csv.ParseOptions(delimiter=self.delimiter),
                convert_options=self._convert_options(names, frozenset()),
            )
        except pa.ArrowInvalid:
            table = None
        # The first bad cell in reading order (row, then column): never an order of a set.
        found: list[CellError] = []
        for name in [c.name for c in self.own_columns if c.name in numeric] if table is not None else ():
            try:
                _floats(table.column(name).combine_chunks(), name)
            except CellError as error:
                found.append(error)
        if found:
            first = min(found, key=lambda error: error.index)  # min keeps the leftmost column on a tie
            return first.locate(file=self.display, row=row(first.index))
        positions = [c.position - 1 for c in self.own_columns if c.name in names]
        text = failed.block.decode("utf-8", errors="surrogateescape")  # an invalid byte becomes U+DC80..U+DCFF
        records = csv.reader(io.StringIO(text.removeprefix("\ufeff"), newline=""), delimiter=self.delimiter)
        if failed.first and self.header_lines:
            next(records, None)  # the header
        index = 0
        for cells in records:
            if not cells:
                continue  # a blank line: no record
            if len(cells) != len(self.own_columns):
                return InputError(
                    f"row has {len(cells)} fields, the header has {len(self.own_columns)}",
                    file=self.display,
                    row=row(index),
                    hint="quote fields that contain the delimiter, or fix the row",
                )
            if any(_SURROGATE.search(cells[p]) for p in positions):
                return InputError(
                    "invalid UTF-8 text", file=self.display, row=row(index), hint="save the file as UTF-8"
                )
            index += 1
        message = _one_line(failed.error).removeprefix("CSV parse error: ")
        return InputError(f"cannot parse: {message}", file=self.display, hint="check that the file is CSV")

    def close(self) -> None:
        self._stream.close()


class _BlockError(Exception):
    """pyarrow could not read a CSV block: its error, the block, and how many records came before it."""

    def __init__(self, error: Exception, block: bytes, first: bool) -> None:
        super().__init__(str(error))
        self.error, self.block, self.first = error, block, first
        self.records_before = 0


_SURROGATE = re.compile("[\udc80-\udcff]")


_CSV_BLOCK_BYTES = 8 << 20


_SMALL_CSV_BYTES = 8 << 10  # a whole CSV input this small may be parsed without pyarrow


_PLAIN_NUMBER = r"[-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?"  # [0-9]: \d would take digits of any script


def _newline_blocks(stream, size: int) -> Iterator[bytes | bytearray]:
    r"""Blocks of about `size` bytes that end just after a line end (the last one at the end of the stream).

    A line ends at ``\n``, ``\r\n`` or a lone ``\r``. A block may end between the ``\r`` and
    ``\n`` of a CRLF: the next then starts with an empty line, which the CSV reader skips. A
    last line without a line end stays in the last block rather than making a batch of its own.

    Each block is read straight into its own buffer, after the partial line the previous one left
    over. Slicing and joining bytes copied every byte twice more, holding the GIL: on the bench's
    230 MB CSV the reader thread took 0.16 s of CPU, now 0.10 s, and the whole process 6% less
    CPU and 17 MB less memory (farm-bench medians).
    """
    readinto = getattr(stream, "readinto", None)
    rest = b""
    while True:
        block = bytearray(len(rest) + size)
        block[: len(rest)] = rest
        end = _fill(stream, readinto, block, len(rest))
        if end < len(block):  # the end of the stream (_fill reads until the block is full)
            if end:
                del block[end:]
                yield block
            return
        cut = max(block.rfind(b"\n", len(rest), end), block.rfind(b"\r", len(rest), end)) + 1
        if cut == 0:  # no line end in what was read: a very long line continues
            rest = bytes(block[:end])
            continue
        rest = bytes(block[cut:end])
        del block[cut:]  # shrinks in place
        yield block


def _fill(stream, readinto, block: bytearray, start: int) -> int:
    """Read into ``block[start:]`` until it is full or the stream ends; the end of what was read."""
    view = memoryview(block)
    end = start
    while end < len(block):
        if readinto is not None:
            try:
                got = readinto(view[end:])
            except NotImplementedError:  # a raw stream that only defines read()
                readinto = None
                continue
        else:
            data = stream.read(len(block) - end)
            got = len(data)
            view[end : end + got] = data
        if not got:
            break
        end += got
    view.release()
    return end
