"""The conversation lifecycle around messages: summaries, retrospection, retention, stale states.

All of it is side work: it never delays an answer, and its failures are only logged.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

from smarthole_notes.bus import EventBus
from smarthole_notes.clock import local_zone
from smarthole_notes.conversations.store import Conversation, ConversationStore
from smarthole_notes.conversations.summary import summarise
from smarthole_notes.llm import sdk
from smarthole_notes.pipeline.access import ApiAccess
from smarthole_notes.pipeline.costs import SideCosts
from smarthole_notes.pipeline.hooks import AnswerRecorded, ConversationEnded, Hooks
from smarthole_notes.pipeline.jobs import SideJobs
from smarthole_notes.retrospection import retrospect_ended_conversation
from smarthole_notes.settings import Settings

log = logging.getLogger("smarthole_notes.pipeline")

STATE_SWEEP_SECONDS = 15 * 60


class ConversationLifecycle:
    def __init__(
        self,
        vault: Path,
        store: ConversationStore,
        bus: EventBus,
        settings: Callable[[], Settings],
        access: ApiAccess,
        jobs: SideJobs,
        clock: Callable[[], datetime],
        costs: SideCosts,
    ) -> None:
        self._vault = vault
        self._costs = costs
        self._store = store
        self._bus = bus
        self._settings = settings
        self._access = access
        self._jobs = jobs
        self._clock = clock

    def subscribe(self, hooks: Hooks) -> None:
        self._hooks = hooks
        hooks.on(ConversationEnded, self._ended)
        hooks.on(AnswerRecorded, self._answer_recorded)

    async def _ended(self, event: ConversationEnded) -> None:
        """Summarise and reflect on it, in the background."""
        self._jobs.start(self._after_ended(event.conversation, self._settings()))

    async def _answer_recorded(self, event: AnswerRecorded) -> None:
        """The agent asked to end the conversation: now it ends. Old ones beyond the limit go."""
        run = event.run
        if run.turn.end_reason is not None:
            ended = await asyncio.to_thread(
                self._store.end_conversation, run.conversation.id, "explicit", self._clock()
            )
            await self._hooks.emit(ConversationEnded(ended))
        limit = self._settings().max_conversations_retained
        await asyncio.to_thread(self._store.enforce_retention, limit)

    async def _after_ended(self, conversation: Conversation, settings: Settings) -> None:
        """Title and summary (a failure leaves it untitled), then retrospection if it is on."""
        if self._access.key() is None:
            return
        await sdk.loaded()  # `serve` starts without the SDK
        from smarthole_notes.llm.anthropic_provider import AnthropicProvider

        client = self._access.current_client()
        if client is None:
            return
        messages = await asyncio.to_thread(self._store.messages, conversation.id)
        if not messages:
            return
        costs = self._costs
        provider = AnthropicProvider(client, settings.model, streaming=False)
        try:
            title, summary = await summarise(
                costs.metered(provider, "summary", conversation.id), messages
            )
            conversation = await asyncio.to_thread(
                self._store.set_summary, conversation.id, title, summary
            )
        except Exception as exc:
            log.warning("Could not summarise conversation %s: %s", conversation.id, exc)
        zone, _zone_name = local_zone()
        await retrospect_ended_conversation(
            settings=settings,
            llm=costs.metered(provider, "retrospection", conversation.id),
            store=self._store,
            conversation=conversation,
            vault=self._vault,
            now=self._clock(),
            tz=zone,
            bus=self._bus,
        )

    def drop_stale_states(self) -> None:
        """Pending questions older than the setting are forgotten. Blocking."""
        timeout = timedelta(minutes=self._settings().conversation_state_timeout_minutes)
        dropped = self._store.drop_stale_states(self._clock() - timeout)
        if dropped:
            log.info("Dropped %d stale pending questions", dropped)

    async def sweep_states(self) -> None:
        """Every 15 minutes, for the life of the service."""
        while True:
            await asyncio.sleep(STATE_SWEEP_SECONDS)
            await asyncio.to_thread(self.drop_stale_states)
