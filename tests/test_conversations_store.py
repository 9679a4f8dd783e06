"""The conversation store: boundaries, messages, forks, states, retention, clearing."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from smarthole_notes.conversations.store import (
    ConversationEndedError,
    ConversationNotFoundError,
    ConversationStore,
    DuplicateMessageError,
    MessageNotFoundError,
    ToolUse,
    default_path,
    summarise_tool_input,
    tool_uses_from_calls,
)
from smarthole_notes.llm.service import ToolCallRecord
from smarthole_notes.llm.state import ConversationState

T0 = datetime(2026, 2, 5, 19, 30, tzinfo=UTC)
IDLE = timedelta(minutes=30)


def at(minutes: float = 0, seconds: float = 0) -> datetime:
    return T0 + timedelta(minutes=minutes, seconds=seconds)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[ConversationStore]:
    with ConversationStore(default_path(tmp_path)) as s:
        yield s


def exchange(
    store: ConversationStore, when: datetime, text: str = "hello", message_id: str | None = None
) -> str:
    """One processed message at `when`, the way the pipeline records it; the conversation id."""
    conversation, _ = store.begin_message(when, IDLE)
    store.add_exchange(
        conversation.id,
        text,
        f"answer to {text}",
        source="chat",
        input_method="typed",
        message_id=message_id,
        asked_at=when,
        answered_at=when + timedelta(seconds=5),
    )
    return conversation.id


# ---------------------------------------------------------------- boundaries


def test_database_lives_under_the_vaults_smarthole_folder(tmp_path: Path) -> None:
    assert default_path(tmp_path) == tmp_path / ".smarthole" / "conversations.db"
    with ConversationStore(default_path(tmp_path)):
        assert (tmp_path / ".smarthole" / "conversations.db").is_file()


def test_first_message_starts_a_conversation_and_ends_none(store: ConversationStore) -> None:
    conversation, ended = store.begin_message(T0, IDLE)
    assert ended is None
    assert conversation.active and conversation.started_at == T0
    assert store.active_conversation() == conversation


def test_message_29_59_after_the_last_continues_the_conversation(store: ConversationStore) -> None:
    first = exchange(store, at(0))  # last activity: the answer at 0:05
    conversation, ended = store.begin_message(at(30, 4), IDLE)  # 29:59 after the answer
    assert ended is None
    assert conversation.id == first


def test_message_exactly_at_the_timeout_still_continues(store: ConversationStore) -> None:
    first = exchange(store, at(0))
    conversation, ended = store.begin_message(at(30, 5), IDLE)
    assert (conversation.id, ended) == (first, None)


def test_message_30_01_after_the_last_ends_it_as_idle_and_starts_anew(
    store: ConversationStore,
) -> None:
    first = exchange(store, at(0))
    conversation, ended = store.begin_message(at(30, 6), IDLE)
    assert ended is not None and ended.id == first
    assert ended.end_reason == "idle"
    assert ended.ended_at == at(0, 5)  # when the talking stopped, not when it was noticed
    assert ended.message_count == 2
    assert conversation.id != first and conversation.started_at == at(30, 6)
    assert store.active_conversation() == conversation


def test_idle_clock_counts_from_the_latest_message_not_the_start(
    store: ConversationStore,
) -> None:
    first = exchange(store, at(0))
    exchange(store, at(25))
    conversation, ended = store.begin_message(at(50), IDLE)  # 50 min after start, 25 after last
    assert (conversation.id, ended) == (first, None)


def test_idle_conversation_without_messages_is_dropped_not_ended(
    store: ConversationStore,
) -> None:
    empty, _ = store.begin_message(T0, IDLE)  # its request was cancelled: nothing recorded
    conversation, ended = store.begin_message(at(45), IDLE)
    assert ended is None
    assert store.get(empty.id) is None
    assert conversation.id != empty.id


def test_periodic_sweep_ends_an_idle_conversation_without_a_new_message(
    store: ConversationStore,
) -> None:
    first = exchange(store, T0)
    assert store.end_if_idle(at(20), IDLE) is None
    ended = store.end_if_idle(at(40), IDLE)
    assert ended is not None and ended.id == first
    assert store.active_conversation() is None


def test_explicit_end_records_reason_and_time_and_next_message_starts_anew(
    store: ConversationStore,
) -> None:
    first = exchange(store, T0)
    ended = store.end_conversation(first, "explicit", at(1))
    assert (ended.end_reason, ended.ended_at, ended.active) == ("explicit", at(1), False)
    conversation, just_ended = store.begin_message(at(2), IDLE)
    assert conversation.id != first and just_ended is None


def test_ending_twice_keeps_the_first_ending(store: ConversationStore) -> None:
    first = exchange(store, T0)
    store.end_conversation(first, "explicit", at(1))
    again = store.end_conversation(first, "idle", at(9))
    assert (again.end_reason, again.ended_at) == ("explicit", at(1))


def test_ending_an_unknown_conversation_or_with_an_unknown_reason_fails(
    store: ConversationStore,
) -> None:
    with pytest.raises(ConversationNotFoundError):
        store.end_conversation("nope", "explicit", T0)
    first = exchange(store, T0)
    with pytest.raises(ValueError, match="end reason"):
        store.end_conversation(first, "bored", T0)  # type: ignore[arg-type]


def test_only_one_conversation_can_be_active_even_through_raw_sql(
    store: ConversationStore,
) -> None:
    store.begin_message(T0, IDLE)
    with pytest.raises(sqlite3.IntegrityError):
        store._conn.execute(
            "INSERT INTO conversations (id, started_at, last_activity_at) VALUES ('x', 'a', 'a')"
        )


def test_naive_timestamps_are_refused(store: ConversationStore) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        store.begin_message(datetime(2026, 2, 5, 12, 0), IDLE)


# ---------------------------------------------------------------- messages


def test_messages_keep_every_field_in_order(store: ConversationStore) -> None:
    conversation, _ = store.begin_message(T0, IDLE)
    tools = (
        ToolUse("read_file", 'path="Lists/Shopping.md"', False, "[lines 1-3 of 3]"),
        ToolUse("edit_file", 'path="Lists/Shopping.md"', True, "Error: text not found"),
    )
    asked = store.add_message(
        conversation.id,
        "user",
        "add eggs",
        source="smarthole",
        input_method="voice",
        message_id="sh-1",
        at=T0,
    )
    answer = store.add_message(
        conversation.id, "assistant", "Added eggs.", source="smarthole", tools_used=tools, at=at(1)
    )
    assert answer.reply_to == asked.row_id  # an answer answers the latest unanswered request
    assert store.messages(conversation.id) == [asked, answer]
    stored = store.messages(conversation.id)[1]
    assert stored.tools_used == tools and stored.created_at == at(1)
    refreshed = store.get(conversation.id)
    assert refreshed is not None
    assert (refreshed.message_count, refreshed.last_activity_at) == (2, at(1))


def test_inbox_ids_belong_to_user_messages_only(store: ConversationStore) -> None:
    conversation, _ = store.begin_message(T0, IDLE)
    with pytest.raises(ValueError, match="user only"):
        store.add_message(conversation.id, "assistant", "x", source="chat", message_id="m", at=T0)
    with pytest.raises(ValueError, match="non-empty"):
        store.add_message(conversation.id, "user", "x", source="chat", message_id="", at=T0)


def test_unknown_role_source_or_input_method_is_refused(store: ConversationStore) -> None:
    conversation, _ = store.begin_message(T0, IDLE)
    for bad in (
        {"role": "robot", "source": "chat", "input_method": None},
        {"role": "user", "source": "email", "input_method": None},
        {"role": "user", "source": "chat", "input_method": "telepathy"},
    ):
        with pytest.raises(ValueError, match="unknown"):
            store.add_message(conversation.id, content="x", at=T0, **bad)
    assert store.messages(conversation.id) == []


def test_ended_conversation_takes_system_notes_but_no_new_exchange(
    store: ConversationStore,
) -> None:
    first = exchange(store, T0)
    store.end_conversation(first, "explicit", at(1))
    with pytest.raises(ConversationEndedError):
        store.add_message(first, "user", "more", source="chat", at=at(2))
    note = store.add_message(first, "system", "Retrospection: ...", source="system", at=at(3))
    assert note.role == "system"
    ended = store.get(first)
    assert ended is not None and ended.last_activity_at == at(0, 5)  # notes are not activity


def test_adding_to_an_unknown_conversation_fails(store: ConversationStore) -> None:
    with pytest.raises(ConversationNotFoundError):
        store.add_message("missing", "user", "hi", source="chat", at=T0)


def test_message_is_processed_only_once_recorded_with_its_answer(
    store: ConversationStore,
) -> None:
    conversation, _ = store.begin_message(T0, IDLE)
    assert not store.is_processed("m-1")
    store.add_message(conversation.id, "user", "hi", source="chat", message_id="m-1", at=T0)
    assert not store.is_processed("m-1")  # recorded, not answered: an interrupted write
    store.add_message(conversation.id, "assistant", "Hello!", source="chat", at=at(1))
    assert store.is_processed("m-1")


def test_request_recorded_first_then_answer_linked_by_inbox_id(store: ConversationStore) -> None:
    """The flow where the request shows at once and the answer comes after the agent call."""
    conversation, _ = store.begin_message(T0, IDLE)
    assert not store.has_user_message("m-1")
    asked = store.add_message(
        conversation.id, "user", "hi", source="smarthole", input_method="voice",
        message_id="m-1", at=T0,
    )  # fmt: skip
    store.add_message(conversation.id, "user", "another", source="chat", message_id="m-2", at=T0)
    assert store.has_user_message("m-1") and not store.is_processed("m-1")
    answer = store.add_message(
        conversation.id, "assistant", "Hello!", source="smarthole", reply_to="m-1", at=at(1),
        tools_used=[{"name": "read_file", "input": "path=a.md", "is_error": False, "summary": "ok"}],
    )  # fmt: skip
    assert answer.reply_to == asked.row_id
    assert answer.tools_used == (ToolUse("read_file", "path=a.md", False, "ok"),)
    assert store.is_processed("m-1") and not store.is_processed("m-2")
    with pytest.raises(MessageNotFoundError):
        store.add_message(conversation.id, "assistant", "?", source="chat", reply_to="zz", at=T0)


def test_same_inbox_id_cannot_be_recorded_twice(store: ConversationStore) -> None:
    exchange(store, T0, message_id="m-1")
    with pytest.raises(DuplicateMessageError):
        exchange(store, at(1), "again", message_id="m-1")
    conversation = store.active_conversation()
    assert conversation is not None
    assert [m.content for m in store.messages(conversation.id)] == ["hello", "answer to hello"]


def test_inbox_ids_are_unique_in_the_schema_itself(store: ConversationStore) -> None:
    exchange(store, T0, message_id="m-1")
    conversation = store.active_conversation()
    assert conversation is not None
    with pytest.raises(sqlite3.IntegrityError):
        store._conn.execute(
            "INSERT INTO messages (conversation_id, role, content, source, message_id, created_at)"
            " VALUES (?, 'user', 'x', 'chat', 'm-1', 'now')",
            (conversation.id,),
        )


def test_interrupted_write_is_replaced_when_the_message_is_recorded_again(
    store: ConversationStore,
) -> None:
    conversation, _ = store.begin_message(T0, IDLE)
    store.add_message(conversation.id, "user", "hi", source="chat", message_id="m-1", at=T0)
    # crash before the answer; after restart the message is processed again and recorded again
    asked, answer = store.add_exchange(
        conversation.id, "hi", "Hello!", source="chat", message_id="m-1", asked_at=at(5),
        answered_at=at(6),
    )  # fmt: skip
    assert [m.row_id for m in store.messages(conversation.id)] == [asked.row_id, answer.row_id]
    assert store.is_processed("m-1")


def test_a_later_answer_does_not_answer_an_older_interrupted_message(
    store: ConversationStore,
) -> None:
    conversation, _ = store.begin_message(T0, IDLE)
    store.add_message(conversation.id, "user", "A", source="chat", message_id="a", at=T0)
    store.add_exchange(
        conversation.id, "B", "answer B", source="chat", message_id="b", asked_at=at(1),
        answered_at=at(2),
    )  # fmt: skip
    assert store.is_processed("b")
    assert not store.is_processed("a")


def test_tool_call_records_become_compact_history_entries() -> None:
    record = ToolCallRecord(
        "write_file", {"path": "Notes/Long.md", "content": "x" * 5000}, False, "Created file"
    )
    (use,) = tool_uses_from_calls([record])
    assert use.name == "write_file" and use.summary == "Created file" and not use.is_error
    assert use.input_summary.startswith('path="Notes/Long.md", content="xxx')
    assert len(use.input_summary) <= 160
    assert summarise_tool_input({"delete_lines": {"start": 2, "end": 4}}) == (
        'delete_lines={"start":2,"end":4}'
    )


async def test_calls_from_many_threads_at_once_are_all_recorded(
    store: ConversationStore,
) -> None:
    conversation, _ = store.begin_message(T0, IDLE)

    def add(i: int) -> None:
        store.add_message(conversation.id, "user", f"m{i}", source="chat", at=at(0, i))
        store.messages(conversation.id)

    await asyncio.gather(*(asyncio.to_thread(add, i) for i in range(40)))
    contents = {m.content for m in store.messages(conversation.id)}
    assert contents == {f"m{i}" for i in range(40)}


# ---------------------------------------------------------------- listing


def test_recent_ended_lists_newest_first_with_message_counts(store: ConversationStore) -> None:
    ids = []
    for n in range(3):
        ids.append(exchange(store, at(60 * n)))
        if n == 1:
            conversation = store.active_conversation()
            assert conversation is not None
            store.add_message(conversation.id, "user", "and more", source="chat", at=at(61))
    recent = store.recent_ended(5)  # the third one is still active
    assert [c.id for c in recent] == [ids[1], ids[0]]
    assert [c.message_count for c in recent] == [3, 2]
    assert len(store.recent_ended(1)) == 1


def test_conversations_page_back_by_start_time(store: ConversationStore) -> None:
    ids = [exchange(store, at(60 * n)) for n in range(5)]
    first_page = store.list_conversations(limit=2)
    assert [c.id for c in first_page] == [ids[4], ids[3]]
    assert first_page[0].active
    second_page = store.list_conversations(before=first_page[-1].started_at, limit=2)
    assert [c.id for c in second_page] == [ids[2], ids[1]]
    last_page = store.list_conversations(before=second_page[-1].started_at, limit=2)
    assert [c.id for c in last_page] == [ids[0]]


# ---------------------------------------------------------------- fork


def test_fork_archives_the_rest_as_a_branch_and_new_messages_continue(
    store: ConversationStore,
) -> None:
    conversation_id = exchange(store, T0, "first")
    exchange(store, at(1), "second")
    exchange(store, at(2), "third")
    second = store.messages(conversation_id)[2]
    assert second.content == "second"

    forked = store.fork(second.row_id)
    assert forked.id == conversation_id and forked.active
    assert forked.message_count == 2
    assert [m.content for m in store.messages(conversation_id)] == ["first", "answer to first"]

    exchange(store, at(3), "second, edited")
    shown = [m.content for m in store.messages(conversation_id)]
    assert shown == ["first", "answer to first", "second, edited", "answer to second, edited"]
    everything = store.messages(conversation_id, include_archived=True)
    assert [(m.content, m.branch) for m in everything] == [
        ("first", None),
        ("answer to first", None),
        ("second", 1),
        ("answer to second", 1),
        ("third", 1),
        ("answer to third", 1),
        ("second, edited", None),
        ("answer to second, edited", None),
    ]


def test_second_fork_gets_the_next_branch_number(store: ConversationStore) -> None:
    conversation_id = exchange(store, T0, "one")
    exchange(store, at(1), "two")
    store.fork(store.messages(conversation_id)[2].row_id)
    exchange(store, at(2), "two again")
    store.fork(store.messages(conversation_id)[2].row_id)
    branches = {m.branch for m in store.messages(conversation_id, include_archived=True)}
    assert branches == {None, 1, 2}


def test_forked_messages_stay_processed_so_redelivery_is_not_rerun(
    store: ConversationStore,
) -> None:
    conversation_id = exchange(store, T0, "one", message_id="m-1")
    store.fork(store.messages(conversation_id)[0].row_id)
    assert store.is_processed("m-1")


def test_fork_drops_the_waiting_state_asked_in_the_archived_part(
    store: ConversationStore,
) -> None:
    conversation_id = exchange(store, T0)
    state = ConversationState()
    state.ask("Which list?", "q-1")
    store.save_state(conversation_id, state, T0)
    store.fork(store.messages(conversation_id)[0].row_id)
    assert store.load_state(conversation_id) is None


def test_only_the_active_main_line_can_be_forked(store: ConversationStore) -> None:
    old = exchange(store, T0)
    old_message = store.messages(old)[0]
    store.end_conversation(old, "explicit", at(1))
    with pytest.raises(ConversationEndedError):
        store.fork(old_message.row_id)
    with pytest.raises(MessageNotFoundError):
        store.fork(999_999)
    current = exchange(store, at(2), "a")
    exchange(store, at(3), "b")
    archived = store.messages(current)[2]
    store.fork(archived.row_id)
    with pytest.raises(ValueError, match="archived"):
        store.fork(archived.row_id)


# ---------------------------------------------------------------- states


def test_waiting_state_survives_a_restart(tmp_path: Path) -> None:
    path = default_path(tmp_path)
    with ConversationStore(path) as store:
        conversation_id = exchange(store, T0)
        state = ConversationState(tool_call_count=3)
        state.ask("Which shopping list, groceries or hardware?", "q-7")
        store.save_state(conversation_id, state, at(1))
    with ConversationStore(path) as reopened:
        loaded = reopened.load_state(conversation_id)
    assert loaded == state
    assert loaded is not None and loaded.waiting_for_answer


def test_saving_again_replaces_the_state(store: ConversationStore) -> None:
    conversation_id = exchange(store, T0)
    asking = ConversationState()
    asking.ask("Which list?", None)
    store.save_state(conversation_id, asking, T0)
    store.save_state(conversation_id, ConversationState(), at(1))
    assert store.load_state(conversation_id) == ConversationState()


def test_stale_states_are_dropped_and_fresh_ones_kept(store: ConversationStore) -> None:
    conversation_id = exchange(store, T0)
    asking = ConversationState()
    asking.ask("Which list?", None)
    store.save_state(conversation_id, asking, T0)
    assert store.drop_stale_states(older_than=T0 - timedelta(seconds=1)) == 0
    assert store.load_state(conversation_id) == asking
    assert store.drop_stale_states(older_than=T0 + timedelta(seconds=1)) == 1
    assert store.load_state(conversation_id) is None


def test_ending_a_conversation_drops_its_state(store: ConversationStore) -> None:
    conversation_id = exchange(store, T0)
    store.save_state(conversation_id, ConversationState(tool_call_count=1), T0)
    store.end_conversation(conversation_id, "explicit", at(1))
    assert store.load_state(conversation_id) is None


def test_unreadable_state_loads_as_none(store: ConversationStore) -> None:
    conversation_id = exchange(store, T0)
    store._conn.execute(
        "INSERT INTO conversation_states VALUES (?, 'not json', '2026-02-05T19:30:00.000000Z')",
        (conversation_id,),
    )
    assert store.load_state(conversation_id) is None


def test_state_for_an_unknown_conversation_is_refused(store: ConversationStore) -> None:
    with pytest.raises(ConversationNotFoundError):
        store.save_state("nope", ConversationState(), T0)


# ---------------------------------------------------------------- retention and clearing


def fts_rows(store: ConversationStore, word: str) -> int:
    row = store._conn.execute(
        "SELECT COUNT(*) FROM messages_fts WHERE messages_fts MATCH ?", (f'"{word}"',)
    ).fetchone()
    return int(row[0])


def test_retention_drops_the_oldest_ended_with_everything_they_held(
    store: ConversationStore,
) -> None:
    ids = [exchange(store, at(60 * n), f"topic{n}") for n in range(5)]
    store.save_state(ids[0], ConversationState(tool_call_count=2), at(0))  # ended: dropped
    assert fts_rows(store, "topic0") == 2

    dropped = store.enforce_retention(3)

    assert dropped == 2
    assert [store.get(i) is None for i in ids] == [True, True, False, False, False]
    assert store.messages(ids[0]) == [] and store.load_state(ids[0]) is None
    assert fts_rows(store, "topic0") == 0 and fts_rows(store, "topic1") == 0
    assert fts_rows(store, "topic2") == 2
    assert store.integrity_check() == "ok"


def test_retention_never_drops_the_active_conversation(store: ConversationStore) -> None:
    ids = [exchange(store, at(60 * n)) for n in range(3)]
    assert store.enforce_retention(1) == 2
    active = store.active_conversation()
    assert active is not None and active.id == ids[2]
    assert store.enforce_retention(1) == 0


def test_retention_within_the_limit_drops_nothing(store: ConversationStore) -> None:
    for n in range(3):
        exchange(store, at(60 * n))
    assert store.enforce_retention(1000) == 0
    assert len(store.list_conversations()) == 3


def test_clear_all_removes_every_conversation_message_state_and_index_row(
    store: ConversationStore,
) -> None:
    ids = [exchange(store, at(60 * n), "secretword") for n in range(3)]
    store.save_state(ids[-1], ConversationState(tool_call_count=1), at(120))
    store.clear_all()
    assert store.list_conversations() == []
    assert store.active_conversation() is None
    assert store.load_state(ids[-1]) is None
    assert fts_rows(store, "secretword") == 0
    for table in ("messages", "conversation_states", "conversations"):
        assert store._conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0] == 0
    assert b"secretword" not in store.path.read_bytes()
    wal = store.path.with_name(store.path.name + "-wal")
    assert not wal.exists() or b"secretword" not in wal.read_bytes()
    assert store.integrity_check() == "ok"
    conversation, ended = store.begin_message(at(300), IDLE)  # and life goes on
    assert conversation.active and ended is None


# ---------------------------------------------------------------- health


def test_integrity_check_is_ok_after_a_varied_workload(store: ConversationStore) -> None:
    for n in range(4):
        conversation_id = exchange(store, at(60 * n), f"note {n}")
        store.set_summary(conversation_id, f"Title {n}", f"Summary {n}.")
    store.fork(store.messages(conversation_id)[0].row_id)
    store.enforce_retention(2)
    assert store.integrity_check() == "ok"


def test_integrity_check_reports_a_search_index_out_of_sync_and_rebuild_repairs_it(
    store: ConversationStore,
) -> None:
    exchange(store, T0, "hello there")
    store._conn.execute("DROP TRIGGER messages_fts_insert")  # simulate a broken index
    exchange(store, at(1), "unindexed")
    assert "messages_fts: 2 rows out of sync" in store.integrity_check()
    store.rebuild_search_index()
    assert store.integrity_check() == "ok"


def test_database_is_in_wal_mode_with_full_sync_and_foreign_keys(
    store: ConversationStore,
) -> None:
    conn = store._conn
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
