"""The life of a message: inbox, ack, queue, agent, record, report, clean-up, retries, side jobs.

Every message, from SmartHole or the chat page, goes through `Pipeline.submit`, which
writes it durably to the inbox, records it in the conversation history with its real time,
and queues it; one worker processes the queue in arrival order, so two requests never edit
the vault at once.

Exactly one answer per message: the answer is recorded in the history (the commit point)
before it is delivered, and the message leaves the inbox only once it was delivered. A
restart that finds a message both answered and still in the inbox delivers the recorded
answer again instead of running the request again. A crash before the commit point leaves
the message in the inbox; the next start runs it again, telling the agent it is a retry.

Every waiting message has a state the user can see (`MessageState`): queued, processing,
waiting for an API key, a transient failure with its next automatic try, failed (it waits
for the user), refused.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import logging
from collections import deque
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
    StoredMessage,
    summarise_tool_input,
    tool_uses_from_calls,
)
from smarthole_notes.conversations.summary import summarise
from smarthole_notes.credentials import ApiKey, resolve_api_key
from smarthole_notes.inbox import DeliveryState, Inbox, InboxMessage, MessageState, StoredState
from smarthole_notes.leftovers import remove_crash_leftovers
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
from smarthole_notes.smarthole.notifications import (
    NOTE_WRITING_TOOLS,
    NotificationKind,
    notification_title,
    touched_note,
)
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
KEY_REJECTED_NOTICE = (
    "The Anthropic API key was rejected (missing, invalid or revoked): set a valid one in "
    "Settings. Your message is kept and will be processed as soon as a new key is set."
)
LESS_CONTEXT = "Current conversation: (left out: the conversation was too long for the model)."
KEY_POLL_SECONDS = 10.0
STATE_SWEEP_SECONDS = 15 * 60
DEFAULT_RETRY_MINUTES = (1, 5, 15, 60, 240)
DELIVERY_WAIT_SECONDS = 330.0
"""How long a delivered-but-unsent SmartHole answer keeps its message in the inbox."""
OUTCOMES_KEPT = 200


def utc_now() -> datetime:
    return datetime.now(UTC)


class Messenger(Notifier, Protocol):
    """SmartHole responses the pipeline sends (the SmartHole client implements this)."""

    async def send_ack(self, message_id: str) -> bool: ...


@dataclass(frozen=True, slots=True)
class Outcome:
    """How processing one message ended (for tests, `inbox process` and logs)."""

    message_id: str
    status: str
    """answered, redelivered, failed, retry_scheduled, refused, cancelled, interrupted,
    no_key, duplicate."""
    text: str = ""


def _key_fingerprint(key: ApiKey) -> str:
    """Tells keys apart without keeping one: a rejected key is not retried until it changes."""
    return hashlib.sha256(key.reveal().encode()).hexdigest()[:16]


def local_clock_time(moment: datetime) -> str:
    """`10:42` in the user's local time (what "next try at" messages say)."""
    zone, _name = local_zone()
    return moment.astimezone(zone).strftime("%H:%M")


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
        retry_unit_seconds: float = 60.0,
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
        self._retry_unit = retry_unit_seconds
        self._clients: dict[str, anthropic.AsyncAnthropic] = {}
        self._queue: asyncio.Queue[str] = asyncio.Queue()
        self._queued: set[str] = set()
        self._states: dict[str, MessageState] = {}
        self._rejected_key: str | None = None
        self._retry_wake = asyncio.Event()
        self._intake: asyncio.Queue[tuple[InboxMessage, datetime]] = asyncio.Queue()
        self._intake_task: asyncio.Task[None] | None = None
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
        self.outcomes: deque[Outcome] = deque(maxlen=OUTCOMES_KEPT)
        """The latest outcomes (bounded: a long-running service must not grow)."""
        self.on_outcome: Callable[[Outcome], Awaitable[None] | None] | None = None

    # ------------------------------------------------------------------ states

    def message_states(self) -> dict[str, MessageState]:
        """Every message still waiting in the inbox, by id, as the user is shown it."""
        return dict(self._states)

    def message_state(self, message_id: str) -> MessageState | None:
        return self._states.get(message_id)

    def _show(self, message_id: str, state: MessageState | None) -> None:
        """Keep the picture and tell every watcher (chat page, API)."""
        if state is None:
            if self._states.pop(message_id, None) is None:
                return
            self.bus.publish(
                "message_state", message_id=message_id, state="done", next_attempt_at=None,
                error=None,
            )  # fmt: skip
            return
        if self._states.get(message_id) == state:
            return
        self._states[message_id] = state
        self.bus.publish("message_state", message_id=message_id, **state.to_json())

    def _show_stored(self, message: InboxMessage, state: DeliveryState | None = None) -> None:
        view = message.view()
        if state is not None:
            view = dataclasses.replace(view, state=state)
        self._show(message.id, view)

    async def _set_stored_state(
        self,
        message_id: str,
        state: StoredState,
        *,
        next_attempt_at: datetime | None = None,
        error: str | None = None,
        **changes: Any,
    ) -> InboxMessage | None:
        """Persist a waiting message's state (it survives restarts) and show it."""
        updated = await asyncio.to_thread(
            self.inbox.update,
            message_id,
            state=state,
            next_attempt_at=next_attempt_at.isoformat() if next_attempt_at else None,
            error=error,
            **changes,
        )
        if updated is not None:
            self._show_stored(updated)
        return updated

    # ------------------------------------------------------------------ intake

    async def submit(self, message: InboxMessage) -> bool:
        """Step 1: store durably, then (in arrival order, behind the caller's ack) record it
        in the history and queue it. False if the id was already seen (not run again)."""
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
        self._idle.clear()
        self._show(message.id, MessageState("queued"))
        self._intake.put_nowait((message, self._clock()))
        if self._intake_task is None or self._intake_task.done():
            self._intake_task = asyncio.create_task(self._take_in(), name="pipeline-intake")
        return True

    def _taking_in(self) -> bool:
        return self._intake_task is not None and not self._intake_task.done()

    async def _take_in(self) -> None:
        """Record arrived messages in the history, in arrival order, then queue them.

        Kept apart from `submit` so that SmartHole's ack waits only for the inbox write."""
        while not self._intake.empty():
            message, arrived = self._intake.get_nowait()
            try:
                await self._record_request(message, arrived)
            except Exception:  # the inbox holds it: processing records it again
                log.exception("Could not record message %s in the history yet", message.id)
            self._enqueue(message.id)

    async def _record_request(
        self, message: InboxMessage, arrived: datetime | None = None
    ) -> StoredMessage:
        """The user's message in the active conversation, at the time it arrived.

        Recorded when it arrives, not when it is processed, so that a message waiting for
        a key or a retry is in the chat with its real time. If its conversation has ended
        since (idle, or ended by the agent), it moves to the current one, keeping its time.
        """
        recorded = await asyncio.to_thread(self.store.user_message, message.id)
        at = arrived or self._clock()
        if recorded is not None:
            conversation = await asyncio.to_thread(self.store.get, recorded.conversation_id)
            if conversation is not None and conversation.active:
                return recorded
            at = recorded.created_at
        settings = self._settings()
        idle = timedelta(minutes=settings.conversation_idle_timeout_minutes)
        active, ended = await asyncio.to_thread(self.store.begin_message, self._clock(), idle)
        if ended is not None:
            self._side_job(self._after_conversation_ended(ended, settings))
        return await asyncio.to_thread(
            self.store.add_message,
            active.id,
            "user",
            message.text,
            source=message.source,
            input_method=_input_method(message),
            message_id=message.id,
            at=at,
        )

    def _enqueue(self, message_id: str) -> None:
        if message_id in self._queued or message_id == self._current_id:
            return
        self._queued.add(message_id)
        self._idle.clear()
        self._queue.put_nowait(message_id)
        previous = self._states.get(message_id)
        self._show(
            message_id, MessageState("queued", attempts=previous.attempts if previous else 0)
        )
        self.bus.publish("queued", message_id=message_id, position=self._queue.qsize())

    async def start(self) -> None:
        """Recover what a previous run left in the inbox (oldest first), then start working.

        Answered-but-undelivered messages are delivered; queued ones run; scheduled retries
        keep their schedule; failed and refused ones wait for the user; temporary files an
        interrupted write left behind are removed.
        """
        await asyncio.to_thread(self._drop_stale_states)
        await self.versioning_changed()
        self._side_job(asyncio.to_thread(remove_crash_leftovers, self.vault))
        for message in await asyncio.to_thread(self.inbox.pending):
            if message.state == "queued":
                self._enqueue(message.id)
            elif message.state == "waiting_for_key" and self._api_key() is not None:
                await self._set_stored_state(message.id, "queued")
                self._enqueue(message.id)
            else:
                self._show_stored(message)
                if message.state == "retry_scheduled" and not message.next_attempt_at:
                    self._enqueue(message.id)
        self._worker = asyncio.create_task(self._work(), name="pipeline-worker")
        self._background.append(asyncio.create_task(self._poll_for_key(), name="key-poll"))
        self._background.append(asyncio.create_task(self._sweep_states(), name="state-sweep"))
        self._background.append(asyncio.create_task(self._run_retries(), name="retries"))

    async def reprocess(self, message_id: str) -> bool:
        """Queue an inbox message again on demand ("process again"), with a fresh retry
        schedule. Without an API key it waits for one (and says so) instead."""
        message = await asyncio.to_thread(self.inbox.get, message_id)
        if message is None:
            return False
        if message_id == self._current_id:
            return True
        if self._api_key() is None:
            await self._set_stored_state(message_id, "waiting_for_key", error=NO_KEY_NOTICE)
            return True
        await self._set_stored_state(message_id, "queued", retries=0)
        self._enqueue(message_id)
        return True

    def cancel_current(self) -> bool:
        """Stop the message being processed now (the user pressed Stop)."""
        if self._current is None:
            return False
        self._current.abort()
        return True

    async def wait_idle(self) -> None:
        """Until the queue is empty and nothing is being processed (messages waiting for a
        key or a retry do not count)."""
        await self._idle.wait()

    async def stop(self, grace: float = 10.0) -> None:
        """Stop taking messages; let the current one finish within `grace`, else cancel it
        (it stays in the inbox and runs again at the next start)."""
        self._stopping = True
        for task in self._background:
            task.cancel()
        if self._intake_task is not None:
            await asyncio.wait([self._intake_task], timeout=grace)
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
                text = (
                    "Something went wrong processing your message; it is kept in the inbox "
                    "(process it again from there)."
                )
                with contextlib.suppress(Exception):
                    await self._set_stored_state(message_id, "failed", error=text)
                self.bus.publish("error", message_id=message_id, message=text)
                outcome = Outcome(message_id, "failed", text)
            finally:
                self._current = None
                self._current_id = None
                self._between_messages.set()
                if self._queue.empty() and self._intake.empty() and not self._taking_in():
                    self._idle.set()
            self.outcomes.append(outcome)
            if self.on_outcome is not None:
                result = self.on_outcome(outcome)
                if result is not None:
                    await result

    async def _process(self, message_id: str) -> Outcome:
        message = await asyncio.to_thread(self.inbox.get, message_id)
        if message is None:
            self._show(message_id, None)
            return Outcome(message_id, "duplicate")
        if await asyncio.to_thread(self.store.is_processed, message_id):
            return await self._redeliver(message)
        key = self._api_key()
        if key is None:
            return await self._no_key(message, NO_KEY_NOTICE)
        started = await asyncio.to_thread(self.inbox.mark_started, message_id)
        if started is None:
            return Outcome(message_id, "duplicate")
        message = started
        self._show_stored(message, "processing")
        settings = self._settings()
        request = await self._record_request(message)
        active = await asyncio.to_thread(self.store.get, request.conversation_id)
        assert active is not None
        zone, zone_name = local_zone()
        context = await asyncio.to_thread(
            build_context, self.store, active, zone, zone_name, before_row=request.row_id
        )
        state = await asyncio.to_thread(self.store.load_state, active.id) or ConversationState()
        turn = TurnContext(message, active.id, state)
        git = self.git()
        before = await self._snapshot_before(git, settings)
        text = f"{RETRY_NOTE}\n\n{message.text}" if message.attempts > 1 else message.text
        client = self._client(key)
        recorder = _UpdateRecorder(self.store, active.id, request.row_id, message.source)
        try:
            try:
                result = await self._run_agent(
                    settings, client, turn, git, context, text, message, recorder
                )
            except LLMError as error:
                if error.code is not ErrorCode.CONTEXT_TOO_LONG:
                    raise
                log.warning("Message %s: conversation too long; retrying with less", message.id)
                result = await self._run_agent(
                    settings, client, turn, git, LESS_CONTEXT, text, message, recorder
                )
        except LLMError as error:
            await recorder.flush()
            if error.code is ErrorCode.AUTH_ERROR:
                self._rejected_key = _key_fingerprint(key)
                return await self._no_key(message, KEY_REJECTED_NOTICE, error=error)
            failed = await self._failed(message, active, request, error, settings)
            if any(t.name in NOTE_WRITING_TOOLS and not t.is_error for t in error.tools_used):
                # Edits made before the failure are versioned as this request's, not
                # swept into the next one's commit as the user's own.
                done = [dataclasses.asdict(t) for t in tool_uses_from_calls(error.tools_used)]
                await self._commit(git, before, message, active.id, done, settings)
            return failed
        await recorder.flush()
        if result.aborted:
            return await self._cancelled(message)
        self._rejected_key = None
        outcome = await self._answered(message, active, request, turn, result, settings)
        tools_used = [dataclasses.asdict(t) for t in tool_uses_from_calls(result.tools_used)]
        await self._commit(git, before, message, active.id, tools_used, settings)
        return outcome

    async def _run_agent(
        self,
        settings: Settings,
        client: anthropic.AsyncAnthropic,
        turn: TurnContext,
        git: GitVault | None,
        context: str,
        text: str,
        message: InboxMessage,
        recorder: _UpdateRecorder,
    ) -> AgentResult:
        tools = conversation_tools(turn, bus=self.bus, store=self.store, notifier=self.messenger)
        if git is not None:
            tools += git_tools(git)
        agent = build_agent(
            self.vault,
            settings,
            client,
            extra_tools=tools,
            conversation_context=lambda: context,
        )
        agent.state = turn.state
        self._current = agent
        return await agent.process(text, on_event=self._forward(message.id, recorder))

    async def _answered(
        self,
        message: InboxMessage,
        conversation: Conversation,
        request: StoredMessage,
        turn: TurnContext,
        result: AgentResult,
        settings: Settings,
    ) -> Outcome:
        answer = result.text.strip() or _empty_answer(result)
        tools_used = tool_uses_from_calls(result.tools_used)
        # Record first (the commit point): a crash after this delivers, never re-runs.
        if not turn.asked_question:
            turn.state.answered()
        now = self._clock()
        stored = await asyncio.to_thread(
            self.store.add_message,
            conversation.id,
            "assistant",
            answer,
            source=message.source,
            reply_to=request.row_id,
            tools_used=tools_used,
            at=now,
            usage=usage_record(result, settings.model),
        )
        await asyncio.to_thread(self.store.save_state, conversation.id, turn.state, now)
        self._show(message.id, None)
        # Then report.
        await self._deliver(message, stored, result)
        # Side jobs.
        if turn.end_reason is not None:
            ended = await asyncio.to_thread(
                self.store.end_conversation, conversation.id, "explicit", now
            )
            self._side_job(self._after_conversation_ended(ended, settings))
        await asyncio.to_thread(self.store.enforce_retention, settings.max_conversations_retained)
        return Outcome(message.id, "answered", answer)

    async def _deliver(
        self, message: InboxMessage, answer: StoredMessage, result: AgentResult | None
    ) -> None:
        """Report a recorded answer (chat page, SmartHole); the inbox file goes once it is out."""
        self.bus.publish(
            "response",
            message_id=message.id,
            text=answer.content,
            tools_used=[dataclasses.asdict(t) for t in answer.tools_used],
        )
        if message.source != "smarthole" or self.messenger is None:
            await asyncio.to_thread(self.inbox.remove, message.id)
            return
        changed = any(t.name in NOTE_WRITING_TOOLS and not t.is_error for t in answer.tools_used)
        note = touched_note(result.tools_used) if result is not None else None
        title = notification_title("answer", message.text, note=note, changed=changed)
        sent = await self._notify(message, "answer", title, answer.content)
        if sent:
            await asyncio.to_thread(self.inbox.remove, message.id)
        else:
            self._side_job(self._remove_when_sent(message.id))

    async def _notify(
        self, message: InboxMessage, kind: NotificationKind, title: str, body: str
    ) -> bool:
        """A SmartHole notification for `message`; True once it is written to the socket."""
        if message.source != "smarthole" or self.messenger is None:
            return True
        result = await self.messenger.send_notification(message.id, title, trim(body), kind=kind)
        return str(getattr(result, "outcome", "sent" if result else "not_connected")) == "sent"

    async def _remove_when_sent(self, message_id: str) -> None:
        """Keep an answered message in the inbox until its notification left (a crash
        meanwhile makes the next start deliver it), then remove it."""
        pending_for = getattr(self.messenger, "pending_for", None)
        if pending_for is not None:
            deadline = asyncio.get_running_loop().time() + DELIVERY_WAIT_SECONDS
            # The outbox keeps no per-message event; a light poll while a final waits.
            while pending_for(message_id) and asyncio.get_running_loop().time() < deadline:  # noqa: ASYNC110
                await asyncio.sleep(0.1)
        await asyncio.to_thread(self.inbox.remove, message_id)

    async def _redeliver(self, message: InboxMessage) -> Outcome:
        """An answer recorded before a crash or shutdown, never delivered: deliver it now."""
        answer = await asyncio.to_thread(self.store.answer_for, message.id)
        self._show(message.id, None)
        if answer is None:
            await asyncio.to_thread(self.inbox.remove, message.id)
            return Outcome(message.id, "duplicate")
        log.info("Message %s was answered before a restart; delivering that answer", message.id)
        await self._deliver(message, answer, None)
        return Outcome(message.id, "redelivered", answer.content)

    async def _failed(
        self,
        message: InboxMessage,
        conversation: Conversation,
        request: StoredMessage,
        error: LLMError,
        settings: Settings,
    ) -> Outcome:
        """Tell the user exactly what happened and what will happen next, and keep it."""
        log.warning("Message %s failed: %s (%s)", message.id, error.code, error.detail)
        detail = f"{error.code}: {error.detail}"
        schedule = tuple(
            getattr(settings, "retry_failed_messages_minutes", None) or DEFAULT_RETRY_MINUTES
        )
        status: str
        if error.code is ErrorCode.REFUSED:
            text = f"{error.user_message} Your message is kept in the inbox."
            await asyncio.to_thread(
                self.store.add_message,
                conversation.id,
                "assistant",
                error.user_message,
                source=message.source,
                reply_to=request.row_id,
                at=self._clock(),
                kind="refusal",
                tools_used=tool_uses_from_calls(error.tools_used),
            )
            await self._set_stored_state(message.id, "refused", error=text, last_error=detail)
            status = "refused"
        elif error.retryable and message.retries < len(schedule):
            due = self._clock() + timedelta(seconds=schedule[message.retries] * self._retry_unit)
            text = (
                f"{error.user_message}. Your message is kept; next try at {local_clock_time(due)}."
            )
            await self._set_stored_state(
                message.id,
                "retry_scheduled",
                next_attempt_at=due,
                error=text,
                retries=message.retries + 1,
                last_error=detail,
            )
            self._retry_wake.set()
            status = "retry_scheduled"
        elif error.retryable:
            text = (
                f"{error.user_message}. It was tried again automatically {len(schedule)} "
                "times; your message is kept in the inbox: process it again there when "
                "Anthropic is back."
            )
            await self._set_stored_state(message.id, "failed", error=text, last_error=detail)
            status = "failed"
        else:
            lead = error.user_message.rstrip(".")
            text = f"{lead}. Your message is kept in the inbox; process it again there."
            await self._set_stored_state(message.id, "failed", error=text, last_error=detail)
            status = "failed"
        self.bus.publish("error", message_id=message.id, message=text, code=str(error.code))
        title = notification_title("failure", message.text)
        await self._notify(message, "failure", title, text)
        return Outcome(message.id, status, text)

    async def _cancelled(self, message: InboxMessage) -> Outcome:
        if self._stopping:
            log.info("Message %s was interrupted by shutdown; it stays in the inbox", message.id)
            self._show_stored(message, "queued")
            return Outcome(message.id, "interrupted")
        await asyncio.to_thread(self.inbox.remove, message.id)
        self._show(message.id, None)
        self.bus.publish("cancelled", message_id=message.id)
        return Outcome(message.id, "cancelled")

    async def _no_key(
        self, message: InboxMessage, notice: str, *, error: LLMError | None = None
    ) -> Outcome:
        """The message waits for a (new) key; the user is told once."""
        already = message.state == "waiting_for_key" and message.error == notice
        await self._set_stored_state(
            message.id,
            "waiting_for_key",
            error=notice,
            last_error=f"{error.code}: {error.detail}" if error else message.last_error,
        )
        if not already:
            log.warning("No usable Anthropic API key: message %s waits in the inbox", message.id)
            code = "no_api_key" if error is None else str(error.code)
            self.bus.publish("error", message_id=message.id, message=notice, code=code)
            await self._notify(
                message, "failure", notification_title("failure", message.text), notice
            )
        return Outcome(message.id, "no_key", notice)

    def key_configured(self) -> None:
        """A key was just set: process the messages that waited for one, in order."""
        self._rejected_key = None
        waiting = [m for m, s in self._states.items() if s.state == "waiting_for_key"]
        for message_id in waiting:
            self._enqueue(message_id)

    async def _poll_for_key(self) -> None:
        """A key set outside the chat page (environment, credentials file) is noticed too;
        a key Anthropic rejected is not tried again until it changes."""
        while True:
            await asyncio.sleep(KEY_POLL_SECONDS)
            if not any(s.state == "waiting_for_key" for s in self._states.values()):
                continue
            key = self._api_key()
            if key is not None and _key_fingerprint(key) != self._rejected_key:
                self.key_configured()

    async def _run_retries(self) -> None:
        """Queue each transiently failed message when its next try is due (the schedule is
        in the inbox files, so it survives restarts)."""
        while True:
            now = self._clock()
            due_times: list[tuple[datetime, str]] = []
            for message_id, state in self._states.items():
                if state.state == "retry_scheduled" and state.next_attempt_at is not None:
                    due_times.append((state.next_attempt_at, message_id))
            due_times.sort()
            for when, message_id in due_times:
                if when <= now and message_id not in self._queued:
                    log.info("Automatic retry of message %s", message_id)
                    await self._set_stored_state(message_id, "queued")
                    self._enqueue(message_id)
            later = [when for when, _ in due_times if when > now]
            timeout = (min(later) - now).total_seconds() if later else None
            self._retry_wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._retry_wake.wait(), timeout)

    # ------------------------------------------------------------------ helpers

    def _client(self, key: ApiKey) -> anthropic.AsyncAnthropic:
        client = self._clients.get(key.source)
        if client is None or getattr(client, "api_key", None) != key.reveal():
            client = self._clients[key.source] = self._make_client(key)
        return client

    def _forward(self, message_id: str, recorder: _UpdateRecorder) -> Callable[[AgentEvent], None]:
        def forward(event: AgentEvent) -> None:
            if isinstance(event, TextDelta):
                self.bus.publish("text_delta", message_id=message_id, text=event.text)
            elif isinstance(event, ToolStarted):
                recorder.started(event)
                self.bus.publish(
                    "tool_started",
                    message_id=message_id,
                    tool=event.name,
                    input=summarise_tool_input(event.input),
                )
            elif isinstance(event, ToolFinished):
                recorder.finished(event)
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


class _UpdateRecorder:
    """Keeps the agent's mid-task messages (`send_message`) in the history as they are sent,
    so they survive a reload of the chat page and appear in the conversation's context."""

    def __init__(
        self, store: ConversationStore, conversation_id: str, request_row: int, source: str
    ) -> None:
        self._store = store
        self._conversation_id = conversation_id
        self._request_row = request_row
        self._source = source
        self._inputs: dict[str, dict[str, Any]] = {}
        self._writes: list[asyncio.Task[None]] = []

    def started(self, event: ToolStarted) -> None:
        if event.name == "send_message":
            self._inputs[event.tool_use_id] = dict(event.input)

    def finished(self, event: ToolFinished) -> None:
        tool_input = self._inputs.pop(event.tool_use_id, None)
        if tool_input is None or event.is_error:
            return
        text = str(tool_input.get("message", "")).strip()
        kind = "question" if tool_input.get("is_question") else "update"
        self._writes.append(asyncio.create_task(self._write(text, kind, utc_now())))

    async def _write(self, text: str, kind: str, at: datetime) -> None:
        try:
            await asyncio.to_thread(
                self._store.add_message,
                self._conversation_id,
                "assistant",
                text,
                source="smarthole" if self._source == "smarthole" else "chat",
                reply_to=self._request_row,
                at=at,
                kind="question" if kind == "question" else "update",
            )
        except Exception:
            log.exception("Could not record the agent's message in the history")

    async def flush(self) -> None:
        if self._writes:
            await asyncio.gather(*self._writes)
            self._writes.clear()


def usage_record(result: AgentResult, model: str) -> dict[str, Any]:
    """What an answer cost, kept with it in the history."""
    usage = result.usage
    return {
        "model": model,
        "input_tokens": usage.input_tokens,
        "output_tokens": usage.output_tokens,
        "cache_write_tokens": usage.cache_creation_input_tokens or 0,
        "cache_read_tokens": usage.cache_read_input_tokens or 0,
    }


def _input_method(message: InboxMessage) -> InputMethod:
    if message.source == "chat":
        return "typed"
    method = message.metadata.get("inputMethod")
    return method if method in ("voice", "text") else "text"


def _empty_answer(result: AgentResult) -> str:
    """What the user is told when the model ended without a word: what was done, truthfully."""
    done = [t for t in result.tools_used if t.name in NOTE_WRITING_TOOLS and not t.is_error]
    if done:
        parts = [f"{t.name} {_target(t.input)}".strip() for t in done]
        return "Done: " + "; ".join(parts) + "."
    if result.tools_used:
        return "Claude finished without an answer and changed nothing."
    return "Claude gave no answer."


def _target(tool_input: dict[str, Any]) -> str:
    value = tool_input.get("path") or tool_input.get("source")
    return str(value) if isinstance(value, str) else ""
