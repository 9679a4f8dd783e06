"""Undo a processed request: revert exactly its commit as a new commit, refuse on conflicts,
and never lose the user's notes or history either way."""

from __future__ import annotations

from pathlib import Path

from smarthole_notes.versioning import GitVault, undo, undo_in_vault
from tests import test_git_support as support
from tests.test_git_support import (
    fsck_clean,
    git_cli,
    last_message,
    read,
    request,
    trailers_of,
    write,
)

# The shared fixtures (pytest finds them as module attributes).
git = support.git
no_user_git_config = support.no_user_git_config
vault = support.vault

SHOPPING = "Lists/Shopping.md"
ORIGINAL = "# Shopping\n\n- bread\n- milk\n- apples\n"


def history(vault: Path) -> list[str]:
    return git_cli(vault, "rev-list", "HEAD").split()


async def test_undo_last_reverts_the_last_requests_commit_as_a_new_commit(
    git: GitVault, vault: Path
) -> None:
    await request(git, "m-1", lambda: write(vault, SHOPPING, ORIGINAL + "- eggs\n"))
    await request(git, "m-2", lambda: write(vault, "Lists/Books.md", "- Dune\n"))
    before = history(vault)

    result = undo(git, "last")

    assert result.ok, result.message
    assert result.message_id == "m-2" and result.files == ("Lists/Books.md",)
    assert not (vault / "Lists/Books.md").exists()
    assert read(vault, SHOPPING) == ORIGINAL + "- eggs\n"
    after = history(vault)
    assert after[1:] == before  # a new commit on top; nothing rewritten
    assert after[0] == result.commit
    assert ("Smarthole-Undo-Of", "m-2") in trailers_of(vault)
    assert last_message(vault).startswith('Revert "vault(Lists): add Lists/Books.md"')
    assert git_cli(vault, "status", "--porcelain") == ""
    fsck_clean(vault)


async def test_undo_of_an_earlier_request_keeps_the_later_ones(git: GitVault, vault: Path) -> None:
    await request(git, "m-1", lambda: write(vault, SHOPPING, ORIGINAL + "- eggs\n"))
    await request(
        git,
        "m-2",
        lambda: write(
            vault, "Ideas.md", "# Ideas\n\n- a garden\n- see [[Lists/Shopping]]\n- a pond\n"
        ),
    )

    result = undo(git, "m-1")

    assert result.ok, result.message
    assert read(vault, SHOPPING) == ORIGINAL
    assert read(vault, "Ideas.md").endswith("- a pond\n")
    fsck_clean(vault)


async def test_undo_merges_around_later_edits_to_other_lines(git: GitVault, vault: Path) -> None:
    await request(
        git, "m-1", lambda: write(vault, SHOPPING, ORIGINAL.replace("- bread", "- rye bread"))
    )
    await request(git, "m-2", lambda: write(vault, SHOPPING, read(vault, SHOPPING) + "- eggs\n"))

    result = undo(git, "m-1")

    assert result.ok, result.message
    assert read(vault, SHOPPING) == ORIGINAL + "- eggs\n"


async def test_undo_is_refused_when_later_changes_touched_the_same_lines(
    git: GitVault, vault: Path
) -> None:
    await request(
        git, "m-1", lambda: write(vault, SHOPPING, ORIGINAL.replace("- milk", "- oat milk"))
    )
    await request(
        git, "m-2", lambda: write(vault, SHOPPING, ORIGINAL.replace("- milk", "- soy milk"))
    )
    await request(git, "m-3", lambda: write(vault, "Ideas.md", "# Ideas\n"))
    head = git.head()
    content = read(vault, SHOPPING)

    result = undo(git, "m-1")

    assert result.status == "conflict"
    assert result.conflicts == (SHOPPING,)
    assert SHOPPING in result.message
    assert git.head() == head and read(vault, SHOPPING) == content
    assert git_cli(vault, "status", "--porcelain") == ""
    fsck_clean(vault)


async def test_the_users_uncommitted_edits_are_saved_before_an_undo(
    git: GitVault, vault: Path
) -> None:
    await request(git, "m-1", lambda: write(vault, SHOPPING, ORIGINAL + "- eggs\n"))
    write(vault, "Journal/2026-02-05.md", "# Thursday\n\nTyped just now.\n")

    result = undo(git, "last")

    assert result.ok and result.saved_edits_commit is not None
    assert read(vault, "Journal/2026-02-05.md") == "# Thursday\n\nTyped just now.\n"
    assert "Typed just now." in git_cli(
        vault, "show", f"{result.saved_edits_commit}:Journal/2026-02-05.md"
    )
    assert read(vault, SHOPPING) == ORIGINAL


async def test_a_user_edit_on_the_same_lines_refuses_the_undo_and_is_kept(
    git: GitVault, vault: Path
) -> None:
    await request(git, "m-1", lambda: write(vault, SHOPPING, ORIGINAL + "- eggs\n"))
    write(vault, SHOPPING, ORIGINAL + "- eggs, a dozen\n")

    result = undo(git, "last")

    assert result.status == "conflict" and result.conflicts == (SHOPPING,)
    assert read(vault, SHOPPING) == ORIGINAL + "- eggs, a dozen\n"
    assert "a dozen" in git_cli(vault, "show", f"HEAD:{SHOPPING}")  # and safe in history


async def test_undo_reverses_a_move_with_its_link_updates(git: GitVault, vault: Path) -> None:
    def move() -> None:
        (vault / "Archive").mkdir()
        (vault / SHOPPING).rename(vault / "Archive/Shopping.md")
        write(vault, "Ideas.md", "# Ideas\n\n- a garden\n- see [[Archive/Shopping]]\n")

    await request(git, "m-1", move, tools=("move_file",))
    assert git_cli(vault, "log", "-1", "--format=%s").startswith("organize(")

    result = undo(git, "last")

    assert result.ok, result.message
    assert read(vault, SHOPPING) == ORIGINAL
    assert not (vault / "Archive/Shopping.md").exists()
    assert "[[Lists/Shopping]]" in read(vault, "Ideas.md")


async def test_undo_restores_a_deleted_note_and_removes_an_added_one(
    git: GitVault, vault: Path
) -> None:
    def swap() -> None:
        (vault / "Ideas.md").unlink()
        write(vault, "Lists/New.md", "new\n")

    await request(git, "m-1", swap)

    result = undo(git, "m-1")

    assert result.ok
    assert read(vault, "Ideas.md").startswith("# Ideas")
    assert not (vault / "Lists/New.md").exists()


async def test_undo_last_twice_walks_back_and_an_undone_request_stays_undone(
    git: GitVault, vault: Path
) -> None:
    await request(git, "m-1", lambda: write(vault, "A.md", "a\n"))
    await request(git, "m-2", lambda: write(vault, "B.md", "b\n"))

    assert undo(git, "last").message_id == "m-2"
    assert undo(git, "last").message_id == "m-1"
    assert not (vault / "A.md").exists() and not (vault / "B.md").exists()
    assert undo(git, "m-2").status == "already_undone"
    assert undo(git, "last").status == "not_found"
    fsck_clean(vault)


async def test_an_unknown_request_is_not_found(git: GitVault, vault: Path) -> None:
    await request(git, "m-1", lambda: write(vault, "A.md", "a\n"))

    result = undo(git, "m-unknown")

    assert result.status == "not_found" and not result.ok
    assert undo(git, "m-").status == "not_found"  # a prefix is not the id


async def test_undo_of_a_mixed_commit_leaves_the_users_own_files_alone(
    git: GitVault, vault: Path
) -> None:
    write(vault, "Journal/2026-02-05.md", "# Thursday\n\nMy own words.\n")
    await request(git, "m-1", lambda: write(vault, SHOPPING, ORIGINAL + "- eggs\n"))
    assert ("Smarthole-Source", "mixed") in trailers_of(vault)

    result = undo(git, "m-1")

    assert result.ok and result.files == (SHOPPING,)
    assert read(vault, SHOPPING) == ORIGINAL
    assert read(vault, "Journal/2026-02-05.md") == "# Thursday\n\nMy own words.\n"


async def test_undo_with_a_shared_file_is_refused(git: GitVault, vault: Path) -> None:
    write(vault, SHOPPING, ORIGINAL + "- pears\n")
    await request(git, "m-1", lambda: write(vault, SHOPPING, read(vault, SHOPPING) + "- eggs\n"))

    result = undo(git, "m-1")

    assert result.status == "conflict" and result.conflicts == (SHOPPING,)
    assert read(vault, SHOPPING) == ORIGINAL + "- pears\n- eggs\n"


async def test_undo_without_history_says_so(git: GitVault, vault: Path) -> None:
    result = undo(git, "last")

    assert result.status == "not_found"
    assert result.to_dict()["ok"] is False


def test_undo_in_a_vault_without_versioning_says_how_to_turn_it_on(tmp_path: Path) -> None:
    (tmp_path / "plain").mkdir()

    result = undo_in_vault(tmp_path / "plain", "last")

    assert result.status == "failed" and "enable_git_version_control" in result.message
    assert not (tmp_path / "plain" / ".git").exists()


async def test_undo_in_vault_by_path_works_like_undo(git: GitVault, vault: Path) -> None:
    await request(git, "m-1", lambda: write(vault, "A.md", "a\n"))

    result = undo_in_vault(vault, "m-1")

    assert result.ok and not (vault / "A.md").exists()
