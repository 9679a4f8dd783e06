"""The live event stream: what the pipeline is doing, for the chat page and any other watcher.

Events are JSON-ready dicts with a `type` (`message_received`, `queued`, `agent_message`,
`text_delta`, `stream_restarted`, `tool_started`, `tool_finished`, `response`, `error`,
`cancelled`, `status`, `retrospection`). A slow subscriber loses its oldest events rather
than slowing the agent down.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

log = logging.getLogger(__name__)

Event = dict[str, Any]


class EventBus:
    def __init__(self, queue_size: int = 1000) -> None:
        self._subscribers: set[asyncio.Queue[Event]] = set()
        self._queue_size = queue_size

    def publish(self, event_type: str, **fields: Any) -> None:
        event: Event = {"type": event_type, **fields}
        for queue in list(self._subscribers):
            if queue.full():
                with contextlib.suppress(asyncio.QueueEmpty):
                    queue.get_nowait()
            queue.put_nowait(event)

    @contextlib.asynccontextmanager
    async def subscribe(self) -> AsyncIterator[asyncio.Queue[Event]]:
        queue: asyncio.Queue[Event] = asyncio.Queue(self._queue_size)
        self._subscribers.add(queue)
        try:
            yield queue
        finally:
            self._subscribers.discard(queue)
