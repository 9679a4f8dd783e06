"""Every row of llm.md's stop-reason table through the pipeline `serve` runs.

For each: what the user is told (SmartHole notification and the chat page's events), what
the history stores, the message's state, and how many requests reached the API.
"""

from __future__ import annotations

from pathlib import Path

from smarthole_notes.conversations.store import StoredMessage
from tests.pipeline_harness import CLIENT_NAME, Service
from tests.standins.anthropic_api import (
    AnthropicStandIn,
    Reply,
    context_exceeded_reply,
    cut_tool_reply,
    invalid_tool_reply,
    malformed_reply,
    pause_reply,
    prompt_too_long_reply,
    refusal_reply,
    text_reply,
    tool_reply,
)
from tests.standins.smarthole_server import RecordedResponse, SmartHoleStandIn
from tests.test_pipeline import hole as hole  # the fixture, for this module too


async def run(
    vault: Path,
    api: AnthropicStandIn,
    hole: SmartHoleStandIn,
    text: str,
    *replies: Reply,
) -> tuple[Service, RecordedResponse, str]:
    """Route one SmartHole message through a running service; its final notification."""
    api.script(*replies)
    service = Service(vault, api, smarthole_url=hole.url)
    await service.start()
    try:
        message_id = await hole.route(CLIENT_NAME, text)
        told = await hole.wait_for_response(message_id, "notification", timeout=20)
        await service.idle()
    except BaseException:
        await service.stop()
        raise
    return service, told, message_id


def history(service: Service) -> list[StoredMessage]:
    active = service.store.list_conversations(limit=5)
    return [m for c in active for m in service.store.messages(c.id)]


def streamed(api: AnthropicStandIn) -> int:
    return len([r for r in api.requests if r.body.get("stream")])


async def test_refusal_is_told_as_a_refusal_recorded_as_one_and_never_retried(
    anthropic_api: AnthropicStandIn, hole: SmartHoleStandIn, vault: Path
) -> None:
    service, told, message_id = await run(
        vault, anthropic_api, hole, "write me a keylogger", refusal_reply(category="cyber")
    )
    try:
        state = service.pipeline.message_states()[message_id]
        events = service.of_type("error")
        rows = history(service)
        processed = service.store.is_processed(message_id)
    finally:
        await service.stop()
    body = told.payload["body"]
    assert body.startswith("Claude declined this request: it may facilitate cyber attacks")
    assert "Done" not in body and told.payload["priority"] == "high"
    assert "not done" in told.payload["title"]
    assert streamed(anthropic_api) == 1
    assert state.state == "refused"
    assert events[-1]["code"] == "refused" and events[-1]["message"] == state.error
    kinds = [(m.kind, m.content[:24]) for m in rows]
    assert kinds == [("request", "write me a keylogger"), ("refusal", "Claude declined this req")]
    assert not processed
    assert service.of_type("response") == []


async def test_pause_turn_is_continued_not_shown(
    anthropic_api: AnthropicStandIn, hole: SmartHoleStandIn, vault: Path
) -> None:
    service, told, _ = await run(
        vault,
        anthropic_api,
        hole,
        "ideas for the kitchen",
        pause_reply(),
        text_reply("Here are three ideas."),
    )
    rows = history(service)
    await service.stop()
    assert told.payload["body"] == "Here are three ideas."
    assert streamed(anthropic_api) == 2
    assert [m.kind for m in rows] == ["request", "answer"]


async def test_a_tool_call_cut_by_the_output_limit_is_not_run_and_the_request_fails(
    anthropic_api: AnthropicStandIn, hole: SmartHoleStandIn, vault: Path
) -> None:
    service, told, message_id = await run(
        vault,
        anthropic_api,
        hole,
        "write the long report",
        cut_tool_reply("write_file", {"path": "Report.md", "content": "word " * 500}),
    )
    try:
        state = service.pipeline.message_states()[message_id]
        rows = history(service)
    finally:
        await service.stop()
    assert not (vault / "Report.md").exists()
    assert "output limit" in told.payload["body"] and "not done" in told.payload["title"]
    assert state.state == "failed"
    assert streamed(anthropic_api) == 1
    assert [m.kind for m in rows] == ["request"]


async def test_plain_max_tokens_delivers_the_text_with_a_note(
    anthropic_api: AnthropicStandIn, hole: SmartHoleStandIn, vault: Path
) -> None:
    service, told, _ = await run(
        vault,
        anthropic_api,
        hole,
        "summarise everything",
        text_reply("The first half of a long summary", stop_reason="max_tokens"),
    )
    rows = history(service)
    await service.stop()
    body = told.payload["body"]
    assert body.startswith("The first half of a long summary")
    assert "output limit" in body
    assert [m.kind for m in rows] == ["request", "answer"]


async def test_context_too_long_is_retried_once_with_less_context(
    anthropic_api: AnthropicStandIn, hole: SmartHoleStandIn, vault: Path
) -> None:
    service, told, _ = await run(
        vault,
        anthropic_api,
        hole,
        "what is on my list?",
        prompt_too_long_reply(),
        text_reply("Eggs and milk."),
    )
    await service.stop()
    assert told.payload["body"] == "Eggs and milk."
    first, second = [r.body for r in anthropic_api.requests if r.body.get("stream")]
    assert "left out: the conversation was too long" in str(second["system"])
    assert "left out" not in str(first["system"])


async def test_context_too_long_twice_is_told_and_not_looped(
    anthropic_api: AnthropicStandIn, hole: SmartHoleStandIn, vault: Path
) -> None:
    service, told, message_id = await run(
        vault,
        anthropic_api,
        hole,
        "what is on my list?",
        context_exceeded_reply(),
        context_exceeded_reply(),
    )
    try:
        state = service.pipeline.message_states()[message_id]
    finally:
        await service.stop()
    assert "too long for the model" in told.payload["body"]
    assert state.state == "failed"
    assert streamed(anthropic_api) == 2


async def test_an_unknown_stop_reason_delivers_the_text(
    anthropic_api: AnthropicStandIn, hole: SmartHoleStandIn, vault: Path
) -> None:
    service, told, _ = await run(
        vault,
        anthropic_api,
        hole,
        "hello",
        text_reply("Hello there.", stop_reason="some_future_reason"),
    )
    rows = history(service)
    await service.stop()
    assert told.payload["body"] == "Hello there."
    assert [m.kind for m in rows] == ["request", "answer"]


async def test_invalid_tool_json_goes_back_to_the_model_which_corrects_itself(
    anthropic_api: AnthropicStandIn, hole: SmartHoleStandIn, vault: Path
) -> None:
    service, told, _ = await run(
        vault,
        anthropic_api,
        hole,
        "add eggs",
        invalid_tool_reply("write_file", '{"path": "Eggs.md", "content": "- eggs'),
        tool_reply("write_file", {"path": "Eggs.md", "content": "- eggs\n"}),
        text_reply("Added eggs."),
    )
    await service.stop()
    assert told.payload["body"] == "Added eggs."
    assert (vault / "Eggs.md").read_text() == "- eggs\n"
    requests = [r.body for r in anthropic_api.requests if r.body.get("stream")]
    assert len(requests) == 3
    result = requests[1]["messages"][-1]["content"][0]
    assert result["type"] == "tool_result" and result["is_error"]
    assert "not valid JSON" in str(result["content"])


async def test_a_stream_without_the_final_blank_line_is_an_answer(
    anthropic_api: AnthropicStandIn, hole: SmartHoleStandIn, vault: Path
) -> None:
    service, told, _ = await run(
        vault, anthropic_api, hole, "hi", text_reply("Hi!", final_blank_line=False)
    )
    await service.stop()
    assert told.payload["body"] == "Hi!"
    assert streamed(anthropic_api) == 1


async def test_a_malformed_stream_is_named_as_such_and_scheduled_for_a_retry(
    anthropic_api: AnthropicStandIn, hole: SmartHoleStandIn, vault: Path
) -> None:
    service, told, message_id = await run(
        vault, anthropic_api, hole, "hi", *[malformed_reply()] * 3
    )
    try:
        state = service.pipeline.message_states()[message_id]
    finally:
        await service.stop()
    body = told.payload["body"]
    assert "malformed response" in body and "network" not in body
    assert "failed after 3 attempts" in body
    assert state.state == "retry_scheduled" and state.next_attempt_at is not None


async def test_a_chat_message_refused_is_shown_in_the_page_events_and_history(
    anthropic_api: AnthropicStandIn, vault: Path
) -> None:
    anthropic_api.script(refusal_reply(category=None, explanation=None))
    service = Service(vault, anthropic_api)
    await service.start()
    await service.chat("something declined", "chat-ref")
    await service.idle()
    state = service.pipeline.message_states()["chat-ref"]
    rows = history(service)
    await service.stop()
    (error,) = service.of_type("error")
    assert error["code"] == "refused" and "declined" in error["message"]
    assert state.state == "refused"
    assert [m.kind for m in rows] == ["request", "refusal"]
    assert all("Done" not in m.content for m in rows)
