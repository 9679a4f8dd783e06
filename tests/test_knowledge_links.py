"""get_links: every link form, unresolved links, code; move/delete say who links to them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from smarthole_notes.tools.base import ToolRegistry
from smarthole_notes.tools.vault import vault_tools
from smarthole_notes.vault import Vault


def write(root: Path, rel: str, text: str) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


HUB = """\
---
related: "[[Target]]"
---
1 [[Target]] plain
2 [[Target|shown text]] with alias
3 [[Target#Heading]] and [[Target#^block1]]
4 ![[Target]] embedded, ![[pic.png]] image
5 [md link](Projects/Target.md) and [angle](<Projects/Target.md>)
6 [[Projects/Target]] by path, [[./Projects/Target]] explicitly relative
7 `[[Target]]` in code does not count
8 [[Missing note]] goes nowhere

```
[[Target]] fenced code does not count
```

    [[Target]] indented code does not count
"""


@pytest.fixture
def vault(tmp_path: Path) -> Iterator[Vault]:
    root = tmp_path / "vault"
    write(root, "Projects/Target.md", "# Heading\n\ntext ^block1\n[[Hub]] back\n")
    write(root, "Hub.md", HUB)
    write(root, "pic.png", "not really a picture")
    write(root, "Other/Target.md", "another note with the same name, further away\n")
    v = Vault(root)
    v.start_index()
    assert v.index.wait_ready(30)
    yield v
    v.index.close()


def test_outgoing_links_resolve_as_obsidian_resolves_them(vault: Vault) -> None:
    out = vault.get_links("Hub.md")
    rows = [(r.line, r.target + r.subpath, r.embed, r.resolved) for r in out.outgoing]
    target = "Other/Target.md"  # two notes are named Target: the shorter path wins at the root
    assert (2, "Target", False, target) in rows  # the front matter's property link
    assert (4, "Target", False, target) in rows
    assert (5, "Target", False, target) in rows  # with alias
    assert (6, "Target#Heading", False, target) in rows
    assert (6, "Target#^block1", False, target) in rows
    assert (7, "Target", True, target) in rows
    assert (7, "pic.png", True, "pic.png") in rows
    assert (8, "Projects/Target.md", False, "Projects/Target.md") in rows
    assert [r for r in rows if r[0] == 8 and r[1] == "Projects/Target.md"].__len__() == 2
    assert (9, "Projects/Target", False, "Projects/Target.md") in rows
    assert (9, "./Projects/Target", False, "Projects/Target.md") in rows
    assert (11, "Missing note", False, None) in rows
    assert not [r for r in rows if r[0] in (10, 14, 17)]  # code: inline, fenced, indented


def test_backlinks_come_with_their_line(vault: Vault) -> None:
    out = vault.get_links("Projects/Target.md")
    assert {r.source for r in out.backlinks} == {"Hub.md"}
    lines = sorted({r.line for r in out.backlinks})
    assert lines == [8, 9]
    assert any(r.text.startswith("5 [md link](Projects/Target.md)") for r in out.backlinks)
    assert [r.resolved for r in out.outgoing] == ["Hub.md"]
    other = vault.get_links("Other/Target.md")
    assert sorted({r.line for r in other.backlinks}) == [2, 4, 5, 6, 7]


async def test_the_tool_lists_unresolved_links_and_backlinks(vault: Vault) -> None:
    registry = ToolRegistry(vault_tools(vault))
    out = await registry.run("get_links", {"path": "hub"})  # lookup: case and extension
    assert not out.is_error, out.content
    assert "line 11: link Missing note -> unresolved (no such file)" in out.content
    assert "line 7: embed pic.png -> pic.png" in out.content
    assert "Backlinks to Hub.md (1 in 1 note):" in out.content
    assert "Projects/Target.md:4: [[Hub]] back" in out.content


async def test_move_and_delete_say_how_many_notes_link_to_what_they_touched(
    vault: Vault,
) -> None:
    registry = ToolRegistry(vault_tools(vault))
    moved = await registry.run(
        "move_file", {"source": "Projects/Target.md", "destination": "Archive/Target.md"}
    )
    assert "1 other note links to what moved" in moved.content
    assert vault.get_links("Archive/Target.md").backlinks  # the rewritten links point here
    deleted = await registry.run("delete_file", {"path": "Hub.md"})
    assert "1 other note links to it" in deleted.content
    nothing = await registry.run("delete_file", {"path": "pic.png"})
    assert "link to it" not in nothing.content  # only Hub linked to it, and Hub is gone


def test_backlinks_follow_outside_edits(vault: Vault) -> None:
    write(vault.root, "New.md", "see [[Hub]]\n")
    vault.index.changed(["New.md"])  # what the watcher does within ~0.3 s
    assert {r.source for r in vault.get_links("Hub.md").backlinks} == {
        "New.md",
        "Projects/Target.md",
    }
