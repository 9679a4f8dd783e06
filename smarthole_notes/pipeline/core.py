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
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from smarthole_notes.agent import client_for
from smarthole_notes.bus import EventBus
from smarthole_notes.conversations.store import ConversationStore
from smarthole_notes.credentials import ApiKey, resolve_api_key
from smarthole_notes.inbox import Inbox, InboxMessage, MessageState
from smarthole_notes.leftovers import remove_crash_leftovers
from smarthole_notes.llm import sdk
from smarthole_notes.llm.errors import ErrorCode
from smarthole_notes.pipeline.access import ApiAccess
from smarthole_notes.pipeline.commits import RequestCommits
from smarthole_notes.pipeline.costs import SideCosts
from smarthole_notes.pipeline.delivery import Delivery, Messenger
from smarthole_notes.pipeline.hooks import Hooks, RequestFinished
from smarthole_notes.pipeline.jobs import SideJobs
from smarthole_notes.pipeline.lifecycle import ConversationLifecycle
from smarthole_notes.pipeline.outcomes import Outcome, Outcomes
from smarthole_notes.pipeline.retries import run_retries
from smarthole_notes.pipeline.states import MessageStates
from smarthole_notes.pipeline.texts import KEY_REJECTED_NOTICE, NO_KEY_NOTICE, UNEXPECTED_FAILURE
from smarthole_notes.pipeline.turn import Turns
from smarthole_notes.settings import Settings
from smarthole_notes.vault import Vault
from smarthole_notes.versioning import UndoResult

if TYPE_CHECKING:
    import anthropic

log = logging.getLogger("smarthole_notes.pipeline")

CANCEL_WAIT_SECONDS = 5.0
OUTCOMES_KEPT = 200


def utc_now() -> datetime:
    return datetime.now(UTC)


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
        self.states = MessageStates(inbox, bus)
        self._retry_wake = asyncio.Event()
        self.access = ApiAccess(api_key, make_client)
        self.side_jobs = SideJobs()
        self.costs = SideCosts(store, bus, clock)  # what side jobs' calls cost, kept
        self.commits = RequestCommits(vault, settings, self.access, self.side_jobs, self.costs)
        self.lifecycle = ConversationLifecycle(
            vault, store, bus, settings, self.access, self.side_jobs, clock, self.costs
        )
        self.hooks = Hooks()  # side jobs subscribe to what happens to messages
        self.commits.subscribe(self.hooks)
        self.lifecycle.subscribe(self.hooks)
        self.delivery = Delivery(inbox, bus, self.side_jobs)
        self.delivery.messenger = messenger
        self.turns = Turns(
            vault_access or Vault(vault), store, bus, settings, clock, self.hooks,
            self.commits, self.delivery,
        )  # fmt: skip
        self.outcome = Outcomes(
            inbox=inbox, store=store, bus=bus, states=self.states, turns=self.turns,
            delivery=self.delivery, hooks=self.hooks, settings=settings, clock=clock,
            retry_unit_seconds=retry_unit_seconds, retry_scheduled=self._retry_wake.set,
        )  # fmt: skip
        self._queue: asyncio.Queue[str] = asyncio.Queue()
        self._queued: set[str] = set()
        self._intake: asyncio.Queue[tuple[InboxMessage, datetime]] = asyncio.Queue()
        self._intake_task: asyncio.Task[None] | None = None
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
    def messenger(self) -> Messenger | None:  # SmartHole, set by serve when it connects
        return self.delivery.messenger

    @messenger.setter
    def messenger(self, messenger: Messenger | None) -> None:
        self.delivery.messenger = messenger

    # ------------------------------------------------------------------ states

    def message_states(self) -> dict[str, MessageState]:
        """Every message still waiting in the inbox, by id, as the user is shown it."""
        return self.states.snapshot()

    def message_state(self, message_id: str) -> MessageState | None:
        return self.states.get(message_id)

    async def waiting_messages(self) -> list[tuple[InboxMessage, MessageState]]:
        """The messages still in the inbox, oldest first, each with its state as shown."""
        return await self.states.waiting(self.store)

    # ------------------------------------------------------------------ intake

    async def submit(self, message: InboxMessage) -> bool:
        """Store durably, then (in arrival order, behind the caller's ack) record it in the
        history and queue it. False if the id was already seen (not run again)."""
        if self._stopping:
            raise RuntimeError("the pipeline is shutting down")
        if not await asyncio.to_thread(self.inbox.put, message):
            log.info("Message %s is already in the inbox; not queued twice", message.id)
            return False
        if not await self._still_new(message):
            return False
        self._idle.clear()
        self.states.show(message.id, MessageState("queued"))
        self._intake.put_nowait((message, self._clock()))
        if self._intake_task is None or self._intake_task.done():
            self._intake_task = asyncio.create_task(self._take_in(), name="pipeline-intake")
        return True

    async def _still_new(self, message: InboxMessage) -> bool:
        """Not processed before (else it leaves the inbox): announce its arrival."""
        if await asyncio.to_thread(self.store.is_processed, message.id):
            await asyncio.to_thread(self.inbox.remove, message.id)
            log.info("Message %s was already processed; ignored", message.id)
            return False
        self.bus.publish(
            "message_received", message_id=message.id, text=message.text,
            source=message.source, timestamp=message.timestamp,
            input_method=message.metadata.get("inputMethod", "typed"),
        )  # fmt: skip
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
        previous = self.states.get(message_id)
        self.states.show(
            message_id, MessageState("queued", attempts=previous.attempts if previous else 0)
        )
        self.bus.publish("queued", message_id=message_id, position=self._queue.qsize())

    # ------------------------------------------------------------------ life cycle

    async def start(self) -> None:
        """Recover what a previous run left in the inbox (oldest first), then start working:
        answered-but-undelivered messages are delivered, queued ones run, scheduled retries
        keep their schedule, failed and refused ones wait for the user, and temporary files
        an interrupted write left behind are removed."""
        await self.prepare()
        await self.begin()

    async def prepare(self) -> None:
        """The first, slower half of `start` (git, stale states, clean-up, the index): it
        touches no message, so messages can still be taken in elsewhere meanwhile."""
        await asyncio.to_thread(self.lifecycle.drop_stale_states)
        await self.commits.versioning_changed()
        self.side_jobs.start(asyncio.to_thread(remove_crash_leftovers, self.vault))
        self.vault_access.start_index()  # search_notes' index: built in a background thread

    async def begin(self, held: Sequence[tuple[InboxMessage, datetime]] = ()) -> None:
        """The second half of `start`: every message queued in the inbox (what a previous
        run left, then the ones `held` before the pipeline existed) recorded in the history
        at its arrival time and queued, oldest first; the others shown in their states;
        the worker started."""
        arrivals = {message.id: arrived for message, arrived in held}
        for message, _ in held:
            if not await self._still_new(message):
                arrivals.pop(message.id)
        for message in await asyncio.to_thread(self.inbox.pending):
            if message.state == "queued":
                arrived = arrivals.get(message.id) or datetime.fromtimestamp(
                    message.received_ns / 1e9, UTC
                )
                try:  # in arrival order, so the history shows them in that order too
                    await self.turns.record_request(message, arrived)
                except Exception:  # the inbox holds it: processing records it again
                    log.exception("Could not record message %s in the history yet", message.id)
                self._enqueue(message.id)
            elif message.state == "waiting_for_key" and self.access.key() is not None:
                await self.states.store(message.id, "queued")
                self._enqueue(message.id)
            else:
                self.states.show_stored(message)
        self._worker = asyncio.create_task(self._work(), name="pipeline-worker")
        waiting = self.states.waiting_for_key
        self._background = [
            asyncio.create_task(self.access.watch(waiting, self.key_configured)),
            asyncio.create_task(self.lifecycle.sweep_states()),
            asyncio.create_task(
                run_retries(self.states, self._clock, self._retry_wake, self._requeue)
            ),
        ]

    async def reprocess(self, message_id: str) -> bool:
        """ "Process again": queue an inbox message with a fresh retry schedule; without an
        API key it waits for one (and says so) instead."""
        if await asyncio.to_thread(self.inbox.get, message_id) is None:
            return False
        if message_id == self._current_id:
            return True
        if self.access.key() is None:
            await self.states.store(message_id, "waiting_for_key", error=NO_KEY_NOTICE)
            return True
        await self.states.store(message_id, "queued", retries=0)
        self._enqueue(message_id)
        return True

    def cancel_current(self) -> bool:
        """Stop the message being processed now (the user pressed Stop); False if none is."""
        if self._current_id is not None:
            self.turns.abort()
        return self._current_id is not None

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
        for message_id in self.states.in_state("waiting_for_key"):
            self._enqueue(message_id)

    async def _requeue(self, message_id: str) -> None:  # an automatic retry is due
        if message_id not in self._queued:
            log.info("Automatic retry of message %s", message_id)
            await self.states.store(message_id, "queued")
            self._enqueue(message_id)

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
                    await self.states.store(message_id, "failed", error=UNEXPECTED_FAILURE)
                self.bus.publish("error", message_id=message_id, message=UNEXPECTED_FAILURE)
                outcome = Outcome(message_id, "failed", UNEXPECTED_FAILURE)
            finally:
                self._current_id = None
                self._between_messages.set()
                intake_done = self._intake_task is None or self._intake_task.done()
                if self._queue.empty() and self._intake.empty() and intake_done:
                    self._idle.set()
            self.outcomes.append(outcome)
            if self.on_outcome is not None and (result := self.on_outcome(outcome)) is not None:
                await result

    async def _process(self, message_id: str) -> Outcome:
        message = await asyncio.to_thread(self.inbox.get, message_id)
        if message is None:
            self.states.show(message_id, None)
            return Outcome(message_id, "duplicate")
        if await asyncio.to_thread(self.store.is_processed, message_id):
            return await self.outcome.redeliver(message)
        key = self.access.key()
        if key is None:
            return await self.outcome.no_key(message, NO_KEY_NOTICE)
        started = await asyncio.to_thread(self.inbox.mark_started, message_id)
        if started is None:
            return Outcome(message_id, "duplicate")
        message = started
        self.states.show_stored(message, "processing")
        before = await self.commits.snapshot_before()
        await sdk.loaded()  # `serve` starts without the SDK: a message waits for it here
        run = await self.turns.run(message, self.access.client(key))
        if run.error is not None and run.error.code is ErrorCode.AUTH_ERROR:
            self.access.rejected(key)
            return await self.outcome.no_key(message, KEY_REJECTED_NOTICE, run.error)
        if run.error is None and run.result is not None and run.result.aborted:
            return await self.outcome.cancelled(message, shutting_down=self._stopping)
        self.access.accepted()
        outcome = await (
            self.outcome.failed(run, run.error) if run.error else self.outcome.answered(run)
        )
        await self.hooks.emit(RequestFinished(run, before))  # versioning stages it now
        return outcome
