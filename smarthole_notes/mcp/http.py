"""The MCP server at `/mcp` inside `serve`, over MCP's streamable HTTP transport.

Mounted behind the app's `SecurityMiddleware`, so the token, `Host` and `Origin` rules of
the rest of the API hold here too (a client without the token gets 401). The SDK's own
DNS-rebinding check is therefore left off: ours already ran, with the user's host list.

Responses are plain JSON, and the optional server-to-client SSE stream (`GET /mcp`) is
answered 405, as the transport allows: these tools send no notifications, and a stream
held open forever would keep `serve` from shutting down promptly.

The SDK's session manager needs a task group for the life of the app; it is started on
the first request and stopped with the app (`mount_mcp` chains it into the lifespan). The
MCP SDK itself is imported then too, in a thread (it takes seconds on a slow machine):
`serve` neither waits nor pays the memory for it until an MCP client comes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from smarthole_notes.mcp.live import LiveRelay
from smarthole_notes.versioning import GitVault, UndoResult

if TYPE_CHECKING:
    from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
    from starlette.applications import Starlette

    from smarthole_notes.mcp.server import McpVaultService
    from smarthole_notes.web.context import WebContext

log = logging.getLogger(__name__)

MCP_PATH = "/mcp"


def _load_sdk() -> None:
    import mcp.server.streamable_http_manager  # noqa: F401

    import smarthole_notes.mcp.server  # noqa: F401


class McpHttpEndpoint:
    """ASGI app for `/mcp`: the SDK's streamable HTTP session manager, made and started on
    the first request. `service` makes the MCP tools' service (a `McpVaultService`, or a
    function returning one, called then)."""

    def __init__(self, service: McpVaultService | Callable[[], McpVaultService]) -> None:
        self._service = service
        self._manager: StreamableHTTPSessionManager | None = None
        self._task: asyncio.Task[None] | None = None
        self._started = asyncio.Event()
        self._stop = asyncio.Event()

    @property
    def service(self) -> McpVaultService:
        if callable(self._service):  # not yet made (a service object is not callable)
            self._service = self._service()
        return self._service

    @property
    def manager(self) -> StreamableHTTPSessionManager:
        if self._manager is None:
            from mcp.server.streamable_http_manager import StreamableHTTPSessionManager

            from smarthole_notes.mcp.server import build_server

            self._manager = StreamableHTTPSessionManager(
                app=build_server(self.service), json_response=True, security_settings=None
            )
        return self._manager

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        if scope.get("method") == "GET":
            response = JSONResponse(
                {"error": "this server sends no notifications: POST JSON-RPC messages here"},
                status_code=405,
                headers={"allow": "POST, DELETE"},
            )
            await response(scope, receive, send)
            return
        await self._ensure_started()
        await self.manager.handle_request(scope, receive, send)

    async def _ensure_started(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="mcp-http")
        await self._started.wait()

    async def _run(self) -> None:
        await asyncio.to_thread(_load_sdk)  # the event loop keeps serving meanwhile
        async with self.manager.run():
            self._started.set()
            await self._stop.wait()

    async def aclose(self) -> None:
        """Stop the session manager and wait for the commits still being written."""
        self._stop.set()
        if self._task is not None:
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await asyncio.wait_for(self._task, 5)
        if not callable(self._service):  # made: its commits may still be being written
            await self._service.drain()


def service_for(ctx: WebContext) -> McpVaultService:
    """The MCP tools of a running `serve`: its settings, its repository, its event bus."""
    from smarthole_notes.mcp.server import McpVaultService

    pipeline = ctx.pipeline

    async def pipeline_undo(git: GitVault, target: str) -> UndoResult:
        # Through the pipeline: it waits until no agent request is between its edits.
        return await pipeline.undo(target)

    # The service's one vault layer and repository object: MCP and agent writes share one
    # write lock, one link graph, and one commit order.
    return McpVaultService(
        pipeline.vault_access,
        settings=ctx.settings,
        git=pipeline.commits.git,
        llm=ctx.anthropic_client if ctx.anthropic_client is not None else lambda: None,
        publish=ctx.bus.publish,
        undo_runner=pipeline_undo,
    )


def mount_mcp(app: Starlette, ctx: WebContext) -> McpHttpEndpoint:
    """Serve MCP at `/mcp` in `app`, and relay the stdio servers' changes to the live view.

    Call it once on the app `create_app` built: it adds the route (inside the app's
    middleware) and chains the endpoint's and relay's shutdown into the app's lifespan.
    """
    endpoint = McpHttpEndpoint(lambda: service_for(ctx))
    app.router.routes.append(Route(MCP_PATH, endpoint, methods=["GET", "POST", "DELETE"]))
    relay = LiveRelay(ctx.vault, ctx.bus.publish)
    inner = app.router.lifespan_context

    @contextlib.asynccontextmanager
    async def lifespan(started: Any) -> AsyncIterator[Any]:
        relay.start()
        try:
            async with inner(started) as state:
                yield state
        finally:
            relay.close()
            await endpoint.aclose()

    app.router.lifespan_context = lifespan
    return endpoint
