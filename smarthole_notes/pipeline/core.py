"""The queue and its worker: messages in, one at a time, each to a truthful end.

`submit` stores a message durably (the caller acks it then), records it in the history and
queues it; one worker runs the queue in arrival order, so two requests never edit the vault
at once. Every message still in the inbox has a state the user can see (`message_states`,
and a `message_state` event at every change). The parts that do the work live beside this
module: `turn` (one message's agent run), `delivery` (telling the user), `retries` (what a
failure leads to), `commits` (git), `lifecycle` (summaries, retrospection, retention),
`access` (the API key and client).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from smarthole_notes.agent import client_for
from smarthole_notes.bus import EventBus
from smarthole_notes.conversations.store import ConversationStore
from smarthole_notes.credentials import ApiKey, resolve_api_key
from smarthole_notes.inbox import DeliveryState, Inbox, InboxMessage, MessageState, StoredState
from smarthole_notes.leftovers import remove_crash_leftovers
from smarthole_notes.llm import sdk
from smarthole_notes.llm.errors import ErrorCode, LLMError
from smarthole_notes.pipeline.access import ApiAccess
from smarthole_notes.pipeline.commits import RequestCommits
from smarthole_notes.pipeline.delivery import Delivery, Messenger
from smarthole_notes.pipeline.jobs import SideJobs
from smarthole_notes.pipeline.lifecycle import ConversationLifecycle
from smarthole_notes.pipeline.retries import decide
from smarthole_notes.pipeline.texts import KEY_REJECTED_NOTICE, NO_KEY_NOTICE, UNEXPECTED_FAILURE
from smarthole_notes.pipeline.turn import TurnRun, Turns
from smarthole_notes.settings import Settings
from smarthole_notes.vault import Vault
from smarthole_notes.versioning import UndoResult

if TYPE_CHECKING:
    import anthropic

log = logging.getLogger("smarthole_notes.pipeline")

KEY_POLL_SECONDS = 10.0
CANCEL_WAIT_SECONDS = 5.0
OUTCOMES_KEPT = 200


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Outcome:
    """How processing one message ended (for tests, `inbox process` and logs)."""

    message_id: str
    status: str
    """answered, redelivered, retry_scheduled, failed, refused, cancelled, interrupted,
    no_key, duplicate."""
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
        retry_unit_seconds: float = 60.0,
        vault_access: Vault | None = None,
    ) -> None:
        self.vault = vault
        self.inbox = inbox
        self.store = store
        self.bus = bus
        self._settings = settings
        self._clock = clock
        self._retry_unit = retry_unit_seconds
        self.access = ApiAccess(api_key, make_client)
        self.side_jobs = SideJobs()
        self.commits = RequestCommits(vault, settings, self.access, self.side_jobs)
        self.lifecycle = ConversationLifecycle(
            vault, store, bus, settings, self.access, self.side_jobs, clock
        )
        self.delivery = Delivery(inbox, bus, self.side_jobs)
        self.delivery.messenger = messenger
        self.turns = Turns(
            vault_access or Vault(vault),
            store,
            bus,
            settings,
            clock,
            self.lifecycle,
            self.commits,
            self.delivery,
        )
        self._queue: asyncio.Queue[str] = asyncio.Queue()
        self._queued: set[str] = set()
        self._intake: asyncio.Queue[tuple[InboxMessage, datetime]] = asyncio.Queue()
        self._intake_task: asyncio.Task[None] | None = None
        self._states: dict[str, MessageState] = {}
        self._retry_wake = asyncio.Event()
        self._worker: asyncio.Task[None] | None = None
        self._background: list[asyncio.Task[None]] = []
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

    @property
    def vault_access(self) -> Vault:
        """The service's one vault-access layer (its caches and link index live on)."""
        return self.turns.vault

    @property
    def messenger(self) -> Messenger | None:
        return self.delivery.messenger

    @messenger.setter
    def messenger(self, messenger: Messenger | None) -> None:
        self.delivery.messenger = messenger

    # ------------------------------------------------------------------ states

    def message_states(self) -> dict[str, MessageState]:
        """Every message still waiting in the inbox, by id, as the user is shown it."""
        return dict(self._states)

    def message_state(self, message_id: str) -> MessageState | None:
        return self._states.get(message_id)

    async def waiting_messages(self) -> list[tuple[InboxMessage, MessageState]]:
        """The messages still in the inbox, oldest first, each with its state as shown (the
        answered ones only waiting for their clean-up are not the user's concern)."""

        def unanswered() -> list[InboxMessage]:
            return [m for m in self.inbox.pending() if not self.store.is_processed(m.id)]

        pending = await asyncio.to_thread(unanswered)
        return [(m, self._states.get(m.id) or m.view()) for m in pending]

    def _show(self, message_id: str, state: MessageState | None) -> None:
        """Keep the picture and tell every watcher (chat page, API); None: it left the inbox."""
        if state is None:
            if self._states.pop(message_id, None) is not None:
                self.bus.publish(
                    "message_state", message_id=message_id, state="done",
                    next_attempt_at=None, error=None,
                )  # fmt: skip
        elif self._states.get(message_id) != state:
            self._states[message_id] = state
            self.bus.publish("message_state", message_id=message_id, **state.to_json())

    def _show_stored(self, message: InboxMessage, state: DeliveryState | None = None) -> None:
        view = message.view()
        self._show(message.id, view if state is None else dataclasses.replace(view, state=state))

    async def _store_state(
        self, message_id: str, state: StoredState, *, next_attempt_at: datetime | None = None,
        error: str | None = None, **changes: Any,
    ) -> InboxMessage | None:  # fmt: skip
        """Persist a waiting message's state (it survives restarts) and show it."""
        updated = await asyncio.to_thread(
            self.inbox.update, message_id, state=state, error=error,
            next_attempt_at=next_attempt_at.isoformat() if next_attempt_at else None, **changes,
        )  # fmt: skip
        if updated is not None:
            self._show_stored(updated)
        return updated

    # ------------------------------------------------------------------ intake

    async def submit(self, message: InboxMessage) -> bool:
        """Store durably, then (in arrival order, behind the caller's ack) record it in the
        history and queue it. False if the id was already seen (not run again)."""
        if self._stopping:
            raise RuntimeError("the pipeline is shutting down")
        if not await asyncio.to_thread(self.inbox.put, message):
            log.info("Message %s is already in the inbox; not queued twice", message.id)
            return False
        if await asyncio.to_thread(self.store.is_processed, message.id):
            await asyncio.to_thread(self.inbox.remove, message.id)
            log.info("Message %s was already processed; ignored", message.id)
            return False
        self.bus.publish(
            "message_received", message_id=message.id, text=message.text,
            source=message.source, timestamp=message.timestamp,
            input_method=message.metadata.get("inputMethod", "typed"),
        )  # fmt: skip
        self._idle.clear()
        self._show(message.id, MessageState("queued"))
        self._intake.put_nowait((message, self._clock()))
        if self._intake_task is None or self._intake_task.done():
            self._intake_task = asyncio.create_task(self._take_in(), name="pipeline-intake")
        return True

    async def _take_in(self) -> None:
        """Record arrivals in the history, in order, then queue them (apart from `submit`
        so that SmartHole's ack waits only for the inbox write)."""
        while not self._intake.empty():
            message, arrived = self._intake.get_nowait()
            try:
                await self.turns.record_request(message, arrived)
            except Exception:  # the inbox holds it: processing records it again
                log.exception("Could not record message %s in the history yet", message.id)
            self._enqueue(message.id)

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

    # ------------------------------------------------------------------ life cycle

    async def start(self) -> None:
        """Recover what a previous run left in the inbox (oldest first), then start working:
        answered-but-undelivered messages are delivered, queued ones run, scheduled retries
        keep their schedule, failed and refused ones wait for the user, and temporary files
        an interrupted write left behind are removed."""
        await asyncio.to_thread(self.lifecycle.drop_stale_states)
        await self.commits.versioning_changed()
        self.side_jobs.start(asyncio.to_thread(remove_crash_leftovers, self.vault))
        self.vault_access.start_index()  # search_notes' index: built in a background thread
        for message in await asyncio.to_thread(self.inbox.pending):
            if message.state == "queued":
                self._enqueue(message.id)
            elif message.state == "waiting_for_key" and self.access.key() is not None:
                await self._store_state(message.id, "queued")
                self._enqueue(message.id)
            else:
                self._show_stored(message)
        self._worker = asyncio.create_task(self._work(), name="pipeline-worker")
        for job, name in (
            (self._poll_for_key(), "key-poll"),
            (self.lifecycle.sweep_states(), "state-sweep"),
            (self._run_retries(), "retries"),
        ):
            self._background.append(asyncio.create_task(job, name=name))

    async def reprocess(self, message_id: str) -> bool:
        """ "Process again": queue an inbox message with a fresh retry schedule; without an
        API key it waits for one (and says so) instead."""
        if await asyncio.to_thread(self.inbox.get, message_id) is None:
            return False
        if message_id == self._current_id:
            return True
        if self.access.key() is None:
            await self._store_state(message_id, "waiting_for_key", error=NO_KEY_NOTICE)
            return True
        await self._store_state(message_id, "queued", retries=0)
        self._enqueue(message_id)
        return True

    def cancel_current(self) -> bool:
        """Stop the message being processed now (the user pressed Stop); False if none is."""
        if self._current_id is None:
            return False
        self.turns.abort()
        return True

    async def cancel(self) -> bool:
        """Stop the current message and return once it has stopped (at most a few seconds);
        False if none was running. Callers await this instead of polling."""
        if not self.cancel_current():
            return False
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._between_messages.wait(), CANCEL_WAIT_SECONDS)
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
                await self.cancel()
        if self._worker is not None:
            self._worker.cancel()
            await asyncio.gather(self._worker, return_exceptions=True)
        await asyncio.gather(*self._background, return_exceptions=True)
        await self.side_jobs.wait_all(grace)
        await self.access.close()

    async def versioning_changed(self) -> None:
        await self.commits.versioning_changed()

    async def undo(self, target: str) -> UndoResult:
        """Undo one processed request ("last" or its message id), between messages only."""
        async with self._work_lock:
            return await self.commits.undo(target)

    def key_configured(self) -> None:
        """A key was just set: process the messages that waited for one, in order."""
        self.access.accepted()
        for message_id, state in list(self._states.items()):
            if state.state == "waiting_for_key":
                self._enqueue(message_id)

    async def _poll_for_key(self) -> None:
        """A key set outside the chat page (environment, credentials file) is noticed too;
        a key Anthropic rejected is not tried again until it changes."""
        while True:
            await asyncio.sleep(KEY_POLL_SECONDS)
            waiting = any(s.state == "waiting_for_key" for s in self._states.values())
            if waiting and self.access.usable_key_set():
                self.key_configured()

    async def _run_retries(self) -> None:
        """Queue each transiently failed message when its next try is due."""
        while True:
            now = self._clock()
            due = sorted(
                (s.next_attempt_at, message_id)
                for message_id, s in self._states.items()
                if s.state == "retry_scheduled" and s.next_attempt_at is not None
            )
            for when, message_id in due:
                if when <= now and message_id not in self._queued:
                    log.info("Automatic retry of message %s", message_id)
                    await self._store_state(message_id, "queued")
                    self._enqueue(message_id)
            later = [when for when, _ in due if when > now]
            self._retry_wake.clear()
            with contextlib.suppress(TimeoutError):
                timeout = (min(later) - now).total_seconds() if later else None
                await asyncio.wait_for(self._retry_wake.wait(), timeout)

    # ------------------------------------------------------------------ the worker

    async def _work(self) -> None:
        while True:
            message_id = await self._queue.get()
            self._queued.discard(message_id)
            self.turns.next_message()
            self._current_id = message_id
            self._between_messages.clear()
            try:
                async with self._work_lock:
                    outcome = await self._process(message_id)
            except Exception:
                log.exception("Processing message %s failed unexpectedly", message_id)
                with contextlib.suppress(Exception):
                    await self._store_state(message_id, "failed", error=UNEXPECTED_FAILURE)
                self.bus.publish("error", message_id=message_id, message=UNEXPECTED_FAILURE)
                outcome = Outcome(message_id, "failed", UNEXPECTED_FAILURE)
            finally:
                self._current_id = None
                self._between_messages.set()
                if self._queue.empty() and self._intake.empty() and not self._taking_in():
                    self._idle.set()
            self.outcomes.append(outcome)
            if self.on_outcome is not None and (result := self.on_outcome(outcome)) is not None:
                await result

    def _taking_in(self) -> bool:
        return self._intake_task is not None and not self._intake_task.done()

    async def _process(self, message_id: str) -> Outcome:
        message = await asyncio.to_thread(self.inbox.get, message_id)
        if message is None:
            self._show(message_id, None)
            return Outcome(message_id, "duplicate")
        if await asyncio.to_thread(self.store.is_processed, message_id):
            return await self._redeliver(message)
        key = self.access.key()
        if key is None:
            return await self._no_key(message, NO_KEY_NOTICE)
        started = await asyncio.to_thread(self.inbox.mark_started, message_id)
        if started is None:
            return Outcome(message_id, "duplicate")
        message = started
        self._show_stored(message, "processing")
        before = await self.commits.snapshot_before()
        await sdk.loaded()  # `serve` starts without the SDK: a message waits for it here
        run = await self.turns.run(message, self.access.client(key))
        if run.error is not None and run.error.code is ErrorCode.AUTH_ERROR:
            self.access.rejected(key)
            return await self._no_key(message, KEY_REJECTED_NOTICE, run.error)
        if run.error is None and run.result is not None and run.result.aborted:
            return await self._cancelled(message)
        self.access.accepted()
        outcome = await (self._failed(run, run.error) if run.error else self._answered(run))
        if run.error is None or run.changed_notes:  # edits made before a failure count too
            await self.commits.commit(before, message, run.conversation.id, run.tools_used)
        return outcome

    async def _answered(self, run: TurnRun) -> Outcome:
        stored = await self.turns.record_answer(run)  # the commit point
        self._show(run.message.id, None)
        assert run.result is not None
        await self.delivery.answer(run.message, stored, run.result.tools_used)
        if run.turn.end_reason is not None:
            await self.lifecycle.end_explicitly(run.conversation.id, self._clock())
        await self.lifecycle.enforce_retention()
        return Outcome(run.message.id, "answered", stored.content)

    async def _redeliver(self, message: InboxMessage) -> Outcome:
        """An answer recorded before a crash or shutdown, never delivered: deliver it now."""
        answer = await asyncio.to_thread(self.store.answer_for, message.id)
        self._show(message.id, None)
        if answer is None:
            await asyncio.to_thread(self.inbox.remove, message.id)
            return Outcome(message.id, "duplicate")
        log.info("Message %s was answered before a restart; delivering that answer", message.id)
        await self.delivery.answer(message, answer)
        return Outcome(message.id, "redelivered", answer.content)

    async def _failed(self, run: TurnRun, error: LLMError) -> Outcome:
        """Tell the user exactly what happened and what will happen next, and keep it."""
        message = run.message
        log.warning("Message %s failed: %s (%s)", message.id, error.code, error.detail)
        schedule = tuple(self._settings().retry_failed_messages_minutes)
        decision = decide(error, message, schedule, self._clock(), self._retry_unit)
        if decision.state == "refused":
            await self.turns.record_refusal(run, error)
        retries = {} if decision.retries is None else {"retries": decision.retries}
        await self._store_state(
            message.id, decision.state, next_attempt_at=decision.next_attempt_at,
            error=decision.text, last_error=f"{error.code}: {error.detail}", **retries,
        )  # fmt: skip
        self._retry_wake.set()
        await self.delivery.failure(message, decision.text, str(error.code))
        return Outcome(message.id, decision.state, decision.text)

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
        self, message: InboxMessage, notice: str, error: LLMError | None = None
    ) -> Outcome:
        """The message waits for a (new) key; the user is told once."""
        told = message.state == "waiting_for_key" and message.error == notice
        last_error = f"{error.code}: {error.detail}" if error else message.last_error
        await self._store_state(message.id, "waiting_for_key", error=notice, last_error=last_error)
        if not told:
            log.warning("No usable Anthropic API key: message %s waits in the inbox", message.id)
            code = "no_api_key" if error is None else str(error.code)
            await self.delivery.failure(message, notice, code)
        return Outcome(message.id, "no_key", notice)
