"""What a tool is, and the registry that validates and runs them.

A tool is a name, a description, a JSON-schema input and an async `execute` that
returns text for the model. The registry validates the model's input against the
schema before a tool runs, so no tool has to re-check types; a tool reports a
user-level failure by raising `ToolError`, which becomes an `Error: ...` result.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import jsonschema
import jsonschema.exceptions

from smarthole_notes.llm.types import ToolSpec

ToolInput = dict[str, Any]
ToolFunction = Callable[[ToolInput], Awaitable[str]]


class ToolError(Exception):
    """A failure the model should read and act on ("line 50 does not exist; ...")."""


@dataclass(frozen=True, slots=True)
class Tool:
    name: str
    description: str
    input_schema: dict[str, Any]
    execute: ToolFunction

    @property
    def spec(self) -> ToolSpec:
        return ToolSpec(self.name, self.description, self.input_schema)


@dataclass(frozen=True, slots=True)
class ToolOutcome:
    """The text a tool call produced and whether it failed."""

    content: str
    is_error: bool


class ToolRegistry:
    """Tools by name. Registering and unregistering is allowed at any time."""

    def __init__(self, tools: list[Tool] | None = None) -> None:
        self._tools: dict[str, Tool] = {}
        self._validators: dict[str, jsonschema.protocols.Validator] = {}
        for tool in tools or []:
            self.register(tool)

    def register(self, tool: Tool) -> None:
        validator_cls = jsonschema.validators.validator_for(tool.input_schema)
        validator_cls.check_schema(tool.input_schema)
        self._tools[tool.name] = tool
        self._validators[tool.name] = validator_cls(tool.input_schema)

    def unregister(self, name: str) -> None:
        self._tools.pop(name, None)
        self._validators.pop(name, None)

    def __contains__(self, name: object) -> bool:
        return name in self._tools

    def __iter__(self) -> Iterator[Tool]:
        return iter(list(self._tools.values()))

    def __len__(self) -> int:
        return len(self._tools)

    def get(self, name: str) -> Tool | None:
        return self._tools.get(name)

    @property
    def specs(self) -> tuple[ToolSpec, ...]:
        return tuple(t.spec for t in self._tools.values())

    async def run(self, name: str, tool_input: Any) -> ToolOutcome:
        """Run one tool call; never raises except for cancellation."""
        tool = self._tools.get(name)
        if tool is None:
            known = ", ".join(sorted(self._tools)) or "none"
            return ToolOutcome(f"Error: unknown tool {name!r}. Available tools: {known}.", True)
        if not isinstance(tool_input, dict):
            return ToolOutcome("Error: tool input must be a JSON object.", True)
        error = jsonschema.exceptions.best_match(self._validators[name].iter_errors(tool_input))
        if error is not None:
            where = "/".join(str(p) for p in error.absolute_path) or "input"
            return ToolOutcome(f"Error: invalid input for {name} ({where}): {error.message}", True)
        try:
            return ToolOutcome(await tool.execute(tool_input), False)
        except ToolError as exc:
            message = str(exc)
            return ToolOutcome(
                message if message.startswith("Error:") else f"Error: {message}", True
            )
        except Exception as exc:  # a bug in a tool must not end the conversation
            return ToolOutcome(
                f"Error: {name} failed unexpectedly ({type(exc).__name__}: {exc})", True
            )
