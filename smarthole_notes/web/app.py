"""The Starlette app: the chat page, its static files, the API and the live WebSocket."""

from __future__ import annotations

import asyncio
import contextlib
import html
import logging
from collections.abc import AsyncIterator
from pathlib import Path

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.types import Scope
from starlette.websockets import WebSocket

from smarthole_notes.mcp.http import mount_mcp
from smarthole_notes.web.api import Api, ApiError
from smarthole_notes.web.context import WebContext
from smarthole_notes.web.live import LiveState, event_stream
from smarthole_notes.web.openapi import openapi_document
from smarthole_notes.web.security import (
    AccessPolicy,
    BodyTooLarge,
    SecurityMiddleware,
    tokens_match,
)

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).parent / "static"
COOKIE_MAX_AGE = 400 * 24 * 3600  # the longest browsers keep a cookie


class _StaticFiles(StaticFiles):
    """Static files that a browser revalidates (ETag) instead of never caching."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        response.headers.setdefault("cache-control", "no-cache")
        return response


def _needs_token_page(port: int) -> HTMLResponse:
    address = html.escape(f"http://127.0.0.1:{port}/?token=…")
    body = (
        "<!doctype html><html lang='en'><meta charset='utf-8'><title>smarthole-notes</title>"
        "<h1>smarthole-notes</h1><p>This page needs its access token. Open the address that "
        f"<code>smarthole-notes serve</code> printed when it started ({address}).</p></html>"
    )
    return HTMLResponse(body, status_code=401)


def create_app(ctx: WebContext) -> Starlette:
    """The web app for one running service.

    Call it inside the service's event loop before `pipeline.start()`, so the queue
    tracker sees the recovered messages; run it with uvicorn's lifespan on (it stops the
    tracker). Access control wraps everything (see `security.py`).
    """
    policy = AccessPolicy(token=ctx.token, host_names=ctx.host_names(), port=ctx.port)
    live = LiveState(ctx.bus, ctx.pipeline.inbox, ctx.pipeline.message_states)
    api = Api(ctx, live)
    document = openapi_document(ctx.version, ctx.port)

    async def index(request: Request) -> Response:
        given = request.query_params.get("token")
        if given is not None:
            response = RedirectResponse("/", status_code=303)
            if tokens_match(given, ctx.token):
                response.set_cookie(
                    policy.cookie,
                    ctx.token,
                    max_age=COOKIE_MAX_AGE,
                    path="/",
                    httponly=True,
                    samesite="strict",
                )
            return response
        return FileResponse(STATIC_DIR / "index.html", headers={"cache-control": "no-store"})

    async def openapi_json(request: Request) -> Response:
        return JSONResponse(document)

    async def events(websocket: WebSocket) -> None:
        live.start()
        await event_stream(websocket, ctx.bus, api.status_snapshot)

    routes: list[BaseRoute] = [
        Route("/", index, methods=["GET"]),
        Route("/openapi.json", openapi_json, methods=["GET"]),
        Route("/api/status", api.status, methods=["GET"]),
        Route("/api/messages", api.send_message, methods=["POST"]),
        Route("/api/messages/{message_id:path}/fork", api.fork, methods=["POST"]),
        Route("/api/messages/{message_id:path}/undo", api.undo, methods=["POST"]),
        Route("/api/cancel", api.cancel, methods=["POST"]),
        Route("/api/conversations", api.conversations, methods=["GET"]),
        Route("/api/conversations/clear", api.clear_history, methods=["POST"]),
        Route("/api/conversations/{conversation_id}", api.conversation, methods=["GET"]),
        Route("/api/settings", api.get_settings, methods=["GET"]),
        Route("/api/settings", api.put_settings, methods=["PUT"]),
        Route(
            "/api/settings/routing-description/generate",
            api.generate_routing_description,
            methods=["POST"],
        ),
        Route("/api/models", api.models, methods=["GET"]),
        Route("/api/inbox", api.inbox, methods=["GET"]),
        Route("/api/inbox/{message_id:path}/process", api.process_again, methods=["POST"]),
        Route("/api/events", api.events_not_websocket, methods=["GET"]),
        WebSocketRoute("/api/events", events),
        Mount("/static", app=_StaticFiles(directory=STATIC_DIR), name="static"),
    ]

    async def api_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ApiError)
        return exc.response()

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        if exc.status_code == 401 and request.url.path == "/":
            return _needs_token_page(ctx.port)
        message = exc.detail if isinstance(exc.detail, str) else "error"
        return JSONResponse({"error": message}, status_code=exc.status_code, headers=exc.headers)

    async def too_large(request: Request, exc: Exception) -> Response:
        return JSONResponse({"error": str(exc)}, status_code=413)

    async def unexpected(request: Request, exc: Exception) -> Response:
        log.exception("Unexpected error in %s %s", request.method, request.url.path)
        return JSONResponse({"error": "unexpected error; see the service's log"}, status_code=500)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await live.started()
        yield
        await live.stop()

    app = Starlette(
        routes=routes,
        middleware=[
            Middleware(
                SecurityMiddleware,
                policy=policy,
                max_body_bytes=ctx.max_body_bytes,
                unauthorized_page=_needs_token_page(ctx.port),
            )
        ],
        exception_handlers={
            ApiError: api_error,
            HTTPException: http_error,
            BodyTooLarge: too_large,
            Exception: unexpected,
        },
        lifespan=lifespan,
    )
    app.state.live = live
    app.state.api = api
    app.state.mcp = mount_mcp(app, ctx)  # MCP at /mcp, behind the same access checks
    with contextlib.suppress(RuntimeError):  # no running loop: the lifespan starts it
        asyncio.get_running_loop()
        live.start()
    return app
