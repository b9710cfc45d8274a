"""Per-sample output as text: NDJSON and CSV lines with exactly the bytes ``json.dumps`` and ``repr`` write.

One implementation for ``-f ndjson`` / ``-f csv`` on stdout (:mod:`cecli.render`) and ``--out`` files
(:mod:`cecli.io.writers`), so both hold the same bytes for the same data.
"""

from __future__ import annotations

import functools
import math

import numpy as np

_NDJSON_OWN = frozenset({"row", "loss", "nonfinite"})
# Per-sample lines of a batch this long or longer are put together in pyarrow, fewer in Python: importing
# pyarrow.compute (about 60 ms with pyarrow) would cost a small CSV one-liner more than its lines.
_ARROW_ROWS = 2048


def float_texts(values: np.ndarray):
    """Each float64 as ``repr`` writes it (what ``json.dumps`` writes), as a ``pyarrow`` string array.

    Arrow's cast to text finds the same shortest digits that round-trip to the same float,
    without a Python object per value, but lays some of them out unlike ``repr``. With ``E``
    the decimal exponent of the first digit (``d.ddd × 10**E``), those are rewritten:

    - a whole number with ``E < 10`` lacks ``.0`` (``12`` for ``12.0``, ``-0`` for ``-0.0``);
    - ``E = -6, -5`` is positional (``0.0000025``) where ``repr`` writes ``2.5e-06``;
    - ``E = -9 .. -7`` has one exponent digit (``1e-7``) where ``repr`` writes two (``1e-07``);
    - ``10 <= E < 16`` is ``1.5e+10`` where ``repr`` is positional: these, and negative numbers
      with ``E = -6, -5``, go through ``repr`` itself (losses are seldom either).

    Both layouts agree elsewhere (``inf``, ``-inf`` and ``nan`` too). ``E`` follows from the
    value: the shortest digits of ``x`` are ``>= 10**k`` exactly when ``|x| >= float(10**k)``
    (``10**k`` itself rounds to that float, and each float's shortest digits round to it).

    Examples
    --------
    >>> float_texts(np.array([0.5, 12.0, -0.0, 2.5e-6, 1e-7, 1.5e10, 1e16, np.inf])).to_pylist()
    ['0.5', '12.0', '-0.0', '2.5e-06', '1e-07', '15000000000.0', '1e+16', 'inf']
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    text = pc.cast(pa.array(values, pa.float64()), pa.string())
    size = np.abs(values)
    with np.errstate(invalid="ignore"):
        groups = [
            (np.flatnonzero((values == np.floor(values)) & (size < 1e10)), "whole"),
            (np.flatnonzero((size >= 1e10) & (size < 1e16) | (values < 0) & (size >= 1e-6) & (size < 1e-4)), "repr"),
            (np.flatnonzero((values >= 1e-6) & (values < 1e-5)), "e-06"),
            (np.flatnonzero((values >= 1e-5) & (values < 1e-4)), "e-05"),
            (np.flatnonzero((size >= 1e-9) & (size < 1e-6)), "exponent"),
        ]
    groups = [(rows, kind) for rows, kind in groups if rows.size]
    if not groups:
        return text
    parts = []
    for rows, kind in groups:
        if kind == "repr":
            parts.append(pa.array([float.__repr__(v) for v in values[rows].tolist()], pa.string()))
            continue
        part = text.take(rows)
        if kind == "whole":
            part = pc.binary_join_element_wise(part, ".0", "")
        elif kind == "exponent":  # 1.5e-7: the exponent's second digit
            part = pc.binary_replace_slice(part, -1, -1, "0")
        else:  # 0.0000025 or 0.000025: the digits, a point after the first one (none after a single one)
            part = pc.binary_replace_slice(part, 0, 7 if kind == "e-06" else 6, "")
            part = pc.ascii_rtrim(pc.binary_replace_slice(part, 1, 1, "."), ".")
            part = pc.binary_join_element_wise(part, kind, "")
        parts.append(part)
    return _patched(text, np.concatenate([rows for rows, _ in groups]), pa.concat_arrays(parts))


@functools.cache
def _arrow_writes_repr() -> bool:
    """Whether :func:`float_texts` writes ``repr``'s text with the pyarrow at hand, checked once on its layout edges.

    The rewriting rules were read off pyarrow 26's cast; a pyarrow whose cast lays numbers out otherwise
    leaves the lines to Python (slower, the same bytes) instead of writing other text.
    """
    probe = np.array(
        [
            0.5,
            12.0,
            -0.0,
            2.5e-6,
            -2.5e-6,
            1e-5,
            9.5e-5,
            1e-4,
            1e-7,
            1.5e-9,
            1e-10,
            1.5e10,
            1e16,
            1e22,
            0.1,
            1 / 3,
            5e-324,
            1.7976931348623157e308,
            123456789.0,
            -7.0,
            math.inf,
            -math.inf,
        ]  # fmt: skip
    )
    return float_texts(probe).to_pylist() == [repr(v) for v in probe.tolist()]


def _patched(text, rows: np.ndarray, replacements):
    """`text` with element ``rows[i]`` replaced by ``replacements[i]`` (`rows` distinct, in any order)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    order = np.argsort(rows, kind="stable")
    mask = np.zeros(len(text), dtype=bool)
    mask[rows] = True
    return pc.replace_with_mask(text, pa.array(mask), replacements.take(pa.array(order)))


def ndjson_lines(first_row: int, losses: np.ndarray, counted: np.ndarray, keep: dict[str, list]) -> bytes:
    """Per-sample NDJSON lines, ``{"row": N, "loss": L, ...kept}`` from row `first_row` (1-based) on, as ASCII
    bytes.

    Exactly what ``json.dumps`` writes for each record (``", "`` and ``": "`` separators,
    ASCII escapes, a float's shortest round-trip ``repr``): ``loss`` is ``null`` for a row that
    does not count, and for a loss that is not finite, with ``"nonfinite": "inf"`` (or ``"nan"``)
    beside it. The text is put together column by column in Arrow (:func:`float_texts` for the
    losses, then joins of whole columns), not a Python string a row; kept values are still
    formatted one by one (they are Python values). Fewer than :data:`_ARROW_ROWS` rows are
    written a record at a time, with the same bytes.

    Examples
    --------
    >>> losses, counted = np.array([0.5, np.inf, 0.0]), np.array([True, True, False])
    >>> print(ndjson_lines(1, losses, counted, {"id": ["a", 7, None]}).decode(), end="")
    {"row": 1, "loss": 0.5, "id": "a"}
    {"row": 2, "loss": null, "nonfinite": "inf", "id": 7}
    {"row": 3, "loss": null, "id": null}
    """
    import json  # here, as in _breakdown_uncertainty: start-up

    n = losses.size
    if n < _ARROW_ROWS or not _NDJSON_OWN.isdisjoint(keep) or not _arrow_writes_repr():
        # One json.dumps a record: a kept column named like one of ours replaces its value in place.
        lines = []
        for i, (loss, ok) in enumerate(zip(losses.tolist(), counted.tolist(), strict=True)):
            record = {"row": first_row + i, "loss": loss if ok and math.isfinite(loss) else None}
            if ok and not math.isfinite(loss):
                record["nonfinite"] = repr(loss)
            record.update({name: values[i] for name, values in keep.items()})
            lines.append(json.dumps(record, allow_nan=False, default=str) + "\n")
        return "".join(lines).encode()
    import pyarrow as pa
    import pyarrow.compute as pc

    # A loss that is not finite is null with its kind beside it; an ignored row's is null.
    texts = _loss_texts(
        losses, counted, ~(counted & np.isfinite(losses)), lambda v, ok: f'null, "nonfinite": "{v!r}"' if ok else "null"
    )
    text = pa.large_string() if keep or n > 1 << 24 else pa.string()  # 64-bit offsets: see _joined
    body = pc.binary_join_element_wise(_row_texts(first_row, n), texts, ', "loss": ').cast(text)  # 12, "loss": 0.5
    if keep:
        ascii_string = json.encoder.encode_basestring_ascii  # what json.dumps writes for text (ensure_ascii)
        cells = [
            pa.array([f"{key}{_json_cell(v, ascii_string)}" for v in column], text)
            for key, column in ((f", {json.dumps(name)}: ", column) for name, column in keep.items())
        ]
        body = pc.binary_join_element_wise(body, *cells, pa.scalar("", text))
    return _joined(body, '{"row": ', '}\n{"row": ', "}\n")


def csv_lines(first_row: int, losses: np.ndarray, counted: np.ndarray, keep: dict[str, list]) -> bytes:
    """Per-sample CSV lines (no header: :func:`csv_header`), ``row,loss,...kept``, as UTF-8 bytes.

    ``loss`` is empty for a row that does not count, ``inf``/``-inf``/``nan`` for a loss that is
    not finite, else the float's shortest round-trip ``repr`` (:func:`float_texts`). Kept values
    are :func:`cell_text` (empty for null), quoted as :func:`csv_cell` says; a character UTF-8
    cannot hold (a lone surrogate) is written as a backslash escape. Fewer than
    :data:`_ARROW_ROWS` rows are written a line at a time, with the same bytes.

    Examples
    --------
    >>> losses, counted = np.array([0.5, np.inf, 2e-05]), np.array([True, True, False])
    >>> print(csv_header(["id"]) + csv_lines(1, losses, counted, {"id": ["a,b", 7, None]}).decode(), end="")
    row,loss,id
    1,0.5,"a,b"
    2,inf,7
    3,,
    """
    n = losses.size
    if n < _ARROW_ROWS or not _arrow_writes_repr():
        texts = [repr(v) if ok else "" for v, ok in zip(losses.tolist(), counted.tolist(), strict=True)]
        cells = [[csv_cell(cell_text(v)) for v in column] for column in keep.values()]
        lines = [
            ",".join((str(first_row + i), text, *row)) + "\n"
            for i, (text, *row) in enumerate(zip(texts, *cells, strict=True))
        ]
        return "".join(lines).encode("utf-8", "backslashreplace")
    import pyarrow as pa
    import pyarrow.compute as pc

    texts = _loss_texts(losses, counted, ~counted, lambda v, ok: "")
    if not keep:
        text = pa.large_string() if n > 1 << 24 else pa.string()
        return _joined(pc.binary_join_element_wise(_row_texts(first_row, n), texts, ",").cast(text), "", "\n", "\n")
    text = pa.large_binary()
    cells = [
        pa.array([csv_cell(cell_text(v)).encode("utf-8", "backslashreplace") for v in column], text)
        for column in keep.values()
    ]
    row_texts = _row_texts(first_row, n).cast(text)
    body = pc.binary_join_element_wise(row_texts, texts.cast(text), *cells, pa.scalar(b",", text))
    return _joined(body, "", "\n", "\n")


def csv_header(names: list[str]) -> str:
    """The CSV header line of :func:`csv_lines`: ``row,loss`` and the kept columns' names, quoted as needed."""
    return ",".join(csv_cell(name) for name in ["row", "loss", *names]) + "\n"


def csv_cell(text: str) -> str:
    """`text` as a CSV field: in quotes, its quotes doubled, when it holds a comma, a quote, CR or LF.

    >>> csv_cell('say "hi", twice'), csv_cell("plain")
    ('"say ""hi"", twice"', 'plain')
    """
    if "," in text or '"' in text or "\n" in text or "\r" in text:
        return '"' + text.replace('"', '""') + '"'
    return text


def _row_texts(first_row: int, n: int):
    """The row numbers `first_row` .. `first_row + n - 1` as text (a ``pyarrow`` string array)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    return pc.cast(pa.array(np.arange(first_row, first_row + n, dtype=np.int64)), pa.string())


def _loss_texts(losses: np.ndarray, counted: np.ndarray, odd: np.ndarray, word):
    """:func:`float_texts` of `losses`, ``word(loss, counted)`` instead where `odd` is set."""
    import pyarrow as pa

    texts = float_texts(losses)
    rows = np.flatnonzero(odd)
    if rows.size:
        words = [word(v, ok) for v, ok in zip(losses[rows].tolist(), counted[rows].tolist(), strict=True)]
        texts = _patched(texts, rows, pa.array(words, pa.string()))
    return texts


def _joined(body, first: str, between: str, last: str) -> bytes:
    """`first`, the strings of `body` with `between` between each two, then `last`.

    The batch is joined as one list with `between` (what ends a line and begins the next): a
    literal per row in an element-wise join costs twice as much. `body` is a 64-bit
    (``large_*``) array where its text may pass 2 GiB (long kept texts; some 30 million rows).
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    separator = pa.scalar(between.encode() if pa.types.is_large_binary(body.type) else between, body.type)
    batch = pc.binary_join(pa.ListArray.from_arrays(pa.array([0, len(body)], pa.int32()), body), separator)
    return b"".join((first.encode(), batch[0].as_buffer(), last.encode()))


def _json_cell(value, ascii_string) -> str:
    """``json.dumps(value, allow_nan=False, default=str)``, the common types without its set-up
    (`ascii_string` is ``json.encoder.encode_basestring_ascii``, looked up once by the caller)."""
    kind = type(value)
    if kind is str:
        return ascii_string(value)
    if kind is int:
        return int.__repr__(value)
    if kind is float and math.isfinite(value):
        return float.__repr__(value)
    if value is None:
        return "null"
    if kind is bool:
        return "true" if value else "false"
    import json

    return json.dumps(value, allow_nan=False, default=str)


def json_text(value) -> str:
    """A kept or grouped value as the JSON output writes it (``0``, ``0.5``, ``true``, ``null``); text as is."""
    return "null" if value is None else cell_text(value)


def cell_text(value) -> str:
    """A kept value in a CSV cell: as :func:`json_text`, but empty for null (the CSV reader's null)."""
    kind = type(value)
    if kind is str:
        return value
    if kind is int:
        return int.__repr__(value)
    if kind is float:
        return float.__repr__(value)  # what json.dumps writes (kept values are finite)
    if value is None:
        return ""
    if kind is bool:
        return "true" if value else "false"
    import json

    return json.dumps(value, allow_nan=False, ensure_ascii=False)
