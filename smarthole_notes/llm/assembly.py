"""Linear-time assembly of a streamed Messages API response into its final message.

The SDK's own stream helper re-parses the whole accumulated tool-input JSON on every
`input_json_delta`, which is quadratic in the input size and blocks the event loop
for seconds on a large `write_file`. This assembler keeps the same contract (the
final message equals the SDK's `get_final_message()` for the same events) but only
appends fragments to lists and joins/parses each block once, when it stops.
"""

from __future__ import annotations

from typing import Any

from jiter import from_json


class IncompleteStream(Exception):
    """The stream ended (cleanly or not) before `message_stop`: never an answer."""


class StreamAssembler:
    """Feed raw stream events (name and decoded JSON data); read `final_message()` at the end."""

    def __init__(self) -> None:
        self._message: dict[str, Any] | None = None
        self._text: dict[int, list[str]] = {}
        self._thinking: dict[int, list[str]] = {}
        self._json: dict[int, list[str]] = {}
        self.stopped = False

    def feed(self, data: dict[str, Any]) -> str | None:
        """Apply one event; returns the text of a `text_delta`, for live display."""
        kind = data.get("type")
        if kind == "message_start":
            started = dict(data["message"])
            started["content"] = [dict(b) for b in started.get("content") or []]
            started["usage"] = dict(started.get("usage") or {})
            self._message = started
            return None
        message = self._message
        if message is None:
            if kind in ("content_block_start", "content_block_delta", "message_delta"):
                raise IncompleteStream(f"{kind} arrived before message_start")
            return None
        if kind == "content_block_delta":
            return self._delta(message, data)
        if kind == "content_block_start":
            message["content"].append(dict(data["content_block"]))
        elif kind == "content_block_stop":
            self._finish_block(message, data["index"])
        elif kind == "message_delta":
            self._message_delta(message, data)
        elif kind == "message_stop":
            self.stopped = True
        return None

    def _delta(self, message: dict[str, Any], data: dict[str, Any]) -> str | None:
        index: int = data["index"]
        block = message["content"][index]
        delta = data["delta"]
        delta_type = delta.get("type")
        block_type = block.get("type")
        if delta_type == "text_delta":
            if block_type == "text":
                text: str = delta["text"]
                self._text.setdefault(index, []).append(text)
                return text
        elif delta_type == "input_json_delta":
            if block_type in ("tool_use", "server_tool_use"):
                self._json.setdefault(index, []).append(delta["partial_json"])
        elif delta_type == "thinking_delta":
            if block_type == "thinking":
                self._thinking.setdefault(index, []).append(delta["thinking"])
        elif delta_type == "signature_delta":
            if block_type == "thinking":
                block["signature"] = delta["signature"]
        elif delta_type == "citations_delta" and block_type == "text":
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
            buffer = "".join(parts).encode()
            if buffer:
                # The same parser and mode as the SDK, once per block instead of once per delta.
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
        """The assembled message; raises `IncompleteStream` unless `message_stop` arrived."""
        if self._message is None or not self.stopped or self._message.get("stop_reason") is None:
            raise IncompleteStream("the stream ended before message_stop")
        for index in list(self._text) + list(self._thinking) + list(self._json):
            self._finish_block(self._message, index)
        return self._message
