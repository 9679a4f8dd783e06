"""The product's stream assembly gives exactly the SDK's final message for the same bytes."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import anthropic
import pytest

from tests.llm_helpers import MODEL, client, provider
from tests.standins.anthropic_api import (
    AnthropicStandIn,
    Reply,
    context_exceeded_reply,
    cut_tool_reply,
    encode_sse,
    events_reply,
    pause_reply,
    raw_reply,
    refusal_reply,
    reply_events,
    text_reply,
    thinking_reply,
    tool_reply,
)

PARAMS: dict[str, Any] = {
    "model": MODEL,
    "max_tokens": 1000,
    "messages": [{"role": "user", "content": "hi"}],
}

BIG_NOTE = "".join(f'Line {i}: notes about the kitchen, é漢字🙂 "quoted"\n' for i in range(8000))


def _several_blocks() -> Reply:
    events = reply_events(
        tool_reply("read_file", {"path": "Lists/Shopping.md"}, text="First."), MODEL
    )
    # Add a second text block before the tool block ends the message.
    start = [e for e in events if e[0] == "message_start"]
    rest = [e for e in events if e[0] != "message_start"]
    second = [
        (
            "content_block_start",
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "text", "text": ""},
            },
        ),
        (
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "text_delta", "text": "Zero. "},
            },
        ),
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
    ]
    shifted = []
    for name, data in rest:
        if "index" in data:
            data = {**data, "index": data["index"] + 1}
        shifted.append((name, data))
    return events_reply([*start, *second, *shifted])


def _unknown_event_type() -> Reply:
    events = reply_events(text_reply("Hello there, general reader."), MODEL)
    events.insert(2, ("future_thing", {"type": "future_thing", "detail": {"x": 1}}))
    return events_reply(events)


def _escape_split_across_deltas() -> Reply:
    """A JSON escape (`\\u00e9`) and a surrogate pair split between two input_json_deltas."""
    events = reply_events(tool_reply("write_file", {"path": "a.md", "content": "x"}), MODEL)
    out: list[tuple[str, dict[str, Any]]] = []
    for name, data in events:
        if name == "content_block_delta" and data["delta"].get("type") == "input_json_delta":
            continue
        if name == "content_block_stop":
            index = data["index"]
            for piece in ['{"path": "caf\\u00', 'e9.md", "content": "smile \\ud83d', '\\ude42"}']:
                delta = {"type": "input_json_delta", "partial_json": piece}
                out.append(
                    (
                        "content_block_delta",
                        {"type": "content_block_delta", "index": index, "delta": delta},
                    )
                )
        out.append((name, data))
    return events_reply(out)


def _utf8_split_across_writes() -> Reply:
    body = encode_sse(
        reply_events(text_reply("Grüße aus Köln — 漢字 and 🙂 emoji", chunk_size=3), MODEL)
    )
    return raw_reply(body, write_size=5, delay=0.001)


CORPUS: dict[str, Any] = {
    "text only": lambda: text_reply("Added eggs to Lists/Shopping.md."),
    "text then tool_use": lambda: tool_reply(
        "write_file", {"path": "a.md", "content": "hi"}, text="Writing."
    ),
    "several blocks": _several_blocks,
    "400 KB tool input": lambda: tool_reply(
        "write_file", {"path": "Big.md", "content": BIG_NOTE[:400_000]}
    ),
    "multi-byte UTF-8 split across writes": _utf8_split_across_writes,
    "escapes split across deltas": _escape_split_across_deltas,
    "thinking and signature": lambda: thinking_reply(
        "Let me think about lists.", "sig-abc123==", "Done."
    ),
    "unknown event type": _unknown_event_type,
    "empty tool input": lambda: tool_reply("get_active_note", {}),
    "refusal with stop_details": lambda: refusal_reply("I can", category="cyber"),
    "pause_turn with server tool blocks": lambda: pause_reply("Searching."),
    "tool call cut by max_tokens": lambda: cut_tool_reply(
        "write_file", {"path": "a.md", "content": "word " * 50}, text="Writing."
    ),
    "no final blank line": lambda: text_reply("Whole.", final_blank_line=False),
    "context window exceeded": lambda: context_exceeded_reply("Half an ans"),
}


def _normalised(message: dict[str, Any]) -> dict[str, Any]:
    return anthropic.types.Message.model_validate(message).model_dump(mode="json")


@pytest.mark.parametrize("case", list(CORPUS))
async def test_final_message_equals_the_sdks(anthropic_api: AnthropicStandIn, case: str) -> None:
    reply = CORPUS[case]()
    if reply.kind == "message":  # freeze ids, so both clients read the very same bytes
        reply = dataclasses.replace(reply, kind="events", events=tuple(reply_events(reply, MODEL)))
    anthropic_api.script(reply, reply)

    sdk_client = client(anthropic_api)
    async with sdk_client.messages.stream(**PARAMS) as stream:
        expected = await stream.get_final_message()
    ours = await provider(anthropic_api).stream_final_message(dict(PARAMS), None)

    assert _normalised(ours) == _normalised(expected.to_dict())
    # And the raw dicts agree on everything the API sent, block by block.
    assert json.loads(json.dumps(ours["content"])) == json.loads(
        json.dumps(expected.to_dict()["content"])
    )
