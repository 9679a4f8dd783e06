"""The live event stream: what the pipeline is doing, for the chat page and any other watcher.

Every event is declared once, below, as a member of one tagged union (`BusEvent`, tagged by
`type`): publishing an event that is not declared, or with a missing, extra or mistyped
field, raises at once, so publishers and the page can never drift apart silently.
Subscribers receive the JSON-ready dict of each event (what the chat page's WebSocket
sends). A slow subscriber loses its oldest events rather than slowing the agent down.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal, TypeAlias

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

log = logging.getLogger(__name__)

Event = dict[str, Any]
"""An event as subscribers receive it: JSON-ready, with its `type`."""


class _Event(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _AboutMessage(_Event):
    message_id: str


class _FromTool(_AboutMessage):
    source: str | None = None
    """`mcp` for a call made by an MCP client; absent for the agent's own calls."""
    client: str | None = None
    """The MCP client's name."""


class MessageReceived(_AboutMessage):
    type: Literal["message_received"] = "message_received"
    text: str
    source: str
    input_method: str
    timestamp: str


class Queued(_AboutMessage):
    type: Literal["queued"] = "queued"
    position: int


class MessageStateChanged(_AboutMessage):
    """A waiting message's state changed (`done`: it left the inbox)."""

    type: Literal["message_state"] = "message_state"
    state: str
    next_attempt_at: str | None
    error: str | None


class QueueState(_Event):
    type: Literal["queue_state"] = "queue_state"
    processing: str | None
    queued: list[str]


class AgentMessage(_AboutMessage):
    """A mid-task update or question from the agent (`send_message`)."""

    type: Literal["agent_message"] = "agent_message"
    text: str
    is_question: bool


class TextDelta(_AboutMessage):
    type: Literal["text_delta"] = "text_delta"
    text: str


class StreamRestarted(_AboutMessage):
    """The stream failed midway and is retried: text shown since the last reset is void."""

    type: Literal["stream_restarted"] = "stream_restarted"


class ToolStarted(_FromTool):
    type: Literal["tool_started"] = "tool_started"
    tool: str
    input: str


class ToolFinished(_FromTool):
    type: Literal["tool_finished"] = "tool_finished"
    tool: str
    is_error: bool
    summary: str


class Response(_FromTool):
    type: Literal["response"] = "response"
    text: str
    tools_used: list[dict[str, Any]]
    usage: dict[str, Any] | None = None
    """Tokens and estimated cost (`UsageView` in the API)."""


class RequestCost(_AboutMessage):
    """An attempt at a message ended without an answer (failed, refused, stopped) after
    billing tokens: `usage` is what its attempts without an answer cost so far."""

    type: Literal["request_cost"] = "request_cost"
    usage: dict[str, Any]


class SideCost(_Event):
    """A side job (summary, retrospection, commit message, routing description) was billed;
    `conversation_id` is the conversation it served, if any."""

    type: Literal["side_cost"] = "side_cost"
    conversation_id: str | None
    job: str
    usage: dict[str, Any]


class Error(_Event):
    type: Literal["error"] = "error"
    message_id: str | None = None
    message: str
    code: str | None = None


class Cancelled(_AboutMessage):
    type: Literal["cancelled"] = "cancelled"


class Status(_Event):
    type: Literal["status"] = "status"
    smarthole: str
    detail: str | None


class Retrospection(_Event):
    type: Literal["retrospection"] = "retrospection"
    title: str
    text: str
    conversation_id: str | None = None
    created_at: str | None = None
    file: str | None = None


class HistoryCleared(_Event):
    type: Literal["history_cleared"] = "history_cleared"


class SettingsChanged(_Event):
    type: Literal["settings_changed"] = "settings_changed"
    keys: list[str]


BusEvent: TypeAlias = Annotated[
    MessageReceived
    | Queued
    | MessageStateChanged
    | QueueState
    | AgentMessage
    | TextDelta
    | StreamRestarted
    | ToolStarted
    | ToolFinished
    | Response
    | RequestCost
    | SideCost
    | Error
    | Cancelled
    | Status
    | Retrospection
    | HistoryCleared
    | SettingsChanged,
    Field(discriminator="type"),
]
EVENTS: TypeAdapter[BusEvent] = TypeAdapter(BusEvent)


class EventBus:
    def __init__(self, queue_size: int = 1000) -> None:
        self._subscribers: set[asyncio.Queue[Event]] = set()
        self._queue_size = queue_size

    def publish(self, event_type: str, **fields: Any) -> None:
        """Publish the declared event `event_type` with these fields (ValueError if it does
        not match its declaration)."""
        try:
            event = EVENTS.validate_python({"type": event_type, **fields})
        except ValidationError as exc:
            raise ValueError(f"undeclared or malformed {event_type!r} event: {exc}") from None
        self.publish_event(event)

    def publish_event(self, event: BusEvent) -> None:
        data: Event = event.model_dump(mode="json", exclude_unset=True)
        data["type"] = event.type
        for queue in list(self._subscribers):
            if queue.full():
                with contextlib.suppress(asyncio.QueueEmpty):
                    queue.get_nowait()
            queue.put_nowait(data)

    @contextlib.asynccontextmanager
    async def subscribe(self) -> AsyncIterator[asyncio.Queue[Event]]:
        queue: asyncio.Queue[Event] = asyncio.Queue(self._queue_size)
        self._subscribers.add(queue)
        try:
            yield queue
        finally:
            self._subscribers.discard(queue)
