"""set_properties: comments, order and the body kept; Obsidian's types; concurrent edits."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from smarthole_notes.tools.base import ToolRegistry
from smarthole_notes.tools.vault import vault_tools
from smarthole_notes.vault import Vault, VaultError
from smarthole_notes.vault import frontmatter as fm

NOTE = """\
---
# Written by hand: keep this comment
title: "Kitchen renovation"   # quoted on purpose
status: draft
tags:
- home
- reno
budget: 12000
done: false
---
# Kitchen

Body text with #idea and [[Links]].
"""


@pytest.fixture
def vault(tmp_path: Path) -> Vault:
    root = tmp_path / "vault"
    root.mkdir()
    (root / "Kitchen.md").write_text(NOTE, encoding="utf-8")
    return Vault(root)


def test_untouched_keys_comments_order_and_body_stay_byte_for_byte(vault: Vault) -> None:
    out = vault.set_properties("kitchen", {"status": "done"})
    assert out.changes == ["set status"]
    text = (vault.root / "Kitchen.md").read_text(encoding="utf-8")
    assert text == NOTE.replace("status: draft", "status: done")


def test_add_remove_and_types(vault: Vault) -> None:
    vault.set_properties(
        "Kitchen.md",
        {
            "budget": "15000",  # the current value is a number: stays a number
            "done": "true",  # a checkbox
            "due": "2026-12-01",  # a date, unquoted as Obsidian writes it
            "visit": "2026-12-01 09:30",  # a date and time
            "tags": ["home", "#kitchen"],
            "title": None,  # removed
            "note": "a: colon",  # text that needs quotes
        },
    )
    text = (vault.root / "Kitchen.md").read_text(encoding="utf-8")
    assert "# Written by hand: keep this comment\n" in text
    assert "title:" not in text
    assert "budget: 15000\n" in text and "done: true\n" in text
    assert "due: 2026-12-01\n" in text and "visit: 2026-12-01T09:30\n" in text
    assert "tags:\n  - home\n  - kitchen\n" in text
    props = fm.load(text)
    assert props["budget"] == 15000 and props["done"] is True
    assert props["note"] == "a: colon"
    assert text.endswith("# Kitchen\n\nBody text with #idea and [[Links]].\n")
    assert list(props) == ["status", "tags", "budget", "done", "due", "visit", "note"]


def test_obsidians_declared_types_win(vault: Vault) -> None:
    (vault.root / ".obsidian").mkdir()
    (vault.root / ".obsidian" / "types.json").write_text(
        json.dumps({"types": {"rating": "number", "people": "multitext", "code": "text"}})
    )
    vault.set_properties("Kitchen.md", {"rating": "4.5", "people": "Ana", "code": "2026-01-01"})
    props = fm.load((vault.root / "Kitchen.md").read_text(encoding="utf-8"))
    assert props["rating"] == 4.5 and props["people"] == ["Ana"] and props["code"] == "2026-01-01"


def test_a_note_without_front_matter_gets_one(vault: Vault) -> None:
    (vault.root / "Plain.md").write_text("Just text\n", encoding="utf-8")
    vault.set_properties("Plain.md", {"status": "new"})
    assert (vault.root / "Plain.md").read_text() == "---\nstatus: new\n---\nJust text\n"


def test_broken_yaml_is_refused_not_rewritten(vault: Vault) -> None:
    broken = "---\nkey: [unclosed\n---\nbody\n"
    (vault.root / "Broken.md").write_text(broken, encoding="utf-8")
    with pytest.raises(VaultError, match="not valid YAML"):
        vault.set_properties("Broken.md", {"status": "x"})
    assert (vault.root / "Broken.md").read_text() == broken


def test_an_edit_made_meanwhile_in_obsidian_is_kept(vault: Vault) -> None:
    calls: list[Path] = []

    def user_types(path: Path) -> None:
        calls.append(path)
        if len(calls) == 1:
            path.write_text(path.read_text().replace("Body text", "Body text typed by the user"))

    vault.between_read_and_write = user_types
    out = vault.set_properties("Kitchen.md", {"status": "done"})
    assert out.attempts == 2
    text = (vault.root / "Kitchen.md").read_text()
    assert "status: done" in text and "typed by the user" in text


async def test_the_tool(vault: Vault) -> None:
    registry = ToolRegistry(vault_tools(vault))
    out = await registry.run("set_properties", {"path": "Kitchen", "properties": {"x": 1}})
    assert out.content == "Properties of Kitchen.md: added x."
    refused = await registry.run("set_properties", {"path": ".obsidian/a.md", "properties": {}})
    assert refused.is_error


def test_tags_from_body_and_front_matter() -> None:
    found = fm.analyse(
        "---\ntags: [Alpha, 'beta/gamma']\ntag: delta, epsilon\n---\n"
        "#one #two/three #2026 a#not http://x/#anchor `#code` #four.\n```\n#fenced\n```\n"
    )
    assert found.tags == [
        "alpha", "beta/gamma", "delta", "epsilon", "one", "two/three", "four",
    ]  # fmt: skip
