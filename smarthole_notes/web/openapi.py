"""The API's OpenAPI document, generated from the routes and models of `api.py`.

FastAPI writes the paths and schemas; this adds what it cannot know (how to authenticate,
the live events' shape) and drops its generic 422 entry from routes that never answer it
(request validation errors are 400s here, shaped like every other error).
"""

from __future__ import annotations

from typing import Any, Final

from fastapi.openapi.utils import get_openapi

from smarthole_notes.web.api import router
from smarthole_notes.web.schemas import Event
from smarthole_notes.web.security import cookie_name

DESCRIPTION: Final = (
    "The chat page's API, usable by scripts too. Every request needs the access token printed "
    "at start-up: `Authorization: Bearer TOKEN`, or the page's cookie. Requests must be "
    "addressed to this machine (`Host`); state-changing requests send JSON (`Content-Type: "
    "application/json`) and, from a browser, our own `Origin`. Live events: a WebSocket at "
    "`/api/events` (token as `?token=TOKEN`, bearer header or cookie), one JSON object per "
    "frame (see the Event schema)."
)
_FASTAPI_VALIDATION: Final = ("HTTPValidationError", "ValidationError")


def openapi_document(version: str, port: int = 0) -> dict[str, Any]:
    """The OpenAPI 3.1 document served at `/openapi.json` (`port` names the cookie)."""
    document = get_openapi(
        title="smarthole-notes",
        version=version,
        openapi_version="3.1.0",
        description=DESCRIPTION,
        routes=router.routes,
        servers=[{"url": "/"}],
    )
    for operations in document["paths"].values():
        for operation in operations.values():
            response = operation["responses"].get("422", {})
            ref = str(response.get("content", {}).get("application/json", {}).get("schema", {}))
            if "HTTPValidationError" in ref:
                del operation["responses"]["422"]
    components = document.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    for name in _FASTAPI_VALIDATION:
        schemas.pop(name, None)
    schemas["Event"] = Event.model_json_schema()
    document["security"] = [{"bearer": []}, {"cookie": []}]
    components["securitySchemes"] = {
        "bearer": {"type": "http", "scheme": "bearer"},
        "cookie": {
            "type": "apiKey",
            "in": "cookie",
            "name": cookie_name(port) if port else "smarthole_notes_PORT",
            "description": "set by the page after it is opened with `?token=`",
        },
    }
    return document
