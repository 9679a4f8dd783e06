r"""Regex search over the vault's notes with RE2, a linear-time engine.

RE2 cannot backtrack, so `(a+)+$` costs the same as `a+$`: no regex can hang the service. A
wall-clock budget still bounds a search over a huge vault, and the result says when it
stopped early.

Speed: notes are searched as bytes, many at a time. The walk's files are grouped into runs
(chunks) whose contents are joined, with a separator, into one buffer, and one regex call
finds the next match in the whole run; a match is mapped back to its file by offset. Matches
that start in a separator are dropped, and one that runs across a separator is looked for
again within its file alone, so every file gets exactly the matches it would get searched on
its own (patterns naming the start or end of the whole text, such as `\A`, are matched file
by file). Once the walk is over, runs are scanned by the calling thread and a few helper
threads: RE2 releases the GIL while it scans a run. Only the files shown get line numbers and
excerpts. Chunks are kept in a `ContentCache`, validated by every file's (inode, size,
mtime_ns, ctime_ns), so a repeated search reads nothing from disk that did not change and
rebuilds only the runs holding a changed file.

Semantics: case-insensitive unless the pattern says `(?-i)`; `^` and `$` match at line starts
and ends; `.` does not cross lines. RE2 syntax: no look-around, no backreferences.
"""

from __future__ import annotations

import bisect
import heapq
import os
import re
import stat
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import re2

from smarthole_notes.vault.cache import (
    RACY_NS,
    SEPARATOR,
    Chunk,
    ContentCache,
    FileKey,
    Signature,
    now_ns,
)
from smarthole_notes.vault.errors import VaultError
from smarthole_notes.vault.listing import Entry, Glob, walk
from smarthole_notes.vault.names import nfc

DEFAULT_TIME_LIMIT = 10.0
MAX_COUNT = 1000  # matches counted per file
MAX_EXCERPTS = 5
MAX_LINE_CHARS = 300
MAX_FILE_BYTES = 16 * 1024 * 1024
_BINARY_SNIFF = 8192
_READ_FLAGS = (
    os.O_RDONLY
    | getattr(os, "O_NOFOLLOW", 0)
    | getattr(os, "O_CLOEXEC", 0)
    | getattr(os, "O_NONBLOCK", 0)
)
# A run of files ends after a file whose path hashes to 0 modulo CHUNK_FILES (so a change
# moves only nearby boundaries), or before it would pass CHUNK_BYTES (so no single regex
# call runs long before the time limit is checked).
CHUNK_FILES = 64
CHUNK_BYTES = 1 << 20
MAX_THREADS = 4
# Helper threads pay when a regex call takes at least this long on average (measured: about
# 1.6x faster scans at 9 µs a call on two CPUs, 1.1x at 6 µs, slower below 4 µs).
HELP_SECONDS_PER_CALL = 5e-6
# Patterns that mention the start or end of the whole text (`\A`, `\z`, or `^`/`$` with the
# multi-line flag cleared) are searched file by file: in a joined buffer those would only
# hold at the buffer's ends. Conservative: a false positive only costs speed.
_WHOLE_TEXT = re.compile(r"\\[Az]|\(\?[A-Za-z]*-[A-Za-z]*m")

Regex = Any  # re2._Regexp (untyped)


@dataclass(frozen=True, slots=True)
class ExcerptLine:
    number: int
    text: str
    is_match: bool


@dataclass(frozen=True, slots=True)
class FileHits:
    rel: str
    count: int  # capped at MAX_COUNT
    excerpts: list[list[ExcerptLine]]
    more_excerpts: int = 0


@dataclass(slots=True)
class SearchResult:
    files: list[FileHits] = field(default_factory=list)
    files_matched: int = 0
    matches: int = 0
    files_searched: int = 0
    files_considered: int = 0
    stopped_early: str | None = None
    skipped: int = 0  # binary or too large


def compile_pattern(pattern: str) -> Regex:
    """Compile for search; an invalid pattern raises VaultError quoting RE2's message."""
    options = re2.Options()
    options.case_sensitive = False
    options.log_errors = False
    options.never_capture = True
    options.max_mem = 64 << 20
    text = nfc(pattern)
    try:
        re2.compile(text, options)  # for the engine's message about the pattern as given
        return re2.compile("(?m)" + text, options)
    except re2.error as exc:
        detail = exc.args[0] if exc.args else exc
        message = detail.decode("utf-8", "replace") if isinstance(detail, bytes) else str(detail)
        raise VaultError(
            f"invalid regex {pattern!r}: {message}. The engine is RE2: no look-around or "
            "backreferences; escape special characters such as ( [ . * + ? with a backslash"
        ) from None


class _Matcher:
    """RE2's match call used directly, without building match objects (a hot loop)."""

    def __init__(self, regex: Regex, *, whole_files: bool) -> None:
        self.call: Any = getattr(regex, "_regexp", None)
        self.anchor: Any = getattr(getattr(re2, "_Anchor", None), "UNANCHORED", None)
        if self.call is None or self.anchor is None:  # pragma: no cover - other bindings
            self.call, self.anchor = _SearchShim(regex), None
        self.whole_files = whole_files

    def scan(self, chunk: Chunk, stop: Callable[[], bool]) -> _Scan:
        """The files of `chunk` that match, with their match counts."""
        if self.whole_files:
            return self._scan_files(chunk, stop)
        return self._scan_joined(chunk, stop)

    def count(self, data: bytes | memoryview, position: int, end: int, limit: int) -> int:
        """How many matches (at most `limit`) a search of a file alone finds from `position`,
        where the file is `data[:end]` or is followed in `data` by a SEPARATOR."""
        call, anchor = self.call.Match, self.anchor
        count = 0
        while count < limit and position <= end:
            start, stop = call(anchor, data, position, end)[0]
            if start < 0:
                break
            count += 1
            position = stop if stop > start else stop + 1
        return count

    def _scan_joined(self, chunk: Chunk, stop: Callable[[], bool]) -> _Scan:
        """One pass over the joined buffer; each match is mapped to its file by offset."""
        data, starts, ends = chunk.data, chunk.starts, chunk.ends
        files = len(starts)
        scan = _Scan([], 0, 0)
        hits = scan.hits
        if not files:
            return scan
        call, anchor = self.call.Match, self.anchor
        end = len(data)
        position = current = count = calls = 0
        file_end = ends[0]
        while True:
            start, finish = call(anchor, data, position, end)[0]
            calls += 1
            if start < 0:
                break
            if finish <= file_end:  # the common case: a match inside the current file
                count += 1
                if count < MAX_COUNT:
                    position = finish if finish > start else finish + 1
                    if count & 127 or not stop():
                        continue
                    hits.append((current, count))
                    scan.searched, scan.calls = current, calls
                    return scan
                index = current  # reached the cap: done with this file
            else:
                index = bisect.bisect_right(starts, start) - 1
                if index != current:
                    if count:
                        hits.append((current, count))
                    current, count, file_end = index, 0, ends[index]
                if start <= file_end:
                    if finish <= file_end:
                        count += 1
                        position = finish if finish > start else finish + 1
                        continue
                    # It runs into the separator: search the rest of this file on its own.
                    found = self.count(data, start, file_end, MAX_COUNT - count)
                    count += found
                    calls += found + 1
                # else it starts in the separator after the file: drop it
            # Done with file `index`: on to the next one.
            if index + 1 == files:
                break
            if stop():
                files = index + 1
                break
            position = starts[index + 1]
        if count:
            hits.append((current, count))
        scan.searched, scan.calls = files, calls
        return scan

    def _scan_files(self, chunk: Chunk, stop: Callable[[], bool]) -> _Scan:
        """File by file, each as a text of its own (a view of the buffer: no copy)."""
        hits: list[tuple[int, int]] = []
        call, anchor = self.call.Match, self.anchor
        view = memoryview(chunk.data)
        calls = 0
        for index, (start, end) in enumerate(zip(chunk.starts, chunk.ends, strict=True)):
            if index % 64 == 63 and stop():
                return _Scan(hits, index, calls)
            data, size = view[start:end], end - start
            position = count = 0
            while count < MAX_COUNT and position <= size:
                calls += 1
                found, finish = call(anchor, data, position, size)[0]
                if found < 0:
                    break
                count += 1
                position = finish if finish > found else finish + 1
            if count:
                hits.append((index, count))
        return _Scan(hits, len(chunk.starts), calls)


@dataclass(slots=True)
class _Scan:
    hits: list[tuple[int, int]]  # (file index in the chunk, match count) of matching files
    searched: int  # files searched (fewer than all if the search stopped)
    calls: int  # regex calls made


class _SearchShim:  # pragma: no cover - other bindings
    """The raw `Match(anchor, data, pos, endpos)` call, made with the public API."""

    def __init__(self, regex: Regex) -> None:
        self.regex = regex

    def Match(self, anchor: object, data: bytes, pos: int, endpos: int) -> list[tuple[int, int]]:
        found = self.regex.search(data, pos, endpos)
        return [(-1, -1) if found is None else (found.start(), found.end())]


def _clip(line: str, start: int | None) -> str:
    if len(line) <= MAX_LINE_CHARS:
        return line
    if start is None or start < MAX_LINE_CHARS // 2:
        return line[:MAX_LINE_CHARS] + " …"
    begin = max(0, min(start - MAX_LINE_CHARS // 3, len(line) - MAX_LINE_CHARS))
    return "… " + line[begin : begin + MAX_LINE_CHARS] + " …"


def excerpts_for(regex: Regex, data: bytes, context: int) -> tuple[list[list[ExcerptLine]], int]:
    """Excerpts of one file: matching lines and `context` lines around them, merged."""
    text = data.decode("utf-8", "replace")
    lines = text.split("\n")
    if lines and lines[-1] == "" and len(lines) > 1:
        lines.pop()
    starts: list[int] = []  # char offset of each line start
    offset = 0
    for line in lines:
        starts.append(offset)
        offset += len(line) + 1
    matched: dict[int, int] = {}  # line index -> column of first match
    for found in regex.finditer(text):
        index = bisect.bisect_right(starts, found.start()) - 1
        matched.setdefault(index, found.start() - starts[index])
        if len(matched) >= MAX_COUNT:
            break
    windows: list[list[int]] = []
    for index in sorted(matched):
        low, high = max(0, index - context), min(len(lines) - 1, index + context)
        if windows and low <= windows[-1][1] + 1:
            windows[-1][1] = max(windows[-1][1], high)
        else:
            windows.append([low, high])
    shown: list[list[ExcerptLine]] = []
    for low, high in windows[:MAX_EXCERPTS]:
        shown.append(
            [
                ExcerptLine(
                    i + 1,
                    _clip(lines[i].rstrip("\r"), matched.get(i)),
                    i in matched,
                )
                for i in range(low, high + 1)
            ]
        )
    return shown, max(0, len(windows) - MAX_EXCERPTS)


@dataclass(slots=True)
class _Run:
    """Files searched together: one chunk. `store` is False for files too new to cache."""

    members: list[Entry]
    store: bool
    chunk: Chunk | None = None  # None if not searched
    scan: _Scan | None = None
    built: bool = False  # whether the chunk was read from disk rather than the cache
    seconds: float = 0.0  # spent scanning


def _helpers_pay(run: _Run) -> bool:
    """Whether more threads would speed up the runs after `run`: if they are read from disk
    (reads overlap), or if scanning is mostly RE2 at work (it releases the GIL) rather than
    Python between two matches, which would only make the threads queue for the GIL."""
    if run.built:
        return True
    calls = run.scan.calls if run.scan is not None else 0
    return run.seconds >= calls * HELP_SECONDS_PER_CALL


def _cpus() -> int:
    """The CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on Linux
        return os.cpu_count() or 1


_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _helpers() -> tuple[ThreadPoolExecutor | None, int]:
    """The threads that help scan runs (shared by all searches) and how many a search may
    use: one fewer than the CPUs, as the searching thread scans too."""
    global _pool
    helpers = min(MAX_THREADS, _cpus()) - 1
    if helpers < 1:
        return None, 0
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(MAX_THREADS, thread_name_prefix="vault-search")
        return _pool, helpers


class _Runs:
    """The runs of one search, searched once the walk is over: the first by the calling
    thread alone, the others by it and, if `_helpers_pay`, helper threads (RE2 releases the
    GIL while it scans). Not during the walk: a walk is many short system calls, and threads
    sharing the GIL with it slow it down more than they gain."""

    def __init__(self, work: Callable[[_Run], _Run]) -> None:
        self.work = work
        self.pending: deque[_Run] = deque()
        self.done: list[_Run] = []

    def add(self, run: _Run) -> None:
        self.pending.append(run)

    def finish(self) -> list[_Run]:
        """Search every run; returns them all, searched (or not, if the search stopped)."""
        if not self.pending:
            return self.done
        first = self.pending.popleft()
        self.done.append(self.work(first))  # alone: it shows whether helpers would pay
        helpers: list[Future[None]] = []
        if self.pending and _helpers_pay(first):
            pool, count = _helpers()
            if pool is not None:
                count = min(count, len(self.pending) - 1)
                helpers = [pool.submit(self._drain) for _ in range(count)]
        try:
            self._drain()
        finally:
            self.pending.clear()  # after an error: the helpers stop at their next run
            for helper in helpers:
                helper.cancel()  # not started yet (another search holds the threads)
            wait(helpers)
        for helper in helpers:
            if not helper.cancelled():
                helper.result()  # raises what the helper raised
        return self.done

    def _drain(self) -> None:
        pending, done, work = self.pending, self.done, self.work
        while pending:
            try:
                run = pending.popleft()
            except IndexError:  # another thread took the last one
                return
            done.append(work(run))


class Searcher:
    """Searches one vault; owns the content cache so repeated searches stay fast."""

    def __init__(self, root: Path, cache: ContentCache | None = None) -> None:
        self.root = root
        self.cache = cache if cache is not None else ContentCache()
        # Called with each file's relative path before it is searched (tests use it).
        self.on_file: Callable[[str], None] | None = None

    def content(self, entry: Entry) -> bytes | None:
        """A file's bytes from the cache or the disk; None if it vanished or is unreadable."""
        signature = Signature(entry.ino, entry.size, entry.mtime_ns, entry.ctime_ns)
        found = self.cache.get(entry.real, signature)
        if found is not None:
            return found
        read_at = now_ns()
        data = _read(entry.real)
        if data is not None:
            self.cache.put(entry.real, signature, data, read_at)
        return data

    def search(
        self,
        pattern: str,
        *,
        file_pattern: str,
        context_lines: int,
        max_results: int,
        time_limit: float = DEFAULT_TIME_LIMIT,
        cancelled: threading.Event | None = None,
    ) -> SearchResult:
        regex = compile_pattern(pattern)
        glob = Glob(file_pattern, anywhere=True)
        deadline = time.monotonic() + time_limit
        result = SearchResult()

        def stop() -> bool:
            return time.monotonic() > deadline or (cancelled is not None and cancelled.is_set())

        matcher = _Matcher(regex, whole_files=_WHOLE_TEXT.search(pattern) is not None)
        runs = _Runs(lambda run: self._search_run(run, matcher, stop))
        stopped = self._plan(runs, glob, result, stop)
        done = [] if stopped else runs.finish()

        matched = matches = 0
        for run in done:
            if run.chunk is not None and run.scan is not None:
                result.files_searched += run.scan.searched
                result.skipped += run.chunk.binary
                matched += len(run.scan.hits)
                matches += sum([count for _, count in run.scan.hits])
        result.files_matched, result.matches = matched, matches
        if stopped or stop():
            if cancelled is not None and cancelled.is_set():
                result.stopped_early = "the search was cancelled"
            else:
                result.stopped_early = f"the search reached its time limit of {time_limit:g} s"
        for count, rel, chunk, index in _most_matches(done, max_results):
            shown, more = excerpts_for(regex, chunk.content(index), context_lines)
            result.files.append(FileHits(rel, count, shown, more))
        return result

    def _plan(
        self, runs: _Runs, glob: Glob, result: SearchResult, stop: Callable[[], bool]
    ) -> bool:
        """Walk the vault and hand its files to `runs` in chunks; True if stopped early."""
        settled_before = now_ns() - RACY_NS  # files changed later are not cached yet
        group: list[Entry] = []
        group_bytes = considered = 0
        fresh: list[Entry] = []
        on_file, matches, chunk_files = self.on_file, glob.matches, CHUNK_FILES
        try:
            for entry in walk(self.root, self.root, "", include_dirs=False, stop=stop):
                if not matches(entry.rel):
                    continue
                considered += 1
                if considered % 64 == 0 or on_file is not None:
                    if stop():
                        return True
                    if on_file is not None:
                        on_file(entry.rel)
                size = entry.size
                if size > MAX_FILE_BYTES:
                    result.skipped += 1
                    continue
                if entry.mtime_ns > settled_before or entry.ctime_ns > settled_before:
                    fresh.append(entry)
                    continue
                if group and group_bytes + size > CHUNK_BYTES:
                    runs.add(_Run(group, store=True))
                    group, group_bytes = [], 0
                group.append(entry)
                group_bytes += size
                if hash(entry.real) % chunk_files == 0:
                    runs.add(_Run(group, store=True))
                    group, group_bytes = [], 0
        finally:
            result.files_considered = considered
        if group:
            runs.add(_Run(group, store=True))
        if fresh:
            runs.add(_Run(fresh, store=False))
        return False

    def _search_run(self, run: _Run, matcher: _Matcher, stop: Callable[[], bool]) -> _Run:
        if stop():
            return run
        run.chunk, run.built = self._chunk(run.members, run.store)
        started = time.perf_counter()
        run.scan = matcher.scan(run.chunk, stop)
        run.seconds = time.perf_counter() - started
        return run

    def _chunk(self, members: list[Entry], store: bool) -> tuple[Chunk, bool]:
        """The run's chunk from the cache, or built from cached files and the disk (then
        True)."""
        key: tuple[FileKey, ...] = tuple(
            [(e.real, e.ino, e.size, e.mtime_ns, e.ctime_ns) for e in members]
        )
        cache = self.cache
        if store:
            found = cache.chunk(key)
            if found is not None:
                return found, False
        read_at = now_ns()
        parts: list[bytes] = []
        text: list[int] = []
        starts: list[int] = []
        ends: list[int] = []
        binary = 0
        complete = True
        offset = -len(SEPARATOR)
        for position, (real, ino, size, mtime_ns, ctime_ns) in enumerate(key):
            data = cache.get(real, Signature(ino, size, mtime_ns, ctime_ns))
            if data is None:
                data = _read(real)
            if data is None:
                complete = False  # vanished or unreadable: not searched
                continue
            if data.find(b"\x00", 0, _BINARY_SNIFF) >= 0:
                binary += 1
                continue
            offset += len(SEPARATOR)
            starts.append(offset)
            offset += len(data)
            ends.append(offset)
            text.append(position)
            parts.append(data)
        chunk = Chunk(key, SEPARATOR.join(parts), text, starts, ends, binary, complete)
        if store:
            cache.put_chunk(chunk, read_at)
        return chunk, True


def _most_matches(runs: list[_Run], limit: int) -> list[tuple[int, str, Chunk, int]]:
    """The `limit` files with the most matches, ties by path: (count, rel, chunk, index)."""
    scanned = [
        (run.members, chunk, run.scan.hits)
        for run in runs
        if (chunk := run.chunk) is not None and run.scan is not None
    ]
    counts = heapq.nlargest(limit, (count for _, _, hits in scanned for _, count in hits))
    if limit <= 0 or not counts:
        return []
    least = counts[-1]  # only files with at least this many matches can be among them
    found = [
        (count, members[chunk.text[index]].rel, chunk, index)
        for members, chunk, hits in scanned
        for index, count in hits
        if count >= least
    ]
    found.sort(key=lambda hit: (-hit[0], hit[1]))
    return found[:limit]


def _read(real: str) -> bytes | None:
    """A file's bytes; None if it vanished, is no longer a regular file or is too large.

    As files.read_bytes (no link followed in the last component), with one read call for a
    file that still has the size fstat gives; and opened without blocking, so that a FIFO put
    in a note's place cannot hang the search.
    """
    try:
        fd = os.open(real, _READ_FLAGS)
    except OSError:
        return None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_FILE_BYTES:
            return None
        data = os.read(fd, info.st_size + 1)
        if len(data) == info.st_size:
            return data
        parts, total = [data], len(data)  # it grew, or the read was short: read to the end
        while total <= MAX_FILE_BYTES and (more := os.read(fd, 1 << 16)):
            parts.append(more)
            total += len(more)
        return b"".join(parts) if total <= MAX_FILE_BYTES else None
    except OSError:
        return None
    finally:
        os.close(fd)


def file_count(root: Path) -> int:
    """How many files a full walk sees (used by the benchmark)."""
    return sum(1 for _ in walk(root, root, "", include_dirs=False))


__all__ = [
    "ExcerptLine",
    "FileHits",
    "SearchResult",
    "Searcher",
    "compile_pattern",
    "excerpts_for",
    "file_count",
]
