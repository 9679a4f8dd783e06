"""The message pipeline over real sockets: SmartHole stand-in -> inbox -> agent -> notes -> history."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from smarthole_notes.inbox import InboxMessage
from smarthole_notes.pipeline import NO_KEY_NOTICE, RETRY_NOTE, utc_now
from smarthole_notes.settings import Settings
from tests.pipeline_harness import CLIENT_NAME, Clock, Service
from tests.standins.anthropic_api import AnthropicStandIn, status_reply, text_reply, tool_reply
from tests.standins.smarthole_server import SmartHoleStandIn


@pytest.fixture
async def hole() -> AsyncIterator[SmartHoleStandIn]:
    async with SmartHoleStandIn() as server:
        yield server


def user_texts(api: AnthropicStandIn) -> list[str]:
    texts = []
    for request in api.requests:
        if request.body.get("stream") and len(request.body["messages"]) == 1:
            texts.append(request.body["messages"][0]["content"][-1]["text"])
    return texts


async def test_routed_message_goes_through_every_step(
    anthropic_api: AnthropicStandIn, hole: SmartHoleStandIn, vault: Path
) -> None:
    anthropic_api.script(
        tool_reply("write_file", {"path": "Lists/Shopping.md", "content": "- eggs\n"}),
        text_reply("Added eggs to Lists/Shopping.md."),
    )
    service = Service(vault, anthropic_api, smarthole_url=hole.url)
    await service.start()
    try:
        message_id = await hole.route(CLIENT_NAME, "add eggs to my shopping list")
        ack = await hole.wait_for_response(message_id, "ack")
        assert ack.at - hole.delivery(message_id).sent_at < 1.0  # type: ignore[union-attr]
        notification = await hole.wait_for_response(message_id, "notification", timeout=10)
        await service.idle()
    finally:
        await service.stop()

    assert (vault / "Lists" / "Shopping.md").read_text() == "- eggs\n"
    assert notification.payload == {
        "title": "Shopping: “add eggs to my shopping list” – done",
        "body": "Added eggs to Lists/Shopping.md.",
        "priority": "high",
    }
    assert service.inbox.pending() == []
    store = service.store.__class__(service.store.path)
    (conversation,) = store.list_conversations()
    messages = store.messages(conversation.id)
    assert [(m.role, m.content) for m in messages] == [
        ("user", "add eggs to my shopping list"),
        ("assistant", "Added eggs to Lists/Shopping.md."),
    ]
    assert messages[0].input_method == "voice" and messages[0].message_id == message_id
    assert [t.name for t in messages[1].tools_used] == ["write_file"]
    assert store.is_processed(message_id)
    store.close()
    kinds = [e["type"] for e in service.events]
    for kind in ("message_received", "queued", "tool_started", "tool_finished", "response"):
        assert kind in kinds


async def test_burst_of_twenty_is_acked_at_once_and_processed_in_order(
    anthropic_api: AnthropicStandIn, hole: SmartHoleStandIn, vault: Path
) -> None:
    anthropic_api.default_reply = text_reply("Done, slowly.", chunk_size=2, delay=0.01)
    service = Service(vault, anthropic_api, smarthole_url=hole.url)
    await service.start()
    try:
        ids = [await hole.route(CLIENT_NAME, f"note number {i}") for i in range(20)]
        for message_id in ids:
            await hole.wait_for_response(message_id, "ack")
        latencies = [
            hole.responses_for(i, "ack")[0].at - hole.delivery(i).sent_at  # type: ignore[union-attr]
            for i in ids
        ]
        await service.idle(timeout=60)
    finally:
        await service.stop()
    assert max(latencies) < 1.0
    assert user_texts(anthropic_api) == [f"note number {i}" for i in range(20)]
    assert service.inbox.pending() == []


async def test_redelivered_id_is_processed_once(
    anthropic_api: AnthropicStandIn, hole: SmartHoleStandIn, vault: Path
) -> None:
    service = Service(vault, anthropic_api, smarthole_url=hole.url)
    await service.start()
    try:
        await hole.route(CLIENT_NAME, "remember the milk", message_id="msg-same")
        await hole.wait_for_response("msg-same", "notification", timeout=10)
        await service.idle()
        await hole.route(CLIENT_NAME, "remember the milk", message_id="msg-same")
        await hole.wait_for_response("msg-same", "ack", count=2)
        await asyncio.sleep(0.3)
        await service.idle()
    finally:
        await service.stop()
    assert user_texts(anthropic_api) == ["remember the milk"]


async def test_invalid_key_tells_the_user_and_keeps_the_message(
    anthropic_api: AnthropicStandIn, hole: SmartHoleStandIn, vault: Path
) -> None:
    anthropic_api.script(status_reply(401))
    service = Service(vault, anthropic_api, smarthole_url=hole.url)
    await service.start()
    try:
        message_id = await hole.route(CLIENT_NAME, "add milk")
        told = await hole.wait_for_response(message_id, "notification", timeout=10)
        await service.idle()
    finally:
        await service.stop()
    assert "API key was rejected" in told.payload["body"]
    assert told.payload["priority"] == "high"
    (kept,) = service.inbox.pending()
    assert kept.id == message_id and kept.last_error and "auth_error" in kept.last_error
    assert kept.state == "waiting_for_key"
    assert len(anthropic_api.requests) == 1  # a rejected key is not retried
    assert service.of_type("error")[0]["code"] == "auth_error"


async def test_persistent_overload_is_told_kept_and_retried_automatically(
    anthropic_api: AnthropicStandIn, hole: SmartHoleStandIn, vault: Path
) -> None:
    anthropic_api.script(*[status_reply(529, retry_after=0)] * 3, text_reply("Added bread."))
    # The schedule's first step (1 minute) passes in 0.3 s here.
    service = Service(vault, anthropic_api, smarthole_url=hole.url, retry_unit_seconds=0.3)
    await service.start()
    try:
        message_id = await hole.route(CLIENT_NAME, "add bread")
        told = await hole.wait_for_response(message_id, "notification", timeout=10)
        assert len(anthropic_api.requests) == 3  # the provider's attempts only, never more
        (waiting,) = service.inbox.pending()
        assert waiting.state == "retry_scheduled" and waiting.retries == 1
        answered = await hole.wait_for_response(message_id, "notification", count=2, timeout=10)
        await service.idle()
    finally:
        await service.stop()
    body = told.payload["body"]
    assert "overloaded" in body and "failed after 3 attempts" in body
    assert "kept; next try at" in body
    assert answered.payload["body"] == "Added bread."
    assert len(anthropic_api.requests) == 4
    assert service.inbox.pending() == []
    states = [e["state"] for e in service.of_type("message_state")]
    assert states[:4] == ["queued", "processing", "retry_scheduled", "queued"]
    assert states[-1] == "done"


async def test_retry_schedule_survives_a_restart(
    anthropic_api: AnthropicStandIn, vault: Path
) -> None:
    anthropic_api.script(*[status_reply(503)] * 3)
    first = Service(vault, anthropic_api, retry_unit_seconds=0.5)
    await first.start()
    await first.chat("add flour", "chat-r1")
    await first.idle()
    await first.stop()
    (waiting,) = first.inbox.pending()
    assert waiting.state == "retry_scheduled" and waiting.next_attempt_at is not None

    anthropic_api.script(text_reply("Added flour."))
    later = Service(vault, anthropic_api, retry_unit_seconds=0.5)
    await later.start()
    assert later.pipeline.message_states()["chat-r1"].state == "retry_scheduled"
    for _ in range(100):
        if not later.inbox.pending():
            break
        await asyncio.sleep(0.05)
    await later.idle()
    await later.stop()
    assert later.pipeline.outcomes[-1].status == "answered"
    assert later.inbox.pending() == []
    assert len(anthropic_api.requests) == 4


async def test_non_transient_failures_wait_for_the_user(
    anthropic_api: AnthropicStandIn, vault: Path
) -> None:
    anthropic_api.script(status_reply(400, message="messages: bad request"))
    service = Service(vault, anthropic_api, retry_unit_seconds=0.01)
    await service.start()
    await service.chat("add sugar", "chat-r2")
    await service.idle()
    await asyncio.sleep(0.3)  # several retry units: nothing is retried on its own
    (waiting,) = service.inbox.pending()
    assert waiting.state == "failed" and waiting.error is not None
    assert "process it again" in waiting.error
    assert len(anthropic_api.requests) == 1

    anthropic_api.script(text_reply("Added sugar."))
    assert await service.pipeline.reprocess("chat-r2")
    await service.idle()
    await service.stop()
    assert service.inbox.pending() == []
    assert len(anthropic_api.requests) == 2


async def test_without_a_key_messages_are_acked_kept_and_processed_once_a_key_is_set(
    anthropic_api: AnthropicStandIn, hole: SmartHoleStandIn, vault: Path
) -> None:
    service = Service(vault, anthropic_api, smarthole_url=hole.url, key=None)
    await service.start()
    try:
        message_id = await hole.route(CLIENT_NAME, "add tea")
        await hole.wait_for_response(message_id, "ack")
        told = await hole.wait_for_response(message_id, "notification", timeout=10)
        assert told.payload["body"] == NO_KEY_NOTICE
        await service.idle()
        assert [m.id for m in service.inbox.pending()] == [message_id]
        assert anthropic_api.requests == []

        service.key = "test-key-not-secret"
        service.pipeline.key_configured()
        await hole.wait_for_response(message_id, "notification", count=2, timeout=10)
        await service.idle()
    finally:
        await service.stop()
    assert service.inbox.pending() == []
    assert user_texts(anthropic_api) == ["add tea"]


async def test_an_interrupted_message_is_retried_with_a_note_for_the_agent(
    anthropic_api: AnthropicStandIn, vault: Path
) -> None:
    service = Service(vault, anthropic_api)
    message = InboxMessage(id="chat-1", text="move my notes", source="chat", timestamp="")
    service.inbox.put(dataclasses.replace(message, attempts=1))  # a run started, then died
    await service.start()
    await service.idle()
    await service.stop()
    sent = anthropic_api.requests[0].body["messages"][0]["content"][-1]["text"]
    assert sent == f"{RETRY_NOTE}\n\nmove my notes"
    assert service.inbox.pending() == []


async def test_stop_cancels_quietly_and_the_message_leaves_the_inbox(
    anthropic_api: AnthropicStandIn, vault: Path
) -> None:
    anthropic_api.script(text_reply("slow " * 100, chunk_size=2, delay=0.1))
    service = Service(vault, anthropic_api)
    await service.start()
    try:
        await service.chat("write me a long story", "chat-2")
        await asyncio.to_thread(anthropic_api.wait_for_requests, 1)
        await asyncio.sleep(0.2)
        cancelled_at = time.monotonic()
        assert service.pipeline.cancel_current()
        await service.idle(timeout=2)
        assert time.monotonic() - cancelled_at < 1.0
    finally:
        await service.stop()
    assert service.pipeline.outcomes[-1].status == "cancelled"
    assert service.of_type("error") == []
    assert service.of_type("cancelled")[0]["message_id"] == "chat-2"
    assert service.inbox.pending() == []


async def test_shutdown_cancels_after_the_grace_period_and_keeps_the_message(
    anthropic_api: AnthropicStandIn, vault: Path
) -> None:
    anthropic_api.script(text_reply("slow " * 100, chunk_size=2, delay=0.1))
    service = Service(vault, anthropic_api)
    await service.start()
    await service.chat("write me a long story", "chat-3")
    await asyncio.to_thread(anthropic_api.wait_for_requests, 1)
    await service.stop(grace=0.2)
    assert service.pipeline.outcomes[-1].status == "interrupted"
    assert [m.id for m in service.inbox.pending()] == ["chat-3"]


async def test_send_message_notifies_and_a_question_waits_across_a_restart(
    anthropic_api: AnthropicStandIn, hole: SmartHoleStandIn, vault: Path
) -> None:
    anthropic_api.script(
        tool_reply("send_message", {"message": "Groceries or hardware list?", "is_question": True}),
        text_reply("Waiting for your answer."),
    )
    service = Service(vault, anthropic_api, smarthole_url=hole.url)
    await service.start()
    try:
        message_id = await hole.route(CLIENT_NAME, "add screws to the list")
        question = await hole.wait_for_response(message_id, "notification", timeout=10)
        await service.idle()
    finally:
        await service.stop()
    assert question.payload["priority"] == "high"
    assert question.payload["body"] == "Groceries or hardware list?"
    assert service.of_type("agent_message")[0]["is_question"] is True

    restarted = Service(vault, anthropic_api)
    await restarted.start()
    await restarted.chat("hardware", "chat-4")
    await restarted.idle()
    await restarted.stop()
    system = system_text(anthropic_api.requests[-1].body)
    assert (
        'waiting for the user\'s answer to your question: "Groceries or hardware list?"' in system
    )


async def test_end_conversation_ends_it_and_a_non_streaming_call_summarises_it(
    anthropic_api: AnthropicStandIn, vault: Path
) -> None:
    anthropic_api.script(
        tool_reply("end_conversation", {"reason": "user said thanks"}),
        text_reply("You're welcome!"),
        text_reply(
            '{"title": "Thanks after the shopping list", "summary": "The user said thanks. Nothing else was needed."}'
        ),
    )
    service = Service(vault, anthropic_api)
    await service.start()
    await service.chat("thanks, that's all", "chat-5")
    await service.idle()
    for _ in range(100):
        conversations = service.store.list_conversations()
        if conversations and conversations[0].title:
            break
        await asyncio.sleep(0.05)
    await service.stop()
    (conversation,) = conversations
    assert conversation.ended_at is not None and conversation.end_reason == "explicit"
    assert conversation.title == "Thanks after the shopping list"
    summary_request = anthropic_api.requests[-1]
    assert not summary_request.body.get("stream") and "tools" not in summary_request.body


async def test_idle_timeout_starts_a_new_conversation(
    anthropic_api: AnthropicStandIn, vault: Path
) -> None:
    clock = Clock()
    service = Service(
        vault, anthropic_api, clock=clock, settings=Settings(conversation_idle_timeout_minutes=30)
    )
    await service.start()
    await service.chat("first", "chat-6")
    await service.idle()
    clock.now += timedelta(minutes=29)
    await service.chat("second", "chat-7")
    await service.idle()
    clock.now += timedelta(minutes=31)
    await service.chat("third", "chat-8")
    await service.idle()
    conversations = service.store.list_conversations()
    await service.stop()
    assert len(conversations) == 2
    ended = [c for c in conversations if c.ended_at is not None]
    assert len(ended) == 1 and ended[0].end_reason == "idle"


async def test_get_conversation_searches_and_lists_past_conversations(
    anthropic_api: AnthropicStandIn, vault: Path
) -> None:
    clock = Clock()
    service = Service(vault, anthropic_api, clock=clock)
    await service.start()
    anthropic_api.script(
        text_reply("Noted: kitchen tiles are terracotta."),
        text_reply(
            '{"title": "Kitchen tile decision", "summary": "The user chose terracotta tiles."}'
        ),
    )
    await service.chat("for the kitchen I decided on terracotta tiles", "chat-10")
    await service.idle()
    clock.now += timedelta(hours=2)  # the next message ends that conversation by idle timeout
    anthropic_api.script(
        tool_reply("get_conversation", {"query": "terracotta"}),
        tool_reply("get_conversation", {}),
        text_reply("You chose terracotta."),
    )
    await service.chat("what did I decide about the kitchen?", "chat-11")
    await service.idle()
    await service.stop()
    streamed = [r for r in anthropic_api.requests if r.body.get("stream")]
    found = streamed[-2].body["messages"][-1]["content"][0]
    assert found["type"] == "tool_result" and not found["is_error"]
    assert "terracotta" in found["content"].lower()
    listed = streamed[-1].body["messages"][-1]["content"][0]["content"]
    assert "Kitchen tile decision" in listed or "kitchen" in listed.lower()


async def test_send_message_in_a_chat_request_reaches_the_page_only(
    anthropic_api: AnthropicStandIn, hole: SmartHoleStandIn, vault: Path
) -> None:
    anthropic_api.script(
        tool_reply("send_message", {"message": "Working on it…"}), text_reply("Done.")
    )
    service = Service(vault, anthropic_api, smarthole_url=hole.url)
    await service.start()
    await service.chat("tidy my notes", "chat-12")
    await service.idle()
    await service.stop()
    assert service.of_type("agent_message")[0]["text"] == "Working on it…"
    assert hole.responses == []


async def test_an_answer_recorded_but_not_delivered_is_delivered_at_start_not_rerun(
    anthropic_api: AnthropicStandIn, hole: SmartHoleStandIn, vault: Path
) -> None:
    # What a crash between recording the answer and removing the inbox file leaves behind.
    first = Service(vault, anthropic_api)
    message = InboxMessage(id="msg-rec", text="add jam", source="smarthole", timestamp="")
    first.inbox.put(message)
    conversation, _ = first.store.begin_message(utc_now(), timedelta(minutes=30))
    first.store.add_exchange(
        conversation.id, "add jam", "Added jam.", source="smarthole", message_id="msg-rec",
        asked_at=utc_now(), answered_at=utc_now(),
    )  # fmt: skip
    first.store.close()

    service = Service(vault, anthropic_api, smarthole_url=hole.url)
    await service.start()
    try:
        told = await hole.wait_for_response("msg-rec", "notification", timeout=10)
        await service.idle()
    finally:
        await service.stop()
    assert told.payload["body"] == "Added jam."
    assert anthropic_api.requests == []
    assert service.inbox.pending() == []
    assert service.pipeline.outcomes[-1].status == "redelivered"
    assert [e["text"] for e in service.of_type("response")] == ["Added jam."]


def system_text(body: dict[str, object]) -> str:
    """The system prompt of a request, whether sent as a string or as text blocks."""
    system = body["system"]
    if isinstance(system, list):
        return "\n".join(str(block["text"]) for block in system)
    return str(system)


async def test_an_answer_keeps_its_usage_in_the_history(
    anthropic_api: AnthropicStandIn, vault: Path
) -> None:
    anthropic_api.script(text_reply("Hi."))
    service = Service(vault, anthropic_api)
    await service.start()
    await service.chat("hello", "chat-usage")
    await service.idle()
    answer = service.store.answer_for("chat-usage")
    await service.stop()
    assert answer is not None and answer.usage is not None
    assert answer.usage["model"] == service.settings.model
    assert answer.usage["input_tokens"] > 0 and answer.usage["output_tokens"] > 0


async def test_stop_while_a_message_is_being_set_up_cancels_it_without_a_request(
    anthropic_api: AnthropicStandIn, vault: Path
) -> None:
    # With git on, setting a message up includes a `git status` (milliseconds): Stop lands
    # there, after the message shows as processing and before its agent exists.
    service = Service(vault, anthropic_api, settings=Settings(enable_git_version_control=True))
    await service.start()
    async with service.bus.subscribe() as events:
        await service.chat("tidy up", "chat-stop")
        while (await events.get()).get("state") != "processing":
            pass
        assert service.pipeline.cancel_current()
    await service.idle()
    await service.stop()
    assert service.pipeline.outcomes[-1].status == "cancelled"
    assert [r for r in anthropic_api.requests if r.body.get("stream")] == []


async def test_the_user_s_edit_between_two_messages_is_never_overwritten_blindly(
    anthropic_api: AnthropicStandIn, vault: Path
) -> None:
    # One vault-access layer serves every message, so what the agent read in one message
    # still guards the note in the next.
    (vault / "Plan.md").write_text("- draft\n")
    anthropic_api.script(
        tool_reply("read_file", {"path": "Plan.md"}),
        text_reply("It says: draft."),
        tool_reply("write_file", {"path": "Plan.md", "content": "- final\n"}),
        text_reply("I could not overwrite it."),
    )
    service = Service(vault, anthropic_api)
    await service.start()
    await service.chat("what is in my plan?", "chat-p1")
    await service.idle()
    (vault / "Plan.md").write_text("- draft\n- the user's own line\n")  # typed in Obsidian
    await service.chat("replace the plan with final", "chat-p2")
    await service.idle()
    await service.stop()
    assert (vault / "Plan.md").read_text() == "- draft\n- the user's own line\n"
    write = [e for e in service.of_type("tool_finished") if e["tool"] == "write_file"]
    assert write[0]["is_error"] and "changed on disk since you last read it" in write[0]["summary"]


async def test_edits_made_outside_between_messages_are_seen_by_read_search_and_listing(
    anthropic_api: AnthropicStandIn, vault: Path
) -> None:
    (vault / "Kitchen.md").write_text("We chose oak cabinets.\n")
    first = [
        tool_reply("read_file", {"path": "Kitchen.md"}),
        tool_reply("search_files", {"pattern": "cabinets"}),
        tool_reply("list_files", {"pattern": "*.md"}),
        text_reply("Oak."),
    ]
    anthropic_api.script(*first, *first[:3], text_reply("Walnut now."))
    service = Service(vault, anthropic_api)
    await service.start()
    layer = service.pipeline.vault_access
    await service.chat("what cabinets?", "chat-o1")
    await service.idle()
    # The user, in Obsidian, a moment before the next message:
    (vault / "Kitchen.md").write_text("We chose walnut cabinets instead.\n")
    (vault / "Bathroom.md").write_text("Tiles: slate cabinets too.\n")
    await service.chat("and now?", "chat-o2")
    await service.idle()
    await service.stop()
    assert service.pipeline.vault_access is layer  # one layer served both messages
    results = [e["summary"] for e in service.of_type("tool_finished")]
    streamed = [r.body for r in anthropic_api.requests if r.body.get("stream")]
    tool_texts = [
        str(b["content"]) for body in streamed for m in body["messages"] if m["role"] == "user"
        for b in m["content"] if isinstance(b, dict) and b.get("type") == "tool_result"
    ]  # fmt: skip
    read2, search2, list2 = tool_texts[-3:]
    assert "walnut" in read2 and "oak" not in read2
    assert "Bathroom.md" in search2 and "walnut" in search2
    assert "Bathroom.md" in list2
    assert len(results) == 6
