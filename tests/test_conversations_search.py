"""Full-text search over ended conversations: what it finds, and hostile queries."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from smarthole_notes.conversations.store import ConversationStore, default_path, fts_query

T0 = datetime(2026, 2, 5, 19, 30, tzinfo=UTC)
IDLE = timedelta(minutes=30)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[ConversationStore]:
    with ConversationStore(default_path(tmp_path)) as s:
        yield s


def conversation(
    store: ConversationStore, hour: int, request: str, answer: str, *, end: bool = True
) -> str:
    when = T0 + timedelta(hours=hour)
    current, _ = store.begin_message(when, IDLE)
    store.add_exchange(
        current.id, request, answer, source="smarthole", input_method="voice",
        asked_at=when, answered_at=when + timedelta(seconds=3),
    )  # fmt: skip
    if end:
        store.end_conversation(current.id, "explicit", when + timedelta(minutes=1))
    return current.id


def test_finds_words_of_ended_conversations_with_a_marked_snippet(
    store: ConversationStore,
) -> None:
    shopping = conversation(store, 0, "Add eggs and flour to my shopping list", "Added both.")
    conversation(store, 1, "Start a journal entry about the garden", "Created it.")
    hits = store.search("flour")
    assert [h.conversation.id for h in hits] == [shopping]
    assert "[flour]" in hits[0].snippet
    assert hits[0].message_row_id == store.messages(shopping)[0].row_id
    assert hits[0].conversation.message_count == 2


def test_every_word_must_match_somewhere_in_one_message(store: ConversationStore) -> None:
    both = conversation(store, 0, "garden plan for spring", "ok")
    conversation(store, 1, "garden only", "ok")
    assert [h.conversation.id for h in store.search("garden spring")] == [both]


def test_words_match_by_prefix_stem_and_without_accents(store: ConversationStore) -> None:
    found = conversation(store, 0, "Notes from the meetings at the café in Zürich", "Saved.")
    for query in ("meeting", "cafe", "zurich", "CAFÉ", "meet"):
        assert [h.conversation.id for h in store.search(query)] == [found], query


def test_titles_and_summaries_are_searched_too(store: ConversationStore) -> None:
    plain = conversation(store, 0, "do the thing", "done")
    store.set_summary(plain, "Reorganising the recipe collection", "Moved recipes into Recipes/.")
    hits = store.search("recipe")
    assert [h.conversation.id for h in hits] == [plain]
    assert hits[0].message_row_id is None
    assert "[Recipe" in hits[0].snippet


def test_one_hit_per_conversation_even_when_many_messages_match(
    store: ConversationStore,
) -> None:
    first = conversation(store, 0, "budget budget", "The budget note is updated.")
    store.set_summary(first, "Budget review", "Budget things.")
    assert [h.conversation.id for h in store.search("budget")] == [first]


def test_active_conversation_and_archived_branches_are_not_searched(
    store: ConversationStore,
) -> None:
    ended = conversation(store, 0, "keep this zebra", "ok")
    active = conversation(store, 2, "active zebra", "ok", end=False)
    store.add_exchange(
        active, "archived zebra", "ok", source="chat", asked_at=T0 + timedelta(hours=2, minutes=1),
        answered_at=T0 + timedelta(hours=2, minutes=2),
    )  # fmt: skip
    archived = store.messages(active)[2]
    store.fork(archived.row_id)
    assert [h.conversation.id for h in store.search("zebra")] == [ended]
    store.end_conversation(active, "explicit", T0 + timedelta(hours=3))
    assert {h.conversation.id for h in store.search("zebra")} == {ended, active}
    assert store.search("archived") == []


def test_limit_caps_the_number_of_hits(store: ConversationStore) -> None:
    for hour in range(5):
        conversation(store, hour, f"weekly report number {hour}", "ok")
    assert len(store.search("report", limit=3)) == 3
    assert store.search("report", limit=0) == []


@pytest.mark.parametrize(
    "query",
    [
        '"',
        '"unbalanced',
        "*",
        "eggs*",
        "AND",
        "eggs AND",
        "OR NOT",
        "-eggs",
        "eggs -flour",
        "(eggs",
        "eggs)",
        "((",
        "NEAR(eggs flour)",
        "content:eggs",
        "^eggs",
        "eggs + flour",
        "{eggs}",
        "'; DROP TABLE messages; --",
        "",
        "   ",
        "🥚 eggs",
    ],
)
def test_hostile_queries_never_raise_and_still_find_plain_words(
    store: ConversationStore, query: str
) -> None:
    target = conversation(store, 0, "eggs and flour, AND or NOT, near content", "ok")
    hits = store.search(query)
    if "eggs" in query:
        assert [h.conversation.id for h in hits] == [target]
    assert store.integrity_check() == "ok"


def test_query_words_are_quoted_prefixes_and_operators_become_words() -> None:
    assert fts_query('say "hi" AND (bye)*') == '"say"* "hi"* "AND"* "bye"*'
    assert fts_query("-*()") is None
    assert fts_query("Zürich 北京") == '"Zürich"* "北京"*'
