"""Scoring: batches of one or more inputs to a mergeable partial state, the same for every engine.

:class:`_Scorer` validates and scores each :class:`~cecli.io.base.Batch` (error location,
class weights the Keras way, accuracy, groups, the largest losses, per-sample buffers) into a
:class:`~cecli.numerics.reduce.ScoreState`, as the loss's registry entry says (:data:`_LABELS`,
:func:`_keywords`, :func:`loss_function`). The loop over files that runs it is :mod:`cecli.files`,
which the engines (:mod:`cecli.engines.local`, :mod:`cecli.engines.dask`) and :mod:`cecli.lockstep`
import; this module imports none of them.
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import numpy as np

from .errors import CellError, DataError, OptionError
from .io.base import Batch
from .io.columns import Column, Selection, class_names, class_numbers
from .io.inputs import Input
from .losses import REGISTRY
from .numerics import core, family, validate
from .numerics.argmax import _hits, _row_argmax
from .numerics.reduce import Histogram, Partial, ScoreState, TopK, grouped
from .options import Interval, LossOptions


def _class_labels(opts: LossOptions, selection: Selection) -> bool:
    """Whether the labels are read as class indices (or names): the label kind, one plain column for either kind."""
    kind = REGISTRY[opts.loss].labels
    return (
        kind == "class"
        or (kind == "class or none" and bool(selection.labels))
        or (kind == "class or distribution" and len(selection.labels) == 1 and not selection.labels[0].is_list)
    )


def _class_names(predictions: tuple[Column, ...]) -> list[str] | None:
    """Class names from prediction column suffixes after the family prefix: ``p_cat, p_cow`` -> ``cat, cow``."""
    return class_names(predictions)


class _Scored(NamedTuple):
    """What scoring one batch finds, before it is reduced."""

    losses: np.ndarray
    labels: np.ndarray | None = None  # class indices, where the labels are classes
    true_class: np.ndarray | None = None  # for --per-class
    hits: np.ndarray | None = None  # right per row (accuracy): True/False, or right label columns (binary)
    off_simplex: int = 0  # prediction rows that do not sum to 1


class _Scorer:
    """Validates each batch, computes its losses and accumulates a :class:`ScoreState`."""

    def __init__(
        self,
        opts: LossOptions,
        selection: Selection,
        main: Input,
        label_input: Input,
        *,
        per_class: bool,
        top: int,
        extras: bool = True,
        interval: Interval | None = None,
        file_starts: list[int] | None = None,
    ) -> None:
        self.opts = opts
        self.interval = interval
        # Each file's first global row (0-based): the bootstrap's draws are keyed by it. The local engine
        # reads the files in order and counts; a Dask task is told (cecli.engines.dask counts them first).
        self.file_starts = file_starts
        self.file_start = 0
        self.extras = extras
        self.selection = selection
        self.inputs = {"labels": label_input, "predictions": main, "weight": main}
        notes = tuple(label_input.warnings) if label_input is not main else ()
        self.state = ScoreState(top=TopK(top), per_class={} if per_class else None, notes=notes)
        self.file_index = 0
        self.total_rows = 0  # state.rows, kept as a running count
        self.per_sample: list[np.ndarray] = []
        self.counted: list[np.ndarray] = []
        self.keep: dict[str, list] = {c.name: [] for c in selection.keep}
        # Integer labels name their class when the prediction columns are named after classes
        # other than 0..C-1 (p_1, p_2, p_3); columns named 0..C-1 are already in class order.
        numbers = class_numbers(selection.predictions)
        self.class_numbers = None if numbers is None or numbers == list(range(len(numbers))) else numbers
        self.keywords = _keywords(opts)
        name, names = REGISTRY[opts.loss].call(opts)  # the entry's function, or the variant an option turns on
        self.function = loss_function(name), names

    def start_file(self, index: int, source: Input, *, own_labels: bool = True) -> None:
        """Score the next batches as file number `index` (0-based, in dataset order)."""
        self.file_index = index
        self.file_start = self.total_rows if self.file_starts is None else self.file_starts[index]
        self.inputs["predictions"] = self.inputs["weight"] = source
        if source.warnings:
            self.state = dataclasses.replace(self.state, notes=self.state.notes + tuple(source.warnings))
        if own_labels:
            self.inputs["labels"] = source

    def per_sample_values(self) -> tuple[np.ndarray, np.ndarray, dict[str, list]]:
        """Per-sample losses (NaN where not counted), the counted mask and kept columns."""
        if not self.per_sample:
            return np.empty(0), np.empty(0, dtype=bool), self.keep
        return np.concatenate(self.per_sample), np.concatenate(self.counted), self.keep

    def _column_name(self, role: str, index: int) -> str:
        columns = self.selection.labels if role == "labels" else self.selection.predictions
        if role == "weight":
            return self.selection.weight.name
        if len(columns) == 1 and columns[0].is_list:
            return f"{columns[0].name}[{index}]"
        return columns[min(index, len(columns) - 1)].name

    def _checked(self, role: str, batch: Batch, check, *args):
        try:
            return check(*args)
        except CellError as error:
            source = self.inputs[role]
            raise error.locate(
                file=source.display,
                row=source.user_row(batch.offset + error.index),
                column=self._column_name(role, error.column_index),
            ) from None

    def add(self, batch: Batch) -> tuple[np.ndarray, np.ndarray]:
        """Score one batch into every accumulator; return its per-sample losses and which rows count."""
        opts, state = self.opts, self.state
        preds = batch.arrays["predictions"]
        if state.n_classes is None:
            self._check_shapes(batch, preds.shape[1])
        weights = batch.arrays.get("weight")
        if weights is not None:
            weights = weights[:, 0] if weights.ndim == 2 else weights
            self._checked("weight", batch, validate.check_weights, weights)
        losses, labels, true_class, hits, off_simplex = self._losses(batch, preds)
        counted = np.ones(batch.size, dtype=bool)
        if labels is not None and opts.ignore_index is not None:
            counted = labels != opts.ignore_index
        # What the reduced mean divides by (Partial.of multiplies it by the sample weights, exactly).
        denominators = None
        if opts.class_weights is not None and opts.class_weights_as == "label":
            # Keras turns class_weight into sample weights: w[label] (arg-max for one-hot/soft rows).
            classes = np.where(counted, true_class, 0)
            losses = core.weighted(np.asarray(opts.class_weights)[classes], losses)
        elif labels is not None and opts.class_weights is not None:
            denominators = core.label_weights(labels, opts.class_weights, ignore_index=opts.ignore_index)
        if opts.mean_denominator in ("count", "elements"):
            denominators = "count"  # Keras "sum_over_batch_size": sum(w * l) / N; PyTorch bce: / (N * k)

        def only_counted(values):
            return values if values is None or isinstance(values, str) else values[counted]

        losses_c, weights_c, denominators_c = losses[counted], only_counted(weights), only_counted(denominators)
        # The counted rows' sample weights and mean denominators, for a paired comparison (cecli.compare).
        self.terms = (weights_c, denominators_c)
        groups = {}
        codes = None
        if batch.groups:
            codes, keys = self._group_codes(batch)
            parts = grouped(codes[counted], losses_c, weights_c, denominators_c)
            groups = {keys[code]: part for code, part in parts.items()}
        first_row = (self.file_index, state.file_rows.get(self.file_index, 0) + 1)
        partial = Partial.of(losses_c, weights_c, denominators_c)
        spreads = {}
        if self.interval is not None:
            spreads = self._spreads(
                losses, weights, denominators, counted, codes, true_class, first_row[1] - 1, partial=partial
            )
            spreads["groups"] = {keys[code]: spread for code, spread in spreads.get("groups", {}).items()}
        self.state = state + ScoreState(
            partial=partial,
            hits=Partial() if hits is None else Partial.of(hits[counted], weights_c),
            histogram=Histogram.of(losses_c) if self.extras else Histogram(),
            top=TopK(state.top.k).add(losses, first_row, batch.keep, counted),
            per_class=None
            if state.per_class is None
            else grouped(true_class[counted], losses_c, weights_c, denominators_c),
            groups=groups,
            file_rows={self.file_index: batch.size},
            off_simplex=off_simplex,
            n_classes=preds.shape[1],
            nonfinite={name: n for name, n in batch.nonfinite.items() if n},
            spread=spreads.get("whole", {}).get(None),
            group_spreads=spreads.get("groups", {}),
            class_spreads=spreads.get("classes", {}),
        )
        self.total_rows += batch.size
        return losses, counted

    def _spreads(
        self, losses, weights, denominators, counted, codes, true_class, row_in_file: int, *, partial: Partial
    ) -> dict:
        """The uncertainty states (:class:`~cecli.uncertainty.Spread`) of the whole batch, its groups and classes.

        They are of the quantity ``value`` reports, ``sum(a * l) / sum(x)``: the numerator weights
        ``a`` are the sample weights, and ``x`` the whole per-row denominator, what
        :meth:`Partial.of <cecli.numerics.reduce.Partial.of>` sums (the weight, times PyTorch's class
        weight of the label, or 1 per row for Keras' and PyTorch's mean over rows). The uncertainty states
        take that whole share, where ``Partial.of`` takes the class weight as a factor it multiplies exactly:
        here the product is the float ``fl(w * w_y)``, a relative change of at most ``2**-53`` per row in the
        standard error and the resampled means, never in ``value``, which the interval is centred on
        (normal) or which is reported beside it (bootstrap). `partial` is the batch's ``Partial.of`` of the
        counted rows; unweighted (no weights, no denominators), the normal state reuses its exact ``sum(l)``.
        """
        from .uncertainty import Spread
        from .uncertainty.spread import row_denominators

        interval = self.interval
        x = row_denominators(weights, denominators, losses.size)
        arguments = (losses, weights, x, counted)
        draws = {"first_row": self.file_start + row_in_file, "resamples": interval.resamples, "seed": interval.seed}
        unweighted = weights is None and denominators is None
        spreads = {"whole": Spread.grouped(None, *arguments, **draws, partial=partial if unweighted else None)}
        if codes is not None:
            spreads["groups"] = Spread.grouped(codes, *arguments, **draws)
        if self.state.per_class is not None:
            spreads["classes"] = Spread.grouped(np.where(counted, true_class, 0), *arguments, **draws)
        return spreads

    def _group_codes(self, batch: Batch) -> tuple[np.ndarray, list[tuple]]:
        """Per-row codes into a list of ``--by`` keys (tuples of values) for this batch."""
        columns = [batch.groups[c.name] for c in self.selection.by]
        stacked = np.column_stack([codes for codes, _ in columns])
        distinct, inverse = np.unique(stacked, axis=0, return_inverse=True)
        keys = [
            tuple(values[code] for code, (_, values) in zip(row, columns, strict=True)) for row in distinct.tolist()
        ]
        return inverse.ravel(), keys

    def _check_shapes(self, batch: Batch, n_classes: int) -> None:
        opts = self.opts
        kind = REGISTRY[opts.loss].labels
        labels = batch.arrays.get("labels")
        if kind == "none" or labels is None:
            if kind == "class or none" and n_classes != 1:
                raise DataError(
                    f"{n_classes} prediction columns and no labels",
                    file=self.inputs["predictions"].display,
                    hint="give one column of log p(true token) with -p, or the labels of full rows with -y",
                )
            return
        width = labels.shape[1]
        label_names = ", ".join(c.name for c in self.selection.labels)
        if kind in ("binary", "distribution") or (kind == "class or distribution" and width > 1):
            if width != n_classes:
                raise DataError(
                    f"{width} label columns ({label_names}) but {n_classes} prediction columns",
                    file=self.inputs["predictions"].display,
                    hint="select one label column per prediction column with -y and -p",
                )
        # Only bce takes --pos-weight, and only the class losses --class-weights (LossOptions).
        if opts.pos_weight is not None and len(opts.pos_weight) not in (1, n_classes):
            raise OptionError(f"--pos-weight has {len(opts.pos_weight)} values for {n_classes} label columns")
        if opts.class_weights is not None and len(opts.class_weights) != n_classes:
            raise OptionError(
                f"--class-weights has {len(opts.class_weights)} weights but there are {n_classes} classes",
                hint="give one weight per prediction column",
            )
        if kind in ("class", "class or none") and width != 1:
            raise DataError(
                f"sparse labels are one column of class indices; got {width} ({label_names})",
                hint="use `cecli cce` for one-hot labels",
            )

    def _losses(self, batch: Batch, preds: np.ndarray) -> _Scored:
        """Validate and score a batch, as the loss's registry entry says (:class:`~cecli.losses.Loss`)."""
        loss, opts = REGISTRY[self.opts.loss], self.opts
        row_sums, off_simplex = self._check_predictions(loss.predictions, batch, preds)
        kind = loss.labels
        labels = batch.arrays.get("labels")
        if kind == "class or distribution":
            kind = "distribution" if labels.shape[1] > 1 else "class"
        elif kind == "class or none":
            kind = "none" if labels is None else "class"
        y, classes, true_class = getattr(self, _LABELS[kind])(batch, labels, preds)
        if kind == "binary":
            preds = preds[:, 0] if preds.shape[1] == 1 else preds
        function, names = self.function
        keywords = {name: row_sums if name == "row_sums" else self.keywords[name] for name in names}
        losses = function(preds, **keywords) if y is None else function(y, preds, **keywords)
        hits = None
        if self.extras and kind == "binary":
            threshold = 0.0 if opts.from_logits else 0.5
            # Right label columns per row, an integer: accuracy divides by k once, exactly (LossResult).
            hits = ((batch.arrays["predictions"] >= threshold) == (labels >= 0.5)).sum(axis=1, dtype=np.float64)
        elif self.extras and true_class is not None:
            hits = _hits(_row_argmax(batch.arrays["predictions"]), true_class)
        return _Scored(losses, classes, true_class, hits, off_simplex)

    def _check_predictions(self, kind: str, batch: Batch, preds: np.ndarray) -> tuple[np.ndarray | None, int]:
        """Check predictions of a prediction kind; their row sums (probability rows) and rows off the simplex."""
        if kind == "weights":
            self._check_weights("predictions", batch, preds)
            return None, 0
        if kind == "log_probabilities":
            self._checked("predictions", batch, validate.check_log_probabilities, preds)
            return None, 0
        if self.opts.from_logits:
            self._checked("predictions", batch, validate.check_logits, preds)
            return None, 0
        self._checked("predictions", batch, validate.check_probabilities, preds)
        if kind == "probabilities":
            return None, 0
        row_sums = core.row_sums(preds, dtype=np.float64)
        self._checked("predictions", batch, validate.check_positive_rows, row_sums, "probability")
        return row_sums, validate.rows_off_simplex(row_sums)

    def _check_weights(self, role: str, batch: Batch, values: np.ndarray) -> None:
        self._checked(role, batch, validate.check_nonnegative, values, "probability", "use values >= 0")
        row_sums = core.row_sums(values, dtype=np.float64)
        self._checked(role, batch, validate.check_positive_rows, row_sums, "probability")

    # One method per label kind (see _LABELS): the checked labels as the loss function takes them,
    # the class indices where labels are classes (--ignore-index, class weights) and the true classes.
    def _binary_labels(self, batch: Batch, labels: np.ndarray, preds: np.ndarray) -> tuple:
        self._checked("labels", batch, validate.check_unit_interval, labels, "label", "labels must be in [0, 1]")
        if self.opts.like == "sklearn" and labels.shape[1] > 1:
            raise OptionError("--like sklearn: scikit-learn's log_loss has no multi-label binary cross-entropy")
        return (labels[:, 0] if labels.shape[1] == 1 else labels), None, None

    def _distribution_labels(self, batch: Batch, labels: np.ndarray, preds: np.ndarray) -> tuple:
        self._checked("labels", batch, validate.check_label_rows, labels)
        return labels, None, _row_argmax(labels)

    def _class_index_labels(self, batch: Batch, labels: np.ndarray, preds: np.ndarray) -> tuple:
        ignore_index = self.opts.ignore_index
        values = labels[:, 0]
        if self.class_numbers is not None:
            values = self._checked(
                "labels", batch, validate.labels_by_class_number, values, self.class_numbers, ignore_index
            )
        classes = self._checked("labels", batch, validate.check_class_labels, values, preds.shape[1], ignore_index)
        return classes, classes, classes

    def _weights_labels(self, batch: Batch, labels: np.ndarray, preds: np.ndarray) -> tuple:
        self._check_weights("labels", batch, labels)
        return labels, None, None

    def _no_labels(self, batch: Batch, labels: np.ndarray | None, preds: np.ndarray) -> tuple:
        return None, None, None

    def keep_per_sample(self, losses: np.ndarray, counted: np.ndarray, batch: Batch) -> None:
        self.per_sample.append(np.where(counted, losses, np.nan))
        self.counted.append(counted)
        for name, values in batch.keep.items():
            self.keep[name].extend(values)


# The _Scorer method that checks and prepares each label kind of the registry ("class or distribution"
# is "class" for one column of class indices, else "distribution").
_LABELS = {
    "binary": "_binary_labels",
    "distribution": "_distribution_labels",
    "class": "_class_index_labels",
    "weights": "_weights_labels",
    "none": "_no_labels",
}


def _keywords(opts: LossOptions) -> dict:
    """The effective value of every keyword a registry entry may pass to its function (``losses.KEYWORDS``)."""
    pos_weight = None if opts.pos_weight is None else np.asarray(opts.pos_weight)
    if pos_weight is not None and pos_weight.size == 1:
        pos_weight = pos_weight[0]
    return {
        "from_logits": opts.from_logits,
        "eps": opts.eps,
        "label_smoothing": opts.label_smoothing,
        "pos_weight": pos_weight,
        # Class weights inside the loss (PyTorch), or applied afterwards by label (Keras; see add()).
        "class_weights": opts.class_weights if opts.class_weights_as == "loss" else None,
        "ignore_index": opts.ignore_index,
        "temperature": opts.temperature,
        "base": opts.log_base,
        "log_floor": opts.log_floor,
        "renormalize": opts.renormalize,
        "gamma": opts.focal_gamma,
        "alpha": opts.focal_alpha,
        "apply_class_balancing": opts.class_balancing,
        "q": opts.gce_q,
    }


def loss_function(name: str):
    """A registry entry's per-sample function: in :mod:`cecli.numerics.core`, else :mod:`cecli.numerics.family`."""
    return getattr(core, name, None) or getattr(family, name)
