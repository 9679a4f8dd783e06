"""Versioning of each request's changes: a snapshot before, staging after, a commit behind.

Staging happens right after the request (so the next request's edits cannot leak into this
commit); the commit itself, with its Haiku-written message, is a side job.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from smarthole_notes.inbox import InboxMessage
from smarthole_notes.pipeline.access import ApiAccess
from smarthole_notes.pipeline.costs import SideCosts
from smarthole_notes.pipeline.hooks import Hooks, RequestFinished
from smarthole_notes.pipeline.jobs import SideJobs
from smarthole_notes.settings import Settings
from smarthole_notes.versioning import (
    GitError,
    GitVault,
    Snapshot,
    UndoResult,
    commit_request,
    stage_request,
    undo,
)
from smarthole_notes.versioning.commit_message import commit_message_provider

log = logging.getLogger("smarthole_notes.pipeline")


class RequestCommits:
    """The vault's repository while versioning is on, and the commit of each request."""

    def __init__(
        self,
        vault: Path,
        settings: Callable[[], Settings],
        access: ApiAccess,
        jobs: SideJobs,
        costs: SideCosts,
    ) -> None:
        self._vault = vault
        self._costs = costs
        self._settings = settings
        self._access = access
        self._jobs = jobs
        self._git: GitVault | None = None

    def subscribe(self, hooks: Hooks) -> None:
        hooks.on(RequestFinished, self._request_finished)

    async def _request_finished(self, event: RequestFinished) -> None:
        """Answered, or failed after changing notes: those changes are this request's."""
        run = event.run
        if run.error is None or run.changed_notes:
            await self.commit(event.before, run.message, run.conversation.id, run.tools_used)

    def git(self) -> GitVault | None:
        """The vault's repository while versioning is on, else None."""
        if not self._settings().enable_git_version_control:
            return None
        if self._git is None:
            self._git = GitVault(self._vault)
        return self._git

    async def versioning_changed(self) -> None:
        """Versioning was turned on (or the service starts with it on): make sure the vault
        is a repository. Turning it off needs nothing: the repository stays, and the next
        agent simply gets no git tools."""
        git = self.git()
        if git is None:
            return
        try:
            await asyncio.to_thread(git.ensure_repository)
        except (GitError, OSError) as exc:
            log.warning("Git versioning is on but the repository is not usable: %s", exc)

    async def undo(self, target: str) -> UndoResult:
        git = self.git()
        if git is None:
            return UndoResult(
                "failed", "Git versioning is off: turn it on in Settings to undo requests."
            )
        return await asyncio.to_thread(undo, git, target)

    async def snapshot_before(self) -> Snapshot | None:
        git = self.git()
        if git is None or not self._settings().auto_commit_after_processing:
            return None
        try:
            return await asyncio.to_thread(git.snapshot)
        except (GitError, OSError) as exc:
            log.warning("Git status before the request failed: %s", exc)
            return None

    async def commit(
        self,
        before: Snapshot | None,
        message: InboxMessage,
        conversation_id: str,
        tools_used: list[dict[str, Any]],
    ) -> None:
        """Stage now, commit in the background."""
        git = self.git()
        if git is None or not self._settings().auto_commit_after_processing:
            return
        staged = await stage_request(git, before)
        if staged is None:
            return
        client = self._access.current_client()
        llm = None
        if client is not None:  # the message's micro-agent, its cost kept with the conversation
            writer = commit_message_provider(client)
            llm = self._costs.metered(writer, "commit_message", conversation_id)
        self._jobs.start(
            commit_request(
                git,
                staged,
                llm=llm,
                request_text=message.text,
                conversation_id=conversation_id,
                message_id=message.id,
                tools_used=tools_used,
                user_changes_before=before,
            )
        )
