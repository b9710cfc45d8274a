"""Arrow IPC inputs (issue 17): the file format (Feather v2) and the stream format read like Parquet.

The same table written as Parquet and as Arrow IPC must give byte-identical output (the ``input`` object
aside, which names the file and its format); the seed examples anchor the numbers to values computed
elsewhere (tests/data/seed_examples.json). Error lines are written out in full.
"""

from __future__ import annotations

import gzip
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.feather as feather
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cecli.cli import app

PROJECT_ROOT = Path(__file__).resolve().parents[1]
BAD_INPUT = 3


def _column(values: list) -> pa.Array:
    """Seed values as Arrow: numbers, or rows of numbers as a fixed-size list column."""
    if values and isinstance(values[0], list):
        return pa.FixedSizeListArray.from_arrays(pa.array([float(v) for row in values for v in row]), len(values[0]))
    return pa.array([float(v) for v in values])


def _write_ipc_file(table: pa.Table, path: Path, chunk: int | None = None) -> Path:
    with pa.ipc.new_file(path, table.schema) as writer:
        writer.write_table(table, max_chunksize=chunk)
    return path


def _write_ipc_stream(table: pa.Table, path: Path, chunk: int | None = None) -> Path:
    with pa.ipc.new_stream(path, table.schema) as writer:
        writer.write_table(table, max_chunksize=chunk)
    return path


def _run(runner, args: list[str], input: bytes | None = None) -> tuple[int, str, str]:
    result = runner.invoke(app, args, input=input, prog_name="cecli")
    return result.exit_code, result.stdout, result.stderr


def _without_input(stdout: str) -> tuple[dict, str]:
    """The JSON document without its ``input`` object (as text, for a byte-for-byte comparison), and the format read."""
    document = json.loads(stdout)
    fmt = document["input"].pop("format")
    for key in ("path", "paths"):
        document["input"].pop(key)
    return document, fmt


# --------------------------------------------------------------------------- the seed examples


@pytest.mark.parametrize(
    "name", [c["name"] for c in json.loads((PROJECT_ROOT / "tests/data/seed_examples.json").read_text())["cases"]]
)
def test_seed_examples_read_from_arrow_equal_parquet(name, seed_cases, runner, tmp_path):
    case = next(c for c in seed_cases if c["name"] == name)
    columns = {"y_pred": _column(case["y_pred"])}
    if "y_true" in case:
        columns = {"y_true": _column(case["y_true"]), **columns}
    table = pa.table(columns)
    pq.write_table(table, tmp_path / "seed.parquet")
    paths = {
        "parquet": tmp_path / "seed.parquet",
        "file": _write_ipc_file(table, tmp_path / "seed.arrow", chunk=2),  # several record batches
        "stream": _write_ipc_stream(table, tmp_path / "seed.arrows", chunk=2),
        "feather": tmp_path / "seed.feather",
        "no suffix": _write_ipc_stream(table, tmp_path / "seed_stream", chunk=2),  # sniffed by its magic bytes
    }
    feather.write_feather(table, paths["feather"], chunksize=2)
    base = ["--base", str(case["base"])] if "base" in case else []
    outputs = {}
    for kind, path in paths.items():
        code, out, err = _run(runner, [case["command"], str(path), "-f", "json", *base])
        assert code == 0, (kind, err)
        outputs[kind] = _without_input(out)
    document, fmt = outputs.pop("parquet")
    assert fmt == "parquet"
    assert document["per_sample"] == pytest.approx(case["expected"]["per_sample"], rel=1e-12)
    assert document["mean"] == pytest.approx(case["expected"]["mean"], rel=1e-12)
    for kind, (other, other_fmt) in outputs.items():
        assert other_fmt == "arrow", kind
        assert json.dumps(other) == json.dumps(document), kind


# ------------------------------------------------------------- random inputs, with --by, --per-class, --keep


@st.composite
def _tables(draw) -> pa.Table:
    n = draw(st.integers(1, 25))
    c = draw(st.integers(2, 5))
    weights = draw(st.lists(st.lists(st.floats(1e-3, 1.0), min_size=c, max_size=c), min_size=n, max_size=n))
    rows = [[w / math.fsum(row) for w in row] for row in weights]
    labels = draw(st.lists(st.integers(0, c - 1), min_size=n, max_size=n))
    groups = draw(st.lists(st.sampled_from(["a", "b", "c"]), min_size=n, max_size=n))
    ids = draw(st.lists(st.integers(-(2**40), 2**40), min_size=n, max_size=n))
    probs = draw(st.sampled_from([pa.float64(), pa.float32()]))
    values = pa.array([v for row in rows for v in row], type=probs)
    return pa.table(
        {
            "label": pa.array(labels, type=draw(st.sampled_from([pa.int64(), pa.int8(), pa.uint16()]))),
            "probs": pa.FixedSizeListArray.from_arrays(values, c),
            "g": pa.array(groups),
            "id": pa.array(ids),
        }
    )


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(table=_tables(), chunk=st.integers(1, 7))
def test_random_tables_read_from_arrow_equal_parquet(table, chunk, runner, tmp_path):
    pq.write_table(table, tmp_path / "r.parquet")
    # pandas categoricals arrive dictionary-encoded: read as their values.
    encoded = table.set_column(2, "g", table.column("g").dictionary_encode())
    paths = [
        _write_ipc_file(encoded, tmp_path / "r.arrow", chunk),
        _write_ipc_stream(table, tmp_path / "r.arrows", chunk),
    ]
    for extra in (["--by", "g", "--per-class", "-f", "json"], ["--keep", "id,g", "-f", "ndjson"]):
        common = ["sparse", "-y", "label", "-p", "probs", "--batch-rows", "4", *extra]
        code, expected, err = _run(runner, [common[0], str(tmp_path / "r.parquet"), *common[1:]])
        assert code == 0, err
        for path in paths:
            code, out, err = _run(runner, [common[0], str(path), *common[1:]])
            assert code == 0, err
            if "json" in extra:
                assert json.dumps(_without_input(out)[0]) == json.dumps(_without_input(expected)[0])
            else:
                assert out == expected


# --------------------------------------------------------------------------- stdin, compression, errors


def _seed_bce_table() -> pa.Table:
    return pa.table({"y_true": [0, 1, 1, 0, 0, 1, 1], "y_pred": [0.07, 0.91, 0.74, 0.23, 0.85, 0.17, 0.94]})


SEED_BCE_SUM = 4.460303459760249  # the seed article's printed sum (tests/data/seed_examples.json)


@pytest.mark.parametrize("writer", [_write_ipc_stream, _write_ipc_file])
def test_arrow_on_stdin_in_a_real_process(writer, tmp_path):
    """The stream format is read as it comes; the file format (which must seek) is read into memory first."""
    path = writer(_seed_bce_table(), tmp_path / "in", 3)
    with path.open("rb") as stdin:
        result = subprocess.run(
            [sys.executable, "-m", "cecli", "bce", "--reduction", "sum", "--value-only"],
            stdin=stdin,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert (result.returncode, result.stderr) == (0, "")
    assert float(result.stdout) == pytest.approx(SEED_BCE_SUM, rel=1e-12)


@pytest.mark.parametrize("writer", [_write_ipc_stream, _write_ipc_file])
def test_gzipped_arrow_is_read(writer, runner, tmp_path):
    path = writer(_seed_bce_table(), tmp_path / "in.arrow", 3)
    (tmp_path / "in.arrow.gz").write_bytes(gzip.compress(path.read_bytes()))
    code, out, err = _run(runner, ["bce", str(tmp_path / "in.arrow.gz"), "--reduction", "sum", "--value-only"])
    assert (code, err) == (0, "")
    assert float(out) == pytest.approx(SEED_BCE_SUM, rel=1e-12)


def test_a_bad_cell_is_named_by_its_record_across_batches(runner, tmp_path):
    """Row 6 (1-based record) in the third record batch of two rows each: FILE:ROW:COLUMN as Parquet says it."""
    table = pa.table({"y_true": [0, 1, 1, 0, 0, 1, 1], "y_pred": [0.07, 0.91, 0.74, 0.23, 0.85, 1.5, 0.94]})
    path = _write_ipc_file(table, tmp_path / "bad.arrow", 2)
    code, out, err = _run(runner, ["bce", str(path)])
    assert (code, out) == (BAD_INPUT, "")
    reason = "probability 1.5 is outside [0, 1] (pass --from-logits if these are raw scores)"
    assert err == f"cecli: error: {path}:6:y_pred: {reason}\n"
    pq.write_table(table, tmp_path / "bad.parquet")
    assert _run(runner, ["bce", str(tmp_path / "bad.parquet")])[2] == err.replace("bad.arrow", "bad.parquet")


def test_truncated_arrow_file_is_refused_in_one_line(runner, tmp_path):
    whole = _write_ipc_file(_seed_bce_table(), tmp_path / "whole.arrow", 3).read_bytes()
    path = tmp_path / "cut.arrow"
    path.write_bytes(whole[:-20])  # the footer that indexes the batches is lost
    code, out, err = _run(runner, ["bce", str(path)])
    assert (code, out) == (BAD_INPUT, "")
    assert err == (
        f"cecli: error: {path}: not a readable Arrow IPC file: Not an Arrow file "
        "(the file may be truncated or corrupt)\n"
    )


def test_truncated_arrow_stream_is_refused_in_one_line(runner, tmp_path):
    whole = _write_ipc_stream(_seed_bce_table(), tmp_path / "whole.arrows", 3).read_bytes()
    path = tmp_path / "cut.arrows"
    path.write_bytes(whole[: len(whole) - 40])  # the last batch is cut short
    code, out, err = _run(runner, ["bce", str(path)])
    assert (code, out) == (BAD_INPUT, "")
    assert err.startswith(f"cecli: error: {path}: cannot read Arrow IPC data: ")
    assert err.endswith(" (the file may be truncated or corrupt)\n")
    assert err.count("\n") == 1


def test_feather_v1_is_refused_with_the_way_out(runner, tmp_path):
    path = tmp_path / "old.feather"
    path.write_bytes(b"FEA1" + bytes(60) + b"FEA1")
    code, out, err = _run(runner, ["bce", str(path)])
    assert (code, out) == (BAD_INPUT, "")
    assert err == (
        f"cecli: error: {path}: a Feather v1 file, which cecli does not read "
        "(write it again as Feather v2 or Arrow IPC (pyarrow.feather.write_feather's default))\n"
    )


def test_columns_lists_arrow_types(runner, tmp_path):
    table = _seed_bce_table().append_column("g", pa.array(list("aabbaab")).dictionary_encode())
    path = _write_ipc_file(table, tmp_path / "t.feather")
    code, out, err = _run(runner, ["columns", str(path)])
    assert (code, err) == (0, "")
    assert out == "1\ty_true\tint64\n2\ty_pred\tdouble\n3\tg\tstring\n"


def test_dask_engine_reads_arrow_files(tmp_path):
    """The Dask engine opens each file with the same readers: a folder of Arrow files gives the local numbers."""
    import distributed

    from cecli import compute

    folder = tmp_path / "dump"
    folder.mkdir()
    table = _seed_bce_table()
    _write_ipc_file(table.slice(0, 4), folder / "part-0.arrow", 2)
    _write_ipc_stream(table.slice(4), folder / "part-1.arrows", 2)
    local = compute("bce", str(folder), per_sample=False).to_dict(per_sample=False)
    with distributed.LocalCluster(
        processes=False, n_workers=1, threads_per_worker=2, dashboard_address=":0"
    ) as cluster:
        remote = compute("bce", str(folder), per_sample=False, engine="dask", scheduler=cluster.scheduler_address)
    remote = remote.to_dict(per_sample=False)
    assert remote == local
    assert local["sum"] == pytest.approx(SEED_BCE_SUM, rel=1e-12)


def _peak_rss_kib(args: list[str]) -> tuple[int, str]:
    """Peak resident memory (KiB) of one cecli process, measured by a fresh parent that has no other child."""
    probe = (
        "import resource, subprocess, sys\n"
        "result = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, result.returncode, result.stdout.strip())\n"
    )
    command = [sys.executable, "-c", probe, sys.executable, "-m", "cecli", *args]
    out = subprocess.run(command, capture_output=True, text=True, timeout=120).stdout.split()
    assert out[1] == "0", out
    return int(out[0]), out[2]


def test_a_large_arrow_file_streams_in_bounded_memory(tmp_path):
    """About 225 MB in record batches of 2**20 rows (9 MB): the peak memory grows by a few batches, not the file.

    Every row is p = 0.5 with label 1, so the mean is ln 2.
    """
    rows, step = 25_000_000, 1 << 20
    schema = pa.schema([("y_true", pa.int8()), ("y_pred", pa.float64())])
    with pa.ipc.new_file(tmp_path / "big.arrow", schema) as writer:
        for start in range(0, rows, step):
            size = min(step, rows - start)
            columns = [pa.array(np.ones(size, dtype=np.int8)), pa.array(np.full(size, 0.5))]
            writer.write_batch(pa.record_batch(columns, schema=schema))
    _write_ipc_file(pa.table({"y_true": pa.array([1, 1], pa.int8()), "y_pred": [0.5, 0.5]}), tmp_path / "small.arrow")
    small, small_value = _peak_rss_kib(["bce", str(tmp_path / "small.arrow"), "--value-only"])
    large, large_value = _peak_rss_kib(["bce", str(tmp_path / "big.arrow"), "--value-only"])
    assert float(small_value) == float(large_value) == pytest.approx(math.log(2), rel=1e-12)
    file_kib = (tmp_path / "big.arrow").stat().st_size // 1024
    assert large - small < file_kib // 3, (small, large)


def test_a_csv_beginning_with_arrow1_is_not_taken_for_an_arrow_file(runner):
    """Sniffing needs the Arrow file magic with its two bytes of padding, not the word a header may begin with."""
    stdin = b"ARROW1,y_true,y_pred\n7,1,0.5\n"
    code, out, err = _run(runner, ["bce", "-", "-y", "y_true", "-p", "y_pred", "--value-only"], input=stdin)
    assert (code, err) == (0, "")
    assert float(out) == pytest.approx(math.log(2), rel=1e-12)
