"""Reader failures end in one located line and exit 3 (issue 12): damaged compressed input, JSON shapes, physical
line numbers after blank lines, lines longer than a parse block, and their siblings.

Every case runs the CLI in-process (Typer's CliRunner) from a temporary folder holding real files, and checks the
whole stderr line and the exit code. Expected values are written out independently: decompression messages are
those of Python's gzip/bz2 modules and pyarrow's zstd codec, CRCs come from ``zlib.crc32``, line numbers from where
the test put the bad line, and losses from closed forms with ``math``.
"""

from __future__ import annotations

import bz2
import gzip
import io
import json
import math
import re
import zlib

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cecli.io import csv as io_csv
from cecli.io import sources as io_sources
from cecli.io import streams as io_streams

BAD_INPUT = 3
LN2 = math.log(2)  # the loss of every row below: p = 0.5 for labels 1 and 0


def error_line(message: str) -> str:
    return f"cecli: error: {message}\n"


# --------------------------------------------------------------------------- compressed input cut short or corrupt

ROWS = 40_000  # about 240 KB of CSV: more than the 64 KiB read at open, so a late error surfaces while streaming


def dataset(fmt: str, rows: int = ROWS) -> bytes:
    labels = [1 - i % 2 for i in range(rows)]
    if fmt == "csv":
        return ("y_true,y_pred\n" + "".join(f"{y},0.5\n" for y in labels)).encode()
    if fmt == "ndjson":
        return "".join(json.dumps({"y_true": y, "y_pred": 0.5}) + "\n" for y in labels).encode()
    if fmt == "json":
        return json.dumps([{"y_true": y, "y_pred": 0.5} for y in labels]).encode()
    sink = io.BytesIO()
    pq.write_table(pa.table({"y_true": labels, "y_pred": [0.5] * rows}), sink, row_group_size=4096)
    return sink.getvalue()


def zstd_compress(data: bytes) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.CompressedOutputStream(sink, "zstd") as stream:
        stream.write(data)
    return sink.getvalue().to_pybytes()


CODECS = {
    # extension: (codec name, compress, test tool, message of a stream cut short)
    "gz": ("gzip", gzip.compress, "gzip", "Compressed file ended before the end-of-stream marker was reached"),
    "bz2": ("bz2", bz2.compress, "bzip2", "Compressed file ended before the end-of-stream marker was reached"),
    "zst": ("zstd", zstd_compress, "zstd", "Truncated compressed stream"),
}


def damaged(codec: str, tool: str, detail: str, name: str) -> str:
    hint = f"test it with `{tool} -t`, then copy or download it again"
    return error_line(f"{name}: truncated or corrupt {codec} data: {detail} ({hint})")


@pytest.mark.parametrize("fmt", ["csv", "ndjson", "json", "parquet"])
@pytest.mark.parametrize("ext", list(CODECS))
def test_compressed_input_cut_in_half(cecli, tmp_path, fmt, ext):
    codec, compress, tool, detail = CODECS[ext]
    data = compress(dataset(fmt))
    (tmp_path / f"whole.{fmt}.{ext}").write_bytes(data)
    (tmp_path / f"cut.{fmt}.{ext}").write_bytes(data[: len(data) // 2])
    assert cecli("bce", f"whole.{fmt}.{ext}", "--value-only") == (0, f"{LN2!r}\n", "")
    # Small batches: the error surfaces in the reader thread after batches were scored.
    code, out, err = cecli("bce", f"cut.{fmt}.{ext}", "--value-only", "--batch-rows", "1000")
    assert (code, out, err) == (BAD_INPUT, "", damaged(codec, tool, detail, f"cut.{fmt}.{ext}"))


@pytest.mark.parametrize("ext", list(CODECS))
def test_small_compressed_csv_cut_short_fails_at_open(cecli, tmp_path, ext):
    """A small CSV is read whole at open (the path that parses it without pyarrow)."""
    codec, compress, tool, detail = CODECS[ext]
    data = compress(b"y_true,y_pred\n1,0.5\n0,0.5\n")
    (tmp_path / f"s.csv.{ext}").write_bytes(data[:-6])
    assert cecli("bce", f"s.csv.{ext}") == (BAD_INPUT, "", damaged(codec, tool, detail, f"s.csv.{ext}"))


@pytest.mark.parametrize("fmt", ["csv", "ndjson", "json"])
def test_gzip_with_a_bad_crc(cecli, tmp_path, fmt):
    raw = dataset(fmt)
    data = bytearray(gzip.compress(raw))
    data[-8] ^= 0xFF  # the stored CRC-32 (little-endian) of the uncompressed data
    (tmp_path / f"crc.{fmt}.gz").write_bytes(bytes(data))
    stored = int.from_bytes(data[-8:-4], "little")
    detail = f"CRC check failed {hex(stored)} != {hex(zlib.crc32(raw))}"
    assert cecli("bce", f"crc.{fmt}.gz") == (BAD_INPUT, "", damaged("gzip", "gzip", detail, f"crc.{fmt}.gz"))


def test_compressed_stdin_cut_short(cecli):
    """stdin is recognised as gzip by its magic bytes; the message names <stdin>."""
    data = gzip.compress(dataset("csv"))
    detail = CODECS["gz"][3]
    assert cecli("bce", "-", input=data[: len(data) // 2]) == (
        BAD_INPUT,
        "",
        damaged("gzip", "gzip", detail, "<stdin>"),
    )


def test_a_read_error_of_the_file_names_it(cecli, tmp_path, monkeypatch):
    """An I/O error while streaming (a failing disk or network mount) is one line, not a traceback."""
    import errno

    class Failing(io.RawIOBase):
        def __init__(self, data: bytes) -> None:
            self._data = io.BytesIO(data)

        def readable(self) -> bool:
            return True

        def readinto(self, buffer) -> int:
            if self._data.tell() >= 100_000:
                raise OSError(errno.EIO, "Input/output error")
            return self._data.readinto(buffer)

    (tmp_path / "d.csv").write_bytes(dataset("csv"))
    monkeypatch.setattr(io_sources, "_open_raw", lambda path, display: io.BufferedReader(Failing(dataset("csv"))))
    assert cecli("bce", "d.csv") == (
        BAD_INPUT,
        "",
        error_line("d.csv: cannot read: Input/output error (check the file)"),
    )


# --------------------------------------------------------------------------- JSON shapes

DEEP = 100_000
BIG = 123456789012345678901234567890  # 30 digits, beyond int64
JSON_HINT = "cecli reads records of numbers, text, booleans and lists of numbers"
TYPE_HINT = "use one type per column"


def nth_bracket(text: str, n: int) -> int:
    """1-based column of the n-th opening bracket (the texts below hold no brackets inside strings)."""
    return [i for i, ch in enumerate(text) if ch in "[{"][n - 1] + 1


DEEP_RECORD = '[{"y_true": ' + '{"a": ' * DEEP + "1" + "}" * DEEP + ', "y_pred": 0.5}]'
DEEP_NDJSON_VALUE = '{"y_true": ' + "[" * DEEP + "]" * DEEP + ', "y_pred": 0.5}'

JSON_CASES = [
    pytest.param(
        "deep.json",
        "[" * DEEP + "]" * DEEP,
        [],
        f"deep.json: JSON nested too deeply at line 1 column 101 ({JSON_HINT})",
        id="100000-nested-arrays",
    ),
    pytest.param(
        "deep-record.json",
        DEEP_RECORD,
        [],
        f"deep-record.json: JSON nested too deeply at line 1 column {nth_bracket(DEEP_RECORD, 101)} ({JSON_HINT})",
        id="deeply-nested-object-in-a-record",
    ),
    pytest.param(
        "deep.ndjson",
        '{"y_true": 1, "y_pred": 0.5}\n' + DEEP_NDJSON_VALUE + "\n",
        [],
        f"deep.ndjson:2: JSON nested too deeply at column {nth_bracket(DEEP_NDJSON_VALUE, 101)} ({JSON_HINT})",
        id="nested-arrays-in-an-ndjson-value",
    ),
    pytest.param(
        "deep1.ndjson",
        DEEP_NDJSON_VALUE + "\n",
        [],
        f"deep1.ndjson:1: JSON nested too deeply at column {nth_bracket(DEEP_NDJSON_VALUE, 101)} ({JSON_HINT})",
        id="nested-arrays-on-the-first-ndjson-line",
    ),
    pytest.param(
        "big.json",
        f'[{{"y_true": 1, "y_pred": 0.5}}, {{"y_true": {BIG}, "y_pred": 0.5}}]',
        [],
        # Read as the nearest float64, as CSV and NDJSON are; the label check then names it.
        f"big.json:2:y_true: label {float(BIG)!r} is outside [0, 1] (labels must be in [0, 1])",
        id="30-digit-label-json",
    ),
    pytest.param(
        "big-columns.json",
        f'{{"y_true": [1, {BIG}], "y_pred": [0.5, 0.5]}}',
        [],
        f"big-columns.json:2:y_true: label {float(BIG)!r} is outside [0, 1] (labels must be in [0, 1])",
        id="30-digit-label-json-columns",
    ),
    pytest.param(
        "big.ndjson",
        f'{{"y_true": 1, "y_pred": 0.5}}\n{{"y_true": {BIG}, "y_pred": 0.5}}\n',
        [],
        f"big.ndjson:2:y_true: label {float(BIG)!r} is outside [0, 1] (labels must be in [0, 1])",
        id="30-digit-label-ndjson",
    ),
    pytest.param(
        "sparse.json",
        f'[{{"label": {BIG}, "p_0": 0.5, "p_1": 0.5}}]',
        ["sparse"],
        f"sparse.json:1:label: label {int(float(BIG))} is out of range for 2 classes (labels must be in [0, 1])",
        id="30-digit-class-index",
    ),
    pytest.param(
        "nest.ndjson",
        '{"y_true": {"a": 1}, "y_pred": 0.5}\n',
        [],
        "nest.ndjson:1:y_true: holds objects, not numbers (check the file, or choose other columns with -y/-p)",
        id="ndjson-object-on-the-first-line",
    ),
    pytest.param(
        "nest2.ndjson",
        '{"y_true": 1, "y_pred": 0.5}\n{"y_true": {"a": 1}, "y_pred": 0.5}\n',
        [],
        f"nest2.ndjson:2:y_true: an object where earlier rows have a number ({TYPE_HINT})",
        id="ndjson-object-on-a-later-line",
    ),
    pytest.param(
        "nest.json",
        '[{"y_true": 1, "y_pred": {"a": {"b": 1}}}]',
        [],
        "nest.json:1:y_pred: holds objects, not numbers (check the file, or choose other columns with -y/-p)",
        id="json-record-with-an-object",
    ),
    pytest.param(
        "b.json",
        '[{"y_true": true, "y_pred": 0.5}, {"y_true": 1, "y_pred": 0.5}]',
        [],
        f"b.json:2:y_true: a number where earlier rows have a boolean ({TYPE_HINT})",
        id="json-boolean-then-number",
    ),
    pytest.param(
        "f.json",
        '[{"y_true": 1.5, "y_pred": 0.5}, {"y_true": true, "y_pred": 0.5}]',
        [],
        # pyarrow alone would read this as [1.5, 1.0]
        f"f.json:2:y_true: a boolean where earlier rows have a number ({TYPE_HINT})",
        id="json-float-then-boolean",
    ),
    pytest.param(
        "b.ndjson",
        '{"y_true": null, "y_pred": 0.5}\n{"y_true": true, "y_pred": 0.5}\n{"y_true": 1, "y_pred": 0.5}\n',
        [],
        # the column's type is that of its first non-null value
        f"b.ndjson:3:y_true: a number where earlier rows have a boolean ({TYPE_HINT})",
        id="ndjson-null-boolean-then-number",
    ),
    pytest.param(
        "c.json",
        '{"y_true": [1, "x"], "y_pred": [0.5, 0.5]}',
        [],
        f"c.json:2:y_true: text where earlier rows have a number ({TYPE_HINT})",
        id="json-columns-mixed",
    ),
    pytest.param(
        "l.json",
        '[{"y_true": [1, 0], "y_pred": [0.5, 0.5]}, {"y_true": [0, 1], "y_pred": [0.5, true]}]',
        [],
        f"l.json:2:y_pred: a list holding a boolean where earlier values are numbers ({TYPE_HINT})",
        id="json-list-holding-a-boolean",
    ),
    pytest.param(
        "l.ndjson",
        '{"y_true": [1, 0], "y_pred": [0.5, 0.5]}\n{"y_true": [0, 1], "y_pred": [0.5, "x"]}\n',
        [],
        f"l.ndjson:2:y_pred: a list holding text where earlier rows have a list of numbers ({TYPE_HINT})",
        id="ndjson-list-holding-text",
    ),
    pytest.param(
        "n.json",
        '{"y_true": [[1, 0], [0, 1]], "y_pred": [[0.5, 0.5], [0.5, null]]}',
        [],
        "n.json:2:y_pred: missing value in list (fill in every value)",
        id="json-null-in-a-list",
    ),
    pytest.param(
        "e.json",
        '[{"y_true": [1], "y_pred": []}]',
        [],
        "e.json:1:y_pred: empty list (every row needs one value per class)",
        id="json-empty-list",
    ),
    pytest.param(
        "nan.json",
        '[{"y_true": 1, "y_pred": 0.5}, {"y_true": 1, "y_pred": NaN}]',
        [],
        # NaN/Infinity tokens (Python's json writes them) are numbers; the value checks judge them
        "nan.json:2:y_pred: probability is NaN (remove or fix rows with missing or infinite values)",
        id="json-nan-token",
    ),
    pytest.param(
        "inf.ndjson",
        '{"y_true": 1, "y_pred": -Infinity}\n',
        ["--from-logits"],
        "inf.ndjson:1:y_pred: score is -inf (remove or fix rows with missing or infinite values)",
        id="ndjson-infinity-token",
    ),
    pytest.param(
        "empty.json",
        "[]",
        [],
        'empty.json: the JSON document is []: no records (use [{"y_true": 1, "y_pred": 0.9}, ...] '
        'or {"y_true": [...], "y_pred": [...]})',
        id="json-empty-array",
    ),
    pytest.param(
        "num.json",
        "42",
        [],
        "num.json: JSON must be an array of records or an object of columns "
        '(use [{"y_true": 1, "y_pred": 0.9}] or {"y_true": [...], "y_pred": [...]})',
        id="json-bare-number",
    ),
    pytest.param(
        "str.json",
        '"y_true"',
        [],
        "str.json: JSON must be an array of records or an object of columns "
        '(use [{"y_true": 1, "y_pred": 0.9}] or {"y_true": [...], "y_pred": [...]})',
        id="json-bare-string",
    ),
]


@pytest.mark.parametrize(("name", "content", "args", "message"), JSON_CASES)
def test_json_shapes(cecli, tmp_path, name, content, args, message):
    """`args`: the command (bce unless given first) and options."""
    (tmp_path / name).write_text(content, encoding="utf-8")
    command, options = (args[0], args[1:]) if args[:1] == ["sparse"] else ("bce", args)
    assert cecli(command, name, *options) == (BAD_INPUT, "", error_line(message))


def test_deeply_nested_json_on_stdin_is_sniffed_and_refused(cecli):
    assert cecli("bce", "-", input="[" * DEEP + "]" * DEEP) == (
        BAD_INPUT,
        "",
        error_line(f"<stdin>: JSON nested too deeply at line 1 column 101 ({JSON_HINT})"),
    )


@pytest.mark.parametrize("fmt", ["json", "ndjson"])
def test_an_integer_too_long_for_python_is_infinite(cecli, tmp_path, fmt):
    """5,000 digits: beyond Python's int() limit and float64's range, so +inf, which the value check refuses."""
    record = '{"y_true": 1, "y_pred": ' + "9" * 5000 + "}"
    (tmp_path / f"h.{fmt}").write_text(f"[{record}]" if fmt == "json" else record + "\n")
    message = f"h.{fmt}:1:y_pred: score is inf (remove or fix rows with missing or infinite values)"
    assert cecli("bce", f"h.{fmt}", "--from-logits") == (BAD_INPUT, "", error_line(message))


def test_big_integers_among_floats_and_in_lists(cecli, tmp_path):
    """Logits 1.5 and 2**70 for label 1: (log1p(exp(-1.5)) + 0) / 2; in a list column for labels (1, 0):
    (log1p(exp(-0.5)) + 2**70) / 2, the second term being max(x, 0) + log1p(exp(-x)) = x."""
    (tmp_path / "m.json").write_text(f'[{{"y_true": 1, "y_pred": 1.5}}, {{"y_true": 1, "y_pred": {2**70}}}]')
    (tmp_path / "l.json").write_text(f'{{"y_true": [[1, 0]], "y_pred": [[0.5, {2**70}]]}}')
    code, out, err = cecli("bce", "m.json", "--from-logits", "--value-only")
    assert (code, err) == (0, "")
    assert float(out) == pytest.approx(math.log1p(math.exp(-1.5)) / 2, rel=1e-15)
    code, out, err = cecli("bce", "l.json", "--from-logits", "--value-only")
    assert (code, err) == (0, "")
    assert float(out) == pytest.approx((math.log1p(math.exp(-0.5)) + float(2**70)) / 2, rel=1e-15)


def test_a_30_digit_logit_is_a_number(cecli, tmp_path):
    """Label 0, logit x > 0: the loss is max(x, 0) + log1p(exp(-|x|)) = x exactly (exp(-1.2e29) is 0)."""
    (tmp_path / "x.json").write_text(f'[{{"y_true": 0, "y_pred": {BIG}}}]')
    (tmp_path / "x.ndjson").write_text(f'{{"y_true": 0, "y_pred": {BIG}}}\n')
    for name in ("x.json", "x.ndjson"):
        assert cecli("bce", name, "--from-logits", "--value-only") == (0, f"{float(BIG)!r}\n", "")


@pytest.mark.parametrize("fmt", ["json", "ndjson", "parquet"])
def test_boolean_labels_are_one_and_zero(cecli, tmp_path, fmt):
    """true/false labels read as 1/0 in every format that has booleans: -(ln 0.8 + ln 0.7) / 2."""
    labels, preds = [True, False], [0.8, 0.3]
    if fmt == "json":
        (tmp_path / "b.json").write_text(
            json.dumps([{"y_true": y, "y_pred": p} for y, p in zip(labels, preds, strict=True)])
        )
    elif fmt == "ndjson":
        (tmp_path / "b.ndjson").write_text(
            "".join(json.dumps({"y_true": y, "y_pred": p}) + "\n" for y, p in zip(labels, preds, strict=True))
        )
    else:
        pq.write_table(pa.table({"y_true": labels, "y_pred": preds}), tmp_path / "b.parquet")
    expected = -(math.log(0.8) + math.log(0.7)) / 2
    code, out, err = cecli("bce", f"b.{fmt}", "--value-only")
    assert (code, err) == (0, "")
    assert float(out) == pytest.approx(expected, rel=1e-15)


# --------------------------------------------------------------------------- line numbers are physical lines

PROBABILITY_HINT = "pass --from-logits if these are raw scores"


def lines_with_bad_row(kind: str) -> tuple[list[str], int]:
    """Lines of a file (header first for CSV) with blank lines, and the 1-based line of its bad value."""
    if kind == "csv":
        lines = ["y_true,y_pred", "1,0.5", "", "", "0,1.5", "1,0.5"]
    else:
        lines = ["", '{"y_true": 1, "y_pred": 0.5}', "", "   ", '{"y_true": 0, "y_pred": 1.5}', ""]
    return lines, 5


@pytest.mark.parametrize("end", ["\n", "\r\n", "\r"], ids=["LF", "CRLF", "CR"])
@pytest.mark.parametrize("kind", ["csv", "ndjson"])
@pytest.mark.parametrize("source", ["file", "stdin"])
@pytest.mark.parametrize("bom", [False, True], ids=["", "BOM"])
def test_value_errors_name_the_physical_line(cecli, tmp_path, end, kind, source, bom):
    lines, bad = lines_with_bad_row(kind)
    data = ("\ufeff" if bom else "") + end.join(lines) + end
    (tmp_path / f"b.{kind}").write_bytes(data.encode())
    args = [f"b.{kind}"] if source == "file" else ["-", "--input-format", kind]
    name = f"b.{kind}" if source == "file" else "<stdin>"
    message = f"{name}:{bad}:y_pred: probability 1.5 is outside [0, 1] ({PROBABILITY_HINT})"
    assert cecli("bce", *args, input=data.encode() if source == "stdin" else None) == (
        BAD_INPUT,
        "",
        error_line(message),
    )


@pytest.mark.parametrize("source", ["file", "stdin"])
@pytest.mark.parametrize("block_bytes", [None, 8], ids=["one-block", "8-byte-blocks"])
def test_csv_parse_errors_name_the_physical_line(cecli, tmp_path, monkeypatch, source, block_bytes):
    if block_bytes is not None:
        monkeypatch.setattr(io_csv, "_CSV_BLOCK_BYTES", block_bytes)
    data = b"y_true,y_pred\n1,0.5\n\n\n0,x\n"
    (tmp_path / "b.csv").write_bytes(data)
    args, name = (["b.csv"], "b.csv") if source == "file" else (["-"], "<stdin>")
    message = f"{name}:5:y_pred: not a number: 'x' (every cell of this column must be a number)"
    assert cecli("bce", *args, input=data if source == "stdin" else None) == (BAD_INPUT, "", error_line(message))


@pytest.mark.parametrize("source", ["file", "stdin"])
@pytest.mark.parametrize("kind", ["csv", "ndjson"])
def test_line_numbers_far_into_a_stream(cecli, tmp_path, monkeypatch, source, kind):
    """Blank lines early, a bad value 150,000 lines on: many blocks and batches lie between them."""
    monkeypatch.setattr(io_csv, "_CSV_BLOCK_BYTES", 1 << 16)
    good = "1,0.5" if kind == "csv" else '{"y_true": 1, "y_pred": 0.5}'
    bad = "1,-0.5" if kind == "csv" else '{"y_true": 1, "y_pred": -0.5}'
    lines = (["y_true,y_pred"] if kind == "csv" else []) + [good] * 150_000
    lines[1_000:1_000] = ["", ""]
    lines[60_000:60_000] = [""]
    lines[120_000] = bad
    data = ("\n".join(lines) + "\n").encode()
    (tmp_path / f"f.{kind}").write_bytes(data)
    args, name = ([f"f.{kind}"], f"f.{kind}") if source == "file" else (["-", "--input-format", kind], "<stdin>")
    message = f"{name}:120001:y_pred: probability -0.5 is outside [0, 1] ({PROBABILITY_HINT})"
    code, out, err = cecli("bce", *args, "--batch-rows", "4096", input=data if source == "stdin" else None)
    assert (code, out, err) == (BAD_INPUT, "", error_line(message))


def test_ndjson_type_error_on_stdin_names_the_line(cecli):
    """pyarrow's row within its block, plus the records before the block, plus the blank lines noted while reading."""
    lines = ['{"y_true": 1, "y_pred": 0.5}'] * 100_000
    lines[500:500] = [""]
    lines[90_000] = '{"y_true": "x", "y_pred": 0.5}'
    data = "\n".join(lines) + "\n"
    message = f"<stdin>:90001:y_true: text where earlier rows have a number ({TYPE_HINT})"
    assert cecli("bce", "-", "--batch-rows", "1000", input=data) == (BAD_INPUT, "", error_line(message))


def test_labels_file_errors_name_its_physical_line(cecli, tmp_path):
    (tmp_path / "p.csv").write_text("y_pred\n0.5\n0.5\n0.5\n")
    (tmp_path / "y.csv").write_text("y_true\n1\n\n0\n\n7\n")
    message = "y.csv:6:y_true: label 7.0 is outside [0, 1] (labels must be in [0, 1])"
    assert cecli("bce", "p.csv", "--labels", "y.csv", "-y", "y_true") == (BAD_INPUT, "", error_line(message))


def reference_blank_lines(text: bytes, whitespace_is_blank: bool) -> list[int]:
    """Blank complete lines, split as pyarrow splits lines (a final \\r may still be part of a \\r\\n)."""
    complete = re.split(rb"\r\n|\r|\n", text)[:-1]
    if text.endswith(b"\r"):
        complete = complete[:-1]
    strip = b" \t\r\n" if whitespace_is_blank else b"\r\n"
    return [number for number, line in enumerate(complete, 1) if not line.strip(strip)]


@settings(max_examples=300, deadline=None)
@given(
    pieces=st.lists(st.sampled_from([b"a", b"1,2", b" ", b"\t", b"\n", b"\r", b"\r\n", b"\n\n"]), max_size=40),
    cuts=st.lists(st.integers(1, 12), min_size=1, max_size=40),
    whitespace_is_blank=st.booleans(),
)
def test_blank_lines_are_noted_wherever_the_chunks_are_cut(pieces, cuts, whitespace_is_blank):
    text = b"".join(pieces)
    lines = io_streams._Lines(whitespace_is_blank=whitespace_is_blank)
    position = 0
    for cut in cuts * (len(text) + 1):
        if position >= len(text):
            break
        lines.feed(text[position : position + cut])
        position += cut
    assert list(lines.skipped) == reference_blank_lines(text, whitespace_is_blank)
    # A record's line: the records are the lines not skipped, counted from 0.
    kept = [n for n in range(1, len(lines.skipped) + 10) if n not in lines.skipped]
    assert [lines.line_of(r) for r in range(len(kept) - 1)] == kept[:-1]


# --------------------------------------------------------------------------- lines longer than a parse block

LONG_NOTE = "x" * (3 << 20)  # 3 MiB: longer than pyarrow's 1 MiB parse block


@pytest.mark.parametrize("end", ["\n", "\r"], ids=["LF", "CR"])
@pytest.mark.parametrize("source", ["file", "stdin"])
def test_a_line_longer_than_a_block_is_read(cecli, tmp_path, end, source):
    """-(ln 0.5 + ln 0.8 + ln 0.7) / 3, with a 3 MiB cell in the middle row."""
    data = end.join(["y_true,y_pred,note", "1,0.5,a", f"0,0.2,{LONG_NOTE}", "1,0.7,b"]) + end
    (tmp_path / "long.csv").write_text(data, newline="")
    args = ["long.csv"] if source == "file" else ["-"]
    code, out, err = cecli("bce", *args, "--value-only", input=data if source == "stdin" else None)
    assert (code, err) == (0, "")
    assert float(out) == pytest.approx(-(math.log(0.5) + math.log(0.8) + math.log(0.7)) / 3, rel=1e-15)


@pytest.mark.parametrize("source", ["file", "stdin"])
def test_a_bad_value_after_a_long_line_is_located(cecli, tmp_path, source):
    data = f"y_true,y_pred,note\n1,0.5,a\n0,0.2,{LONG_NOTE}\n1,x,b\n"
    (tmp_path / "long.csv").write_text(data)
    args, name = (["long.csv"], "long.csv") if source == "file" else (["-"], "<stdin>")
    message = f"{name}:4:y_pred: not a number: 'x' (every cell of this column must be a number)"
    assert cecli("bce", *args, input=data if source == "stdin" else None) == (BAD_INPUT, "", error_line(message))


# --------------------------------------------------------------------------- siblings


def test_invalid_utf8_in_a_kept_column_far_into_the_file(cecli, tmp_path):
    """Not 'not a number' in a good row: the text column's bytes are the problem, on their line."""
    lines = [b"y_true,y_pred,note"] + [b"1,0.5,a"] * 200_000
    lines[150_000] = b"1,0.5,\xff"
    (tmp_path / "u.csv").write_bytes(b"\n".join(lines) + b"\n")
    message = "u.csv:150001: invalid UTF-8 text (save the file as UTF-8)"
    assert cecli("bce", "u.csv", "--keep", "note", "-f", "csv") == (BAD_INPUT, "", error_line(message))


def test_nul_bytes_in_a_number(cecli, tmp_path):
    (tmp_path / "z.csv").write_bytes(b"y_true,y_pred\n1,0.5\n1,0.\x005\n")
    message = "z.csv:3:y_pred: not a number: '0.\\x005' (every cell of this column must be a number)"
    assert cecli("bce", "z.csv") == (BAD_INPUT, "", error_line(message))


def test_parquet_with_a_damaged_page(cecli, tmp_path):
    table = pa.table({"y_true": [1, 0] * 10_000, "y_pred": [0.5] * 20_000})
    pq.write_table(table, tmp_path / "ok.parquet", row_group_size=5_000)
    meta = pq.ParquetFile(tmp_path / "ok.parquet").metadata
    offset = meta.row_group(2).column(1).data_page_offset  # a page header in the third row group
    data = bytearray((tmp_path / "ok.parquet").read_bytes())
    data[offset : offset + 40] = bytes(b ^ 0x55 for b in data[offset : offset + 40])
    (tmp_path / "d.parquet").write_bytes(bytes(data))
    # pyarrow's message spans two lines; they are joined into one.
    detail = "Couldn't deserialize thrift: TProtocolException: Invalid data; Deserializing page header failed."
    message = f"d.parquet: cannot read Parquet data: {detail} (the file may be truncated or corrupt)"
    assert cecli("bce", "d.parquet") == (BAD_INPUT, "", error_line(message))


def test_ndjson_stdin_error_that_cannot_be_located_still_says_what(cecli):
    data = '{"y_true": 1, "y_pred": 0.5}\n\x00\n'
    message = "<stdin>: invalid JSON: The document is empty. (check that every line is one JSON object)"
    assert cecli("bce", "-", input=data) == (BAD_INPUT, "", error_line(message))


@pytest.mark.parametrize("source", ["file", "stdin"])
@pytest.mark.parametrize("block_bytes", [None, 8], ids=["one-block", "8-byte-blocks"])
@pytest.mark.parametrize(
    ("content", "args", "message"),
    [
        pytest.param(
            b"y_true,y_pred\n1,0.5\n\n1,0.5,7\n",
            [],
            "{name}:4: row has 3 fields, the header has 2 (quote fields that contain the delimiter, or fix the row)",
            id="ragged-row-after-a-blank-line",
        ),
        pytest.param(
            b"y_true,y_pred\r\n1,0.5\r\n\r\n1,\xff\r\n",
            [],
            "{name}:4: invalid UTF-8 text (save the file as UTF-8)",
            id="invalid-utf8-in-a-number-crlf",
        ),
        pytest.param(
            # line 2's bad byte is in a column that is not read; line 5's is in a kept one
            b"y_true,y_pred,note,other\n1,0.5,a,\xff\n\n1,0.5,b,c\n1,0.5,\xfe,c\n",
            ["--keep", "note", "-f", "csv"],
            "{name}:5: invalid UTF-8 text (save the file as UTF-8)",
            id="invalid-utf8-in-the-kept-column-only",
        ),
    ],
)
def test_csv_rows_pyarrow_cannot_read_are_located(
    cecli, tmp_path, monkeypatch, source, block_bytes, content, args, message
):
    """The block pyarrow could not read is searched row by row: the same line for a file and for stdin."""
    if block_bytes is not None:
        monkeypatch.setattr(io_csv, "_CSV_BLOCK_BYTES", block_bytes)
    (tmp_path / "r.csv").write_bytes(content)
    (path, name) = ("r.csv", "r.csv") if source == "file" else ("-", "<stdin>")
    result = cecli("bce", path, *args, input=content if source == "stdin" else None)
    assert result == (BAD_INPUT, "", error_line(message.format(name=name)))


def test_a_ragged_row_far_into_stdin(cecli, monkeypatch):
    monkeypatch.setattr(io_csv, "_CSV_BLOCK_BYTES", 1 << 16)
    lines = ["y_true,y_pred"] + ["1,0.5"] * 100_000
    lines[10:10] = [""]
    lines[80_000] = "1,0.5,"
    message = (
        "<stdin>:80001: row has 3 fields, the header has 2 (quote fields that contain the delimiter, or fix the row)"
    )
    assert cecli("bce", "-", input="\n".join(lines) + "\n") == (BAD_INPUT, "", error_line(message))
