"""The queue as the page shows it, from the pipeline's own states, and the live WebSocket.

The pipeline keeps every waiting message's state (`message_states()`) and publishes
`message_state` whenever one changes (queued, processing, waiting for a key, retry scheduled,
failed, refused, or `done` when it left the inbox). The queue the page shows (the message
being processed, the ones waiting) is read from that snapshot; `QueueView` republishes it as
`queue_state` whenever a `message_state` event changes it, so every page shows the same
thing and the page's working state ("Working…", Stop) is on only while a message really is
queued or processing. No copy of the queue is kept here.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from smarthole_notes.bus import Event, EventBus
from smarthole_notes.inbox import MessageState

log = logging.getLogger(__name__)

_CLOSED: Event = {"type": "__closed__"}

QueuePicture = tuple[str | None, list[str]]


class QueueView:
    """`processing` and `queued` as read from the pipeline's states, published on change."""

    def __init__(self, bus: EventBus, states: Callable[[], Mapping[str, MessageState]]) -> None:
        """`states` is the pipeline's `message_states` (the one truth)."""
        self._bus = bus
        self._states = states
        self._shown: QueuePicture = (None, [])
        self._task: asyncio.Task[None] | None = None
        self._subscribed = asyncio.Event()

    @staticmethod
    def picture(states: Mapping[str, MessageState]) -> QueuePicture:
        processing = next((i for i, s in states.items() if s.state == "processing"), None)
        return processing, [i for i, s in states.items() if s.state == "queued"]

    @staticmethod
    def busy(states: Mapping[str, MessageState]) -> bool:
        return any(s.state in ("processing", "queued") for s in states.values())

    def start(self) -> None:
        """Follow the bus from now on (idempotent; needs a running loop)."""
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run(), name="web-queue")

    async def started(self) -> None:
        """Until the subscription is in place (events from then on are seen)."""
        self.start()
        await self._subscribed.wait()

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        async with self._bus.subscribe() as queue:
            self._subscribed.set()
            try:
                self._shown = self.picture(self._states())
                while True:
                    event = await queue.get()
                    if event.get("type") != "message_state":
                        continue
                    now = self.picture(self._states())
                    if now != self._shown:
                        self._shown = now
                        self._bus.publish("queue_state", processing=now[0], queued=now[1])
            finally:
                self._subscribed.clear()


async def event_stream(
    websocket: WebSocket, bus: EventBus, hello: Callable[[], Awaitable[dict[str, Any]]]
) -> None:
    """Serve one WebSocket: a `hello` snapshot, then every bus event as a JSON text frame.

    The client sends nothing we need; its frames are read only to notice it leaving.
    `hello` is awaited after subscribing, so no event falls between snapshot and stream
    (some may be seen twice; the page's handling is idempotent).
    """
    await websocket.accept()
    async with bus.subscribe() as queue:

        async def watch_close() -> None:
            try:
                while True:
                    message = await websocket.receive()
                    if message["type"] == "websocket.disconnect":
                        break
            except (WebSocketDisconnect, RuntimeError):
                pass
            if queue.full():
                with contextlib.suppress(asyncio.QueueEmpty):
                    queue.get_nowait()
            queue.put_nowait(_CLOSED)

        watcher = asyncio.create_task(watch_close())
        try:
            snapshot = await hello()
            await websocket.send_text(json.dumps({"type": "hello", **snapshot}, default=str))
            while True:
                event = await queue.get()
                if event is _CLOSED:
                    break
                await websocket.send_text(json.dumps(event, default=str))
        except (WebSocketDisconnect, RuntimeError, OSError):
            pass  # the page went away mid-send
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
            if websocket.client_state is WebSocketState.CONNECTED:
                with contextlib.suppress(RuntimeError, OSError):
                    await websocket.close()
