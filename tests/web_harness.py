"""The service as `serve` runs it, web app included, against the stand-ins: for web tests.

`WebService` builds the real pipeline (inbox, SQLite store, event bus, agent over the
Anthropic stand-in, optionally the SmartHole client against its stand-in), the real
settings holder over `<vault>/.smarthole/settings.toml`, and the web app under uvicorn on
127.0.0.1 with an ephemeral port, all in the caller's event loop.

The API key comes from the environment like in production (`ANTHROPIC_API_KEY`, then the
credentials file under `XDG_CONFIG_HOME`): tests point both at temporary places (see
`isolated_credentials`).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import socket
import threading
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping
from pathlib import Path
from typing import Any, TypeVar

import httpx2
import pytest
import uvicorn
from websockets.asyncio.client import ClientConnection, connect

from smarthole_notes.bus import Event
from smarthole_notes.conversations.store import ConversationStore, default_path
from smarthole_notes.credentials import resolve_api_key
from smarthole_notes.inbox import Inbox, inbox_folder
from smarthole_notes.llm.anthropic_provider import make_client
from smarthole_notes.pipeline import Pipeline
from smarthole_notes.server import (
    HttpServer,
    SettingsHolder,
    SmartHoleLink,
    apply_settings_change,
)
from smarthole_notes.settings import Settings
from smarthole_notes.smarthole import ConnectionStatus, SmartHoleClient
from smarthole_notes.web import ClientFactory, UndoHook, WebContext, create_app, pipeline_undo
from tests.llm_helpers import TEST_KEY
from tests.pipeline_harness import record_events
from tests.standins.anthropic_api import AnthropicStandIn

T = TypeVar("T")

CLIENT_NAME = "Miss-Simone"
TOKEN = "test-token-0123456789abcdefghijklmnopqrstuv"


def isolated_credentials(
    monkeypatch: pytest.MonkeyPatch, config_home: Path, key: str | None = TEST_KEY
) -> None:
    """Keep the credentials file in `config_home` and the key in the environment (or none)."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(config_home))
    monkeypatch.setenv("HOME", str(config_home))
    if key is None:
        monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    else:
        monkeypatch.setenv("ANTHROPIC_API_KEY", key)


class WebService:
    """Pipeline + web app + (optionally) SmartHole client, on 127.0.0.1, in this loop."""

    def __init__(
        self,
        vault: Path,
        api: AnthropicStandIn,
        *,
        smarthole_url: str | None = None,
        token: str = TOKEN,
        undo: UndoHook | bool | None = None,
    ) -> None:
        """`undo=True` wires the real git undo (`pipeline_undo`), a callable a stand-in."""
        self.vault = vault
        self.api = api
        self.token = token
        self.settings = SettingsHolder(vault, {})
        self.inbox = Inbox(inbox_folder(vault))
        self.store = ConversationStore(default_path(vault))
        from smarthole_notes.bus import EventBus

        self.bus = EventBus()
        self.events: list[Event] = []
        self.pipeline = Pipeline(
            vault,
            settings=self.settings,
            inbox=self.inbox,
            store=self.store,
            bus=self.bus,
            api_key=resolve_api_key,
            make_client=lambda k: make_client(k.reveal(), api.base_url),
        )
        # The SmartHole wiring of `serve` itself.
        self.link = SmartHoleLink(self.pipeline, self.bus, backoff=(0.05, 0.1))
        if smarthole_url is not None:
            self.link.build(dataclasses.replace(self.settings(), smarthole_url=smarthole_url))
        self.applied: list[tuple[Settings, Settings]] = []
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self.port: int = self._sock.getsockname()[1]
        self.ctx = WebContext(
            pipeline=self.pipeline,
            settings=self.settings,
            vault=vault,
            token=token,
            port=self.port,
            smarthole=lambda: self.link.client,
            apply_settings=self._apply_settings,
            anthropic_client=ClientFactory(resolve_api_key, api.base_url),
            undo=pipeline_undo(self.pipeline) if undo is True else (undo or None),
        )
        self.app = create_app(self.ctx)
        self._server: HttpServer | None = None
        self._serving: asyncio.Task[None] | None = None
        self._watcher: asyncio.Task[None] | None = None

    # ------------------------------------------------------------------ wiring like serve

    @property
    def client(self) -> SmartHoleClient | None:
        return self.link.client

    async def _apply_settings(self, before: Settings, after: Settings) -> None:
        """What `serve` does on a settings change."""
        self.applied.append((before, after))
        await apply_settings_change(self.pipeline, self.link, before, after)

    # ------------------------------------------------------------------ life

    async def start(self) -> None:
        self._watcher = await record_events(self.bus, self.events)
        config = uvicorn.Config(self.app, log_level="warning", lifespan="on")
        self._server = HttpServer(config)
        self._serving = asyncio.create_task(self._server.serve(sockets=[self._sock]))
        await self.pipeline.start()
        if self.client is not None:
            await self.client.start()
            for _ in range(250):
                if self.client.status is ConnectionStatus.CONNECTED:
                    break
                await asyncio.sleep(0.02)
        while not self._server.started:
            await asyncio.sleep(0.005)

    async def stop(self) -> None:
        if self.client is not None:
            await self.client.stop()
        await self.pipeline.stop(2.0)
        if self._server is not None:
            self._server.should_exit = True
        if self._serving is not None:
            await asyncio.wait_for(self._serving, 10)
        if self._watcher is not None:
            self._watcher.cancel()
        self._sock.close()
        self.store.close()

    async def __aenter__(self) -> WebService:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # ------------------------------------------------------------------ helpers

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def page_url(self) -> str:
        """The start-up URL `serve` prints."""
        return f"{self.url}/?token={self.token}"

    @property
    def headers(self) -> dict[str, str]:
        return {"authorization": f"Bearer {self.token}"}

    def http(self, *, auth: bool = True) -> httpx2.AsyncClient:
        return httpx2.AsyncClient(
            base_url=self.url, headers=self.headers if auth else {}, timeout=10.0
        )

    @contextlib.asynccontextmanager
    async def websocket(
        self, *, token: str | None = None, headers: Mapping[str, str] | None = None
    ) -> AsyncIterator[ClientConnection]:
        given = self.token if token is None else token
        async with connect(
            f"ws://127.0.0.1:{self.port}/api/events?token={given}",
            additional_headers=dict(headers or {}),
            open_timeout=5,
        ) as ws:
            yield ws

    async def idle(self, timeout: float = 20.0) -> None:
        await asyncio.wait_for(self.pipeline.wait_idle(), timeout)

    def of_type(self, event_type: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e["type"] == event_type]

    async def wait_for_event(
        self, event_type: str, timeout: float = 10.0, **fields: Any
    ) -> dict[str, Any]:
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            for event in self.events:
                if event["type"] == event_type and all(
                    event.get(k) == v for k, v in fields.items()
                ):
                    return event
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"no {event_type} event with {fields} in {timeout}s")
            await asyncio.sleep(0.01)


async def next_event(
    ws: ClientConnection, event_type: str, timeout: float = 10.0
) -> dict[str, Any]:
    """Read frames until one of `event_type` arrives."""
    async with asyncio.timeout(timeout):
        while True:
            event = json.loads(await ws.recv())
            if event["type"] == event_type:
                return dict(event)


class ThreadedWebService:
    """A `WebService` on its own event loop in a background thread.

    For synchronous callers (schemathesis, which drives requests itself) and for
    measurements where the service must not share a loop with the measuring code.
    """

    def __init__(self, vault: Path, api: AnthropicStandIn, **options: Any) -> None:
        self._vault = vault
        self._api = api
        self._options = options
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="web-service", daemon=True
        )
        self._service: WebService | None = None

    @property
    def service(self) -> WebService:
        if self._service is None:
            raise RuntimeError("not started")
        return self._service

    def run(self, coroutine: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
        """Run a coroutine on the service's loop and wait for its result."""
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout)

    def call(self, function: Callable[[], T], timeout: float = 30.0) -> T:
        """Call a function on the service's loop (e.g. `bus.publish`) and wait for it."""

        async def call_it() -> T:
            return function()

        return self.run(call_it(), timeout)

    def start(self) -> ThreadedWebService:
        self._thread.start()

        async def create() -> WebService:
            service = WebService(self._vault, self._api, **self._options)
            await service.start()
            return service

        self._service = self.run(create())
        return self

    def stop(self) -> None:
        if self._service is not None:
            self.run(self._service.stop())
            self._service = None
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
        self._loop.close()

    def __enter__(self) -> ThreadedWebService:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
