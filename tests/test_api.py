"""cecli.compute() over data in memory (cecli/io/memory.py): the same LossResult as the CLI over the same data on disk.

Every in-memory form (a pandas and a Polars DataFrame, a pyarrow Table, RecordBatch and RecordBatchReader, a mapping
of NumPy arrays, 1-D columns or 2-D class vectors) gives a ``to_dict()`` equal, but for ``input``, to the JSON the CLI
prints for a CSV and a Parquet file of the same data: on the seed examples (whose per-sample values are checked against
tests/data/seed_examples.json, an independent source) and on hypothesis-generated tables. Errors raise the CecliError
subclasses naming ``<table>`` (or ``<labels>``), the 1-based record and the column, and print nothing.
"""

from __future__ import annotations

import csv
import json
import math
import re
import tempfile
import typing
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

import cecli
from cecli import ReadSettings  # the public name; the same class as cecli.io.base.ReadSettings
from cecli.cli import app
from cecli.errors import DataError, InputError, OptionError
from cecli.io.memory import ArrowStreamExportable

SEED_EXAMPLES = Path(__file__).resolve().parent / "data" / "seed_examples.json"
SEED_CASES = json.loads(SEED_EXAMPLES.read_text(encoding="utf-8"))["cases"]
FORMS = ["pandas", "polars", "table", "record_batch", "reader", "numpy"]


def _flat(columns: dict[str, list]) -> dict[str, list]:
    """A class-vector column ``name`` (a list of lists) as columns ``name_0 .. name_{C-1}``, as a CSV file has them."""
    flat: dict[str, list] = {}
    for name, values in columns.items():
        if values and isinstance(values[0], list):
            for j in range(len(values[0])):
                flat[f"{name}_{j}"] = [row[j] for row in values]
        else:
            flat[name] = values
    return flat


def _in_memory(form: str, flat: dict[str, list]):
    """The columns `flat` as data in memory of the given form."""
    if form == "pandas":
        return pd.DataFrame(flat)
    if form == "polars":
        return pl.DataFrame(flat)
    if form == "numpy":
        return {name: np.asarray(values) for name, values in flat.items()}
    table = pa.table(flat)
    if form == "table":
        return table
    if form == "record_batch":
        return table.to_batches()[0]
    assert form == "reader"
    return table.to_reader(max_chunksize=2)  # several Arrow batches, to be re-cut into --batch-rows ones


def _write_files(folder: Path, flat: dict[str, list]) -> tuple[Path, Path]:
    """`flat` as a CSV file (floats as repr, which reads back exactly) and a Parquet file."""
    csv_path, parquet_path = folder / "data.csv", folder / "data.parquet"
    with csv_path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(flat)
        writer.writerows(zip(*(list(map(repr, values)) if isinstance(values[0], float) else values
                               for values in flat.values()), strict=True))  # fmt: skip
    pq.write_table(pa.table(flat), parquet_path)
    return csv_path, parquet_path


def _cli(runner: CliRunner, loss: str, path: Path, args: list[str]) -> dict:
    result = runner.invoke(app, [loss, str(path), "-f", "json", *args])
    assert result.exit_code == 0, (result.output, result.exception)
    return json.loads(result.stdout)


def _document(result: cecli.LossResult) -> dict:
    """The JSON document of `result`, as the CLI prints it (render.py: ``default=str``)."""
    return json.loads(json.dumps(result.to_dict(), allow_nan=False, default=str))


def _without_input(document: dict) -> dict:
    return {key: value for key, value in document.items() if key != "input"}


def _seed_columns(case: dict) -> dict[str, list]:
    columns = {}
    if "y_true" in case:
        columns["y_true"] = case["y_true"]
    preds = case["y_pred"]
    columns["y_pred"] = [[float(v) for v in row] for row in preds] if isinstance(preds[0], list) else preds
    return columns


@pytest.mark.parametrize("case", SEED_CASES, ids=[case["name"] for case in SEED_CASES])
def test_seed_examples_give_the_cli_document_for_every_in_memory_form(case, runner, tmp_path):
    loss = case["command"]
    options = {"base": str(case["base"])} if "base" in case else {}
    args = [arg for key, value in options.items() for arg in (f"--{key}", value)]
    columns = _seed_columns(case)
    flat = _flat(columns)
    csv_path, parquet_path = _write_files(tmp_path, flat)
    from_csv = _cli(runner, loss, csv_path, args)
    from_parquet = _cli(runner, loss, parquet_path, args)
    assert from_csv["per_sample"] == pytest.approx(case["expected"]["per_sample"], rel=1e-12)  # the seed's numbers
    assert _without_input(from_parquet) == _without_input(from_csv)
    expected = _without_input(from_csv)
    for form in FORMS:
        document = _document(cecli.compute(loss, _in_memory(form, flat), **options))
        assert _without_input(document) == expected, form
        assert document["input"]["path"] == "<table>"
        assert document["input"]["format"] == "memory"
        assert document["input"]["prediction_columns"] == from_csv["input"]["prediction_columns"]
    # 2-D NumPy arrays are class-vector columns, as list columns of a Parquet file are.
    vectors = {name: np.asarray(values) for name, values in columns.items()}
    document = _document(cecli.compute(loss, vectors, **options))
    assert _without_input(document) == expected
    assert document["input"]["prediction_columns"] == ["y_pred"]


@st.composite
def _tables(draw):
    """A random scoring problem: a loss, its columns (labels, predictions, a weight, a group) and CLI options."""
    loss = draw(st.sampled_from(["bce", "sparse"]))
    rows = draw(st.integers(1, 30))
    probability = st.floats(0.001, 1.0, allow_nan=False)
    classes = 1 if loss == "bce" else draw(st.integers(2, 4))
    flat = {"y": draw(st.lists(st.integers(0, max(classes - 1, 1)), min_size=rows, max_size=rows))}
    for j in range(classes):
        flat[f"p_{j}" if loss == "sparse" else "p"] = draw(st.lists(probability, min_size=rows, max_size=rows))
    flat["w"] = draw(st.lists(st.floats(0.5, 5.0), min_size=rows, max_size=rows))
    flat["g"] = draw(st.lists(st.sampled_from(["a", "b", "c"]), min_size=rows, max_size=rows))
    batch_rows = draw(st.integers(1, 7))
    args = ["-w", "w", "--by", "g", "--keep", "g", "--top", "3", "--batch-rows", str(batch_rows)]
    keywords = {"weight": "w", "by": "g", "keep": "g", "top": 3, "read": ReadSettings(batch_rows=batch_rows)}
    if loss == "sparse" and draw(st.booleans()):
        args.append("--per-class")
        keywords["per_class"] = True
    return loss, flat, args, keywords


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_tables())
def test_random_tables_give_the_cli_document_for_every_in_memory_form(problem):
    loss, flat, args, keywords = problem
    runner = CliRunner()
    with tempfile.TemporaryDirectory() as folder:
        csv_path, parquet_path = _write_files(Path(folder), flat)
        from_csv = _cli(runner, loss, csv_path, args)
        from_parquet = _cli(runner, loss, parquet_path, args)
    expected = _without_input(from_csv)
    assert _without_input(from_parquet) == expected
    assert from_csv["rows"] == len(flat["y"])
    for form in FORMS:
        assert _without_input(_document(cecli.compute(loss, _in_memory(form, flat), **keywords))) == expected, form


def test_labels_in_memory_pair_with_predictions_as_a_labels_file_does(runner, tmp_path):
    y, p = [0, 1, 1, 0, 1], [0.2, 0.7, 0.9, 0.4, 0.35]
    pq.write_table(pa.table({"p": p}), tmp_path / "p.parquet")
    pq.write_table(pa.table({"y": y}), tmp_path / "y.parquet")
    from_files = _cli(runner, "bce", tmp_path / "p.parquet", ["--labels", str(tmp_path / "y.parquet")])
    result = cecli.compute("bce", pd.DataFrame({"p": p}), labels={"y": np.array(y)}, read=ReadSettings(batch_rows=2))
    document = _document(result)
    assert _without_input(document) == _without_input(from_files)
    assert document["input"]["labels_path"] == "<labels>"
    # -(log 0.8 + log 0.7 + log 0.9 + log 0.6 + log 0.35) / 5, written out
    assert result.value == pytest.approx(-(np.log(0.8) + np.log(0.7) + np.log(0.9) + np.log(0.6) + np.log(0.35)) / 5)
    # A table in memory with a labels file, and a path given as a pathlib.Path.
    mixed = cecli.compute("bce", pa.table({"p": p}), labels=tmp_path / "y.parquet")
    assert _without_input(_document(mixed)) == _without_input(from_files)
    assert mixed.input.labels_path == str(tmp_path / "y.parquet")


def test_a_pandas_index_is_not_a_column():
    frame = pd.DataFrame({"y_true": [1, 0], "y_pred": [0.5, 0.25]}, index=pd.Index([10, 20], name="id"))
    result = cecli.compute("bce", frame)
    assert result.input.label_columns == ["y_true"]
    assert result.value == pytest.approx(-(np.log(0.5) + np.log(0.75)) / 2)
    with pytest.raises(OptionError, match="no column 'id'|'id'"):
        cecli.compute("bce", frame, keep="id")
    assert cecli.compute("bce", frame.reset_index(), keep="id", top=1).top.rows[0][2] == (10,)


def test_masked_numpy_values_are_missing():
    data = {"y": np.array([0, 1, 1]), "p": np.ma.masked_array([0.2, 0.7, 0.9], mask=[False, True, False])}
    with pytest.raises(DataError) as caught:
        cecli.compute("bce", data)
    assert (caught.value.row, caught.value.column) == (2, "p")
    assert str(caught.value) == "<table>:2:p: missing value (fill in every cell, or drop the row)"


def _bad_probability():
    return pd.DataFrame({"y": [0, 1, 1, 0, 1], "p": [0.1, 0.2, 0.3, 1.5, 0.4]})


ERRORS = [
    # (id, source, keywords, error class, row, column, the exact message)
    (
        "probability in the second batch",
        _bad_probability,
        {"read": ReadSettings(batch_rows=3)},
        DataError,
        4,
        "p",
        "<table>:4:p: probability 1.5 is outside [0, 1] (pass --from-logits if these are raw scores)",
    ),
    (
        "missing label in Polars",
        lambda: pl.DataFrame({"y": [0, None, 1], "p": [0.1, 0.2, 0.3]}),
        {},
        DataError,
        2,
        "y",
        "<table>:2:y: missing value (fill in every cell, or drop the row)",
    ),
    (
        "arrays of two lengths",
        lambda: {"y": np.zeros(3), "p": np.full(2, 0.5)},
        {},
        InputError,
        None,
        "p",
        "<table>: column 'p': has 2 rows where 'y' has 3 (every array needs one value (or row) per sample)",
    ),
    (
        "a 3-D array",
        lambda: {"y": np.zeros(2), "p": np.full((2, 2, 2), 0.5)},
        {},
        InputError,
        None,
        "p",
        "<table>: column 'p': the array has 3 dimensions (give a 1-D column or a 2-D (rows, classes) array)",
    ),
    (
        "a name that is not text",
        lambda: {"y": np.zeros(2), 1: np.full(2, 0.5)},
        {},
        InputError,
        None,
        None,
        "<table>: column name 1 is not a string (map column names (str) to arrays)",
    ),
    (
        "no arrays",
        dict,
        {},
        InputError,
        None,
        None,
        "<table>: the mapping holds no arrays (map column names to arrays)",
    ),
    (
        "not data",
        lambda: 42,
        {},
        OptionError,
        None,
        None,
        "cannot read data of type int "
        "(give a path, a pyarrow Table or RecordBatchReader, a DataFrame or a mapping of names to arrays)",
    ),
    (
        "a Series, not a table",
        lambda: pd.Series([0.5, 0.25]),
        {},
        InputError,
        None,
        None,
        "<table>: cannot read the data: Cannot import schema: ArrowSchema describes non-struct type double "
        "(give a table of named columns (a DataFrame, not a Series or an array))",
    ),
    (
        "a list of tables",
        lambda: [pa.table({"y": [1], "p": [0.5]})] * 2,
        {},
        OptionError,
        None,
        None,
        "in-memory data is read one table at a time (concatenate the tables first)",
    ),
    (
        "the Dask engine",
        lambda: pa.table({"y": [1], "p": [0.5]}),
        {"engine": "dask"},
        OptionError,
        None,
        None,
        "the Dask engine reads files, not data in memory "
        "(use engine='local', or write the table to Parquet files first)",
    ),
    (
        "a bad label in the labels table",
        lambda: {"p": np.array([0.5, 0.5, 0.5])},
        {"labels": pa.table({"y": [0, 1, 2]})},
        DataError,
        3,
        "y",
        "<labels>:3:y: label 2.0 is outside [0, 1] (labels must be in [0, 1])",
    ),
    (
        "a labels table that is short",
        lambda: {"p": np.array([0.5, 0.5, 0.5])},
        {"labels": pa.table({"y": [0, 1]})},
        InputError,
        None,
        None,
        "<labels>: has fewer rows than <table> (--labels needs exactly one row per input row)",
    ),
]


@pytest.mark.parametrize(("source", "keywords", "error", "row", "column", "message"), [e[1:] for e in ERRORS],
                         ids=[e[0] for e in ERRORS])  # fmt: skip
def test_errors_raise_the_cecli_error_with_its_place_and_print_nothing(
    source, keywords, error, row, column, message, capsys
):
    with pytest.raises(error) as caught:
        cecli.compute("bce", source(), **keywords)
    assert type(caught.value) is error or isinstance(caught.value, error)
    assert (caught.value.row, caught.value.column) == (row, column)
    assert str(caught.value) == message
    assert capsys.readouterr() == ("", "")


@pytest.mark.parametrize("suffix", [".parquet", ".csv", ".ndjson"])
def test_an_error_mid_file_leaves_no_reader_running_while_the_caller_keeps_it(tmp_path, suffix):
    """A bad cell found by the math after the reader has run ahead: the reader thread and its parsing pool
    stop, and the file is closed, before the exception reaches the caller, who may keep it (a notebook keeps
    the last one) and its frames."""
    import contextlib
    import gc
    import os
    import threading

    rows = 60_000
    labels = np.zeros(rows, dtype=np.int64)
    labels[45_000] = 7  # out of range for two classes: found by the scorer, not by the parser
    path = tmp_path / f"d{suffix}"
    table = pa.table({"y": labels, "p_0": np.full(rows, 0.25), "p_1": np.full(rows, 0.75)})
    if suffix == ".parquet":
        pq.write_table(table, path, row_group_size=1000)
    elif suffix == ".csv":
        path.write_text("y,p_0,p_1\n" + "".join(f"{y},0.25,0.75\n" for y in labels.tolist()))
    else:
        path.write_text("".join(f'{{"y": {y}, "p_0": 0.25, "p_1": 0.75}}\n' for y in labels.tolist()))
    line = 45_001 + (suffix == ".csv")
    gc.collect()
    gc.disable()  # what is released must be released by the code, not by a collection
    try:
        with pytest.raises(DataError) as caught:
            cecli.compute("sparse", str(path), y="y", p="p_*", read=ReadSettings(batch_rows=1000))
        kept = caught.value  # noqa: F841 - held, with its traceback, as a notebook holds the last error
        threads = [t.name for t in threading.enumerate() if t.name.startswith("cecli")]
        open_files = []
        for fd in os.listdir("/proc/self/fd"):
            with contextlib.suppress(FileNotFoundError):  # the listing's own descriptor, closed by now
                open_files.append(os.readlink(f"/proc/self/fd/{fd}"))
    finally:
        gc.enable()
    assert str(caught.value) == f"{path}:{line}:y: label 7 is out of range for 2 classes (labels must be in [0, 1])"
    assert threads == []
    assert str(path) not in open_files


def test_the_package_is_typed():
    assert (Path(cecli.__file__).parent / "py.typed").is_file()
    hints = typing.get_type_hints(cecli.compute)  # every annotation resolves at run time
    assert hints["return"] is cecli.LossResult
    accepted = typing.get_args(hints["source"])
    assert str in accepted and ArrowStreamExportable in accepted
    assert isinstance(pa.table({"a": [1]}), ArrowStreamExportable) and isinstance(pl.DataFrame(), ArrowStreamExportable)


def _readme_examples() -> list[str]:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("\n## From Python\n") :]
    section = section[: section.index("\n## ", 1)]
    return re.findall(r"```python\n(.*?)```", section, re.S)


def test_the_readme_examples_run_and_print_the_losses_written_out(monkeypatch, capsys):
    monkeypatch.chdir(Path(__file__).resolve().parents[1])  # the last example reads sample_data/
    examples = _readme_examples()
    assert len(examples) == 4
    values = []
    for example in examples:
        namespace: dict = {}
        exec(example, namespace)
        values.append(namespace["result"].value)
    capsys.readouterr()
    log = math.log
    assert values[0] == pytest.approx(-(log(0.9) + log(0.8) + log(0.6) + log(0.7)) / 4, rel=1e-14)  # pandas
    assert values[1] == pytest.approx(-(log(0.5) + log(0.7) + log(0.8)) / 3, rel=1e-14)  # Polars
    logsumexp = [log(math.exp(2.0) + math.exp(1.0) + math.exp(0.1)), log(math.exp(0.5) + math.exp(2.5) + math.exp(0.3))]
    assert values[2] == pytest.approx(logsumexp[0] - 2.0 + logsumexp[1] - 2.5, rel=1e-14)  # NumPy logits, summed
    assert values[3] == pytest.approx(1.4271163556401456, rel=1e-12)  # seed-sparse, its seed sum


@pytest.mark.parametrize("form", FORMS)
def test_data_in_memory_stream_in_batches_of_batch_rows(form):
    from cecli.io.memory import open_memory

    flat = {"y": [i % 2 for i in range(10)], "p": [(i + 1) / 11 for i in range(10)]}
    opened = open_memory(_in_memory(form, flat))
    assert [(c.position, c.name) for c in opened.columns] == [(1, "y"), (2, "p")]
    batches = list(opened.record_batches(["p"], ReadSettings(batch_rows=4)))
    # A reader's own batches (of 2 rows here) are cut, never joined: no copy of the data.
    assert [b.num_rows for b in batches] == ([2] * 5 if form == "reader" else [4, 4, 2])
    assert [b.schema.names for b in batches] == [["p"]] * len(batches)
    assert [v for b in batches for v in b.column("p").to_pylist()] == flat["p"]


def test_read_settings_are_public_and_load_lazily():
    """`read=cecli.ReadSettings(...)`, as the README writes it; `import cecli` alone still loads no NumPy."""
    import subprocess
    import sys

    import cecli.io.base

    assert cecli.ReadSettings is cecli.io.base.ReadSettings
    assert "ReadSettings" in dir(cecli)
    code = "import sys, cecli; print('numpy' in sys.modules, cecli.ReadSettings(batch_rows=3).batch_rows)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout == "False 3\n"
