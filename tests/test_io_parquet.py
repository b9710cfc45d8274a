"""Parquet row groups decoded on a pool of one thread per core (issue 19): the numbers, the order, the errors
and the clean-up are those of one thread reading the file a batch at a time."""

from __future__ import annotations

import contextlib
import json
import math
import os
import threading
from fractions import Fraction
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cecli.io.base import ReadSettings

ROW_GROUPS = (7, 13, 5, 11, 9, 8, 3)  # uneven, the last one short
ROWS = sum(ROW_GROUPS)
EPS = 1e-7  # the README's default clipping
CLASS_WEIGHTS = (0.5, 2.0, 1.0)
CORRUPT_GROUP = 4  # rows 46 to 54 (1-based)
HINT = "(the file may be truncated or corrupt)"
# Batches of 8 rows: the pool decodes the row groups of 7 and 13 rows as one piece (a piece holds at least
# a batch), the others one by one, so both kinds of piece are read. With the default 65,536 rows the whole
# file would be one piece, read on one thread.
BATCH = ("--batch-rows", "8")


def _columns() -> dict[str, list]:
    """Labels, predictions and weights for sparse, cce and bce; multiples of 1/8, so row sums are exact."""
    rng = np.random.default_rng(19)
    y = rng.integers(0, 3, ROWS)
    p = rng.integers(1, 9, (ROWS, 3)) / 8  # rows do not sum to 1: divided by their sum
    p[3, y[3]] = 0.0  # clipped up to EPS
    p[40] = 0.0
    p[40, y[40]] = 0.5  # p[y] / sum = 1: clipped down to 1 - EPS
    labels = rng.integers(0, 2, (ROWS, 2))
    q = rng.integers(0, 9, (ROWS, 2)) / 8  # 0 and 1 among them: clipped
    return {
        "id": [f"r{i}" for i in range(ROWS)],
        "y": y.tolist(),
        **{f"p_{c}": p[:, c].tolist() for c in range(3)},
        **{f"t_{c}": (y == c).astype(float).tolist() for c in range(3)},  # one-hot, for cce
        "w": (rng.integers(1, 8, ROWS) / 4).tolist(),
        "y_a": labels[:, 0].tolist(),
        "y_b": labels[:, 1].tolist(),
        "q_a": q[:, 0].tolist(),
        "q_b": q[:, 1].tolist(),
    }


COLUMNS = _columns()


def _write(path: Path, columns: dict[str, list] = COLUMNS, groups=ROW_GROUPS, **options) -> Path:
    """`columns` as a Parquet file whose row groups hold `groups` rows each, in order."""
    table = pa.table(columns)
    with pq.ParquetWriter(path, table.schema, **options) as writer:
        start = 0
        for size in groups:
            writer.write_table(table.slice(start, size))
            start += size
    metadata = pq.ParquetFile(path).metadata
    assert [metadata.row_group(g).num_rows for g in range(metadata.num_row_groups)] == list(groups)
    return path


def _clip(p: float) -> float:
    return min(max(p, EPS), 1 - EPS)


def _sparse(i: int) -> float:
    """-ln(clip(p[y] / sum(p))), the README's sparse loss."""
    row = [COLUMNS[f"p_{c}"][i] for c in range(3)]
    return -math.log(_clip(row[COLUMNS["y"][i]] / sum(row)))


def _cce(i: int) -> float:
    """-Σ w_c t_c ln(clip(p_c / sum(p))), the README's cce with class weights (0 · anything = 0)."""
    row = [COLUMNS[f"p_{c}"][i] for c in range(3)]
    total = sum(row)
    return -math.fsum(
        CLASS_WEIGHTS[c] * COLUMNS[f"t_{c}"][i] * math.log(_clip(row[c] / total))
        for c in range(3)
        if COLUMNS[f"t_{c}"][i]
    )


def _bce(i: int) -> float:
    """The mean over the two label columns of -(y ln p + (1-y) ln(1-p)), p clipped to [eps, 1-eps]."""
    terms = []
    for label, pred in (("y_a", "q_a"), ("y_b", "q_b")):
        y, p = COLUMNS[label][i], _clip(COLUMNS[pred][i])
        terms.append(-math.log(p) if y else -math.log1p(-p))
    return math.fsum(terms) / 2


def _mean(losses: list[float], rows: list[int]) -> float:
    """Σ w·l / Σ w over `rows`, summed exactly and rounded once."""
    weights = [Fraction(COLUMNS["w"][i]) for i in rows]
    return float(sum(w * Fraction(losses[i]) for w, i in zip(weights, rows, strict=True)) / sum(weights))


# ln is the platform's (libm or NumPy's SIMD log may differ in the last bit): a relative 1e-15 is a few
# units in the last place of the mean, far below any mistake in the formula, the weights or the rows.
def _close(expected: float):
    return pytest.approx(expected, rel=1e-15, abs=0)


def _open_files() -> list[str]:
    opened = []
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(FileNotFoundError):  # the listing's own descriptor, closed by now
            opened.append(os.readlink(f"/proc/self/fd/{fd}"))
    return opened


@pytest.fixture
def pool(monkeypatch):
    """``pool(n)``: cecli sees `n` cores from now on; returns the list (filled as cecli runs) of the Parquet
    pools started, each ``(workers, names of the threads that decoded)``."""
    from cecli.io import pool as pool_module

    original = pool_module.ordered_map
    runs: list[tuple[int, set[str]]] = []

    def spy(work, items, workers, *, name):
        assert name == "cecli-parquet"
        threads: set[str] = set()
        runs.append((workers, threads))

        def traced(item):
            threads.add(threading.current_thread().name)
            return work(item)

        return original(traced, items, workers, name=name)

    monkeypatch.setattr(pool_module, "ordered_map", spy)

    def cores(n: int) -> list[tuple[int, set[str]]]:
        monkeypatch.setattr(pool_module, "cores", lambda: n)
        runs.clear()
        return runs

    return cores


def _pooled(runs, workers: int) -> None:
    """One pool of `workers` threads decoded the row groups, on threads of its own."""
    assert [count for count, _ in runs] == [workers]
    threads = runs[0][1]
    assert threads and all(name.startswith("cecli-parquet_") for name in threads)


def _one_thread_and_pools(cecli, pool, *args, input=None):
    """The run on one core (streamed, no pool), checked equal, stdout and stderr, to runs on 2 and 3 cores."""
    runs = pool(1)
    streamed = cecli(*args, *BATCH, input=input)
    assert runs == []
    for workers in (2, 3):
        runs = pool(workers)
        assert cecli(*args, *BATCH, input=input) == streamed
        _pooled(runs, workers)
    return streamed


SPARSE = [_sparse(i) for i in range(ROWS)]
CCE = [_cce(i) for i in range(ROWS)]
BCE = [_bce(i) for i in range(ROWS)]
ALL = list(range(ROWS))


def _of_class(c: int) -> list[int]:
    return [i for i in ALL if COLUMNS["y"][i] == c]


@pytest.mark.parametrize(
    ("args", "losses"),
    [
        pytest.param(["sparse", "-y", "y", "-p", "p_*", "-w", "w", "--per-class"], SPARSE, id="sparse"),
        pytest.param(
            ["cce", "-y", "t_*", "-p", "p_*", "-w", "w", "--per-class", "--class-weights", "0.5,2,1"], CCE, id="cce"
        ),
        pytest.param(["bce", "-y", "y_a,y_b", "-p", "q_a,q_b", "-w", "w"], BCE, id="bce"),
    ],
)
def test_row_groups_on_a_pool_give_the_numbers_of_one_thread(tmp_path, cecli, pool, args, losses):
    _write(tmp_path / "d.parquet")
    code, out, err = _one_thread_and_pools(cecli, pool, *args, "d.parquet", "-f", "json", "--summary-only")
    assert code == 0, err
    document = json.loads(out)
    assert document["count"] == ROWS
    assert document["value"] == _close(_mean(losses, ALL))
    if "--per-class" in args:
        assert [(c["count"], c["value"]) for c in document["per_class"]] == [
            (len(_of_class(c)), _close(_mean(losses, _of_class(c)))) for c in range(3)
        ]


@pytest.mark.parametrize("batch_rows", ["4", "8"])  # several batches per row group, or row groups joined
@pytest.mark.parametrize("fmt", ["ndjson", "csv"])
@pytest.mark.parametrize("groups", [ROW_GROUPS, (0, 7, 13, 5, 0, 11, 9, 8, 3, 0)], ids=["groups", "empty-groups"])
def test_per_sample_rows_come_in_file_order_across_row_groups(tmp_path, cecli, pool, batch_rows, fmt, groups):
    path = _write(tmp_path / "d.parquet", groups=groups)
    args = ["sparse", "d.parquet", "-y", "y", "-p", "p_*", "--keep", "id", "-f", fmt, "--batch-rows", batch_rows]
    before = set(threading.enumerate())
    code, out, err = _one_thread_and_pools(cecli, pool, *args)
    assert code == 0, err
    if fmt == "ndjson":
        rows = [json.loads(line) for line in out.splitlines()]
        assert [(row["row"], row["id"]) for row in rows] == [(i + 1, f"r{i}") for i in ALL]
        losses = [row["loss"] for row in rows]
    else:
        lines = out.splitlines()
        assert lines[0] == "row,loss,id"
        cells = [line.split(",") for line in lines[1:]]
        assert [(int(row), id_) for row, _, id_ in cells] == [(i + 1, f"r{i}") for i in ALL]
        losses = [float(loss) for _, loss, _ in cells]
    assert losses == [_close(loss) for loss in SPARSE]
    # Finished: the pool's threads have ended and every reader it opened is closed.
    assert [t.name for t in threading.enumerate() if t not in before and t.name.startswith("cecli-")] == []
    assert str(path) not in _open_files()


def _decoded_sizes(path: Path, names: list[str]) -> list[int]:
    from cecli.io.parquet import _decoded_bytes

    metadata = pq.ParquetFile(path).metadata
    return [_decoded_bytes(metadata.row_group(g), names) for g in range(metadata.num_row_groups)]


@pytest.mark.parametrize(("over", "pooled"), [(0, True), (1, False)], ids=["largest-within", "largest-beyond"])
def test_a_row_group_beyond_the_budget_streams_the_file_on_one_thread(tmp_path, pool, over, pooled):
    """The caller's batch budget (`ReadSettings.batch_bytes`) also bounds what the pool decodes at once."""
    import cecli

    path = _write(tmp_path / "d.parquet")
    sizes = _decoded_sizes(path, ["y", "p_0", "p_1", "p_2"])
    assert len(set(sizes)) > 1  # the groups differ: one of them alone decides
    read = ReadSettings(batch_rows=int(BATCH[1]), batch_bytes=max(sizes) - over)
    runs = pool(1)
    streamed = cecli.compute("sparse", str(path), y="y", p="p_*", read=read)
    runs = pool(2)
    result = cecli.compute("sparse", str(path), y="y", p="p_*", read=read)
    if pooled:
        _pooled(runs, 2)
    else:
        assert runs == []
    assert result.to_dict() == streamed.to_dict()
    assert result.per_sample.tolist() == [_close(loss) for loss in SPARSE]


@pytest.mark.parametrize(
    ("groups", "rows", "budget", "pieces"),
    [
        ((7, 13, 5, 11, 9, 8, 3), 8, "ample", [[0, 1], [2, 3], [4], [5], [6]]),  # joined until a batch's rows
        ((7, 13, 5, 11, 9, 8, 3), 65536, "ample", [[0, 1, 2, 3, 4, 5, 6]]),  # the whole file: one piece
        ((7, 13, 5, 11, 9, 8, 3), 1, "ample", [[0], [1], [2], [3], [4], [5], [6]]),
        ((4, 4, 4, 4), 100, "two groups", [[0, 1], [2, 3]]),  # the budget, not the rows, ends each piece
        ((4, 4, 4, 4), 100, "under one group", None),  # one group alone is beyond the budget: no pieces
    ],
)
def test_row_groups_are_joined_into_pieces_of_a_batch_within_the_budget(tmp_path, groups, rows, budget, pieces):
    from cecli.io.parquet import _decoded_bytes, _pieces

    path = _write(tmp_path / "d.parquet", {"x": [float(i) for i in range(sum(groups))]}, groups=groups)
    metadata = pq.ParquetFile(path).metadata
    sizes = [_decoded_bytes(metadata.row_group(g), ["x"]) for g in range(len(groups))]
    bytes_ = {"ample": 1 << 20, "two groups": sizes[0] + sizes[1], "under one group": max(sizes) - 1}[budget]
    assert _pieces(metadata, ["x"], rows, bytes_) == pieces


def test_small_row_groups_make_batches_of_the_batch_size_on_the_pool(tmp_path, pool):
    """1,000-row groups decoded one by one made 1,000-row batches (twice the time); joined, they make full ones."""
    from cecli.io.sources import open_input

    groups = (3,) * 10 + (2,) * 5  # 40 rows
    path = _write(tmp_path / "d.parquet", {"x": [float(i) for i in range(40)]}, groups=groups)
    sizes = {}
    for cores in (1, 2):
        runs = pool(cores)
        opened = open_input(str(path))
        try:
            batches = list(opened.record_batches(["x"], ReadSettings(batch_rows=8)))
        finally:
            opened.close()
        assert [x for b in batches for x in b.column("x").to_pylist()] == [float(i) for i in range(40)]
        sizes[cores] = [b.num_rows for b in batches]
        assert bool(runs) == (cores == 2)
    assert sizes[1] == [8] * 5  # one thread reads batches across the row groups
    # The pool's pieces: 3+3+3 rows, three times, then 3+2+2+2 and 2+2: a batch each, its last one short.
    assert sizes[2] == [8, 1, 8, 1, 8, 1, 8, 1, 4]


def test_a_large_column_chunk_is_read_through_a_buffer_not_whole(tmp_path):
    """pyarrow reads a column chunk whole unless given a buffer size: a 32 MB chunk would sit in memory
    beside every batch decoded from it (the softmax bench file peaked at 402 MiB instead of 206 MiB)."""
    from cecli.io.sources import open_input

    rows = 1 << 22  # 32 MiB of float64 in one chunk, uncompressed and plain so it cannot shrink
    path = tmp_path / "one-chunk.parquet"
    table = pa.table({"x": np.arange(rows, dtype=np.float64)})
    pq.write_table(table, path, row_group_size=rows, compression="none", use_dictionary=False)
    assert pq.ParquetFile(path).metadata.row_group(0).column(0).total_compressed_size > rows * 8
    opened = open_input(str(path))
    allocated = []
    try:
        before = pa.total_allocated_bytes()
        for batch in opened.record_batches(["x"], ReadSettings(batch_rows=1 << 16)):
            allocated.append(pa.total_allocated_bytes() - before)
            del batch
    finally:
        opened.close()
    assert len(allocated) == rows >> 16
    # A batch is 0.5 MiB and the buffer 1 MiB; the whole chunk would be 32 MiB.
    assert max(allocated) < 8 << 20


@pytest.mark.parametrize("case", ["one-row-group", "url"])
def test_a_file_of_one_row_group_and_a_url_stream_on_one_thread(tmp_path, cecli, pool, case):
    path = _write(tmp_path / "d.parquet", groups=(ROWS,) if case == "one-row-group" else ROW_GROUPS)
    source = path.as_uri() if case == "url" else "d.parquet"
    runs = pool(2)
    code, out, err = cecli("sparse", source, "-y", "y", "-p", "p_*", "-w", "w", "--value-only", "-q")
    assert runs == []
    assert (code, err) == (0, "")
    assert float(out) == _close(_mean(SPARSE, ALL))


def test_a_file_on_stdin_is_decoded_on_the_pool_as_a_file_is(tmp_path, cecli, pool):
    path = _write(tmp_path / "d.parquet")
    per_sample = ["sparse", "-y", "y", "-p", "p_*", "-w", "w", "--keep", "id", "-f", "ndjson", *BATCH]
    summary = ["sparse", "-y", "y", "-p", "p_*", "-w", "w", "--per-class", "-f", "json", "--summary-only", *BATCH]
    pool(1)
    from_file = [cecli(*per_sample, "d.parquet"), cecli(*summary, "d.parquet")]
    runs = pool(2)
    piped = [cecli(*per_sample, "-", input=path.read_bytes()), cecli(*summary, "-", input=path.read_bytes())]
    assert [workers for workers, _ in runs] == [2, 2]
    assert piped[0] == from_file[0]
    assert piped[1][0] == 0
    document, expected = json.loads(piped[1][1]), json.loads(from_file[1][1])
    assert (document["input"]["path"], document["input"]["paths"]) == ("<stdin>", ["<stdin>"])
    document["input"] |= {"path": "d.parquet", "paths": ["d.parquet"]}
    assert document == expected
    assert document["value"] == _close(_mean(SPARSE, ALL))


def _corrupt(path: Path, group: int) -> str:
    """Zero the column chunk of `y` in row group `group` of `path`; pyarrow's own error reading it."""
    chunks = pq.ParquetFile(path).metadata.row_group(group)
    column = next(chunks.column(i) for i in range(chunks.num_columns) if chunks.column(i).path_in_schema == "y")
    assert column.dictionary_page_offset is None
    data = bytearray(path.read_bytes())
    start, size = column.data_page_offset, column.total_compressed_size
    data[start : start + size] = bytes(size)
    path.write_bytes(bytes(data))
    reader = pq.ParquetFile(path)
    for other in range(reader.metadata.num_row_groups):  # only that row group is unreadable
        if other != group:
            assert reader.read_row_group(other).num_rows == ROW_GROUPS[other]
    with pytest.raises(OSError) as caught:
        reader.read_row_group(group)
    reader.close()
    assert "Deserializing page header failed" in str(caught.value)
    return "; ".join(line.strip() for line in str(caught.value).splitlines() if line.strip())


def _ended_and_closed(before: set[threading.Thread], path: Path) -> None:
    """No reader thread or decoding thread of the run is alive, and no descriptor of `path` is open."""
    alive = [t.name for t in threading.enumerate() if t not in before]
    assert [name for name in alive if name.startswith(("cecli-parquet", "cecli-reader"))] == []
    assert str(path) not in _open_files()


@pytest.mark.parametrize("cores", [1, 2, 3])
def test_a_corrupt_later_row_group_is_one_error_line_and_everything_is_closed(tmp_path, cecli, pool, cores):
    path = _write(tmp_path / "bad.parquet", use_dictionary=False, compression="none")
    error = _corrupt(path, CORRUPT_GROUP)
    runs = pool(cores)
    before = set(threading.enumerate())
    code, out, err = cecli("sparse", "bad.parquet", "-y", "y", "-p", "p_*", "--keep", "id", "-f", "ndjson", *BATCH)
    assert (code, out, err) == (3, "", f"cecli: error: bad.parquet: cannot read Parquet data: {error} {HINT}\n")
    assert [workers for workers, _ in runs] == ([cores] if cores > 1 else [])
    _ended_and_closed(before, path)


@pytest.mark.parametrize("cores", [1, 2])
@pytest.mark.parametrize(
    ("bad_row", "corrupt"),
    [(50, False), (23, True)],  # 0-based: in row group 5; in row group 2, before the corrupt row group 4
    ids=["late-label", "label-before-a-corrupt-group"],
)
def test_a_bad_label_in_a_row_group_stops_the_run_at_its_record(tmp_path, cecli, pool, cores, bad_row, corrupt):
    columns = {**COLUMNS, "y": [7 if i == bad_row else y for i, y in enumerate(COLUMNS["y"])]}
    path = _write(tmp_path / "bad.parquet", columns, use_dictionary=False, compression="none")
    if corrupt:
        _corrupt(path, CORRUPT_GROUP)
    runs = pool(cores)
    before = set(threading.enumerate())
    # One thread reads batches of --batch-rows rows across row groups: a batch holding both the bad label and
    # the corrupt row group would report the corrupt group, found first (README: the first bad value found).
    batch_rows = "5" if corrupt else BATCH[1]
    code, out, err = cecli("sparse", "bad.parquet", "-y", "y", "-p", "p_*", "-f", "json", "--batch-rows", batch_rows)
    message = f"bad.parquet:{bad_row + 1}:y: label 7 is out of range for 3 classes (labels must be in [0, 2])"
    assert (code, out, err) == (3, "", f"cecli: error: {message}\n")
    assert [workers for workers, _ in runs] == ([cores] if cores > 1 else [])
    _ended_and_closed(before, path)


def test_the_decoded_size_counts_values_times_their_width_where_encoding_hides_it(tmp_path):
    from cecli.io.parquet import _decoded_bytes

    rows = 1000
    table = pa.table(
        {
            "low": pa.array([0.25, 0.5] * (rows // 2), pa.float32()),  # dictionary-encoded: tiny in the file
            "plain": pa.array(np.arange(rows, dtype=np.float64)),  # not dictionary-encoded: levels and headers too
            "text": pa.array([f"row number {i}" for i in range(rows)]),
            "probs": pa.array([[0.25, 0.5, 0.25]] * rows, pa.list_(pa.float64())),
            "other": pa.array(np.arange(rows, dtype=np.float64)),
        }
    )
    path = tmp_path / "d.parquet"
    pq.write_table(table, path, use_dictionary=["low", "probs.list.element"])
    group = pq.ParquetFile(path).metadata.row_group(0)
    chunks = {group.column(i).path_in_schema: group.column(i) for i in range(group.num_columns)}
    assert set(chunks) == {"low", "plain", "text", "probs.list.element", "other"}
    # Premises: the dictionary hides the width, the plain column is larger than its values, text has none.
    assert chunks["low"].total_uncompressed_size < rows * 4
    assert chunks["probs.list.element"].total_uncompressed_size < rows * 3 * 8
    assert chunks["plain"].total_uncompressed_size > rows * 8
    cases = {
        ("low",): rows * 4,
        ("plain",): chunks["plain"].total_uncompressed_size,
        ("text",): chunks["text"].total_uncompressed_size,
        ("probs",): rows * 3 * 8,  # the list's leaf, "probs.list.element"
        ("low", "text", "probs"): rows * 4 + chunks["text"].total_uncompressed_size + rows * 3 * 8,
    }
    assert {names: _decoded_bytes(group, list(names)) for names in cases} == cases
    assert _decoded_bytes(group, []) == 0  # "other" and the rest are not selected: not counted


@pytest.mark.parametrize("cores", [1, 2])
def test_a_bad_label_raised_to_a_caller_who_keeps_it_leaves_no_pool_or_reader_open(tmp_path, pool, cores):
    """From Python: the pool's threads and readers are gone before the error reaches the caller, who may keep
    it with its frames (a notebook keeps the last one); nothing waits for the garbage collector."""
    import gc

    import cecli

    columns = {**COLUMNS, "y": [7 if i == 50 else y for i, y in enumerate(COLUMNS["y"])]}
    path = _write(tmp_path / "bad.parquet", columns)
    runs = pool(cores)
    before = set(threading.enumerate())
    gc.collect()
    gc.disable()
    try:
        with pytest.raises(cecli.DataError) as caught:
            cecli.compute("sparse", str(path), y="y", p="p_*", read=ReadSettings(batch_rows=int(BATCH[1])))
        kept = caught.value  # noqa: F841 - held, with its traceback
        _ended_and_closed(before, path)
    finally:
        gc.enable()
    assert str(caught.value) == f"{path}:51:y: label 7 is out of range for 3 classes (labels must be in [0, 2])"
    assert (caught.value.row, caught.value.column) == (51, "y")
    assert [workers for workers, _ in runs] == ([cores] if cores > 1 else [])


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    groups=st.lists(st.integers(0, 12), min_size=1, max_size=8).filter(any),
    batch_rows=st.integers(1, 10),
    cores=st.integers(2, 3),
    weighted=st.booleans(),
)
def test_any_row_groups_and_batch_size_give_one_threads_result_on_the_pool(
    tmp_path_factory, pool, groups, batch_rows, cores, weighted
):
    """Whatever the row groups (empty ones too) and the batch size, the pool's result is one thread's."""
    import cecli
    from cecli.io.parquet import _pieces

    rows = sum(groups)  # at most 96: the test's 56 rows twice over are enough
    columns = {name: (values * 2)[:rows] for name, values in COLUMNS.items()}
    path = _write(tmp_path_factory.mktemp("groups") / "d.parquet", columns, groups=groups)
    keywords = {"y": "y", "p": "p_*", "weight": "w" if weighted else None, "read": ReadSettings(batch_rows=batch_rows)}
    results = []
    for workers in (1, cores):
        runs = pool(workers)
        results.append(cecli.compute("sparse", str(path), **keywords))
    one, pooled = results
    names = ["y", "p_0", "p_1", "p_2"] + (["w"] if weighted else [])
    pieces = _pieces(pq.ParquetFile(path).metadata, names, batch_rows, ReadSettings().batch_bytes)
    assert [workers for workers, _ in runs] == ([cores] if len(pieces) > 1 else [])  # the pool ran when it could
    assert pooled.to_dict() == one.to_dict()
    assert pooled.per_sample.tolist() == one.per_sample.tolist()
    assert one.per_sample.tolist() == [_close(loss) for loss in (SPARSE * 2)[:rows]]


def test_a_machine_of_many_cores_decodes_on_at_most_four_threads(tmp_path, cecli, pool):
    """Beyond a few decoders the main thread's math is the limit: more would only hold more row groups."""
    _write(tmp_path / "d.parquet")
    runs = pool(64)
    code, out, err = cecli("sparse", "d.parquet", "-y", "y", "-p", "p_*", "--value-only", "-q", *BATCH)
    assert (code, err) == (0, "")
    assert float(out) == _close(float(sum(map(Fraction, SPARSE)) / ROWS))
    _pooled(runs, 4)
