"""The API's OpenAPI document, and the request schemas the handlers validate against.

One source of truth: the request-body schemas below are both what `/openapi.json`
documents and what the handlers check (with jsonschema), so the document cannot drift
from what the service accepts.
"""

from __future__ import annotations

from typing import Any, Final

from smarthole_notes.settings import SETTING_KEYS

Schema = dict[str, Any]

MAX_MESSAGE_CHARS: Final = 100_000
"""A long pasted note fits; a runaway script does not (the body limit backs this up)."""

_NULLABLE_STRING: Final[Schema] = {"type": ["string", "null"]}
_TIME: Final[Schema] = {"type": "string", "format": "date-time"}
_NULLABLE_TIME: Final[Schema] = {"type": ["string", "null"], "format": "date-time"}

SETTING_SCHEMAS: Final[dict[str, Schema]] = {
    "model": {"type": "string", "maxLength": 200, "description": "model for the agent call"},
    "enable_smarthole_connection": {"type": "boolean"},
    "smarthole_url": {"type": "string", "maxLength": 2048},
    "client_name": {"type": "string", "maxLength": 64},
    "routing_description": {"type": "string", "maxLength": 1024},
    "information_architecture": {"type": "string", "maxLength": 20_000},
    "conversation_idle_timeout_minutes": {"type": "integer"},
    "max_conversations_retained": {"type": "integer"},
    "conversation_state_timeout_minutes": {"type": "integer"},
    "enable_conversation_retrospection": {"type": "boolean"},
    "retrospection_prompt": {"type": "string", "maxLength": 20_000},
    "enable_git_version_control": {"type": "boolean"},
    "auto_commit_after_processing": {"type": "boolean"},
    "verbose_logging": {"type": "boolean"},
    "stream_idle_timeout_seconds": {"type": "number"},
    "retry_failed_messages_minutes": {
        "type": "array",
        "items": {"type": "number"},
        "minItems": 1,
        "maxItems": 10,
        "description": "minutes between automatic retries of a message that failed for a "
        "transient reason, each counted from the previous failure; ascending, 0.05 to 10080",
    },
}
assert set(SETTING_SCHEMAS) == set(SETTING_KEYS), "document every setting"

# --------------------------------------------------------------------------- request bodies

MESSAGE_CREATE: Final[Schema] = {
    "type": "object",
    "required": ["text"],
    "properties": {"text": {"type": "string", "minLength": 1, "maxLength": MAX_MESSAGE_CHARS}},
    "additionalProperties": False,
}
EMPTY: Final[Schema] = {"type": "object", "additionalProperties": False}
CLEAR_HISTORY: Final[Schema] = {
    "type": "object",
    "required": ["confirm"],
    "properties": {"confirm": {"const": True}},
    "additionalProperties": False,
}
SETTINGS_UPDATE: Final[Schema] = {
    "type": "object",
    "properties": {
        **SETTING_SCHEMAS,
        "api_key": {
            "type": ["string", "null"],
            "maxLength": 1024,
            "description": "a new Anthropic API key (write-only), or null to remove the stored "
            "one; never returned",
            "writeOnly": True,
        },
    },
    "additionalProperties": False,
}
ROUTING_REQUEST: Final[Schema] = {
    "type": "object",
    "properties": {
        "information_architecture": {
            "type": "string",
            "maxLength": 20_000,
            "description": "the text to describe (default: the saved setting)",
        }
    },
    "additionalProperties": False,
}

# --------------------------------------------------------------------------- responses

_ERROR: Final[Schema] = {
    "type": "object",
    "required": ["error"],
    "properties": {"error": {"type": "string"}, "key": {"type": "string"}},
}
_STATE_NAMES: Final = [
    "queued",
    "processing",
    "waiting_for_key",
    "retry_scheduled",
    "failed",
    "refused",
]
_STATE_FIELDS: Final[dict[str, Schema]] = {
    "state": {
        "enum": _STATE_NAMES,
        "description": "queued; processing; waiting_for_key (processed as soon as a key is "
        "set); retry_scheduled (failed for a transient reason, tried again at "
        "`next_attempt_at`); failed (waits for the user: process again); refused (Claude "
        "declined it; waits for the user)",
    },
    "next_attempt_at": {
        **_NULLABLE_TIME,
        "description": "when the next automatic try is due (UTC), for retry_scheduled",
    },
    "error": {**_NULLABLE_STRING, "description": "what the user was told about the last failure"},
    "attempts": {"type": "integer", "description": "how many times processing started"},
}
_MESSAGE_STATE: Final[Schema] = {
    "type": "object",
    "required": ["state", "next_attempt_at", "error"],
    "properties": _STATE_FIELDS,
}
_TOOL_USE: Final[Schema] = {
    "type": "object",
    "required": ["name", "input_summary", "is_error", "summary"],
    "properties": {
        "name": {"type": "string"},
        "input_summary": {"type": "string"},
        "is_error": {"type": "boolean"},
        "summary": {"type": "string"},
    },
}
_MESSAGE: Final[Schema] = {
    "type": "object",
    "required": ["id", "conversation_id", "role", "content", "source", "created_at"],
    "properties": {
        "id": {"type": "integer", "description": "row id in the history"},
        "conversation_id": {"type": "string"},
        "role": {"enum": ["user", "assistant", "system"]},
        "kind": {
            "enum": ["request", "answer", "refusal", "update", "question", "retrospection"],
            "description": "request (the user's); answer; refusal (Claude declined: not an "
            "answer); update and question (sent by the agent mid-task); retrospection (a "
            "system note on the ended conversation)",
        },
        "content": {"type": "string"},
        "source": {"enum": ["chat", "smarthole", "system"]},
        "input_method": {"enum": ["typed", "voice", "text", None]},
        "message_id": {
            **_NULLABLE_STRING,
            "description": "a user message's inbox id (for fork and undo)",
        },
        "tools_used": {"type": "array", "items": {"$ref": "#/components/schemas/ToolUse"}},
        "created_at": _TIME,
        "reply_to": {"type": ["integer", "null"]},
        "reply_to_message_id": _NULLABLE_STRING,
        "state": {
            "enum": [*_STATE_NAMES, None],
            "description": "user messages: the state while still in the inbox, else null "
            "(answered, stopped or deleted)",
        },
        "next_attempt_at": _STATE_FIELDS["next_attempt_at"],
        "error": _STATE_FIELDS["error"],
        "attempts": _STATE_FIELDS["attempts"],
    },
}
_CONVERSATION: Final[Schema] = {
    "type": "object",
    "required": ["id", "started_at", "last_activity_at", "active", "message_count"],
    "properties": {
        "id": {"type": "string"},
        "started_at": _TIME,
        "last_activity_at": _TIME,
        "ended_at": _NULLABLE_TIME,
        "end_reason": _NULLABLE_STRING,
        "title": _NULLABLE_STRING,
        "summary": _NULLABLE_STRING,
        "message_count": {"type": "integer"},
        "active": {"type": "boolean"},
        "messages": {"type": "array", "items": {"$ref": "#/components/schemas/Message"}},
    },
}
_SETTINGS_VIEW: Final[Schema] = {
    "type": "object",
    "required": ["settings", "api_key", "overridden", "problems"],
    "properties": {
        "settings": {
            "type": "object",
            "required": list(SETTING_KEYS),
            "properties": SETTING_SCHEMAS,
        },
        "api_key": {
            "type": "object",
            "required": ["status"],
            "properties": {
                "status": {"enum": ["set", "not set"]},
                "source": {"enum": ["environment", "file", None]},
            },
        },
        "overridden": {
            "type": "array",
            "items": {"type": "string"},
            "description": "keys a command-line flag sets for this run",
        },
        "problems": {"type": "array", "items": {"type": "string"}},
        "invalid": {
            "type": "object",
            "additionalProperties": {"type": "string"},
            "description": "keys whose value in settings.toml is invalid (the default is in "
            "effect and shown), with the problem; saving from the page writes the shown value",
        },
        "warning": {"type": "string"},
    },
}
_INBOX_MESSAGE: Final[Schema] = {
    "type": "object",
    "required": ["id", "text", "source", "timestamp", "attempts", "state", "next_attempt_at"],
    "properties": {
        "id": {"type": "string"},
        "text": {"type": "string"},
        "source": {"enum": ["chat", "smarthole"]},
        "input_method": {"type": "string"},
        "timestamp": {"type": "string"},
        "last_error": {
            **_NULLABLE_STRING,
            "description": "the last failure's code and detail, for diagnosis",
        },
        **_STATE_FIELDS,
    },
}
_STATUS: Final[Schema] = {
    "type": "object",
    "required": ["smarthole", "processing", "queued", "api_key", "model", "undo_available"],
    "properties": {
        "smarthole": {
            "type": "object",
            "properties": {
                "status": {"enum": ["connected", "connecting", "disconnected", "disabled"]},
                "detail": _NULLABLE_STRING,
            },
        },
        "processing": _NULLABLE_STRING,
        "queued": {"type": "array", "items": {"type": "string"}},
        "states": {
            "type": "object",
            "additionalProperties": {"$ref": "#/components/schemas/MessageState"},
            "description": "every message still in the inbox, by id",
        },
        "api_key": {"enum": ["set", "not set"]},
        "model": {"type": "string"},
        "undo_available": {"type": "boolean"},
        "vault": {"type": "string"},
        "version": {"type": "string"},
    },
}
_EVENT: Final[Schema] = {
    "type": "object",
    "required": ["type"],
    "description": (
        "One live event. `type` is one of: `hello` (sent first: the same fields as "
        "GET /api/status), `message_received` (message_id, text, source, input_method, "
        "timestamp), `queued` (message_id, position), `queue_state` (processing, queued), "
        "`message_state` (message_id, state, next_attempt_at, error; state `done` when the "
        "message left the inbox), "
        "`agent_message` (message_id, text, is_question), `text_delta` (message_id, text), "
        "`stream_restarted` (message_id), `tool_started` (message_id, tool, input), "
        "`tool_finished` (message_id, tool, is_error, summary), `response` (message_id, text, "
        "tools_used), `error` (message_id, message, code), `cancelled` (message_id), "
        "`status` (smarthole, detail), `retrospection` (title, text), `settings_changed` "
        "(keys), `history_cleared`."
    ),
    "properties": {"type": {"type": "string"}},
    "additionalProperties": True,
}


def _json_body(schema: Schema, description: str | None = None) -> Schema:
    body: Schema = {"required": True, "content": {"application/json": {"schema": schema}}}
    if description:
        body["description"] = description
    return body


def _ok(description: str, ref: str | None = None, status: str = "200") -> dict[str, Any]:
    response: Schema = {"description": description}
    if ref is not None:
        response["content"] = {"application/json": {"schema": {"$ref": f"#/components/{ref}"}}}
    return {status: response}


def _errors(*statuses: int) -> dict[str, Any]:
    reasons = {
        400: "invalid request (bad JSON, bad parameters, foreign Host)",
        401: "missing or wrong token",
        403: "foreign Origin",
        404: "not found",
        409: "not possible now (see the message)",
        413: "body too large",
        415: "not JSON",
        422: "invalid value (see the message and key)",
        502: "the Anthropic API failed",
        503: "the service is shutting down",
    }
    out: dict[str, Any] = {}
    for status in (400, 401, *statuses):
        out[str(status)] = {
            "description": reasons[status],
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
        }
    return out


_CHANGES: Final = (403, 413, 415)


def _path_id(name: str, description: str) -> Schema:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": description,
        "schema": {"type": "string", "minLength": 1, "maxLength": 256},
    }


def openapi_document(version: str, port: int = 0) -> dict[str, Any]:
    """The OpenAPI 3.1 document served at `/openapi.json` (`port` names the cookie)."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "smarthole-notes",
            "version": version,
            "description": (
                "The chat page's API, usable by scripts too. Every request needs the access "
                "token printed at start-up: `Authorization: Bearer TOKEN`, or the page's "
                "cookie. Requests must be addressed to this machine (`Host`); state-changing "
                "requests send JSON (`Content-Type: application/json`) and, from a browser, "
                "our own `Origin`. Live events: a WebSocket at `/api/events` (token as "
                "`?token=TOKEN`, bearer header or cookie), one JSON object per frame "
                "(see the Event schema)."
            ),
        },
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}, {"cookie": []}],
        "paths": {
            "/api/status": {
                "get": {
                    "operationId": "getStatus",
                    "summary": "What the service is doing: SmartHole, the queue, the key",
                    "responses": {**_ok("status", "schemas/Status"), **_errors()},
                }
            },
            "/api/messages": {
                "post": {
                    "operationId": "sendMessage",
                    "summary": "Send a message (processed in order after any queued ones)",
                    "requestBody": _json_body({"$ref": "#/components/schemas/MessageCreate"}),
                    "responses": {
                        **_ok("accepted and queued", "schemas/Accepted", "202"),
                        **_errors(*_CHANGES, 503),
                    },
                }
            },
            "/api/cancel": {
                "post": {
                    "operationId": "cancel",
                    "summary": "Stop the message being processed now (Stop)",
                    "requestBody": _json_body({"$ref": "#/components/schemas/Empty"}),
                    "responses": {**_ok("done", "schemas/Cancelled"), **_errors(*_CHANGES)},
                }
            },
            "/api/conversations": {
                "get": {
                    "operationId": "listConversations",
                    "summary": "Conversations, newest first (all sources), page by page",
                    "parameters": [
                        {
                            "name": "before",
                            "in": "query",
                            "description": "`next_before` of the previous page",
                            "schema": {"type": "string", "format": "date-time"},
                        },
                        {
                            "name": "limit",
                            "in": "query",
                            "schema": {
                                "type": "integer",
                                "minimum": 1,
                                "maximum": 50,
                                "default": 10,
                            },
                        },
                        {
                            "name": "messages",
                            "in": "query",
                            "description": "include each conversation's messages",
                            "schema": {"type": "boolean", "default": False},
                        },
                    ],
                    "responses": {**_ok("a page", "schemas/ConversationPage"), **_errors()},
                }
            },
            "/api/conversations/clear": {
                "post": {
                    "operationId": "clearHistory",
                    "summary": "Delete every conversation (needs `confirm: true`)",
                    "requestBody": _json_body({"$ref": "#/components/schemas/ClearHistory"}),
                    "responses": {**_ok("cleared", "schemas/Done"), **_errors(*_CHANGES, 409)},
                }
            },
            "/api/conversations/{conversation_id}": {
                "get": {
                    "operationId": "getConversation",
                    "summary": "One conversation with its messages",
                    "parameters": [_path_id("conversation_id", "conversation id")],
                    "responses": {**_ok("found", "schemas/Conversation"), **_errors(404)},
                }
            },
            "/api/messages/{message_id}/fork": {
                "post": {
                    "operationId": "forkFromMessage",
                    "summary": "Edit a user message of the active conversation: archive it and "
                    "what follows as a branch, and send the new text",
                    "parameters": [_path_id("message_id", "the user message's inbox id")],
                    "requestBody": _json_body({"$ref": "#/components/schemas/MessageCreate"}),
                    "responses": {
                        **_ok("forked; the new message is queued", "schemas/Accepted", "202"),
                        **_errors(*_CHANGES, 404, 409, 503),
                    },
                }
            },
            "/api/messages/{message_id}/undo": {
                "post": {
                    "operationId": "undoMessage",
                    "summary": "Undo the vault changes of a message (when git versioning "
                    "offers it; `undo_available` in the status)",
                    "parameters": [_path_id("message_id", "the user message's inbox id")],
                    "requestBody": _json_body({"$ref": "#/components/schemas/Empty"}),
                    "responses": {**_ok("undone", "schemas/Done"), **_errors(*_CHANGES, 404, 409)},
                }
            },
            "/api/settings": {
                "get": {
                    "operationId": "getSettings",
                    "summary": "Every setting (the API key only as set / not set)",
                    "responses": {**_ok("settings", "schemas/SettingsView"), **_errors()},
                },
                "put": {
                    "operationId": "updateSettings",
                    "summary": "Change some settings (saved to settings.toml, applied at once)",
                    "requestBody": _json_body({"$ref": "#/components/schemas/SettingsUpdate"}),
                    "responses": {
                        **_ok("saved", "schemas/SettingsView"),
                        **_errors(*_CHANGES, 409, 422),
                    },
                },
            },
            "/api/settings/routing-description/generate": {
                "post": {
                    "operationId": "generateRoutingDescription",
                    "summary": "Write a routing description from the information architecture "
                    "(not saved)",
                    "requestBody": _json_body({"$ref": "#/components/schemas/RoutingRequest"}),
                    "responses": {
                        **_ok("written", "schemas/RoutingDescription"),
                        **_errors(*_CHANGES, 409, 502),
                    },
                }
            },
            "/api/models": {
                "get": {
                    "operationId": "listModels",
                    "summary": "Models to choose from (Models API, or the built-in list)",
                    "responses": {**_ok("models", "schemas/Models"), **_errors()},
                }
            },
            "/api/inbox": {
                "get": {
                    "operationId": "listInbox",
                    "summary": "Messages still in the inbox, each with its state and next try",
                    "responses": {**_ok("pending", "schemas/Inbox"), **_errors()},
                }
            },
            "/api/inbox/{message_id}/process": {
                "post": {
                    "operationId": "processAgain",
                    "summary": "Queue an inbox message again (process again); without an API "
                    "key it waits for one instead (its state in the answer says which)",
                    "parameters": [_path_id("message_id", "inbox id")],
                    "requestBody": _json_body({"$ref": "#/components/schemas/Empty"}),
                    "responses": {
                        **_ok("queued, or waiting for a key", "schemas/Reprocessed", "202"),
                        **_errors(*_CHANGES, 404),
                    },
                }
            },
            "/api/events": {
                "get": {
                    "operationId": "events",
                    "summary": "Live events (WebSocket only)",
                    "description": "Open as a WebSocket; a plain GET answers 426. Each frame "
                    "is one Event. The token may be given as `?token=`.",
                    "responses": {
                        "101": {"description": "switching to the WebSocket"},
                        "426": {
                            "description": "not a WebSocket handshake",
                            "content": {
                                "application/json": {
                                    "schema": {"$ref": "#/components/schemas/Error"}
                                }
                            },
                        },
                        **_errors(403),
                    },
                }
            },
        },
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "cookie": {
                    "type": "apiKey",
                    "in": "cookie",
                    "name": f"smarthole_notes_{port or 'PORT'}",
                    "description": "set by the page after it is opened with `?token=`",
                },
            },
            "schemas": {
                "Error": _ERROR,
                "Empty": EMPTY,
                "Done": {
                    "type": "object",
                    "required": ["ok"],
                    "properties": {"ok": {"const": True}, "detail": {"type": "string"}},
                },
                "MessageCreate": MESSAGE_CREATE,
                "Accepted": {
                    "type": "object",
                    "required": ["id"],
                    "properties": {"id": {"type": "string"}},
                },
                "Cancelled": {
                    "type": "object",
                    "required": ["cancelled"],
                    "properties": {"cancelled": {"type": "boolean"}},
                },
                "ToolUse": _TOOL_USE,
                "MessageState": _MESSAGE_STATE,
                "Reprocessed": {
                    "type": "object",
                    "required": ["id"],
                    "properties": {"id": {"type": "string"}, **_STATE_FIELDS},
                },
                "Message": _MESSAGE,
                "Conversation": _CONVERSATION,
                "ConversationPage": {
                    "type": "object",
                    "required": ["conversations", "next_before"],
                    "properties": {
                        "conversations": {
                            "type": "array",
                            "items": {"$ref": "#/components/schemas/Conversation"},
                        },
                        "next_before": _NULLABLE_TIME,
                    },
                },
                "ClearHistory": CLEAR_HISTORY,
                "SettingsView": _SETTINGS_VIEW,
                "SettingsUpdate": SETTINGS_UPDATE,
                "RoutingRequest": ROUTING_REQUEST,
                "RoutingDescription": {
                    "type": "object",
                    "required": ["routing_description"],
                    "properties": {"routing_description": {"type": "string"}},
                },
                "Models": {
                    "type": "object",
                    "required": ["models", "source", "current"],
                    "properties": {
                        "models": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "required": ["id", "display_name"],
                                "properties": {
                                    "id": {"type": "string"},
                                    "display_name": {"type": "string"},
                                },
                            },
                        },
                        "source": {"enum": ["api", "builtin"]},
                        "current": {"type": "string"},
                    },
                },
                "Inbox": {
                    "type": "object",
                    "required": ["messages"],
                    "properties": {
                        "messages": {
                            "type": "array",
                            "items": {"$ref": "#/components/schemas/InboxMessage"},
                        }
                    },
                },
                "InboxMessage": _INBOX_MESSAGE,
                "Status": _STATUS,
                "Event": _EVENT,
            },
        },
    }
