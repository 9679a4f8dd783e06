"""Links resolve as Obsidian resolves them, and no move re-points or breaks one (issue 14)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from smarthole_notes.vault import files as vault_files
from smarthole_notes.vault import linkgraph
from smarthole_notes.vault.links import find_links
from smarthole_notes.vault.resolver import LinkResolver, link_text
from tests.obsidian_model import model_resolve
from tests.vault_fixtures import VaultHarness


@pytest.fixture
def h(tmp_path: Path) -> VaultHarness:
    return VaultHarness(tmp_path)


def _set_format(h: VaultHarness, style: str) -> None:
    h.put(".obsidian/app.json", json.dumps({"newLinkFormat": style}))


# -- the resolver itself ---------------------------------------------------------------------

VAULT = [
    "Home.md",
    "a/b/Topic.md",
    "Archive-2023/Topic.md",
    "a/Note.md",
    "ab/x/Note.md",
    "zz/Note.md",
    "Node.js.md",
    "X.final.md",
    "img/pic.png",
    "deep/er/pic.png",
    "Projects/Plan.md",
    "Projects/Sub/Plan.md",
    "Case/MiXed.md",
]


@pytest.mark.parametrize(
    ("link", "source", "expected"),
    [
        ("Topic", "Home.md", "a/b/Topic.md"),  # shortest in characters, not fewest folders
        ("topic", "Home.md", "a/b/Topic.md"),  # case-insensitive
        ("Topic", "Archive-2023/Other.md", "Archive-2023/Topic.md"),  # own folder first
        ("Topic", "a/Other.md", "a/b/Topic.md"),  # under the own folder counts too
        ("b/Topic", "Home.md", "a/b/Topic.md"),  # path ending
        ("Archive-2023/Topic.md", "Home.md", "Archive-2023/Topic.md"),
        ("Note", "a/Other.md", "a/Note.md"),
        ("Note", "ab/Other.md", "ab/x/Note.md"),
        ("Note", "Home.md", "a/Note.md"),
        ("x/Note", "Home.md", "ab/x/Note.md"),
        ("/zz/Note", "a/Other.md", "zz/Note.md"),
        ("/Note", "a/Other.md", None),  # a leading `/` only matches from the root
        ("./Note", "a/Other.md", "a/Note.md"),
        ("../Note", "a/b/Other.md", "a/Note.md"),
        ("../../../zz/Note", "a/b/Other.md", "zz/Note.md"),  # `..` stops at the root
        ("Node.js", "Home.md", "Node.js.md"),  # `Node.js` first, then `Node.js.md`
        ("Node.js.md", "Home.md", "Node.js.md"),
        ("X.final", "Home.md", "X.final.md"),
        ("pic.png", "Home.md", "img/pic.png"),
        ("pic.png", "deep/Other.md", "deep/er/pic.png"),
        ("pic", "Home.md", None),  # only notes can drop their extension
        ("Plan", "Home.md", "Projects/Plan.md"),
        ("Sub/Plan", "Home.md", "Projects/Sub/Plan.md"),
        ("case/mixed", "Home.md", "Case/MiXed.md"),
        ("Missing", "Home.md", None),
    ],
)
def test_resolution_matches_obsidian(link: str, source: str, expected: str | None) -> None:
    assert LinkResolver(VAULT).resolve(link, source) == expected
    assert model_resolve(VAULT, link, source) == expected


def test_a_dotted_name_that_exists_hides_the_note() -> None:
    # Obsidian looks `Node.js` up as a file name first; a file of that name wins.
    files = ["Node.js.md", "code/Node.js"]
    assert LinkResolver(files).resolve("Node.js", "Home.md") == "code/Node.js"
    assert link_text(
        "Node.js.md", "Home.md", LinkResolver(files), "shortest", keep_extension=False
    ) == ("Node.js.md")


def test_headings_blocks_and_aliases_do_not_change_the_target() -> None:
    links = find_links("[[Topic#Part one|the topic]] ![[Topic#^abc]] [t](Topic.md#part)\n")
    resolver = LinkResolver(VAULT)
    assert {resolver.resolve(link.target, "Home.md") for link in links} == {"a/b/Topic.md"}
    assert [link.subpath for link in links] == ["#Part one", "#^abc", "#part"]


def test_markdown_links_in_encoded_and_angle_forms() -> None:
    links = find_links("[a](My%20Plan.md) [b](<My Plan.md>) [c](<Sub/My Plan>) [d](x.md 'title')")
    assert [link.target for link in links] == ["My Plan.md", "My Plan.md", "Sub/My Plan", "x.md"]
    assert [link.angle for link in links] == [False, True, True, False]


def test_link_text_follows_obsidian_formats() -> None:
    resolver = LinkResolver(["Docs/Layouts/Map view.md", "Docs/Guide.md", "Other/Map view.md"])
    target = "Docs/Layouts/Map view.md"
    assert link_text(target, "Docs/Guide.md", resolver, "relative", keep_extension=False) == (
        "Layouts/Map view"
    )
    assert link_text(target, "Other/x.md", resolver, "relative", keep_extension=False) == (
        "../Docs/Layouts/Map view"
    )
    assert link_text(target, "Home.md", resolver, "shortest", keep_extension=False) == (
        "Docs/Layouts/Map view"
    )
    assert link_text(target, "Home.md", resolver, "absolute", keep_extension=True) == target
    single = LinkResolver(["deep/X.final.md"])
    assert link_text("deep/X.final.md", "Home.md", single, "shortest", keep_extension=False) == (
        "X.final"
    )


# -- case 1: choosing between notes that share a name ----------------------------------------


async def test_renaming_the_note_a_link_means_rewrites_it(h: VaultHarness) -> None:
    h.put("a/b/Topic.md", "near\n")
    h.put("Archive-2023/Topic.md", "old\n")
    h.put("Home.md", "[[Topic]]\n")
    out = await h.ok("move_file", source="a/b/Topic.md", destination="a/b/Subject.md")
    assert "Updated 1 link in 1 note." in out
    assert h.text("Home.md") == "[[Subject]]\n"


async def test_renaming_the_other_same_named_note_leaves_the_link(h: VaultHarness) -> None:
    h.put("a/b/Topic.md", "near\n")
    h.put("Archive-2023/Topic.md", "old\n")
    h.put("Home.md", "[[Topic]]\n")
    out = await h.ok("move_file", source="Archive-2023/Topic.md", destination="Archive-2023/T.md")
    assert "No links needed updating" in out
    assert h.text("Home.md") == "[[Topic]]\n"


async def test_a_moved_note_does_not_capture_links_to_another(h: VaultHarness) -> None:
    h.put("fi/Files/Budget.md", "the budget\n")
    h.put("x/Other.md", "other\n")
    h.put("Home.md", "[[Budget]] and [b](Budget.md)\n")
    h.put("pt/Notes.md", "[[Budget]]\n")
    await h.ok("move_file", source="x/Other.md", destination="pt/I/Budget.md")
    home = h.text("Home.md")
    assert home == "[[fi/Files/Budget]] and [b](fi/Files/Budget.md)\n"
    assert h.text("pt/Notes.md") == "[[fi/Files/Budget]]\n"
    after = ["fi/Files/Budget.md", "pt/I/Budget.md", "Home.md", "pt/Notes.md"]
    for link in find_links(home):
        assert model_resolve(after, link.target, "Home.md") == "fi/Files/Budget.md"


async def test_links_of_the_moved_note_keep_their_targets(h: VaultHarness) -> None:
    h.put("a/Topic.md", "a's topic\n")
    h.put("b/Topic.md", "b's topic\n")
    h.put("a/Guide.md", "[[Topic]] [[./Topic]] [t](Topic.md)\n")
    await h.ok("move_file", source="a/Guide.md", destination="b/Guide.md")
    text = h.text("b/Guide.md")
    files = ["a/Topic.md", "b/Topic.md", "b/Guide.md"]
    assert [model_resolve(files, link.target, "b/Guide.md") for link in find_links(text)] == [
        "a/Topic.md"
    ] * 3
    assert text == "[[a/Topic]] [[../a/Topic]] [t](a/Topic.md)\n"


# -- case 2: wiki links holding a code span --------------------------------------------------


async def test_a_wiki_link_with_a_code_span_is_a_link(h: VaultHarness) -> None:
    h.put("Functions.md", "f\n")
    h.put("Doc.md", "See [[Functions#hasTag|`hasTag`]] but not `[[Functions]]`.\n")
    out = await h.ok("move_file", source="Functions.md", destination="API.md")
    assert "Updated 1 link in 1 note." in out
    assert h.text("Doc.md") == "See [[API#hasTag|`hasTag`]] but not `[[Functions]]`.\n"


def test_the_construct_that_starts_first_wins() -> None:
    assert [link.target for link in find_links("`a [[B]]` [[C|`d`]] [[E]]`x`")] == ["C", "E"]
    assert [link.target for link in find_links("[`x`](Y.md) `[z](W.md)`")] == ["Y.md"]


# -- case 3: a fence line inside an HTML block ------------------------------------------------


async def test_a_fence_inside_an_html_block_opens_nothing(h: VaultHarness) -> None:
    h.put("Target.md", "t\n")
    body = "<pre><code>```mermaid\ngraph TD\n```</code></pre>\n\nAfter: [[Target]]\n"
    h.put("Doc.md", body)
    out = await h.ok("move_file", source="Target.md", destination="Renamed.md")
    assert "Updated 1 link in 1 note." in out
    assert h.text("Doc.md") == body.replace("[[Target]]", "[[Renamed]]")


def test_block_structure_follows_commonmark() -> None:
    text = (
        "<pre><code>```\n</code></pre>\n\n[[A]]\n\n"
        "    [[indented code]]\n\n"
        "- item\n\n  ```\n  [[in a list fence]]\n  ```\n\n"
        "> quote [[B]]\n"
        "```\nunclosed [[C]]\n"
    )
    assert [link.target for link in find_links(text)] == ["A", "B"]


def test_front_matter_links_are_found() -> None:
    text = '---\nrelated: "[[A]]"\nurl: "[x](B.md)"\n---\n# Title\n[[C]]\n'
    assert [link.target for link in find_links(text)] == ["A", "C"]


# -- case 4: names that end in something extension-like --------------------------------------


async def test_dotted_names_resolve_and_are_written_without_md(h: VaultHarness) -> None:
    h.put("Node.js.md", "n\n")
    h.put("drafts/X.final.md", "x\n")
    h.put("Home.md", "[[Node.js]] [[Old]]\n")
    h.put("Old.md", "o\n")
    out = await h.ok("move_file", source="Node.js.md", destination="tech/Node.js.md")
    assert "No links needed updating" in out  # [[Node.js]] still opens it
    await h.ok("move_file", source="tech/Node.js.md", destination="tech/Deno.js.md")
    await h.ok("move_file", source="Old.md", destination="archive/Old.final.md")
    assert h.text("Home.md") == "[[Deno.js]] [[Old.final]]\n"


# -- case 5: link formats ---------------------------------------------------------------------


async def test_relative_format_writes_no_dot_slash(h: VaultHarness) -> None:
    _set_format(h, "relative")
    h.put("Old view.md", "v\n")
    h.put("Docs/Guide.md", "[[Old view]]\n")
    await h.ok("move_file", source="Old view.md", destination="Docs/Layouts/Map view.md")
    assert h.text("Docs/Guide.md") == "[[Layouts/Map view]]\n"


async def test_angle_links_keep_their_form_and_gain_no_extension(h: VaultHarness) -> None:
    h.put("Old format.md", "f\n")
    h.put("Doc.md", "[how](<Old format>) and [how](Old%20format.md)\n")
    await h.ok("move_file", source="Old format.md", destination="Format your notes.md")
    assert h.text("Doc.md") == ("[how](<Format your notes>) and [how](Format%20your%20notes.md)\n")


# -- cost: a move reads only the notes that can be affected ----------------------------------


async def test_a_move_reads_only_notes_that_link_to_what_moved(
    h: VaultHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    for number in range(40):
        h.put(f"f{number % 4}/Unrelated {number}.md", "[[Elsewhere]] and words\n")
    h.put("A.md", "a\n")
    h.put("B.md", "b\n")
    h.put("Links A.md", "[[A]]\n")
    h.put("Links B.md", "[[B]]\n")
    await h.ok("move_file", source="A.md", destination="A2.md")  # builds the index
    read: list[str] = []
    original = vault_files.read_bytes

    def counting(path: Path, *args: int) -> bytes:
        read.append(Path(path).name)
        return original(path, *args)

    monkeypatch.setattr(vault_files, "read_bytes", counting)
    monkeypatch.setattr(linkgraph, "read_bytes", counting)
    out = await h.ok("move_file", source="B.md", destination="B2.md")
    assert "Updated 1 link in 1 note." in out
    assert not any(name.startswith("Unrelated") for name in read), read
