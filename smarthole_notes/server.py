"""`smarthole-notes serve`: the SmartHole client, the pipeline and the HTTP port, on one loop.

Starts even without an API key (messages are accepted, acked and kept until a key is set).
SIGINT/SIGTERM stop taking messages, let the current one finish within a grace period or
cancel it (it stays in the inbox), and exit cleanly.

Starts fast: the port is bound, the address printed and SmartHole messages accepted and
acked (stored in the inbox by the `Intake`) before the pipeline (the agent, the tools, the
vault's index, git versioning), the chat page's app (FastAPI and the API's models) and the
`anthropic` SDK have loaded. Right after "ready", the pipeline is imported in a thread and
built once (`LateParts`), handed the messages held meanwhile, in arrival order, then the
app; uvicorn serves a `DeferredApp` from the start, whose requests wait for the real app.
The SDK loads on first use, in a thread (`llm.sdk`): for the first message (which waits for
it, acked already), or when the chat page is opened (it will soon want a client); until
then it costs neither time nor memory. None of the modules imported before "ready" imports
the SDK, `mcp`, FastAPI or the pipeline's parts (tests/test_startup.py checks it).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import importlib
import logging
import signal
import socket
import sys
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import uvicorn

from smarthole_notes import __version__
from smarthole_notes.bus import EventBus
from smarthole_notes.credentials import NO_API_KEY_MESSAGE, credentials_path, resolve_api_key
from smarthole_notes.durable import write_file_atomically
from smarthole_notes.inbox import Inbox, InboxMessage, inbox_folder
from smarthole_notes.intake import Intake, MessageIntake
from smarthole_notes.llm import sdk
from smarthole_notes.llm.errors import ConfigurationError
from smarthole_notes.logs import configure_logging
from smarthole_notes.settings import Settings, load_settings, save_settings
from smarthole_notes.smarthole import ConnectionStatus, RoutedMessage, SmartHoleClient
from smarthole_notes.web.context import generate_token, is_loopback

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Receive, Scope, Send

    from smarthole_notes.conversations.store import ConversationStore
    from smarthole_notes.pipeline import Outcome, Pipeline

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


class HttpServer(uvicorn.Server):
    """uvicorn on our loop; the service, not uvicorn, owns SIGINT/SIGTERM."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


WEB_APP_MODULE = "smarthole_notes.web.app"  # FastAPI, the API's models, the OpenAPI document
PIPELINE_MODULE = "smarthole_notes.pipeline"  # the agent, tools, vault index, versioning


class DeferredApp:
    """The ASGI app uvicorn serves from the first moment: each request waits until the chat
    page's app is built (`build`), then goes to it. It also runs that app's lifespan (uvicorn
    runs with its own lifespan off, as it starts before the app exists)."""

    LIFESPAN_SECONDS = 10.0
    PAGE_PATH = "/"

    def __init__(self) -> None:
        self.app: ASGIApp | None = None
        self._page_opened = False
        self.failure: BaseException | None = None
        self._ready = asyncio.Event()
        self._lifespan_in: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._lifespan_task: asyncio.Task[None] | None = None
        self._state: dict[str, Any] = {}

    async def build(self, factory: Callable[[], Awaitable[ASGIApp]]) -> None:
        """Build the app (`factory` imports what it needs in threads, so the event loop
        keeps serving SmartHole), start its lifespan, then let the waiting requests through;
        if it fails, they are refused."""
        try:
            app = await factory()
            await self._start_lifespan(app)
            self.app = app
        except asyncio.CancelledError:
            raise
        except BaseException as exc:
            self.failure = exc
            raise
        finally:
            self._ready.set()

    async def wait_ready(self) -> ASGIApp | None:
        await self._ready.wait()
        return self.app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            return
        if not self._page_opened and scope.get("path") == self.PAGE_PATH:
            self._page_opened = True
            sdk.start_loading()  # the page will soon ask for models, keys, messages
        app = self.app if self.app is not None else await self.wait_ready()
        if app is None:  # the app could not be built (logged): refuse, do not hang
            if scope["type"] == "http":
                await send({"type": "http.response.start", "status": 503, "headers": []})
                await send({"type": "http.response.body", "body": b"the chat page failed"})
            else:
                await send({"type": "websocket.close", "code": 1011})
            return
        if self._state:
            scope["state"] = {**self._state, **scope.get("state", {})}
        await app(scope, receive, send)

    async def _start_lifespan(self, app: ASGIApp) -> None:
        loop = asyncio.get_running_loop()
        started: asyncio.Future[None] = loop.create_future()

        async def receive() -> dict[str, Any]:
            return await self._lifespan_in.get()

        async def send(message: Any) -> None:
            kind = message["type"]
            if kind == "lifespan.startup.complete" and not started.done():
                started.set_result(None)
            elif kind == "lifespan.startup.failed" and not started.done():
                started.set_exception(RuntimeError(message.get("message") or "startup failed"))

        async def run() -> None:
            scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": self._state}
            try:
                await app(scope, receive, send)
            except BaseException as exc:
                if not started.done():
                    started.set_exception(exc)
                raise

        self._lifespan_in.put_nowait({"type": "lifespan.startup"})
        self._lifespan_task = asyncio.create_task(run(), name="web-lifespan")
        await asyncio.wait_for(started, self.LIFESPAN_SECONDS)

    async def close(self) -> None:
        """The app's lifespan shutdown (after uvicorn has stopped serving)."""
        task = self._lifespan_task
        if task is None or task.done():
            return
        self._lifespan_in.put_nowait({"type": "lifespan.shutdown"})
        with contextlib.suppress(Exception, asyncio.CancelledError):
            await asyncio.wait_for(task, self.LIFESPAN_SECONDS)


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

    def __init__(self, intake: MessageIntake, bus: EventBus, **client_options: Any) -> None:
        self.intake = intake
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
        self.intake.messenger = client
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
            await self.intake.submit(message)
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
        inbox, bus = Inbox(inbox_folder(vault)), EventBus()
    except BaseException:
        sock.close()
        raise
    # What "ready" needs: the inbox behind the intake, and the SmartHole link.
    intake = Intake(inbox)
    link = SmartHoleLink(intake, bus)
    link.build(settings())
    if resolve_api_key() is None:
        log.warning("%s Messages are accepted and kept in the inbox meanwhile.", NO_API_KEY_MESSAGE)
    parts = LateParts(vault, settings, inbox, bus)

    async def build_app() -> ASGIApp:
        """After "ready": the pipeline, handed the messages held meanwhile, then the app."""
        pipeline = await parts.start_pipeline(intake)
        await asyncio.to_thread(importlib.import_module, WEB_APP_MODULE)
        from smarthole_notes.web import WebContext, create_app, pipeline_undo

        async def apply_settings(before: Settings, after: Settings) -> None:
            await apply_settings_change(pipeline, link, before, after)

        return create_app(
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

    site = DeferredApp()
    http = HttpServer(
        uvicorn.Config(
            site, log_level="warning", lifespan="off", access_log=False, interface="asgi3"
        )
    )
    http_task = asyncio.create_task(http.serve(sockets=[sock]), name="http")
    while not http.started:
        if http_task.done():
            await http_task
            raise ConfigurationError(f"could not serve on {options.host}:{port}")
        await asyncio.sleep(0.01)
    if link.client is not None:
        await link.client.start()
    host = f"[{options.host}]" if ":" in options.host else options.host
    print(
        f"smarthole-notes {__version__} serving {vault}\n"
        f"Chat page: http://{host}:{port}/?token={token}",
        file=sys.stderr,
        flush=True,
    )
    # Ready. The pipeline and the chat page's app load now, off the event loop; the SDK on
    # first use.
    build = asyncio.create_task(site.build(build_app), name="pipeline-and-web-app")

    def built(task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error("The service could not start", exc_info=task.exception())
            stop.set()

    build.add_done_callback(built)
    await stop.wait()

    log.info("Shutting down")
    if link.client is not None:
        await link.client.stop()
    if not build.done():
        build.cancel()
    with contextlib.suppress(Exception, asyncio.CancelledError):
        await build
    await parts.stop()
    http.should_exit = True
    try:
        with contextlib.suppress(asyncio.CancelledError):
            await http_task
        await site.close()
    finally:
        parts.close()
    return 1 if site.failure is not None else 0


class LateParts:
    """The parts `serve` builds after "ready": the conversation store and the pipeline with
    its vault-access layer, each once, shared by every message, the API and side jobs."""

    def __init__(self, vault: Path, settings: SettingsHolder, inbox: Inbox, bus: EventBus) -> None:
        self.vault = vault
        self.settings = settings
        self.inbox = inbox
        self.bus = bus
        self.store: ConversationStore | None = None
        self.pipeline: Pipeline | None = None

    async def start_pipeline(self, intake: Intake) -> Pipeline:
        """Import the pipeline in a thread (the loop keeps acking), build and start it."""
        await asyncio.to_thread(importlib.import_module, PIPELINE_MODULE)
        from smarthole_notes.conversations.store import ConversationStore, default_path
        from smarthole_notes.pipeline import Pipeline
        from smarthole_notes.vault import Vault

        self.store = await asyncio.to_thread(ConversationStore, default_path(self.vault))
        self.pipeline = Pipeline(
            self.vault, settings=self.settings, inbox=self.inbox, store=self.store,
            bus=self.bus, vault_access=Vault(self.vault),
        )  # fmt: skip
        await intake.open_to(self.pipeline)  # starts it, with the messages held meanwhile
        return self.pipeline

    async def stop(self) -> None:
        """Let the current message finish (or cancel it: it stays in the inbox)."""
        if self.pipeline is not None:
            await self.pipeline.stop(SHUTDOWN_GRACE_SECONDS)

    def close(self) -> None:
        """The store, last: after the chat page has stopped serving."""
        if self.store is not None:
            self.store.close()


async def process_inbox(vault: Path) -> list[Outcome]:
    """`inbox process`: run every pending message once through the pipeline, then stop."""
    from smarthole_notes.conversations.store import ConversationStore, default_path
    from smarthole_notes.pipeline import Pipeline

    settings = SettingsHolder(vault, {})
    inbox, bus = Inbox(inbox_folder(vault)), EventBus()
    store = ConversationStore(default_path(vault))
    pipeline = Pipeline(vault, settings=settings, inbox=inbox, store=store, bus=bus)
    try:
        await pipeline.start()
        await pipeline.wait_idle()
        await pipeline.stop(SHUTDOWN_GRACE_SECONDS)
    finally:
        store.close()
    return list(pipeline.outcomes)
