"""What a request cost when it ended without an answer: kept, shown, added to the total.

Tokens billed by rounds that completed before a failure, a refusal or a Stop are paid for
like an answer's. They are kept on the request in the history (summed over its attempts),
published live (`request_cost`) and counted in the conversation's total.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from smarthole_notes.llm.types import sum_usage_records
from tests.pipeline_harness import Service
from tests.standins.anthropic_api import (
    AnthropicStandIn,
    context_exceeded_reply,
    refusal_reply,
    status_reply,
    text_reply,
    tool_reply,
)

ROUND = {"input_tokens": 1000, "output_tokens": 40}
"""What each scripted round reports (the stand-in's `usage` modifier)."""


def a_round(**reported: int) -> dict[str, int]:
    return {**ROUND, **reported}


def listing(**usage: int) -> Any:
    return tool_reply("list_files", {"path": ""}, usage=a_round(**usage))


async def run_one(service: Service, text: str, message_id: str) -> dict[str, Any] | None:
    """Send a chat message, wait until it is done; the usage stored on its request (None
    if it was answered)."""
    await service.start()
    try:
        await service.chat(text, message_id)
        await service.idle()
        recorded = service.store.user_message(message_id)
        answered = service.store.answer_for(message_id) is not None
    finally:
        await service.stop()
    assert recorded is not None and not answered
    return None if recorded.usage is None else dict(recorded.usage)


async def test_a_failure_after_a_tool_round_keeps_that_rounds_cost_on_the_request(
    anthropic_api: AnthropicStandIn, vault: Path
) -> None:
    anthropic_api.script(listing(), *[status_reply(500)] * 3)
    service = Service(vault, anthropic_api)
    usage = await run_one(service, "tidy my notes", "chat-f1")
    assert usage is not None
    assert (usage["input_tokens"], usage["output_tokens"]) == (1000, 40)
    assert usage["model"] == service.settings.model and usage["cost_usd"] > 0
    (event,) = service.of_type("request_cost")
    assert event["message_id"] == "chat-f1" and event["usage"] == usage


async def test_a_refusal_keeps_the_cost_of_every_round_it_took(
    anthropic_api: AnthropicStandIn, vault: Path
) -> None:
    anthropic_api.script(listing(), refusal_reply(usage=a_round(output_tokens=5)))
    usage = await run_one(Service(vault, anthropic_api), "something", "chat-f2")
    assert usage is not None
    assert (usage["input_tokens"], usage["output_tokens"]) == (2000, 45)


async def test_stop_keeps_the_cost_of_the_rounds_that_completed(
    anthropic_api: AnthropicStandIn, vault: Path
) -> None:
    anthropic_api.script(listing(), text_reply("slow " * 200, chunk_size=2, delay=0.05))
    service = Service(vault, anthropic_api)
    await service.start()
    try:
        await service.chat("write me a long story", "chat-f3")
        await asyncio.to_thread(anthropic_api.wait_for_requests, 2)
        await asyncio.sleep(0.2)
        assert service.pipeline.cancel_current()
        await service.idle()
        recorded = service.store.user_message("chat-f3")
    finally:
        await service.stop()
    assert service.pipeline.outcomes[-1].status == "cancelled"
    assert recorded is not None and recorded.usage is not None
    assert (recorded.usage["input_tokens"], recorded.usage["output_tokens"]) == (1000, 40)


async def test_an_answer_after_a_too_long_first_try_keeps_both_costs_apart(
    anthropic_api: AnthropicStandIn, vault: Path
) -> None:
    anthropic_api.script(
        context_exceeded_reply(usage=a_round(output_tokens=7)),
        text_reply("Done.", usage=a_round(input_tokens=300)),
    )
    service = Service(vault, anthropic_api)
    await service.start()
    try:
        await service.chat("summarise everything", "chat-f4")
        await service.idle()
        request = service.store.user_message("chat-f4")
        answer = service.store.answer_for("chat-f4")
    finally:
        await service.stop()
    assert request is not None and request.usage is not None
    assert (request.usage["input_tokens"], request.usage["output_tokens"]) == (1000, 7)
    assert answer is not None and answer.usage is not None
    assert answer.usage["input_tokens"] == 300


async def test_the_cost_of_failed_attempts_adds_up_across_automatic_retries(
    anthropic_api: AnthropicStandIn, vault: Path
) -> None:
    anthropic_api.script(
        listing(), *[status_reply(529, retry_after=0)] * 3,  # attempt 1: a round, then overload
        listing(), *[status_reply(529, retry_after=0)] * 3,  # attempt 2 (automatic)
        text_reply("Tidied.", usage=a_round()),  # attempt 3 answers
    )  # fmt: skip
    service = Service(vault, anthropic_api, retry_unit_seconds=0.05)
    await service.start()
    try:
        await service.chat("tidy my notes", "chat-f5")
        for _ in range(200):
            if service.store.answer_for("chat-f5") is not None:
                break
            await asyncio.sleep(0.05)
        await service.idle()
        request = service.store.user_message("chat-f5")
    finally:
        await service.stop()
    assert request is not None and request.usage is not None
    assert (request.usage["input_tokens"], request.usage["output_tokens"]) == (2000, 80)
    totals = [e["usage"]["input_tokens"] for e in service.of_type("request_cost")]
    assert totals == [1000, 2000]


def test_usage_records_add_up_their_tokens_and_costs() -> None:
    a = {"model": "m", "input_tokens": 1, "output_tokens": 2, "cost_usd": 0.5}
    b = {"model": "m", "input_tokens": 10, "cache_read_tokens": 3, "cost_usd": 0.25}
    total = sum_usage_records([a, b])
    assert total == {
        "model": "m",
        "input_tokens": 11,
        "output_tokens": 2,
        "cache_write_tokens": 0,
        "cache_read_tokens": 3,
        "cost_usd": 0.75,
    }
    other = sum_usage_records([a, {**b, "model": "n", "cost_usd": None}])
    assert other["model"] is None and other["cost_usd"] is None
