"""What happens to a failed message next: retried on a schedule, or waiting for the user.

A transient failure (overloaded, rate limited, server error, network, a malformed stream) is
tried again after each step of `retry_failed_messages_minutes` (1, 5, 15, 60, 240 by
default); the schedule lives in the message's inbox file, so it survives restarts. A
failure a retry cannot fix (a refusal, an invalid request, a tool call cut by the output
limit), or a spent schedule, waits for the user ("process again").
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from smarthole_notes.inbox import InboxMessage, StoredState
from smarthole_notes.llm.errors import ErrorCode, LLMError
from smarthole_notes.pipeline.states import MessageStates
from smarthole_notes.pipeline.texts import (
    needs_user_text,
    refused_text,
    retries_spent_text,
    retry_text,
)

DEFAULT_RETRY_MINUTES = (1, 5, 15, 60, 240)


@dataclass(frozen=True, slots=True)
class Decision:
    state: StoredState
    text: str
    """What the user is told, exactly."""
    next_attempt_at: datetime | None = None
    retries: int | None = None
    """The new count of automatic retries scheduled, when it changes."""


def decide(
    error: LLMError,
    message: InboxMessage,
    schedule: tuple[float, ...],
    now: datetime,
    unit_seconds: float = 60.0,
) -> Decision:
    """The message's next state after `error`, and the sentence that says so."""
    if error.code is ErrorCode.REFUSED:
        return Decision("refused", refused_text(error))
    if not error.retryable:
        return Decision("failed", needs_user_text(error))
    steps = schedule or DEFAULT_RETRY_MINUTES
    if message.retries >= len(steps):
        return Decision("failed", retries_spent_text(error, len(steps)))
    due = now + timedelta(seconds=steps[message.retries] * unit_seconds)
    return Decision("retry_scheduled", retry_text(error, due), due, message.retries + 1)


async def run_retries(
    states: MessageStates,
    clock: Callable[[], datetime],
    wake: asyncio.Event,
    due: Callable[[str], Awaitable[None]],
) -> None:
    """For the life of the service: call `due` for each scheduled retry when its time comes
    (`wake` is set when a new one is scheduled)."""
    while True:
        now = clock()
        scheduled = states.retries()
        for when, message_id in scheduled:
            if when <= now:
                await due(message_id)
        later = [when for when, _ in scheduled if when > now]
        wake.clear()
        with contextlib.suppress(TimeoutError):
            timeout = (min(later) - now).total_seconds() if later else None
            await asyncio.wait_for(wake.wait(), timeout)
