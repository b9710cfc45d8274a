"""The optional Dask engine: score groups of files as tasks on a Dask cluster.

Each task runs cecli's own reader and NumPy core on its files
(:func:`cecli.files.score_files`, which reads in one thread and computes in another)
and returns a :class:`~cecli.numerics.reduce.ScoreState`. The states are merged on the workers, each
finished range of tasks with its finished neighbours, so the client receives one state; the
sums inside are exact and merged in file order, so the result is the local engine's to the
last bit, and the same from run to run.

The cluster is, in order: a ``distributed.Client`` passed in (Python API), ``scheduler``
(``--scheduler``), the address in ``scheduler_file`` (``--scheduler-file``),
``DASK_SCHEDULER_ADDRESS``, or a private local cluster of worker processes bound to 127.0.0.1 (dashboard on a free
loopback port), closed when the computation ends. Needs ``pip install 'cecli[dask]'``.

The client waits for tasks in the order they finish: the first failed task ends the run,
the other tasks are cancelled, and the client waits (at most :data:`STOP_WAIT` seconds)
until none of them still runs, so no ``--out`` part appears after cecli has exited. A task
checks before each batch, and before it renames a part into place, whether it has been
cancelled (which also happens when the client goes away).

Under ``--bootstrap`` each row's draws are keyed by its global row number, so a task must know
the first global row of each of its files. When the files make more than one task, a first pass
of tasks counts the rows of every file (reading them as scoring does:
:func:`cecli.files.count_rows`), the client adds the counts up in file order, and the second
pass scores each file from its first row. The input is then read twice; ``--ci`` without
``--bootstrap`` (exact sums, no draws) and a single task need no first pass.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import re
import sys
import threading
import time
from dataclasses import dataclass

from cecli.errors import CecliError, InputError, OptionError, OutputError, printable
from cecli.numerics.reduce import ScoreState

from .dask_cluster import _address, _check_client, _cluster, _connected
from .dask_task import _SAME_VERSION_HINT, _merged, _running_keys, _task, _translated

TASK_BYTES = 64 << 20  # group small files until a task reads about this much


TASK_FILES = 256  # ... or holds this many files


WAIT_FOR_WORKERS = 60.0  # default seconds to wait for a first worker (and for one to come back)


STOP_WAIT = 10.0  # seconds to wait, after a failure, for cancelled tasks to stop


WATCH_INTERVAL = 1.0  # seconds between two looks at the number of workers during a run


_INSTALL_HINT = "pip install 'cecli[dask]'"


# Resolved on each worker by the standard library's pkgutil.resolve_name: a function of cecli's own
# could not even be loaded on a worker whose cecli lacks it (an older version) or that has no cecli.
_WORKER_VERSION = "cecli:__version__"


# What cecli may remove from an --out folder left by a failed run: its own parts and their temporary files.
_OWN_PART = re.compile(r"part-\d{5}\.parquet|\.part-\d{5}\.parquet\.[^/]*\.tmp")


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


@dataclass(frozen=True)
class Cluster:
    """Where to run: a connected client passed in, or a scheduler address and the option it came from."""

    client: object | None
    address: str | None
    option: str
    wait: float

    @classmethod
    def of(cls, client, scheduler, scheduler_file, wait_for_workers) -> Cluster:
        """Checked before anything is read or written: Dask installed, the client connected, the address well formed.

        The values and their combination were checked by :meth:`cecli.plan.Plan.build` (wait >= 0, one cluster).
        """
        client_class = _client_class()
        wait = WAIT_FOR_WORKERS if wait_for_workers is None else wait_for_workers
        if client is not None:
            _check_client(client, client_class)
            return cls(client, None, "", wait)
        return cls(None, *_address(scheduler, scheduler_file), wait)

    @contextlib.contextmanager
    def session(self):
        """``(client, address)`` of a cluster with a worker: the client passed in (left open), or a connection
        to the address (or to a private local cluster), closed on leaving."""
        with contextlib.ExitStack() as stack:
            stack.enter_context(_quiet_dask_logs())
            if self.client is not None:
                client, address = self.client, self.client.scheduler.address
            else:
                address = stack.enter_context(_cluster(self.address, self.option))
                client = stack.enter_context(_connected(_client_class(), address, self.option))
            _wait_for_first_worker(client, address, self.wait)
            _check_workers(client)
            yield client, address


def _client_class():
    try:
        from distributed import Client
    except ImportError:
        raise OptionError("--engine dask needs Dask, which is not installed", hint=_INSTALL_HINT) from None
    return Client


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
    wait_for_workers: float | None = None,
    scheduler_file: str | None = None,
    client=None,
    partitions: list[dict] | None = None,
    interval=None,
) -> ScoreState:
    """Score `paths` on a Dask cluster and return the merged state.

    `partitions`, if given, holds each path's hive keys: they travel with the path in its
    task, since a worker sees only the file, not the folder it was found in.

    The cluster is `client` (a connected ``distributed.Client``, left open), else `scheduler`
    (an address), else the address in `scheduler_file` (Dask's scheduler file), else
    ``DASK_SCHEDULER_ADDRESS``, else a private local cluster. Local paths and `out_dir` are
    made absolute here, on the client: workers resolve a relative path in their own working
    directory. `wait_for_workers` (default :data:`WAIT_FOR_WORKERS`) bounds the wait for a
    first worker, and for one to come back when all have left mid-run.
    """
    cluster = Cluster.of(client, scheduler, scheduler_file, wait_for_workers)
    if out_dir is not None:
        out_dir = _prepare_out_dir(out_dir)
    paths = [path if "://" in path else os.path.abspath(path) for path in paths]
    tasks = plan_tasks(paths)
    if partitions and any(partitions):
        tasks = [[(index, path, partitions[index]) for index, path in task] for task in tasks]
    with cluster.session() as (client, address):
        wait = cluster.wait
        file_starts = None
        if interval is not None and interval.method == "bootstrap" and len(tasks) > 1:
            counted = _run_tasks(client, address, tasks, wait, reference=paths[0], out_dir=None, count_only=True,
                                 selection=selection, opts=opts, read=read)  # fmt: skip
            file_starts = list(
                itertools.accumulate((counted.file_rows.get(i, 0) for i in range(len(paths))), initial=0)
            )
        merged = _run_tasks(client, address, tasks, wait, reference=paths[0], out_dir=out_dir,
                            selection=selection, opts=opts, read=read, per_class=per_class, top=top,
                            extras=extras, interval=interval, file_starts=file_starts)  # fmt: skip
    if out_dir is not None:
        _remove_temporary_parts(out_dir)  # of a worker killed mid-part, whose task ran again elsewhere
        try:
            with open(os.path.join(out_dir, "_SUCCESS"), "w"):
                pass
        except OSError as error:
            raise _out_refused(error, out_dir) from None
    return merged


def _run_tasks(client, address: str, tasks, wait: float, *, reference: str, out_dir, **options) -> ScoreState:
    """Submit one task per group of files and merge their states on the workers; the merged state.

    As tasks finish, each finished range of neighbouring tasks is merged with the finished ranges
    right before and after it, by a task on the workers (:func:`_merged`, left to right), so the
    client receives one state and never more than one at a time. Merging only neighbours, in
    file order, gives the left-to-right sum's result to the bit, whatever the order the tasks
    finish in: ``+`` on states is exact and associative. The first failure ends the run.
    """
    from distributed import as_completed

    from cecli import __version__

    if not tasks:
        return ScoreState()
    run_id = f"{os.getpid()}-{time.monotonic_ns()}"
    span: dict[str, tuple[int, int]] = {}  # key -> the range of tasks [first, last + 1) it holds
    live: dict[str, object] = {}  # key -> future, for every future not yet merged into another
    for number, files in enumerate(tasks):
        future = client.submit(
            _task,
            files,
            client_version=__version__,
            client_pid=os.getpid(),
            reference=reference,
            out_dir=out_dir,
            **options,
            key=f"cecli-task-{number}-{run_id}",
            pure=False,
        )
        span[future.key], live[future.key] = (number, number + 1), future
    ending: dict[int, object] = {}  # finished ranges by the end of their range ...
    starting: dict[int, object] = {}  # ... and by their start
    pending = as_completed(list(live.values()))
    watch = _Watch(client, live, address, wait)
    merged = None
    try:
        watch.start()
        for future in pending:
            if future.status == "error":
                raise _translated(future.exception(), tasks[span[future.key][0]])
            if future.status != "finished":
                raise watch.reason()  # cancelled: no worker for too long, or the scheduler is gone
            first, end = span[future.key]
            parts = [ending.pop(first, None), future, starting.pop(end, None)]
            parts = [part for part in parts if part is not None]
            for part in parts:
                starting.pop(span[part.key][0], None)
                ending.pop(span[part.key][1], None)
            first, end = span[parts[0].key][0], span[parts[-1].key][1]
            if len(parts) > 1:
                future = client.submit(_merged, *parts, key=f"cecli-merge-{first}-{end}-{run_id}", pure=False)
                span[future.key], live[future.key] = (first, end), future
                for part in parts:
                    del live[part.key]  # held by the merge task until it has run
                pending.add(future)
            elif (first, end) == (0, len(tasks)):
                merged = future.result()
            else:
                starting[first], ending[end] = future, future
    except _lost_scheduler_errors():  # evaluated only once an exception is raised
        raise watch.reason() from None
    finally:
        watch.stop()
        if merged is None and client.status == "running":  # else the scheduler is gone, and the tasks with it
            _cancel(client, list(live.values()))
        if merged is None and out_dir is not None:
            _remove_temporary_parts(out_dir)
    return merged


def _cancel(client, futures) -> None:
    """Cancel `futures` and wait, at most :data:`STOP_WAIT` s, until no worker still runs one of them."""
    keys = {future.key for future in futures}
    with contextlib.suppress(Exception):  # the scheduler may be gone: nothing to cancel then
        client.cancel(futures, force=True)
        deadline = time.monotonic() + STOP_WAIT
        while time.monotonic() < deadline:
            running = client.run(_running_keys, keys, on_error="return")
            if not any(isinstance(found, list) and found for found in running.values()):
                return
            time.sleep(0.05)


class _Watch:
    """Watches the number of workers while tasks run.

    When the cluster has had no worker for `wait` seconds the run is cancelled (so that
    ``as_completed`` returns); meanwhile a line on stderr says that cecli is waiting.
    """

    def __init__(self, client, futures: dict, address: str, wait: float) -> None:
        # `futures` (key -> future) changes while the watch runs: it is copied in one step before use.
        self.client, self.futures, self.address, self.wait = client, futures, address, wait
        self.expired = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="cecli-dask-watch", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _watch(self) -> None:
        since = None
        while not self._stop.wait(WATCH_INTERVAL):
            try:
                if self.client.status != "running":
                    raise ConnectionError(self.client.status)
                info = self.client.scheduler_info(n_workers=1)
            except Exception:
                # The scheduler is gone, and the run with it: a scheduler that comes back has
                # forgotten every task. Closing the client cancels the futures at once, instead
                # of after Dask's attempts to reconnect.
                with contextlib.suppress(Exception):
                    self.client.close(timeout=1)
                return
            if info.get("n_workers", len(info.get("workers", ()))):
                since = None
            elif since is None:
                since = time.monotonic()
                _notice(f"the Dask cluster has no workers; waiting up to {self.wait:g} s for one")
            elif time.monotonic() - since >= self.wait:
                self.expired = True
                with contextlib.suppress(Exception):
                    self.client.cancel(list(self.futures.values()))
                return

    def reason(self) -> CecliError:
        """The error for futures that were cancelled under cecli's feet."""
        if self.expired:
            return OptionError(
                f"the Dask cluster has had no workers for {self.wait:g} s",
                hint="check the worker logs, or wait longer with --wait-for-workers SECONDS",
            )
        return InputError(
            f"lost the Dask scheduler at {self.address} during the run",
            hint="check the scheduler's log; rerun when it is back",
        )


def _lost_scheduler_errors() -> tuple[type[BaseException], ...]:
    """Dask's errors for futures cancelled because the scheduler went away (used in ``except``)."""
    from distributed.client import CancelledError
    from distributed.comm import CommClosedError

    return (CancelledError, CommClosedError)


@contextlib.contextmanager
def _quiet_dask_logs():
    """Keep Dask's own log lines (a lost connection, a failed task) off stderr during the run.

    cecli reports each of those as its one error line. Dask logs through the handlers of the
    ``distributed`` logger, which does not propagate; they get a filter that drops every record.
    """
    handlers = list(logging.getLogger("distributed").handlers)
    for handler in handlers:
        handler.addFilter(_drop)
    try:
        yield
    finally:
        for handler in handlers:
            handler.removeFilter(_drop)


def _drop(record: logging.LogRecord) -> bool:
    return False


def _notice(text: str) -> None:
    """A line on stderr while cecli waits (the library has no other channel during a blocking call)."""
    with contextlib.suppress(OSError, ValueError):
        print(f"cecli: {text}", file=sys.stderr, flush=True)


def _wait_for_first_worker(client, address: str, wait: float) -> None:
    info = client.scheduler_info(n_workers=1)
    if info.get("n_workers", len(info.get("workers", ()))):
        return
    _notice(f"waiting up to {wait:g} s for a first worker to join the Dask scheduler at {address}")
    from distributed import TimeoutError as DaskTimeout

    try:
        client.wait_for_workers(1, timeout=wait)
    except (DaskTimeout, TimeoutError):
        raise OptionError(
            f"no worker joined the Dask scheduler at {address} within {wait:g} s",
            hint="start workers, or wait longer with --wait-for-workers SECONDS",
        ) from None
    except OSError:  # the connection to the scheduler closed while waiting
        raise InputError(
            f"lost the Dask scheduler at {address} while waiting for a worker", hint="check the scheduler's log"
        ) from None


def _check_workers(client) -> None:
    """Fail early, and clearly, if the scheduler or a worker cannot import cecli or has another version.

    The scheduler deserializes each task and a worker runs it, so both need the client's cecli; a
    worker that cannot load the code of a task dies instead of reporting an error. So each is asked
    first, with a standard-library function that needs no cecli of its own.
    """
    import pkgutil

    from cecli import __version__

    try:
        versions = {"scheduler": client.run_on_scheduler(pkgutil.resolve_name, _WORKER_VERSION)}
    except Exception as error:  # the error raised on the scheduler, sent back
        versions = {"scheduler": error}
    versions.update(sorted(client.run(pkgutil.resolve_name, _WORKER_VERSION, on_error="return").items()))
    for name, version in versions.items():
        where = "the Dask scheduler" if name == "scheduler" else f"the Dask worker at {name}"
        if isinstance(version, BaseException):
            raise OptionError(f"{where} cannot import cecli", hint=_SAME_VERSION_HINT)
        if version != __version__:
            raise OptionError(
                f"{where} has cecli {printable(version)}, this client has cecli {__version__}",
                hint=_SAME_VERSION_HINT,
            )


def _remove_temporary_parts(out_dir: str) -> None:
    """Remove the hidden temporary files of parts once no task of this run writes any more."""
    with contextlib.suppress(OSError):
        for name in os.listdir(out_dir):
            if name.startswith(".") and _OWN_PART.fullmatch(name):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(os.path.join(out_dir, name))


def _prepare_out_dir(out_dir: str) -> str:
    """Make `out_dir` absolute and ready: new, empty, or left by a failed run (no ``_SUCCESS``).

    From a failed run's folder only cecli's own files are removed: ``part-NNNNN.parquet`` and the
    hidden temporary files of such parts. A folder with anything else, or with ``_SUCCESS``, is refused
    (exit 2); a folder the system will not let cecli read, clear or create (permission denied, a
    read-only file system) is an :class:`~cecli.errors.OutputError` (exit 3).
    """
    if "://" in out_dir:
        from cecli.io.remote import redact

        raise OptionError(
            f"--out {redact(out_dir)}: the Dask engine writes to a folder path, not a URL",
            hint="give a folder every worker sees, e.g. on a shared file system",
        )
    out_dir = os.path.abspath(out_dir)
    try:
        if os.path.exists(out_dir):
            if not os.path.isdir(out_dir):
                raise OptionError(f"--out {out_dir} is a file, not a folder", hint="give a new or empty folder")
            names = os.listdir(out_dir)
            if "_SUCCESS" in names:
                raise OptionError(
                    f"--out {out_dir} holds the result of a finished run (_SUCCESS)",
                    hint="remove it or give another folder",
                )
            foreign = sorted(name for name in names if not _OWN_PART.fullmatch(name))
            if foreign:
                raise OptionError(
                    f"--out {out_dir} holds {foreign[0]!r}, which cecli did not write",
                    hint="give a new or empty folder, or one left by a failed cecli run",
                )
            for name in names:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(os.path.join(out_dir, name))
        os.makedirs(out_dir, exist_ok=True)
    except OSError as error:
        raise _out_refused(error, out_dir) from None
    return out_dir


def _out_refused(error: OSError, out_dir: str) -> OutputError:
    """The one line for a folder `out_dir` the system refuses to let cecli read, clear, create or fill."""
    reason = os.strerror(error.errno) if error.errno else str(error)
    return OutputError(f"cannot write --out: {reason}", file=out_dir, hint="choose another folder")
