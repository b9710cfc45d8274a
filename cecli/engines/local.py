"""The local engine: scores the inputs in this process, streaming.

A reader thread decodes the next batches while this one computes (:func:`cecli.files._prefetched`),
per-sample losses go batch by batch to ``--out``, and `progress` is told how far the input is read.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Iterator

from cecli.files import _batches, _check_columns, _prefetched, _write
from cecli.io.base import ReadSettings
from cecli.io.columns import Selection
from cecli.io.inputs import Input
from cecli.io.sources import open_input
from cecli.numerics.reduce import ScoreState
from cecli.options import Interval, LossOptions
from cecli.scoring import _Scorer


def run(
    first: Input,
    label_input: Input | None,
    paths: list[str],
    *,
    selection: Selection,
    opts: LossOptions,
    read: ReadSettings,
    per_class: bool,
    top: int,
    extras: bool,
    per_sample: bool,
    out: str | None,
    progress: Callable[[int, int | None], None] | None,
    readers: list[threading.Thread],
    partitions: list[dict] | None = None,
    interval: Interval | None = None,
) -> tuple[ScoreState, tuple | None]:
    """Score `paths` (the first already open as `first`; labels from `label_input`, if given).

    `partitions`, if given, holds each path's hive keys (columns of that file); `interval` adds
    the uncertainty states of ``--ci`` (rows are numbered in the order the files are read).

    Returns the state and, with `per_sample`, the per-sample values. The reader threads
    started are appended to `readers`, so that the caller can tell whether the inputs can be
    closed (not while a reader is blocked on a pipe after an interrupt).
    """
    scorer = _Scorer(
        opts, selection, first, label_input or first, per_class=per_class, top=top, extras=extras, interval=interval
    )
    writer = None
    if out is not None:
        from cecli.io.writers import PerSampleWriter

        writer = PerSampleWriter(out, [c.name for c in selection.keep])
    sizes = [first.size] + [None if "://" in p or p == "-" else os.path.getsize(p) for p in paths[1:]]
    total = None if None in sizes else sum(sizes)
    done = 0
    with writer if writer is not None else contextlib.nullcontext():
        for index, source_input in enumerate(_inputs(first, paths, read, selection, partitions)):
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
    return scorer.state, per_sample_values


def _inputs(
    first: Input, paths: list[str], read: ReadSettings, selection: Selection, partitions: list[dict] | None
) -> Iterator[Input]:
    """Yield `first`, then each further file opened in turn (with its hive keys), checked against `selection`."""
    yield first
    for index, path in enumerate(paths[1:], start=1):
        opened = open_input(path, read, partitions[index] if partitions else None)
        try:
            _check_columns(opened, selection, paths[0])
            yield opened
        finally:
            opened.close()
