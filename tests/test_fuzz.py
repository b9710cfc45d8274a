"""Fuzzing the CLI with random valid and broken CSV / JSON / NDJSON documents.

Valid documents must score exactly like ``cecli.numerics.core`` on the same numbers; broken ones
must end in a one-line error (or a correct result), never a traceback or exit code 4.
The CLI runs in-process through Typer's CliRunner, so 200 examples per test stay fast.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from cecli.cli import app
from cecli.numerics.core import binary_cross_entropy, sparse_cross_entropy

# conftest's autouse fixture only sets environment variables, which is safe to share
# between examples, hence function_scoped_fixture is suppressed as well.
FUZZ = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
FORMATS = ("csv", "json", "ndjson")
WORDS = ("abc", "nan", "", "-1", "1e999", "inf", "0x10", "1,5", '"', "null", "[]", "{}")

RUNNER = CliRunner()
WORKDIR = Path(tempfile.mkdtemp(prefix="cecli-fuzz-"))

probability = st.floats(0.0, 1.0, allow_nan=False, allow_infinity=False)
# sparse rows must have a positive sum (an all-zero row is an error, tested elsewhere)
class_probability = st.floats(1e-3, 1.0, allow_nan=False, allow_infinity=False)


@st.composite
def bce_tables(draw) -> tuple[list[str], list[list]]:
    n = draw(st.integers(1, 30))
    labels = draw(st.lists(st.integers(0, 1), min_size=n, max_size=n))
    preds = draw(st.lists(probability, min_size=n, max_size=n))
    return ["y_true", "y_pred"], [[y, p] for y, p in zip(labels, preds, strict=True)]


@st.composite
def sparse_tables(draw) -> tuple[list[str], list[list]]:
    n = draw(st.integers(1, 30))
    k = draw(st.integers(2, 5))
    rows = [[draw(st.integers(0, k - 1)), *draw(st.lists(class_probability, min_size=k, max_size=k))] for _ in range(n)]
    return ["label", *(f"p_{i}" for i in range(k))], rows


def render(fmt: str, header: list[str], rows: list[list]) -> str:
    """The table as a document; floats are written with repr, so they read back exactly."""
    if fmt == "csv":
        return "\n".join([",".join(header), *(",".join(repr(v) for v in row) for row in rows)]) + "\n"
    records = [dict(zip(header, row, strict=True)) for row in rows]
    if fmt == "json":
        return json.dumps(records)
    return "".join(json.dumps(record) + "\n" for record in records)


def invoke(loss: str, fmt: str, content: bytes):
    path = Path(tempfile.mkstemp(suffix=f".{fmt}", dir=WORKDIR)[1])
    try:
        path.write_bytes(content)
        result = RUNNER.invoke(app, [loss, str(path), "-f", "json"])
    finally:
        path.unlink()
    assert "Traceback" not in result.stdout
    assert "Traceback" not in result.stderr
    assert result.exit_code in {0, 1, 2, 3}, (result.exit_code, result.stderr, result.exception)
    lines = result.stderr.splitlines()
    if result.exit_code == 0:
        assert all(line.startswith("cecli: warning: ") for line in lines), result.stderr
    else:
        assert len(lines) == 1 and lines[0].startswith("cecli: error: "), result.stderr
    return result


def strict_json(text: str) -> dict:
    def refuse(token):
        raise AssertionError(f"non-strict JSON token {token}")

    return json.loads(text, parse_constant=refuse)


@FUZZ
@given(table=bce_tables(), fmt=st.sampled_from(FORMATS))
def test_valid_bce_documents_match_core(table, fmt):
    header, rows = table
    result = invoke("bce", fmt, render(fmt, header, rows).encode())
    assert result.exit_code == 0, result.stderr
    y = np.array([row[0] for row in rows], dtype=float)
    p = np.array([row[1] for row in rows], dtype=float)
    expected = binary_cross_entropy(y, p)
    document = strict_json(result.stdout)
    assert document["value"] == pytest.approx(float(np.mean(expected)), rel=1e-12)
    assert document["per_sample"] == pytest.approx(expected.tolist(), rel=1e-12)


@FUZZ
@given(table=sparse_tables(), fmt=st.sampled_from(FORMATS))
def test_valid_sparse_documents_match_core(table, fmt):
    header, rows = table
    result = invoke("sparse", fmt, render(fmt, header, rows).encode())
    assert result.exit_code == 0, result.stderr
    labels = np.array([row[0] for row in rows], dtype=np.int64)
    probabilities = np.array([row[1:] for row in rows], dtype=float)
    expected = sparse_cross_entropy(labels, probabilities)
    document = strict_json(result.stdout)
    assert document["value"] == pytest.approx(float(np.mean(expected)), rel=1e-12)
    assert document["per_sample"] == pytest.approx(expected.tolist(), rel=1e-12)


@st.composite
def mutated(draw, document: bytes) -> bytes:
    """One to three random mutations of `document`."""
    data = bytearray(document)
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(
            st.sampled_from(["delete", "insert-byte", "insert-char", "truncate", "drop-cell", "word", "dup-header"])
        )
        position = draw(st.integers(0, max(len(data) - 1, 0)))
        if kind == "delete" and data:
            del data[position]
        elif kind == "insert-byte":
            data[position:position] = bytes([draw(st.integers(0, 255))])
        elif kind == "insert-char":
            data[position:position] = draw(st.characters(codec="utf-8")).encode()
        elif kind == "truncate":
            del data[position:]
        elif kind == "drop-cell":
            # delete the text between two separators (an empty cell, or one field fewer)
            text = bytes(data)
            separators = [i for i, b in enumerate(text) if b in b",\n:"]
            if len(separators) >= 2:
                start = draw(st.sampled_from(separators[:-1]))
                end = next(i for i in separators if i > start)
                drop_separator = draw(st.booleans())
                del data[start + (0 if drop_separator else 1) : end]
        elif kind == "word":
            # replace a number with a word that is not a valid probability or label
            text = bytes(data)
            digits = [i for i, b in enumerate(text) if chr(b).isdigit()]
            if digits:
                start = draw(st.sampled_from(digits))
                end = start
                while end < len(text) and (chr(text[end]).isalnum() or text[end] in b".-+"):
                    end += 1
                data[start:end] = draw(st.sampled_from(WORDS)).encode()
        elif kind == "dup-header":
            first_line = bytes(data).split(b"\n", 1)[0]
            data[0:0] = first_line + b"\n"
    return bytes(data)


@st.composite
def broken_documents(draw) -> tuple[str, str, bytes]:
    loss = draw(st.sampled_from(["bce", "sparse"]))
    fmt = draw(st.sampled_from(FORMATS))
    header, rows = draw(bce_tables() if loss == "bce" else sparse_tables())
    return loss, fmt, draw(mutated(render(fmt, header, rows).encode()))


# NdjsonInput._locate leaks a TextIOWrapper on some malformed lines (a ResourceWarning,
# turned into an error by pyproject's filterwarnings); that bug has its own xfail test in
# test_hardening.py, so it does not hide what this test is about.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
@FUZZ
@given(case=broken_documents())
def test_broken_documents_fail_cleanly(case):
    loss, fmt, content = case
    result = invoke(loss, fmt, content)
    if result.exit_code == 0:  # some mutations leave a valid document; its output must still be strict JSON
        strict_json(result.stdout)
    else:
        assert result.stdout == ""
