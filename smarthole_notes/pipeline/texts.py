"""What the user and the agent are told about a message's fate: one place for every sentence."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from smarthole_notes.clock import local_zone
from smarthole_notes.llm.errors import LLMError
from smarthole_notes.llm.service import AgentResult
from smarthole_notes.tools.catalog import NOTE_WRITING_TOOLS

RETRY_NOTE = (
    "[Note from the service: this request was interrupted earlier (the service stopped while "
    "working on it) and is being run again. Check the vault for changes already made before "
    "redoing anything.]"
)
NO_KEY_NOTICE = (
    "smarthole-notes needs an Anthropic API key. Your message is kept and will be processed "
    "once a key is set (ANTHROPIC_API_KEY, or Settings in the chat page)."
)
KEY_REJECTED_NOTICE = (
    "The Anthropic API key was rejected (missing, invalid or revoked): set a valid one in "
    "Settings. Your message is kept and will be processed as soon as a new key is set."
)
LESS_CONTEXT = "Current conversation: (left out: the conversation was too long for the model)."
UNEXPECTED_FAILURE = (
    "Something went wrong processing your message; it is kept in the inbox (process it again "
    "from there)."
)


def local_clock_time(moment: datetime) -> str:
    """`10:42` in the user's local time (what "next try at" messages say)."""
    zone, _name = local_zone()
    return moment.astimezone(zone).strftime("%H:%M")


def refused_text(error: LLMError) -> str:
    return f"{error.user_message} Your message is kept in the inbox."


def retry_text(error: LLMError, due: datetime) -> str:
    return f"{error.user_message}. Your message is kept; next try at {local_clock_time(due)}."


def retries_spent_text(error: LLMError, tries: int) -> str:
    return (
        f"{error.user_message}. It was tried again automatically {tries} times; your message "
        "is kept in the inbox: process it again there when Anthropic is back."
    )


def needs_user_text(error: LLMError) -> str:
    lead = error.user_message.rstrip(".")
    return f"{lead}. Your message is kept in the inbox; process it again there."


def empty_answer(result: AgentResult) -> str:
    """What the user is told when the model ended without a word: what was done, truthfully."""
    done = [t for t in result.tools_used if t.name in NOTE_WRITING_TOOLS and not t.is_error]
    if done:
        parts = [f"{t.name} {_target(t.input)}".strip() for t in done]
        return "Done: " + "; ".join(parts) + "."
    if result.tools_used:
        return "Claude finished without an answer and changed nothing."
    return "Claude gave no answer."


def _target(tool_input: dict[str, Any]) -> str:
    value = tool_input.get("path") or tool_input.get("source")
    return str(value) if isinstance(value, str) else ""
