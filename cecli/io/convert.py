"""Arrow arrays to NumPy: selected columns to float64 matrices, class indices, and cell values
typed for grouping keys.
"""

from __future__ import annotations

import math
import re

import numpy as np

from cecli.errors import InputError

from .base import CellError, pa
from .columns import Column

_NUMBER = re.compile(r"^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$|^\s*[-+]?(nan|inf|infinity)\s*$", re.I)


_SELECT_HINT = "check the file, or choose other columns with -y/-p"


_MISSING_HINT = "fill in every cell, or drop the row"


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
    """Index of the first string in `array` that does not parse as a number, even leniently (binary search)."""
    low, high = 0, len(array)
    while high - low > 1:
        middle = (low + high) // 2
        if pa.types.is_float64(_lenient(array.slice(low, middle - low)).type):
            low = middle
        else:
            high = middle
    return low


def _lenient(array: pa.Array) -> pa.Array:
    """Text cells as float64 where there is no doubt what they mean, else `array` unchanged.

    Surrounding spaces are dropped (``1, 0.9``: pyarrow's typed CSV columns skip them too),
    and ``true``/``false`` (also ``True``, ``TRUE``, ...) are 1 and 0, as a boolean column of
    Parquet or JSON is (README, "Input").
    """
    import pyarrow.compute as pc

    trimmed = pc.utf8_trim(array, characters=" \t")
    for words, number in (
        ([w for w, v in _BOOLEANS.items() if v], "1"),
        ([w for w, v in _BOOLEANS.items() if not v], "0"),
    ):
        trimmed = pc.if_else(pc.is_in(trimmed, value_set=pa.array(words)), number, trimmed)
    try:
        return pc.cast(trimmed, pa.float64())
    except pa.ArrowInvalid:
        return array


def _floats(array: pa.Array, column: str) -> np.ndarray:
    """A scalar Arrow column as float64, naming the first missing or non-numeric cell."""
    _check_nulls(array, column)
    if pa.types.is_string(array.type) or pa.types.is_large_string(array.type):
        import pyarrow.compute as pc

        try:
            array = pc.cast(array, pa.float64())
        except pa.ArrowInvalid:
            array = _lenient(array)
        if not pa.types.is_float64(array.type):
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
        kind = (
            "objects"
            if pa.types.is_struct(array.type)
            else "lists"
            if pa.types.is_list(array.type) or pa.types.is_large_list(array.type)
            else f"{array.type} values"
        )
        raise CellError(f"holds {kind}, not numbers", index=0, column=column, hint=_SELECT_HINT)
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
    if expected == 0 and len(lengths):
        index = int(np.flatnonzero(lengths == 0)[0])
        raise CellError("empty list", index=index, column=column, hint="every row needs one value per class")
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
