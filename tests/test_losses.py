"""The loss registry is the one table the CLI and the option checks are generated from."""

import re

import pytest

from cecli import OptionError
from cecli.cli import app
from cecli.losses import LABEL_KINDS, LOSS_OPTIONS, REGISTRY, Loss, checked
from cecli.numerics import core
from cecli.options import APPLIES, LOSSES, LossOptions

# Written out by hand from the README's "Options" table: which loss takes which option.
EXPECTED_OPTIONS = {
    "bce": ["like", "from_logits", "eps", "pos_weight", "label_smoothing"],
    "cce": ["like", "from_logits", "eps", "label_smoothing", "class_weights", "per_class"],
    "sparse": ["like", "from_logits", "eps", "label_smoothing", "class_weights", "ignore_index", "per_class"],
    "softmax": ["like", "temperature", "label_smoothing", "class_weights", "ignore_index", "per_class"],
    "entropy": [],
    "kl": [],
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
}


def _flags(loss: str, runner) -> list[str]:
    """The long options `cecli LOSS --help` lists, in order."""
    result = runner.invoke(app, [loss, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    return re.findall(r"(?m)^  (?:-[a-z], )?(--[a-z][a-z-]*)", result.stdout)  # option lines, not wrapped text


def test_the_registry_lists_every_loss_in_command_order():
    assert LOSSES == ("bce", "cce", "sparse", "softmax", "entropy", "kl")
    assert {name: list(loss.options) for name, loss in REGISTRY.items()} == EXPECTED_OPTIONS


@pytest.mark.parametrize("name", list(REGISTRY))
def test_each_entry_names_a_core_function_and_a_label_kind(name):
    loss = REGISTRY[name]
    assert loss.name == name
    assert callable(getattr(core, loss.function))
    assert loss.labels in LABEL_KINDS
    assert loss.has_labels == (name != "entropy")


def test_applies_is_generated_from_the_registry():
    assert APPLIES == {
        "from_logits": ("bce", "cce", "sparse"),
        "eps": ("bce", "cce", "sparse"),
        "label_smoothing": ("bce", "cce", "sparse", "softmax"),
        "pos_weight": ("bce",),
        "class_weights": ("cce", "sparse", "softmax"),
        "ignore_index": ("sparse", "softmax"),
        "temperature": ("softmax",),
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
        assert getattr(LossOptions(name, **{option: value}), option) == value
        return
    with pytest.raises(OptionError, match=f"^{flag} does not apply to `cecli {name}`$"):
        LossOptions(name, **{option: value})
    result = runner.invoke(app, [name, *args, "-"], input="1,0.5\n")
    assert result.exit_code == 2
    assert f"No such option: {flag}" in result.stderr
