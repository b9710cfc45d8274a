"""The loop over files both engines run: open each file, check its columns, read its batches, score them.

:func:`score_files` runs the scorer (:class:`cecli.scoring._Scorer`) over whole files, with ``--out``
parts written atomically: the unit of work of a Dask task (:mod:`cecli.engines.dask_task`).
:func:`count_rows` is the Dask engine's counting pass under ``--bootstrap``. The local engine
(:mod:`cecli.engines.local`) and :mod:`cecli.lockstep` take the pieces: :func:`_batches` (a file's
batches, with a ``--labels`` file aligned), :func:`_prefetched` (a reader thread),
:func:`_check_columns` and :func:`_write`. Imports run one way: engines and lockstep import this
module, this module imports :mod:`cecli.scoring`, never the other way round.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Iterator

import numpy as np

from .errors import CellError, InputError
from .io.base import STDIN_NAME, Batch, ReadSettings
from .io.columns import Selection
from .io.inputs import Input, aligned
from .io.remote import redact
from .io.sources import open_input
from .numerics.reduce import ScoreState
from .options import Interval, LossOptions
from .scoring import _class_labels, _class_names, _Scorer


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


def _shown(path: str) -> str:
    """A path as messages and the JSON show it: stdin by name, URLs without credentials."""
    return STDIN_NAME if path == "-" else redact(path)


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
    interval: Interval | None = None,
    file_starts: list[int] | None = None,
) -> ScoreState:
    """Score (index, path) or (index, path, hive partitions) files into one :class:`ScoreState`;
    the unit of work of a Dask task.

    With `out_dir`, per-sample losses of input file ``i`` go to ``out_dir/part-iiiii.parquet``
    (``row`` counts records within that file), written atomically. `check`, if given, is called
    before each batch and before a part is renamed into place; it raises to stop the work (a
    cancelled Dask task), and the part's temporary file is then removed. `interval` adds the
    uncertainty states of ``--ci``; `file_starts` (each file's first global row, by file index)
    keys the bootstrap's draws, and is needed with ``--bootstrap`` unless `files` start at file 0.
    """
    scorer = None
    readers: list[threading.Thread] = []
    # As in the local engine: a reader thread decodes the next batches while this one computes.
    prefetch = lambda record_batches: _prefetched(record_batches, readers)  # noqa: E731
    for index, path, *partitions in files:
        source = open_input(path, read, partitions[0] if partitions else None)
        try:
            _check_columns(source, selection, reference)
            if scorer is None:
                scorer = _Scorer(
                    opts,
                    selection,
                    source,
                    source,
                    per_class=per_class,
                    top=top,
                    extras=extras,
                    interval=interval,
                    file_starts=file_starts,
                )
            scorer.start_file(index, source)
            writer = None
            if out_dir is not None:
                from .io.writers import PerSampleWriter

                part = os.path.join(out_dir, f"part-{index:05d}.parquet")
                writer = PerSampleWriter(part, [c.name for c in selection.keep])
            with writer if writer is not None else contextlib.nullcontext():
                for batch in _batches(source, None, selection, read, opts, prefetch):
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


def count_rows(
    files: list[tuple],
    *,
    selection: Selection,
    opts: LossOptions,
    read: ReadSettings,
    reference: str = "the first file",
) -> dict[int, int]:
    """``{file index: rows}`` of (index, path[, hive partitions]) files: the records a scoring pass counts.

    The Dask engine's first pass under ``--bootstrap`` (:mod:`cecli.engines.dask`): the draws of a row
    are keyed by its global row number, which a task can know only once the files before its own are
    counted. The batches are read as scoring reads them, so the counts are the very same.
    """
    rows: dict[int, int] = {}
    for index, path, *partitions in files:
        source = open_input(path, read, partitions[0] if partitions else None)
        try:
            _check_columns(source, selection, reference)
            rows[index] = sum(batch.size for batch in _batches(source, None, selection, read, opts))
        finally:
            source.close()
    return rows


@contextlib.contextmanager
def closing_inputs(readers: list[threading.Thread], inputs: list) -> Iterator[None]:
    """Close each of `inputs` (``None`` skipped; the list may grow inside the block) when the block ends.

    Not after an interrupt, nor while one of the `readers` threads is alive: a reader (ours, or
    pyarrow's read-ahead) may be blocked on a pipe while holding the stream's lock; the process is
    exiting, so the stream is left to it.
    """
    interrupted = False
    try:
        yield
    except (KeyboardInterrupt, SystemExit):
        interrupted = True
        raise
    finally:
        if not interrupted and not any(thread.is_alive() for thread in readers):
            for opened in inputs:
                if opened is not None:
                    opened.close()


_ABANDONED: list = []


def _prefetched(batches: Iterator, threads: list[threading.Thread], depth: int = 2) -> Iterator:
    """Read the next batches in a background thread while the caller computes.

    pyarrow and NumPy release the GIL, so decoding and the math overlap on two cores.
    Errors from the reader are re-raised in the caller's thread, in order.
    """
    import queue  # here: a small CSV is read without this thread, so a one-liner skips the import (0.3 ms)

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
        thread.join(timeout=None if complete else 0.2)
        if thread.is_alive():
            # After an interrupt the reader may be blocked on a pipe that never closes: don't wait for
            # it, and keep its generator alive (closing a generator another thread runs is an error).
            # The process is about to exit.
            _ABANDONED.append(batches)
        elif not complete:
            # Stopped early: an error in the caller (a bad cell, a full disk) or a caller that stopped
            # reading. The reader is done with the batches, so close them here, which ends their
            # parsing pools and closes what they opened now, not when the caller's exception (which
            # holds this frame, and a notebook keeps the last one) is let go. A failure while closing
            # what nobody reads any more must not replace the error being reported.
            with contextlib.suppress(Exception):
                batches.close()


def _write(writer, first_row: int, losses: np.ndarray, counted: np.ndarray, batch: Batch, source: Input) -> None:
    """Write a batch to ``--out``; a kept value the file cannot hold is named by its input file and row."""
    try:
        writer.write(first_row, losses, counted, batch.keep, batch.kept)
    except CellError as error:
        raise error.locate(file=source.display, row=source.user_row(batch.offset + error.index)) from None
