"""The Anthropic API stand-in speaks the wire format the real SDK expects."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import anthropic
import httpx2
import pytest
from anthropic._streaming import SSEDecoder

from tests.standins.anthropic_api import (
    MALFORMED_KINDS,
    AnthropicStandIn,
    PromptCache,
    context_exceeded_reply,
    cut_tool_reply,
    encode_sse,
    events_reply,
    invalid_tool_reply,
    malformed_reply,
    pause_reply,
    prompt_too_long_reply,
    raw_reply,
    refusal_reply,
    reply_events,
    status_reply,
    text_reply,
    thinking_reply,
    tool_reply,
)

FAKE_KEY = "test-key-not-secret"
MODEL = "claude-sonnet-4-6"
MESSAGES: list[anthropic.types.MessageParam] = [{"role": "user", "content": "hi"}]


@pytest.fixture
async def client(anthropic_api: AnthropicStandIn) -> AsyncIterator[anthropic.AsyncAnthropic]:
    async with anthropic.AsyncAnthropic(
        api_key=FAKE_KEY, base_url=anthropic_api.base_url, max_retries=0
    ) as c:
        yield c


async def stream_final(client: anthropic.AsyncAnthropic) -> anthropic.types.Message:
    async with client.messages.stream(model=MODEL, max_tokens=100, messages=MESSAGES) as stream:
        return await stream.get_final_message()


async def create(client: anthropic.AsyncAnthropic) -> anthropic.types.Message:
    return await client.messages.create(model=MODEL, max_tokens=100, messages=MESSAGES)


async def test_default_reply_and_request_recording(
    anthropic_api: AnthropicStandIn, client: anthropic.AsyncAnthropic
) -> None:
    message = await stream_final(client)
    assert [b.type for b in message.content] == ["text"]
    assert message.content[0].text == "OK"  # type: ignore[union-attr]
    assert message.model == MODEL
    assert message.stop_reason == "end_turn"
    assert message.id.startswith("msg_")
    assert message.usage.input_tokens > 0 and message.usage.output_tokens > 0

    [request] = anthropic_api.wait_for_requests(1)
    assert request.method == "POST" and request.path == "/v1/messages"
    assert request.stream is True and request.completed and request.disconnected_at is None
    assert request.body["model"] == MODEL and request.body["messages"] == MESSAGES
    assert request.headers["authorization"] == "<redacted>"
    assert request.headers["anthropic-version"]
    assert FAKE_KEY not in repr(anthropic_api.requests)


async def test_text_reply_stream_and_create(
    anthropic_api: AnthropicStandIn, client: anthropic.AsyncAnthropic
) -> None:
    text = "Hello, world. Ünïcödé ✓ 🎉 " * 3
    anthropic_api.script(text_reply(text, chunk_size=7), text_reply(text, stop_reason="max_tokens"))
    streamed = await stream_final(client)
    created = await create(client)
    assert streamed.content[0].text == text  # type: ignore[union-attr]
    assert created.content[0].text == text  # type: ignore[union-attr]
    assert created.stop_reason == "max_tokens"
    assert [r.stream for r in anthropic_api.requests] == [True, False]
    assert anthropic_api.pending == 0


async def test_tool_reply(
    anthropic_api: AnthropicStandIn, client: anthropic.AsyncAnthropic
) -> None:
    args = {"path": "notes/ideas.md", "text": "café ✓", "tags": ["a", "b"], "n": 3}
    reply = tool_reply("write_note", args, text="Writing it.", tool_id="toolu_test1")
    anthropic_api.script(reply, reply)
    for message in (await stream_final(client), await create(client)):
        assert message.stop_reason == "tool_use"
        text, tool = message.content
        assert text.type == "text" and text.text == "Writing it."
        assert tool.type == "tool_use"
        assert (tool.id, tool.name, tool.input) == ("toolu_test1", "write_note", args)


async def test_thinking_reply(
    anthropic_api: AnthropicStandIn, client: anthropic.AsyncAnthropic
) -> None:
    reply = thinking_reply("Let me think about this carefully.", "sig-fake-123", "Done.")
    anthropic_api.script(reply, reply)
    for message in (await stream_final(client), await create(client)):
        thinking, text = message.content
        assert thinking.type == "thinking"
        assert thinking.thinking == "Let me think about this carefully."
        assert thinking.signature == "sig-fake-123"
        assert text.type == "text" and text.text == "Done."


async def test_events_reply_several_blocks_and_unknown_event(
    anthropic_api: AnthropicStandIn, client: anthropic.AsyncAnthropic
) -> None:
    events = reply_events(text_reply("first"), MODEL)
    second = [
        (
            "content_block_start",
            {
                "type": "content_block_start",
                "index": 1,
                "content_block": {"type": "text", "text": ""},
            },
        ),
        (
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 1,
                "delta": {"type": "text_delta", "text": "second"},
            },
        ),
        ("content_block_stop", {"type": "content_block_stop", "index": 1}),
        ("future_event", {"type": "future_event", "whatever": 1}),
    ]
    events[-2:-2] = second
    anthropic_api.script(events_reply(events))
    message = await stream_final(client)
    assert [b.text for b in message.content] == ["first", "second"]  # type: ignore[union-attr]


async def test_raw_reply_splits_multibyte_characters(
    anthropic_api: AnthropicStandIn, client: anthropic.AsyncAnthropic
) -> None:
    text = "Grüße 🎉 ✓ naïve"
    body = encode_sse(reply_events(text_reply(text), MODEL, message_id="msg_test"))
    # A write size at which some write ends inside a multi-byte character.
    size = next(
        n for n in range(8, 32) if any(not _decodes(body[:cut]) for cut in range(n, len(body), n))
    )
    anthropic_api.script(raw_reply(body, write_size=size, delay=0.001))
    message = await stream_final(client)
    assert message.content[0].text == text  # type: ignore[union-attr]


def _decodes(data: bytes) -> bool:
    try:
        data.decode()
    except UnicodeDecodeError:
        return False
    return True


async def test_status_replies_raise_matching_errors(
    anthropic_api: AnthropicStandIn, client: anthropic.AsyncAnthropic
) -> None:
    expected = {
        400: (anthropic.BadRequestError, "invalid_request_error"),
        401: (anthropic.AuthenticationError, "authentication_error"),
        403: (anthropic.PermissionDeniedError, "permission_error"),
        404: (anthropic.NotFoundError, "not_found_error"),
        413: (anthropic.RequestTooLargeError, "request_too_large"),
        429: (anthropic.RateLimitError, "rate_limit_error"),
        500: (anthropic.InternalServerError, "api_error"),
        529: (anthropic.OverloadedError, "overloaded_error"),
    }
    for code, (cls, error_type) in expected.items():
        for streaming in (True, False):
            anthropic_api.script(status_reply(code, retry_after=7))
            with pytest.raises(cls) as info:
                await (stream_final(client) if streaming else create(client))
            err = info.value
            assert err.status_code == code
            assert err.type == error_type
            assert err.response.headers["retry-after"] == "7"
            assert err.request_id is not None and err.request_id.startswith("req_")
            assert err.body == {
                "type": "error",
                "error": {"type": error_type, "message": err.api_message},
                "request_id": err.request_id,
            }
    anthropic_api.script(status_reply(529, error_type="api_error", message="custom"))
    with pytest.raises(anthropic.OverloadedError) as info:
        await create(client)
    assert (info.value.type, info.value.api_message) == ("api_error", "custom")
    assert "retry-after" not in info.value.response.headers


async def test_cut_after_raises_transport_error(
    anthropic_api: AnthropicStandIn,
    client: anthropic.AsyncAnthropic,
    caplog: pytest.LogCaptureFixture,
) -> None:
    anthropic_api.script(text_reply("x" * 100, chunk_size=5, cut_after=5))
    seen: list[str] = []
    with caplog.at_level(logging.WARNING), pytest.raises(httpx2.RemoteProtocolError):
        async with client.messages.stream(model=MODEL, max_tokens=9, messages=MESSAGES) as stream:
            async for event in stream:
                seen.append(event.type)
    # message_start, (ping), content_block_start, 2 deltas (each also a `text` event).
    assert seen == ["message_start", "content_block_start"] + ["content_block_delta", "text"] * 2
    assert not anthropic_api.requests[0].completed
    assert not [r for r in caplog.records if r.name.startswith("uvicorn")]

    anthropic_api.script(text_reply("x" * 100, cut_after=0))
    with pytest.raises(anthropic.APIConnectionError) as info:
        await create(client)
    assert isinstance(info.value.__cause__, httpx2.RemoteProtocolError)


async def test_end_after_gives_message_without_stop_reason(
    anthropic_api: AnthropicStandIn, client: anthropic.AsyncAnthropic
) -> None:
    anthropic_api.script(text_reply("hello world", chunk_size=5, end_after=4))
    message = await stream_final(client)
    assert message.stop_reason is None
    assert message.content[0].text == "hello"  # type: ignore[union-attr]
    assert anthropic_api.requests[0].completed


async def test_error_after_raises_status_error_200(
    anthropic_api: AnthropicStandIn, client: anthropic.AsyncAnthropic
) -> None:
    anthropic_api.script(text_reply("hello", error_after=3))
    with pytest.raises(anthropic.APIStatusError) as info:
        await stream_final(client)
    assert type(info.value) is anthropic.APIStatusError
    assert info.value.status_code == 200
    assert info.value.body == {
        "type": "error",
        "error": {"type": "overloaded_error", "message": "Overloaded"},
    }
    assert info.value.type == "overloaded_error"


async def test_stall_then_client_close_is_recorded(
    anthropic_api: AnthropicStandIn, client: anthropic.AsyncAnthropic
) -> None:
    anthropic_api.script(text_reply("hello", stall_after=3))
    async with client.messages.stream(model=MODEL, max_tokens=9, messages=MESSAGES) as stream:
        types = [(await stream.__anext__()).type for _ in range(2)]
        assert types == ["message_start", "content_block_start"]
        closed_at = time.monotonic()
    disconnected_at = anthropic_api.wait_for_disconnect(0, timeout=2)
    assert disconnected_at - closed_at < 0.2
    assert not anthropic_api.requests[0].completed


async def test_stall_hits_client_read_timeout(anthropic_api: AnthropicStandIn) -> None:
    anthropic_api.script(text_reply("hello", stall_after=3), text_reply("hello", stall_after=0))
    timeout = httpx2.Timeout(5, read=0.1)
    async with anthropic.AsyncAnthropic(
        api_key=FAKE_KEY, base_url=anthropic_api.base_url, max_retries=0, timeout=timeout
    ) as client:
        with pytest.raises(httpx2.ReadTimeout):
            await stream_final(client)
        with pytest.raises(anthropic.APITimeoutError):
            await create(client)  # stalled before any byte
    anthropic_api.wait_for_disconnect(0)
    anthropic_api.wait_for_disconnect(1)


async def test_delay_with_pings(anthropic_api: AnthropicStandIn) -> None:
    anthropic_api.script(text_reply("abc", delay=0.04, ping_every=0.01))
    async with (
        httpx2.AsyncClient(base_url=anthropic_api.base_url) as http,
        http.stream(
            "POST",
            "/v1/messages",
            headers={"x-api-key": FAKE_KEY},
            json={"model": MODEL, "max_tokens": 9, "messages": MESSAGES, "stream": True},
        ) as response,
    ):
        assert response.headers["content-type"].startswith("text/event-stream")
        names = [sse.event async for sse in SSEDecoder().aiter_bytes(response.aiter_bytes())]
    base = [name for name, _ in reply_events(text_reply("abc"), MODEL)]
    assert [n for n in names if n != "ping"] == [n for n in base if n != "ping"]
    assert names.count("ping") >= len(base)  # the scripted ping, then ~3 per pause


async def test_stop_is_quick_with_a_stalled_stream() -> None:
    api = AnthropicStandIn().start()
    api.script(text_reply("hello", stall_after=2))
    async with (
        anthropic.AsyncAnthropic(api_key=FAKE_KEY, base_url=api.base_url, max_retries=0) as client,
        client.messages.stream(model=MODEL, max_tokens=9, messages=MESSAGES) as stream,
    ):
        await stream.__anext__()
        started = time.monotonic()
        api.stop()
        assert time.monotonic() - started < 1.0
        with pytest.raises(httpx2.RemoteProtocolError):
            await stream.get_final_message()


async def test_auth(anthropic_api: AnthropicStandIn) -> None:
    anthropic_api.expected_api_key = FAKE_KEY
    async with anthropic.AsyncAnthropic(
        api_key="test-wrong-key", base_url=anthropic_api.base_url, max_retries=0
    ) as wrong:
        with pytest.raises(anthropic.AuthenticationError) as info:
            await create(wrong)
    assert info.value.type == "authentication_error"
    async with httpx2.AsyncClient(base_url=anthropic_api.base_url) as http:
        body = {"model": MODEL, "max_tokens": 9, "messages": MESSAGES}
        assert (await http.post("/v1/messages", json=body)).status_code == 401
        ok = await http.post("/v1/messages", json=body, headers={"x-api-key": FAKE_KEY})
        assert ok.status_code == 200 and ok.json()["content"][0]["text"] == "OK"
        bad = await http.post("/v1/messages", content=b"{", headers={"x-api-key": FAKE_KEY})
        assert bad.status_code == 400
        assert bad.json()["error"]["type"] == "invalid_request_error"
    assert [r.headers.get("x-api-key") for r in anthropic_api.requests[1:3]] == [None, "<redacted>"]
    assert "test-wrong-key" not in repr(anthropic_api.requests)


async def test_model_routes(
    anthropic_api: AnthropicStandIn, client: anthropic.AsyncAnthropic
) -> None:
    ids = [model.id async for model in client.models.list(limit=3)]
    assert ids == ["claude-haiku-4-5", "claude-sonnet-4-5", "claude-sonnet-4-6", "claude-opus-4-7"]
    assert [r.query for r in anthropic_api.model_requests] == [
        {"limit": "3"},
        {"limit": "3", "after_id": "claude-sonnet-4-6"},
    ]
    info = await client.models.retrieve("claude-opus-4-7")
    assert (info.type, info.id, info.max_tokens) == ("model", "claude-opus-4-7", 128000)
    assert info.display_name == "Claude Opus 4.7"
    assert info.max_input_tokens and info.created_at.year >= 2025
    with pytest.raises(anthropic.NotFoundError):
        await client.models.retrieve("claude-nonexistent-1")

    anthropic_api.models = {"claude-test-1": 4096}
    assert [m.id async for m in client.models.list()] == ["claude-test-1"]
    anthropic_api.models_failure = 500
    with pytest.raises(anthropic.InternalServerError):
        await client.models.retrieve("claude-test-1")
    anthropic_api.models_failure = 404
    with pytest.raises(anthropic.NotFoundError):
        await client.models.list()
    assert anthropic_api.requests == []


async def test_prefix_via_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    with AnthropicStandIn(prefix="/proxy/anthropic") as api:
        assert api.base_url.endswith("/proxy/anthropic")
        monkeypatch.setenv("ANTHROPIC_BASE_URL", api.base_url)
        async with anthropic.AsyncAnthropic(api_key=FAKE_KEY, max_retries=0) as client:
            assert (await stream_final(client)).content[0].text == "OK"  # type: ignore[union-attr]
            assert (await client.models.retrieve(MODEL)).id == MODEL
        async with httpx2.AsyncClient(base_url=f"http://127.0.0.1:{api.port}") as http:
            response = await http.post("/v1/messages", headers={"x-api-key": FAKE_KEY}, json={})
            assert response.status_code == 404
        assert [r.path for r in api.requests] == ["/proxy/anthropic/v1/messages"]
        assert [r.path for r in api.model_requests] == [f"/proxy/anthropic/v1/models/{MODEL}"]


def test_pure_helpers_round_trip_through_the_sdk_decoder() -> None:
    reply = tool_reply("t", {"k": "v ✓"}, text="hi", tool_id="toolu_x")
    events = reply_events(reply, MODEL, message_id="msg_fixed", input_tokens=5)
    assert [name for name, _ in events] == [
        "message_start", "ping",
        "content_block_start", "content_block_delta", "content_block_stop",
        "content_block_start", "content_block_delta", "content_block_stop",
        "message_delta", "message_stop",
    ]  # fmt: skip
    assert all(data["type"] == name for name, data in events)
    start = events[0][1]["message"]
    assert start["id"] == "msg_fixed" and start["model"] == MODEL
    assert start["usage"] == {
        "input_tokens": 5,
        "output_tokens": 1,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
    }
    decoded = list(SSEDecoder().iter_bytes(iter([encode_sse(events)])))
    assert [(sse.event, sse.json()) for sse in decoded] == events
    with pytest.raises(ValueError):
        reply_events(status_reply(500), MODEL)
    with pytest.raises(ValueError):
        text_reply("x", cut_after=1, stall_after=2)


# --------------------------------------------------------------------------- stop reasons and faults


async def test_refusal_reply_carries_stop_details_as_the_sdk_reads_them(
    anthropic_api: AnthropicStandIn, client: anthropic.AsyncAnthropic
) -> None:
    anthropic_api.script(refusal_reply("I can help with", category="cyber"))
    message = await stream_final(client)
    assert message.stop_reason == "refusal"
    assert message.stop_details is not None
    assert message.stop_details.type == "refusal"
    assert message.stop_details.category == "cyber"
    assert message.stop_details.explanation == (
        "This request was declined because it could enable cyber harm."
    )
    assert [b.type for b in message.content] == ["text"]
    events = reply_events(refusal_reply(category=None, explanation=None), MODEL)
    delta = next(data for name, data in events if name == "message_delta")["delta"]
    assert delta == {
        "stop_reason": "refusal",
        "stop_sequence": None,
        "stop_details": {"type": "refusal", "category": None, "explanation": None},
    }
    assert not [name for name, _ in events if name == "content_block_start"]


async def test_pause_reply_streams_server_tool_blocks(
    anthropic_api: AnthropicStandIn, client: anthropic.AsyncAnthropic
) -> None:
    anthropic_api.script(pause_reply(query="tiles", tool_id="srvtoolu_1"))
    message = await stream_final(client)
    assert message.stop_reason == "pause_turn"
    assert [b.type for b in message.content] == [
        "text",
        "server_tool_use",
        "web_search_tool_result",
    ]
    server_use = message.content[1]
    assert isinstance(server_use, anthropic.types.ServerToolUseBlock)
    assert server_use.input == {"query": "tiles"}


async def test_cut_tool_reply_ends_mid_json_at_max_tokens(
    anthropic_api: AnthropicStandIn, client: anthropic.AsyncAnthropic
) -> None:
    tool_input = {"path": "Notes/Long.md", "content": "a long note " * 20}
    reply = cut_tool_reply("write_file", tool_input, keep=40, text="Writing it now.")
    fragments = [
        data["delta"]["partial_json"]
        for name, data in reply_events(reply, MODEL)
        if name == "content_block_delta" and data["delta"]["type"] == "input_json_delta"
    ]
    assert "".join(fragments) == json.dumps(tool_input)[:40]
    anthropic_api.script(reply)
    message = await stream_final(client)
    assert message.stop_reason == "max_tokens"
    tool = message.content[-1]
    assert isinstance(tool, anthropic.types.ToolUseBlock)
    assert tool.input == {"path": "Notes/Long.md"}  # the SDK's partial parse drops the cut string
    with pytest.raises(ValueError):
        cut_tool_reply("write_file", tool_input, keep=10_000)


async def test_invalid_tool_reply_makes_the_sdk_helper_raise(
    anthropic_api: AnthropicStandIn, client: anthropic.AsyncAnthropic
) -> None:
    anthropic_api.script(invalid_tool_reply("read_file", '{"path": "a.md",, }'))
    with pytest.raises(ValueError, match="Unable to parse tool parameter JSON"):
        await stream_final(client)
    events = reply_events(invalid_tool_reply("read_file", '{"path": "a.md",, }'), MODEL)
    delta = next(data for name, data in events if name == "message_delta")["delta"]
    assert delta["stop_reason"] == "tool_use"


async def test_no_final_blank_line_is_still_read_by_the_sdk(
    anthropic_api: AnthropicStandIn, client: anthropic.AsyncAnthropic
) -> None:
    anthropic_api.script(text_reply("All there.", final_blank_line=False))
    message = await stream_final(client)
    assert message.content[0].type == "text" and message.stop_reason == "end_turn"
    anthropic_api.script(text_reply("All there.", final_blank_line=False))
    async with (
        httpx2.AsyncClient() as http,
        http.stream(
            "POST",
            f"{anthropic_api.base_url}/v1/messages",
            headers={"x-api-key": FAKE_KEY},
            json={"model": MODEL, "max_tokens": 10, "messages": MESSAGES, "stream": True},
        ) as response,
    ):
        body = b"".join([chunk async for chunk in response.aiter_bytes()])
    assert body.endswith(b'data: {"type":"message_stop"}\n')
    assert not body.endswith(b"\n\n")


async def test_context_exceeded_and_prompt_too_long(
    anthropic_api: AnthropicStandIn, client: anthropic.AsyncAnthropic
) -> None:
    anthropic_api.script(context_exceeded_reply("Partial"), prompt_too_long_reply(250_000))
    message = await stream_final(client)
    assert message.stop_reason == "model_context_window_exceeded"
    with pytest.raises(anthropic.BadRequestError) as caught:
        await stream_final(client)
    assert "prompt is too long: 250000 tokens > 200000 maximum" in str(caught.value)


@pytest.mark.parametrize("kind", MALFORMED_KINDS)
def test_malformed_replies_break_the_event_order(kind: str) -> None:
    events = list(malformed_reply(kind, model=MODEL).events)
    names = [name for name, _ in events]
    indexes = [data.get("index") for _, data in events]
    if kind == "delta_before_block_start":
        assert names.index("content_block_delta") < names.index("content_block_start")
    elif kind == "delta_for_unknown_index":
        assert 7 in indexes
    elif kind == "message_delta_before_message_start":
        assert names[0] == "message_delta"
    elif kind == "block_stop_for_unknown_index":
        assert ("content_block_stop", {"type": "content_block_stop", "index": 3}) in events
    elif kind == "second_message_start":
        assert names.count("message_start") == 2
    else:
        assert events[names.index("content_block_delta")][1]["delta"]["type"] == "text_delta"
    with pytest.raises(ValueError):
        malformed_reply("no_such_thing")


async def test_usage_override_reports_cache_figures(
    anthropic_api: AnthropicStandIn, client: anthropic.AsyncAnthropic
) -> None:
    anthropic_api.script(
        text_reply("cached", usage={"cache_read_input_tokens": 900, "input_tokens": 12})
    )
    message = await stream_final(client)
    assert message.usage.cache_read_input_tokens == 900
    assert message.usage.input_tokens == 12


# --------------------------------------------------------------------------- prompt cache

EPHEMERAL = {"type": "ephemeral"}
BIG = "Background for the cache. " * 400  # ~10,400 characters: ~2,600 tokens


def cached_body(
    question: str = "hi", *, model: str = MODEL, system: str = BIG, mark_last: bool = True
) -> dict[str, Any]:
    last: dict[str, Any] = {"type": "text", "text": question}
    if mark_last:
        last["cache_control"] = EPHEMERAL
    return {
        "model": model,
        "max_tokens": 100,
        "system": [{"type": "text", "text": system, "cache_control": EPHEMERAL}],
        "messages": [{"role": "user", "content": [last]}],
    }


async def test_cache_writes_then_reads_as_the_api_reports_it(
    anthropic_api: AnthropicStandIn, client: anthropic.AsyncAnthropic
) -> None:
    body = cached_body()
    first = await client.messages.create(**body)
    assert first.usage.cache_read_input_tokens == 0
    assert (
        first.usage.cache_creation_input_tokens and first.usage.cache_creation_input_tokens > 2_048
    )
    assert first.usage.input_tokens == 0  # the last block is a breakpoint: nothing uncached
    async with client.messages.stream(**body) as stream:
        second = await stream.get_final_message()
    assert second.usage.cache_read_input_tokens == first.usage.cache_creation_input_tokens
    assert second.usage.cache_creation_input_tokens == 0
    accounts = [r.cache for r in anthropic_api.requests]
    assert accounts[1] is not None and accounts[1].billed_input_tokens == pytest.approx(
        0.1 * accounts[1].total_input_tokens
    )
    assert accounts[0] is not None and accounts[0].billed_input_tokens == pytest.approx(
        1.25 * accounts[0].total_input_tokens
    )


async def test_without_cache_control_nothing_is_cached(
    anthropic_api: AnthropicStandIn, client: anthropic.AsyncAnthropic
) -> None:
    body: dict[str, Any] = {"model": MODEL, "max_tokens": 100, "system": BIG, "messages": MESSAGES}
    for _ in range(2):
        message = await client.messages.create(**body)
        assert message.usage.cache_creation_input_tokens == 0
        assert message.usage.cache_read_input_tokens == 0
        assert message.usage.input_tokens > 2_048
    assert len(anthropic_api.prompt_cache) == 0


async def test_a_changed_block_after_the_breakpoint_reads_the_prefix_before_it(
    anthropic_api: AnthropicStandIn, client: anthropic.AsyncAnthropic
) -> None:
    first = await client.messages.create(**cached_body("one"))
    second = await client.messages.create(**cached_body("two"))
    # The system block's prefix is shared; the new question is written.
    assert second.usage.cache_read_input_tokens
    assert second.usage.cache_read_input_tokens < (first.usage.cache_creation_input_tokens or 0)
    assert (
        second.usage.cache_creation_input_tokens and second.usage.cache_creation_input_tokens < 10
    )


async def test_below_the_model_minimum_nothing_is_written(
    anthropic_api: AnthropicStandIn, client: anthropic.AsyncAnthropic
) -> None:
    body = cached_body(model="claude-haiku-4-5")  # ~2,600 tokens < 4,096
    for _ in range(2):
        message = await client.messages.create(**body)
        assert message.usage.cache_creation_input_tokens == 0
        assert message.usage.cache_read_input_tokens == 0
    # The same prompt on Opus 4.7 (2,048) is cached; entries are per model.
    opus = await client.messages.create(**cached_body(model="claude-opus-4-7"))
    assert opus.usage.cache_creation_input_tokens
    assert opus.usage.cache_read_input_tokens == 0


async def test_entries_live_five_minutes_and_a_read_renews_them(
    anthropic_api: AnthropicStandIn, client: anthropic.AsyncAnthropic
) -> None:
    now = [0.0]
    anthropic_api.prompt_cache.clock = lambda: now[0]
    body = cached_body()
    await client.messages.create(**body)
    for at in (299.0, 598.0):
        now[0] = at
        message = await client.messages.create(**body)
        assert message.usage.cache_read_input_tokens, at
    now[0] = 598.0 + 300.0
    message = await client.messages.create(**body)
    assert message.usage.cache_read_input_tokens == 0
    assert message.usage.cache_creation_input_tokens


def test_the_lookback_reaches_20_blocks_and_no_further() -> None:
    cache = PromptCache()

    def body(blocks: int) -> dict[str, Any]:
        content: list[dict[str, Any]] = [
            {"type": "text", "text": f"block {i}"} for i in range(blocks)
        ]
        content[-1] = {**content[-1], "cache_control": EPHEMERAL}
        return {
            "model": MODEL,
            "system": [{"type": "text", "text": BIG}],
            "messages": [{"role": "user", "content": content}],
        }

    written = cache.account(body(5))
    assert written.cache_creation_input_tokens > 0
    near = cache.account(body(25), commit=False)  # 20 blocks after the cached one
    assert near.cache_read_input_tokens == written.total_input_tokens
    far = cache.account(body(26), commit=False)  # 21 blocks after: not found
    assert far.cache_read_input_tokens == 0


async def test_more_than_four_breakpoints_is_a_400(
    anthropic_api: AnthropicStandIn, client: anthropic.AsyncAnthropic
) -> None:
    content = [{"type": "text", "text": f"part {i}", "cache_control": EPHEMERAL} for i in range(5)]
    body: dict[str, Any] = {
        "model": MODEL,
        "max_tokens": 100,
        "messages": [{"role": "user", "content": content}],
    }
    with pytest.raises(anthropic.BadRequestError) as caught:
        await client.messages.create(**body)
    assert "A maximum of 4 blocks with cache_control" in str(caught.value)
    assert anthropic_api.pending == 0 and anthropic_api.requests[0].reply is None


async def test_an_error_reply_caches_nothing(
    anthropic_api: AnthropicStandIn, client: anthropic.AsyncAnthropic
) -> None:
    anthropic_api.script(status_reply(529))
    with pytest.raises(anthropic.APIStatusError):
        await client.messages.create(**cached_body())
    message = await client.messages.create(**cached_body())
    assert message.usage.cache_read_input_tokens == 0
    assert message.usage.cache_creation_input_tokens
