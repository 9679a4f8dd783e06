"""The door messages come in by, open before the pipeline has loaded.

`serve` is ready (address printed, SmartHole registered, messages acked) before the
pipeline's modules (the agent, the tools, the vault's index, git versioning) are imported:
until then a message only needs to be stored durably to be acked, so the intake writes it
to the inbox and holds it. Once the pipeline is built, `open_to` starts it with the held
messages (recorded at their arrival times, run after what a previous run left) and every
later message goes straight to it.
Nothing is lost in between: a held message is already in the inbox, so even a crash before
the hand-over leaves it for the next start.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Protocol

from smarthole_notes.inbox import Inbox, InboxMessage

if TYPE_CHECKING:
    from smarthole_notes.pipeline import Pipeline
    from smarthole_notes.pipeline.delivery import Messenger


class MessageIntake(Protocol):
    """Where a routed message goes (the intake, or the pipeline itself in tests and tools)."""

    messenger: Messenger | None

    async def submit(self, message: InboxMessage) -> bool: ...


class Intake:
    """Stores and holds messages until the pipeline exists, then passes everything on."""

    def __init__(self, inbox: Inbox) -> None:
        self.inbox = inbox
        self._held: list[tuple[InboxMessage, datetime]] = []
        self._pipeline: Pipeline | None = None
        self._messenger: Messenger | None = None
        self._lock = asyncio.Lock()  # a hand-over never overtakes a message being stored

    @property
    def held(self) -> int:
        """How many messages wait for the pipeline."""
        return len(self._held)

    @property
    def messenger(self) -> Messenger | None:
        return self._messenger

    @messenger.setter
    def messenger(self, messenger: Messenger | None) -> None:
        self._messenger = messenger
        if self._pipeline is not None:
            self._pipeline.messenger = messenger

    async def submit(self, message: InboxMessage) -> bool:
        """Store durably (the caller acks then). False if the id was already seen."""
        if self._pipeline is None:
            async with self._lock:
                if self._pipeline is None:
                    arrived = datetime.now(UTC)
                    if not await asyncio.to_thread(self.inbox.put, message):
                        return False
                    self._held.append((message, arrived))
                    return True
        return await self._pipeline.submit(message)

    async def open_to(self, pipeline: Pipeline) -> None:
        """Start `pipeline` with the held messages, then send it every later one.

        Its slow start-up half runs while messages are still stored and held here (their
        acks never wait for git or the index); then, in a moment no message can slip
        through, the held ones are recorded at their arrival times and the whole inbox is
        queued oldest first: what a previous run left before what arrived since."""
        pipeline.messenger = self._messenger
        await pipeline.prepare()
        async with self._lock:
            held, self._held = self._held, []
            try:
                await pipeline.begin(held)
            except BaseException:
                self._held = held + self._held  # still held (and in the inbox)
                raise
            pipeline.messenger = self._messenger  # SmartHole may have been rebuilt meanwhile
            self._pipeline = pipeline
