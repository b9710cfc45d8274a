"""Read CSV, TSV, JSON, NDJSON and Parquet from a path or stdin into NumPy batches.

Each input is opened once, its columns are listed without reading the data, and the
selected columns are then streamed as :class:`Batch` objects of float64 arrays that
carry the 0-based index of their first record, so that an error can name the row.

Rows in messages are 1-based as a user counts them: the line of a CSV/TSV/NDJSON file
(the header is line 1; quoted fields that span lines are not supported), the record of
a JSON document, the row of a Parquet file.

pyarrow is imported on first use: a small all-numeric CSV (a shell one-liner) is parsed
without it, which saves about a third of such a command's start-up.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import re
import sys
from collections import Counter, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np

from .columns import Column, Selection
from .errors import DataError, InputError, OptionError, printable

FORMATS = ("csv", "tsv", "json", "ndjson", "parquet")
DEFAULT_BATCH_ROWS = 1 << 16
STDIN_NAME = "<stdin>"

_EXTENSIONS = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".json": "json",
    ".ndjson": "ndjson",
    ".jsonl": "ndjson",
    ".parquet": "parquet",
    ".pq": "parquet",
}
_COMPRESSIONS = {".gz": "gzip", ".bz2": "bz2", ".zst": "zstd", ".zstd": "zstd"}
_MAGIC = ((b"\x1f\x8b", "gzip"), (b"BZh", "bz2"), (b"\x28\xb5\x2f\xfd", "zstd"))
_HEAD_BYTES = 1 << 16
_BOM = b"\xef\xbb\xbf"


class _LazyPyarrow:
    """Stands in for the ``pa`` module until first used, then imports pyarrow and replaces itself.

    pyarrow takes about 35 ms to import (its .compute, .csv, .json and .parquet parts, imported
    where used, about 50 ms more), and a small CSV one-liner needs none of it.
    """

    def __getattr__(self, name: str):
        import pyarrow

        globals()["pa"] = pyarrow
        return getattr(pyarrow, name)


pa = _LazyPyarrow()

_NUMBER = re.compile(r"^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$|^\s*[-+]?(nan|inf|infinity)\s*$", re.I)
_SELECT_HINT = "check the file, or choose other columns with -y/-p"
_MISSING_HINT = "fill in every cell, or drop the row"


@dataclass(frozen=True)
class ReadSettings:
    """How to read an input: forced format, delimiter, header mode and batch size."""

    input_format: str | None = None
    delimiter: str | None = None
    header: bool | None = None  # None: a first row of numbers only is data, anything else is a header
    batch_rows: int = DEFAULT_BATCH_ROWS


@dataclass
class Batch:
    """Arrays of one batch of records (float64 or float32; integer class labels stay integers).

    `offset` is the index of its first record.
    """

    offset: int
    size: int
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    keep: dict[str, list] = field(default_factory=dict)  # JSON values (see _json_value)
    groups: dict[str, tuple[np.ndarray, list]] = field(default_factory=dict)  # codes, distinct keys (_group_key)
    kept: dict[str, pa.Array] = field(default_factory=dict)  # typed --keep columns as read, for a Parquet --out
    nonfinite: dict[str, int] = field(default_factory=dict)  # NaN/inf kept or grouped values, turned into None


class CellError(DataError):
    """A bad value at `index` (0-based within a batch) of a named column."""

    def __init__(self, message: str, *, index: int, column: str, hint: str | None = None) -> None:
        super().__init__(message, hint=hint, column=column)
        self.index = index


# --------------------------------------------------------------------------- bytes


class _Chain(io.RawIOBase):
    """A byte stream that replays a peeked `head` and then reads on from `rest`."""

    def __init__(self, head: bytes, rest) -> None:
        self._head = memoryview(head)
        self._rest = rest

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        if not self.closed and self._rest is not sys.stdin.buffer:
            self._rest.close()
        super().close()

    def readinto(self, buffer) -> int:
        if self._head.nbytes:
            n = min(len(buffer), self._head.nbytes)
            buffer[:n] = self._head[:n]
            self._head = self._head[n:]
            return n
        data = self._rest.read1(len(buffer)) if hasattr(self._rest, "read1") else self._rest.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def _peek(stream, size: int = _HEAD_BYTES) -> tuple[bytes, io.BufferedReader]:
    """Read up to `size` bytes (more until a newline, for a whole first line) and rewind."""
    parts, total = [], 0
    while total < size or (b"\n" not in b"".join(parts) and total < 16 * size):
        chunk = stream.read1(size) if hasattr(stream, "read1") else stream.read(size)
        if not chunk:
            break
        parts.append(chunk)
        total += len(chunk)
    head = b"".join(parts)
    return head, io.BufferedReader(_Chain(head, stream), buffer_size=1 << 20)


def _decompress(stream, codec: str):
    if codec == "gzip":
        import gzip

        return gzip.GzipFile(fileobj=stream)
    if codec == "bz2":
        import bz2

        return bz2.BZ2File(stream)
    return pa.CompressedInputStream(pa.PythonFile(stream, mode="r"), "zstd")


def _split_extension(path: str) -> tuple[str | None, str | None]:
    """(format, compression) from the file name, e.g. ``x.csv.gz`` -> ("csv", "gzip")."""
    root, ext = os.path.splitext(path.lower())
    compression = _COMPRESSIONS.get(ext)
    if compression:
        root, ext = os.path.splitext(root)
    return _EXTENSIONS.get(ext), compression


def _sniff(head: bytes) -> str:
    if head.startswith(b"PAR1"):
        return "parquet"
    text = head.removeprefix(_BOM).lstrip()
    if text.startswith(b"["):
        return "json"
    if text.startswith(b"{"):
        first, _, rest = text.partition(b"\n")
        try:
            json.loads(first)
        except ValueError:
            return "json"
        return "ndjson" if rest.strip() else "json"
    return "csv"


def open_input(path: str, settings: ReadSettings = ReadSettings()) -> Input:
    """Open `path` (``"-"`` for stdin) and list its columns.

    The format comes from `settings.input_format`, else the extension, else the
    content. ``.gz``, ``.bz2`` and ``.zst`` files are decompressed on the fly.

    Raises
    ------
    InputError
        If the file cannot be opened or its format is unknown or malformed.
    """
    display = STDIN_NAME if path == "-" else path
    fmt, codec = (None, None) if path == "-" else _split_extension(path.split("?", 1)[0] if "://" in path else path)
    if settings.input_format:
        if settings.input_format not in FORMATS:
            raise InputError(f"unknown input format {settings.input_format!r}", hint=f"use one of {', '.join(FORMATS)}")
        fmt = settings.input_format
    raw = _open_raw(path, display)
    try:
        return _open_stream(path, display, raw, fmt, codec, settings)
    except BaseException:
        if raw is not sys.stdin.buffer:
            raw.close()
        raise


def _open_stream(path: str, display: str, raw, fmt: str | None, codec: str | None, settings: ReadSettings) -> Input:
    head, stream = _peek(raw)
    if codec is None:
        codec = next((name for magic, name in _MAGIC if head.startswith(magic)), None)
    if codec:
        try:
            head, stream = _peek(_decompress(stream, codec))
        except (OSError, EOFError, pa.ArrowException) as error:
            raise InputError(f"cannot decompress {codec} data: {error}", file=display) from None
    fmt = fmt or _sniff(head)
    if not head.strip():
        raise InputError("the input is empty", file=display, hint="give a file with a header and rows of data")
    regular = path != "-" and "://" not in path and os.path.isfile(path)  # not a FIFO, pipe or URL
    reopen = (lambda: _reopen(path, codec)) if regular else None
    if fmt == "parquet":
        seekable = path if regular and not codec else _url_file(path) if "://" in path and not codec else None
        opened: Input = ParquetInput(display, stream, plain_path=seekable)
    elif fmt == "json":
        opened = JsonInput(display, stream)
    elif fmt == "ndjson":
        opened = NdjsonInput(display, head, stream, reopen)
    else:
        delimiter = settings.delimiter or ("\t" if fmt == "tsv" else ",")
        opened = CsvInput(display, head, stream, reopen, delimiter, settings.header)
    opened.raw = raw
    opened.size = os.path.getsize(path) if regular else None
    return opened


def _open_raw(path: str, display: str):
    """A binary stream for a path, ``-`` (stdin) or a URL pyarrow's filesystems understand."""
    if path == "-":
        return sys.stdin.buffer
    try:
        if "://" in path:
            from pyarrow import fs

            filesystem, inner = fs.FileSystem.from_uri(path)
            return filesystem.open_input_stream(inner)
        if os.path.isdir(path):
            raise InputError("is a directory, not a file", file=display, hint="give one file")
        return open(path, "rb")  # noqa: SIM115 - closed by Input.close
    except OSError as error:
        raise InputError(error.strerror or str(error), file=display, hint="check the path") from None
    except pa.ArrowException as error:
        raise InputError(f"cannot open: {error}", file=display, hint="check the URL and your credentials") from None


def _url_file(url: str):
    """A seekable file for a URL, so Parquet reads only the row groups and columns it needs."""
    from pyarrow import fs

    filesystem, inner = fs.FileSystem.from_uri(url)
    return filesystem.open_input_file(inner)


def _expand_url(url: str) -> list[str]:
    """A URL naming a folder lists its data files (recursively, sorted); a file stays as is."""
    from pyarrow import fs

    try:
        filesystem, inner = fs.FileSystem.from_uri(url)
        if filesystem.get_file_info(inner).type != fs.FileType.Directory:
            return [url]
        infos = filesystem.get_file_info(fs.FileSelector(inner, recursive=True))
    except (OSError, pa.ArrowException) as error:
        raise InputError(f"cannot list: {error}", file=url, hint="check the URL and your credentials") from None
    found = sorted(
        info.path
        for info in infos
        if info.type == fs.FileType.File
        and not any(part.startswith((".", "_")) for part in info.path[len(inner) :].split("/") if part)
        and info.path.lower().endswith(_DATA_SUFFIXES)
    )
    if not found:
        raise InputError("the folder holds no data files", file=url, hint="expected .csv, .parquet, ... files")
    scheme = url.split("://", 1)[0]
    # Options in the query (e.g. s3://bucket/dir?region=eu-west-1) apply to every file.
    query = url.split("?", 1)[1] if "?" in url else ""
    return [f"{scheme}://{path}" + (f"?{query}" if query else "") for path in found]  # e.g. s3://bucket/key


def _reopen(path: str, codec: str | None):
    raw = open(path, "rb")  # noqa: SIM115 - read to the end by the caller
    return _decompress(raw, codec) if codec else raw


_DATA_SUFFIXES = tuple(_EXTENSIONS) + tuple(e + c for e in _EXTENSIONS for c in _COMPRESSIONS)


def expand_sources(paths: list[str]) -> list[str]:
    """Expand folders (recursively, e.g. hive partitions) and globs into a sorted list of files.

    Files in a folder are those with a data extension (``.csv``, ``.parquet``, ...,
    optionally compressed); names starting with ``.`` or ``_`` (``_SUCCESS``) are
    skipped. A pattern that matches nothing is an error.
    """
    import glob

    expanded: list[str] = []
    for path in paths:
        if path == "-":
            expanded.append(path)
        elif "://" in path:
            expanded.extend(_expand_url(path))
        elif os.path.isdir(path):
            found = sorted(
                os.path.join(folder, name)
                for folder, subfolders, names in os.walk(path)
                for name in names
                if not name.startswith((".", "_"))
                and name.lower().endswith(_DATA_SUFFIXES)
                and not any(
                    part.startswith((".", "_")) for part in os.path.relpath(folder, path).split(os.sep) if part != "."
                )
            )
            if not found:
                raise InputError("the folder holds no data files", file=path, hint="expected .csv, .parquet, ... files")
            expanded.extend(found)
        elif not os.path.exists(path) and any(ch in path for ch in "*?["):
            found = sorted(glob.glob(path, recursive=True))
            if not found:
                raise InputError("the pattern matches no file", file=path, hint="check the pattern")
            expanded.extend(found)
        else:
            expanded.append(path)
    if expanded.count("-") > 1:
        raise InputError("stdin (-) can be read only once", file="-")
    return expanded


# --------------------------------------------------------------------------- conversion


_NUMPY_TYPES = {  # Arrow type names
    "double": np.float64,
    "float": np.float32,
    "int64": np.int64,
    "int32": np.int32,
    "int16": np.int16,
    "int8": np.int8,
    "uint64": np.uint64,
    "uint32": np.uint32,
    "uint16": np.uint16,
    "uint8": np.uint8,
}


def _view(array: pa.Array) -> np.ndarray:
    """Zero-copy NumPy view of a primitive Arrow array without nulls.

    ``Array.to_numpy`` would import pandas when it is installed (about 0.2 s), so the
    data buffer is wrapped directly.
    """
    dtype = np.dtype(_NUMPY_TYPES[str(array.type)])
    return np.frombuffer(array.buffers()[1], dtype=dtype, count=len(array), offset=array.offset * dtype.itemsize)


def _first_index(mask: pa.Array) -> int:
    """Index of the first true value of a boolean Arrow array."""
    import pyarrow.compute as pc

    return pc.indices_nonzero(mask)[0].as_py()


def _check_nulls(array: pa.Array, column: str, what: str = "missing value") -> None:
    if array.null_count:
        index = _first_index(array.is_null())
        raise CellError(what, index=index, column=column, hint=_MISSING_HINT)


def _bad_number(array: pa.Array) -> int:
    """Index of the first string in `array` that does not parse as a number (binary search)."""
    import pyarrow.compute as pc

    low, high = 0, len(array)
    while high - low > 1:
        middle = (low + high) // 2
        try:
            pc.cast(array.slice(low, middle - low), pa.float64())
        except pa.ArrowInvalid:
            high = middle
        else:
            low = middle
    return low


def _floats(array: pa.Array, column: str) -> np.ndarray:
    """A scalar Arrow column as float64, naming the first missing or non-numeric cell."""
    _check_nulls(array, column)
    if pa.types.is_string(array.type) or pa.types.is_large_string(array.type):
        import pyarrow.compute as pc

        try:
            array = pc.cast(array, pa.float64())
        except pa.ArrowInvalid:
            index = _bad_number(array)
            value = array[index].as_py()
            if not value.strip():
                raise CellError("missing value", index=index, column=column, hint=_MISSING_HINT) from None
            raise CellError(
                f"not a number: {value!r}",
                index=index,
                column=column,
                hint="every cell of this column must be a number",
            ) from None
    elif not (pa.types.is_floating(array.type) or pa.types.is_integer(array.type) or pa.types.is_boolean(array.type)):
        raise CellError(f"holds {array.type} values, not numbers", index=0, column=column, hint=_SELECT_HINT)
    if pa.types.is_float64(array.type) or pa.types.is_float32(array.type):
        # float32 stays float32 (exact either way); the math widens what it uses to float64.
        return _view(array)
    import pyarrow.compute as pc

    return _view(pc.cast(array, pa.float32() if pa.types.is_float16(array.type) else pa.float64()))


def _list_floats(array: pa.Array, column: str, width: int | None) -> np.ndarray:
    """A list column as an (n, width) float64 matrix, naming the first ragged or bad row."""
    import pyarrow.compute as pc

    _check_nulls(array, column, "missing list")
    lengths = _view(pc.cast(pc.list_value_length(array), pa.int64()))
    expected = width if width is not None else (int(lengths[0]) if len(lengths) else 0)
    if len(lengths) and (lengths != expected).any():
        index = int(np.flatnonzero(lengths != expected)[0])
        raise CellError(
            f"list has {lengths[index]} values where the other rows have {expected}",
            index=index,
            column=column,
            hint="every row needs one value per class",
        )
    values = array.flatten()
    if values.null_count:
        index = _first_index(values.is_null()) // max(expected, 1)
        raise CellError("missing value in list", index=index, column=column, hint="fill in every value")
    return np.asfortranarray(_floats(values, column).reshape(len(array), expected))


def class_indices(array: pa.Array, column: str, class_names: list[str] | None) -> np.ndarray:
    """Class labels: an integer column as it is, else integer-valued float64 from numbers or class names."""
    is_text = pa.types.is_string(array.type) or pa.types.is_large_string(array.type)
    if pa.types.is_integer(array.type) and not array.null_count:
        # Integer labels stay integers: no round trip through float64.
        return _view(array)
    if not is_text:
        return _floats(array, column)
    _check_nulls(array, column)
    try:
        return _floats(array, column)
    except CellError as error:
        if not class_names:
            raise CellError(
                error.message,
                index=error.index,
                column=column,
                hint="labels must be class indices 0..C-1, or names matching the prediction column suffixes",
            ) from None
    lookup = {name: float(i) for i, name in enumerate(class_names)}
    texts = array.to_pylist()
    for index, text in enumerate(texts):
        if text not in lookup:
            raise CellError(
                f"label {text!r} is not a class name",
                index=index,
                column=column,
                hint=f"classes are: {', '.join(class_names)}",
            )
    return np.array([lookup[t] for t in texts], dtype=np.float64)


_EXACT_INTEGERS = 2.0**53  # below this, every integral float64 is an exact integer
_JSON_INTEGER = re.compile(r"-?(?:0|[1-9][0-9]*)")
_JSON_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?")
_BOOLEANS = {"true": True, "True": True, "TRUE": True, "false": False, "False": False, "FALSE": False}


class _Nonfinite:
    """Counts the NaN and infinite numbers that :func:`_json_value` turned into ``None``."""

    def __init__(self) -> None:
        self.count = 0


def _json_value(value, nonfinite: _Nonfinite):
    """A kept or grouped value as cecli prints it, whatever format it came from.

    Numbers are JSON numbers, not typed ones: an integral float below 2**53 in magnitude
    is the integer it equals (Parquet's ``0.0``, CSV's ``0.0`` and JSON's ``0`` are all
    ``0``); NaN and infinities become ``None`` (JSON has no such numbers) and are counted.
    Values JSON has no type for (dates, decimals, bytes) become their text.
    """
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        if value != value or value in (math.inf, -math.inf):
            nonfinite.count += 1
            return None
        return int(value) if value.is_integer() and abs(value) < _EXACT_INTEGERS else value
    if isinstance(value, list | tuple):
        return [_json_value(item, nonfinite) for item in value]
    if isinstance(value, dict):
        return {str(key): _json_value(item, nonfinite) for key, item in value.items()}
    return str(value)


def _text_value(text: str | None, nonfinite: _Nonfinite):
    """A CSV/TSV cell typed as the same text would be in JSON.

    A JSON number (``7``, ``-0.5``, ``1e3``; not ``007``, ``+1``, ``.5`` or ``nan``) is a
    number, ``true``/``false`` (also ``True``, ``TRUE``, ...) a boolean, an empty cell null,
    anything else text. Each cell is typed on its own, so the result does not depend on
    batches or files.
    """
    if not text:
        return None
    if _JSON_INTEGER.fullmatch(text):
        return _json_value(int(text), nonfinite)
    if _JSON_NUMBER.fullmatch(text):
        return _json_value(float(text), nonfinite)
    return _BOOLEANS.get(text, text)


def _is_text(array: pa.Array) -> bool:
    return pa.types.is_string(array.type) or pa.types.is_large_string(array.type)


def _pass_through(array: pa.Array, text: bool, nonfinite: _Nonfinite) -> list:
    """A ``--keep`` column as Python values printed alike from every format (see :func:`_json_value`).

    `text` says the input has no types (CSV/TSV): each cell is then typed by :func:`_text_value`.
    Whole columns of text, integers or floats take a vectorized path with the same result.
    """
    if text and _is_text(array):
        return _text_values(array, nonfinite)
    if pa.types.is_integer(array.type) or pa.types.is_string(array.type) or pa.types.is_boolean(array.type):
        return array.to_pylist()  # already JSON values
    if pa.types.is_floating(array.type):
        return _float_values(array, nonfinite)
    return [_json_value(value, nonfinite) for value in array.to_pylist()]


def _mask(array: pa.Array) -> np.ndarray:
    """A boolean Arrow array (nulls as false) as a NumPy bool array."""
    import pyarrow.compute as pc

    return _view(pc.cast(pc.fill_null(array, False), pa.uint8())).astype(bool)


def _float_values(array: pa.Array, nonfinite: _Nonfinite) -> list:
    """:func:`_json_value` of every value of a float column, vectorized."""
    import pyarrow.compute as pc

    nulls = _mask(array.is_null()) if array.null_count else np.zeros(len(array), dtype=bool)
    x = _view(pc.cast(pc.fill_null(array, 0.0) if array.null_count else array, pa.float64()))
    finite = np.isfinite(x)
    with np.errstate(invalid="ignore"):
        integral = finite & (np.abs(x) < _EXACT_INTEGERS) & (np.trunc(x) == x)
    if integral.all():
        values = x.astype(np.int64).tolist()
    else:
        values = x.tolist()
        for i in np.flatnonzero(integral).tolist():
            values[i] = int(values[i])
    for i in np.flatnonzero(~finite | nulls).tolist():
        values[i] = None
    nonfinite.count += int((~finite & ~nulls).sum())
    return values


def _text_values(array: pa.Array, nonfinite: _Nonfinite) -> list:
    """:func:`_text_value` of every cell of a CSV column; columns of only text or only numbers are vectorized."""
    import pyarrow.compute as pc

    array = pc.if_else(pc.equal(array, ""), pa.scalar(None, array.type), array)  # an empty cell is null
    numbers = pc.sum(pc.match_substring_regex(array, f"^{_JSON_NUMBER.pattern}$")).as_py() or 0
    if not numbers and not pc.any(pc.is_in(array, pa.array(list(_BOOLEANS)))).as_py():
        return array.to_pylist()
    # Integers beyond 2**53 must not pass through float64: they are typed one by one.
    long_integers = pc.any(pc.match_substring_regex(array, "^-?[0-9]{16,}$")).as_py()
    if numbers == len(array) - array.null_count and not long_integers:
        if pc.all(pc.match_substring_regex(array, f"^{_JSON_INTEGER.pattern}$")).as_py() is not False:
            return pc.cast(array, pa.int64()).to_pylist()
        # pyarrow's text-to-float64 conversion rounds correctly, as Python's float does.
        return _float_values(pc.cast(array, pa.float64()), nonfinite)
    return [_text_value(cell, nonfinite) for cell in array.to_pylist()]


def _group_key(value) -> tuple:
    """A ``--by`` value made distinct by kind, as JSON prints it: numbers, then booleans, text, null.

    Python's ``1 == True`` would otherwise merge the groups ``1`` and ``true``.
    """
    if value is None:
        return (3, None)
    if isinstance(value, bool):
        return (1, value)
    if isinstance(value, int | float):
        return (0, value)
    return (2, value)


def _codes(array: pa.Array, text: bool, nonfinite: _Nonfinite) -> tuple[np.ndarray, list[tuple]]:
    """Dictionary-encode a group column: per-row codes into a list of distinct keys (see :func:`_group_key`).

    Distinct cells that print alike (CSV ``1`` and ``1.0``, a NaN and a null) are one group.
    """
    import pyarrow.compute as pc

    encoded = pc.dictionary_encode(array, null_encoding="encode")
    codes = _view(pc.cast(encoded.indices, pa.int64()))
    keys: list[tuple] = []
    index: dict[tuple, int] = {}
    remap = np.empty(len(encoded.dictionary), dtype=np.int64)
    bad = []
    for i, value in enumerate(encoded.dictionary.to_pylist()):
        before = nonfinite.count
        key = _group_key(
            _text_value(value, nonfinite) if text and isinstance(value, str) else _json_value(value, nonfinite)
        )
        if nonfinite.count != before:
            nonfinite.count = before
            bad.append(i)
        remap[i] = index.setdefault(key, len(keys))
        if remap[i] == len(keys):
            keys.append(key)
    if bad:  # count rows, not distinct values
        nonfinite.count += int(np.isin(codes, bad).sum())
    return remap[codes] if len(keys) != len(remap) else codes, keys


def to_matrix(batch: pa.RecordBatch, columns: tuple[Column, ...]) -> np.ndarray:
    """The selected scalar columns side by side, or the one selected list column, as (n, k)."""
    if len(columns) == 1 and columns[0].is_list:
        return _list_floats(batch.column(columns[0].name), columns[0].name, None)
    lists = [c.name for c in columns if c.is_list]
    if lists:
        raise InputError(
            f"list column {lists[0]!r} cannot be combined with other columns", hint="select one list column alone"
        )
    if not columns:
        return np.empty((batch.num_rows, 0))
    arrays = [_floats(batch.column(c.name), c.name) for c in columns]
    # Column-major, like the Arrow columns: row sums and gathers then run over contiguous memory.
    matrix = np.empty((batch.num_rows, len(arrays)), dtype=np.result_type(*arrays), order="F")
    for j, array in enumerate(arrays):
        matrix[:, j] = array
    return matrix


# --------------------------------------------------------------------------- inputs


class Input:
    """An opened input: its display name, format, columns and a batch iterator."""

    format: str = ""
    header_lines: int = 0  # lines before the first record, for line numbers in messages
    headerless: bool = False
    untyped: bool = False  # CSV/TSV: kept and grouped cells are typed one by one (see _text_value)
    size: int | None = None  # bytes, for progress
    raw = None  # the underlying byte stream, for progress

    def position(self) -> int | None:
        """Bytes consumed so far (an estimate), or ``None`` when unknown."""
        try:
            return self.raw.tell() if self.size is not None else None
        except (OSError, ValueError, AttributeError):
            return None

    def __init__(self, display: str) -> None:
        self.display = display
        self.columns: list[Column] = []
        self.warnings: list[str] = []  # e.g. a header that looks like data; shown with the result

    def user_row(self, index: int) -> int:
        """The 1-based row a user sees for the record at 0-based `index`."""
        return index + 1 + self.header_lines

    def record_batches(
        self, names: list[str], settings: ReadSettings, numeric: frozenset[str] = frozenset()
    ) -> Iterator[pa.RecordBatch]:
        """Arrow batches of the `names` columns; `numeric` ones may be parsed as numbers directly."""
        raise NotImplementedError

    def describe_types(self) -> list[Column]:
        """Columns with their types (may read a sample of the data)."""
        return self.columns

    def _plain_numbers(self) -> np.ndarray | None:
        """All records as one float64 matrix, when the input can be parsed without pyarrow; else ``None``."""
        return None

    def _set_columns(self, fields: list[tuple[str, str, bool]]) -> None:
        """Set the columns from (name, type, is_list) triples."""
        duplicates = sorted(name for name, count in Counter(f[0] for f in fields).items() if count > 1)
        if duplicates:
            raise InputError(
                f"duplicate column name {duplicates[0]!r}", file=self.display, hint="give every column a unique name"
            )
        self.columns = [Column(i + 1, *f) for i, f in enumerate(fields)]

    def batches(
        self,
        selection: Selection,
        settings: ReadSettings,
        *,
        roles: tuple[str, ...] = ("labels", "predictions", "weight"),
        class_names: list[str] | None = None,
        class_labels: bool = False,
        prefetch: Callable[[Iterator[pa.RecordBatch]], Iterator[pa.RecordBatch]] | None = None,
    ) -> Iterator[Batch]:
        """Stream the selected roles as float64 arrays (labels as (n, k), predictions (n, C)).

        `prefetch`, if given, wraps the iterator of decoded Arrow batches (e.g. to decode
        in another thread); the conversion to NumPy happens in the caller's thread.

        Raises
        ------
        DataError
            For a missing, non-numeric or ragged cell; the error names file, row and column.
        """
        nested = [c for c in selection.by if c.is_list or c.type.startswith(("struct", "map"))]
        if nested and "predictions" in roles:
            raise OptionError(
                f"--by column {nested[0].name!r} holds {'lists' if nested[0].is_list else 'records'}, "
                "not single values",
                hint="group by a column of numbers or text",
            )
        values = None if selection.keep or selection.by else self._plain_numbers()
        if values is not None:
            yield from _plain_batches(values, self.columns, selection, settings, roles)
            return
        wanted = [getattr(selection, r) for r in roles]
        names: dict[str, None] = {}  # ordered and without duplicates, in linear time
        for part in wanted + [selection.keep, selection.by if "predictions" in roles else ()]:
            for column in (part,) if isinstance(part, Column) else part or ():
                names[column.name] = None
        names = list(names)
        offset = 0
        width = None
        numeric = {c.name for role in roles if role != "labels" or not class_labels for c in selection.columns(role)}
        record_batches = self.record_batches(names, settings, frozenset(numeric))
        for record_batch in record_batches if prefetch is None else prefetch(record_batches):
            try:
                batch = Batch(offset, record_batch.num_rows)
                for role in roles:
                    columns = getattr(selection, role)
                    if columns is None or columns == ():
                        continue
                    if role == "weight":
                        batch.arrays[role] = _floats(record_batch.column(columns.name), columns.name)
                    elif role == "labels" and class_labels and len(columns) == 1 and not columns[0].is_list:
                        array = record_batch.column(columns[0].name)
                        batch.arrays[role] = class_indices(array, columns[0].name, class_names)[:, None]
                    else:
                        matrix = to_matrix(record_batch, columns)
                        if role == "predictions":
                            if width is not None and matrix.shape[1] != width and record_batch.num_rows:
                                raise CellError(
                                    f"list has {matrix.shape[1]} values where earlier rows have {width}",
                                    index=0,
                                    column=columns[0].name,
                                    hint="every row needs one value per class",
                                )
                            width = matrix.shape[1] if record_batch.num_rows else width
                        batch.arrays[role] = matrix
                for column in selection.keep:
                    nonfinite = _Nonfinite()
                    array = record_batch.column(column.name)
                    batch.keep[column.name] = _pass_through(array, self.untyped, nonfinite)
                    if not self.untyped:  # CSV has no types to keep: a Parquet --out gets the text
                        batch.kept[column.name] = array
                    batch.nonfinite[column.name] = nonfinite.count
                for column in selection.by if "predictions" in roles else ():
                    nonfinite = _Nonfinite()
                    batch.groups[column.name] = _codes(record_batch.column(column.name), self.untyped, nonfinite)
                    batch.nonfinite.setdefault(column.name, nonfinite.count)
            except CellError as error:
                raise error.locate(file=self.display, row=self.user_row(offset + error.index)) from None
            except InputError as error:
                raise error.locate(file=self.display) from None
            yield batch
            offset += record_batch.num_rows

    def close(self) -> None:
        """Release the underlying file."""


def _plain_batches(
    values: np.ndarray, own: list[Column], selection: Selection, settings: ReadSettings, roles
) -> Iterator[Batch]:
    """Batches of a parsed matrix `values`, laid out as pyarrow's are (column-major float64).

    Selected columns are found by name among this input's columns `own`, as pyarrow finds
    them: the selection may have been made on another file whose columns come in another order.
    """
    index = {c.name: c.position - 1 for c in own}
    for start in range(0, len(values), settings.batch_rows):
        rows = values[start : start + settings.batch_rows]
        batch = Batch(start, len(rows))
        for role in roles:
            columns = getattr(selection, role)
            if role == "weight" and columns is not None:
                batch.arrays[role] = rows[:, index[columns.name]].copy()
            elif role != "weight" and columns:
                batch.arrays[role] = np.asfortranarray(rows[:, [index[c.name] for c in columns]])
        yield batch


def _arrow_fields(schema: pa.Schema) -> list[tuple[str, str, bool]]:
    lists = (pa.types.is_list, pa.types.is_large_list, pa.types.is_fixed_size_list)
    return [(f.name, str(f.type), any(is_list(f.type) for is_list in lists)) for f in schema]


class CsvInput(Input):
    """CSV or TSV, streamed with pyarrow (a small all-numeric input is parsed without it, see `_plain_numbers`)."""

    def __init__(self, display, head: bytes, stream, reopen, delimiter: str, header: bool | None) -> None:
        super().__init__(display)
        self.format = "tsv" if delimiter == "\t" else "csv"
        self.untyped = True
        self.delimiter = delimiter
        self._stream = stream
        self._reopen = reopen
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
        self._head_bytes = head
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
        width = len(self.columns)
        # Atomic numbers and a possessive row loop: a mismatch fails at once, never backtracks.
        number = f"(?>{_PLAIN_NUMBER})"
        row = f"{number}(?:{re.escape(self.delimiter)}{number}){{{width - 1}}}"
        if not re.fullmatch(f"{row}(?:\r?\n{row})*+(?:\r?\n)?", body):
            return None
        return np.array([float(cell) for cell in body.replace(self.delimiter, " ").split()]).reshape(-1, width)

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
        return [Column(c.position, c.name, str(sample.schema.field(c.position - 1).type), False) for c in self.columns]

    def _read_options(self, block_size: int, *, skip_header: bool = True, use_threads: bool = True):
        import pyarrow.csv as pa_csv

        return pa_csv.ReadOptions(
            column_names=[c.name for c in self.columns],
            skip_rows=self.header_lines if skip_header else 0,
            block_size=block_size,
            use_threads=use_threads,
        )

    def record_batches(self, names, settings, numeric=frozenset()):
        bad_rows: list[str] = []

        def on_invalid_row(row) -> str:
            bad_rows.append(row.text)
            return "error"

        # Numeric columns parse straight to float64 (twice as fast as text + cast). pyarrow's
        # conversion error names no row, so then the file is scanned again as text to find the
        # cell; a stream that cannot be read twice (stdin) is read as text from the start.
        direct = numeric if self._reopen is not None else frozenset()
        try:
            yield from self._parse_blocks(names, direct, settings, on_invalid_row)
        except pa.ArrowInvalid as error:
            if "conversion error" in str(error) and direct:
                try:
                    self._find_bad_cell(names, settings)
                except pa.ArrowInvalid as text_error:  # e.g. invalid UTF-8, found by the text reader
                    raise self._parse_error(text_error, bad_rows) from None
            raise self._parse_error(error, bad_rows) from None

    def _parse_blocks(self, names, numeric, settings, on_invalid_row) -> Iterator[pa.RecordBatch]:
        """Parse the stream in newline-aligned blocks, two at a time, and yield batches in order.

        pyarrow's streaming reader parses on one core; blocks parsed in parallel by
        ``read_csv`` use both, and memory stays bounded by a few blocks. Cutting at a
        newline is safe because quoted fields spanning lines are not supported anyway.
        A file with lone ``\\r`` line ends is read by the streaming reader.
        """
        import pyarrow.csv as pa_csv

        if b"\n" not in self._head_bytes or re.search(rb"\r(?!\n)", self._head_bytes.rstrip(b"\r")):
            for record_batch in self._open_csv(self._stream, names, numeric, settings, on_invalid_row):
                yield from _rechunk(record_batch, settings.batch_rows)
            return
        # The first block holds the header line, if any; each block is parsed by one thread.
        read_options = [self._read_options(1 << 20, skip_header=first, use_threads=False) for first in (True, False)]
        parse_options = pa_csv.ParseOptions(delimiter=self.delimiter, invalid_row_handler=on_invalid_row)
        convert_options = self._convert_options(names, numeric)

        def parse(block: bytes, first: bool) -> pa.Table:
            return pa_csv.read_csv(
                pa.py_buffer(block),
                read_options=read_options[0 if first else 1],
                parse_options=parse_options,
                convert_options=convert_options,
            )

        blocks = _newline_blocks(self._stream, _CSV_BLOCK_BYTES)
        first = next(blocks, b"")
        second = next(blocks, None)
        if second is None:  # a small input: no threads needed
            yield from parse(first, True).to_batches(max_chunksize=settings.batch_rows)
            return
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(2, thread_name_prefix="cecli-csv") as pool:
            pending = deque([pool.submit(parse, first, True), pool.submit(parse, second, False)])
            for block in blocks:
                pending.append(pool.submit(parse, block, False))
                if len(pending) > 2:
                    yield from pending.popleft().result().to_batches(max_chunksize=settings.batch_rows)
            while pending:
                yield from pending.popleft().result().to_batches(max_chunksize=settings.batch_rows)

    def _convert_options(self, names, numeric):
        import pyarrow.csv as pa_csv

        types = {n: pa.float64() if n in numeric else pa.string() for n in names}
        # Only an empty cell is missing; "nan" and "NA" are values, to be judged by validation.
        return pa_csv.ConvertOptions(
            include_columns=names, column_types=types, null_values=[""], strings_can_be_null=False
        )

    def _open_csv(self, stream, names, numeric, settings, on_invalid_row=None):
        import pyarrow.csv as pa_csv

        block_size = max(1 << 16, min(1 << 24, settings.batch_rows * 16 * max(len(self.columns), 1)))
        return pa_csv.open_csv(
            stream,
            read_options=self._read_options(block_size),
            parse_options=pa_csv.ParseOptions(delimiter=self.delimiter, invalid_row_handler=on_invalid_row),
            convert_options=self._convert_options(names, numeric),
        )

    def _find_bad_cell(self, names, settings) -> None:
        """Re-read the file as text and raise the error of its first non-numeric cell."""
        offset = 0
        with self._reopen() as stream:
            for record_batch in self._open_csv(stream, names, frozenset(), settings):
                for name in names:
                    try:
                        _floats(record_batch.column(name), name)
                    except CellError as error:
                        raise error.locate(file=self.display, row=self.user_row(offset + error.index)) from None
                offset += record_batch.num_rows

    def _parse_error(self, error: Exception, bad_rows: list[str]) -> InputError:
        text = str(error)
        if "UTF8" in text or "UTF-8" in text:
            return InputError(
                "invalid UTF-8 text", file=self.display, row=self._find_bad_utf8_line(), hint="save the file as UTF-8"
            )
        if bad_rows or "Expected" in text:
            line = self._find_ragged_line()
            got = text.split("got ", 1)[-1].split(":", 1)[0] if "got " in text else "?"
            return InputError(
                f"row has {got} fields, the header has {len(self.columns)}",
                file=self.display,
                row=line,
                hint="quote fields that contain the delimiter, or fix the row",
            )
        return InputError(f"cannot parse: {text}", file=self.display, hint="check that the file is CSV")

    def _find_bad_utf8_line(self) -> int | None:
        if self._reopen is None:
            return None
        with self._reopen() as stream:
            for number, line in enumerate(stream, start=1):
                try:
                    line.decode("utf-8")
                except UnicodeDecodeError:
                    return number
        return None

    def _find_ragged_line(self) -> int | None:
        if self._reopen is None:
            return None
        with (
            self._reopen() as stream,
            io.TextIOWrapper(stream, encoding="utf-8-sig", errors="replace", newline="") as lines,
        ):
            for number, row in enumerate(csv.reader(lines, delimiter=self.delimiter), start=1):
                if row and len(row) != len(self.columns):
                    return number
        return None

    def close(self) -> None:
        self._stream.close()


_CSV_BLOCK_BYTES = 8 << 20
_SMALL_CSV_BYTES = 8 << 10  # a whole CSV input this small may be parsed without pyarrow
_PLAIN_NUMBER = r"[-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?"  # [0-9]: \d would take digits of any script


def _newline_blocks(stream, size: int) -> Iterator[bytes]:
    """Blocks of about `size` bytes that end just after a newline (the last one at the end of the stream).

    A last line without a newline stays in the last block rather than making a batch of its own.
    """
    rest = b""
    while True:
        data = stream.read(size)
        if len(data) < size:  # likely the end (a buffered stream reads short only there): make sure
            more = stream.read(size) if data else b""
            if not more:
                if rest or data:
                    yield rest + data
                return
            data += more
        cut = data.rfind(b"\n") + 1
        if cut == 0:  # no newline in this block: a very long line continues
            rest += data
            continue
        yield rest + data[:cut]
        rest = data[cut:]


def _rechunk(record_batch: pa.RecordBatch, rows: int) -> Iterator[pa.RecordBatch]:
    for start in range(0, max(record_batch.num_rows, 1), rows):
        piece = record_batch.slice(start, rows)
        if piece.num_rows:
            yield piece


class NdjsonInput(Input):
    """Newline-delimited JSON records, streamed with pyarrow's JSON reader."""

    format = "ndjson"

    def __init__(self, display, head: bytes, stream, reopen) -> None:
        super().__init__(display)
        self._stream = stream
        self._reopen = reopen
        first_line = head.removeprefix(_BOM).lstrip().split(b"\n", 1)[0]
        try:
            record = json.loads(first_line.rstrip(b"\r"))
        except ValueError as error:
            raise InputError(
                _json_message(error), file=display, row=1, hint="each line must be one JSON object"
            ) from None
        if not isinstance(record, dict):
            raise InputError("a line is not a JSON object", file=display, row=1, hint="each line must be {...}")
        self._kinds = {name: _json_kind(value) for name, value in record.items()}
        # A null on the first line says nothing about the column: take the kind of its first
        # value in the peeked head (a column null throughout it stays a number column).
        unknown = {name for name, value in record.items() if value is None}
        for line in head.removeprefix(_BOM).split(b"\n")[1:-1] if unknown else ():
            if not line.strip():
                continue
            try:
                later = json.loads(line)
            except ValueError:
                break
            for name in [n for n in unknown if isinstance(later, dict) and later.get(n) is not None]:
                self._kinds[name] = _json_kind(later[name])
                unknown.discard(name)
            if not unknown:
                break
        self._set_columns(_arrow_fields(pa.schema([(n, k) for n, k in self._kinds.items()])))

    def record_batches(self, names, settings, numeric=frozenset()):
        import pyarrow.json as pa_json

        schema = pa.schema([(n, self._kinds[n]) for n in names])
        try:
            reader = pa_json.open_json(
                self._stream,
                read_options=pa_json.ReadOptions(block_size=max(1 << 16, settings.batch_rows * 64)),
                parse_options=pa_json.ParseOptions(explicit_schema=schema, unexpected_field_behavior="ignore"),
            )
            for record_batch in reader:
                yield from _rechunk(record_batch, settings.batch_rows)
        except pa.ArrowInvalid as error:
            raise self._locate(error) from None

    def close(self) -> None:
        self._stream.close()

    def _locate(self, error: Exception) -> InputError:
        message = str(error).removeprefix("JSON parse error: ")
        if self._reopen is not None:
            with self._reopen() as stream, io.TextIOWrapper(stream, encoding="utf-8-sig", errors="replace") as lines:
                for number, line in enumerate(lines, 1):
                    if not line.strip():
                        continue
                    try:
                        record = json.loads(line.rstrip("\r\n"))
                    except ValueError as bad:
                        return InputError(
                            _json_message(bad),
                            file=self.display,
                            row=number,
                            hint="each line must be one JSON object",
                        )
                    if not isinstance(record, dict):
                        return InputError(
                            "line is not a JSON object", file=self.display, row=number, hint="each line must be {...}"
                        )
                    for name, kind in self._kinds.items():
                        if name in record and record[name] is not None and _json_kind(record[name]) != kind:
                            return InputError(
                                f"{_describe(record[name])} where the first row has {_describe_kind(kind)}",
                                file=self.display,
                                row=number,
                                column=name,
                                hint="use one type per column",
                            )
        return InputError(message, file=self.display, hint="check that every line is one JSON object")


def _json_message(error: ValueError) -> str:
    if isinstance(error, json.JSONDecodeError):
        return f"invalid JSON at column {error.colno}: {error.msg}"
    return f"invalid JSON: {error}"  # e.g. invalid UTF-8


def _json_kind(value) -> pa.DataType:
    if isinstance(value, list):
        return pa.list_(pa.float64())
    if isinstance(value, str):
        return pa.string()
    if isinstance(value, bool):
        return pa.bool_()
    return pa.float64()


def _describe(value) -> str:
    if isinstance(value, bool):
        return "a boolean"
    return "a list" if isinstance(value, list) else "text" if isinstance(value, str) else "a number"


def _describe_kind(kind: pa.DataType) -> str:
    if pa.types.is_boolean(kind):
        return "a boolean"
    return "a list" if pa.types.is_list(kind) else "text" if pa.types.is_string(kind) else "a number"


class JsonInput(Input):
    """A JSON document: an array of records, or an object of equally long columns."""

    format = "json"

    def __init__(self, display, stream) -> None:
        super().__init__(display)
        try:
            document = json.loads(stream.read().decode("utf-8-sig"), object_pairs_hook=_unique_keys)
        except UnicodeDecodeError:
            raise InputError("invalid UTF-8 text", file=display, hint="save the file as UTF-8") from None
        except _DuplicateKey as error:
            raise InputError(
                f"duplicate key {error.key!r} in a JSON object", file=display, hint="give every column a unique name"
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
        arrays = {}
        for name, values in columns.items():
            try:
                arrays[name] = pa.array(values)
            except (pa.ArrowInvalid, pa.ArrowTypeError):
                row, value = _first_odd_value(values)
                raise InputError(
                    f"{_describe(value)} where earlier rows have {_describe(next(v for v in values if v is not None))}",
                    file=display,
                    row=row,
                    column=name,
                    hint="use one type per column",
                ) from None
        self.table = pa.table(arrays) if arrays else pa.table({})
        self._set_columns(_arrow_fields(self.table.schema))

    def _columns_of(self, document) -> dict[str, list]:
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


def _first_odd_value(values: list) -> tuple[int, object]:
    """The first value whose kind differs from the first non-null value's (1-based row, value)."""
    common = next((_describe(v) for v in values if v is not None), None)
    for number, value in enumerate(values, 1):
        if value is not None and _describe(value) != common:
            return number, value
    return 1, values[0] if values else None


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
                f"not a readable Parquet file: {error}", file=display, hint="the file may be truncated or corrupt"
            ) from None
        self._set_columns(_arrow_fields(schema))

    def position(self) -> int | None:
        total = self.file.metadata.num_rows
        return None if self.size is None or not total else int(self.size * self._rows_read / total)

    def record_batches(self, names, settings, numeric=frozenset()):
        self._rows_read = 0
        try:
            # One decoding thread: the caller's math has the other core (pyarrow's pool would compete).
            batches = self.file.iter_batches(batch_size=settings.batch_rows, columns=names, use_threads=False)
            for record_batch in batches:
                self._rows_read += record_batch.num_rows
                yield record_batch
        except (pa.ArrowException, OSError) as error:
            raise InputError(
                f"cannot read Parquet data: {error}", file=self.display, hint="the file may be truncated or corrupt"
            ) from None

    def close(self) -> None:
        self.file.close()


def aligned(left: Iterator[Batch], right: Iterator[Batch], *, left_name: str, right_name: str) -> Iterator[Batch]:
    """Merge two batch streams record by record (for ``--labels``), re-slicing as needed.

    Raises
    ------
    InputError
        If one stream ends before the other.
    """
    pending: list[Batch] = []
    right_iter = iter(right)
    buffer: Batch | None = None
    seen_left = 0
    for batch in left:
        seen_left += batch.size
        pending_rows = batch.size
        parts = []
        while pending_rows:
            if buffer is None or buffer.size == 0:
                buffer = next(right_iter, None)
                if buffer is None:
                    raise InputError(
                        f"has fewer rows than {left_name}",
                        file=right_name,
                        hint="--labels needs exactly one row per input row",
                    )
            take = min(pending_rows, buffer.size)
            parts.append(_slice(buffer, 0, take))
            buffer = _slice(buffer, take, buffer.size)
            pending_rows -= take
        merged = Batch(
            batch.offset,
            batch.size,
            dict(batch.arrays),
            dict(batch.keep),
            dict(batch.groups),
            dict(batch.kept),
            dict(batch.nonfinite),
        )
        for role in parts[0].arrays if parts else ():
            merged.arrays[role] = np.concatenate([p.arrays[role] for p in parts])
        yield merged
    del pending
    leftover = (buffer.size if buffer is not None else 0) + sum(b.size for b in right_iter)
    if leftover:
        raise InputError(
            f"has {leftover} more rows than {left_name} ({seen_left})",
            file=right_name,
            hint="--labels needs exactly one row per input row",
        )


def _slice(batch: Batch, start: int, stop: int) -> Batch:
    return Batch(
        batch.offset + start,
        stop - start,
        {k: v[start:stop] for k, v in batch.arrays.items()},
        {k: v[start:stop] for k, v in batch.keep.items()},
        {k: (codes[start:stop], values) for k, (codes, values) in batch.groups.items()},
        {k: v.slice(start, stop - start) for k, v in batch.kept.items()},
        dict(batch.nonfinite),
    )
