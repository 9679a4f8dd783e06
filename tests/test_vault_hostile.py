"""Hostile input: nothing escapes the vault, and every refusal is a clear error."""

from __future__ import annotations

import os
import unicodedata
from pathlib import Path

import pytest

from tests.vault_fixtures import VaultHarness

SECRET = "TOP SECRET outside the vault\n"


@pytest.fixture
def h(tmp_path: Path) -> VaultHarness:
    harness = VaultHarness(tmp_path)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.md").write_text(SECRET)
    evil = tmp_path / "notes_evil"  # a sibling whose name starts with the vault's name
    evil.mkdir()
    (evil / "secret.md").write_text(SECRET)
    harness.put("Home.md", "# Home\n")
    harness.put(".obsidian/app.json", '{"x": 1}')
    harness.put(".git/config", "[core]\n")
    harness.put(".smarthole/state.json", "{}")
    return harness


def snapshot(base: Path) -> dict[str, bytes]:
    """Every file under the temp folder *outside* the vault, with its content."""
    found: dict[str, bytes] = {}
    for folder, _, names in os.walk(base):
        if Path(folder).is_relative_to(base / "notes"):
            continue
        for name in names:
            path = Path(folder) / name
            found[str(path.relative_to(base))] = path.read_bytes()
    return found


ESCAPES = [
    "../../etc/passwd",
    "../outside/secret.md",
    "/etc/passwd",
    "~/.ssh/id_rsa",
    "~root/.bashrc",
    "a/../../x",
    "..\\..\\etc\\passwd",
    "C:\\Windows\\system.ini",
    "../notes_evil/secret.md",
    "Home.md/../../../outside/secret.md",
]

PROTECTED = [
    ".obsidian/app.json",
    ".Obsidian/app.json",
    ".OBSIDIAN/app.json",
    ".GIT/config",
    ".git/config",
    "x/../.git/config",
    ".obsi\u200bdian/app.json",
    "\u200b.git/config",
    ".smarthole/state.json",
    ".SmartHole/state.json",
    ".\uff47it/config",  # fullwidth g
    ".git./config",
]


def calls(path: str) -> list[tuple[str, dict[str, object]]]:
    return [
        ("read_file", {"path": path}),
        ("write_file", {"path": path, "content": "pwned"}),
        ("edit_file", {"path": path, "old_text": "a", "new_text": "b"}),
        ("edit_file", {"path": path, "insert_after_line": 0, "content": "pwned"}),
        ("delete_file", {"path": path}),
        ("move_file", {"source": path, "destination": "Stolen.md"}),
        ("move_file", {"source": "Home.md", "destination": path}),
        ("get_file_info", {"path": path}),
        ("list_files", {"path": path}),
        ("create_folder", {"path": path}),
    ]


@pytest.mark.parametrize("path", ESCAPES)
async def test_paths_that_climb_out_are_refused_by_every_tool(h: VaultHarness, path: str) -> None:
    before = snapshot(h.base)
    for name, args in calls(path):
        out = await h.err(name, **args)
        assert "TOP SECRET" not in out and "root:" not in out
    assert snapshot(h.base) == before
    assert h.text("Home.md") == "# Home\n"


@pytest.mark.parametrize("path", PROTECTED)
async def test_protected_folders_are_refused_in_any_spelling(h: VaultHarness, path: str) -> None:
    before = sorted(h.all_files())
    for name, args in calls(path):
        out = await h.err(name, **args)
        assert "[core]" not in out and '"x"' not in out
    assert sorted(h.all_files()) == before
    assert h.text(".obsidian/app.json") == '{"x": 1}'


async def test_each_refusal_says_why(h: VaultHarness) -> None:
    assert "climbs out of the vault" in await h.err("read_file", path="../../etc/passwd")
    assert "absolute path" in await h.err("read_file", path="/etc/passwd")
    assert "home folder" in await h.err("read_file", path="~/.ssh/id_rsa")
    assert "protected folder" in await h.err("read_file", path=".GIT/config")
    assert "NUL byte" in await h.err("write_file", path="a\x00.md", content="x")
    assert "too long" in await h.err("write_file", path="n" * 300, content="x")
    assert "climbs out" in await h.err("read_file", path="../notes_evil/secret.md")
    os.symlink(h.base / "outside", h.root / "Linked")
    assert "symbolic link to a location outside the vault" in await h.err(
        "read_file", path="Linked/secret.md"
    )


async def test_a_leading_slash_is_accepted_for_a_path_that_is_in_the_vault(
    h: VaultHarness,
) -> None:
    h.put("Projects/Plan.md", "plan\n")
    assert "1: plan" in await h.ok("read_file", path="/Projects/Plan.md")
    assert "1: plan" in await h.ok("read_file", path=str(h.root / "Projects/Plan.md"))


async def test_nul_bytes_and_over_long_names_are_refused_everywhere(h: VaultHarness) -> None:
    for path in ("a\x00.md", "x" * 300 + ".md", "Folder/" + "é" * 200 + ".md"):
        for name, args in calls(path):
            await h.err(name, **args)
    assert sorted(os.listdir(h.root)) == [".git", ".obsidian", ".smarthole", "Home.md"]


@pytest.mark.parametrize("root", ["", ".", "/", "./", "//", " / "])
async def test_the_vault_root_cannot_be_deleted_or_moved(h: VaultHarness, root: str) -> None:
    assert "vault root" in await h.err("delete_file", path=root)
    await h.err("move_file", source=root, destination="Elsewhere")
    assert h.text("Home.md") == "# Home\n"
    assert not h.exists(".trash")


async def test_moving_into_protected_folders_or_the_trash_is_refused(h: VaultHarness) -> None:
    for destination in (".smarthole/Home.md", ".SMARTHOLE/x.md", ".obsidian/", ".git/hooks/x"):
        assert "protected" in await h.err("move_file", source="Home.md", destination=destination)
    assert "trash" in await h.err("move_file", source="Home.md", destination=".trash/Home.md")
    assert "trash" in await h.err("write_file", path=".trash/x.md", content="x")
    assert "protected" in await h.err("move_file", source=".obsidian", destination="Obs")
    assert h.text("Home.md") == "# Home\n"


async def test_moving_onto_an_existing_note_is_refused(h: VaultHarness) -> None:
    h.put("Other.md", "other\n")
    assert "already exists" in await h.err("move_file", source="Home.md", destination="other.md")
    assert h.text("Home.md") == "# Home\n" and h.text("Other.md") == "other\n"


# -- symbolic links -------------------------------------------------------------------------


async def test_reading_and_writing_through_a_link_to_an_outside_folder_is_refused(
    h: VaultHarness,
) -> None:
    os.symlink(h.base / "outside", h.root / "Linked")
    before = snapshot(h.base)
    for name, args in calls("Linked/secret.md"):
        out = await h.err(name, **args)
        assert "symbolic link" in out and "TOP SECRET" not in out
    await h.err("write_file", path="Linked/new.md", content="pwned")
    await h.err("create_folder", path="Linked/sub")
    await h.err("list_files", path="Linked")
    assert snapshot(h.base) == before
    listing = await h.ok("list_files", pattern="**/*")
    assert "secret" not in listing
    assert "No matches" in await h.ok("search_files", pattern="TOP SECRET")


async def test_overwriting_a_note_that_links_to_an_outside_file_is_refused(
    h: VaultHarness,
) -> None:
    os.symlink(h.base / "outside" / "secret.md", h.root / "Innocent.md")
    before = snapshot(h.base)
    for name, args in calls("Innocent.md"):
        assert "symbolic link" in await h.err(name, **args)
    assert snapshot(h.base) == before
    assert (h.base / "outside" / "secret.md").read_text() == SECRET
    assert os.path.islink(h.root / "Innocent.md")


async def test_a_link_to_the_sibling_prefix_folder_is_outside(h: VaultHarness) -> None:
    # `<tmp>/notes_evil` starts with the string `<tmp>/notes`: a prefix test would let it in.
    os.symlink(h.base / "notes_evil", h.root / "Evil")
    os.symlink(h.base / "notes_evil" / "secret.md", h.root / "evil.md")
    before = snapshot(h.base)
    for path in ("Evil/secret.md", "evil.md"):
        for name, args in calls(path):
            assert "TOP SECRET" not in await h.err(name, **args)
    assert snapshot(h.base) == before
    assert "evil" not in (await h.ok("list_files", pattern="**/*")).lower()


async def test_a_link_inside_the_vault_into_a_protected_folder_is_refused(
    h: VaultHarness,
) -> None:
    os.symlink(h.root / ".git", h.root / "gitlink")
    os.symlink(h.root / ".obsidian" / "app.json", h.root / "settings.md")
    for name, args in calls("gitlink/config") + calls("settings.md"):
        await h.err(name, **args)
    assert h.text(".git/config") == "[core]\n"


async def test_links_inside_the_vault_work_and_writes_go_to_the_target(h: VaultHarness) -> None:
    h.put("Real/target.md", "real\n")
    os.symlink(h.root / "Real", h.root / "Alias")
    os.symlink(h.root / "Real" / "target.md", h.root / "shortcut.md")
    assert "1: real" in await h.ok("read_file", path="Alias/target.md")
    await h.ok("edit_file", path="shortcut.md", old_text="real", new_text="edited")
    assert h.text("Real/target.md") == "edited\n"
    assert os.path.islink(h.root / "shortcut.md")


async def test_a_dangling_link_pointing_outside_is_refused_for_writes(h: VaultHarness) -> None:
    os.symlink(h.base / "outside" / "not-yet.md", h.root / "dangling.md")
    await h.err("write_file", path="dangling.md", content="pwned")
    assert not (h.base / "outside" / "not-yet.md").exists()


# -- globs cannot escape --------------------------------------------------------------------


async def test_globs_cannot_reach_outside_or_protected_files(h: VaultHarness) -> None:
    assert "'..'" in await h.err("list_files", pattern="../*")
    assert "'..'" in await h.err("search_files", pattern="SECRET", file_pattern="../**/*.md")
    out = await h.ok("search_files", pattern="core|x", file_pattern="**/*")
    assert ".git" not in out and ".obsidian" not in out
    out = await h.ok("list_files", pattern="**/*")
    assert ".git" not in out and ".obsidian" not in out and ".smarthole" not in out


# -- Unicode forms --------------------------------------------------------------------------


async def test_nfc_and_nfd_forms_of_one_name_are_the_same_note(h: VaultHarness) -> None:
    nfc = unicodedata.normalize("NFC", "Café Crème.md")
    nfd = unicodedata.normalize("NFD", nfc)
    assert nfc != nfd
    await h.ok("write_file", path=nfc, content="v1\n")
    assert "1: v1" in await h.ok("read_file", path=nfd)
    await h.ok("write_file", path=nfd, content="v2\n")
    assert os.listdir(h.root).count(nfc) == 1 and nfd not in os.listdir(h.root)
    assert h.text(nfc) == "v2\n"


async def test_a_note_stored_in_nfd_on_disk_is_found_from_nfc_input(h: VaultHarness) -> None:
    nfd = unicodedata.normalize("NFD", "Résumé.md")
    (h.root / nfd).write_text("from a Mac\n")
    nfc = unicodedata.normalize("NFC", nfd)
    assert "1: from a Mac" in await h.ok("read_file", path=nfc)
    await h.ok("edit_file", path=nfc, old_text="Mac", new_text="Mac, edited")
    assert os.listdir(h.root).count(nfd) == 1 and nfc not in os.listdir(h.root)


async def test_a_fifo_in_place_of_a_note_is_refused_not_waited_on(h: VaultHarness) -> None:
    import asyncio

    os.mkfifo(h.root / "pipe.md")
    message = await asyncio.wait_for(h.err("read_file", path="pipe.md"), timeout=5)
    assert "not a regular file" in message or "Error" in message
