"""A small all-numeric CSV is parsed without pyarrow; it must give exactly what pyarrow's path gives."""

from __future__ import annotations

import io

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

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
