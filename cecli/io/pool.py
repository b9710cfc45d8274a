"""Decoding on every core: a thread pool sized to the machine that hands results back in order."""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

_Item = TypeVar("_Item")
_Result = TypeVar("_Result")


def cores() -> int:
    """The processors this process may run on (its affinity mask, e.g. under ``taskset``), at least 1."""
    counted = getattr(os, "process_cpu_count", None)  # Python 3.13
    if counted is not None:
        return counted() or 1
    try:
        return len(os.sched_getaffinity(0)) or 1
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def ordered_map(
    work: Callable[[_Item], _Result], items: Iterable[_Item], workers: int, *, name: str
) -> Iterator[_Result]:
    """``map(work, items)`` on `workers` threads, results in the order of `items`.

    At most ``workers + 1`` items are in flight, so memory stays bounded by a few of them. With
    one worker (one core) there is no thread at all. A failure of `work` is raised where its
    result is due, and a failure to produce the next item only after the results of the items
    before it, so that the first bad item in order is the one reported.
    """
    if workers <= 1:
        yield from map(work, items)
        return
    from concurrent.futures import ThreadPoolExecutor

    items = iter(items)
    with ThreadPoolExecutor(workers, thread_name_prefix=name) as pool:
        pending: deque = deque()
        try:
            while True:
                try:
                    item = next(items)
                except StopIteration:
                    break
                except Exception:
                    while pending:  # the items before the failure come first (and may fail first)
                        yield pending.popleft().result()
                    raise
                pending.append(pool.submit(work, item))
                if len(pending) > workers:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            for future in pending:  # stopped early: do not decode what nobody reads
                future.cancel()
