"""What happens to a message, as typed events the side jobs subscribe to.

The parts that process a message announce what happened (a request finished, an answer was
recorded, a conversation ended); the side jobs (git versioning, the conversation lifecycle)
subscribe instead of being called by them. Handlers are awaited in subscription order by
whoever emits, so work that must be done before the next message starts (staging a
request's changes for its commit) is; a failing handler is logged and never reaches the user.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from smarthole_notes.conversations.store import Conversation
    from smarthole_notes.pipeline.turn import TurnRun
    from smarthole_notes.versioning import Snapshot

log = logging.getLogger("smarthole_notes.pipeline")


@dataclass(frozen=True, slots=True)
class RequestFinished:
    """The agent ran on a message (answered, or failed after doing some of it)."""

    run: TurnRun
    before: Snapshot | None
    """The vault's git state before the request (None when versioning is off)."""


@dataclass(frozen=True, slots=True)
class AnswerRecorded:
    """The answer is in the history: the message is processed."""

    run: TurnRun


@dataclass(frozen=True, slots=True)
class ConversationEnded:
    """A conversation ended (idle, or by the agent): it can be summarised and reflected on."""

    conversation: Conversation


E = TypeVar("E", RequestFinished, AnswerRecorded, ConversationEnded)


class Hooks:
    def __init__(self) -> None:
        self._handlers: dict[type[Any], list[Callable[[Any], Awaitable[None]]]] = defaultdict(list)

    def on(self, kind: type[E], handler: Callable[[E], Awaitable[None]]) -> None:
        self._handlers[kind].append(handler)

    async def emit(self, event: RequestFinished | AnswerRecorded | ConversationEnded) -> None:
        for handler in self._handlers[type(event)]:
            try:
                await handler(event)
            except Exception:
                log.exception("A side job failed on %s", type(event).__name__)
