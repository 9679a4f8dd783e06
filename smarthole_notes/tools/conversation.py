"""The conversation tools: talk to the user mid-task, end the conversation, look back at history.

They are made per message (`TurnContext`), because what they act on (which message,
which conversation, whether the agent is now waiting for an answer) belongs to that turn.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Literal, Protocol

from smarthole_notes.bus import EventBus
from smarthole_notes.conversations.store import ConversationStore
from smarthole_notes.conversations.tool_format import (
    format_search_for_tool,
    get_conversation_text,
)
from smarthole_notes.inbox import InboxMessage
from smarthole_notes.llm.state import ConversationState
from smarthole_notes.smarthole.notifications import (
    NotificationKind,
    NotificationOutcome,
    NotificationResult,
    notification_title,
)
from smarthole_notes.tools.base import Tool, ToolError, ToolInput

Priority = Literal["low", "normal", "high"]
NOTIFICATION_BODY_LIMIT = 1000


class Notifier(Protocol):
    """Where SmartHole notifications go (the SmartHole client); never waits for its pacing."""

    async def send_notification(
        self,
        message_id: str,
        title: str,
        body: str,
        priority: Priority | None = None,
        *,
        kind: NotificationKind = "answer",
    ) -> NotificationResult: ...


@dataclass(slots=True)
class TurnContext:
    """What the conversation tools of one message act on."""

    message: InboxMessage
    conversation_id: str
    state: ConversationState
    asked_question: bool = False
    end_reason: str | None = None
    """Set by `end_conversation`; the pipeline ends the conversation after recording the answer."""


def trim(text: str, limit: int = NOTIFICATION_BODY_LIMIT) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _smarthole_fate(result: NotificationResult | None) -> str:
    """What became of a send_message text on the SmartHole side, told truthfully to the agent."""
    if result is None:
        return (
            "The SmartHole connection is off, so the user sees it only if they look at the "
            "chat page."
        )
    if result.outcome is NotificationOutcome.SENT:
        return "It was also sent to the user as a SmartHole notification."
    if result.outcome is NotificationOutcome.QUEUED:
        return f"It is queued to be sent as a SmartHole notification ({result.detail})."
    if result.outcome is NotificationOutcome.MERGED:
        return (
            "It was merged with your previous update into one SmartHole notification that is "
            "still waiting to be sent (SmartHole allows only so many notifications a minute)."
        )
    return (
        "SmartHole is not connected, so no notification was sent: the user sees it only if "
        "they look at the chat page."
    )


def conversation_tools(
    turn: TurnContext,
    *,
    bus: EventBus,
    store: ConversationStore,
    notifier: Notifier | None,
) -> list[Tool]:
    async def send_message(tool_input: ToolInput) -> str:
        text = tool_input["message"].strip()
        if not text:
            raise ToolError("message is empty; write what the user should read")
        question = bool(tool_input.get("is_question", False))
        bus.publish("agent_message", message_id=turn.message.id, text=text, is_question=question)
        fate = ""
        if turn.message.source == "smarthole":
            kind: NotificationKind = "question" if question else "progress"
            result = None
            if notifier is not None:
                result = await notifier.send_notification(
                    turn.message.id,
                    notification_title(kind, turn.message.text),
                    trim(text),
                    kind=kind,
                )
            fate = " " + _smarthole_fate(result)
        if question:
            turn.state.ask(text, turn.message.id)
            turn.asked_question = True
            return (
                f"Question shown in the chat page.{fate} Their reply will arrive as a new "
                "message: end your turn now with a short answer."
            )
        return f"Message shown in the chat page.{fate}"

    async def end_conversation(tool_input: ToolInput) -> str:
        turn.end_reason = str(tool_input.get("reason") or "ended by the agent")
        return "The conversation ends after this answer; the next message starts a new one."

    async def get_conversation(tool_input: ToolInput) -> str:
        query = tool_input.get("query")
        if query and not tool_input.get("conversation_id"):
            limit = int(tool_input.get("list_recent", 10))
            hits = await asyncio.to_thread(store.search, query, limit)
            return format_search_for_tool(query, hits)
        return await asyncio.to_thread(
            get_conversation_text,
            store,
            tool_input.get("conversation_id"),
            tool_input.get("list_recent"),
        )

    return [
        Tool(
            "send_message",
            "Send a message to the user while you are still working (progress on a long task, "
            "or a question). With is_question=true you wait for their reply, which arrives as "
            "the next message; use questions only when a wrong guess would be costly.",
            {
                "type": "object",
                "properties": {
                    "message": {"type": "string", "minLength": 1, "maxLength": 4000},
                    "is_question": {"type": "boolean", "default": False},
                },
                "required": ["message"],
                "additionalProperties": False,
            },
            send_message,
        ),
        Tool(
            "end_conversation",
            "End the current conversation when the user's topic is finished (they say goodbye, "
            "thanks, or switch to something unrelated). The next message starts a new one.",
            {
                "type": "object",
                "properties": {"reason": {"type": "string", "maxLength": 500}},
                "additionalProperties": False,
            },
            end_conversation,
        ),
        Tool(
            "get_conversation",
            "Look back at earlier, ended conversations. With conversation_id: its full messages. "
            "With query: search past conversations for words. Otherwise: the most recent ones "
            "(id, title, summary, times). The current conversation is already in your prompt.",
            {
                "type": "object",
                "properties": {
                    "conversation_id": {"type": "string", "minLength": 1, "maxLength": 100},
                    "list_recent": {"type": "integer", "minimum": 1, "maximum": 50, "default": 10},
                    "query": {"type": "string", "minLength": 1, "maxLength": 500},
                },
                "additionalProperties": False,
            },
            get_conversation,
        ),
    ]
