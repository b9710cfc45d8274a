"""Compressed (``.gz``, ``.zst``) and Arrow IPC (``.arrow``, ``.feather``, ``.ipc``) ``--out`` files (io/writers.py).

Each is read back with another library than the one that wrote it where one exists (the standard library's gzip,
pandas, Polars) or with pyarrow: a compressed file holds exactly the bytes of the plain one, and every file holds the
per-sample values of the run exactly (checked against the seed examples, an independent source, and against losses
written out with ``math``). A run that fails, a full disk and an interrupt leave no file behind.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import math
import os
import struct
from pathlib import Path

import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.ipc
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import cecli
from cecli.cli import app
from cecli.io import writers
from cecli.io.base import ReadSettings

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SEED_BCE = PROJECT_ROOT / "sample_data" / "seed-bce"
NOTHING_WRITTEN = "nothing was written; choose another place"
COMPRESSED = ["x.csv.gz", "x.csv.zst", "x.ndjson.gz", "x.ndjson.zst", "x.jsonl.gz", "x.jsonl.zst"]
ARROW = ["x.arrow", "x.feather", "x.ipc"]
ALL = ["x.csv", "x.ndjson", "x.parquet", *COMPRESSED, *ARROW]
MAGIC = {".gz": b"\x1f\x8b", ".zst": b"\x28\xb5\x2f\xfd", ".arrow": b"ARROW1"}


def _seed_bce() -> dict:
    cases = json.loads((PROJECT_ROOT / "tests" / "data" / "seed_examples.json").read_text(encoding="utf-8"))["cases"]
    return next(case for case in cases if case["name"] == "seed-bce")


def _plain_bytes(path: Path) -> bytes:
    """The file's bytes, decompressed: gzip by the standard library, Zstandard by pyarrow's codec."""
    if path.suffix == ".gz":
        return gzip.decompress(path.read_bytes())
    if path.suffix == ".zst":
        with pa.input_stream(str(path), compression="zstd") as stream:
            return stream.read()
    return path.read_bytes()


def _records(path: Path) -> list[dict]:
    """The rows of an --out file as dicts (CSV cells as text, an empty one as None)."""
    name = path.name.removesuffix(".gz").removesuffix(".zst")
    if name.endswith((".arrow", ".feather", ".ipc")):
        return pa.ipc.open_file(str(path)).read_all().to_pylist()
    if name.endswith(".parquet"):
        import pyarrow.parquet as pq

        return pq.read_table(path).to_pylist()
    text = _plain_bytes(path).decode()
    if name.endswith(".csv"):
        return [{k: v if v != "" else None for k, v in row.items()} for row in csv.DictReader(io.StringIO(text))]
    return [json.loads(line) for line in text.splitlines()]


def _losses(records: list[dict]) -> list[float | None]:
    return [None if r["loss"] is None else float(r["loss"]) for r in records]


def _run(runner, *args: str):
    return runner.invoke(app, [str(arg) for arg in args])


@pytest.mark.parametrize("name", COMPRESSED)
def test_a_compressed_out_holds_the_plain_files_bytes_and_the_exact_losses(runner, tmp_path, name):
    plain = tmp_path / name.removesuffix(".gz").removesuffix(".zst").replace(".jsonl", ".ndjson")
    target = tmp_path / name
    first = _run(runner, "bce", f"{SEED_BCE}.csv", "--keep", "y_true", "-f", "json", "--out", plain)
    second = _run(runner, "bce", f"{SEED_BCE}.csv", "--keep", "y_true", "-f", "json", "--out", target)
    assert (first.exit_code, second.exit_code) == (0, 0), (first.output, second.output)
    per_sample = json.loads(second.stdout)["per_sample"]
    assert target.read_bytes().startswith(MAGIC[target.suffix])
    assert _plain_bytes(target) == plain.read_bytes()
    records = _records(target)
    assert [int(r["row"]) for r in records] == list(range(1, 8))
    assert _losses(records) == per_sample  # exactly the run's values
    assert per_sample == pytest.approx(_seed_bce()["expected"]["per_sample"], rel=1e-12)
    assert [int(float(r["y_true"])) for r in records] == _seed_bce()["y_true"]
    assert sorted(os.listdir(tmp_path)) == sorted({plain.name, target.name})  # no temporary file left


@pytest.mark.parametrize("name", ARROW)
def test_an_arrow_out_is_an_ipc_file_with_typed_columns_and_the_exact_losses(runner, tmp_path, name):
    target = tmp_path / name
    result = _run(runner, "bce", f"{SEED_BCE}.parquet", "--keep", "y_true", "-f", "json", "--out", target)
    assert result.exit_code == 0, result.output
    per_sample = json.loads(result.stdout)["per_sample"]
    assert target.read_bytes()[:6] == MAGIC[".arrow"]
    table = pa.ipc.open_file(str(target)).read_all()
    # The kept column keeps its Parquet type (double here), as a Parquet --out does.
    assert table.schema == pa.schema([("row", pa.int64()), ("loss", pa.float64()), ("y_true", pa.float64())])
    assert table.column("row").to_pylist() == list(range(1, 8))
    assert table.column("loss").to_pylist() == per_sample
    assert per_sample == pytest.approx(_seed_bce()["expected"]["per_sample"], rel=1e-12)
    assert table.column("y_true").to_pylist() == [float(y) for y in _seed_bce()["y_true"]]
    # Feather v2 readers of other libraries read it too.
    assert pd.read_feather(target)["loss"].tolist() == per_sample
    assert pl.read_ipc(target)["loss"].to_list() == per_sample


IGNORED_AND_INFINITE = "y,p_0,p_1\n0,0.5,0.5\n-100,0.5,0.5\n1,1,0\n1,0.25,0.75\n"


@pytest.mark.parametrize("name", ["x.csv.gz", "x.ndjson.zst", "x.arrow"])
def test_ignored_rows_are_null_and_infinite_losses_stay_infinite(runner, tmp_path, name):
    (tmp_path / "s.csv").write_text(IGNORED_AND_INFINITE, encoding="utf-8")
    target = tmp_path / name
    result = _run(runner, "sparse", tmp_path / "s.csv", "--ignore-index", "-100", "--eps", "0", "--out", target)
    assert result.exit_code == 0, result.output
    records = _records(target)
    assert [int(r["row"]) for r in records] == [1, 2, 3, 4]
    if name.startswith("x.ndjson"):  # strict JSON: null, and the kind of number beside it (as -f ndjson)
        assert records[1] == {"row": 2, "loss": None}
        assert records[2] == {"row": 3, "loss": None, "nonfinite": "inf"}
        losses = [records[0]["loss"], records[3]["loss"]]
    else:
        assert _losses(records)[1:3] == [None, math.inf]
        losses = [float(records[0]["loss"]), float(records[3]["loss"])]
    assert losses == [-math.log(0.5), -math.log(0.75)]


@pytest.mark.parametrize("name", ALL)
def test_data_in_memory_written_over_several_flushes_reads_back_exactly(monkeypatch, tmp_path, name):
    monkeypatch.setattr(writers, "ROW_GROUP_ROWS", 3)  # several row groups / record batches / compressed writes
    y = [i % 2 for i in range(10)]
    p = [(i + 1) / 12 for i in range(10)]
    target = tmp_path / name
    table = pa.table({"y": y, "p": p, "id": list(range(10))})
    result = cecli.compute("bce", table, y="y", p="p", keep="id", out=str(target), read=ReadSettings(batch_rows=2))
    records = _records(target)
    assert [int(r["row"]) for r in records] == list(range(1, 11))
    assert _losses(records) == result.per_sample.tolist()
    expected = [-math.log(pi if yi else 1 - pi) for yi, pi in zip(y, p, strict=True)]
    assert _losses(records) == pytest.approx(expected, rel=1e-14)  # -log(1 - p) within rounding of 1 - p
    assert [int(r["id"]) for r in records] == list(range(10))


def _bad_at_record_10(folder: Path) -> Path:
    rows = "".join(f"{i % 2},{(i + 1) / 13!r}\n" for i in range(12)).splitlines(keepends=True)
    rows[9] = "1,1.5\n"
    path = folder / "bad.csv"
    path.write_text("y_true,y_pred\n" + "".join(rows), encoding="utf-8")
    return path


@pytest.mark.parametrize("name", ALL)
def test_a_run_that_fails_after_some_rows_were_written_leaves_nothing(runner, monkeypatch, tmp_path, name):
    monkeypatch.setattr(writers, "ROW_GROUP_ROWS", 2)  # rows 1-8 reach the file (and the compressor) first
    monkeypatch.setattr("cecli.files._ABANDONED", [])
    monkeypatch.chdir(tmp_path)
    _bad_at_record_10(tmp_path)
    os.mkdir("out")
    result = _run(runner, "bce", "bad.csv", "--batch-rows", "2", "--out", f"out/{name}")
    assert result.exit_code == 3
    assert result.stderr == (
        "cecli: error: bad.csv:11:y_pred: probability 1.5 is outside [0, 1] "
        "(pass --from-logits if these are raw scores)\n"
    )
    assert os.listdir("out") == []


@pytest.mark.parametrize(
    ("name", "room", "rows"),
    [(name, room, 3000) for name in COMPRESSED[:2] + ARROW[:1] for room in (0, 4096)]
    # the NDJSON writer's batches of 1,000 rows, put together in pyarrow: at the first write or after some
    + [(name, room, 30000) for name in ("x.ndjson", "x.ndjson.zst") for room in (0, 100_000)],
)
def test_a_full_disk_under_a_compressor_or_an_arrow_writer_is_one_line_and_leaves_nothing(
    runner, monkeypatch, tmp_path, disk_full_after, name, room, rows
):
    """ENOSPC once `room` bytes are written (during a write or at the compressor's last block on close)."""
    disk_full_after(room)
    monkeypatch.chdir(tmp_path)
    # Distinct losses, so that even compressed they need more than `room` bytes.
    Path("many.csv").write_text("y_true,y_pred\n" + "".join(f"1,{(i + 1) / (rows + 1)!r}\n" for i in range(rows)))
    os.mkdir("out")
    result = _run(runner, "bce", "many.csv", "--out", f"out/{name}", "--batch-rows", str(rows // 30))
    assert result.exit_code == 3
    assert result.stderr == (
        f"cecli: error: out/{name}: cannot write --out: No space left on device ({NOTHING_WRITTEN})\n"
    )
    assert os.listdir("out") == []


@pytest.mark.parametrize("name", COMPRESSED + ARROW)
def test_an_interrupted_write_leaves_nothing(tmp_path, name):
    import numpy as np

    target = tmp_path / name
    with pytest.raises(KeyboardInterrupt), writers.PerSampleWriter(str(target), []) as writer:
        writer.write(0, np.array([0.5, 0.25]), np.array([True, True]), {})
        writer._flush()  # the rows are in the file (or the compressor) when the interrupt comes
        raise KeyboardInterrupt
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("x.parquet.gz", "--out x.parquet.gz: a Parquet file is compressed inside, not as a whole (name it x.parquet)"),
        (
            "x.feather.zst",
            "--out x.feather.zst: an Arrow IPC file is compressed inside, not as a whole (name it x.feather)",
        ),
        (
            "x.gz",
            "cannot tell the format of --out x.gz "
            "(use a .csv, .ndjson (either may end in .gz or .zst), .parquet or .arrow name)",
        ),
        (
            "x.csv.bz2",
            "cannot tell the format of --out x.csv.bz2 "
            "(use a .csv, .ndjson (either may end in .gz or .zst), .parquet or .arrow name)",
        ),
    ],
)
def test_names_cecli_cannot_write_are_usage_errors(runner, monkeypatch, tmp_path, name, message):
    monkeypatch.chdir(tmp_path)
    result = _run(runner, "bce", f"{SEED_BCE}.csv", "--out", name)
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr == f"cecli: error: {message}\n"
    assert os.listdir(tmp_path) == []


# Per-sample NDJSON: built column-wise in Arrow (cecli.lines.float_texts, ndjson_lines), with the text repr writes.

# Each layout where Arrow's text of a float differs from repr's, and its edges: whole numbers (12 / 12.0),
# decimal exponents -5 and -6 (0.00001 / 1e-05), -7 to -9 (1e-7 / 1e-07), 10 to 15 (1e+10 / 10000000000.0).
LAYOUT_EDGES = [
    0.0, -0.0, 1.0, -3.0, 12.0, 999999999.0, 1e9, 9999999999.0, 1e10, 12345678901.5, 1e15, 999999999999999.9,
    1e16, 1.2345678901234567e16, 1e17, 1e21, 1e22, 1.7976931348623157e308, 0.5, 0.1, 1 / 3, 123456.789,
    1e-4, 9.999999999999999e-05, 1e-5, 2.5e-5, -4.539889921686465e-05, 1e-6, 6.144193477732806e-06, 1e-7,
    3.059023205018258e-07, 4.139937633089748e-08, 1e-9, 2.061153620314381e-09, 1e-10, 1.5e-300, 5e-324,
    2.2250738585072014e-308, math.inf, -math.inf, math.nan,
]  # fmt: skip


def _bits(value: float) -> bytes:
    return struct.pack("<d", value)


@pytest.mark.parametrize("value", LAYOUT_EDGES)
def test_float_texts_are_what_repr_writes(value):
    import numpy as np

    from cecli.lines import float_texts

    near = [value, math.nextafter(value, -math.inf), math.nextafter(value, math.inf)]
    assert float_texts(np.array(near)).to_pylist() == [repr(v) for v in near]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(allow_nan=True, allow_infinity=True), max_size=50))
def test_float_texts_are_what_repr_writes_for_any_floats(values):
    import numpy as np

    from cecli.lines import float_texts

    assert float_texts(np.array(values, dtype=np.float64)).to_pylist() == [repr(v) for v in values]


# bce from logits: a loss in each of repr's layouts (logit -> loss: -1.5e10 - 0.5 -> 15000000000.5, -100 -> 100.0,
# 10 -> 4.5e-05, 12 -> 6.1e-06, 15 -> 3.1e-07, 20 -> 2.1e-09, -1e20 -> 1e+20), repeated past a batch and a chunk.
LOGITS = [-15000000000.5, -100.0, 10.0, 12.0, 15.0, 17.0, 20.0, 0.0, -1e20, 3.0, 2.5, 0.1]


def test_ndjson_out_and_stdout_are_the_same_bytes_and_every_loss_reads_back_bit_for_bit(runner, tmp_path):
    rows = [(1 if i % 3 else 0, LOGITS[i % len(LOGITS)]) for i in range(66_000)]
    rows = [(y, x if y else -x) for y, x in rows]  # the same losses for label 0: the logit's sign flipped
    path = tmp_path / "logits.csv"
    path.write_text("y,x\n" + "".join(f"{y},{x!r}\n" for y, x in rows), encoding="utf-8")
    args = ["bce", path, "--from-logits", "-y", "y", "-p", "x"]
    printed = _run(runner, *args, "-f", "ndjson")
    document = _run(runner, *args, "-f", "json")
    outs = [tmp_path / name for name in ("o.ndjson", "o.jsonl", "o.ndjson.gz", "o.ndjson.zst")]
    for out in outs:
        written = _run(runner, *args, "-f", "json", "--summary-only", "--out", out)
        assert written.exit_code == 0, written.output
    assert (printed.exit_code, document.exit_code) == (0, 0)
    assert all(_plain_bytes(out) == printed.stdout_bytes for out in outs)
    per_sample = json.loads(document.stdout)["per_sample"]  # json.dumps's text of each float: repr
    records = [json.loads(line) for line in printed.stdout_bytes.decode("ascii").splitlines()]
    assert [r["row"] for r in records] == list(range(1, 66_001))
    assert all(type(r["loss"]) is float for r in records)  # 100.0, not 100
    assert [_bits(r["loss"]) for r in records] == [_bits(v) for v in per_sample]
    # The losses themselves: softplus(-x) for label 1, as math writes it (exact where the log1p term vanishes).
    expected = [x * (x < 0) * -1 + math.log1p(math.exp(-abs(x))) for x in (x if y else -x for y, x in rows[:12])]
    assert [r["loss"] for r in records[:12]] == pytest.approx(expected, rel=1e-15)
    assert records[1]["loss"] == 100.0 and records[0]["loss"] == 15000000000.5 and records[8]["loss"] == 1e20
    text = printed.stdout_bytes.decode("ascii").splitlines()[:12]
    # Every layout is there: positional large, a whole number, exponents -05 to -09 with two digits, e+20.
    assert [line.split('"loss": ')[1].rstrip("}") for line in text] == [repr(v) for v in per_sample[:12]]
    assert {"15000000000.5", "100.0", "1e+20"} <= {t.split('"loss": ')[1].rstrip("}") for t in text}
    assert all(any(f"e-0{k}" in t for t in text) for k in (5, 6, 7, 8, 9))


def test_ndjson_nonfinite_and_ignored_rows_are_the_same_in_out_and_stdout(runner, tmp_path):
    (tmp_path / "s.csv").write_text(IGNORED_AND_INFINITE, encoding="utf-8")
    args = ["sparse", tmp_path / "s.csv", "--ignore-index", "-100", "--eps", "0"]
    printed = _run(runner, *args, "-f", "ndjson")
    written = _run(runner, *args, "--out", tmp_path / "o.ndjson")
    assert (printed.exit_code, written.exit_code) == (0, 0)
    first, last = -math.log(0.5), -math.log(0.75)
    expected = (
        f'{{"row": 1, "loss": {first!r}}}\n{{"row": 2, "loss": null}}\n'
        f'{{"row": 3, "loss": null, "nonfinite": "inf"}}\n{{"row": 4, "loss": {last!r}}}\n'
    )
    assert (tmp_path / "o.ndjson").read_bytes() == printed.stdout_bytes == expected.encode()


@pytest.mark.parametrize("name", ["x.ndjson", "x.ndjson.gz"])
def test_an_interrupt_after_a_batch_of_lines_leaves_nothing(tmp_path, name):
    import numpy as np

    target = tmp_path / name
    with pytest.raises(KeyboardInterrupt), writers.PerSampleWriter(str(target), []) as writer:
        writer.write(0, np.linspace(0.1, 9, 200_000), np.ones(200_000, bool), {})
        raise KeyboardInterrupt
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("encoding", ["utf-8", "ascii", "latin-1", "utf-16", "cp500"])
def test_ndjson_on_stdout_is_its_text_in_the_streams_encoding(tmp_path, encoding):
    """The lines go to stdout's bytes as they are only where its encoding writes ASCII so (UTF-16 and EBCDIC do not)."""
    import subprocess
    import sys

    path = tmp_path / "d.csv"
    path.write_text("y,p\n1,0.25\n0,0.00001\n", encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "cecli", "bce", str(path), "-f", "ndjson"],
        capture_output=True,
        env={**os.environ, "PYTHONIOENCODING": encoding},
        check=False,
    )
    assert (done.returncode, done.stderr) == (0, b"")
    first, second = -math.log(0.25), -math.log1p(-0.00001)
    expected = f'{{"row": 1, "loss": {first!r}}}\n{{"row": 2, "loss": {second!r}}}\n'
    assert done.stdout.decode(encoding) == expected


# Per-sample CSV: the same lines, made once (cecli.lines.csv_lines), for -f csv and --out .csv.

AWKWARD_TEXT = ["a", "x,y", 'say "hi"', "line\nbreak", "é", "  sp  ", "日本"]


def test_csv_out_and_stdout_are_the_same_bytes_as_pythons_csv_writer_and_read_back_bit_for_bit(runner, tmp_path):
    n = 66_000
    rows = [(1 if i % 3 else 0, LOGITS[i % len(LOGITS)], AWKWARD_TEXT[i % len(AWKWARD_TEXT)]) for i in range(n)]
    rows = [(y, x if y else -x, text) for y, x, text in rows]
    path = tmp_path / "logits.csv"
    with path.open("w", encoding="utf-8", newline="") as file:
        csv.writer(file, lineterminator="\n").writerows([("y", "x", "id"), *rows])
    args = ["bce", path, "--from-logits", "-y", "y", "-p", "x", "--keep", "id"]
    printed = _run(runner, *args, "-f", "csv")
    document = _run(runner, *args[:-2], "-f", "json")  # its per_sample holds losses only: no --keep
    outs = [tmp_path / name for name in ("o.csv", "o.csv.gz", "o.csv.zst")]
    for out in outs:
        written = _run(runner, *args, "-f", "json", "--summary-only", "--out", out)
        assert written.exit_code == 0, written.output
    assert (printed.exit_code, document.exit_code) == (0, 0)
    per_sample = json.loads(document.stdout)["per_sample"]
    # What Python's csv module writes for each row: the loss as repr, text quoted where needed.
    expected = io.StringIO()
    writer = csv.writer(expected, lineterminator="\n")
    writer.writerow(["row", "loss", "id"])
    writer.writerows(
        (i + 1, repr(loss), text) for i, (loss, (_, _, text)) in enumerate(zip(per_sample, rows, strict=True))
    )
    assert printed.stdout_bytes == expected.getvalue().encode("utf-8")
    assert all(_plain_bytes(out) == printed.stdout_bytes for out in outs)
    records = list(csv.DictReader(io.StringIO(printed.stdout_bytes.decode("utf-8"))))
    assert [_bits(float(r["loss"])) for r in records] == [_bits(v) for v in per_sample]
    assert [r["id"] for r in records] == [text for _, _, text in rows]


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("plain", "plain"),
        ("", ""),
        ("a,b", '"a,b"'),
        ('say "hi"', '"say ""hi"""'),
        ("line\nbreak", '"line\nbreak"'),
        ("cr\ronly", '"cr\ronly"'),  # RFC 4180 quotes CR too (Python 3.11's csv module does not)
        ("  spaces  ", "  spaces  "),
        ("日本", "日本"),
    ],
)
def test_a_csv_cell_is_quoted_only_where_csv_needs_it_and_reads_back(text, field):
    from cecli.lines import csv_cell

    assert csv_cell(text) == field
    assert next(csv.reader(io.StringIO(f"{field},x\n", newline=""))) == [text, "x"]


@pytest.mark.parametrize("encoding", ["utf-8", "latin-1", "utf-16", "ascii"])
def test_csv_on_stdout_is_its_text_in_the_streams_encoding(tmp_path, encoding):
    """The lines go to stdout's bytes as they are only under UTF-8; elsewhere as text, escaped where it cannot."""
    import subprocess
    import sys

    path = tmp_path / "d.csv"
    path.write_text('y,p,id\n1,0.25,é\n0,0.5,"a,b"\n', encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "cecli", "bce", str(path), "-y", "y", "-p", "p", "--keep", "id", "-f", "csv"],
        capture_output=True,
        env={**os.environ, "PYTHONIOENCODING": encoding},
        check=False,
    )
    assert (done.returncode, done.stderr) == (0, b"")
    first, second = -math.log(0.25), -math.log(0.5)
    accent = "\\xe9" if encoding == "ascii" else "é"  # backslashreplace, as every text cecli prints
    expected = f'row,loss,id\n1,{first!r},{accent}\n2,{second!r},"a,b"\n'
    assert done.stdout.decode(encoding) == expected


def test_a_pyarrow_that_lays_numbers_out_otherwise_leaves_the_lines_to_python(monkeypatch):
    """The layout rules are checked once against ``repr`` (true with the pyarrow installed here); when they do
    not hold, every batch is written a line at a time: the same bytes, never other text."""
    import numpy as np

    from cecli import lines

    assert lines._arrow_writes_repr()
    losses = np.resize(np.array(LAYOUT_EDGES), 3000)
    counted = np.arange(3000) % 7 != 2
    expected = {f: f(1, losses, counted, {}) for f in (lines.ndjson_lines, lines.csv_lines)}
    monkeypatch.setattr(lines, "_arrow_writes_repr", lambda: False)
    monkeypatch.setattr(lines, "float_texts", None)  # the pyarrow path would fail: it is not taken
    for write, text in expected.items():
        assert write(1, losses, counted, {}) == text


@pytest.mark.parametrize("keep", [{}, {"id": AWKWARD_TEXT * 1000, "n": [1, 2.5, None, True, [1, "a"], -0.0, 7] * 1000}])
def test_a_batch_in_pyarrow_and_its_rows_one_at_a_time_are_the_same_bytes(keep):
    """Batches of 2,048 rows or more are put together in pyarrow, smaller ones in Python: the same lines."""
    import numpy as np

    from cecli.lines import csv_header, csv_lines, ndjson_lines

    n = 7000
    losses = np.resize(np.array(LAYOUT_EDGES), n)
    counted = np.arange(n) % 5 != 3  # some ignored rows, some of them on an infinite or NaN loss
    for lines in (ndjson_lines, csv_lines):
        whole = lines(1, losses, counted, keep)
        one_by_one = b"".join(
            lines(i + 1, losses[i : i + 1], counted[i : i + 1], {k: v[i : i + 1] for k, v in keep.items()})
            for i in range(n)
        )
        assert whole == one_by_one
    # And the CSV is what Python's csv module writes: a kept value as the JSON output writes it, null empty.
    expected = io.StringIO()
    writer = csv.writer(expected, lineterminator="\n")
    writer.writerow(["row", "loss", *keep])
    cell = lambda v: "" if v is None else v if isinstance(v, str) else json.dumps(v, ensure_ascii=False)  # noqa: E731
    writer.writerows(
        [i + 1, repr(float(v)) if ok else "", *(cell(column[i]) for column in keep.values())]
        for i, (v, ok) in enumerate(zip(losses, counted, strict=True))
    )
    assert csv_header(list(keep)) + csv_lines(1, losses, counted, keep).decode() == expected.getvalue()


@pytest.mark.parametrize("fmt", ["ndjson", "csv"])
def test_a_one_liners_lines_need_no_pyarrow(tmp_path, fmt):
    """A few rows are written a line at a time: a small CSV one-liner does not wait for pyarrow's import."""
    import subprocess
    import sys

    sample = tmp_path / "s.csv"
    sample.write_text("y,p\n1,0.5\n0,0.00001\n")
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "cecli", "bce", str(sample), "-f", fmt],
        capture_output=True,
        text=True,
        check=False,
    )
    first, second = -math.log(0.5), -math.log1p(-0.00001)
    expected = {
        "ndjson": f'{{"row": 1, "loss": {first!r}}}\n{{"row": 2, "loss": {second!r}}}\n',
        "csv": f"row,loss\n1,{first!r}\n2,{second!r}\n",
    }
    assert (done.returncode, done.stdout) == (0, expected[fmt])
    imported = {line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines() if "|" in line}
    assert "cecli.render" in imported
    assert [name for name in imported if name.split(".")[0] == "pyarrow"] == []
