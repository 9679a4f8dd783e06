"""The intake: messages taken in before the pipeline has loaded are kept, then run in order.

`serve` acks SmartHole messages before its pipeline exists (tests/test_startup.py shows it
in a real process); here the hand-over itself, with a real inbox, store and pipeline
talking to the Anthropic stand-in.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

from smarthole_notes.inbox import InboxMessage
from smarthole_notes.intake import Intake
from smarthole_notes.settings import Settings
from tests.pipeline_harness import Service
from tests.standins.anthropic_api import AnthropicStandIn, text_reply


def message(message_id: str, text: str) -> InboxMessage:
    return InboxMessage(id=message_id, text=text, source="smarthole", timestamp="")


def asked(api: AnthropicStandIn) -> list[str]:
    """The user text each request ended with, in order."""
    return [r.body["messages"][-1]["content"][-1]["text"] for r in api.requests]


async def test_held_messages_run_in_arrival_order_at_their_arrival_time(
    anthropic_api: AnthropicStandIn, vault: Path
) -> None:
    anthropic_api.script(text_reply("One."), text_reply("Two."), text_reply("Three."))
    service = Service(vault, anthropic_api)
    intake = Intake(service.inbox)
    assert await intake.submit(message("m1", "first"))
    assert await intake.submit(message("m2", "second"))
    assert intake.held == 2
    assert service.inbox.get("m1") is not None and service.inbox.get("m2") is not None
    assert anthropic_api.requests == []  # kept, not run: there is no pipeline yet
    await asyncio.sleep(0.05)
    handed_over = datetime.now(UTC)

    # A message arriving during the hand-over goes after the held ones.
    hand_over = asyncio.create_task(intake.open_to(service.pipeline))  # starts it
    late = asyncio.create_task(intake.submit(message("m3", "third")))
    await asyncio.gather(hand_over, late)
    assert intake.held == 0
    try:
        await service.idle()
        first, second = (service.store.user_message(m) for m in ("m1", "m2"))
    finally:
        await service.stop()

    assert asked(anthropic_api) == ["first", "second", "third"]
    assert first is not None and second is not None
    assert first.created_at <= second.created_at < handed_over
    assert service.inbox.pending() == []


async def test_a_repeated_id_is_stored_once_while_held(
    anthropic_api: AnthropicStandIn, vault: Path
) -> None:
    anthropic_api.script(text_reply("Added."))
    service = Service(vault, anthropic_api)
    intake = Intake(service.inbox)
    assert await intake.submit(message("m1", "add eggs"))
    assert not await intake.submit(message("m1", "add eggs"))  # SmartHole re-sent it
    await intake.open_to(service.pipeline)
    try:
        await service.idle()
    finally:
        await service.stop()
    assert asked(anthropic_api) == ["add eggs"]


async def test_a_held_message_answered_before_is_not_run_again(
    anthropic_api: AnthropicStandIn, vault: Path
) -> None:
    anthropic_api.script(text_reply("Added."))
    first = Service(vault, anthropic_api)
    await first.start()
    try:
        await first.pipeline.submit(message("m1", "add eggs"))
        await first.idle()
    finally:
        await first.stop()

    again = Service(vault, anthropic_api)  # the next start; SmartHole re-sends m1 early
    intake = Intake(again.inbox)
    assert await intake.submit(message("m1", "add eggs"))
    await intake.open_to(again.pipeline)
    try:
        await again.idle()
    finally:
        await again.stop()
    assert len(anthropic_api.requests) == 1
    assert again.inbox.pending() == []


async def test_a_message_held_when_the_process_died_runs_at_the_next_start(
    anthropic_api: AnthropicStandIn, vault: Path
) -> None:
    anthropic_api.script(text_reply("Added."))
    crashed = Service(vault, anthropic_api)
    assert await Intake(crashed.inbox).submit(message("m1", "add eggs"))
    crashed.store.close()  # gone before the pipeline ever loaded

    restarted = Service(vault, anthropic_api)
    await restarted.start()
    try:
        await restarted.idle()
    finally:
        await restarted.stop()
    assert asked(anthropic_api) == ["add eggs"]
    assert restarted.inbox.pending() == []


async def test_what_a_previous_run_left_runs_before_what_arrived_while_loading(
    anthropic_api: AnthropicStandIn, vault: Path
) -> None:
    anthropic_api.script(text_reply("Old."), text_reply("New."))
    before = Service(vault, anthropic_api)
    before.inbox.put(message("old", "old message"))  # queued, then the service stopped
    before.store.close()

    # Git on: the start-up's slow half (the repository) gives the held message every chance
    # to overtake; it must not.
    service = Service(vault, anthropic_api, settings=Settings(enable_git_version_control=True))
    intake = Intake(service.inbox)
    assert await intake.submit(message("new", "new message"))
    await intake.open_to(service.pipeline)
    try:
        await service.idle()
        recorded = [service.store.user_message(m) for m in ("old", "new")]
    finally:
        await service.stop()
    assert asked(anthropic_api)[:2] == ["old message", "new message"]
    old, new = recorded
    assert old is not None and new is not None
    assert old.row_id < new.row_id and old.created_at <= new.created_at  # history order too
    assert len([r for r in anthropic_api.requests if r.body.get("stream")]) == 2


async def test_a_message_arriving_while_the_pipeline_starts_is_acked_at_once_and_run(
    anthropic_api: AnthropicStandIn, vault: Path
) -> None:
    anthropic_api.script(text_reply("One."), text_reply("Two."))
    service = Service(vault, anthropic_api, settings=Settings(enable_git_version_control=True))
    intake = Intake(service.inbox)
    assert await intake.submit(message("m1", "first"))
    opening = asyncio.create_task(intake.open_to(service.pipeline))
    await asyncio.sleep(0)  # the start-up has begun
    assert await asyncio.wait_for(intake.submit(message("m2", "second")), 5)
    await opening
    try:
        await service.idle()
    finally:
        await service.stop()
    assert asked(anthropic_api)[:2] == ["first", "second"]
