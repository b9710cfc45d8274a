"""Process settings for streaming batches, each with its measured reason.

Applied by whoever owns the process: the command line (``cecli.cli``) and each Dask worker
process (:mod:`cecli.engines.dask_task`); never by a library call in its caller's process.
"""

import gc
import sys


def tune_for_batches() -> None:
    """Settings for a process that streams batches through a reader thread and the math.

    - The reader thread and the math hand the GIL back and forth around every NumPy and
      pyarrow call; with Python's default 5 ms switch interval a thread that wants it may
      wait that long, which made run times vary by half. 0.5 ms (or less, if already set)
      keeps both cores busy.
    - glibc hands allocations above a threshold (128 KiB at first; Dask's nanny fixes it there
      with ``MALLOC_TRIM_THRESHOLD_=65536``) back to the kernel when they are freed, so each
      batch's arrays would be mapped and page-faulted in afresh, which doubles the time of the
      math (a Dask task took about twice the local engine's time per shard). Raised
      thresholds keep up to 64 MiB of freed heap for the next batch, so memory stays bounded
      by the batch size.
    - The command line pauses the garbage collector for its start-up (:mod:`cecli.__main__`);
      it resumes here, with the objects of the start-up (modules, classes, functions) frozen:
      else the first collection would walk them all, the cost the pause saved.
    """
    if not gc.isenabled():
        gc.freeze()
        gc.enable()
    sys.setswitchinterval(min(sys.getswitchinterval(), 0.0005))
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # no C library with mallopt
        return
    mallopt(-3, 32 << 20)  # M_MMAP_THRESHOLD: 32 MiB, glibc's largest on 64-bit
    mallopt(-1, 64 << 20)  # M_TRIM_THRESHOLD: keep up to 64 MiB of free heap
