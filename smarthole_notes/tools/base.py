"""What a tool is, and the registry that validates and runs them.

A tool is a name, a description, an input schema and an async `execute` that returns text
for the model. Our tools declare their input as a pydantic model (`ToolArgs`, see
`schema`): the JSON schema Claude receives is generated from it, and the registry
validates the model's input with it before the tool runs, so the schema and the check
cannot drift and no tool re-checks types. A tool reports a user-level failure by raising `ToolError`,
which becomes an `Error: ...` result.

A `Tool` may also be built from a plain JSON-schema dict and a function of the input dict
(tests and small extensions do); that input is checked with jsonschema instead.
"""

from __future__ import annotations

import copy
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from pydantic import ValidationError

from smarthole_notes.llm.types import ToolSpec
from smarthole_notes.tools.schema import ToolArgs, describe_invalid, tool_schema

if TYPE_CHECKING:  # imported where a dict-schema tool needs it: not on `serve`'s start path
    import jsonschema

ToolInput = dict[str, Any]
"""The raw input of a tool call, as the model sent it (and what dict-schema tools get)."""
ToolFunction = Callable[[ToolInput], Awaitable[str]]


class ToolError(Exception):
    """A failure the model should read and act on ("line 50 does not exist; ...")."""


ArgsT = TypeVar("ArgsT", bound=ToolArgs)


@dataclass(frozen=True, slots=True)
class ToolAnnotations:
    """What a call does to the world, for clients that ask before acting (MCP's hints).

    `destructive` and `idempotent` are only meaningful when `read_only` is false.
    """

    read_only: bool = False
    destructive: bool = True
    idempotent: bool = False
    open_world: bool = False
    """True when the tool reaches outside the vault and the service (e.g. notifies the user)."""


READ_ONLY = ToolAnnotations(read_only=True, destructive=False, idempotent=True)


@dataclass(frozen=True, slots=True)
class Tool:
    name: str
    description: str
    input_schema: dict[str, Any]
    execute: Callable[[Any], Awaitable[str]]
    """Takes the input dict; a tool with an `input_model` also takes a validated instance
    (what the registry passes after its check)."""
    input_model: type[ToolArgs] | None = None
    annotations: ToolAnnotations = field(default_factory=ToolAnnotations)
    writes_vault: bool = False
    """A successful call changes the notes (so there is something to commit or report)."""

    @property
    def spec(self) -> ToolSpec:
        return ToolSpec(self.name, self.description, self.input_schema)


@dataclass(frozen=True, slots=True)
class ToolDefinition(Generic[ArgsT]):
    """Everything about one tool except what it is bound to: declared once, at module level.

    The pipeline, the MCP server and the notifications read the metadata from here; the
    tool families bind it to a vault, a repository or a turn with `bind`.
    """

    name: str
    description: str
    input_model: type[ArgsT]
    annotations: ToolAnnotations
    writes_vault: bool = False

    @property
    def input_schema(self) -> dict[str, Any]:
        """A fresh copy each time, so no caller can change another tool's schema."""
        return copy.deepcopy(tool_schema(self.input_model))

    def bind(self, handler: Callable[[ArgsT], Awaitable[str]]) -> Tool:
        """A `Tool` running `handler` on the validated input.

        Its `execute` also takes a raw input dict (validated there, `ToolError` if invalid),
        so a caller holding a `Tool` rather than a registry gets the same checks.
        """
        model = self.input_model

        async def execute(tool_input: ArgsT | ToolInput) -> str:
            if isinstance(tool_input, model):
                return await handler(tool_input)
            try:
                args = model.model_validate(tool_input)
            except ValidationError as exc:
                raise ToolError(describe_invalid(self.name, model, exc)) from None
            return await handler(args)

        return Tool(
            self.name,
            self.description,
            self.input_schema,
            execute,
            self.input_model,
            self.annotations,
            self.writes_vault,
        )


# -- the registry --------------------------------------------------------------------------


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
        self._tools[tool.name] = tool
        self._validators.pop(tool.name, None)
        if tool.input_model is None:
            import jsonschema

            validator_cls = jsonschema.validators.validator_for(tool.input_schema)
            validator_cls.check_schema(tool.input_schema)
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

    def _check(self, tool: Tool, tool_input: ToolInput) -> tuple[Any, str | None]:
        """The tool's argument (model instance or dict), or the error to return instead."""
        if tool.input_model is not None:
            try:
                return tool.input_model.model_validate(tool_input), None
            except ValidationError as exc:
                return None, describe_invalid(tool.name, tool.input_model, exc)
        import jsonschema.exceptions

        error = jsonschema.exceptions.best_match(
            self._validators[tool.name].iter_errors(tool_input)
        )
        if error is None:
            return tool_input, None
        where = "/".join(str(p) for p in error.absolute_path) or "input"
        return None, f"Error: invalid input for {tool.name} ({where}): {error.message}"

    async def run(self, name: str, tool_input: Any) -> ToolOutcome:
        """Run one tool call; never raises except for cancellation."""
        tool = self._tools.get(name)
        if tool is None:
            known = ", ".join(sorted(self._tools)) or "none"
            return ToolOutcome(f"Error: unknown tool {name!r}. Available tools: {known}.", True)
        if not isinstance(tool_input, dict):
            return ToolOutcome("Error: tool input must be a JSON object.", True)
        args, invalid = self._check(tool, tool_input)
        if invalid is not None:
            return ToolOutcome(invalid, True)
        try:
            return ToolOutcome(await tool.execute(args), False)
        except ToolError as exc:
            message = str(exc)
            return ToolOutcome(
                message if message.startswith("Error:") else f"Error: {message}", True
            )
        except Exception as exc:  # a bug in a tool must not end the conversation
            return ToolOutcome(
                f"Error: {name} failed unexpectedly ({type(exc).__name__}: {exc})", True
            )
