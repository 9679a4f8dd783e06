"""Helpers shared by the git tests: throwaway vaults, the real git command line, auto-commits.

Every test runs with an empty HOME and no system git config, so nothing depends on the
machine's git identity or settings (the service must work on a fresh machine).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from smarthole_notes.versioning import GitVault, auto_commit

FAST_RETRIES = (0.01, 0.02, 0.04)


def git_cli(vault: Path, *args: str, check: bool = True, user: bool = False) -> str:
    """Real git, as the user would run it; `user` gives it an identity of its own."""
    identity = ["-c", "user.name=The User", "-c", "user.email=user@example.com"] if user else []
    result = subprocess.run(
        ["git", "-C", str(vault), *identity, *args],
        capture_output=True,
        text=True,
        check=False,
    )
    if check and result.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed: {result.stderr}")
    return result.stdout


def fsck_clean(vault: Path) -> None:
    """`git fsck --strict` finds no error (dangling objects are not errors)."""
    result = subprocess.run(
        ["git", "-C", str(vault), "fsck", "--strict", "--no-dangling"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "error" not in result.stderr.lower(), result.stderr


def committed_paths(vault: Path, rev: str = "HEAD") -> set[str]:
    return {p for p in git_cli(vault, "ls-tree", "-r", "-z", "--name-only", rev).split("\0") if p}


def write(vault: Path, rel: str, text: str) -> None:
    path = vault / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def read(vault: Path, rel: str) -> str:
    return (vault / rel).read_text(encoding="utf-8")


def last_message(vault: Path, rev: str = "HEAD") -> str:
    return git_cli(vault, "log", "-1", "--format=%B", rev)


def trailers_of(vault: Path, rev: str = "HEAD") -> list[tuple[str, str]]:
    """Trailers as git itself parses them (`interpret-trailers --parse`)."""
    out = subprocess.run(
        ["git", "-C", str(vault), "interpret-trailers", "--parse"],
        input=last_message(vault, rev),
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    pairs = []
    for line in out.splitlines():
        key, _, value = line.partition(":")
        pairs.append((key.strip(), value.strip()))
    return pairs


def make_vault(root: Path) -> Path:
    """A small vault with Obsidian's and smarthole-notes' private folders."""
    vault = root / "vault"
    write(vault, "Lists/Shopping.md", "# Shopping\n\n- bread\n- milk\n- apples\n")
    write(vault, "Journal/2026-02-05.md", "# Thursday\n\nWent for a walk.\n")
    write(vault, "Ideas.md", "# Ideas\n\n- a garden\n- see [[Lists/Shopping]]\n")
    write(vault, ".obsidian/workspace.json", '{"main": {}}\n')
    write(vault, ".smarthole/settings.toml", 'model = "claude-haiku-4-5"\n')
    write(vault, ".smarthole/inbox/m0.json", '{"id": "m0"}\n')
    return vault


@pytest.fixture(autouse=True)
def no_user_git_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No global or system git config: no identity, no defaults of the machine."""
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    for key in list(os.environ):
        if key.startswith("GIT_") and key != "GIT_CONFIG_NOSYSTEM":
            monkeypatch.delenv(key)


@pytest.fixture
def vault(tmp_path: Path) -> Path:
    return make_vault(tmp_path)


@pytest.fixture
def git(vault: Path) -> GitVault:
    """A versioned vault (first commit made), with short lock retries."""
    service = GitVault(vault, lock_retry_delays=FAST_RETRIES)
    service.ensure_repository()
    return service


async def request(
    git: GitVault,
    message_id: str,
    edit: Any,
    *,
    text: str = "please do it",
    tools: tuple[str, ...] = ("edit_file",),
    llm: Any = None,
) -> str | None:
    """One processed request as the pipeline runs it: snapshot, agent edits, auto-commit."""
    before = git.snapshot()
    edit()
    return await auto_commit(
        git,
        llm=llm,
        request_text=text,
        conversation_id="conv-1",
        message_id=message_id,
        tools_used=[{"name": t, "input": "path=x"} for t in tools],
        user_changes_before=before,
    )
