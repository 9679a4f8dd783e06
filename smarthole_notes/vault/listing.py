"""Walking the vault and matching globs, shared by list_files, search_files and move_file.

The walk skips what no tool may see: protected folders (in any spelling), hidden entries
(names starting with `.`, as Obsidian does, which covers `.trash/` and the temporary files of
atomic writes), and symbolic links whose target is outside the vault. Linked folders are not
descended into (no cycles, no escapes); linked files inside the vault are included.
"""

from __future__ import annotations

import os
import re
import stat
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NamedTuple

from wcmatch import glob as wcglob

from smarthole_notes.vault.cache import RACY_NS
from smarthole_notes.vault.errors import VaultError
from smarthole_notes.vault.names import is_hidden, nfc, protected_name

MAX_LISTINGS = 20_000  # folders whose visible names are remembered
_listings: OrderedDict[str, tuple[tuple[int, int, int, int], list[str]]] = OrderedDict()
_listings_lock = threading.Lock()
_SIMPLE_SUFFIX = re.compile(r"\*(\.[A-Za-z0-9]+)\Z")
_ANY_DEPTH_SUFFIX = re.compile(r"\*\*/\*(\.[A-Za-z0-9]+)\Z")
_GLOB_FLAGS = wcglob.GLOBSTAR | wcglob.IGNORECASE | wcglob.BRACE | wcglob.FORCEUNIX
_KIND, _FILE, _FOLDER, _LINK = stat.S_IFMT(0o177777), stat.S_IFREG, stat.S_IFDIR, stat.S_IFLNK
_BASE_FLAGS = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_CLOEXEC", 0)
_FOLDER_FLAGS = _BASE_FLAGS | getattr(os, "O_NOFOLLOW", 0)


class Entry(NamedTuple):
    """One file or folder met by a walk. `rel` is vault-relative with `/` separators."""

    rel: str
    path: str  # absolute path of the directory entry
    real: str  # resolved absolute path (differs for linked files)
    is_dir: bool
    size: int
    mtime: float
    mtime_ns: int
    ctime_ns: int
    ino: int


def walk(
    root: Path,
    base: Path,
    base_rel: str,
    *,
    max_depth: int | None = None,
    include_dirs: bool = True,
    stop: Callable[[], bool] | None = None,
) -> Iterator[Entry]:
    """Yield entries below `base` (a checked folder inside `root`), depth-first by folder.

    Each folder is opened once (not following a link) and its entries are examined relative
    to that handle, which saves the kernel a walk down the whole path for every file.
    """
    root_text = str(root)
    root_prefix = root_text.rstrip(os.sep) + os.sep
    stack: list[tuple[str, str, int]] = [(str(base), base_rel, 1)]
    while stack:
        if stop is not None and stop():
            return
        folder, folder_rel, depth = stack.pop()
        # The base folder is given already checked; subfolders were seen as folders (not
        # links) and are opened without following a link, should one replace them meanwhile.
        flags = _BASE_FLAGS if folder_rel == base_rel else _FOLDER_FLAGS
        found = _folder_entries(folder, folder_rel, root_prefix, include_dirs, flags)
        if found is None:
            continue
        entries, subfolders = found
        if max_depth is None or depth < max_depth:
            stack.extend((path, rel, depth + 1) for path, rel in subfolders)
        yield from entries


def _folder_entries(
    folder: str, folder_rel: str, root_prefix: str, include_dirs: bool, flags: int
) -> tuple[list[Entry], list[tuple[str, str]]] | None:
    """One folder's visible entries and the subfolders to descend into; None if unreadable."""
    try:
        fd = os.open(folder, flags)
    except OSError:
        return None
    try:
        try:
            names = _visible_names(folder, fd)
        except OSError:
            return None
        entries: list[Entry] = []
        subfolders: list[tuple[str, str]] = []
        prefix = folder.rstrip(os.sep) + os.sep
        rel_prefix = folder_rel + "/" if folder_rel else ""
        lstat = os.lstat
        new_entry = tuple.__new__
        for name in names:
            try:
                info = lstat(name, dir_fd=fd)
            except OSError:
                continue
            kind = info.st_mode & _KIND
            if kind == _FILE:
                path = prefix + name
                entries.append(
                    new_entry(
                        Entry,
                        (
                            rel_prefix + name,
                            path,
                            path,
                            False,
                            info.st_size,
                            info.st_mtime,
                            info.st_mtime_ns,
                            info.st_ctime_ns,
                            info.st_ino,
                        ),
                    )
                )
            elif kind == _FOLDER:
                path, rel = prefix + name, rel_prefix + name
                if include_dirs:
                    entries.append(_entry(rel, path, path, info))
                subfolders.append((path, rel))
            elif kind == _LINK:
                path, rel = prefix + name, rel_prefix + name
                linked = _linked(rel, path, root_prefix)
                if linked is not None and (include_dirs or not linked.is_dir):
                    entries.append(linked)  # linked folders are never descended into
        return entries, subfolders
    finally:
        os.close(fd)


def _visible_names(folder: str, fd: int) -> list[str]:
    """The names in an open folder that a walk may show, from the listing cache if the folder
    has not changed since (adding, removing or renaming an entry changes its mtime and ctime;
    as for file contents, only listings at least RACY_NS older than the folder are kept)."""
    info = os.fstat(fd)
    signature = (info.st_dev, info.st_ino, info.st_mtime_ns, info.st_ctime_ns)
    found = _listings.get(folder)
    if found is not None and found[0] == signature:
        return found[1]
    listed_at = time.time_ns()
    # Hidden names (which include temporary files) and protected names in any form.
    names = [
        name
        for name in os.listdir(fd)
        if name[0] != "." and (name.isascii() or not is_hidden(name))
    ]
    if listed_at - max(info.st_mtime_ns, info.st_ctime_ns) >= RACY_NS:
        with _listings_lock:
            _listings[folder] = (signature, names)
            _listings.move_to_end(folder)
            while len(_listings) > MAX_LISTINGS:
                _listings.popitem(last=False)
    return names


def _linked(rel: str, path: str, root_prefix: str) -> Entry | None:
    """A symbolic link's entry if it leads to a file or folder inside the vault."""
    try:
        real = os.path.realpath(path)
        if not real.startswith(root_prefix):
            return None
        inner = real[len(root_prefix) :].split(os.sep)
        if any(protected_name(part, include_trash=True) for part in inner):
            return None
        info = os.stat(real)
    except OSError:
        return None
    if not (stat.S_ISDIR(info.st_mode) or stat.S_ISREG(info.st_mode)):
        return None
    return _entry(rel, path, real, info)


def _entry(rel: str, path: str, real: str, info: os.stat_result) -> Entry:
    return Entry(
        rel=rel,
        path=path,
        real=real,
        is_dir=stat.S_ISDIR(info.st_mode),
        size=info.st_size,
        mtime=info.st_mtime,
        mtime_ns=info.st_mtime_ns,
        ctime_ns=info.st_ctime_ns,
        ino=info.st_ino,
    )


class Glob:
    """A case-insensitive glob (`*`, `?`, `**`, `[abc]`, `{a,b}`) over vault-relative paths.

    With `anywhere=True` a pattern without `/` matches the name at any depth (`*.md` means
    every note), like a `.gitignore` line; otherwise it is anchored at the base folder.
    """

    def __init__(self, pattern: str, *, anywhere: bool) -> None:
        text = nfc(pattern.strip().replace("\\", "/")).strip("/")
        if not text:
            text = "*"
        if "\x00" in text:
            raise VaultError("the glob pattern contains a NUL byte")
        if any(part == ".." for part in text.split("/")):
            raise VaultError("a glob pattern cannot contain '..'; use the path argument")
        self.pattern = text
        self.by_name = anywhere and "/" not in text
        self.recursive = self.by_name or "**" in text
        self.depth = None if self.recursive else text.count("/") + 1
        try:
            self._matcher = wcglob.compile(text, flags=_GLOB_FLAGS)
        except Exception as exc:  # wcmatch raises several types for bad patterns
            raise VaultError(f"invalid glob pattern {pattern!r}: {exc}") from None
        # Fast paths for the common `*.md` (by name) and `**/*.md` (any depth) patterns, for
        # names whose last characters are ASCII: there they agree with the matcher exactly.
        # Other names (case folding and normalisation beyond ASCII) go to the matcher.
        simple = _SIMPLE_SUFFIX.match(text) if self.by_name else _ANY_DEPTH_SUFFIX.match(text)
        self._suffix = simple.group(1).lower() if simple else None
        self._any_depth = simple is not None and not self.by_name

    def matches(self, rel: str) -> bool:
        suffix = self._suffix
        if suffix is not None:
            tail = rel[-len(suffix) :]
            if tail.isascii() and not tail.endswith("\n"):
                if tail.lower() != suffix:
                    return False
                if self._any_depth:  # and no folder on the way is hidden
                    return not rel.startswith(".") and "/." not in rel
                return not rel.startswith(".", rel.rfind("/") + 1)
        target = rel.rsplit("/", 1)[-1] if self.by_name else rel
        return bool(self._matcher.match(nfc(target)))
