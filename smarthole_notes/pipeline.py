"""The life of a message: inbox, ack, queue, agent, report, history, clean-up, side jobs.

Every message, from SmartHole or the chat page, goes through `Pipeline.submit`, which
writes it durably to the inbox and queues it; one worker processes the queue in arrival
order, so two requests never edit the vault at once. A message leaves the inbox only
after its answer was reported and recorded; a crash at any point leaves it there, and the
next start processes it again, telling the agent it is a retry.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

import anthropic

from smarthole_notes.agent import build_agent, client_for
from smarthole_notes.bus import EventBus
from smarthole_notes.conversations.context import build_context
from smarthole_notes.conversations.store import (
    Conversation,
    ConversationStore,
    InputMethod,
    summarise_tool_input,
    tool_uses_from_calls,
)
from smarthole_notes.conversations.summary import summarise
from smarthole_notes.credentials import ApiKey, resolve_api_key
from smarthole_notes.inbox import Inbox, InboxMessage
from smarthole_notes.llm.anthropic_provider import AnthropicProvider
from smarthole_notes.llm.errors import ErrorCode, LLMError
from smarthole_notes.llm.events import (
    AgentEvent,
    StreamRestarted,
    TextDelta,
    ToolFinished,
    ToolStarted,
)
from smarthole_notes.llm.prompt import local_zone
from smarthole_notes.llm.service import AgentResult, AgentService
from smarthole_notes.llm.state import ConversationState
from smarthole_notes.retrospection import retrospect_ended_conversation
from smarthole_notes.settings import Settings
from smarthole_notes.tools.conversation import Notifier, TurnContext, conversation_tools, trim
from smarthole_notes.tools.git import git_tools
from smarthole_notes.versioning import (
    GitError,
    GitVault,
    Snapshot,
    UndoResult,
    commit_request,
    stage_request,
    undo,
)

log = logging.getLogger(__name__)

RETRY_NOTE = (
    "[Note from the service: this request was interrupted earlier (the service stopped while "
    "working on it) and is being run again. Check the vault for changes already made before "
    "redoing anything.]"
)
NO_KEY_NOTICE = (
    "smarthole-notes needs an Anthropic API key. Your message is kept and will be processed "
    "once a key is set (ANTHROPIC_API_KEY, or Settings in the chat page)."
)
KEY_POLL_SECONDS = 10.0
STATE_SWEEP_SECONDS = 15 * 60
WRITING_TOOLS = frozenset({"write_file", "edit_file", "move_file", "delete_file", "create_folder"})

_FAILURE_MESSAGES: dict[ErrorCode, str] = {
    ErrorCode.AUTH_ERROR: "The Anthropic API key is missing or invalid: set it in Settings. "
    "Your message is kept.",
    ErrorCode.OVERLOADED: "Anthropic is overloaded right now; your message is kept and will "
    "be processed again later.",
    ErrorCode.RATE_LIMIT: "Anthropic's rate limit was reached; your message is kept and will "
    "be processed again later.",
    ErrorCode.SERVER_ERROR: "Anthropic had a server error; your message is kept and will be "
    "processed again later.",
    ErrorCode.NETWORK_ERROR: "Could not reach Anthropic; your message is kept and will be "
    "processed again later.",
}


def failure_message(error: LLMError) -> str:
    """The short, specific line a user gets when their message could not be processed."""
    return _FAILURE_MESSAGES.get(
        error.code, f"{error.user_message}. Your message is kept in the inbox."
    )


def utc_now() -> datetime:
    return datetime.now(UTC)


class Messenger(Notifier, Protocol):
    """SmartHole responses the pipeline sends (the SmartHole client implements this)."""

    async def send_ack(self, message_id: str) -> bool: ...


@dataclass(frozen=True, slots=True)
class Outcome:
    """How processing one message ended (for tests, `inbox process` and logs)."""

    message_id: str
    status: str  # "answered", "failed", "cancelled", "interrupted", "no_key", "duplicate"
    text: str = ""


class Pipeline:
    """One queue, one worker, one message at a time."""

    def __init__(
        self,
        vault: Path,
        *,
        settings: Callable[[], Settings],
        inbox: Inbox,
        store: ConversationStore,
        bus: EventBus,
        messenger: Messenger | None = None,
        api_key: Callable[[], ApiKey | None] = resolve_api_key,
        clock: Callable[[], datetime] = utc_now,
        make_client: Callable[[ApiKey], anthropic.AsyncAnthropic] = client_for,
    ) -> None:
        self.vault = vault
        self.inbox = inbox
        self.store = store
        self.bus = bus
        self.messenger = messenger
        self._settings = settings
        self._api_key = api_key
        self._clock = clock
        self._make_client = make_client
        self._clients: dict[str, anthropic.AsyncAnthropic] = {}
        self._queue: asyncio.Queue[str] = asyncio.Queue()
        self._queued: set[str] = set()
        self._waiting_for_key: list[str] = []
        self._side_jobs: set[asyncio.Task[None]] = set()
        self._worker: asyncio.Task[None] | None = None
        self._background: list[asyncio.Task[None]] = []
        self._current: AgentService | None = None
        self._git: GitVault | None = None
        self._work_lock = asyncio.Lock()
        self._current_id: str | None = None
        self._stopping = False
        self._idle = asyncio.Event()
        self._idle.set()
        self._between_messages = asyncio.Event()
        self._between_messages.set()
        self.outcomes: list[Outcome] = []
        self.on_outcome: Callable[[Outcome], Awaitable[None] | None] | None = None

    # ------------------------------------------------------------------ intake

    async def submit(self, message: InboxMessage) -> bool:
        """Step 1: store durably, then queue. False if the id was already seen (not re-run)."""
        if self._stopping:
            raise RuntimeError("the pipeline is shutting down")
        stored = await asyncio.to_thread(self.inbox.put, message)
        if not stored:
            log.info("Message %s is already in the inbox; not queued twice", message.id)
            return False
        if await asyncio.to_thread(self.store.is_processed, message.id):
            await asyncio.to_thread(self.inbox.remove, message.id)
            log.info("Message %s was already processed; ignored", message.id)
            return False
        self.bus.publish(
            "message_received",
            message_id=message.id,
            text=message.text,
            source=message.source,
            input_method=message.metadata.get("inputMethod", "typed"),
            timestamp=message.timestamp,
        )
        self._enqueue(message.id)
        return True

    def _enqueue(self, message_id: str) -> None:
        if message_id in self._queued or message_id == self._current_id:
            return
        self._queued.add(message_id)
        self._idle.clear()
        self._queue.put_nowait(message_id)
        self.bus.publish("queued", message_id=message_id, position=self._queue.qsize())

    async def start(self) -> None:
        """Recover what a previous run left in the inbox (oldest first), then start working."""
        await asyncio.to_thread(self._drop_stale_states)
        await self.versioning_changed()
        for message in await asyncio.to_thread(self.inbox.pending):
            if await asyncio.to_thread(self.store.is_processed, message.id):
                await asyncio.to_thread(self.inbox.remove, message.id)
                continue
            self._enqueue(message.id)
        self._worker = asyncio.create_task(self._work(), name="pipeline-worker")
        self._background.append(asyncio.create_task(self._poll_for_key(), name="key-poll"))
        self._background.append(asyncio.create_task(self._sweep_states(), name="state-sweep"))

    async def reprocess(self, message_id: str) -> bool:
        """Queue an inbox message again on demand ("process again")."""
        if message_id not in self.inbox:
            return False
        self._enqueue(message_id)
        return True

    def cancel_current(self) -> bool:
        """Stop the message being processed now (the user pressed Stop)."""
        if self._current is None:
            return False
        self._current.abort()
        return True

    async def wait_idle(self) -> None:
        """Until the queue is empty and nothing is being processed (messages waiting for a key
        do not count)."""
        await self._idle.wait()

    async def stop(self, grace: float = 10.0) -> None:
        """Stop taking messages; let the current one finish within `grace`, else cancel it
        (it stays in the inbox and runs again at the next start)."""
        self._stopping = True
        for task in self._background:
            task.cancel()
        if self._current_id is not None:
            try:
                await asyncio.wait_for(self._between_messages.wait(), grace)
            except TimeoutError:
                log.warning("Cancelling the current message to shut down; it stays in the inbox")
                if self._current is not None:
                    self._current.abort()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._between_messages.wait(), 5.0)
        if self._worker is not None:
            self._worker.cancel()
            await asyncio.gather(self._worker, return_exceptions=True)
        await asyncio.gather(*self._background, return_exceptions=True)
        if self._side_jobs:
            await asyncio.wait(self._side_jobs, timeout=grace)
        for client in self._clients.values():
            await client.close()

    # ------------------------------------------------------------------ git versioning

    def git(self) -> GitVault | None:
        """The vault's repository while versioning is on, else None."""
        if not self._settings().enable_git_version_control:
            return None
        if self._git is None:
            self._git = GitVault(self.vault)
        return self._git

    async def versioning_changed(self) -> None:
        """Versioning was turned on (or the service starts with it on): make sure the
        vault is a repository. Turning it off needs nothing: the repository stays, and the
        next agent simply gets no git tools."""
        git = self.git()
        if git is None:
            return
        try:
            await asyncio.to_thread(git.ensure_repository)
        except (GitError, OSError) as exc:
            log.warning("Git versioning is on but the repository is not usable: %s", exc)

    async def undo(self, target: str) -> UndoResult:
        """Undo one processed request ("last" or its message id), between messages only."""
        git = self.git()
        if git is None:
            return UndoResult(
                "failed", "Git versioning is off: turn it on in Settings to undo requests."
            )
        async with self._work_lock:
            return await asyncio.to_thread(undo, git, target)

    async def _snapshot_before(self, git: GitVault | None, settings: Settings) -> Snapshot | None:
        if git is None or not settings.auto_commit_after_processing:
            return None
        try:
            return await asyncio.to_thread(git.snapshot)
        except (GitError, OSError) as exc:
            log.warning("Git status before the request failed: %s", exc)
            return None

    async def _commit(
        self,
        git: GitVault | None,
        before: Snapshot | None,
        message: InboxMessage,
        conversation_id: str,
        tools_used: list[dict[str, Any]],
        settings: Settings,
    ) -> None:
        """Stage now (so the next request's edits cannot leak in), commit in the background."""
        if git is None or not settings.auto_commit_after_processing:
            return
        staged = await stage_request(git, before)
        if staged is None:
            return
        key = self._api_key()
        self._side_job(
            commit_request(
                git,
                staged,
                llm=self._client(key) if key is not None else None,
                request_text=message.text,
                conversation_id=conversation_id,
                message_id=message.id,
                tools_used=tools_used,
                user_changes_before=before,
            )
        )

    # ------------------------------------------------------------------ the worker

    async def _work(self) -> None:
        while True:
            message_id = await self._queue.get()
            self._queued.discard(message_id)
            self._current_id = message_id
            self._between_messages.clear()
            try:
                async with self._work_lock:
                    outcome = await self._process(message_id)
            except Exception:
                log.exception(
                    "Processing message %s failed unexpectedly; it stays in the inbox", message_id
                )
                self.bus.publish(
                    "error",
                    message_id=message_id,
                    message="Something went wrong processing your message; it is kept in the inbox.",
                )
                outcome = Outcome(message_id, "failed")
            finally:
                self._current = None
                self._current_id = None
                self._between_messages.set()
                if self._queue.empty():
                    self._idle.set()
            self.outcomes.append(outcome)
            if self.on_outcome is not None:
                result = self.on_outcome(outcome)
                if result is not None:
                    await result

    async def _process(self, message_id: str) -> Outcome:
        message = await asyncio.to_thread(self.inbox.get, message_id)
        if message is None:
            return Outcome(message_id, "duplicate")
        if await asyncio.to_thread(self.store.is_processed, message_id):
            await asyncio.to_thread(self.inbox.remove, message_id)
            return Outcome(message_id, "duplicate")
        key = self._api_key()
        if key is None:
            return await self._no_key(message)
        started = await asyncio.to_thread(self.inbox.mark_started, message_id)
        if started is None:
            return Outcome(message_id, "duplicate")
        message = started
        settings = self._settings()
        zone, zone_name = local_zone()
        now = self._clock()
        idle = timedelta(minutes=settings.conversation_idle_timeout_minutes)
        active, ended = await asyncio.to_thread(self.store.begin_message, now, idle)
        if ended is not None:
            self._side_job(self._after_conversation_ended(ended, settings))
        context = await asyncio.to_thread(build_context, self.store, active, zone, zone_name)
        state = await asyncio.to_thread(self.store.load_state, active.id) or ConversationState()
        if not await asyncio.to_thread(self.store.has_user_message, message_id):
            await asyncio.to_thread(
                self.store.add_message,
                active.id,
                "user",
                message.text,
                source=message.source,
                input_method=_input_method(message),
                message_id=message_id,
                at=now,
            )
        turn = TurnContext(message, active.id, state)
        git = self.git()
        tools = conversation_tools(turn, bus=self.bus, store=self.store, notifier=self.messenger)
        if git is not None:
            tools += git_tools(git)
        agent = build_agent(
            self.vault,
            settings,
            self._client(key),
            extra_tools=tools,
            conversation_context=lambda: context,
        )
        agent.state = state
        self._current = agent
        text = f"{RETRY_NOTE}\n\n{message.text}" if message.attempts > 1 else message.text
        before = await self._snapshot_before(git, settings)
        try:
            result = await agent.process(text, on_event=self._forward(message_id))
        except LLMError as error:
            return await self._failed(message, error)
        if result.aborted:
            return await self._cancelled(message)
        outcome = await self._answered(message, active, turn, result, settings)
        tools_used = [dataclasses.asdict(t) for t in tool_uses_from_calls(result.tools_used)]
        await self._commit(git, before, message, active.id, tools_used, settings)
        return outcome

    async def _answered(
        self,
        message: InboxMessage,
        conversation: Conversation,
        turn: TurnContext,
        result: AgentResult,
        settings: Settings,
    ) -> Outcome:
        answer = result.text.strip() or "Done."
        tools_used = tool_uses_from_calls(result.tools_used)
        # Step 5: report.
        self.bus.publish(
            "response",
            message_id=message.id,
            text=answer,
            tools_used=[dataclasses.asdict(t) for t in tools_used],
        )
        if message.source == "smarthole" and self.messenger is not None:
            await self.messenger.send_notification(
                message.id, _title_for(result), trim(answer), "normal"
            )
        # Step 6: history (and the conversation state).
        if not turn.asked_question:
            turn.state.answered()
        now = self._clock()
        await asyncio.to_thread(
            self.store.add_message,
            conversation.id,
            "assistant",
            answer,
            source=message.source,
            reply_to=message.id,
            tools_used=tools_used,
            at=now,
        )
        await asyncio.to_thread(self.store.save_state, conversation.id, turn.state, now)
        # Step 7: clean-up, only now.
        await asyncio.to_thread(self.inbox.remove, message.id)
        # Step 8: side jobs.
        if turn.end_reason is not None:
            ended = await asyncio.to_thread(
                self.store.end_conversation, conversation.id, "explicit", now
            )
            self._side_job(self._after_conversation_ended(ended, settings))
        await asyncio.to_thread(self.store.enforce_retention, settings.max_conversations_retained)
        return Outcome(message.id, "answered", answer)

    async def _failed(self, message: InboxMessage, error: LLMError) -> Outcome:
        text = failure_message(error)
        log.warning("Message %s failed: %s (%s)", message.id, error.code, error.detail)
        await asyncio.to_thread(
            self.inbox.update, message.id, last_error=f"{error.code}: {error.detail}"
        )
        self.bus.publish("error", message_id=message.id, message=text, code=str(error.code))
        if message.source == "smarthole" and self.messenger is not None:
            await self.messenger.send_notification(message.id, "Not done", text, "high")
        return Outcome(message.id, "failed", text)

    async def _cancelled(self, message: InboxMessage) -> Outcome:
        if self._stopping:
            log.info("Message %s was interrupted by shutdown; it stays in the inbox", message.id)
            return Outcome(message.id, "interrupted")
        await asyncio.to_thread(self.inbox.remove, message.id)
        self.bus.publish("cancelled", message_id=message.id)
        return Outcome(message.id, "cancelled")

    async def _no_key(self, message: InboxMessage) -> Outcome:
        if message.id not in self._waiting_for_key:
            self._waiting_for_key.append(message.id)
            log.warning("No Anthropic API key: message %s waits in the inbox", message.id)
            self.bus.publish(
                "error", message_id=message.id, message=NO_KEY_NOTICE, code="no_api_key"
            )
            if message.source == "smarthole" and self.messenger is not None:
                await self.messenger.send_notification(
                    message.id, "API key needed", NO_KEY_NOTICE, "high"
                )
        return Outcome(message.id, "no_key")

    def key_configured(self) -> None:
        """A key was just set: process the messages that waited for one, in order."""
        waiting, self._waiting_for_key = self._waiting_for_key, []
        for message_id in waiting:
            self._enqueue(message_id)

    async def _poll_for_key(self) -> None:
        while True:
            await asyncio.sleep(KEY_POLL_SECONDS)
            if self._waiting_for_key and self._api_key() is not None:
                self.key_configured()

    # ------------------------------------------------------------------ helpers

    def _client(self, key: ApiKey) -> anthropic.AsyncAnthropic:
        client = self._clients.get(key.source)
        if client is None or getattr(client, "api_key", None) != key.reveal():
            client = self._clients[key.source] = self._make_client(key)
        return client

    def _forward(self, message_id: str) -> Callable[[AgentEvent], None]:
        def forward(event: AgentEvent) -> None:
            if isinstance(event, TextDelta):
                self.bus.publish("text_delta", message_id=message_id, text=event.text)
            elif isinstance(event, ToolStarted):
                self.bus.publish(
                    "tool_started",
                    message_id=message_id,
                    tool=event.name,
                    input=summarise_tool_input(event.input),
                )
            elif isinstance(event, ToolFinished):
                self.bus.publish(
                    "tool_finished",
                    message_id=message_id,
                    tool=event.name,
                    is_error=event.is_error,
                    summary=event.summary,
                )
            elif isinstance(event, StreamRestarted):
                self.bus.publish("stream_restarted", message_id=message_id)

        return forward

    def _side_job(self, job: Coroutine[Any, Any, object]) -> None:
        """Background work that never delays an answer; failures are logged only."""

        async def guarded() -> None:
            try:
                await job
            except Exception:
                log.exception("A background job failed")

        task = asyncio.create_task(guarded())
        self._side_jobs.add(task)
        task.add_done_callback(self._side_jobs.discard)

    async def _after_conversation_ended(
        self, conversation: Conversation, settings: Settings
    ) -> None:
        """Title and summary (a failure leaves it untitled), then retrospection if it is on."""
        key = self._api_key()
        if key is None:
            return
        messages = await asyncio.to_thread(self.store.messages, conversation.id)
        if not messages:
            return
        provider = AnthropicProvider(self._client(key), settings.model, streaming=False)
        try:
            title, summary = await summarise(provider, messages)
            conversation = await asyncio.to_thread(
                self.store.set_summary, conversation.id, title, summary
            )
        except Exception as exc:
            log.warning("Could not summarise conversation %s: %s", conversation.id, exc)
        zone, _zone_name = local_zone()
        await retrospect_ended_conversation(
            settings=settings,
            llm=self._client(key),
            store=self.store,
            conversation=conversation,
            vault=self.vault,
            now=self._clock(),
            tz=zone,
            bus=self.bus,
        )

    def _drop_stale_states(self) -> None:
        timeout = timedelta(minutes=self._settings().conversation_state_timeout_minutes)
        dropped = self.store.drop_stale_states(self._clock() - timeout)
        if dropped:
            log.info("Dropped %d stale pending questions", dropped)

    async def _sweep_states(self) -> None:
        while True:
            await asyncio.sleep(STATE_SWEEP_SECONDS)
            await asyncio.to_thread(self._drop_stale_states)


def _input_method(message: InboxMessage) -> InputMethod:
    if message.source == "chat":
        return "typed"
    method = message.metadata.get("inputMethod")
    return method if method in ("voice", "text") else "text"


def _title_for(result: AgentResult) -> str:
    changed = any(t.name in WRITING_TOOLS and not t.is_error for t in result.tools_used)
    return "Notes updated" if changed else "Notes"
