"""What the agent loop needs of its tools, and nothing more.

The loop sends the tools' specs and runs the calls the model makes; what a tool is, how its
input is validated and what it acts on belong to `smarthole_notes.tools`, a layer above
this one. Declaring the need here keeps the LLM layer free of imports from above.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from smarthole_notes.llm.types import ToolSpec


class ToolOutcomeLike(Protocol):
    """The text a tool call produced and whether it failed."""

    @property
    def content(self) -> str: ...

    @property
    def is_error(self) -> bool: ...


class ToolRunner(Protocol):
    """The tools of one agent: their specs for the model, and a way to run one call.

    `run` never raises for a failing tool (the failure is an is-error outcome the model
    reads), only for cancellation. `smarthole_notes.tools.ToolRegistry` is one.
    """

    @property
    def specs(self) -> tuple[ToolSpec, ...]: ...

    async def run(self, name: str, tool_input: Any) -> ToolOutcomeLike: ...


@dataclass(frozen=True, slots=True)
class _Refused:
    content: str
    is_error: bool = True


class NoTools:
    """An agent without tools (every call is answered with an error)."""

    @property
    def specs(self) -> tuple[ToolSpec, ...]:
        return ()

    async def run(self, name: str, tool_input: Any) -> ToolOutcomeLike:
        return _Refused(f"Error: unknown tool {name!r}. No tools are available.")
