"""Read CSV, TSV, JSON, NDJSON, Parquet, Arrow IPC and NumPy files from a path or stdin into NumPy batches.

Each input is opened once, its columns are listed without reading the data, and the
selected columns are then streamed as :class:`Batch` objects of float64 arrays that
carry the 0-based index of their first record, so that an error can name the row.

Rows in messages are 1-based as a user counts them: the physical line of a CSV/TSV/NDJSON
file, as an editor shows it (the header is line 1; blank lines, which readers skip, count;
quoted fields that span lines are not supported), the record of a JSON document, the row
of a Parquet file. A failure to read or decompress the bytes is an InputError naming the
file wherever it surfaces (see `_Chain`).

pyarrow is imported on first use: a small all-numeric CSV (a shell one-liner) is parsed
without it, which saves about a third of such a command's start-up.
"""

from __future__ import annotations

import io
import os
import sys

from cecli.choices import FORMATS
from cecli.errors import InputError

from .base import STDIN_NAME, ReadSettings, pa
from .csv import CsvInput
from .inputs import Input
from .remote import _filesystem, _remote, _scrub, redact
from .streams import (
    _BOM,
    _COMPRESSIONS,
    _EXTENSIONS,
    _MAGIC,
    ARROW_FILE_MAGIC,
    ARROW_STREAM_MAGIC,
    FEATHER_V1_MAGIC,
    NPY_MAGIC,
    ZIP_MAGIC,
    _decompress,
    _peek,
    _reopen,
)


def _split_extension(path: str) -> tuple[str | None, str | None]:
    """(format, compression) from the file name, e.g. ``x.csv.gz`` -> ("csv", "gzip")."""
    root, ext = os.path.splitext(path.lower())
    compression = _COMPRESSIONS.get(ext)
    if compression:
        root, ext = os.path.splitext(root)
    return _EXTENSIONS.get(ext), compression


def _sniff(head: bytes) -> str:
    if head.startswith(b"PAR1"):
        return "parquet"
    if head.startswith((ARROW_FILE_MAGIC, ARROW_STREAM_MAGIC, FEATHER_V1_MAGIC)):
        return "arrow"
    if head.startswith(NPY_MAGIC):
        return "npy"
    if head.startswith(ZIP_MAGIC):
        return "npz"
    text = head.removeprefix(_BOM).lstrip()
    if text.startswith(b"["):
        return "json"
    if text.startswith(b"{"):
        from .json_values import _json_loads  # the JSON readers load only for JSON input (json: about 1 ms)

        first, _, rest = text.partition(b"\n")
        try:
            _json_loads(first)
        except ValueError:
            return "json"
        return "ndjson" if rest.strip() else "json"
    return "csv"


def open_input(path: str, settings: ReadSettings = ReadSettings(), partitions: dict | None = None) -> Input:
    """Open `path` (``"-"`` for stdin) and list its columns.

    The format comes from `settings.input_format`, else the extension, else the
    content. ``.gz``, ``.bz2`` and ``.zst`` files are decompressed on the fly.
    `partitions` (hive keys from the path, see :func:`~cecli.io.expand.expand_partitioned`)
    become columns after the file's own (:meth:`~cecli.io.inputs.Input.add_partitions`).

    Raises
    ------
    InputError
        If the file cannot be opened or its format is unknown or malformed.
    """
    display = STDIN_NAME if path == "-" else redact(path)
    fmt, codec = (None, None) if path == "-" else _split_extension(path.split("?", 1)[0] if "://" in path else path)
    if settings.input_format:
        if settings.input_format not in FORMATS:
            raise InputError(f"unknown input format {settings.input_format!r}", hint=f"use one of {', '.join(FORMATS)}")
        fmt = settings.input_format
    if "://" in path:
        # The network may not answer: wait where a signal can end the wait. Opening and the first
        # bytes must come within the deadline; reading on (a whole JSON document) may take longer.
        raw = _remote(lambda: _first_bytes(path, display), display)
        opened = _remote(lambda: _open(path, display, fmt, codec, settings, raw), display, deadline=False)
    else:
        opened = _open(path, display, fmt, codec, settings)
    if partitions:
        try:
            opened.add_partitions(partitions)
        except BaseException:
            opened.close()
            raise
    return opened


def _first_bytes(path: str, display: str) -> io.BufferedReader:
    raw = _open_raw(path, display)
    try:
        return _peek(raw, display)[1]
    except BaseException:
        raw.close()
        raise


def _open(path: str, display: str, fmt: str | None, codec: str | None, settings: ReadSettings, raw=None) -> Input:
    raw = raw if raw is not None else _open_raw(path, display)
    try:
        return _open_stream(path, display, raw, fmt, codec, settings)
    except BaseException:
        if raw is not sys.stdin.buffer:
            raw.close()
        raise


def _open_stream(path: str, display: str, raw, fmt: str | None, codec: str | None, settings: ReadSettings) -> Input:
    head, stream = _peek(raw, display)
    if codec is None:
        codec = next((name for magic, name in _MAGIC if head.startswith(magic)), None)
    if codec:
        head, stream = _peek(_decompress(stream, codec), display, codec, beneath=stream)
    fmt = fmt or _sniff(head)
    if not head.strip():
        raise InputError("the input is empty", file=display, hint="give a file with a header and rows of data")
    regular = path != "-" and "://" not in path and os.path.isfile(path)  # not a FIFO, pipe or URL
    reopen = (lambda: _reopen(path, display, codec)) if regular else None
    if fmt == "parquet":
        from .parquet import ParquetInput  # each format's reader loads only for such input (start-up, as below)

        seekable = path if regular and not codec else _url_file(path) if "://" in path and not codec else None
        opened: Input = ParquetInput(display, stream, seekable)
    elif fmt == "arrow":
        from .ipc import IpcInput  # the binary formats' readers load only for such input (start-up)

        opened = IpcInput(display, stream, head, plain_path=path if regular and not codec else None)
    elif fmt == "npy":
        from .npy import NpyInput

        opened = NpyInput(display, stream, plain_path=path if regular and not codec else None, name=_stem(path))
    elif fmt == "npz":
        from .npy import NpzInput

        opened = NpzInput(display, stream, plain_path=path if regular and not codec else None)
    elif fmt == "json":
        from .json import json_input  # with json and its regexes: about 1.4 ms of a CSV one-liner's start-up

        opened = json_input(display, head, stream, reopen, path if regular and not codec else None)
    elif fmt == "ndjson":
        from .ndjson import NdjsonInput

        opened = NdjsonInput(display, head, stream, reopen)
    else:
        delimiter = settings.delimiter or ("\t" if fmt == "tsv" else ",")
        opened = CsvInput(display, head, stream, reopen, delimiter, settings.header)
    opened.raw = raw
    opened.size = os.path.getsize(path) if regular else None
    return opened


def _stem(path: str) -> str:
    """The column name of a ``.npy`` file's array: its file name without the format and compression
    extensions (``logits.npy.gz`` -> ``logits``); ``arr_0`` on stdin, as ``numpy.savez`` names an
    array given without a name.
    """
    if path == "-":
        return "arr_0"
    name = os.path.basename(path.split("?", 1)[0].rstrip("/")) if "://" in path else os.path.basename(path)
    root, ext = os.path.splitext(name)
    if ext.lower() in _COMPRESSIONS:
        root, ext = os.path.splitext(root)
    return os.path.splitext(root)[0] or name


def _open_raw(path: str, display: str):
    """A binary stream for a path, ``-`` (stdin) or a URL pyarrow's filesystems understand."""
    if path == "-":
        return sys.stdin.buffer
    try:
        if "://" in path:
            filesystem, inner = _filesystem(path)
            return filesystem.open_input_stream(inner)
        if os.path.isdir(path):
            raise InputError("is a directory, not a file", file=display, hint="give one file")
        return open(path, "rb")  # noqa: SIM115 - closed by Input.close
    except OSError as error:
        reason = error.strerror or _scrub(str(error), path)
        raise InputError(reason, file=display, hint="check the path") from None
    except pa.ArrowException as error:
        hint = "check the URL and your credentials"
        raise InputError(f"cannot open: {_scrub(str(error), path)}", file=display, hint=hint) from None


def _url_file(url: str):
    """A seekable file for a URL, so Parquet reads only the row groups and columns it needs."""
    filesystem, inner = _filesystem(url)
    return filesystem.open_input_file(inner)
