"""Breakdowns: ``--by``, ``--per-class``, ``--top``, accuracy, perplexity, the loss histogram, and ``cecli kl``.

Streaming contract: group, per-class, histogram and top results are *exactly* equal however the input is
batched or split into files. Known answers are computed here by hand (math/NumPy), never through cecli.
"""

from __future__ import annotations

import csv
import json
import math
import tempfile
from itertools import pairwise
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import cecli
from cecli.cli import app
from cecli.io.base import ReadSettings
from cecli.numerics.argmax import _row_argmax
from cecli.numerics.reduce import HISTOGRAM_EDGES, Histogram

N = 200
CLASSES = ("cat", "dog", "eel")
PRED_COLUMNS = [f"p_{name}" for name in CLASSES]
SHARDS = (0, 50, 123, N)  # three uneven shards
BREAKDOWN_KEYS = (
    "by", "per_class", "histogram", "top", "accuracy", "perplexity", "mean", "sum", "value", "count", "min", "max",
)  # fmt: skip
MAX_LOSS_ROWS = (8, 21, 151, 181)  # 1-based rows whose true class has p = 1/64 (the largest loss, tied)


# --- the seeded dataset ---------------------------------------------------------------------------------------


def make_dataset(seed: int = 20240611) -> dict:
    """200 sparse rows with dyadic probabilities (rows sum to exactly 1), a label, split, fold, id and weight."""
    rng = np.random.default_rng(seed)
    counts = rng.multinomial(61, [1 / 3] * 3, size=N) + 1  # each >= 1, each row sums to 64
    label = rng.integers(0, 3, N)
    counts[4], label[4] = (30, 30, 4), 1  # arg-max tie: the first maximum (class 0) is predicted -> wrong
    counts[5], label[5] = (30, 30, 4), 0  # ... -> right
    counts[7], label[7] = (2, 1, 61), 1  # p[label] = 1/64: the largest loss, log 64
    counts[20], label[20] = (1, 2, 61), 0
    for copy, original in ((150, 20), (180, 7), (101, 3)):  # exact duplicates, in other shards
        counts[copy], label[copy] = counts[original], label[original]
    split = rng.choice(np.array(["train", "val", "test", "", None], dtype=object), N).tolist()
    return {
        "id": [f"r{i:03d}" for i in range(N)],
        "split": split,
        "fold": rng.integers(0, 4, N).tolist(),
        "w": (rng.integers(0, 8, N) / 4).tolist(),
        "label": label.tolist(),
        "p": counts / 64.0,
    }


DATA = make_dataset()


def table(data: dict, start: int = 0, stop: int = N) -> pa.Table:
    columns = {
        "id": pa.array(data["id"][start:stop], pa.string()),
        "split": pa.array(data["split"][start:stop], pa.string()),
        "fold": pa.array(data["fold"][start:stop], pa.int64()),
        "w": pa.array(data["w"][start:stop], pa.float64()),
        "label": pa.array(data["label"][start:stop], pa.int64()),
    }
    for j, name in enumerate(PRED_COLUMNS):
        columns[name] = pa.array(data["p"][start:stop, j], pa.float64())
    return pa.table(columns)


def write(path: Path, data: dict, start: int = 0, stop: int = N) -> str:
    """Write rows [start, stop) as CSV (nulls become empty fields) or Parquet, by the suffix of `path`."""
    part = table(data, start, stop)
    if path.suffix == ".parquet":
        pq.write_table(part, path)
        return str(path)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(part.column_names)
        for record in part.to_pylist():
            writer.writerow(["" if v is None else repr(v) if isinstance(v, float) else v for v in record.values()])
    return str(path)


@pytest.fixture(scope="module")
def dataset_files(tmp_path_factory) -> dict:
    """``{fmt: {"full": path, "shards": [p1, p2, p3]}}`` for csv and parquet."""
    root = tmp_path_factory.mktemp("breakdowns")
    files = {}
    for fmt in ("csv", "parquet"):
        full = write(root / f"full.{fmt}", DATA)
        shards = [write(root / f"part-{i}.{fmt}", DATA, a, b) for i, (a, b) in enumerate(pairwise(SHARDS))]
        files[fmt] = {"full": full, "shards": shards}
    return files


def breakdowns(source, *, batch_rows: int = 1000, by: str = "split", weight: str | None = None) -> dict:
    result = cecli.compute(
        "sparse",
        source,
        y="label",
        p="p_*",
        by=by,
        per_class=True,
        top=5,
        keep="id",
        weight=weight,
        per_sample=False,
        read=ReadSettings(batch_rows=batch_rows),
    )
    document = result.to_dict(per_sample=False)
    return {key: document[key] for key in BREAKDOWN_KEYS}


# --- (a) exactly equal across batch sizes and file splits -----------------------------------------------------

LAYOUTS = [
    pytest.param("full", 1, id="batch-1"),
    pytest.param("full", 7, id="batch-7"),
    pytest.param("full", 64, id="batch-64"),
    pytest.param("shards", 1000, id="3-shards"),
    pytest.param("shards", 7, id="3-shards-batch-7"),
    pytest.param("shards", 1, id="3-shards-batch-1"),
]


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
@pytest.mark.parametrize("by", ["split", "split,fold"], ids=["by-split", "by-split-fold"])
@pytest.mark.parametrize(("layout", "batch_rows"), LAYOUTS)
def test_breakdowns_do_not_depend_on_batches_or_files(dataset_files, fmt, by, layout, batch_rows):
    expected = breakdowns(dataset_files[fmt]["full"], batch_rows=1000, by=by)
    actual = breakdowns(dataset_files[fmt][layout], batch_rows=batch_rows, by=by)
    assert actual == expected
    assert [entry["row"] for entry in actual["top"][:4]] == list(MAX_LOSS_ROWS)  # global rows, even in shards


@pytest.mark.parametrize(("layout", "batch_rows"), [("full", 3), ("shards", 1), ("shards", 64)])
def test_weighted_breakdowns_do_not_depend_on_batches_or_files(dataset_files, layout, batch_rows):
    expected = breakdowns(dataset_files["parquet"]["full"], by="fold", weight="w")
    assert breakdowns(dataset_files["parquet"][layout], batch_rows=batch_rows, by="fold", weight="w") == expected


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    cuts=st.lists(st.integers(1, N - 1), min_size=0, max_size=4, unique=True).map(sorted),
    batch_rows=st.integers(1, 80),
    fmt=st.sampled_from(["csv", "parquet"]),
)
def test_any_split_and_batch_size_gives_the_same_breakdowns(dataset_files, cuts, batch_rows, fmt):
    expected = breakdowns(dataset_files[fmt]["full"], by="split,fold")
    bounds = [0, *cuts, N]
    with tempfile.TemporaryDirectory() as folder:
        paths = [write(Path(folder) / f"part-{i}.{fmt}", DATA, a, b) for i, (a, b) in enumerate(pairwise(bounds))]
        assert breakdowns(paths, batch_rows=batch_rows, by="split,fold") == expected


def test_cli_json_breakdowns_do_not_depend_on_batch_rows(runner, dataset_files):
    documents = []
    for batch_rows in ("1", "13", "65536"):
        args = ["sparse", *dataset_files["csv"]["shards"], "-y", "label", "-p", "p_*", "--by", "split,fold"]
        args += [
            "--per-class",
            "--top",
            "5",
            "--keep",
            "id",
            "--summary-only",
            "-f",
            "json",
            "--batch-rows",
            batch_rows,
        ]
        result = runner.invoke(app, args, prog_name="cecli")
        assert result.exit_code == 0, result.output
        document = json.loads(result.stdout)
        documents.append({key: document[key] for key in BREAKDOWN_KEYS})
    assert documents[0] == documents[1] == documents[2]
    assert documents[0] == breakdowns(dataset_files["csv"]["full"], by="split,fold")


# --- (b) known answers computed by hand ------------------------------------------------------------------------

HAND_LOSSES = [-math.log(DATA["p"][i, DATA["label"][i]]) for i in range(N)]


def hand_summary(rows: list[int]) -> dict:
    losses = [HAND_LOSSES[i] for i in rows]
    return {"count": len(rows), "mean": math.fsum(losses) / len(rows), "sum": math.fsum(losses), "min": min(losses)}


def check_summary(actual: dict, rows: list[int]) -> None:
    expected = hand_summary(rows)
    assert actual["count"] == expected["count"]
    assert actual["weight_sum"] == expected["count"]
    assert actual["mean"] == pytest.approx(expected["mean"], rel=1e-12)
    assert actual["sum"] == pytest.approx(expected["sum"], rel=1e-12)
    assert actual["min"] == pytest.approx(expected["min"], rel=1e-12)
    assert actual["max"] == pytest.approx(max(HAND_LOSSES[i] for i in rows), rel=1e-12)


def csv_key(value):
    return "" if value is None else str(value)  # CSV has no null text: an empty field; values are text


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_per_group_mean_is_the_mean_loss_of_the_groups_rows(dataset_files, fmt):
    result = breakdowns(dataset_files[fmt]["full"], by="split,fold")
    normalise = csv_key if fmt == "csv" else (lambda value: value)
    expected: dict[tuple, list[int]] = {}
    for i in range(N):
        expected.setdefault((normalise(DATA["split"][i]), normalise(DATA["fold"][i])), []).append(i)
    actual = {(normalise(g["key"]["split"]), normalise(g["key"]["fold"])): g for g in result["by"]}
    assert set(actual) == set(expected)
    assert sum(g["count"] for g in result["by"]) == N
    for key, rows in expected.items():
        check_summary(actual[key], rows)


def test_parquet_null_and_empty_groups_are_distinct_and_null_sorts_last(dataset_files):
    groups = breakdowns(dataset_files["parquet"]["full"], by="split")["by"]
    keys = [g["key"] for g in groups]
    assert {"split": ""} in keys
    assert keys[-1] == {"split": None}
    assert groups[-1]["count"] == sum(1 for s in DATA["split"] if s is None)


def test_per_class_is_named_after_the_prediction_columns(dataset_files):
    per_class = breakdowns(dataset_files["parquet"]["full"])["per_class"]
    assert [(c["class"], c["index"]) for c in per_class] == [("cat", 0), ("dog", 1), ("eel", 2)]
    for entry in per_class:
        check_summary(entry, [i for i in range(N) if DATA["label"][i] == entry["index"]])


def first_max(row) -> int:
    values = list(row)
    return values.index(max(values))


def test_accuracy_is_the_share_of_first_argmax_hits(dataset_files):
    result = breakdowns(dataset_files["csv"]["full"])
    hits = [first_max(DATA["p"][i]) == DATA["label"][i] for i in range(N)]
    assert hits[4] is False and hits[5] is True  # the tie rows
    assert result["accuracy"] == pytest.approx(sum(hits) / N, rel=1e-15)


def test_weighted_accuracy_uses_the_sample_weights(dataset_files):
    result = breakdowns(dataset_files["parquet"]["full"], weight="w")
    hits = [first_max(DATA["p"][i]) == DATA["label"][i] for i in range(N)]
    expected = math.fsum(w for w, hit in zip(DATA["w"], hits, strict=True) if hit) / math.fsum(DATA["w"])
    assert result["accuracy"] == pytest.approx(expected, rel=1e-12)


def test_perplexity_is_exp_of_the_mean(dataset_files):
    result = breakdowns(dataset_files["csv"]["full"])
    assert result["perplexity"] == math.exp(result["mean"])
    assert result["perplexity"] == pytest.approx(math.exp(math.fsum(HAND_LOSSES) / N), rel=1e-12)


def test_perplexity_in_bits_is_still_exp_of_the_mean_in_nats(dataset_files):
    result = cecli.compute("sparse", dataset_files["parquet"]["full"], y="label", p="p_*", base="2", per_sample=False)
    mean_nats = math.fsum(HAND_LOSSES) / N
    assert result.options.unit == "bits"
    assert result.partial.mean == pytest.approx(mean_nats / math.log(2), rel=1e-12)
    assert result.perplexity == pytest.approx(math.exp(mean_nats), rel=1e-12)


def test_top_lists_the_largest_losses_first_and_earlier_rows_on_ties(dataset_files):
    top = breakdowns(dataset_files["parquet"]["full"])["top"]
    order = sorted(range(N), key=lambda i: (-HAND_LOSSES[i], i))[:5]
    assert [entry["row"] for entry in top] == [i + 1 for i in order]
    assert [entry["id"] for entry in top] == [DATA["id"][i] for i in order]
    assert [set(entry) for entry in top] == [{"row", "loss", "id"}] * 5
    assert [entry["loss"] for entry in top] == pytest.approx([HAND_LOSSES[i] for i in order], rel=1e-12)
    assert {entry["loss"] for entry in top[:4]} == {top[0]["loss"]}  # the tied rows tie exactly
    assert top[0]["loss"] == pytest.approx(math.log(64), rel=1e-12)


def test_top_on_a_small_file_with_ties(write_file):
    # losses: log 2, log 4, log 4, log 4/3, log 2 -> rows 2, 3 (tie, earlier first), then 1, 5 (tie)
    path = write_file("t.csv", "id,y,p_0,p_1\na,0,.5,.5\nb,1,.75,.25\nc,0,.25,.75\nd,0,.75,.25\ne,1,.5,.5\n")
    result = cecli.compute("sparse", str(path), y="y", keep="id", top=4, per_sample=False)
    top = result.to_dict()["top"]
    assert [(e["row"], e["id"]) for e in top] == [(2, "b"), (3, "c"), (1, "a"), (5, "e")]
    assert [e["loss"] for e in top] == pytest.approx([math.log(4), math.log(4), math.log(2), math.log(2)], rel=1e-12)


def hand_histogram(losses) -> list[int]:
    inner = np.asarray(HISTOGRAM_EDGES[1:-1])
    bins = np.searchsorted(inner, np.asarray(losses, dtype=np.float64), side="right")
    return np.bincount(bins, minlength=len(HISTOGRAM_EDGES) - 1).tolist()


def test_histogram_edges_are_fixed_half_decades_with_a_null_last_edge(dataset_files):
    edges = breakdowns(dataset_files["csv"]["full"])["histogram"]["edges"]
    assert len(edges) == 21
    assert edges[0] == 0.0
    assert edges[-1] is None
    assert edges[1:-1] == [10.0 ** (k / 2) for k in range(-12, 7)]
    assert edges[1] == 1e-6 and edges[13] == 1.0 and edges[-2] == 1000.0


def test_histogram_counts_follow_the_fixed_edges(dataset_files):
    histogram = breakdowns(dataset_files["parquet"]["full"])["histogram"]
    assert histogram["counts"] == hand_histogram(HAND_LOSSES)
    assert sum(histogram["counts"]) == N


def test_histogram_bins_are_closed_on_the_left(write_file):
    """Entropy in bits lands exactly on edges: 0 -> [0, 1e-6), 1 and 2 -> [1, 3.16), inf -> the last bin."""
    path = write_file("e.csv", "p_0,p_1,p_2,p_3\n1,0,0,0\n1,1,0,0\n1,1,1,1\n")
    counts = cecli.compute("entropy", str(path), base="2").to_dict()["histogram"]["counts"]
    assert counts == hand_histogram([0.0, 1.0, 2.0])
    assert counts[0] == 1 and counts[13] == 2
    path = write_file("s.csv", "y,p_0,p_1\n0,0,1\n0,1,0\n")
    counts = cecli.compute("sparse", str(path), eps=0.0, per_sample=False).to_dict()["histogram"]["counts"]
    assert counts[0] == 1 and counts[-1] == 1 and sum(counts) == 2


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(allow_nan=True, allow_infinity=True), max_size=50))
def test_histogram_bins_any_floats_like_searchsorted(values):
    """The octave-table binning equals a plain searchsorted over the edges for every float (NaN left out)."""
    values = np.asarray(values, dtype=np.float64)
    edges = np.asarray(HISTOGRAM_EDGES[1:-1])
    kept = values[~np.isnan(values)]
    boundary = np.concatenate([edges, np.nextafter(edges, 0), np.nextafter(edges, np.inf), kept])
    for sample in (kept, boundary):
        assert list(Histogram.of(sample).counts) == hand_histogram(sample)


@settings(max_examples=200, deadline=None)
@given(
    st.integers(1, 14).flatmap(
        lambda classes: st.lists(st.lists(st.integers(0, 3), min_size=classes, max_size=classes), max_size=40)
    ),
    st.sampled_from([np.float32, np.float64]),
)
def test_row_argmax_is_numpys_first_maximum(rows, dtype):
    """Ties are common with values 0..3, so the first-maximum rule is exercised (14 classes: NumPy's path)."""
    if not rows:
        return
    matrix = np.asfortranarray(np.asarray(rows, dtype=dtype))
    assert _row_argmax(matrix).tolist() == matrix.argmax(axis=1).tolist()


@pytest.mark.parametrize("loss", ["sparse", "bce"])
def test_value_only_skips_accuracy_and_histogram_but_not_the_value(write_file, loss):
    content = "y,p_0,p_1\n0,.7,.3\n1,.4,.6\n1,.9,.1\n" if loss == "sparse" else "y,p\n1,.7\n0,.4\n1,.1\n"
    path = str(write_file("v.csv", content))
    full = cecli.compute(loss, path, y="y")
    lean = cecli.compute(loss, path, y="y", extras=False)
    assert lean.value == full.value and lean.partial == full.partial
    assert full.accuracy is not None and full.histogram is not None
    assert lean.accuracy is None and lean.histogram is None
    assert "histogram" not in lean.to_dict() and lean.to_dict()["accuracy"] is None


BCE_ACCURACY = [
    # y = [1, 0, 1, 0, 1] and p = [0.5, 0.49, 0.2, 0.7, 0.99]: rows 1, 2 and 5 are right (p >= 0.5 is positive)
    pytest.param("y,p\n1,0.5\n0,0.49\n1,0.2\n0,0.7\n1,0.99\n", [], 3 / 5, id="probabilities"),
    # the same decisions from logits: x >= 0 is positive
    pytest.param("y,p\n1,0\n0,-0.01\n1,-1.4\n0,0.8\n1,4.6\n", ["--from-logits"], 3 / 5, id="logits"),
    # soft labels: y >= 0.5 is positive
    pytest.param("y,p\n0.7,0.6\n0.3,0.6\n0.5,0.5\n", [], 2 / 3, id="soft-labels"),
    # multi-label: per row the share of right columns, then the mean: (1/2 + 1/2 + 1) / 3
    pytest.param("y_a,y_b,p_a,p_b\n1,0,0.9,0.6\n0,1,0.3,0.4\n1,1,0.5,0.5\n", [], 2 / 3, id="multi-label"),
    # weighted: rows 1 and 3 are right, weights 1 and 3 of 1 + 2 + 3
    pytest.param("y,p,w\n1,0.9,1\n1,0.1,2\n0,0.2,3\n", ["-w", "w"], 4 / 6, id="weighted"),
]


@pytest.mark.parametrize(("content", "flags", "expected"), BCE_ACCURACY)
def test_bce_accuracy_at_one_half(runner, write_file, content, flags, expected):
    path = write_file("b.csv", content)
    result = runner.invoke(app, ["bce", str(path), *flags, "-f", "json", "--summary-only"], prog_name="cecli")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["accuracy"] == pytest.approx(expected, rel=1e-15)
    assert document["perplexity"] is None


def test_cce_accuracy_and_per_class_use_the_arg_max_label(write_file):
    content = "y_cat,y_dog,p_cat,p_dog\n1,0,0.75,0.25\n0,1,0.75,0.25\n0.25,0.75,0.25,0.75\n0,1,0.5,0.5\n"
    path = str(write_file("c.csv", content))
    losses = [math.log(4 / 3), math.log(4), 0.25 * math.log(4) + 0.75 * math.log(4 / 3), math.log(2)]
    result = cecli.compute("cce", path, per_class=True, per_sample=False)
    document = result.to_dict()
    assert document["accuracy"] == pytest.approx(2 / 4, rel=1e-15)  # rows 1 and 3; the tie in row 4 predicts cat
    assert [(c["class"], c["count"]) for c in document["per_class"]] == [("cat", 1), ("dog", 3)]
    assert document["per_class"][1]["mean"] == pytest.approx(math.fsum(losses[1:]) / 3, rel=1e-12)
    assert document["perplexity"] == pytest.approx(math.exp(math.fsum(losses) / 4), rel=1e-12)


def test_sparse_class_names_as_labels_and_per_class(write_file):
    content = "label,p_cat,p_dog,p_eel\ncat,.5,.25,.25\ndog,.5,.25,.25\neel,.25,.25,.5\ncat,.375,.375,.25\n"
    document = cecli.compute("sparse", str(write_file("n.csv", content)), per_class=True).to_dict()
    per_class = {c["class"]: c for c in document["per_class"]}
    assert list(per_class) == ["cat", "dog", "eel"]
    assert per_class["cat"]["count"] == 2
    assert per_class["cat"]["mean"] == pytest.approx((math.log(2) + math.log(1 / 0.375)) / 2, rel=1e-12)
    assert per_class["dog"]["mean"] == pytest.approx(math.log(4), rel=1e-12)
    assert document["accuracy"] == 0.75


# --- (c) errors and null keys ----------------------------------------------------------------------------------


def invoke(runner, args):
    result = runner.invoke(app, args, prog_name="cecli")
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(["bce", "b.csv", "--per-class"], id="bce-per-class"),
        pytest.param(["entropy", "c.csv", "-p", "p_0,p_1", "--per-class"], id="entropy-per-class"),
        pytest.param(["kl", "c.csv", "--per-class"], id="kl-per-class"),
        pytest.param(["bce", "b.csv", "--by", "split"], id="by-missing-column"),
        pytest.param(["cce", "c.csv", "--by", "9"], id="by-position-out-of-range"),
    ],
)
def test_breakdown_usage_errors_exit_2(runner, write_file, tmp_path, monkeypatch, args):
    write_file("b.csv", "y_true,y_pred\n1,0.9\n0,0.2\n")
    write_file("c.csv", "y_0,y_1,p_0,p_1\n1,0,.4,.6\n0,1,.3,.7\n")
    monkeypatch.chdir(tmp_path)
    exit_code, stdout, stderr = invoke(runner, args)
    assert exit_code == 2
    assert stdout == ""
    assert stderr.startswith("cecli: error: ") and len(stderr.splitlines()) == 1


def test_per_class_for_bce_is_an_option_error_in_python(write_file):
    path = str(write_file("b.csv", "y_true,y_pred\n1,0.9\n0,0.2\n"))
    with pytest.raises(cecli.OptionError, match="--per-class"):
        cecli.compute("bce", path, per_class=True)


@pytest.mark.parametrize(
    ("args", "accuracy", "perplexity"),
    [
        pytest.param(["bce", "b.csv"], True, False, id="bce"),
        pytest.param(["cce", "c.csv"], True, True, id="cce"),
        pytest.param(["sparse", "s.csv"], True, True, id="sparse"),
        pytest.param(["softmax", "s.csv", "-y", "y", "-p", "p_0,p_1"], True, True, id="softmax"),
        pytest.param(["entropy", "c.csv", "-p", "p_0,p_1"], False, True, id="entropy"),
        pytest.param(["kl", "c.csv"], False, False, id="kl"),
    ],
)
def test_accuracy_and_perplexity_are_null_where_they_do_not_apply(
    runner, write_file, tmp_path, monkeypatch, args, accuracy, perplexity
):
    write_file("b.csv", "y_true,y_pred\n1,0.9\n0,0.2\n")
    write_file("c.csv", "y_0,y_1,p_0,p_1\n1,0,.4,.6\n0,1,.3,.7\n")
    write_file("s.csv", "y,p_0,p_1\n0,.4,.6\n1,.3,.7\n")
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, [*args, "-f", "json"], prog_name="cecli")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert "accuracy" in document and "perplexity" in document
    assert (document["accuracy"] is not None) is accuracy
    assert (document["perplexity"] is not None) is perplexity
    if perplexity:
        assert document["perplexity"] == pytest.approx(math.exp(document["mean"]), rel=1e-15)
    assert "by" not in document and "per_class" not in document and "top" not in document


# --- (d) the terminal table ------------------------------------------------------------------------------------


def test_table_shows_every_breakdown(runner, dataset_files, monkeypatch):
    monkeypatch.setenv("COLUMNS", "120")
    monkeypatch.setenv("NO_COLOR", "1")
    args = ["sparse", dataset_files["csv"]["full"], "-y", "label", "-p", "p_*", "--by", "split", "--per-class"]
    result = runner.invoke(app, [*args, "--top", "5", "--keep", "id", "-f", "table"], prog_name="cecli")
    assert result.exit_code == 0, result.output
    text = result.stdout
    sections = ["by split", "per true class", "5 largest losses", "distribution of per-sample loss (nats)", "summary"]
    positions = [text.index(section) for section in sections]
    assert positions == sorted(positions)
    by_section = text[positions[0] : positions[1]]
    for group in ("train", "val", "test", "null"):  # an empty CSV cell is null, as in JSON
        assert group in by_section
    class_section = text[positions[1] : positions[2]]
    for name in CLASSES:
        assert name in class_section
    top_section = text[positions[2] : positions[3]]
    for row in MAX_LOSS_ROWS:
        assert f"r{row - 1:03d}" in top_section
    assert "█" in text[positions[3] : positions[4]]
    assert "accuracy" in text[positions[4] :] and "perplexity" in text[positions[4] :]


# --- (e) cecli kl -----------------------------------------------------------------------------------------------


def test_kl_equals_scipy_entropy_row_by_row(write_file):
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(7)
    y = rng.random((40, 4)) * rng.integers(0, 2, (40, 4))  # unnormalised, with zeros
    y[:, 0] += 0.1  # no all-zero rows
    p = rng.random((40, 4)) + 0.01
    header = ",".join([f"y_{j}" for j in range(4)] + [f"p_{j}" for j in range(4)])
    lines = [",".join(repr(float(v)) for v in (*a, *b)) for a, b in zip(y, p, strict=True)]
    path = write_file("kl.csv", header + "\n" + "\n".join(lines) + "\n")
    for base, scipy_base in (("e", None), ("2", 2)):
        result = cecli.compute("kl", str(path), base=base)
        expected = [stats.entropy(a, b, base=scipy_base) for a, b in zip(y, p, strict=True)]
        assert result.per_sample.tolist() == pytest.approx(expected, rel=1e-12, abs=1e-15)


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        pytest.param("1,0,0.5,0.5", math.log(2), id="point-vs-fair-coin"),
        pytest.param("0.5,0.5,0.25,0.75", 0.5 * math.log(2) + 0.5 * math.log(2 / 3), id="two-coins"),
        pytest.param("1,3,1,1", 0.25 * math.log(0.5) + 0.75 * math.log(1.5), id="counts-are-normalised"),
        pytest.param("0,1,0.5,0.5", math.log(2), id="zero-label-term-is-zero"),
        pytest.param("0.3,0.7,0.3,0.7", 0.0, id="identical"),
        pytest.param("3,1,6,2", 0.0, id="proportional"),
    ],
)
def test_kl_closed_forms(write_file, row, expected):
    path = write_file("kl.csv", "y_0,y_1,p_0,p_1\n" + row + "\n")
    result = cecli.compute("kl", str(path))
    if expected == 0.0:
        assert result.per_sample.tolist() == [0.0]
    else:
        assert result.per_sample.tolist() == [pytest.approx(expected, rel=1e-12)]
    assert result.perplexity is None and result.accuracy is None


def test_kl_is_infinite_where_p_is_zero_below_a_positive_label(runner, write_file):
    path = write_file("kl.csv", "y_0,y_1,p_0,p_1\n1,0,0,1\n0.5,0.5,0.5,0.5\n1,0,0.5,0.5\n")
    result = runner.invoke(app, ["kl", str(path), "-f", "json"], prog_name="cecli")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout, parse_constant=lambda token: pytest.fail(f"non-standard token {token}"))
    assert document["per_sample"] == [None, 0.0, pytest.approx(math.log(2), rel=1e-12)]
    assert document["value"] is None and document["max"] is None
    assert document["min"] == 0.0
    assert document["histogram"]["counts"][-1] == 1
    assert any("infinite" in w for w in document["warnings"])
    assert "infinite" in result.stderr
