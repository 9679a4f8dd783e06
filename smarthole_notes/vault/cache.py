"""An in-memory cache of note contents, for repeated searches over a large vault.

An entry is keyed by the file's resolved path and validated by its inode, size, mtime_ns and
ctime_ns. ctime cannot be set by programs (unlike mtime), so any write changes the key, except
two writes within one timestamp tick. To rule that out ("racy" entries, as git calls them), a
file is only cached once its last change is at least `RACY_SECONDS` older than the moment it
was read; younger files are read from disk every time until they settle. The cache is bounded
in bytes and drops the least recently used entries first.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from typing import NamedTuple

RACY_SECONDS = 2.0
DEFAULT_MAX_BYTES = 256 * 1024 * 1024
MAX_ENTRY_BYTES = 4 * 1024 * 1024


class Signature(NamedTuple):
    ino: int
    size: int
    mtime_ns: int
    ctime_ns: int


class ContentCache:
    def __init__(self, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.max_bytes = max_bytes
        self._entries: OrderedDict[str, tuple[Signature, bytes]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, path: str, signature: Signature) -> bytes | None:
        # Lock-free: a dict lookup is atomic; eviction order is by insertion (refreshed on put).
        found = self._entries.get(path)
        if found is None or found[0] != signature:
            return None
        return found[1]

    def put(self, path: str, signature: Signature, data: bytes, read_at_ns: int) -> None:
        """Remember `data`, read at `read_at_ns` (time.time_ns) for a file with `signature`."""
        settled = read_at_ns - max(signature.mtime_ns, signature.ctime_ns)
        if settled < RACY_SECONDS * 1e9 or len(data) > MAX_ENTRY_BYTES:
            return
        if len(data) != signature.size:
            return  # changed between stat and read: do not remember it under that signature
        with self._lock:
            old = self._entries.pop(path, None)
            if old is not None:
                self._bytes -= len(old[1])
            self._entries[path] = (signature, data)
            self._bytes += len(data)
            while self._bytes > self.max_bytes and self._entries:
                _, (_, dropped) = self._entries.popitem(last=False)
                self._bytes -= len(dropped)

    def discard(self, path: str) -> None:
        with self._lock:
            old = self._entries.pop(path, None)
            if old is not None:
                self._bytes -= len(old[1])

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._bytes = 0

    @property
    def size_bytes(self) -> int:
        return self._bytes

    def __len__(self) -> int:
        return len(self._entries)


def now_ns() -> int:
    return time.time_ns()
