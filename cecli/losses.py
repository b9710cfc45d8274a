"""The losses cecli computes: one entry per loss, the one table the others read.

The CLI generates one command per entry (its help text and which options it offers),
:class:`~cecli.options.LossOptions` refuses an option the entry does not list, and the
scorer calls the entry's per-sample function of :mod:`cecli.numerics.core`. Adding a loss is
an entry here, its function in the core, and its tests (README, "Adding a loss").

This module imports nothing heavy: ``cecli --help`` reads it without NumPy.
"""

from __future__ import annotations

from typing import NamedTuple

# What a loss takes as labels (the `labels` of an entry).
LABEL_KINDS = {
    "binary": "a probability of the positive class per label column (binary or multi-label)",
    "distribution": "a one-hot or soft distribution over the classes per row",
    "class": "a class index (or class name) per row",
    "class or distribution": "a class index per row, or a one-hot or soft distribution over the classes",
    "weights": "non-negative weights over the classes per row, each row divided by its sum",
    "none": "no labels",
    "class or none": "a class index per row (only with -y), or no labels: one column of log p(true class)",
}

# How a loss's predictions are checked (the `predictions` of an entry; cecli.scoring applies the check).
PREDICTION_KINDS = {
    "probabilities": "each value a probability in [0, 1] (or any finite logit with --from-logits)",
    "distributions": "rows of probabilities with a positive sum (or finite logits with --from-logits)",
    "weights": "rows of non-negative weights with a positive sum",
    "log_probabilities": "natural-log probabilities, each at most 0 (-inf is probability 0)",
}

# The keywords an entry may pass to its function (its `keywords`), each the effective option of that name
# (`base`: --base as a number; `class_weights`: inside the loss, unless --like keras weighs by label;
# `row_sums`: the prediction rows' sums found by the "distributions" check, None with logits).
KEYWORDS = (
    "from_logits",
    "eps",
    "label_smoothing",
    "pos_weight",
    "class_weights",
    "ignore_index",
    "temperature",
    "base",
    "log_floor",
    "renormalize",
    "row_sums",
)

# Options that change the loss value and apply to some losses only, in the order their checks run.
LOSS_OPTIONS = (
    "from_logits",
    "eps",
    "label_smoothing",
    "pos_weight",
    "class_weights",
    "ignore_index",
    "temperature",
    "focal_gamma",
    "focal_alpha",
    "class_balancing",
    "gce_q",
)


# A NamedTuple, not a dataclass: the CLI reads the registry at start-up, and a frozen dataclass costs
# about 0.5 ms more to create (with 0.35 ms to import dataclasses, which `cecli --version` otherwise needs not).
class Loss(NamedTuple):
    """One loss: its command name, help text, options, label kind and per-sample function.

    `options` lists, in the order ``--help`` shows them, the options only some losses take:
    the :data:`LOSS_OPTIONS` it understands, plus ``like`` (``--like``) and ``per_class``
    (``--per-class``) where they apply. Every loss also takes the options all losses share.

    The scorer reads the rest: it checks the predictions as `predictions` says
    (:data:`PREDICTION_KINDS`) and the labels as their kind says (:data:`LABEL_KINDS`), then
    calls ``function(labels, predictions, **keywords)`` (``function(predictions, ...)`` for
    label kind ``"none"``; binary labels and predictions of one column as 1-D arrays) with
    each of `keywords` (:data:`KEYWORDS`) set to its effective option. The label kind also
    says what accuracy counts: binary labels count the label columns a prediction gets on
    the right side of 0.5 (of 0 for logits); class and distribution labels count rows whose
    largest prediction is the true class (the label's class index, or its row's largest
    value), which ``--per-class`` groups by; weights and no labels count nothing.
    """

    name: str
    help: str
    options: tuple[str, ...]
    labels: str
    function: str  # the per-sample function's name in cecli.numerics.core (or cecli.numerics.family)
    keywords: tuple[str, ...] = ()
    predictions: str = "distributions"

    @property
    def has_labels(self) -> bool:
        """Whether the loss reads labels (``-y``, ``--labels``)."""
        return self.labels != "none"

    def takes(self, option: str) -> bool:
        return option in self.options


def checked(loss: Loss) -> Loss:
    """`loss` if its label kind, prediction kind and keywords are known, else ``ValueError``."""
    if loss.labels not in LABEL_KINDS:
        raise ValueError(f"unknown label kind {loss.labels!r} for loss {loss.name!r}")
    if loss.predictions not in PREDICTION_KINDS:
        raise ValueError(f"unknown prediction kind {loss.predictions!r} for loss {loss.name!r}")
    for keyword in loss.keywords:
        if keyword not in KEYWORDS:
            raise ValueError(f"unknown keyword {keyword!r} for loss {loss.name!r}")
    return loss


REGISTRY = {
    loss.name: checked(loss)
    for loss in (
        Loss(
            "bce",
            "Binary and multi-label cross-entropy of probabilities (or logits).\n\n"
            "Example: printf 'y_true,y_pred\\n1,0.9\\n0,0.2\\n' | cecli bce -f json",
            (
                "like",
                "from_logits",
                "eps",
                "pos_weight",
                "label_smoothing",
                "focal_gamma",
                "focal_alpha",
                "class_balancing",
            ),
            "binary",
            "binary_cross_entropy",
            ("from_logits", "eps", "pos_weight", "log_floor", "label_smoothing", "base"),
            "probabilities",
        ),
        Loss(
            "cce",
            "Categorical cross-entropy of one-hot or soft labels against class probabilities.\n\n"
            "Example: cecli cce sample_data/seed-cce.csv",
            (
                "like",
                "from_logits",
                "eps",
                "label_smoothing",
                "class_weights",
                "focal_gamma",
                "focal_alpha",
                "gce_q",
                "per_class",
            ),
            "distribution",
            "categorical_cross_entropy",
            ("from_logits", "eps", "temperature", "label_smoothing", "base", "class_weights", "renormalize"),
        ),
        Loss(
            "sparse",
            "Cross-entropy of integer (or class-name) labels against class probabilities.\n\n"
            "Example: cecli sparse sample_data/seed-sparse.csv --reduction sum",
            (
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
            ),
            "class",
            "sparse_cross_entropy",
            (
                "from_logits",
                "eps",
                "temperature",
                "ignore_index",
                "row_sums",
                "label_smoothing",
                "base",
                "class_weights",
                "renormalize",
            ),
        ),
        Loss(
            "softmax",
            "Softmax cross-entropy of raw scores (logits), with integer or one-hot labels.\n\n"
            "Example: cecli softmax sample_data/softmax-logits.csv",
            (
                "like",
                "temperature",
                "label_smoothing",
                "class_weights",
                "ignore_index",
                "focal_gamma",
                "focal_alpha",
                "gce_q",
                "per_class",
            ),
            "class or distribution",
            "softmax_cross_entropy",
            ("temperature", "label_smoothing", "class_weights", "ignore_index", "base"),
        ),
        Loss(
            "entropy",
            "Shannon entropy of each row's distribution.\n\n"
            "Example: cecli entropy sample_data/seed-entropy-fair-coin.csv --base 2",
            (),
            "none",
            "entropy",
            ("base",),
            "weights",
        ),
        Loss(
            "kl",
            "Kullback-Leibler divergence KL(labels || predictions) of each row's distributions.\n\n"
            "Example: cecli kl sample_data/seed-cce.csv --base 2",
            (),
            "weights",
            "kl_divergence",
            ("base",),
            "weights",
        ),
        Loss(
            "nll",
            "Negative log-likelihood of log-probabilities: one column of log p(true token), or -y with full rows.\n\n"
            "Example: cecli nll sample_data/tokens.csv -p token_logprob --by doc_id",
            ("class_weights", "ignore_index"),
            "class or none",
            "nll",
            ("class_weights", "ignore_index", "base"),
            "log_probabilities",
        ),
    )
}


def applies(option: str) -> tuple[str, ...]:
    """The losses that take `option`, in registry order."""
    return tuple(name for name, loss in REGISTRY.items() if loss.takes(option))
