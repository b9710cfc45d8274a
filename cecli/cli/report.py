"""The one map from a failure to its stderr line and exit code (:func:`_report`)."""

import errno
import os
import sys

import typer

from cecli.errors import CecliError, ExitCode, StdoutError

from .process import _Stdout


def _say(kind: str, text: str) -> None:
    """Write ``cecli: KIND: TEXT`` on stderr, with control characters in `text` escaped.

    `text` carries data (column names, paths, values), which must not reach a terminal as
    escape sequences. A stderr that cannot be written (closed, full) is passed over: the
    exit status never depends on whether its message could be written.
    """
    line = "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in text)
    try:
        sys.stderr.write(f"cecli: {kind}: {line}\n")
        sys.stderr.flush()
    except (OSError, ValueError, AttributeError):  # full, closed, or None (fd 2 closed in a test harness)
        pass


def _guarded(run, *args) -> None:
    """Run a command, ``run(*args)``; map every outcome to one stderr line and an exit code (:func:`_report`).

    Inside the command, so that Click never sees the failure: it would turn an ``EPIPE``
    into exit 1, the gate's code.
    """
    try:
        run(*args)
    except BaseException as failure:
        sys.exit(_report(failure))


def _report(failure: BaseException) -> int:
    """The one place that maps a failure to its stderr line and exit code (README, "Exit codes and errors").

    - ``SystemExit``: an outcome already decided (a failed gate: 1; SIGTERM: 128 + 15); passed on.
    - Ctrl-C (``KeyboardInterrupt``, Click's ``Abort``): "interrupted", 130.
    - stdout closed by its reader (EPIPE): nothing on stderr, 141, and later writes go to /dev/null.
    - :class:`CecliError`: its own line and code (2 usage, 3 bad input, 3 stdout cannot be written).
    - Click's usage errors (unknown option, bad option value): one line, 2.
    - anything else is a bug: the traceback, "internal error", 4.
    """
    if isinstance(failure, SystemExit):
        code = failure.code
        return code if isinstance(code, int) else ExitCode.OK if code is None else ExitCode.INTERNAL
    if isinstance(failure, (KeyboardInterrupt, typer.Abort)):
        _say("error", "interrupted")
        return ExitCode.INTERRUPTED
    if isinstance(failure, BrokenPipeError) or isinstance(failure, StdoutError) and failure.errno == errno.EPIPE:
        _silence_stdout()
        return ExitCode.BROKEN_PIPE
    if isinstance(failure, StdoutError):
        _silence_stdout()  # or the final flush would fail, and be reported, again
    if isinstance(failure, CecliError):
        if os.environ.get("CECLI_DEBUG") == "1":
            _print_traceback(failure)
        _say("error", str(failure))
        return failure.exit_code
    if isinstance(failure, Exception) and hasattr(failure, "format_message") and hasattr(failure, "exit_code"):
        context = getattr(failure, "ctx", None)
        where = f" (see '{context.command_path} --help')" if context is not None else ""
        _say("error", failure.format_message() + where)
        return ExitCode.USAGE
    _print_traceback(failure)
    _say("internal error", "this is a bug in cecli; please report it with the traceback above")
    return ExitCode.INTERNAL


def _print_traceback(failure: BaseException) -> None:
    import traceback

    try:
        traceback.print_exception(failure, file=sys.stderr)
    except (OSError, ValueError, AttributeError):  # stderr closed or full: the exit code still tells
        pass


def _silence_stdout() -> None:
    """Discard what is still buffered for stdout, and later writes: it cannot be delivered."""
    raw = getattr(getattr(sys.stdout, "buffer", None), "raw", None)
    if isinstance(raw, _Stdout):
        raw.discard = True
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # not a real file descriptor (in-process test runners)
        pass
