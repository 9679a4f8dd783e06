"""Retrospection after a conversation ends: on both kinds of ending, inert when off, and
silent when it fails."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from smarthole_notes.bus import EventBus
from smarthole_notes.conversations.store import Conversation, ConversationStore, default_path
from smarthole_notes.llm.anthropic_provider import AnthropicProvider
from smarthole_notes.llm.limits import ModelLimits
from smarthole_notes.llm.retry import RetryPolicy
from smarthole_notes.retrospection import (
    FILE_HEADER,
    RETROSPECTION_FILE,
    format_section,
    prepend_section,
    retrospect_ended_conversation,
)
from smarthole_notes.settings import Settings
from tests.llm_helpers import client
from tests.standins.anthropic_api import AnthropicStandIn, status_reply, text_reply

T0 = datetime(2026, 2, 5, 14, 0, tzinfo=UTC)
IDLE = timedelta(minutes=30)
ON = Settings(
    enable_conversation_retrospection=True,
    model="claude-sonnet-4-6",
    retrospection_prompt="Say what the system prompt lacked.",
)


@pytest.fixture
def vault(tmp_path: Path) -> Path:
    (tmp_path / "vault" / ".smarthole").mkdir(parents=True)
    return tmp_path / "vault"


@pytest.fixture
def store(vault: Path) -> Iterator[ConversationStore]:
    with ConversationStore(default_path(vault)) as opened:
        yield opened


def exchange(store: ConversationStore, at: datetime, text: str, message_id: str) -> Conversation:
    active, _ = store.begin_message(at, IDLE)
    store.add_message(
        active.id, "user", text, source="chat", input_method="typed", message_id=message_id, at=at
    )
    store.add_message(
        active.id,
        "assistant",
        "Done.",
        source="system",
        tools_used=[
            {
                "name": "edit_file",
                "input": "path=Lists/Shopping.md",
                "is_error": False,
                "summary": "ok",
            }
        ],
        at=at + timedelta(seconds=5),
    )
    return active


async def test_an_explicit_ending_writes_a_dated_section_and_publishes_it(
    vault: Path, store: ConversationStore, anthropic_api: AnthropicStandIn
) -> None:
    conversation = exchange(store, T0, "add eggs to my shopping list", "m-1")
    ended = store.end_conversation(conversation.id, "explicit", T0 + timedelta(minutes=1))
    store.set_summary(conversation.id, "Adding eggs to the shopping list", "Eggs were added.")
    anthropic_api.script(text_reply("# Instructions\n- Say where shopping lists live."))
    bus = EventBus()

    async with bus.subscribe() as events:
        result = await retrospect_ended_conversation(
            settings=ON,
            llm=client(anthropic_api),
            store=store,
            conversation=ended,
            vault=vault,
            now=T0 + timedelta(minutes=2),
            tz=UTC,
            bus=bus,
        )
        event = events.get_nowait()

    assert result is not None
    written = (vault / RETROSPECTION_FILE).read_text(encoding="utf-8")
    assert written.startswith(FILE_HEADER)
    assert "## 2026-02-05 14:02 — Adding eggs to the shopping list\n\n### Instructions\n" in written
    assert event["type"] == "retrospection"
    assert event["title"] == "Adding eggs to the shopping list"
    assert event["conversation_id"] == conversation.id
    assert "Say where shopping lists live." in event["text"]
    (kept,) = [m for m in store.messages(conversation.id) if m.kind == "retrospection"]
    assert kept.role == "system" and kept.content == event["text"]  # survives a reload
    body = anthropic_api.requests[0].body
    assert body["model"] == "claude-sonnet-4-6"
    assert not body.get("stream") and "tools" not in body
    assert body["system"].endswith("Say what the system prompt lacked.")
    transcript = body["messages"][0]["content"][0]["text"]
    assert "add eggs to my shopping list" in transcript and "edit_file" in transcript


async def test_an_idle_ending_is_prepended_above_earlier_sections(
    vault: Path, store: ConversationStore, anthropic_api: AnthropicStandIn
) -> None:
    prepend_section(vault / RETROSPECTION_FILE, format_section("Older talk", "- old point", T0))
    exchange(store, T0, "what did I write on Monday?", "m-1")
    _, ended = store.begin_message(T0 + timedelta(hours=2), IDLE)
    assert ended is not None and ended.end_reason == "idle"
    anthropic_api.script(text_reply("- Know the journal's naming."))

    result = await retrospect_ended_conversation(
        settings=ON,
        llm=client(anthropic_api),
        store=store,
        conversation=ended,
        vault=vault,
        now=T0 + timedelta(hours=2),
        tz=UTC,
    )

    assert result is not None and result.title == "Untitled conversation"
    written = (vault / RETROSPECTION_FILE).read_text(encoding="utf-8")
    newer = written.index("## 2026-02-05 16:00 — Untitled conversation")
    older = written.index("## 2026-02-05 14:00 — Older talk")
    assert written.startswith(FILE_HEADER) and newer < older
    assert written.count(FILE_HEADER) == 1


async def test_nothing_runs_when_the_setting_is_off(
    vault: Path, store: ConversationStore, anthropic_api: AnthropicStandIn
) -> None:
    conversation = exchange(store, T0, "hello", "m-1")
    ended = store.end_conversation(conversation.id, "explicit", T0)
    bus = EventBus()

    async with bus.subscribe() as events:
        result = await retrospect_ended_conversation(
            settings=Settings(),
            llm=client(anthropic_api),
            store=store,
            conversation=ended,
            vault=vault,
            now=T0,
            tz=UTC,
            bus=bus,
        )
        assert events.empty()

    assert result is None
    assert anthropic_api.requests == []
    assert not (vault / RETROSPECTION_FILE).exists()


async def test_a_failing_call_is_only_logged(
    vault: Path,
    store: ConversationStore,
    anthropic_api: AnthropicStandIn,
    caplog: pytest.LogCaptureFixture,
) -> None:
    conversation = exchange(store, T0, "hello", "m-1")
    ended = store.end_conversation(conversation.id, "explicit", T0)
    anthropic_api.script(status_reply(500), status_reply(500), status_reply(500))
    provider = AnthropicProvider(
        client(anthropic_api),
        "claude-haiku-4-5",
        streaming=False,
        retry=RetryPolicy(delays=(0.01, 0.02)),
        limits=ModelLimits(),
    )
    existing = FILE_HEADER + "\n## 2026-02-01 09:00 — Kept\n\n- keep me\n"
    (vault / RETROSPECTION_FILE).write_text(existing, encoding="utf-8")
    bus = EventBus()

    with caplog.at_level(logging.WARNING):
        async with bus.subscribe() as events:
            result = await retrospect_ended_conversation(
                settings=ON,
                llm=provider,
                store=store,
                conversation=ended,
                vault=vault,
                now=T0,
                tz=UTC,
                bus=bus,
            )
            assert events.empty()

    assert result is None
    assert "Retrospection of conversation" in caplog.text
    assert (vault / RETROSPECTION_FILE).read_text(encoding="utf-8") == existing


async def test_an_empty_reply_writes_nothing(
    vault: Path, store: ConversationStore, anthropic_api: AnthropicStandIn
) -> None:
    conversation = exchange(store, T0, "hello", "m-1")
    ended = store.end_conversation(conversation.id, "explicit", T0)
    anthropic_api.script(text_reply("   "))

    result = await retrospect_ended_conversation(
        settings=ON,
        llm=client(anthropic_api),
        store=store,
        conversation=ended,
        vault=vault,
        now=T0,
        tz=UTC,
    )

    assert result is None and not (vault / RETROSPECTION_FILE).exists()


async def test_concurrent_retrospections_keep_every_section(vault: Path) -> None:
    path = vault / RETROSPECTION_FILE
    sections = [format_section(f"Talk {i}", f"- point {i}", T0) for i in range(8)]

    await asyncio.gather(*(asyncio.to_thread(prepend_section, path, s) for s in sections))

    written = path.read_text(encoding="utf-8")
    assert all(f"Talk {i}" in written for i in range(8))


def test_a_file_the_user_started_is_kept_below_new_sections(vault: Path) -> None:
    path = vault / RETROSPECTION_FILE
    path.write_text("My own notes about the assistant.\n", encoding="utf-8")

    prepend_section(path, format_section("New", "- a point", T0))

    written = path.read_text(encoding="utf-8")
    assert written.startswith("## 2026-02-05 14:00 — New")
    assert written.endswith("My own notes about the assistant.\n")
