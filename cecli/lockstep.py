"""Reading A and B in lockstep and scoring both (the unit of work of both engines of :func:`cecli.compare`).

Both sides are read batch by batch: :func:`_lockstep` re-slices the two streams to equal lengths, each slice
keeping its own file's offset (errors name each side's own line); each side is scored by the same scorer as
``cecli LOSS`` (:class:`cecli.scoring._Scorer`), B's labels and weights, where B has them, must equal A's row
for row, and the per-row losses of the pair go into the mergeable paired states of :mod:`cecli.uncertainty`
(wrapped in :class:`~cecli.comparison_result.Paired`); no per-row array outlives its batch.
:mod:`cecli.engines.dask_compare` runs :func:`_score_pairs` per pair of files, :mod:`cecli.comparison` in
this process.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from .comparison_result import Paired
from .errors import DataError, InputError
from .files import _batches, _check_columns, _prefetched, _shown
from .io.base import Batch, ReadSettings
from .io.columns import Selection
from .io.expand import expand_partitioned
from .io.inputs import Input, _slice
from .io.sources import open_input
from .scoring import _class_labels, _class_names, _Scorer
from .uncertainty import PairedBootstrapState, PairedNormalState, RandomizationState
from .uncertainty.spread import row_denominators


@dataclass(frozen=True)
class _Job:
    """What scoring a pair of streams needs, the same for every engine (sent to Dask workers)."""

    opts: object
    selection: Selection  # A's columns (labels, predictions, weight, --by)
    selection_b: Selection  # B's: A's labels, weight and --by, B's predictions
    checked_b: Selection  # the columns B's files are read for: B's predictions, and A's labels or weight it has
    compared: tuple[str, ...]  # the roles of B compared with A's
    read: ReadSettings
    test: str
    resamples: int | None
    seed: int
    level: float


def _score_pairs(job: _Job, side_a: _Side, side_b: _Side, label_input, readers, first_row: int = 0):
    """Read A and B in lockstep and score both; (A's state, B's state, the paired whole, paired groups by key).

    `first_row` is the global (0-based) row number of the first row, which keys the resampling draws.
    """
    opts, selection, read = job.opts, job.selection, job.read
    first_a = side_a.open(0) if side_a.opened is None else side_a.opened
    first_b = side_b.open(0) if side_b.opened is None else side_b.opened
    scorer_a = _Scorer(opts, selection, first_a, label_input or first_a, per_class=False, top=0)
    scorer_b = _Scorer(opts, job.selection_b, first_b, label_input or first_a, per_class=False, top=0)
    prefetch = lambda record_batches: _prefetched(record_batches, readers)  # noqa: E731
    stream_a = side_a.stream(lambda source: _batches(source, label_input, selection, read, opts, prefetch))
    names = _class_names(selection.predictions)
    class_labels = _class_labels(opts, selection)
    roles_b = ("predictions", *job.compared)
    stream_b = side_b.stream(
        lambda source: source.batches(
            job.checked_b, read, roles=roles_b, class_names=names, class_labels=class_labels, prefetch=prefetch
        )
    )
    try:
        pairs = _lockstep(stream_a, stream_b, side_a, side_b)
        whole, groups = _paired_batches(job, scorer_a, scorer_b, pairs, first_row, own_labels=label_input is None)
    finally:  # stop both reader threads now, also after an error, so that the inputs can be closed
        stream_a.close()
        stream_b.close()
    return scorer_a.state, scorer_b.state, whole, groups


def _paired_batches(job: _Job, scorer_a: _Scorer, scorer_b: _Scorer, pairs, first_row: int, *, own_labels: bool):
    """Score each pair of equally long batches on both sides; the paired states of the whole and of each group.

    `own_labels`: A's files hold the labels (no ``--labels`` file).
    """
    selection = job.selection
    make = _paired_maker(job.test, job.resamples, job.seed, job.level)
    whole = None
    groups: dict = {}
    for (index_a, source_a, batch_a), (index_b, source_b, batch_b) in pairs:
        row = first_row + scorer_a.total_rows
        if scorer_a.file_index != index_a or scorer_a.inputs["predictions"] is not source_a:
            scorer_a.start_file(index_a, source_a, own_labels=own_labels)
        losses_a, counted = scorer_a.add(batch_a)
        weights, denominators = scorer_a.terms
        _check_same(batch_a, batch_b, job.compared, selection, source_b, scorer_a)
        if scorer_b.file_index != index_b or scorer_b.inputs["predictions"] is not source_b:
            scorer_b.start_file(index_b, source_b, own_labels=False)
        scorer_b.inputs["labels"] = scorer_a.inputs["labels"]
        scorer_b.inputs["weight"] = scorer_a.inputs["weight"]
        arrays = {**batch_a.arrays, "predictions": batch_b.arrays["predictions"]}
        losses_b, _ = scorer_b.add(dataclasses.replace(batch_b, arrays=arrays, groups=batch_a.groups))
        x = row_denominators(weights, denominators, int(np.count_nonzero(counted)))
        part = make(None, losses_a, losses_b, counted, weights, x, row)[None]
        whole = part if whole is None else whole + part
        if batch_a.groups:
            codes, keys = scorer_a._group_codes(batch_a)
            for code, part in make(codes, losses_a, losses_b, counted, weights, x, row).items():
                key = keys[code]
                groups[key] = part if key not in groups else groups[key] + part
    return whole, groups


def _numbered(paths: list[str], partitions: list[dict]) -> list[tuple[int, str, dict]]:
    return [(index, path, found) for index, (path, found) in enumerate(zip(paths, partitions, strict=True))]


def _given(source: str | list[str], paths: list[str]) -> str:
    """A side as messages name it: its one file, else the folder or glob given (else the count of files)."""
    if len(paths) == 1:
        return _shown(paths[0])
    if isinstance(source, str):
        return _shown(source)
    return f"{len(paths)} files"


def _expanded(source: str | list[str]) -> tuple[list[str], list[dict]]:
    expanded = expand_partitioned([source] if isinstance(source, str) else list(source))
    return [path for path, _ in expanded], [found for _, found in expanded]


class _Side:
    """One side's files (A or B), opened one at a time, each checked to have the chosen columns by name.

    `files` holds (dataset index, path, hive partitions) of each file, in order.
    """

    def __init__(self, files: list[tuple[int, str, dict]], read: ReadSettings, display: str | None = None) -> None:
        self.files, self.read = files, read
        self.display = display or _given([path for _, path, _ in files], [path for _, path, _ in files])
        self.opened: Input | None = None
        self.checked: Selection | None = None
        self.reference = files[0][1]  # the file the columns were chosen on, as messages name it
        self.rows = 0  # records read so far

    def open(self, position: int) -> Input:
        self.close()
        _, path, partitions = self.files[position]
        self.opened = open_input(path, self.read, partitions)
        return self.opened

    def close(self) -> None:
        if self.opened is not None:
            self.opened.close()
            self.opened = None

    def stream(self, batches) -> Iterator[tuple[int, Input, Batch]]:
        """(dataset index, input, batch) of every file in turn; the first file may be open already."""
        for position, (index, _, _) in enumerate(self.files):
            source = self.opened if position == 0 and self.opened is not None else self.open(position)
            _check_columns(source, self.checked, self.reference)
            for batch in batches(source):
                if batch.size:
                    self.rows += batch.size
                    yield index, source, batch


def _lockstep(stream_a, stream_b, side_a: _Side, side_b: _Side) -> Iterator[tuple[tuple, tuple]]:
    """Pairs of equally long slices of A's and B's batches, in row order (bounded memory: two batches)."""
    pending_a = pending_b = None
    while True:
        if pending_a is None or pending_a[2].size == 0:
            pending_a = next(stream_a, None)
        if pending_b is None or pending_b[2].size == 0:
            pending_b = next(stream_b, None)
        if pending_a is None or pending_b is None:
            break
        take = min(pending_a[2].size, pending_b[2].size)
        index_a, source_a, batch_a = pending_a
        index_b, source_b, batch_b = pending_b
        yield (index_a, source_a, _slice(batch_a, 0, take)), (index_b, source_b, _slice(batch_b, 0, take))
        pending_a = (index_a, source_a, _slice(batch_a, take, batch_a.size))
        pending_b = (index_b, source_b, _slice(batch_b, take, batch_b.size))
    if pending_a is None and pending_b is None:
        return
    longer, shorter, stream, pending = (
        (side_a, side_b, stream_a, pending_a) if pending_b is None else (side_b, side_a, stream_b, pending_b)
    )
    for _ in stream:  # count the longer side's rows (read, not kept)
        pass
    shorter_name, longer_name = ("A", "B") if shorter is side_a else ("B", "A")
    raise InputError(
        f"{shorter_name} has {shorter.rows} rows, fewer than {longer_name} ({longer.display}, {longer.rows} rows)",
        file=shorter.display,
        hint="A and B must hold the same rows in the same order",
    )


def _check_same(batch_a, batch_b, compared, selection, source_b, scorer_a) -> None:
    """B's labels and weights (where B has those columns) must equal A's, row for row."""
    for role in compared:
        mine, theirs = batch_b.arrays[role], batch_a.arrays[role]
        mine = mine.reshape(mine.shape[0], -1)
        theirs = theirs.reshape(theirs.shape[0], -1)
        differ = mine != theirs
        if not differ.any():
            continue
        row, column = (int(i) for i in np.argwhere(differ)[0])
        names = selection.names(role)
        name = names[min(column, len(names) - 1)]
        if len(names) == 1 and selection.columns(role)[0].is_list:
            name = f"{name}[{column}]"
        where = scorer_a.inputs[role]
        there = f"{where.display}:{where.user_row(batch_a.offset + row)}"
        what = "label" if role == "labels" else "weight"
        raise DataError(
            f"{what} {_value(mine[row, column])} differs from A's {_value(theirs[row, column])} ({there})",
            file=source_b.display,
            row=source_b.user_row(batch_b.offset + row),
            column=name,
            hint="A and B must hold the same rows in the same order",
        )


def _value(value) -> str:
    """A label or weight as a message shows it: ``2`` for a whole number, else its ``repr``."""
    value = value.item() if hasattr(value, "item") else value
    return str(int(value)) if isinstance(value, float) and value.is_integer() else repr(value)


def _paired_maker(test: str, resamples: int | None, seed: int, level: float):
    """A function scoring one batch's paired rows into a :class:`Paired` per group code (``None``: no groups).

    The resampling draws of a batch are made once and shared by its groups (the states' ``grouped``).
    """
    state = PairedBootstrapState if test == "bootstrap" else RandomizationState
    count = {"resamples": resamples} if test == "bootstrap" else {"trials": resamples}

    def make(codes, losses_a, losses_b, counted, weights, x, first_row: int) -> dict:
        # weights and x hold the counted rows only, as the scorer reduces them
        normal = PairedNormalState.grouped(
            None if codes is None else codes[counted], losses_a[counted], losses_b[counted], weights, x
        )
        resampled = {}
        if test != "normal":
            rows = losses_a.size
            resampled = state.grouped(
                codes,
                np.where(counted, losses_a, 0.0),
                np.where(counted, losses_b, 0.0),
                _spread(weights, counted, rows),
                _spread(x, counted, rows),
                first_row=first_row,
                seed=seed,
                counted=counted,
                **count,
            )
        return {
            code: Paired(part, resampled.get(code, state(resamples, seed)) if test != "normal" else None, test, level)
            for code, part in normal.items()
        }

    return make


def _spread(values, counted: np.ndarray, rows: int):
    """A counted rows' array back at full batch length (0 for the rows that do not count)."""
    if values is None:
        return None
    full = np.zeros(rows)
    full[counted] = values
    return full
