"""``compare()``: is candidate B's loss lower than baseline A's on the same rows? (``cecli compare``)

A and B are two prediction dumps of the same rows in the same order (or two prediction column
sets of one dump, `pred_b`). Both are read batch by batch in lockstep, each batch scored by the
same scorer as ``cecli LOSS`` (:class:`cecli.scoring._Scorer`: the same validation and the same
error locations), and the per-row losses of the pair go into the mergeable paired states of
:mod:`cecli.uncertainty`; no per-row array outlives its batch. The labels (and weights) are
read from A (or its `labels` file); where B holds the same label (or weight) columns, they must
equal A's row for row.

Column rule: the columns are chosen on A's first file (as ``cecli LOSS`` chooses them) and then
found by name in every file of A and of B, as in any dataset of several files; with `pred_b`,
B's prediction columns are `pred_b` in the same files.
"""

from __future__ import annotations

import dataclasses
import math
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from . import __version__
from .errors import DataError, InputError, OptionError
from .io.base import Batch, ReadSettings
from .io.columns import Selection, choose_columns, resolve
from .io.expand import expand_partitioned
from .io.inputs import Input, _slice
from .io.sources import open_input
from .pipeline import _result
from .plan import Plan
from .result import SCHEMA_VERSION, LossResult
from .scoring import _batches, _check_columns, _class_labels, _class_names, _prefetched, _Scorer, _shown
from .uncertainty import PairedBootstrapState, PairedNormalState, RandomizationState


@dataclass(frozen=True)
class Paired:
    """The paired statistics of one set of rows (the whole, or one ``--by`` group).

    `normal` always (difference, standard error, wins/ties/losses); `resampled` with the
    resamples test.
    """

    normal: PairedNormalState
    resampled: PairedBootstrapState | RandomizationState | None
    test: str
    level: float

    @property
    def difference(self) -> float:
        """``D = value(B) - value(A)``, the exact difference correctly rounded (NaN when undefined)."""
        return self.normal.difference

    @property
    def stderr(self) -> float:
        """The standard error of ``D`` (:class:`~cecli.uncertainty.PairedNormalState`), for every test."""
        return self.normal.stderr

    @property
    def interval(self) -> tuple[float, float]:
        """``D +/- z se`` (normal and randomization), or the paired bootstrap's percentile interval."""
        if self.test == "bootstrap":
            return self.resampled.interval(self.level)
        return self.normal.interval(self.level)

    @property
    def p_value(self) -> float:
        """Two-sided p-value of "no difference" under the chosen test."""
        return self.normal.p_value() if self.resampled is None else self.resampled.p_value()

    @property
    def verdict(self) -> str:
        """``better`` (B's loss significantly lower), ``worse``, ``no significant difference`` or ``undefined``.

        Significant means ``p < 1 - level`` and, with an interval, the interval excludes 0 on
        that side (the bootstrap's p-value and interval agree only approximately: both must say so).
        """
        p, difference = self.p_value, self.difference
        if math.isnan(p) or math.isnan(difference):
            return "undefined"
        low, high = self.interval
        if p < 1.0 - self.level and difference < 0 and not high >= 0:
            return "better"
        if p < 1.0 - self.level and difference > 0 and not low <= 0:
            return "worse"
        return "no significant difference"

    def __add__(self, other: Paired) -> Paired:
        resampled = None if self.resampled is None else self.resampled + other.resampled
        return dataclasses.replace(self, normal=self.normal + other.normal, resampled=resampled)

    def to_dict(self, finite) -> dict:
        """The paired statistics as JSON; ``ci`` has the shape of the loss commands' ``--ci`` object."""
        low, high = self.interval
        bootstrap = self.test == "bootstrap"
        ci = {
            "level": self.level,
            "low": finite("ci low", low),
            "high": finite("ci high", high),
            "method": "bootstrap" if bootstrap else "normal",  # randomization tests; its interval is the normal one
            "resamples": self.resampled.resamples if bootstrap else None,
            "seed": self.resampled.seed if bootstrap else None,
        }
        return {
            "difference": finite("difference", self.difference),
            "stderr": finite("stderr", self.stderr),
            "ci": ci,
            "p_value": finite("p_value", self.p_value),
            "wins": self.normal.wins,
            "ties": self.normal.ties,
            "losses": self.normal.losses,
            "verdict": self.verdict,
        }


@dataclass
class Comparison:
    """The result of :func:`compare`: both summaries and the paired statistics of B against A.

    ``difference`` is ``value(B) - value(A)`` (negative: B's loss is lower); ``wins`` counts
    the rows where B's loss is lower than A's, ``losses`` where it is higher.
    """

    a: LossResult
    b: LossResult
    paired: Paired
    test: str
    resamples: int | None
    seed: int | None
    groups: list[tuple[dict, Paired]] | None = None
    warnings: list[str] = dataclasses.field(default_factory=list)

    @property
    def difference(self) -> float:
        return self.paired.difference

    @property
    def stderr(self) -> float:
        return self.paired.stderr

    @property
    def interval(self) -> tuple[float, float]:
        return self.paired.interval

    @property
    def p_value(self) -> float:
        return self.paired.p_value

    @property
    def verdict(self) -> str:
        return self.paired.verdict

    @property
    def level(self) -> float:
        return self.paired.level

    @property
    def wins(self) -> int:
        return self.paired.normal.wins

    @property
    def ties(self) -> int:
        return self.paired.normal.ties

    @property
    def losses(self) -> int:
        return self.paired.normal.losses

    def to_dict(self) -> dict:
        """The JSON document of ``cecli compare`` (``cecli/schema.json``)."""
        warnings = list(self.warnings)

        def finite(name: str, value: float | None) -> float | None:
            if value is None or math.isfinite(value):
                return value
            warnings.append(f"{name} is {value} (written as null)")
            return None

        document = {
            "schema_version": SCHEMA_VERSION,
            "cecli_version": __version__,
            "loss": self.a.options.loss,
            "unit": self.a.options.unit,
            "test": self.test,
            "resamples": self.resamples,
            "seed": self.seed,
            "a": self.a.to_dict(per_sample=False),
            "b": self.b.to_dict(per_sample=False),
            **self.paired.to_dict(finite),
        }
        if self.groups is not None:
            # In the order of a["by"] and b["by"], which hold each group's summaries.
            document["groups"] = [{"key": key, **paired.to_dict(finite)} for key, paired in self.groups]
        document["warnings"] = warnings
        return document


def compare(
    loss: str,
    a: str | list[str],
    b: str | list[str] | None = None,
    *,
    pred_b: str | None = None,
    y: str | None = None,
    p: str | None = None,
    labels: str | None = None,
    weight: str | None = None,
    by: str | None = None,
    read: ReadSettings | None = None,
    ci: float = 95.0,
    bootstrap: int | None = None,
    randomization: int | None = None,
    seed: int | None = None,
    engine: str = "local",
    scheduler: str | None = None,
    wait_for_workers: float | None = None,
    scheduler_file: str | None = None,
    client=None,
    plan: Plan | None = None,
    **options,
) -> Comparison:
    """Compare candidate B's loss with baseline A's on the same rows (a paired test).

    Parameters
    ----------
    loss : str
        A loss of the registry (``"bce"``, ``"sparse"``, ...).
    a, b : str or list of str
        The baseline's and the candidate's inputs (paths, folders, globs, URLs or ``"-"`` for
        stdin, at most one of them), holding the same rows in the same order. Without `b`,
        `pred_b` names B's prediction columns in the files of `a`.
    y, p, labels, weight, by, read, **options
        As in :func:`cecli.compute` (`p` is A's prediction columns); the reduction is the mean.
    ci : float
        Confidence level of the interval and of the verdict, a percentage (95), as
        :func:`cecli.compute`'s `ci`.
    bootstrap, randomization : int, optional
        Use the paired Poisson bootstrap with this many resamples, or approximate
        randomization with this many trials, for the p-value (the bootstrap also for the
        interval); at most one. Draws are keyed by `seed` (default 0) and the global row
        number, so the result does not depend on batches or file splits.
    engine, scheduler, wait_for_workers, scheduler_file, client
        As in :func:`cecli.compute`. The Dask engine scores A's file i with B's file i as
        one task (:mod:`cecli.engines.dask_compare`): A and B must be split the same way.
    plan : Plan, optional
        The :class:`~cecli.plan.Plan` the CLI built from these arguments (its checks run once).

    Returns
    -------
    Comparison

    Notes
    -----
    With per-row numerators ``u_i = w_i lA_i``, ``v_i = w_i lB_i`` and denominators ``x_i``
    (``w_i``, 1 without weights), ``D = (sum v - sum u) / sum x`` and
    ``se = sqrt(n / (n - 1) sum (v_i - u_i - D x_i)^2) / sum x``; the normal test's two-sided
    p-value is ``2 (1 - Phi(|D| / se))`` and the interval ``D +/- z se``.
    """
    if b is None and pred_b is None:
        raise OptionError("no B to compare with A", hint="give B as a second INPUT, or --pred-b COLUMNS of A's input")
    if b is not None and pred_b is not None:
        raise OptionError("B is given twice, as a second INPUT and as --pred-b", hint="give one")
    if options.get("reduction", "mean") != "mean":
        raise OptionError("cecli compare compares mean losses", hint="drop --reduction")
    options["reduction"] = "mean"
    dask = {"scheduler": scheduler, "scheduler_file": scheduler_file, "client": client,
            "wait_for_workers": wait_for_workers}  # fmt: skip
    if plan is None:
        plan = Plan.build(loss, options=options, engine=engine, weight=weight, dask=dask, ci=ci,
                          bootstrap=bootstrap, randomization=randomization, seed=seed)  # fmt: skip
    opts, interval = plan.opts, plan.interval
    test, level, resamples, seed = interval.method, interval.level, interval.resamples, interval.seed or 0
    read = read or ReadSettings()
    paths_a, partitions_a = _expanded(a)
    paths_b, partitions_b = (paths_a, partitions_a) if b is None else _expanded(b)
    plan.check_paths(paths_a, labels)
    stdin = ("-" in paths_a) + (b is not None and "-" in paths_b) + (labels == "-")
    if stdin > 1 or (b is None and "-" in paths_a):
        raise OptionError(
            "stdin (-) can be read only once" + (": --pred-b reads the input twice" if b is None else ""),
            hint="give the other input as a file path",
        )
    side_a = _Side(_numbered(paths_a, partitions_a), read, _given(a, paths_a))
    side_b = _Side(_numbered(paths_b, partitions_b), read, _given(b if b is not None else a, paths_b))
    label_input = None
    readers: list[threading.Thread] = []
    interrupted = False
    try:
        first_a = side_a.open(0)
        label_input = open_input(labels, read) if labels else None
        selection = choose_columns(
            loss,
            first_a.columns,
            file=first_a.display,
            y=y,
            p=p,
            weight=weight,
            by=by,
            label_columns=label_input.columns if label_input else None,
            label_file=label_input.display if label_input else None,
            headerless=first_a.headerless,
            partitions=frozenset(first_a.partitions),
        )
        first_b = side_b.open(0)
        if pred_b is not None:
            predictions_b = tuple(resolve(pred_b, first_b.columns, option="--pred-b", file=first_b.display))
            selection_b = dataclasses.replace(selection, predictions=predictions_b, keep=())
            shared = set(selection.names("labels")) | set(selection.names("weight")) | set(selection.names("by"))
            overlap = sorted(shared & {c.name for c in predictions_b})
            if overlap:
                raise OptionError(
                    f"--pred-b names a label, weight or --by column: {overlap[0]!r}",
                    hint="give B's prediction columns",
                )
            compared: tuple[str, ...] = ()  # the same cells as A's
        else:
            selection_b = dataclasses.replace(selection, keep=())
            have = {c.name for c in first_b.columns}
            compared = tuple(
                role
                for role in ("labels", "weight")
                if selection.columns(role) and all(c.name in have for c in selection.columns(role))
            )
        checked_b = dataclasses.replace(
            selection_b,
            labels=selection.labels if "labels" in compared else (),
            weight=selection.weight if "weight" in compared else None,
            by=(),
        )
        side_b.checked = checked_b
        side_a.checked = dataclasses.replace(selection, labels=() if label_input else selection.labels)
        side_b.reference = paths_a[0]
        job = _Job(opts, selection, selection_b, checked_b, compared, read, test, resamples, seed, level)
        if engine == "dask":
            from .engines.dask_compare import run_pairs

            side_a.close()
            side_b.close()
            scored = run_pairs(job, side_a, side_b, **dask)
        else:
            scored = _score_pairs(job, side_a, side_b, label_input, readers)
        state_a, state_b, whole, groups = scored
        make = _paired_maker(test, resamples, seed, level)
        result_a = _result(state_a, opts, selection, paths_a, labels, None, fmt=first_a.format)
        result_b = _result(state_b, opts, selection_b, paths_b, labels, None, fmt=first_b.format)
        if whole is None:
            whole = make(None, np.empty(0), np.empty(0), np.empty(0, dtype=bool), None, None, 0)[None]
        grouped = None
        if selection.by:
            grouped = [
                (dict(zip(selection.names("by"), (value for _, value in key), strict=True)), part)
                for key, part in sorted(groups.items(), key=lambda item: item[0])
            ]
        warnings = []
        if whole.normal.nonfinite:
            rows = whole.normal.nonfinite
            warnings.append(
                f"{rows} row{'s have' if rows > 1 else ' has'} an infinite or NaN loss in A or B,"
                " so the difference is undefined (wins, ties and losses count the other rows)"
            )
        return Comparison(
            result_a,
            result_b,
            whole,
            test,
            resamples,
            None if test == "normal" else seed,
            grouped,
            warnings,
        )
    except (KeyboardInterrupt, SystemExit):
        interrupted = True
        raise
    finally:
        if not interrupted and not any(thread.is_alive() for thread in readers):
            side_a.close()
            side_b.close()
            if label_input is not None:
                label_input.close()


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
        x = _row_denominators(weights, denominators, int(np.count_nonzero(counted)))
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


def _row_denominators(weights, denominators, n: int):
    """Each counted row's whole denominator ``x`` (``None``: the weights, or 1 without them)."""
    if denominators is None:
        return None
    if isinstance(denominators, str):  # "count": the mean divides by the number of rows
        return np.ones(n)
    return denominators if weights is None else weights * denominators


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
