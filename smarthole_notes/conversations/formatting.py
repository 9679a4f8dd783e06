"""Conversations as text for the model: the pieces the context and the tool texts share.

Times are the user's local time (dates the model reads are in the user's zone).
A transcript line is `[2:30 PM] User (voice): text`; the date is added (`[Fri, Feb 6
12:05 AM]`) only when it differs from the line before, continuation lines of a message
are indented by two spaces, and an answer that used tools is followed by
`  Tools used: read_file(path="a.md"); edit_file(path="a.md") [failed: Error: ...]`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, datetime, tzinfo

from smarthole_notes.clock import format_local_time
from smarthole_notes.conversations.store import Conversation, StoredMessage, ToolUse


def clock_time(local: datetime) -> str:
    """`2:30 PM`, as `format_local_time` writes the time of day."""
    hour = local.hour % 12 or 12
    return f"{hour}:{local:%M} {'AM' if local.hour < 12 else 'PM'}"


def short_date(local: datetime) -> str:
    """`Fri, Feb 6`."""
    return f"{local:%a}, {local:%b} {local.day}"


def full_time(moment: datetime, tz: tzinfo, zone_name: str) -> str:
    """`Thursday, Feb 5, 2026 2:30 PM (America/New_York, UTC-5)` in the user's zone."""
    return format_local_time(moment.astimezone(tz), zone_name)


def speaker(message: StoredMessage) -> str:
    """`User (voice)`, `User (typed)`, `Assistant`, `Assistant (update)`, `System`."""
    if message.role == "user":
        return f"User ({message.input_method or message.source})"
    if message.kind in ("update", "question", "refusal"):
        return f"{message.role.capitalize()} ({message.kind})"
    return message.role.capitalize()


def tools_line(tools: Iterable[ToolUse]) -> str:
    """`read_file(path="a.md"); edit_file(path="a.md") [failed: Error: text not found]`."""
    parts = []
    for tool in tools:
        part = f"{tool.name}({tool.input_summary})"
        if tool.is_error:
            part += f" [failed: {tool.summary}]" if tool.summary else " [failed]"
        parts.append(part)
    return "; ".join(parts)


def indent_continuation(text: str) -> str:
    """Continuation lines indented, so a multi-line message cannot pass for the next one."""
    return "\n  ".join(text.strip("\n").splitlines() or [""])


def transcript(messages: Sequence[StoredMessage], tz: tzinfo, since: date | None = None) -> str:
    """Messages as timestamped lines; `since` is the local date already known to the reader."""
    lines: list[str] = []
    shown_date = since
    for message in messages:
        local = message.created_at.astimezone(tz)
        stamp = clock_time(local)
        if local.date() != shown_date:
            stamp = f"{short_date(local)} {stamp}"
            shown_date = local.date()
        lines.append(f"[{stamp}] {speaker(message)}: {indent_continuation(message.content)}")
        if message.tools_used:
            lines.append(f"  Tools used: {tools_line(message.tools_used)}")
    return "\n".join(lines)


def one_line(text: str, limit: int | None = None) -> str:
    """Whitespace runs (newlines too) as single spaces, cut at `limit` characters."""
    flat = " ".join(text.split())
    if limit is not None and len(flat) > limit:
        return flat[: limit - 1] + "…"
    return flat


def title_text(conversation: Conversation) -> str:
    return f'"{conversation.title}"' if conversation.title else "untitled"
