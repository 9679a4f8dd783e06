"""search_notes: ranking on small hand-made vaults, filters, freshness, crashes, rebuilds."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from smarthole_notes.tools.base import ToolRegistry
from smarthole_notes.tools.vault import vault_tools
from smarthole_notes.vault import Vault, VaultError
from smarthole_notes.vault.index import INDEX_FILE, NoteIndex

ROOT = Path(__file__).resolve().parent.parent


def write(root: Path, rel: str, text: str) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def vault(tmp_path: Path) -> Iterator[Vault]:
    (tmp_path / "vault").mkdir()
    v = Vault(tmp_path / "vault")
    yield v
    v.index.close()


FILLER = ["Groceries", "Holiday ideas", "Reading list", "Birthdays", "Car service", "Recipes"]


def ready(v: Vault) -> Vault:
    """Start the index, with a few unrelated notes (BM25 needs more than two notes to say
    that a word is rare)."""
    for name in FILLER:
        path = v.root / "Filler" / f"{name}.md"
        if not path.exists():
            write(v.root, f"Filler/{name}.md", f"{name}: bread, a trip, a novel, a cake.\n")
    v.start_index()
    assert v.index.wait_ready(30)
    return v


def ranked(v: Vault, query: str, *, folder: str | None = None, tag: str | None = None) -> list[str]:
    return [hit.rel for hit in v.search_notes(query, folder=folder, tag=tag).hits]


def eventually(check: Callable[[], bool], timeout: float = 1.0) -> float:
    """Seconds until `check` holds; fails after `timeout`."""
    began = time.monotonic()
    while not check():
        if time.monotonic() - began > timeout:
            pytest.fail(f"not within {timeout} s")
        time.sleep(0.02)
    return time.monotonic() - began


# -- ranking ------------------------------------------------------------------------------


def test_a_title_beats_a_mention_in_the_body(vault: Vault) -> None:
    write(vault.root, "Misc/Shopping.md", "Eggs, milk. Also the kitchen tiles need grout.\n")
    write(vault.root, "Home/Kitchen.md", "Decided: oak worktops.\n")
    ready(vault)
    assert ranked(vault, "kitchen")[0] == "Home/Kitchen.md"


def test_word_forms_are_stemmed(vault: Vault) -> None:
    write(vault.root, "Decisions.md", "We are deciding on the renovation budget.\n")
    write(vault.root, "Other.md", "Nothing to see here.\n")
    ready(vault)
    assert ranked(vault, "what did I decide about renovations") == ["Decisions.md"]


def test_accents_do_not_need_to_match(vault: Vault) -> None:
    write(vault.root, "Café crème.md", "Recette du café de Zoë à Orléans.\n")
    ready(vault)
    assert ranked(vault, "cafe creme") == ["Café crème.md"]
    assert ranked(vault, "zoe orleans") == ["Café crème.md"]
    assert ranked(vault, "CAFÉ")[0] == "Café crème.md"


def test_aliases_find_the_note(vault: Vault) -> None:
    write(vault.root, "People/Robert Smith.md", "---\naliases: [Bob, Bobby]\n---\nColleague.\n")
    write(vault.root, "Notes.md", "Met someone today.\n")
    ready(vault)
    assert ranked(vault, "bobby") == ["People/Robert Smith.md"]


def test_headings_and_properties_are_searched(vault: Vault) -> None:
    write(vault.root, "A.md", "---\nstatus: blocked\nowner: Priya\n---\n# Roadmap\n\ntext\n")
    ready(vault)
    assert ranked(vault, "priya") == ["A.md"]
    assert ranked(vault, "roadmap") == ["A.md"]


def test_tag_filter_takes_body_and_frontmatter_tags_and_nested_ones(vault: Vault) -> None:
    write(vault.root, "One.md", "Garden plan #project/garden\n")
    write(vault.root, "Two.md", "---\ntags: [project]\n---\nGarden ideas\n")
    write(vault.root, "Three.md", "Garden wishes, `#project` in code is no tag\n")
    write(vault.root, "Four.md", "```\n#project\n```\nGarden code\n")
    ready(vault)
    assert sorted(ranked(vault, "garden", tag="project")) == ["One.md", "Two.md"]
    assert ranked(vault, "garden", tag="#project/garden") == ["One.md"]
    assert ranked(vault, "garden", tag="Project/Garden") == ["One.md"]
    assert ranked(vault, "garden", tag="nothing") == []


def test_folder_filter(vault: Vault) -> None:
    write(vault.root, "Work/Plan.md", "quarterly plan\n")
    write(vault.root, "Home/Plan.md", "garden plan\n")
    write(vault.root, "Workshop/Plan.md", "plan for the bench\n")
    ready(vault)
    assert ranked(vault, "plan", folder="work") == ["Work/Plan.md"]  # case-insensitive lookup
    with pytest.raises(VaultError, match="not found"):
        vault.search_notes("plan", folder="Nowhere")


def test_protected_and_hidden_folders_are_never_indexed(vault: Vault) -> None:
    for rel in (".obsidian/x.md", ".trash/x.md", ".git/x.md", ".smarthole/x.md", ".hidden/x.md"):
        write(vault.root, rel, "secretword\n")
    write(vault.root, "Visible.md", "secretword\n")
    ready(vault)
    assert ranked(vault, "secretword") == ["Visible.md"]
    assert vault.index.status().notes == 1 + len(FILLER)


async def test_the_tool_prints_path_then_title_then_snippet(vault: Vault) -> None:
    write(vault.root, "Home/Kitchen.md", "We decided on oak worktops for the kitchen.\n")
    ready(vault)
    registry = ToolRegistry(vault_tools(vault))
    out = await registry.run("search_notes", {"query": "oak worktops"})
    assert not out.is_error
    first = out.content.splitlines()[0]
    assert first.startswith("Home/Kitchen.md | Kitchen | ")
    assert "**oak**" in first
    empty = await registry.run("search_notes", {"query": "zebra"})
    assert "No notes match" in empty.content


def test_search_starts_the_index_when_nobody_did(vault: Vault) -> None:
    write(vault.root, "A.md", "alpha\n")
    assert ranked(vault, "alpha") == ["A.md"]  # one-off use (ask, MCP): built on demand
    assert (vault.root / INDEX_FILE).exists()


# -- freshness ------------------------------------------------------------------------------


def test_outside_creates_edits_moves_and_deletes_are_searchable_within_a_second(
    vault: Vault,
) -> None:
    write(vault.root, "Old.md", "nothing yet\n")
    ready(vault)
    write(vault.root, "Folder/New.md", "pelican\n")
    eventually(lambda: ranked(vault, "pelican") == ["Folder/New.md"])
    write(vault.root, "Old.md", "now about flamingos\n")
    eventually(lambda: ranked(vault, "flamingo") == ["Old.md"])
    os.rename(vault.root / "Folder/New.md", vault.root / "Moved.md")
    eventually(lambda: ranked(vault, "pelican") == ["Moved.md"])
    os.rename(vault.root / "Folder", vault.root / "Renamed")
    write(vault.root, "Renamed/Deep.md", "heron\n")
    eventually(lambda: ranked(vault, "heron") == ["Renamed/Deep.md"])
    (vault.root / "Old.md").unlink()
    eventually(lambda: ranked(vault, "flamingo") == [])


def test_the_products_own_writes_are_searchable_at_once(vault: Vault) -> None:
    ready(vault)
    vault.index.watch = False  # only the write hooks can tell it now
    vault.index._stop.set()  # and no background loop either
    vault.write("Ideas.md", "quokka\n")
    assert ranked(vault, "quokka") == ["Ideas.md"]
    vault.replace("Ideas.md", "quokka", "wombat")
    assert ranked(vault, "quokka") == [] and ranked(vault, "wombat") == ["Ideas.md"]
    vault.set_properties("Ideas.md", {"topic": "marsupials"})
    assert ranked(vault, "marsupial") == ["Ideas.md"]
    vault.move("Ideas.md", "Zoo/Ideas.md")
    assert ranked(vault, "wombat") == ["Zoo/Ideas.md"]
    vault.delete("Zoo")
    assert ranked(vault, "wombat") == []


def test_a_restart_rereads_only_what_changed(tmp_path: Path) -> None:
    root = tmp_path / "v"
    for i in range(30):
        write(root, f"N{i}.md", f"note {i}\n")
    first = NoteIndex(root, watch=False)
    first.start()
    first.wait_ready(30)
    first.close()
    # A note whose bytes are the same but whose mtime changed: hashed, not re-parsed.
    os.utime(root / "N1.md", (1, 1))
    write(root, "N2.md", "changed\n")
    again = NoteIndex(root, watch=False)
    again._open()
    parsed: list[str] = []
    original = again._store

    def counting(db: sqlite3.Connection, item: object) -> None:
        if not getattr(item, "unchanged", False):
            parsed.append(item.rel)  # type: ignore[attr-defined]
        original(db, item)  # type: ignore[arg-type]

    again._store = counting  # type: ignore[method-assign]
    again.sync()
    assert parsed == ["N2.md"]
    assert [h.rel for h in again.search("changed")] == ["N2.md"]
    again.close()


# -- crashes and rebuilds --------------------------------------------------------------------


def test_a_crash_during_indexing_leaves_a_usable_index(tmp_path: Path) -> None:
    root = tmp_path / "v"
    for i in range(3000):
        write(root, f"F{i // 100}/N{i}.md", f"note number {i} about crashes\n" * 20)
    script = textwrap.dedent(
        f"""
        import sys, time
        sys.path.insert(0, {str(ROOT)!r})
        from pathlib import Path
        from smarthole_notes.vault import index
        index.BATCH = 50
        ix = index.NoteIndex(Path({str(root)!r}), watch=False)
        ix.start()
        time.sleep(60)
        """
    )
    child = subprocess.Popen([sys.executable, "-c", script])
    db_path = root / INDEX_FILE
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with sqlite3.connect(db_path) as db:
                    if db.execute("SELECT count(*) FROM files").fetchone()[0] >= 200:
                        break
            except sqlite3.Error:
                pass
            time.sleep(0.01)
        child.send_signal(signal.SIGKILL)
    finally:
        child.wait()
    ix = NoteIndex(root, watch=False)
    ix._open()  # opens what the killed build left: no rebuild needed
    partial = ix.status().notes
    assert 0 < partial < 3000
    assert ix.search("crashes", 3)
    ix.sync()
    assert ix.status().notes == 3000
    ix.close()


def test_a_corrupt_index_is_rebuilt(tmp_path: Path) -> None:
    root = tmp_path / "v"
    write(root, "A.md", "aardvark\n")
    (root / ".smarthole").mkdir()
    (root / INDEX_FILE).write_bytes(b"this is not a database" * 100)
    ix = NoteIndex(root, watch=False)
    ix.start()
    assert ix.wait_ready(30)
    assert [h.rel for h in ix.search("aardvark")] == ["A.md"]
    ix.close()


def test_an_index_of_an_older_schema_is_rebuilt(tmp_path: Path) -> None:
    root = tmp_path / "v"
    write(root, "A.md", "aardvark\n")
    (root / ".smarthole").mkdir()
    with sqlite3.connect(root / INDEX_FILE) as db:
        db.execute("CREATE TABLE old(x)")
        db.execute("PRAGMA user_version = 0")
    with sqlite3.connect(root / INDEX_FILE) as db:
        db.execute("PRAGMA user_version = 99")
    ix = NoteIndex(root, watch=False)
    ix.start()
    assert ix.wait_ready(30)
    assert [h.rel for h in ix.search("aardvark")] == ["A.md"]
    with sqlite3.connect(root / INDEX_FILE) as db:
        assert db.execute("SELECT name FROM sqlite_master WHERE name = 'old'").fetchone() is None
    ix.close()


def test_status_for_the_chat_page(vault: Vault) -> None:
    assert vault.index.status().state == "idle"
    write(vault.root, "A.md", "x\n")
    ready(vault)
    status = vault.index.status()
    assert status.state == "ready" and status.notes == 1 + len(FILLER)
    assert status.last_update is not None
    assert status.disk_bytes > 0
    assert set(status.as_dict()) >= {"state", "notes", "last_update"}
    assert status.describe() == f"{1 + len(FILLER)} notes indexed"
