"""Process settings for a command-line run, each with its measured reason: no pandas import through
pyarrow (:class:`_WithoutPandas`) and the standard streams (:func:`_standard_streams`, :class:`_Stdout`).
The allocator and the thread switch interval are :func:`cecli.engines.tuning.tune_for_batches`, which
Dask's worker processes apply too."""

import errno
import io
import os
import sys

from cecli.errors import StdoutError


class _WithoutPandas:
    """An import hook under which pandas looks not installed.

    pyarrow imports pandas, when it is installed, on its first ``pa.array()`` call (``--out``,
    JSON input): about 0.3 s and 40 MiB. cecli never uses pandas, so the CLI's process does
    without it; the library leaves imports alone.
    """

    def find_spec(self, name: str, path=None, target=None):
        if name == "pandas" or name.startswith("pandas."):
            raise ModuleNotFoundError(f"cecli runs without {name}", name=name)
        return None


def _standard_streams() -> None:
    """Make stdin, stdout and stderr safe to use, whatever state the caller left them in.

    - A closed descriptor 0, 1 or 2 (``<&-``, ``>&-``, ``2>&-``) is opened on /dev/null, so
      that no file cecli opens takes its number. Python has set ``sys.stdin`` to ``None``
      (reading stdin is then a usage error); ``sys.stdout`` fails every write with "stdout is
      closed"; messages to a closed stderr are discarded.
    - stdout writes through :class:`_Stdout`, which writes every byte or raises
      :class:`StdoutError`. Python's own stdout reports a pipe closed in the middle of a large
      write as a short count that ``TextIOWrapper`` ignores, so the rest of the output would be
      lost without an error; and an ``OSError`` would be caught by rich or Click as exit 1.
    - Characters the output encoding cannot represent (``PYTHONIOENCODING=ascii``) are written
      as backslash escapes instead of failing. JSON output is ASCII already (``\\uXXXX``).
    """
    closed = []
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            closed.append(fd)
    for fd in closed:  # in increasing order, so os.open returns `fd` itself; dup2 only as a fallback
        null = os.open(os.devnull, os.O_RDWR)
        if null != fd:
            os.dup2(null, fd)
            os.close(null)
    original = sys.stdout
    sys.stdout = io.TextIOWrapper(
        io.BufferedWriter(_Stdout(closed=1 in closed), 1 << 16),
        encoding=getattr(original, "encoding", None) or "utf-8",
        errors="backslashreplace",
        line_buffering=getattr(original, "line_buffering", False),
    )
    if 2 in closed:
        sys.stderr = open(2, "w", errors="backslashreplace", closefd=False)  # kept open until the process ends


class _Stdout(io.RawIOBase):
    """File descriptor 1 as a raw stream that writes every byte, or raises :class:`StdoutError`.

    Not an ``OSError``: rich's console turns a ``BrokenPipeError`` into ``SystemExit(1)`` and
    Click any ``EPIPE`` into exit 1, the gate's code; :func:`_report` maps this one.
    """

    def __init__(self, *, closed: bool) -> None:
        super().__init__()
        self.unwritable = closed
        self.discard = False  # set once the output has failed: what is left is dropped

    def writable(self) -> bool:
        return True

    def fileno(self) -> int:
        return 1

    def isatty(self) -> bool:
        return os.isatty(1)

    def write(self, data) -> int:
        if self.discard:
            return memoryview(data).nbytes
        if self.unwritable:
            raise StdoutError("stdout is closed", errno=errno.EBADF)
        view = memoryview(data).cast("B")
        size = len(view)
        try:
            while view:
                try:
                    view = view[os.write(1, view) :]
                except BlockingIOError:  # another process sharing the pipe made it non-blocking: wait for room
                    import select

                    select.select([], [1], [])
        except OSError as error:
            raise StdoutError(error.strerror or str(error), errno=error.errno) from None
        return size
