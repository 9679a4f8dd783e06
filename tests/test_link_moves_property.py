"""Property: on vaults full of same-named notes, random moves never change what a link opens.

Each generated vault has notes and attachments sharing names across nested folders (including
folders whose names are prefixes of others, case variants and dotted names), linked in every
form. Before and after each move through `Vault.move`, every link is resolved with the
independent model in `tests.obsidian_model` (not with the product's resolver); a link that
opened a file must open the same file, wherever it now is.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from urllib.parse import quote

import pytest

from smarthole_notes.vault import Vault
from smarthole_notes.vault.errors import VaultError
from tests.obsidian_model import model_links, model_resolve

FOLDERS = ["", "a", "a/b", "ab", "A2", "Archive-2023", "x y", "a/b/c", "pt/I", "fi/Files", "Ünï"]
NAMES = ["Topic", "topic", "Budget", "Node.js", "X.final", "Map view", "Plan", "Café"]
ATTACHMENTS = ["pic.png", "Topic.png", "doc.pdf"]


def _join(folder: str, name: str) -> str:
    return f"{folder}/{name}" if folder else name


def _relative(path: str, source: str) -> str:
    up = source.count("/")
    return "../" * up + path if up else "./" + path


def _link(rng: random.Random, target: str, source: str) -> str:
    """A link to `target` written in one of Obsidian's forms (which may mean another file)."""
    stem = target[:-3] if target.endswith(".md") else target
    name = stem.rsplit("/", 1)[-1]
    form = rng.randrange(11)
    if form == 0:
        return f"[[{name}]]"
    if form == 1:
        return f"[[{stem}|alias]]"
    if form == 2:
        return f"[[{stem.rsplit('/', 1)[-1] if rng.random() < 0.5 else stem}#Heading]]"
    if form == 3:
        return f"[[{_relative(stem, source)}]]"
    if form == 4:
        return f"[[/{stem}]]"
    if form == 5:
        return f"[t]({quote(target)})"
    if form == 6:
        return f"[t](<{stem}>)"
    if form == 7:
        return f"![[{target.rsplit('/', 1)[-1]}]]"
    if form == 8:
        return f"[[{name.lower()}.md]]" if target.endswith(".md") else f"[[{name}]]"
    if form == 9:
        tail = "/".join(stem.split("/")[-2:])
        return f"[[{tail}]]"
    return "[[Missing note]]"


def _build(root: Path, rng: random.Random, style: str) -> dict[str, int]:
    files: dict[str, int] = {}
    taken: set[str] = set()
    while len(files) < 26:
        if rng.random() < 0.2:
            path = _join(rng.choice(FOLDERS), rng.choice(ATTACHMENTS))
        else:
            path = _join(rng.choice(FOLDERS), rng.choice(NAMES) + ".md")
        if path.lower() in taken:
            continue
        taken.add(path.lower())
        files[path] = len(files)
    for path, ident in files.items():
        full = root / path
        full.parent.mkdir(parents=True, exist_ok=True)
        if not path.endswith(".md"):
            full.write_bytes(b"\x89PNG\r\n\x00binary")
            continue
        links = [_link(rng, rng.choice(list(files)), path) for _ in range(rng.randint(2, 6))]
        full.write_text(f"id {ident}\n" + "\n".join(f"- see {link} here" for link in links) + "\n")
    (root / ".obsidian").mkdir()
    (root / ".obsidian" / "app.json").write_text(json.dumps({"newLinkFormat": style}))
    return files


def _targets(root: Path, files: dict[str, int]) -> dict[int, list[int | None]]:
    """For each note (by identity), what each of its links opens (by identity)."""
    found: dict[int, list[int | None]] = {}
    for path, ident in files.items():
        if not path.endswith(".md"):
            continue
        text = (root / path).read_text()
        resolved = [model_resolve(files, link, path) for link in model_links(text)]
        found[ident] = [None if r is None else files[r] for r in resolved]
    return found


def _random_move(
    rng: random.Random, files: dict[str, int]
) -> tuple[str, str, dict[str, str]] | None:
    taken = {path.lower() for path in files}
    if rng.random() < 0.15:
        folder = rng.choice([f for f in FOLDERS if f and any(p.startswith(f + "/") for p in files)])
        new_folder = _join(rng.choice(FOLDERS), rng.choice(["moved", "Moved 2", "b"]))
        if new_folder == folder or new_folder.startswith(folder + "/"):
            return None
        prefix = folder + "/"
        moved = {p: new_folder + "/" + p[len(prefix) :] for p in files if p.startswith(prefix)}
        if any(new.lower() in taken for new in moved.values()):
            return None
        if any(p.lower().startswith(new_folder.lower() + "/") for p in files):
            return None  # the destination folder exists: the folder would go inside it
        return folder, new_folder, moved
    source = rng.choice(list(files))
    extension = source[source.rfind(".") :] if source.endswith(".md") else ""
    name = rng.choice(NAMES) + extension if extension else rng.choice(ATTACHMENTS)
    destination = _join(rng.choice(FOLDERS), name)
    if destination.lower() in taken:
        return None
    return source, destination, {source: destination}


@pytest.mark.parametrize("seed", range(9))
def test_random_moves_keep_every_link_target(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    style = ["shortest", "relative", "absolute"][seed % 3]
    root = tmp_path / "vault"
    root.mkdir()
    files = _build(root, rng, style)
    vault = Vault(root)
    moves = 0
    while moves < 10:
        move = _random_move(rng, files)
        if move is None:
            continue
        source, destination, moved = move
        before = _targets(root, files)
        try:
            vault.move(source, destination)
        except VaultError as exc:  # pragma: no cover - a generated move the vault refuses
            pytest.fail(f"move {source} -> {destination} refused: {exc}")
        files = {moved.get(path, path): ident for path, ident in files.items()}
        after = _targets(root, files)
        for ident, targets in before.items():
            now = after[ident]
            assert len(now) == len(targets), (seed, source, destination, ident)
            for was, became in zip(targets, now, strict=True):
                if was is not None:
                    assert became == was, (seed, moves, source, destination, ident, targets, now)
        moves += 1
