"""The chat page and its HTTP/WebSocket API (see shared spec chat.md).

`serve` builds a `WebContext` and runs `create_app(ctx)` under uvicorn; `generate_token`
makes the access token printed in the start-up URL.
"""

from smarthole_notes.web.app import create_app
from smarthole_notes.web.context import (
    ApplySettings,
    ClientFactory,
    UndoHook,
    UndoUnavailable,
    WebContext,
    generate_token,
    pipeline_undo,
)

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
