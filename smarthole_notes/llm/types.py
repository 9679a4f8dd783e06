"""Provider-neutral LLM types: what the rest of the program sees of any LLM API.

Nothing here imports a provider SDK, so the agent loop, the pipeline and the
tools never depend on Anthropic's wire shapes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal, TypeAlias

SYSTEM_PART_SEPARATOR = "\n\n"


@dataclass(frozen=True, slots=True)
class TextBlock:
    text: str
    type: Literal["text"] = "text"


@dataclass(frozen=True, slots=True)
class ToolUseBlock:
    """A tool call. `input_error` is set when the model's input was not a whole JSON object.

    Such a call is never run: the loop answers it with an is-error result (so the model can
    correct itself), or, when the output limit cut it, closes it and fails the request.
    `raw_input` keeps the text the model sent, for that message; `input` is then what
    could be read of it (possibly `{}`), so the block can still be sent back in history.
    """

    id: str
    name: str
    input: dict[str, Any]
    type: Literal["tool_use"] = "tool_use"
    input_error: str | None = None
    raw_input: str | None = None


@dataclass(frozen=True, slots=True)
class OpaqueBlock:
    """Provider content the program does not read (server tool calls and results, thinking).

    Kept only where it must be sent back verbatim: the paused turn of a `pause_turn`.
    """

    data: dict[str, Any]
    type: Literal["opaque"] = "opaque"


@dataclass(frozen=True, slots=True)
class ToolResultBlock:
    tool_use_id: str
    content: str
    is_error: bool = False
    type: Literal["tool_result"] = "tool_result"


ContentBlock: TypeAlias = TextBlock | ToolUseBlock | ToolResultBlock | OpaqueBlock
Role: TypeAlias = Literal["user", "assistant"]


@dataclass(frozen=True, slots=True)
class Message:
    """One turn of a conversation: a role and its content blocks."""

    role: Role
    content: tuple[ContentBlock, ...]

    @classmethod
    def user_text(cls, text: str) -> Message:
        return cls("user", (TextBlock(text),))

    @property
    def tool_uses(self) -> list[ToolUseBlock]:
        return [b for b in self.content if isinstance(b, ToolUseBlock)]

    @property
    def has_tool_results(self) -> bool:
        return any(isinstance(b, ToolResultBlock) for b in self.content)

    @property
    def text(self) -> str:
        return "".join(b.text for b in self.content if isinstance(b, TextBlock))

    def to_dict(self) -> dict[str, Any]:
        return {"role": self.role, "content": [block_to_dict(b) for b in self.content]}

    def to_api(self) -> dict[str, Any]:
        """The message as sent to the API (`to_dict` is for persistence)."""
        return {"role": self.role, "content": [block_to_api(b) for b in self.content]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Message:
        role = data["role"]
        if role not in ("user", "assistant"):
            raise ValueError(f"unknown role {role!r}")
        return cls(role, tuple(block_from_dict(b) for b in data["content"]))


def block_to_dict(block: ContentBlock) -> dict[str, Any]:
    if isinstance(block, TextBlock):
        return {"type": "text", "text": block.text}
    if isinstance(block, ToolUseBlock):
        out: dict[str, Any] = {
            "type": "tool_use",
            "id": block.id,
            "name": block.name,
            "input": block.input,
        }
        if block.input_error is not None:
            # Not sent to the API (build_api_block drops it); kept for export_state.
            out["input_error"] = block.input_error
            out["raw_input"] = block.raw_input
        return out
    if isinstance(block, OpaqueBlock):
        return dict(block.data)
    return {
        "type": "tool_result",
        "tool_use_id": block.tool_use_id,
        "content": block.content,
        "is_error": block.is_error,
    }


def block_from_dict(data: dict[str, Any]) -> ContentBlock:
    kind = data.get("type")
    if kind == "text":
        return TextBlock(str(data["text"]))
    if kind == "tool_use":
        error = data.get("input_error")
        raw = data.get("raw_input")
        return ToolUseBlock(
            str(data["id"]),
            str(data["name"]),
            dict(data["input"]),
            input_error=str(error) if error is not None else None,
            raw_input=str(raw) if raw is not None else None,
        )
    if kind == "tool_result":
        return ToolResultBlock(
            str(data["tool_use_id"]), str(data["content"]), bool(data.get("is_error", False))
        )
    if isinstance(kind, str):
        return OpaqueBlock(dict(data))
    raise ValueError(f"content block without a type: {data!r}")


def block_to_api(block: ContentBlock) -> dict[str, Any]:
    """The block as the Messages API takes it (our own bookkeeping fields left out)."""
    out = block_to_dict(block)
    out.pop("input_error", None)
    out.pop("raw_input", None)
    return out


class StopReason(StrEnum):
    """Why the model stopped. Reasons the API adds later map to OTHER, never crash."""

    END_TURN = "end_turn"
    TOOL_USE = "tool_use"
    MAX_TOKENS = "max_tokens"
    STOP_SEQUENCE = "stop_sequence"
    PAUSE_TURN = "pause_turn"
    REFUSAL = "refusal"
    MODEL_CONTEXT_WINDOW_EXCEEDED = "model_context_window_exceeded"
    OTHER = "other"

    @classmethod
    def parse(cls, raw: str | None) -> StopReason:
        try:
            return cls(raw) if raw else cls.OTHER
        except ValueError:
            return cls.OTHER


@dataclass(frozen=True, slots=True)
class Usage:
    """Tokens of one response, or (summed with `+`) of every round of one answer.

    The cache figures stay None until some response reports them.
    """

    input_tokens: int = 0
    output_tokens: int = 0
    cache_creation_input_tokens: int | None = None
    cache_read_input_tokens: int | None = None

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.input_tokens + other.input_tokens,
            self.output_tokens + other.output_tokens,
            _add_optional(self.cache_creation_input_tokens, other.cache_creation_input_tokens),
            _add_optional(self.cache_read_input_tokens, other.cache_read_input_tokens),
        )

    @property
    def total_input_tokens(self) -> int:
        """Every prompt token, cached or not (what the same request would bill uncached)."""
        return (
            self.input_tokens
            + (self.cache_creation_input_tokens or 0)
            + (self.cache_read_input_tokens or 0)
        )

    @property
    def billed(self) -> bool:
        """Whether any token was counted (a request that reached the model is billed)."""
        return bool(self.total_input_tokens or self.output_tokens)

    def to_dict(self, model: str | None = None) -> dict[str, Any]:
        """JSON-ready, with the model and its estimated cost (None when it has no price).

        Keys: model, input_tokens (uncached), output_tokens, cache_write_tokens,
        cache_read_tokens, cost_usd.
        """
        from smarthole_notes.llm.pricing import estimate_cost  # pricing types against Usage

        return {
            "model": model or None,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cache_write_tokens": self.cache_creation_input_tokens or 0,
            "cache_read_tokens": self.cache_read_input_tokens or 0,
            "cost_usd": estimate_cost(model, self) if model else None,
        }


USAGE_COUNTS = ("input_tokens", "output_tokens", "cache_write_tokens", "cache_read_tokens")


def sum_usage_records(records: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Usage records (`Usage.to_dict`'s shape) added up: the token counts summed, the cost
    summed (None if any is unknown), the model kept when they all name the same one."""
    listed = list(records)
    models = {record.get("model") for record in listed}
    costs = [record.get("cost_usd") for record in listed]
    total: dict[str, Any] = {"model": models.pop() if len(models) == 1 else None}
    for key in USAGE_COUNTS:
        total[key] = sum(int(record.get(key) or 0) for record in listed)
    total["cost_usd"] = None if None in costs else sum(float(c) for c in costs if c is not None)
    return total


def _add_optional(a: int | None, b: int | None) -> int | None:
    if a is None:
        return b
    return a if b is None else a + b


@dataclass(frozen=True, slots=True)
class RefusalDetails:
    """Why the model declined (the API's `stop_details`); both parts may be missing."""

    category: str | None = None
    explanation: str | None = None


@dataclass(frozen=True, slots=True)
class ToolCallRecord:
    """One tool call the loop ran, as the pipeline reports and stores it."""

    name: str
    input: dict[str, Any]
    is_error: bool
    summary: str


@dataclass(frozen=True, slots=True)
class ToolSpec:
    """What the model is told about a tool."""

    name: str
    description: str
    input_schema: dict[str, Any]


class SystemText(str):
    """A system prompt in two parts: `stable` (cacheable across requests), then `volatile`.

    It is the plain joined text wherever a `str` is expected; a provider that caches
    prompts sends the parts as separate blocks, with a cache breakpoint after `stable`.
    """

    stable: str
    volatile: str

    def __new__(cls, stable: str, volatile: str = "") -> SystemText:
        text = SYSTEM_PART_SEPARATOR.join(part for part in (stable, volatile) if part)
        self = super().__new__(cls, text)
        self.stable = stable
        self.volatile = volatile
        return self

    def __reduce__(self) -> tuple[Any, ...]:
        return (SystemText, (self.stable, self.volatile))


@dataclass(frozen=True, slots=True)
class LLMRequest:
    system: str
    """Plain text, or a `SystemText` whose stable part can be cached."""
    messages: tuple[Message, ...]
    tools: tuple[ToolSpec, ...] = ()
    max_tokens: int | None = None
    """None means the model's own maximum (streaming) or the provider's default."""
    cache_messages: bool = False
    """Cache the whole prompt too: the next request extends this one (a tool loop's rounds).
    Off for one-off requests, where writing the prompt to the cache would cost 1.25x for
    nothing. Tools and a `SystemText`'s stable part are cached either way."""


@dataclass(frozen=True, slots=True)
class LLMResponse:
    content: tuple[ContentBlock, ...]
    stop_reason: StopReason
    usage: Usage = field(default_factory=Usage)
    raw_stop_reason: str | None = None
    model: str = ""
    refusal: RefusalDetails | None = None
    """Set when `stop_reason` is `refusal` (from the API's `stop_details`, when it sent any)."""

    @property
    def text(self) -> str:
        return "".join(b.text for b in self.content if isinstance(b, TextBlock))

    @property
    def tool_uses(self) -> list[ToolUseBlock]:
        return [b for b in self.content if isinstance(b, ToolUseBlock)]

    @classmethod
    def empty(cls) -> LLMResponse:
        """The benign answer of a cancelled request: nothing to show, nothing to record."""
        return cls(content=(), stop_reason=StopReason.OTHER, raw_stop_reason="aborted")
