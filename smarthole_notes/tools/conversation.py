"""The conversation tools: talk to the user mid-task, end the conversation, look back at history.

They are made per message (`TurnContext`), because what they act on (which message,
which conversation, whether the agent is now waiting for an answer) belongs to that turn.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from functools import partial
from typing import Protocol

from smarthole_notes.bus import EventBus
from smarthole_notes.conversations.store import ConversationStore
from smarthole_notes.inbox import InboxMessage
from smarthole_notes.llm.state import ConversationState
from smarthole_notes.smarthole.notifications import (
    NotificationKind,
    NotificationOutcome,
    NotificationResult,
    notification_title,
)
from smarthole_notes.smarthole.protocol import Priority
from smarthole_notes.text import shorten
from smarthole_notes.tools import catalog
from smarthole_notes.tools.base import Tool, ToolError
from smarthole_notes.tools.catalog import (
    EndConversationArgs,
    GetConversationArgs,
    SendMessageArgs,
)
from smarthole_notes.tools.history_format import (
    format_search_for_tool,
    get_conversation_text,
)

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
    """A notification body SmartHole shows whole."""
    return shorten(text, limit)


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


@dataclass(frozen=True, slots=True)
class _Turn:
    """What a turn's conversation tools act on and report to."""

    turn: TurnContext
    bus: EventBus
    store: ConversationStore
    notifier: Notifier | None


async def send_message(ctx: _Turn, args: SendMessageArgs) -> str:
    turn = ctx.turn
    text = args.message.strip()
    if not text:
        raise ToolError("message is empty; write what the user should read")
    question = args.is_question
    ctx.bus.publish("agent_message", message_id=turn.message.id, text=text, is_question=question)
    fate = ""
    if turn.message.source == "smarthole":
        kind: NotificationKind = "question" if question else "progress"
        result = None
        if ctx.notifier is not None:
            result = await ctx.notifier.send_notification(
                turn.message.id, notification_title(kind, turn.message.text), trim(text), kind=kind
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


async def end_conversation(ctx: _Turn, args: EndConversationArgs) -> str:
    ctx.turn.end_reason = args.reason or "ended by the agent"
    return "The conversation ends after this answer; the next message starts a new one."


async def get_conversation(ctx: _Turn, args: GetConversationArgs) -> str:
    if args.query and not args.conversation_id:
        hits = await asyncio.to_thread(ctx.store.search, args.query, args.list_recent)
        return format_search_for_tool(args.query, hits)
    return await asyncio.to_thread(
        get_conversation_text, ctx.store, args.conversation_id, args.list_recent
    )


def conversation_tools(
    turn: TurnContext,
    *,
    bus: EventBus,
    store: ConversationStore,
    notifier: Notifier | None,
) -> list[Tool]:
    """The three conversation tools of one message."""
    ctx = _Turn(turn, bus, store, notifier)
    return [
        catalog.SEND_MESSAGE.bind(partial(send_message, ctx)),
        catalog.END_CONVERSATION.bind(partial(end_conversation, ctx)),
        catalog.GET_CONVERSATION.bind(partial(get_conversation, ctx)),
    ]
