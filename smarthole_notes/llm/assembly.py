"""Linear-time assembly of a streamed Messages API response into its final message.

The SDK's own stream helper re-parses the whole accumulated tool-input JSON on every
`input_json_delta`, which is quadratic in the input size and blocks the event loop
for seconds on a large `write_file`. This assembler keeps the same contract (the
final message equals the SDK's `get_final_message()` for the same events) but only
appends fragments to lists and joins/parses each block once, when it stops.

Where it departs from the SDK, it is on purpose:
- a tool input that is not a whole JSON object (invalid, or cut by `max_tokens`) does not
  raise: the block keeps what could be read (as the SDK's partial parse gives it) and the
  fault is kept in `input_errors`, so the agent loop can answer the call with an error;
- events that cannot belong to one well-formed message (a delta before its block started
  or after it stopped, a second `message_start`, ...) raise `MalformedStream`, which is
  the server's fault, never a network problem.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

from jiter import from_json


class IncompleteStream(Exception):
    """The stream ended (cleanly or not) before the message was whole: never an answer."""


class MalformedStream(Exception):
    """The events cannot describe one well-formed message (out of order, unknown index...)."""


@dataclass(frozen=True, slots=True)
class ToolInputError:
    """A tool_use block whose streamed input is not a whole JSON object."""

    raw: str
    """The JSON text the model sent, as received."""
    reason: str
    """What is wrong with it, in a few words (for the model and the logs)."""


_DELTA_BLOCKS: dict[str, tuple[str, ...]] = {
    "text_delta": ("text",),
    "citations_delta": ("text",),
    "input_json_delta": ("tool_use", "server_tool_use"),
    "thinking_delta": ("thinking",),
    "signature_delta": ("thinking",),
}
"""Which block types each known delta type applies to; unknown delta types are ignored."""


class StreamAssembler:
    """Feed raw stream events (decoded JSON data); read `final_message()` at the end."""

    def __init__(self) -> None:
        self._message: dict[str, Any] | None = None
        self._open: set[int] = set()
        self._text: dict[int, list[str]] = {}
        self._thinking: dict[int, list[str]] = {}
        self._json: dict[int, list[str]] = {}
        self.input_errors: dict[int, ToolInputError] = {}
        """Content index -> why that tool_use block's input is unusable."""
        self.stopped = False

    def feed(self, data: dict[str, Any]) -> str | None:
        """Apply one event; returns the text of a `text_delta`, for live display.

        Raises `MalformedStream` for an event that cannot come where it came.
        """
        kind = data.get("type")
        if kind == "message_start":
            if self._message is not None:
                raise MalformedStream("a second message_start")
            started = dict(_require_dict(data, "message"))
            started["content"] = [dict(b) for b in started.get("content") or []]
            started["usage"] = dict(started.get("usage") or {})
            self._message = started
            return None
        message = self._message
        if message is None:
            if kind in ("content_block_start", "content_block_delta", "content_block_stop"):
                raise MalformedStream(f"{kind} arrived before message_start")
            if kind in ("message_delta", "message_stop"):
                raise MalformedStream(f"{kind} arrived before message_start")
            return None
        if self.stopped:
            return None  # nothing counts after message_stop (the SDK stops reading there too)
        if kind == "content_block_delta":
            return self._delta(message, data)
        if kind == "content_block_start":
            index = _index(data)
            if index != len(message["content"]):
                raise MalformedStream(
                    f"content_block_start for index {index}, expected {len(message['content'])}"
                )
            block = _require_dict(data, "content_block")
            if not isinstance(block.get("type"), str):
                raise MalformedStream("content_block_start without a block type")
            message["content"].append(dict(block))
            self._open.add(index)
        elif kind == "content_block_stop":
            index = _index(data)
            if index not in self._open:
                raise MalformedStream(f"content_block_stop for index {index}, which is not open")
            self._open.discard(index)
            self._finish_block(message, index)
        elif kind == "message_delta":
            self._message_delta(message, data)
        elif kind == "message_stop":
            self.stopped = True
        return None

    def _delta(self, message: dict[str, Any], data: dict[str, Any]) -> str | None:
        index = _index(data)
        if index not in self._open:
            raise MalformedStream(f"content_block_delta for index {index}, which is not open")
        block = message["content"][index]
        delta = _require_dict(data, "delta")
        delta_type = delta.get("type")
        block_type = block.get("type")
        allowed = _DELTA_BLOCKS.get(delta_type) if isinstance(delta_type, str) else None
        if allowed is None:
            return None  # a delta type this version does not know: ignored, as the SDK does
        if block_type not in allowed:
            raise MalformedStream(f"{delta_type} for a {block_type} block")
        if delta_type == "text_delta":
            text = _require_str(delta, "text")
            self._text.setdefault(index, []).append(text)
            return text
        if delta_type == "input_json_delta":
            self._json.setdefault(index, []).append(_require_str(delta, "partial_json"))
        elif delta_type == "thinking_delta":
            self._thinking.setdefault(index, []).append(_require_str(delta, "thinking"))
        elif delta_type == "signature_delta":
            block["signature"] = _require_str(delta, "signature")
        elif delta_type == "citations_delta":
            citations = block.get("citations") or []
            citations.append(delta["citation"])
            block["citations"] = citations
        return None

    def _finish_block(self, message: dict[str, Any], index: int) -> None:
        block = message["content"][index]
        if (parts := self._text.pop(index, None)) is not None:
            block["text"] = block.get("text", "") + "".join(parts)
        if (parts := self._thinking.pop(index, None)) is not None:
            block["thinking"] = block.get("thinking", "") + "".join(parts)
        if (parts := self._json.pop(index, None)) is not None:
            text = "".join(parts)
            if text:
                self._finish_tool_input(block, index, text)

    def _finish_tool_input(self, block: dict[str, Any], index: int, text: str) -> None:
        """Parse a tool input once: strictly, then (only if that fails) as the SDK would."""
        buffer = text.encode()
        try:
            value = from_json(buffer)
        except ValueError as exc:
            reason = f"not valid JSON ({exc})"
        else:
            if isinstance(value, dict):
                block["input"] = value
                return
            reason = f"a JSON {type(value).__name__}, not an object"
        self.input_errors[index] = ToolInputError(text, reason)
        # What the SDK's partial parse makes of it, so the message stays the SDK's; where
        # the SDK raises instead, the block keeps the input it started with.
        with contextlib.suppress(ValueError):
            block["input"] = from_json(buffer, partial_mode=True)

    @staticmethod
    def _message_delta(message: dict[str, Any], data: dict[str, Any]) -> None:
        delta = data.get("delta") or {}
        message["stop_reason"] = delta.get("stop_reason")
        message["stop_sequence"] = delta.get("stop_sequence")
        if "stop_details" in delta:
            message["stop_details"] = delta["stop_details"]
        if delta.get("container") is not None:
            message["container"] = delta["container"]
        usage = data.get("usage") or {}
        target = message["usage"]
        if "output_tokens" in usage:
            target["output_tokens"] = usage["output_tokens"]
        for key in (
            "input_tokens",
            "cache_creation_input_tokens",
            "cache_read_input_tokens",
            "server_tool_use",
            "output_tokens_details",
        ):
            if usage.get(key) is not None:
                target[key] = usage[key]

    def final_message(self) -> dict[str, Any]:
        """The assembled message; raises `IncompleteStream` unless it is whole.

        Whole means a stop reason arrived (in `message_delta`, after every block): that is
        what the SDK's final message has too, also when the body ended without the blank
        line after `message_stop`, or without `message_stop` at all.
        """
        if self._message is None or self._message.get("stop_reason") is None:
            raise IncompleteStream("the stream ended before its stop reason")
        for index in sorted(self._open):
            self._finish_block(self._message, index)
        self._open.clear()
        return self._message


def _index(data: dict[str, Any]) -> int:
    index = data.get("index")
    if not isinstance(index, int) or isinstance(index, bool) or index < 0:
        raise MalformedStream(f"{data.get('type')} without a valid index")
    return index


def _require_dict(data: dict[str, Any], key: str) -> dict[str, Any]:
    value = data.get(key)
    if not isinstance(value, dict):
        raise MalformedStream(f"{data.get('type')} without a {key} object")
    return value


def _require_str(data: dict[str, Any], key: str) -> str:
    value = data.get(key)
    if not isinstance(value, str):
        raise MalformedStream(f"{data.get('type')} without a {key} string")
    return value
