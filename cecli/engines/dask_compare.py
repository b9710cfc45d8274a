"""``cecli compare --engine dask``: A's file i and B's file i are scored together as Dask task i.

Pairing two inputs row by row on a cluster is cheap only when A and B are split the same way
(the same number of files, file i of A holding the same rows as file i of B, as a training
job's sharded outputs usually are); anything else is refused with a usage error (exit 2). Each
task reads its two files in lockstep (:func:`cecli.lockstep._score_pairs`, the local engine's
code) and returns both states and the paired states, which the client adds in file order: the
sums are exact, so the numbers are the local engine's to the last bit.

The resampling tests key their draws by the global row number, which a task knows only once the
rows of the files before it are counted: with ``--bootstrap`` or ``--randomization`` a first
round scores every pair with the normal test (and counts its rows), a second round with the
draws. The normal test needs one round.
"""

from __future__ import annotations

import dataclasses
import os

from cecli.errors import CecliError, InputError, OptionError

from .dask import Cluster, _cancel
from .dask_task import _SAME_PATHS_HINT, _SAME_VERSION_HINT, _stop_if_cancelled, _translated, _worker_name


def run_pairs(job, side_a, side_b, *, scheduler=None, wait_for_workers=None, scheduler_file=None, client=None):
    """Score the file pairs of `side_a` and `side_b` on a Dask cluster; the summed (state A, state B, whole, groups)."""
    cluster = Cluster.of(client, scheduler, scheduler_file, wait_for_workers)
    if len(side_a.files) != len(side_b.files):
        raise OptionError(
            f"--engine dask pairs A's files with B's one by one, but A has {len(side_a.files)} files"
            f" and B {len(side_b.files)}",
            hint="split A and B the same way, or use --engine local",
        )

    def absolute(files):
        return [(index, path if "://" in path else os.path.abspath(path), found) for index, path, found in files]

    pairs = list(zip(absolute(side_a.files), absolute(side_b.files), strict=True))
    with cluster.session() as (client, _):
        first = job if job.test == "normal" else dataclasses.replace(job, test="normal", resamples=None)
        results = _round(client, first, pairs, [0] * len(pairs), side_a.reference)
        if job.test != "normal":
            offsets, total = [], 0
            for state_a, *_ in results:
                offsets.append(total)
                total += state_a.rows
            results = _round(client, job, pairs, offsets, side_a.reference)
    state_a, state_b, whole, groups = results[0]
    for more_a, more_b, more_whole, more_groups in results[1:]:
        state_a, state_b = state_a + more_a, state_b + more_b
        whole = more_whole if whole is None else whole if more_whole is None else whole + more_whole
        for key, part in more_groups.items():
            groups[key] = part if key not in groups else groups[key] + part
    return state_a, state_b, whole, groups


def _round(client, job, pairs, offsets, reference) -> list:
    """One task per file pair; their results in file order (the first failure ends the round)."""
    from distributed import as_completed

    from cecli import __version__

    futures = [
        client.submit(
            _pair_task,
            job,
            file_a,
            file_b,
            offset,
            reference,
            client_version=__version__,
            client_pid=os.getpid(),
            pure=False,
        )
        for (file_a, file_b), offset in zip(pairs, offsets, strict=True)
    ]
    number = {future.key: n for n, future in enumerate(futures)}
    done = False
    try:
        for future in as_completed(futures):
            if future.status == "error":
                file_a, file_b = pairs[number[future.key]]
                raise _translated(future.exception(), [file_a[:2], file_b[:2]])
            if future.status != "finished":
                raise InputError("a Dask task was cancelled (the cluster lost its workers?)", file=pairs[0][0][1])
        results = [future.result() for future in futures]
        done = True
        return results
    finally:
        if not done and client.status == "running":
            _cancel(client, futures)


def _pair_task(job, file_a, file_b, first_row, reference, *, client_version: str, client_pid: int):
    """A task: read A's and B's file in lockstep (on a worker) and return their states."""
    from cecli import __version__, lockstep

    if os.getpid() != client_pid:
        from .dask_task import _tune_worker_process

        _tune_worker_process()
    if client_version != __version__:
        raise OptionError(
            f"the Dask worker at {_worker_name()} has cecli {__version__}, this client has cecli {client_version}",
            hint=_SAME_VERSION_HINT,
        )
    for _, path, _ in (file_a, file_b):
        if "://" not in path and not os.path.exists(path):
            raise InputError(f"a Dask worker ({_worker_name()}) cannot see this file", file=path, hint=_SAME_PATHS_HINT)
    side_a = lockstep._Side([file_a], job.read)
    side_b = lockstep._Side([file_b], job.read)
    side_a.checked = job.selection
    side_b.checked = job.checked_b
    side_a.reference = side_b.reference = reference
    readers: list = []
    try:
        _stop_if_cancelled()
        return lockstep._score_pairs(job, side_a, side_b, None, readers, first_row)
    except CecliError:
        raise
    except Exception as error:  # sent back as one line (see cecli.engines.dask._task)
        raise _translated(error, [file_a[:2], file_b[:2]]) from None
    finally:
        side_a.close()
        side_b.close()
