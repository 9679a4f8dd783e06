"""A stand-in for the Anthropic Messages API, for tests.

`AnthropicStandIn` is a real HTTP server on 127.0.0.1 (starlette + uvicorn, in a
background thread with its own event loop) that speaks the Anthropic wire format:
JSON bodies and Server-Sent Events. The product's real code (the `anthropic` SDK over
`httpx2`) reaches it over real sockets through `base_url`.

`POST /v1/messages` answers from a FIFO script of `Reply` objects (see `text_reply`,
`tool_reply`, `thinking_reply`, `events_reply`, `raw_reply`, `status_reply`); once the
script is empty it answers `default_reply`. The stop reasons and model-output faults of
the real API have their own constructors: `refusal_reply` (with `stop_details`),
`pause_reply` (a paused server-tool turn), `cut_tool_reply` (a tool call cut by
`max_tokens`), `invalid_tool_reply` (tool input that is not valid JSON),
`context_exceeded_reply` (`model_context_window_exceeded`), `prompt_too_long_reply`
(the 400 for an oversized prompt) and `malformed_reply` (events out of order). Modifiers (`Reply.with_(...)`, or the same
keywords on the constructors) change how a reply is delivered: slowly (`delay`,
`ping_every`), cut off (`cut_after`), ended early (`end_after`), ended by an in-stream
error (`error_after`), stalled (`stall_after`), or without the blank line after its
last event (`final_blank_line=False`). The count `N` in those modifiers is
in SSE events (for `raw_reply`: in writes) and includes the `ping` after
`message_start`.

Prompt caching is accounted for as the API does it (`PromptCache`): the prefix up to each
`cache_control` breakpoint (tools, then system, then messages; at most 4) is cached for
5 minutes per model, when it reaches the model's minimum length; a breakpoint reads the
longest live prefix cached at it or at any of the 20 blocks before it, and a read renews
the entry. Each response reports `input_tokens` (the uncached rest),
`cache_creation_input_tokens` and `cache_read_input_tokens`; each `RecordedRequest` keeps
its `CacheAccount` (with the bill: writes 1.25x, reads 0.1x). Tokens are estimated as
characters / 4. A request without `cache_control` caches nothing.

`reply_events` and `encode_sse` are pure and need no server.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import dataclasses
import hashlib
import json
import logging
import math
import secrets
import socket
import string
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Literal, TypedDict, Unpack

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Message, Receive, Scope, Send

__all__ = [
    "CACHE_LOOKBACK_BLOCKS",
    "CACHE_READ_FACTOR",
    "CACHE_TTL_SECONDS",
    "CACHE_WRITE_FACTOR",
    "DEFAULT_MODELS",
    "ERROR_TYPES",
    "MALFORMED_KINDS",
    "MIN_CACHEABLE_TOKENS",
    "AnthropicStandIn",
    "CacheAccount",
    "CacheControlError",
    "Modifiers",
    "PromptCache",
    "RecordedRequest",
    "Reply",
    "SSEEvent",
    "context_exceeded_reply",
    "cut_tool_reply",
    "default_error_type",
    "encode_sse",
    "error_body",
    "events_reply",
    "fold_events",
    "invalid_tool_reply",
    "malformed_reply",
    "pause_reply",
    "prompt_too_long_reply",
    "raw_reply",
    "refusal_reply",
    "reply_events",
    "reply_message",
    "status_reply",
    "text_reply",
    "thinking_reply",
    "tool_reply",
]

SSEEvent = tuple[str, dict[str, Any]]
"""One Server-Sent Event: its `event:` name and its `data:` object."""

DEFAULT_MODELS: dict[str, int] = {
    "claude-haiku-4-5": 64000,
    "claude-sonnet-4-5": 64000,
    "claude-sonnet-4-6": 64000,
    "claude-opus-4-7": 128000,
}
"""Model id -> max_tokens, served by the model routes unless told otherwise."""

ERROR_TYPES: dict[int, str] = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}
"""The `error.type` the real API sends with each HTTP status."""

_ERROR_MESSAGES: dict[str, str] = {
    "invalid_request_error": "Invalid request",
    "authentication_error": "invalid x-api-key",
    "billing_error": "Billing error",
    "permission_error": "Your API key does not have permission to use the specified resource.",
    "not_found_error": "Not found",
    "request_too_large": "Request exceeds the maximum allowed number of bytes.",
    "rate_limit_error": "Number of request tokens has exceeded your per-minute rate limit",
    "api_error": "Internal server error",
    "timeout_error": "Request timeout",
    "overloaded_error": "Overloaded",
}

_MAX_INPUT_TOKENS = 200_000
_MODEL_CREATED_AT = "2025-09-29T00:00:00Z"
_REDACTED = "<redacted>"
_SECRET_HEADERS = frozenset({"x-api-key", "authorization"})
_ID_ALPHABET = string.ascii_letters + string.digits

ReplyKind = Literal["message", "events", "raw", "status"]


def _new_id(prefix: str) -> str:
    """An id shaped like the real API's (`msg_01...`, `toolu_01...`, `req_01...`)."""
    return prefix + "01" + "".join(secrets.choice(_ID_ALPHABET) for _ in range(22))


def default_error_type(status: int) -> str:
    """The `error.type` the real API uses for `status`."""
    return ERROR_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")


def error_body(
    error_type: str, message: str | None = None, request_id: str | None = None
) -> dict[str, Any]:
    """The JSON body of an HTTP error response."""
    body: dict[str, Any] = {
        "type": "error",
        "error": {
            "type": error_type,
            "message": message or _ERROR_MESSAGES.get(error_type, "Error"),
        },
    }
    if request_id is not None:
        body["request_id"] = request_id
    return body


# --------------------------------------------------------------------------- replies


class Modifiers(TypedDict, total=False):
    """How a reply is delivered (keywords of `Reply.with_` and of the constructors).

    `delay`: seconds between SSE events (or writes); for a non-streaming reply, one
    pause before the response. `ping_every`: while pausing, send `event: ping` this
    often. At most one of: `cut_after` (send N events, then drop the connection
    without ending the chunked body), `end_after` (send N events, then end the body
    cleanly: no `message_stop`), `error_after` (send N events, then an in-stream
    `event: error` of type `error_type` with `error_message`, then end),
    `stall_after` (send N events, then go silent until the client disconnects).
    `final_blank_line=False`: the last event sent ends with its `data:` line's newline
    but no blank line after it (the SDK's decoder still reads what came before).
    `usage`: token figures reported instead of the estimates (e.g. cache reads).
    For a non-streaming reply, `cut_after` sends the headers and part of the body,
    `stall_after` sends nothing, and `end_after` / `error_after` do nothing.
    """

    delay: float
    ping_every: float
    cut_after: int
    end_after: int
    error_after: int
    error_type: str
    error_message: str
    stall_after: int
    final_blank_line: bool
    usage: dict[str, int]


@dataclass(frozen=True)
class Reply:
    """One scripted answer of `POST /v1/messages`. Build it with the `*_reply` functions."""

    kind: ReplyKind
    blocks: tuple[dict[str, Any], ...] = ()
    """Final content blocks (as in `Message.content`), for `kind == "message"`."""
    stop_reason: str | None = "end_turn"
    chunk_size: int = 20
    json_chunk_size: int = 16
    events: tuple[SSEEvent, ...] = ()
    """Verbatim events, for `kind == "events"`."""
    raw: bytes = b""
    """Verbatim body, for `kind == "raw"`."""
    write_size: int = 7
    status: int = 200
    retry_after: str | None = None
    error_type: str | None = None
    error_message: str | None = None
    delay: float = 0.0
    ping_every: float | None = None
    cut_after: int | None = None
    end_after: int | None = None
    error_after: int | None = None
    stall_after: int | None = None
    final_blank_line: bool = True
    stop_details: dict[str, Any] | None = None
    """Sent on `message_delta` beside `stop_reason` (a refusal's category and explanation)."""
    usage: dict[str, int] | None = None
    """Usage figures to report instead of the estimates (e.g. cache reads), for a message."""

    def __post_init__(self) -> None:
        endings = [self.cut_after, self.end_after, self.error_after, self.stall_after]
        if sum(n is not None for n in endings) > 1:
            raise ValueError("use at most one of cut_after, end_after, error_after, stall_after")
        if any(n is not None and n < 0 for n in endings):
            raise ValueError("event counts must be >= 0")
        if self.chunk_size < 1 or self.json_chunk_size < 1 or self.write_size < 1:
            raise ValueError("chunk and write sizes must be >= 1")
        if self.ping_every is not None and self.ping_every <= 0:
            raise ValueError("ping_every must be > 0")

    def with_(self, **modifiers: Unpack[Modifiers]) -> Reply:
        """A copy of this reply with some delivery modifiers changed (see `Modifiers`)."""
        return dataclasses.replace(self, **modifiers)


def text_reply(
    text: str,
    *,
    chunk_size: int = 20,
    stop_reason: str = "end_turn",
    **modifiers: Unpack[Modifiers],
) -> Reply:
    """One text block, streamed as `text_delta`s of `chunk_size` characters."""
    return Reply(
        kind="message",
        blocks=({"type": "text", "text": text},),
        stop_reason=stop_reason,
        chunk_size=chunk_size,
    ).with_(**modifiers)


def tool_reply(
    name: str,
    input: dict[str, Any],
    *,
    text: str | None = None,
    tool_id: str | None = None,
    json_chunk_size: int = 16,
    chunk_size: int = 20,
    **modifiers: Unpack[Modifiers],
) -> Reply:
    """Optional text, then one `tool_use` block whose input streams as `input_json_delta`s.

    Without `tool_id` an id is made now, so it is fixed for this `Reply` object.
    """
    blocks: list[dict[str, Any]] = []
    if text is not None:
        blocks.append({"type": "text", "text": text})
    blocks.append(
        {
            "type": "tool_use",
            "id": tool_id or _new_id("toolu_"),
            "name": name,
            "input": copy.deepcopy(input),
        }
    )
    return Reply(
        kind="message",
        blocks=tuple(blocks),
        stop_reason="tool_use",
        chunk_size=chunk_size,
        json_chunk_size=json_chunk_size,
    ).with_(**modifiers)


def thinking_reply(
    thinking: str,
    signature: str,
    text: str,
    *,
    chunk_size: int = 20,
    stop_reason: str = "end_turn",
    **modifiers: Unpack[Modifiers],
) -> Reply:
    """A thinking block (`thinking_delta`s, then one `signature_delta`), then a text block."""
    return Reply(
        kind="message",
        blocks=(
            {"type": "thinking", "thinking": thinking, "signature": signature},
            {"type": "text", "text": text},
        ),
        stop_reason=stop_reason,
        chunk_size=chunk_size,
    ).with_(**modifiers)


def events_reply(events: Iterable[SSEEvent], **modifiers: Unpack[Modifiers]) -> Reply:
    """A verbatim list of `(event_name, data)` pairs, for arbitrary streams.

    Sent as given (no `model` substitution). A non-streaming request gets them folded
    into one `Message`, which needs a `message_start`.
    """
    frozen = tuple((name, copy.deepcopy(data)) for name, data in events)
    return Reply(kind="events", events=frozen).with_(**modifiers)


def raw_reply(body: bytes, *, write_size: int = 7, **modifiers: Unpack[Modifiers]) -> Reply:
    """Verbatim SSE body bytes, sent in writes of `write_size` bytes (which may split a
    multi-byte UTF-8 character). Modifier counts are in writes. Add a `delay` to make
    sure the client reads the writes separately."""
    return Reply(kind="raw", raw=bytes(body), write_size=write_size).with_(**modifiers)


def status_reply(
    code: int,
    *,
    error_type: str | None = None,
    message: str | None = None,
    retry_after: float | str | None = None,
    delay: float = 0.0,
) -> Reply:
    """An HTTP error: `{"type": "error", "error": {...}, "request_id": ...}` with status
    `code` (error type defaulting per `ERROR_TYPES`) and a `retry-after` header when given."""
    if isinstance(retry_after, float) and retry_after.is_integer():
        retry_after = int(retry_after)
    return Reply(
        kind="status",
        status=code,
        error_type=error_type,
        error_message=message,
        retry_after=None if retry_after is None else str(retry_after),
        delay=delay,
    )


REFUSAL_EXPLANATIONS: dict[str, str] = {
    "cyber": "This request was declined because it could enable cyber harm.",
    "bio": "This request was declined because it could enable biological harm.",
}
"""Explanations in the real API's style, for `refusal_reply`'s default."""

_WHOLE_BLOCKS = frozenset(
    {"web_search_tool_result", "web_fetch_tool_result", "code_execution_tool_result"}
)


def refusal_reply(
    text: str = "",
    *,
    category: str | None = "cyber",
    explanation: str | None = "default",
    stop_details: bool = True,
    chunk_size: int = 20,
    **modifiers: Unpack[Modifiers],
) -> Reply:
    """A stream stopped by Anthropic's classifiers: `stop_reason: refusal`.

    Whatever text came before the refusal (often none), then `message_delta` carrying
    `stop_details: {"type": "refusal", "category": ..., "explanation": ...}` as the real
    API sends it. `explanation="default"` picks the API's wording for the category; None
    sends `null`; `stop_details=False` leaves the object out (older API versions).
    """
    if explanation == "default":
        explanation = REFUSAL_EXPLANATIONS.get(category or "")
    details = {"type": "refusal", "category": category, "explanation": explanation}
    return Reply(
        kind="message",
        blocks=({"type": "text", "text": text},) if text else (),
        stop_reason="refusal",
        chunk_size=chunk_size,
        stop_details=details if stop_details else None,
    ).with_(**modifiers)


def pause_reply(
    text: str | None = "Let me search for that.",
    *,
    query: str = "kitchen renovation ideas",
    tool_id: str | None = None,
    with_result: bool = True,
    **modifiers: Unpack[Modifiers],
) -> Reply:
    """A long server-side turn paused by the API: `stop_reason: pause_turn`.

    Optional text, a `server_tool_use` (web search, input streamed as JSON deltas) and,
    with `with_result`, its `web_search_tool_result` (sent whole at block start).
    """
    blocks: list[dict[str, Any]] = []
    if text is not None:
        blocks.append({"type": "text", "text": text})
    server_id = tool_id or _new_id("srvtoolu_")
    blocks.append(
        {
            "type": "server_tool_use",
            "id": server_id,
            "name": "web_search",
            "input": {"query": query},
        }
    )
    if with_result:
        blocks.append(
            {
                "type": "web_search_tool_result",
                "tool_use_id": server_id,
                "content": [
                    {
                        "type": "web_search_result",
                        "url": "https://example.com/kitchen",
                        "title": "Kitchen ideas",
                        "encrypted_content": "EqkBCioIAhgBIiQ",
                        "page_age": None,
                    }
                ],
            }
        )
    return Reply(kind="message", blocks=tuple(blocks), stop_reason="pause_turn").with_(**modifiers)


def cut_tool_reply(
    name: str,
    input: dict[str, Any],
    *,
    keep: int | float = 0.5,
    text: str | None = None,
    tool_id: str | None = None,
    json_chunk_size: int = 16,
    **modifiers: Unpack[Modifiers],
) -> Reply:
    """A tool call cut by the output limit: its input JSON stops midway, then
    `content_block_stop`, `message_delta` with `stop_reason: max_tokens`, `message_stop`.

    `keep` is how much of the JSON text is sent: a character count, or a fraction.
    """
    payload = json.dumps(input, ensure_ascii=False)
    count = int(len(payload) * keep) if isinstance(keep, float) else keep
    if not 0 < count < len(payload):
        raise ValueError(f"keep must cut the JSON midway (1..{len(payload) - 1} characters)")
    reply = tool_reply(name, input, text=text, tool_id=tool_id, json_chunk_size=json_chunk_size)
    blocks = list(reply.blocks)
    blocks[-1] = {**blocks[-1], "raw_input": payload[:count]}
    return dataclasses.replace(reply, blocks=tuple(blocks), stop_reason="max_tokens").with_(
        **modifiers
    )


def invalid_tool_reply(
    name: str,
    raw_json: str,
    *,
    text: str | None = None,
    tool_id: str | None = None,
    json_chunk_size: int = 16,
    **modifiers: Unpack[Modifiers],
) -> Reply:
    """A complete tool call (`stop_reason: tool_use`) whose streamed input is `raw_json`
    verbatim, typically not valid JSON."""
    reply = tool_reply(name, {}, text=text, tool_id=tool_id, json_chunk_size=json_chunk_size)
    blocks = list(reply.blocks)
    blocks[-1] = {**blocks[-1], "raw_input": raw_json}
    return dataclasses.replace(reply, blocks=tuple(blocks)).with_(**modifiers)


def context_exceeded_reply(
    text: str = "", *, chunk_size: int = 20, **modifiers: Unpack[Modifiers]
) -> Reply:
    """The response filled the model's context window: `model_context_window_exceeded`."""
    return Reply(
        kind="message",
        blocks=({"type": "text", "text": text},) if text else (),
        stop_reason="model_context_window_exceeded",
        chunk_size=chunk_size,
    ).with_(**modifiers)


def prompt_too_long_reply(tokens: int = 215_000, maximum: int = _MAX_INPUT_TOKENS) -> Reply:
    """The real API's 400 for a prompt over the model's context window."""
    return status_reply(
        400,
        error_type="invalid_request_error",
        message=f"prompt is too long: {tokens} tokens > {maximum} maximum",
    )


MALFORMED_KINDS = (
    "delta_before_block_start",
    "delta_for_unknown_index",
    "message_delta_before_message_start",
    "block_stop_for_unknown_index",
    "second_message_start",
    "text_delta_for_tool_block",
)
"""The malformations `malformed_reply` can make."""


def malformed_reply(
    kind: str = "delta_before_block_start", *, model: str = "claude-haiku-4-5"
) -> Reply:
    """A stream whose events cannot describe one message (see `MALFORMED_KINDS`).

    Built from a well-formed text (or tool) reply by moving, renumbering or adding
    events; sent verbatim (`events_reply`), so `model` is written into it here.
    """
    if kind == "text_delta_for_tool_block":
        events = reply_events(tool_reply("read_file", {"path": "a.md"}), model)
    else:
        events = reply_events(text_reply("Hello from a broken stream.", chunk_size=8), model)
    names = [name for name, _ in events]
    first_start = names.index("content_block_start")
    first_delta = names.index("content_block_delta")
    if kind == "delta_before_block_start":
        events.insert(first_start, events.pop(first_delta))
    elif kind == "delta_for_unknown_index":
        name, data = events[first_delta]
        events[first_delta] = (name, {**data, "index": 7})
    elif kind == "message_delta_before_message_start":
        events.insert(0, events.pop(names.index("message_delta")))
    elif kind == "block_stop_for_unknown_index":
        stop = names.index("content_block_stop")
        events[stop] = ("content_block_stop", {"type": "content_block_stop", "index": 3})
    elif kind == "second_message_start":
        events.insert(first_delta + 1, copy.deepcopy(events[0]))
    elif kind == "text_delta_for_tool_block":
        wrong = {"type": "text_delta", "text": "not JSON"}
        events.insert(
            first_delta,
            ("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": wrong}),
        )
    else:
        raise ValueError(f"unknown malformation {kind!r}; see MALFORMED_KINDS")
    return events_reply(events)


# --------------------------------------------------------------------------- pure helpers


def _chunks(text: str, size: int) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)]


def _estimate_tokens(chars: int) -> int:
    return max(1, math.ceil(chars / 4))


def reply_events(
    reply: Reply,
    model: str,
    *,
    message_id: str | None = None,
    input_tokens: int = 10,
    account: CacheAccount | None = None,
) -> list[SSEEvent]:
    """The full event sequence of a `message` or `events` reply, as the real API sends it.

    Delivery modifiers (`cut_after`, `end_after`, ...) are not applied: the server does
    that. `raw` and `status` replies have no events (ValueError). `account` (the prompt's
    cache accounting) sets the input figures, else `input_tokens` with no cache use.
    """
    if account is None:
        account = CacheAccount(input_tokens=input_tokens)
    if reply.kind == "events":
        return [(name, copy.deepcopy(data)) for name, data in reply.events]
    if reply.kind != "message":
        raise ValueError(f"a {reply.kind!r} reply has no SSE events")

    start_message: dict[str, Any] = {
        "id": message_id or _new_id("msg_"),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {
            "input_tokens": account.input_tokens,
            "cache_creation_input_tokens": account.cache_creation_input_tokens,
            "cache_read_input_tokens": account.cache_read_input_tokens,
            "output_tokens": 1,
        },
    }
    events: list[SSEEvent] = [
        ("message_start", {"type": "message_start", "message": start_message}),
        ("ping", {"type": "ping"}),
    ]
    chars = 0
    for index, block in enumerate(reply.blocks):
        kind = block["type"]
        deltas: list[dict[str, Any]]
        if kind == "text":
            start: dict[str, Any] = {"type": "text", "text": ""}
            chars += len(block["text"])
            deltas = [
                {"type": "text_delta", "text": part}
                for part in _chunks(block["text"], reply.chunk_size)
            ]
        elif kind == "thinking":
            start = {"type": "thinking", "thinking": "", "signature": ""}
            chars += len(block["thinking"])
            deltas = [
                {"type": "thinking_delta", "thinking": part}
                for part in _chunks(block["thinking"], reply.chunk_size)
            ]
            deltas.append({"type": "signature_delta", "signature": block["signature"]})
        elif kind in ("tool_use", "server_tool_use"):
            start = {"type": kind, "id": block["id"], "name": block["name"], "input": {}}
            # `raw_input` (invalid or cut JSON) is streamed as is instead of the input.
            payload = block.get("raw_input")
            if payload is None:
                payload = json.dumps(block["input"], ensure_ascii=False)
            chars += len(payload)
            deltas = [
                {"type": "input_json_delta", "partial_json": part}
                for part in _chunks(payload, reply.json_chunk_size)
            ]
        elif kind in _WHOLE_BLOCKS:
            # Server-side results arrive whole in content_block_start, with no deltas.
            start = copy.deepcopy(block)
            chars += len(json.dumps(block))
            deltas = []
        else:
            raise ValueError(f"unsupported block type {kind!r}")
        events.append(
            (
                "content_block_start",
                {"type": "content_block_start", "index": index, "content_block": start},
            )
        )
        events.extend(
            ("content_block_delta", {"type": "content_block_delta", "index": index, "delta": d})
            for d in deltas
        )
        events.append(("content_block_stop", {"type": "content_block_stop", "index": index}))
    delta: dict[str, Any] = {"stop_reason": reply.stop_reason, "stop_sequence": None}
    if reply.stop_details is not None:
        delta["stop_details"] = copy.deepcopy(reply.stop_details)
    # As the API does now: message_delta repeats the (cumulative) input figures.
    usage: dict[str, Any] = {
        "input_tokens": account.input_tokens,
        "cache_creation_input_tokens": account.cache_creation_input_tokens,
        "cache_read_input_tokens": account.cache_read_input_tokens,
        "output_tokens": _estimate_tokens(chars),
    }
    if reply.usage:
        start_message["usage"].update(reply.usage)
        usage.update(reply.usage)
    events.append(("message_delta", {"type": "message_delta", "delta": delta, "usage": usage}))
    events.append(("message_stop", {"type": "message_stop"}))
    return events


def fold_events(events: Iterable[SSEEvent]) -> dict[str, Any]:
    """Accumulate a stream's events into the `Message` object they describe.

    Unknown events and deltas are ignored. Raises ValueError without a `message_start`.
    """
    message: dict[str, Any] | None = None
    blocks: dict[int, dict[str, Any]] = {}
    json_bufs: dict[int, str] = {}
    for name, data in events:
        if name == "message_start":
            message = copy.deepcopy(data["message"])
            message["content"] = []
            blocks.clear()
            continue
        if message is None:
            continue
        if name == "content_block_start":
            block = copy.deepcopy(data["content_block"])
            blocks[data["index"]] = block
            message["content"].append(block)
        elif name == "content_block_delta" and data["index"] in blocks:
            block = blocks[data["index"]]
            delta = data["delta"]
            kind = delta.get("type")
            if kind == "text_delta":
                block["text"] = block.get("text", "") + delta["text"]
            elif kind == "thinking_delta":
                block["thinking"] = block.get("thinking", "") + delta["thinking"]
            elif kind == "signature_delta":
                block["signature"] = delta["signature"]
            elif kind == "input_json_delta":
                json_bufs[data["index"]] = json_bufs.get(data["index"], "") + delta["partial_json"]
        elif name == "content_block_stop" and data["index"] in json_bufs:
            buf = json_bufs.pop(data["index"])
            with contextlib.suppress(ValueError):  # invalid or cut JSON: input stays {}
                blocks[data["index"]]["input"] = json.loads(buf) if buf else {}
        elif name == "message_delta":
            message["stop_reason"] = data.get("delta", {}).get("stop_reason")
            message["stop_sequence"] = data.get("delta", {}).get("stop_sequence")
            if "stop_details" in data.get("delta", {}):
                message["stop_details"] = data["delta"]["stop_details"]
            message["usage"].update(data.get("usage", {}))
    if message is None:
        raise ValueError("no message_start event")
    return message


def reply_message(
    reply: Reply,
    model: str,
    *,
    message_id: str | None = None,
    input_tokens: int = 10,
    account: CacheAccount | None = None,
) -> dict[str, Any]:
    """The non-streaming `Message` body for a `message` or `events` reply."""
    return fold_events(
        reply_events(
            reply, model, message_id=message_id, input_tokens=input_tokens, account=account
        )
    )


def encode_sse(events: Iterable[SSEEvent]) -> bytes:
    """SSE framing: `event: NAME\\ndata: JSON\\n\\n` per event, compact UTF-8 JSON."""
    out = bytearray()
    for name, data in events:
        payload = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
        out += f"event: {name}\ndata: {payload}\n\n".encode()
    return bytes(out)


def _error_event(reply: Reply) -> bytes:
    error_type = reply.error_type or "overloaded_error"
    message = reply.error_message or _ERROR_MESSAGES.get(error_type, "Error")
    return encode_sse(
        [("error", {"type": "error", "error": {"type": error_type, "message": message}})]
    )


def _json_bytes(data: object) -> bytes:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()


# --------------------------------------------------------------------------- prompt cache

MIN_CACHEABLE_TOKENS: dict[str, int] = {
    "claude-sonnet-4-5": 1_024,
    "claude-sonnet-4-6": 2_048,
    "claude-opus-4-7": 2_048,
    "claude-haiku-4-5": 4_096,
    "claude-opus-4-5": 4_096,
    "claude-opus-4-6": 4_096,
}
"""Model id (prefix) -> the shortest prefix the API caches; other models: 1,024."""
CACHE_TTL_SECONDS = 300.0
"""A cache entry's lifetime (`ttl: "5m"`, the default), renewed by each read."""
CACHE_LOOKBACK_BLOCKS = 20
"""A breakpoint also finds a prefix cached at any of this many blocks before it."""
CACHE_WRITE_FACTOR = 1.25
CACHE_READ_FACTOR = 0.1
_TTLS = {"5m": CACHE_TTL_SECONDS, "1h": 3600.0}
_MAX_BREAKPOINTS = 4


class CacheControlError(ValueError):
    """A request the real API refuses for its `cache_control` (a 400)."""


@dataclass(frozen=True)
class CacheAccount:
    """How one request's prompt was billed: the three input figures the API reports."""

    input_tokens: int
    """The uncached rest of the prompt."""
    cache_creation_input_tokens: int = 0
    cache_read_input_tokens: int = 0
    breakpoints: int = 0

    @property
    def total_input_tokens(self) -> int:
        """The whole prompt, as billed without caching."""
        return self.input_tokens + self.cache_creation_input_tokens + self.cache_read_input_tokens

    @property
    def billed_input_tokens(self) -> float:
        """The prompt's bill in input-token units: writes 1.25x, reads 0.1x."""
        return (
            self.input_tokens
            + CACHE_WRITE_FACTOR * self.cache_creation_input_tokens
            + CACHE_READ_FACTOR * self.cache_read_input_tokens
        )


@dataclass(frozen=True)
class _Prefix:
    """A request laid out as the cache sees it: blocks in order, and what each prefix is."""

    model: str
    keys: tuple[str, ...]
    """Per block: a digest of the model and everything up to and including it."""
    tokens: tuple[int, ...]
    """Per block: the estimated tokens up to and including it."""
    breakpoints: tuple[tuple[int, float], ...]
    """(block index, ttl seconds) of each `cache_control`."""
    total: int


def _without_cache_control(block: Any) -> Any:
    if isinstance(block, dict) and "cache_control" in block:
        return {k: v for k, v in block.items() if k != "cache_control"}
    return block


def _ttl_of(control: Any) -> float:
    if not isinstance(control, dict) or control.get("type") != "ephemeral":
        raise CacheControlError("cache_control.type: Input should be 'ephemeral'")
    ttl = control.get("ttl", "5m")
    if ttl not in _TTLS:
        raise CacheControlError("cache_control.ttl: Input should be '5m' or '1h'")
    return _TTLS[ttl]


def _prefix_of(body: Mapping[str, Any]) -> _Prefix:
    """Blocks in the cache's order (tools, system, messages), with their prefix keys."""
    model = str(body.get("model"))
    items: list[tuple[str, Any]] = []
    controls: list[tuple[int, Any]] = []

    def add(section: str, block: Any) -> None:
        if isinstance(block, dict) and "cache_control" in block:
            controls.append((len(items), block["cache_control"]))
        items.append((section, _without_cache_control(block)))

    for tool in body.get("tools") or []:
        add("tool", tool)
    system = body.get("system")
    if isinstance(system, str) and system:
        add("system", {"type": "text", "text": system})
    elif isinstance(system, list):
        for block in system:
            add("system", block)
    for index, message in enumerate(body.get("messages") or []):
        if not isinstance(message, dict):
            continue
        role = f"{message.get('role')}#{index}"
        content = message.get("content")
        if isinstance(content, str):
            add(role, {"type": "text", "text": content})
        elif isinstance(content, list):
            for block in content:
                add(role, block)
    if body.get("cache_control") is not None and items:
        # Automatic caching: one breakpoint on the last block, from the request's top level.
        controls.append((len(items) - 1, body["cache_control"]))
    if len(controls) > _MAX_BREAKPOINTS:
        raise CacheControlError(
            f"A maximum of {_MAX_BREAKPOINTS} blocks with cache_control may be provided. "
            f"Found {len(controls)}."
        )
    digest = hashlib.sha256(model.encode())
    keys: list[str] = []
    tokens: list[int] = []
    chars = 0
    for section, block in items:
        text = json.dumps([section, block], ensure_ascii=False, sort_keys=True)
        digest.update(text.encode())
        keys.append(digest.copy().hexdigest())
        chars += len(json.dumps(block, ensure_ascii=False))
        tokens.append(_estimate_tokens(chars))
    breakpoints = tuple(sorted({(i, _ttl_of(c)) for i, c in controls}))
    return _Prefix(model, tuple(keys), tuple(tokens), breakpoints, _estimate_tokens(chars))


class PromptCache:
    """The API's prompt cache: prefixes up to breakpoints, per model, with a lifetime.

    `clock` (seconds, default `time.monotonic`) can be replaced to move time in tests.
    Thread-safe: the server's requests account one at a time.
    """

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.monotonic,
        minimums: Mapping[str, int] | None = None,
        lookback: int = CACHE_LOOKBACK_BLOCKS,
    ) -> None:
        self.clock = clock
        self.minimums = dict(MIN_CACHEABLE_TOKENS if minimums is None else minimums)
        self.lookback = lookback
        self._entries: dict[str, tuple[float, float]] = {}
        """Prefix key -> (expiry, ttl)."""
        self._lock = threading.Lock()

    def minimum(self, model: str) -> int:
        matches = [key for key in self.minimums if model.startswith(key)]
        return self.minimums[max(matches, key=len)] if matches else 1_024

    def validate(self, body: Mapping[str, Any]) -> None:
        """Raise `CacheControlError` where the real API answers 400."""
        _prefix_of(body)

    def account(self, body: Mapping[str, Any], *, commit: bool = True) -> CacheAccount:
        """Bill one request's prompt; with `commit`, read (renew) and write entries."""
        prefix = _prefix_of(body)
        if not prefix.breakpoints:
            return CacheAccount(input_tokens=prefix.total)
        with self._lock:
            now = self.clock()
            read_at = -1
            for position, _ in prefix.breakpoints:
                for candidate in range(position, max(-1, position - self.lookback - 1), -1):
                    if candidate <= read_at:
                        break
                    entry = self._entries.get(prefix.keys[candidate])
                    if entry is not None and entry[0] > now:
                        read_at = candidate
                        break
            read = prefix.tokens[read_at] if read_at >= 0 else 0
            minimum = self.minimum(prefix.model)
            written = [
                (position, ttl)
                for position, ttl in prefix.breakpoints
                if position > read_at and prefix.tokens[position] >= minimum
            ]
            write = prefix.tokens[written[-1][0]] - read if written else 0
            if commit:
                self._expire(now)
                if read_at >= 0:
                    _, ttl = self._entries[prefix.keys[read_at]]
                    self._entries[prefix.keys[read_at]] = (now + ttl, ttl)
                for position, ttl in written:
                    self._entries[prefix.keys[position]] = (now + ttl, ttl)
        return CacheAccount(
            input_tokens=prefix.total - read - write,
            cache_creation_input_tokens=write,
            cache_read_input_tokens=read,
            breakpoints=len(prefix.breakpoints),
        )

    def _expire(self, now: float) -> None:
        for key in [k for k, (expiry, _) in self._entries.items() if expiry <= now]:
            del self._entries[key]

    def __len__(self) -> int:
        """How many live entries the cache holds."""
        with self._lock:
            now = self.clock()
            return sum(1 for expiry, _ in self._entries.values() if expiry > now)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


# --------------------------------------------------------------------------- recording


@dataclass
class RecordedRequest:
    """One request the stand-in received. Secret header values are `"<redacted>"`."""

    method: str
    path: str
    headers: dict[str, str]
    body: Any
    stream: bool
    received_at: float
    query: dict[str, str] = field(default_factory=dict)
    disconnected_at: float | None = None
    """`time.monotonic()` when the client went away before the response finished."""
    completed: bool = False
    """The whole response was sent."""
    reply: Reply | None = None
    """The reply that answered it (None for model lookups)."""
    cache: CacheAccount | None = None
    """How its prompt was billed (for `/v1/messages` requests that got an answer)."""

    @property
    def system_text(self) -> str:
        """The system prompt as one text, whether sent as a string or as text blocks."""
        system = self.body.get("system") if isinstance(self.body, dict) else None
        if isinstance(system, list):
            return "\n\n".join(str(b.get("text", "")) for b in system if isinstance(b, dict))
        return system if isinstance(system, str) else ""


def _redacted_headers(request: Request) -> dict[str, str]:
    headers: dict[str, str] = {}
    for name, value in request.headers.items():
        key = name.lower()
        value = _REDACTED if key in _SECRET_HEADERS else value
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    return headers


class _CutConnection(Exception):
    """Raised inside a response on purpose: uvicorn then closes the connection as is."""


class _DropCutTracebacks(logging.Filter):
    """Keep uvicorn from logging the tracebacks of intentional cuts."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, BaseExceptionGroup):
            return not exc.subgroup(_CutConnection)
        return not isinstance(exc, _CutConnection)


_CUT_FILTER = _DropCutTracebacks()


# --------------------------------------------------------------------------- responses


class _ReplyResponse(Response):
    """Sends one `Reply` as the ASGI response, watching for the client going away."""

    def __init__(
        self,
        standin: AnthropicStandIn,
        record: RecordedRequest,
        reply: Reply,
        *,
        model: str,
        stream: bool,
        account: CacheAccount,
    ) -> None:
        self.standin = standin
        self.record = record
        self.reply = reply
        self.model = model
        self.stream = stream
        self.account = account
        self.request_id = _new_id("req_")
        self.interrupt = asyncio.Event()
        self.disconnected = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        watcher = asyncio.create_task(self._watch(receive))
        self.standin._active.add(self.interrupt)
        if self.standin._stopping:
            self.interrupt.set()
        try:
            if self.reply.kind == "status":
                await self._send_status(send)
            elif self.stream:
                await self._send_stream(send)
            else:
                await self._send_message(send)
        finally:
            self.standin._active.discard(self.interrupt)
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher

    async def _watch(self, receive: Receive) -> None:
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                if not self.record.completed:
                    self.disconnected = True
                    self.standin._mark_disconnected(self.record, time.monotonic())
                self.interrupt.set()
                return

    async def _wait(self, seconds: float | None) -> bool:
        """Sleep (forever if None); True if interrupted by a disconnect or by stop()."""
        if self.interrupt.is_set():
            return True
        try:
            await asyncio.wait_for(self.interrupt.wait(), seconds)
        except TimeoutError:
            return False
        return True

    async def _pause(self, seconds: float, send: Send) -> bool:
        """Wait between events, pinging every `ping_every`; True if interrupted."""
        every = self.reply.ping_every
        if every is None:
            return await self._wait(seconds)
        deadline = time.monotonic() + seconds
        while (remaining := deadline - time.monotonic()) > 0:
            if await self._wait(min(every, remaining)):
                return True
            if deadline - time.monotonic() > 0:
                await self._body(send, encode_sse([("ping", {"type": "ping"})]))
        return False

    def _interrupted(self) -> None:
        """After an interruption: a disconnect ends quietly; stop() cuts the connection."""
        if not self.disconnected:
            raise _CutConnection("stand-in stopping")

    async def _start(self, send: Send, status: int, headers: Mapping[str, str]) -> None:
        raw = [(b"request-id", self.request_id.encode())]
        raw += [(k.encode(), v.encode()) for k, v in headers.items()]
        await send({"type": "http.response.start", "status": status, "headers": raw})

    async def _body(self, send: Send, body: bytes, *, more: bool = True) -> None:
        message: Message = {"type": "http.response.body", "body": body, "more_body": more}
        await send(message)

    async def _finish(self, send: Send) -> None:
        self.record.completed = True
        await self._body(send, b"", more=False)
        self.standin._notify()

    async def _send_whole(
        self, send: Send, status: int, headers: dict[str, str], body: bytes
    ) -> None:
        """A non-streaming response, with delay / stall / cut applied."""
        reply = self.reply
        if reply.delay and await self._wait(reply.delay):
            return self._interrupted()
        if reply.stall_after is not None:
            await self._wait(None)
            return self._interrupted()
        headers = {**headers, "content-length": str(len(body))}
        await self._start(send, status, headers)
        if reply.cut_after is not None:
            await self._body(send, body[: len(body) // 2])
            raise _CutConnection("cut_after")
        await self._body(send, body)
        await self._finish(send)

    async def _send_status(self, send: Send) -> None:
        reply = self.reply
        error_type = reply.error_type or default_error_type(reply.status)
        body = _json_bytes(error_body(error_type, reply.error_message, self.request_id))
        headers = {"content-type": "application/json"}
        if reply.retry_after is not None:
            headers["retry-after"] = reply.retry_after
        await self._send_whole(send, reply.status, headers, body)

    async def _send_message(self, send: Send) -> None:
        if self.reply.kind == "raw":
            body = self.reply.raw
            content_type = "text/event-stream; charset=utf-8"
        else:
            try:
                message = reply_message(self.reply, self.model, account=self.account)
            except (ValueError, KeyError, IndexError) as exc:  # a malformed events_reply
                self.reply = status_reply(500, message=f"stand-in cannot fold the events: {exc!r}")
                return await self._send_status(send)
            body = _json_bytes(message)
            content_type = "application/json"
        await self._send_whole(send, 200, {"content-type": content_type}, body)

    def _units(self) -> list[bytes]:
        reply = self.reply
        if reply.kind == "raw":
            return [
                reply.raw[i : i + reply.write_size]
                for i in range(0, len(reply.raw), reply.write_size)
            ]
        events = reply_events(reply, self.model, account=self.account)
        return [encode_sse([event]) for event in events]

    def _last_unit(self, unit: bytes) -> bytes:
        """The last unit sent, without its blank line when `final_blank_line` is off."""
        if self.reply.final_blank_line or self.reply.kind == "raw":
            return unit
        return unit.rstrip(b"\n") + b"\n"

    async def _send_stream(self, send: Send) -> None:
        reply = self.reply
        units = self._units()
        limit = next(
            (
                n
                for n in (reply.cut_after, reply.end_after, reply.error_after, reply.stall_after)
                if n is not None
            ),
            len(units),
        )
        await self._start(
            send,
            200,
            {"content-type": "text/event-stream; charset=utf-8", "cache-control": "no-cache"},
        )
        sending = units[:limit]
        for index, unit in enumerate(sending):
            if index > 0 and reply.delay and await self._pause(reply.delay, send):
                return self._interrupted()
            if self.interrupt.is_set():
                return self._interrupted()
            if index == len(sending) - 1:
                unit = self._last_unit(unit)
            await self._body(send, unit)
            await asyncio.sleep(0)
        if reply.cut_after is not None:
            # Let the sent events leave before uvicorn closes the socket (it flushes anyway).
            await asyncio.sleep(0)
            raise _CutConnection("cut_after")
        if reply.stall_after is not None:
            await self._wait(None)
            return self._interrupted()
        if reply.error_after is not None:
            if reply.error_after > 0 and reply.delay and await self._pause(reply.delay, send):
                return self._interrupted()
            await self._body(send, _error_event(reply))
        await self._finish(send)


class _JSONResponse(Response):
    media_type = "application/json"

    def __init__(
        self, content: object, status_code: int = 200, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(_json_bytes(content), status_code=status_code, headers=headers)


class _Server(uvicorn.Server):
    """uvicorn, woken at once by `request_exit` and shut down without its fixed sleeps."""

    def __init__(self, config: uvicorn.Config, *, on_shutdown: Callable[[], None]) -> None:
        super().__init__(config)
        self._wake = asyncio.Event()
        self._on_shutdown = on_shutdown

    def request_exit(self) -> None:
        """Ask the server to stop (call in its loop)."""
        self.should_exit = True
        self._wake.set()

    async def main_loop(self) -> None:
        counter = 0
        while not await self.on_tick(counter):  # on_tick refreshes the date header
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), 1.0)
            counter += 10

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        for server in self.servers:
            server.close()
        self._on_shutdown()  # open replies cut their connections
        for connection in list(self.server_state.connections):
            connection.shutdown()  # idle keep-alive connections close now
        deadline = time.monotonic() + 1.0
        while self.server_state.connections or self.server_state.tasks:
            if time.monotonic() > deadline:
                for task in list(self.server_state.tasks):
                    task.cancel()
                for connection in list(self.server_state.connections):
                    transport = getattr(connection, "transport", None)
                    if isinstance(transport, asyncio.Transport):
                        transport.abort()
                break
            await asyncio.sleep(0.002)
        await self.lifespan.shutdown()


# --------------------------------------------------------------------------- server


class AnthropicStandIn:
    """A local HTTP server speaking the Anthropic Messages API wire format.

    Use as a context manager or call `start()` / `stop()`. Point the SDK at
    `base_url`. Attributes (`models`, `models_failure`, `expected_api_key`,
    `default_reply`) may be changed while it runs. The key is read from `x-api-key`
    or `Authorization: Bearer` (SDK 2.12 sends the API key as the latter).
    """

    def __init__(
        self,
        *,
        prefix: str = "",
        models: dict[str, int] | None = None,
        models_failure: int | None = None,
        expected_api_key: str | None = None,
        default_reply: Reply | None = None,
        cache_clock: Callable[[], float] | None = None,
    ) -> None:
        self.prefix = "/" + prefix.strip("/") if prefix.strip("/") else ""
        self.prompt_cache = PromptCache(clock=cache_clock or time.monotonic)
        """The prompt cache's entries and clock (replace `prompt_cache.clock` to move time)."""
        self.models: dict[str, int] = dict(DEFAULT_MODELS if models is None else models)
        self.models_failure = models_failure
        self.expected_api_key = expected_api_key
        self.default_reply: Reply = default_reply or text_reply("OK")
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._script: deque[Reply] = deque()
        self._requests: list[RecordedRequest] = []
        self._model_requests: list[RecordedRequest] = []
        self._active: set[asyncio.Event] = set()
        self._stopping = False
        self._port: int | None = None
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.app = Starlette(
            routes=[
                Route(f"{self.prefix}/v1/messages", self._messages, methods=["POST"]),
                Route(f"{self.prefix}/v1/models", self._models_list, methods=["GET"]),
                Route(
                    f"{self.prefix}/v1/models/{{model_id:path}}", self._model_get, methods=["GET"]
                ),
                Route(
                    "/{path:path}",
                    self._not_found,
                    methods=["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"],
                ),
            ]
        )

    # ----------------------------------------------------------------- lifecycle

    def start(self) -> AnthropicStandIn:
        """Bind an ephemeral port and serve in a background thread; returns when ready."""
        if self._thread is not None:
            raise RuntimeError("already started")
        logging.getLogger("uvicorn.error").addFilter(_CUT_FILTER)
        # proto=IPPROTO_TCP matters: asyncio only sets TCP_NODELAY on sockets that say
        # so, and without it Nagle + delayed ACK add ~40 ms to each keep-alive response.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        sock.listen(128)
        sock.setblocking(False)
        self._port = sock.getsockname()[1]
        config = uvicorn.Config(
            self.app,
            http="h11",
            ws="none",
            lifespan="off",
            log_config=None,
            log_level="warning",
            access_log=False,
        )
        server = _Server(config, on_shutdown=self._interrupt_all)
        self._server = server
        self._stopping = False
        failure: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            try:
                loop.run_until_complete(server.serve(sockets=[sock]))
            except BaseException as exc:  # surfaced by start()
                failure.append(exc)
            finally:
                loop.run_until_complete(loop.shutdown_asyncgens())
                loop.close()
                sock.close()

        self._thread = threading.Thread(target=run, name="anthropic-standin", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not server.started:
            if failure or not self._thread.is_alive() or time.monotonic() > deadline:
                self._thread.join(1)
                self._thread = None
                raise RuntimeError(f"the Anthropic stand-in did not start: {failure!r}")
            time.sleep(0.002)
        return self

    def stop(self) -> None:
        """Cut any open responses and shut the server down (a few milliseconds)."""
        thread, server, loop = self._thread, self._server, self._loop
        if thread is None or server is None:
            return
        if loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop already closed
                loop.call_soon_threadsafe(server.request_exit)
        thread.join(timeout=5)
        if thread.is_alive():
            server.force_exit = True
            thread.join(timeout=5)
        self._thread = None
        self._server = None
        self._loop = None

    def _interrupt_all(self) -> None:
        self._stopping = True
        for event in list(self._active):
            event.set()

    def __enter__(self) -> AnthropicStandIn:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        """The bound port."""
        if self._port is None:
            raise RuntimeError("not started")
        return self._port

    @property
    def base_url(self) -> str:
        """What to give the SDK as `base_url` (includes the prefix, no trailing slash)."""
        return f"http://127.0.0.1:{self.port}{self.prefix}"

    # ----------------------------------------------------------------- script and records

    def script(self, *replies: Reply) -> None:
        """Queue replies for the next `POST /v1/messages` requests, in order."""
        with self._lock:
            self._script.extend(replies)

    @property
    def pending(self) -> int:
        """How many scripted replies have not been used yet."""
        with self._lock:
            return len(self._script)

    @property
    def requests(self) -> list[RecordedRequest]:
        """A snapshot of the `/v1/messages` requests received so far."""
        with self._lock:
            return list(self._requests)

    @property
    def model_requests(self) -> list[RecordedRequest]:
        """A snapshot of the model-route requests received so far."""
        with self._lock:
            return list(self._model_requests)

    def wait_for_requests(self, n: int, timeout: float = 5.0) -> list[RecordedRequest]:
        """Wait until at least `n` `/v1/messages` requests arrived; TimeoutError if not."""
        with self._changed:
            if not self._changed.wait_for(lambda: len(self._requests) >= n, timeout):
                raise TimeoutError(f"{len(self._requests)} of {n} requests after {timeout}s")
            return list(self._requests)

    def wait_for_disconnect(self, index: int, timeout: float = 5.0) -> float:
        """Wait until the client of request `index` went away mid-response; its time."""

        def seen() -> bool:
            return len(self._requests) > index and self._requests[index].disconnected_at is not None

        with self._changed:
            if not self._changed.wait_for(seen, timeout):
                raise TimeoutError(f"no disconnect of request {index} after {timeout}s")
            at = self._requests[index].disconnected_at
            assert at is not None
            return at

    def reset(self) -> None:
        """Forget the script, all recorded requests and the prompt cache."""
        with self._lock:
            self._script.clear()
            self._requests.clear()
            self._model_requests.clear()
        self.prompt_cache.clear()

    def _notify(self) -> None:
        with self._changed:
            self._changed.notify_all()

    def _mark_disconnected(self, record: RecordedRequest, at: float) -> None:
        with self._changed:
            record.disconnected_at = at
            self._changed.notify_all()

    def _next_reply(self) -> Reply:
        with self._lock:
            return self._script.popleft() if self._script else self.default_reply

    # ----------------------------------------------------------------- routes

    async def _record(self, request: Request, into: list[RecordedRequest]) -> RecordedRequest:
        raw = await request.body()
        body: Any = None
        if raw:
            try:
                body = json.loads(raw)
            except ValueError:
                body = None
        record = RecordedRequest(
            method=request.method,
            path=request.url.path,
            headers=_redacted_headers(request),
            body=body,
            stream=isinstance(body, dict) and body.get("stream") is True,
            received_at=time.monotonic(),
            query=dict(request.query_params),
        )
        with self._changed:
            into.append(record)
            self._changed.notify_all()
        return record

    def _auth_failure(self, request: Request) -> str | None:
        """Why the request's credentials are refused, or None."""
        key = request.headers.get("x-api-key")
        authorization = request.headers.get("authorization", "")
        if not key and authorization.lower().startswith("bearer "):
            key = authorization[7:].strip()
        if not key:
            return "x-api-key header is required"
        if self.expected_api_key is not None and key != self.expected_api_key:
            return "invalid x-api-key"
        return None

    def _error(
        self, record: RecordedRequest, status: int, message: str | None = None
    ) -> _JSONResponse:
        request_id = _new_id("req_")
        record.completed = True
        return _JSONResponse(
            error_body(default_error_type(status), message, request_id),
            status_code=status,
            headers={"request-id": request_id},
        )

    async def _messages(self, request: Request) -> Response:
        record = await self._record(request, self._requests)
        if (why := self._auth_failure(request)) is not None:
            return self._error(record, 401, why)
        body = record.body
        if not isinstance(body, dict):
            return self._error(record, 400, "The request body is not valid JSON.")
        for name in ("model", "max_tokens", "messages"):
            if name not in body:
                return self._error(record, 400, f"{name}: Field required")
        try:
            self.prompt_cache.validate(body)
        except CacheControlError as exc:
            return self._error(record, 400, str(exc))
        reply = self._next_reply()
        record.reply = reply
        # An error status caches nothing; any answer (even one cut short) has read and written.
        account = self.prompt_cache.account(body, commit=reply.kind != "status")
        record.cache = account
        return _ReplyResponse(
            self, record, reply, model=str(body["model"]), stream=record.stream, account=account
        )

    def _model_info(self, model_id: str) -> dict[str, Any]:
        return {
            "type": "model",
            "id": model_id,
            "display_name": _display_name(model_id),
            "created_at": _MODEL_CREATED_AT,
            "max_input_tokens": _MAX_INPUT_TOKENS,
            "max_tokens": self.models[model_id],
            "lifecycle": "active",
        }

    async def _models_list(self, request: Request) -> Response:
        record = await self._record(request, self._model_requests)
        if (why := self._auth_failure(request)) is not None:
            return self._error(record, 401, why)
        if self.models_failure is not None:
            return self._error(record, self.models_failure)
        try:
            limit = int(request.query_params.get("limit", "20"))
        except ValueError:
            return self._error(record, 400, "limit: Input should be a valid integer")
        if not 1 <= limit <= 1000:
            return self._error(record, 400, "limit: Input should be between 1 and 1000")
        ids = list(self.models)
        after, before = request.query_params.get("after_id"), request.query_params.get("before_id")
        if before is not None:
            end = ids.index(before) if before in ids else 0
            page, has_more = ids[max(0, end - limit) : end], end - limit > 0
        else:
            begin = ids.index(after) + 1 if after in ids else 0
            page, has_more = ids[begin : begin + limit], begin + limit < len(ids)
        record.completed = True
        return _JSONResponse(
            {
                "data": [self._model_info(i) for i in page],
                "has_more": has_more,
                "first_id": page[0] if page else None,
                "last_id": page[-1] if page else None,
            },
            headers={"request-id": _new_id("req_")},
        )

    async def _model_get(self, request: Request) -> Response:
        record = await self._record(request, self._model_requests)
        if (why := self._auth_failure(request)) is not None:
            return self._error(record, 401, why)
        if self.models_failure is not None:
            return self._error(record, self.models_failure)
        model_id = request.path_params["model_id"]
        if model_id not in self.models:
            return self._error(record, 404, f"model: {model_id}")
        record.completed = True
        return _JSONResponse(self._model_info(model_id), headers={"request-id": _new_id("req_")})

    async def _not_found(self, request: Request) -> Response:
        request_id = _new_id("req_")
        return _JSONResponse(
            error_body(
                "not_found_error", f"Not found: {request.method} {request.url.path}", request_id
            ),
            status_code=404,
            headers={"request-id": request_id},
        )


def _display_name(model_id: str) -> str:
    """`claude-sonnet-4-5` -> `Claude Sonnet 4.5`."""
    words: list[str] = []
    numbers: list[str] = []
    for part in model_id.split("-"):
        if part.isdigit() and len(part) < 8:
            numbers.append(part)
        elif not part.isdigit():
            if numbers:
                words.append(".".join(numbers))
                numbers = []
            words.append(part.capitalize())
    if numbers:
        words.append(".".join(numbers))
    return " ".join(words)
