"""Arabic, Chinese and accented names work in every tool."""

from __future__ import annotations

import json
import unicodedata
from pathlib import Path

import pytest

from tests.vault_fixtures import VaultHarness

NAMES = [
    ("ملاحظات/اجتماع الفريق", "محضر الاجتماع"),
    ("笔记/项目会议", "会议记录"),
    ("Réunions/Café crème à Zürich", "Procès-verbal déjà prêt"),
]


@pytest.fixture
def h(tmp_path: Path) -> VaultHarness:
    return VaultHarness(tmp_path)


@pytest.mark.parametrize(("name", "words"), NAMES)
async def test_unicode_names_work_in_every_tool(h: VaultHarness, name: str, words: str) -> None:
    folder, _, stem = name.partition("/")
    assert f"Created file {name}.md" in await h.ok(
        "write_file", path=name, content=f"# {stem}\n{words}\n"
    )
    assert f"2: {words}" in await h.ok("read_file", path=name)
    assert "Replaced 1 occurrence" in await h.ok(
        "edit_file", path=f"{name}.md", old_text=words, new_text=words + " ✓"
    )
    await h.ok("read_file", path=name)
    assert "Inserted 1 line after line 2" in await h.ok(
        "edit_file", path=name, insert_after_line=2, content="٣ 三 trois"
    )
    found = await h.ok("search_files", pattern=words.split()[0])
    assert f"{name}.md (1 match)" in found and f"> 2: {words} ✓" in found
    listed = await h.ok("list_files", pattern="**/*")
    assert f"[file] {name}.md" in listed and f"[folder] {folder}/" in listed
    info = await h.ok("get_file_info", path=name + ".md")
    assert f"Path: {name}.md" in info and "Lines: 3" in info
    assert "already exists" in await h.ok("create_folder", path=folder)
    assert f"Created folder {folder}/子" in await h.ok("create_folder", path=f"{folder}/子")
    moved = f"{folder}/子/{stem} (2)"
    assert f"to {moved}.md" in await h.ok("move_file", source=name, destination=moved)
    h.put(".obsidian/workspace.json", json.dumps({"lastOpenFiles": [f"{moved}.md"]}))
    assert f"Name: {stem} (2)" in await h.ok("get_active_note")
    assert f".trash/{moved}.md" in await h.ok("delete_file", path=moved)
    assert h.text(f".trash/{moved}.md") == f"# {stem}\n{words} ✓\n٣ 三 trois\n"


async def test_case_insensitive_lookup_works_for_accented_capitals(h: VaultHarness) -> None:
    h.put("Été/Écoles.md", "x\n")
    assert "1: x" in await h.ok("read_file", path="été/écoles")
    decomposed = unicodedata.normalize("NFD", "ÉTÉ/ÉCOLES.md")
    assert "1: x" in await h.ok("read_file", path=decomposed)


async def test_search_matches_accented_text_case_insensitively(h: VaultHarness) -> None:
    h.put("a.md", "Déjà Vu à l'École\n")
    out = await h.ok("search_files", pattern="déjà vu à l'école")
    assert "a.md (1 match)" in out
