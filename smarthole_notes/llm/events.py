"""Live events of an agent call, for whoever watches it work (a terminal, the chat page).

The final response stays the source of truth; these are only for showing progress.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeAlias


@dataclass(frozen=True, slots=True)
class TextDelta:
    """A piece of answer text as the model writes it."""

    text: str


@dataclass(frozen=True, slots=True)
class StreamRestarted:
    """A stream failed midway and is being retried: discard text shown since the last reset."""

    attempt: int
    reason: str


@dataclass(frozen=True, slots=True)
class ToolStarted:
    tool_use_id: str
    name: str
    input: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ToolFinished:
    tool_use_id: str
    name: str
    is_error: bool
    summary: str


AgentEvent: TypeAlias = TextDelta | StreamRestarted | ToolStarted | ToolFinished
EventSink: TypeAlias = Callable[[AgentEvent], None]
