"""The agent's system prompt: who it is, the tools, the vault's layout; then the moment's context.

It comes in two parts (a `SystemText`): the stable part (identity, tools note, the user's
information architecture) is byte-identical from request to request, so Anthropic's prompt
cache can serve it; the volatile part (local time, conversation context, a pending question)
follows it and is built once per request.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, tzinfo

# Re-exported: the clock helpers lived here before smarthole_notes.clock (import from there).
from smarthole_notes.clock import format_local_time, format_utc_offset, local_zone
from smarthole_notes.clock import utc_now as _utc_now
from smarthole_notes.llm.state import ConversationState
from smarthole_notes.llm.types import SystemText

__all__ = [
    "IDENTITY",
    "TOOLS_NOTE",
    "SystemPrompt",
    "SystemText",
    "format_local_time",
    "format_utc_offset",
    "local_zone",
]

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


@dataclass
class SystemPrompt:
    """Builds the system prompt for one request: a stable part, then this moment's part."""

    information_architecture: str
    zone: tzinfo | None = None
    zone_name: str | None = None
    clock: Callable[[], datetime] = _utc_now
    conversation_context: Callable[[], str] | None = None
    vault_conventions: Callable[[], str] | None = None
    """Obsidian's settings for the vault (daily notes, templates, attachments): stable."""
    daily_note: Callable[[datetime], str] | None = None
    """Today's daily note, given the local time: date-dependent, so in the volatile part."""

    def stable(self) -> str:
        """Identical across requests while the settings are (what the cache keys on)."""
        parts = [
            IDENTITY,
            TOOLS_NOTE,
            "How the user organises the vault (guidance, not rigid rules):\n"
            + self.information_architecture.strip(),
        ]
        conventions = self.vault_conventions() if self.vault_conventions else ""
        if conventions.strip():
            parts.append(conventions.strip())
        return "\n\n".join(parts)

    def volatile(self, state: ConversationState) -> str:
        """The local time, the conversation context and a pending question, as of now."""
        zone, zone_name = (self.zone, self.zone_name or "UTC") if self.zone else local_zone()
        now = self.clock().astimezone(zone)
        parts = [f"Current local date and time: {format_local_time(now, zone_name)}."]
        daily = self.daily_note(now) if self.daily_note else ""
        if daily.strip():
            parts.append(daily.strip())
        context = self.conversation_context() if self.conversation_context else ""
        if context.strip():
            parts.append(context.strip())
        if state.waiting_for_answer and state.pending_question:
            parts.append(
                "You are waiting for the user's answer to your question: "
                f'"{state.pending_question}". Their next message is most likely that answer.'
            )
        return "\n\n".join(parts)

    def __call__(self, state: ConversationState) -> SystemText:
        return SystemText(self.stable(), self.volatile(state))
