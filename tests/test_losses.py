"""The loss registry is the one table the CLI and the option checks are generated from."""

import inspect
import math
import re
from fractions import Fraction

import pytest

from cecli import DataError, OptionError, compute, options
from cecli.cli import app
from cecli.losses import KEYWORDS, LABEL_KINDS, LOSS_OPTIONS, REGISTRY, Loss, checked
from cecli.numerics import core
from cecli.options import APPLIES, LOSSES, LossOptions
from cecli.plan import Plan
from cecli.scoring import _LABELS, _keywords, loss_function

# Written out by hand from the README's "Options" table: which loss takes which option.
EXPECTED_OPTIONS = {
    "bce": [
        "like",
        "from_logits",
        "eps",
        "pos_weight",
        "label_smoothing",
        "focal_gamma",
        "focal_alpha",
        "class_balancing",
    ],
    "cce": [
        "like",
        "from_logits",
        "eps",
        "label_smoothing",
        "class_weights",
        "focal_gamma",
        "focal_alpha",
        "gce_q",
        "per_class",
    ],
    "sparse": [
        "like",
        "from_logits",
        "eps",
        "label_smoothing",
        "class_weights",
        "ignore_index",
        "focal_gamma",
        "focal_alpha",
        "gce_q",
        "per_class",
    ],
    "softmax": [
        "like",
        "temperature",
        "label_smoothing",
        "class_weights",
        "ignore_index",
        "focal_gamma",
        "focal_alpha",
        "gce_q",
        "per_class",
    ],
    "entropy": [],
    "kl": [],
    "nll": ["class_weights", "ignore_index"],
}
# An example value for each loss-only option, as a command line gives it and as LossOptions takes it.
EXAMPLES = {
    "from_logits": (["--from-logits"], True),
    "eps": (["--eps", "0.01"], 0.01),
    "label_smoothing": (["--label-smoothing", "0.1"], 0.1),
    "pos_weight": (["--pos-weight", "2"], (2.0,)),
    "class_weights": (["--class-weights", "1,2"], (1.0, 2.0)),
    "ignore_index": (["--ignore-index", "0"], 0),
    "temperature": (["--temperature", "2"], 2.0),
    "focal_gamma": (["--focal-gamma", "2"], 2.0),
    "focal_alpha": (["--focal-alpha", "0.5"], 0.5),
    "class_balancing": (["--class-balancing"], True),
    "gce_q": (["--gce-q", "0.5"], 0.5),
}
# The options an example needs beside it (focal alpha and class balancing qualify a focal loss).
COMPANIONS = {"focal_alpha": {"focal_gamma": 1.0}, "class_balancing": {"focal_gamma": 1.0}}


def _flags(loss: str, runner) -> list[str]:
    """The long options `cecli LOSS --help` lists, in order."""
    result = runner.invoke(app, [loss, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    return re.findall(r"(?m)^  (?:-[a-z], )?(--[a-z][a-z-]*)", result.stdout)  # option lines, not wrapped text


def test_the_registry_lists_every_loss_in_command_order():
    assert LOSSES == ("bce", "cce", "sparse", "softmax", "entropy", "kl", "nll")
    assert {name: list(loss.options) for name, loss in REGISTRY.items()} == EXPECTED_OPTIONS


@pytest.mark.parametrize("name", list(REGISTRY))
def test_each_entry_names_a_core_function_and_a_label_kind(name):
    loss = REGISTRY[name]
    assert loss.name == name
    assert callable(loss_function(loss.function))
    assert loss.labels in LABEL_KINDS
    assert loss.has_labels == (name != "entropy")


def test_applies_is_generated_from_the_registry():
    assert APPLIES == {
        "from_logits": ("bce", "cce", "sparse"),
        "eps": ("bce", "cce", "sparse"),
        "label_smoothing": ("bce", "cce", "sparse", "softmax"),
        "pos_weight": ("bce",),
        "class_weights": ("cce", "sparse", "softmax", "nll"),
        "ignore_index": ("sparse", "softmax", "nll"),
        "temperature": ("softmax",),
        "focal_gamma": ("bce", "cce", "sparse", "softmax"),
        "focal_alpha": ("bce", "cce", "sparse", "softmax"),
        "class_balancing": ("bce",),
        "gce_q": ("cce", "sparse", "softmax"),
    }
    assert tuple(APPLIES) == LOSS_OPTIONS


def test_an_unknown_label_kind_is_refused():
    with pytest.raises(ValueError, match="unknown label kind 'ranks' for loss 'x'"):
        checked(Loss("x", "help", (), "ranks", "entropy"))


@pytest.mark.parametrize("name", list(REGISTRY))
def test_each_command_offers_exactly_its_registry_options(name, runner):
    flags = _flags(name, runner)
    own = ["--" + option.replace("_", "-") for option in EXPECTED_OPTIONS[name]]
    some_only = {"--" + option.replace("_", "-") for options in EXPECTED_OPTIONS.values() for option in options}
    shown = [flag for flag in flags if flag in some_only]
    assert sorted(shown) == sorted(own)
    assert len(flags) > 20  # the shared options too
    assert ("--y-true" in flags) == (name != "entropy")
    assert ("--labels" in flags) == (name != "entropy")


@pytest.mark.parametrize("name", list(REGISTRY))
@pytest.mark.parametrize("option", LOSS_OPTIONS)
def test_an_option_a_loss_does_not_take_is_a_usage_error(name, option, runner):
    args, value = EXAMPLES[option]
    flag = args[0]
    if option in EXPECTED_OPTIONS[name]:
        companions = dict(COMPANIONS.get(option, {}))
        if option == "focal_alpha" and name == "bce":  # alpha weighs bce's classes only with class balancing
            companions["class_balancing"] = True
        assert getattr(Plan.build(name, options={option: value, **companions}).opts, option) == value
        return
    with pytest.raises(OptionError, match=f"^{flag} does not apply to `cecli {name}`$"):
        Plan.build(name, options={option: value})
    result = runner.invoke(app, [name, *args, "-"], input="1,0.5\n")
    assert result.exit_code == 2
    assert f"No such option: {flag}" in result.stderr


def _squared_error(y_true, y_pred, *, base=None):
    """A toy loss for the test below: ``(y - p)^2`` per row, divided by ``ln(base)`` with a base."""
    return (y_true - y_pred) ** 2 / (1.0 if base is None else math.log(base))


@pytest.mark.parametrize(("flags", "scale"), [({}, 1.0), ({"base": "2"}, math.log(2))])
def test_a_loss_is_its_registry_entry_and_its_core_function(monkeypatch, tmp_path, flags, scale):
    # A new loss: its entry and its function, nothing else (LOSSES is the registry's names, read at import).
    entry = checked(Loss("squared", "Squared error.", (), "binary", "squared_error", ("base",), "probabilities"))
    monkeypatch.setitem(REGISTRY, "squared", entry)
    monkeypatch.setattr(options, "LOSSES", (*options.LOSSES, "squared"), raising=True)
    monkeypatch.setattr(core, "squared_error", _squared_error, raising=False)
    data = tmp_path / "toy.csv"
    data.write_text("y_true,y_pred\n1,0.9\n0,0.2\n1,0.4\n")
    result = compute("squared", [str(data)], y="y_true", p="y_pred", **flags)
    expected = [(1 - 0.9) ** 2 / scale, (0 - 0.2) ** 2 / scale, (1 - 0.4) ** 2 / scale]
    assert result.per_sample.tolist() == expected
    # The mean is the exact sum over the count, rounded once.
    assert result.value == float(sum(map(Fraction, expected)) / 3)
    # Binary labels: a prediction is right on the label's side of 0.5 (0.4 for a 1 is not).
    assert result.accuracy == 2 / 3
    assert result.rows == 3


def test_a_label_value_the_kind_refuses_names_its_cell(monkeypatch, tmp_path):
    # The entry's label kind checks the labels: binary labels must be in [0, 1], located at file:row:column.
    entry = checked(Loss("squared", "Squared error.", (), "binary", "squared_error", (), "probabilities"))
    monkeypatch.setitem(REGISTRY, "squared", entry)
    monkeypatch.setattr(options, "LOSSES", (*options.LOSSES, "squared"), raising=True)
    monkeypatch.setattr(core, "squared_error", _squared_error, raising=False)
    data = tmp_path / "toy.csv"
    data.write_text("y_true,y_pred\n1,0.9\n2,0.2\n")
    with pytest.raises(DataError) as caught:
        compute("squared", [str(data)], y="y_true", p="y_pred")
    assert str(caught.value).startswith(f"{data}:3:y_true: ")


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (Loss("x", "help", (), "binary", "entropy", (), "logits"), "unknown prediction kind 'logits' for loss 'x'"),
        (Loss("x", "help", (), "binary", "entropy", ("mu",)), "unknown keyword 'mu' for loss 'x'"),
    ],
)
def test_an_unknown_prediction_kind_or_keyword_is_refused(entry, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        checked(entry)


@pytest.mark.parametrize("name", list(REGISTRY))
def test_each_entry_passes_only_keywords_its_function_takes(name):
    loss = REGISTRY[name]
    parameters = inspect.signature(loss_function(loss.function)).parameters
    assert all(parameters[k].kind is inspect.Parameter.KEYWORD_ONLY for k in loss.keywords)


def test_the_scorer_knows_every_keyword_and_label_kind():
    # Every keyword an entry may name has a value, and every label kind a check (the mixed kind picks one).
    assert set(_keywords(LossOptions("bce"))) | {"row_sums"} == set(KEYWORDS)
    assert set(_LABELS) | {"class or distribution", "class or none"} == set(LABEL_KINDS)
