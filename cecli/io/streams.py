"""Byte streams under the readers: line counting, read and decompression errors that name the
file, peeking and decompression.

A failure to read or decompress the bytes is an InputError naming the file wherever it surfaces (see `_Chain`).
"""

from __future__ import annotations

import bisect
import io
import re
import sys
from array import array as _typed_array

from cecli.errors import InputError

from .base import pa

_EXTENSIONS = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".json": "json",
    ".ndjson": "ndjson",
    ".jsonl": "ndjson",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".arrow": "arrow",
    ".arrows": "arrow",
    ".feather": "arrow",
    ".ipc": "arrow",
    ".npy": "npy",
    ".npz": "npz",
}


_COMPRESSIONS = {".gz": "gzip", ".bz2": "bz2", ".zst": "zstd", ".zstd": "zstd"}


_MAGIC = ((b"\x1f\x8b", "gzip"), (b"BZh", "bz2"), (b"\x28\xb5\x2f\xfd", "zstd"))


# The first bytes of the binary formats, for sniffing (read by `sources._sniff` and the readers).
ARROW_FILE_MAGIC = b"ARROW1\x00\x00"  # the magic and its padding: text does not begin so
ARROW_STREAM_MAGIC = b"\xff\xff\xff\xff"  # the continuation marker that opens every message of a stream
FEATHER_V1_MAGIC = b"FEA1"
NPY_MAGIC = b"\x93NUMPY"
ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")  # a member's local header; an empty archive's end record


_HEAD_BYTES = 1 << 16


_BOM = b"\xef\xbb\xbf"


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


def _reopen(path: str, display: str, codec: str | None):
    """The file again from its start, guarded as at open (for a second pass that locates an error)."""
    stream = io.BufferedReader(_Chain(b"", open(path, "rb"), display))  # noqa: SIM115 - closed by the caller
    return io.BufferedReader(_Chain(b"", _decompress(stream, codec), display, codec, stream)) if codec else stream
