"""`smarthole-notes serve`: the SmartHole client, the pipeline and the HTTP port, on one loop.

Starts even without an API key (messages are accepted, acked and kept until a key is set).
SIGINT/SIGTERM stop taking messages, let the current one finish within a grace period or
cancel it (it stays in the inbox), and exit cleanly.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from smarthole_notes import __version__
from smarthole_notes.agent import NO_API_KEY_MESSAGE
from smarthole_notes.bus import EventBus
from smarthole_notes.conversations.store import ConversationStore, default_path
from smarthole_notes.credentials import resolve_api_key
from smarthole_notes.inbox import Inbox, InboxMessage, inbox_folder
from smarthole_notes.llm.errors import ConfigurationError
from smarthole_notes.pipeline import Outcome, Pipeline
from smarthole_notes.settings import Settings, load_settings
from smarthole_notes.smarthole import ConnectionStatus, RoutedMessage, SmartHoleClient

log = logging.getLogger("smarthole_notes")

SHUTDOWN_GRACE_SECONDS = 10.0


@dataclass(frozen=True, slots=True)
class ServeOptions:
    vault: Path
    host: str = "127.0.0.1"
    port: int = 8765
    token: str | None = None
    smarthole_url: str | None = None
    no_smarthole: bool = False
    model: str | None = None


class SettingsHolder:
    """The settings in effect: the file's, with this run's command-line overrides on top."""

    def __init__(self, vault: Path, overrides: dict[str, object]) -> None:
        self.vault = vault
        self.overrides = overrides
        self.current = self.reload()

    def reload(self) -> Settings:
        loaded = load_settings(self.vault, self.overrides)
        for problem in loaded.problems:
            log.warning("%s", problem.message)
        self.current = loaded.settings
        return self.current

    def __call__(self) -> Settings:
        return self.current


def open_parts(vault: Path) -> tuple[Inbox, ConversationStore, EventBus]:
    return Inbox(inbox_folder(vault)), ConversationStore(default_path(vault)), EventBus()


def health_app(pipeline: Pipeline, client: SmartHoleClient | None) -> Starlette:
    async def health(request: Request) -> JSONResponse:
        pending = await asyncio.to_thread(pipeline.inbox.pending)
        return JSONResponse(
            {
                "status": "ok",
                "version": __version__,
                "smarthole": str(client.status) if client else str(ConnectionStatus.DISABLED),
                "inbox": len(pending),
                "api_key": "set" if resolve_api_key() is not None else "not set",
            }
        )

    return Starlette(routes=[Route("/health", health)])


class _HttpServer(uvicorn.Server):
    """uvicorn on our loop; the service, not uvicorn, owns SIGINT/SIGTERM."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def serve(options: ServeOptions) -> int:
    vault = options.vault
    overrides: dict[str, object] = {}
    if options.model:
        overrides["model"] = options.model
    if options.smarthole_url:
        overrides["smarthole_url"] = options.smarthole_url
    if options.no_smarthole:
        overrides["enable_smarthole_connection"] = False
    settings = SettingsHolder(vault, overrides)
    inbox, store, bus = open_parts(vault)

    client: SmartHoleClient | None = None
    pipeline = Pipeline(vault, settings=settings, inbox=inbox, store=store, bus=bus)

    async def on_routed(routed: RoutedMessage) -> None:
        assert client is not None
        message = InboxMessage(
            id=routed.id,
            text=routed.text,
            source="smarthole",
            timestamp=routed.timestamp or datetime.now(UTC).isoformat(),
            metadata=routed.metadata,
        )
        try:
            await pipeline.submit(message)
        except Exception:
            log.exception("Could not store message %s", routed.id)
            await client.send_reject(routed.id, "smarthole-notes could not store the message")
            return
        await client.send_ack(routed.id)

    def on_status(status: ConnectionStatus, detail: str | None) -> None:
        log.info("SmartHole: %s%s", status, f" ({detail})" if detail else "")
        bus.publish("status", smarthole=str(status), detail=detail)

    current = settings()
    if current.enable_smarthole_connection:
        client = SmartHoleClient(
            current.smarthole_url,
            name=current.client_name,
            description=current.routing_description,
            version=__version__,
            on_message=on_routed,
            on_status=on_status,
        )
        pipeline.messenger = client

    if resolve_api_key() is None:
        log.warning("%s Messages are accepted and kept in the inbox meanwhile.", NO_API_KEY_MESSAGE)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)

    config = uvicorn.Config(
        health_app(pipeline, client),
        host=options.host,
        port=options.port,
        log_level="warning",
        lifespan="off",
    )
    http = _HttpServer(config)
    http_task = asyncio.create_task(http.serve(), name="http")

    while not http.started:
        if http_task.done():
            await http_task  # raises what stopped it (e.g. the port is taken)
            raise ConfigurationError(f"could not listen on {options.host}:{options.port}")
        await asyncio.sleep(0.01)
    port = http.servers[0].sockets[0].getsockname()[1] if http.servers else options.port
    await pipeline.start()
    if client is not None:
        await client.start()
    print(
        f"smarthole-notes {__version__} serving {vault} at http://{options.host}:{port}/health",
        file=sys.stderr,
        flush=True,
    )
    await stop.wait()

    log.info("Shutting down")
    if client is not None:
        await client.stop()
    await pipeline.stop(SHUTDOWN_GRACE_SECONDS)
    http.should_exit = True
    with contextlib.suppress(asyncio.CancelledError):
        await http_task
    store.close()
    return 0


async def process_inbox(vault: Path) -> list[Outcome]:
    """`inbox process`: run every pending message once through the pipeline, then stop."""
    settings = SettingsHolder(vault, {})
    inbox, store, bus = open_parts(vault)
    pipeline = Pipeline(vault, settings=settings, inbox=inbox, store=store, bus=bus)
    try:
        await pipeline.start()
        await pipeline.wait_idle()
        await pipeline.stop(SHUTDOWN_GRACE_SECONDS)
    finally:
        store.close()
    return pipeline.outcomes
