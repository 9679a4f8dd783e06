"""Which vault files changed since last asked, from Linux inotify, without a thread.

A move must know every note that links to what moves, including notes Obsidian edited a
second ago; checking every note's signature costs a system call per note, which grows with
the vault. inotify queues each change in the kernel as it happens, so draining the queue
(non-blocking) just before a move says exactly which entries changed. Where inotify is not
available, or its queue overflowed, or a folder was added, removed or renamed, the caller
rescans the vault instead (`Changes.rescan`).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import struct
import sys
from dataclasses import dataclass, field

_IN_MODIFY = 0x002
_IN_ATTRIB = 0x004
_IN_CLOSE_WRITE = 0x008
_IN_MOVED_FROM = 0x040
_IN_MOVED_TO = 0x080
_IN_CREATE = 0x100
_IN_DELETE = 0x200
_IN_DELETE_SELF = 0x400
_IN_MOVE_SELF = 0x800
_IN_Q_OVERFLOW = 0x4000
_IN_IGNORED = 0x8000
_IN_ONLYDIR = 0x01000000
_IN_DONT_FOLLOW = 0x02000000
_IN_ISDIR = 0x40000000
_MASK = (
    _IN_MODIFY
    | _IN_ATTRIB
    | _IN_CLOSE_WRITE
    | _IN_MOVED_FROM
    | _IN_MOVED_TO
    | _IN_CREATE
    | _IN_DELETE
    | _IN_DELETE_SELF
    | _IN_MOVE_SELF
    | _IN_ONLYDIR
    | _IN_DONT_FOLLOW
)
_HEADER = struct.Struct("iIII")
_IN_NONBLOCK = os.O_NONBLOCK
_IN_CLOEXEC = getattr(os, "O_CLOEXEC", 0)


@dataclass
class Changes:
    paths: set[str] = field(default_factory=set)  # vault-relative entries that changed
    rescan: bool = False  # the changes are unknown: rescan the whole vault


class Watcher:
    """One inotify instance watching the vault's visible folders."""

    def __init__(self, fd: int, libc: ctypes.CDLL) -> None:
        self._fd = fd
        self._libc = libc
        self._folders: dict[int, str] = {}  # watch descriptor -> folder, vault-relative
        self.broken = False  # a folder could not be watched: changes may be missed

    @classmethod
    def create(cls) -> Watcher | None:
        if not sys.platform.startswith("linux"):
            return None
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
            fd = libc.inotify_init1(_IN_NONBLOCK | _IN_CLOEXEC)
        except (OSError, AttributeError):
            return None
        return cls(fd, libc) if fd >= 0 else None

    def forget(self) -> None:
        """Before a rescan re-adds every folder (the kernel keeps descriptors per folder)."""
        self._folders.clear()
        self.broken = False

    def watch(self, path: str, rel: str) -> None:
        wd = self._libc.inotify_add_watch(self._fd, os.fsencode(path), _MASK)
        if wd < 0:
            self.broken = True  # e.g. the watch limit: fall back to rescanning
            return
        self._folders[wd] = rel

    def changes(self) -> Changes:
        found = Changes(rescan=self.broken)
        while True:
            try:
                data = os.read(self._fd, 1 << 16)
            except BlockingIOError:
                return found
            except OSError:
                found.rescan = True
                return found
            offset = 0
            while offset + _HEADER.size <= len(data):
                wd, mask, _cookie, size = _HEADER.unpack_from(data, offset)
                raw = data[offset + _HEADER.size : offset + _HEADER.size + size]
                offset += _HEADER.size + size
                if mask & (_IN_Q_OVERFLOW | _IN_DELETE_SELF | _IN_MOVE_SELF):
                    found.rescan = True
                    continue
                if mask & _IN_IGNORED:
                    self._folders.pop(wd, None)
                    continue
                folder = self._folders.get(wd)
                name = os.fsdecode(raw.rstrip(b"\x00"))
                if folder is None or not name:
                    continue
                if mask & _IN_ISDIR and mask & (
                    _IN_CREATE | _IN_DELETE | _IN_MOVED_TO | _IN_MOVED_FROM
                ):
                    found.rescan = True  # a folder appeared or left: its files did too
                    continue
                found.paths.add(f"{folder}/{name}" if folder else name)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
