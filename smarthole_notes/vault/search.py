"""Regex search over the vault's notes with RE2, a linear-time engine.

RE2 cannot backtrack, so `(a+)+$` costs the same as `a+$`: no regex can hang the service. A
wall-clock budget still bounds a search over a huge vault, and the result says when it
stopped early.

Speed: each file is searched as a whole (bytes, no per-line loop, no decoding); only files that
match are scanned further to count matches, and only the files shown get line numbers and
excerpts. Contents come from a `ContentCache` validated by (inode, size, mtime_ns, ctime_ns),
so a repeated search reads nothing from disk that did not change.

Semantics: case-insensitive unless the pattern says `(?-i)`; `^` and `$` match at line starts
and ends; `.` does not cross lines. RE2 syntax: no look-around, no backreferences.
"""

from __future__ import annotations

import bisect
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import re2

from smarthole_notes.vault.cache import ContentCache, Signature, now_ns
from smarthole_notes.vault.errors import VaultError
from smarthole_notes.vault.files import read_bytes
from smarthole_notes.vault.listing import Entry, Glob, walk
from smarthole_notes.vault.names import nfc

DEFAULT_TIME_LIMIT = 10.0
MAX_COUNT = 1000  # matches counted per file
MAX_EXCERPTS = 5
MAX_LINE_CHARS = 300
MAX_FILE_BYTES = 16 * 1024 * 1024
_BINARY_SNIFF = 8192

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


class _Fast:
    """RE2's match call used directly, without building match objects (a hot loop)."""

    def __init__(self, regex: Regex) -> None:
        self.regex = regex
        self.raw = getattr(regex, "_regexp", None)
        self.anchor = getattr(getattr(re2, "_Anchor", None), "UNANCHORED", None)

    def first(self, data: bytes) -> tuple[int, int] | None:
        """The span of the first match, or None."""
        if self.raw is None or self.anchor is None:  # pragma: no cover - other bindings
            found = self.regex.search(data)
            return None if found is None else (found.start(), found.end())
        span = self.raw.Match(self.anchor, data, 0, len(data))[0]
        return None if span[0] < 0 else (span[0], span[1])

    def count(self, data: bytes, first: tuple[int, int]) -> int:
        """How many matches `data` has (at most MAX_COUNT), given the first one."""
        if self.raw is None or self.anchor is None:  # pragma: no cover - other bindings
            return _count(self.regex, data)
        end = len(data)
        count = 1
        start, stop = first
        match = self.raw.Match
        anchor = self.anchor
        while count < MAX_COUNT:
            position = stop if stop > start else stop + 1
            if position > end:
                break
            start, stop = match(anchor, data, position, end)[0]
            if start < 0:
                break
            count += 1
        return count


def _count(regex: Regex, data: bytes) -> int:
    count = 0
    for _ in regex.finditer(data):
        count += 1
        if count >= MAX_COUNT:
            break
    return count


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
        return self.cache.get(entry.real, signature) or self._load(entry.real, signature)

    def _load(self, real: str, signature: Signature) -> bytes | None:
        read_at = now_ns()
        try:
            data = read_bytes(Path(real), MAX_FILE_BYTES)
        except (OSError, VaultError):
            return None
        self.cache.put(real, signature, data, read_at)
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

        fast = _Fast(regex)
        hits: list[tuple[int, str, bytes]] = []
        cache_get = self.cache.get
        on_file = self.on_file
        stopped = False
        for entry in walk(self.root, self.root, "", include_dirs=False, stop=stop):
            if not glob.matches(entry.rel):
                continue
            result.files_considered += 1
            if result.files_considered % 64 == 0 or on_file is not None:
                if stop():
                    stopped = True
                    break
                if on_file is not None:
                    on_file(entry.rel)
            if entry.size > MAX_FILE_BYTES:
                result.skipped += 1
                continue
            signature = Signature(entry.ino, entry.size, entry.mtime_ns, entry.ctime_ns)
            data = cache_get(entry.real, signature) or self._load(entry.real, signature)
            if data is None:
                continue
            if data.find(b"\x00", 0, _BINARY_SNIFF) >= 0:
                result.skipped += 1
                continue
            result.files_searched += 1
            first = fast.first(data)
            if first is None:
                continue
            hits.append((fast.count(data, first), entry.rel, data))
        stopped = stopped or stop()
        if stopped:
            if cancelled is not None and cancelled.is_set():
                result.stopped_early = "the search was cancelled"
            else:
                result.stopped_early = f"the search reached its time limit of {time_limit:g} s"
        hits.sort(key=lambda hit: (-hit[0], hit[1]))
        result.files_matched = len(hits)
        result.matches = sum(count for count, _, _ in hits)
        for count, rel, data in hits[:max_results]:
            shown, more = excerpts_for(regex, data, context_lines)
            result.files.append(FileHits(rel, count, shown, more))
        return result


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
