"""A JSON array longer than its first 64 KiB is streamed as NDJSON and an object of columns column by column
(issue 19), and NDJSON is parsed in blocks on a pool of threads sized to the machine.

The same rows written as a JSON array (one line, one record a line, pretty-printed), as an object of columns, as
NDJSON and as Parquet must give the same output byte for byte (only the input's path and format differ); errors
inside a long array name the record (1-based, as README's *Exit codes and errors* says), on a file and on stdin;
a long array is read in bounded memory (a real subprocess, its peak RSS from ``os.wait4``); and the threaded
decoding gives the same bytes as one thread. Expected losses are closed forms with ``math``.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from cecli.io import json as io_json
from cecli.io import ndjson as io_ndjson
from cecli.io import pool as io_pool
from cecli.io.base import ReadSettings
from cecli.io.json_array import JsonArrayInput
from cecli.io.json_columns import JsonColumnsInput
from cecli.io.sources import open_input

BAD_INPUT = 3
ROOT = Path(__file__).resolve().parents[1]

# Probabilities that sum to exactly 1 in binary, so renormalising changes nothing and the loss is -log p[label].
PREDICTIONS = ([0.25, 0.5, 0.25], [0.125, 0.75, 0.125], [0.5, 0.25, 0.25], [0.0625, 0.875, 0.0625])
# Text that a scanner of JSON structure must not take for structure: quotes, backslashes, brackets, commas.
NAMES = ("plain", 'q"uote', "back\\slash\\", "br]ack}et{[,", "end\\\\", "ünï ✓", 'x\\"y')
ROWS = 3000  # about 300 KB: longer than the 64 KiB head, so the array is streamed


def records(rows: int = ROWS) -> list[dict]:
    return [
        {
            "y_true": i % 3,
            "y_pred": PREDICTIONS[i % len(PREDICTIONS)],
            "g": ["a", "b", "c7", None][i % 4],
            "name": NAMES[i % len(NAMES)],
        }
        for i in range(rows)
    ]


def expected_mean(rows: list[dict]) -> float:
    losses = [-math.log(r["y_pred"][r["y_true"]]) for r in rows]
    return math.fsum(losses) / len(losses)


def write_shapes(tmp_path: Path, rows: list[dict]) -> dict[str, Path]:
    """The rows in every layout; returns {layout: path}."""
    paths = {
        "one-line.json": json.dumps(rows),
        "record-a-line.json": "[\n" + ",\n".join(json.dumps(r) for r in rows) + "\n]\n",
        "pretty.json": json.dumps(rows, indent=2),
        "crlf.json": "[\r\n" + ",\r\n".join(json.dumps(r) for r in rows) + "\r\n]",
        "columns.json": json.dumps({k: [r[k] for r in rows] for k in rows[0]}),
        "rows.ndjson": "".join(json.dumps(r) + "\n" for r in rows),
    }
    out = {}
    for name, text in paths.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
        out[name] = tmp_path / name
    table = pa.table({k: [r[k] for r in rows] for k in rows[0]})
    pq.write_table(table, tmp_path / "rows.parquet", row_group_size=1000)
    out["rows.parquet"] = tmp_path / "rows.parquet"
    return out


def without_input(document: str) -> str:
    parsed = json.loads(document)
    for key in ("path", "paths", "format"):
        parsed["input"].pop(key)
    return json.dumps(parsed)


def test_a_long_array_is_streamed_and_a_short_one_read_whole(tmp_path):
    paths = write_shapes(tmp_path, records())
    for name in ("one-line.json", "record-a-line.json", "pretty.json", "crlf.json"):
        opened = open_input(str(paths[name]))
        try:
            streamed = isinstance(opened, JsonArrayInput)
        finally:
            opened.close()
        # A one-line array within the first MiB is read whole (the head reads on to a line end).
        assert streamed == (name != "one-line.json"), name
    opened = open_input(str(paths["columns.json"]))
    opened.close()
    assert type(opened) is JsonColumnsInput  # a plain file: each column from its own handle
    (tmp_path / "short.json").write_text(json.dumps(records(20)), encoding="utf-8")
    opened = open_input(str(tmp_path / "short.json"))
    opened.close()
    assert type(opened) is io_json.JsonInput


@pytest.mark.parametrize(
    "options",
    [
        ["-f", "json", "--summary-only"],
        ["-f", "json", "--by", "g"],
        ["-f", "ndjson", "--keep", "name,g"],
        ["-f", "csv", "--keep", "name"],
    ],
    ids=["summary", "by", "keep-ndjson", "keep-csv"],
)
def test_every_layout_prints_the_same_bytes(cecli, tmp_path, options):
    rows = records()
    paths = write_shapes(tmp_path, rows)
    outputs = {}
    for name in paths:
        code, stdout, stderr = cecli("sparse", name, "-y", "y_true", "-p", "y_pred", *options)
        assert (code, stderr) == (0, ""), name
        outputs[name] = without_input(stdout) if options[1] == "json" else stdout
    reference = outputs.pop("rows.ndjson")
    for name, output in outputs.items():
        assert output == reference, name
    if options[2] == "--summary-only":
        # NumPy's log may differ from math.log by an ulp: within the rounding of the losses.
        assert json.loads(reference)["value"] == pytest.approx(expected_mean(rows), rel=1e-15)
        assert json.loads(reference)["count"] == ROWS


def test_a_single_line_array_beyond_a_mib_is_streamed(cecli, tmp_path):
    rows = records(16_000)  # about 1.3 MB on one line: beyond the head's search for a line end
    (tmp_path / "big.json").write_text(json.dumps(rows), encoding="utf-8")
    (tmp_path / "big.ndjson").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    opened = open_input(str(tmp_path / "big.json"))
    opened.close()
    assert type(opened) is JsonArrayInput
    args = ["-y", "y_true", "-p", "y_pred", "-f", "json", "--summary-only", "--by", "name"]
    streamed, ndjson = cecli("sparse", "big.json", *args), cecli("sparse", "big.ndjson", *args)
    assert (streamed[0], streamed[2]) == (0, "")
    assert without_input(streamed[1]) == without_input(ndjson[1])
    code, stdout, _ = cecli("sparse", "big.json", "-y", "y_true", "-p", "y_pred", "--value-only", "--precision", "17")
    assert code == 0 and float(stdout) == pytest.approx(expected_mean(rows), rel=1e-15)


# --------------------------------------------------------------------------- errors name the record

BAD_AT = 2500  # the 1-based record that is wrong


def array_with(bad: str, rows: int = ROWS, *, layout: str = "line") -> str:
    texts = [json.dumps(r) for r in records(rows)]
    texts[BAD_AT - 1] = bad
    separator = ",\n" if layout == "line" else ", "
    return "[\n" + separator.join(texts) + "\n]\n"


ARRAY_ERRORS = [
    pytest.param(array_with("7"), f"{BAD_AT}: record is not a JSON object (use [{{...}}, {{...}}])", id="number"),
    pytest.param(
        array_with("[1, 2]"), f"{BAD_AT}: record is not a JSON object (use [{{...}}, {{...}}])", id="list-record"
    ),
    pytest.param(
        array_with('{"y_true": 1, "y_pred": "high", "g": "a", "name": "n"}'),
        f"{BAD_AT}:y_pred: text where earlier rows have a list of numbers (use one type per column)",
        id="text-in-list-column",
    ),
    pytest.param(
        array_with('{"y_true": true, "y_pred": [0.5, 0.5, 0.0], "g": "a", "name": "n"}'),
        f"{BAD_AT}:y_true: a boolean where earlier rows have a number (use one type per column)",
        id="boolean-label",
    ),
    pytest.param(
        array_with("{}, , {}"),
        f"{BAD_AT + 1}: record is not a JSON object (use [{{...}}, {{...}}])",
        id="two-commas",
    ),
    pytest.param(
        array_with('{"y_true": 1} {"y_true": 2}'),
        f"{BAD_AT + 1}: invalid JSON: a comma is missing before the record (use [{{...}}, {{...}}])",
        id="missing-comma",
    ),
    pytest.param(
        array_with("{}") + " [3]",
        " text after the JSON array (a JSON document holds one array)",
        id="text-after",
    ),
    pytest.param(
        array_with("{}").rstrip().removesuffix("]"),
        f"{ROWS}: the JSON array is not closed: the input ends inside it (the file may be cut short)",
        id="not-closed",
    ),
    pytest.param(
        array_with("{}")[: len(array_with("{}")) // 2 * 2 - 100],
        None,  # cut inside a record: the last record begun is named (computed in the test)
        id="cut-inside-a-record",
    ),
]


@pytest.mark.parametrize("stdin", [False, True], ids=["file", "stdin"])
@pytest.mark.parametrize(("content", "message"), ARRAY_ERRORS)
def test_an_error_in_a_long_array_names_the_record(cecli, tmp_path, content, message, stdin):
    if message is None:
        begun = content.count("\n{")  # one record a line, each starting with {
        message = f"{begun}: the JSON array is not closed: the input ends inside it (the file may be cut short)"
    (tmp_path / "bad.json").write_text(content, encoding="utf-8")
    args = ["sparse", "-y", "y_true", "-p", "y_pred", "--summary-only"]
    if stdin:
        result = cecli(*args, "-", "--input-format", "json", input=content.encode())
        name = "<stdin>"
    else:
        result = cecli(*args, "bad.json")
        name = "bad.json"
    assert result == (BAD_INPUT, "", f"cecli: error: {name}:{message}\n".replace(f"{name}: ", f"{name}: "))


def test_a_syntax_error_inside_a_record_names_the_record(cecli, tmp_path):
    # {"y_true": 1,, ...}: Python's json says where in the record (the 14th character).
    bad = '{"y_true": 1,, "y_pred": [0.5, 0.5, 0.0], "g": "a", "name": "n"}'
    (tmp_path / "bad.json").write_text(array_with(bad), encoding="utf-8")
    code, stdout, stderr = cecli("sparse", "bad.json", "-y", "y_true", "-p", "y_pred")
    column = bad.index(",,") + 2  # 1-based position of the second comma in the record
    assert (code, stdout) == (BAD_INPUT, "")
    assert stderr == (
        f"cecli: error: bad.json:{BAD_AT}: invalid JSON in the record at character {column}: "
        "Expecting property name enclosed in double quotes "
        "(cecli reads records of numbers, text, booleans and lists of numbers)\n"
    )


def test_the_first_wrong_record_is_named_when_a_later_one_breaks_the_array(cecli, tmp_path):
    texts = [json.dumps(r) for r in records()]
    texts[99] = '{"y_true": 1, "y_pred": "x", "g": "a", "name": "n"}'  # record 100: text in a list column
    texts[2899] = "7"  # record 2900: not an object, found first by the scanner, which reads ahead
    (tmp_path / "bad.json").write_text("[\n" + ",\n".join(texts) + "\n]", encoding="utf-8")
    assert cecli("sparse", "bad.json", "-y", "y_true", "-p", "y_pred") == (
        BAD_INPUT,
        "",
        "cecli: error: bad.json:100:y_pred: text where earlier rows have a list of numbers (use one type per column)\n",
    )


def columns_with(column: str, values_text: str | None = None, rows: int = ROWS) -> str:
    """The rows as an object of columns, one column's list replaced by `values_text` (JSON text)."""
    rows_ = records(rows)
    parts = []
    for key in rows_[0]:
        text = json.dumps([r[key] for r in rows_]) if key != column or values_text is None else values_text
        parts.append(f"{json.dumps(key)}: {text}")
    return "{" + ",\n".join(parts) + "}\n"


def values_with(column: str, index: int, bad: str) -> str:
    """The list of `column` with the value at 0-based `index` replaced by the JSON text `bad`."""
    texts = [json.dumps(r[column]) for r in records()]
    texts[index] = bad
    return "[" + ", ".join(texts) + "]"


COLUMN_ERRORS = [
    pytest.param(
        columns_with("g", json.dumps(["a"] * (ROWS - 1))),
        f": column 'g': has {ROWS - 1} values but 'y_true' has {ROWS} (every column needs one value per row)",
        id="unequal-lengths",
    ),
    pytest.param(
        columns_with("g", "7"), ": column 'g': column is not a list (use {\"column\": [v1, v2, ...]})", id="not-a-list"
    ),
    pytest.param(
        columns_with("g", '{"a": 1}'),
        ": column 'g': column is not a list (use {\"column\": [v1, v2, ...]})",
        id="object",
    ),
    pytest.param(
        columns_with("y_true", values_with("y_true", BAD_AT - 1, '"two"')),
        f":{BAD_AT}:y_true: text where earlier rows have a number (use one type per column)",
        id="text-among-numbers",
    ),
    pytest.param(
        columns_with("y_pred", values_with("y_pred", BAD_AT - 1, "[0.5, true, 0.5]")),
        f":{BAD_AT}:y_pred: a list holding a boolean where earlier rows have a list of numbers "
        "(use one type per column)",
        id="boolean-in-a-list",
    ),
    pytest.param(
        columns_with("y_true").replace('"g":', '"y_true":'),
        ": duplicate key 'y_true' in a JSON object (give every column a unique name)",
        id="duplicate-key",
    ),
    pytest.param(
        columns_with("y_true")[:-100],
        ": the JSON document is not closed: the input ends inside it (the file may be cut short)",
        id="cut-short",
    ),
]


@pytest.mark.parametrize(("content", "message"), COLUMN_ERRORS)
def test_an_error_in_a_long_object_of_columns_names_the_column(cecli, tmp_path, content, message):
    (tmp_path / "bad.json").write_text(content, encoding="utf-8")
    code, stdout, stderr = cecli("sparse", "bad.json", "-y", "y_true", "-p", "y_pred", "--by", "g", "--summary-only")
    assert (code, stdout, stderr) == (BAD_INPUT, "", f"cecli: error: bad.json{message}\n")


# --------------------------------------------------------------------------- bounded memory, in a real process


@pytest.mark.parametrize("shape", ["array", "columns"])
def test_a_long_document_is_read_in_bounded_memory(tmp_path, shape):
    # 40 MB of JSON: read whole, Python's objects for it take about 7 times that beside the 70 MB of
    # pyarrow and NumPy (over 300 MB); streamed, the process holds a few blocks (about 120-160 MB).
    path = tmp_path / "big.json"
    with path.open("w", encoding="utf-8") as out:
        if shape == "array":
            block = ",\n".join(json.dumps({"y_true": i % 2, "y_pred": 0.25 + (i % 2) / 2}) for i in range(1000))
            out.write("[\n" + ",\n".join([block] * (40 * 2**20 // len(block))) + "\n]\n")
        else:
            pairs = 40 * 2**20 // 16
            out.write('{"y_true": [' + ", ".join(["1, 0"] * pairs) + "],\n")
            out.write(' "y_pred": [' + ", ".join(["0.75, 0.25"] * pairs) + "]}\n")
    size = path.stat().st_size
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    # A child started by vfork counts its parent's pages until it execs (ru_maxrss keeps them), and this
    # test process is large: cecli is started and waited for by a small Python process, which prints its peak.
    result = subprocess.run(
        [sys.executable, "-c", MEASURE, sys.executable, "-m", "cecli", "bce", str(path), "--value-only"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    value, peak_kib = result.stdout.split()
    # Every row's loss is -log(0.75) (label 1 with p 0.75, label 0 with p 0.25).
    assert float(value) == pytest.approx(-math.log(0.75), rel=1e-6)  # --value-only prints 6 decimals
    peak = int(peak_kib) * 1024  # ru_maxrss is in KiB on Linux
    assert peak < 3 * size + 100 * 2**20, (peak, size)


MEASURE = """
import os, subprocess, sys
child = subprocess.Popen(sys.argv[1:], stdout=subprocess.PIPE)
value = child.stdout.read()
_, status, usage = os.wait4(child.pid, 0)
sys.stderr.write(f"exit {os.waitstatus_to_exitcode(status)}")
print(value.decode().strip(), usage.ru_maxrss)
sys.exit(os.waitstatus_to_exitcode(status))
"""


# --------------------------------------------------------------------------- threads give the same bytes


@pytest.mark.parametrize("name", ["rows.ndjson", "record-a-line.json", "columns.json"])
def test_threaded_decoding_gives_the_same_bytes_as_one_thread(cecli, tmp_path, monkeypatch, name):
    write_shapes(tmp_path, records())
    monkeypatch.setattr(io_ndjson, "_NDJSON_BLOCK_BYTES", 4096)  # many blocks, so many in flight at once
    args = ["sparse", name, "-y", "y_true", "-p", "y_pred", "--keep", "name,g", "-f", "ndjson", "--batch-rows", "97"]
    outputs = []
    for workers in (1, 2, 5):
        monkeypatch.setattr(io_pool, "cores", lambda workers=workers: workers)
        outputs.append(cecli(*args))
    assert outputs[0][0] == 0 and outputs[0][2] == ""
    assert outputs[1] == outputs[0] and outputs[2] == outputs[0]


def test_ordered_map_keeps_order_and_reports_the_first_failure_in_order():
    def work(item):
        if item == "bad":
            raise ValueError(item)
        return item * 2

    for workers in (1, 2, 4):
        assert list(io_pool.ordered_map(work, range(50), workers, name="t")) == [i * 2 for i in range(50)]

        def items():
            yield from (1, 2, 3)
            raise KeyError("after 3")

        results = []
        with pytest.raises(KeyError):
            for result in io_pool.ordered_map(work, items(), workers, name="t"):
                results.append(result)
        assert results == [2, 4, 6]  # the items read before the failure are all handed back first

        results = []
        with pytest.raises(ValueError, match="bad"):
            for result in io_pool.ordered_map(work, [1, "bad", 3, 4], workers, name="t"):
                results.append(result)
        assert results == [2]


@pytest.mark.parametrize("chosen", [None, "system", "mimalloc"])
def test_parsed_json_goes_to_jemalloc_unless_the_user_chose_a_pool(monkeypatch, tmp_path, chosen):
    """jemalloc returns what the parsing threads free (mimalloc keeps it per thread); a pool the user
    chose with ARROW_DEFAULT_MEMORY_POOL is kept."""
    if chosen is None:
        monkeypatch.delenv("ARROW_DEFAULT_MEMORY_POOL", raising=False)
    else:
        monkeypatch.setenv("ARROW_DEFAULT_MEMORY_POOL", chosen)
    pool = io_ndjson._parsing_pool()
    if chosen is None and "jemalloc" in pa.supported_memory_backends():
        assert pool.backend_name == "jemalloc"
        path = tmp_path / "rows.ndjson"
        path.write_text("".join(f'{{"y": {i % 2}, "p": 0.25}}\n' for i in range(1000)))
        opened = open_input(str(path))
        try:
            batches = list(opened.record_batches(["y", "p"], ReadSettings()))
        finally:
            opened.close()
        assert pool.bytes_allocated() > 0  # the batches' buffers live in jemalloc
        assert [b.num_rows for b in batches] == [1000]
        assert pa.concat_tables([pa.Table.from_batches(batches)]).column("y").to_pylist() == [
            i % 2 for i in range(1000)
        ]
    else:
        assert pool is None
