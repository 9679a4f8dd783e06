"""Benchmark: the search index on a 10,000-note, ~50 MB vault, against ripgrep in the same run.

Run: `.venv/bin/python bench/search_index.py [--notes N] [--keep DIR]` (needs `rg`)

Builds a deterministic (seeded) vault of notes of about 5 KB (Zipf-distributed words, front
matter with tags, headings, wiki links between notes) in nested folders, then measures:
- ripgrep reading it all (`rg -c .`, warm page cache, median of 3): the yardstick;
- the full index build (a fresh `.smarthole/index.sqlite3`), and its ratio to ripgrep;
- a restart with nothing changed (the walk and signature comparison), and with 100 notes
  changed; one note taken in through `NoteIndex.changed` (what a write or the watcher does);
- a warm query (median over 30 three-word queries) against ripgrep scanning for the same
  words (`rg -i -c -e w1 -e w2 -e w3`);
- an outside edit (a file written behind the service's back) until search_notes finds it,
  with the inotify watcher running (median of 5);
- how long `start_index()` takes to return (the service does not wait for the build);
- the index's size on disk.
"""

from __future__ import annotations

import argparse
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from smarthole_notes.vault import Vault  # noqa: E402
from smarthole_notes.vault.index import INDEX_FILE, NoteIndex  # noqa: E402

_SYLLABLES = "ka lo mi ren tas vel dor quin ber sta lu pho grim el ost un tri sel mar nov"
SYLLABLES = _SYLLABLES.split()


def vocabulary(rng: random.Random, size: int) -> list[str]:
    words: set[str] = set()
    while len(words) < size:
        words.add("".join(rng.choice(SYLLABLES) for _ in range(rng.randint(1, 4))))
    return sorted(words)


def build_vault(root: Path, notes: int, seed: int = 11) -> list[str]:
    rng = random.Random(seed)
    words = vocabulary(rng, 20_000)
    weights = [1 / (rank + 1) for rank in range(len(words))]  # Zipf
    names = [f"Area {i % 20}/Topic {i % 137}/Note {i}" for i in range(notes)]
    for name in names:
        text = rng.choices(words, weights, k=520)
        lines = [
            "---",
            f"tags: [{rng.choice(words)}, project/{rng.choice(words)}]",
            f"status: {rng.choice(['draft', 'done', 'waiting'])}",
            "---",
            f"# {' '.join(text[:4])}",
        ]
        for start in range(4, len(text), 12):
            line = " ".join(text[start : start + 12])
            if rng.random() < 0.08:
                line += f" [[Note {rng.randrange(notes)}]]"
            if rng.random() < 0.05:
                line = f"## {line[:40]}"
            lines.append(line)
        path = root / f"{name}.md"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return words


def timed(function: Callable[[], object]) -> float:
    began = time.perf_counter()
    function()
    return time.perf_counter() - began


def median_of(runs: int, function: Callable[[], object]) -> float:
    return statistics.median(timed(function) for _ in range(runs))


def rg(*args: str, cwd: Path) -> None:
    subprocess.run(["rg", *args], cwd=cwd, stdout=subprocess.DEVNULL, check=False)


def folder_bytes(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*.md") if ".smarthole" not in p.parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--notes", type=int, default=10_000)
    parser.add_argument("--keep", type=Path, help="build the vault here and keep it")
    args = parser.parse_args()
    if shutil.which("rg") is None:
        sys.exit("needs ripgrep (rg)")
    temp = None if args.keep else tempfile.TemporaryDirectory()
    root = args.keep or Path(temp.name) / "vault"  # type: ignore[union-attr]
    root.mkdir(parents=True, exist_ok=True)
    words = build_vault(root, args.notes)
    size = folder_bytes(root)
    print(f"Vault: {args.notes:,} notes, {size / 1e6:.1f} MB ({root})\n")

    rg("-c", ".", cwd=root)  # warm the page cache
    rg_all = median_of(3, lambda: rg("-c", ".", cwd=root))

    shutil.rmtree(root / ".smarthole", ignore_errors=True)
    index = NoteIndex(root, watch=False)
    index._open()
    build = timed(index.sync)
    notes = index.status().notes
    index.close()
    disk = (root / INDEX_FILE).stat().st_size

    again = NoteIndex(root, watch=False)
    again._open()
    restart = timed(again.sync)
    paths = sorted(root.rglob("Note 1??.md"))[:100]
    for path in paths:
        path.write_text(path.read_text(encoding="utf-8") + "\nchanged today\n", encoding="utf-8")
    restart_100 = timed(again.sync)
    singles: list[float] = []
    for path in paths[:5]:
        path.write_text(path.read_text(encoding="utf-8") + "a single edit\n", encoding="utf-8")
        singles.append(timed(partial(again.changed, [path.relative_to(root).as_posix()])))
    single = statistics.median(singles)

    rng = random.Random(5)
    queries = [" ".join(rng.choice(words[200:3000]) for _ in range(3)) for _ in range(30)]
    for query in queries[:5]:
        again.search(query)
    query_time = statistics.median(timed(partial(again.search, q)) for q in queries)
    rg_query = statistics.median(
        timed(partial(rg, "-i", "-c", *[a for w in q.split() for a in ("-e", w)], cwd=root))
        for q in queries[:10]
    )
    again.close()

    vault = Vault(root)
    start_return = timed(vault.start_index)
    vault.index.wait_ready(600)
    latencies: list[float] = []
    for attempt in range(5):
        word = f"zebrafinch{attempt}"
        target = root / "Area 1" / f"Outside {attempt}.md"
        began = time.perf_counter()
        target.write_text(f"an outside edit about {word}\n", encoding="utf-8")
        while not vault.index.search(word):
            time.sleep(0.005)
            if time.perf_counter() - began > 10:
                break
        latencies.append(time.perf_counter() - began)
    vault.index.close()

    print(f"{'measure':52} {'time':>10} {'vs ripgrep':>11}")
    print(f"{'ripgrep reading it all (rg -c .)':52} {rg_all:9.3f}s")
    print(f"{'full index build':52} {build:9.2f}s {build / rg_all:10.1f}x")
    print(f"{'restart, nothing changed':52} {restart:9.3f}s {restart / rg_all:10.2f}x")
    print(f"{'restart, 100 notes changed':52} {restart_100:9.3f}s {restart_100 / rg_all:10.2f}x")
    print(f"{'one note taken in (a write, or the watcher)':52} {single * 1000:8.2f}ms")
    print(f"{'warm query (median of 30, three words)':52} {query_time * 1000:8.2f}ms ", end="")
    print(f"{query_time / rg_query:10.2f}x")
    print(f"{'ripgrep scan for the same words':52} {rg_query * 1000:8.2f}ms")
    print(f"{'outside edit until found (median of 5)':52} {statistics.median(latencies):9.3f}s")
    print(f"{'start_index() returns after':52} {start_return * 1000:8.2f}ms")
    print(f"\nIndexed notes: {notes:,}; index on disk: {disk / 1e6:.1f} MB "
          f"({disk / size:.2f}x the notes' {size / 1e6:.1f} MB)")  # fmt: skip
    if temp is not None:
        temp.cleanup()


if __name__ == "__main__":
    main()
