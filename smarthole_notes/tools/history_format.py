"""The `get_conversation` tool's texts: recent conversations, one conversation, search hits.

Times are in the user's local zone; by default the machine's (`local_zone`).
The tool itself (in `smarthole_notes.tools`) can call `get_conversation_text`, which does the
lookups and refuses the active conversation and unknown ids with an `Error:` result.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import tzinfo

from smarthole_notes.clock import local_zone
from smarthole_notes.conversations.formatting import (
    full_time,
    one_line,
    title_text,
    transcript,
)
from smarthole_notes.conversations.store import (
    Conversation,
    ConversationStore,
    SearchHit,
    StoredMessage,
)
from smarthole_notes.tools.base import ToolError

DEFAULT_RECENT = 10
MAX_RECENT = 50


def _zone(tz: tzinfo | None, zone_name: str | None) -> tuple[tzinfo, str]:
    if tz is None:
        return local_zone()
    return tz, zone_name or "UTC"


def _times(conversation: Conversation, tz: tzinfo, zone_name: str) -> str:
    text = f"started {full_time(conversation.started_at, tz, zone_name)}"
    if conversation.ended_at is not None:
        text += f"; ended {full_time(conversation.ended_at, tz, zone_name)}"
        if conversation.end_reason:
            text += f" ({conversation.end_reason})"
    return text


def _capitalised(text: str) -> str:
    return text[:1].upper() + text[1:]


def _count(n: int) -> str:
    return f"{n} message" + ("" if n == 1 else "s")


def format_conversation_for_tool(
    conversation: Conversation,
    messages: Sequence[StoredMessage],
    tz: tzinfo | None = None,
    zone_name: str | None = None,
) -> str:
    """An ended conversation in full: header, summary, then every message of its main line.

    Conversation 0c1f...: "Weekend shopping list"
    Started Thursday, Feb 5, 2026 9:00 AM (...); ended ... (idle); 4 messages.
    Summary: ...

    [9:00 AM] User (voice): ...
    """
    tz, zone_name = _zone(tz, zone_name)
    start = conversation.started_at.astimezone(tz)
    lines = [
        f"Conversation {conversation.id}: {title_text(conversation)}",
        f"{_capitalised(_times(conversation, tz, zone_name))}; {_count(len(messages))}.",
    ]
    if conversation.summary:
        lines.append(f"Summary: {one_line(conversation.summary)}")
    lines.append("")
    lines.append(transcript(messages, tz, since=start.date()) or "(no messages)")
    return "\n".join(lines)


def format_recent_for_tool(
    conversations: Sequence[Conversation], tz: tzinfo | None = None, zone_name: str | None = None
) -> str:
    """The recent ended conversations: id, title, start, end, message count, summary."""
    tz, zone_name = _zone(tz, zone_name)
    if not conversations:
        return "No conversation has ended yet."
    lines = [
        "Recent conversations, newest first "
        "(call get_conversation with a conversation_id to read one in full):"
    ]
    for conversation in conversations:
        lines.append(
            f"- {conversation.id}: {title_text(conversation)}; "
            f"{_times(conversation, tz, zone_name)}; {_count(conversation.message_count)}."
        )
        if conversation.summary:
            lines.append(f"  Summary: {one_line(conversation.summary)}")
    return "\n".join(lines)


def format_search_for_tool(
    query: str, hits: Sequence[SearchHit], tz: tzinfo | None = None, zone_name: str | None = None
) -> str:
    """Search results: conversation id, title, end time, and the matching words in context."""
    tz, zone_name = _zone(tz, zone_name)
    if not hits:
        return f'No ended conversation matches "{query}".'
    lines = [f'Conversations matching "{query}", best first (matches in [brackets]):']
    for hit in hits:
        conversation = hit.conversation
        ended = (
            f"ended {full_time(conversation.ended_at, tz, zone_name)}"
            if conversation.ended_at is not None
            else "active"
        )
        lines.append(f"- {conversation.id}: {title_text(conversation)}; {ended}.")
        lines.append(f"  Match: {one_line(hit.snippet)}")
    return "\n".join(lines)


def get_conversation_text(
    store: ConversationStore,
    conversation_id: str | None,
    list_recent: int | None,
    tz: tzinfo | None = None,
    zone_name: str | None = None,
) -> str:
    """The `get_conversation` tool's answer; `ToolError` (an `Error:` result) when refused.

    Blocking (SQLite): call it through `asyncio.to_thread`.
    """
    if conversation_id is not None and conversation_id.strip():
        wanted = conversation_id.strip()
        conversation = store.get(wanted)
        if conversation is None:
            raise ToolError(
                f"Error: no conversation has id {wanted!r}. Call get_conversation without "
                "conversation_id to list recent ones with their ids."
            )
        if conversation.active:
            raise ToolError(
                "Error: that is the current conversation; it is already in your context."
            )
        return format_conversation_for_tool(conversation, store.messages(wanted), tz, zone_name)
    limit = DEFAULT_RECENT if list_recent is None else max(1, min(int(list_recent), MAX_RECENT))
    return format_recent_for_tool(store.recent_ended(limit), tz, zone_name)
