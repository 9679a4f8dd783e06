"""search_files: output, regex errors, ReDoS safety, responsiveness, caching."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import pytest

from smarthole_notes.vault.cache import ContentCache, Signature
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
    import os

    os.utime(path, (1_600_000_000, 1_600_000_000))  # same size, same mtime as before
    assert "No matches" in await h.ok("search_files", pattern="alpha")
    assert "a.md" in await h.ok("search_files", pattern="gamma")
