"""NumPy inputs: ``.npy`` (one array) and ``.npz`` (a zip of named ``.npy`` arrays), read in row blocks.

Columns. An array of one dimension is a column of values; an array of two dimensions ``(n, C)`` is a
column of class vectors, one row of C values per record, as a list column of Parquet is. A
``.npy`` file's array is named after the file (``logits.npy`` -> ``logits``; ``arr_0`` on stdin,
as ``numpy.savez`` names an array it is given without a name), so ``cecli softmax logits.npy
--labels labels.npy`` reads the class vectors of one file and the labels of the other; each array
of a ``.npz`` is a column named as the array (``np.savez(path, labels=y, probs=p)``). A structured
array (a record per row, ``np.save`` of a record array) is one column per field, named as the field;
a field holding a sub-array ``(C,)`` is a column of class vectors. The columns read together
must have the same number of rows.

Types. Numbers keep their type as Parquet's would (float16 and float32 are read as float32 and
float64 as float64, integers and booleans as the numbers they are, see :mod:`~cecli.io.convert`),
big-endian arrays are read in the machine's order, text (``U``, ``S``) and dates are values for
``--keep`` and ``--by``. Never read: arrays of Python objects (loading them can run code: refused
from the header, before any data is read), complex numbers, ``longdouble``, arrays of zero or more than two dimensions,
nested records; each is refused (exit 3) with its reason, the whole file at open.

Reading. A plain file is memory-mapped, and a block of rows is copied out of the map at a time,
after which the block's pages are released (``madvise(MADV_DONTNEED)``: mapped pages would
otherwise count as the process's memory until the end), so a 20 GB array streams in about two
blocks of memory. A Fortran-ordered array is read the same way (a block of rows is then a piece
of each column). An uncompressed array of a ``.npz`` (``np.savez``) is mapped where it lies in the
zip; a compressed one (``np.savez_compressed``) is decompressed as it is read. A ``.npy`` on a
pipe or decompressed from ``.gz``/``.zst`` is read block by block as it arrives (a
Fortran-ordered one, whose rows are spread over the whole stream, is read into memory first); a
``.npz`` there is read into memory first (a zip's index is at its end). Rows in messages are
records, 1-based.
"""

from __future__ import annotations

import io
import mmap
import os
import zipfile
from collections.abc import Iterator

import numpy as np

from cecli.errors import InputError

from .base import pa
from .inputs import Input, _arrow_fields

_HINT = "the file may be truncated or corrupt"
_MAX_HEADER = 1 << 16  # NumPy's default is 10,000 bytes; a record of many fields may need more
_ALLOWED_KINDS = "biufUSMm"


class _Array:
    """One array (a ``.npy`` file or a ``.npz`` member): its name, dtype, shape and data.

    `source` is a buffer (a memory map or bytes) holding the data at `offset`, or, for a stream
    that can only be read on, a callable opening a binary stream positioned at the data.
    """

    def __init__(self, name: str, dtype: np.dtype, shape: tuple, fortran: bool, source, offset: int = 0) -> None:
        self.name = name
        self.dtype = dtype
        self.shape = shape
        self.fortran = fortran and len(shape) > 1
        self.source = source
        self.offset = offset
        self.member = False  # a member of a .npz (named in messages)

    @property
    def rows(self) -> int:
        return self.shape[0]

    @property
    def row_bytes(self) -> int:
        return self.dtype.itemsize * int(np.prod(self.shape[1:], dtype=np.int64))

    def blocks(self, rows: int, display: str) -> Iterator[np.ndarray]:
        """Consecutive blocks of up to `rows` rows, each a C-ordered array in memory of its own."""
        if callable(self.source):
            yield from self._streamed(rows, display)
            return
        view = np.ndarray(
            self.shape, self.dtype, buffer=self.source, offset=self.offset, order="F" if self.fortran else "C"
        )
        for start in range(0, self.rows, rows):
            stop = min(start + rows, self.rows)
            block = np.array(view[start:stop], order="C")
            self._release(start, stop)
            yield block

    def _release(self, start: int, stop: int) -> None:
        """Drop the mapped pages of rows `start`..`stop` from memory (a re-read maps them again)."""
        if not isinstance(self.source, mmap.mmap) or not hasattr(self.source, "madvise"):
            return
        if self.fortran:  # a piece of each column
            item, n, n_cols = self.dtype.itemsize, self.rows, self.shape[1]
            spans = [(self.offset + (j * n + start) * item, self.offset + (j * n + stop) * item) for j in range(n_cols)]
        else:
            spans = [(self.offset + start * self.row_bytes, self.offset + stop * self.row_bytes)]
        page = mmap.PAGESIZE
        for low, high in spans:
            low -= low % page
            high = min(high, len(self.source))
            if high > low:
                self.source.madvise(mmap.MADV_DONTNEED, low, high - low)

    def _streamed(self, rows: int, display: str) -> Iterator[np.ndarray]:
        with self.source() as stream:
            if self.fortran:  # rows are spread over the whole stream: read it all
                data = _read_exactly(stream, self.rows * self.row_bytes, self, display, None)
                whole = np.ndarray(self.shape, self.dtype, buffer=data, order="F")
                for start in range(0, self.rows, rows):
                    yield np.array(whole[start : start + rows], order="C")
                return
            for start in range(0, self.rows, rows):
                count = min(rows, self.rows - start)
                data = _read_exactly(stream, count * self.row_bytes, self, display, start)
                yield np.ndarray((count, *self.shape[1:]), self.dtype, buffer=data)


def _read_exactly(stream, size: int, array: _Array, display: str, first_row: int | None) -> bytearray:
    """`size` bytes of `stream`, rows from `first_row` on (``None``: a whole column-major array, whose rows
    the bytes do not follow); a stream that ends before is an error naming the row it cuts."""
    data = bytearray(size)
    view = memoryview(data)
    done = 0
    while done < size:
        got = stream.readinto(view[done:])
        if not got:
            if first_row is None:
                raise InputError(
                    f"{_label(array)}is truncated: the data ends before the {array.rows} rows its header announces",
                    file=display,
                    hint=_HINT,
                )
            row = first_row + done // max(array.row_bytes, 1) + 1
            raise InputError(
                f"{_label(array)}ends within this row, of the {array.rows} rows its header announces",
                file=display,
                row=row,
                hint=_HINT,
            )
        done += got
    return data


def _label(array: _Array) -> str:
    """How a message names the array: a ``.npz`` member by its name, a ``.npy`` file's as "the array"."""
    return f"array {array.name!r} " if array.member else "the array "


def _header(read, display: str, name: str | None) -> tuple[np.dtype, tuple, bool, int]:
    """Parse a ``.npy`` header with `read(n)` (the magic first): dtype, shape, Fortran order, length.

    NumPy's own header reader parses the header's literal without running code; a dtype of
    Python objects is refused here, before any data is read. Format version 3.0 (NumPy writes it
    only for field names beyond Latin-1) has no public reader and is refused.
    """
    where = f"array {name!r}: " if name is not None else ""
    counted = _Counted(read)
    try:
        version = np.lib.format.read_magic(counted)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(counted, max_header_size=_MAX_HEADER)
        elif version == (2, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(counted, max_header_size=_MAX_HEADER)
        else:
            raise InputError(
                f"{where}a .npy of format version {version[0]}.{version[1]}, which cecli does not read",
                file=display,
                hint="save it with field names in Latin-1 (numpy then writes version 1.0 or 2.0)",
            )
        if any(n < 0 for n in shape):
            raise ValueError(f"negative length in the shape {shape}")
    except (ValueError, TypeError, MemoryError, RecursionError) as error:
        raise InputError(f"{where}not a readable .npy header: {error}", file=display, hint=_HINT) from None
    _check(dtype, shape, display, where)
    return dtype, shape, bool(fortran), counted.count


class _Counted:
    """A reader that counts the bytes it has read (the length of a header)."""

    def __init__(self, read) -> None:
        self._read = read
        self.count = 0

    def read(self, size: int = -1) -> bytes:
        data = self._read(size)
        self.count += len(data)
        return data


def _check(dtype: np.dtype, shape: tuple, display: str, where: str) -> None:
    """Refuse what cecli does not read (see the module docstring), with the reason."""
    if dtype.hasobject:
        raise InputError(
            f"{where}an array of Python objects (dtype object): cecli never loads those, as loading them can run code",
            file=display,
            hint="save numbers or text instead, e.g. np.save(path, array.astype(float))",
        )
    fields = [dtype.fields[f][0] for f in dtype.names] if dtype.names else None
    if fields is not None and len(shape) != 1:
        raise InputError(
            f"{where}a {len(shape)}-D array of records (shape {shape}); records are read from a 1-D array",
            file=display,
            hint="save a 1-D record array",
        )
    if fields is None and len(shape) not in (1, 2):
        raise InputError(
            f"{where}a {len(shape)}-D array (shape {shape}); cecli reads 1-D arrays (one value a row) "
            "and 2-D ones (one class vector a row)",
            file=display,
            hint="reshape it to 1-D or 2-D before saving",
        )
    for field in fields if fields is not None else [dtype]:
        base = field.base
        if base.names or len(field.shape) > 1:
            raise InputError(f"{where}nested records or a field of more than one dimension", file=display)
        if base.kind not in _ALLOWED_KINDS or (base.kind == "f" and base.itemsize > 8) or _arrow_type(base) is None:
            kinds = {"c": "complex numbers", "f": f"{base} numbers (longdouble)"}
            kind = kinds.get(base.kind, f"values of dtype {base}")
            raise InputError(
                f"{where}holds {kind}, which cecli does not read", file=display, hint="save float64 numbers instead"
            )
    widths = [field.shape for field in fields] if fields is not None else [shape[1:]]
    if any(w == (0,) for w in widths):
        raise InputError(f"{where}has rows of no values (shape {shape})", file=display, hint="save one value per class")


def _arrow_type(dtype: np.dtype) -> pa.DataType | None:
    """The Arrow type of a column of `dtype`, or ``None`` where Arrow has none (dates in years or without a unit)."""
    try:
        return pa.array(np.empty(0, dtype.newbyteorder("="))).type
    except (pa.ArrowException, ValueError, TypeError):
        return None


def _columns(array: _Array) -> list[tuple[str, str | None, np.dtype, int | None]]:
    """The columns of `array`: (name, field or None, element dtype, width of a class vector or None)."""
    if array.dtype.names:
        columns = []
        for field in array.dtype.names:
            sub = array.dtype.fields[field][0]
            columns.append((field, field, sub.base, sub.shape[0] if sub.shape else None))
        return columns
    return [(array.name, None, array.dtype, array.shape[1] if len(array.shape) == 2 else None)]


def _arrow(values: np.ndarray, width: int | None) -> pa.Array:
    """A block of one column as Arrow: values, or (rows, width) class vectors as a fixed-size list."""
    if not values.dtype.isnative:  # big-endian on this machine (or the reverse)
        values = values.astype(values.dtype.newbyteorder("="))
    if width is None:
        return pa.array(np.ascontiguousarray(values))
    flat = pa.array(np.ascontiguousarray(values).reshape(-1))
    return pa.FixedSizeListArray.from_arrays(flat, width)


class _ArrayInput(Input):
    """The columns of some arrays, read in row blocks of all the arrays that hold a selected column."""

    def _set_arrays(self, arrays: list[_Array]) -> None:
        self._arrays = arrays
        self._where: dict[str, tuple[_Array, str | None, int | None]] = {}
        fields = []
        for array in arrays:
            for name, field, dtype, width in _columns(array):
                self._where.setdefault(name, (array, field, width))
                arrow_type = _arrow_type(dtype)
                fields.append(pa.field(name, pa.list_(arrow_type, width) if width is not None else arrow_type))
        self._set_columns(_arrow_fields(pa.schema(fields)))
        self._rows_read = 0

    def position(self) -> int | None:
        rows = self._arrays[0].rows if self._arrays else 0
        return None if self.size is None or not rows else int(self.size * self._rows_read / rows)

    def record_batches(self, names, settings, numeric=frozenset()) -> Iterator[pa.RecordBatch]:
        arrays = list({id(self._where[n][0]): self._where[n][0] for n in names}.values())
        for other in arrays[1:]:
            if other.rows != arrays[0].rows:
                raise InputError(
                    f"arrays {arrays[0].name!r} ({arrays[0].rows} rows) and {other.name!r} ({other.rows} rows) "
                    "differ in length",
                    file=self.display,
                    hint="the columns read together need one row each per record",
                )
        self._rows_read = 0
        streams = {id(a): a.blocks(settings.batch_rows, self.display) for a in arrays}
        try:
            for _ in range(0, arrays[0].rows if arrays else 0, settings.batch_rows):
                blocks = {key: next(stream) for key, stream in streams.items()}
                columns = []
                for name in names:
                    array, field, width = self._where[name]
                    block = blocks[id(array)]
                    try:
                        columns.append(_arrow(block[field] if field is not None else block, width))
                    except pa.ArrowException as error:  # refused at open already; never a traceback
                        raise InputError(f"cannot read column {name!r}: {error}", file=self.display) from None
                self._rows_read += len(columns[0]) if columns else 0
                yield pa.RecordBatch.from_arrays(columns, names=list(names))
        finally:
            for stream in streams.values():
                stream.close()


class NpyInput(_ArrayInput):
    """A ``.npy`` file: one array, memory-mapped, or read as it arrives from a stream."""

    format = "npy"

    def __init__(self, display: str, stream, plain_path: str | None, name: str) -> None:
        super().__init__(display)
        self._map = None
        self._stream = stream
        try:
            if plain_path is not None:
                dtype, shape, fortran, offset = _header(stream.read, display, None)
                stream.close()
                self._map = _map(plain_path, display)
                array = _Array(name, dtype, shape, fortran, self._map, offset)
                _check_size(array, len(self._map), display)
            else:
                dtype, shape, fortran, _ = _header(stream.read, display, None)
                array = _Array(name, dtype, shape, fortran, lambda: _Borrowed(stream))
            self._set_arrays([array])
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        self._stream.close()
        _unmap(self._map)


class NpzInput(_ArrayInput):
    """A ``.npz`` file: each member a named array; stored members mapped, compressed ones decompressed."""

    format = "npz"

    def __init__(self, display: str, stream, plain_path: str | None) -> None:
        super().__init__(display)
        self._map = None
        self._zip = None
        try:
            if plain_path is not None:
                stream.close()
                self._map = _map(plain_path, display)
                buffer = self._map
            else:
                buffer = stream.read()
                stream.close()
            try:
                self._zip = zipfile.ZipFile(plain_path if plain_path is not None else io.BytesIO(buffer))
                members = self._zip.infolist()
            except (zipfile.BadZipFile, OSError, EOFError) as error:
                raise InputError(f"not a readable .npz (zip) file: {error}", file=display, hint=_HINT) from None
            arrays = [self._member(info, buffer, display) for info in members]
            if not arrays:
                raise InputError("the .npz file holds no arrays", file=display, hint="save at least one array")
            self._set_arrays(arrays)
        except BaseException:
            self.close()
            raise

    def _member(self, info: zipfile.ZipInfo, buffer, display: str) -> _Array:
        if not info.filename.endswith(".npy") or info.is_dir():
            raise InputError(
                f"member {info.filename!r} is not a .npy array", file=display, hint="a .npz holds only .npy arrays"
            )
        name = info.filename[: -len(".npy")]
        try:
            if info.compress_type == zipfile.ZIP_STORED and not info.flag_bits & 1:
                # The data follows the member's local header: 30 bytes, the file name and an extra field.
                local = bytes(buffer[info.header_offset : info.header_offset + 30])
                if len(local) < 30 or not local.startswith(b"PK\x03\x04"):
                    raise zipfile.BadZipFile("bad local file header")
                start = info.header_offset + 30 + int.from_bytes(local[26:28], "little")
                start += int.from_bytes(local[28:30], "little")
                member = io.BytesIO(bytes(buffer[start : start + min(info.file_size, _MAX_HEADER + 12)]))
                dtype, shape, fortran, length = _header(member.read, display, name)
                array = _Array(name, dtype, shape, fortran, buffer, start + length)
                array.member = True
                _check_size(array, start + info.file_size, display)
                return array
            with self._zip.open(info) as member:
                dtype, shape, fortran, length = _header(member.read, display, name)
            array = _Array(name, dtype, shape, fortran, lambda: _skipped(self._zip.open(info), length))
            array.member = True
            if length + array.rows * array.row_bytes != info.file_size:
                raise InputError(
                    f"array {name!r} holds {info.file_size - length} bytes of data where its header announces "
                    f"{array.rows * array.row_bytes}",
                    file=display,
                    hint=_HINT,
                )
            return array
        except (zipfile.BadZipFile, OSError, EOFError, RuntimeError, NotImplementedError) as error:
            raise InputError(f"cannot read the array {name!r}: {error}", file=display, hint=_HINT) from None

    def close(self) -> None:
        if self._zip is not None:
            self._zip.close()
        _unmap(self._map)


def _map(path: str, display: str) -> mmap.mmap | bytes:
    """The file memory-mapped read-only (an empty file, which cannot be mapped, as no bytes)."""
    try:
        with open(path, "rb") as file:
            size = os.fstat(file.fileno()).st_size
            return mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) if size else b""
    except OSError as error:
        raise InputError(f"cannot map the file: {error.strerror or error}", file=display) from None


def _unmap(buffer) -> None:
    if isinstance(buffer, mmap.mmap):
        try:
            buffer.close()
        except BufferError:  # a view of it is still alive (an error's traceback): the collector closes it
            pass


def _check_size(array: _Array, end: int, display: str) -> None:
    """Refuse an array whose data would end after `end`, the end of its file or member."""
    needed = array.offset + array.rows * array.row_bytes
    if needed > end:
        rows = max(end - array.offset, 0) // max(array.row_bytes, 1)
        raise InputError(
            f"{_label(array)}is truncated: its header announces {array.rows} rows, the data holds {rows}",
            file=display,
            hint=_HINT,
        )


class _Borrowed:
    """A context manager lending `stream` without closing it (the input closes it)."""

    def __init__(self, stream) -> None:
        self._stream = stream

    def __enter__(self):
        return self._stream

    def __exit__(self, *exc) -> None:
        pass


def _skipped(stream, length: int):
    """`stream` after its first `length` bytes (a member's header)."""
    stream.read(length)
    return stream
