"""search_files: output, regex errors, ReDoS safety, responsiveness, caching."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from pathlib import Path

import pytest

from smarthole_notes.vault import cache, listing, search
from smarthole_notes.vault.cache import Chunk, ContentCache, Signature
from smarthole_notes.vault.listing import Glob, walk
from smarthole_notes.vault.search import ExcerptLine, compile_pattern
from tests.vault_fixtures import VaultHarness


@pytest.fixture
def h(tmp_path: Path) -> VaultHarness:
    return VaultHarness(tmp_path)


async def test_search_shows_numbered_excerpts_with_marked_matches(h: VaultHarness) -> None:
    h.put("Plan.md", "one\ntwo\nthe budget is set\nfour\nfive\nsix\n")
    out = await h.ok("search_files", pattern="budget")
    assert out == (
        "Found 1 matches in 1 file (of 1 searched):\n"
        "\n"
        "Plan.md (1 match)\n"
        "  1: one\n"
        "  2: two\n"
        "> 3: the budget is set\n"
        "  4: four\n"
        "  5: five"
    )


async def test_search_orders_files_by_number_of_matches_and_caps_them(h: VaultHarness) -> None:
    h.put("one.md", "kiwi\n")
    h.put("three.md", "kiwi kiwi\nkiwi\n")
    h.put("two.md", "kiwi\n\n\n\n\n\nkiwi\n")
    out = await h.ok("search_files", pattern="kiwi", context_lines=0, max_results=2)
    headers = [line for line in out.splitlines() if line.endswith(("match)", "matches)"))]
    assert headers == ["three.md (3 matches)", "two.md (2 matches)"]
    assert "1 more files match" in out


async def test_search_shows_at_most_five_excerpts_per_file(h: VaultHarness) -> None:
    h.put("many.md", "".join("hit\n" + "filler\n" * 10 for _ in range(8)))
    out = await h.ok("search_files", pattern="hit", context_lines=1)
    assert out.count("  --") == 4
    assert "+3 more places" in out


async def test_search_is_case_insensitive_unless_the_pattern_says_otherwise(
    h: VaultHarness,
) -> None:
    h.put("a.md", "Project Alpha\n")
    assert "a.md (1 match)" in await h.ok("search_files", pattern="project alpha")
    assert "No matches" in await h.ok("search_files", pattern="(?-i)project alpha")


async def test_search_anchors_match_at_line_boundaries(h: VaultHarness) -> None:
    h.put("a.md", "intro\n# Heading\ntext # not heading\n")
    out = await h.ok("search_files", pattern="^# ", context_lines=0)
    assert "> 2: # Heading" in out and "3:" not in out


async def test_search_file_pattern_selects_files(h: VaultHarness) -> None:
    h.put("Projects/a.md", "needle\n")
    h.put("Other/b.md", "needle\n")
    h.put("c.txt", "needle\n")
    out = await h.ok("search_files", pattern="needle", file_pattern="Projects/**/*.md")
    assert "Projects/a.md" in out and "Other/b.md" not in out
    out = await h.ok("search_files", pattern="needle", file_pattern="*.txt")
    assert "c.txt" in out and ".md" not in out
    out = await h.ok("search_files", pattern="needle")
    assert "c.txt" not in out and "Other/b.md" in out


async def test_an_invalid_regex_quotes_the_engine_message(h: VaultHarness) -> None:
    out = await h.err("search_files", pattern="(unclosed")
    assert "invalid regex '(unclosed'" in out and "missing )" in out
    out = await h.err("search_files", pattern="(?<=x)y")
    assert "invalid perl operator" in out


async def test_protected_hidden_and_trashed_notes_are_never_searched(h: VaultHarness) -> None:
    for rel in (".obsidian/w.md", ".git/x.md", ".smarthole/y.md", ".trash/z.md", ".hidden.md"):
        h.put(rel, "needle\n")
    h.put("visible.md", "needle\n")
    out = await h.ok("search_files", pattern="needle", file_pattern="**/*")
    assert "visible.md" in out and "1 file" in out


async def test_binary_files_are_skipped(h: VaultHarness) -> None:
    h.put("blob.md", b"needle\x00\x01\x02")
    assert "No matches" in await h.ok("search_files", pattern="needle")


async def test_empty_matching_patterns_do_not_run_away(h: VaultHarness) -> None:
    h.put("a.md", "x" * 100_000)
    out = await h.ok("search_files", pattern="y*")
    assert "a.md (1,000+ matches)" in out


# -- ReDoS and responsiveness --------------------------------------------------------------


@pytest.mark.parametrize("pattern", ["(a+)+$", "^(a|a)*$", "(a|aa)+$", "(.*a){20}$"])
async def test_catastrophic_regexes_answer_within_a_second(h: VaultHarness, pattern: str) -> None:
    h.put("evil.md", "a" * 40 + "!\n")
    started = time.monotonic()
    out = await h.ok("search_files", pattern=pattern)
    assert time.monotonic() - started < 1.0
    assert "No matches" in out or "evil.md" in out


async def test_other_requests_are_served_while_a_search_runs(h: VaultHarness) -> None:
    for i in range(20):
        h.put(f"n{i}.md", "a" * 40 + "!\n")
    h.put("Read me.md", "served\n")
    read_done = threading.Event()
    waited: list[bool] = []

    def hold_until_read(rel: str) -> None:
        # The search thread waits here (once) until read_file has completed on the loop.
        if not waited:
            waited.append(read_done.wait(timeout=5))

    h.vault.searcher.on_file = hold_until_read
    search = asyncio.create_task(h.ok("search_files", pattern="(a+)+$"))
    await asyncio.sleep(0)
    read_out = await asyncio.wait_for(h.ok("read_file", path="Read me.md"), timeout=5)
    assert not search.done()
    read_done.set()
    await asyncio.wait_for(search, timeout=5)
    assert read_out.startswith("1: served") and waited == [True]


async def test_a_search_past_its_time_limit_says_it_stopped_early(h: VaultHarness) -> None:
    for i in range(5):
        h.put(f"n{i}.md", "needle\n")
    h.vault.search_time_limit = 0.0
    out = await h.ok("search_files", pattern="needle")
    assert out.startswith("Stopped early: the search reached its time limit")


async def test_a_cancelled_search_stops_its_worker_thread(h: VaultHarness) -> None:
    for i in range(50):
        h.put(f"n{i}.md", "needle\n")
    seen: list[str] = []
    entered = threading.Event()

    def slow(rel: str) -> None:
        seen.append(rel)
        entered.set()
        time.sleep(0.02)

    h.vault.searcher.on_file = slow
    task = asyncio.create_task(h.registry.run("search_files", {"pattern": "needle"}))
    await asyncio.to_thread(entered.wait, 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.sleep(0.2)
    count = len(seen)
    await asyncio.sleep(0.2)
    assert len(seen) == count < 50


# -- the content cache ---------------------------------------------------------------------


def test_cache_entries_are_invalidated_by_any_change_of_the_file_signature() -> None:
    cache = ContentCache()
    signature = Signature(ino=1, size=3, mtime_ns=1_000, ctime_ns=1_000)
    cache.put("/v/a.md", signature, b"old", read_at_ns=10_000_000_000)
    assert cache.get("/v/a.md", signature) == b"old"
    for changed in (
        Signature(1, 3, 1_000, 2_000),  # ctime moved (content rewritten, mtime restored)
        Signature(1, 3, 2_000, 1_000),
        Signature(1, 4, 1_000, 1_000),
        Signature(2, 3, 1_000, 1_000),  # replaced by rename
    ):
        assert cache.get("/v/a.md", changed) is None


def test_cache_does_not_keep_files_changed_too_recently_to_be_trusted() -> None:
    cache = ContentCache()
    signature = Signature(ino=1, size=3, mtime_ns=5_000_000_000, ctime_ns=5_000_000_000)
    cache.put("/v/a.md", signature, b"new", read_at_ns=5_500_000_000)  # 0.5 s after the change
    assert cache.get("/v/a.md", signature) is None


def test_cache_stays_within_its_byte_budget() -> None:
    cache = ContentCache(max_bytes=10)
    for i in range(5):
        cache.put(f"/v/{i}", Signature(i, 4, 0, 0), b"abcd", read_at_ns=10**12)
    assert cache.size_bytes <= 10 and len(cache) == 2


async def test_search_sees_a_change_made_after_the_previous_search(h: VaultHarness) -> None:
    path = h.put("a.md", "alpha\n", mtime=1_600_000_000)
    assert "a.md" in await h.ok("search_files", pattern="alpha")
    path.write_text("gamma\n")
    os.utime(path, (1_600_000_000, 1_600_000_000))  # same size, same mtime as before
    assert "No matches" in await h.ok("search_files", pattern="alpha")
    assert "a.md" in await h.ok("search_files", pattern="gamma")


# -- joined scanning: the same matches as file by file --------------------------------------

TRICKY_NOTES: dict[str, bytes] = {
    "empty.md": b"",
    "newlines.md": b"\n\n\n",
    "no-final-newline.md": b"alpha beta",
    "crlf.md": b"alpha\r\nbeta alpha\r\n\r\n",
    "many.md": b"a" * 2500 + b"\nalpha\n",
    "tail.md": b"x\n" + b"a" * 1200,
    "unicode.md": "Café ÉCOLE école\nKelvin \u212a k ſ s\n北京 alpha\n".encode(),
    "invalid-utf8.md": b"alpha \xff\xfe beta\n\xe4",
    "late-nul.md": b"A" * 9000 + b"\x00alpha\n",
    "binary.md": b"\x00alpha\n",
    "deep/one.md": b"# Heading\nbudget review\nlaunch report\n",
    "deep/two.md": b"review\nbudget\n",
    "deep/three.md": b"alpha\n\nalpha",
}
TRICKY_PATTERNS = [
    "alpha",
    "a",
    "a*",
    "",
    "^",
    "$",
    "^$",
    r"\b",
    r"\B",
    r"\n",
    r"\n\n",
    r"[^z]*",
    r"(?s).*",
    r"(?s).{0,5}$",
    r"[\s\S]{1,4}",
    r"\x00",
    r"\x00?",
    r"\n\x00\n",
    r"\Aalpha",
    r"alpha\z",
    r"a\z|beta",
    r"(?-m)^alpha",
    r"(?i-m:beta$)",
    r"^\s*$",
    r"\r$",
    r"(budget|launch) (review|report)",
    r"(?s)budget.review",
    "é",
    "k",
    r"(?-i)K",
    r"\x{FFFD}",
    r"\C",
]


def _reference_counts(root: Path, pattern: str) -> dict[str, int]:
    """Each note searched on its own through the public API, as the search counts matches."""
    regex = compile_pattern(pattern)
    counts: dict[str, int] = {}
    for rel, _ in sorted(TRICKY_NOTES.items()):
        data = (root / rel).read_bytes()
        if b"\x00" in data[:8192]:
            continue
        count, position = 0, 0
        while count < 1000 and position <= len(data):
            found = regex.search(data, position)
            if found is None:
                break
            count += 1
            position = found.end() if found.end() > found.start() else found.end() + 1
        if count:
            counts[rel] = count
    return counts


@pytest.mark.parametrize("threads", [1, 4])
def test_joined_runs_find_exactly_the_matches_of_each_file_alone(
    h: VaultHarness, monkeypatch: pytest.MonkeyPatch, threads: int
) -> None:
    for rel, data in TRICKY_NOTES.items():
        h.put(rel, data)
    # Small runs, cached at once (no 2 s wait), and helper threads even on one CPU.
    monkeypatch.setattr(search, "CHUNK_FILES", 3)
    monkeypatch.setattr(search, "CHUNK_BYTES", 4000)
    monkeypatch.setattr(search, "MAX_THREADS", threads)
    monkeypatch.setattr(search, "RACY_NS", 0)
    monkeypatch.setattr(cache, "RACY_NS", 0)
    monkeypatch.setattr(search, "_cpus", lambda: threads)
    monkeypatch.setattr(search, "HELP_SECONDS_PER_CALL", 0.0)  # helpers whatever the speed
    searcher = h.vault.searcher
    for round_ in range(2):  # the second round runs on cached chunks
        for pattern in TRICKY_PATTERNS:
            out = searcher.search(pattern, file_pattern="*.md", context_lines=1, max_results=100)
            assert {f.rel: f.count for f in out.files} == _reference_counts(h.root, pattern), (
                pattern,
                round_,
            )
            assert out.files_searched == len(TRICKY_NOTES) - 1  # less the binary one
            assert out.skipped == 1
            assert out.stopped_early is None
            counts = [(-f.count, f.rel) for f in out.files]
            assert counts == sorted(counts)
    assert len(h.vault.cache._chunks) > 1


def test_excerpts_come_from_the_right_file_of_a_run(
    h: VaultHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(search, "CHUNK_FILES", 1000)
    for i in range(30):
        h.put(f"n{i:02}.md", f"line one of {i}\nneedle {i}\n" + "needle\n" * (i % 4))
    out = h.vault.searcher.search("needle", file_pattern="*.md", context_lines=1, max_results=30)
    for hits in out.files:
        number = int(hits.rel[1:3])
        assert hits.count == 1 + number % 4
        first = hits.excerpts[0]
        assert first[0] == ExcerptLine(1, f"line one of {number}", False)
        assert first[1] == ExcerptLine(2, f"needle {number}", True)


def test_a_change_to_one_note_of_a_cached_run_is_seen(
    h: VaultHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(search, "RACY_NS", 0)
    monkeypatch.setattr(cache, "RACY_NS", 0)
    paths = [h.put(f"n{i}.md", f"alpha {i}\n", mtime=1_600_000_000) for i in range(20)]
    out = h.vault.searcher.search("alpha", file_pattern="*.md", context_lines=0, max_results=50)
    assert out.files_matched == 20 and len(h.vault.cache._chunks) >= 1
    paths[7].write_text("gamma 7\n")
    os.utime(paths[7], (1_600_000_000, 1_600_000_000))  # same size and mtime as before
    out = h.vault.searcher.search("alpha", file_pattern="*.md", context_lines=0, max_results=50)
    assert out.files_matched == 19 and "n7.md" not in {f.rel for f in out.files}
    out = h.vault.searcher.search("gamma", file_pattern="*.md", context_lines=0, max_results=50)
    assert [f.rel for f in out.files] == ["n7.md"]
    paths[3].unlink()
    h.put("new.md", "alpha new\n")
    out = h.vault.searcher.search("alpha", file_pattern="*.md", context_lines=0, max_results=50)
    assert out.files_matched == 19 and "n3.md" not in {f.rel for f in out.files}


def _chunk_of(files: dict[str, bytes], mtime_ns: int = 0) -> Chunk:
    key = tuple(
        (path, i, len(data), mtime_ns, mtime_ns) for i, (path, data) in enumerate(files.items())
    )
    starts, ends, offset = [], [], 0
    for data in files.values():
        starts.append(offset)
        ends.append(offset + len(data))
        offset += len(data) + len(cache.SEPARATOR)
    return Chunk(
        key, cache.SEPARATOR.join(files.values()), list(range(len(files))), starts, ends, 0
    )


def test_cached_runs_serve_single_files_and_are_dropped_on_discard() -> None:
    store = ContentCache()
    chunk = _chunk_of({"/v/a.md": b"aaa", "/v/b.md": b"bb"})
    assert store.put_chunk(chunk, read_at_ns=10**12)
    assert store.chunk(chunk.key) is chunk
    assert store.get("/v/b.md", Signature(1, 2, 0, 0)) == b"bb"
    assert store.get("/v/b.md", Signature(1, 2, 0, 1)) is None
    assert store.size_bytes == len(chunk.data) and len(store) == 2
    store.discard("/v/b.md")
    assert store.chunk(chunk.key) is None and store.get("/v/a.md", Signature(0, 3, 0, 0)) is None
    assert store.size_bytes == 0


def test_cached_runs_are_refused_when_racy_incomplete_or_of_the_wrong_size() -> None:
    store = ContentCache()
    racy = _chunk_of({"/v/a.md": b"aaa"}, mtime_ns=5 * 10**9)
    assert not store.put_chunk(racy, read_at_ns=6 * 10**9)  # changed 1 s before it was read
    chunk = _chunk_of({"/v/a.md": b"aaa"})
    chunk.complete = False
    assert not store.put_chunk(chunk, read_at_ns=10**12)
    wrong = _chunk_of({"/v/a.md": b"aaa"})
    wrong.key = (("/v/a.md", 0, 4, 0, 0),)
    assert not store.put_chunk(wrong, read_at_ns=10**12)
    assert store.size_bytes == 0 and len(store) == 0


def test_a_newer_run_of_the_same_files_replaces_the_old_one_and_budget_holds() -> None:
    store = ContentCache(max_bytes=10)
    old = _chunk_of({"/v/a.md": b"aaa"})
    new = _chunk_of({"/v/a.md": b"bbb"})
    new.key = (("/v/a.md", 0, 3, 1, 1),)
    assert store.put_chunk(old, read_at_ns=10**12) and store.put_chunk(new, read_at_ns=10**12)
    assert store.chunk(old.key) is None and store.chunk(new.key) is new
    assert store.size_bytes == 3
    big = _chunk_of({"/v/c.md": b"c" * 8})
    assert store.put_chunk(big, read_at_ns=10**12)
    assert store.size_bytes <= 10 and store.chunk(new.key) is None


# -- globs: the fast paths agree with the matcher ----------------------------------------


@pytest.mark.parametrize("pattern", ["*.md", "**/*.md", "*.MD", "**/*.Md", "*.s", "**/*.k"])
@pytest.mark.parametrize("anywhere", [True, False])
def test_glob_fast_paths_agree_with_the_full_matcher(pattern: str, anywhere: bool) -> None:
    names = [
        "a.md", "A.MD", "x/y/a.md", ".a.md", "x/.y/a.md", ".y/a.md", ".md", "x/.md", "a.mdx",
        "md", "x/md", "é.md", "x/é.md", "é/x.md", "a\u0301.md", "a.m\u0301d", "a.m\u212a",
        "x.\u212a", "x.\u017f", "x.s", "x.S", "a\nb.md", "a.md\n", "x/a.md\n", "[x].md",
        "{a}.md", "a b/c d.md",
    ]  # fmt: skip
    fast = Glob(pattern, anywhere=anywhere)
    full = Glob(pattern, anywhere=anywhere)
    full._suffix = None  # the matcher alone
    for rel in names:
        assert fast.matches(rel) == full.matches(rel), rel


def test_reading_a_note_never_blocks_follows_links_or_exceeds_the_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    note = tmp_path / "note.md"
    note.write_bytes(b"x" * 100)
    assert search._read(str(note)) == b"x" * 100
    os.mkfifo(tmp_path / "fifo.md")  # swapped in for a note: opening it must not hang
    assert search._read(str(tmp_path / "fifo.md")) is None
    os.symlink(note, tmp_path / "link.md")
    assert search._read(str(tmp_path / "link.md")) is None
    assert search._read(str(tmp_path / "gone.md")) is None
    monkeypatch.setattr(search, "MAX_FILE_BYTES", 99)
    assert search._read(str(note)) is None


def test_walk_sees_folder_changes_after_its_listing_was_remembered(
    h: VaultHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(listing, "RACY_NS", 0)  # remember listings at once

    def files() -> list[str]:
        return sorted(e.rel for e in walk(h.root, h.root, "", include_dirs=False))

    for rel in ("a.md", "sub/b.md", "sub/c.md"):
        h.put(rel, "x\n")
    assert files() == ["a.md", "sub/b.md", "sub/c.md"]
    assert str(h.root / "sub") in listing._listings
    time.sleep(0.05)  # past the timestamp tick of the last change
    h.put("sub/d.md", "x\n")
    (h.root / "sub" / "b.md").unlink()
    os.rename(h.root / "sub" / "c.md", h.root / "sub" / "e.md")
    h.put("sub/.hidden.md", "x\n")
    assert files() == ["a.md", "sub/d.md", "sub/e.md"]
    time.sleep(0.05)
    os.rename(h.root / "sub", h.root / "old")
    (h.root / "sub").mkdir()
    h.put("sub/f.md", "x\n")
    assert files() == ["a.md", "old/d.md", "old/e.md", "sub/f.md"]


def test_helper_threads_are_used_only_where_they_pay() -> None:
    def run(seconds: float, calls: int, built: bool = False) -> search._Run:
        done = search._Run([], store=True, built=built, seconds=seconds)
        done.scan = search._Scan([], 0, calls)
        return done

    assert search._helpers_pay(run(0.01, 100))  # 100 µs a call: RE2 at work, GIL released
    assert not search._helpers_pay(run(0.0001, 100))  # 1 µs a call: Python between matches
    assert search._helpers_pay(run(0.0001, 100, built=True))  # reads from disk overlap
