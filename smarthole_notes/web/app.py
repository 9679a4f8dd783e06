"""The web app (FastAPI, which is Starlette underneath): the chat page, its static files,
the API (`api.py`), its generated OpenAPI document and the live WebSocket."""

from __future__ import annotations

import asyncio
import contextlib
import html
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope
from starlette.websockets import WebSocket

from smarthole_notes.mcp.http import mount_mcp
from smarthole_notes.settings import INVALID_SETTING
from smarthole_notes.web.api import Api, ApiError, error_response, router
from smarthole_notes.web.context import WebContext
from smarthole_notes.web.live import QueueView, event_stream
from smarthole_notes.web.openapi import openapi_document
from smarthole_notes.web.security import (
    AccessPolicy,
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


def describe_invalid(exc: RequestValidationError) -> tuple[int, str, str | None]:
    """A request that does not fit its model: (status, message, field at fault).

    A setting's own check is a 422 naming the key (the form marks the field); anything else
    is a 400. The offending value is never echoed (it could be an API key).
    """
    errors = sorted(exc.errors(), key=lambda e: (e.get("type") == INVALID_SETTING, e["loc"]))
    error = errors[0]
    kind: str = error["type"]
    loc = [str(part) for part in error["loc"]]
    key = loc[1] if len(loc) > 1 and loc[0] in ("body", "query", "path") else None
    where = key or "the body"
    context: dict[str, Any] = error.get("ctx") or {}
    if kind == INVALID_SETTING:
        return 422, str(context["message"]), key
    if kind == "json_invalid":
        return 400, "the body is not valid JSON", None
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return 400, "the body must be a JSON object", None
    if kind == "missing":
        return 400, f"{where} is required", key
    if kind == "extra_forbidden":
        return 400, f"{where} is not a known field", key
    if kind.endswith("_type") or kind.endswith("_parsing"):
        expected = kind.removesuffix("_type").removesuffix("_parsing")
        names = {"int": "integer", "str": "string", "bool": "boolean", "float": "number"}
        return 400, f"{where} must be of type {names.get(expected, expected)}", key
    if kind == "string_too_short":
        return 400, f"{where} must not be empty", key
    if kind == "string_too_long":
        return 400, f"{where} is too long (at most {context.get('max_length')} characters)", key
    if kind in ("greater_than_equal", "greater_than"):
        return 400, f"{where} must be at least {context.get('ge', context.get('gt'))}", key
    if kind in ("less_than_equal", "less_than"):
        return 400, f"{where} must be at most {context.get('le', context.get('lt'))}", key
    if kind == "literal_error":
        return 400, f"{where} must be {context.get('expected')}", key
    if kind == "value_error":
        return 400, str(context.get("error", "invalid value")), key
    return 400, f"{where} is invalid ({kind})", key


def create_app(ctx: WebContext) -> FastAPI:
    """The web app for one running service.

    Run it with uvicorn's lifespan on (it starts and stops the queue view). Access control
    wraps everything, the MCP mount included (see `security.py`).
    """
    policy = AccessPolicy(token=ctx.token, host_names=ctx.host_names(), port=ctx.port)
    queue = QueueView(ctx.bus, ctx.pipeline.message_states)
    api = Api(ctx, queue)
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
        queue.start()
        await event_stream(websocket, ctx.bus, api.hello)

    async def api_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ApiError)
        return exc.response()

    async def invalid_request(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        status, message, key = describe_invalid(exc)
        return error_response(status, message, key)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        if exc.status_code == 401 and request.url.path == "/":
            return _needs_token_page(ctx.port)
        message = exc.detail if isinstance(exc.detail, str) else "error"
        return error_response(exc.status_code, message, headers=exc.headers)

    async def unexpected(request: Request, exc: Exception) -> Response:
        log.exception("Unexpected error in %s %s", request.method, request.url.path)
        return error_response(500, "unexpected error; see the service's log")

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await queue.started()
        yield
        await queue.stop()

    app = FastAPI(
        title="smarthole-notes",
        version=ctx.version,
        openapi_url=None,  # served below, the generated document with its additions
        docs_url=None,  # the interactive docs load scripts from elsewhere: not under our CSP
        redoc_url=None,
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
            RequestValidationError: invalid_request,
            HTTPException: http_error,
            Exception: unexpected,
        },
        lifespan=lifespan,
    )
    app.add_route("/", index, methods=["GET"], include_in_schema=False)
    app.add_route("/openapi.json", openapi_json, methods=["GET"], include_in_schema=False)
    app.router.routes.extend(router.routes)  # flat, so `app.routes` lists every path
    app.add_api_websocket_route("/api/events", events)
    app.mount("/static", _StaticFiles(directory=STATIC_DIR), name="static")
    app.state.queue = queue
    app.state.api = api
    app.state.mcp = mount_mcp(app, ctx)  # MCP at /mcp, behind the same access checks
    with contextlib.suppress(RuntimeError):  # no running loop: the lifespan starts it
        asyncio.get_running_loop()
        queue.start()
    return app
