"""The API's requests and responses as pydantic models: what `/openapi.json` documents is
generated from these and the routes, and what the handlers accept and return is checked by
the same models, so the document cannot drift from the service.

Enumerations come from where they are defined (the store's and the inbox's Literals, the
SmartHole client's status), and the settings from the `Settings` model itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    create_model,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo

from smarthole_notes.conversations.store import (
    Conversation,
    EndReason,
    InputMethod,
    MessageKind,
    Role,
    StoredMessage,
)
from smarthole_notes.conversations.store import Source as HistorySource
from smarthole_notes.credentials import KeySource
from smarthole_notes.inbox import DeliveryState, InboxMessage, MessageState
from smarthole_notes.inbox import Source as InboxSource
from smarthole_notes.llm.types import sum_usage_records
from smarthole_notes.settings import (
    SETTING_KEYS,
    Settings,
    invalid_setting_error,
    setting_fields,
    setting_limits,
    validate_setting,
)
from smarthole_notes.settings import SettingValueError as _SettingValueError
from smarthole_notes.smarthole import ConnectionStatus
from smarthole_notes.vault.index import IndexStatus

MAX_MESSAGE_CHARS: Final = 100_000
"""A long pasted note fits; a runaway script does not (the body limit backs this up)."""
MAX_API_KEY_CHARS: Final = 1024
MAX_ID_CHARS: Final = 256


def _has_lone_surrogate(value: object) -> bool:
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return True
        return False
    if isinstance(value, dict):
        return any(_has_lone_surrogate(k) or _has_lone_surrogate(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return any(_has_lone_surrogate(v) for v in value)
    return False


class RequestBody(BaseModel):
    """A JSON request body: exactly the documented fields, of exactly their types."""

    model_config = ConfigDict(extra="forbid", strict=True)

    @model_validator(mode="before")
    @classmethod
    def _valid_unicode(cls, data: Any) -> Any:
        """JSON may carry lone surrogates, which no file or database takes: refuse them."""
        if _has_lone_surrogate(data):
            raise ValueError("text must be valid Unicode (no lone surrogates)")
        return data


class Empty(RequestBody):
    """No parameters (an empty JSON object)."""


class MessageCreate(RequestBody):
    text: str = Field(min_length=1, max_length=MAX_MESSAGE_CHARS)


class ClearHistory(RequestBody):
    confirm: Literal[True]


def _no_default(schema: dict[str, Any]) -> None:
    schema.pop("default", None)


class RoutingRequest(RequestBody):
    information_architecture: str | None = Field(
        default=None,
        max_length=setting_limits("information_architecture")["max_length"],
        description="the text to describe (default: the saved setting)",
        json_schema_extra=_no_default,
    )


def _optional(info: FieldInfo) -> FieldInfo:
    """A setting's declaration as an optional request field: same bounds, title and help."""
    extra = dict(info.json_schema_extra) if isinstance(info.json_schema_extra, dict) else {}

    def schema_extra(schema: dict[str, Any]) -> None:
        _no_default(schema)
        schema.update(extra)

    optional = FieldInfo.merge_field_infos(info, default=None)
    optional.json_schema_extra = schema_extra
    return optional


def _write_only(schema: dict[str, Any]) -> None:
    _no_default(schema)
    schema["writeOnly"] = True


def _check_setting(value: object, info: ValidationInfo) -> object:
    """The setting's own user-worded check (a 422 naming the key), before the constraints."""
    assert info.field_name is not None
    try:
        return validate_setting(info.field_name, value)
    except _SettingValueError as exc:
        raise invalid_setting_error(exc.key, value, exc.reason) from None


if TYPE_CHECKING:  # a model made at run time from the settings' declarations
    SettingsUpdate = RequestBody
else:
    SettingsUpdate = create_model(
        "SettingsUpdate",
        __base__=RequestBody,
        __doc__="Some settings to change (saved to settings.toml, applied at once). Each setting's "
        "bounds, title and help are the Settings model's: the chat page builds its form from them.",
        __validators__={
            "check_setting": field_validator(*SETTING_KEYS, mode="before")(_check_setting)
        },
        **{key: (info.annotation, _optional(info)) for key, info in setting_fields().items()},
        api_key=(
            str | None,
            Field(
                default=None,
                max_length=MAX_API_KEY_CHARS,
                title="Anthropic API key",
                description="a new Anthropic API key (write-only), or null to remove the stored "
                "one; never returned",
                json_schema_extra=_write_only,
            ),
        ),
    )


# --------------------------------------------------------------------------- responses


class ErrorBody(BaseModel):
    """Every refusal: what went wrong, worded for the user, and the field at fault if any."""

    error: str
    key: str | None = None


class Accepted(BaseModel):
    id: str


class Cancelled(BaseModel):
    cancelled: bool


class Done(BaseModel):
    ok: Literal[True] = True
    detail: str | None = None


class StateFields(BaseModel):
    """A message still in the inbox, as the user is shown it."""

    state: DeliveryState = Field(
        description="queued; processing; waiting_for_key (processed as soon as a key is set); "
        "retry_scheduled (failed for a transient reason, tried again at `next_attempt_at`); "
        "failed (waits for the user: process again); refused (Claude declined it; waits for "
        "the user)"
    )
    next_attempt_at: datetime | None = Field(
        description="when the next automatic try is due (UTC), for retry_scheduled"
    )
    error: str | None = Field(description="what the user was told about the last failure")
    attempts: int = Field(0, description="how many times processing started")

    @classmethod
    def of(cls, state: MessageState) -> dict[str, Any]:
        return {
            "state": state.state,
            "next_attempt_at": state.next_attempt_at,
            "error": state.error,
            "attempts": state.attempts,
        }


class MessageStateView(StateFields):
    pass


class ToolUseView(BaseModel):
    name: str
    input_summary: str
    is_error: bool
    summary: str


class UsageView(BaseModel):
    """What an answer cost: tokens and an estimate in US dollars (from the price table in
    `smarthole_notes.llm.pricing`); a conversation's total sums its answers."""

    model: str | None = None
    input_tokens: int = Field(0, description="input tokens not read from the cache")
    output_tokens: int = 0
    cache_write_tokens: int = 0
    cache_read_tokens: int = 0
    cost_usd: float | None = Field(None, description="estimated; null when a model has no price")

    @classmethod
    def total(cls, usages: list[UsageView]) -> UsageView | None:
        if not usages:
            return None
        return cls(**sum_usage_records(u.model_dump() for u in usages))


def usage_view(usage: Mapping[str, Any] | None) -> UsageView | None:
    """A stored answer's usage (None for answers recorded before usage was kept)."""
    if not usage:
        return None
    known = {k: usage[k] for k in UsageView.model_fields if k in usage}
    try:
        return UsageView(**known)
    except ValueError:
        return None


class MessageView(BaseModel):
    """One stored message; a user message still in the inbox carries its state too (so the
    page shows "waiting for an API key", "failed, next try at 10:42"... after a reload)."""

    id: int = Field(description="row id in the history")
    conversation_id: str
    role: Role
    kind: MessageKind = Field(
        description="request (the user's); answer; refusal (Claude declined: not an answer); "
        "update and question (sent by the agent mid-task); retrospection (a system note on "
        "the ended conversation)"
    )
    content: str
    source: HistorySource
    input_method: InputMethod | None = None
    message_id: str | None = Field(
        default=None, description="a user message's inbox id (for fork and undo)"
    )
    tools_used: list[ToolUseView] = []
    created_at: datetime
    reply_to: int | None = None
    reply_to_message_id: str | None = None
    state: DeliveryState | None = Field(
        default=None,
        description="user messages: the state while still in the inbox, else null (answered, "
        "stopped or deleted)",
    )
    next_attempt_at: datetime | None = None
    error: str | None = None
    attempts: int | None = None
    usage: UsageView | None = Field(
        default=None,
        description="answers: tokens and cost; requests: what their attempts that ended without "
        "an answer (failed, refused, stopped) cost",
    )

    @classmethod
    def of(
        cls,
        message: StoredMessage,
        inbox_ids: dict[int, str | None],
        states: dict[str, MessageState],
    ) -> MessageView:
        fields: dict[str, Any] = {
            "id": message.row_id,
            "conversation_id": message.conversation_id,
            "role": message.role,
            "kind": message.kind,
            "content": message.content,
            "source": message.source,
            "input_method": message.input_method,
            "message_id": message.message_id,
            "tools_used": [ToolUseView(**t.to_dict()) for t in message.tools_used],
            "created_at": message.created_at,
            "reply_to": message.reply_to,
            "reply_to_message_id": (
                inbox_ids.get(message.reply_to) if message.reply_to is not None else None
            ),
            "usage": usage_view(message.usage),
        }
        if message.role == "user":
            state = states.get(message.message_id or "")
            fields.update(
                StateFields.of(state)
                if state is not None
                else {"state": None, "next_attempt_at": None, "error": None}
            )
        return cls(**fields)


class Spending(BaseModel):
    """What the service spent since the start of this month (local time), estimated from
    the price table: answers, attempts without an answer, side jobs. Kept apart from the
    history: retention and a cleared history do not change it."""

    since: datetime
    usage: UsageView | None = Field(description="null when nothing was spent")


@dataclass(frozen=True)
class ConversationCosts:
    """What a conversation cost beyond the messages it shows (usage records)."""

    side: list[Mapping[str, Any]] = field(default_factory=list)
    archived: list[Mapping[str, Any]] = field(default_factory=list)


class ConversationView(BaseModel):
    id: str
    started_at: datetime
    last_activity_at: datetime
    ended_at: datetime | None = None
    end_reason: EndReason | None = None
    title: str | None = None
    summary: str | None = None
    message_count: int
    active: bool
    messages: list[MessageView] | None = Field(
        default=None, description="only when asked for (`messages=true`, or one conversation)"
    )
    side_usage: UsageView | None = Field(
        default=None,
        description="what side jobs (summary, retrospection, commit messages) cost for it "
        "(with `messages` only)",
    )
    archived_usage: UsageView | None = Field(
        default=None,
        description="what answers and attempts cost on the branches edits archived "
        "(with `messages` only)",
    )
    usage_total: UsageView | None = Field(
        default=None,
        description="everything it cost: its answers, its requests' attempts without an "
        "answer, its side jobs and its archived branches (with `messages` only)",
    )

    @classmethod
    def of(
        cls,
        conversation: Conversation,
        messages: list[StoredMessage] | None,
        states: dict[str, MessageState],
        costs: ConversationCosts | None = None,
    ) -> ConversationView:
        fields: dict[str, Any] = {
            "id": conversation.id,
            "started_at": conversation.started_at,
            "last_activity_at": conversation.last_activity_at,
            "ended_at": conversation.ended_at,
            "end_reason": conversation.end_reason,
            "title": conversation.title,
            "summary": conversation.summary,
            "message_count": conversation.message_count,
            "active": conversation.active,
        }
        if messages is not None:
            inbox_ids = {m.row_id: m.message_id for m in messages}
            views = [MessageView.of(m, inbox_ids, states) for m in messages]
            fields["messages"] = views
            costs = costs or ConversationCosts()
            side = [u for u in map(usage_view, costs.side) if u]
            archived = [u for u in map(usage_view, costs.archived) if u]
            fields["side_usage"] = UsageView.total(side)
            fields["archived_usage"] = UsageView.total(archived)
            shown = [v.usage for v in views if v.usage]
            fields["usage_total"] = UsageView.total(shown + side + archived)
        return cls(**fields)


class ConversationPage(BaseModel):
    conversations: list[ConversationView]
    next_before: datetime | None = Field(
        description="pass as `before` for the next (older) page; null on the last page"
    )


class ApiKeyView(BaseModel):
    status: Literal["set", "not set"]
    source: KeySource | None = None


class SettingsView(BaseModel):
    settings: Settings
    api_key: ApiKeyView
    overridden: list[str] = Field(description="keys a command-line flag sets for this run")
    problems: list[str]
    invalid: dict[str, str] = Field(
        description="keys whose value in settings.toml is invalid (the default is in effect "
        "and shown), with the problem; saving from the page writes the shown value"
    )
    warning: str | None = Field(
        default=None, description="saved, but not all of it could be applied"
    )


class RoutingDescription(BaseModel):
    routing_description: str


class ModelInfo(BaseModel):
    id: str
    display_name: str


class Models(BaseModel):
    models: list[ModelInfo]
    source: Literal["api", "builtin"]
    current: str


class InboxMessageView(StateFields):
    id: str
    text: str
    source: InboxSource
    input_method: str
    timestamp: str
    last_error: str | None = Field(description="the last failure's code and detail")

    @classmethod
    def of_message(cls, message: InboxMessage, state: MessageState) -> InboxMessageView:
        return cls(
            id=message.id,
            text=message.text,
            source=message.source,
            input_method=str(message.metadata.get("inputMethod", "typed")),
            timestamp=message.timestamp,
            last_error=message.last_error,
            **StateFields.of(state),
        )


class Inbox(BaseModel):
    messages: list[InboxMessageView]


class Reprocessed(BaseModel):
    id: str
    state: DeliveryState | None = None
    next_attempt_at: datetime | None = None
    error: str | None = None
    attempts: int | None = None


class SmartHoleView(BaseModel):
    status: ConnectionStatus
    detail: str | None = None


class Status(BaseModel):
    """What the service is doing; also the WebSocket's first frame (`hello`)."""

    smarthole: SmartHoleView
    processing: str | None = Field(description="the inbox id being processed now")
    queued: list[str] = Field(description="inbox ids waiting, in order")
    states: dict[str, MessageStateView] = Field(
        description="every message still in the inbox, by id"
    )
    api_key: Literal["set", "not set"]
    model: str
    undo_available: bool
    vault: str
    version: str
    writing_tools: list[str] = Field(
        description="tools whose successful call changed notes (the page offers Undo on "
        "answers that used one)"
    )
    search_index: SearchIndexView | None = Field(
        default=None, description="the vault's search index (search_notes), when there is one"
    )


class SearchIndexView(BaseModel):
    """How far the vault's search index is (the page shows it in Settings)."""

    state: Literal["idle", "building", "ready", "failed"]
    notes: int = Field(description="notes indexed")
    files: int
    done: int = Field(description="files examined so far by a running build")
    total: int = Field(description="files a running build examines (0 until known)")
    last_update: datetime | None = Field(description="when the last change was taken in")
    disk_bytes: int
    error: str | None = None
    description: str = Field(description='e.g. "2,324 notes indexed"')

    @classmethod
    def of(cls, status: IndexStatus) -> SearchIndexView:
        fields = status.as_dict()
        stamp = fields.pop("last_update")
        return cls(
            **fields,
            last_update=datetime.fromtimestamp(stamp, UTC) if stamp is not None else None,
            description=status.describe(),
        )


EVENT_DESCRIPTION: Final = (
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
)


class Event(BaseModel):
    model_config = ConfigDict(extra="allow", json_schema_extra={"description": EVENT_DESCRIPTION})

    type: str
