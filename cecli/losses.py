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
    "none": "no labels",
}

# Options that change the loss value and apply to some losses only, in the order their checks run.
LOSS_OPTIONS = ("from_logits", "eps", "label_smoothing", "pos_weight", "class_weights", "ignore_index", "temperature")


# A NamedTuple, not a dataclass: the CLI reads the registry at start-up, and a frozen dataclass costs
# about 0.5 ms more to create (with 0.35 ms to import dataclasses, which `cecli --version` otherwise needs not).
class Loss(NamedTuple):
    """One loss: its command name, help text, options, label kind and per-sample function.

    `options` lists, in the order ``--help`` shows them, the options only some losses take:
    the :data:`LOSS_OPTIONS` it understands, plus ``like`` (``--like``) and ``per_class``
    (``--per-class``) where they apply. Every loss also takes the options all losses share.
    """

    name: str
    help: str
    options: tuple[str, ...]
    labels: str
    function: str  # the per-sample function's name in cecli.numerics.core

    @property
    def has_labels(self) -> bool:
        """Whether the loss reads labels (``-y``, ``--labels``)."""
        return self.labels != "none"

    def takes(self, option: str) -> bool:
        return option in self.options


def checked(loss: Loss) -> Loss:
    """`loss` if its label kind is one of :data:`LABEL_KINDS`, else ``ValueError``."""
    if loss.labels not in LABEL_KINDS:
        raise ValueError(f"unknown label kind {loss.labels!r} for loss {loss.name!r}")
    return loss


REGISTRY = {
    loss.name: checked(loss)
    for loss in (
        Loss(
            "bce",
            "Binary and multi-label cross-entropy of probabilities (or logits).\n\n"
            "Example: printf 'y_true,y_pred\\n1,0.9\\n0,0.2\\n' | cecli bce -f json",
            ("like", "from_logits", "eps", "pos_weight", "label_smoothing"),
            "binary",
            "binary_cross_entropy",
        ),
        Loss(
            "cce",
            "Categorical cross-entropy of one-hot or soft labels against class probabilities.\n\n"
            "Example: cecli cce sample_data/seed-cce.csv",
            ("like", "from_logits", "eps", "label_smoothing", "class_weights", "per_class"),
            "distribution",
            "categorical_cross_entropy",
        ),
        Loss(
            "sparse",
            "Cross-entropy of integer (or class-name) labels against class probabilities.\n\n"
            "Example: cecli sparse sample_data/seed-sparse.csv --reduction sum",
            ("like", "from_logits", "eps", "label_smoothing", "class_weights", "ignore_index", "per_class"),
            "class",
            "sparse_cross_entropy",
        ),
        Loss(
            "softmax",
            "Softmax cross-entropy of raw scores (logits), with integer or one-hot labels.\n\n"
            "Example: cecli softmax sample_data/softmax-logits.csv",
            ("like", "temperature", "label_smoothing", "class_weights", "ignore_index", "per_class"),
            "class or distribution",
            "softmax_cross_entropy",
        ),
        Loss(
            "entropy",
            "Shannon entropy of each row's distribution.\n\n"
            "Example: cecli entropy sample_data/seed-entropy-fair-coin.csv --base 2",
            (),
            "none",
            "entropy",
        ),
        Loss(
            "kl",
            "Kullback-Leibler divergence KL(labels || predictions) of each row's distributions.\n\n"
            "Example: cecli kl sample_data/seed-cce.csv --base 2",
            (),
            "distribution",
            "kl_divergence",
        ),
    )
}


def applies(option: str) -> tuple[str, ...]:
    """The losses that take `option`, in registry order."""
    return tuple(name for name, loss in REGISTRY.items() if loss.takes(option))
