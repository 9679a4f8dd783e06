"""move_file rewrites links to the moved note the way Obsidian does."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from smarthole_notes.vault.links import find_links
from smarthole_notes.vault.resolver import LinkResolver
from tests.vault_fixtures import VaultHarness


@pytest.fixture
def h(tmp_path: Path) -> VaultHarness:
    return VaultHarness(tmp_path)


async def test_every_wiki_link_form_follows_a_rename(h: VaultHarness) -> None:
    h.put("Old Name.md", "# Old\n")
    h.put(
        "Links.md",
        "[[Old Name]]\n"
        "[[Old Name|shown text]]\n"
        "[[Old Name#Some Heading]]\n"
        "[[Old Name#^block-id]]\n"
        "![[Old Name]]\n"
        "[[old name]]\n"
        "[[Old Name.md]]\n"
        "| table | [[Old Name\\|alias]] |\n",
    )
    out = await h.ok("move_file", source="Old Name.md", destination="New Name.md")
    assert "Updated 8 links in 1 note." in out
    assert h.text("Links.md") == (
        "[[New Name]]\n"
        "[[New Name|shown text]]\n"
        "[[New Name#Some Heading]]\n"
        "[[New Name#^block-id]]\n"
        "![[New Name]]\n"
        "[[New Name]]\n"
        "[[New Name.md]]\n"
        "| table | [[New Name\\|alias]] |\n"
    )


async def test_path_style_and_markdown_links_follow_a_move_to_another_folder(
    h: VaultHarness,
) -> None:
    h.put("Projects/My Plan.md", "# Plan\n")
    h.put(
        "Index.md",
        "[[Projects/My Plan]]\n"
        "[[Projects/My Plan|the plan]]\n"
        "[plan](Projects/My%20Plan.md)\n"
        "[plan](<Projects/My Plan.md>)\n"
        '[plan](Projects/My%20Plan.md#Goals "title")\n'
        "[site](https://example.com/Projects/My%20Plan.md)\n",
    )
    out = await h.ok(
        "move_file", source="Projects/My Plan.md", destination="Archive/2024/My Plan.md"
    )
    assert "Updated 5 links in 1 note." in out
    assert h.text("Index.md") == (
        "[[My Plan]]\n"
        "[[My Plan|the plan]]\n"
        "[plan](My%20Plan.md)\n"
        "[plan](<My Plan.md>)\n"
        '[plan](My%20Plan.md#Goals "title")\n'
        "[site](https://example.com/Projects/My%20Plan.md)\n"
    )


async def test_links_in_code_spans_and_fenced_blocks_stay_untouched(h: VaultHarness) -> None:
    h.put("Target.md", "t\n")
    body = (
        "Real: [[Target]]\n"
        "Inline: `[[Target]]` and ``code [[Target]] here``\n"
        "```markdown\n[[Target]]\n[x](Target.md)\n```\n"
        "~~~\n![[Target]]\n~~~\n"
        "- list item\n  ```\n  [[Target]]\n  ```\n"
        "After: [x](Target.md)\n"
    )
    h.put("Doc.md", body)
    out = await h.ok("move_file", source="Target.md", destination="Renamed.md")
    assert "Updated 2 links in 1 note." in out
    assert h.text("Doc.md") == body.replace("Real: [[Target]]", "Real: [[Renamed]]").replace(
        "After: [x](Target.md)", "After: [x](Renamed.md)"
    )


async def test_result_counts_links_and_notes_across_the_vault(h: VaultHarness) -> None:
    h.put("Topic.md", "t\n")
    h.put("A.md", "[[Topic]] and [[Topic|again]]\n")
    h.put("Sub/B.md", "![[Topic]]\n")
    h.put("Sub/C.md", "no links here, just the word Topic\n")
    out = await h.ok("move_file", source="Topic.md", destination="Subject.md")
    assert "Updated 3 links in 2 notes." in out
    assert h.text("Sub/C.md") == "no links here, just the word Topic\n"


async def test_a_new_name_shared_by_another_note_gets_the_path_form(h: VaultHarness) -> None:
    h.put("Work/Ideas.md", "work ideas\n")
    h.put("Drafts/Brainstorm.md", "draft\n")
    h.put("Home.md", "[[Brainstorm]] and [[Ideas]]\n")
    await h.ok("move_file", source="Drafts/Brainstorm.md", destination="Personal/Ideas.md")
    # The moved note's name is no longer unique, so it gets its path; `[[Ideas]]` still opens
    # Work/Ideas.md (Obsidian prefers the shorter path), so it is left as it is.
    text = h.text("Home.md")
    assert text == "[[Personal/Ideas]] and [[Ideas]]\n"
    index = LinkResolver(["Work/Ideas.md", "Personal/Ideas.md", "Home.md"])
    targets = [index.resolve(link.target, "Home.md") for link in find_links(text)]
    assert targets == ["Personal/Ideas.md", "Work/Ideas.md"]


async def test_moving_a_folder_updates_path_links_and_leaves_unique_names(h: VaultHarness) -> None:
    h.put("Projects/Alpha.md", "a\n")
    h.put("Projects/Deep/Beta.md", "b\n")
    h.put(
        "Home.md",
        "[[Alpha]] [[Projects/Alpha]] [[Projects/Deep/Beta|b]] [x](Projects/Deep/Beta.md)\n",
    )
    out = await h.ok("move_file", source="Projects", destination="Archive/Projects 2023")
    assert "Updated 3 links in 1 note." in out
    assert h.text("Home.md") == "[[Alpha]] [[Alpha]] [[Beta|b]] [x](Beta.md)\n"
    assert h.text("Archive/Projects 2023/Deep/Beta.md") == "b\n"


async def test_relative_links_inside_the_moved_note_are_fixed(h: VaultHarness) -> None:
    h.put("Notes/Guide.md", "see [setup](../Setup.md) and [[Setup]]\n")
    h.put("Setup.md", "s\n")
    await h.ok("move_file", source="Notes/Guide.md", destination="Notes/Deeper/Guide.md")
    assert h.text("Notes/Deeper/Guide.md") == "see [setup](../../Setup.md) and [[Setup]]\n"


async def test_attachments_and_their_embeds_follow_a_move(h: VaultHarness) -> None:
    h.put("pic.png", b"\x89PNG\r\n")
    h.put("Note.md", "![[pic.png]]\n![alt](pic.png)\n![[pic.png|200]]\n")
    out = await h.ok("move_file", source="pic.png", destination="Attachments/photo.png")
    assert "Updated 3 links in 1 note." in out
    assert h.text("Note.md") == "![[photo.png]]\n![alt](photo.png)\n![[photo.png|200]]\n"


async def test_broken_and_unrelated_links_are_left_alone(h: VaultHarness) -> None:
    h.put("Keep.md", "k\n")
    h.put("Move.md", "m\n")
    body = "[[Missing]] [[Keep]] [[Keep#Move]] [Move](https://move.example) [[#Move]]\n"
    h.put("Doc.md", body)
    assert "No links needed updating" in await h.ok(
        "move_file", source="Move.md", destination="Moved.md"
    )
    assert h.text("Doc.md") == body


async def test_the_vault_link_format_setting_is_respected(h: VaultHarness) -> None:
    h.put(".obsidian/app.json", json.dumps({"newLinkFormat": "absolute"}))
    h.put("Inbox/Idea.md", "i\n")
    h.put("Home.md", "[[Idea]]\n")
    await h.ok("move_file", source="Inbox/Idea.md", destination="Projects/Big Idea.md")
    assert h.text("Home.md") == "[[Projects/Big Idea]]\n"


async def test_links_in_unicode_names_follow_a_rename(h: VaultHarness) -> None:
    h.put("ملاحظات.md", "ar\n")
    h.put("笔记/会议.md", "zh\n")
    h.put("Café.md", "fr\n")
    h.put("Index.md", "[[ملاحظات]] [[会议|meeting]] [c](Caf%C3%A9.md) [[café]]\n")
    await h.ok("move_file", source="ملاحظات.md", destination="أرشيف/ملاحظات قديمة.md")
    await h.ok("move_file", source="笔记/会议.md", destination="笔记/周会.md")
    await h.ok("move_file", source="Café.md", destination="Crème brûlée.md")
    assert h.text("Index.md") == (
        "[[ملاحظات قديمة]] [[周会|meeting]] [c](Crème%20brûlée.md) [[Crème brûlée]]\n"
    )


async def test_links_in_notes_edited_meanwhile_are_still_updated(h: VaultHarness) -> None:
    h.put("T.md", "t\n")
    h.put("Doc.md", "[[T]]\n")
    calls: list[Path] = []

    def typed_meanwhile(path: Path) -> None:
        if not calls:
            path.write_text("user typed this\n[[T]]\n")
        calls.append(path)

    h.vault.between_read_and_write = typed_meanwhile
    await h.ok("move_file", source="T.md", destination="U.md")
    assert h.text("Doc.md") == "user typed this\n[[U]]\n"


def test_code_spans_and_fences_hide_links() -> None:
    text = "a `[[B]]` c\n```\n[[D]]\n```\ne ``f`[[G]]`` [[H]]\n"
    assert [link.target for link in find_links(text)] == ["H"]


def test_an_unclosed_fence_protects_the_rest_of_the_note() -> None:
    assert find_links("[[A]]\n```\n[[B]]\n") == find_links("[[A]]\n")[:1]
    assert [link.target for link in find_links("[[A]]\n```\n[[B]]\n")] == ["A"]


def test_find_links_parses_each_part() -> None:
    (link,) = find_links("x ![[Folder/Name#Head|Alias]] y")
    assert (link.embed, link.target, link.subpath, link.alias) == (
        True,
        "Folder/Name",
        "#Head",
        "|Alias",
    )
    (md,) = find_links("[t](Some%20Dir/N%C3%A9.md#frag)")
    assert (md.wiki, md.target, md.subpath, md.alias) == (False, "Some Dir/Né.md", "#frag", "t")
