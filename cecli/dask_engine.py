"""The optional Dask engine: score groups of files as tasks on a Dask cluster.

Each task runs cecli's own reader and NumPy core on its files
(:func:`cecli.pipeline.score_files`) and returns a :class:`~cecli.reduce.ScoreState`.
The client adds the states in file order; the sums inside are exact, so the result is
the local engine's to the last bit, and the same from run to run.

The cluster is, in order: ``scheduler`` (``--scheduler``), ``DASK_SCHEDULER_ADDRESS``,
or a private local cluster of worker processes bound to 127.0.0.1 (dashboard on a free
loopback port), closed when the computation ends. Needs ``pip install 'cecli[dask]'``.
"""

from __future__ import annotations

import contextlib
import logging
import os

from .errors import CecliError, InputError, OptionError
from .reduce import ScoreState

TASK_BYTES = 64 << 20  # group small files until a task reads about this much
TASK_FILES = 256  # ... or holds this many files
CONNECT_TIMEOUT = "10s"
_INSTALL_HINT = "pip install 'cecli[dask]'"


def plan_tasks(paths: list[str]) -> list[list[tuple[int, str]]]:
    """Group (index, path) pairs into tasks of about :data:`TASK_BYTES`, keeping file order."""
    tasks: list[list[tuple[int, str]]] = []
    current: list[tuple[int, str]] = []
    size = 0
    for index, path in enumerate(paths):
        try:
            size += os.path.getsize(path) if "://" not in path else TASK_BYTES
        except OSError:
            size += 0  # a missing file fails in its task, which names it
        current.append((index, path))
        if size >= TASK_BYTES or len(current) >= TASK_FILES:
            tasks.append(current)
            current, size = [], 0
    if current:
        tasks.append(current)
    return tasks


def run(
    paths: list[str],
    *,
    selection,
    opts,
    read,
    per_class: bool,
    top: int,
    out_dir: str | None,
    extras: bool = True,
    scheduler: str | None,
) -> ScoreState:
    """Score `paths` on a Dask cluster and return the merged state."""
    try:
        from distributed import Client
    except ImportError:
        raise OptionError("--engine dask needs Dask, which is not installed", hint=_INSTALL_HINT) from None
    from .pipeline import score_files

    if out_dir is not None:
        _prepare_out_dir(out_dir)
    tasks = plan_tasks(paths)
    with _cluster(scheduler) as address, Client(address, timeout=CONNECT_TIMEOUT) as client:
        _check_workers(client)
        futures = [
            client.submit(
                score_files,
                files,
                selection=selection,
                opts=opts,
                read=read,
                per_class=per_class,
                top=top,
                extras=extras,
                out_dir=out_dir,
                reference=paths[0],
                key=f"cecli-task-{number}-{os.getpid()}-{id(tasks)}",
                pure=False,
            )
            for number, files in enumerate(tasks)
        ]
        states = []
        for files, future in zip(tasks, futures, strict=True):
            try:
                states.append(_result(client, future))
            except CecliError:
                raise
            except ModuleNotFoundError as error:
                raise OptionError(
                    f"a Dask worker cannot import {error.name or 'cecli'}",
                    hint="install cecli, with the same version, on every worker",
                ) from None
            except OSError as error:
                raise InputError(
                    f"a worker cannot read it: {error}", file=files[0][1], hint="check that workers see the same paths"
                ) from None
    merged = sum(states, ScoreState())
    if out_dir is not None:
        with open(os.path.join(out_dir, "_SUCCESS"), "w"):
            pass
    return merged


def _check_workers(client) -> None:
    """Fail early, and clearly, if a worker cannot import cecli.

    A worker that cannot load the code of a task dies instead of reporting an error, so each worker
    is asked first, with a standard-library function that needs no cecli of its own.
    """
    import importlib.util

    specs = client.run(importlib.util.find_spec, "cecli", on_error="return")
    missing = sorted(worker for worker, spec in specs.items() if spec is None or isinstance(spec, BaseException))
    if missing:
        raise OptionError(
            f"the Dask worker at {missing[0]} cannot import cecli",
            hint="install cecli, with the same version, on every worker",
        )


def _result(client, future, poll: float = 2.0):
    """The future's result; an error instead of waiting forever once the cluster has no workers."""
    from distributed import TimeoutError as DaskTimeout
    from distributed import wait

    while True:
        try:
            wait(future, timeout=poll)
        except (DaskTimeout, TimeoutError):
            if not client.scheduler_info().get("workers"):
                raise OptionError(
                    "the Dask cluster has no workers left",
                    hint="check the worker logs; every worker needs cecli installed",
                ) from None
            continue
        return future.result()


def _prepare_out_dir(out_dir: str) -> None:
    if os.path.exists(out_dir) and (not os.path.isdir(out_dir) or os.listdir(out_dir)):
        raise OptionError(
            f"--out {out_dir} must be a new or empty folder with --engine dask",
            hint="it receives one part-NNNNN.parquet per input file and a _SUCCESS marker",
        )
    os.makedirs(out_dir, exist_ok=True)


@contextlib.contextmanager
def _cluster(scheduler: str | None):
    """Yield a scheduler address: the given one, the environment's, or a private local cluster."""
    address = scheduler or os.environ.get("DASK_SCHEDULER_ADDRESS")
    if address:
        try:
            yield address
        except (OSError, TimeoutError) as error:
            raise InputError(
                f"cannot reach the Dask scheduler at {address}: {error}",
                hint="check --scheduler or DASK_SCHEDULER_ADDRESS",
            ) from None
        return
    from distributed import LocalCluster

    with LocalCluster(
        n_workers=min(os.cpu_count() or 1, 4),
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address="127.0.0.1:0",
        silence_logs=logging.ERROR,
    ) as cluster:
        yield cluster.scheduler_address
