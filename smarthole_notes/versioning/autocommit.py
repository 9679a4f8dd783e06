"""Auto-commit: after a processed message changed files, commit them with a written message.

Two steps, so that the next request can start while Haiku writes this one's message:

1. `stage_request` (about 50 ms on a 10,000-note vault): stage everything and freeze it
   as a git tree. Await it in the pipeline's worker after the answer was reported and
   before the next message starts, so the next request's edits cannot leak into this
   commit.
2. `commit_request` (in the background): the micro-agent writes the message (deterministic
   fallback), then the frozen tree is committed. Commits land in staging order.

`auto_commit` does both in one call, for callers that need no overlap.

"mixed": the pipeline takes `git.snapshot()` right before the agent runs (the user's own
uncommitted changes and their content). At commit time a snapshot file whose content is
unchanged was the user's alone (`Smarthole-User-File`); one changed again was edited by
both (`Smarthole-Shared-File`); either makes the source `mixed`. A request whose only
changes are the user's own makes no commit: they wait for the next one that changes files.

Nothing here raises for a git or LLM failure (logged; the user's request is already
answered); cancellation is let through.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from smarthole_notes.versioning.commit_message import (
    LLM,
    CommitContext,
    Source,
    tool_names,
    write_commit_message,
)
from smarthole_notes.versioning.repo import (
    ChangedFile,
    GitError,
    GitLockedError,
    GitVault,
    Snapshot,
    StagedTree,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Attribution:
    """Whose changes a staged tree holds."""

    source: Source
    agent_changes: tuple[ChangedFile, ...]
    user_files: tuple[str, ...]
    shared_files: tuple[str, ...]


def attribute(staged: StagedTree, snapshot: Snapshot | None) -> Attribution:
    """Split a staged tree's changes into the agent's and the user's (see the module doc)."""
    if not snapshot:
        return Attribution("agent", staged.changes, (), ())
    touched = {c.path for c in staged.changes} | {
        c.old_path for c in staged.changes if c.old_path is not None
    }
    user: list[str] = []
    shared: list[str] = []
    for path, before in snapshot.files.items():
        if path not in touched:
            continue
        (user if staged.blobs.get(path) == before else shared).append(path)
    user_only = set(user)
    agent = tuple(
        c
        for c in staged.changes
        if c.path not in user_only and (c.old_path is None or c.old_path not in user_only)
    )
    source: Source = "mixed" if user or shared else "agent"
    return Attribution(source, agent, tuple(sorted(user)), tuple(sorted(shared)))


async def stage_request(git: GitVault, snapshot: Snapshot | None = None) -> StagedTree | None:
    """Step 1: freeze the working tree as a staged tree; None when nothing changed or git
    failed (a held `index.lock` is retried, then skipped with a log line)."""
    try:
        return await asyncio.to_thread(git.stage, snapshot)
    except GitLockedError as exc:
        log.warning("Auto-commit skipped: %s The changes will be in the next commit.", exc)
    except GitError as exc:
        log.warning("Auto-commit skipped: %s", exc)
    except OSError as exc:
        log.warning("Auto-commit skipped: %s", exc)
    return None


async def commit_request(
    git: GitVault,
    staged: StagedTree,
    *,
    llm: LLM,
    request_text: str,
    conversation_id: str,
    message_id: str,
    tools_used: Iterable[Mapping[str, Any] | Any],
    user_changes_before: Snapshot | None = None,
) -> str | None:
    """Step 2: write the message and commit the staged tree; the hash, or None if no commit."""
    committed = False
    try:
        attribution = attribute(staged, user_changes_before)
        if not attribution.agent_changes:
            log.info("Message %s changed no files of its own; nothing committed", message_id)
            return None
        context = CommitContext(
            request_text=request_text,
            conversation_id=conversation_id,
            message_id=message_id,
            tools_used=tool_names(tools_used),
            changes=attribution.agent_changes,
            source=attribution.source,
            user_files=attribution.user_files,
            shared_files=attribution.shared_files,
        )
        message, by_agent = await write_commit_message(llm, context)
        if attribution.user_files:
            message = _with_user_files_note(message, attribution.user_files)
        committed = True
        commit = await asyncio.to_thread(git.commit_staged, staged, message)
        if commit is not None:
            log.info(
                "Committed %s for message %s (%s, message by %s)",
                commit[:7],
                message_id,
                attribution.source,
                "the micro-agent" if by_agent else "the fallback",
            )
        return commit
    except GitLockedError as exc:
        log.warning("Auto-commit skipped: %s The changes will be in the next commit.", exc)
    except GitError as exc:
        log.warning("Auto-commit of message %s failed: %s", message_id, exc)
    except OSError as exc:
        log.warning("Auto-commit of message %s failed: %s", message_id, exc)
    finally:
        if not committed:
            await asyncio.shield(asyncio.to_thread(git.give_up, staged))
    return None


def _with_user_files_note(message: str, user_files: tuple[str, ...]) -> str:
    """Say in the body that the user's own edits ride along (before the trailer block)."""
    body, sep, trailer_block = message.rstrip("\n").rpartition("\n\n")
    if not sep:
        return message
    n = len(user_files)
    note = f"Also includes your own edits to {n} file{'s' if n != 1 else ''} made outside smarthole-notes."
    return f"{body}\n\n{note}\n\n{trailer_block}\n"


async def auto_commit(
    git: GitVault,
    *,
    llm: LLM,
    request_text: str,
    conversation_id: str,
    message_id: str,
    tools_used: Iterable[Mapping[str, Any] | Any],
    user_changes_before: Snapshot | None = None,
) -> str | None:
    """The whole auto-commit step: stage, write the message (Haiku, or the fallback), commit.

    `llm` is the Anthropic client (a non-streaming `claude-haiku-4-5` provider is made from
    it) or a non-streaming provider; None goes straight to the deterministic message.
    Returns the commit's hash, or None when nothing was committed. Never raises for git or
    LLM failures.
    """
    staged = await stage_request(git, user_changes_before)
    if staged is None:
        return None
    return await commit_request(
        git,
        staged,
        llm=llm,
        request_text=request_text,
        conversation_id=conversation_id,
        message_id=message_id,
        tools_used=tools_used,
        user_changes_before=user_changes_before,
    )
