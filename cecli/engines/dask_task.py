"""The Dask engine's worker side: the task that scores a group of files, and what it needs.

:func:`_task` checks the worker's cecli version and that it sees the paths, tunes the worker
process once, and runs :func:`cecli.files.score_files`, stopping when the task is cancelled;
:func:`_merged` adds the states of neighbouring tasks on a worker; :func:`_translated` turns
anything a task raised into one short :class:`~cecli.errors.CecliError` without credentials.
Split off :mod:`cecli.engines.dask` (577 lines), which keeps the client side: planning the
tasks, running and watching them, cancelling, the ``--out`` folder. The functions here are
sent to the workers by reference, so this module imports nothing of the client side.
"""

from __future__ import annotations

import os

from cecli.errors import CecliError, InputError, OptionError
from cecli.numerics.reduce import ScoreState

from .tuning import tune_for_batches

_SAME_VERSION_HINT = "install cecli, with the same version, on the scheduler and every worker"


_SAME_PATHS_HINT = "Dask workers open paths themselves: every worker needs the same path, e.g. a shared file system"


def _merged(*states: ScoreState) -> ScoreState:
    """The sum of `states` of neighbouring ranges of tasks, left to right (a task on a worker)."""
    total = states[0]
    for state in states[1:]:
        total = total + state
    return total


def _task(
    files,
    *,
    client_version: str,
    client_pid: int,
    reference: str,
    out_dir: str | None,
    count_only: bool = False,
    **options,
) -> ScoreState:
    """The unit of work on a worker: check its cecli version and that it sees the paths, then score them
    (or, with `count_only`, only count their rows, in a state of ``file_rows`` alone).

    The version is checked here too because workers that join during the run were not asked before it.
    """
    from cecli import __version__
    from cecli.files import count_rows, score_files

    if os.getpid() != client_pid:  # a worker process, not the caller's own (an in-process cluster)
        _tune_worker_process()
    if client_version != __version__:
        raise OptionError(
            f"the Dask worker at {_worker_name()} has cecli {__version__}, this client has cecli {client_version}",
            hint=_SAME_VERSION_HINT,
        )
    for _, path, *_ in files:
        if "://" not in path and not os.path.exists(path):
            raise InputError(f"a Dask worker ({_worker_name()}) cannot see this file", file=path, hint=_SAME_PATHS_HINT)
    if out_dir is not None and not os.path.isdir(out_dir):
        raise OptionError(
            f"a Dask worker ({_worker_name()}) cannot see the --out folder {out_dir}", hint=_SAME_PATHS_HINT
        )
    try:
        if count_only:
            return ScoreState(file_rows=count_rows(files, reference=reference, **options))
        return score_files(files, reference=reference, out_dir=out_dir, check=_stop_if_cancelled, **options)
    except (CecliError, _Cancelled):
        raise
    except Exception as error:
        # Sent back as a short CecliError: Dask's client hangs on an error whose traceback it cannot
        # deserialize (a RecursionError's is 1,000 frames deep), and the client only needs the one line.
        raise _translated(error, files) from None


_TUNED: list[bool] = []  # once per worker process


def _tune_worker_process() -> None:
    """Give the worker process the settings the CLI gives its own (:func:`~cecli.engines.tuning.tune_for_batches`),
    once. Not done in the caller's own process (a cluster of threads in it): a library call leaves its
    process alone."""
    if _TUNED:
        return
    _TUNED.append(True)
    tune_for_batches()


class _Cancelled(Exception):
    """Raised inside a task that the scheduler has cancelled (another task failed, or the client left)."""


def _stop_if_cancelled() -> None:
    """Raise :class:`_Cancelled` if this task is no longer wanted; reads only the worker's own state."""
    try:
        from distributed import get_worker

        worker = get_worker()
        key = worker.get_current_task()
    except (ImportError, ValueError, KeyError):  # not inside a Dask task
        return
    task = worker.state.tasks.get(key)
    if task is None or task.state not in ("executing", "long-running"):
        raise _Cancelled(key)


def _worker_name() -> str:
    try:
        from distributed import get_worker

        return get_worker().address
    except (ImportError, ValueError):
        return "?"


def _running_keys(keys: set, dask_worker=None) -> list:
    """Of `keys`, those a thread of this worker still runs (executed on each worker).

    A task is in the worker's ``executing`` (or ``long_running``) set from the moment it is handed to a
    thread, cancelled or not, until its function has returned; ``active_threads`` names it only once the
    thread has begun it. Both are read, so a task that is just starting is not missed.
    """
    state = dask_worker.state
    running = {task.key for task in (*state.executing, *state.long_running)}
    return sorted((running | set(dask_worker.active_threads.values())) & keys)


def _translated(error: BaseException, files) -> CecliError:
    """The one-line error for what a task raised; no secret of a URL among `files` is in it."""
    if isinstance(error, CecliError):
        return error
    from cecli.io.remote import redact

    first = redact(files[0][1])
    if isinstance(error, ModuleNotFoundError):
        return OptionError(f"a Dask worker cannot import {error.name or 'cecli'}", hint=_SAME_VERSION_HINT)
    if isinstance(error, OSError):
        return InputError(f"a worker cannot read it: {_scrubbed(error, files)}", file=first, hint=_SAME_PATHS_HINT)
    from distributed.scheduler import KilledWorker

    if isinstance(error, RuntimeError) and "deserialization of the task graph" in str(error):
        return OptionError("the Dask scheduler cannot load cecli's tasks", hint=_SAME_VERSION_HINT)
    if isinstance(error, KilledWorker):
        return InputError("Dask workers died reading it (out of memory?)", file=first, hint="check the worker logs")
    return InputError(f"a Dask task failed: {type(error).__name__}: {_scrubbed(error, files)}", file=first)


def _scrubbed(error: BaseException, files) -> str:
    """The text of `error` with every credential of the URLs in `files` replaced by ``***``."""
    from cecli.io.remote import _scrub

    text = str(error)
    for _, path in files:
        text = _scrub(text, path)
    return text
