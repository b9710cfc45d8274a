"""Hive partitions: ``dump/split=a/part-0.parquet`` has the column ``split`` (issue 13), in both engines."""

from __future__ import annotations

import json
import math
from fractions import Fraction

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from cecli.cli import app
from cecli.io.expand import expand_partitioned, hive_partitions

# (folder name, the key as cecli prints it, rows of (label, prediction)): the key typed as a CSV cell.
PARTS = [
    ("split=a", "a", [(1, 0.9), (0, 0.2)]),
    ("split=7", 7, [(1, 0.6)]),
    ("split=__HIVE_DEFAULT_PARTITION__", None, [(0, 0.3), (1, 0.7)]),
]


def _loss(label: int, p: float) -> float:
    return -math.log(p) if label else -math.log1p(-p)


def _mean(values) -> float:
    return float(sum(map(Fraction, values), Fraction(0)) / len(values))


def _write(path, fmt: str, rows, real_key=None, real: bool = False) -> None:
    """One data file; with `real`, ``split`` is a column of the file holding `real_key` on every row."""
    columns = {"y": [r[0] for r in rows], "p": [r[1] for r in rows]}
    if fmt == "parquet":
        table = pa.table(columns)
        if real:
            kind = pa.string() if real_key is None or isinstance(real_key, str) else pa.int64()
            table = table.append_column("split", pa.array([real_key] * len(rows), kind))
        pq.write_table(table, path)
    else:
        header = "y,p,split" if real else "y,p"
        cell = "" if real_key is None else str(real_key)
        lines = [f"{y},{p}" + (f",{cell}" if real else "") for y, p in rows]
        path.write_text("\n".join([header, *lines]) + "\n")


def _dataset(tmp_path, fmt: str, real: bool):
    root = tmp_path / ("real" if real else "hive")
    for folder, key, rows in PARTS:
        (root / folder).mkdir(parents=True)
        _write(root / folder / f"part-0.{fmt}", fmt, rows, key, real)
    return root


def _run(runner, tmp_path, monkeypatch, args):
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, args)
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_by_a_partition_key_gives_the_groups_and_the_json_of_a_real_column(runner, tmp_path, monkeypatch, fmt):
    _dataset(tmp_path, fmt, real=False)
    _dataset(tmp_path, fmt, real=True)
    # The same file names in the same order: a glob gives no partitions, so "real" reads its own column.
    code, hive, err = _run(runner, tmp_path, monkeypatch, ["bce", "hive", "--by", "split", "-f", "json"])
    assert (code, err) == (0, "")
    by = json.loads(hive)["by"]
    # Groups in key order as cecli sorts them: numbers, then text, then null.
    expected = [(7, PARTS[1][2]), ("a", PARTS[0][2]), (None, PARTS[2][2])]
    assert [(g["key"], g["count"], g["value"]) for g in by] == [
        ({"split": key}, len(rows), _mean([_loss(*r) for r in rows])) for key, rows in expected
    ]
    code, real, err = _run(runner, tmp_path, monkeypatch, ["bce", "real/*/*", "--by", "split", "-f", "json"])
    assert (code, err) == (0, "")
    assert hive.replace('"hive/', '"real/') == real


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_keep_a_partition_key_with_top_gives_the_json_of_a_real_column(runner, tmp_path, monkeypatch, fmt):
    _dataset(tmp_path, fmt, real=False)
    _dataset(tmp_path, fmt, real=True)
    args = ["-y", "y", "-p", "p", "--keep", "split", "--top", "2", "-f", "json"]
    code, hive, err = _run(runner, tmp_path, monkeypatch, ["bce", "hive", *args])
    assert (code, err) == (0, "")
    # Files in sorted order: split=7 (row 1), split=__HIVE... (rows 2-3), split=a (rows 4-5).
    losses = {3: _loss(1, 0.7), 1: _loss(1, 0.6)}  # the two largest: -log 0.6 > -log 0.7 > -log1p(-0.3) ...
    assert _loss(1, 0.6) > _loss(1, 0.7) > max(_loss(0, 0.3), _loss(1, 0.9), _loss(0, 0.2))
    assert json.loads(hive)["top"] == [
        {"row": 1, "loss": losses[1], "split": 7},
        {"row": 3, "loss": losses[3], "split": None},
    ]
    code, real, err = _run(runner, tmp_path, monkeypatch, ["bce", "real/*/*", *args])
    assert (code, err) == (0, "")
    assert hive.replace('"hive/', '"real/') == real


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_the_dask_engine_gives_the_local_json(runner, tmp_path, monkeypatch, fmt):
    import distributed

    _dataset(tmp_path, fmt, real=False)
    args = ["bce", "hive", "-y", "y", "-p", "p", "--by", "split", "--keep", "split", "--top", "3"]
    args += ["-f", "json", "--summary-only"]
    code, local, err = _run(runner, tmp_path, monkeypatch, args)
    assert (code, err) == (0, "")
    with distributed.LocalCluster(
        processes=False, n_workers=1, threads_per_worker=1, dashboard_address="127.0.0.1:0"
    ) as cluster:
        dask = ["--engine", "dask", "--scheduler", cluster.scheduler_address]
        remote = _run(runner, tmp_path, monkeypatch, [*args, *dask])
    assert remote == (0, local, "")
    assert [g["key"]["split"] for g in json.loads(local)["by"]] == [7, "a", None]


def test_a_folder_without_keys_reads_as_its_files(runner, tmp_path, monkeypatch):
    """The automatic column rules never pick a partition key: ``y, p`` stay label and prediction."""
    _dataset(tmp_path, "parquet", real=False)
    code, out, err = _run(runner, tmp_path, monkeypatch, ["bce", "hive", "--value-only"])
    rows = [r for _, _, rows in PARTS for r in rows]
    assert (code, out, err) == (0, f"{_mean([_loss(*r) for r in rows])!r}\n", "")


def test_a_partition_key_that_is_also_a_column_is_an_error(runner, tmp_path, monkeypatch):
    (tmp_path / "dump" / "y=1").mkdir(parents=True)
    _write(tmp_path / "dump" / "y=1" / "part-0.parquet", "parquet", [(1, 0.9)])
    code, out, err = _run(runner, tmp_path, monkeypatch, ["bce", "dump", "-p", "p"])
    assert (code, out) == (3, "")
    assert err == (
        "cecli: error: dump/y=1/part-0.parquet: the partition key 'y' of the folder path is also a column of the "
        "file (rename the folder y=... or the column)\n"
    )


def test_a_file_without_the_key_has_no_column(runner, tmp_path, monkeypatch):
    (tmp_path / "dump" / "split=a").mkdir(parents=True)
    _write(tmp_path / "dump" / "split=a" / "part-0.csv", "csv", [(1, 0.9)])
    _write(tmp_path / "dump" / "z.csv", "csv", [(1, 0.6)])
    code, out, err = _run(runner, tmp_path, monkeypatch, ["bce", "dump", "--by", "split"])
    assert (code, out) == (3, "")
    assert err == (
        "cecli: error: dump/z.csv: has no column 'split' like dump/split=a/part-0.csv "
        "(every file of a dataset needs the same columns)\n"
    )


def test_a_file_given_itself_has_no_partition_columns(runner, tmp_path, monkeypatch):
    _dataset(tmp_path, "csv", real=False)
    code, out, err = _run(runner, tmp_path, monkeypatch, ["bce", "hive/split=a/part-0.csv", "--by", "split"])
    assert (code, out) == (2, "")
    assert err == "cecli: error: no column named 'split' in hive/split=a/part-0.csv (columns are: y, p)\n"


@pytest.mark.parametrize(("fmt", "types"), [("parquet", ["int64", "double"]), ("csv", ["int64", "double"])])
def test_columns_lists_the_partition_keys(runner, tmp_path, monkeypatch, fmt, types):
    _dataset(tmp_path, fmt, real=False)
    code, out, err = _run(runner, tmp_path, monkeypatch, ["columns", "hive"])
    assert (code, out, err) == (0, f"1\ty\t{types[0]}\n2\tp\t{types[1]}\n3\tsplit\tstring\n", "")


@pytest.mark.parametrize(
    ("below", "expected"),
    [
        ("part-0.parquet", {}),
        ("split=a/part-0.parquet", {"split": "a"}),
        ("raw/split=a/day=2024-01-02/p.csv", {"split": "a", "day": "2024-01-02"}),
        ("split=/p.csv", {"split": None}),
        ("split=__HIVE_DEFAULT_PARTITION__/p.csv", {"split": None}),
        ("a%3Db=x%2Fy/p.csv", {"a=b": "x/y"}),  # percent-decoded, as pyarrow's hive partitioning
        ("k=v=w/p.csv", {"k": "v=w"}),
        ("=v/p.csv", {}),
    ],
)
def test_hive_partitions(below, expected):
    assert hive_partitions(below) == expected


def test_a_key_twice_in_a_path_is_an_error(runner, tmp_path, monkeypatch):
    (tmp_path / "dump" / "k=1" / "k=2").mkdir(parents=True)
    _write(tmp_path / "dump" / "k=1" / "k=2" / "p.csv", "csv", [(1, 0.9)])
    code, out, err = _run(runner, tmp_path, monkeypatch, ["bce", "dump", "--by", "k"])
    assert (code, out) == (3, "")
    message = "the partition key 'k' names two folders of the path k=1/k=2/p.csv (use each key once per path)"
    assert err == f"cecli: error: {message}\n"


def test_a_partition_key_as_the_sample_weight(runner, tmp_path, monkeypatch):
    for w, rows in (("2", [(1, 0.9)]), ("0.5", [(0, 0.2)])):
        (tmp_path / "dump" / f"w={w}").mkdir(parents=True)
        _write(tmp_path / "dump" / f"w={w}" / "p.parquet", "parquet", rows)
    code, out, err = _run(
        runner, tmp_path, monkeypatch, ["bce", "dump", "-w", "w", "--reduction", "sum", "--value-only"]
    )
    expected = float(Fraction(0.5) * Fraction(_loss(0, 0.2)) + 2 * Fraction(_loss(1, 0.9)))
    assert (code, out, err) == (0, f"{expected!r}\n", "")


def test_expand_gives_partitions_only_below_a_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _dataset(tmp_path, "csv", real=False)
    names = ["split=7", "split=__HIVE_DEFAULT_PARTITION__", "split=a"]
    keys = ["7", None, "a"]
    assert expand_partitioned(["hive"]) == [
        (f"hive/{n}/part-0.csv", {"split": k}) for n, k in zip(names, keys, strict=True)
    ]
    assert expand_partitioned([f"file://{tmp_path}/hive"]) == [
        (f"file://{tmp_path}/hive/{n}/part-0.csv", {"split": k}) for n, k in zip(names, keys, strict=True)
    ]
    assert expand_partitioned(["hive/*/*.csv", "hive/split=a/part-0.csv"]) == [
        *((f"hive/{n}/part-0.csv", {}) for n in names),
        ("hive/split=a/part-0.csv", {}),
    ]
