"""A small all-numeric CSV is parsed without pyarrow; it must give exactly what pyarrow's path gives."""

from __future__ import annotations

import gc
import io
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cecli.cli import app
from cecli.errors import CecliError
from cecli.io import csv as io_csv
from cecli.io.base import ReadSettings
from cecli.io.sources import open_input
from cecli.pipeline import compute


def _outcome(source: str, loss: str, read: ReadSettings, **columns) -> tuple:
    """What `compute` gives: the JSON document and the raw per-sample bits, or the error line."""
    try:
        result = compute(loss, source, read=read, **columns)
    except CecliError as error:
        return ("error", str(error))
    return ("ok", result.to_dict(), result.per_sample.tobytes(), result.counted.tobytes())


def _plain_numbers(path) -> np.ndarray | None:
    opened = open_input(str(path))
    try:
        return opened._plain_numbers()
    finally:
        opened.close()


def _both_paths(monkeypatch, source: str, loss: str, read: ReadSettings | None = None, **columns) -> tuple:
    read = read or ReadSettings()
    plain = _outcome(source, loss, read, **columns)
    with monkeypatch.context() as patch:
        patch.setattr(io_csv, "_SMALL_CSV_BYTES", 0)  # no input is small: pyarrow parses everything
        arrow = _outcome(source, loss, read, **columns)
    return plain, arrow


PLAIN = [
    pytest.param("y,p\n1,0.9\n0,0.2\n1,0.6\n", "bce", {}, id="one-liner"),
    pytest.param("y,p\n1,0.9\n0,0.2\n1,0.6", "bce", {}, id="no-final-newline"),
    pytest.param("\ufeffy,p\r\n1,0.9\r\n0,0.2\r\n", "bce", {}, id="bom-crlf"),
    pytest.param("1,0.9\n0,0.2\n", "bce", {}, id="headerless"),
    pytest.param("y\tp\n1\t.9\n0\t2e-1\n", "bce", {}, id="tsv"),
    pytest.param("y,p\n+1,9E-1\n-0,+.2\n1.,0.60000000000000000000001\n", "bce", {}, id="signs-and-exponents"),
    pytest.param("y,p\n1,1e-400\n0,0.99999999999999999\n", "bce", {}, id="underflow-and-rounding"),
    pytest.param("y,p,w\n1,0.9,2\n0,0.2,0.5\n", "bce", {"weight": "w"}, id="weights"),
    pytest.param("y,p_0,p_1,p_2\n2,0.1,0.2,0.7\n0,0.5,0.25,0.25\n", "sparse", {}, id="sparse"),
    pytest.param("y_0,y_1,p_0,p_1\n0,1,0.3,0.7\n1,0,0.6,0.4\n", "cce", {}, id="cce"),
    pytest.param("x_0,x_1\n2.5,-1\n0,3e2\n", "entropy", {"p": "x_*"}, id="entropy-of-logits-table"),
    pytest.param("y,z_0,z_1\n1,2.5,-1\n0,0,3e2\n", "softmax", {"p": "z_*"}, id="softmax"),
    # Validation errors come after parsing, from the same arrays: the same line either way.
    pytest.param("y,p\n1,0.9\n0,1.5\n", "bce", {}, id="probability-above-one"),
    pytest.param("y,p\n1,0.9\n2,0.5\n", "bce", {}, id="label-not-binary"),
    pytest.param("y,p_0,p_1\n0,0.5,0.5\n3,0.5,0.5\n", "sparse", {}, id="class-out-of-range"),
    pytest.param("y,p\n1,1e999\n", "bce", {}, id="overflow-to-inf"),
]


@pytest.mark.parametrize("batch_rows", [1, 2, 65536])
@pytest.mark.parametrize(("text", "loss", "columns"), PLAIN)
def test_plain_csv_gives_what_pyarrow_gives(tmp_path, monkeypatch, text, loss, columns, batch_rows):
    path = tmp_path / ("d.tsv" if "\t" in text else "d.csv")
    path.write_bytes(text.encode())
    assert _plain_numbers(path) is not None  # the case takes the pyarrow-free path
    plain, arrow = _both_paths(monkeypatch, str(path), loss, ReadSettings(batch_rows=batch_rows), **columns)
    assert plain == arrow


def test_plain_csv_on_stdin_gives_what_pyarrow_gives(monkeypatch):
    text = b"y,p\n1,0.9\n0,0.2\n1,0.6\n"
    outcomes = []
    for size in (io_csv._SMALL_CSV_BYTES, 0):
        monkeypatch.setattr(io_csv, "_SMALL_CSV_BYTES", size)
        monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(text)))
        outcomes.append(_outcome("-", "bce", ReadSettings()))
    assert outcomes[0] == outcomes[1]
    assert outcomes[0][1]["value"] == pytest.approx(0.2797765635793423, rel=1e-15)


@pytest.mark.parametrize(
    "text",
    [
        pytest.param('y,p\n1,"0.9"\n', id="quoted-cell"),
        pytest.param("y,p\n1,0.9\n\n0,0.2\n", id="blank-line"),
        pytest.param("y,p\r1,0.9\r0,0.2\r", id="lone-cr"),
        pytest.param("y,p\n1,nan\n", id="nan"),
        pytest.param("y,p\n1,inf\n", id="inf"),
        pytest.param("y,p\n1, 0.9\n", id="space"),
        pytest.param("y,p\n1,\n", id="empty-cell"),
        pytest.param("y,p\n1,0.9,3\n", id="ragged"),
        pytest.param("y,p_a,p_b\na,0.9,0.1\n", id="class-name"),
        pytest.param("y,p\n1,1_0\n", id="underscore"),
        pytest.param("y,p\n1,0x1\n", id="hex"),
        pytest.param("y,p\n\u0661,0.9\n", id="arabic-indic-digit"),
        pytest.param("y,p\n", id="header-only"),
        pytest.param("y,p\n" + "1,0.5\n" * 2000, id="larger-than-8-KiB"),
        # Near misses that a backtracking pattern would take seconds to refuse:
        pytest.param("y,p\n" + "1" * 8000 + ",1x\n", id="long-number-then-junk"),
        pytest.param("y,p\n" + "1,1\n" * 1000 + "1,\n", id="many-rows-then-an-empty-cell"),
    ],
)
def test_anything_unusual_is_left_to_pyarrow(tmp_path, monkeypatch, text):
    """Only plain numbers take the small path; the rest, every reader error included, is pyarrow's."""
    path = tmp_path / "d.csv"
    path.write_bytes(text.encode())
    try:
        assert _plain_numbers(path) is None
    except CecliError:
        pass  # refused before any parsing
    plain, arrow = _both_paths(monkeypatch, str(path), "bce")
    assert plain == arrow


def test_invalid_utf8_is_left_to_pyarrow(tmp_path):
    path = tmp_path / "d.csv"
    path.write_bytes(b"y,p\n1,0.9\n0,0.\xff\n")
    assert _plain_numbers(path) is None


def test_keep_and_by_columns_are_left_to_pyarrow(tmp_path, monkeypatch):
    path = tmp_path / "d.csv"
    path.write_text("g,y,p\n1,1,0.9\n2,0,0.2\n1,1,0.6\n")
    for extra in ({"keep": "g"}, {"by": "g"}):
        plain, arrow = _both_paths(monkeypatch, str(path), "bce", y="y", p="p", **extra)
        assert plain == arrow


_CELL = st.from_regex(rf"\A{io_csv._PLAIN_NUMBER}\Z")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    rows=st.lists(st.tuples(_CELL, _CELL, _CELL), min_size=1, max_size=6),
    newline=st.sampled_from(["\n", "\r\n"]),
    final_newline=st.booleans(),
)
def test_any_plain_numbers_give_what_pyarrow_gives(tmp_path, monkeypatch, rows, newline, final_newline):
    """Values, errors and their row numbers agree for any cells the small path accepts."""
    text = newline.join(["y,p_0,p_1", *(",".join(row) for row in rows)]) + (newline if final_newline else "")
    path = tmp_path / "h.csv"
    path.write_bytes(text.encode())
    assert _plain_numbers(path) is not None
    for loss in ("bce", "sparse"):
        columns = {"y": "y", "p": "p_0"} if loss == "bce" else {"y": "y", "p": "p_*"}
        plain, arrow = _both_paths(monkeypatch, str(path), loss, **columns)
        assert plain == arrow
    assert np.array_equal(_plain_numbers(path), [[float(cell) for cell in row] for row in rows], equal_nan=True)


# Large CSV inputs: the block reader (`_newline_blocks`) and class labels read as numbers.


class _Trickle(io.RawIOBase):
    """A raw stream whose ``readinto`` hands over at most `step` bytes at a time, as a pipe may."""

    def __init__(self, data: bytes, step: int) -> None:
        self.data, self.step = data, step

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        n = min(len(buffer), self.step, len(self.data))
        buffer[:n], self.data = self.data[:n], self.data[n:]
        return n


@pytest.mark.parametrize("step", [1, 3, 1000])
@pytest.mark.parametrize("size", [4, 7, 64])
def test_newline_blocks_read_into_their_buffers_end_at_line_ends(step, size):
    """Short reads fill a block before it is cut (the blocks are those of one read); every block
    but the last ends at a line end."""
    text = b"y,p\n1,0.9\r\n0,0.25\r1,0.5\n" + b"7" * 40 + b"\n0,1"
    blocks = list(io_csv._newline_blocks(_Trickle(text, step), size))
    assert b"".join(blocks) == text
    assert all(block.endswith((b"\n", b"\r")) for block in blocks[:-1])
    assert blocks[-1].endswith(b"0,1")  # the unterminated last line stays in the last block
    assert blocks == list(io_csv._newline_blocks(io.BytesIO(text), size))
    assert b"7" * 40 + b"\n" in blocks[-2] + blocks[-1]  # a line longer than a block is whole


def _blocks_of(monkeypatch, size: int) -> None:
    monkeypatch.setattr(io_csv, "_SMALL_CSV_BYTES", 0)  # pyarrow parses every input
    monkeypatch.setattr(io_csv, "_CSV_BLOCK_BYTES", size)  # many blocks, parsed on the pool


def _label_types(monkeypatch, path, **columns) -> list[str]:
    """The Arrow types of the label column that reach `class_indices`, batch by batch."""
    import cecli.io.inputs as inputs

    seen = []
    original = inputs.class_indices

    def spy(array, column, class_names):
        seen.append(str(array.type))
        return original(array, column, class_names)

    monkeypatch.setattr(inputs, "class_indices", spy)
    compute("sparse", str(path), per_sample=False, **columns)
    return seen


def test_class_labels_are_read_as_numbers_in_every_spelling_pyarrow_reads(tmp_path, monkeypatch):
    """Labels " 1", "+0", "1e0", "1.0" are the numbers 1, 0, 1, 1, in any block; p sums to 1."""
    _blocks_of(monkeypatch, 24)
    labels = [" 1", "+0", "1e0", "1.0", "0", '"1"', "0 "]
    path = tmp_path / "d.csv"
    path.write_text("y,p_0,p_1\n" + "".join(f"{label},0.25,0.75\n" for label in labels))
    probability = {0: 0.25, 1: 0.75}
    classes = [1, 0, 1, 1, 0, 1, 0]
    expected = math.fsum(-math.log(probability[c]) for c in classes) / len(classes)
    assert compute("sparse", str(path), y="y", p="p_*").value == pytest.approx(expected, rel=1e-15)
    assert set(_label_types(monkeypatch, path, y="y", p="p_*")) == {"double"}


def test_class_names_after_blocks_of_numbers_are_read_as_text(tmp_path, monkeypatch):
    """A block of class names turns the labels back to text, for it and every later block."""
    _blocks_of(monkeypatch, 8)  # shorter than a line: a block per line
    rows = ["0,0.25,0.75", "1,0.25,0.75", "a,0.5,0.5", "b,0.125,0.875", "1,0.25,0.75"]
    path = tmp_path / "d.csv"
    path.write_text("y,p_a,p_b\n" + "\n".join(rows) + "\n")
    expected = (-math.log(0.25) - math.log(0.75) - math.log(0.5) - math.log(0.875) - math.log(0.75)) / 5
    assert compute("sparse", str(path), y="y", p="p_*").value == pytest.approx(expected, rel=1e-15)
    types = _label_types(monkeypatch, path, y="y", p="p_*")
    assert types[:2] == ["double", "double"]
    assert types[2:] == ["string", "string", "string"]


@pytest.mark.parametrize(
    ("cell", "message"),
    [
        ("", "label '' is not a class name (classes are: 0, 1)"),
        ('""', "label '' is not a class name (classes are: 0, 1)"),
        (" ", "label ' ' is not a class name (classes are: 0, 1)"),
        ("x", "label 'x' is not a class name (classes are: 0, 1)"),
        ("2", "label 2 is out of range for 2 classes (labels must be in [0, 1])"),
    ],
)
def test_a_bad_label_in_a_later_block_is_named_on_its_line(runner, tmp_path, monkeypatch, cell, message):
    """The message of labels read as text (a missing label is text, not a missing number)."""
    _blocks_of(monkeypatch, 32)
    monkeypatch.chdir(tmp_path)
    Path("d.csv").write_text("y,p_0,p_1\n" + "0,0.25,0.75\n" * 10 + f"{cell},0.25,0.75\n" + "1,0.25,0.75\n")
    result = runner.invoke(app, ["sparse", "d.csv", "-y", "y", "-p", "p_*"], prog_name="cecli")
    assert (result.exit_code, result.stdout, result.stderr) == (3, "", f"cecli: error: d.csv:12:y: {message}\n")


def test_true_and_false_labels_in_a_later_block_are_1_and_0(tmp_path, monkeypatch):
    _blocks_of(monkeypatch, 32)
    path = tmp_path / "d.csv"
    path.write_text("y,p_0,p_1\n" + "0,0.25,0.75\n" * 10 + "true,0.25,0.75\nFALSE,0.25,0.75\n")
    expected = (-11 * math.log(0.25) - math.log(0.75)) / 12
    assert compute("sparse", str(path), y="y", p="p_*").value == pytest.approx(expected, rel=1e-15)


def test_kept_and_grouped_labels_stay_text(tmp_path, monkeypatch):
    """A label column also kept or grouped by is printed as written: "01" is text, not the number 1."""
    _blocks_of(monkeypatch, 24)
    path = tmp_path / "d.csv"
    path.write_text("y,p_0,p_1\n01,0.25,0.75\n1,0.5,0.5\n0,0.25,0.75\n")
    kept = compute("sparse", str(path), y="y", p="p_*", keep="y", top=3).top.rows
    assert [row[2] for row in kept] == [(0,), (1,), ("01",)]  # -log 0.25 > -log 0.5 > -log 0.75
    groups = compute("sparse", str(path), y="y", p="p_*", by="y").to_dict()["by"]
    assert [group["key"]["y"] for group in groups] == [0, 1, "01"]
    assert [group["value"] for group in groups] == pytest.approx([-math.log(0.25), -math.log(0.5), -math.log(0.75)])
    assert set(_label_types(monkeypatch, path, y="y", p="p_*", keep="y")) == {"string"}


@pytest.mark.parametrize("labels", [["0", "1"] * 6, ["0", "1", "a", "b"] * 3], ids=["numbers", "then-names"])
def test_an_input_read_in_blocks_is_freed_without_the_garbage_collector(tmp_path, monkeypatch, labels):
    """No reference cycle holds the input (and its open file) once the computation is done."""
    _blocks_of(monkeypatch, 8)  # shorter than a line: a block per line
    path = tmp_path / "d.csv"
    path.write_text("y,p_a,p_b\n" + "".join(f"{label},0.25,0.75\n" for label in labels))
    gc.collect()
    gc.disable()
    try:
        value = compute("sparse", str(path), y="y", p="p_*", per_sample=False).value
        alive = [o for o in gc.get_objects() if isinstance(o, io_csv.CsvInput)]
    finally:
        gc.enable()
    assert value == pytest.approx((-math.log(0.25) - math.log(0.75)) / 2)
    assert alive == []


_LABEL = st.sampled_from(["0", "1", "2", " 1", "1.0", "+0", "1e0", "true", "False", "", " ", "a", "b", "c", "x", "nan"])


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(labels=st.lists(_LABEL, min_size=1, max_size=12), size=st.integers(8, 80), header=st.sampled_from(["0", "a"]))
def test_labels_read_as_numbers_give_what_text_labels_give(tmp_path, monkeypatch, labels, size, header):
    """Values, per-sample bits, errors and their lines agree with labels read as text, for any blocks."""
    names = ["0", "1", "2"] if header == "0" else ["a", "b", "c"]
    text = f"y,{','.join(f'p_{n}' for n in names)}\n" + "".join(f"{label},0.25,0.5,0.25\n" for label in labels)
    path = tmp_path / "h.csv"
    path.write_text(text)
    with monkeypatch.context() as patch:
        _blocks_of(patch, size)
        numbers = _outcome(str(path), "sparse", ReadSettings(), y="y", p="p_*")
        patch.setattr(io_csv.CsvInput, "batches", io_csv.Input.batches)  # labels reach main as text
        text_labels = _outcome(str(path), "sparse", ReadSettings(), y="y", p="p_*")
    assert numbers == text_labels
