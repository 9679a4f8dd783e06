"""The three git history tools: their outputs, their errors, and their absence while git is off."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, tzinfo
from pathlib import Path

import pytest

from smarthole_notes.settings import Settings
from smarthole_notes.tools.base import ToolOutcome, ToolRegistry
from smarthole_notes.tools.git import (
    GIT_TOOL_NAMES,
    git_tools,
    git_tools_if_enabled,
    sync_git_tools,
    truncate_diff,
)
from smarthole_notes.versioning import GitVault
from tests import test_git_support as support
from tests.test_git_support import (
    git_cli,
    write,
)

# The shared fixtures (pytest finds them as module attributes).
git = support.git
no_user_git_config = support.no_user_git_config
vault = support.vault

LINE = re.compile(r"\[[0-9a-f]{7}\] \d{4}-\d{2}-\d{2} -- .+")


def utc_zone() -> tuple[tzinfo, str]:
    return UTC, "UTC"


@pytest.fixture
def tools(git: GitVault) -> ToolRegistry:
    return ToolRegistry(git_tools(git, zone=utc_zone))


@pytest.fixture
def history(git: GitVault, vault: Path) -> GitVault:
    """Three dated commits: eggs (Feb 1), the journal (Feb 5), a move (Feb 9)."""
    write(vault, "Lists/Shopping.md", "# Shopping\n\n- bread\n- milk\n- apples\n- eggs\n")
    git.commit_all(
        "vault(Lists): add eggs to the shopping list\n", date=datetime(2026, 2, 1, 10, tzinfo=UTC)
    )
    write(vault, "Journal/2026-02-05.md", "# Thursday\n\nWent for a walk. Saw a heron.\n")
    git.commit_all("vault(Journal): note the heron\n", date=datetime(2026, 2, 5, 18, tzinfo=UTC))
    (vault / "Archive").mkdir()
    (vault / "Lists/Shopping.md").rename(vault / "Archive/Shopping.md")
    git.commit_all(
        "organize(Archive): archive the shopping list\n", date=datetime(2026, 2, 9, 9, tzinfo=UTC)
    )
    return git


async def run(tools: ToolRegistry, name: str, **tool_input: object) -> ToolOutcome:
    return await tools.run(name, tool_input)


def test_the_git_tools_exist_only_while_git_is_on(vault: Path) -> None:
    assert git_tools_if_enabled(Settings(enable_git_version_control=False), vault) == []
    names = [t.name for t in git_tools_if_enabled(Settings(enable_git_version_control=True), vault)]
    assert names == list(GIT_TOOL_NAMES)

    registry = ToolRegistry()
    service = GitVault(vault)
    sync_git_tools(registry, Settings(enable_git_version_control=True), service)
    assert set(GIT_TOOL_NAMES) <= {t.name for t in registry}
    sync_git_tools(registry, Settings(enable_git_version_control=False), service)
    assert not set(GIT_TOOL_NAMES) & {t.name for t in registry}


async def test_search_finds_commits_by_message_text(history: GitVault, tools: ToolRegistry) -> None:
    outcome = await run(tools, "search_git_history", query="HERON")

    assert not outcome.is_error
    lines = outcome.content.splitlines()
    assert len(lines) == 1 and LINE.fullmatch(lines[0])
    assert lines[0].endswith("2026-02-05 -- vault(Journal): note the heron")


async def test_search_by_file_follows_renames(history: GitVault, tools: ToolRegistry) -> None:
    outcome = await run(tools, "search_git_history", file_path="/Archive/Shopping.md/")

    subjects = [line.split(" -- ", 1)[1] for line in outcome.content.splitlines()]
    assert subjects == [
        "organize(Archive): archive the shopping list",
        "vault(Lists): add eggs to the shopping list",
        "vault(notes): start versioning the vault",
    ]


async def test_search_by_date_range_includes_whole_days(
    history: GitVault, tools: ToolRegistry
) -> None:
    outcome = await run(
        tools,
        "search_git_history",
        query="",
        file_path="Journal/2026-02-05.md",
        since="2026-02-05",
        until="2026-02-05",
    )
    assert [line[10:] for line in outcome.content.splitlines()] == [
        "2026-02-05 -- vault(Journal): note the heron"
    ]
    outcome = await run(tools, "search_git_history", query="the", since="2026-02-06", max_results=1)
    assert outcome.content.splitlines()[0].endswith("archive the shopping list")
    none = await run(tools, "search_git_history", query="heron", until="2026-02-04")
    assert none.content.startswith("No commits match")


async def test_search_needs_a_query_or_a_file_and_valid_dates(
    git: GitVault, tools: ToolRegistry
) -> None:
    missing = await run(tools, "search_git_history", since="2026-01-01")
    bad_date = await run(tools, "search_git_history", query="x", since="last tuesday")

    assert missing.is_error and "query" in missing.content
    assert bad_date.is_error and "ISO date" in bad_date.content


async def test_file_history_follows_renames_and_shows_diffs(
    history: GitVault, tools: ToolRegistry
) -> None:
    outcome = await run(
        tools, "view_file_history", file_path="archive/shopping", include_diff=True, max_results=5
    )

    assert not outcome.is_error, outcome.content
    text = outcome.content
    assert text.startswith("History of Archive/Shopping.md, newest first (3 commits")
    assert (
        "2026-02-09 09:00 -- organize(Archive): archive the shopping list (renamed from Lists/Shopping.md)"
        in text
    )
    assert "+- eggs" in text
    assert "(added as Lists/Shopping.md)" in text


async def test_file_history_without_diff_is_one_line_per_commit(
    history: GitVault, tools: ToolRegistry
) -> None:
    outcome = await run(
        tools, "view_file_history", file_path="Journal/2026-02-05.md", max_results=1
    )

    assert outcome.content.splitlines()[1:] == [
        "["
        + outcome.content.splitlines()[1][1:8]
        + "] 2026-02-05 18:00 -- vault(Journal): note the heron"
    ]


async def test_view_commit_shows_everything_about_a_commit(
    history: GitVault, tools: ToolRegistry, vault: Path
) -> None:
    short = git_cli(vault, "rev-parse", "--short=7", "HEAD~1").strip()
    full = git_cli(vault, "rev-parse", "HEAD~1").strip()

    outcome = await run(tools, "view_commit", commit_hash=short)

    assert not outcome.is_error, outcome.content
    text = outcome.content
    assert text.startswith(f"Commit {full}\nAuthor: smarthole-notes <smarthole-notes@localhost>\n")
    assert "Date: Thursday, Feb 5, 2026 6:00 PM (UTC, UTC+0)" in text
    assert "    vault(Journal): note the heron" in text
    assert "Files changed (1):\n- modified: Journal/2026-02-05.md" in text
    assert "+Went for a walk. Saw a heron." in text

    move = await run(tools, "view_commit", commit_hash=git_cli(vault, "rev-parse", "HEAD").strip())
    assert "- renamed: Lists/Shopping.md -> Archive/Shopping.md" in move.content


async def test_view_commit_refuses_what_is_not_a_known_hash(
    git: GitVault, tools: ToolRegistry, vault: Path
) -> None:
    for bad in ("--output=/tmp/x", "HEAD~1", "zzzzzzz"):
        outcome = await run(tools, "view_commit", commit_hash=bad)
        assert outcome.is_error and "not a commit hash" in outcome.content
    unknown = await run(tools, "view_commit", commit_hash="0123456789abcdef")
    assert unknown.is_error and "no commit" in unknown.content


async def test_protected_folders_and_escapes_are_refused(
    git: GitVault, tools: ToolRegistry
) -> None:
    for path in (
        ".smarthole/settings.toml",
        ".GIT/config",
        "../outside.md",
        "~/notes.md",
        "C:/notes.md",
    ):
        outcome = await run(tools, "view_file_history", file_path=path)
        assert outcome.is_error, path


async def test_long_diffs_are_cut_at_about_5000_characters(
    git: GitVault, tools: ToolRegistry, vault: Path
) -> None:
    write(vault, "Big.md", "".join(f"line {i} with some words in it\n" for i in range(2000)))
    git.commit_all("vault(Big): add a big note\n")

    outcome = await run(
        tools, "view_commit", commit_hash=git_cli(vault, "rev-parse", "HEAD").strip()
    )

    assert "[diff truncated:" in outcome.content
    assert len(outcome.content) < 6_500
    assert truncate_diff("short\n") == "short"


async def test_tools_report_a_vault_without_history(tmp_path: Path) -> None:
    (tmp_path / "v").mkdir()
    tools = ToolRegistry(git_tools(GitVault(tmp_path / "v"), zone=utc_zone))

    outcome = await run(tools, "search_git_history", query="x")

    assert outcome.is_error or outcome.content.startswith("No commits")


def test_dates_are_shown_in_the_users_zone() -> None:
    from smarthole_notes.tools.git import parse_when

    zone = UTC
    start = parse_when("2026-02-05", zone, end_of_day=False)
    end = parse_when("2026-02-05", zone, end_of_day=True)
    assert end - start < timedelta(days=1) and end - start > timedelta(hours=23)
