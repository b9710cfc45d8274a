"""The loss registry is the one table the CLI and the option checks are generated from."""

import inspect
import math
import re
from fractions import Fraction

import pytest

from cecli import DataError, OptionError, compute, options
from cecli.cli import app
from cecli.io.columns import Column, choose_columns
from cecli.losses import KEYWORDS, LABEL_GUESSES, LABEL_KINDS, LOSS_OPTIONS, REGISTRY, VARIANTS, Loss, checked
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


# --- the rules that once named losses are registry data -------------------------------------------------------------


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_each_variant_passes_only_keywords_its_function_takes(variant):
    name, keywords = VARIANTS[variant]
    parameters = inspect.signature(loss_function(name)).parameters
    assert set(keywords) <= set(KEYWORDS)
    assert all(parameters[k].kind is inspect.Parameter.KEYWORD_ONLY for k in keywords)


@pytest.mark.parametrize(
    ("name", "options", "function"),
    [
        ("bce", {}, "binary_cross_entropy"),
        ("bce", {"focal_gamma": 2.0}, "binary_focal_cross_entropy"),
        ("sparse", {"focal_gamma": 0.0}, "categorical_focal_cross_entropy"),
        ("softmax", {"gce_q": 0.5}, "generalized_cross_entropy"),
        ("cce", {"gce_q": 1.0}, "generalized_cross_entropy"),
    ],
)
def test_an_option_turns_on_the_variant_the_entry_names(name, options, function):
    assert REGISTRY[name].call(Plan.build(name, options=options).opts)[0] == function


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (Loss("x", "help", ("focal_gamma",), "binary", "entropy", variants=(("focal_gamma", "huber"),)),
         "unknown variant 'huber' or option 'focal_gamma' for loss 'x'"),
        (Loss("x", "help", (), "binary", "entropy", variants=(("focal_gamma", "binary focal"),)),
         "unknown variant 'binary focal' or option 'focal_gamma' for loss 'x'"),
        (Loss("x", "help", ("like",), "binary", "entropy", like=(("keras", "eps", 0.1),)),
         "unknown --like setting 'eps' for loss 'x'"),
        (Loss("x", "help", (), "binary", "entropy", unlike=(("keras", (), "no"),)),
         "loss 'x' has no --like, so nothing unlike a library"),
        (Loss("x", "help", (), "binary", "entropy", perplexity=("tokens",)),
         "unknown perplexity ('tokens',) for loss 'x'"),
    ],
)  # fmt: skip
def test_registry_data_that_names_nothing_known_is_refused(entry, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        checked(entry)


def test_every_label_kind_has_a_column_guess():
    assert set(LABEL_GUESSES) == set(LABEL_KINDS)


@pytest.mark.parametrize(
    ("kind", "labels", "predictions"),
    [
        ("distribution", ["c1", "c2"], ["c3", "c4"]),  # 2C columns: C labels, then C predictions
        ("class", ["c1"], ["c2", "c3", "c4"]),  # a class column, then the predictions
    ],
)
def test_headerless_columns_are_guessed_by_the_entrys_label_kind(monkeypatch, kind, labels, predictions):
    # A new loss gets the column guess of its label kind, with no edit in cecli.io.columns.
    monkeypatch.setitem(REGISTRY, "toy", checked(Loss("toy", "Toy.", (), kind, "entropy")))
    columns = [Column(i, f"c{i}", "double") for i in range(1, 5)]
    selection = choose_columns("toy", columns, file="toy.csv", headerless=True)
    assert (selection.names("labels"), selection.names("predictions")) == (labels, predictions)


def test_a_library_without_an_equivalent_is_registry_data(monkeypatch):
    entry = REGISTRY["softmax"]._replace(unlike=(("keras", ("temperature",), "Keras has no temperature", "drop it"),))
    monkeypatch.setitem(REGISTRY, "softmax", entry)
    with pytest.raises(OptionError) as caught:
        Plan.build("softmax", options={"like": "keras", "temperature": 2.0})
    assert str(caught.value) == "--like keras: Keras has no temperature (drop it)"
    assert Plan.build("softmax", options={"like": "keras"}).opts.temperature == 1.0  # the condition does not hold


def test_a_librarys_own_setting_for_a_loss_is_registry_data(monkeypatch):
    # Keras' sparse cross-entropy divides by the row sum after clipping; PyTorch's bce mean counts elements.
    assert Plan.build("sparse", options={"like": "keras"}).opts.renormalize == "after_clip"
    assert Plan.build("cce", options={"like": "keras"}).opts.renormalize == "before_clip"
    assert Plan.build("bce", options={"like": "torch"}).opts.mean_denominator == "elements"
    assert Plan.build("sparse", options={"like": "torch", "from_logits": True}).opts.mean_denominator == "weights"
    monkeypatch.setitem(REGISTRY, "cce", REGISTRY["cce"]._replace(like=(("keras", "renormalize", "none"),)))
    assert Plan.build("cce", options={"like": "keras"}).opts.renormalize == "none"


# Two rows whose true classes have probabilities 0.8 and 0.6: mean -ln(0.48) / 2, perplexity 1 / sqrt(0.48).
PERPLEXITY_FILES = {
    "sparse": "y,p_0,p_1\n0,0.8,0.2\n1,0.4,0.6\n",
    "cce": "y_0,y_1,p_0,p_1\n1,0,0.8,0.2\n0,1,0.4,0.6\n",
    "kl": "y_0,y_1,p_0,p_1\n1,0,0.8,0.2\n0,1,0.4,0.6\n",
    "bce": "y,p\n1,0.8\n1,0.6\n",
}


@pytest.mark.parametrize(("name", "expected"), [("sparse", True), ("cce", True), ("bce", False), ("kl", False)])
def test_which_losses_have_a_perplexity_is_registry_data(tmp_path, name, expected):
    path = tmp_path / "two.csv"
    path.write_text(PERPLEXITY_FILES[name])
    result = compute(name, str(path))
    assert result.value == pytest.approx(-math.log(0.48) / 2, rel=1e-15)  # KL of one-hot rows is the CE
    assert result.perplexity == (pytest.approx(1 / math.sqrt(0.48), rel=1e-15) if expected else None)
