"""`smarthole-notes undo` exit codes, as the README's table says: git off is a configuration
problem (2), an undo that did nothing is 3, never 1 (which means the Anthropic API failed)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from smarthole_notes.settings import save_settings

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs git")


def undo(vault: Path, home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "GIT_"))}
    env.update({"HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config")})
    return subprocess.run(
        [sys.executable, "-m", "smarthole_notes", "undo", "--vault", str(vault), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_undo_with_git_versioning_off_is_a_configuration_problem(
    vault: Path, tmp_path: Path
) -> None:
    done = undo(vault, tmp_path)
    assert done.returncode == 2
    assert done.stderr.startswith("smarthole-notes: error: git versioning is off")
    assert "enable_git_version_control" in done.stderr
    assert not (vault / ".git").exists()


def test_undo_with_git_on_but_no_repository_yet_is_a_configuration_problem(
    vault: Path, tmp_path: Path
) -> None:
    save_settings(vault, {"enable_git_version_control": True})
    done = undo(vault, tmp_path)
    assert done.returncode == 2
    assert "not a git repository yet" in done.stderr


def test_undo_with_nothing_to_undo_exits_3(vault: Path, tmp_path: Path) -> None:
    save_settings(vault, {"enable_git_version_control": True})
    subprocess.run(["git", "init", "-q", str(vault)], check=True)
    done = undo(vault, tmp_path)
    assert done.returncode == 3, done.stderr
    assert "nothing to undo" in done.stderr.lower()
    named = undo(vault, tmp_path, "no-such-message")
    assert named.returncode == 3


def test_a_file_as_vault_is_not_a_folder(tmp_path: Path) -> None:
    note = tmp_path / "note.md"
    note.write_text("x")
    done = undo(note, tmp_path)
    assert done.returncode == 2
    assert "is not a folder" in done.stderr
