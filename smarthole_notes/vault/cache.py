"""An in-memory cache of note contents, for repeated searches over a large vault.

Two kinds of entries share one byte budget:
- single files, keyed by resolved path;
- *chunks*: the contents of a run of files (in walk order) joined by `SEPARATOR`, so that a
  search scans many notes with one regex call instead of one call per note. A chunk is keyed
  by the resolved paths of its files and validated by all of their signatures at once.

A file is validated by its inode, size, mtime_ns and ctime_ns. ctime cannot be set by programs
(unlike mtime), so any write changes the key, except two writes within one timestamp tick. To
rule that out ("racy" entries, as git calls them), a file is only cached once its last change
is at least `RACY_SECONDS` older than the moment it was read; younger files are read from disk
every time until they settle. The cache is bounded in bytes and drops the least recently used
entries first (single files before chunks, which usually hold the same bytes again).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import NamedTuple

RACY_SECONDS = 2.0
RACY_NS = int(RACY_SECONDS * 1e9)
DEFAULT_MAX_BYTES = 256 * 1024 * 1024
MAX_ENTRY_BYTES = 4 * 1024 * 1024
# Between two files of a chunk: begins and ends a line, so `^`, `$` and `\b` behave at a
# file's edges as at the edges of a file searched alone, and holds a NUL (no note contains
# one) so that few patterns can match across it. Matches that touch it are handled by the
# searcher.
SEPARATOR = b"\n\x00\n"


class Signature(NamedTuple):
    ino: int
    size: int
    mtime_ns: int
    ctime_ns: int


# A file as a chunk remembers it: (resolved path, *Signature).
FileKey = tuple[str, int, int, int, int]


@dataclass(eq=False, slots=True)
class Chunk:
    """Files' contents joined by SEPARATOR. Build once; treat as immutable."""

    key: tuple[FileKey, ...]  # every file of the run, in order: text, binary or unreadable
    data: bytes
    text: list[int]  # for each file in `data`: its position in `key`
    starts: list[int]  # for each file in `data`: where it begins and ends in `data`
    ends: list[int]
    binary: int  # files of the run left out as binary
    complete: bool = True  # False if some file could not be read
    reals: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        self.reals = tuple(file[0] for file in self.key)

    def content(self, index: int) -> bytes:
        """The bytes of the `index`-th file in `data`."""
        return self.data[self.starts[index] : self.ends[index]]


class ContentCache:
    def __init__(self, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.max_bytes = max_bytes
        self._entries: OrderedDict[str, tuple[Signature, bytes]] = OrderedDict()
        self._chunks: OrderedDict[tuple[str, ...], Chunk] = OrderedDict()
        self._where: dict[str, tuple[Chunk, int]] = {}  # path -> newest chunk holding it
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, path: str, signature: Signature) -> bytes | None:
        # Lock-free: a dict lookup is atomic; eviction order is by insertion (refreshed on put).
        found = self._entries.get(path)
        if found is not None and found[0] == signature:
            return found[1]
        held = self._where.get(path)
        if held is not None:
            chunk, index = held
            if chunk.key[chunk.text[index]][1:] == signature:
                return chunk.content(index)
        return None

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
            self._evict()

    def chunk(self, key: tuple[FileKey, ...]) -> Chunk | None:
        """The stored chunk of exactly these files with exactly these signatures, or None."""
        found = self._chunks.get(tuple(file[0] for file in key))
        if found is None or found.key != key:
            return None
        with self._lock:
            if found.reals in self._chunks:
                self._chunks.move_to_end(found.reals)
        return found

    def put_chunk(self, chunk: Chunk, read_at_ns: int) -> bool:
        """Remember `chunk`, whose files were read from `read_at_ns` on; False if refused.

        Refused unless every file was read, is settled (as for `put`), is at most
        MAX_ENTRY_BYTES and has the size its signature says. A chunk of the same files
        replaces the one stored before.
        """
        if not chunk.complete:
            return False
        for _, _, size, mtime_ns, ctime_ns in chunk.key:
            if read_at_ns - max(mtime_ns, ctime_ns) < RACY_NS or size > MAX_ENTRY_BYTES:
                return False
        key = chunk.key
        for index, position in enumerate(chunk.text):
            if chunk.ends[index] - chunk.starts[index] != key[position][2]:
                return False
        with self._lock:
            old = self._chunks.pop(chunk.reals, None)
            if old is not None:
                self._forget(old)
            self._chunks[chunk.reals] = chunk
            self._bytes += len(chunk.data)
            where = self._where
            for index, position in enumerate(chunk.text):
                where[key[position][0]] = (chunk, index)
            self._evict()
        return True

    def discard(self, path: str) -> None:
        with self._lock:
            old = self._entries.pop(path, None)
            if old is not None:
                self._bytes -= len(old[1])
            for chunk in [c for c in self._chunks.values() if path in c.reals]:
                del self._chunks[chunk.reals]
                self._forget(chunk)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._chunks.clear()
            self._where.clear()
            self._bytes = 0

    def _evict(self) -> None:
        """Drop least recently used entries until within budget (holding the lock)."""
        while self._bytes > self.max_bytes and self._entries:
            _, (_, dropped) = self._entries.popitem(last=False)
            self._bytes -= len(dropped)
        while self._bytes > self.max_bytes and self._chunks:
            _, chunk = self._chunks.popitem(last=False)
            self._forget(chunk)

    def _forget(self, chunk: Chunk) -> None:
        """Account for a chunk just removed from `_chunks` (holding the lock)."""
        self._bytes -= len(chunk.data)
        where = self._where
        for path in chunk.reals:
            held = where.get(path)
            if held is not None and held[0] is chunk:
                del where[path]

    @property
    def size_bytes(self) -> int:
        return self._bytes

    def __len__(self) -> int:
        """How many files the cache holds content for (alone or in chunks)."""
        return len(self._entries.keys() | self._where.keys())


def now_ns() -> int:
    return time.time_ns()
