"""NumPy inputs (issue 17): ``.npy`` and ``.npz`` read like the same columns in Parquet.

The same arrays written as ``.npy``/``.npz`` and as Parquet must give byte-identical output (the ``input``
object aside, which names the files and their format) — or, for data cecli refuses, the same error line
naming the other file; the seed examples anchor the numbers to values computed elsewhere
(tests/data/seed_examples.json). Error lines are written out in full.
"""

from __future__ import annotations

import gzip
import io
import json
import math
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cecli.cli import app

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SEED_CASES = json.loads((PROJECT_ROOT / "tests/data/seed_examples.json").read_text())["cases"]
BAD_INPUT = 3
SEED_BCE = {"y_true": [0, 1, 1, 0, 0, 1, 1], "y_pred": [0.07, 0.91, 0.74, 0.23, 0.85, 0.17, 0.94]}
SEED_BCE_SUM = 4.460303459760249  # the seed article's printed sum (tests/data/seed_examples.json)


def _arrow(array: np.ndarray) -> pa.Array:
    """A NumPy column as Parquet would hold it: values, or rows of a 2-D array as a fixed-size list."""
    array = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("="))
    if array.ndim == 2:
        return pa.FixedSizeListArray.from_arrays(pa.array(array.reshape(-1)), array.shape[1])
    return pa.array(array)


def _parquet(path: Path, columns: dict[str, np.ndarray]) -> Path:
    pq.write_table(pa.table({name: _arrow(array) for name, array in columns.items()}), path)
    return path


def _run(runner, args: list[str], input: bytes | None = None) -> tuple[int, str, str]:
    result = runner.invoke(app, args, input=input, prog_name="cecli")
    return result.exit_code, result.stdout, result.stderr


def _comparable(code: int, out: str, err: str, path: Path) -> tuple:
    """An outcome without what names the input: the JSON's ``input`` paths and format, the file in an error."""
    if code == 0 and out.startswith('{"schema_version"'):  # the JSON document (not NDJSON lines)
        document = json.loads(out)
        for key in ("path", "paths", "format", "labels_path"):
            document["input"].pop(key)
        out = json.dumps(document)
    return code, out, err.replace(str(path), "FILE")


# --------------------------------------------------------------------------- the seed examples


@pytest.mark.parametrize("layout", ["npz", "npz compressed", "npy pair"])
@pytest.mark.parametrize("name", [c["name"] for c in SEED_CASES])
def test_seed_examples_read_from_numpy_equal_parquet(name, layout, runner, tmp_path):
    case = next(c for c in SEED_CASES if c["name"] == name)
    columns = {key: np.array(case[key]) for key in ("y_true", "y_pred") if key in case}
    base = ["--base", str(case["base"])] if "base" in case else []
    if layout == "npy pair":
        for key, array in columns.items():
            np.save(tmp_path / f"{key}.npy", array)
            _parquet(tmp_path / f"{key}.parquet", {key: array})
        labels = ["--labels"] if "y_true" in columns else []
        args = [[case["command"], str(tmp_path / f"y_pred.{ext}"), *labels] for ext in ("npy", "parquet")]
        if labels:
            args = [a + [str(tmp_path / f"y_true.{ext}")] for a, ext in zip(args, ("npy", "parquet"), strict=True)]
    else:
        (np.savez_compressed if "compressed" in layout else np.savez)(tmp_path / "seed.npz", **columns)
        _parquet(tmp_path / "seed.parquet", columns)
        args = [[case["command"], str(tmp_path / f"seed.{ext}")] for ext in ("npz", "parquet")]
    (code, out, err), (p_code, p_out, p_err) = (_run(runner, [*a, "-f", "json", *base]) for a in args)
    assert (code, err, p_code, p_err) == (0, "", 0, "")
    document = json.loads(p_out)
    assert document["per_sample"] == pytest.approx(case["expected"]["per_sample"], rel=1e-12)
    assert document["mean"] == pytest.approx(case["expected"]["mean"], rel=1e-12)
    assert json.loads(out)["input"]["format"] == layout[:3]
    assert _comparable(code, out, err, tmp_path) == _comparable(p_code, p_out, p_err, tmp_path)


# ------------------------------------------------------------- random inputs, with --by, --per-class, --keep

_PROBABILITY_TYPES = ["<f8", ">f8", "<f4", ">f4", "<f2"]
_LABEL_TYPES = ["<i8", "<i1", ">i2", "<u2", ">u8"]


@st.composite
def _arrays(draw) -> dict[str, np.ndarray]:
    n = draw(st.integers(1, 25))
    c = draw(st.integers(2, 5))
    weights = draw(st.lists(st.lists(st.floats(1e-3, 1.0), min_size=c, max_size=c), min_size=n, max_size=n))
    probs = np.array([[w / math.fsum(row) for w in row] for row in weights]).astype(
        draw(st.sampled_from(_PROBABILITY_TYPES))
    )
    if draw(st.booleans()):
        probs = np.asfortranarray(probs)  # saved with fortran_order: True
    labels = np.array(draw(st.lists(st.integers(0, c - 1), min_size=n, max_size=n)))
    return {
        "label": labels.astype(draw(st.sampled_from(_LABEL_TYPES))),
        "probs": probs,
        "g": np.array(draw(st.lists(st.sampled_from(["a", "b", "cc"]), min_size=n, max_size=n))),
        "id": np.array(draw(st.lists(st.integers(-(2**40), 2**40), min_size=n, max_size=n)), dtype=">i8"),
    }


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(columns=_arrays(), compressed=st.booleans(), rows=st.integers(1, 7))
def test_random_arrays_read_from_npz_equal_parquet(columns, compressed, rows, runner, tmp_path):
    npz = tmp_path / "r.npz"
    (np.savez_compressed if compressed else np.savez)(npz, **columns)
    parquet = _parquet(tmp_path / "r.parquet", columns)
    for extra in (["--by", "g", "--per-class", "-f", "json"], ["--keep", "id,g", "-f", "ndjson"]):
        options = ["-y", "label", "-p", "probs", "--batch-rows", str(rows), *extra]
        expected = _comparable(*_run(runner, ["sparse", str(parquet), *options]), parquet)
        assert _comparable(*_run(runner, ["sparse", str(npz), *options]), npz) == expected


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(columns=_arrays(), rows=st.integers(1, 7))
def test_random_npy_pairs_equal_parquet(columns, rows, runner, tmp_path):
    """``cecli softmax logits.npy --labels labels.npy``: the file names are the column names."""
    logits = np.log(columns["probs"].astype(np.float64)).astype(columns["probs"].dtype)
    logits = np.asfortranarray(logits) if columns["probs"].flags.f_contiguous else logits
    np.save(tmp_path / "logits.npy", logits)
    np.save(tmp_path / "labels.npy", columns["label"])
    _parquet(tmp_path / "logits.parquet", {"logits": logits})
    _parquet(tmp_path / "labels.parquet", {"labels": columns["label"]})
    outcomes = []
    for ext in ("npy", "parquet"):
        args = ["softmax", str(tmp_path / f"logits.{ext}"), "--labels", str(tmp_path / f"labels.{ext}")]
        outcome = _run(runner, [*args, "--batch-rows", str(rows), "--per-class", "-f", "json"])
        outcomes.append(_comparable(*outcome, tmp_path))
    assert outcomes[0] == outcomes[1]
    assert outcomes[0][0] == 0


def test_a_record_array_is_one_column_per_field(runner, tmp_path):
    records = np.zeros(7, dtype=[("y", ">i4"), ("p", "<f8"), ("v", "<f4", (2,)), ("name", "U3")])
    records["y"], records["p"] = SEED_BCE["y_true"], SEED_BCE["y_pred"]
    records["v"] = np.stack([1 - records["p"], records["p"]], axis=1)
    records["name"] = list("abcdefg")
    np.save(tmp_path / "rec.npy", records)
    code, out, err = _run(runner, ["columns", str(tmp_path / "rec.npy")])
    assert (code, err) == (0, "")
    assert out == "1\ty\tint32\n2\tp\tdouble\n3\tv\tfixed_size_list<item: float>[2]\n4\tname\tstring\n"
    code, out, err = _run(
        runner, ["bce", str(tmp_path / "rec.npy"), "-y", "y", "-p", "p", "--reduction", "sum", "--value-only"]
    )
    assert (code, err) == (0, "")
    assert float(out) == pytest.approx(SEED_BCE_SUM, rel=1e-12)
    columns = {"y": records["y"], "p": records["p"], "v": records["v"], "name": records["name"]}
    parquet = _parquet(tmp_path / "rec.parquet", columns)
    options = ["-y", "y", "-p", "v", "--keep", "name,p", "-f", "ndjson"]
    expected = _comparable(*_run(runner, ["sparse", str(parquet), *options]), parquet)
    assert _comparable(*_run(runner, ["sparse", str(tmp_path / "rec.npy"), *options]), tmp_path / "rec.npy") == expected


# --------------------------------------------------------------------------- streaming and memory


def _peak_rss_kib(args: list[str]) -> tuple[int, str]:
    """Peak resident memory (KiB) of one cecli process, measured by a fresh parent that has no other child."""
    probe = (
        "import resource, subprocess, sys\n"
        "result = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, result.returncode, result.stdout.strip())\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe, sys.executable, "-m", "cecli", *args], capture_output=True, text=True, timeout=120
    ).stdout.split()
    assert out[1] == "0", out
    return int(out[0]), out[2]


def test_a_large_npy_streams_in_bounded_memory(tmp_path):
    """200 MB of probabilities (25M rows) in blocks of 65,536 rows: the peak memory is not the file's size.

    Without releasing the mapped pages of each block, the peak grows by the whole file (measured: +450 MB for
    400 MB); with it by a few blocks. Every row is p = 0.5 with label 1, so the mean is ln 2 exactly computed.
    """
    rows = 25_000_000
    probs = np.lib.format.open_memmap(tmp_path / "p.npy", mode="w+", dtype=np.float64, shape=(rows,))
    probs[:] = 0.5
    del probs
    np.save(tmp_path / "y.npy", np.ones(rows, dtype=np.int8))
    np.save(tmp_path / "p_small.npy", np.array([0.5, 0.5]))
    np.save(tmp_path / "y_small.npy", np.array([1, 1], dtype=np.int8))
    small, small_value = _peak_rss_kib(
        ["bce", str(tmp_path / "p_small.npy"), "--labels", str(tmp_path / "y_small.npy"), "--value-only"]
    )
    large, large_value = _peak_rss_kib(
        ["bce", str(tmp_path / "p.npy"), "--labels", str(tmp_path / "y.npy"), "--value-only"]
    )
    assert float(small_value) == float(large_value) == pytest.approx(math.log(2), rel=1e-12)
    file_kib = (rows * 8 + rows) // 1024
    assert large - small < file_kib // 3, (small, large)  # 75 MB of slack for 225 MB of files


def test_npy_on_stdin_in_a_real_process(tmp_path):
    np.save(tmp_path / "y_pred.npy", np.array(SEED_BCE["y_pred"]))
    np.save(tmp_path / "y_true.npy", np.array(SEED_BCE["y_true"]))
    with (tmp_path / "y_pred.npy").open("rb") as stdin:
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "cecli",
                "bce",
                "-",
                "--labels",
                str(tmp_path / "y_true.npy"),
                "--reduction",
                "sum",
                "--value-only",
            ],
            stdin=stdin,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert (result.returncode, result.stderr) == (0, "")
    assert float(result.stdout) == pytest.approx(SEED_BCE_SUM, rel=1e-12)


@pytest.mark.parametrize("fortran", [False, True])
def test_compressed_npy_and_npz_are_read_as_they_come(fortran, runner, tmp_path):
    probs = np.stack([1 - np.array(SEED_BCE["y_pred"]), SEED_BCE["y_pred"]], axis=1)
    probs = np.asfortranarray(probs) if fortran else probs
    buffer = io.BytesIO()
    np.save(buffer, probs)
    (tmp_path / "probs.npy.gz").write_bytes(gzip.compress(buffer.getvalue()))
    np.save(tmp_path / "labels.npy", np.array(SEED_BCE["y_true"]))
    args = ["sparse", str(tmp_path / "probs.npy.gz"), "--labels", str(tmp_path / "labels.npy"), "--reduction", "sum"]
    code, out, err = _run(runner, [*args, "--batch-rows", "3", "--value-only"])
    assert (code, err) == (0, "")
    assert float(out) == pytest.approx(SEED_BCE_SUM, rel=1e-12)
    np.savez_compressed(tmp_path / "both.npz", labels=np.array(SEED_BCE["y_true"]), probs=probs)
    (tmp_path / "both.npz.gz").write_bytes(gzip.compress((tmp_path / "both.npz").read_bytes()))
    np.savez(tmp_path / "stored.npz", labels=np.array(SEED_BCE["y_true"]), probs=probs)  # read in memory when gzipped
    (tmp_path / "stored.npz.gz").write_bytes(gzip.compress((tmp_path / "stored.npz").read_bytes()))
    for path in ("both.npz", "both.npz.gz", "stored.npz.gz"):
        code, out, err = _run(
            runner, ["sparse", str(tmp_path / path), "--reduction", "sum", "--batch-rows", "3", "--value-only"]
        )
        assert (code, err) == (0, ""), path
        assert float(out) == pytest.approx(SEED_BCE_SUM, rel=1e-12), path


def test_a_bad_value_is_named_by_its_row_across_blocks(runner, tmp_path):
    probs = np.array(SEED_BCE["y_pred"])
    probs[5] = np.nan
    np.savez(tmp_path / "bad.npz", y_true=np.array(SEED_BCE["y_true"]), y_pred=probs)
    code, out, err = _run(runner, ["bce", str(tmp_path / "bad.npz"), "--batch-rows", "2"])
    assert (code, out) == (BAD_INPUT, "")
    assert err == (
        f"cecli: error: {tmp_path / 'bad.npz'}:6:y_pred: probability is NaN "
        "(remove or fix rows with missing or infinite values)\n"
    )
    parquet = _parquet(tmp_path / "bad.parquet", {"y_true": np.array(SEED_BCE["y_true"]), "y_pred": probs})
    assert _run(runner, ["bce", str(parquet), "--batch-rows", "2"])[2] == err.replace("bad.npz", "bad.parquet")


# --------------------------------------------------------------------------- refusals


def _npy_bytes(array: np.ndarray, *, allow_pickle: bool = False) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=allow_pickle)
    return buffer.getvalue()


_OBJECTS = (
    "an array of Python objects (dtype object): cecli never loads those, as loading them can run code "
    "(save numbers or text instead, e.g. np.save(path, array.astype(float)))"
)


@pytest.mark.parametrize(
    ("array", "reason"),
    [
        (np.array([0.5, "x"], dtype=object), _OBJECTS),
        (
            np.zeros((2, 2, 2)),
            "a 3-D array (shape (2, 2, 2)); cecli reads 1-D arrays (one value a row) and 2-D ones "
            "(one class vector a row) (reshape it to 1-D or 2-D before saving)",
        ),
        (
            np.float64(0.5),
            "a 0-D array (shape ()); cecli reads 1-D arrays (one value a row) and 2-D ones "
            "(one class vector a row) (reshape it to 1-D or 2-D before saving)",
        ),
        (np.zeros(3, dtype=complex), "holds complex numbers, which cecli does not read (save float64 numbers instead)"),
        (np.zeros((3, 0)), "has rows of no values (shape (3, 0)) (save one value per class)"),
        (
            np.zeros(3, dtype="datetime64[Y]"),  # Arrow has no dates counted in years
            "holds values of dtype datetime64[Y], which cecli does not read (save float64 numbers instead)",
        ),
        (
            np.zeros(3, dtype=np.longdouble),
            f"holds {np.dtype(np.longdouble)} numbers (longdouble), which cecli does not read "
            "(save float64 numbers instead)",
        ),
    ],
    ids=["objects", "3-D", "0-D", "complex", "no classes", "years", "longdouble"],
)
def test_arrays_cecli_does_not_read_are_refused_in_one_line(array, reason, runner, tmp_path):
    path = tmp_path / "x.npy"
    path.write_bytes(_npy_bytes(array, allow_pickle=True))
    code, out, err = _run(runner, ["entropy", str(path)])
    assert (code, out, err) == (BAD_INPUT, "", f"cecli: error: {path}: {reason}\n")
    # The same array inside a .npz is named; on stdin the .npy is refused alike.
    (tmp_path / "x.npz").write_bytes(_zip({"p.npy": _npy_bytes(array, allow_pickle=True)}))
    code, out, err = _run(runner, ["entropy", str(tmp_path / "x.npz")])
    assert (code, out, err) == (BAD_INPUT, "", f"cecli: error: {tmp_path / 'x.npz'}: array 'p': {reason}\n")
    code, out, err = _run(runner, ["entropy", "-"], input=path.read_bytes())
    assert (code, out, err) == (BAD_INPUT, "", f"cecli: error: <stdin>: {reason}\n")


def _zip(members: dict[str, bytes], compression: int = zipfile.ZIP_STORED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=compression) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def test_a_pickle_in_a_npz_is_never_loaded(runner, tmp_path):
    """A member holding a pickle that would run code if loaded: refused from its header, before any data is read."""
    evil = np.array([print], dtype=object)  # np.load(allow_pickle=True) would unpickle a reference to print
    path = tmp_path / "evil.npz"
    path.write_bytes(
        _zip({"y.npy": _npy_bytes(np.array([1])), "p.npy": _npy_bytes(evil, allow_pickle=True)}, zipfile.ZIP_DEFLATED)
    )
    code, out, err = _run(runner, ["bce", str(path)])
    assert (code, out, err) == (BAD_INPUT, "", f"cecli: error: {path}: array 'p': {_OBJECTS}\n")


def test_truncated_npy_is_refused_in_one_line(runner, tmp_path):
    data = _npy_bytes(np.array(SEED_BCE["y_pred"]))
    path = tmp_path / "cut.npy"
    path.write_bytes(data[:-12])  # the last row and a half are lost: 5 whole rows are left
    np.save(tmp_path / "y.npy", np.array(SEED_BCE["y_true"]))
    code, out, err = _run(runner, ["bce", str(path), "--labels", str(tmp_path / "y.npy")])
    assert (code, out) == (BAD_INPUT, "")
    assert err == (
        f"cecli: error: {path}: the array is truncated: its header announces 7 rows, the data holds 5 "
        "(the file may be truncated or corrupt)\n"
    )
    # Read as it comes (stdin), the end is found in the row it cuts.
    code, out, err = _run(runner, ["bce", "-", "--labels", str(tmp_path / "y.npy")], input=data[:-12])
    assert (code, out) == (BAD_INPUT, "")
    assert err == (
        "cecli: error: <stdin>:6: the array ends within this row, of the 7 rows its header announces "
        "(the file may be truncated or corrupt)\n"
    )


def test_npz_arrays_of_different_lengths_are_refused(runner, tmp_path):
    path = tmp_path / "uneven.npz"
    np.savez(path, y_true=np.array(SEED_BCE["y_true"]), y_pred=np.array(SEED_BCE["y_pred"][:6]))
    code, out, err = _run(runner, ["bce", str(path)])
    assert (code, out) == (BAD_INPUT, "")
    assert err == (
        f"cecli: error: {path}: arrays 'y_true' (7 rows) and 'y_pred' (6 rows) differ in length "
        "(the columns read together need one row each per record)\n"
    )


def test_a_zip_member_that_is_not_an_array_is_refused(runner, tmp_path):
    path = tmp_path / "notes.npz"
    path.write_bytes(_zip({"y_pred.npy": _npy_bytes(np.array([0.5])), "README.txt": b"hello"}))
    code, out, err = _run(runner, ["entropy", str(path)])
    assert (code, out, err) == (
        BAD_INPUT,
        "",
        f"cecli: error: {path}: member 'README.txt' is not a .npy array (a .npz holds only .npy arrays)\n",
    )


def test_dask_engine_reads_numpy_files(tmp_path):
    """The Dask engine opens each file with the same readers: a folder of .npz files gives the local numbers."""
    import distributed

    from cecli import compute

    folder = tmp_path / "dump"
    folder.mkdir()
    y, p = np.array(SEED_BCE["y_true"]), np.array(SEED_BCE["y_pred"])
    np.savez(folder / "part-0.npz", y_true=y[:4], y_pred=p[:4])
    np.savez_compressed(folder / "part-1.npz", y_true=y[4:], y_pred=p[4:])
    local = compute("bce", str(folder), per_sample=False).to_dict(per_sample=False)
    with distributed.LocalCluster(
        processes=False, n_workers=1, threads_per_worker=2, dashboard_address=":0"
    ) as cluster:
        remote = compute("bce", str(folder), per_sample=False, engine="dask", scheduler=cluster.scheduler_address)
    assert remote.to_dict(per_sample=False) == local
    assert local["sum"] == pytest.approx(SEED_BCE_SUM, rel=1e-12)


@pytest.mark.parametrize(
    ("fmt", "reason"),
    [
        (
            "npy",
            "not a readable .npy header: the magic string is not correct; expected b'\\x93NUMPY', got b'y,p\\n1,' "
            "(the file may be truncated or corrupt)",
        ),
        ("npz", "not a readable .npz (zip) file: File is not a zip file (the file may be truncated or corrupt)"),
    ],
)
def test_a_file_forced_to_a_numpy_format_it_is_not_in_is_refused(fmt, reason, runner, tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("y,p\n1,0.5\n")
    code, out, err = _run(runner, ["bce", str(path), "--input-format", fmt])
    assert (code, out, err) == (BAD_INPUT, "", f"cecli: error: {path}: {reason}\n")
    code, out, err = _run(runner, ["bce", str(path), "--input-format", fmt, "--delimiter", ";"])
    assert (code, out) == (2, "")
    assert err == f"cecli: error: --delimiter cannot be combined with --input-format {fmt} (only CSV has a delimiter)\n"


def test_a_truncated_fortran_ordered_npy_on_stdin_is_refused_without_a_row(runner, tmp_path):
    """Column-major bytes do not follow the rows: the stream is read whole, and its end names no row."""
    data = _npy_bytes(np.asfortranarray(np.full((7, 2), 0.5)))
    np.save(tmp_path / "y.npy", np.array(SEED_BCE["y_true"]))
    code, out, err = _run(runner, ["sparse", "-", "--labels", str(tmp_path / "y.npy")], input=data[:-12])
    assert (code, out) == (BAD_INPUT, "")
    assert err == (
        "cecli: error: <stdin>: the array is truncated: the data ends before the 7 rows its header announces "
        "(the file may be truncated or corrupt)\n"
    )


def test_a_csv_beginning_with_pk_is_not_taken_for_a_zip(runner):
    """Sniffing needs a zip record's four bytes, not the letters PK a header may begin with."""
    code, out, err = _run(
        runner, ["bce", "-", "-y", "y_true", "-p", "y_pred", "--value-only"], input=b"PK,y_true,y_pred\n7,1,0.5\n"
    )
    assert (code, err) == (0, "")
    assert float(out) == pytest.approx(math.log(2), rel=1e-12)
