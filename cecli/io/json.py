"""JSON documents: the choice of reader (:func:`json_input`), and the reader of whole documents.

The readers of long documents and of NDJSON live beside it: :mod:`~cecli.io.ndjson`,
:mod:`~cecli.io.json_array` (a long array of records, streamed as NDJSON),
:mod:`~cecli.io.json_columns` (a long object of columns); :mod:`~cecli.io.json_values` holds
what they share (parsing with limits, JSON kinds and their Arrow types).
"""

from __future__ import annotations

import json

from cecli.errors import InputError

from .base import pa
from .inputs import Input, _arrow_fields, _one_line
from .json_values import (
    _JSON_HINT,
    _DuplicateKey,
    _first_misfit,
    _json_loads,
    _TooDeep,
    _unique_keys,
    _widen,
)
from .streams import _BOM


def json_input(display: str, head: bytes, stream, reopen, path: str | None = None) -> Input:
    """A JSON document: one that goes on beyond its first 64 KiB is streamed, an array of records as
    NDJSON (`JsonArrayInput`), an object of columns in a plain file column by column (`JsonColumnsInput`);
    any other is read whole (`JsonInput`, whose messages name line and column)."""
    from .streams import _HEAD_BYTES

    text = head.removeprefix(_BOM).lstrip()
    if len(head) >= _HEAD_BYTES and text.startswith(b"["):
        from .json_array import JsonArrayInput, goes_on  # here: only long documents need them

        if goes_on(head, display):
            return JsonArrayInput(display, head, stream, reopen)
    if len(head) >= _HEAD_BYTES and text.startswith(b"{") and path is not None:
        from .json_columns import JsonColumnsInput

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


def _has_boolean(arrow_type: pa.DataType, values: list) -> bool:
    """Whether a column that pyarrow read as numbers (or lists of numbers) holds a boolean."""
    if pa.types.is_floating(arrow_type):
        return any(type(value) is bool for value in values)
    if pa.types.is_list(arrow_type) and pa.types.is_floating(arrow_type.value_type):
        return any(type(item) is bool for value in values if value for item in value)
    return False
