"""Every waiting message's state, as the user is shown it, and where it is kept.

Queued and processing are known only to the running service; the states a restart must
know (waiting for a key, a scheduled retry, failed, refused) are written to the message's
inbox file first. Every change is published as a `message_state` event (`done`: the message
left the inbox), so the chat page, the API and `inbox list` all show the same thing.
"""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import datetime
from typing import Any

from smarthole_notes.bus import EventBus
from smarthole_notes.conversations.store import ConversationStore
from smarthole_notes.inbox import DeliveryState, Inbox, InboxMessage, MessageState, StoredState


class MessageStates:
    def __init__(self, inbox: Inbox, bus: EventBus) -> None:
        self._inbox = inbox
        self._bus = bus
        self._states: dict[str, MessageState] = {}

    def snapshot(self) -> dict[str, MessageState]:
        return dict(self._states)

    def get(self, message_id: str) -> MessageState | None:
        return self._states.get(message_id)

    def show(self, message_id: str, state: MessageState | None) -> None:
        """Keep the picture and tell every watcher; None: the message left the inbox."""
        if state is None:
            if self._states.pop(message_id, None) is not None:
                self._bus.publish(
                    "message_state", message_id=message_id, state="done",
                    next_attempt_at=None, error=None,
                )  # fmt: skip
        elif self._states.get(message_id) != state:
            self._states[message_id] = state
            self._bus.publish("message_state", message_id=message_id, **state.to_json())

    def show_stored(self, message: InboxMessage, state: DeliveryState | None = None) -> None:
        """The state its inbox file holds (or `state`, for queued and processing)."""
        view = message.view()
        self.show(message.id, view if state is None else dataclasses.replace(view, state=state))

    async def store(
        self, message_id: str, state: StoredState, *, next_attempt_at: datetime | None = None,
        error: str | None = None, **changes: Any,
    ) -> InboxMessage | None:  # fmt: skip
        """Persist a waiting message's state (it survives restarts), then show it."""
        updated = await asyncio.to_thread(
            self._inbox.update, message_id, state=state, error=error,
            next_attempt_at=next_attempt_at.isoformat() if next_attempt_at else None, **changes,
        )  # fmt: skip
        if updated is not None:
            self.show_stored(updated)
        return updated

    async def waiting(self, store: ConversationStore) -> list[tuple[InboxMessage, MessageState]]:
        """The messages still in the inbox, oldest first, each with its state as shown (the
        answered ones only waiting for their clean-up are not the user's concern)."""

        def unanswered() -> list[InboxMessage]:
            return [m for m in self._inbox.pending() if not store.is_processed(m.id)]

        pending = await asyncio.to_thread(unanswered)
        return [(m, self._states.get(m.id) or m.view()) for m in pending]

    def waiting_for_key(self) -> bool:
        return any(s.state == "waiting_for_key" for s in self._states.values())

    def in_state(self, state: str) -> list[str]:
        return [message_id for message_id, s in self._states.items() if s.state == state]

    def retries(self) -> list[tuple[datetime, str]]:
        """Scheduled retries, soonest first."""
        return sorted(
            (s.next_attempt_at, message_id)
            for message_id, s in self._states.items()
            if s.state == "retry_scheduled" and s.next_attempt_at is not None
        )
