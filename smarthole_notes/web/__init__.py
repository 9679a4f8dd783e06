"""The chat page and its HTTP/WebSocket API (the README's "The chat page").

`serve` builds a `WebContext` and runs `create_app(ctx)` under uvicorn; `generate_token`
makes the access token printed in the start-up URL.
"""

from typing import TYPE_CHECKING, Any

from smarthole_notes.web.context import (
    ApplySettings,
    ClientFactory,
    UndoHook,
    UndoUnavailable,
    WebContext,
    generate_token,
    pipeline_undo,
)

if TYPE_CHECKING:
    from smarthole_notes.web.app import create_app

__all__ = [
    "ApplySettings",
    "ClientFactory",
    "UndoHook",
    "UndoUnavailable",
    "WebContext",
    "create_app",
    "generate_token",
    "pipeline_undo",
]


def __getattr__(name: str) -> Any:
    """`create_app` loads the web stack (FastAPI, the API's models): only when asked for, so
    `serve` can start before it (`from smarthole_notes.web.context import ...` stays light)."""
    if name == "create_app":
        from smarthole_notes.web.app import create_app

        return create_app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
