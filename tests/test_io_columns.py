"""Choosing columns (README "Choosing columns", DESIGN.md "Inputs are read by name, per file").

Every expected number is written out from the loss formulas with ``math``; every error is the exact stderr line
with its exit code. The classes come from issue 11 ("Trust") and one item of issue 12:

- multi-file inputs: columns are chosen on the first file and found by name in every file, whatever each file's
  column order, format or size (the small-CSV fast path, pyarrow's CSV, JSON, NDJSON, Parquet, both engines);
- label and prediction families pair by suffix, and prediction columns named after classes follow their class;
- an exact-case name wins over its case variants, which are an error without one;
- a column cannot be both a label, a prediction and the weight;
- class names are what follows the family prefix (``p_cat`` -> ``cat``);
- automatic detection is linear in the number of columns.
"""

from __future__ import annotations

import json
import math

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from cecli.cli import app
from cecli.files import score_files
from cecli.io import columns as columns_module
from cecli.io.base import ReadSettings
from cecli.io.columns import Column, choose_columns
from cecli.io.expand import expand_sources
from cecli.options import LossOptions

USAGE, BAD_INPUT = 2, 3
LN = math.log


def invoke(runner, args):
    result = runner.invoke(app, args, prog_name="cecli")
    return result.exit_code, result.stdout, result.stderr


def score(runner, args):
    """Run ``cecli ARGS -f json`` and return the JSON document (the run must succeed without a word on stderr)."""
    code, stdout, stderr = invoke(runner, [*args, "-f", "json"])
    assert (code, stderr) == (0, ""), stderr
    return json.loads(stdout)


def bce(y: float, p: float) -> float:
    return -(y * LN(p) + (1 - y) * LN(1 - p))


# --------------------------------------------------------------------------- 1. per file, by name

# Two rows, (y_true, y_pred) = (1, 0.9) and (0, 0.2): the mean bce of any number of copies of them.
ROWS = [(1, 0.9), (0, 0.2)]
MEAN = (bce(1, 0.9) + bce(0, 0.2)) / 2  # 0.16425...; with the columns swapped it would be 1.664


def _records(order: tuple[str, ...], copies: int) -> list[dict]:
    values = {"id": 7, "w": 1.0}
    return [dict(values, y_true=y, y_pred=p) for _ in range(copies) for y, p in ROWS]


def _write(path, order: tuple[str, ...], fmt: str, copies: int = 1) -> None:
    """Write the rows with the columns in `order` as `fmt` (csv, tsv, json, ndjson, parquet)."""
    records = _records(order, copies)
    if fmt in ("csv", "tsv"):
        sep = "," if fmt == "csv" else "\t"
        lines = [sep.join(order)] + [sep.join(str(r[name]) for name in order) for r in records]
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    elif fmt == "json":
        path.write_text(json.dumps([{name: r[name] for name in order} for r in records]), encoding="utf-8")
    elif fmt == "ndjson":
        path.write_text("".join(json.dumps({n: r[n] for n in order}) + "\n" for r in records), encoding="utf-8")
    else:
        pq.write_table(pa.table({name: [float(r[name]) for r in records] for name in order}), path)


# (format, copies): small CSVs take the fast path without pyarrow, 2000 copies (over 8 KiB) take pyarrow's.
LATER_FILES = [
    pytest.param("csv", 1, id="small-csv"),
    pytest.param("csv", 2000, id="large-csv"),
    pytest.param("tsv", 1, id="small-tsv"),
    pytest.param("json", 1, id="json"),
    pytest.param("ndjson", 1, id="ndjson"),
    pytest.param("parquet", 1, id="parquet"),
]


@pytest.mark.parametrize("first_fmt", ["csv", "parquet"])
@pytest.mark.parametrize(("fmt", "copies"), LATER_FILES)
@pytest.mark.parametrize("order", [("y_pred", "y_true"), ("id", "y_pred", "w", "y_true")], ids=["swapped", "shifted"])
def test_a_later_file_is_read_by_name_whatever_its_column_order(
    runner, tmp_path, monkeypatch, first_fmt, fmt, copies, order
):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "d").mkdir()
    _write(tmp_path / "d" / f"a.{first_fmt}", ("y_true", "y_pred"), first_fmt)
    _write(tmp_path / "d" / f"b.{fmt}", order, fmt, copies)
    assert copies == 1 or (tmp_path / "d" / f"b.{fmt}").stat().st_size > 8 << 10
    document = score(runner, ["bce", "d"])
    assert document["count"] == 2 + 2 * copies
    assert document["mean"] == pytest.approx(MEAN, rel=1e-15)


def test_the_issue_example_small_csvs_in_a_folder(runner, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "a.csv").write_text("y_true,y_pred\n1,0.9\n0,0.2\n")
    (tmp_path / "d" / "b.csv").write_text("y_pred,y_true\n0.9,1\n0.2,0\n")
    document = score(runner, ["bce", "d"])
    assert document["mean"] == pytest.approx((LN(1 / 0.9) + LN(1 / 0.8)) / 2, rel=1e-15)  # 0.1642520...


def test_weights_and_positions_given_on_the_first_file_follow_the_names(runner, tmp_path, monkeypatch):
    # -y 1 -p 2 -w 3 name y_true, y_pred, w on a.csv; b.csv has them in another order.
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a.csv").write_text("y_true,y_pred,w\n1,0.9,1\n")
    (tmp_path / "b.csv").write_text("w,y_true,y_pred\n3,0,0.2\n")
    document = score(runner, ["bce", "a.csv", "b.csv", "-y", "1", "-p", "2", "-w", "3"])
    assert document["mean"] == pytest.approx((1 * bce(1, 0.9) + 3 * bce(0, 0.2)) / 4, rel=1e-15)
    assert document["weight_sum"] == 4.0


def test_sparse_class_columns_in_another_order_in_a_later_file(runner, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a.csv").write_text("label,p_0,p_1,p_2\n0,0.5,0.25,0.25\n")
    (tmp_path / "b.csv").write_text("p_2,label,p_1,p_0\n0.125,1,0.375,0.5\n")
    document = score(runner, ["sparse", "a.csv", "b.csv"])
    assert document["mean"] == pytest.approx((LN(2) + LN(1 / 0.375)) / 2, rel=1e-15)


def test_labels_file_columns_are_found_by_name(runner, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "p.csv").write_text("id,y_pred\n1,0.9\n2,0.2\n")
    (tmp_path / "y.csv").write_text("note,y_true\n5,1\n6,0\n")
    document = score(runner, ["bce", "p.csv", "--labels", "y.csv"])
    assert (document["input"]["label_columns"], document["input"]["prediction_columns"]) == (["y_true"], ["y_pred"])
    assert document["mean"] == pytest.approx(MEAN, rel=1e-15)


@pytest.mark.parametrize("fmt", ["csv", "parquet", "ndjson"])
def test_a_later_file_without_a_selected_column_is_an_error_naming_it(runner, tmp_path, monkeypatch, fmt):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "d").mkdir()
    _write(tmp_path / "d" / "a.csv", ("y_true", "y_pred"), "csv")
    _write(tmp_path / "d" / f"b.{fmt}", ("y_pred", "id"), fmt)
    code, stdout, stderr = invoke(runner, ["bce", "d"])
    assert (code, stdout) == (BAD_INPUT, "")
    assert stderr == (
        f"cecli: error: d/b.{fmt}: has no column 'y_true' like d/a.csv "
        "(every file of a dataset needs the same columns)\n"
    )


def test_headerless_files_are_read_by_position_and_cannot_mix_with_a_header(runner, tmp_path, monkeypatch):
    # Headerless columns are named 1, 2, ...: by name is by position. A header in one file only is an error.
    monkeypatch.chdir(tmp_path)
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "a.csv").write_text("1,0.9\n")
    (tmp_path / "d" / "b.csv").write_text("0,0.2\n")
    assert score(runner, ["bce", "d"])["mean"] == pytest.approx(MEAN, rel=1e-15)
    (tmp_path / "d" / "a.csv").write_text("y_true,y_pred\n1,0.9\n")
    code, stdout, stderr = invoke(runner, ["bce", "d"])
    assert (code, stdout) == (BAD_INPUT, "")
    assert stderr == (
        "cecli: error: d/b.csv: has no column 'y_true' like d/a.csv (every file of a dataset needs the same columns)\n"
    )


@pytest.mark.parametrize(("fmt", "copies"), LATER_FILES)
def test_score_files_the_dask_task_reads_each_file_by_name(tmp_path, fmt, copies):
    """The unit of work of ``--engine dask``: columns chosen on a.csv, then found by name in b."""
    _write(tmp_path / "a.csv", ("y_true", "y_pred"), "csv")
    _write(tmp_path / f"b.{fmt}", ("id", "y_pred", "y_true"), fmt, copies)
    paths = expand_sources([str(tmp_path)])
    first = [Column(1, "y_true", "string"), Column(2, "y_pred", "string")]
    selection = choose_columns("bce", first, file=paths[0])
    state = score_files(list(enumerate(paths)), selection=selection, opts=LossOptions(loss="bce"), read=ReadSettings())
    assert state.partial.count == 2 + 2 * copies
    assert state.partial.mean == pytest.approx(MEAN, rel=1e-15)


def test_dask_engine_through_the_cli_reads_each_file_by_name(runner, tmp_path, monkeypatch):
    distributed = pytest.importorskip("distributed")  # installed with the dev extras; the module is optional
    monkeypatch.chdir(tmp_path)
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "a.csv").write_text("y_true,y_pred\n1,0.9\n0,0.2\n")
    (tmp_path / "d" / "b.csv").write_text("y_pred,y_true\n0.9,1\n0.2,0\n")
    _write(tmp_path / "d" / "c.parquet", ("id", "y_pred", "y_true"), "parquet")
    with distributed.LocalCluster(
        processes=False, n_workers=1, threads_per_worker=1, dashboard_address="127.0.0.1:0"
    ) as c:
        document = score(runner, ["bce", "d", "--summary-only", "--engine", "dask", "--scheduler", c.scheduler_address])
    assert document["count"] == 6
    assert document["mean"] == pytest.approx(MEAN, rel=1e-15)


# --------------------------------------------------------------------------- 2. pairing by suffix

# Rows of y_a, y_b, p_b, p_a: y_a pairs with p_a and y_b with p_b, whatever the column order.
PAIR_CSV = "y_a,y_b,p_b,p_a\n1,0,0.2,0.9\n0,1,0.7,0.4\n"
PAIR_BCE = (bce(1, 0.9) + bce(0, 0.2) + bce(0, 0.4) + bce(1, 0.7)) / 4


@pytest.mark.parametrize(
    "args",
    [
        pytest.param([], id="automatic"),
        pytest.param(["-y", "y_*", "-p", "p_*"], id="globs"),
        pytest.param(["-y", "y_a,y_b", "-p", "p_b,p_a"], id="names"),
        pytest.param(["-y", "1-2", "-p", "3-4"], id="positions"),
    ],
)
def test_bce_label_and_prediction_families_pair_by_suffix(runner, tmp_path, monkeypatch, args):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "m.csv").write_text(PAIR_CSV)
    assert score(runner, ["bce", "m.csv", *args])["mean"] == pytest.approx(PAIR_BCE, rel=1e-15)


def test_label_columns_from_a_labels_file_pair_by_suffix(runner, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "p.csv").write_text("p_b,p_a\n0.2,0.9\n0.7,0.4\n")
    (tmp_path / "y.csv").write_text("y_a,y_b\n1,0\n0,1\n")
    document = score(runner, ["bce", "p.csv", "--labels", "y.csv"])
    assert document["input"]["label_columns"] == ["y_b", "y_a"]
    assert document["mean"] == pytest.approx(PAIR_BCE, rel=1e-15)


@pytest.mark.parametrize("loss", ["cce", "kl"])
def test_cce_and_kl_pair_one_hot_columns_by_suffix(runner, tmp_path, monkeypatch, loss):
    # Row 1 is class a with p_a = 0.75; row 2 is class b with p_b = 0.375. kl of a one-hot row is -log p_true.
    monkeypatch.chdir(tmp_path)
    (tmp_path / "m.csv").write_text("y_a,y_b,p_b,p_a\n1,0,0.25,0.75\n0,1,0.375,0.625\n")
    document = score(runner, [loss, "m.csv"])
    assert document["input"]["label_columns"] == ["y_b", "y_a"]
    assert document["mean"] == pytest.approx((LN(1 / 0.75) + LN(1 / 0.375)) / 2, rel=1e-15)


def test_families_whose_suffixes_do_not_match_stop_automatic_detection(runner, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "m.csv").write_text("y_a,y_c,p_b,p_a\n1,0,0.2,0.9\n")
    code, stdout, stderr = invoke(runner, ["bce", "m.csv"])
    assert (code, stdout) == (BAD_INPUT, "")
    assert stderr == (
        "cecli: error: m.csv: label columns y_a, y_c and prediction columns p_b, p_a do not pair by suffix "
        "(give each label column the suffix of one prediction column (y_a with p_a), "
        "or list the pairs in order with -y and -p)\n"
    )


def test_globs_whose_suffixes_do_not_match_are_a_usage_error(runner, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "m.csv").write_text("y_a,y_c,p_b,p_a\n1,0,0.2,0.9\n")
    code, stdout, stderr = invoke(runner, ["bce", "m.csv", "-y", "y_*", "-p", "p_*"])
    assert (code, stdout) == (USAGE, "")
    assert stderr == (
        "cecli: error: label columns y_a, y_c and prediction columns p_b, p_a do not pair by suffix "
        "(give each label column the suffix of one prediction column (y_a with p_a), "
        "or list the pairs in order with -y and -p)\n"
    )


def test_columns_listed_by_name_with_other_suffixes_pair_in_the_order_given(runner, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "m.csv").write_text("y_a,y_c,p_b,p_a\n1,0,0.2,0.9\n")
    document = score(runner, ["bce", "m.csv", "-y", "y_a,y_c", "-p", "p_a,p_b"])
    assert document["mean"] == pytest.approx((bce(1, 0.9) + bce(0, 0.2)) / 2, rel=1e-15)


def test_integer_named_classes_follow_their_index_for_sparse_and_per_class(runner, tmp_path, monkeypatch):
    # label, p_1, p_0: label 0 is column p_0 (0.7 on row 1), label 1 is p_1 (0.6 on row 2).
    monkeypatch.chdir(tmp_path)
    (tmp_path / "s.csv").write_text("label,p_1,p_0\n0,0.3,0.7\n1,0.6,0.4\n")
    document = score(runner, ["sparse", "s.csv", "--per-class"])
    assert document["input"]["prediction_columns"] == ["p_0", "p_1"]
    assert document["mean"] == pytest.approx((LN(1 / 0.7) + LN(1 / 0.6)) / 2, rel=1e-15)
    assert [(c["class"], c["index"], c["count"]) for c in document["per_class"]] == [("0", 0, 1), ("1", 1, 1)]
    assert document["per_class"][0]["mean"] == pytest.approx(LN(1 / 0.7), rel=1e-15)
    assert document["accuracy"] == 1.0


def test_class_weights_follow_the_class_index_of_integer_named_columns(runner, tmp_path, monkeypatch):
    # --class-weights w0,w1 weigh class 0 (column p_0) by 1 and class 1 (p_1) by 3 (PyTorch: Σ w_y l / Σ w_y).
    monkeypatch.chdir(tmp_path)
    (tmp_path / "s.csv").write_text("label,p_1,p_0\n0,0.3,0.7\n1,0.6,0.4\n")
    document = score(runner, ["sparse", "s.csv", "--class-weights", "1,3"])
    # value and denominator follow PyTorch; mean keeps its meaning, Σw·l / Σw with unit sample weights.
    assert document["value"] == pytest.approx((1 * LN(1 / 0.7) + 3 * LN(1 / 0.6)) / 4, rel=1e-15)
    assert document["denominator"] == 4.0
    assert document["mean"] == pytest.approx((1 * LN(1 / 0.7) + 3 * LN(1 / 0.6)) / 2, rel=1e-15)


def test_integer_labels_name_their_column_when_classes_are_not_0_to_c_minus_1(runner, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "s.csv").write_text("label,p_1,p_2,p_3\n1,0.7,0.2,0.1\n3,0.1,0.1,0.8\n")
    assert score(runner, ["sparse", "s.csv"])["mean"] == pytest.approx((LN(1 / 0.7) + LN(1 / 0.8)) / 2, rel=1e-15)
    (tmp_path / "z.csv").write_text("label,p_1,p_2,p_3\n1,0.7,0.2,0.1\n0,0.1,0.1,0.8\n")
    code, stdout, stderr = invoke(runner, ["sparse", "z.csv"])
    assert (code, stdout) == (BAD_INPUT, "")
    assert (
        stderr
        == "cecli: error: z.csv:3:label: label 0 is not a class (the prediction columns name the classes 1, 2, 3)\n"
    )


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_integer_labels_naming_classes_keep_the_ignore_index(runner, tmp_path, monkeypatch, fmt):
    # Parquet keeps the labels as int64, CSV gives float64: label 3 is column p_3 either way; -100 does not count.
    monkeypatch.chdir(tmp_path)
    table = {"label": [3, -100, 1], "p_1": [0.1, 0.5, 0.6], "p_2": [0.1, 0.25, 0.2], "p_3": [0.8, 0.25, 0.2]}
    if fmt == "csv":
        rows = zip(*table.values(), strict=True)
        (tmp_path / "s.csv").write_text("label,p_1,p_2,p_3\n" + "".join(",".join(map(str, r)) + "\n" for r in rows))
    else:
        pq.write_table(pa.table(table), tmp_path / "s.parquet")
    document = score(runner, ["sparse", f"s.{fmt}", "--ignore-index", "-100"])
    assert (document["count"], document["rows"]) == (2, 3)
    assert document["mean"] == pytest.approx((LN(1 / 0.8) + LN(1 / 0.6)) / 2, rel=1e-15)


def test_numbered_classes_are_ordered_by_number_not_as_text(runner, tmp_path, monkeypatch):
    # p_10 .. p_0 in reverse: label k must read column p_k (value (k + 1) / 66 on its row).
    monkeypatch.chdir(tmp_path)
    header = ",".join(f"p_{k}" for k in range(10, -1, -1))
    rows = [",".join(str((k + 1) / 66) for k in range(10, -1, -1)) for _ in range(2)]
    (tmp_path / "s.csv").write_text(f"label,{header}\n2,{rows[0]}\n10,{rows[1]}\n")
    document = score(runner, ["sparse", "s.csv"])
    assert document["mean"] == pytest.approx((LN(66 / 3) + LN(66 / 11)) / 2, rel=1e-14)


def test_pairs_listed_in_order_stay_pairs_when_predictions_are_put_in_class_order(runner, tmp_path, monkeypatch):
    # -y a,b -p p_1,p_0 pairs a with p_1 and b with p_0; the predictions go to class order p_0, p_1, and so do b, a.
    monkeypatch.chdir(tmp_path)
    (tmp_path / "o.csv").write_text("a,b,p_1,p_0\n1,0,0.9,0.1\n0,1,0.3,0.7\n")
    for args in (["-y", "a,b", "-p", "p_1,p_0"], []):  # given, and found by the 2C-columns rule
        document = score(runner, ["cce", "o.csv", *args])
        assert (document["input"]["label_columns"], document["input"]["prediction_columns"]) == (
            ["b", "a"],
            ["p_0", "p_1"],
        )
        assert document["mean"] == pytest.approx((LN(1 / 0.9) + LN(1 / 0.7)) / 2, rel=1e-15)


def test_pos_weight_follows_the_class_order_of_label_columns(runner, tmp_path, monkeypatch):
    # --pos-weight 2,3: class 0 (y_0, p_0 = 0.9) weighs 2, class 1 (y_1, p_1 = 0.6) weighs 3; the row's loss is
    # the mean over its label columns (Keras), with PyTorch's pos_weight on the positive term.
    monkeypatch.chdir(tmp_path)
    (tmp_path / "m.csv").write_text("y_1,y_0,p_1,p_0\n1,1,0.6,0.9\n")
    document = score(runner, ["bce", "m.csv", "--pos-weight", "2,3"])
    assert document["mean"] == pytest.approx((2 * LN(1 / 0.9) + 3 * LN(1 / 0.6)) / 2, rel=1e-15)


# --------------------------------------------------------------------------- 3. case variants


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        pytest.param("y_true,y_pred,Y_PRED", ["y_true", "y_pred"], id="y_pred-beats-Y_PRED"),
        pytest.param("y_true,Y_PRED,y_pred", ["y_true", "y_pred"], id="y_pred-beats-Y_PRED-before-it"),
        pytest.param("LABEL,label,y_pred", ["label", "y_pred"], id="label-beats-LABEL"),
        pytest.param("label,P_0,p_0,p_1", ["label", "p_0", "p_1"], id="family-p_0-beats-P_0"),
    ],
)
def test_an_exact_case_match_wins(runner, tmp_path, monkeypatch, header, expected):
    # The chosen columns hold label 1 with p 0.9 (bce), or class 0 with p_0 0.9 (sparse); the variants hold 0.5.
    monkeypatch.chdir(tmp_path)
    names = header.split(",")
    loss = "sparse" if "p_0" in names else "bce"
    values = {"y_true": "1", "label": "0" if loss == "sparse" else "1", "y_pred": "0.9", "p_0": "0.9", "p_1": "0.1"}
    row = ",".join(values.get(n, "0.5") for n in names)
    (tmp_path / "c.csv").write_text(f"{header}\n{row}\n")
    document = score(runner, [loss, "c.csv"])
    chosen = document["input"]["label_columns"] + document["input"]["prediction_columns"]
    assert chosen == expected
    assert document["mean"] == pytest.approx(LN(1 / 0.9), rel=1e-15)


@pytest.mark.parametrize(
    ("header", "message"),
    [
        pytest.param(
            "y_true,Y_Pred,Y_PRED",
            "cannot tell which column holds the predictions: 'Y_Pred' and 'Y_PRED' differ only in case "
            "(name it with -p)",
            id="predictions",
        ),
        pytest.param(
            "Label,LABEL,y_pred",
            "cannot tell which column holds the labels: 'Label' and 'LABEL' differ only in case (name it with -y)",
            id="labels",
        ),
        pytest.param(
            "label,p_x,p_X",
            "cannot tell which column holds the predictions: 'p_x' and 'p_X' differ only in case (name it with -p)",
            id="family",
        ),
    ],
)
def test_case_variants_without_an_exact_match_are_an_error(runner, tmp_path, monkeypatch, header, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "c.csv").write_text(f"{header}\n1,0.5,0.5\n")
    code, stdout, stderr = invoke(runner, ["sparse" if "p_x" in header else "bce", "c.csv"])
    assert (code, stdout, stderr) == (BAD_INPUT, "", f"cecli: error: c.csv: {message}\n")


def test_a_case_variant_of_the_prediction_column_is_never_taken_as_the_label(runner, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "c.csv").write_text("y_pred,Y_PRED\n0.9,1\n")
    code, stdout, stderr = invoke(runner, ["bce", "c.csv"])
    assert (code, stdout) == (BAD_INPUT, "")
    assert stderr == (
        "cecli: error: c.csv: cannot tell which columns hold the labels; columns found: y_pred, Y_PRED "
        "(name them with -y LABEL_COLS and -p PRED_COLS)\n"
    )


# --------------------------------------------------------------------------- 4. one column, one role


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(
            ["-y", "y_pred", "-p", "y_pred"],
            "column 'y_pred' is selected both as a label (-y) and as a prediction (-p)",
            id="y-equals-p",
        ),
        pytest.param(
            ["-y", "y*", "-p", "y_pred"],
            "column 'y_pred' is selected both as a label (-y) and as a prediction (-p)",
            id="overlapping-globs",
        ),
        pytest.param(
            ["-y", "2", "-p", "y_pred"],
            "column 'y_pred' is selected both as a label (-y) and as a prediction (-p)",
            id="position-and-name",
        ),
        pytest.param(
            ["-y", "y_true", "-w", "y_true"],
            "column 'y_true' is selected both as the sample weight (-w) and as a label or prediction",
            id="w-equals-y",
        ),
        pytest.param(
            ["-p", "y_pred", "-w", "y_pred"],
            "column 'y_pred' is selected both as the sample weight (-w) and as a label or prediction",
            id="w-equals-p",
        ),
    ],
)
def test_a_column_in_two_roles_is_a_usage_error(runner, tmp_path, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "ok.csv").write_text("y_true,y_pred,w\n1,0.9,1\n0,0.2,1\n")
    code, stdout, stderr = invoke(runner, ["bce", "ok.csv", *args])
    assert (code, stdout) == (USAGE, "")
    assert stderr == f"cecli: error: {message} (choose different columns with -y, -p and -w)\n"


# --------------------------------------------------------------------------- 5. class names after the family prefix


@pytest.mark.parametrize(
    ("header", "args"),
    [
        pytest.param("label,p_cat,p_cow", [], id="p_"),
        pytest.param("label,prob_cat,prob_cow", [], id="prob_"),
        pytest.param("label,y_pred_cat,y_pred_cow", [], id="y_pred_"),
        pytest.param("label,score_cat,score_cow", [], id="score_"),
        pytest.param("label,p_cat,p_cow", ["-y", "label", "-p", "p_*"], id="glob"),
        pytest.param("label,p_cat,p_cow", ["-p", "p_cat,p_cow"], id="names"),
        pytest.param("label,cat,cow", ["-p", "cat,cow"], id="no-family"),
    ],
)
def test_class_names_are_what_follows_the_family_prefix(runner, tmp_path, monkeypatch, header, args):
    # cat with p(cat) = 0.8, cow with p(cow) = 0.7 (the common prefix "p_c" would make the classes "at", "ow").
    monkeypatch.chdir(tmp_path)
    (tmp_path / "n.csv").write_text(f"{header}\ncat,0.8,0.2\ncow,0.3,0.7\n")
    document = score(runner, ["sparse", "n.csv", "--per-class", *args])
    assert document["mean"] == pytest.approx((LN(1 / 0.8) + LN(1 / 0.7)) / 2, rel=1e-15)
    assert [c["class"] for c in document["per_class"]] == ["cat", "cow"]
    assert document["per_class"][1]["mean"] == pytest.approx(LN(1 / 0.7), rel=1e-15)


def test_softmax_class_name_labels_follow_the_family_prefix(runner, tmp_path, monkeypatch):
    # Scores 0 and ln 3: softmax gives 1/4 and 3/4.
    monkeypatch.chdir(tmp_path)
    (tmp_path / "n.csv").write_text(f"label,logit_cat,logit_cow\ncow,0,{LN(3)!r}\n")
    assert score(runner, ["softmax", "n.csv"])["mean"] == pytest.approx(LN(4 / 3), rel=1e-15)


def test_names_outside_a_family_are_the_class_names_themselves(runner, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "n.csv").write_text("label,a_cat,a_cow\ncat,0.8,0.2\n")
    code, stdout, stderr = invoke(runner, ["sparse", "n.csv", "-p", "a_cat,a_cow"])
    assert (code, stdout) == (BAD_INPUT, "")
    assert stderr == "cecli: error: n.csv:2:label: label 'cat' is not a class name (classes are: a_cat, a_cow)\n"


@pytest.mark.parametrize(
    ("names", "expected"),
    [
        (["p_cat", "p_cow"], ["cat", "cow"]),
        (["P_Cat", "P_Cow"], ["Cat", "Cow"]),  # the prefix compares case-insensitively; the class keeps its case
        (["p0", "p1", "p2"], ["0", "1", "2"]),  # family p<digit>*
        (["prob_a_1", "prob_a_2"], ["a_1", "a_2"]),  # only the family prefix goes, not the common "a_"
        (["p_a", "prob_b"], ["p_a", "prob_b"]),  # no family shared by all: the names themselves
        (["cat", "cow"], ["cat", "cow"]),
        (["p_x"], None),  # one column: no classes by name
    ],
)
def test_class_names_table(names, expected):
    assert columns_module.class_names([Column(i + 1, n, "double") for i, n in enumerate(names)]) == expected


# --------------------------------------------------------------------------- 6. linear automatic detection (issue 12)


def _choose_cost(monkeypatch, n_columns: int) -> int:
    """Column hashes, comparisons and pattern matches that automatic detection spends on `n_columns` p_* columns."""
    calls = [0]

    def counted(function):
        def wrapper(*args, **kwargs):
            calls[0] += 1
            return function(*args, **kwargs)

        return wrapper

    with monkeypatch.context() as patch:
        patch.setattr(Column, "__hash__", counted(Column.__hash__))
        patch.setattr(Column, "__eq__", counted(Column.__eq__))
        patch.setattr(columns_module.fnmatch, "fnmatchcase", counted(columns_module.fnmatch.fnmatchcase))
        table = [Column(1, "label", "string")] + [Column(i + 2, f"p_{i}", "string") for i in range(n_columns)]
        selection = choose_columns("sparse", table, file="wide.csv")
    assert selection.labels == (table[0],)
    assert selection.predictions == tuple(table[1:])
    return calls[0]


def test_automatic_detection_work_grows_linearly_with_the_columns(monkeypatch):
    # 10,000 p_* columns took 15 s (a set of the predictions built once per column); now about 0.1 s.
    # Four times the columns: linear work is about 4 times as much (hash collisions add a little), quadratic 16.
    small, large = _choose_cost(monkeypatch, 500), _choose_cost(monkeypatch, 2000)
    assert large < 6 * small, (small, large)
