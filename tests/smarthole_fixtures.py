"""Helpers for the SmartHole client tests: a client wired to lists and queues."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from smarthole_notes.smarthole import ConnectionStatus, RoutedMessage, SmartHoleClient

NAME = "Miss-Simone"
DESCRIPTION = "Personal notes assistant for an Obsidian vault."
FAST_BACKOFF = (0.05, 0.1)


class Harness:
    """A `SmartHoleClient` whose messages and statuses tests can wait for.

    By default `on_message` acks each message, as the pipeline does once it is in the inbox.
    """

    def __init__(
        self,
        url: str,
        *,
        name: str = NAME,
        description: str = DESCRIPTION,
        ack: bool = True,
        handler: Callable[[RoutedMessage], Any] | None = None,
        **options: Any,
    ) -> None:
        options.setdefault("backoff", FAST_BACKOFF)
        self.ack = ack
        self.handler = handler
        self.received: list[RoutedMessage] = []
        self.statuses: list[tuple[ConnectionStatus, str | None]] = []
        self._messages: asyncio.Queue[RoutedMessage] = asyncio.Queue()
        self._change = asyncio.Event()
        self.client = SmartHoleClient(
            url,
            name=name,
            description=description,
            version="0.1.0",
            on_message=self.on_message,
            on_status=self.on_status,
            **options,
        )

    async def on_message(self, message: RoutedMessage) -> None:
        self.received.append(message)
        self._messages.put_nowait(message)
        if self.handler is not None:
            result = self.handler(message)
            if asyncio.iscoroutine(result):
                await result
        if self.ack:
            await self.client.send_ack(message.id)

    def on_status(self, status: ConnectionStatus, detail: str | None) -> None:
        self.statuses.append((status, detail))
        event, self._change = self._change, asyncio.Event()
        event.set()

    @property
    def status_names(self) -> list[str]:
        return [status.value for status, _ in self.statuses]

    async def next_message(self, timeout: float = 5.0) -> RoutedMessage:
        async with asyncio.timeout(timeout):
            return await self._messages.get()

    def pending_messages(self) -> int:
        return self._messages.qsize()

    async def wait_for_status(
        self, status: ConnectionStatus, timeout: float = 5.0, *, detail: str | None = None
    ) -> str | None:
        """Wait until the client's status is `status` (with `detail` in its detail)."""
        try:
            async with asyncio.timeout(timeout):
                while True:
                    event = self._change
                    current = self.client.status_detail or ""
                    if self.client.status is status and (detail is None or detail in current):
                        return self.client.status_detail
                    await event.wait()
        except TimeoutError:
            raise AssertionError(
                f"status {status.value} ({detail}) not reached within {timeout:g} s; "
                f"now {self.client.status.value} ({self.client.status_detail}); "
                f"history {self.statuses}"
            ) from None


@asynccontextmanager
async def running_client(url: str, **options: Any) -> AsyncIterator[Harness]:
    """A started `Harness`, stopped on exit."""
    harness = Harness(url, **options)
    await harness.client.start()
    try:
        yield harness
    finally:
        await harness.client.stop()


@asynccontextmanager
async def connected_client(url: str, **options: Any) -> AsyncIterator[Harness]:
    """A started `Harness` that has registered."""
    async with running_client(url, **options) as harness:
        await harness.wait_for_status(ConnectionStatus.CONNECTED)
        yield harness
