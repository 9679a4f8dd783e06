"""The MCP server over one vault: the agent's tools, committed and shown like the agent's.

Tools are taken generically from the registry (name, description, input JSON schema, and
an async run that returns text and whether it failed), so the tools' own modules stay the
single source of their schemas and wording: an MCP client sees exactly what the agent sees.
A tool failure comes back as a result with `isError: true` and the agent's `Error: ...`
text; nothing a client sends can make the server raise.

A writing call is one "request": the git state is snapshotted before it, and afterwards
its changes are staged at once (so the next call's edits cannot leak in) and committed in
the background with a message written as for the agent (Haiku with an API key, the
deterministic writer without), source `mcp` and the client's name in a trailer.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import mcp_types as types
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel.server import Server

from smarthole_notes import __version__
from smarthole_notes.conversations.store import ToolUse, summarise_tool_input
from smarthole_notes.mcp.names import MCP_SOURCE, MESSAGE_ID_PREFIX, Publish
from smarthole_notes.settings import Settings
from smarthole_notes.tools.base import Tool, ToolError, ToolInput, ToolOutcome, ToolRegistry
from smarthole_notes.tools.git import git_tools
from smarthole_notes.tools.vault import vault_tools
from smarthole_notes.vault import Vault
from smarthole_notes.versioning import (
    LAST,
    GitError,
    GitLockedError,
    GitVault,
    Snapshot,
    StagedTree,
    UndoResult,
    undo,
)
from smarthole_notes.versioning.autocommit import attribute
from smarthole_notes.versioning.commit_message import LLM, CommitContext, write_commit_message

log = logging.getLogger(__name__)

CLIENT_KEY: Final = "Smarthole-Client"
"""Trailer naming the MCP client (its `clientInfo.name`) that made the change."""
SERVER_NAME: Final = "smarthole-notes"

INSTRUCTIONS: Final = (
    "Tools for the user's Markdown notes vault (Obsidian). Paths are relative to the vault "
    "root; letter case need not match. Deleted notes go to the vault's .trash folder; moves "
    "update the links to what moved. With git versioning on, every change is committed and "
    "`undo` reverts the last change (or the one with a given id)."
)


def _hints(
    read_only: bool, destructive: bool, idempotent: bool, open_world: bool = False
) -> types.ToolAnnotations:
    if read_only:
        return types.ToolAnnotations(read_only_hint=True, open_world_hint=open_world)
    return types.ToolAnnotations(
        read_only_hint=False,
        destructive_hint=destructive,
        idempotent_hint=idempotent,
        open_world_hint=open_world,
    )


def annotations_for(tool: Tool) -> types.ToolAnnotations:
    """MCP's hints from the tool's own declaration (tools/catalog.py); a tool declared without
    them (`undo`) is taken to write, destructively, and not to be idempotent."""
    own = tool.annotations
    return _hints(own.read_only, own.destructive, own.idempotent, own.open_world)


UNDO_DESCRIPTION: Final = (
    "Undo one change to the vault by reverting its git commit, as a new commit (history is "
    "never rewritten). target: 'last' (default) undoes the newest change not undone yet, "
    "whoever made it (a client over MCP or the smarthole-notes agent); calling it again "
    "undoes the one before. Or give a change's id (the Smarthole-Message-Id trailer shown by "
    "view_commit). Refused, naming the files, when later edits touched the same lines. "
    "Available while git versioning is on."
)
UNDO_SCHEMA: Final[dict[str, Any]] = {
    "type": "object",
    "properties": {
        "target": {
            "type": "string",
            "description": "'last' (default) or the id of the change to undo",
        }
    },
    "required": [],
    "additionalProperties": False,
}


UndoRunner = Callable[[GitVault, str], Awaitable[UndoResult]]


async def _undo_in_thread(git: GitVault, target: str) -> UndoResult:
    return await asyncio.to_thread(undo, git, target)


@dataclass(frozen=True, slots=True)
class CallRecord:
    """One tool call as committed and shown: who made it, which tool, with what."""

    message_id: str
    client: str
    name: str
    arguments: dict[str, Any]


class McpVaultService:
    """One vault's tools for MCP clients, shared by every session of one server.

    `settings` is read at each call, so turning git versioning on or off (in the chat page,
    or settings.toml) takes effect without a restart. `git` gives the repository to use
    while versioning is on: `serve` passes its pipeline's, so agent and MCP commits share
    one lock and one order.
    """

    def __init__(
        self,
        vault: Path | Vault,
        *,
        settings: Callable[[], Settings],
        git: Callable[[], GitVault | None] | None = None,
        llm: Callable[[], LLM] = lambda: None,
        publish: Publish | None = None,
        undo_runner: UndoRunner = _undo_in_thread,
    ) -> None:
        self.vault = vault if isinstance(vault, Vault) else Vault(vault)
        self.root = self.vault.root
        self._settings = settings
        self._git = git if git is not None else self._own_git
        self._own: GitVault | None = None
        self._llm = llm
        self._publish = publish
        self._undo_runner = undo_runner
        self._registry: tuple[GitVault | None, ToolRegistry] | None = None
        self._write_lock = asyncio.Lock()
        self._background: set[asyncio.Task[None]] = set()

    # ------------------------------------------------------------------ tools

    def _own_git(self) -> GitVault | None:
        if not self._settings().enable_git_version_control:
            return None
        if self._own is None:
            self._own = GitVault(self.root)
        return self._own

    def current_git(self) -> GitVault | None:
        return self._git()

    def registry(self) -> ToolRegistry:
        """The tools on offer now: the vault's, plus git history and undo while git is on."""
        git = self._git()
        if self._registry is not None and self._registry[0] is git:
            return self._registry[1]
        tools: list[Tool] = list(vault_tools(self.vault))
        if git is not None:
            tools += git_tools(git)
            tools.append(self._undo_tool(git))
        registry = ToolRegistry(tools)
        self._registry = (git, registry)
        return registry

    def _undo_tool(self, git: GitVault) -> Tool:
        async def run(tool_input: ToolInput) -> str:
            target = str(tool_input.get("target") or LAST).strip() or LAST
            result = await self._undo_runner(git, target)
            if not result.ok:
                raise ToolError(result.message)
            return result.message

        return Tool("undo", UNDO_DESCRIPTION, UNDO_SCHEMA, run)

    def list_tools(self) -> list[types.Tool]:
        return [
            types.Tool(
                name=tool.name,
                description=tool.description,
                input_schema=tool.input_schema,
                annotations=annotations_for(tool),
            )
            for tool in self.registry()
        ]

    # ------------------------------------------------------------------ calls

    async def call(self, name: str, arguments: dict[str, Any] | None, client: str) -> ToolOutcome:
        """Run one tool call for `client`; never raises except for cancellation."""
        registry = self.registry()
        args: dict[str, Any] = dict(arguments or {})
        tool = registry.get(name)
        if tool is None or annotations_for(tool).read_only_hint:
            return await registry.run(name, args)
        record = CallRecord(f"{MESSAGE_ID_PREFIX}{uuid.uuid4().hex[:16]}", client, name, args)
        # One writing call at a time per server: each commit holds exactly its call's changes.
        async with self._write_lock:
            self._announce_start(record)
            git = self._git() if name != "undo" else None
            auto = git is not None and self._settings().auto_commit_after_processing
            before = await self._snapshot(git) if auto and git is not None else None
            outcome = await registry.run(name, args)
            staged = await self._stage(git, before) if auto and git is not None else None
        self._announce_end(record, outcome)
        if staged is not None and git is not None:
            self._in_background(self._commit(git, staged, before, record))
        return outcome

    async def _snapshot(self, git: GitVault) -> Snapshot | None:
        try:
            return await asyncio.to_thread(git.snapshot)
        except (GitError, OSError) as exc:
            log.warning("Git status before an MCP call failed: %s", exc)
            return None

    async def _stage(self, git: GitVault, before: Snapshot | None) -> StagedTree | None:
        try:
            return await asyncio.to_thread(git.stage, before)
        except GitLockedError as exc:
            log.warning("Commit skipped: %s The changes will be in the next commit.", exc)
        except (GitError, OSError) as exc:
            log.warning("Commit skipped: %s", exc)
        return None

    async def _commit(
        self, git: GitVault, staged: StagedTree, before: Snapshot | None, record: CallRecord
    ) -> None:
        """Write the message (Haiku or the deterministic writer) and commit, like the agent's."""
        committed = False
        try:
            who = attribute(staged, before)
            if not who.agent_changes:
                return
            context = CommitContext(
                request_text=f"{record.client} over MCP: {record.name}"
                f"({summarise_tool_input(record.arguments)})",
                conversation_id="",
                message_id=record.message_id,
                tools_used=(record.name,),
                changes=who.agent_changes,
                source=MCP_SOURCE if who.source == "agent" else who.source,
                user_files=who.user_files,
                shared_files=who.shared_files,
                extra_trailers=((CLIENT_KEY, record.client),),
            )
            message, _ = await write_commit_message(self._llm(), context)
            committed = True
            commit = await asyncio.to_thread(git.commit_staged, staged, message)
            if commit is not None:
                log.info("Committed %s for %s from %s", commit[:7], record.name, record.client)
        except GitLockedError as exc:
            log.warning("Commit skipped: %s The changes will be in the next commit.", exc)
        except (GitError, OSError) as exc:
            log.warning("Commit of an MCP change failed: %s", exc)
        finally:
            if not committed:
                await asyncio.shield(asyncio.to_thread(git.give_up, staged))

    def _in_background(self, job: Coroutine[Any, Any, None]) -> None:
        async def guarded() -> None:
            try:
                await job
            except Exception:
                log.exception("An MCP background job failed")

        task = asyncio.create_task(guarded())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def drain(self, limit: float = 60.0) -> None:
        """Wait for the commits still being written (before the process exits)."""
        if self._background:
            await asyncio.wait(set(self._background), timeout=limit)

    # ------------------------------------------------------------------ the live view

    def _emit(self, event_type: str, record: CallRecord, **fields: Any) -> None:
        if self._publish is None:
            return
        try:
            self._publish(
                event_type,
                message_id=record.message_id,
                source=MCP_SOURCE,
                client=record.client,
                **fields,
            )
        except Exception:  # the live view must never fail a call
            log.exception("Could not publish an MCP event")

    def _announce_start(self, record: CallRecord) -> None:
        self._emit(
            "tool_started",
            record,
            tool=record.name,
            input=summarise_tool_input(record.arguments),
        )

    def _announce_end(self, record: CallRecord, outcome: ToolOutcome) -> None:
        summary = _first_line(outcome.content)
        self._emit(
            "tool_finished", record, tool=record.name, is_error=outcome.is_error, summary=summary
        )
        use = ToolUse(
            record.name, summarise_tool_input(record.arguments), outcome.is_error, summary
        )
        self._emit(
            "response",
            record,
            text=f"*{_plain(record.client)}, over MCP:* {summary}",
            tools_used=[dataclasses.asdict(use)],
        )


def _first_line(text: str, limit: int = 200) -> str:
    stripped = text.strip()
    first = stripped.splitlines()[0] if stripped else ""
    return first if len(first) <= limit else first[: limit - 1] + "…"


def _plain(name: str) -> str:
    """A client's self-chosen name, safe inside Markdown emphasis on the chat page."""
    cleaned = "".join(c for c in name if c.isalnum() or c in " .-_()/")
    return cleaned.strip()[:60] or "An MCP client"


def client_name(ctx: ServerRequestContext[Any, Any]) -> str:
    """The client's name from its initialize request (`clientInfo.name`), else a placeholder."""
    params = ctx.session.client_params
    info = params.client_info if params is not None else None
    name = " ".join((info.name if info is not None else "").split())
    return name[:100] or "unknown MCP client"


def build_server(service: McpVaultService) -> Server[Any]:
    """An MCP server (the SDK's low-level `Server`) offering `service`'s tools."""

    async def on_list_tools(
        ctx: ServerRequestContext[Any, Any], params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        return types.ListToolsResult(tools=await asyncio.to_thread(service.list_tools))

    async def on_call_tool(
        ctx: ServerRequestContext[Any, Any], params: types.CallToolRequestParams
    ) -> types.CallToolResult:
        outcome = await service.call(params.name, params.arguments, client_name(ctx))
        return types.CallToolResult(
            content=[types.TextContent(text=outcome.content)], is_error=outcome.is_error
        )

    return Server(
        SERVER_NAME,
        version=__version__,
        instructions=INSTRUCTIONS,
        on_list_tools=on_list_tools,
        on_call_tool=on_call_tool,
    )
