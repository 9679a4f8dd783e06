"""The HTTP API the chat page (and any script) uses: FastAPI routes over `schemas.py`.

Routes are thin: FastAPI validates the request against its model, `Api` calls the services
(the pipeline, the store, the settings module) and returns a response model. Store and file
work runs in a thread (`asyncio.to_thread`): the event loop also carries the SmartHole
connection and the agent's stream, which must not stall. Refusals are `ApiError`s, answered
as `{"error": ..., "key": ...}` like every other error (see `app.py`).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Annotated, Any, NoReturn

from fastapi import APIRouter, Depends, Path, Query
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from smarthole_notes.clock import local_zone
from smarthole_notes.conversations.store import (
    Conversation,
    ConversationEndedError,
    ConversationNotFoundError,
    MessageNotFoundError,
)
from smarthole_notes.inbox import InboxMessage
from smarthole_notes.llm.errors import LLMError
from smarthole_notes.settings import SettingsFileError, SettingValueError, load_settings
from smarthole_notes.smarthole import ConnectionStatus
from smarthole_notes.tools.catalog import NOTE_WRITING_TOOLS
from smarthole_notes.web.context import UndoUnavailable, WebContext
from smarthole_notes.web.live import QueueView
from smarthole_notes.web.models import (
    ModelCatalog,
    ModelChoice,
    routing_provider,
    write_routing_description,
)
from smarthole_notes.web.schemas import (
    MAX_ID_CHARS,
    Accepted,
    ApiKeyView,
    Cancelled,
    ClearHistory,
    ConversationCosts,
    ConversationPage,
    ConversationView,
    Done,
    Empty,
    ErrorBody,
    Inbox,
    InboxMessageView,
    MessageCreate,
    MessageStateView,
    ModelInfo,
    Models,
    Reprocessed,
    RoutingDescription,
    RoutingRequest,
    SearchIndexView,
    SettingsUpdate,
    SettingsView,
    SmartHoleView,
    Spending,
    StateFields,
    Status,
    UsageView,
    usage_view,
)

log = logging.getLogger(__name__)


class ApiError(Exception):
    """An expected refusal, worded for the user; becomes `{"error": ..., "key": ...}`."""

    def __init__(self, status: int, message: str, *, key: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.key = key

    def response(self) -> JSONResponse:
        return error_response(self.status, self.message, self.key)


def error_response(
    status: int, message: str, key: str | None = None, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    body: dict[str, str] = {"error": message}
    if key is not None:
        body["key"] = key
    return JSONResponse(body, status_code=status, headers=headers)


def _fail(status: int, message: str, *, key: str | None = None) -> NoReturn:
    raise ApiError(status, message, key=key)


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
    """What the routes do, bound to one `WebContext`; it calls services, never their parts."""

    def __init__(self, ctx: WebContext, queue: QueueView) -> None:
        self.ctx = ctx
        self.queue = queue
        assert ctx.anthropic_client is not None
        self.catalog = ModelCatalog(ctx.anthropic_client)

    # ------------------------------------------------------------------ status

    def smarthole_state(self) -> SmartHoleView:
        client = self.ctx.smarthole()
        if client is None:
            return SmartHoleView(status=ConnectionStatus.DISABLED, detail=None)
        return SmartHoleView(status=client.status, detail=client.status_detail)

    def undo_available(self) -> bool:
        return self.ctx.undo is not None and self.ctx.settings().enable_git_version_control

    async def status(self) -> Status:
        states = self.ctx.pipeline.message_states()
        processing, queued = self.queue.picture(states)
        return Status(
            smarthole=self.smarthole_state(),
            processing=processing,
            queued=queued,
            states={i: MessageStateView(**StateFields.of(s)) for i, s in states.items()},
            api_key=self.ctx.api_key_state()[0],
            model=self.ctx.settings().model,
            undo_available=self.undo_available(),
            vault=str(self.ctx.vault),
            version=self.ctx.version,
            writing_tools=sorted(NOTE_WRITING_TOOLS),
            search_index=SearchIndexView.of(
                await asyncio.to_thread(self.ctx.pipeline.vault_access.index.status)
            ),
        )

    async def hello(self) -> dict[str, Any]:
        """The WebSocket's first frame: the status, as JSON."""
        return (await self.status()).model_dump(mode="json")

    # ------------------------------------------------------------------ messages

    async def submit(self, text: str) -> Accepted:
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
        return Accepted(id=message.id)

    async def cancel(self) -> Cancelled:
        return Cancelled(cancelled=await self.ctx.pipeline.cancel())

    def _require_idle(self, what: str) -> None:
        if self.queue.busy(self.ctx.pipeline.message_states()):
            _fail(409, f"{what} has to wait until the current message is done (or stopped)")

    async def fork(self, message_id: str, text: str) -> Accepted:
        if not text.strip():
            _fail(400, "the message is empty")
        self._require_idle("Editing a message")
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
        return await self.submit(text)

    async def undo(self, message_id: str) -> Done:
        if self.ctx.undo is None:
            _fail(404, "undo is not offered: the service was started without git undo")
        if not self.ctx.settings().enable_git_version_control:
            _fail(409, "undo needs git versioning: turn it on in Settings")
        try:
            detail = await self.ctx.undo(message_id)
        except UndoUnavailable as exc:
            _fail(409, str(exc) or "nothing to undo for that message")
        return Done(ok=True, detail=detail)

    # ------------------------------------------------------------------ history

    def _costs(self, conversation: Conversation) -> ConversationCosts:
        """Blocking: what a conversation cost beyond the answers it shows."""
        store = self.ctx.store
        return ConversationCosts(
            side=[c.usage for c in store.side_costs(conversation.id)],
            archived=store.archived_usage(conversation.id),
        )

    async def spending(self) -> Spending:
        zone, _name = local_zone()
        local = datetime.now(zone)
        since = local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        records = await asyncio.to_thread(self.ctx.store.usage_since, since)
        views = [u for u in map(usage_view, records) if u]
        return Spending(since=since, usage=UsageView.total(views))

    async def conversations(
        self, before: datetime | None, limit: int, with_messages: bool
    ) -> ConversationPage:
        store = self.ctx.store
        costs = self._costs
        states = self.ctx.pipeline.message_states()

        def load() -> list[ConversationView]:
            found = store.list_conversations(before=before, limit=limit)
            if not with_messages:
                return [ConversationView.of(c, None, states) for c in found]
            return [ConversationView.of(c, store.messages(c.id), states, costs(c)) for c in found]

        page = await asyncio.to_thread(load)
        next_before = page[-1].started_at if len(page) == limit else None
        return ConversationPage(conversations=page, next_before=next_before)

    async def conversation(self, conversation_id: str) -> ConversationView:
        store = self.ctx.store
        costs = self._costs
        states = self.ctx.pipeline.message_states()

        def load() -> ConversationView | None:
            found = store.get(conversation_id)
            if found is None:
                return None
            return ConversationView.of(found, store.messages(found.id), states, costs(found))

        try:
            view = await asyncio.to_thread(load)
        except ConversationNotFoundError:
            view = None
        if view is None:
            _fail(404, "no conversation with that id (it may have been cleared or dropped)")
        return view

    async def clear_history(self) -> Done:
        self._require_idle("Clearing the history")
        await asyncio.to_thread(self.ctx.store.clear_all)
        self.ctx.bus.publish("history_cleared")
        return Done(ok=True)

    # ------------------------------------------------------------------ settings

    async def settings_view(self, warning: str | None = None) -> SettingsView:
        ctx = self.ctx
        loaded = await asyncio.to_thread(load_settings, ctx.vault)
        status, source = ctx.api_key_state()
        view = SettingsView(
            settings=ctx.settings(),
            api_key=ApiKeyView(status=status, source=source),
            overridden=ctx.settings.overridden(),
            problems=[p.message for p in loaded.problems],
            invalid={
                p.key: p.message
                for p in loaded.problems
                if p.kind == "invalid_value" and p.key is not None
            },
        )
        if warning is not None:
            view.warning = warning
        return view

    async def put_settings(self, body: SettingsUpdate) -> SettingsView:
        """Checked as a whole by its model before anything is touched (the key included)."""
        ctx = self.ctx
        given = body.model_dump(exclude_unset=True)
        changes = {k: v for k, v in given.items() if k != "api_key"}
        key_stored = False
        if "api_key" in given:
            key_stored = await self._update_key(given["api_key"])
        warning: str | None = None
        if changes:
            before = ctx.settings()
            try:
                await asyncio.to_thread(ctx.settings.save, changes)
            except SettingValueError as exc:
                _fail(422, str(exc), key=exc.key)
            except SettingsFileError as exc:
                _fail(409, str(exc))
            after = ctx.settings()
            if ctx.apply_settings is not None and before != after:
                try:
                    await ctx.apply_settings(before, after)
                except Exception as exc:
                    log.exception("Applying the new settings failed")
                    warning = f"saved, but not all of it could be applied now: {exc}"
            ctx.bus.publish("settings_changed", keys=sorted(changes))
        if key_stored:
            ctx.pipeline.key_configured()
        return await self.settings_view(warning)

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

    async def generate_routing_description(self, body: RoutingRequest) -> RoutingDescription:
        settings = self.ctx.settings()
        given = body.information_architecture
        text = settings.information_architecture if given is None else given
        assert self.ctx.anthropic_client is not None
        client = self.ctx.anthropic_client()
        if client is None:
            _fail(409, "set an Anthropic API key first (Settings)")
        try:
            provider = self.ctx.pipeline.costs.metered(
                routing_provider(client, settings.model), "routing_description"
            )
            description = await write_routing_description(provider, text)
        except LLMError as exc:
            _fail(502, f"{exc.user_message}; the description was not written")
        except ValueError as exc:
            _fail(502, f"{exc}; try again")
        return RoutingDescription(routing_description=description)

    async def models(self) -> Models:
        found, source = await self.catalog.models()
        current = self.ctx.settings().model
        if current not in {m.id for m in found}:
            found.insert(0, ModelChoice(current, current))
        return Models(
            models=[ModelInfo(id=m.id, display_name=m.display_name) for m in found],
            source=source,
            current=current,
        )

    # ------------------------------------------------------------------ inbox

    async def inbox(self) -> Inbox:
        waiting = await self.ctx.pipeline.waiting_messages()
        return Inbox(messages=[InboxMessageView.of_message(m, s) for m, s in waiting])

    async def process_again(self, message_id: str) -> Reprocessed:
        """Queue it again; without a key it waits for one (the answer says which)."""
        if not await self.ctx.pipeline.reprocess(message_id):
            _fail(404, "that message is not in the inbox (it may have been processed)")
        state = self.ctx.pipeline.message_state(message_id)
        if state is None:
            return Reprocessed(id=message_id)
        return Reprocessed(id=message_id, **StateFields.of(state))


# --------------------------------------------------------------------------- routes


def _api(request: Request) -> Api:
    api: Api = request.app.state.api
    return api


ApiDep = Annotated[Api, Depends(_api)]
MessageId = Annotated[
    str, Path(min_length=1, max_length=MAX_ID_CHARS, description="the user message's inbox id")
]

_REASONS = {
    400: "invalid request (bad JSON, bad parameters, foreign Host)",
    401: "missing or wrong token",
    403: "foreign Origin",
    404: "not found",
    409: "not possible now (see the message)",
    413: "body too large",
    415: "not JSON",
    422: "invalid value (see the message and key)",
    426: "not a WebSocket handshake",
    502: "the Anthropic API failed",
    503: "the service is shutting down",
}
_CHANGES = (403, 413, 415)


def _errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The refusals a route can answer, all as `ErrorBody` (400 and 401 apply everywhere)."""
    return {s: {"model": ErrorBody, "description": _REASONS[s]} for s in (400, 401, *statuses)}


router = APIRouter()


@router.get(
    "/api/status",
    operation_id="getStatus",
    summary="What the service is doing: SmartHole, the queue, the key",
    responses=_errors(),
)
async def get_status(api: ApiDep) -> Status:
    return await api.status()


@router.get(
    "/api/spending",
    operation_id="getSpending",
    summary="What the service spent this month (estimated from list prices)",
    responses=_errors(),
)
async def get_spending(api: ApiDep) -> Spending:
    return await api.spending()


@router.post(
    "/api/messages",
    operation_id="sendMessage",
    summary="Send a message (processed in order after any queued ones)",
    status_code=202,
    responses=_errors(*_CHANGES, 503),
)
async def send_message(body: MessageCreate, api: ApiDep) -> Accepted:
    return await api.submit(body.text)


@router.post(
    "/api/messages/{message_id:path}/fork",
    operation_id="forkFromMessage",
    summary="Edit a user message of the active conversation: archive it and what follows as "
    "a branch, and send the new text",
    status_code=202,
    responses=_errors(*_CHANGES, 404, 409, 503),
)
async def fork(message_id: MessageId, body: MessageCreate, api: ApiDep) -> Accepted:
    return await api.fork(message_id, body.text)


@router.post(
    "/api/messages/{message_id:path}/undo",
    operation_id="undoMessage",
    summary="Undo the vault changes of a message (when git versioning offers it; "
    "`undo_available` in the status)",
    response_model_exclude_none=True,
    responses=_errors(*_CHANGES, 404, 409),
)
async def undo(message_id: MessageId, body: Empty, api: ApiDep) -> Done:
    return await api.undo(message_id)


@router.post(
    "/api/cancel",
    operation_id="cancel",
    summary="Stop the message being processed now (Stop); answers once it has stopped",
    responses=_errors(*_CHANGES),
)
async def cancel(body: Empty, api: ApiDep) -> Cancelled:
    return await api.cancel()


@router.get(
    "/api/conversations",
    operation_id="listConversations",
    summary="Conversations, newest first (all sources), page by page",
    response_model_exclude_unset=True,
    responses=_errors(),
)
async def list_conversations(
    api: ApiDep,
    before: Annotated[
        str | None,
        Query(
            description="`next_before` of the previous page",
            json_schema_extra={"format": "date-time"},
        ),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=50)] = 10,
    messages: Annotated[bool, Query(description="include each conversation's messages")] = False,
) -> ConversationPage:
    return await api.conversations(_query_time(before, "before"), limit, messages)


@router.post(
    "/api/conversations/clear",
    operation_id="clearHistory",
    summary="Delete every conversation (needs `confirm: true`)",
    response_model_exclude_none=True,
    responses=_errors(*_CHANGES, 409),
)
async def clear_history(body: ClearHistory, api: ApiDep) -> Done:
    return await api.clear_history()


@router.get(
    "/api/conversations/{conversation_id}",
    operation_id="getConversation",
    summary="One conversation with its messages",
    response_model_exclude_unset=True,
    responses=_errors(404),
)
async def get_conversation(
    conversation_id: Annotated[str, Path(min_length=1, max_length=MAX_ID_CHARS)], api: ApiDep
) -> ConversationView:
    return await api.conversation(conversation_id)


@router.get(
    "/api/settings",
    operation_id="getSettings",
    summary="Every setting (the API key only as set / not set)",
    response_model_exclude_unset=True,
    responses=_errors(),
)
async def get_settings(api: ApiDep) -> SettingsView:
    return await api.settings_view()


@router.put(
    "/api/settings",
    operation_id="updateSettings",
    summary="Change some settings (saved to settings.toml, applied at once)",
    response_model_exclude_unset=True,
    responses=_errors(*_CHANGES, 409, 422),
)
async def put_settings(body: SettingsUpdate, api: ApiDep) -> SettingsView:
    return await api.put_settings(body)


@router.post(
    "/api/settings/routing-description/generate",
    operation_id="generateRoutingDescription",
    summary="Write a routing description from the information architecture (not saved)",
    responses=_errors(*_CHANGES, 409, 502),
)
async def generate_routing_description(body: RoutingRequest, api: ApiDep) -> RoutingDescription:
    return await api.generate_routing_description(body)


@router.get(
    "/api/models",
    operation_id="listModels",
    summary="Models to choose from (Models API, or the built-in list)",
    responses=_errors(),
)
async def list_models(api: ApiDep) -> Models:
    return await api.models()


@router.get(
    "/api/inbox",
    operation_id="listInbox",
    summary="Messages still in the inbox, each with its state and next try",
    responses=_errors(),
)
async def list_inbox(api: ApiDep) -> Inbox:
    return await api.inbox()


@router.post(
    "/api/inbox/{message_id:path}/process",
    operation_id="processAgain",
    summary="Queue an inbox message again (process again); without an API key it waits for "
    "one instead (its state in the answer says which)",
    status_code=202,
    response_model_exclude_unset=True,
    responses=_errors(*_CHANGES, 404),
)
async def process_again(
    message_id: Annotated[str, Path(min_length=1, max_length=MAX_ID_CHARS)],
    body: Empty,
    api: ApiDep,
) -> Reprocessed:
    return await api.process_again(message_id)


@router.get(
    "/api/events",
    operation_id="events",
    summary="Live events (WebSocket only)",
    description="Open as a WebSocket; a plain GET answers 426. Each frame is one Event. "
    "The token may be given as `?token=`.",
    status_code=426,
    response_model=ErrorBody,
    response_description=_REASONS[426],
    responses={101: {"description": "switching to the WebSocket"}, **_errors(403)},
)
async def events_not_websocket() -> Response:
    return error_response(
        426,
        "/api/events is a WebSocket: connect with a WebSocket client",
        headers={"upgrade": "websocket"},
    )
