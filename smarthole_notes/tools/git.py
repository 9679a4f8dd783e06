"""The git history tools (`search_git_history`, `view_file_history`, `view_commit`).

They exist only while git versioning is on: the pipeline gets them from
`git_tools_if_enabled(settings, vault)` for each message (an empty list when off), or
keeps a long-lived registry in step with `sync_git_tools`. Turning git off unregisters
them; the repository stays.

They read history only. Paths are checked like the vault tools' (no `..`, no protected
folders), revisions must look like commit hashes, and every user value reaches git after
`--` or inside an `--option=value`, never as an option of its own. Dates are shown in the
user's time zone.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from datetime import date, datetime, time, tzinfo
from pathlib import Path
from typing import Final

from smarthole_notes.clock import format_local_time, local_zone
from smarthole_notes.settings import Settings
from smarthole_notes.tools import catalog
from smarthole_notes.tools.base import ArgsT, Tool, ToolError, ToolRegistry
from smarthole_notes.tools.catalog import (
    DIFF_LIMIT,
    SearchGitHistoryArgs,
    ViewCommitArgs,
    ViewFileHistoryArgs,
)
from smarthole_notes.versioning.repo import (
    ChangedFile,
    CommitDetails,
    GitError,
    GitVault,
    LogEntry,
)

GIT_TOOL_NAMES: Final = tuple(d.name for d in catalog.GIT_TOOLS)
MAX_DIFF_FILES: Final = 30
"""Files of one commit shown with their diff; the others are listed only."""
_HASH_INPUT: Final = re.compile(r"[0-9a-fA-F]{4,64}")
_PROTECTED: Final = frozenset({".git", ".obsidian", ".smarthole"})

ZoneFunction = Callable[[], tuple[tzinfo, str]]


def git_tools_if_enabled(
    settings: Settings, vault: Path, *, zone: ZoneFunction = local_zone
) -> list[Tool]:
    """The git tools when git versioning is on, else none: what the pipeline registers."""
    if not settings.enable_git_version_control:
        return []
    return git_tools(GitVault(vault), zone=zone)


def sync_git_tools(registry: ToolRegistry, settings: Settings, git: GitVault) -> None:
    """Register the git tools when git is on and unregister them when it is off."""
    if settings.enable_git_version_control:
        for tool in git_tools(git):
            registry.register(tool)
    else:
        for name in GIT_TOOL_NAMES:
            registry.unregister(name)


def truncate_diff(diff: str, limit: int = DIFF_LIMIT) -> str:
    """A diff cut at about `limit` characters, on a line boundary, saying it was cut."""
    if len(diff) <= limit:
        return diff.rstrip("\n")
    cut = diff.rfind("\n", 0, limit)
    kept = diff[: cut if cut > 0 else limit]
    return f"{kept}\n[diff truncated: {len(diff):,} characters in all, first {len(kept):,} shown]"


def clean_path(raw: str) -> str:
    """A vault-relative path for git: `/` separators, leading and trailing slashes ignored
    (as the vault tools do). Refuses `..`, `~`, drive letters and protected folders.
    """
    text = raw.replace("\\", "/").strip().strip("/")
    if not text or "\0" in text:
        raise ToolError(
            "Error: file_path is empty; give a vault-relative path such as Lists/Shopping.md."
        )
    if re.match(r"[A-Za-z]:", text) or text.startswith("~"):
        raise ToolError("Error: file_path must be relative to the vault (like Lists/Shopping.md).")
    parts = [p for p in text.split("/") if p not in ("", ".")]
    if any(p == ".." for p in parts):
        raise ToolError("Error: file_path must stay inside the vault (no '..').")
    if parts and parts[0].casefold() in _PROTECTED:
        raise ToolError(f"Error: {parts[0]}/ is protected and has no history to show.")
    return "/".join(parts)


def parse_when(raw: str, tz: tzinfo, *, end_of_day: bool) -> datetime:
    """An ISO date or date-time in the user's zone; a bare date covers the whole day."""
    text = raw.strip()
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            moment = datetime.combine(day, time.max if end_of_day else time.min)
            return moment.replace(tzinfo=tz)
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ToolError(
            f"Error: {raw!r} is not an ISO date; use YYYY-MM-DD or YYYY-MM-DDTHH:MM."
        ) from None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=tz)


def _entry_line(entry: LogEntry, tz: tzinfo, *, with_time: bool = False) -> str:
    local = entry.committed_at.astimezone(tz)
    stamp = f"{local:%Y-%m-%d %H:%M}" if with_time else f"{local:%Y-%m-%d}"
    return f"[{entry.short}] {stamp} -- {entry.subject}"


def _change_line(change: ChangedFile) -> str:
    if change.kind == "renamed" and change.old_path is not None:
        return f"renamed: {change.old_path} -> {change.path}"
    return f"{change.kind.replace('_', ' ')}: {change.path}"


def _resolve_history_path(git: GitVault, path: str) -> str:
    """`path` itself when history knows it; else a unique case-insensitive match in the
    vault (speech-to-text rarely gets capitals right), `.md` added when no extension."""
    if git.path_in_history(path):
        return path
    bare = "." not in path.rsplit("/", 1)[-1]
    candidates = [path, path + ".md"] if bare else [path]
    known = git.known_paths()
    for candidate in candidates:
        matches = [p for p in known if p.casefold() == candidate.casefold()]
        if len(matches) > 1:
            raise ToolError(f"Error: {path} matches several files: {', '.join(sorted(matches))}.")
        if matches:
            return matches[0]
    if bare and git.path_in_history(path + ".md"):
        return path + ".md"
    return path


def format_commit(details: CommitDetails, tz: tzinfo, zone_name: str) -> str:
    """`view_commit`'s answer: header, message, files, then each file's diff (cut)."""
    when = format_local_time(details.committed_at.astimezone(tz), zone_name)
    lines = [
        f"Commit {details.hash}",
        f"Author: {details.author_name} <{details.author_email}>",
        f"Date: {when}",
    ]
    if len(details.parents) > 1:
        lines.append(
            f"Merge of: {' '.join(p[:7] for p in details.parents)} (diff against the first)"
        )
    lines += ["", *("    " + line for line in details.message.splitlines()), ""]
    if not details.files:
        lines.append("No files changed.")
        return "\n".join(lines)
    lines.append(f"Files changed ({len(details.files)}):")
    lines += [f"- {_change_line(f.change)}" for f in details.files]
    for number, file in enumerate(details.files):
        if number == MAX_DIFF_FILES:
            lines.append(
                f"\n[diffs of {len(details.files) - MAX_DIFF_FILES} more files not shown; "
                "use view_file_history with include_diff for one of them]"
            )
            break
        lines += [
            "",
            f"--- {_change_line(file.change)} ---",
            truncate_diff(file.diff) or "(no diff)",
        ]
    return "\n".join(lines)


def search_git_history(git: GitVault, zone: ZoneFunction, args: SearchGitHistoryArgs) -> str:
    tz, _ = zone()
    query = (args.query or "").strip()
    if not query and not (args.file_path or "").strip():
        raise ToolError(
            "Error: give query (text to find in commit messages) or file_path, or both."
        )
    path = _resolve_history_path(git, clean_path(args.file_path)) if args.file_path else None
    since = parse_when(args.since, tz, end_of_day=False) if args.since else None
    until = parse_when(args.until, tz, end_of_day=True) if args.until else None
    if since is not None and until is not None and since > until:
        raise ToolError("Error: since is after until.")
    entries = git.log(
        max_count=args.max_results, grep=query or None, path=path, since=since, until=until
    )
    if not entries:
        what = " and ".join(
            part
            for part in (
                f'message text "{query}"' if query else "",
                f"file {path}" if path else "",
                "that date range" if since or until else "",
            )
            if part
        )
        return f"No commits match {what}."
    return "\n".join(_entry_line(e, tz) for e in entries)


def view_file_history(git: GitVault, zone: ZoneFunction, args: ViewFileHistoryArgs) -> str:
    tz, _ = zone()
    path = _resolve_history_path(git, clean_path(args.file_path))
    items = git.file_history(path, max_count=args.max_results)
    if not items:
        return f"No history for {path}: no commit changed it (check the path with list_files)."
    count = f"{len(items)} commit{'s' if len(items) != 1 else ''}"
    lines = [f"History of {path}, newest first ({count}, renames followed):"]
    for entry, change in items:
        line = _entry_line(entry, tz, with_time=True)
        if change.kind == "renamed" and change.old_path is not None:
            line += f" (renamed from {change.old_path})"
        elif change.kind != "modified":
            line += f" ({change.kind.replace('_', ' ')} as {change.path})"
        lines.append(line)
        if args.include_diff:
            lines += [truncate_diff(git.file_diff(entry.hash, change)) or "(no diff)", ""]
    return "\n".join(lines).rstrip("\n")


def view_commit(git: GitVault, zone: ZoneFunction, args: ViewCommitArgs) -> str:
    tz, zone_name = zone()
    name = args.commit_hash.strip()
    if not _HASH_INPUT.fullmatch(name) and name != "HEAD":
        raise ToolError(
            f"Error: {name!r} is not a commit hash; give the hex hash from "
            "search_git_history or view_file_history (7 or more characters)."
        )
    full = git.resolve_commit(name)
    if full is None:
        raise ToolError(f"Error: no commit {name} in the vault's history.")
    return format_commit(git.show(full), tz, zone_name)


def _threaded(
    function: Callable[[GitVault, ZoneFunction, ArgsT], str], git: GitVault, zone: ZoneFunction
) -> Callable[[ArgsT], Awaitable[str]]:
    """`function` bound to `git`, run off the event loop (git is a subprocess)."""

    async def run(args: ArgsT) -> str:
        try:
            return await asyncio.to_thread(function, git, zone, args)
        except GitError as exc:
            raise ToolError(f"Error: {exc}") from exc

    return run


def git_tools(git: GitVault, *, zone: ZoneFunction = local_zone) -> list[Tool]:
    """The three git history tools, reading `git`'s repository."""
    return [
        catalog.SEARCH_GIT_HISTORY.bind(_threaded(search_git_history, git, zone)),
        catalog.VIEW_FILE_HISTORY.bind(_threaded(view_file_history, git, zone)),
        catalog.VIEW_COMMIT.bind(_threaded(view_commit, git, zone)),
    ]


__all__ = [
    "GIT_TOOL_NAMES",
    "git_tools",
    "git_tools_if_enabled",
    "sync_git_tools",
]
