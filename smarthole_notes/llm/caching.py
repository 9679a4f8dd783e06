"""Where a request marks Anthropic prompt-cache breakpoints, and why there.

The API caches the prompt prefix up to each `cache_control` breakpoint (order: tools, then
system, then messages; at most 4 per request; 5-minute lifetime, refreshed by each read),
and a breakpoint also finds a prefix cached at any of the 20 blocks before it. So:

1. the last tool: the tool definitions, shared by every request;
2. the end of the system prompt's stable part: tools + who the agent is + the user's
   information architecture, shared by every request while the settings stay;
3. the last block of the last message (in a tool loop, `LLMRequest.cache_messages`): the
   whole prompt, which the next round extends by a few blocks (one tool call at a time),
   so it reads all of this one. A one-off request leaves it out: nothing would read it,
   and a cache write costs 1.25x the input price.

The volatile system part (time, conversation context, pending question) comes after (2) and
is the only thing the next request does not share. A prefix shorter than the model's
minimum is not cached (the breakpoint is then harmless but wasted), so a breakpoint is
only placed where the estimated prefix reaches that minimum.
"""

from __future__ import annotations

import json
import math
from typing import Any

from smarthole_notes.llm.types import SystemText

__all__ = [
    "CACHE_CONTROL",
    "MAX_BREAKPOINTS",
    "MIN_CACHEABLE_TOKENS",
    "apply_cache_breakpoints",
    "estimate_tokens",
    "min_cacheable_tokens",
]

CACHE_CONTROL: dict[str, str] = {"type": "ephemeral"}
MAX_BREAKPOINTS = 4

MIN_CACHEABLE_TOKENS: dict[str, int] = {
    "claude-sonnet-4-5": 1_024,
    "claude-sonnet-4-6": 2_048,
    "claude-opus-4-7": 2_048,
    "claude-haiku-4-5": 4_096,
    "claude-opus-4-5": 4_096,
    "claude-opus-4-6": 4_096,
}
"""Model id (prefix) -> the shortest prefix, in tokens, the API will cache."""
DEFAULT_MIN_CACHEABLE_TOKENS = 1_024
"""For a model not in the table: the lowest minimum, since a breakpoint too early is harmless."""

CHARS_PER_TOKEN = 3.5
"""Deliberately a little low for English and JSON, so the estimate errs high: a breakpoint
is skipped only when its prefix is clearly too short, never one that would have cached."""
TOOL_USE_OVERHEAD_TOKENS = 300
"""The API's own tool-use instructions, added to the prompt whenever tools are given."""

_NO_CACHE_CONTROL = frozenset({"thinking", "redacted_thinking"})


def min_cacheable_tokens(model: str) -> int:
    """The model's minimum cacheable prefix (the longest matching table entry)."""
    name = model.strip().lower()
    matches = [key for key in MIN_CACHEABLE_TOKENS if name.startswith(key)]
    return MIN_CACHEABLE_TOKENS[max(matches, key=len)] if matches else DEFAULT_MIN_CACHEABLE_TOKENS


def estimate_tokens(chars: int) -> int:
    return math.ceil(chars / CHARS_PER_TOKEN)


def _size(value: Any) -> int:
    return len(value) if isinstance(value, str) else len(json.dumps(value, ensure_ascii=False))


def apply_cache_breakpoints(
    params: dict[str, Any],
    system: str,
    model: str,
    *,
    mark: bool = True,
    messages: bool = True,
) -> None:
    """Set `params["system"]` from `system` and mark the breakpoints, in place.

    `params` holds `messages` (API dicts) and maybe `tools`. A `SystemText` is sent as two
    text blocks, stable then volatile, with a breakpoint after the stable one; a plain
    string is sent as it is, unmarked (nothing says it will be sent again).
    `messages`: mark the last message block too (for a tool loop's next round).
    `mark=False`: the same request, uncached.
    """
    minimum = min_cacheable_tokens(model) if mark else math.inf
    chars = 0
    overhead = 0
    marked = 0
    tools: list[dict[str, Any]] = params.get("tools") or []
    if tools:
        overhead = TOOL_USE_OVERHEAD_TOKENS
        chars += _size(tools)
        if estimate_tokens(chars) + overhead >= minimum:
            tools[-1] = {**tools[-1], "cache_control": dict(CACHE_CONTROL)}
            marked += 1

    if isinstance(system, SystemText):
        blocks: list[dict[str, Any]] = []
        if system.stable:
            chars += len(system.stable)
            block: dict[str, Any] = {"type": "text", "text": system.stable}
            if estimate_tokens(chars) + overhead >= minimum:
                block["cache_control"] = dict(CACHE_CONTROL)
                marked += 1
            blocks.append(block)
        if system.volatile:
            chars += len(system.volatile)
            blocks.append({"type": "text", "text": system.volatile})
        if blocks:
            params["system"] = blocks
    elif system:
        chars += len(system)
        params["system"] = str(system)

    listed: list[dict[str, Any]] = params.get("messages") or []
    chars += _size(listed)
    if messages and marked < MAX_BREAKPOINTS and estimate_tokens(chars) + overhead >= minimum:
        _mark_last_block(listed)


def _mark_last_block(messages: list[dict[str, Any]]) -> None:
    """A breakpoint on the last block of the last message that can carry one."""
    if not messages:
        return
    last = messages[-1]
    content = last.get("content")
    if isinstance(content, str):
        if content:
            last["content"] = [
                {"type": "text", "text": content, "cache_control": dict(CACHE_CONTROL)}
            ]
        return
    if not isinstance(content, list):
        return
    for index in range(len(content) - 1, -1, -1):
        block = content[index]
        kind = block.get("type")
        if kind in _NO_CACHE_CONTROL or (kind == "text" and not block.get("text")):
            continue
        content[index] = {**block, "cache_control": dict(CACHE_CONTROL)}
        return
