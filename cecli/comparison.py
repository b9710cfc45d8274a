"""``compare()``: is candidate B's loss lower than baseline A's on the same rows? (``cecli compare``)

A and B are two prediction dumps of the same rows in the same order (or two prediction column
sets of one dump, `pred_b`). Both are read batch by batch in lockstep (:mod:`cecli.lockstep`), each batch scored by the
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
import threading

import numpy as np

from .comparison_result import Comparison, Paired
from .errors import OptionError
from .files import closing_inputs
from .io.base import ReadSettings
from .io.columns import resolve
from .io.sources import open_input
from .lockstep import _expanded, _given, _Job, _numbered, _paired_maker, _score_pairs, _Side
from .pipeline import _columns_of, _result
from .plan import Plan

__all__ = ["Comparison", "Paired", "compare"]


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
    readers: list[threading.Thread] = []
    opened: list = [side_a, side_b]
    with closing_inputs(readers, opened):
        first_a = side_a.open(0)
        label_input = open_input(labels, read) if labels else None
        opened.append(label_input)
        selection = _columns_of(loss, first_a, label_input, y=y, p=p, weight=weight, by=by)
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
                " so the difference is undefined (wins, ties and losses count an infinite loss as higher than a"
                " finite one and leave out a NaN)"
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
