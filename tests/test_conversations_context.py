"""The context prompt part and the get_conversation texts, to the character."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from smarthole_notes.conversations.context import build_context
from smarthole_notes.conversations.store import ConversationStore, ToolUse, default_path
from smarthole_notes.llm.prompt import SystemPrompt
from smarthole_notes.llm.state import ConversationState
from smarthole_notes.tools.base import ToolError
from smarthole_notes.tools.history_format import (
    format_conversation_for_tool,
    format_recent_for_tool,
    format_search_for_tool,
    get_conversation_text,
)

NY = ZoneInfo("America/New_York")
ZONE = "America/New_York"
IDLE = timedelta(minutes=30)


def utc(hour: int, minute: int = 0, second: int = 0, day: int = 5) -> datetime:
    return datetime(2026, 2, day, hour, minute, second, tzinfo=UTC)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[ConversationStore]:
    with ConversationStore(default_path(tmp_path)) as s:
        yield s


def ended_conversation(
    store: ConversationStore, start: datetime, request: str, answer: str, *, end: bool = True
) -> str:
    conversation, _ = store.begin_message(start, IDLE)
    store.add_exchange(
        conversation.id, request, answer, source="smarthole", input_method="voice",
        asked_at=start, answered_at=start + timedelta(minutes=1),
    )  # fmt: skip
    if end:
        store.end_conversation(conversation.id, "explicit", start + timedelta(minutes=2))
    return conversation.id


TOOLS = (
    ToolUse("read_file", 'path="Lists/Shopping.md"', False, "[lines 1-3 of 3]"),
    ToolUse(
        "edit_file",
        'path="Lists/Shopping.md", old_text="- milk"',
        True,
        "Error: text not found in Lists/Shopping.md",
    ),
    ToolUse("write_file", 'path="Lists/Shopping.md", content="- eggs"', False, "Overwrote file"),
)


def scenario(store: ConversationStore) -> tuple[str, str, str]:
    """Three ended conversations (the oldest must not show) and an active one; their ids."""
    ended_conversation(store, utc(13), "too old to show", "ok")
    weekend = ended_conversation(store, utc(14), "Make a weekend shopping list", "Created it.")
    store.set_summary(
        weekend,
        "Weekend shopping list created",
        "The user asked for a weekend shopping list.\nIt was created in Lists/Shopping.md.",
    )
    milk = ended_conversation(store, utc(16, 30), "add   milk\ntoo", "Added milk.", end=False)
    active, just_ended = store.begin_message(utc(19, 30), IDLE)  # ends `milk` as idle, untitled
    assert just_ended is not None and just_ended.id == milk
    store.add_exchange(
        active.id, "Add eggs to my shopping list.", "Added eggs to Lists/Shopping.md.",
        source="smarthole", input_method="voice", tools_used=TOOLS,
        asked_at=utc(19, 30), answered_at=utc(19, 31, 20),
    )  # fmt: skip
    store.add_exchange(
        active.id, "Also note:\n- bread\n- butter\n", "Done:\n\n- bread\n- butter",
        source="chat", input_method="typed", asked_at=utc(19, 35), answered_at=utc(19, 36),
    )  # fmt: skip
    return weekend, milk, active.id


def test_context_shows_last_two_ended_and_the_whole_active_conversation(
    store: ConversationStore,
) -> None:
    weekend, milk, active_id = scenario(store)
    active = store.get(active_id)

    text = build_context(store, active, NY, ZONE)

    assert text == (
        "Recent conversations (the last two that ended, oldest first):\n"
        f"- Ended Thursday, Feb 5, 2026 9:02 AM (America/New_York, UTC-5), id {weekend}: "
        '"Weekend shopping list created"\n'
        "  The user asked for a weekend shopping list. It was created in Lists/Shopping.md.\n"
        f"- Ended Thursday, Feb 5, 2026 11:31 AM (America/New_York, UTC-5), id {milk}: "
        "untitled (no summary yet)\n"
        "  Last request: add milk too\n"
        "  Last answer: Added milk.\n"
        "\n"
        "Current conversation (started Thursday, Feb 5, 2026 2:30 PM (America/New_York, UTC-5)):\n"
        "[2:30 PM] User (voice): Add eggs to my shopping list.\n"
        "[2:31 PM] Assistant: Added eggs to Lists/Shopping.md.\n"
        '  Tools used: read_file(path="Lists/Shopping.md"); '
        'edit_file(path="Lists/Shopping.md", old_text="- milk") '
        "[failed: Error: text not found in Lists/Shopping.md]; "
        'write_file(path="Lists/Shopping.md", content="- eggs")\n'
        "[2:35 PM] User (typed): Also note:\n"
        "  - bread\n"
        "  - butter\n"
        "[2:36 PM] Assistant: Done:\n"
        "  \n"
        "  - bread\n"
        "  - butter"
    )


def test_context_for_a_first_message_with_no_history_says_so(store: ConversationStore) -> None:
    active, _ = store.begin_message(utc(19, 30), IDLE)
    assert build_context(store, active, NY, ZONE) == (
        "Current conversation: this message is the first of a new conversation."
    )
    assert build_context(store, None, NY, ZONE) == (
        "Current conversation: this message is the first of a new conversation."
    )


def test_context_dates_a_message_only_when_the_local_day_changes(
    store: ConversationStore,
) -> None:
    # 11:50 PM in New York on Feb 5 is 04:50 UTC on Feb 6.
    start = utc(4, 50, day=6)
    active, _ = store.begin_message(start, IDLE)
    store.add_exchange(
        active.id, "late note", "ok", source="chat", input_method="typed",
        asked_at=start, answered_at=start + timedelta(minutes=15),
    )  # fmt: skip
    store.add_message(
        active.id, "user", "still up", source="chat", input_method="typed",
        at=start + timedelta(minutes=20),
    )  # fmt: skip
    assert build_context(store, store.get(active.id), NY, ZONE) == (
        "Current conversation (started Thursday, Feb 5, 2026 11:50 PM (America/New_York, UTC-5)):\n"
        "[11:50 PM] User (typed): late note\n"
        "[Fri, Feb 6 12:05 AM] Assistant: ok\n"
        "[12:10 AM] User (typed): still up"
    )


def test_forked_away_messages_leave_the_context(store: ConversationStore) -> None:
    active, _ = store.begin_message(utc(19, 30), IDLE)
    store.add_exchange(
        active.id, "first", "one", source="chat", input_method="typed",
        asked_at=utc(19, 30), answered_at=utc(19, 31),
    )  # fmt: skip
    store.add_exchange(
        active.id, "second", "two", source="chat", input_method="typed",
        asked_at=utc(19, 32), answered_at=utc(19, 33),
    )  # fmt: skip
    store.fork(store.messages(active.id)[2].row_id)
    assert "second" not in build_context(store, store.get(active.id), NY, ZONE)


def test_system_prompt_carries_the_context_and_the_waiting_note(
    store: ConversationStore,
) -> None:
    _, _, active_id = scenario(store)
    prompt = SystemPrompt(
        "Lists/ holds lists.",
        zone=NY,
        zone_name=ZONE,
        clock=lambda: utc(19, 40),
        conversation_context=lambda: build_context(store, store.get(active_id), NY, ZONE),
    )
    state = ConversationState()
    state.ask("Which list?", None)
    text = prompt(state)
    assert "[2:35 PM] User (typed): Also note:" in text
    assert text.index("Current conversation") < text.index("waiting for the user's answer")


# ---------------------------------------------------------------- get_conversation texts


def test_ended_conversation_for_the_tool_has_every_message_with_times_and_tools(
    store: ConversationStore,
) -> None:
    weekend, _, active_id = scenario(store)
    store.end_conversation(active_id, "explicit", utc(19, 40))
    store.set_summary(active_id, "Eggs and bread on the list", "Eggs, bread and butter added.")
    conversation = store.get(active_id)
    assert conversation is not None
    text = format_conversation_for_tool(conversation, store.messages(active_id), NY, ZONE)
    assert text == (
        f'Conversation {active_id}: "Eggs and bread on the list"\n'
        "Started Thursday, Feb 5, 2026 2:30 PM (America/New_York, UTC-5); "
        "ended Thursday, Feb 5, 2026 2:40 PM (America/New_York, UTC-5) (explicit); 4 messages.\n"
        "Summary: Eggs, bread and butter added.\n"
        "\n"
        "[2:30 PM] User (voice): Add eggs to my shopping list.\n"
        "[2:31 PM] Assistant: Added eggs to Lists/Shopping.md.\n"
        '  Tools used: read_file(path="Lists/Shopping.md"); '
        'edit_file(path="Lists/Shopping.md", old_text="- milk") '
        "[failed: Error: text not found in Lists/Shopping.md]; "
        'write_file(path="Lists/Shopping.md", content="- eggs")\n'
        "[2:35 PM] User (typed): Also note:\n"
        "  - bread\n"
        "  - butter\n"
        "[2:36 PM] Assistant: Done:\n"
        "  \n"
        "  - bread\n"
        "  - butter"
    )
    assert get_conversation_text(store, active_id, None, NY, ZONE) == text
    assert get_conversation_text(store, f"  {weekend} ", None, NY, ZONE).startswith(
        f'Conversation {weekend}: "Weekend shopping list created"'
    )


def test_recent_list_for_the_tool_has_ids_titles_times_counts_and_summaries(
    store: ConversationStore,
) -> None:
    weekend, milk, _ = scenario(store)
    text = get_conversation_text(store, None, 2, NY, ZONE)
    assert text == (
        "Recent conversations, newest first "
        "(call get_conversation with a conversation_id to read one in full):\n"
        f"- {milk}: untitled; "
        "started Thursday, Feb 5, 2026 11:30 AM (America/New_York, UTC-5); "
        "ended Thursday, Feb 5, 2026 11:31 AM (America/New_York, UTC-5) (idle); 2 messages.\n"
        f'- {weekend}: "Weekend shopping list created"; '
        "started Thursday, Feb 5, 2026 9:00 AM (America/New_York, UTC-5); "
        "ended Thursday, Feb 5, 2026 9:02 AM (America/New_York, UTC-5) (explicit); 2 messages.\n"
        "  Summary: The user asked for a weekend shopping list. "
        "It was created in Lists/Shopping.md."
    )
    assert text == format_recent_for_tool(store.recent_ended(2), NY, ZONE)
    assert get_conversation_text(store, None, None, NY, ZONE).count("\n- ") == 3


def test_tool_texts_default_to_the_machines_time_zone(store: ConversationStore) -> None:
    weekend, _, _ = scenario(store)
    conversation = store.get(weekend)
    assert conversation is not None
    text = format_conversation_for_tool(conversation, store.messages(weekend))
    assert text.startswith(f'Conversation {weekend}: "Weekend shopping list created"\nStarted ')


def test_tool_refuses_the_active_conversation_and_unknown_ids(store: ConversationStore) -> None:
    _, _, active_id = scenario(store)
    with pytest.raises(ToolError, match="already in your context"):
        get_conversation_text(store, active_id, None, NY, ZONE)
    with pytest.raises(ToolError, match="no conversation has id 'nope'"):
        get_conversation_text(store, "nope", None, NY, ZONE)


def test_recent_list_when_nothing_has_ended(store: ConversationStore) -> None:
    assert get_conversation_text(store, None, 10, NY, ZONE) == "No conversation has ended yet."


def test_search_results_for_the_tool(store: ConversationStore) -> None:
    weekend, _, _ = scenario(store)
    hits = store.search("weekend")
    assert format_search_for_tool("weekend", hits, NY, ZONE) == (
        'Conversations matching "weekend", best first (matches in [brackets]):\n'
        f'- {weekend}: "Weekend shopping list created"; '
        "ended Thursday, Feb 5, 2026 9:02 AM (America/New_York, UTC-5).\n"
        "  Match: Make a [weekend] shopping list"
    )
    assert format_search_for_tool("zzz", [], NY, ZONE) == 'No ended conversation matches "zzz".'
