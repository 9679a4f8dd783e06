"""The vault's files and which notes link by which name, kept between moves.

A move needs two things from the whole vault: every file's path (to resolve links as
Obsidian does) and the notes whose links could mean what moves. Recomputing either from
scratch costs a system call or a read per note, so both are kept here and brought up to date
before each move: from inotify's list of changed entries where available (`watch`), else by
comparing every file's signature (inode, size, mtime, ctime) with the one seen last time.
Notes are only indexed by the names their links look up (`links.link_keys`, a superset
found without parsing), so that the first index of a large vault stays cheap; the notes a
move touches are then parsed properly.
"""

from __future__ import annotations

import os
import stat
import time
import weakref
from collections.abc import Iterable
from pathlib import Path

from smarthole_notes.vault.cache import RACY_NS
from smarthole_notes.vault.errors import VaultError
from smarthole_notes.vault.files import decode_text, read_bytes
from smarthole_notes.vault.links import link_keys
from smarthole_notes.vault.listing import walk
from smarthole_notes.vault.names import is_hidden, is_markdown
from smarthole_notes.vault.resolver import LinkResolver
from smarthole_notes.vault.watch import Watcher

Signature = tuple[int, int, int, int]  # inode, size, mtime_ns, ctime_ns


class LinkGraph:
    def __init__(self, root: Path, *, watch: bool = True) -> None:
        self.root = root
        self.resolver = LinkResolver()
        self._signatures: dict[str, Signature | None] = {}  # None: racy, check again
        self._keys: dict[str, frozenset[str]] = {}  # note -> lookup names of its links
        self._notes_by_key: dict[str, set[str]] = {}
        self._linked: set[str] = set()  # entries that are symbolic links: always re-checked
        self._scanned = False
        self._watcher = Watcher.create() if watch else None
        if self._watcher is not None:
            weakref.finalize(self, self._watcher.close)

    # -- keeping up to date ----------------------------------------------------------------

    def refresh(self) -> None:
        """Bring the index up to date with the disk."""
        if self._watcher is None or not self._scanned:
            self._rescan()
            return
        changes = self._watcher.changes()
        if changes.rescan:
            self._rescan()
            return
        for rel in changes.paths | self._linked:
            self._recheck(rel)

    def _rescan(self) -> None:
        watcher = self._watcher
        if watcher is not None:
            watcher.forget()
            watcher.changes()  # what is queued is covered by this scan
            watcher.watch(str(self.root), "")
        now = time.time_ns()
        seen: set[str] = set()
        self._linked.clear()
        for entry in walk(self.root, self.root, "", include_dirs=True):
            if entry.is_dir:
                if watcher is not None and entry.path == entry.real:
                    watcher.watch(entry.path, entry.rel)
                continue
            seen.add(entry.rel)
            if entry.path != entry.real:
                self._linked.add(entry.rel)
            signature = (entry.ino, entry.size, entry.mtime_ns, entry.ctime_ns)
            if self._signatures.get(entry.rel) != signature:
                self._update(entry.rel, entry.real, signature, now)
        for rel in [rel for rel in self._signatures if rel not in seen]:
            self._forget(rel)
        self._scanned = True

    def _recheck(self, rel: str) -> None:
        parts = rel.split("/")
        if any(is_hidden(part) for part in parts):
            return  # temporary files of atomic writes, dot-files
        path = os.path.join(self.root, *parts)
        try:
            info = os.lstat(path)
            if stat.S_ISLNK(info.st_mode):
                real = os.path.realpath(path)
                if not real.startswith(str(self.root).rstrip(os.sep) + os.sep):
                    raise FileNotFoundError(path)
                info = os.stat(real)
                self._linked.add(rel)
            else:
                real = path
        except OSError:
            self._forget(rel)
            return
        if not stat.S_ISREG(info.st_mode):
            self._forget(rel)
            return
        signature = (info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns)
        self._update(rel, real, signature, time.time_ns())

    def _update(self, rel: str, real: str, signature: Signature, now: int) -> None:
        self.resolver.add(rel)
        settled = now - max(signature[2], signature[3]) >= RACY_NS
        self._signatures[rel] = signature if settled else None
        if not is_markdown(rel):
            return
        try:
            keys = link_keys(decode_text(read_bytes(Path(real)), rel))
        except (OSError, VaultError):  # unreadable, or not text: no links to follow
            keys = frozenset()
        self._set_keys(rel, keys)

    def _forget(self, rel: str) -> None:
        self._signatures.pop(rel, None)
        self._linked.discard(rel)
        self.resolver.remove(rel)
        self._set_keys(rel, frozenset())

    def _set_keys(self, rel: str, keys: frozenset[str]) -> None:
        old = self._keys.pop(rel, frozenset())
        for key in old - keys:
            notes = self._notes_by_key.get(key)
            if notes is not None:
                notes.discard(rel)
                if not notes:
                    del self._notes_by_key[key]
        for key in keys - old:
            self._notes_by_key.setdefault(key, set()).add(rel)
        if keys:
            self._keys[rel] = keys

    # -- queries ---------------------------------------------------------------------------

    def notes_linking(self, names: Iterable[str]) -> set[str]:
        """Notes with a link looked up under one of these (lower-case) file names."""
        found: set[str] = set()
        for name in names:
            found.update(self._notes_by_key.get(name, ()))
        return found

    def files_under(self, folder: str) -> list[str]:
        prefix = folder + "/"
        return [rel for rel in self.resolver.files if rel.startswith(prefix)]

    def moved(self, moved: dict[str, str]) -> None:
        """Record a move done on disk, so the index is right even before the next refresh."""
        keys = {old: self._keys.get(old, frozenset()) for old in moved}
        for old in moved:
            self._forget(old)
        for old, new in moved.items():
            self.resolver.add(new)
            self._signatures[new] = None  # read it again at the next rescan
            self._set_keys(new, keys[old])

    def refine(self, rel: str, keys: frozenset[str]) -> None:
        """A note parsed properly and left unchanged: index it by its real links only, so
        that links inside its code no longer make later moves read it."""
        if rel in self._keys:
            self._set_keys(rel, keys)

    def touched(self, rel: str) -> None:
        """A note this service rewrote: check it again at the next rescan."""
        if rel in self._signatures:
            self._signatures[rel] = None
