"""The git service on real repositories: creation, ignores, identity, status, commits."""

from __future__ import annotations

from pathlib import Path

import pytest

from smarthole_notes.versioning import GitError, GitVault
from smarthole_notes.versioning.repo import GITIGNORE, is_private, parse_name_status
from tests import test_git_support as support
from tests.test_git_support import (
    committed_paths,
    fsck_clean,
    git_cli,
    make_vault,
    read,
    write,
)

# The shared fixtures (pytest finds them as module attributes).
git = support.git
no_user_git_config = support.no_user_git_config
vault = support.vault


def test_turning_git_on_makes_a_repository_with_gitignore_and_a_first_commit(vault: Path) -> None:
    service = GitVault(vault)

    state = service.ensure_repository()

    assert state.created and state.gitignore_written and state.initial_commit
    assert read(vault, ".gitignore") == GITIGNORE
    for entry in (".obsidian/", ".smarthole/", ".trash/", ".DS_Store", "Thumbs.db", "desktop.ini"):
        assert entry in GITIGNORE.splitlines()
    log = git_cli(vault, "log", "--format=%an <%ae>|%cn <%ce>|%s")
    assert log.strip() == (
        "smarthole-notes <smarthole-notes@localhost>|smarthole-notes <smarthole-notes@localhost>"
        "|vault(notes): start versioning the vault"
    )
    assert committed_paths(vault) == {
        ".gitignore",
        "Ideas.md",
        "Journal/2026-02-05.md",
        "Lists/Shopping.md",
    }
    assert git_cli(vault, "status", "--porcelain") == ""
    fsck_clean(vault)


def test_turning_git_on_again_changes_nothing(git: GitVault, vault: Path) -> None:
    head = git.head()

    state = git.ensure_repository()

    assert not state.created and not state.gitignore_written and state.initial_commit is None
    assert git.head() == head


def test_an_existing_repository_is_used_as_it_is(vault: Path) -> None:
    git_cli(vault, "init", "-q", "-b", "trunk")
    write(vault, ".gitignore", "*.tmp\n.obsidian/\n.smarthole/\n")
    git_cli(vault, "add", "-A")
    git_cli(vault, "commit", "-qm", "my own history", user=True)
    before = git_cli(vault, "rev-parse", "HEAD").strip()

    state = GitVault(vault).ensure_repository()

    assert not state.created and not state.gitignore_written and state.initial_commit is None
    assert read(vault, ".gitignore") == "*.tmp\n.obsidian/\n.smarthole/\n"
    assert git_cli(vault, "rev-parse", "HEAD").strip() == before
    assert git_cli(vault, "symbolic-ref", "--short", "HEAD").strip() == "trunk"


def test_private_folders_are_never_committed_even_when_the_gitignore_allows_them(
    vault: Path,
) -> None:
    git_cli(vault, "init", "-q")
    write(vault, ".gitignore", "# the user's own, ignoring nothing\n")
    service = GitVault(vault)
    service.ensure_repository()
    write(vault, ".obsidian/app.json", "{}\n")
    write(vault, ".smarthole/conversations.db", "secret\n")
    write(vault, "Lists/Todo.md", "- call mum\n")

    assert service.commit_all("vault(Lists): add todo\n") is not None

    paths = committed_paths(vault)
    assert "Lists/Todo.md" in paths
    assert not [p for p in paths if p.startswith((".obsidian/", ".smarthole/"))]
    assert service.changed_files() == []  # the private folders are not the vault's changes
    # The user's own `git add -A` skips the service's data too.
    git_cli(vault, "add", "-A")
    assert ".smarthole/conversations.db" not in git_cli(vault, "diff", "--cached", "--name-only")
    fsck_clean(vault)


def test_a_vault_inside_another_repository_is_refused(tmp_path: Path) -> None:
    outer = tmp_path / "documents"
    outer.mkdir()
    git_cli(outer, "init", "-q")
    inner = make_vault(outer)

    with pytest.raises(GitError, match="inside another git repository"):
        GitVault(inner).ensure_repository()
    assert not (inner / ".git").exists()


def test_changed_files_lists_every_kind_of_change_but_not_private_folders(
    git: GitVault, vault: Path
) -> None:
    write(vault, "Lists/Shopping.md", "# Shopping\n\n- eggs\n")
    write(vault, "New folder/New note.md", "hello\n")
    (vault / "Ideas.md").unlink()
    write(vault, ".smarthole/inbox/m1.json", "{}\n")

    changes = {(c.path, c.kind) for c in git.changed_files()}

    assert changes == {
        ("Lists/Shopping.md", "modified"),
        ("New folder/New note.md", "added"),
        ("Ideas.md", "deleted"),
    }


def test_commit_all_commits_everything_and_returns_none_when_nothing_changed(
    git: GitVault, vault: Path
) -> None:
    write(vault, "Lists/Shopping.md", "# Shopping\n\n- eggs\n")
    write(vault, "Notes/Café ☕.md", "unicode name\n")

    commit = git.commit_all("vault(Lists): add eggs\n")

    assert commit is not None and git_cli(vault, "rev-parse", "HEAD").strip() == commit
    assert "Notes/Café ☕.md" in committed_paths(vault)
    assert git.changed_files() == []
    assert git.commit_all("vault(notes): nothing\n") is None
    fsck_clean(vault)


def test_the_users_hooks_and_signing_settings_never_block_a_commit(
    git: GitVault, vault: Path
) -> None:
    git_cli(vault, "config", "commit.gpgsign", "true")
    git_cli(vault, "config", "gpg.program", "/nonexistent/gpg")
    hook = vault / ".git" / "hooks" / "pre-commit"
    hook.write_text("#!/bin/sh\nexit 1\n")
    hook.chmod(0o755)
    write(vault, "Ideas.md", "# Ideas\n\n- a pond\n")

    assert git.commit_all("vault(notes): update ideas\n") is not None


def test_temporary_files_of_interrupted_writes_are_never_committed(
    git: GitVault, vault: Path
) -> None:
    write(vault, "Lists/.Shopping.md.smarthole-tmp-0a1b2c", "half a note")
    write(vault, "Lists/Shopping.md", "# Shopping\n\n- eggs\n")
    (vault / ".gitignore").unlink()  # even without the seeded ignore

    git.commit_all("vault(Lists): eggs\n")

    assert "Lists/.Shopping.md.smarthole-tmp-0a1b2c" not in committed_paths(vault)


def test_a_missing_git_is_reported_plainly(vault: Path) -> None:
    service = GitVault(vault, git="git-that-does-not-exist")

    with pytest.raises(GitError, match="git is not installed"):
        service.ensure_repository()


def test_name_status_parsing_handles_renames_and_odd_names() -> None:
    raw = b"M\0a.md\0R087\0old name.md\0new\tname.md\0D\0gone.md\0"

    changes = parse_name_status(raw)

    assert [(c.kind, c.path, c.old_path) for c in changes] == [
        ("modified", "a.md", None),
        ("renamed", "new\tname.md", "old name.md"),
        ("deleted", "gone.md", None),
    ]
    assert (
        is_private(".smarthole/x") and is_private(".OBSIDIAN/y") and not is_private("a/.smarthole")
    )
