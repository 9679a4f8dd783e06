"""Check on a real vault: random moves through move_file never change what a link opens.

Run: `.venv/bin/python bench/real_vault_moves.py VAULT [--moves 200] [--seed 14]`

Works on a copy of VAULT (the original is never touched). Each move takes a random file (a
note, or one time in five an attachment) to a random existing folder, under its own name or
under the name of another file of the vault (to provoke same-name captures). Links are found
with the product's `find_links`; what they open is computed with the independent model of
Obsidian's resolution in `tests/obsidian_model.py`, never with the product's resolver.

After each move, every link whose target could have changed (its source moved, or it looks
up a moved file's old or new name; other links provably cannot change, see
`tests/obsidian_model.py`) is checked, and every note not reported as rewritten must be
byte-identical. At the end, every link of the vault is checked against what it opened before
the first move. Reported: moves, links rewritten, links whose target changed (target 0).
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from smarthole_notes.vault import Vault  # noqa: E402
from smarthole_notes.vault.links import find_links  # noqa: E402
from smarthole_notes.vault.listing import walk  # noqa: E402
from smarthole_notes.vault.resolver import lookup_keys, lookup_name  # noqa: E402
from tests.obsidian_model import ModelIndex  # noqa: E402

Targets = dict[int, list[int | None]]  # note identity -> identity each link opens


class Checker:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.paths = [e.rel for e in walk(root, root, "", include_dirs=False)]
        self.ident = {path: number for number, path in enumerate(self.paths)}
        self.model = ModelIndex(self.paths)
        self.texts: dict[str, bytes] = {}
        self.links: dict[str, list[str]] = {}
        for path in self.paths:
            if path.lower().endswith(".md"):
                self._parse(path)

    def _parse(self, path: str) -> None:
        data = (self.root / path).read_bytes()
        self.texts[path] = data
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            self.links[path] = []
            return
        self.links[path] = [link.target for link in find_links(text)]

    def targets(self, notes: list[str]) -> Targets:
        found: Targets = {}
        for path in notes:
            opened = [self.model.resolve(target, path) for target in self.links[path]]
            found[self.ident[path]] = [None if o is None else self.ident[o] for o in opened]
        return found

    def at_risk(self, moved: dict[str, str]) -> list[str]:
        names = {lookup_name(path) for pair in moved.items() for path in pair}
        return [
            path
            for path, targets in self.links.items()
            if path in moved or any(set(lookup_keys(t)) & names for t in targets)
        ]

    def apply(self, moved: dict[str, str]) -> None:
        for old, new in moved.items():
            self.model.remove(old)
            self.model.add(new)
            self.ident[new] = self.ident.pop(old)
            if old in self.links:
                self.links[new] = self.links.pop(old)
                self.texts[new] = self.texts.pop(old)
        self.paths = [moved.get(path, path) for path in self.paths]

    def changed_notes(self) -> set[str]:
        changed = set()
        for path in list(self.texts):
            if (self.root / path).read_bytes() != self.texts[path]:
                changed.add(path)
                self._parse(path)
        return changed


def compare(before: Targets, after: Targets, where: str, report: list[str]) -> int:
    wrong = 0
    for note, targets in before.items():
        now = after.get(note, [])
        if len(now) != len(targets):
            report.append(f"{where}: note {note} has {len(now)} links, had {len(targets)}")
            wrong += abs(len(now) - len(targets))
            continue
        for was, became in zip(targets, now, strict=True):
            if was is not None and became != was:
                wrong += 1
    return wrong


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("vault", type=Path)
    parser.add_argument("--moves", type=int, default=200)
    parser.add_argument("--seed", type=int, default=14)
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="real-vault-moves-"))
    root = base / "vault"
    try:
        shutil.copytree(args.vault, root, symlinks=True, ignore=shutil.ignore_patterns(".git"))
        started = time.perf_counter()
        checker = Checker(root)
        notes = [p for p in checker.paths if p.lower().endswith(".md")]
        link_count = sum(len(links) for links in checker.links.values())
        print(f"{len(checker.paths)} files, {len(notes)} notes, {link_count} links", end="")
        print(f" (parsed in {time.perf_counter() - started:.1f}s)")
        first = checker.targets(notes)
        vault = Vault(root)
        rng = random.Random(args.seed)
        folders = sorted({os.path.dirname(p) for p in checker.paths})
        moves = rewritten = wrong = unreported = 0
        problems: list[str] = []
        move_time = 0.0
        while moves < args.moves:
            pool = checker.paths if rng.random() < 0.2 else list(checker.links)
            source = rng.choice(pool)
            name = os.path.basename(source)
            if rng.random() < 0.5:  # take another file's name: same-name captures
                other = os.path.basename(rng.choice(checker.paths))
                if os.path.splitext(other)[1].lower() == os.path.splitext(name)[1].lower():
                    name = other
            folder = rng.choice(folders)
            destination = f"{folder}/{name}" if folder else name
            if destination.lower() in {p.lower() for p in checker.paths}:
                continue
            moved = {source: destination}
            at_risk = checker.at_risk(moved)
            before = checker.targets(at_risk)
            began = time.perf_counter()
            out = vault.move(source, destination)
            move_time += time.perf_counter() - began
            checker.apply(moved)
            changed = checker.changed_notes()
            if out.failures:
                problems.append(f"move {moves}: failures {out.failures}")
            if len(changed) != out.notes:
                unreported += 1
                problems.append(f"move {moves}: {len(changed)} notes changed, {out.notes} said")
            rewritten += out.links
            after = checker.targets([moved.get(p, p) for p in at_risk])
            wrong += compare(before, after, f"move {moves} {source} -> {destination}", problems)
            moves += 1
        final = checker.targets([p for p in checker.paths if p in checker.links])
        drift = compare(first, final, "start vs end", problems)
        print(
            f"moves: {moves} ({move_time:.1f}s in all, {move_time / moves * 1000:.0f} ms per move)"
        )
        print(f"links rewritten: {rewritten}")
        print(f"links whose target changed: {wrong} (after each move), {drift} (start vs end)")
        print(f"moves whose rewritten-note count was wrong: {unreported}")
        for line in problems[:20]:
            print("  " + line)
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
