"""Memory and output paths of issue 19: batches bounded by bytes, the same numbers for any batch
size, a bounded peak memory on a wide input, per-sample NDJSON as ``json.dumps`` writes it, and
automatic column detection on 10,000 classes equal to the explicit form.

No timed assertions: the peak memory is asserted with a wide margin, in a subprocess of its own.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import textwrap

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import cecli
from cecli.cli.app import app
from cecli.io.base import ReadSettings, budget_rows
from cecli.io.columns import choose_columns
from cecli.io.sources import open_input
from cecli.lines import ndjson_lines

MB = 1 << 20


@pytest.mark.parametrize(
    ("width", "batch_rows", "budget", "expected"),
    [
        (10, 1 << 16, 64 * MB, 1 << 16),  # 2**26 // (8 * 5 * 10) = 167,772 rows: --batch-rows is the bound
        (1000, 1 << 16, 64 * MB, 2**26 // (8 * 5 * 1000)),  # 1,677 rows of 1,000 classes
        (1001, 1 << 16, 64 * MB, 2**26 // (8 * 5 * 1001)),  # a label column counts too: 1,676
        (1000, 500, 64 * MB, 500),  # a smaller --batch-rows still wins
        (10**8, 1 << 16, 64 * MB, 1),  # never fewer than one row
        (0, 1 << 16, 64 * MB, 1 << 16),  # no numbers read: as one
        (3, 1 << 16, 8 * 5 * 3 * 7, 7),  # a budget of exactly 7 rows
    ],
)
def test_budget_rows_rule(width, batch_rows, budget, expected):
    assert budget_rows(width, batch_rows, budget) == expected


ROWS, CLASSES = 103, 40


def _data(probabilities: bool = False):
    """Labels and float32 logits; or, with `probabilities`, values in (0, 1) whose rows do not sum to 1."""
    rng = np.random.default_rng(19)
    logits = rng.standard_normal((ROWS, CLASSES)).astype(np.float32) * 4
    labels = rng.integers(0, CLASSES, ROWS)
    if probabilities:
        logits = (np.abs(logits) + np.float32(0.01)) / np.float32(100)
    return labels, logits


def _write(tmp_path, kind: str, probabilities: bool = False):
    """The same rows in one format; the prediction columns are ``p_0..`` or one list column ``p``."""
    labels, logits = _data(probabilities)
    names = [f"p_{c}" for c in range(CLASSES)]
    rows = [[repr(float(v)) for v in row] for row in logits]
    path = tmp_path / f"d.{kind.split('-')[0]}"
    if kind == "csv":
        lines = ["y," + ",".join(names)] + [f"{y}," + ",".join(r) for y, r in zip(labels, rows, strict=True)]
        path.write_text("\n".join(lines) + "\n")
    elif kind in ("ndjson", "ndjson-list", "json-list"):
        records = [
            {"y": int(y), "p": [float(v) for v in row]}
            if kind != "ndjson"
            else {"y": int(y), **{n: float(v) for n, v in zip(names, row, strict=True)}}
            for y, row in zip(labels, logits, strict=True)
        ]
        if kind == "json-list":
            path.write_text(json.dumps(records))
        else:
            path.write_text("".join(json.dumps(r) + "\n" for r in records))
    else:
        flat = pa.array(logits.ravel())
        if kind == "parquet":
            table = pa.table({"y": labels, **{n: logits[:, c] for c, n in enumerate(names)}})
        elif kind == "parquet-fixed":
            table = pa.table({"y": labels, "p": pa.FixedSizeListArray.from_arrays(flat, CLASSES)})
        else:  # a variable-size list column: its width is known only once a batch is read
            offsets = pa.array(np.arange(0, ROWS * CLASSES + 1, CLASSES, dtype=np.int32))
            table = pa.table({"y": labels, "p": pa.ListArray.from_arrays(offsets, flat)})
        pq.write_table(table, path, row_group_size=50)
    return path


FORMATS = ["csv", "ndjson", "ndjson-list", "json-list", "parquet", "parquet-fixed", "parquet-list"]


@pytest.mark.parametrize("kind", FORMATS)
@pytest.mark.parametrize("rows", [1, 7, 40])
def test_every_format_cuts_batches_to_the_byte_budget(tmp_path, kind, rows):
    """A budget of `rows` rows of 41 numbers (label + 40 classes) gives batches of at most `rows` rows, in order."""
    settings = ReadSettings(batch_bytes=8 * 5 * (CLASSES + 1) * rows)
    source = open_input(str(_write(tmp_path, kind)), settings)
    p = "p" if "list" in kind or kind == "parquet-fixed" else "p_*"
    selection = choose_columns("softmax", source.columns, file="d", y="y", p=p)
    batches = list(source.batches(selection, settings, class_labels=True))
    source.close()
    assert max(b.size for b in batches) <= rows
    assert [b.offset for b in batches] == list(np.cumsum([0] + [b.size for b in batches[:-1]]))
    labels, logits = _data()
    predictions = np.concatenate([b.arrays["predictions"] for b in batches])
    assert np.array_equal(predictions, logits)
    assert np.array_equal(np.concatenate([b.arrays["labels"][:, 0] for b in batches]), labels)


def _document(path, loss: str, p: str, budget: int, **options) -> str:
    read = ReadSettings(batch_bytes=budget)
    labels = {} if loss == "entropy" else {"y": "y", "per_class": True}
    result = cecli.compute(loss, str(path), p=p, read=read, top=3, **labels, **options)
    return json.dumps(result.to_dict(), allow_nan=False)


@pytest.mark.parametrize("kind", ["csv", "parquet-fixed", "ndjson-list"])
@pytest.mark.parametrize(
    ("loss", "options"),
    [
        ("softmax", {}),
        ("softmax", {"label_smoothing": 0.1, "temperature": 0.7}),
        ("sparse", {"from_logits": True}),
        ("sparse", {"label_smoothing": 0.2}),  # probabilities off the simplex: the warning's count too
        ("sparse", {"label_smoothing": 0.2, "class_weights": tuple(1.0 + c % 3 for c in range(CLASSES))}),
        ("entropy", {}),
    ],
)
def test_results_are_byte_identical_for_any_budget(tmp_path, kind, loss, options):
    """Budgets of 1, 3 and 64 rows and the default give the same JSON, byte for byte."""
    probabilities = loss == "entropy" or not options.get("from_logits", loss == "softmax")
    path = _write(tmp_path, kind, probabilities)
    p = "p_*" if kind == "csv" else "p"
    documents = {
        budget: _document(path, loss, p, budget, **options) for budget in (8 * 5 * 41, 8 * 5 * 41 * 3, 8 * 5 * 41 * 64)
    }
    default = _document(path, loss, p, 64 * MB, **options)
    assert all(document == default for document in documents.values())


def test_softmax_mean_written_out(tmp_path):
    """The mean of ``log(sum_c exp(x_c)) - x_y`` over the rows, computed with math, as cecli reports it."""
    labels, logits = _data()
    losses = [
        math.log(math.fsum(math.exp(float(v)) for v in row)) - float(row[y])
        for y, row in zip(labels, logits, strict=True)
    ]
    path = str(_write(tmp_path, "parquet-fixed"))
    result = cecli.compute("softmax", path, y="y", p="p", read=ReadSettings(batch_bytes=1))
    expected = math.fsum(losses) / ROWS
    assert result.value == pytest.approx(expected, rel=1e-13)


# A child that runs cecli and prints the peak resident memory of that process alone (kB on Linux).
_PEAK = textwrap.dedent(
    """
    import resource, subprocess, sys
    done = subprocess.run([sys.executable, "-m", "cecli", *sys.argv[1:]], capture_output=True, text=True)
    print(done.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, done.stdout.strip(), done.stderr)
    """
)


@pytest.mark.skipif(sys.platform != "linux", reason="ru_maxrss is in kB on Linux only")
def test_wide_softmax_runs_in_bounded_memory(tmp_path):
    """20,000 rows x 1,000 float32 logits in a fixed-size list (80 MB decoded, 160 MB as float64).

    Row i has logit a_i = i mod 7 at its label and 0 elsewhere: loss_i = log(e^a_i + 999) - a_i.
    With one batch of 20,000 rows the process peaked near 900 MB; budgeted batches keep it
    about 250 MB: the bound, 500 MB, has a wide margin either way.
    """
    n, classes = 20_000, 1000
    labels = (np.arange(n) * 7919) % classes
    heights = (np.arange(n) % 7).astype(np.float32)
    logits = np.zeros((n, classes), dtype=np.float32)
    logits[np.arange(n), labels] = heights
    path = tmp_path / "wide.parquet"
    column = pa.FixedSizeListArray.from_arrays(pa.array(logits.ravel()), classes)
    pq.write_table(pa.table({"label": labels, "logits": column}), path, row_group_size=5000)
    del logits, column
    done = subprocess.run(
        [sys.executable, "-c", _PEAK, "softmax", str(path), "-y", "label", "-p", "logits", "--value-only"],
        capture_output=True,
        text=True,
        check=True,
    )
    code, peak_kb, value, *_ = done.stdout.split(maxsplit=3)
    assert code == "0"
    losses = [math.log(math.exp(a) + 999) - a for a in range(7)]
    counts = [len(range(a, n, 7)) for a in range(7)]
    expected = math.fsum(c * loss for c, loss in zip(counts, losses, strict=True)) / n
    assert float(value) == pytest.approx(expected, rel=1e-13)
    assert int(peak_kb) < 500 * 1024


def _reference_lines(first_row, losses, counted, keep):
    """One ``json.dumps`` of a dict a record, as cecli wrote per-sample NDJSON before."""
    out = []
    for i, (loss, ok) in enumerate(zip(losses.tolist(), counted.tolist(), strict=True)):
        record = {"row": first_row + i, "loss": loss if ok and math.isfinite(loss) else None}
        if ok and not math.isfinite(loss):
            record["nonfinite"] = repr(loss)
        record.update({name: values[i] for name, values in keep.items()})
        out.append(json.dumps(record, allow_nan=False, default=str) + "\n")
    return "".join(out)


@pytest.mark.parametrize(
    "keep",
    [
        {},
        {"id": ['a\u00e9"\\', "日本", None, "", "\n"]},  # escapes and non-ASCII as json.dumps writes them (ASCII)
        {"n": [1, -2, 2**70, 0, True], "f": [0.1, 1e300, -0.0, 5e-324, 2.5]},  # big ints, shortest float reprs
        {"l": [[1, 2], {"a": None}, [], False, None]},  # nested values
        {"row": ["x", "y", "z", "w", "v"], "q": [1, 2, 3, 4, 5]},  # a kept column named like ours replaces it in place
        {"loss": [1, 2, 3, 4, 5]},
    ],
)
@pytest.mark.parametrize("copies", [1, 500])  # 5 rows a record at a time, 2,500 in pyarrow
def test_ndjson_lines_are_what_json_dumps_writes(keep, copies):
    keep = {name: values * copies for name, values in keep.items()}
    losses = np.tile([0.1, np.inf, np.nan, 1e-300, -np.inf], copies)
    counted = np.tile([True, True, True, False, True], copies)
    assert ndjson_lines(11, losses, counted, keep) == _reference_lines(11, losses, counted, keep).encode()
    finite = np.tile([0.30000000000000004, 1.0, 2.5e-8, 123456.789, 0.0], copies)
    everyone = np.ones(finite.size, bool)
    assert ndjson_lines(1, finite, everyone, keep) == _reference_lines(1, finite, everyone, keep).encode()


def test_ndjson_output_and_out_file_are_the_same_lines(runner, tmp_path):
    """``-f ndjson`` and ``--out .ndjson`` write the same bytes, chunked or not (70,000 rows: two chunks)."""
    n = 70_000
    rows = "".join(f"{i % 2},{0.25 + (i % 1000) / 4000}\n" for i in range(n))
    path = tmp_path / "d.csv"
    path.write_text("y,p\n" + rows)
    printed = runner.invoke(app, ["bce", str(path), "-f", "ndjson"])
    assert printed.exit_code == 0
    out = tmp_path / "o.ndjson"
    written = runner.invoke(app, ["bce", str(path), "--out", str(out), "-f", "json", "--summary-only"])
    assert written.exit_code == 0
    assert out.read_text() == printed.stdout
    lines = printed.stdout.splitlines()
    assert len(lines) == n
    p = 0.25 + 69_999 % 1000 / 4000
    assert json.loads(lines[-1]) == {"row": n, "loss": pytest.approx(-math.log(p) if 69_999 % 2 else -math.log1p(-p))}


def _wide_csv(tmp_path, name, header, rows):
    path = tmp_path / name
    path.write_text(",".join(header) + "\n" + "".join(",".join(r) + "\n" for r in rows))
    return path


CLASSES_10K = 10_000


def test_10k_classes_found_automatically_as_named(runner, tmp_path):
    """``label, p_0..p_9999``: the automatic choice gives the JSON of ``-y label -p 'p_*'``, byte for byte.

    Row 1 puts 1/2 on its label and 1/19998 on every other class: loss log 2; row 2 is uniform: log 10000.
    """
    half, rest = "0.5", repr(0.5 / (CLASSES_10K - 1))
    uniform = repr(1 / CLASSES_10K)
    header = ["label", *(f"p_{c}" for c in range(CLASSES_10K))]
    rows = [["17", *(half if c == 17 else rest for c in range(CLASSES_10K))], ["9999", *[uniform] * CLASSES_10K]]
    path = _wide_csv(tmp_path, "wide.csv", header, rows)
    automatic = runner.invoke(app, ["sparse", str(path), "-f", "json"])
    explicit = runner.invoke(app, ["sparse", str(path), "-y", "label", "-p", "p_*", "-f", "json"])
    assert automatic.exit_code == explicit.exit_code == 0
    assert automatic.stdout == explicit.stdout
    document = json.loads(automatic.stdout)
    assert document["input"]["label_columns"] == ["label"]
    assert len(document["input"]["prediction_columns"]) == CLASSES_10K
    assert document["per_sample"] == [pytest.approx(math.log(2), rel=1e-12), pytest.approx(math.log(1e4), rel=1e-12)]


def test_10k_label_and_prediction_families_pair_automatically(runner, tmp_path):
    """``y_0..y_9999, p_0..p_9999`` (cce): paired by suffix as with ``-y 'y_*' -p 'p_*'``.

    One one-hot row against uniform predictions: loss log 10000.
    """
    header = [*(f"y_{c}" for c in range(CLASSES_10K)), *(f"p_{c}" for c in range(CLASSES_10K))]
    uniform = repr(1 / CLASSES_10K)
    onehot = ["1" if c == 3 else "0" for c in range(CLASSES_10K)]
    path = _wide_csv(tmp_path, "pairs.csv", header, [[*onehot, *[uniform] * CLASSES_10K]])
    automatic = runner.invoke(app, ["cce", str(path), "-f", "json"])
    explicit = runner.invoke(app, ["cce", str(path), "-y", "y_*", "-p", "p_*", "-f", "json"])
    assert automatic.exit_code == explicit.exit_code == 0
    assert automatic.stdout == explicit.stdout
    assert json.loads(automatic.stdout)["value"] == pytest.approx(math.log(1e4), rel=1e-12)
