"""Schema versions: a new database, an older one upgraded, a failed or too-new one refused."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from smarthole_notes.conversations.store import (
    MIGRATION_1,
    MIGRATIONS,
    ConversationStore,
    SchemaError,
    default_path,
)

T0 = datetime(2026, 2, 5, 19, 30, tzinfo=UTC)
IDLE = timedelta(minutes=30)

# What a later release could add (see the MIGRATIONS docstring).
NEXT = len(MIGRATIONS) + 1
MIGRATION_NEXT = """
ALTER TABLE messages ADD COLUMN model TEXT;
UPDATE messages SET model = 'unknown' WHERE role = 'assistant';
"""
MIGRATION_AFTER = "CREATE INDEX messages_by_model ON messages (model);"


def user_version(path: Path) -> int:
    with sqlite3.connect(path) as conn:
        return int(conn.execute("PRAGMA user_version").fetchone()[0])


def columns(path: Path, table: str) -> list[str]:
    with sqlite3.connect(path) as conn:
        return [row[1] for row in conn.execute(f"PRAGMA table_info({table})")]


def first_release_database(path: Path) -> str:
    """A database as the first release wrote it (schema 1), with one ended conversation; its id."""
    conversation_id = "c-first"
    path.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(path) as conn:
        conn.executescript(f"BEGIN;\n{MIGRATION_1}\nPRAGMA user_version = 1;\nCOMMIT;")
        conn.execute(
            "INSERT INTO conversations (id, started_at, last_activity_at, ended_at, end_reason, "
            "title, summary) VALUES (?, ?, ?, ?, 'explicit', ?, ?)",
            (
                conversation_id, "2026-02-05T19:30:00.000000Z", "2026-02-05T19:30:02.000000Z",
                "2026-02-05T19:31:00.000000Z", "Eggs on the shopping list", "Eggs were added.",
            ),
        )  # fmt: skip
        conn.execute(
            "INSERT INTO messages (id, conversation_id, role, content, source, message_id, "
            "created_at) VALUES (1, ?, 'user', 'add eggs', 'chat', 'm-1', ?)",
            (conversation_id, "2026-02-05T19:30:00.000000Z"),
        )
        conn.execute(
            "INSERT INTO messages (id, conversation_id, role, content, source, reply_to, "
            "created_at) VALUES (2, ?, 'assistant', 'Added eggs.', 'chat', 1, ?)",
            (conversation_id, "2026-02-05T19:30:02.000000Z"),
        )
    return conversation_id


def test_new_database_is_created_at_the_current_version(tmp_path: Path) -> None:
    path = default_path(tmp_path)
    with ConversationStore(path) as store:
        assert store.schema_version == len(MIGRATIONS)
    assert user_version(path) == len(MIGRATIONS)


def test_empty_database_file_gets_the_whole_schema(tmp_path: Path) -> None:
    path = tmp_path / "conversations.db"
    sqlite3.connect(path).close()  # exists, version 0, no tables
    with ConversationStore(path) as store:
        assert store.active_conversation() is None
        assert store.integrity_check() == "ok"


def test_older_database_is_upgraded_in_order_and_keeps_its_history(tmp_path: Path) -> None:
    path = default_path(tmp_path)
    conversation_id = first_release_database(path)
    assert user_version(path) == 1

    with ConversationStore(
        path, migrations=(*MIGRATIONS, MIGRATION_NEXT, MIGRATION_AFTER)
    ) as store:
        assert store.schema_version == NEXT + 1
        assert [m.content for m in store.messages(conversation_id)] == ["add eggs", "Added eggs."]
        assert [m.kind for m in store.messages(conversation_id)] == ["request", "answer"]
        assert store.is_processed("m-1")
        assert [h.conversation.id for h in store.search("eggs")] == [conversation_id]
        current, _ = store.begin_message(T0 + timedelta(hours=1), IDLE)
        store.add_message(current.id, "user", "more", source="chat", at=T0 + timedelta(hours=1))
        assert store.integrity_check() == "ok"
        models = store._conn.execute("SELECT role, model FROM messages ORDER BY id").fetchall()
    assert [tuple(row) for row in models] == [
        ("user", None),
        ("assistant", "unknown"),
        ("user", None),
    ]
    assert user_version(path) == NEXT + 1
    assert "model" in columns(path, "messages")


def test_reopening_an_up_to_date_database_runs_no_migration(tmp_path: Path) -> None:
    path = default_path(tmp_path)
    first_release_database(path)
    with ConversationStore(path, migrations=(*MIGRATIONS, "SELECT 1;")):
        pass
    # Were the next migration run again, the duplicate column would fail.
    with ConversationStore(path, migrations=(*MIGRATIONS, MIGRATION_NEXT)) as store:
        assert store.schema_version == NEXT
    with ConversationStore(path, migrations=(*MIGRATIONS, MIGRATION_NEXT)) as store:
        assert store.schema_version == NEXT


def test_failed_migration_is_rolled_back_whole_and_reported(tmp_path: Path) -> None:
    path = default_path(tmp_path)
    conversation_id = first_release_database(path)
    with ConversationStore(path) as store:
        pass
    broken = "ALTER TABLE messages ADD COLUMN model TEXT;\nCREATE TABLE (;"
    with pytest.raises(SchemaError, match=f"migration {NEXT} failed"):
        ConversationStore(path, migrations=(*MIGRATIONS, broken))
    assert user_version(path) == len(MIGRATIONS)
    assert "model" not in columns(path, "messages")
    with ConversationStore(path) as store:  # this release still reads it
        assert len(store.messages(conversation_id)) == 2


def test_database_from_a_newer_release_is_refused_not_misread(tmp_path: Path) -> None:
    path = default_path(tmp_path)
    first_release_database(path)
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA user_version = 7")
    with pytest.raises(SchemaError, match="newer than this release"):
        ConversationStore(path)


def test_the_spending_ledger_starts_with_the_answers_already_paid_for(tmp_path: Path) -> None:
    path = default_path(tmp_path)
    first_release_database(path)
    with ConversationStore(path, migrations=MIGRATIONS[:2]):
        pass  # at schema 2: answers carry their usage, there is no ledger yet
    paid = '{"model": "claude-haiku-4-5", "input_tokens": 900, "output_tokens": 9}'
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE messages SET usage = ? WHERE role = 'assistant'", (paid,))
        conn.execute("UPDATE messages SET usage = ? WHERE role = 'user'", (paid,))
    with ConversationStore(path) as store:
        spent = store.usage_since(T0 - timedelta(days=1))
        store.clear_all()
        kept = store.usage_since(T0 - timedelta(days=1))
    assert [u["input_tokens"] for u in spent] == [900]  # the answer's bill, once
    assert kept == spent  # a cleared history leaves the ledger whole
