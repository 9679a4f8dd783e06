"""Each vault tool's outputs and the errors tools.md lists."""

from __future__ import annotations

import json
import os
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from tests.vault_fixtures import VaultHarness

TEN_TOOLS = {
    "read_file",
    "edit_file",
    "write_file",
    "create_folder",
    "delete_file",
    "move_file",
    "search_files",
    "list_files",
    "get_file_info",
    "get_active_note",
    "search_notes",
    "get_links",
    "set_properties",
}


@pytest.fixture
def h(tmp_path: Path) -> VaultHarness:
    return VaultHarness(tmp_path)


def numbered(count: int) -> str:
    return "".join(f"line {i}\n" for i in range(1, count + 1))


# -- the tool set ---------------------------------------------------------------------


def test_vault_tools_are_the_ten_of_the_contract_with_strict_schemas(h: VaultHarness) -> None:
    tools = {tool.name: tool for tool in h.registry}
    assert set(tools) == TEN_TOOLS
    for tool in tools.values():
        assert tool.input_schema["type"] == "object"
        assert tool.input_schema["additionalProperties"] is False
        assert tool.description
    assert tools["read_file"].input_schema["required"] == ["path"]
    assert tools["write_file"].input_schema["required"] == ["path", "content"]
    assert tools["move_file"].input_schema["required"] == ["source", "destination"]
    assert tools["search_files"].input_schema["required"] == ["pattern"]


async def test_unknown_fields_and_wrong_types_are_refused_before_running(h: VaultHarness) -> None:
    assert "invalid input" in await h.err("read_file", path="a.md", bogus=1)
    assert "invalid input" in await h.err("read_file", path="a.md", start_line=0)
    assert "invalid input" in await h.err("list_files", max_results=1001)
    assert "invalid input" in await h.err("write_file", path="a.md")


# -- read_file --------------------------------------------------------------------------


async def test_read_file_numbers_lines_and_ends_with_a_range_footer(h: VaultHarness) -> None:
    h.put("Plan.md", "# Plan\nfirst\nsecond\n")
    out = await h.ok("read_file", path="Plan.md")
    assert out == "1: # Plan\n2: first\n3: second\n[lines 1-3 of 3]"


async def test_read_file_reads_a_line_range_and_accepts_a_path_without_extension(
    h: VaultHarness,
) -> None:
    h.put("Plan.md", numbered(40))
    out = await h.ok("read_file", path="Plan", start_line=12, end_line=14)
    assert out == "12: line 12\n13: line 13\n14: line 14\n[lines 12-14 of 40]"


async def test_read_file_clamps_end_line_past_the_end(h: VaultHarness) -> None:
    h.put("Plan.md", numbered(5))
    out = await h.ok("read_file", path="Plan.md", start_line=4, end_line=99)
    assert out.endswith("[lines 4-5 of 5]")


async def test_read_file_start_line_beyond_the_end_says_how_long_the_file_is(
    h: VaultHarness,
) -> None:
    h.put("Plan.md", numbered(30))
    out = await h.err("read_file", path="Plan.md", start_line=50)
    assert "line 50 does not exist; the file has 30 lines" in out


async def test_read_file_truncates_past_2000_lines_and_says_how_to_go_on(h: VaultHarness) -> None:
    h.put("Long.md", numbered(5000))
    out = await h.ok("read_file", path="Long.md")
    assert out.splitlines()[-2] == "2000: line 2000"
    assert "[lines 1-2000 of 5000" in out and "start_line=2001" in out


async def test_read_file_truncates_past_about_100_kb(h: VaultHarness) -> None:
    h.put("Wide.md", "".join(f"{i} " + "x" * 1000 + "\n" for i in range(500)))
    out = await h.ok("read_file", path="Wide.md")
    assert len(out.encode()) < 110_000
    assert "of 500; output limited to about 100 KB; read further with start_line=" in out


async def test_read_file_reports_a_binary_file_instead_of_dumping_it(h: VaultHarness) -> None:
    h.put("pic.png", b"\x89PNG\r\n\x1a\n\x00\x00\x00" + bytes(range(256)) * 10)
    out = await h.ok("read_file", path="pic.png")
    assert "binary file" in out and "image/png" in out
    assert "\x00" not in out


async def test_read_file_of_an_empty_note_says_it_is_empty(h: VaultHarness) -> None:
    h.put("Empty.md", "")
    assert "is empty" in await h.ok("read_file", path="Empty.md")


async def test_read_file_of_a_missing_note_suggests_close_names(h: VaultHarness) -> None:
    h.put("Projects/Roadmap.md", "x")
    out = await h.err("read_file", path="Projects/Roadmapp.md")
    assert "not found" in out and "Projects/Roadmap.md" in out


async def test_read_file_of_a_folder_points_to_list_files(h: VaultHarness) -> None:
    (h.root / "Projects").mkdir()
    assert "list_files" in await h.err("read_file", path="Projects")


async def test_read_file_strips_carriage_returns_of_crlf_notes(h: VaultHarness) -> None:
    h.put("Win.md", "a\r\nb\r\n")
    assert await h.ok("read_file", path="Win.md") == "1: a\n2: b\n[lines 1-2 of 2]"


# -- case-insensitive lookup ----------------------------------------------------------------


async def test_lookup_ignores_letter_case_when_the_exact_path_does_not_exist(
    h: VaultHarness,
) -> None:
    h.put("Projects/Big Plan.md", "hello\n")
    assert "1: hello" in await h.ok("read_file", path="projects/big plan.md")
    assert "1: hello" in await h.ok("read_file", path="PROJECTS/BIG PLAN")


async def test_lookup_with_several_case_variants_is_an_ambiguity_error_listing_them(
    h: VaultHarness,
) -> None:
    h.put("Notes/plan.md", "a")
    h.put("Notes/PLAN.md", "b")
    out = await h.err("read_file", path="Notes/Plan.md")
    assert "Notes/PLAN.md" in out and "Notes/plan.md" in out and "differ only in case" in out


async def test_exact_match_wins_over_case_variants(h: VaultHarness) -> None:
    h.put("plan.md", "lower\n")
    h.put("PLAN.md", "upper\n")
    assert "1: upper" in await h.ok("read_file", path="PLAN.md")


async def test_write_file_reuses_the_existing_case_variant_instead_of_duplicating(
    h: VaultHarness,
) -> None:
    h.put("Inbox/Groceries.md", "old\n")
    assert "Overwrote file Inbox/Groceries.md" in await h.ok(
        "write_file", path="inbox/groceries", content="new\n"
    )
    assert sorted(h.all_files()) == ["Inbox/Groceries.md"]


# -- edit_file ------------------------------------------------------------------------------


async def test_edit_file_replaces_the_first_occurrence_by_default(h: VaultHarness) -> None:
    h.put("a.md", "x y x y x\n")
    out = await h.ok("edit_file", path="a.md", old_text="x", new_text="z")
    assert out.startswith("Replaced 1 occurrence") and "in a.md" in out
    assert "2 more left unchanged" in out
    assert h.text("a.md") == "z y x y x\n"


async def test_edit_file_replace_all_reports_the_count(h: VaultHarness) -> None:
    h.put("a.md", "x y x y x\n")
    out = await h.ok("edit_file", path="a.md", old_text="x", new_text="z", replace_all=True)
    assert out == "Replaced 3 occurrences in a.md."
    assert h.text("a.md") == "z y z y z\n"


async def test_edit_file_text_not_found_says_what_the_file_has(h: VaultHarness) -> None:
    h.put("a.md", numbered(30))
    out = await h.err("edit_file", path="a.md", old_text="nope", new_text="z")
    assert "not found" in out and "30 lines" in out


async def test_edit_file_hints_at_a_match_differing_in_case(h: VaultHarness) -> None:
    h.put("a.md", "one\nTwo Words\n")
    out = await h.err("edit_file", path="a.md", old_text="two words", new_text="z")
    assert "line 2" in out


async def test_edit_file_inserts_after_a_line_and_at_the_top(h: VaultHarness) -> None:
    h.put("a.md", numbered(50))
    out = await h.ok("edit_file", path="a.md", insert_after_line=42, content="n1\nn2\nn3\nn4\nn5\n")
    assert out == "Inserted 5 lines after line 42 in a.md."
    lines = h.text("a.md").splitlines()
    assert lines[41:48] == ["line 42", "n1", "n2", "n3", "n4", "n5", "line 43"]
    await h.ok("read_file", path="a.md")
    await h.ok("edit_file", path="a.md", insert_after_line=0, content="top")
    assert h.text("a.md").startswith("top\nline 1\n")


async def test_edit_file_inserts_before_a_line(h: VaultHarness) -> None:
    h.put("a.md", "a\nb\nc\n")
    out = await h.ok("edit_file", path="a.md", insert_before_line=2, content="x")
    assert out == "Inserted 1 line before line 2 in a.md."
    assert h.text("a.md") == "a\nx\nb\nc\n"


async def test_edit_file_deletes_an_inclusive_line_range(h: VaultHarness) -> None:
    h.put("a.md", numbered(10))
    out = await h.ok("edit_file", path="a.md", delete_lines={"start": 3, "end": 7})
    assert out == "Deleted lines 3-7 (5 lines) in a.md."
    assert h.text("a.md") == "line 1\nline 2\nline 8\nline 9\nline 10\n"


async def test_edit_file_line_out_of_range_says_how_many_lines_exist(h: VaultHarness) -> None:
    h.put("a.md", numbered(30))
    out = await h.err("edit_file", path="a.md", insert_after_line=50, content="x")
    assert "line 50 does not exist; the file has 30 lines" in out
    out = await h.err("edit_file", path="a.md", delete_lines={"start": 29, "end": 31})
    assert "line 31 does not exist; the file has 30 lines" in out
    assert h.text("a.md") == numbered(30)


async def test_edit_file_refuses_mixed_modes_and_two_line_operations(h: VaultHarness) -> None:
    h.put("a.md", "a\nb\n")
    out = await h.err(
        "edit_file", path="a.md", old_text="a", new_text="b", insert_after_line=1, content="x"
    )
    assert "not both" in out
    out = await h.err(
        "edit_file", path="a.md", insert_after_line=1, delete_lines={"start": 1, "end": 1}
    )
    assert "only one line operation" in out
    assert "needs content" in await h.err("edit_file", path="a.md", insert_before_line=1)
    assert "nothing to do" in await h.err("edit_file", path="a.md")
    assert "new_text" in await h.err("edit_file", path="a.md", old_text="a")
    assert h.text("a.md") == "a\nb\n"


async def test_edit_file_keeps_crlf_line_endings(h: VaultHarness) -> None:
    h.put("w.md", "one\r\ntwo\r\n")
    await h.ok("edit_file", path="w.md", old_text="one\ntwo", new_text="1\n2")
    assert (h.root / "w.md").read_bytes() == b"1\r\n2\r\n"


async def test_edit_file_of_a_missing_note_is_an_error(h: VaultHarness) -> None:
    assert "not found" in await h.err("edit_file", path="nope.md", old_text="a", new_text="b")


# -- write_file -----------------------------------------------------------------------------


async def test_write_file_creates_with_parents_and_reports_bytes(h: VaultHarness) -> None:
    content = "x" * 155 + "\n"
    out = await h.ok("write_file", path="Deep/Er/New", content=content)
    assert out == "Created file Deep/Er/New.md (156 bytes)"
    assert h.text("Deep/Er/New.md") == content


async def test_write_file_overwrites_and_reports_a_human_size(h: VaultHarness) -> None:
    h.put("a.md", "old")
    out = await h.ok("write_file", path="a.md", content="y" * 2355)
    assert out == "Overwrote file a.md (2.3 KB)"


async def test_write_file_takes_hundreds_of_kilobytes(h: VaultHarness) -> None:
    content = "".join(f"paragraph {i} " + "é" * 80 + "\n" for i in range(4000))
    out = await h.ok("write_file", path="Big.md", content=content)
    assert "Created file Big.md" in out and "KB" in out
    assert h.text("Big.md") == content


async def test_write_file_keeps_other_extensions_and_refuses_a_folder(h: VaultHarness) -> None:
    assert "Created file data.csv" in await h.ok("write_file", path="data.csv", content="a,b")
    (h.root / "Box").mkdir()
    assert "Created file Box.md" in await h.ok("write_file", path="Box", content="note")
    assert "folder" in await h.err("write_file", path="Box/", content="x")


async def test_write_file_refuses_to_overwrite_a_note_changed_since_it_was_read(
    h: VaultHarness,
) -> None:
    h.put("a.md", "v1\n")
    await h.ok("read_file", path="a.md")
    h.put("a.md", "v1 plus the user's typing\n")
    out = await h.err("write_file", path="a.md", content="model's version\n")
    assert "changed on disk since you last read it" in out
    assert h.text("a.md") == "v1 plus the user's typing\n"
    await h.ok("read_file", path="a.md")
    await h.ok("write_file", path="a.md", content="merged\n")
    assert h.text("a.md") == "merged\n"


# -- create_folder --------------------------------------------------------------------------


async def test_create_folder_creates_parents_and_reports_an_existing_one(h: VaultHarness) -> None:
    assert await h.ok("create_folder", path="A/B/C") == "Created folder A/B/C/"
    assert (h.root / "A/B/C").is_dir()
    assert "already exists" in await h.ok("create_folder", path="a/b/c")


async def test_create_folder_of_the_vault_root_is_an_error(h: VaultHarness) -> None:
    for root in ("", ".", "/"):
        assert "root" in await h.err("create_folder", path=root)


async def test_create_folder_over_a_file_is_an_error(h: VaultHarness) -> None:
    h.put("a.md", "x")
    assert "as a file" in await h.err("create_folder", path="a.md")


# -- delete_file ----------------------------------------------------------------------------


async def test_delete_file_moves_to_the_trash_keeping_the_relative_path(h: VaultHarness) -> None:
    h.put("Projects/Old.md", "keep me")
    out = await h.ok("delete_file", path="Projects/Old.md")
    assert "Moved Projects/Old.md to the trash: .trash/Projects/Old.md" in out
    assert not h.exists("Projects/Old.md")
    assert h.text(".trash/Projects/Old.md") == "keep me"


async def test_delete_file_name_clash_in_the_trash_gets_a_suffix(h: VaultHarness) -> None:
    h.put("a.md", "first")
    await h.ok("delete_file", path="a.md")
    h.put("a.md", "second")
    out = await h.ok("delete_file", path="a.md")
    assert ".trash/a 2.md" in out
    assert h.text(".trash/a.md") == "first" and h.text(".trash/a 2.md") == "second"


async def test_delete_file_moves_a_folder_with_its_contents(h: VaultHarness) -> None:
    h.put("Box/x.md", "x")
    h.put("Box/sub/y.md", "y")
    out = await h.ok("delete_file", path="Box")
    assert "folder Box/" in out and ".trash/Box/" in out
    assert h.text(".trash/Box/sub/y.md") == "y"


async def test_delete_file_of_a_missing_path_is_an_error(h: VaultHarness) -> None:
    assert "not found" in await h.err("delete_file", path="ghost.md")


async def test_delete_file_asks_when_a_name_is_both_a_folder_and_a_note(h: VaultHarness) -> None:
    h.put("Plan.md", "note")
    h.put("Plan/x.md", "inside")
    out = await h.err("delete_file", path="Plan")
    assert "'Plan/'" in out and "'Plan.md'" in out
    assert h.exists("Plan.md") and h.exists("Plan/x.md")
    await h.ok("delete_file", path="Plan/")
    assert h.exists("Plan.md") and not h.exists("Plan")


async def test_a_deleted_note_can_be_restored_from_the_trash(h: VaultHarness) -> None:
    h.put("a.md", "hello")
    await h.ok("delete_file", path="a.md")
    await h.ok("move_file", source=".trash/a.md", destination="a.md")
    assert h.text("a.md") == "hello"
    assert "1: hello" in await h.ok("read_file", path="a.md")


# -- move_file ------------------------------------------------------------------------------


async def test_move_file_renames_and_creates_destination_parents(h: VaultHarness) -> None:
    h.put("a.md", "x")
    out = await h.ok("move_file", source="a.md", destination="New/Place/b.md")
    assert out.startswith("Moved a.md to New/Place/b.md.")
    assert "No links needed updating" in out
    assert h.text("New/Place/b.md") == "x" and not h.exists("a.md")


async def test_move_file_into_an_existing_folder_keeps_the_name(h: VaultHarness) -> None:
    h.put("a.md", "x")
    (h.root / "Archive").mkdir()
    assert "to Archive/a.md" in await h.ok("move_file", source="a.md", destination="Archive")


async def test_move_file_never_overwrites(h: VaultHarness) -> None:
    h.put("a.md", "a")
    h.put("b.md", "b")
    out = await h.err("move_file", source="a.md", destination="b.md")
    assert "already exists" in out
    assert h.text("a.md") == "a" and h.text("b.md") == "b"


async def test_move_file_onto_itself_is_a_no_op_with_a_message(h: VaultHarness) -> None:
    h.put("a.md", "a")
    assert "nothing was moved" in await h.ok("move_file", source="a.md", destination="a.md")
    assert "nothing was moved" in await h.ok("move_file", source="a.md", destination="a")


async def test_move_file_can_change_only_the_letter_case(h: VaultHarness) -> None:
    h.put("plan.md", "a")
    out = await h.ok("move_file", source="plan.md", destination="Plan.md")
    assert "to Plan.md" in out
    assert os.listdir(h.root) == ["Plan.md"]


async def test_move_file_of_a_missing_source_and_into_itself_are_errors(h: VaultHarness) -> None:
    assert "not found" in await h.err("move_file", source="nope.md", destination="x.md")
    h.put("Box/a.md", "a")
    assert "into itself" in await h.err("move_file", source="Box", destination="Box/Inner/Box")


# -- list_files -----------------------------------------------------------------------------


async def test_list_files_shows_files_newest_first_then_folders(h: VaultHarness) -> None:
    h.put("old.md", "o", mtime=1_700_000_000)
    h.put("new.md", "n", mtime=1_700_100_000)
    (h.root / "Zeta").mkdir()
    (h.root / "Alpha").mkdir()
    out = await h.ok("list_files")
    assert out.splitlines() == [
        "[file] new.md (modified: 2023-11-16 02:00)",
        "[file] old.md (modified: 2023-11-14 22:13)",
        "[folder] Alpha/",
        "[folder] Zeta/",
    ]


async def test_list_files_globs_recursively_and_case_insensitively(h: VaultHarness) -> None:
    h.put("a.md", "")
    h.put("Deep/B.MD", "")
    h.put("Deep/er/c.md", "")
    h.put("Deep/pic.png", b"\x89PNG")
    out = await h.ok("list_files", pattern="**/*.md")
    assert {line.split(" (")[0] for line in out.splitlines()} == {
        "[file] a.md",
        "[file] Deep/B.MD",
        "[file] Deep/er/c.md",
    }
    out = await h.ok("list_files", pattern="*.md", path="deep")
    assert out.splitlines()[0].startswith("[file] Deep/B.MD")


async def test_list_files_says_when_nothing_matches(h: VaultHarness) -> None:
    h.put("a.md", "")
    assert "No files or folders match '*.pdf'" in await h.ok("list_files", pattern="*.pdf")


async def test_list_files_caps_results_and_says_how_many_there_are(h: VaultHarness) -> None:
    for i in range(15):
        h.put(f"n{i:02}.md", "")
    out = await h.ok("list_files", max_results=10)
    assert len([line for line in out.splitlines() if line.startswith("[file]")]) == 10
    assert "showing 10 of 15" in out


async def test_list_files_of_a_missing_folder_is_an_error(h: VaultHarness) -> None:
    assert "not found" in await h.err("list_files", path="Nowhere")


# -- get_file_info --------------------------------------------------------------------------


async def test_get_file_info_describes_a_note(h: VaultHarness) -> None:
    h.put("a.md", "x" * 2000 + "\nsecond\n", mtime=1_700_000_000)
    out = await h.ok("get_file_info", path="a.md")
    assert "Type: file (Markdown note)" in out
    assert "Size: 2.0 KB (2,008 bytes)" in out
    assert "Lines: 2" in out
    assert "Modified: 2023-11-14 22:13" in out
    assert "Created: " in out


async def test_get_file_info_describes_a_folder(h: VaultHarness) -> None:
    h.put("Box/a.md", "")
    h.put("Box/Sub/b.md", "")
    out = await h.ok("get_file_info", path="box")
    assert "Type: folder" in out and "1 file and 1 folder" in out


async def test_get_file_info_of_a_missing_path_is_an_error(h: VaultHarness) -> None:
    assert "not found" in await h.err("get_file_info", path="nope.md")


async def test_dates_use_the_configured_time_zone(tmp_path: Path) -> None:
    h = VaultHarness(tmp_path, tz=ZoneInfo("Asia/Tokyo"))
    moment = datetime(2025, 3, 1, 9, 30, tzinfo=ZoneInfo("Asia/Tokyo")).timestamp()
    h.put("a.md", "x", mtime=moment)
    assert "Modified: 2025-03-01 09:30" in await h.ok("get_file_info", path="a.md")
    assert "(modified: 2025-03-01 09:30)" in await h.ok("list_files")


# -- get_active_note ------------------------------------------------------------------------


def workspace(h: VaultHarness, data: object) -> None:
    folder = h.root / ".obsidian"
    folder.mkdir(exist_ok=True)
    (folder / "workspace.json").write_text(json.dumps(data), encoding="utf-8")


def leaf(leaf_id: str, file: str) -> dict[str, object]:
    return {
        "id": leaf_id,
        "type": "leaf",
        "state": {"type": "markdown", "state": {"file": file, "mode": "source"}},
    }


async def test_get_active_note_reads_the_active_leaf(h: VaultHarness) -> None:
    h.put("Projects/Alpha.md", "x", mtime=1_700_000_000)
    h.put("Other.md", "y")
    workspace(
        h,
        {
            "main": {
                "id": "m",
                "type": "split",
                "children": [
                    {"id": "t", "type": "tabs", "children": [leaf("l1", "Other.md")]},
                    {"id": "t2", "type": "tabs", "children": [leaf("l2", "Projects/Alpha.md")]},
                ],
            },
            "active": "l2",
            "lastOpenFiles": ["Other.md"],
        },
    )
    out = await h.ok("get_active_note")
    assert out.splitlines()[:3] == [
        "Active note: Projects/Alpha.md",
        "Name: Alpha",
        "Modified: 2023-11-14 22:13",
    ]


async def test_get_active_note_falls_back_to_the_most_recent_open_file(h: VaultHarness) -> None:
    h.put("Recent.md", "x")
    workspace(
        h,
        {
            "main": {"id": "m", "type": "split", "children": []},
            "active": "gone",
            "lastOpenFiles": ["Deleted.md", "Recent.md"],
        },
    )
    out = await h.ok("get_active_note")
    assert "Active note: Recent.md" in out and "recently opened" in out


async def test_get_active_note_says_when_there_is_none(h: VaultHarness) -> None:
    assert "workspace file" in await h.ok("get_active_note")
    workspace(h, {"main": {}, "lastOpenFiles": []})
    assert "No active note" in await h.ok("get_active_note")


async def test_get_active_note_never_reports_a_file_outside_the_vault(h: VaultHarness) -> None:
    (h.base / "secret.md").write_text("secret")
    workspace(
        h, {"active": "l", "main": leaf("l", "../secret.md"), "lastOpenFiles": ["/etc/passwd"]}
    )
    out = await h.ok("get_active_note")
    assert "No active note" in out and "secret" not in out
