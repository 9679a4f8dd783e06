"""What side jobs cost: summaries, retrospection, commit messages, routing descriptions.

Each side job's provider is wrapped (`llm.metering.Metered`) so that every call's usage is
kept in the history with the conversation it served and published (`side_cost`): the
conversation's total then counts everything its requests made the user pay for.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime

from smarthole_notes.bus import EventBus
from smarthole_notes.conversations.store import ConversationStore, SideJob
from smarthole_notes.llm.metering import Metered
from smarthole_notes.llm.provider import Provider
from smarthole_notes.llm.types import Usage

log = logging.getLogger("smarthole_notes.pipeline")


class SideCosts:
    """Meters side jobs' providers into the conversation store."""

    def __init__(
        self, store: ConversationStore, bus: EventBus, clock: Callable[[], datetime]
    ) -> None:
        self._store = store
        self._bus = bus
        self._clock = clock

    def metered(
        self, provider: Provider, job: SideJob, conversation_id: str | None = None
    ) -> Metered:
        """`provider`, its calls' costs kept as `job`'s, with `conversation_id`."""

        async def keep(usage: Usage, model: str) -> None:
            await self.keep(job, usage, model, conversation_id)

        return Metered(provider, keep)

    async def keep(
        self, job: SideJob, usage: Usage, model: str, conversation_id: str | None
    ) -> None:
        """Store and publish one call's cost; a failure is logged, never raised (the side
        job it measures must not fail for it)."""
        record = usage.to_dict(model)
        try:
            kept = await asyncio.to_thread(
                self._store.add_side_cost,
                job,
                record,
                at=self._clock(),
                conversation_id=conversation_id,
            )
        except Exception as exc:
            log.warning("Could not keep what the %s cost: %s", job, exc)
            return
        self._bus.publish("side_cost", conversation_id=kept.conversation_id, job=job, usage=record)
