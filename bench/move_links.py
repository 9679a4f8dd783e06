"""Benchmark: move_file's link rewriting on a 2,000- and a 10,000-note vault.

Run: `.venv/bin/python bench/move_links.py [--sizes 2000,10000] [--linking K] [--runs R]`

Builds a deterministic (seeded) vault of notes of about 1.5 KB in nested folders, each with
wiki and Markdown links to random other notes (many sharing a name across folders) and code
spans; one note in 20 shows `[[Target]]` inside a fenced block (not a link); exactly K notes (the same number at every size) link to `Target`.
Then, through `Vault.move`, renames `Target` back and forth R times and takes the median, and
in the same run does the same move the plain way: `os.rename` plus, for each of the same K
notes, read, replace the link text, write (no parsing, no resolution), without and with an
fsync per note (move_file writes each note atomically and durably: temp file, fsync, rename,
fsync of the folder). The vault is synced to disk after building, before measuring.

The first move of a new Vault indexes the vault (shown as "first move"); later moves refresh
that index from inotify's change list, so their cost should not grow with the notes that do
not link to what moved. Target: median(10,000) / median(2,000) <= 1.5.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from smarthole_notes.vault import Vault  # noqa: E402

FOLDERS = ["Projects", "Areas", "Archive", "Journal", "Reading", "People", "Ideas", "Work"]
WORDS = [
    "plan",
    "review",
    "budget",
    "team",
    "design",
    "draft",
    "client",
    "launch",
    "research",
    "summary",
    "data",
    "model",
]


def build(root: Path, notes: int, linking: int, seed: int = 14) -> list[str]:
    """Write the vault; return the notes that link to Target.md."""
    rng = random.Random(seed)
    names = [f"Note {i % (notes // 3)}" for i in range(notes)]  # each name about 3 times
    paths = []
    for index, name in enumerate(names):
        folder = "/".join(rng.sample(FOLDERS, rng.randint(1, 3)))
        paths.append(f"{folder}/{name} ({index}).md" if index % 7 == 0 else f"{folder}/{name}.md")
    paths = list(dict.fromkeys(paths))
    chosen = set(rng.sample(range(len(paths)), linking))
    for index, rel in enumerate(paths):
        lines = [f"# {Path(rel).stem}", ""]
        for _ in range(12):
            other = Path(rng.choice(paths)).stem
            words = " ".join(rng.choice(WORDS) for _ in range(12))
            lines.append(f"- {words} [[{other}]] and `code [[{other}]]` [x]({other}.md)")
        if index in chosen:
            lines.append("See [[Target]] and [the target](Target.md#Part).")
        if index % 20 == 0:  # a few notes show the link syntax inside code
            lines += ["", "```markdown", "[[Target]]", "```", ""]
        full = root / rel
        full.parent.mkdir(parents=True, exist_ok=True)
        full.write_text("\n".join(lines))
    (root / "Projects" / "Target.md").write_text("# Target\n")
    return [paths[i] for i in sorted(chosen)]


def plain_move(
    root: Path, source: str, destination: str, linking: list[str], *, durable: bool
) -> None:
    os.rename(root / source, root / destination)
    old, new = Path(source).stem, Path(destination).stem
    for rel in linking:
        path = root / rel
        text = path.read_text()
        text = text.replace(f"[[{old}]]", f"[[{new}]]").replace(f"({old}.md", f"({new}.md")
        with open(path, "w") as file:
            file.write(text)
            if durable:
                file.flush()
                os.fsync(file.fileno())


def measure(notes: int, linking: int, runs: int, keep: Path | None) -> dict[str, float]:
    base = Path(tempfile.mkdtemp(prefix="move-links-"))
    root = base / "vault"
    root.mkdir()
    try:
        linkers = build(root, notes, linking)
        os.sync()  # so that flushing the new vault does not land in the measured fsyncs
        vault = Vault(root)
        names = ["Projects/Target.md", "Projects/Moved Target.md"]
        started = time.perf_counter()
        out = vault.move(names[0], names[1])
        first = time.perf_counter() - started
        assert out.notes == linking, (out.notes, out.links)
        ours: list[float] = []
        for run in range(runs):
            source, destination = names[(run + 1) % 2], names[run % 2]
            started = time.perf_counter()
            out = vault.move(source, destination)
            ours.append(time.perf_counter() - started)
            assert out.notes == linking and not out.failures, out
        plain: list[float] = []
        durable: list[float] = []
        current = names[(runs + 1) % 2]
        for run in range(2 * runs):
            other = names[0] if current == names[1] else names[1]
            started = time.perf_counter()
            plain_move(root, current, other, linkers, durable=run % 2 == 1)
            (durable if run % 2 else plain).append(time.perf_counter() - started)
            current = other
        if keep is not None:
            shutil.copytree(root, keep / f"vault-{notes}", dirs_exist_ok=True)
        return {
            "first": first,
            "ours": statistics.median(ours),
            "plain": statistics.median(plain),
            "durable": statistics.median(durable),
        }
    finally:
        shutil.rmtree(base, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="2000,10000")
    parser.add_argument("--linking", type=int, default=20, help="notes that link to Target")
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--keep", type=Path, help="copy the vaults here")
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]
    results = {size: measure(size, args.linking, args.runs, args.keep) for size in sizes}
    print(f"move_file of a note linked from {args.linking} notes; median of {args.runs} moves")
    print(
        f"{'notes':>7} {'first move':>11} {'move':>9} {'rename+rewrite':>15} {'ours/that':>10}"
        f" {'same+fsync':>11} {'ours/that':>10}"
    )
    for size, found in results.items():
        print(
            f"{size:>7} {found['first'] * 1000:>9.1f}ms {found['ours'] * 1000:>7.1f}ms "
            f"{found['plain'] * 1000:>13.1f}ms {found['ours'] / found['plain']:>9.2f}x"
            f" {found['durable'] * 1000:>9.1f}ms {found['ours'] / found['durable']:>9.2f}x"
        )
    if len(sizes) >= 2:
        small, large = results[sizes[0]], results[sizes[-1]]
        print(
            f"{sizes[-1]} / {sizes[0]} notes: move {large['ours'] / small['ours']:.2f}x "
            f"(target <= 1.5), rename+rewrite {large['plain'] / small['plain']:.2f}x, "
            f"first move {large['first'] / small['first']:.2f}x"
        )


if __name__ == "__main__":
    main()
