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
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NamedTuple

from wcmatch import glob as wcglob

from smarthole_notes.vault.errors import VaultError
from smarthole_notes.vault.names import is_hidden, nfc, protected_name

_SIMPLE_SUFFIX = re.compile(r"\*(\.[A-Za-z0-9]+)\Z")
_GLOB_FLAGS = wcglob.GLOBSTAR | wcglob.IGNORECASE | wcglob.BRACE | wcglob.FORCEUNIX


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
    """Yield entries below `base` (a checked folder inside `root`), depth-first by folder."""
    root_text = str(root)
    root_prefix = root_text.rstrip(os.sep) + os.sep
    stack: list[tuple[str, str, int]] = [(str(base), base_rel, 1)]
    while stack:
        if stop is not None and stop():
            return
        folder, folder_rel, depth = stack.pop()
        try:
            with os.scandir(folder) as scan:
                items = list(scan)
        except OSError:
            continue
        for item in items:
            name = item.name
            # Hidden names (which include temporary files) and protected names in any form.
            if name[0] == "." or (not name.isascii() and is_hidden(name)):
                continue
            rel = f"{folder_rel}/{name}" if folder_rel else name
            try:
                if item.is_symlink():
                    real = os.path.realpath(item.path)
                    if not real.startswith(root_prefix):
                        continue
                    inner = real[len(root_prefix) :].split(os.sep)
                    if any(protected_name(part, include_trash=True) for part in inner):
                        continue
                    info = os.stat(real)
                    if stat.S_ISDIR(info.st_mode):
                        if include_dirs:
                            yield _entry(rel, item.path, real, info)
                        continue  # linked folders are listed, never descended into
                else:
                    real = item.path
                    info = item.stat(follow_symlinks=False)
            except OSError:
                continue
            if stat.S_ISDIR(info.st_mode):
                if include_dirs:
                    yield _entry(rel, item.path, real, info)
                if max_depth is None or depth < max_depth:
                    stack.append((item.path, rel, depth + 1))
            elif stat.S_ISREG(info.st_mode):
                yield _entry(rel, item.path, real, info)


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
        # Fast path for the common `*.md`-style name pattern.
        simple = _SIMPLE_SUFFIX.match(text) if self.by_name else None
        self._suffix = simple.group(1).lower() if simple else None

    def matches(self, rel: str) -> bool:
        if self._suffix is not None:
            name = rel[rel.rfind("/") + 1 :]
            return name.lower().endswith(self._suffix) and not name.startswith(".")
        target = rel.rsplit("/", 1)[-1] if self.by_name else rel
        return bool(self._matcher.match(nfc(target)))
