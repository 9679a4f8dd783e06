"""Benchmark: search_files and list_files on a 10,000-note vault, against ripgrep.

Run: `.venv/bin/python bench/vault_search.py [--notes N] [--runs R] [--keep DIR]`

Builds a deterministic (seeded) vault of notes of about 5 KB with nested folders, wikilinks and
Arabic, Chinese and accented names in a temporary folder, then measures, through the real tools:
- search_files with a case-insensitive literal, and with a regex using alternation;
- list_files("**/*.md");
each warm (median of R runs) and cold, with ripgrep (`rg -i --count-matches`, `rg --files`)
on the same files in the same run. Ratios are ours / ripgrep's.

Cold means: the page cache dropped (`sync; echo 3 > /proc/sys/vm/drop_caches`, needs root) and
a new Vault (empty content cache). Where the page cache cannot be dropped, cold means the first
run of a new Vault in this process and ripgrep's first run, and the table says so.

Warm search uses the vault's content cache, which is keyed by (inode, size, mtime_ns, ctime_ns)
and only keeps files whose last change is at least 2 s old (racy entries are re-read), so the
benchmark waits 2 s after building. "warm, no cache" shows a new Vault on a warm page cache.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from smarthole_notes.tools.base import ToolRegistry  # noqa: E402
from smarthole_notes.tools.vault import vault_tools  # noqa: E402
from smarthole_notes.vault import Vault  # noqa: E402

WORDS = [
    "the",
    "project",
    "meeting",
    "notes",
    "idea",
    "plan",
    "budget",
    "review",
    "team",
    "design",
    "draft",
    "client",
    "launch",
    "research",
    "summary",
    "action",
    "item",
    "follow",
    "up",
    "schedule",
    "report",
    "question",
    "answer",
    "data",
    "model",
    "system",
    "garden",
    "recipe",
    "travel",
    "book",
    "reading",
    "journal",
    "habit",
    "health",
    "music",
    "film",
    "quarterly",
    "roadmap",
    "context",
    "decision",
    "owner",
    "metric",
    "risk",
    "timeline",
    "feedback",
    "sprint",
    "retro",
    "goal",
]
INTL = [
    "café",
    "naïve",
    "résumé",
    "Zürich",
    "São Paulo",
    "北京",
    "笔记",
    "会议",
    "项目",
    "ملاحظات",
    "اجتماع",
    "مشروع",
    "crème brûlée",
    "Ελληνικά",
]
TOPS = ["Projects", "Areas", "Resources", "Archive", "Journal", "المشاريع", "笔记本", "Réunions"]

LITERAL = "quarterly roadmap"
REGEX = r"(budget|launch) (review|report)"


def build_vault(root: Path, notes: int, seed: int = 1234) -> int:
    rng = random.Random(seed)
    folders = [""]
    for i in range(24):
        top = f"{rng.choice(TOPS)} {i}"
        folders.append(top)
        for j in range(rng.randint(0, 3)):
            folders.append(f"{top}/Sub {j}")
    names = []
    for i in range(notes):
        words = rng.sample(WORDS, 2)
        if rng.random() < 0.15:
            words.append(rng.choice(INTL))
        names.append(f"{' '.join(words).title()} {i}")
    total = 0
    for name in names:
        folder = rng.choice(folders)
        parts = [f"# {name}\n\n"]
        size = 0
        while size < 5000:
            kind = rng.random()
            if kind < 0.08:
                line = "## " + " ".join(rng.choices(WORDS, k=4)).title()
            elif kind < 0.25:
                line = "- " + " ".join(rng.choices(WORDS, k=8)) + f" [[{rng.choice(names)}]]"
            else:
                words = rng.choices(WORDS, k=rng.randint(10, 25))
                if rng.random() < 0.2:
                    words.insert(rng.randrange(len(words)), rng.choice(INTL))
                line = " ".join(words).capitalize() + "."
            parts.append(line + "\n")
            size += len(line.encode()) + 1
        target = root / folder
        target.mkdir(parents=True, exist_ok=True)
        data = "".join(parts).encode()
        (target / f"{name}.md").write_bytes(data)
        total += len(data)
    return total


def drop_page_cache() -> bool:
    try:
        subprocess.run(["sync"], check=True)
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
    except OSError:
        return False
    return True


def timed(function: Callable[[], object]) -> tuple[float, object]:
    started = time.perf_counter()
    result = function()
    return time.perf_counter() - started, result


def tool_call(registry: ToolRegistry, name: str, args: Mapping[str, object]) -> str:
    outcome = asyncio.run(registry.run(name, dict(args)))
    if outcome.is_error:
        raise RuntimeError(outcome.content)
    return outcome.content


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--notes", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--keep", type=Path, help="build the vault here and keep it")
    options = parser.parse_args()
    rg = shutil.which("rg")
    if rg is None:
        print("ripgrep (rg) is not installed: apt-get install -y ripgrep", file=sys.stderr)
        sys.exit(2)

    workdir = options.keep or Path(tempfile.mkdtemp(prefix="vault-bench-"))
    root = workdir / "vault"
    try:
        if not root.exists():
            started = time.perf_counter()
            size = build_vault(root, options.notes)
            print(
                f"built {options.notes:,} notes, {size / 1e6:.1f} MB, in "
                f"{time.perf_counter() - started:.1f} s at {root}"
            )
        time.sleep(2.1)  # let every file settle past the cache's 2 s racy window
        run(root, rg, options.runs)
    finally:
        if options.keep is None:
            shutil.rmtree(workdir, ignore_errors=True)


def run(root: Path, rg: str, runs: int) -> None:
    searches = {
        "search literal (-i)": {"pattern": LITERAL},
        "search regex alternation (-i)": {"pattern": REGEX},
    }
    rg_commands = {
        "search literal (-i)": [rg, "--no-config", "-i", "--count-matches", LITERAL, "."],
        "search regex alternation (-i)": [rg, "--no-config", "-i", "--count-matches", REGEX, "."],
        "list **/*.md": [rg, "--no-config", "--files", "-g", "*.md", "."],
    }

    def ripgrep(name: str) -> float:
        seconds, _ = timed(
            lambda: subprocess.run(
                rg_commands[name], cwd=root, check=False, stdout=subprocess.DEVNULL
            )
        )
        return seconds

    def ours(vault: Vault, name: str) -> float:
        registry = ToolRegistry(vault_tools(vault))
        if name == "list **/*.md":
            args: dict[str, object] = {"pattern": "**/*.md"}
            seconds, _ = timed(lambda: tool_call(registry, "list_files", args))
        else:
            seconds, _ = timed(lambda: tool_call(registry, "search_files", searches[name]))
        return seconds

    names = [*searches, "list **/*.md"]
    dropped = drop_page_cache()
    cold_label = "cold (page cache dropped)" if dropped else "cold (first run; cache not dropped)"
    rows: list[tuple[str, str, float, float]] = []
    for name in names:
        if dropped:
            drop_page_cache()
        ours_cold = ours(Vault(root), name)
        if dropped:
            drop_page_cache()
        rg_cold = ripgrep(name)
        rows.append((name, cold_label, ours_cold, rg_cold))

    warm_vault = Vault(root)
    for name in names:
        ours(warm_vault, name)  # fill the page cache and the content cache
        ripgrep(name)
    for name in names:
        ours_warm = statistics.median(ours(warm_vault, name) for _ in range(runs))
        rg_warm = statistics.median(ripgrep(name) for _ in range(runs))
        rows.append((name, f"warm (median of {runs})", ours_warm, rg_warm))
        if name != "list **/*.md":
            fresh = statistics.median(ours(Vault(root), name) for _ in range(max(3, runs // 2)))
            rows.append((name, "warm, no content cache", fresh, rg_warm))

    registry = ToolRegistry(vault_tools(warm_vault))
    sample = tool_call(registry, "search_files", searches["search literal (-i)"])
    print(sample.splitlines()[0])
    print()
    print(f"{'operation':32} {'condition':38} {'ours (s)':>9} {'rg (s)':>8} {'ratio':>7}")
    print("-" * 98)
    for name, condition, mine, theirs in rows:
        print(f"{name:32} {condition:38} {mine:9.3f} {theirs:8.3f} {mine / theirs:6.2f}x")
    print()
    print("targets: warm search <= 2x ripgrep; warm list <= 0.3 s")
    if not dropped:
        print("note: the page cache could not be dropped, so 'cold' is only a first run")


if __name__ == "__main__":
    main()
