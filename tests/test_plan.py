"""The option-combination rules, reached without Typer through cecli.plan.checked and cecli.plan.Plan."""

import dataclasses

import pytest

from cecli import OptionError, compute
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
