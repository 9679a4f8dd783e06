"""The HTTP API the chat page (and any script) uses. See `openapi.py` for the contract.

Handlers are thin: they validate, call the pipeline, the store or the settings module, and
shape JSON. Store and file work runs in a thread (`asyncio.to_thread`): the event loop
also carries the SmartHole connection and the agent's stream, which must not stall.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, NoReturn

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from smarthole_notes.conversations.store import (
    Conversation,
    ConversationEndedError,
    ConversationNotFoundError,
    MessageNotFoundError,
    StoredMessage,
)
from smarthole_notes.inbox import InboxMessage, MessageState
from smarthole_notes.llm.errors import LLMError
from smarthole_notes.settings import (
    SETTING_KEYS,
    SettingsFileError,
    SettingValueError,
    load_settings,
    save_settings,
    validate_setting,
)
from smarthole_notes.smarthole import ConnectionStatus
from smarthole_notes.web import openapi
from smarthole_notes.web.context import UndoUnavailable, WebContext
from smarthole_notes.web.live import LiveState
from smarthole_notes.web.models import ModelCatalog, ModelChoice, write_routing_description

log = logging.getLogger(__name__)

CANCEL_GRACE_SECONDS = 1.0
"""Stop may land while a message is being set up (before the agent exists): keep trying."""


class ApiError(Exception):
    """An expected refusal, worded for the user; becomes `{"error": ..., "key": ...}`."""

    def __init__(self, status: int, message: str, *, key: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.key = key

    def response(self) -> JSONResponse:
        body: dict[str, str] = {"error": self.message}
        if self.key is not None:
            body["key"] = self.key
        return JSONResponse(body, status_code=self.status)


def _fail(status: int, message: str, *, key: str | None = None) -> NoReturn:
    raise ApiError(status, message, key=key)


_VALIDATORS: dict[int, Draft202012Validator] = {}


def _validator(schema: Mapping[str, Any]) -> Draft202012Validator:
    validator = _VALIDATORS.get(id(schema))
    if validator is None:
        validator = _VALIDATORS[id(schema)] = Draft202012Validator(schema)
    return validator


def _describe(error: ValidationError) -> str:
    """A validation error without the offending value (it could be an API key)."""
    where = "/".join(str(p) for p in error.absolute_path) or "the body"
    schema = error.schema if isinstance(error.schema, Mapping) else {}
    match error.validator:
        case "type":
            return f"{where} must be of type {error.validator_value}"
        case "maxLength":
            return f"{where} is too long (at most {error.validator_value} characters)"
        case "minLength":
            return f"{where} must not be empty"
        case "minItems":
            return f"{where} must have at least {error.validator_value} item(s)"
        case "maxItems":
            return f"{where} must have at most {error.validator_value} items"
        case "required" | "additionalProperties":
            return error.message
        case "const" | "enum":
            allowed = schema.get("const", schema.get("enum"))
            return f"{where} must be {json.dumps(allowed)}"
        case _:
            return f"{where} is invalid ({error.validator})"


def _check_unicode(value: object) -> None:
    """JSON may carry lone surrogates, which no file or database takes: refuse them here."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            _fail(400, "text must be valid Unicode (no lone surrogates)")
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_unicode(key)
            _check_unicode(item)
    elif isinstance(value, list):
        for item in value:
            _check_unicode(item)


async def read_json(request: Request, schema: Mapping[str, Any]) -> dict[str, Any]:
    """The body as a JSON object valid against `schema`, or an `ApiError` 400."""
    raw = await request.body()
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):
        _fail(400, "the body is not valid JSON")
    errors = sorted(_validator(schema).iter_errors(data), key=lambda e: list(e.absolute_path))
    if errors:
        path = list(errors[0].absolute_path)
        # The field at fault, so the page can mark it (the settings form does).
        _fail(400, _describe(errors[0]), key=str(path[0]) if path else None)
    if not isinstance(data, dict):
        _fail(400, "the body must be a JSON object")
    _check_unicode(data)
    return data


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def state_json(state: MessageState) -> dict[str, Any]:
    """A waiting message's state as the API shows it (times in UTC, ISO 8601)."""
    return {
        "state": state.state,
        "next_attempt_at": _iso(state.next_attempt_at),
        "error": state.error,
        "attempts": state.attempts,
    }


def message_json(
    message: StoredMessage,
    inbox_ids: Mapping[int, str | None],
    states: Mapping[str, MessageState] | None = None,
) -> dict[str, Any]:
    """One stored message; a user message still in the inbox carries its state too (so the
    page shows "waiting for an API key", "failed, next try at 10:42"... after a reload)."""
    body: dict[str, Any] = {
        "id": message.row_id,
        "conversation_id": message.conversation_id,
        "role": message.role,
        "kind": message.kind,
        "content": message.content,
        "source": message.source,
        "input_method": message.input_method,
        "message_id": message.message_id,
        "tools_used": [t.to_dict() for t in message.tools_used],
        "created_at": _iso(message.created_at),
        "reply_to": message.reply_to,
        "reply_to_message_id": (
            inbox_ids.get(message.reply_to) if message.reply_to is not None else None
        ),
    }
    if message.role == "user":
        state = (states or {}).get(message.message_id or "")
        body.update(
            state_json(state)
            if state is not None
            else {"state": None, "next_attempt_at": None, "error": None}
        )
    return body


def conversation_json(
    conversation: Conversation,
    messages: list[StoredMessage] | None = None,
    states: Mapping[str, MessageState] | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": conversation.id,
        "started_at": _iso(conversation.started_at),
        "last_activity_at": _iso(conversation.last_activity_at),
        "ended_at": _iso(conversation.ended_at),
        "end_reason": conversation.end_reason,
        "title": conversation.title,
        "summary": conversation.summary,
        "message_count": conversation.message_count,
        "active": conversation.active,
    }
    if messages is not None:
        inbox_ids = {m.row_id: m.message_id for m in messages}
        body["messages"] = [message_json(m, inbox_ids, states) for m in messages]
    return body


def _query_bool(value: str | None, name: str) -> bool:
    if value is None:
        return False
    lowered = value.lower()
    if lowered in ("true", "1", "yes"):
        return True
    if lowered in ("false", "0", "no", ""):
        return False
    _fail(400, f"{name} must be true or false")


def _query_int(value: str | None, name: str, default: int, low: int, high: int) -> int:
    if value is None:
        return default
    try:
        number = int(value)
    except ValueError:
        _fail(400, f"{name} must be a whole number")
    if not low <= number <= high:
        _fail(400, f"{name} must be from {low} to {high}")
    return number


def _query_time(value: str | None, name: str) -> datetime | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        _fail(400, f"{name} must be an ISO 8601 date and time")
    if moment.tzinfo is None or moment.utcoffset() is None:
        moment = moment.replace(tzinfo=UTC)
    try:
        return moment.astimezone(UTC)  # e.g. year 1 at UTC+3 has no UTC equivalent
    except OverflowError:
        _fail(400, f"{name} is out of range")


class Api:
    """The route handlers, bound to one `WebContext`."""

    def __init__(self, ctx: WebContext, live: LiveState) -> None:
        self.ctx = ctx
        self.live = live
        assert ctx.anthropic_client is not None
        self.catalog = ModelCatalog(ctx.anthropic_client)

    # ------------------------------------------------------------------ status

    def smarthole_state(self) -> dict[str, Any]:
        client = self.ctx.smarthole()
        if client is None:
            return {"status": str(ConnectionStatus.DISABLED), "detail": None}
        return {"status": str(client.status), "detail": client.status_detail}

    async def status_snapshot(self) -> dict[str, Any]:
        await self.live.prune()
        settings = self.ctx.settings()
        return {
            "smarthole": self.smarthole_state(),
            **self.live.snapshot(),
            "states": {
                message_id: state_json(state)
                for message_id, state in self.ctx.pipeline.message_states().items()
            },
            "api_key": self.ctx.api_key_state()[0],
            "model": settings.model,
            "undo_available": self.undo_available(),
            "vault": str(self.ctx.vault),
            "version": self.ctx.version,
        }

    def undo_available(self) -> bool:
        return self.ctx.undo is not None and self.ctx.settings().enable_git_version_control

    async def status(self, request: Request) -> Response:
        return JSONResponse(await self.status_snapshot())

    # ------------------------------------------------------------------ messages

    async def _submit(self, text: str) -> str:
        if not text.strip():
            _fail(400, "the message is empty")
        message = InboxMessage(
            id=f"chat-{uuid.uuid4().hex}",
            text=text,
            source="chat",
            timestamp=datetime.now(UTC).isoformat(),
            metadata={"inputMethod": "typed"},
        )
        try:
            await self.ctx.pipeline.submit(message)
        except RuntimeError:
            _fail(503, "the service is shutting down; send the message again after it restarts")
        return message.id

    async def send_message(self, request: Request) -> Response:
        body = await read_json(request, openapi.MESSAGE_CREATE)
        message_id = await self._submit(body["text"])
        return JSONResponse({"id": message_id}, status_code=202)

    async def cancel(self, request: Request) -> Response:
        await read_json(request, openapi.EMPTY)
        target = self.live.processing
        loop = asyncio.get_running_loop()
        deadline = loop.time() + CANCEL_GRACE_SECONDS
        while True:
            if self.ctx.pipeline.cancel_current():
                return JSONResponse({"cancelled": True})
            if target is None or self.live.processing != target or loop.time() > deadline:
                return JSONResponse({"cancelled": False})
            await asyncio.sleep(0.02)

    async def _require_idle(self, what: str) -> None:
        if self.live.busy:
            await self.live.prune()
        if self.live.busy:
            _fail(409, f"{what} has to wait until the current message is done (or stopped)")

    async def fork(self, request: Request) -> Response:
        message_id: str = request.path_params["message_id"]
        body = await read_json(request, openapi.MESSAGE_CREATE)
        if not body["text"].strip():
            _fail(400, "the message is empty")
        await self._require_idle("Editing a message")
        store = self.ctx.store
        active = await asyncio.to_thread(store.active_conversation)
        messages = [] if active is None else await asyncio.to_thread(store.messages, active.id)
        row = next((m for m in messages if m.role == "user" and m.message_id == message_id), None)
        if active is None or row is None:
            _fail(404, "only your messages in the active conversation can be edited")
        try:
            await asyncio.to_thread(store.fork, row.row_id)
        except (ConversationEndedError, MessageNotFoundError, ValueError) as exc:
            _fail(409, f"that message can no longer be edited ({exc})")
        new_id = await self._submit(body["text"])
        return JSONResponse({"id": new_id}, status_code=202)

    async def undo(self, request: Request) -> Response:
        message_id: str = request.path_params["message_id"]
        await read_json(request, openapi.EMPTY)
        if self.ctx.undo is None:
            _fail(404, "undo is not available in this version")
        if not self.ctx.settings().enable_git_version_control:
            _fail(409, "undo needs git versioning: turn it on in Settings")
        try:
            detail = await self.ctx.undo(message_id)
        except UndoUnavailable as exc:
            _fail(409, str(exc) or "nothing to undo for that message")
        return JSONResponse({"ok": True, "detail": detail})

    # ------------------------------------------------------------------ history

    async def conversations(self, request: Request) -> Response:
        params = request.query_params
        limit = _query_int(params.get("limit"), "limit", 10, 1, 50)
        before = _query_time(params.get("before"), "before")
        with_messages = _query_bool(params.get("messages"), "messages")
        store = self.ctx.store
        states = self.ctx.pipeline.message_states()

        def load() -> list[dict[str, Any]]:
            found = store.list_conversations(before=before, limit=limit)
            return [
                conversation_json(c, store.messages(c.id) if with_messages else None, states)
                for c in found
            ]

        page = await asyncio.to_thread(load)
        next_before = page[-1]["started_at"] if len(page) == limit else None
        return JSONResponse({"conversations": page, "next_before": next_before})

    async def conversation(self, request: Request) -> Response:
        conversation_id: str = request.path_params["conversation_id"]
        store = self.ctx.store
        states = self.ctx.pipeline.message_states()

        def load() -> dict[str, Any] | None:
            found = store.get(conversation_id)
            if found is None:
                return None
            return conversation_json(found, store.messages(found.id), states)

        try:
            body = await asyncio.to_thread(load)
        except ConversationNotFoundError:
            body = None
        if body is None:
            _fail(404, "no conversation with that id (it may have been cleared or dropped)")
        return JSONResponse(body)

    async def clear_history(self, request: Request) -> Response:
        await read_json(request, openapi.CLEAR_HISTORY)
        await self._require_idle("Clearing the history")
        await asyncio.to_thread(self.ctx.store.clear_all)
        self.ctx.bus.publish("history_cleared")
        return JSONResponse({"ok": True})

    # ------------------------------------------------------------------ settings

    async def settings_view(self) -> dict[str, Any]:
        ctx = self.ctx
        loaded = await asyncio.to_thread(load_settings, ctx.vault)
        status, source = ctx.api_key_state()
        overrides = getattr(ctx.settings, "overrides", None)
        return {
            "settings": ctx.settings().as_dict(),
            "api_key": {"status": status, "source": source},
            "overridden": sorted(overrides) if isinstance(overrides, Mapping) else [],
            "problems": [p.message for p in loaded.problems],
            "invalid": {
                p.key: p.message
                for p in loaded.problems
                if p.kind == "invalid_value" and p.key is not None
            },
        }

    async def get_settings(self, request: Request) -> Response:
        return JSONResponse(await self.settings_view())

    async def put_settings(self, request: Request) -> Response:
        ctx = self.ctx
        body = await read_json(request, openapi.SETTINGS_UPDATE)
        changes = {k: v for k, v in body.items() if k in SETTING_KEYS}
        for key, value in changes.items():  # all or nothing: check before the key is touched
            try:
                validate_setting(key, value)
            except SettingValueError as exc:
                _fail(422, str(exc), key=exc.key)
        key_stored = False
        if "api_key" in body:
            key_stored = await self._update_key(body["api_key"])
        warning: str | None = None
        if changes:
            before = ctx.settings()
            try:
                await asyncio.to_thread(save_settings, ctx.vault, changes)
            except SettingValueError as exc:
                _fail(422, str(exc), key=exc.key)
            except SettingsFileError as exc:
                _fail(409, str(exc))
            overrides = getattr(ctx.settings, "overrides", None)
            if isinstance(overrides, dict):
                # The user just chose these in the page: a start-up flag no longer wins.
                for key in changes:
                    overrides.pop(key, None)
            after = await asyncio.to_thread(ctx.settings.reload)
            if ctx.apply_settings is not None and before != after:
                try:
                    await ctx.apply_settings(before, after)
                except Exception as exc:
                    log.exception("Applying the new settings failed")
                    warning = f"saved, but not all of it could be applied now: {exc}"
            ctx.bus.publish("settings_changed", keys=sorted(changes))
        if key_stored:
            ctx.pipeline.key_configured()
        view = await self.settings_view()
        if warning is not None:
            view["warning"] = warning
        return JSONResponse(view)

    async def _update_key(self, value: str | None) -> bool:
        """Store or remove the key; True when a key was stored. Errors never echo the key."""
        ctx = self.ctx
        if value is None:
            assert ctx.clear_api_key is not None
            await asyncio.to_thread(ctx.clear_api_key)
            ctx.bus.publish("settings_changed", keys=["api_key"])
            return False
        assert ctx.store_api_key is not None
        try:
            await asyncio.to_thread(ctx.store_api_key, value)
        except ValueError as exc:
            _fail(422, str(exc), key="api_key")
        except OSError as exc:
            _fail(409, f"the key could not be saved ({exc.strerror or type(exc).__name__})")
        ctx.bus.publish("settings_changed", keys=["api_key"])
        return True

    async def generate_routing_description(self, request: Request) -> Response:
        body = await read_json(request, openapi.ROUTING_REQUEST)
        settings = self.ctx.settings()
        text = body.get("information_architecture", settings.information_architecture)
        assert self.ctx.anthropic_client is not None
        client = self.ctx.anthropic_client()
        if client is None:
            _fail(409, "set an Anthropic API key first (Settings)")
        try:
            description = await write_routing_description(client, settings.model, text)
        except LLMError as exc:
            _fail(502, f"{exc.user_message}; the description was not written")
        except ValueError as exc:
            _fail(502, f"{exc}; try again")
        return JSONResponse({"routing_description": description})

    async def models(self, request: Request) -> Response:
        found, source = await self.catalog.models()
        current = self.ctx.settings().model
        if current not in {m.id for m in found}:
            found.insert(0, ModelChoice(current, current))
        return JSONResponse(
            {
                "models": [{"id": m.id, "display_name": m.display_name} for m in found],
                "source": source,
                "current": current,
            }
        )

    # ------------------------------------------------------------------ inbox

    async def inbox(self, request: Request) -> Response:
        store = self.ctx.store

        def unanswered() -> list[InboxMessage]:
            # An answered message is only waiting for its clean-up: not the user's concern.
            return [m for m in self.ctx.pipeline.inbox.pending() if not store.is_processed(m.id)]

        pending = await asyncio.to_thread(unanswered)
        states = self.ctx.pipeline.message_states()

        def state(message: InboxMessage) -> dict[str, Any]:
            # The pipeline's picture (it knows "processing"), else what the file says.
            return state_json(states.get(message.id) or message.view())

        return JSONResponse(
            {
                "messages": [
                    {
                        "id": m.id,
                        "text": m.text,
                        "source": m.source,
                        "input_method": str(m.metadata.get("inputMethod", "typed")),
                        "timestamp": m.timestamp,
                        "last_error": m.last_error,
                        **state(m),
                    }
                    for m in pending
                ]
            }
        )

    async def process_again(self, request: Request) -> Response:
        """Queue it again; without a key it waits for one (the answer says which)."""
        message_id: str = request.path_params["message_id"]
        await read_json(request, openapi.EMPTY)
        if not await self.ctx.pipeline.reprocess(message_id):
            _fail(404, "that message is not in the inbox (it may have been processed)")
        state = self.ctx.pipeline.message_state(message_id)
        body: dict[str, Any] = {"id": message_id}
        if state is not None:
            body.update(state_json(state))
        return JSONResponse(body, status_code=202)

    async def events_not_websocket(self, request: Request) -> Response:
        return JSONResponse(
            {"error": "/api/events is a WebSocket: connect with a WebSocket client"},
            status_code=426,
            headers={"upgrade": "websocket"},
        )
