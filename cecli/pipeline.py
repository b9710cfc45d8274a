"""``compute()``: the library entry point below the CLI.

It checks the options, opens the inputs, chooses the columns, and hands the files to an
engine (:mod:`cecli.engines.local` or :mod:`cecli.engines.dask`), which streams them through
:mod:`cecli.scoring` (io -> validate -> core -> reduce); the state becomes a LossResult.
Per-sample values are kept only when asked for, and written batch by batch to ``out`` when
given, so memory stays bounded.
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeAlias

import numpy as np
from numpy.typing import ArrayLike

from .engines import local
from .errors import DataError, OptionError
from .files import _shown, closing_inputs
from .io.base import ReadSettings
from .io.columns import Selection, choose_columns
from .io.expand import expand_partitioned, file_identity, would_read
from .io.memory import LABELS_NAME, TABLE_NAME, ArrowStreamExportable, in_memory, not_data, open_memory
from .io.sources import open_input
from .losses import REGISTRY
from .numerics import validate
from .numerics.reduce import ScoreState
from .options import Interval, LossOptions
from .plan import Plan
from .result import InputInfo, LossResult, Spreads
from .scoring import _class_names

# What compute() reads: paths, or one table in memory. A pyarrow Table, RecordBatch or
# RecordBatchReader and a pandas or Polars DataFrame are ArrowStreamExportable.
DataSource: TypeAlias = (
    str | os.PathLike[str] | Sequence[str | os.PathLike[str]] | ArrowStreamExportable | Mapping[str, ArrayLike]
)


def compute(
    loss: str,
    source: DataSource = "-",
    *,
    y: str | None = None,
    p: str | None = None,
    labels: DataSource | None = None,
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
    scheduler_file: str | None = None,
    client: Any = None,
    plan: Plan | None = None,
    ci: float | None = None,
    bootstrap: int | None = None,
    seed: int | None = None,
    **options: Any,
) -> LossResult:
    """Compute a cross-entropy loss over files (or stdin) or data in memory, and reduce it.

    Parameters
    ----------
    loss : {"bce", "cce", "sparse", "softmax", "entropy", "nll", ...}
        A subcommand of the CLI (:data:`cecli.choices.LOSSES`).
    source : str, os.PathLike, list of them, or data in memory
        Paths, folders, globs or URLs read as one dataset in order, or ``"-"`` for stdin.
        Columns are chosen on the first file; every other file must have them. A folder or
        glob reads each file once, however many links lead to it; a file given twice is
        read twice, with a warning. Or one table in memory, read in batches of
        ``read.batch_rows`` rows like a file (:mod:`cecli.io.memory`): a pyarrow ``Table``,
        ``RecordBatch`` or ``RecordBatchReader``, any object with ``__arrow_c_stream__``
        (a pandas >= 2.2 or Polars DataFrame, a DuckDB relation), or a mapping of column
        names to NumPy arrays (1-D: a column; 2-D ``(rows, classes)``: a class-vector
        column). It is named ``"<table>"`` in messages and in ``input.path``, its format is
        ``"memory"``, and rows in messages are its 1-based records, as for Parquet.
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
    labels : str, os.PathLike or data in memory, optional
        A second file (or table in memory, named ``"<labels>"``) holding the labels,
        aligned with a single `source` by row position.
    read : ReadSettings, optional
        Input format, delimiter, header mode and batch size.
    per_sample : bool
        Keep per-sample losses in the result (memory grows with the rows).
    out : str, optional
        Write per-sample losses to this ``.csv`` or ``.ndjson`` (either may end in ``.gz``
        or ``.zst``), ``.parquet`` or ``.arrow``/``.feather`` (Arrow IPC) file, atomically.
        It must not be an input (same device and inode) nor lie where a later run over
        `source` would read it (:class:`~cecli.errors.OptionError`); a write the system
        refuses raises :class:`~cecli.errors.OutputError`.
    progress : callable, optional
        Called after each batch with (bytes done, total bytes or ``None``).
    engine : {"local", "dask"}
        ``"dask"`` scores groups of files as Dask tasks (see :mod:`cecli.engines.dask`);
        `out` is then a folder of one Parquet file per input file.
    scheduler : str, optional
        Address of a Dask scheduler (else ``DASK_SCHEDULER_ADDRESS``, else a private
        local cluster on 127.0.0.1).
    wait_for_workers : float, optional
        Seconds the Dask engine waits for a first worker, and for one to come back when
        all have left during the run (default 60).
    scheduler_file : str, optional
        A Dask scheduler file (``dask scheduler --scheduler-file PATH``) naming the scheduler.
    client : distributed.Client, optional
        A connected Dask client to run on (from dask-jobqueue, dask-gateway, Coiled, ...);
        left open. At most one of `client`, `scheduler` and `scheduler_file`.
    ci : float, optional
        A confidence interval of the reduced value at this level, a percentage (95): the
        result's ``stderr`` and ``ci`` (README, "Confidence intervals"). Not for ``reduction``
        ``"sum"`` or ``"none"``.
    bootstrap : int, optional
        The interval from this many Poisson-bootstrap resamples (``ci`` defaults to 95).
    seed : int, optional
        The key of the bootstrap's draws (default 0).
    plan : Plan, optional
        The :class:`~cecli.plan.Plan` already built by :meth:`~cecli.plan.Plan.build` from these
        same arguments (the CLI's, with its output options), so that its checks run once;
        without it, ``compute`` builds one.
    **options
        Fields of :class:`~cecli.options.LossOptions` (``reduction``, ``eps``, ...).

    Returns
    -------
    LossResult
        Its :meth:`~cecli.result.LossResult.to_dict` is the JSON document the CLI prints
        for the same data in a file (but for ``input``).

    Raises
    ------
    OptionError
        For invalid options, a `source` of another type, or in-memory data with
        ``engine="dask"`` (its workers read files).
    InputError, DataError
        For data that cannot be read or scored; the error's ``file``, ``row`` and
        ``column`` say where. Nothing is printed and nothing exits.

    Examples
    --------
    >>> import cecli
    >>> cecli.compute("bce", "sample_data/seed-bce.csv", reduction="sum").value  # doctest: +SKIP
    4.46030345976025
    >>> import numpy as np
    >>> data = {"y": np.array([0, 1, 1]), "p": np.array([0.2, 0.9, 0.6])}
    >>> round(cecli.compute("bce", data).value, 6)  # -(log 0.8 + log 0.9 + log 0.6) / 3
    0.279777
    """
    dask_only = {"scheduler": scheduler, "scheduler_file": scheduler_file, "client": client,
                 "wait_for_workers": wait_for_workers}  # fmt: skip
    if plan is None:
        plan = Plan.build(
            loss,
            options=options,
            engine=engine,
            weight=weight,
            per_class=per_class,
            dask=dask_only,
            ci=ci,
            bootstrap=bootstrap,
            seed=seed,
        )
    opts = plan.opts
    read = read or ReadSettings()
    memory = in_memory(source)
    labels_in_memory = labels is not None and in_memory(labels)
    labels = labels if labels is None or labels_in_memory else _path(labels)
    sources = [] if memory else _paths(source)
    expanded = [(TABLE_NAME, {})] if memory else expand_partitioned(sources)
    paths = [path for path, _ in expanded]
    partitions = [found for _, found in expanded]  # hive keys of each path, as columns
    plan.check_paths(paths, labels is not None, in_memory=memory or labels_in_memory)
    identities = [None if memory else file_identity(path) for path in paths]
    label_path = None if labels is None or labels_in_memory else labels
    if out is not None:
        named = [*zip(paths, identities, strict=True), (label_path, file_identity(label_path) if label_path else None)]
        _refuse_overwrite(out, named)
        _refuse_inside(out, sources, folder=engine == "dask")
    notes = _repeated(paths, identities)
    first = open_memory(source) if memory else open_input(paths[0], read, partitions[0])
    try:
        label_input = None
        if labels is not None:
            label_input = open_memory(labels, LABELS_NAME) if labels_in_memory else open_input(labels, read)
    except BaseException:
        first.close()
        raise
    labels = LABELS_NAME if labels_in_memory else labels
    readers: list[threading.Thread] = []
    with closing_inputs(readers, [first, label_input]):
        selection = _columns_of(loss, first, label_input, y=y, p=p, weight=weight, keep=keep, by=by)
        if engine == "dask":
            from .engines.dask import run

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
                scheduler_file=scheduler_file,
                client=client,
                partitions=partitions,
                interval=plan.interval,
            )
            if per_sample:
                notes.append("per-sample values stay on the Dask workers (use --out DIR for them)")
            return _result(
                state,
                opts,
                selection,
                paths,
                None,
                out,
                fmt=first.format,
                extras=extras,
                notes=notes,
                interval=plan.interval,
            )
        state, per_sample_values = local.run(
            first,
            label_input,
            paths,
            selection=selection,
            opts=opts,
            read=read,
            per_class=per_class,
            top=top,
            extras=extras,
            per_sample=per_sample,
            out=out,
            progress=progress,
            readers=readers,
            partitions=partitions,
            interval=plan.interval,
        )
        return _result(
            state,
            opts,
            selection,
            paths,
            labels,
            out,
            fmt=first.format,
            extras=extras,
            per_sample=per_sample_values,
            notes=notes,
            interval=plan.interval,
        )


def _path(path: object) -> str:
    """`path` as text (a ``pathlib.Path`` too); anything else is an :class:`OptionError`."""
    try:
        return os.fspath(path)
    except TypeError:
        raise not_data(path) from None


def _paths(source: object) -> list[str]:
    """The paths of `source`: one path or a list (or tuple) of them; data in memory come one table at a time."""
    if isinstance(source, list | tuple):
        if any(in_memory(item) for item in source):
            raise OptionError("in-memory data is read one table at a time", hint="concatenate the tables first")
        return [_path(item) for item in source]
    return [_path(source)]


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


def _columns_of(loss: str, first, label_input, **names) -> Selection:
    """:func:`~cecli.io.columns.choose_columns` for opened inputs: the first file and the labels file, if any.

    `names`: the column options (``y``, ``p``, ``weight``, ``keep``, ``by``).
    """
    return choose_columns(
        loss,
        first.columns,
        file=first.display,
        label_columns=label_input.columns if label_input else None,
        label_file=label_input.display if label_input else None,
        headerless=first.headerless,
        partitions=frozenset(first.partitions),
        **names,
    )


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
    interval: Interval | None = None,
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
    if interval is not None and interval.method == "bootstrap":
        # Each end of a percentile interval is read between the few resamples beyond it: with fewer than
        # 25 there, the end moves by a good part of its own width from one seed to the next.
        tail = (1.0 - interval.level) / 2.0
        if interval.resamples * tail < 25:
            warnings.append(
                f"--bootstrap {interval.resamples} leaves {interval.resamples * tail:.3g} resamples beyond each end of "
                f"the interval; its ends are rough (use --bootstrap {math.ceil(25 / tail - 1e-9)} or more)"
            )
    described = InputInfo(
        path=display if len(paths) == 1 else None,
        paths=[_shown(p) for p in paths],
        format=fmt,
        labels_path=_shown(labels) if labels else labels,
        label_columns=selection.names("labels"),
        prediction_columns=selection.names("predictions"),
        weight_column=selection.weight.name if selection.weight else None,
        keep_columns=selection.names("keep"),
        by_columns=selection.names("by"),
        classes=state.n_classes,
    )
    class_names = _class_names(selection.predictions) or [str(i) for i in range(state.n_classes or 0)]
    groups = None
    if selection.by:
        # Keys are tuples of (kind, value) pairs (cecli.io.convert._group_key): sorted by kind, then value.
        groups = [
            (dict(zip(selection.names("by"), (value for _, value in key), strict=True)), part)
            for key, part in sorted(state.groups.items(), key=lambda item: item[0])
        ]
    per_class = None
    if state.per_class is not None:
        per_class = [
            (class_names[i] if i < len(class_names) else str(i), i, part) for i, part in sorted(state.per_class.items())
        ]
    spreads = None
    if interval is not None:
        # Every group and class with a Partial has a Spread: both are built from the same counted rows.
        spreads = Spreads(
            state.spread,
            None if groups is None else [state.group_spreads[key] for key in sorted(state.groups)],
            None if per_class is None else [state.class_spreads[index] for _, index, _ in per_class],
        )
    values, counted, keep = per_sample if per_sample is not None else (None, None, {})
    return LossResult(
        options=opts,
        partial=partial,
        hits=state.hits if state.hits.count else None,
        histogram=state.histogram if extras else None,
        top=state.largest(),
        groups=groups,
        per_class=per_class,
        input=described,
        per_sample=values,
        counted=counted,
        keep=keep,
        warnings=warnings,
        out=out,
        rows=state.rows,
        # Binary labels: each row holds one loss term per label column (accuracy counts them all).
        elements=state.n_classes if REGISTRY[opts.loss].labels == "binary" and state.n_classes else 1,
        interval=interval,
        spreads=spreads,
    )
