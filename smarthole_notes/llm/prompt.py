"""The agent's system prompt: who it is, the user's local time, the vault's layout, the context."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo

import tzlocal

from smarthole_notes.llm.state import ConversationState

IDENTITY = """\
You are the user's personal notes assistant. You work directly in their Markdown notes vault \
(an Obsidian vault or a plain folder of notes) through the tools you have. Requests arrive by \
voice or by typing, so expect speech-to-text errors in names and capitals and read them charitably.

How you work:
- Make sensible best-guess decisions and act; ask a clarifying question only when a wrong guess \
would be costly or the request is truly ambiguous.
- Check before you change: look for an existing note before creating a near-duplicate.
- Keep answers short and plain (they may be read aloud): say what you did and where \
(e.g. "Added eggs to Lists/Shopping.md").
- Never invent note contents; when you cannot find something, say so."""

TOOLS_NOTE = """\
Tools: paths are relative to the vault root with / separators. Call one tool at a time and \
use its result before the next step. A tool result starting with "Error:" says what to do \
differently."""


def local_zone() -> tuple[tzinfo, str]:
    """The machine's time zone and its IANA name (e.g. America/New_York)."""
    return tzlocal.get_localzone(), tzlocal.get_localzone_name() or "UTC"


def format_utc_offset(moment: datetime) -> str:
    offset = moment.utcoffset()
    minutes = int(offset.total_seconds() // 60) if offset is not None else 0
    sign = "-" if minutes < 0 else "+"
    hours, rest = divmod(abs(minutes), 60)
    return f"UTC{sign}{hours}" + (f":{rest:02d}" if rest else "")


def format_local_time(moment: datetime, zone_name: str) -> str:
    """`Thursday, Feb 5, 2026 2:30 PM (America/New_York, UTC-5)`."""
    hour = moment.hour % 12 or 12
    meridiem = "AM" if moment.hour < 12 else "PM"
    return (
        f"{moment:%A}, {moment:%b} {moment.day}, {moment.year} {hour}:{moment:%M} {meridiem} "
        f"({zone_name}, {format_utc_offset(moment)})"
    )


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class SystemPrompt:
    """Builds the system prompt afresh for every API call (the time moves on)."""

    information_architecture: str
    zone: tzinfo | None = None
    zone_name: str | None = None
    clock: Callable[[], datetime] = _utc_now
    conversation_context: Callable[[], str] | None = None

    def __call__(self, state: ConversationState) -> str:
        zone, zone_name = (self.zone, self.zone_name or "UTC") if self.zone else local_zone()
        now = self.clock().astimezone(zone)
        parts = [
            IDENTITY,
            f"Current local date and time: {format_local_time(now, zone_name)}.",
            "How the user organises the vault (guidance, not rigid rules):\n"
            + self.information_architecture.strip(),
            TOOLS_NOTE,
        ]
        context = self.conversation_context() if self.conversation_context else ""
        if context.strip():
            parts.append(context.strip())
        if state.waiting_for_answer and state.pending_question:
            parts.append(
                "You are waiting for the user's answer to your question: "
                f'"{state.pending_question}". Their next message is most likely that answer.'
            )
        return "\n\n".join(parts)
