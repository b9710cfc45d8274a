"""Read CSV, TSV, JSON, NDJSON and Parquet from a path or stdin into NumPy batches.

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

import bisect
import csv
import io
import json
import math
import os
import re
import sys
from array import array as _typed_array
from collections import Counter, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np

from .columns import Column, Selection
from .errors import CecliError, DataError, InputError, OptionError, printable

FORMATS = ("csv", "tsv", "json", "ndjson", "parquet")
DEFAULT_BATCH_ROWS = 1 << 16
STDIN_NAME = "<stdin>"

_EXTENSIONS = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".json": "json",
    ".ndjson": "ndjson",
    ".jsonl": "ndjson",
    ".parquet": "parquet",
    ".pq": "parquet",
}
_COMPRESSIONS = {".gz": "gzip", ".bz2": "bz2", ".zst": "zstd", ".zstd": "zstd"}
_MAGIC = ((b"\x1f\x8b", "gzip"), (b"BZh", "bz2"), (b"\x28\xb5\x2f\xfd", "zstd"))
_HEAD_BYTES = 1 << 16
_BOM = b"\xef\xbb\xbf"


class _LazyPyarrow:
    """Stands in for the ``pa`` module until first used, then imports pyarrow and replaces itself.

    pyarrow takes about 35 ms to import (its .compute, .csv, .json and .parquet parts, imported
    where used, about 50 ms more), and a small CSV one-liner needs none of it.
    """

    def __getattr__(self, name: str):
        import pyarrow

        globals()["pa"] = pyarrow
        return getattr(pyarrow, name)


pa = _LazyPyarrow()

_NUMBER = re.compile(r"^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$|^\s*[-+]?(nan|inf|infinity)\s*$", re.I)
_SELECT_HINT = "check the file, or choose other columns with -y/-p"
_MISSING_HINT = "fill in every cell, or drop the row"


@dataclass(frozen=True)
class ReadSettings:
    """How to read an input: forced format, delimiter, header mode and batch size."""

    input_format: str | None = None
    delimiter: str | None = None
    header: bool | None = None  # None: a first row of numbers only is data, anything else is a header
    batch_rows: int = DEFAULT_BATCH_ROWS


@dataclass
class Batch:
    """Arrays of one batch of records (float64 or float32; integer class labels stay integers).

    `offset` is the index of its first record.
    """

    offset: int
    size: int
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    keep: dict[str, list] = field(default_factory=dict)  # JSON values (see _json_value)
    groups: dict[str, tuple[np.ndarray, list]] = field(default_factory=dict)  # codes, distinct keys (_group_key)
    kept: dict[str, pa.Array] = field(default_factory=dict)  # typed --keep columns as read, for a Parquet --out
    nonfinite: dict[str, int] = field(default_factory=dict)  # NaN/inf kept or grouped values, turned into None


class CellError(DataError):
    """A bad value at `index` (0-based within a batch) of a named column."""

    def __init__(self, message: str, *, index: int, column: str, hint: str | None = None) -> None:
        super().__init__(message, hint=hint, column=column)
        self.index = index


# --------------------------------------------------------------------------- bytes


class _Lines:
    r"""Where the records of a line-based text stream are, noted as its bytes stream past.

    Readers skip blank lines (CSV: empty lines; NDJSON: whitespace-only lines too), so the
    n-th record is not always on line n. This notes the physical line numbers of the skipped
    lines as the bytes go by (the text is scanned in C, line by line only in a chunk with a
    blank line or a lone ``\r``), so an error maps a record back to the line an editor shows,
    also for stdin, which cannot be read twice. Line ends are ``\n``, ``\r\n`` and a lone
    ``\r``, as pyarrow's readers take them.
    """

    def __init__(self, *, whitespace_is_blank: bool) -> None:
        # 1-based physical lines without a record, ascending (8 bytes each: a stream may hold many)
        self.skipped = _typed_array("q")
        self._lines = 0  # complete lines seen
        self._strip = b" \t\r\n" if whitespace_is_blank else b"\r\n"
        # A chunk without a match has no blank line (NDJSON: a line starting with whitespace is rare).
        self._blank = re.compile(rb"\n[\n \t]" if whitespace_is_blank else rb"\n\n")
        self._carry = b""  # the incomplete last line (b"x" for one known not to be blank)
        self._start = True  # a byte-order mark at the start is not part of the first line

    def feed(self, data: bytes) -> None:
        """Note the lines in the next bytes of the stream."""
        if self._start and data:
            self._start = False
            data = data.removeprefix(_BOM)
        if not data:
            return
        open_blank = not self._carry.strip(self._strip)  # the current line may still turn out blank
        first = data.find(b"\n")
        if (
            b"\r" not in data
            and b"\r" not in self._carry
            and not (open_blank and self._blank.search(b"\n" + self._carry + data[: first + 1 if first >= 0 else None]))
            and not self._blank.search(data)
        ):  # the common case: no blank line and no \r line end in this chunk
            self._lines += data.count(b"\n")
            last = data.rfind(b"\n")
            tail = self._carry + data if last < 0 and open_blank else data[last + 1 :] if last >= 0 else b"x"
        else:
            lines = (self._carry + data).splitlines(keepends=True)  # bytes split at \n, \r\n and \r only
            # The last piece is incomplete unless it ends in \n (after a final \r a \n may follow).
            tail = lines.pop() if lines and not lines[-1].endswith(b"\n") else b""
            for line in lines:
                self._lines += 1
                if not line.strip(self._strip):
                    self.skipped.append(self._lines)
        if tail.strip(self._strip):  # not blank: only whether it ends in \r matters
            tail = b"x\r" if tail.endswith(b"\r") else b"x"
        self._carry = tail

    @property
    def records(self) -> int:
        """Complete lines seen that are not skipped."""
        return self._lines - len(self.skipped)

    def line_of(self, record: int) -> int:
        """The 1-based physical line of the 0-based `record`-th line that is not skipped.

        That is the least line L with L = record + 1 + (skipped lines up to L), reached by
        iterating from below.
        """
        line, before = record + 1, 0
        while (count := bisect.bisect_right(self.skipped, line)) != before:
            line, before = record + 1 + count, count
        return line


class _Chain(io.RawIOBase):
    """A byte stream that replays a peeked `head` and then reads on from `rest`.

    Every input is read through one (see `_peek`), so a failure to read or decompress
    `rest` becomes an :class:`InputError` naming the file, wherever it surfaces: at open,
    inside pyarrow's readers or in the prefetch thread (which re-raises it in order).
    """

    def __init__(self, head: bytes, rest, display: str, codec: str | None = None, beneath=None) -> None:
        self._head = memoryview(head)
        self._rest = rest
        self._display = display
        self._codec = codec
        self._beneath = beneath  # the compressed stream: gzip and bz2 file objects leave it open
        self.lines: _Lines | None = None  # set by a line-based reader of a stream it cannot reopen

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        if not self.closed and self._rest is not sys.stdin.buffer:
            self._rest.close()
            if self._beneath is not None:
                self._beneath.close()
        super().close()

    def readinto(self, buffer) -> int:
        if self._head.nbytes:
            n = min(len(buffer), self._head.nbytes)
            buffer[:n] = self._head[:n]
            if self.lines is not None:
                self.lines.feed(self._head[:n].tobytes())
            self._head = self._head[n:]
            return n
        data = _read_some(self._rest, len(buffer), self._display, self._codec)
        buffer[: len(data)] = data
        if self.lines is not None:
            self.lines.feed(data)
        return len(data)


_CODEC_TOOLS = {"gzip": "gzip", "bz2": "bzip2", "zstd": "zstd"}


def _read_some(stream, size: int, display: str, codec: str | None) -> bytes:
    """Up to `size` bytes of `stream`; a read or decompression failure is an InputError naming `display`.

    A compressed file cut short ends in EOFError (gzip, bz2) or OSError "Truncated compressed
    stream" (zstd); a damaged one in BadGzipFile (an OSError, e.g. a bad CRC), zlib.error or
    OSError "Invalid data stream" (bz2). Errors of the file underneath were already turned
    into an InputError by the inner stream, which these codecs pass on unchanged.
    """
    import zlib

    try:
        return stream.read1(size) if hasattr(stream, "read1") else stream.read(size)
    except (OSError, EOFError, zlib.error) as error:
        detail = str(error) or type(error).__name__
        if codec is None:
            raise InputError(
                f"cannot read: {getattr(error, 'strerror', None) or detail}", file=display, hint="check the file"
            ) from None
        tool = _CODEC_TOOLS[codec]
        raise InputError(
            f"truncated or corrupt {codec} data: {detail}",
            file=display,
            hint=f"test it with `{tool} -t`, then copy or download it again",
        ) from None


def _peek(stream, display: str, codec: str | None = None, beneath=None) -> tuple[bytes, io.BufferedReader]:
    """Read up to 64 KiB (more until a newline, for a whole first line) and rewind.

    `codec` names the compression `stream` decodes (for messages), `beneath` the stream it reads from.
    """
    size = _HEAD_BYTES
    parts, total = [], 0
    while total < size or (b"\n" not in b"".join(parts) and total < 16 * size):
        chunk = _read_some(stream, size, display, codec)
        if not chunk:
            break
        parts.append(chunk)
        total += len(chunk)
    head = b"".join(parts)
    return head, io.BufferedReader(_Chain(head, stream, display, codec, beneath), buffer_size=1 << 20)


def _decompress(stream, codec: str):
    if codec == "gzip":
        import gzip

        return gzip.GzipFile(fileobj=stream)
    if codec == "bz2":
        import bz2

        return bz2.BZ2File(stream)
    return pa.CompressedInputStream(pa.PythonFile(stream, mode="r"), "zstd")


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
    text = head.removeprefix(_BOM).lstrip()
    if text.startswith(b"["):
        return "json"
    if text.startswith(b"{"):
        first, _, rest = text.partition(b"\n")
        try:
            _json_loads(first)
        except ValueError:
            return "json"
        return "ndjson" if rest.strip() else "json"
    return "csv"


def open_input(path: str, settings: ReadSettings = ReadSettings()) -> Input:
    """Open `path` (``"-"`` for stdin) and list its columns.

    The format comes from `settings.input_format`, else the extension, else the
    content. ``.gz``, ``.bz2`` and ``.zst`` files are decompressed on the fly.

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
        return _remote(lambda: _open(path, display, fmt, codec, settings, raw), display, deadline=False)
    return _open(path, display, fmt, codec, settings)


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
        seekable = path if regular and not codec else _url_file(path) if "://" in path and not codec else None
        opened: Input = ParquetInput(display, stream, plain_path=seekable)
    elif fmt == "json":
        opened = JsonInput(display, stream)
    elif fmt == "ndjson":
        opened = NdjsonInput(display, head, stream, reopen)
    else:
        delimiter = settings.delimiter or ("\t" if fmt == "tsv" else ",")
        opened = CsvInput(display, head, stream, reopen, delimiter, settings.header)
    opened.raw = raw
    opened.size = os.path.getsize(path) if regular else None
    return opened


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


# Remote reads. A cloud client left to its defaults may retry for minutes (GCS without credentials
# retries its token request for ever) inside a C++ call that Python's signal handlers cannot
# interrupt. So every remote filesystem is built with bounded waits, and every call that opens,
# lists or peeks at a URL runs in a worker thread while the main thread waits on an event, where
# SIGINT and SIGTERM are handled and a deadline ends the wait. The CLI ends with os._exit, so a
# worker still blocked in the network does not keep the process alive.

REMOTE_TIMEOUT = 20.0  # seconds; CECLI_REMOTE_TIMEOUT overrides it
_S3_QUERY = {"region", "scheme", "endpoint_override", "tls_ca_file_path"}
_S3_FLAGS = {"allow_bucket_creation", "allow_bucket_deletion", "allow_delayed_open"}
_SECRET_KEY = re.compile(r"secret|token|passw|key|signature|credential|^sig$", re.I)


def remote_timeout() -> float:
    """Seconds one remote connection or request may take: ``CECLI_REMOTE_TIMEOUT``, else 20.

    S3 makes at most 2 attempts of a request, GCS stops retrying after this time, and
    listing a URL, or opening it until its first bytes arrive, gives up after 3 times this.
    """
    text = os.environ.get("CECLI_REMOTE_TIMEOUT")
    if text is None:
        return REMOTE_TIMEOUT
    try:
        seconds = float(text)
    except ValueError:
        seconds = math.nan
    if not (0 < seconds < math.inf):
        raise OptionError(f"CECLI_REMOTE_TIMEOUT must be a number of seconds > 0; received {text!r}")
    return seconds


def _filesystem(url: str):
    """(pyarrow filesystem, path inside it) for a URL, with bounded network waits.

    Options in the URL's query are kept; the bounds are added where the user gave none.
    """
    from pyarrow import fs

    seconds = remote_timeout()
    scheme, _, rest = url.partition("://")
    if scheme.lower() in ("gs", "gcs") and not re.search(r"[?&]retry_limit_seconds=", rest):
        url += ("&" if "?" in rest else "?") + f"retry_limit_seconds={max(1, round(seconds))}"
    elif scheme.lower() == "s3":
        s3 = _s3_filesystem(url, seconds)
        if s3 is not None:
            return s3
    return fs.FileSystem.from_uri(url)


def _s3_filesystem(url: str, seconds: float):
    """An S3 filesystem with bounded connect/request times and 2 attempts, as ``from_uri`` would build it.

    ``from_uri`` takes no timeouts, and its defaults waited 100 s on an endpoint that never
    answers. ``None`` for a query option only ``from_uri`` knows (then the deadline still holds).
    """
    from urllib.parse import parse_qsl, unquote, urlsplit

    from pyarrow import fs

    parts = urlsplit(url)
    options: dict = {}
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key in _S3_QUERY:
            options[key] = value
        elif key in _S3_FLAGS:
            options[key] = value.lower() in ("1", "true", "yes")
        else:
            return None
    authority = parts.netloc
    if "@" in authority:
        userinfo, authority = authority.rsplit("@", 1)
        key, _, secret = userinfo.partition(":")
        options.update(access_key=unquote(key), secret_key=unquote(secret))
    bucket = authority
    if "region" not in options and "endpoint_override" not in options and bucket:
        options["region"] = fs.resolve_s3_region(bucket)  # as from_uri does
    filesystem = fs.S3FileSystem(
        connect_timeout=seconds,
        request_timeout=seconds,
        retry_strategy=fs.AwsStandardS3RetryStrategy(max_attempts=2),
        **options,
    )
    return filesystem, (bucket + unquote(parts.path)).rstrip("/")


def _remote(call: Callable, display: str, *, deadline: bool = True):
    """``call()`` in a worker thread, waited for so that signals work and (with `deadline`) a deadline holds."""
    import threading
    import time

    limit = 3 * remote_timeout() if deadline else math.inf
    outcome: dict = {}
    done = threading.Event()

    def work() -> None:
        try:
            outcome["value"] = call()
        except BaseException as error:  # re-raised in the caller's thread
            outcome["error"] = error
        finally:
            done.set()

    threading.Thread(target=work, name="cecli-remote", daemon=True).start()
    start = time.monotonic()
    # Short waits: a signal delivered to another thread is handled at the next wake-up.
    while not done.wait(0.1):
        if time.monotonic() - start < limit:
            continue
        raise InputError(
            f"no answer within {limit:g} s",
            file=display,
            hint="check the URL and the network; CECLI_REMOTE_TIMEOUT sets the wait",
        )
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def redact(path: str) -> str:
    """`path` with credentials hidden: a URL's userinfo and secret query values become ``***``.

    >>> redact("s3://AKIA:s3cr3t@bucket/x.csv?region=eu-west-1&secret_key=abc")
    's3://***@bucket/x.csv?region=eu-west-1&secret_key=***'
    """
    if "://" not in path:
        return path
    scheme, _, rest = path.partition("://")
    authority, tail = re.match(r"([^/?#]*)(.*)", rest, re.S).groups()
    if "@" in authority:
        authority = "***@" + authority.rsplit("@", 1)[1]
    if "?" in tail:
        base, _, query = tail.partition("?")
        items = []
        for item in query.split("&"):
            key, equals, _ = item.partition("=")
            items.append(f"{key}=***" if equals and _SECRET_KEY.search(key) else item)
        tail = f"{base}?{'&'.join(items)}"
    return f"{scheme}://{authority}{tail}"


def _scrub(text: str, url: str) -> str:
    """`text` (a library's message) with every secret of `url` replaced by ``***``."""
    from urllib.parse import parse_qsl, unquote, urlsplit

    if "://" not in url:
        return text
    text = text.replace(url, redact(url))
    try:
        parts = urlsplit(url)
        secrets = [parts.username, parts.password]
        secrets += [value for key, value in parse_qsl(parts.query, keep_blank_values=True) if _SECRET_KEY.search(key)]
    except ValueError:
        secrets = []
    for secret in sorted({s for s in secrets if s} | {unquote(s) for s in secrets if s}, key=len, reverse=True):
        # Whole words only, so a user name "u" does not garble "unsupported".
        text = re.sub(rf"(?<![A-Za-z0-9]){re.escape(secret)}(?![A-Za-z0-9])", "***", text)
    return text


def _local_path(url: str) -> str | None:
    """The local path of a ``file://`` URL (its query dropped), else ``None``."""
    from urllib.parse import unquote, urlsplit

    parts = urlsplit(url)
    if parts.scheme.lower() != "file" or parts.netloc not in ("", "localhost"):
        return None
    return unquote(parts.path)


def _expand_url(url: str) -> list[str]:
    """A URL naming a folder lists its data files (recursively, sorted); a file stays as is.

    A ``file://`` folder is walked like a local one (links, loops and errors as in
    :func:`expand_sources`); object stores have no links. pyarrow's recursive
    ``FileSelector`` is not used for local folders: it follows a ``loop -> .`` link until
    the system refuses (one file became 41 paths, 284 entries with two links), and a
    folder of plain files should not need pyarrow's import.
    """
    local = _local_path(url)
    query = url.split("?", 1)[1] if "?" in url else ""
    # Options in the query (e.g. s3://bucket/dir?region=eu-west-1) apply to every file.
    suffix = f"?{query}" if query else ""
    if local is not None:
        if not os.path.isdir(local):
            return [url]
        return [f"file://{path}{suffix}" for path in _walk_folder(local, redact(url))]
    return _remote(lambda: _list_url(url), redact(url))


def _list_url(url: str) -> list[str]:
    from pyarrow import fs

    display = redact(url)
    try:
        filesystem, inner = _filesystem(url)
        if filesystem.get_file_info(inner).type != fs.FileType.Directory:
            return [url]
        infos = filesystem.get_file_info(fs.FileSelector(inner, recursive=True))
    except (OSError, pa.ArrowException) as error:
        hint = "check the URL and your credentials"
        raise InputError(f"cannot list: {_scrub(str(error), url)}", file=display, hint=hint) from None
    found = sorted(
        info.path
        for info in infos
        if info.type == fs.FileType.File
        and not any(part.startswith((".", "_")) for part in info.path[len(inner) :].split("/") if part)
        and info.path.lower().endswith(_DATA_SUFFIXES)
    )
    if not found:
        raise InputError("the folder holds no data files", file=display, hint="expected .csv, .parquet, ... files")
    scheme = url.split("://", 1)[0]
    query = url.split("?", 1)[1] if "?" in url else ""
    return [f"{scheme}://{path}" + (f"?{query}" if query else "") for path in found]  # e.g. s3://bucket/key


def _reopen(path: str, display: str, codec: str | None):
    """The file again from its start, guarded as at open (for a second pass that locates an error)."""
    stream = io.BufferedReader(_Chain(b"", open(path, "rb"), display))  # noqa: SIM115 - closed by the caller
    return io.BufferedReader(_Chain(b"", _decompress(stream, codec), display, codec, stream)) if codec else stream


_DATA_SUFFIXES = tuple(_EXTENSIONS) + tuple(e + c for e in _EXTENSIONS for c in _COMPRESSIONS)


def expand_sources(paths: list[str]) -> list[str]:
    """Expand folders (recursively, e.g. hive partitions) and globs into a sorted list of files.

    Files in a folder are those with a data extension (``.csv``, ``.parquet``, ...,
    optionally compressed); names starting with ``.`` or ``_`` (``_SUCCESS``) are
    skipped. Links are followed, but a folder or a file reached twice (through a link
    such as ``latest -> run2``, or a loop such as ``loop -> .``) is read once: under a
    path without links if it has one, else under its first path in sorted order. A
    folder or link that cannot be read is an error that names it, never skipped. A
    pattern that matches nothing is an error.
    """
    expanded: list[str] = []
    for path in paths:
        if path == "-":
            expanded.append(path)
        elif "://" in path:
            expanded.extend(_expand_url(path))
        elif os.path.isdir(path):
            expanded.extend(_walk_folder(path, path))
        elif not os.path.lexists(path) and any(ch in path for ch in "*?["):
            expanded.extend(_glob(path))
        else:
            expanded.append(path)
    if expanded.count("-") > 1:
        raise InputError("stdin (-) can be read only once", file="-")
    return expanded


def _is_hidden(name: str) -> bool:
    return name.startswith((".", "_"))


def _walk(root: str, start, step: Callable) -> Iterator[tuple[str, tuple[str, ...], object, bool, bool]]:
    """Yield (path, names below `root`, state, is a folder, reached through a link) for entries under `root`.

    An entry's state is ``step(state of its folder, its name)``, `start` for `root`; an entry
    whose state is falsy is not looked at (nor, for a folder, entered). Each folder (device,
    inode) is listed once, links last, so a folder reachable without a link is listed under
    that path, and a loop ends. An entry that cannot be listed or followed raises
    :class:`InputError` naming it.
    """
    seen: set[tuple[int, int]] = set()
    plain: deque = deque([(root, (), start, False)])
    linked: deque = deque()
    while plain or linked:
        folder, parts, state, via_link = (plain or linked).popleft()
        try:
            status = os.stat(folder)
            if (status.st_dev, status.st_ino) in seen:
                continue
            seen.add((status.st_dev, status.st_ino))
            with os.scandir(folder) as scan:
                entries = sorted(scan, key=lambda entry: entry.name)
        except OSError as error:
            raise InputError(f"cannot list this folder: {error.strerror}", file=folder, hint=_UNREADABLE_HINT) from None
        for entry in entries:
            below = (*parts, entry.name)
            entry_state = step(state, entry.name)
            if not entry_state:
                continue
            try:
                is_link = entry.is_symlink()
                is_folder = entry.is_dir()
                if is_link:
                    os.stat(entry.path)  # a link to nothing, or a loop of links, is an error
            except OSError as error:
                raise InputError(f"cannot follow: {error.strerror}", file=entry.path, hint=_UNREADABLE_HINT) from None
            yield entry.path, below, entry_state, is_folder, via_link or is_link
            if is_folder:
                (linked if is_link else plain).append((entry.path, below, entry_state, via_link or is_link))


_UNREADABLE_HINT = "make it readable, or move it out of the input"


def _unique(found: list[tuple[str, bool]]) -> list[str]:
    """Paths of distinct files, sorted; of several paths to one file, one without links, else the first."""
    first: dict[tuple[int, int], tuple[bool, str]] = {}
    for path, via_link in found:
        try:
            status = os.stat(path)
        except OSError as error:
            raise InputError(f"cannot read: {error.strerror}", file=path, hint=_UNREADABLE_HINT) from None
        key = (status.st_dev, status.st_ino)
        first[key] = min(first.get(key, (via_link, path)), (via_link, path))
    return sorted(path for _, path in first.values())


def _walk_folder(folder: str, display: str) -> list[str]:
    """The data files under `folder`, each file once (see :func:`expand_sources`)."""
    found = _folder_files(folder)
    if not found:
        raise InputError("the folder holds no data files", file=display, hint="expected .csv, .parquet, ... files")
    return _unique(found)


def _folder_files(folder: str, via_link: bool = False) -> list[tuple[str, bool]]:
    """(path, reached through a link) of the data files under `folder`, before removing repeats."""
    return [
        (path, via_link or linked)
        for path, _, _, is_folder, linked in _walk(folder, True, lambda _, name: not _is_hidden(name))
        if not is_folder and path.lower().endswith(_DATA_SUFFIXES)
    ]


def _glob(pattern: str) -> list[str]:
    """Files matching a glob as :func:`glob.glob` with ``recursive=True`` would, each file once.

    ``*``, ``?`` and ``[...]`` match within a name and not a leading ``.``; ``**`` matches
    any number of folders. A folder that matches is read as a folder. Unlike glob.glob,
    links are not followed twice and an unreadable folder is an error.
    """
    base, parts = _split_pattern(pattern)
    glob = _Pattern(parts)
    found: list[tuple[str, bool]] = []
    walked = _walk(base or ".", glob.start, glob.step) if os.path.isdir(base or ".") else ()
    for _, below, states, is_folder, via_link in walked:
        if glob.whole(states, folder=is_folder):
            path = os.path.join(base, *below)  # as glob.glob spells it: no "./" for a relative pattern
            if is_folder:  # read as a folder; one without data files adds none, as glob.glob would
                found.extend(_folder_files(path, via_link))
            else:
                found.append((path, via_link))
    if not found:
        raise InputError("the pattern matches no file", file=pattern, hint="check the pattern")
    return _unique(found)


def _split_pattern(pattern: str) -> tuple[str, tuple[str, ...]]:
    """The folder before the first wildcard (``""`` for the working folder), and the name patterns after it."""
    parts = pattern.split(os.sep)
    first = next(i for i, part in enumerate(parts) if any(ch in part for ch in "*?["))
    base = os.sep.join(parts[:first]) or ("" if first == 0 else os.sep)
    return base, tuple(part for part in parts[first:] if part)


def would_read(source: str, path: str) -> bool:
    """Would a later run read a file at `path` (not yet there) as part of `source`?

    True when `path` lies in the folder `source` under a data name that is not hidden,
    or matches the glob `source`.
    """
    if "://" in source or "://" in path:
        source, path = _local_path(source) or source, _local_path(path) or path
        if "://" in source or "://" in path:  # an object store holds no local input
            return False
    if source == "-" or not path.lower().endswith(_DATA_SUFFIXES):
        return False
    target = os.path.join(os.path.realpath(os.path.dirname(os.path.abspath(path))), os.path.basename(path))
    if os.path.isdir(source):
        below = os.path.relpath(target, os.path.realpath(source)).split(os.sep)
        return below[0] != ".." and not any(map(_is_hidden, below))
    if os.path.lexists(source) or not any(ch in source for ch in "*?["):
        return False
    base, parts = _split_pattern(os.path.abspath(source))
    below = os.path.relpath(target, os.path.realpath(base or ".")).split(os.sep)
    if below[0] == "..":
        return False
    glob = _Pattern(parts)
    states = glob.start
    for name in below:
        states = glob.step(states, name)
    return glob.whole(states, folder=False)


def _name_matches(name: str, part: str) -> bool:
    import fnmatch

    return (part.startswith(".") or not name.startswith(".")) and fnmatch.fnmatchcase(name, part)


class _Pattern:
    """A glob's name patterns as a set-of-states matcher: the state after some folder names is
    the set of pattern positions they can reach, so each entry of a walk costs one step.

    As in :func:`glob.glob`, only the last pattern, or a trailing ``**``, matches a file: in
    ``*/**`` the ``*`` matches folders only. ``_FILE`` in a state marks a name that matches as a file.
    """

    _FILE = -1

    def __init__(self, parts: tuple[str, ...]) -> None:
        self.parts = parts
        self.start = self._closure({0})

    def _closure(self, states: set[int]) -> frozenset[int]:
        # "**" also matches no folder at all: its position reaches the next one.
        for i in sorted(states):
            while 0 <= i < len(self.parts) and self.parts[i] == "**":
                i += 1
                states.add(i)
        return frozenset(states)

    def step(self, states: frozenset[int], name: str) -> frozenset[int]:
        following, last = set(), len(self.parts) - 1
        for i in states:
            if i in (self._FILE, last + 1):
                continue
            if self.parts[i] == "**":
                if not name.startswith("."):
                    following.add(i)
                    if all(part == "**" for part in self.parts[i:]):
                        following.add(self._FILE)
            elif _name_matches(name, self.parts[i]):
                following.add(i + 1)
                if i == last:
                    following.add(self._FILE)
        return self._closure(following)

    def whole(self, states: frozenset[int], *, folder: bool = True) -> bool:
        return (len(self.parts) if folder else self._FILE) in states


def file_identity(path: str) -> tuple[int, int] | None:
    """(device, inode) of a local file, ``-`` (stdin) or a ``file://`` URL; ``None`` otherwise.

    ``None`` too for what does not exist or cannot be examined (opening it will say why).
    """
    try:
        if path == "-":
            status = os.fstat(sys.stdin.fileno())
        elif "://" in path:
            local = _local_path(path)
            if local is None:
                return None
            status = os.stat(local)
        else:
            status = os.stat(path)
    except (OSError, ValueError, AttributeError, io.UnsupportedOperation):
        return None
    return status.st_dev, status.st_ino


# --------------------------------------------------------------------------- conversion


_NUMPY_TYPES = {  # Arrow type names
    "double": np.float64,
    "float": np.float32,
    "int64": np.int64,
    "int32": np.int32,
    "int16": np.int16,
    "int8": np.int8,
    "uint64": np.uint64,
    "uint32": np.uint32,
    "uint16": np.uint16,
    "uint8": np.uint8,
}


def _view(array: pa.Array) -> np.ndarray:
    """Zero-copy NumPy view of a primitive Arrow array without nulls.

    ``Array.to_numpy`` would import pandas when it is installed (about 0.2 s), so the
    data buffer is wrapped directly.
    """
    dtype = np.dtype(_NUMPY_TYPES[str(array.type)])
    return np.frombuffer(array.buffers()[1], dtype=dtype, count=len(array), offset=array.offset * dtype.itemsize)


def _first_index(mask: pa.Array) -> int:
    """Index of the first true value of a boolean Arrow array."""
    import pyarrow.compute as pc

    return pc.indices_nonzero(mask)[0].as_py()


def _check_nulls(array: pa.Array, column: str, what: str = "missing value") -> None:
    if array.null_count:
        index = _first_index(array.is_null())
        raise CellError(what, index=index, column=column, hint=_MISSING_HINT)


def _bad_number(array: pa.Array) -> int:
    """Index of the first string in `array` that does not parse as a number, even leniently (binary search)."""
    low, high = 0, len(array)
    while high - low > 1:
        middle = (low + high) // 2
        if pa.types.is_float64(_lenient(array.slice(low, middle - low)).type):
            low = middle
        else:
            high = middle
    return low


def _lenient(array: pa.Array) -> pa.Array:
    """Text cells as float64 where there is no doubt what they mean, else `array` unchanged.

    Surrounding spaces are dropped (``1, 0.9``: pyarrow's typed CSV columns skip them too),
    and ``true``/``false`` (also ``True``, ``TRUE``, ...) are 1 and 0, as a boolean column of
    Parquet or JSON is (README, "Input").
    """
    import pyarrow.compute as pc

    trimmed = pc.utf8_trim(array, characters=" \t")
    for words, number in (
        ([w for w, v in _BOOLEANS.items() if v], "1"),
        ([w for w, v in _BOOLEANS.items() if not v], "0"),
    ):
        trimmed = pc.if_else(pc.is_in(trimmed, value_set=pa.array(words)), number, trimmed)
    try:
        return pc.cast(trimmed, pa.float64())
    except pa.ArrowInvalid:
        return array


def _floats(array: pa.Array, column: str) -> np.ndarray:
    """A scalar Arrow column as float64, naming the first missing or non-numeric cell."""
    _check_nulls(array, column)
    if pa.types.is_string(array.type) or pa.types.is_large_string(array.type):
        import pyarrow.compute as pc

        try:
            array = pc.cast(array, pa.float64())
        except pa.ArrowInvalid:
            array = _lenient(array)
        if not pa.types.is_float64(array.type):
            index = _bad_number(array)
            value = array[index].as_py()
            if not value.strip():
                raise CellError("missing value", index=index, column=column, hint=_MISSING_HINT) from None
            raise CellError(
                f"not a number: {value!r}",
                index=index,
                column=column,
                hint="every cell of this column must be a number",
            ) from None
    elif not (pa.types.is_floating(array.type) or pa.types.is_integer(array.type) or pa.types.is_boolean(array.type)):
        kind = (
            "objects"
            if pa.types.is_struct(array.type)
            else "lists"
            if pa.types.is_list(array.type) or pa.types.is_large_list(array.type)
            else f"{array.type} values"
        )
        raise CellError(f"holds {kind}, not numbers", index=0, column=column, hint=_SELECT_HINT)
    if pa.types.is_float64(array.type) or pa.types.is_float32(array.type):
        # float32 stays float32 (exact either way); the math widens what it uses to float64.
        return _view(array)
    import pyarrow.compute as pc

    return _view(pc.cast(array, pa.float32() if pa.types.is_float16(array.type) else pa.float64()))


def _list_floats(array: pa.Array, column: str, width: int | None) -> np.ndarray:
    """A list column as an (n, width) float64 matrix, naming the first ragged or bad row."""
    import pyarrow.compute as pc

    _check_nulls(array, column, "missing list")
    lengths = _view(pc.cast(pc.list_value_length(array), pa.int64()))
    expected = width if width is not None else (int(lengths[0]) if len(lengths) else 0)
    if expected == 0 and len(lengths):
        index = int(np.flatnonzero(lengths == 0)[0])
        raise CellError("empty list", index=index, column=column, hint="every row needs one value per class")
    if len(lengths) and (lengths != expected).any():
        index = int(np.flatnonzero(lengths != expected)[0])
        raise CellError(
            f"list has {lengths[index]} values where the other rows have {expected}",
            index=index,
            column=column,
            hint="every row needs one value per class",
        )
    values = array.flatten()
    if values.null_count:
        index = _first_index(values.is_null()) // max(expected, 1)
        raise CellError("missing value in list", index=index, column=column, hint="fill in every value")
    return np.asfortranarray(_floats(values, column).reshape(len(array), expected))


def class_indices(array: pa.Array, column: str, class_names: list[str] | None) -> np.ndarray:
    """Class labels: an integer column as it is, else integer-valued float64 from numbers or class names."""
    is_text = pa.types.is_string(array.type) or pa.types.is_large_string(array.type)
    if pa.types.is_integer(array.type) and not array.null_count:
        # Integer labels stay integers: no round trip through float64.
        return _view(array)
    if not is_text:
        return _floats(array, column)
    _check_nulls(array, column)
    try:
        return _floats(array, column)
    except CellError as error:
        if not class_names:
            raise CellError(
                error.message,
                index=error.index,
                column=column,
                hint="labels must be class indices 0..C-1, or names matching the prediction column suffixes",
            ) from None
    lookup = {name: float(i) for i, name in enumerate(class_names)}
    texts = array.to_pylist()
    for index, text in enumerate(texts):
        if text not in lookup:
            raise CellError(
                f"label {text!r} is not a class name",
                index=index,
                column=column,
                hint=f"classes are: {', '.join(class_names)}",
            )
    return np.array([lookup[t] for t in texts], dtype=np.float64)


_EXACT_INTEGERS = 2.0**53  # below this, every integral float64 is an exact integer
_JSON_INTEGER = re.compile(r"-?(?:0|[1-9][0-9]*)")
_JSON_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?")
_BOOLEANS = {"true": True, "True": True, "TRUE": True, "false": False, "False": False, "FALSE": False}


class _Nonfinite:
    """Counts the NaN and infinite numbers that :func:`_json_value` turned into ``None``."""

    def __init__(self) -> None:
        self.count = 0


def _json_value(value, nonfinite: _Nonfinite):
    """A kept or grouped value as cecli prints it, whatever format it came from.

    Numbers are JSON numbers, not typed ones: an integral float below 2**53 in magnitude
    is the integer it equals (Parquet's ``0.0``, CSV's ``0.0`` and JSON's ``0`` are all
    ``0``); NaN and infinities become ``None`` (JSON has no such numbers) and are counted.
    Values JSON has no type for (dates, decimals, bytes) become their text.
    """
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        if value != value or value in (math.inf, -math.inf):
            nonfinite.count += 1
            return None
        return int(value) if value.is_integer() and abs(value) < _EXACT_INTEGERS else value
    if isinstance(value, list | tuple):
        return [_json_value(item, nonfinite) for item in value]
    if isinstance(value, dict):
        return {str(key): _json_value(item, nonfinite) for key, item in value.items()}
    return str(value)


def _text_value(text: str | None, nonfinite: _Nonfinite):
    """A CSV/TSV cell typed as the same text would be in JSON.

    A JSON number (``7``, ``-0.5``, ``1e3``; not ``007``, ``+1``, ``.5`` or ``nan``) is a
    number, ``true``/``false`` (also ``True``, ``TRUE``, ...) a boolean, an empty cell null,
    anything else text. Each cell is typed on its own, so the result does not depend on
    batches or files.
    """
    if not text:
        return None
    if _JSON_INTEGER.fullmatch(text):
        return _json_value(int(text), nonfinite)
    if _JSON_NUMBER.fullmatch(text):
        return _json_value(float(text), nonfinite)
    return _BOOLEANS.get(text, text)


def _is_text(array: pa.Array) -> bool:
    return pa.types.is_string(array.type) or pa.types.is_large_string(array.type)


def _pass_through(array: pa.Array, text: bool, nonfinite: _Nonfinite) -> list:
    """A ``--keep`` column as Python values printed alike from every format (see :func:`_json_value`).

    `text` says the input has no types (CSV/TSV): each cell is then typed by :func:`_text_value`.
    Whole columns of text, integers or floats take a vectorized path with the same result.
    """
    if text and _is_text(array):
        return _text_values(array, nonfinite)
    if pa.types.is_integer(array.type) or pa.types.is_string(array.type) or pa.types.is_boolean(array.type):
        return array.to_pylist()  # already JSON values
    if pa.types.is_floating(array.type):
        return _float_values(array, nonfinite)
    return [_json_value(value, nonfinite) for value in array.to_pylist()]


def _mask(array: pa.Array) -> np.ndarray:
    """A boolean Arrow array (nulls as false) as a NumPy bool array."""
    import pyarrow.compute as pc

    return _view(pc.cast(pc.fill_null(array, False), pa.uint8())).astype(bool)


def _float_values(array: pa.Array, nonfinite: _Nonfinite) -> list:
    """:func:`_json_value` of every value of a float column, vectorized."""
    import pyarrow.compute as pc

    nulls = _mask(array.is_null()) if array.null_count else np.zeros(len(array), dtype=bool)
    x = _view(pc.cast(pc.fill_null(array, 0.0) if array.null_count else array, pa.float64()))
    finite = np.isfinite(x)
    with np.errstate(invalid="ignore"):
        integral = finite & (np.abs(x) < _EXACT_INTEGERS) & (np.trunc(x) == x)
    if integral.all():
        values = x.astype(np.int64).tolist()
    else:
        values = x.tolist()
        for i in np.flatnonzero(integral).tolist():
            values[i] = int(values[i])
    for i in np.flatnonzero(~finite | nulls).tolist():
        values[i] = None
    nonfinite.count += int((~finite & ~nulls).sum())
    return values


def _text_values(array: pa.Array, nonfinite: _Nonfinite) -> list:
    """:func:`_text_value` of every cell of a CSV column; columns of only text or only numbers are vectorized."""
    import pyarrow.compute as pc

    array = pc.if_else(pc.equal(array, ""), pa.scalar(None, array.type), array)  # an empty cell is null
    numbers = pc.sum(pc.match_substring_regex(array, f"^{_JSON_NUMBER.pattern}$")).as_py() or 0
    if not numbers and not pc.any(pc.is_in(array, pa.array(list(_BOOLEANS)))).as_py():
        return array.to_pylist()
    # Integers beyond 2**53 must not pass through float64: they are typed one by one.
    long_integers = pc.any(pc.match_substring_regex(array, "^-?[0-9]{16,}$")).as_py()
    if numbers == len(array) - array.null_count and not long_integers:
        if pc.all(pc.match_substring_regex(array, f"^{_JSON_INTEGER.pattern}$")).as_py() is not False:
            return pc.cast(array, pa.int64()).to_pylist()
        # pyarrow's text-to-float64 conversion rounds correctly, as Python's float does.
        return _float_values(pc.cast(array, pa.float64()), nonfinite)
    return [_text_value(cell, nonfinite) for cell in array.to_pylist()]


def _group_key(value) -> tuple:
    """A ``--by`` value made distinct by kind, as JSON prints it: numbers, then booleans, text, null.

    Python's ``1 == True`` would otherwise merge the groups ``1`` and ``true``.
    """
    if value is None:
        return (3, None)
    if isinstance(value, bool):
        return (1, value)
    if isinstance(value, int | float):
        return (0, value)
    return (2, value)


def _codes(array: pa.Array, text: bool, nonfinite: _Nonfinite) -> tuple[np.ndarray, list[tuple]]:
    """Dictionary-encode a group column: per-row codes into a list of distinct keys (see :func:`_group_key`).

    Distinct cells that print alike (CSV ``1`` and ``1.0``, a NaN and a null) are one group.
    """
    import pyarrow.compute as pc

    encoded = pc.dictionary_encode(array, null_encoding="encode")
    codes = _view(pc.cast(encoded.indices, pa.int64()))
    keys: list[tuple] = []
    index: dict[tuple, int] = {}
    remap = np.empty(len(encoded.dictionary), dtype=np.int64)
    bad = []
    for i, value in enumerate(encoded.dictionary.to_pylist()):
        before = nonfinite.count
        key = _group_key(
            _text_value(value, nonfinite) if text and isinstance(value, str) else _json_value(value, nonfinite)
        )
        if nonfinite.count != before:
            nonfinite.count = before
            bad.append(i)
        remap[i] = index.setdefault(key, len(keys))
        if remap[i] == len(keys):
            keys.append(key)
    if bad:  # count rows, not distinct values
        nonfinite.count += int(np.isin(codes, bad).sum())
    return remap[codes] if len(keys) != len(remap) else codes, keys


def to_matrix(batch: pa.RecordBatch, columns: tuple[Column, ...]) -> np.ndarray:
    """The selected scalar columns side by side, or the one selected list column, as (n, k)."""
    if len(columns) == 1 and columns[0].is_list:
        return _list_floats(batch.column(columns[0].name), columns[0].name, None)
    lists = [c.name for c in columns if c.is_list]
    if lists:
        raise InputError(
            f"list column {lists[0]!r} cannot be combined with other columns", hint="select one list column alone"
        )
    if not columns:
        return np.empty((batch.num_rows, 0))
    arrays = [_floats(batch.column(c.name), c.name) for c in columns]
    # Column-major, like the Arrow columns: row sums and gathers then run over contiguous memory.
    matrix = np.empty((batch.num_rows, len(arrays)), dtype=np.result_type(*arrays), order="F")
    for j, array in enumerate(arrays):
        matrix[:, j] = array
    return matrix


# --------------------------------------------------------------------------- inputs


class Input:
    """An opened input: its display name, format, columns and a batch iterator."""

    format: str = ""
    header_lines: int = 0  # lines before the first record, for line numbers in messages
    headerless: bool = False
    untyped: bool = False  # CSV/TSV: kept and grouped cells are typed one by one (see _text_value)
    size: int | None = None  # bytes, for progress
    raw = None  # the underlying byte stream, for progress
    # Line-based text (CSV, NDJSON): a reader skips blank lines, so the record at an index is found
    # again by re-reading the file (`_reopen`), or, for a stream read once, from the `_lines` noted.
    _reopen: Callable | None = None
    _lines: _Lines | None = None
    _whitespace_is_blank = False

    def position(self) -> int | None:
        """Bytes consumed so far (an estimate), or ``None`` when unknown."""
        try:
            return self.raw.tell() if self.size is not None else None
        except (OSError, ValueError, AttributeError):
            return None

    def __init__(self, display: str) -> None:
        self.display = display
        self.columns: list[Column] = []
        self.warnings: list[str] = []  # e.g. a header that looks like data; shown with the result

    def user_row(self, index: int) -> int:
        """The 1-based row a user sees for the record at 0-based `index`.

        The physical line of a CSV/TSV/NDJSON file, as an editor counts them (blank lines, which
        hold no record, included; the header is line 1); else the 1-based record.
        """
        record = index + self.header_lines
        if self._lines is not None:
            return self._lines.line_of(record)
        if self._reopen is None:
            return record + 1
        lines = _Lines(whitespace_is_blank=self._whitespace_is_blank)
        with self._reopen() as stream:  # only on an error: read up to the record again
            while lines.records <= record and (chunk := stream.read(1 << 20)):
                lines.feed(chunk)
        return lines.line_of(record)

    def _track_lines(self, stream, reopen) -> None:
        """Keep what `user_row` needs: a way to reopen the file, else the blank lines of `stream`."""
        self._reopen = reopen
        if reopen is None and isinstance(getattr(stream, "raw", None), _Chain):
            self._lines = stream.raw.lines = _Lines(whitespace_is_blank=self._whitespace_is_blank)

    def record_batches(
        self, names: list[str], settings: ReadSettings, numeric: frozenset[str] = frozenset()
    ) -> Iterator[pa.RecordBatch]:
        """Arrow batches of the `names` columns; `numeric` ones may be parsed as numbers directly."""
        raise NotImplementedError

    def describe_types(self) -> list[Column]:
        """Columns with their types (may read a sample of the data)."""
        return self.columns

    def _plain_numbers(self) -> np.ndarray | None:
        """All records as one float64 matrix, when the input can be parsed without pyarrow; else ``None``."""
        return None

    def _set_columns(self, fields: list[tuple[str, str, bool]]) -> None:
        """Set the columns from (name, type, is_list) triples."""
        duplicates = sorted(name for name, count in Counter(f[0] for f in fields).items() if count > 1)
        if duplicates:
            raise InputError(
                f"duplicate column name {duplicates[0]!r}", file=self.display, hint="give every column a unique name"
            )
        self.columns = [Column(i + 1, *f) for i, f in enumerate(fields)]

    def batches(
        self,
        selection: Selection,
        settings: ReadSettings,
        *,
        roles: tuple[str, ...] = ("labels", "predictions", "weight"),
        class_names: list[str] | None = None,
        class_labels: bool = False,
        prefetch: Callable[[Iterator[pa.RecordBatch]], Iterator[pa.RecordBatch]] | None = None,
    ) -> Iterator[Batch]:
        """Stream the selected roles as float64 arrays (labels as (n, k), predictions (n, C)).

        `prefetch`, if given, wraps the iterator of decoded Arrow batches (e.g. to decode
        in another thread); the conversion to NumPy happens in the caller's thread.

        Raises
        ------
        DataError
            For a missing, non-numeric or ragged cell; the error names file, row and column.
        """
        nested = [c for c in selection.by if c.is_list or c.type.startswith(("struct", "map"))]
        if nested and "predictions" in roles:
            raise OptionError(
                f"--by column {nested[0].name!r} holds {'lists' if nested[0].is_list else 'records'}, "
                "not single values",
                hint="group by a column of numbers or text",
            )
        values = None if selection.keep or selection.by else self._plain_numbers()
        if values is not None:
            yield from _plain_batches(values, self.columns, selection, settings, roles)
            return
        wanted = [getattr(selection, r) for r in roles]
        names: dict[str, None] = {}  # ordered and without duplicates, in linear time
        for part in wanted + [selection.keep, selection.by if "predictions" in roles else ()]:
            for column in (part,) if isinstance(part, Column) else part or ():
                names[column.name] = None
        names = list(names)
        offset = 0
        width = None
        numeric = {c.name for role in roles if role != "labels" or not class_labels for c in selection.columns(role)}
        record_batches = self.record_batches(names, settings, frozenset(numeric))
        for record_batch in record_batches if prefetch is None else prefetch(record_batches):
            try:
                batch = Batch(offset, record_batch.num_rows)
                for role in roles:
                    columns = getattr(selection, role)
                    if columns is None or columns == ():
                        continue
                    if role == "weight":
                        batch.arrays[role] = _floats(record_batch.column(columns.name), columns.name)
                    elif role == "labels" and class_labels and len(columns) == 1 and not columns[0].is_list:
                        array = record_batch.column(columns[0].name)
                        batch.arrays[role] = class_indices(array, columns[0].name, class_names)[:, None]
                    else:
                        matrix = to_matrix(record_batch, columns)
                        if role == "predictions":
                            if width is not None and matrix.shape[1] != width and record_batch.num_rows:
                                raise CellError(
                                    f"list has {matrix.shape[1]} values where earlier rows have {width}",
                                    index=0,
                                    column=columns[0].name,
                                    hint="every row needs one value per class",
                                )
                            width = matrix.shape[1] if record_batch.num_rows else width
                        batch.arrays[role] = matrix
                for column in selection.keep:
                    nonfinite = _Nonfinite()
                    array = record_batch.column(column.name)
                    batch.keep[column.name] = _pass_through(array, self.untyped, nonfinite)
                    if not self.untyped:  # CSV has no types to keep: a Parquet --out gets the text
                        batch.kept[column.name] = array
                    batch.nonfinite[column.name] = nonfinite.count
                for column in selection.by if "predictions" in roles else ():
                    nonfinite = _Nonfinite()
                    batch.groups[column.name] = _codes(record_batch.column(column.name), self.untyped, nonfinite)
                    batch.nonfinite.setdefault(column.name, nonfinite.count)
            except CellError as error:
                raise error.locate(file=self.display, row=self.user_row(offset + error.index)) from None
            except InputError as error:
                raise error.locate(file=self.display) from None
            yield batch
            offset += record_batch.num_rows

    def close(self) -> None:
        """Release the underlying file."""


def _plain_batches(
    values: np.ndarray, own: list[Column], selection: Selection, settings: ReadSettings, roles
) -> Iterator[Batch]:
    """Batches of a parsed matrix `values`, laid out as pyarrow's are (column-major float64).

    Selected columns are found by name among this input's columns `own`, as pyarrow finds
    them: the selection may have been made on another file whose columns come in another order.
    """
    index = {c.name: c.position - 1 for c in own}
    for start in range(0, len(values), settings.batch_rows):
        rows = values[start : start + settings.batch_rows]
        batch = Batch(start, len(rows))
        for role in roles:
            columns = getattr(selection, role)
            if role == "weight" and columns is not None:
                batch.arrays[role] = rows[:, index[columns.name]].copy()
            elif role != "weight" and columns:
                batch.arrays[role] = np.asfortranarray(rows[:, [index[c.name] for c in columns]])
        yield batch


def _arrow_fields(schema: pa.Schema) -> list[tuple[str, str, bool]]:
    lists = (pa.types.is_list, pa.types.is_large_list, pa.types.is_fixed_size_list)
    return [(f.name, str(f.type), any(is_list(f.type) for is_list in lists)) for f in schema]


class CsvInput(Input):
    """CSV or TSV, streamed with pyarrow (a small all-numeric input is parsed without it, see `_plain_numbers`)."""

    def __init__(self, display, head: bytes, stream, reopen, delimiter: str, header: bool | None) -> None:
        super().__init__(display)
        self.format = "tsv" if delimiter == "\t" else "csv"
        self.untyped = True
        self.delimiter = delimiter
        self._stream = stream
        self._track_lines(stream, reopen)
        whole = len(head) < _SMALL_CSV_BYTES  # then `head` holds the whole input (see _peek)
        try:
            text = head.removeprefix(_BOM).decode("utf-8")
        except UnicodeDecodeError as error:
            whole = False
            text = head.removeprefix(_BOM)[: error.start].decode("utf-8")
            if "\n" not in text:
                raise InputError(
                    "the first line is not valid UTF-8 text", file=display, hint="save the file as UTF-8"
                ) from None
        first_line = re.split(r"\r\n|\r|\n", text, maxsplit=1)[0]  # pyarrow also ends a line at a lone \r
        try:
            first = next(csv.reader([first_line], delimiter=delimiter), [])
        except csv.Error as error:
            raise InputError(f"cannot read the first line: {error}", file=display, hint="check the file") from None
        if not first:
            raise InputError("the first line is empty", file=display, hint="start the file with a header or data row")
        self.has_header = header if header is not None else self._is_header(first)
        self.headerless = not self.has_header
        self.header_lines = 1 if self.has_header else 0
        names = [c.strip() for c in first] if self.has_header else [str(i + 1) for i in range(len(first))]
        if self.has_header and "" in names:
            raise InputError(
                "empty column name in the header",
                file=display,
                row=1,
                column=str(names.index("") + 1),
                hint="name every column" + (", or pass --no-header if the first row is data" if header is None else ""),
            )
        try:
            self._set_columns([(n, "string", False) for n in names])
        except InputError as error:  # a duplicate name: the header is line 1
            raise error.locate(row=1) from None
        self._head_text = text
        self._whole = whole

    def _is_header(self, cells: list[str]) -> bool:
        """Whether the first row is a header, when neither --header nor --no-header says so.

        A row of numbers only is data. A row of numbers and empty cells could be either (data
        with a missing value, or a header with unnamed columns): an error asks which. Any other
        row is the header; numbers among its names get a warning, as it may be data with a typo.
        """
        numbers = [cell.strip() for cell in cells if _NUMBER.match(cell)]
        empty = [i for i, cell in enumerate(cells, 1) if not cell.strip()]
        if len(numbers) == len(cells):
            return False
        if numbers and len(numbers) + len(empty) == len(cells):
            raise InputError(
                "the first row holds numbers and an empty cell: a data row with a missing value, "
                "or a header without a name",
                file=self.display,
                row=1,
                column=str(empty[0]),
                hint="pass --no-header if it is data, or name every column",
            )
        if numbers:
            self.warnings.append(
                f"{printable(self.display)}:1: the header has names that look like numbers "
                f"({', '.join(map(repr, numbers))}); "
                "if the first row is data, pass --no-header (--header silences this warning)"
            )
        return True

    def _plain_numbers(self) -> np.ndarray | None:
        """A small input's records as a float64 matrix when every cell is a plain number, else ``None``.

        Importing pyarrow takes longer than the rest of a one-liner's work. A whole input under
        8 KiB whose data lines (LF or CRLF, none blank, no quotes) each hold one plain decimal
        number per column is parsed with ``float``, which rounds correctly as pyarrow does (a
        test compares them). Anything else, every error included, is left to pyarrow.
        """
        if not self._whole or any(ch in "0123456789.+-eE" for ch in self.delimiter):
            return None
        text = self._head_text
        body = text.partition("\n")[2] if self.header_lines else text
        width = len(self.columns)
        # Atomic numbers and a possessive row loop: a mismatch fails at once, never backtracks.
        number = f"(?>{_PLAIN_NUMBER})"
        row = f"{number}(?:{re.escape(self.delimiter)}{number}){{{width - 1}}}"
        if not re.fullmatch(f"{row}(?:\r?\n{row})*+(?:\r?\n)?", body):
            return None
        return np.array([float(cell) for cell in body.replace(self.delimiter, " ").split()]).reshape(-1, width)

    def describe_types(self) -> list[Column]:
        import pyarrow.csv as pa_csv

        try:
            sample = pa_csv.read_csv(
                io.BytesIO(self._head_text.rsplit("\n", 1)[0].encode()),
                read_options=self._read_options(1 << 20),
                parse_options=pa_csv.ParseOptions(delimiter=self.delimiter),
            )
        except pa.ArrowInvalid:
            return self.columns
        return [Column(c.position, c.name, str(sample.schema.field(c.position - 1).type), False) for c in self.columns]

    def _read_options(self, block_size: int, *, skip_header: bool = True, use_threads: bool = True):
        import pyarrow.csv as pa_csv

        return pa_csv.ReadOptions(
            column_names=[c.name for c in self.columns],
            skip_rows=self.header_lines if skip_header else 0,
            block_size=block_size,
            use_threads=use_threads,
        )

    def record_batches(self, names, settings, numeric=frozenset()):
        # Numeric columns parse straight to float64 (twice as fast as text + cast). pyarrow's
        # errors name no row: the block that failed is then searched for the cause (`_block_error`).
        try:
            yield from self._parse_blocks(self._stream, names, numeric, settings)
        except _BlockError as failed:
            raise self._block_error(failed, names, numeric) from None

    def _parse_blocks(self, stream, names, numeric, settings) -> Iterator[pa.RecordBatch]:
        """Parse `stream` in blocks of whole lines, two at a time, and yield batches in order.

        pyarrow's streaming reader parses on one core; blocks parsed in parallel by
        ``read_csv`` use both, and memory stays bounded by a few blocks. Cutting at a
        line end is safe because quoted fields spanning lines are not supported anyway.
        A line longer than pyarrow's parse block (1 MiB) is read too: its block is then
        parsed again as one piece. A block that fails raises :class:`_BlockError`.
        """
        import pyarrow.csv as pa_csv

        # The first block holds the header line, if any; each block is parsed by one thread.
        read_options = [self._read_options(1 << 20, skip_header=first, use_threads=False) for first in (True, False)]
        parse_options = pa_csv.ParseOptions(delimiter=self.delimiter)
        convert = self._convert_options(names, numeric)

        def parse(block: bytes, first: bool) -> pa.Table:
            def read(options) -> pa.Table:
                return pa_csv.read_csv(
                    pa.py_buffer(block), read_options=options, parse_options=parse_options, convert_options=convert
                )

            try:
                try:
                    return read(read_options[0 if first else 1])
                except pa.ArrowInvalid as error:  # "straddling object straddles two block boundaries"
                    if "straddl" not in str(error):
                        raise
                    return read(self._read_options(len(block) + 1, skip_header=first, use_threads=False))
            except pa.ArrowInvalid as error:
                if numeric and (table := self._lenient_block(block, first, names, numeric)) is not None:
                    return table
                raise _BlockError(error, block, first) from None

        def tables() -> Iterator[pa.Table]:
            blocks = _newline_blocks(stream, _CSV_BLOCK_BYTES)
            first = next(blocks, b"")
            second = next(blocks, None)
            if second is None:  # a small input: no threads needed
                yield parse(first, True)
                return
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(2, thread_name_prefix="cecli-csv") as pool:
                pending = deque([pool.submit(parse, first, True), pool.submit(parse, second, False)])
                for block in blocks:
                    pending.append(pool.submit(parse, block, False))
                    if len(pending) > 2:
                        yield pending.popleft().result()
                while pending:
                    yield pending.popleft().result()

        done = 0
        try:
            for table in tables():
                yield from table.to_batches(max_chunksize=settings.batch_rows)
                done += table.num_rows
        except _BlockError as failed:
            failed.records_before = done
            raise

    def _lenient_block(self, block: bytes, first: bool, names, numeric) -> pa.Table | None:
        """`block` with every column as text, when its numeric columns hold numbers once read leniently.

        pyarrow's float conversion takes surrounding spaces but not ``true``/``false``, which
        :func:`_lenient` reads as 1 and 0; ``None`` leaves the error to :meth:`_block_error`.
        """
        import pyarrow.csv as pa_csv

        try:
            table = pa_csv.read_csv(
                pa.py_buffer(block),
                read_options=self._read_options(len(block) + 1, skip_header=first, use_threads=False),
                parse_options=pa_csv.ParseOptions(delimiter=self.delimiter),
                convert_options=self._convert_options(names, frozenset()),
            )
            for name in numeric:
                _floats(table.column(name).combine_chunks(), name)
        except (pa.ArrowInvalid, CellError):
            return None
        return table

    def _convert_options(self, names, numeric):
        import pyarrow.csv as pa_csv

        types = {n: pa.float64() if n in numeric else pa.string() for n in names}
        # Only an empty cell is missing; "nan" and "NA" are values, to be judged by validation.
        return pa_csv.ConvertOptions(
            include_columns=names, column_types=types, null_values=[""], strings_can_be_null=False
        )

    def _block_error(self, failed: _BlockError, names, numeric) -> CecliError:
        """The error of a block pyarrow could not read, on its line.

        The block is parsed again with every column as text: a bad number then parses and
        `_floats` names it; a ragged row or invalid UTF-8 in a chosen column fails again, and
        the block's rows are read one by one with Python's csv module to find it.
        """
        import pyarrow.csv as pa_csv

        def row(index: int) -> int:
            return self.user_row(failed.records_before + index)

        try:
            table = pa_csv.read_csv(
                pa.py_buffer(failed.block),
                read_options=self._read_options(len(failed.block) + 1, skip_header=failed.first, use_threads=False),
                parse_options=pa_csv.ParseOptions(delimiter=self.delimiter),
                convert_options=self._convert_options(names, frozenset()),
            )
        except pa.ArrowInvalid:
            table = None
        # The first bad cell in reading order (row, then column): never an order of a set.
        found: list[CellError] = []
        for name in [c.name for c in self.columns if c.name in numeric] if table is not None else ():
            try:
                _floats(table.column(name).combine_chunks(), name)
            except CellError as error:
                found.append(error)
        if found:
            first = min(found, key=lambda error: error.index)  # min keeps the leftmost column on a tie
            return first.locate(file=self.display, row=row(first.index))
        positions = [c.position - 1 for c in self.columns if c.name in names]
        text = failed.block.decode("utf-8", errors="surrogateescape")  # an invalid byte becomes U+DC80..U+DCFF
        records = csv.reader(io.StringIO(text.removeprefix("\ufeff"), newline=""), delimiter=self.delimiter)
        if failed.first and self.header_lines:
            next(records, None)  # the header
        index = 0
        for cells in records:
            if not cells:
                continue  # a blank line: no record
            if len(cells) != len(self.columns):
                return InputError(
                    f"row has {len(cells)} fields, the header has {len(self.columns)}",
                    file=self.display,
                    row=row(index),
                    hint="quote fields that contain the delimiter, or fix the row",
                )
            if any(_SURROGATE.search(cells[p]) for p in positions):
                return InputError(
                    "invalid UTF-8 text", file=self.display, row=row(index), hint="save the file as UTF-8"
                )
            index += 1
        message = _one_line(failed.error).removeprefix("CSV parse error: ")
        return InputError(f"cannot parse: {message}", file=self.display, hint="check that the file is CSV")

    def close(self) -> None:
        self._stream.close()


class _BlockError(Exception):
    """pyarrow could not read a CSV block: its error, the block, and how many records came before it."""

    def __init__(self, error: Exception, block: bytes, first: bool) -> None:
        super().__init__(str(error))
        self.error, self.block, self.first = error, block, first
        self.records_before = 0


_SURROGATE = re.compile("[\udc80-\udcff]")


_CSV_BLOCK_BYTES = 8 << 20
_SMALL_CSV_BYTES = 8 << 10  # a whole CSV input this small may be parsed without pyarrow
_PLAIN_NUMBER = r"[-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?"  # [0-9]: \d would take digits of any script


def _newline_blocks(stream, size: int) -> Iterator[bytes]:
    r"""Blocks of about `size` bytes that end just after a line end (the last one at the end of the stream).

    A line ends at ``\n``, ``\r\n`` or a lone ``\r``. A block may end between the ``\r`` and
    ``\n`` of a CRLF: the next then starts with an empty line, which the CSV reader skips. A
    last line without a line end stays in the last block rather than making a batch of its own.
    """
    rest = b""
    while True:
        data = stream.read(size)
        if len(data) < size:  # likely the end (a buffered stream reads short only there): make sure
            more = stream.read(size) if data else b""
            if not more:
                if rest or data:
                    yield rest + data
                return
            data += more
        cut = max(data.rfind(b"\n"), data.rfind(b"\r")) + 1
        if cut == 0:  # no line end in this block: a very long line continues
            rest += data
            continue
        yield rest + data[:cut]
        rest = data[cut:]


def _rechunk(record_batch: pa.RecordBatch, rows: int) -> Iterator[pa.RecordBatch]:
    for start in range(0, max(record_batch.num_rows, 1), rows):
        piece = record_batch.slice(start, rows)
        if piece.num_rows:
            yield piece


class NdjsonInput(Input):
    """Newline-delimited JSON records, streamed with pyarrow's JSON reader.

    A column's type is that of its first non-null value in the first 64 KiB (a column that is
    null there is read as numbers); every later value must have the same JSON type.
    """

    format = "ndjson"
    _whitespace_is_blank = True

    def __init__(self, display, head: bytes, stream, reopen) -> None:
        super().__init__(display)
        self._stream = stream
        self._track_lines(stream, reopen)
        text = head.removeprefix(_BOM)
        body = text.lstrip()
        row = len(_LINE_END.findall(text, 0, len(text) - len(body))) + 1  # after leading blank lines
        lines = _LINE_END.split(body)
        try:
            record = _json_loads(lines[0])
        except ValueError as error:
            raise InputError(_json_message(error), file=display, row=row, hint=_json_hint(error)) from None
        if not isinstance(record, dict):
            raise InputError("a line is not a JSON object", file=display, row=row, hint="each line must be {...}")
        kinds = {name: _json_kind(value) for name, value in record.items()}
        for line in lines[1:-1]:  # the head's other complete lines, for columns that start with null
            if "null" not in kinds.values():
                break
            try:
                later = _json_loads(line) if line.strip() else {}
            except ValueError:
                break  # reported when the data is read
            for name, kind in kinds.items():
                if kind == "null" and isinstance(later, dict):
                    kinds[name] = _json_kind(later.get(name))
        self._kinds = {name: "number" if kind == "null" else kind for name, kind in kinds.items()}
        self._set_columns(_arrow_fields(pa.schema([(n, _arrow_kind(k)) for n, k in self._kinds.items()])))

    def record_batches(self, names, settings, numeric=frozenset()):
        import pyarrow.json as pa_json

        schema = pa.schema([(n, _arrow_kind(self._kinds[n])) for n in names])
        done = 0
        try:
            reader = pa_json.open_json(
                self._stream,
                read_options=pa_json.ReadOptions(block_size=max(1 << 16, settings.batch_rows * 64)),
                parse_options=pa_json.ParseOptions(explicit_schema=schema, unexpected_field_behavior="ignore"),
            )
            for record_batch in reader:
                yield from _rechunk(record_batch, settings.batch_rows)
                done += record_batch.num_rows
        except pa.ArrowInvalid as error:
            raise self._locate(error, names, done) from None

    def close(self) -> None:
        self._stream.close()

    def _locate(self, error: Exception, names: list[str], done: int) -> InputError:
        """The error pyarrow found, on its line: found again by reading the file line by line,
        or for a stream that cannot be reread, from pyarrow's message (`done` records were read)."""
        if self._reopen is not None:
            with self._reopen() as stream, io.TextIOWrapper(stream, encoding="utf-8-sig", errors="replace") as lines:
                for number, line in enumerate(lines, 1):  # universal newlines: \n, \r\n and \r end a line
                    if not line.strip():
                        continue
                    try:
                        record = _json_loads(line.rstrip("\r\n"))
                    except ValueError as bad:
                        return InputError(_json_message(bad), file=self.display, row=number, hint=_json_hint(bad))
                    if not isinstance(record, dict):
                        return InputError(
                            "line is not a JSON object", file=self.display, row=number, hint="each line must be {...}"
                        )
                    for name in names:
                        misfit = _misfit(record.get(name), self._kinds[name])
                        if misfit is not None:
                            return InputError(
                                f"{misfit} where earlier rows have {_expected(self._kinds[name])}",
                                file=self.display,
                                row=number,
                                column=name,
                                hint="use one type per column",
                            )
        message = str(error).removeprefix("JSON parse error: ")
        # e.g. "Column(/y_pred) changed from number to string in row 3" (the row counts from the block's start)
        changed = re.match(r"Column\(/(.*?)(/\[\])?\) changed from (\w+) to (\w+)(?: in row (\d+))?", message)
        if changed:
            name, inner, before, after, row = changed.groups()
            words = {"number": "a number", "string": "text", "boolean": "a boolean", "object": "an object"}
            words["array"] = "a list"
            got, had = words.get(after, after), words.get(before, before)
            return InputError(
                f"a list holding {got} where earlier rows have a list of numbers"
                if inner
                else f"{got} where earlier rows have {had}",
                file=self.display,
                row=None if row is None else self.user_row(done + int(row)),
                column=name,
                hint="use one type per column",
            )
        return InputError(
            f"invalid JSON: {message}", file=self.display, hint="check that every line is one JSON object"
        )


_LINE_END = re.compile(rb"\r\n|\r|\n")
_JSON_DEPTH = 100  # deeper than any record cecli reads (3 levels: array, object, list)
_JSON_HINT = "cecli reads records of numbers, text, booleans and lists of numbers"
_KIND_WORDS = {"number": "a number", "boolean": "a boolean", "text": "text", "list": "a list", "object": "an object"}
_KIND_PLURALS = {"number": "numbers", "boolean": "booleans", "text": "text", "list": "lists", "object": "objects"}


class _TooDeep(json.JSONDecodeError):
    """JSON nested deeper than Python's parser follows (it raised RecursionError)."""


def _json_int(text: str) -> int | float:
    """A JSON integer: an int when it fits int64 (class labels stay integers), else the nearest float64.

    JSON sets no size limit on numbers. As CSV and NDJSON (read by pyarrow) do, a number
    outside the int64 range is read as float64 (``inf`` beyond about 1.8e308); the checks on
    values then judge it (a 30-digit label is outside the classes, a 30-digit logit is fine).
    """
    if len(text) <= 20:
        value = int(text)
        if -(1 << 63) <= value < 1 << 63:
            return value
    return float(text)


def _widen(value):
    """`value` with its integers beyond int64 as `_json_int` reads them (in lists and objects too)."""
    if isinstance(value, int) and not isinstance(value, bool) and not -(1 << 63) <= value < 1 << 63:
        return _json_int(str(value))
    if isinstance(value, list):
        return [_widen(item) for item in value]
    if isinstance(value, dict):
        return {key: _widen(item) for key, item in value.items()}
    return value


def _json_loads(text: str | bytes, **options):
    """``json.loads``, with too deep nesting a JSONDecodeError and integers of any length read.

    Integers too long for Python's ``int`` (over 4300 digits) are read as `_json_int` reads
    them; the other integers beyond int64 are widened when their column is made (`_widen`).
    ``NaN``, ``Infinity`` and ``-Infinity`` (which Python's json writes) are read as numbers, as
    pyarrow's NDJSON reader reads them; the checks on values then judge them.
    """
    if isinstance(text, bytes):
        text = text.decode("utf-8")
    try:
        try:
            return json.loads(text, **options)
        except ValueError as error:
            if isinstance(error, json.JSONDecodeError) or "digits" not in str(error):
                raise
            return json.loads(text, parse_int=_json_int, **options)
    except RecursionError:
        depth = 0
        for token in re.finditer(r'"(?:[^"\\]|\\.)*"|[\[\]{}]', text):
            depth += {"[": 1, "{": 1, "]": -1, "}": -1}.get(token.group(), 0)
            if depth > _JSON_DEPTH:
                raise _TooDeep("nested too deeply", text, token.start()) from None
        raise _TooDeep("nested too deeply", text, 0) from None


def _json_hint(error: ValueError) -> str:
    return _JSON_HINT if isinstance(error, _TooDeep) else "each line must be one JSON object"


def _json_message(error: ValueError) -> str:
    if isinstance(error, _TooDeep):
        return f"JSON nested too deeply at column {error.colno}"
    if isinstance(error, json.JSONDecodeError):
        return f"invalid JSON at column {error.colno}: {error.msg}"
    return f"invalid JSON: {error}"  # e.g. invalid UTF-8


def _json_kind(value) -> str:
    """The JSON type of a parsed value: null, boolean, number, text, list or object."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "text"
    return "list" if isinstance(value, list) else "object"


def _arrow_kind(kind: str) -> pa.DataType:
    """The Arrow type an NDJSON column of a JSON type is read as (lists as lists of numbers)."""
    if kind == "list":
        return pa.list_(pa.float64())
    if kind == "object":
        return pa.struct([])  # a column of objects is listed, and refused if chosen
    return {"boolean": pa.bool_(), "text": pa.string()}.get(kind, pa.float64())


def _expected(kind: str) -> str:
    return "a list of numbers" if kind == "list" else _KIND_WORDS[kind]


def _misfit(value, kind: str) -> str | None:
    """What `value` is when it is not of JSON type `kind`, else ``None`` (null fits every type)."""
    got = _json_kind(value)
    if got == "null" or (got == kind and got != "list"):
        return None
    if got != kind:
        return _KIND_WORDS[got]
    odd = next((_json_kind(item) for item in value if _json_kind(item) not in ("number", "null")), None)
    return None if odd is None else f"a list holding {_KIND_WORDS[odd]}"


def _first_misfit(values: list) -> tuple[int, str] | None:
    """The 1-based row and description of the first value whose JSON type differs from the values before it.

    Items of lists are compared with the items before them in the same way.
    """
    first = inner = None
    for number, value in enumerate(values, 1):
        kind = _json_kind(value)
        if kind == "null":
            continue
        first = first or kind
        if kind != first:
            return number, f"{_KIND_WORDS[kind]} where earlier rows have {_KIND_WORDS[first]}"
        for item in value if kind == "list" else ():
            item_kind = _json_kind(item)
            if item_kind == "null":
                continue
            inner = inner or item_kind
            if item_kind != inner:
                return (
                    number,
                    f"a list holding {_KIND_WORDS[item_kind]} where earlier values are {_KIND_PLURALS[inner]}",
                )
    return None


class JsonInput(Input):
    """A JSON document: an array of records, or an object of equally long columns.

    Each column holds one JSON type (booleans are not numbers; a list column holds lists of one type).
    """

    format = "json"

    def __init__(self, display, stream) -> None:
        super().__init__(display)
        try:
            document = _json_loads(stream.read().decode("utf-8-sig"), object_pairs_hook=_unique_keys)
        except UnicodeDecodeError:
            raise InputError("invalid UTF-8 text", file=display, hint="save the file as UTF-8") from None
        except _DuplicateKey as error:
            raise InputError(
                f"duplicate key {error.key!r} in a JSON object", file=display, hint="give every column a unique name"
            ) from None
        except _TooDeep as error:
            raise InputError(
                f"JSON nested too deeply at line {error.lineno} column {error.colno}", file=display, hint=_JSON_HINT
            ) from None
        except ValueError as error:
            raise InputError(
                f"invalid JSON at line {error.lineno} column {error.colno}: {error.msg}",
                file=display,
                hint="for one record per line use --input-format ndjson",
            ) from None
        finally:
            stream.close()
        columns = self._columns_of(document)
        arrays = {name: self._column(name, values) for name, values in columns.items()}
        self.table = pa.table(arrays) if arrays else pa.table({})
        self._set_columns(_arrow_fields(self.table.schema))

    def _column(self, name: str, values: list) -> pa.Array:
        """The Arrow array of a column, or an InputError naming the first value unlike those before it."""
        odd = None
        try:
            array = pa.array(values)
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError) as error:
            odd = _first_misfit(values)
            if odd is None:
                try:
                    array = pa.array(_widen(values))  # integers beyond int64 become float64
                except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
                    raise InputError(
                        f"cannot read the column: {_one_line(error)}",
                        file=self.display,
                        column=name,
                        hint="use one type per column",
                    ) from None
        else:
            # pyarrow reads [1.5, true] as [1.5, 1.0]: booleans among numbers are refused here too.
            odd = _first_misfit(values) if _has_boolean(array.type, values) else None
        if odd is not None:
            raise InputError(odd[1], file=self.display, row=odd[0], column=name, hint="use one type per column")
        return array

    def _columns_of(self, document) -> dict[str, list]:
        if document == [] or document == {}:
            raise InputError(
                f"the JSON document is {json.dumps(document)}: no records",
                file=self.display,
                hint='use [{"y_true": 1, "y_pred": 0.9}, ...] or {"y_true": [...], "y_pred": [...]}',
            )
        if isinstance(document, dict):
            lengths = {name: len(v) if isinstance(v, list) else None for name, v in document.items()}
            for name, length in lengths.items():
                if length is None:
                    raise InputError(
                        "column is not a list", file=self.display, column=name, hint='use {"column": [v1, v2, ...]}'
                    )
            if len(set(lengths.values())) > 1:
                first = next(iter(lengths))
                odd = next(n for n, k in lengths.items() if k != lengths[first])
                raise InputError(
                    f"has {lengths[odd]} values but {first!r} has {lengths[first]}",
                    file=self.display,
                    column=odd,
                    hint="every column needs one value per row",
                )
            return document
        if isinstance(document, list):
            names: dict[str, None] = {}
            for number, record in enumerate(document, 1):
                if not isinstance(record, dict):
                    raise InputError(
                        "record is not a JSON object", file=self.display, row=number, hint="use [{...}, {...}]"
                    )
                names.update(dict.fromkeys(record))
            return {name: [record.get(name) for record in document] for name in names}
        raise InputError(
            "JSON must be an array of records or an object of columns",
            file=self.display,
            hint='use [{"y_true": 1, "y_pred": 0.9}] or {"y_true": [...], "y_pred": [...]}',
        )

    def record_batches(self, names, settings, numeric=frozenset()):
        yield from self.table.select(names).to_batches(max_chunksize=settings.batch_rows)


class _DuplicateKey(Exception):
    def __init__(self, key: str) -> None:
        self.key = key


def _unique_keys(pairs: list[tuple[str, object]]) -> dict:
    keys = [k for k, _ in pairs]
    if len(set(keys)) != len(keys):
        raise _DuplicateKey(next(k for k in keys if keys.count(k) > 1))
    return dict(pairs)


def _has_boolean(arrow_type: pa.DataType, values: list) -> bool:
    """Whether a column that pyarrow read as numbers (or lists of numbers) holds a boolean."""
    if pa.types.is_floating(arrow_type):
        return any(type(value) is bool for value in values)
    if pa.types.is_list(arrow_type) and pa.types.is_floating(arrow_type.value_type):
        return any(type(item) is bool for value in values if value for item in value)
    return False


class ParquetInput(Input):
    """Parquet, read by row group / record batch; a pipe is buffered in memory first."""

    format = "parquet"

    def __init__(self, display, stream, plain_path: str | None) -> None:
        super().__init__(display)
        import pyarrow.parquet as pq

        try:
            source = plain_path if plain_path is not None else pa.BufferReader(stream.read())
            if plain_path is not None:
                stream.close()
            # pre_buffer=False: read a row group at a time, so memory does not grow with the file.
            self.file = pq.ParquetFile(source, pre_buffer=False)
            schema = self.file.schema_arrow
        except (pa.ArrowException, OSError) as error:
            raise InputError(
                f"not a readable Parquet file: {_one_line(error)}",
                file=display,
                hint="the file may be truncated or corrupt",
            ) from None
        self._set_columns(_arrow_fields(schema))

    def position(self) -> int | None:
        total = self.file.metadata.num_rows
        return None if self.size is None or not total else int(self.size * self._rows_read / total)

    def record_batches(self, names, settings, numeric=frozenset()):
        self._rows_read = 0
        try:
            # One decoding thread: the caller's math has the other core (pyarrow's pool would compete).
            batches = self.file.iter_batches(batch_size=settings.batch_rows, columns=names, use_threads=False)
            for record_batch in batches:
                self._rows_read += record_batch.num_rows
                yield record_batch
        except (pa.ArrowException, OSError) as error:
            raise InputError(
                f"cannot read Parquet data: {_one_line(error)}",
                file=self.display,
                hint="the file may be truncated or corrupt",
            ) from None

    def close(self) -> None:
        self.file.close()


def _one_line(error: Exception) -> str:
    """An error's text on one line (pyarrow's may span several)."""
    return "; ".join(line.strip() for line in str(error).splitlines() if line.strip())


def aligned(left: Iterator[Batch], right: Iterator[Batch], *, left_name: str, right_name: str) -> Iterator[Batch]:
    """Merge two batch streams record by record (for ``--labels``), re-slicing as needed.

    Raises
    ------
    InputError
        If one stream ends before the other.
    """
    pending: list[Batch] = []
    right_iter = iter(right)
    buffer: Batch | None = None
    seen_left = 0
    for batch in left:
        seen_left += batch.size
        pending_rows = batch.size
        parts = []
        while pending_rows:
            if buffer is None or buffer.size == 0:
                buffer = next(right_iter, None)
                if buffer is None:
                    raise InputError(
                        f"has fewer rows than {left_name}",
                        file=right_name,
                        hint="--labels needs exactly one row per input row",
                    )
            take = min(pending_rows, buffer.size)
            parts.append(_slice(buffer, 0, take))
            buffer = _slice(buffer, take, buffer.size)
            pending_rows -= take
        merged = Batch(
            batch.offset,
            batch.size,
            dict(batch.arrays),
            dict(batch.keep),
            dict(batch.groups),
            dict(batch.kept),
            dict(batch.nonfinite),
        )
        for role in parts[0].arrays if parts else ():
            merged.arrays[role] = np.concatenate([p.arrays[role] for p in parts])
        yield merged
    del pending
    leftover = (buffer.size if buffer is not None else 0) + sum(b.size for b in right_iter)
    if leftover:
        raise InputError(
            f"has {leftover} more rows than {left_name} ({seen_left})",
            file=right_name,
            hint="--labels needs exactly one row per input row",
        )


def _slice(batch: Batch, start: int, stop: int) -> Batch:
    return Batch(
        batch.offset + start,
        stop - start,
        {k: v[start:stop] for k, v in batch.arrays.items()},
        {k: v[start:stop] for k, v in batch.keep.items()},
        {k: (codes[start:stop], values) for k, (codes, values) in batch.groups.items()},
        {k: v.slice(start, stop - start) for k, v in batch.kept.items()},
        dict(batch.nonfinite),
    )
