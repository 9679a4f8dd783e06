"""How a message's processing ends, each told truthfully and recorded where it must be.

Answered (recorded, then delivered), re-delivered (answered before a crash), failed (a
scheduled retry or waiting for the user, as `retries.decide` says), refused (kept in the
history as a refusal), cancelled, interrupted by shutdown, or waiting for an API key.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from smarthole_notes.bus import EventBus
from smarthole_notes.conversations.store import ConversationStore
from smarthole_notes.inbox import Inbox, InboxMessage
from smarthole_notes.llm.errors import LLMError
from smarthole_notes.pipeline.delivery import Delivery
from smarthole_notes.pipeline.hooks import AnswerRecorded, Hooks
from smarthole_notes.pipeline.retries import decide
from smarthole_notes.pipeline.states import MessageStates
from smarthole_notes.pipeline.turn import TurnRun, Turns
from smarthole_notes.settings import Settings

log = logging.getLogger("smarthole_notes.pipeline")


@dataclass(frozen=True, slots=True)
class Outcome:
    """How processing one message ended (for tests, `inbox process` and logs)."""

    message_id: str
    status: str
    """answered, redelivered, retry_scheduled, failed, refused, cancelled, interrupted,
    no_key, duplicate."""
    text: str = ""


class Outcomes:
    def __init__(
        self,
        *,
        inbox: Inbox,
        store: ConversationStore,
        bus: EventBus,
        states: MessageStates,
        turns: Turns,
        delivery: Delivery,
        hooks: Hooks,
        settings: Callable[[], Settings],
        clock: Callable[[], datetime],
        retry_unit_seconds: float,
        retry_scheduled: Callable[[], None],
    ) -> None:
        self._inbox = inbox
        self._store = store
        self._bus = bus
        self._states = states
        self._turns = turns
        self._delivery = delivery
        self._hooks = hooks
        self._settings = settings
        self._clock = clock
        self._retry_unit = retry_unit_seconds
        self._retry_scheduled = retry_scheduled

    async def answered(self, run: TurnRun) -> Outcome:
        stored = await self._turns.record_answer(run)  # the commit point
        self._states.show(run.message.id, None)
        assert run.result is not None
        await self._delivery.answer(run.message, stored, run.result.tools_used)
        await self._hooks.emit(AnswerRecorded(run))
        return Outcome(run.message.id, "answered", stored.content)

    async def redeliver(self, message: InboxMessage) -> Outcome:
        """An answer recorded before a crash or shutdown, never delivered: deliver it now."""
        answer = await asyncio.to_thread(self._store.answer_for, message.id)
        self._states.show(message.id, None)
        if answer is None:
            await asyncio.to_thread(self._inbox.remove, message.id)
            return Outcome(message.id, "duplicate")
        log.info("Message %s was answered before a restart; delivering that answer", message.id)
        await self._delivery.answer(message, answer)
        return Outcome(message.id, "redelivered", answer.content)

    async def failed(self, run: TurnRun, error: LLMError) -> Outcome:
        """Tell the user exactly what happened and what will happen next, and keep it."""
        message = run.message
        log.warning("Message %s failed: %s (%s)", message.id, error.code, error.detail)
        schedule = tuple(self._settings().retry_failed_messages_minutes)
        decision = decide(error, message, schedule, self._clock(), self._retry_unit)
        if decision.state == "refused":
            await self._turns.record_refusal(run, error)
        retries = {} if decision.retries is None else {"retries": decision.retries}
        await self._states.store(
            message.id, decision.state, next_attempt_at=decision.next_attempt_at,
            error=decision.text, last_error=f"{error.code}: {error.detail}", **retries,
        )  # fmt: skip
        self._retry_scheduled()
        await self._delivery.failure(message, decision.text, str(error.code))
        return Outcome(message.id, decision.state, decision.text)

    async def cancelled(self, message: InboxMessage, *, shutting_down: bool) -> Outcome:
        if shutting_down:
            log.info("Message %s was interrupted by shutdown; it stays in the inbox", message.id)
            self._states.show_stored(message, "queued")
            return Outcome(message.id, "interrupted")
        await asyncio.to_thread(self._inbox.remove, message.id)
        self._states.show(message.id, None)
        self._bus.publish("cancelled", message_id=message.id)
        return Outcome(message.id, "cancelled")

    async def no_key(
        self, message: InboxMessage, notice: str, error: LLMError | None = None
    ) -> Outcome:
        """The message waits for a (new) key; the user is told once."""
        told = message.state == "waiting_for_key" and message.error == notice
        last_error = f"{error.code}: {error.detail}" if error else message.last_error
        await self._states.store(message.id, "waiting_for_key", error=notice, last_error=last_error)
        if not told:
            log.warning("No usable Anthropic API key: message %s waits in the inbox", message.id)
            code = "no_api_key" if error is None else str(error.code)
            await self._delivery.failure(message, notice, code)
        return Outcome(message.id, "no_key", notice)
