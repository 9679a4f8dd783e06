"""The Anthropic provider against the stand-in, over real sockets."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest

from smarthole_notes.llm.anthropic_provider import AnthropicProvider, make_client
from smarthole_notes.llm.cancel import CancelSignal
from smarthole_notes.llm.errors import ErrorCode, LLMError
from smarthole_notes.llm.events import AgentEvent, StreamRestarted, TextDelta
from smarthole_notes.llm.limits import DEFAULT_MAX_TOKENS, ModelLimits
from smarthole_notes.llm.retry import RetryPolicy
from smarthole_notes.llm.types import LLMRequest, Message, StopReason, TextBlock, ToolSpec
from tests.llm_helpers import TEST_KEY, RecordingSleep, ask, provider
from tests.standins.anthropic_api import (
    AnthropicStandIn,
    status_reply,
    text_reply,
    tool_reply,
)


async def test_agent_call_streams_and_micro_call_does_not_with_the_same_shape(
    anthropic_api: AnthropicStandIn,
) -> None:
    reply = tool_reply(
        "write_file", {"path": "a.md", "content": "x"}, text="Writing.", tool_id="toolu_1"
    )
    anthropic_api.script(reply, reply)

    streamed = await provider(anthropic_api, streaming=True).send(ask())
    plain = await provider(anthropic_api, streaming=False).send(ask())

    first, second = anthropic_api.requests
    assert first.body["stream"] is True
    assert "stream" not in second.body or second.body["stream"] is False
    assert streamed.content == plain.content
    assert streamed.stop_reason is plain.stop_reason is StopReason.TOOL_USE
    assert streamed.usage.output_tokens == plain.usage.output_tokens


async def test_text_is_forwarded_as_it_streams_and_final_message_is_the_truth(
    anthropic_api: AnthropicStandIn,
) -> None:
    anthropic_api.script(text_reply("Added eggs to Lists/Shopping.md.", chunk_size=5))
    seen: list[AgentEvent] = []
    response = await provider(anthropic_api).send(ask(), on_event=seen.append)
    deltas = [e.text for e in seen if isinstance(e, TextDelta)]
    assert len(deltas) > 3
    assert "".join(deltas) == response.text == "Added eggs to Lists/Shopping.md."


async def test_tools_are_sent_with_one_call_per_turn(anthropic_api: AnthropicStandIn) -> None:
    spec = ToolSpec("read_file", "Read a note", {"type": "object", "properties": {}})
    request = LLMRequest("sys", (Message.user_text("hi"),), tools=(spec,))
    await provider(anthropic_api).send(request)
    await provider(anthropic_api).send(ask())
    with_tools, without = anthropic_api.requests
    assert with_tools.body["tool_choice"] == {"type": "auto", "disable_parallel_tool_use": True}
    assert with_tools.body["tools"][0]["name"] == "read_file"
    assert "tool_choice" not in without.body and "tools" not in without.body


# ---------------------------------------------------------------- max_tokens


async def test_max_tokens_comes_from_the_models_api_once_per_model(
    anthropic_api: AnthropicStandIn,
) -> None:
    anthropic_api.models = {"claude-haiku-4-5": 64_000, "claude-test-big": 123_456}
    limits = ModelLimits()
    for model in ("claude-test-big", "claude-test-big", "claude-haiku-4-5"):
        p = AnthropicProvider(make_client(TEST_KEY, anthropic_api.base_url), model, limits=limits)
        await p.send(ask())
    sent = [r.body["max_tokens"] for r in anthropic_api.requests]
    assert sent == [123_456, 123_456, 64_000]
    assert len(anthropic_api.model_requests) == 2


async def test_max_tokens_falls_back_to_the_table_when_the_models_api_fails(
    anthropic_api: AnthropicStandIn,
) -> None:
    anthropic_api.models_failure = 500
    await provider(anthropic_api, model="claude-opus-4-7").send(ask())
    await provider(anthropic_api, model="claude-sonnet-4-6").send(ask())
    assert [r.body["max_tokens"] for r in anthropic_api.requests] == [128_000, 64_000]


async def test_unknown_model_gets_the_conservative_default_and_a_log_line(
    anthropic_api: AnthropicStandIn, caplog: pytest.LogCaptureFixture
) -> None:
    anthropic_api.models_failure = 404
    with caplog.at_level(logging.WARNING):
        await provider(anthropic_api, model="claude-mystery-9").send(ask())
    assert anthropic_api.requests[0].body["max_tokens"] == DEFAULT_MAX_TOKENS
    assert "claude-mystery-9" in caplog.text and "default" in caplog.text


async def test_micro_agent_calls_ask_for_a_small_max_tokens(
    anthropic_api: AnthropicStandIn,
) -> None:
    await provider(anthropic_api, streaming=False).send(ask())
    assert anthropic_api.requests[0].body["max_tokens"] <= 4096
    assert anthropic_api.model_requests == []


# ---------------------------------------------------------------- failures and retries


@pytest.mark.parametrize(
    ("status", "code", "attempts"),
    [
        (401, ErrorCode.AUTH_ERROR, 1),
        (403, ErrorCode.AUTH_ERROR, 1),
        (400, ErrorCode.INVALID_REQUEST, 1),
        (404, ErrorCode.INVALID_REQUEST, 1),
        (413, ErrorCode.INVALID_REQUEST, 1),
        (429, ErrorCode.RATE_LIMIT, 3),
        (500, ErrorCode.SERVER_ERROR, 3),
        (529, ErrorCode.OVERLOADED, 3),
    ],
)
@pytest.mark.parametrize("streaming", [True, False])
async def test_status_failures_map_to_codes_and_only_retryable_ones_retry(
    anthropic_api: AnthropicStandIn, status: int, code: ErrorCode, attempts: int, streaming: bool
) -> None:
    anthropic_api.script(*[status_reply(status)] * 3)
    sleep = RecordingSleep()
    with pytest.raises(LLMError) as caught:
        await provider(anthropic_api, streaming=streaming, sleep=sleep).send(ask())
    assert caught.value.code is code
    assert caught.value.attempts == attempts
    assert len(anthropic_api.requests) == attempts  # the SDK's own retries never add to these
    assert sleep.delays == [1.0, 2.0][: attempts - 1]


async def test_retry_after_header_sets_the_wait(anthropic_api: AnthropicStandIn) -> None:
    anthropic_api.script(status_reply(429, retry_after=7), status_reply(529, retry_after=900))
    sleep = RecordingSleep()
    response = await provider(anthropic_api, sleep=sleep).send(ask())
    assert response.text == "OK"
    assert sleep.delays == [7.0, 30.0]  # honoured, and capped


async def test_persistent_overload_says_it_failed_after_three_attempts(
    anthropic_api: AnthropicStandIn,
) -> None:
    anthropic_api.script(*[status_reply(529)] * 3)
    with pytest.raises(LLMError) as caught:
        await provider(anthropic_api, sleep=RecordingSleep()).send(ask())
    assert caught.value.user_message == "Anthropic is overloaded; failed after 3 attempts"


@pytest.mark.parametrize(
    ("broken", "why"),
    [
        (text_reply("PARTIAL answer that must never be used", chunk_size=4, cut_after=6), "cut"),
        (
            text_reply("PARTIAL answer that must never be used", chunk_size=4, end_after=6),
            "incomplete",
        ),
        (
            text_reply("PARTIAL answer that must never be used", chunk_size=4, error_after=6),
            "overloaded_error",
        ),
        (
            text_reply(
                "PARTIAL answer that must never be used",
                chunk_size=4,
                error_after=6,
                error_type="api_error",
            ),
            "api_error",
        ),
    ],
)
async def test_a_stream_broken_midway_is_retried_from_scratch(
    anthropic_api: AnthropicStandIn, broken: object, why: str
) -> None:
    anthropic_api.script(broken, text_reply("The complete answer."))  # type: ignore[arg-type]
    seen: list[AgentEvent] = []
    sleep = RecordingSleep()
    response = await provider(anthropic_api, sleep=sleep).send(ask(), on_event=seen.append)
    assert response.text == "The complete answer."
    assert "PARTIAL" not in response.text
    assert len(anthropic_api.requests) == 2
    assert sleep.delays == [1.0]
    restarts = [e for e in seen if isinstance(e, StreamRestarted)]
    assert len(restarts) == 1 and restarts[0].attempt == 2


@pytest.mark.parametrize(
    ("error_type", "code"),
    [
        ("overloaded_error", ErrorCode.OVERLOADED),
        ("api_error", ErrorCode.SERVER_ERROR),
        ("rate_limit_error", ErrorCode.RATE_LIMIT),
        ("invalid_request_error", ErrorCode.INVALID_REQUEST),
        ("authentication_error", ErrorCode.AUTH_ERROR),
        ("brand_new_error", ErrorCode.UNKNOWN),
    ],
)
async def test_in_stream_errors_are_classified_by_their_type(
    anthropic_api: AnthropicStandIn, error_type: str, code: ErrorCode
) -> None:
    anthropic_api.script(*[text_reply("x", error_after=3, error_type=error_type)] * 3)
    with pytest.raises(LLMError) as caught:
        await provider(anthropic_api, sleep=RecordingSleep()).send(ask())
    assert caught.value.code is code
    assert len(anthropic_api.requests) == (3 if code.retryable else 1)


async def test_every_attempt_failing_midway_ends_in_network_error(
    anthropic_api: AnthropicStandIn,
) -> None:
    anthropic_api.script(*[text_reply("never whole", cut_after=4)] * 3)
    with pytest.raises(LLMError) as caught:
        await provider(anthropic_api, sleep=RecordingSleep()).send(ask())
    assert caught.value.code is ErrorCode.NETWORK_ERROR
    assert caught.value.attempts == 3


async def test_connection_refused_is_a_network_error() -> None:
    dead = AnthropicStandIn().start()
    url = dead.base_url
    dead.stop()
    p = AnthropicProvider(
        make_client(TEST_KEY, url),
        "claude-haiku-4-5",
        retry=RetryPolicy(sleep=RecordingSleep()),
        limits=ModelLimits(),
    )
    with pytest.raises(LLMError) as caught:
        await p.send(ask(max_tokens=100))
    assert caught.value.code is ErrorCode.NETWORK_ERROR
    assert caught.value.attempts == 3


async def test_a_stalled_stream_is_abandoned_and_retried(anthropic_api: AnthropicStandIn) -> None:
    anthropic_api.script(text_reply("stalls here", stall_after=3), text_reply("Fresh answer."))
    response = await provider(anthropic_api, idle=0.3, sleep=RecordingSleep()).send(ask())
    assert response.text == "Fresh answer."
    assert anthropic_api.wait_for_disconnect(0) > 0


async def test_a_slow_stream_kept_alive_by_pings_is_never_cut(
    anthropic_api: AnthropicStandIn,
) -> None:
    anthropic_api.script(text_reply("slow but alive", chunk_size=7, delay=0.5, ping_every=0.1))
    response = await provider(anthropic_api, idle=0.3, sleep=RecordingSleep()).send(ask())
    assert response.text == "slow but alive"
    assert len(anthropic_api.requests) == 1


async def test_base_url_with_a_path_prefix_works() -> None:
    with AnthropicStandIn(prefix="/proxy/anthropic") as api:
        response = await provider(api).send(ask())
        assert response.text == "OK"
        assert api.requests[0].path.startswith("/proxy/anthropic/v1/messages")


# ---------------------------------------------------------------- cancellation


async def test_cancel_closes_the_stream_within_200_ms(anthropic_api: AnthropicStandIn) -> None:
    anthropic_api.script(text_reply("a very slow answer " * 20, chunk_size=3, delay=0.2))
    cancel = CancelSignal()
    first_text = asyncio.Event()

    def on_event(event: AgentEvent) -> None:
        if isinstance(event, TextDelta):
            first_text.set()

    task = asyncio.create_task(
        provider(anthropic_api).send(ask(), cancel=cancel, on_event=on_event)
    )
    await asyncio.wait_for(first_text.wait(), 5)
    fired_at = time.monotonic()
    cancel.fire()
    with pytest.raises(LLMError) as caught:
        await asyncio.wait_for(task, 1)
    assert caught.value.code is ErrorCode.ABORTED
    disconnected_at = await asyncio.to_thread(anthropic_api.wait_for_disconnect, 0, 2.0)
    assert disconnected_at - fired_at < 0.2


async def test_a_signal_fired_before_the_call_sends_nothing(
    anthropic_api: AnthropicStandIn,
) -> None:
    cancel = CancelSignal()
    cancel.fire()
    with pytest.raises(LLMError) as caught:
        await provider(anthropic_api).send(ask(), cancel=cancel)
    assert caught.value.code is ErrorCode.ABORTED
    assert anthropic_api.requests == [] and anthropic_api.model_requests == []


async def test_cancel_during_a_backoff_wait_ends_it_at_once(
    anthropic_api: AnthropicStandIn,
) -> None:
    anthropic_api.script(status_reply(529, retry_after=20))
    cancel = CancelSignal()
    p = AnthropicProvider(
        make_client(TEST_KEY, anthropic_api.base_url), "claude-haiku-4-5", limits=ModelLimits()
    )
    task = asyncio.create_task(p.send(ask(max_tokens=100), cancel=cancel))
    await asyncio.to_thread(anthropic_api.wait_for_requests, 1)
    await asyncio.sleep(0.1)
    started = time.monotonic()
    cancel.fire()
    with pytest.raises(LLMError) as caught:
        await asyncio.wait_for(task, 2)
    assert caught.value.code is ErrorCode.ABORTED
    assert time.monotonic() - started < 0.5
    assert len(anthropic_api.requests) == 1


async def test_cancelling_the_task_also_closes_the_stream(anthropic_api: AnthropicStandIn) -> None:
    anthropic_api.script(text_reply("slow " * 50, chunk_size=2, delay=0.2))
    task = asyncio.create_task(provider(anthropic_api).send(ask()))
    await asyncio.to_thread(anthropic_api.wait_for_requests, 1)
    await asyncio.sleep(0.3)
    cancelled_at = time.monotonic()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    disconnected_at = await asyncio.to_thread(anthropic_api.wait_for_disconnect, 0, 2.0)
    assert disconnected_at - cancelled_at < 0.2


async def test_empty_text_blocks_are_dropped(anthropic_api: AnthropicStandIn) -> None:
    anthropic_api.script(tool_reply("get_active_note", {}, text=""))
    response = await provider(anthropic_api).send(ask())
    assert not any(isinstance(b, TextBlock) for b in response.content)
