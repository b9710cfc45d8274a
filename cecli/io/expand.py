"""Sources to files: folders walked, glob patterns matched, URL prefixes listed, and file identities."""

from __future__ import annotations

import io
import os
import sys
from collections import deque
from collections.abc import Callable, Iterator

from cecli.errors import InputError

from .base import pa
from .remote import _filesystem, _local_path, _remote, _scrub, redact
from .streams import _COMPRESSIONS, _EXTENSIONS


def _expand_url(url: str) -> list[tuple[str, dict[str, str | None]]]:
    """A URL naming a folder lists its data files (recursively, sorted) with their hive
    partitions (see :func:`hive_partitions`); a file stays as is, without partitions.

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
            return [(url, {})]
        return [
            (f"file://{path}{suffix}", hive_partitions(os.path.relpath(path, local)))
            for path in _walk_folder(local, redact(url))
        ]
    return _remote(lambda: _list_url(url), redact(url))


def _list_url(url: str) -> list[tuple[str, dict[str, str | None]]]:
    from pyarrow import fs

    display = redact(url)
    try:
        filesystem, inner = _filesystem(url)
        if filesystem.get_file_info(inner).type != fs.FileType.Directory:
            return [(url, {})]
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
    suffix = f"?{query}" if query else ""
    # e.g. s3://bucket/key
    return [(f"{scheme}://{path}{suffix}", hive_partitions(path[len(inner) :].lstrip("/"))) for path in found]


_NULL_PARTITION = "__HIVE_DEFAULT_PARTITION__"


def hive_partitions(below: str) -> dict[str, str | None]:
    """The hive partition keys of a file at `below` (its path under the folder given), as text.

    Each folder name ``key=value`` (split at the first ``=``) gives ``key`` the value
    ``value``, both percent-decoded as pyarrow's ``partitioning="hive"`` does; an empty
    value or ``__HIVE_DEFAULT_PARTITION__`` is null (``None``); other folder names give no key.

    >>> hive_partitions("split=a/day=2024-01-02/part-0.parquet")
    {'split': 'a', 'day': '2024-01-02'}
    >>> hive_partitions("raw/split=/x=__HIVE_DEFAULT_PARTITION__/p.csv")
    {'split': None, 'x': None}

    Raises
    ------
    InputError
        If one key names two folders of the path (``a=1/a=2/``).
    """
    from urllib.parse import unquote

    found: dict[str, str | None] = {}
    for part in below.replace(os.sep, "/").split("/")[:-1]:
        key, equals, value = part.partition("=")
        if not equals or not key:
            continue
        key, value = unquote(key), unquote(value)
        if key in found:
            raise InputError(
                f"the partition key {key!r} names two folders of the path {below}", hint="use each key once per path"
            )
        found[key] = None if value in ("", _NULL_PARTITION) else value
    return found


_DATA_SUFFIXES = tuple(_EXTENSIONS) + tuple(e + c for e in _EXTENSIONS for c in _COMPRESSIONS)


def expand_sources(paths: list[str]) -> list[str]:
    """Expand folders (recursively) and globs into a sorted list of files (see :func:`expand_partitioned`)."""
    return [path for path, _ in expand_partitioned(paths)]


def expand_partitioned(paths: list[str]) -> list[tuple[str, dict[str, str | None]]]:
    """Expand folders (recursively) and globs into a sorted list of (file, hive partitions) pairs.

    Files in a folder are those with a data extension (``.csv``, ``.parquet``, ...,
    optionally compressed); names starting with ``.`` or ``_`` (``_SUCCESS``) are
    skipped. Links are followed, but a folder or a file reached twice (through a link
    such as ``latest -> run2``, or a loop such as ``loop -> .``) is read once: under a
    path without links if it has one, else under its first path in sorted order. A
    folder or link that cannot be read is an error that names it, never skipped. A
    pattern that matches nothing is an error.

    A file found in a folder given (local or URL) has the hive partitions of its path below
    that folder (:func:`hive_partitions`: ``split=a/part-0.parquet`` gives ``split``); a file
    given itself or matched by a glob has none.
    """
    expanded: list[tuple[str, dict[str, str | None]]] = []
    for path in paths:
        if path == "-":
            expanded.append((path, {}))
        elif "://" in path:
            expanded.extend(_expand_url(path))
        elif os.path.isdir(path):
            found = _walk_folder(path, path)
            expanded.extend((file, hive_partitions(os.path.relpath(file, path))) for file in found)
        elif not os.path.lexists(path) and any(ch in path for ch in "*?["):
            expanded.extend((found, {}) for found in _glob(path))
        else:
            expanded.append((path, {}))
    if [path for path, _ in expanded].count("-") > 1:
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
    try:
        return _would_read_local(source, path)
    except OSError:  # a path that cannot be resolved (permissions): the write itself will say why
        return False


def _would_read_local(source: str, path: str) -> bool:
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
