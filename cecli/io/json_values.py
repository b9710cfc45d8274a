"""JSON text and types as cecli reads them: parsing with limits, the JSON kind of a value, its Arrow type."""

from __future__ import annotations

import json
import re

from cecli.errors import InputError

from .base import pa

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


def _misfit_error(value, kind: str, *, file: str, row: int, column: str) -> InputError | None:
    """The error for `value` at `row` of a column of JSON type `kind`, or ``None`` when it fits (:func:`_misfit`)."""
    misfit = _misfit(value, kind)
    if misfit is None:
        return None
    return InputError(
        f"{misfit} where earlier rows have {_expected(kind)}",
        file=file,
        row=row,
        column=column,
        hint="use one type per column",
    )


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


class _DuplicateKey(Exception):
    def __init__(self, key: str) -> None:
        self.key = key


def _unique_keys(pairs: list[tuple[str, object]]) -> dict:
    keys = [k for k, _ in pairs]
    if len(set(keys)) != len(keys):
        raise _DuplicateKey(next(k for k in keys if keys.count(k) > 1))
    return dict(pairs)
