"""The option rules, reached without Typer through cecli.plan.Plan.build (and checked, for `columns`);
and the types that cross layers (TopK and Largest, CellError) with one meaning each."""

import dataclasses
import math

import numpy as np
import pytest

from cecli import OptionError, compute
from cecli.errors import CellError
from cecli.io import base as io_base
from cecli.numerics.reduce import Largest, ScoreState, TopK
from cecli.numerics.validate import check_probabilities
from cecli.plan import Plan, checked, delimiter

# (parsed values, output format in effect, the exact message); messages as README "Options" words them.
REFUSED = [
    (
        {"value_only": True, "format": "json"},
        "json",
        "--value-only cannot be combined with -f json (--value-only prints just the reduced number)",
    ),
    (
        {"summary_only": True, "reduction": "none"},
        "json",
        "--summary-only cannot be combined with --reduction none"
        " (--reduction none gives only per-sample values, which --summary-only leaves out)",
    ),
    (
        {"top": 3},
        "csv",
        "--top 3 cannot be combined with -f csv (-f csv prints only per-sample lines;"
        " -f csv is the default when stdout is not a terminal)",
    ),
    (
        {"scheduler": "tcp://h:8786", "engine": "local"},
        "json",
        "--scheduler cannot be combined with --engine local"
        " (a scheduler is for --engine dask; --engine local is the default)",
    ),
    (
        {"header": False, "input_format": "parquet"},
        None,
        "--no-header cannot be combined with --input-format parquet (only CSV has a header row)",
    ),
]


@pytest.mark.parametrize(("values", "fmt", "message"), REFUSED)
def test_combinations_that_cannot_both_apply_are_refused(values, fmt, message):
    with pytest.raises(OptionError) as caught:
        checked(values, fmt)
    assert str(caught.value) == message


def test_values_that_combine_pass_with_the_delimiter_resolved():
    values = {"top": 3, "delimiter": "tab", "format": "table"}
    assert checked(values, "table") == {"top": 3, "delimiter": "\t", "format": "table"}


@pytest.mark.parametrize(("text", "expected"), [(None, None), ("\t", "\t"), ("TAB", "\t"), ("\\t", "\t"), (";", ";")])
def test_delimiter_spellings(text, expected):
    assert delimiter(text) == expected


# Plan.build: (arguments, the exact message with its hint); each rule compute() checks before reading input.
BUILD_REFUSED = [
    (
        {"loss": "cce", "options": {"like": "torch", "from_logits": True}, "weight": "w"},
        "--like torch: PyTorch's cross_entropy takes no sample weights (drop -w)",
    ),
    ({"loss": "bce", "engine": "spark"}, "unknown engine 'spark' (use local or dask)"),
    (
        {"loss": "bce", "dask": {"scheduler": None, "client": object()}},
        "client is for engine='dask'; the engine is 'local' (pass engine='dask')",
    ),
    (
        {"loss": "bce", "per_class": True},
        "--per-class does not apply to `cecli bce` (use it with cce, sparse or softmax)",
    ),
    (
        {"loss": "kl", "per_class": True},
        "--per-class does not apply to `cecli kl` (use it with cce, sparse or softmax)",
    ),
    ({"loss": "bce", "options": {"temperature": 2.0}}, "--temperature does not apply to `cecli bce`"),
    # The Dask engine's own values, checked before any cluster is reached (they were checked inside the engine).
    (
        {"loss": "bce", "engine": "dask", "dask": {"wait_for_workers": -1.0}},
        "--wait-for-workers must be a number of seconds >= 0; received -1.0",
    ),
    (
        {"loss": "bce", "engine": "dask", "dask": {"wait_for_workers": float("nan")}},
        "--wait-for-workers must be a number of seconds >= 0; received nan",
    ),
    (
        {"loss": "bce", "engine": "dask", "dask": {"scheduler": "tcp://h:1", "client": object()}},
        "give one of client and scheduler: each names the Dask cluster to use",
    ),
]


@pytest.mark.parametrize(("arguments", "message"), BUILD_REFUSED)
def test_plan_build_refuses_each_rule_once(arguments, message):
    loss = arguments.pop("loss")
    with pytest.raises(OptionError) as caught:
        Plan.build(loss, **arguments)
    assert str(caught.value) == message


def test_a_plan_holds_its_checked_options():
    plan = Plan.build("sparse", options={"like": "keras"}, per_class=True, engine="dask", dask={"scheduler": "h:1"})
    assert (plan.opts.loss, plan.opts.like, plan.engine, plan.per_class) == ("sparse", "keras", "dask", True)
    with pytest.raises(dataclasses.FrozenInstanceError):
        plan.engine = "local"


@pytest.mark.parametrize(
    ("engine", "paths", "labels", "message"),
    [
        ("local", ["a.csv", "b.csv"], "y.csv", "--labels needs exactly one INPUT and the local engine (drop --labels)"),
        ("dask", ["a.csv"], "y.csv", "--labels needs exactly one INPUT and the local engine (drop --labels)"),
        ("dask", ["a.csv", "-"], None, "the Dask engine reads files, not stdin (give paths or use --engine local)"),
    ],
)
def test_plan_checks_the_expanded_inputs(engine, paths, labels, message):
    plan = Plan.build("bce", engine=engine)
    with pytest.raises(OptionError) as caught:
        plan.check_paths(paths, labels)
    assert str(caught.value) == message
    Plan.build("bce").check_paths(["a.csv"], "y.csv")  # one local input with its labels is the rule's case


def test_compute_refuses_per_class_before_reading_any_input(tmp_path):
    # An option error comes before the input is opened: the missing file is never reached.
    with pytest.raises(OptionError) as caught:
        compute("entropy", str(tmp_path / "missing.csv"), per_class=True)
    assert str(caught.value) == "--per-class does not apply to `cecli entropy` (use it with cce, sparse or softmax)"


# --- one place checks every option: the CLI and compute() both go through Plan.build ------------------------------


@pytest.mark.parametrize(
    ("loss", "options", "flags", "message"),
    [
        ("bce", {"label_smoothing": 2.0}, ["--label-smoothing", "2"],
         "--label-smoothing must be in [0, 1]; received 2.0"),
        ("sparse", {"like": "sklearn", "ignore_index": 0}, ["--like", "sklearn", "--ignore-index", "0"],
         "--like sklearn: scikit-learn's log_loss has no equivalent of --ignore-index"),
        ("cce", {"focal_gamma": 1.0, "gce_q": 0.5}, ["--focal-gamma", "1", "--gce-q", "0.5"],
         "--focal-gamma cannot be combined with --gce-q"),
        ("softmax", {"like": "torch"}, ["--like", "torch", "-w", "w"],
         "--like torch: PyTorch's cross_entropy takes no sample weights (drop -w)"),
    ],
)  # fmt: skip
def test_the_cli_and_compute_refuse_alike_through_plan_build(runner, tmp_path, loss, options, flags, message):
    from cecli.cli import app

    path = tmp_path / "in.csv"
    path.write_text("y,p_0,p_1,w\n0,0.75,0.25,1\n1,0.5,0.5,2\n" if loss != "bce" else "y,p,w\n1,0.75,1\n0,0.5,2\n")
    weight = "w" if "-w" in flags else None
    with pytest.raises(OptionError) as caught:
        compute(loss, str(path), weight=weight, **options)
    assert str(caught.value) == message
    result = runner.invoke(app, [loss, str(path), *flags], prog_name="cecli")
    assert (result.exit_code, result.stdout, result.stderr) == (2, "", f"cecli: error: {message}\n")


def test_plan_build_checks_the_output_combinations_first_then_the_gate_then_the_loss_options():
    bad = {"options": {"label_smoothing": 2.0}, "gate": {"fail_above": math.nan}}
    with pytest.raises(OptionError) as caught:
        Plan.build("bce", given={"value_only": True, "format": "json"}, fmt="json", **bad)
    assert (
        str(caught.value)
        == "--value-only cannot be combined with -f json (--value-only prints just the reduced number)"
    )
    with pytest.raises(OptionError) as caught:
        Plan.build("bce", given={}, fmt="json", **bad)
    assert str(caught.value) == (
        "--fail-above nan is a gate that can never fail (no value compares with NaN) (give --fail-above a number)"
    )
    with pytest.raises(OptionError) as caught:
        Plan.build("bce", options=bad["options"])
    assert str(caught.value) == "--label-smoothing must be in [0, 1]; received 2.0"


def test_compute_uses_the_plan_it_is_given(tmp_path):
    path = tmp_path / "in.csv"
    path.write_text("y,p\n1,0.5\n0,0.75\n")
    plan = Plan.build("bce", options={"reduction": "sum", "base": "2"})
    result = compute("bce", str(path), plan=plan, reduction="sum", base="2")
    assert result.options is plan.opts
    assert result.value == pytest.approx((1 + 2) / 1, rel=1e-15)  # -log2(0.5) + -log2(0.25) = 1 + 2 bits


# --- types that cross layers keep one meaning ------------------------------------------------------------------------


def test_the_largest_losses_are_numbered_by_dataset_row_across_files(tmp_path):
    # bce losses -ln p: file a rows 2..3 (lines), file b rows 2..3; the largest is b's second row, dataset row 4.
    first, second = tmp_path / "a.csv", tmp_path / "b.csv"
    first.write_text("y,p\n1,0.5\n1,0.9\n")
    second.write_text("y,p\n1,0.8\n1,0.125\n")
    result = compute("bce", [str(first), str(second)], top=2, eps=0.0)
    assert isinstance(result.top, Largest)
    assert [(row, loss) for loss, row, _ in result.top.rows] == [(4, -math.log(0.125)), (1, -math.log(0.5))]


def test_topk_keeps_file_positions_until_the_state_numbers_them():
    state = ScoreState(top=TopK(2, ((5.0, (1, 2), ()), (4.0, (0, 1), ()))), file_rows={0: 3, 1: 2})
    assert state.top.rows[0][1] == (1, 2)  # (file index, row in that file)
    assert state.largest() == Largest(((5.0, 5, ()), (4.0, 1, ())))
    assert ScoreState().largest() is None  # no --top asked


def test_a_bad_value_is_one_error_type_from_the_checks_and_the_readers(tmp_path):
    with pytest.raises(CellError) as checked_error:
        check_probabilities(np.array([[0.5, 0.5], [0.25, 1.5]]))
    assert (checked_error.value.index, checked_error.value.column_index, checked_error.value.column) == (1, 1, None)
    # The same type from the scorer's check (a column position, named by the scorer) and from a reader (a name).
    expected = {
        "y,p_0,p_1\n0,0.5,0.5\n1,0.25,1.5\n": "3:p_1: probability 1.5 is outside [0, 1]"
        " (pass --from-logits if these are raw scores)",
        "y,p_0,p_1\n0,0.5,0.5\n1,x,0.5\n": "3:p_0: not a number: 'x' (every cell of this column must be a number)",
    }
    for number, (text, message) in enumerate(expected.items()):
        path = tmp_path / f"in{number}.csv"
        path.write_text(text)
        with pytest.raises(CellError) as located:
            compute("sparse", str(path))
        assert str(located.value) == f"{path}:{message}"
    assert CellError is io_base.CellError


def test_a_misspelt_option_is_not_silently_ignored(tmp_path):
    # The checks read the options by name; a name they do not know is a programming error, as for any function.
    with pytest.raises(TypeError) as caught:
        compute("bce", str(tmp_path / "never-read.csv"), label_smothing=0.1)
    assert str(caught.value) == "compute() got an unexpected keyword argument 'label_smothing'"
