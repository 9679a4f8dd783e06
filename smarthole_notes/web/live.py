"""What the pipeline is doing right now, followed from its events, and the live WebSocket.

The pipeline publishes `message_state` whenever a message's state changes (queued,
processing, waiting for a key, retry scheduled, failed, refused, or `done` when it left the
inbox), besides `queued` when a message enters its queue and `response`, `error` or
`cancelled` when processing ends; it works one message at a time, oldest first. So the
queue as the page must show it (the one being processed, the ones waiting) follows from
those events alone. `LiveState` keeps that picture and republishes it as `queue_state`
whenever it changes, so every page shows the same thing, and the page's working state
("Working…", Stop) is only on while a message really is queued or processing.

A message can leave the queue without an event we see; while anything is in flight, a
light check against the pipeline's states (or the inbox) drops such ids.
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
from smarthole_notes.inbox import Inbox, MessageState

log = logging.getLogger(__name__)

TERMINAL_EVENTS = frozenset({"response", "error", "cancelled"})
IN_FLIGHT = frozenset({"queued", "processing"})
"""The states in which a message is in the pipeline's queue (the page is working)."""
PRUNE_SECONDS = 2.0
_CLOSED: Event = {"type": "__closed__"}


class LiveState:
    """The queue as seen from the bus: `processing` (head) and `queued` (the rest)."""

    def __init__(
        self,
        bus: EventBus,
        inbox: Inbox,
        states: Callable[[], Mapping[str, MessageState]] | None = None,
    ) -> None:
        """`states` is the pipeline's `message_states` (the truth for pruning)."""
        self._bus = bus
        self._inbox = inbox
        self._states = states
        self._order: list[str] = []
        self._task: asyncio.Task[None] | None = None
        self._subscribed = asyncio.Event()

    @property
    def processing(self) -> str | None:
        return self._order[0] if self._order else None

    @property
    def queued(self) -> list[str]:
        return self._order[1:]

    @property
    def busy(self) -> bool:
        return bool(self._order)

    def snapshot(self) -> dict[str, Any]:
        return {"processing": self.processing, "queued": self.queued}

    def observe(self, event: Event) -> bool:
        """Update from one bus event; True if the picture changed."""
        kind = event.get("type")
        message_id = event.get("message_id")
        if not isinstance(message_id, str):
            return False
        if kind == "message_state":
            return self._follow_state(message_id, event.get("state"))
        if kind == "queued" and message_id not in self._order:
            self._order.append(message_id)
            return True
        if kind in TERMINAL_EVENTS and message_id in self._order:
            self._order.remove(message_id)
            return True
        return False

    def _follow_state(self, message_id: str, state: object) -> bool:
        if state == "processing":
            if self._order[:1] == [message_id]:
                return False
            if message_id in self._order:
                self._order.remove(message_id)
            self._order.insert(0, message_id)
            return True
        if state == "queued":
            if message_id in self._order:
                return False
            self._order.append(message_id)
            return True
        if message_id in self._order:  # waiting for a key, failed, refused, done...
            self._order.remove(message_id)
            return True
        return False

    def start(self) -> None:
        """Follow the bus from now on (idempotent; needs a running loop)."""
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run(), name="web-live-state")

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
                while True:
                    try:
                        timeout = PRUNE_SECONDS if self._order else None
                        event = await asyncio.wait_for(queue.get(), timeout)
                    except TimeoutError:
                        if await self.prune():
                            self._publish()
                        continue
                    if event.get("type") != "queue_state" and self.observe(event):
                        self._publish()
            finally:
                self._subscribed.clear()

    async def prune(self) -> bool:
        """Drop ids no longer queued or processing (left without an event we saw); True if any."""
        if not self._order:
            return False
        ids = list(self._order)
        if self._states is not None:
            states = self._states()
            present = {i for i in ids if (s := states.get(i)) is not None and s.state in IN_FLIGHT}
        else:
            present = await asyncio.to_thread(lambda: {i for i in ids if i in self._inbox})
        gone = [i for i in ids if i not in present and i in self._order]
        for message_id in gone:
            self._order.remove(message_id)
        return bool(gone)

    def _publish(self) -> None:
        self._bus.publish("queue_state", **self.snapshot())


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
