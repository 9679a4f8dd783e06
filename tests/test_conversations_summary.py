"""The title and summary micro-agent, through the real provider against the Anthropic stand-in."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from smarthole_notes.conversations.store import (
    ConversationStore,
    StoredMessage,
    ToolUse,
    default_path,
)
from smarthole_notes.conversations.summary import (
    SUMMARY_MAX_TOKENS,
    TRANSCRIPT_MAX_CHARS,
    SummaryError,
    parse_summary,
    summarise,
    summarise_conversation,
    transcript_for_summary,
)
from tests.llm_helpers import provider
from tests.standins.anthropic_api import AnthropicStandIn, status_reply, text_reply

T0 = datetime(2026, 2, 5, 19, 30, tzinfo=UTC)
IDLE = timedelta(minutes=30)
GOOD = json.dumps(
    {
        "title": "Eggs added to the shopping list",
        "summary": "The user asked to add eggs to the shopping list. Eggs were added to "
        "Lists/Shopping.md.",
    }
)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[ConversationStore]:
    with ConversationStore(default_path(tmp_path)) as s:
        yield s


def ended(store: ConversationStore) -> str:
    """A conversation about eggs, ended by the idle timeout; its id."""
    conversation, _ = store.begin_message(T0, IDLE)
    store.add_exchange(
        conversation.id, "Add eggs to my shopping list", "Added eggs to Lists/Shopping.md.",
        source="smarthole", input_method="voice",
        tools_used=(ToolUse("edit_file", 'path="Lists/Shopping.md"', False, "Inserted 1 line"),),
        asked_at=T0, answered_at=T0 + timedelta(seconds=4),
    )  # fmt: skip
    _, just_ended = store.begin_message(T0 + timedelta(hours=1), IDLE)
    assert just_ended is not None and just_ended.id == conversation.id
    return conversation.id


async def test_summary_is_one_non_streaming_tool_less_small_call(
    anthropic_api: AnthropicStandIn, store: ConversationStore
) -> None:
    conversation_id = ended(store)
    anthropic_api.script(text_reply(GOOD))

    title, summary = await summarise(
        provider(anthropic_api, streaming=False), store.messages(conversation_id)
    )

    assert title == "Eggs added to the shopping list"
    assert summary.startswith("The user asked to add eggs")
    (request,) = anthropic_api.requests
    body = request.body
    assert body.get("stream") is not True and not request.stream
    assert "tools" not in body and "tool_choice" not in body
    assert body["max_tokens"] == SUMMARY_MAX_TOKENS
    assert '{"title": "...", "summary": "..."}' in body["system"]
    (message,) = body["messages"]
    sent = message["content"][0]["text"]
    assert sent.startswith("<conversation>\n") and sent.endswith("\n</conversation>")
    assert "User (voice): Add eggs to my shopping list" in sent
    assert 'Tools used: edit_file(path="Lists/Shopping.md")' in sent


async def test_summarise_conversation_stores_title_and_summary(
    anthropic_api: AnthropicStandIn, store: ConversationStore
) -> None:
    conversation_id = ended(store)
    anthropic_api.script(text_reply(f"Here you go:\n```json\n{GOOD}\n```"))
    result = await summarise_conversation(
        store, provider(anthropic_api, streaming=False), conversation_id
    )
    assert result is not None and result.title == "Eggs added to the shopping list"
    stored = store.get(conversation_id)
    assert stored is not None and stored.title == result.title and stored.summary
    assert [h.conversation.id for h in store.search("Eggs added")] == [conversation_id]


@pytest.mark.parametrize(
    "reply",
    [
        status_reply(529),  # overloaded on every attempt: the provider's retries run out
        text_reply("Eggs added to the shopping list. The user added eggs."),
        text_reply('{"title": "Eggs"}'),
    ],
    ids=["api-failure", "not-json", "missing-summary"],
)
async def test_failed_summary_leaves_the_conversation_ended_and_untitled(
    anthropic_api: AnthropicStandIn,
    store: ConversationStore,
    reply: object,
    caplog: pytest.LogCaptureFixture,
) -> None:
    conversation_id = ended(store)
    anthropic_api.default_reply = reply  # type: ignore[assignment]
    with caplog.at_level(logging.WARNING):
        result = await summarise_conversation(
            store, provider(anthropic_api, streaming=False), conversation_id
        )
    assert result is None
    conversation = store.get(conversation_id)
    assert conversation is not None
    assert (conversation.end_reason, conversation.title, conversation.summary) == (
        "idle",
        None,
        None,
    )
    assert len(store.messages(conversation_id)) == 2
    assert "Could not summarise conversation" in caplog.text


async def test_streaming_provider_and_empty_conversation_are_refused(
    anthropic_api: AnthropicStandIn,
) -> None:
    message = StoredMessage(1, "c", "user", "hi", "chat", "typed", None, (), T0, None, None)
    with pytest.raises(ValueError, match="non-streaming"):
        await summarise(provider(anthropic_api, streaming=True), [message])
    with pytest.raises(SummaryError, match="nothing to summarise"):
        await summarise(provider(anthropic_api, streaming=False), [])
    assert anthropic_api.requests == []


# ---------------------------------------------------------------- parsing


def test_parse_tidies_title_and_summary() -> None:
    reply = '{"title": "  \\"Weekend  shopping list.\\" ", "summary": "Line one.\\n Line two."}'
    assert parse_summary(reply) == ("Weekend shopping list", "Line one. Line two.")


def test_parse_accepts_json_inside_a_code_fence() -> None:
    assert parse_summary(f"```json\n{GOOD}\n```")[0] == "Eggs added to the shopping list"


@pytest.mark.parametrize(
    ("reply", "why"),
    [
        ("", "no JSON object"),
        ("Title: Eggs", "no JSON object"),
        ('{"title": "Eggs", "summary": }', "not valid JSON"),
        ('["title", "summary"]', "no JSON object"),
        ('{"title": 3, "summary": "x"}', "string 'title' and 'summary'"),
        ('{"title": "Eggs"}', "string 'title' and 'summary'"),
        ('{"title": "  ", "summary": "x"}', "empty title or summary"),
    ],
)
def test_malformed_replies_raise_a_clear_error(reply: str, why: str) -> None:
    with pytest.raises(SummaryError, match=why):
        parse_summary(reply)


def test_overlong_fields_are_cut() -> None:
    title, summary = parse_summary(json.dumps({"title": "word " * 100, "summary": "s" * 5000}))
    assert len(title) <= 120 and title.endswith("…")
    assert len(summary) <= 1200


def test_transcript_of_a_huge_conversation_keeps_the_start_and_the_end() -> None:
    messages = [
        StoredMessage(
            i,
            "c",
            "user" if i % 2 else "assistant",
            f"message {i} " + "x" * 3000,
            "chat",
            None,
            None,
            (),
            T0,
            None,
            None,
        )
        for i in range(1, 101)
    ]
    text = transcript_for_summary(messages)
    assert len(text) <= TRANSCRIPT_MAX_CHARS
    assert text.startswith("User (chat): message 1 ")
    assert "messages omitted" in text
    assert "message 100 " in text
