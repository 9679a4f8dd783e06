"""A pipeline wired to real parts: inbox, SQLite store, SmartHole client and the two stand-ins."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from smarthole_notes.bus import Event, EventBus
from smarthole_notes.conversations.store import ConversationStore, default_path
from smarthole_notes.credentials import ApiKey
from smarthole_notes.inbox import Inbox, InboxMessage, inbox_folder
from smarthole_notes.llm.anthropic_provider import make_client
from smarthole_notes.pipeline import Pipeline, utc_now
from smarthole_notes.server import SmartHoleLink
from smarthole_notes.settings import Settings
from smarthole_notes.smarthole import ConnectionStatus, SmartHoleClient
from tests.llm_helpers import TEST_KEY
from tests.standins.anthropic_api import AnthropicStandIn

CLIENT_NAME = "Miss-Simone"


async def record_events(bus: EventBus, into: list[Event]) -> asyncio.Task[None]:
    """Append every bus event to `into`, from now on (subscribed before this returns)."""
    ready = asyncio.Event()

    async def watch() -> None:
        async with bus.subscribe() as queue:
            ready.set()
            while True:
                into.append(await queue.get())

    task = asyncio.create_task(watch())
    await ready.wait()
    return task


class Clock:
    """An injected clock the tests move by hand."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime(2026, 2, 5, 19, 30, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


class Service:
    """Everything `serve` runs, minus the HTTP port, in the test's event loop."""

    def __init__(
        self,
        vault: Path,
        api: AnthropicStandIn,
        *,
        smarthole_url: str | None = None,
        settings: Settings | None = None,
        key: str | None = TEST_KEY,
        clock: Callable[[], datetime] | None = None,
        retry_unit_seconds: float = 60.0,
    ) -> None:
        self.vault = vault
        self.settings = settings or Settings()
        self.key: str | None = key
        self.inbox = Inbox(inbox_folder(vault))
        self.store = ConversationStore(default_path(vault))
        self.bus = EventBus()
        self.events: list[Event] = []
        self.pipeline = Pipeline(
            vault,
            settings=lambda: self.settings,
            inbox=self.inbox,
            store=self.store,
            bus=self.bus,
            api_key=lambda: ApiKey(self.key, "environment") if self.key else None,
            make_client=lambda k: make_client(k.reveal(), api.base_url),
            clock=clock or utc_now,
            retry_unit_seconds=retry_unit_seconds,
        )
        # The SmartHole wiring of `serve` itself: routed message -> inbox -> ack.
        self.link = SmartHoleLink(self.pipeline, self.bus, backoff=(0.05, 0.1))
        self.client: SmartHoleClient | None = None
        if smarthole_url is not None:
            self.client = self.link.build(
                dataclasses.replace(
                    self.settings, smarthole_url=smarthole_url, client_name=CLIENT_NAME
                )
            )
        self._watcher: asyncio.Task[None] | None = None

    async def chat(self, text: str, message_id: str) -> bool:
        return await self.pipeline.submit(
            InboxMessage(id=message_id, text=text, source="chat", timestamp="")
        )

    async def start(self) -> None:
        self._watcher = await record_events(self.bus, self.events)
        await self.pipeline.start()
        if self.client is not None:
            await self.client.start()
            for _ in range(200):
                if self.client.status is ConnectionStatus.CONNECTED:
                    break
                await asyncio.sleep(0.02)

    async def stop(self, grace: float = 5.0) -> None:
        if self.client is not None:
            await self.client.stop()
        await self.pipeline.stop(grace)
        if self._watcher is not None:
            self._watcher.cancel()
        self.store.close()

    async def idle(self, timeout: float = 20.0) -> None:
        await asyncio.wait_for(self.pipeline.wait_idle(), timeout)

    def of_type(self, event_type: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e["type"] == event_type]
