"""Remote inputs (URLs): filesystems, time limits, and URLs redacted before they are shown."""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable

from cecli.errors import InputError, OptionError

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
