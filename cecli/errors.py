"""One exception hierarchy and the exit codes every part of cecli maps to.

Errors carry the fields their one-line message needs (file, row, column, hint); only
:mod:`cecli.cli` turns them into text on stderr and an exit code.
"""

from __future__ import annotations

from enum import IntEnum


def printable(text: object) -> str:
    """`text` as is when printable, else its ``repr`` (no terminal control codes from data)."""
    text = str(text)
    return text if text.isprintable() else repr(text)


class ExitCode(IntEnum):
    """Process exit codes (DESIGN.md, "Exit codes and errors")."""

    OK = 0
    GATE_FAILED = 1
    USAGE = 2
    BAD_INPUT = 3
    INTERNAL = 4
    INTERRUPTED = 130
    BROKEN_PIPE = 141


class CecliError(Exception):
    """Base of every error cecli reports as one line instead of a traceback.

    Parameters
    ----------
    message : str
        What is wrong, e.g. ``"probability 1.5 is outside [0, 1]"``.
    hint : str, optional
        What to do about it; printed in parentheses after the message.
    file, row, column : optional
        Where the problem is. ``row`` is 1-based as a user counts it (a line of a
        text file, a record of JSON or Parquet).
    """

    exit_code = ExitCode.BAD_INPUT

    def __init__(
        self,
        message: str,
        *,
        hint: str | None = None,
        file: str | None = None,
        row: int | None = None,
        column: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.file = file
        self.row = row
        self.column = column

    def __reduce__(self):
        # Keep file, row, column and hint when an error crosses processes (Dask workers).
        return _rebuild, (type(self), self.message, dict(self.__dict__))

    def locate(self, *, file=None, row=None, column=None) -> CecliError:
        """Fill in location fields that are still unknown and return ``self``."""
        self.file = self.file if self.file is not None else file
        self.row = self.row if self.row is not None else row
        self.column = self.column if self.column is not None else column
        return self

    def __str__(self) -> str:
        where = ":".join(printable(part) for part in (self.file, self.row) if part is not None)
        if self.column is not None:
            column = printable(self.column)
            # FILE:ROW:COLUMN; without a row, say "column" so the name is not read as a row number.
            where = f"{where}:{column}" if self.row is not None else f"{where}: column {column!r}".lstrip(": ")
        text = f"{where}: {printable(self.message)}" if where else printable(self.message)
        return f"{text} ({printable(self.hint)})" if self.hint else text


class InputError(CecliError):
    """The input cannot be read: missing file, unknown format, malformed content."""


class DataError(CecliError, ValueError):
    """The input was read but a value is outside the math's domain (NaN, p > 1, bad label)."""


class CellError(DataError):
    """A bad value at `index` (0-based, within a batch or the array being checked): the one error of a value.

    Readers and writers know the value's column and give its name (`column`); the array checks of
    :mod:`cecli.numerics.validate` know only its position among the checked columns
    (`column_index`), which the scorer turns into a name. Whoever knows the file and the batch's
    first row then fills in the rest with :meth:`~CecliError.locate`, so that one exception
    crosses the layers instead of being translated at each.
    """

    def __init__(
        self, message: str, *, index: int, column: str | None = None, column_index: int = 0, hint: str | None = None
    ) -> None:
        super().__init__(message, hint=hint, column=column)
        self.index = index
        self.column_index = column_index


class StdoutError(CecliError):
    """Standard output cannot be written: a full disk, a closed stream, a reader that went away (exit 3).

    ``errno`` is the operating system's error number; ``EPIPE`` (a pipe closed early, as by
    ``cecli ... | head``) is not an error to report but the quiet exit 141.
    """

    def __init__(self, reason: str, *, errno: int | None = None) -> None:
        super().__init__(f"cannot write the output: {reason}")
        self.errno = errno


class OptionError(CecliError, ValueError):
    """An option value or a combination of options is invalid (a usage error)."""

    exit_code = ExitCode.USAGE


class OutputError(CecliError):
    """``--out`` cannot be written (permission denied, read-only file system, disk full).

    The system refused a write, as for an input that cannot be read: exit 3. A name that
    is wrong on its face (an input, a folder, an unknown extension) is an :class:`OptionError`.
    """


def _rebuild(cls: type, message: str, state: dict) -> CecliError:
    error = cls.__new__(cls)
    Exception.__init__(error, message)
    error.__dict__.update(state)
    return error
