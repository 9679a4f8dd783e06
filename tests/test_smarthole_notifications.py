"""Notifications that reach the user, judged by a stand-in running SmartHole's notification queue.

The stand-in shows, coalesces and drops notifications as the real router does (protocol.md),
with every duration scaled down; the product's real client talks to it over real sockets with
its own pacing scaled by the same factor. What counts is `hole.shown`: what the user saw.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect

from smarthole_notes.bus import EventBus
from smarthole_notes.conversations.store import ConversationStore
from smarthole_notes.inbox import InboxMessage
from smarthole_notes.llm.service import ToolCallRecord
from smarthole_notes.llm.state import ConversationState
from smarthole_notes.pipeline.delivery import touched_note
from smarthole_notes.smarthole import ConnectionStatus
from smarthole_notes.smarthole.notifications import (
    MAX_TITLE_CHARS,
    NotificationLimits,
    NotificationOutcome,
    notification_title,
)
from smarthole_notes.tools.conversation import TurnContext, conversation_tools
from tests.smarthole_fixtures import NAME, Harness, connected_client
from tests.standins.smarthole_server import (
    MAX_PER_WINDOW,
    ShownNotification,
    SmartHoleStandIn,
)

SENT = NotificationOutcome.SENT
QUEUED = NotificationOutcome.QUEUED
MERGED = NotificationOutcome.MERGED
NOT_CONNECTED = NotificationOutcome.NOT_CONNECTED

SCALE = 0.1  # one SmartHole second is 0.1 s here; its minute is 6 s
EPSILON = 0.005  # timer resolution


@pytest.fixture
async def hole() -> AsyncIterator[SmartHoleStandIn]:
    async with SmartHoleStandIn(deadline=60.0, notification_time_scale=SCALE) as hole:
        yield hole


def limits(scale: float = SCALE, **changes: float) -> NotificationLimits:
    scaled = NotificationLimits().scaled(scale)
    return NotificationLimits(**{**scaled.__dict__, **changes})


def assert_paced(shown: list[ShownNotification], scale: float = SCALE) -> None:
    """SmartHole's own limits hold for what it showed (the stand-in must be a fair judge)."""
    times = [n.at for n in shown]
    assert all(b - a >= 1.0 * scale - EPSILON for a, b in itertools.pairwise(times))
    for i in range(len(times) - MAX_PER_WINDOW):
        assert times[i + MAX_PER_WINDOW] - times[i] >= 60.0 * scale - EPSILON


# --------------------------------------------------------------------------- titles


def test_titles_name_the_request_and_the_kind() -> None:
    text = "add eggs to my shopping list please, and milk"
    answer = notification_title("answer", text, changed=True)
    assert answer.startswith("“add eggs to my shopping") and answer.endswith("” – done")
    assert notification_title("answer", text).endswith(" – answered")
    assert notification_title("failure", text).endswith(" – not done")
    assert notification_title("progress", text).endswith(" – update")
    assert notification_title("question", text).endswith(" – question")
    kinds = {notification_title(k, text) for k in ("answer", "failure", "progress", "question")}
    assert len(kinds) == 4
    assert notification_title("answer", "add eggs", note="Lists/Shopping.md", changed=True) == (
        "Shopping: “add eggs” – done"
    )
    other = notification_title("answer", "what is on my reading list?")
    assert other != answer and "reading list" in other


@pytest.mark.parametrize(
    "text",
    [
        "x" * 500,
        "word " * 200,
        "   \n\t  ",
        "",
        "<b>bold</b> request\nwith   lines",
        "🎵" * 100,
        "a-very-long-unbroken-token-" * 10,
    ],
)
def test_titles_stay_short_and_clean(text: str) -> None:
    for kind in ("answer", "failure", "progress", "question"):
        title = notification_title(kind, text, note="Some/Very long folder/A long note name.md")
        assert 0 < len(title) <= MAX_TITLE_CHARS
        assert "<" not in title and "\n" not in title and "  " not in title


def test_touched_note_is_the_one_note_changed() -> None:
    def call(name: str, is_error: bool = False, **tool_input: Any) -> ToolCallRecord:
        return ToolCallRecord(name, tool_input, is_error, "")

    assert touched_note([call("write_file", path="Lists/Shopping.md")]) == "Lists/Shopping.md"
    assert touched_note([call("read_file", path="A.md"), call("edit_file", path="B.md")]) == "B.md"
    assert touched_note([call("move_file", source="A.md", destination="Old/A.md")]) == "Old/A.md"
    assert touched_note([call("edit_file", path="A.md"), call("edit_file", path="B.md")]) is None
    assert touched_note([call("edit_file", True, path="A.md")]) is None
    assert touched_note([call("edit_file", path="A.md"), call("edit_file", path="/A.md")]) == "A.md"
    assert touched_note([]) is None


# --------------------------------------------------------------------------- the stand-in's queue


async def bot(hole: SmartHoleStandIn) -> tuple[ClientConnection, str]:
    """A bare registered client and a message id routed to it."""
    ws = await connect(hole.url)
    await ws.send(
        json.dumps({"type": "registration", "payload": {"name": "Bot", "description": "x"}})
    )
    assert json.loads(await ws.recv())["payload"]["success"] is True
    message_id = await hole.route("Bot", "hello")
    await ws.recv()
    return ws, message_id


def note(message_id: str, title: str, body: str, priority: str = "normal") -> str:
    payload = {"title": title, "body": body, "priority": priority}
    return json.dumps(
        {
            "type": "response",
            "payload": {"messageId": message_id, "type": "notification", "payload": payload},
        }
    )


def seen(shown: list[ShownNotification]) -> list[tuple[str, str]]:
    return [(n.title, n.body) for n in shown]


async def test_standin_reproduces_the_bug_four_answers_titled_alike_show_one(
    hole: SmartHoleStandIn,
) -> None:
    """Before: every answer was titled "Notes updated"; of four a few seconds apart, one shows."""
    ws, message_id = await bot(hole)
    async with ws:
        for i in range(4):
            await ws.send(note(message_id, "Notes updated", f"answer {i}"))
            await asyncio.sleep(2 * SCALE)  # "a few seconds" is inside the 5 s window
        await hole.wait_until(lambda: len(hole.lost) == 3)
    assert seen(hole.shown) == [("Notes updated", "answer 0")]
    assert [n.why for n in hole.lost] == ["coalesced"] * 3


async def test_standin_merges_a_repeated_title_into_the_queued_one(hole: SmartHoleStandIn) -> None:
    ws, message_id = await bot(hole)
    async with ws:
        await ws.send(note(message_id, "First", "shown at once", "high"))
        await ws.send(note(message_id, "Same", "one"))  # waits: less than 1 s after First
        await ws.send(note(message_id, "Same", "two"))
        await ws.send(note(message_id, "Same", "three"))
        await hole.wait_until(lambda: len(hole.shown) == 2)
    assert seen(hole.shown) == [("First", "shown at once"), ("Same", "three (3 occurrences)")]
    assert [(n.body, n.why) for n in hole.lost] == [
        ("one", "replaced"),
        ("two (2 occurrences)", "replaced"),
    ]


async def test_standin_coalescing_window_slides_and_then_ends(hole: SmartHoleStandIn) -> None:
    ws, message_id = await bot(hole)
    async with ws:
        await ws.send(note(message_id, "T", "a", "high"))
        for body in ("b", "c"):  # each within 5 s of the last one: the window slides
            await asyncio.sleep(3.5 * SCALE)
            await ws.send(note(message_id, "T", body, "high"))
        await asyncio.sleep(6 * SCALE)
        await ws.send(note(message_id, "T", "d", "high"))
        await hole.wait_until(lambda: len(hole.shown) == 2)
    assert seen(hole.shown) == [("T", "a"), ("T", "d")]
    assert [n.body for n in hole.lost] == ["b", "c"]


async def test_standin_rate_limits_and_puts_high_first() -> None:
    async with SmartHoleStandIn(notification_time_scale=0.05) as hole:
        ws, message_id = await bot(hole)
        async with ws:
            for i in range(12):
                await ws.send(note(message_id, f"n{i}", "x"))
            await ws.send(note(message_id, "urgent", "x", "high"))
            await hole.wait_until(lambda: len(hole.shown) == 13, timeout=10)
        titles = [n.title for n in hole.shown]
        assert titles.index("urgent") <= 1  # shown at once, ahead of every normal waiting
        assert [t for t in titles if t != "urgent"] == [f"n{i}" for i in range(12)]
        assert_paced(hole.shown, 0.05)
        assert hole.shown[10].at - hole.shown[0].at >= 60 * 0.05 - EPSILON
        assert hole.lost == []


async def test_standin_keeps_twenty_and_drops_low_then_normal_never_high() -> None:
    async with SmartHoleStandIn(notification_time_scale=1.0) as hole:  # nothing shows meanwhile
        ws, message_id = await bot(hole)
        async with ws:
            await ws.send(note(message_id, "H0", "x", "high"))
            frames = [note(message_id, f"L{i}", "x", "low") for i in range(1, 4)]
            frames += [note(message_id, f"N{i}", "x") for i in range(1, 16)]
            frames += [note(message_id, f"H{i}", "x", "high") for i in range(1, 5)]
            frames += [note(message_id, "N16", "x"), note(message_id, "N17", "x")]
            frames += [note(message_id, f"H{i}", "x", "high") for i in range(5, 10)]
            for frame in frames:
                await ws.send(frame)
            await hole.wait_until(lambda: len(hole.responses) == 1 + len(frames))
        assert [n.title for n in hole.shown] == ["H0"]
        overflow = [n.title for n in hole.lost if n.why == "overflow"]
        assert overflow == ["L3", "L2", "L1", "N17", "N16", "N15", "N14", "N13", "N12"]
        waiting = [title for title, _, _ in hole.notifications.waiting]
        assert len(waiting) == 20
        assert waiting[:9] == [f"H{i}" for i in range(1, 10)]  # high first, none dropped


# --------------------------------------------------------------------------- the real client


async def answers(
    harness: Harness, hole: SmartHoleStandIn, requests: list[str], spacing: float
) -> list[tuple[str, NotificationOutcome, str]]:
    """Route each request, then answer it as the pipeline does; (id, outcome, title) each."""
    results = []
    for text in requests:
        message_id = await hole.route(NAME, text)
        await harness.next_message()
        title = notification_title("answer", text, changed=True)
        result = await harness.client.send_notification(
            message_id, title, f"Answer to {text}", kind="answer"
        )
        results.append((message_id, result.outcome, result.title))
        await asyncio.sleep(spacing)
    return results


async def test_four_answers_a_few_seconds_apart_all_reach_the_user(hole: SmartHoleStandIn) -> None:
    requests = ["add eggs", "add milk", "add eggs", "what is on my list?"]  # two read alike
    async with connected_client(hole.url, notification_limits=limits()) as harness:
        results = await answers(harness, hole, requests, spacing=2 * SCALE)
        await hole.wait_until(lambda: len(hole.shown) == 4, timeout=5)
    assert [n.body for n in hole.shown] == [f"Answer to {t}" for t in requests]
    titles = [n.title for n in hole.shown]
    assert len(set(titles)) == 4
    assert titles[2] == "“add eggs” – done (2)"  # the same words, told apart
    assert all(n.priority == "high" for n in hole.shown)
    assert [outcome for _, outcome, _ in results] == [SENT] * 4
    assert [n.message_id for n in hole.shown] == [i for i, _, _ in results]
    assert hole.lost == []


async def test_twelve_answers_in_a_minute_all_reach_the_user(hole: SmartHoleStandIn) -> None:
    requests = [f"add item number {i} to the list" for i in range(12)]
    async with connected_client(hole.url, notification_limits=limits()) as harness:
        results = await answers(harness, hole, requests, spacing=4 * SCALE)  # 12 in 48 s
        await hole.wait_until(lambda: len(hole.shown) == 12, timeout=15)
    assert sorted(n.body for n in hole.shown) == sorted(f"Answer to {t}" for t in requests)
    assert hole.lost == []
    assert_paced(hole.shown)
    outcomes = [outcome for _, outcome, _ in results]
    assert outcomes[:10] == [SENT] * 10
    assert QUEUED in outcomes[10:]  # the 11th waits for the minute to roll on
    assert harness.client.notifications_waiting == 0


async def test_a_burst_of_answers_at_once_is_paced_and_all_shown() -> None:
    requests = [f"request {i}" for i in range(25)]  # more than SmartHole's queue holds
    async with (
        SmartHoleStandIn(deadline=60.0, notification_time_scale=0.05) as hole,
        connected_client(hole.url, notification_limits=limits(0.05)) as harness,
    ):
        results = await answers(harness, hole, requests, spacing=0)
        assert results[0][1] is SENT and {o for _, o, _ in results[1:]} == {QUEUED}
        await hole.wait_until(lambda: len(hole.shown) == 25, timeout=20)
    assert sorted(n.body for n in hole.shown) == sorted(f"Answer to {t}" for t in requests)
    assert hole.lost == []
    assert_paced(hole.shown, 0.05)
    assert hole.notifications.waiting == []


async def test_progress_then_answer_the_answer_is_shown(hole: SmartHoleStandIn) -> None:
    text = "reorganise my project notes"
    async with connected_client(hole.url, notification_limits=limits()) as harness:
        client = harness.client
        message_id = await hole.route(NAME, text)
        await harness.next_message()
        progress = notification_title("progress", text)
        outcomes = []
        for step in ("Reading 12 notes…", "Moving 3 notes…", "Fixing links…"):
            result = await client.send_notification(message_id, progress, step, kind="progress")
            outcomes.append(result.outcome)
        final = await client.send_notification(
            message_id,
            notification_title("answer", text, changed=True),
            "Done: 3 moved.",
            kind="answer",
        )
        await hole.wait_until(lambda: len(hole.shown) == 2, timeout=5)
        await asyncio.sleep(3 * SCALE)
    assert outcomes == [SENT, QUEUED, MERGED]
    assert final.outcome is QUEUED
    first, answer = hole.shown
    assert (first.title, first.body) == (progress, "Reading 12 notes…")
    assert answer.title == "“reorganise my project notes” – done"
    assert answer.body == "Done: 3 moved.\n\nEarlier: Moving 3 notes…\nFixing links…"
    assert answer.priority == "high"
    assert hole.lost == [] and len(hole.shown) == 2


async def test_spaced_progress_updates_each_show_and_the_answer_too(hole: SmartHoleStandIn) -> None:
    text = "tidy the inbox folder"
    async with connected_client(hole.url, notification_limits=limits()) as harness:
        client = harness.client
        message_id = await hole.route(NAME, text)
        await harness.next_message()
        for step in range(4):
            result = await client.send_notification(
                message_id, notification_title("progress", text), f"step {step}", kind="progress"
            )
            assert result.outcome is SENT
            await asyncio.sleep(1.5 * SCALE)
        await client.send_notification(
            message_id, notification_title("answer", text, changed=True), "All tidy.", kind="answer"
        )
        await hole.wait_until(lambda: len(hole.shown) == 5, timeout=5)
    assert [n.body for n in hole.shown] == [f"step {i}" for i in range(4)] + ["All tidy."]
    assert len({n.title for n in hole.shown}) == 5  # no two alike within seconds
    assert hole.lost == []


async def test_while_smarthole_is_away_finals_wait_and_progress_is_not_kept(
    hole: SmartHoleStandIn,
) -> None:
    async with connected_client(hole.url, notification_limits=limits()) as harness:
        client = harness.client
        message_id = await hole.route(NAME, "add eggs")
        await harness.next_message()
        await hole.stop()
        await harness.wait_for_status(ConnectionStatus.DISCONNECTED)
        progress = await client.send_notification(message_id, "p", "working", kind="progress")
        assert progress.outcome is NOT_CONNECTED and not progress.will_reach_smarthole
        final = await client.send_notification(
            message_id, "“add eggs” – done", "Added.", kind="answer"
        )
        assert final.outcome is QUEUED and "not connected" in final.detail
        assert client.pending_for(message_id) == ["“add eggs” – done"]
        await hole.start()
        await hole.wait_until(lambda: hole.shown, timeout=5)
    assert seen(hole.shown) == [("“add eggs” – done", "Added.")]
    assert client.pending_for(message_id) == []


async def test_a_final_held_longer_than_the_hold_time_is_dropped_and_logged(
    hole: SmartHoleStandIn, caplog: pytest.LogCaptureFixture
) -> None:
    async with connected_client(hole.url, notification_limits=limits(hold=0.3)) as harness:
        message_id = await hole.route(NAME, "add eggs")
        await harness.next_message()
        await hole.stop()
        await harness.wait_for_status(ConnectionStatus.DISCONNECTED)
        result = await harness.client.send_notification(message_id, "t", "b", kind="failure")
        assert result.outcome is QUEUED
        await asyncio.sleep(0.6)
        assert harness.client.notifications_waiting == 0
        await hole.start()
        await harness.wait_for_status(ConnectionStatus.CONNECTED)
        await asyncio.sleep(0.2)
    assert hole.shown == []
    assert "not sent: SmartHole was not connected in time" in caplog.text


async def test_stop_sends_waiting_finals_at_once_for_smarthole_to_pace(
    hole: SmartHoleStandIn,
) -> None:
    async with connected_client(hole.url) as harness:  # real pacing: 1.1 s apart
        results = await answers(harness, hole, ["one", "two", "three"], spacing=0)
        assert [o for _, o, _ in results] == [SENT, QUEUED, QUEUED]
        await harness.client.stop()
        assert harness.client.notifications_waiting == 0
        await hole.wait_until(lambda: len(hole.shown) == 3, timeout=5)
    assert [n.body for n in hole.shown] == ["Answer to one", "Answer to two", "Answer to three"]
    assert_paced(hole.shown)


async def test_send_notification_returns_at_once_even_when_queued(hole: SmartHoleStandIn) -> None:
    async with connected_client(hole.url) as harness:  # real pacing
        loop = asyncio.get_running_loop()
        started = loop.time()
        results = await answers(harness, hole, [f"r{i}" for i in range(5)], spacing=0)
        assert loop.time() - started < 1.0  # five notifications, 4.4 s of pacing: not waited
        assert [o for _, o, _ in results] == [SENT] + [QUEUED] * 4


# --------------------------------------------------------------------------- send_message


async def test_send_message_tells_the_agent_what_happened(
    hole: SmartHoleStandIn, tmp_path: Path
) -> None:
    store = ConversationStore(tmp_path / "history.sqlite")
    async with connected_client(hole.url, notification_limits=limits()) as harness:
        message_id = await hole.route(NAME, "reorganise my notes")
        await harness.next_message()
        turn = TurnContext(
            InboxMessage(message_id, "reorganise my notes", "smarthole", ""),
            "conversation-1",
            ConversationState(),
        )
        tools = conversation_tools(turn, bus=EventBus(), store=store, notifier=harness.client)
        send = next(t for t in tools if t.name == "send_message").execute

        async def say(text: str, **extra: Any) -> str:
            return str(await send({"message": text, **extra}))

        sent = await say("Reading your notes…")
        queued = await say("Moving three notes…")
        merged = await say("Fixing links…")
        assert "shown in the chat page" in sent
        assert "also sent to the user as a SmartHole notification" in sent
        assert "queued to be sent as a SmartHole notification" in queued
        assert "merged with your previous update" in merged
        await hole.wait_until(lambda: len(hole.shown) == 2, timeout=5)
        assert hole.shown[1].body == "Moving three notes…\nFixing links…"
        await hole.stop()
        away = await say("Almost done…")
        assert "SmartHole is not connected" in away and "chat page" in away
        question = await say("Keep the old folder?", is_question=True)
        assert "queued" in question and "not connected" in question
        assert "end your turn now" in question
    chat_turn = TurnContext(InboxMessage("chat-1", "hi", "chat", ""), "c", ConversationState())
    chat_tools = conversation_tools(chat_turn, bus=EventBus(), store=store, notifier=None)
    chat_send = next(t for t in chat_tools if t.name == "send_message").execute
    assert str(await chat_send({"message": "Working…"})) == "Message shown in the chat page."
    store.close()
