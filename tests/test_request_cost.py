"""What the user pays for beyond answers: kept, shown, added to the conversation's total.

Tokens billed by rounds that completed before a failure, a refusal or a Stop are paid for
like an answer's: they are kept on the request in the history (summed over its attempts)
and published live (`request_cost`). Side jobs (commit messages, the summary, the
retrospection) are kept with the conversation they served and published (`side_cost`).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from smarthole_notes.conversations.store import ConversationStore, default_path
from smarthole_notes.llm.types import sum_usage_records
from smarthole_notes.settings import Settings
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


async def test_side_jobs_costs_are_kept_with_the_conversation_they_served(
    anthropic_api: AnthropicStandIn, vault: Path, tmp_path: Path, monkeypatch: Any
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    anthropic_api.script(
        tool_reply("write_file", {"path": "Bye.md", "content": "bye\n"}, usage=a_round()),
        tool_reply("end_conversation", {}, usage=a_round()),
        text_reply("Bye!", usage=a_round()),
        text_reply("vault: add a goodbye note", usage={"input_tokens": 400, "output_tokens": 9}),
        text_reply(
            '{"title": "Saying goodbye", "summary": "The user left."}',
            usage={"input_tokens": 300, "output_tokens": 20},
        ),
        text_reply("1. Nothing missing.", usage={"input_tokens": 500, "output_tokens": 30}),
    )
    settings = Settings(enable_git_version_control=True, enable_conversation_retrospection=True)
    service = Service(vault, anthropic_api, settings=settings)
    await service.start()
    try:
        await service.chat("note that I said bye, then end", "chat-s1")
        await service.idle()
        for _ in range(200):
            if not service.pipeline.side_jobs.running and len(anthropic_api.requests) >= 6:
                break
            await asyncio.sleep(0.05)
        request = service.store.user_message("chat-s1")
        assert request is not None
        costs = service.store.side_costs(request.conversation_id)
    finally:
        await service.stop()
    jobs = {c.job: c.usage for c in costs}
    assert set(jobs) == {"commit_message", "summary", "retrospection"}
    assert jobs["commit_message"]["model"] == "claude-haiku-4-5"  # priced as Haiku
    assert jobs["summary"]["model"] == settings.model
    # The commit message and the summary run side by side: which got which reply varies.
    total = sum_usage_records(jobs.values())
    assert (total["input_tokens"], total["output_tokens"]) == (1200, 59)
    published = {e["job"] for e in service.of_type("side_cost")}
    assert published == set(jobs)
    assert all(
        e["conversation_id"] == request.conversation_id for e in service.of_type("side_cost")
    )


def test_side_costs_go_with_their_conversation_and_with_a_cleared_history(
    tmp_path: Path,
) -> None:
    now = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
    usage = {"model": "m", "input_tokens": 5, "output_tokens": 1, "cost_usd": 0.001}
    with ConversationStore(default_path(tmp_path)) as store:
        first, _ = store.begin_message(now, timedelta(minutes=30))
        store.add_side_cost("summary", usage, at=now, conversation_id=first.id)
        store.add_side_cost("routing_description", usage, at=now)
        kept = store.add_side_cost("summary", usage, at=now, conversation_id="gone")
        assert kept.conversation_id is None  # a conversation dropped meanwhile keeps nothing
        assert [c.job for c in store.side_costs(first.id)] == ["summary"]
        store.end_conversation(first.id, "explicit", now)
        second, _ = store.begin_message(now + timedelta(minutes=1), timedelta(minutes=30))
        assert store.enforce_retention(1) == 1  # the ended one goes, its costs with it
        assert store.side_costs(first.id) == []
        store.add_side_cost("commit_message", usage, at=now, conversation_id=second.id)
        store.clear_all()
        assert store.side_costs(second.id) == []
