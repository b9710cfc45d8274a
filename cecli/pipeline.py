"""``compute()``: the library entry point below the CLI.

input -> readers (NumPy batches) -> validate -> core (per-sample losses) -> reduce
(Partial per batch, summed) -> LossResult. Per-sample values are kept only when asked
for, and written batch by batch to ``out`` when given, so memory stays bounded.
"""

from __future__ import annotations

import dataclasses
import os
import queue
import threading
from collections.abc import Callable, Iterator
from typing import NamedTuple

import numpy as np

from . import core, validate
from .columns import Column, Selection, choose_columns, class_names, class_numbers
from .errors import DataError, InputError, OptionError
from .options import LossOptions
from .readers import (
    STDIN_NAME,
    Batch,
    CellError,
    Input,
    ReadSettings,
    aligned,
    expand_sources,
    file_identity,
    open_input,
    redact,
    would_read,
)
from .reduce import Histogram, Partial, ScoreState, TopK, grouped
from .result import LossResult
from .validate import InvalidValue


def compute(
    loss: str,
    source: str | list[str] = "-",
    *,
    y: str | None = None,
    p: str | None = None,
    labels: str | None = None,
    weight: str | None = None,
    keep: str | None = None,
    by: str | None = None,
    per_class: bool = False,
    top: int = 0,
    extras: bool = True,
    read: ReadSettings | None = None,
    per_sample: bool = True,
    out: str | None = None,
    progress: Callable[[int, int | None], None] | None = None,
    engine: str = "local",
    scheduler: str | None = None,
    wait_for_workers: float | None = None,
    **options,
) -> LossResult:
    """Compute a cross-entropy loss over files (or stdin) and reduce it.

    Parameters
    ----------
    loss : {"bce", "cce", "sparse", "softmax", "entropy"}
    source : str or list of str
        Paths, folders, globs or URLs read as one dataset in order, or ``"-"`` for stdin.
        Columns are chosen on the first file; every other file must have them. A folder or
        glob reads each file once, however many links lead to it; a file given twice is
        read twice, with a warning.
    y, p, weight, keep, by : str, optional
        Column specs for labels, predictions, the sample weight, pass-through columns
        and grouping columns (names, comma lists, globs, 1-based positions or ranges).
    per_class : bool
        Also summarise the loss per true class (cce, sparse, softmax).
    top : int
        Keep the `top` largest per-sample losses with their row and kept columns.
    extras : bool
        Also compute the accuracy and the loss histogram. Turn off when only the reduced
        value is wanted: it saves about a third of the math.
    labels : str, optional
        A second file holding the labels, aligned with a single `source` by row position.
    read : ReadSettings, optional
        Input format, delimiter, header mode and batch size.
    per_sample : bool
        Keep per-sample losses in the result (memory grows with the rows).
    out : str, optional
        Write per-sample losses to this ``.csv``, ``.parquet`` or ``.ndjson`` file,
        atomically. It must not be an input (same device and inode) nor lie where a later
        run over `source` would read it (:class:`~cecli.errors.OptionError`); a write the
        system refuses raises :class:`~cecli.errors.OutputError`.
    progress : callable, optional
        Called after each batch with (bytes done, total bytes or ``None``).
    engine : {"local", "dask"}
        ``"dask"`` scores groups of files as Dask tasks (see :mod:`cecli.dask_engine`);
        `out` is then a folder of one Parquet file per input file.
    scheduler : str, optional
        Address of a Dask scheduler (else ``DASK_SCHEDULER_ADDRESS``, else a private
        local cluster on 127.0.0.1).
    wait_for_workers : float, optional
        Seconds the Dask engine waits for a first worker, and for one to come back when
        all have left during the run (default 60).
    **options
        Fields of :class:`~cecli.options.LossOptions` (``reduction``, ``eps``, ...).

    Returns
    -------
    LossResult

    Examples
    --------
    >>> import cecli
    >>> cecli.compute("bce", "sample_data/seed-bce.csv", reduction="sum").value  # doctest: +SKIP
    4.46030345976025
    """
    opts = LossOptions(loss=loss, **options)
    if opts.like == "torch" and weight and loss != "bce":
        raise OptionError("--like torch: PyTorch's cross_entropy takes no sample weights", hint="drop -w")
    if engine not in ("local", "dask"):
        raise OptionError(f"unknown engine {engine!r}", hint="use local or dask")
    read = read or ReadSettings()
    sources = [source] if isinstance(source, str) else list(source)
    paths = expand_sources(sources)
    if labels and (len(paths) > 1 or engine == "dask"):
        raise OptionError("--labels needs exactly one INPUT and the local engine", hint="drop --labels")
    if engine == "dask" and "-" in paths:
        raise OptionError("the Dask engine reads files, not stdin", hint="give paths or use --engine local")
    identities = [file_identity(path) for path in paths]
    if out is not None:
        named = [*zip(paths, identities, strict=True), (labels, file_identity(labels) if labels else None)]
        _refuse_overwrite(out, named)
        _refuse_inside(out, sources, folder=engine == "dask")
    notes = _repeated(paths, identities)
    first = open_input(paths[0], read)
    label_input = open_input(labels, read) if labels else None
    readers: list[threading.Thread] = []
    interrupted = False
    try:
        selection = choose_columns(
            loss,
            first.columns,
            file=first.display,
            y=y,
            p=p,
            weight=weight,
            keep=keep,
            by=by,
            label_columns=label_input.columns if label_input else None,
            label_file=label_input.display if label_input else None,
            headerless=first.headerless,
        )
        if per_class and loss not in ("cce", "sparse", "softmax"):
            raise OptionError(
                f"--per-class does not apply to `cecli {loss}`", hint="use it with cce, sparse or softmax"
            )
        if engine == "dask":
            from .dask_engine import run

            first.close()
            state = run(
                paths,
                selection=selection,
                opts=opts,
                read=read,
                per_class=per_class,
                top=top,
                extras=extras,
                out_dir=out,
                scheduler=scheduler,
                wait_for_workers=wait_for_workers,
            )
            if per_sample:
                notes.append("per-sample values stay on the Dask workers (use --out DIR for them)")
            return _result(state, opts, selection, paths, None, out, fmt=first.format, extras=extras, notes=notes)
        scorer = _Scorer(opts, selection, first, label_input or first, per_class=per_class, top=top, extras=extras)
        writer = None
        if out is not None:
            from .writers import PerSampleWriter

            writer = PerSampleWriter(out, [c.name for c in selection.keep])
        sizes = [first.size] + [None if "://" in p or p == "-" else os.path.getsize(p) for p in paths[1:]]
        total = None if None in sizes else sum(sizes)
        done = 0
        with writer if writer is not None else _nothing():
            for index, source_input in enumerate(_inputs(first, paths, read, selection)):
                scorer.start_file(index, source_input, own_labels=label_input is None)
                # Decoding runs in a reader thread; the conversion to NumPy runs here, which
                # balances the two cores best.
                prefetch = lambda record_batches: _prefetched(record_batches, readers)  # noqa: E731
                for batch in _batches(source_input, label_input, selection, read, opts, prefetch):
                    losses, counted = scorer.add(batch)
                    if per_sample:
                        scorer.keep_per_sample(losses, counted, batch)
                    if writer is not None:
                        _write(writer, scorer.total_rows - batch.size, losses, counted, batch, source_input)
                    if progress is not None:
                        progress(done + (source_input.position() or 0), total)
                done += source_input.size or 0
        per_sample_values = scorer.per_sample_values() if per_sample else None
        return _result(
            scorer.state,
            opts,
            selection,
            paths,
            labels,
            out,
            fmt=first.format,
            extras=extras,
            per_sample=per_sample_values,
            notes=notes,
        )
    except (KeyboardInterrupt, SystemExit):
        interrupted = True
        raise
    finally:
        # After an interrupt a reader (ours, or pyarrow's read-ahead) may be blocked on a pipe
        # while holding the stream's lock; the process is exiting, so leave the stream to it.
        if not interrupted and not any(thread.is_alive() for thread in readers):
            first.close()
            if label_input is not None:
                label_input.close()


def _inputs(first: Input, paths: list[str], read: ReadSettings, selection: Selection) -> Iterator[Input]:
    """Yield `first`, then each further file opened in turn, checked against `selection`."""
    yield first
    for path in paths[1:]:
        opened = open_input(path, read)
        try:
            _check_columns(opened, selection, paths[0])
            yield opened
        finally:
            opened.close()


def _check_columns(source: Input, selection: Selection, reference: str) -> None:
    """Every selected column exists in `source` by name (columns were chosen on `reference`).

    Readers find a selected column by its name in each file, never by its position in
    `reference`: a file whose columns come in another order is read right.
    """
    have = {c.name: c for c in source.columns}
    for role in ("labels", "predictions", "weight", "keep", "by"):
        for column in selection.columns(role):
            if column.name not in have or have[column.name].is_list != column.is_list:
                raise InputError(
                    f"has no column {column.name!r} like {_shown(reference)}",
                    file=source.display,
                    hint="every file of a dataset needs the same columns",
                )


_ABANDONED: list = []


def _prefetched(batches: Iterator, threads: list[threading.Thread], depth: int = 2) -> Iterator:
    """Read the next batches in a background thread while the caller computes.

    pyarrow and NumPy release the GIL, so decoding and the math overlap on two cores.
    Errors from the reader are re-raised in the caller's thread, in order.
    """
    slots: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    finished = object()

    def produce() -> None:
        try:
            for batch in batches:
                while not stop.is_set():
                    try:
                        slots.put(batch, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            slots.put(finished)
        except BaseException as error:  # handed to the consumer, which re-raises it
            slots.put(error)

    thread = threading.Thread(target=produce, name="cecli-reader", daemon=True)
    threads.append(thread)
    thread.start()
    complete = False
    try:
        while True:
            item = slots.get()
            if item is finished:
                complete = True
                return
            if isinstance(item, BaseException):
                complete = True  # the reader has stopped
                raise item
            yield item
    finally:
        stop.set()
        # After an interrupt the reader may be blocked on a pipe that never closes: don't wait for
        # it, and keep its generator alive, because finalizing pyarrow's streaming reader waits
        # for its read-ahead thread. The process is about to exit.
        thread.join(timeout=None if complete else 0.2)
        if thread.is_alive() or not complete:
            _ABANDONED.append(batches)


class _nothing:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False


def _shown(path: str) -> str:
    """A path as messages and the JSON show it: stdin by name, URLs without credentials."""
    return STDIN_NAME if path == "-" else redact(path)


def _refuse_overwrite(out: str, inputs: list[tuple[str | None, tuple[int, int] | None]]) -> None:
    """``--out`` must not be an input: the same device and inode, however either is named.

    That covers links, hard links, ``file://`` URLs and stdin redirected from a file.
    """
    target = file_identity(out)
    if target is None:
        return
    for path, identity in inputs:
        if path and identity == target:
            raise OptionError(
                f"--out {out} is the input {_shown(path)}", hint="write the per-sample losses somewhere else"
            )


def _refuse_inside(out: str, sources: list[str], *, folder: bool) -> None:
    """``--out`` must not be written where a later run over the same INPUTs would read it as data.

    An input folder takes in every data file below it (a glob, every match), so a losses file
    there, or the Dask engine's ``part-NNNNN.parquet`` files, would be scored as data next time.
    """
    probe = os.path.join(out, "part-00000.parquet") if folder else out
    for source in sources:
        if would_read(source, probe):
            pattern = not os.path.lexists(source) and any(ch in source for ch in "*?[")
            raise OptionError(
                f"--out {out} is inside the input {_shown(source)}, so a later run would read it as data",
                hint="write it elsewhere, or under a name "
                + ("the pattern does not match" if pattern else "starting with _"),
            )


def _repeated(paths: list[str], identities: list[tuple[int, int] | None]) -> list[str]:
    """A warning for each file given more than once (it is scored each time, as asked)."""
    names: dict[tuple[int, int], list[str]] = {}
    for path, identity in zip(paths, identities, strict=True):
        if identity is not None:
            names.setdefault(identity, []).append(_shown(path))
    return [
        f"the same file is given {len(given)} times ({', '.join(given)}); it is scored each time"
        for given in names.values()
        if len(given) > 1
    ]


def _class_labels(opts: LossOptions, selection: Selection) -> bool:
    return opts.loss == "sparse" or (
        opts.loss == "softmax" and len(selection.labels) == 1 and not selection.labels[0].is_list
    )


def _class_names(predictions: tuple[Column, ...]) -> list[str] | None:
    """Class names from prediction column suffixes after the family prefix: ``p_cat, p_cow`` -> ``cat, cow``."""
    return class_names(predictions)


def _batches(main: Input, label_input: Input | None, selection, read, opts, prefetch=None) -> Iterator[Batch]:
    class_labels = _class_labels(opts, selection)
    names = _class_names(selection.predictions)
    if label_input is None:
        yield from main.batches(selection, read, class_names=names, class_labels=class_labels, prefetch=prefetch)
        return
    predictions = main.batches(selection, read, roles=("predictions", "weight"), prefetch=prefetch)
    label_batches = label_input.batches(
        selection, read, roles=("labels",), class_names=names, class_labels=class_labels, prefetch=prefetch
    )
    yield from aligned(predictions, label_batches, left_name=main.display, right_name=label_input.display)


class _Scored(NamedTuple):
    """What scoring one batch finds, before it is reduced."""

    losses: np.ndarray
    labels: np.ndarray | None = None  # class indices, where the labels are classes
    true_class: np.ndarray | None = None  # for --per-class
    hits: np.ndarray | None = None  # 1.0 where the prediction is right (accuracy)
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
    ) -> None:
        self.opts = opts
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

    def start_file(self, index: int, source: Input, *, own_labels: bool = True) -> None:
        """Score the next batches as file number `index` (0-based, in dataset order)."""
        self.file_index = index
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
        except InvalidValue as error:
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
        groups = {}
        if batch.groups:
            codes, keys = self._group_codes(batch)
            parts = grouped(codes[counted], losses_c, weights_c, denominators_c)
            groups = {keys[code]: part for code, part in parts.items()}
        first_row = (self.file_index, state.file_rows.get(self.file_index, 0) + 1)
        self.state = state + ScoreState(
            partial=Partial.of(losses_c, weights_c, denominators_c),
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
        )
        self.total_rows += batch.size
        return losses, counted

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
        labels = batch.arrays.get("labels")
        if opts.loss == "entropy" or labels is None:
            return
        width = labels.shape[1]
        label_names = ", ".join(c.name for c in self.selection.labels)
        if opts.loss in ("bce", "cce") or (opts.loss == "softmax" and width > 1):
            if width != n_classes:
                raise DataError(
                    f"{width} label columns ({label_names}) but {n_classes} prediction columns",
                    file=self.inputs["predictions"].display,
                    hint="select one label column per prediction column with -y and -p",
                )
        if opts.loss == "bce" and opts.pos_weight is not None and len(opts.pos_weight) not in (1, n_classes):
            raise OptionError(f"--pos-weight has {len(opts.pos_weight)} values for {n_classes} label columns")
        if opts.loss != "bce" and opts.class_weights is not None and len(opts.class_weights) != n_classes:
            raise OptionError(
                f"--class-weights has {len(opts.class_weights)} weights but there are {n_classes} classes",
                hint="give one weight per prediction column",
            )
        if opts.loss == "sparse" and width != 1:
            raise DataError(
                f"sparse labels are one column of class indices; got {width} ({label_names})",
                hint="use `cecli cce` for one-hot labels",
            )

    def _losses(self, batch: Batch, preds: np.ndarray) -> _Scored:
        """Validate and score a batch."""
        opts = self.opts
        base = opts.log_base
        labels = batch.arrays.get("labels")
        if opts.loss in ("entropy", "kl"):
            distributions = [("predictions", preds)] + ([("labels", labels)] if opts.loss == "kl" else [])
            for role, values in distributions:
                self._checked(role, batch, validate.check_nonnegative, values, "probability", "use values >= 0")
                row_sums = values.sum(axis=1, dtype=np.float64)
                self._checked(role, batch, validate.check_positive_rows, row_sums, "probability")
            if opts.loss == "kl":
                return _Scored(core.kl_divergence(labels, preds, base=base))
            return _Scored(core.entropy(preds, base=base))
        row_sums, off_simplex = None, 0
        if opts.from_logits:
            self._checked("predictions", batch, validate.check_logits, preds)
        else:
            self._checked("predictions", batch, validate.check_probabilities, preds)
            if opts.loss != "bce":
                row_sums = preds.sum(axis=1, dtype=np.float64)
                self._checked("predictions", batch, validate.check_positive_rows, row_sums, "probability")
                off_simplex = validate.rows_off_simplex(row_sums)
        common = {"label_smoothing": opts.label_smoothing, "base": base}
        if opts.loss == "bce":
            self._checked("labels", batch, validate.check_unit_interval, labels, "label", "labels must be in [0, 1]")
            y = labels[:, 0] if labels.shape[1] == 1 else labels
            x = preds[:, 0] if preds.shape[1] == 1 else preds
            pos_weight = None if opts.pos_weight is None else np.asarray(opts.pos_weight)
            if pos_weight is not None and pos_weight.size == 1:
                pos_weight = pos_weight[0]
            if opts.like == "sklearn" and labels.shape[1] > 1:
                raise OptionError("--like sklearn: scikit-learn's log_loss has no multi-label binary cross-entropy")
            losses = core.binary_cross_entropy(
                y,
                x,
                from_logits=opts.from_logits,
                eps=opts.eps,
                pos_weight=pos_weight,
                log_floor=opts.log_floor,
                **common,
            )
            if not self.extras:
                return _Scored(losses)
            threshold = 0.0 if opts.from_logits else 0.5
            # Right label columns per row, an integer: accuracy divides by k once, exactly (LossResult).
            return _Scored(losses, hits=((preds >= threshold) == (labels >= 0.5)).sum(axis=1, dtype=np.float64))
        # Class weights inside the loss (PyTorch), or applied afterwards by label (Keras; see add()).
        common["class_weights"] = opts.class_weights if opts.class_weights_as == "loss" else None
        common["renormalize"] = opts.renormalize
        predicted = _row_argmax(preds) if self.extras else None
        if opts.loss == "cce" or (opts.loss == "softmax" and labels.shape[1] > 1):
            self._checked("labels", batch, validate.check_label_rows, labels)
            losses = core.categorical_cross_entropy(
                labels, preds, from_logits=opts.from_logits, eps=opts.eps, temperature=opts.temperature, **common
            )
            true_class = _row_argmax(labels)
            return _Scored(losses, None, true_class, _hits(predicted, true_class), off_simplex)
        values = labels[:, 0]
        if self.class_numbers is not None:
            values = self._checked(
                "labels", batch, validate.labels_by_class_number, values, self.class_numbers, opts.ignore_index
            )
        classes = self._checked("labels", batch, validate.check_class_labels, values, preds.shape[1], opts.ignore_index)
        losses = core.sparse_cross_entropy(
            classes,
            preds,
            from_logits=opts.from_logits,
            eps=opts.eps,
            temperature=opts.temperature,
            ignore_index=opts.ignore_index,
            row_sums=row_sums,
            **common,
        )
        return _Scored(losses, classes, classes, _hits(predicted, classes), off_simplex)

    def keep_per_sample(self, losses: np.ndarray, counted: np.ndarray, batch: Batch) -> None:
        self.per_sample.append(np.where(counted, losses, np.nan))
        self.counted.append(counted)
        for name, values in batch.keep.items():
            self.keep[name].extend(values)


def _result(
    state: ScoreState,
    opts: LossOptions,
    selection: Selection,
    paths: list[str],
    labels: str | None,
    out: str | None,
    *,
    fmt: str,
    extras: bool = True,
    per_sample: tuple[np.ndarray, np.ndarray, dict[str, list]] | None = None,
    notes: list[str] | None = None,
) -> LossResult:
    """Check that the state is usable and turn it into a :class:`LossResult`."""
    display = _shown(paths[0]) if len(paths) == 1 else f"{len(paths)} files"
    partial = state.partial
    if state.rows == 0:
        raise DataError("no data rows", file=display, hint="the input has a header but no rows to score")
    if partial.count == 0:
        raise DataError(
            f"every row has the ignore index {opts.ignore_index}, so no row counts",
            file=display,
            hint="check --ignore-index",
        )
    if partial.scaled_denominator == 0:
        raise DataError(
            "the weights of all counted rows are 0, so the mean is undefined",
            file=display,
            hint="check the weight column (-w) and --class-weights",
        )
    warnings = list(state.notes) + list(notes or [])
    for name, count in state.nonfinite.items():
        warnings.append(
            f"column {name!r}: {count} kept or grouped value{'s are' if count > 1 else ' is'} NaN or infinite "
            "(written as null; a Parquet --out file keeps them)"
        )
    if state.off_simplex:
        warnings.append(
            f"{state.off_simplex} of {state.rows} prediction rows do not sum to 1 "
            f"(|sum - 1| > {validate.ROW_SUM_TOLERANCE}); "
            + ("they were used as given" if opts.renormalize == "none" else "they were divided by their sum")
        )
    if partial.pos_inf or partial.neg_inf:
        clipping_off = opts.eps == 0 and not opts.from_logits
        warnings.append(
            f"{partial.pos_inf + partial.neg_inf} of {partial.count} losses are infinite"
            + (
                " (a probability of exactly 0 or 1 on the wrong side of a label; --eps 0 turns off clipping)"
                if clipping_off
                else ""
            )
        )
    if partial.nan:
        warnings.append(f"{partial.nan} of {partial.count} losses are NaN (not a number)")
    described = {
        "path": display if len(paths) == 1 else None,
        "paths": [_shown(p) for p in paths],
        "format": fmt,
        "labels_path": _shown(labels) if labels else labels,
        "label_columns": selection.names("labels"),
        "prediction_columns": selection.names("predictions"),
        "weight_column": selection.weight.name if selection.weight else None,
        "keep_columns": selection.names("keep"),
        "by_columns": selection.names("by"),
        "classes": state.n_classes,
    }
    class_names = _class_names(selection.predictions) or [str(i) for i in range(state.n_classes or 0)]
    groups = None
    if selection.by:
        # Keys are tuples of (kind, value) pairs (readers._group_key): sorted by kind, then value.
        groups = [
            (dict(zip(selection.names("by"), (value for _, value in key), strict=True)), part)
            for key, part in sorted(state.groups.items(), key=lambda item: item[0])
        ]
    per_class = None
    if state.per_class is not None:
        per_class = [
            (class_names[i] if i < len(class_names) else str(i), i, part) for i, part in sorted(state.per_class.items())
        ]
    top = None
    if state.top.k:
        top = TopK(state.top.k, tuple((loss, state.global_row(at), kept) for loss, at, kept in state.top.rows))
    values, counted, keep = per_sample if per_sample is not None else (None, None, {})
    return LossResult(
        options=opts,
        partial=partial,
        hits=state.hits if state.hits.count else None,
        histogram=state.histogram if extras else None,
        top=top,
        groups=groups,
        per_class=per_class,
        input=described,
        per_sample=values,
        counted=counted,
        keep=keep,
        warnings=warnings,
        out=out,
        rows=state.rows,
        elements=state.n_classes if opts.loss == "bce" and state.n_classes else 1,
    )


def score_files(
    files: list[tuple[int, str]],
    *,
    selection: Selection,
    opts: LossOptions,
    read: ReadSettings,
    per_class: bool = False,
    top: int = 0,
    extras: bool = True,
    out_dir: str | None = None,
    reference: str = "the first file",
    check: Callable[[], None] | None = None,
) -> ScoreState:
    """Score (index, path) files into one :class:`ScoreState`; the unit of work of a Dask task.

    With `out_dir`, per-sample losses of input file ``i`` go to ``out_dir/part-iiiii.parquet``
    (``row`` counts records within that file), written atomically. `check`, if given, is called
    before each batch and before a part is renamed into place; it raises to stop the work (a
    cancelled Dask task), and the part's temporary file is then removed.
    """
    scorer = None
    for index, path in files:
        source = open_input(path, read)
        try:
            _check_columns(source, selection, reference)
            if scorer is None:
                scorer = _Scorer(opts, selection, source, source, per_class=per_class, top=top, extras=extras)
            scorer.start_file(index, source)
            writer = None
            if out_dir is not None:
                from .writers import PerSampleWriter

                part = os.path.join(out_dir, f"part-{index:05d}.parquet")
                writer = PerSampleWriter(part, [c.name for c in selection.keep])
            with writer if writer is not None else _nothing():
                for batch in _batches(source, None, selection, read, opts):
                    if check is not None:
                        check()
                    losses, counted = scorer.add(batch)
                    if writer is not None:
                        _write(writer, batch.offset, losses, counted, batch, source)
                if check is not None:
                    check()
        finally:
            source.close()
    return scorer.state if scorer is not None else ScoreState()


def _write(writer, first_row: int, losses: np.ndarray, counted: np.ndarray, batch: Batch, source: Input) -> None:
    """Write a batch to ``--out``; a kept value the file cannot hold is named by its input file and row."""
    try:
        writer.write(first_row, losses, counted, batch.keep, batch.kept)
    except CellError as error:
        raise error.locate(file=source.display, row=source.user_row(batch.offset + error.index)) from None


def _hits(predicted: np.ndarray | None, true_class: np.ndarray) -> np.ndarray | None:
    """1.0 where the predicted class is the true one, else 0.0 (``None`` when not predicted)."""
    return None if predicted is None else (predicted == true_class).astype(np.float64)


def _row_argmax(matrix: np.ndarray) -> np.ndarray:
    """``matrix.argmax(axis=1)`` (first maximum wins), faster on column-major batches of few classes.

    NumPy's argmax along short rows of a column-major matrix costs a call per row. Here each
    column is compared with the row maxima once, the matches are packed as bits, and a table
    maps each bit pattern to its lowest set bit: about 5x faster for 10 classes.
    """
    n_classes = matrix.shape[1]
    if not 0 < n_classes <= _ARGMAX_TABLE_BITS or not matrix.flags.f_contiguous:
        return matrix.argmax(axis=1)
    top = matrix.max(axis=1)
    bits = np.zeros(matrix.shape[0], dtype=np.uint16)
    equal = np.empty(matrix.shape[0], dtype=bool)
    for j in range(n_classes - 1, -1, -1):
        np.equal(matrix[:, j], top, out=equal)
        bits <<= 1
        bits |= equal
    return _LOWEST_SET_BIT.take(bits)


_ARGMAX_TABLE_BITS = 12
# Index of the lowest set bit of every 12-bit pattern (0 for 0, which cannot occur: a row equals its max).
_patterns = np.arange(1 << _ARGMAX_TABLE_BITS)
_LOWEST_SET_BIT = np.log2(np.maximum(_patterns & -_patterns, 1)).astype(np.int64)  # exact for powers of 2
del _patterns
