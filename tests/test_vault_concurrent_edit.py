"""A change made on disk between a tool's read and its write is never lost."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.vault_fixtures import VaultHarness


@pytest.fixture
def h(tmp_path: Path) -> VaultHarness:
    return VaultHarness(tmp_path)


def once(change: str) -> tuple[list[Path], object]:
    calls: list[Path] = []

    def hook(path: Path) -> None:
        if not calls:
            path.write_text(change, encoding="utf-8")
        calls.append(path)

    return calls, hook


async def test_a_replace_is_redone_on_the_users_new_content(h: VaultHarness) -> None:
    h.put("Todo.md", "- buy milk\n- call mum\n")
    calls, hook = once("- buy milk\n- call mum\n- typed in Obsidian\n")
    h.vault.between_read_and_write = hook  # type: ignore[assignment]
    out = await h.ok("edit_file", path="Todo.md", old_text="buy milk", new_text="buy oat milk")
    assert h.text("Todo.md") == "- buy oat milk\n- call mum\n- typed in Obsidian\n"
    assert "changed on disk while editing" in out
    assert len(calls) == 2  # the edit ran twice: once on the old, once on the new content


async def test_a_replace_that_no_longer_applies_fails_and_keeps_the_users_text(
    h: VaultHarness,
) -> None:
    h.put("Todo.md", "- buy milk\n")
    _, hook = once("- bought it already\n")
    h.vault.between_read_and_write = hook  # type: ignore[assignment]
    out = await h.err("edit_file", path="Todo.md", old_text="buy milk", new_text="buy oat milk")
    assert "changed on disk while it was being edited" in out and "no longer applies" in out
    assert h.text("Todo.md") == "- bought it already\n"


async def test_a_line_edit_on_changed_content_fails_instead_of_landing_elsewhere(
    h: VaultHarness,
) -> None:
    h.put("Log.md", "a\nb\nc\n")
    _, hook = once("new first line\na\nb\nc\n")
    h.vault.between_read_and_write = hook  # type: ignore[assignment]
    out = await h.err("edit_file", path="Log.md", insert_after_line=2, content="x")
    assert "line numbers may have moved" in out
    assert h.text("Log.md") == "new first line\na\nb\nc\n"


async def test_a_note_that_keeps_changing_gives_up_cleanly(h: VaultHarness) -> None:
    h.put("Busy.md", "start\n")
    counter = [0]

    def always(path: Path) -> None:
        counter[0] += 1
        path.write_text(f"start\nuser edit {counter[0]}\n", encoding="utf-8")

    h.vault.between_read_and_write = always
    out = await h.err("edit_file", path="Busy.md", old_text="start", new_text="begin")
    assert "kept changing" in out
    assert h.text("Busy.md") == f"start\nuser edit {counter[0]}\n"


async def test_write_file_does_not_overwrite_a_change_made_during_the_write(
    h: VaultHarness,
) -> None:
    h.put("Draft.md", "v1\n")
    _, hook = once("v1 and the user's new sentence\n")
    h.vault.between_read_and_write = hook  # type: ignore[assignment]
    out = await h.err("write_file", path="Draft.md", content="model rewrite\n")
    assert "changed on disk while it was being written" in out
    assert h.text("Draft.md") == "v1 and the user's new sentence\n"


async def test_line_edits_refuse_stale_line_numbers_from_an_earlier_read(
    h: VaultHarness,
) -> None:
    h.put("Plan.md", "one\ntwo\nthree\n")
    await h.ok("read_file", path="Plan.md")
    h.put("Plan.md", "zero\none\ntwo\nthree\n")  # the user inserted a line in Obsidian
    out = await h.err("edit_file", path="Plan.md", delete_lines={"start": 2, "end": 2})
    assert "changed on disk since you last read it" in out
    assert h.text("Plan.md") == "zero\none\ntwo\nthree\n"
    await h.ok("read_file", path="Plan.md")
    await h.ok("edit_file", path="Plan.md", delete_lines={"start": 3, "end": 3})
    assert h.text("Plan.md") == "zero\none\nthree\n"


async def test_no_temporary_file_is_left_after_a_refused_write(h: VaultHarness) -> None:
    h.put("Draft.md", "v1\n")
    _, hook = once("changed\n")
    h.vault.between_read_and_write = hook  # type: ignore[assignment]
    await h.err("write_file", path="Draft.md", content="x")
    assert h.all_files() == {"Draft.md"}
