"""Telling the user: answers and failures to the chat page (the bus) and to SmartHole.

An answer is delivered only after it was recorded, and its message leaves the inbox only
once its notification left for SmartHole: a crash in between makes the next start deliver
the recorded answer again (at least once), never run the request again.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol

from smarthole_notes.bus import EventBus
from smarthole_notes.conversations.store import StoredMessage
from smarthole_notes.inbox import Inbox, InboxMessage
from smarthole_notes.llm.service import ToolCallRecord
from smarthole_notes.pipeline.jobs import SideJobs
from smarthole_notes.smarthole.notifications import (
    NotificationKind,
    NotificationOutcome,
    notification_title,
)
from smarthole_notes.tools.catalog import NOTE_WRITING_TOOLS
from smarthole_notes.tools.conversation import Notifier, trim

log = logging.getLogger("smarthole_notes.pipeline")

DELIVERY_WAIT_SECONDS = 330.0
"""How long an answered message whose notification is still queued stays in the inbox."""


class _ToolCall(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def input(self) -> Mapping[str, Any]: ...
    @property
    def is_error(self) -> bool: ...


def touched_note(tool_calls: Iterable[_ToolCall]) -> str | None:
    """The one note (or folder) a request changed, for its notification's title; None if
    it changed none or several."""
    paths: set[str] = set()
    for call in tool_calls:
        if call.name not in NOTE_WRITING_TOOLS or call.is_error:
            continue
        key = "destination" if call.name == "move_file" else "path"
        value = call.input.get(key)
        if isinstance(value, str) and value.strip("/ "):
            paths.add(value.strip("/ "))
    return paths.pop() if len(paths) == 1 else None


class Messenger(Notifier, Protocol):
    """SmartHole responses the pipeline sends (the SmartHole client implements this)."""

    async def send_ack(self, message_id: str) -> bool: ...

    def pending_for(self, message_id: str) -> list[str]: ...


class Delivery:
    def __init__(self, inbox: Inbox, bus: EventBus, jobs: SideJobs) -> None:
        self.inbox = inbox
        self.bus = bus
        self.messenger: Messenger | None = None
        self._jobs = jobs

    async def answer(
        self,
        message: InboxMessage,
        answer: StoredMessage,
        tools_run: Sequence[ToolCallRecord] = (),
    ) -> None:
        """Report a recorded answer; the inbox file goes once it is out."""
        self.bus.publish(
            "response",
            message_id=message.id,
            text=answer.content,
            tools_used=[dataclasses.asdict(t) for t in answer.tools_used],
            usage=dict(answer.usage) if answer.usage else None,
        )
        if not self._to_smarthole(message):
            await asyncio.to_thread(self.inbox.remove, message.id)
            return
        changed = any(t.name in NOTE_WRITING_TOOLS and not t.is_error for t in answer.tools_used)
        title = notification_title(
            "answer", message.text, note=touched_note(tools_run), changed=changed
        )
        if await self.notify(message, "answer", title, answer.content):
            await asyncio.to_thread(self.inbox.remove, message.id)
        else:
            self._jobs.start(self._remove_when_sent(message.id))

    async def failure(self, message: InboxMessage, text: str, code: str) -> None:
        self.bus.publish("error", message_id=message.id, message=text, code=code)
        await self.notify(message, "failure", notification_title("failure", message.text), text)

    async def notify(
        self, message: InboxMessage, kind: NotificationKind, title: str, body: str
    ) -> bool:
        """A SmartHole notification for `message`; True once it is written to the socket
        (or when there is nothing to send: the message did not come from SmartHole)."""
        if not self._to_smarthole(message):
            return True
        assert self.messenger is not None
        result = await self.messenger.send_notification(message.id, title, trim(body), kind=kind)
        return result.outcome is NotificationOutcome.SENT

    def _to_smarthole(self, message: InboxMessage) -> bool:
        return message.source == "smarthole" and self.messenger is not None

    async def _remove_when_sent(self, message_id: str) -> None:
        """Keep an answered message in the inbox until its notification left (a crash
        meanwhile makes the next start deliver it), then remove it."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + DELIVERY_WAIT_SECONDS
        messenger = self.messenger
        # The outbox keeps no per-message event; a light poll while a final waits.
        while messenger is not None and messenger.pending_for(message_id):
            if loop.time() >= deadline:
                break
            await asyncio.sleep(0.1)
        await asyncio.to_thread(self.inbox.remove, message_id)
