"""`smarthole-notes serve`: the SmartHole client, the pipeline and the HTTP port, on one loop.

Starts even without an API key (messages are accepted, acked and kept until a key is set).
SIGINT/SIGTERM stop taking messages, let the current one finish within a grace period or
cancel it (it stays in the inbox), and exit cleanly.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import signal
import socket
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import uvicorn

from smarthole_notes import __version__
from smarthole_notes.agent import NO_API_KEY_MESSAGE
from smarthole_notes.bus import EventBus
from smarthole_notes.conversations.store import ConversationStore, default_path
from smarthole_notes.credentials import credentials_path, resolve_api_key
from smarthole_notes.durable import write_file_atomically
from smarthole_notes.inbox import Inbox, InboxMessage, inbox_folder
from smarthole_notes.llm.errors import ConfigurationError
from smarthole_notes.logs import configure_logging
from smarthole_notes.pipeline import Outcome, Pipeline
from smarthole_notes.settings import Settings, load_settings, save_settings
from smarthole_notes.smarthole import ConnectionStatus, RoutedMessage, SmartHoleClient
from smarthole_notes.vault import Vault
from smarthole_notes.web import WebContext, create_app, generate_token, pipeline_undo
from smarthole_notes.web.context import is_loopback

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
    allow_remote: bool = False


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

    def overridden(self) -> list[str]:
        """Keys a command-line flag sets for this run."""
        return sorted(self.overrides)

    def save(self, changes: dict[str, object]) -> Settings:
        """Save to settings.toml (SettingValueError, SettingsFileError); a choice saved now
        wins over a start-up flag. Returns the settings in effect after."""
        save_settings(self.vault, changes)
        for key in changes:
            self.overrides.pop(key, None)
        return self.reload()


def open_parts(vault: Path) -> tuple[Inbox, ConversationStore, EventBus]:
    return Inbox(inbox_folder(vault)), ConversationStore(default_path(vault)), EventBus()


class HttpServer(uvicorn.Server):
    """uvicorn on our loop; the service, not uvicorn, owns SIGINT/SIGTERM."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def load_or_create_token(given: str | None) -> str:
    """The chat page's access token: `--token`, else the one made at first start (kept in
    the user's configuration folder, mode 0600, never in the vault)."""
    if given:
        return given
    path = credentials_path().parent / "web-token"
    try:
        token = path.read_text(encoding="utf-8").strip()
        if len(token) >= 32:
            return token
    except OSError:
        pass
    token = generate_token()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    write_file_atomically(path, token.encode(), mode=0o600, exact=True)
    return token


def bind_socket(host: str, port: int) -> socket.socket:
    """Bind before building the app, so the real port (also for `--port 0`) is known to
    the Host/Origin checks and printed in the start-up URL."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host.strip("[]"), port))
    except OSError as exc:
        sock.close()
        hint = ""
        if exc.errno == errno.EADDRINUSE:
            hint = (
                ": the port is already in use. Another smarthole-notes may be running (stop "
                "it first), or choose another port with --port (--port 0 picks a free one)"
            )
        raise ConfigurationError(
            f"could not listen on {host}:{port} ({exc.strerror}){hint}"
        ) from exc
    sock.listen(128)
    sock.setblocking(False)
    return sock


class SmartHoleLink:
    """The SmartHole connection as settings say, rebuilt when they change at runtime."""

    def __init__(self, pipeline: Pipeline, bus: EventBus, **client_options: Any) -> None:
        self.pipeline = pipeline
        self.bus = bus
        self.client: SmartHoleClient | None = None
        self._client_options = client_options

    def build(self, settings: Settings) -> SmartHoleClient:
        client = SmartHoleClient(
            settings.smarthole_url,
            name=settings.client_name,
            description=settings.routing_description,
            version=__version__,
            on_message=self.on_routed,
            on_status=self.on_status,
            enabled=settings.enable_smarthole_connection,
            **self._client_options,
        )
        self.client = client
        self.pipeline.messenger = client
        return client

    async def on_routed(self, routed: RoutedMessage) -> None:
        client = self.client
        assert client is not None
        message = InboxMessage(
            id=routed.id,
            text=routed.text,
            source="smarthole",
            timestamp=routed.timestamp or datetime.now(UTC).isoformat(),
            metadata=routed.metadata,
        )
        try:
            await self.pipeline.submit(message)
        except Exception:
            log.exception("Could not store message %s", routed.id)
            await client.send_reject(routed.id, "smarthole-notes could not store the message")
            return
        await client.send_ack(routed.id)

    def on_status(self, status: ConnectionStatus, detail: str | None) -> None:
        log.info("SmartHole: %s%s", status, f" ({detail})" if detail else "")
        self.bus.publish("status", smarthole=str(status), detail=detail)

    async def apply(self, before: Settings, after: Settings) -> None:
        """Settings changed in the chat page: follow them without a restart."""
        client = self.client
        if client is None:
            return
        if after.smarthole_url != before.smarthole_url:
            await client.stop()
            await self.build(after).start()
            return
        if (after.client_name, after.routing_description) != (
            before.client_name,
            before.routing_description,
        ):
            await client.update_registration(after.client_name, after.routing_description)
        if after.enable_smarthole_connection != before.enable_smarthole_connection:
            await (client.enable() if after.enable_smarthole_connection else client.disable())


async def apply_settings_change(
    pipeline: Pipeline, link: SmartHoleLink, before: Settings, after: Settings
) -> None:
    """Follow a settings change made in the chat page, without a restart."""
    await link.apply(before, after)
    if after.enable_git_version_control and not before.enable_git_version_control:
        await pipeline.versioning_changed()
    if after.verbose_logging != before.verbose_logging:
        configure_logging(after.verbose_logging)


async def serve(options: ServeOptions) -> int:
    vault = options.vault
    overrides: dict[str, object] = {}
    if options.model:
        overrides["model"] = options.model
    if options.smarthole_url:
        overrides["smarthole_url"] = options.smarthole_url
    if options.no_smarthole:
        overrides["enable_smarthole_connection"] = False
    if not is_loopback(options.host.strip("[]")):
        if not options.allow_remote:
            raise ConfigurationError(
                f"refusing to listen on {options.host}: the chat page can change your notes. "
                "Add --allow-remote if you really want other machines to reach it."
            )
        log.warning(
            "Listening on %s: other machines can reach the chat page (the token still guards it)",
            options.host,
        )
    # The port first: a busy port is reported before anything is written to the vault.
    sock = bind_socket(options.host, options.port)
    port = int(sock.getsockname()[1])
    try:
        token = load_or_create_token(options.token)
        settings = SettingsHolder(vault, overrides)
        inbox, store, bus = open_parts(vault)
    except BaseException:
        sock.close()
        raise
    # The long-lived parts, built once: every message, the API and side jobs share them.
    pipeline = Pipeline(
        vault, settings=settings, inbox=inbox, store=store, bus=bus, vault_access=Vault(vault)
    )
    link = SmartHoleLink(pipeline, bus)
    link.build(settings())

    async def apply_settings(before: Settings, after: Settings) -> None:
        await apply_settings_change(pipeline, link, before, after)

    if resolve_api_key() is None:
        log.warning("%s Messages are accepted and kept in the inbox meanwhile.", NO_API_KEY_MESSAGE)

    app = create_app(
        WebContext(
            pipeline=pipeline,
            settings=settings,
            vault=vault,
            token=token,
            port=port,
            host=options.host,
            smarthole=lambda: link.client,
            apply_settings=apply_settings,
            undo=pipeline_undo(pipeline),
        )
    )

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)

    http = HttpServer(uvicorn.Config(app, log_level="warning", lifespan="on", access_log=False))
    http_task = asyncio.create_task(http.serve(sockets=[sock]), name="http")
    while not http.started:
        if http_task.done():
            await http_task
            raise ConfigurationError(f"could not serve on {options.host}:{port}")
        await asyncio.sleep(0.01)
    await pipeline.start()
    if link.client is not None:
        await link.client.start()
    host = f"[{options.host}]" if ":" in options.host else options.host
    print(
        f"smarthole-notes {__version__} serving {vault}\n"
        f"Chat page: http://{host}:{port}/?token={token}",
        file=sys.stderr,
        flush=True,
    )
    await stop.wait()

    log.info("Shutting down")
    if link.client is not None:
        await link.client.stop()
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
    return list(pipeline.outcomes)
