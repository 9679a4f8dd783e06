"""Which vault files changed since last asked, from Linux inotify, without a thread.

A move must know every note that links to what moves, including notes Obsidian edited a
second ago; checking every note's signature costs a system call per note, which grows with
the vault. inotify queues each change in the kernel as it happens, so draining the queue
(non-blocking) just before a move says exactly which entries changed. The system calls are
made by `inotify_simple`. Where inotify is not available, or its queue overflowed, or a
folder was added, removed or renamed, the caller rescans the vault instead
(`Changes.rescan`).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Any

try:
    from inotify_simple import INotify  # type: ignore[import-untyped]
    from inotify_simple import flags as _in
except ImportError:  # not a POSIX system: no inotify, rescan instead
    INotify = None
    _MASK = _UNKNOWN = _IGNORED = _ISDIR = _FOLDER_EVENTS = 0
else:  # plain ints: testing an event against them stays cheap
    _MASK = int(
        _in.MODIFY
        | _in.ATTRIB
        | _in.CLOSE_WRITE
        | _in.MOVED_FROM
        | _in.MOVED_TO
        | _in.CREATE
        | _in.DELETE
        | _in.DELETE_SELF
        | _in.MOVE_SELF
        | _in.ONLYDIR
        | _in.DONT_FOLLOW
    )
    _UNKNOWN = int(_in.Q_OVERFLOW | _in.DELETE_SELF | _in.MOVE_SELF)
    _IGNORED = int(_in.IGNORED)
    _ISDIR = int(_in.ISDIR)
    _FOLDER_EVENTS = int(_in.CREATE | _in.DELETE | _in.MOVED_TO | _in.MOVED_FROM)


@dataclass
class Changes:
    paths: set[str] = field(default_factory=set)  # vault-relative entries that changed
    rescan: bool = False  # the changes are unknown: rescan the whole vault


class Watcher:
    """One inotify instance watching the vault's visible folders."""

    def __init__(self, inotify: Any) -> None:
        self._inotify = inotify
        self._folders: dict[int, str] = {}  # watch descriptor -> folder, vault-relative
        self.broken = False  # a folder could not be watched: changes may be missed

    @classmethod
    def create(cls) -> Watcher | None:
        if INotify is None or not sys.platform.startswith("linux"):
            return None
        try:
            return cls(INotify())
        except (OSError, AttributeError):  # e.g. the instance limit, or no inotify in libc
            return None

    def forget(self) -> None:
        """Before a rescan re-adds every folder (the kernel keeps descriptors per folder)."""
        self._folders.clear()
        self.broken = False

    def watch(self, path: str, rel: str) -> None:
        try:
            wd = self._inotify.add_watch(path, _MASK)
        except OSError:
            self.broken = True  # e.g. the watch limit: fall back to rescanning
            return
        self._folders[wd] = rel

    def changes(self) -> Changes:
        found = Changes(rescan=self.broken)
        try:
            events = self._inotify.read(timeout=0)  # all that is queued, without waiting
        except (OSError, ValueError):  # ValueError: closed
            found.rescan = True
            return found
        for wd, mask, _cookie, name in events:
            if mask & _UNKNOWN:  # the queue overflowed, or the vault itself went
                found.rescan = True
                continue
            if mask & _IGNORED:
                self._folders.pop(wd, None)
                continue
            folder = self._folders.get(wd)
            if folder is None or not name:
                continue
            if mask & _ISDIR and mask & _FOLDER_EVENTS:
                found.rescan = True  # a folder appeared or left: its files did too
                continue
            found.paths.add(f"{folder}/{name}" if folder else name)
        return found

    def close(self) -> None:
        self._inotify.close()
