"""The losses cecli computes: one entry per loss, the one table the others read.

The CLI generates one command per entry (its help text and which options it offers),
:class:`~cecli.options.LossOptions` refuses an option the entry does not list, and the
scorer calls the entry's per-sample function of :mod:`cecli.numerics.core`. Adding a loss is
an entry here, its function in the core, and its tests (README, "Adding a loss").

This module imports nothing heavy: ``cecli --help`` reads it without NumPy.
"""

from __future__ import annotations

from typing import NamedTuple

# How label columns are guessed when no name rule matched and -y was not given (cecli.io.columns), by
# label kind: "per prediction" takes as many label columns as there are predictions (the first half of
# 2C headerless columns, every column of a --labels file); "first" takes the first column, the rest are
# predictions; "labels file" takes every column of a --labels file only; "never" reads no labels
# unless -y names them. Any kind takes the first of two columns. Kinds not listed have no rule of their own.
LABEL_GUESSES = {
    "binary": "labels file",
    "distribution": "per prediction",
    "weights": "per prediction",
    "class": "first",
    "class or distribution": "first",
    "none": "never",
    "class or none": "never",
}

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
    "gamma",
    "alpha",
    "apply_class_balancing",
    "q",
)

# The variants of a loss that an option turns on (the `variants` of an entry, as (option, variant) pairs):
# when the option is set, the variant's function (in cecli.numerics.family) replaces the entry's, with
# its own keywords (`gamma`, `alpha`, `apply_class_balancing` and `q` are --focal-gamma, the effective
# --focal-alpha, --class-balancing and --gce-q). A keyword a function does not take is an option that
# does not apply to the number: the JSON `options` block shows it as null (LossOptions.to_dict).
VARIANTS = {
    # Keras BinaryFocalCrossentropy (torchvision sigmoid_focal_loss under --like torch): alpha weighs
    # positives and 1 - alpha negatives, only with class balancing; default alpha 0.25.
    "binary focal": (
        "binary_focal_cross_entropy",
        ("from_logits", "eps", "label_smoothing", "base", "gamma", "alpha", "apply_class_balancing"),
    ),
    # Keras CategoricalFocalCrossentropy: alpha multiplies every class (Keras' default 0.25, else 1).
    "categorical focal": (
        "categorical_focal_cross_entropy",
        ("from_logits", "eps", "label_smoothing", "ignore_index", "temperature", "base", "gamma", "alpha"),
    ),
    # Keras CategoricalGeneralizedCrossEntropy: (1 - p_y^q) / q.
    "generalized": (
        "generalized_cross_entropy",
        ("from_logits", "eps", "label_smoothing", "ignore_index", "temperature", "renormalize", "base", "q"),
    ),
}

# What a --like preset sets (cecli.options.Preset) that an entry may set otherwise for its library
# (the `like` of an entry, as (preset, setting, value) triples).
LIKE_SETTINGS = ("renormalize", "mean_denominator")

# The conditions under which a --like library has no equivalent (the `unlike` of an entry, as
# (preset, conditions, reason) triples, or (preset, conditions, reason, hint)): each condition is an
# option that is set (not its default), or, after "!", one that is not; "sample_weights" is a -w column.
# All of them must hold. Checked in order; the first reason wins.

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

    The rest are data for the rules that once named losses: `variants` (an option that swaps
    the function, :data:`VARIANTS`), `logits_only` (``softmax``), `like` (a ``--like``
    library's setting unlike its preset's), `unlike` (when a library has no equivalent) and
    `perplexity`. How label columns are guessed follows the label kind (:data:`LABEL_GUESSES`).
    """

    name: str
    help: str
    options: tuple[str, ...]
    labels: str
    function: str  # the per-sample function's name in cecli.numerics.core (or cecli.numerics.family)
    keywords: tuple[str, ...] = ()
    predictions: str = "distributions"
    variants: tuple[tuple[str, str], ...] = ()  # (option, VARIANTS key)
    logits_only: bool = False  # predictions are always logits (no --from-logits to give)
    like: tuple[tuple[str, str, str], ...] = ()  # (preset, LIKE_SETTINGS name, value) unlike the preset's own
    unlike: tuple[tuple, ...] = ()  # (preset, conditions, reason[, hint])
    # What exp(mean loss in nats) is a perplexity of: () none, ("dataset",) the whole, ("dataset",
    # "groups") also each --by group (a per-document perplexity of a log-prob dump).
    perplexity: tuple[str, ...] = ()

    @property
    def has_labels(self) -> bool:
        """Whether the loss reads labels (``-y``, ``--labels``)."""
        return self.labels != "none"

    def takes(self, option: str) -> bool:
        return option in self.options

    def variant(self, options) -> str | None:
        """The :data:`VARIANTS` key that `options` (any object with the option attributes) turn on, or None."""
        return next((variant for option, variant in self.variants if getattr(options, option) is not None), None)

    def call(self, options) -> tuple[str, tuple[str, ...]]:
        """The per-sample function's name and keywords for `options`: the entry's own, or a variant's."""
        variant = self.variant(options)
        return VARIANTS[variant] if variant else (self.function, self.keywords)

    def unlike_reason(self, options, defaults: dict) -> tuple[str, str | None] | None:
        """Why the ``--like`` library of `options` has no equivalent of this computation, and a hint; or None.

        `options` has the option attributes, and ``sample_weights`` (whether -w gives a column);
        an option is set when it differs from its value in `defaults`.
        """
        for like, conditions, reason, *hint in self.unlike:
            if like == options.like and all(
                (getattr(options, name.removeprefix("!")) != defaults[name.removeprefix("!")]) != name.startswith("!")
                for name in conditions
            ):
                return reason, (hint[0] if hint else None)
        return None


def checked(loss: Loss) -> Loss:
    """`loss` if its label kind, prediction kind and keywords are known, else ``ValueError``."""
    if loss.labels not in LABEL_KINDS:
        raise ValueError(f"unknown label kind {loss.labels!r} for loss {loss.name!r}")
    if loss.predictions not in PREDICTION_KINDS:
        raise ValueError(f"unknown prediction kind {loss.predictions!r} for loss {loss.name!r}")
    for keyword in loss.keywords:
        if keyword not in KEYWORDS:
            raise ValueError(f"unknown keyword {keyword!r} for loss {loss.name!r}")
    for option, variant in loss.variants:
        if variant not in VARIANTS or not loss.takes(option):
            raise ValueError(f"unknown variant {variant!r} or option {option!r} for loss {loss.name!r}")
    for _, setting, _ in loss.like:
        if setting not in LIKE_SETTINGS:
            raise ValueError(f"unknown --like setting {setting!r} for loss {loss.name!r}")
    if not set(loss.perplexity) <= {"dataset", "groups"}:
        raise ValueError(f"unknown perplexity {loss.perplexity!r} for loss {loss.name!r}")
    if loss.unlike and not loss.takes("like"):
        raise ValueError(f"loss {loss.name!r} has no --like, so nothing unlike a library")
    return loss


# The reasons a library has no equivalent, shared by several entries.
_SKLEARN_LOGITS = ("sklearn", ("from_logits",), "scikit-learn's log_loss takes probabilities, not logits")
_TORCH_LOGITS = (
    "torch",
    ("!from_logits",),
    "PyTorch's cross_entropy takes logits; pass --from-logits (or use `cecli softmax`)",
)
_TORCH_NO_SAMPLE_WEIGHTS = ("torch", ("sample_weights",), "PyTorch's cross_entropy takes no sample weights", "drop -w")


def _sklearn_lacks(*options: str) -> tuple:
    """scikit-learn's log_loss has none of `options` (the ones an entry takes), in that order."""
    return tuple(
        ("sklearn", (name,), f"scikit-learn's log_loss has no equivalent of --{name.replace('_', '-')}")
        for name in options
    )


_CATEGORICAL_VARIANTS = (("focal_gamma", "categorical focal"), ("gce_q", "generalized"))
# The libraries without the categorical variants; checked before an entry's other reasons.
_UNLIKE_CATEGORICAL_VARIANTS = (
    ("sklearn", ("focal_gamma",), "scikit-learn has no focal loss"),
    ("torch", ("focal_gamma",), "PyTorch has no categorical focal loss"),
    ("torch", ("gce_q",), "the library has no generalized cross-entropy"),
    ("sklearn", ("gce_q",), "the library has no generalized cross-entropy"),
)


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
            variants=(("focal_gamma", "binary focal"),),
            # BCELoss / BCEWithLogitsLoss reduce over all N * k elements, whatever weight= holds.
            like=(("torch", "mean_denominator", "elements"),),
            unlike=(
                ("sklearn", ("focal_gamma",), "scikit-learn has no focal loss"),
                (
                    "torch",
                    ("focal_gamma", "!from_logits"),
                    "torchvision's sigmoid_focal_loss takes logits; pass --from-logits",
                ),
                ("keras", ("pos_weight",), "Keras's BinaryCrossentropy has no pos_weight"),
                ("torch", ("label_smoothing",), "PyTorch's binary cross-entropy has no label_smoothing"),
                (
                    "torch",
                    ("pos_weight", "!from_logits"),
                    "PyTorch's BCELoss has no pos_weight; pass --from-logits (BCEWithLogitsLoss)",
                ),
                _SKLEARN_LOGITS,
                *_sklearn_lacks("label_smoothing", "pos_weight"),
            ),
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
            variants=_CATEGORICAL_VARIANTS,
            unlike=(
                *_UNLIKE_CATEGORICAL_VARIANTS,
                _TORCH_LOGITS,
                _SKLEARN_LOGITS,
                *_sklearn_lacks("label_smoothing", "class_weights"),
                _TORCH_NO_SAMPLE_WEIGHTS,
            ),
            perplexity=("dataset",),
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
            variants=_CATEGORICAL_VARIANTS,
            # Keras' SparseCategoricalCrossentropy divides by the row sum after clipping.
            like=(("keras", "renormalize", "after_clip"),),
            unlike=(
                *_UNLIKE_CATEGORICAL_VARIANTS,
                ("keras", ("label_smoothing",), "Keras's SparseCategoricalCrossentropy has no label_smoothing"),
                _TORCH_LOGITS,
                _SKLEARN_LOGITS,
                *_sklearn_lacks("label_smoothing", "class_weights", "ignore_index"),
                _TORCH_NO_SAMPLE_WEIGHTS,
            ),
            perplexity=("dataset",),
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
            variants=_CATEGORICAL_VARIANTS,
            logits_only=True,
            unlike=(*_UNLIKE_CATEGORICAL_VARIANTS, _SKLEARN_LOGITS, _TORCH_NO_SAMPLE_WEIGHTS),
            perplexity=("dataset",),
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
            perplexity=("dataset",),
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
            perplexity=("dataset", "groups"),
        ),
    )
}


def applies(option: str) -> tuple[str, ...]:
    """The losses that take `option`, in registry order."""
    return tuple(name for name, loss in REGISTRY.items() if loss.takes(option))
