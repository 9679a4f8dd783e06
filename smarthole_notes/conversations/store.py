"""The conversation store: conversations, their messages, branches and states, in SQLite.

One database file, `<vault>/.smarthole/conversations.db`, holds everything the service
remembers between messages (never vault notes: it is private service state).

Durability. WAL journal with `synchronous=FULL`: every commit fsyncs the WAL before it
returns. WAL with `synchronous=NORMAL` would already keep the file uncorrupted by a crash,
but a power loss could then roll back the last commits; the pipeline deletes a message
from the inbox right after its history is committed, so a commit that could be lost would
lose the exchange from history for good. One fsync per message is nothing at human speed.

Concurrency. The methods are synchronous; the pipeline calls them through
`asyncio.to_thread`. One connection (`check_same_thread=False`) is shared and every use of
it holds a lock, so calls from any thread are serialised and each call is one transaction.
Another process opening the same file is safe too (WAL, busy timeout).

Cost. Every query of the message path (`begin_message`, `add_message`, `is_processed`)
is an index lookup or a range of one conversation's rows; none scans all conversations.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import sqlite3
import threading
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Literal, Protocol, TypeAlias, cast, get_args

from smarthole_notes.llm.state import ConversationState
from smarthole_notes.llm.types import sum_usage_records
from smarthole_notes.text import shorten

log = logging.getLogger(__name__)

DB_FILE_NAME: Final = "conversations.db"
BUSY_TIMEOUT_SECONDS: Final = 5.0
MAX_SEARCH_TERMS: Final = 16
TOOL_INPUT_SUMMARY_LIMIT: Final = 160

Role: TypeAlias = Literal["user", "assistant", "system"]
Source: TypeAlias = Literal["chat", "smarthole", "system"]
InputMethod: TypeAlias = Literal["typed", "voice", "text"]
EndReason: TypeAlias = Literal["idle", "explicit", "cleared"]
MessageKind: TypeAlias = Literal[
    "request", "answer", "refusal", "update", "question", "retrospection"
]
"""What a stored message is: the user's request; the agent's answer (the one row that makes a
request processed); a refusal (Claude declined: recorded, never an answer); a mid-task update
or question (`send_message`); a retrospection note (a system row of an ended conversation)."""

ROLES: Final = frozenset(get_args(Role))
SOURCES: Final = frozenset(get_args(Source))
INPUT_METHODS: Final = frozenset(get_args(InputMethod))
END_REASONS: Final = frozenset(get_args(EndReason))
MESSAGE_KINDS: Final = frozenset(get_args(MessageKind))
_KINDS_BY_ROLE: Final[dict[str, frozenset[str]]] = {
    "user": frozenset({"request"}),
    "assistant": frozenset({"answer", "refusal", "update", "question"}),
    "system": frozenset({"retrospection"}),
}
_DEFAULT_KIND: Final[dict[str, MessageKind]] = {
    "user": "request",
    "assistant": "answer",
    "system": "retrospection",
}


def default_path(vault: Path) -> Path:
    """Where a vault's conversation database lives."""
    return vault / ".smarthole" / DB_FILE_NAME


# --------------------------------------------------------------------------- errors


class ConversationStoreError(Exception):
    """Base of the store's own errors (sqlite3 errors other than these mean a bug or a bad disk)."""


class ConversationNotFoundError(ConversationStoreError, LookupError):
    """No conversation has that id (it may have been dropped by retention or a clear)."""


class MessageNotFoundError(ConversationStoreError, LookupError):
    """No message has that row id."""


class ConversationEndedError(ConversationStoreError, ValueError):
    """The conversation is over: it takes no more user or assistant messages and cannot fork."""


class DuplicateMessageError(ConversationStoreError, ValueError):
    """That inbox message id was already recorded and answered: it must not be recorded twice."""


class SchemaError(ConversationStoreError):
    """The database was written by a newer release, or a migration failed."""


# --------------------------------------------------------------------------- records


@dataclass(frozen=True, slots=True)
class ToolUse:
    """One tool call an answer made, as the history keeps it (not the full input or result)."""

    name: str
    input_summary: str
    is_error: bool
    summary: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "input_summary": self.input_summary,
            "is_error": self.is_error,
            "summary": self.summary,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ToolUse:
        summary_of_input = data.get("input_summary", data.get("input", ""))
        if not isinstance(summary_of_input, str):
            summary_of_input = (
                summarise_tool_input(summary_of_input)
                if isinstance(summary_of_input, Mapping)
                else str(summary_of_input)
            )
        return cls(
            name=str(data.get("name", "")),
            input_summary=summary_of_input,
            is_error=bool(data.get("is_error", False)),
            summary=str(data.get("summary", "")),
        )


class ToolCallLike(Protocol):
    """What `tool_uses_from_calls` reads (the agent service's `ToolCallRecord` fits)."""

    @property
    def name(self) -> str: ...
    @property
    def input(self) -> dict[str, Any]: ...
    @property
    def is_error(self) -> bool: ...
    @property
    def summary(self) -> str: ...


def summarise_tool_input(
    tool_input: Mapping[str, Any], limit: int = TOOL_INPUT_SUMMARY_LIMIT
) -> str:
    """`path="Lists/Shopping.md", new_text="- eggs"`: each value as JSON, long ones cut.

    Inputs can hold whole notes (write_file), so each value is cut to 60 characters and
    the whole to `limit`: the history says what a call did, not what it wrote.
    """
    parts: list[str] = []
    for key, value in tool_input.items():
        rendered = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
        parts.append(f"{key}={shorten(rendered, 60)}")
    return shorten(", ".join(parts), limit)


def _tool_use_tuple(tools: Iterable[ToolUse | Mapping[str, Any]]) -> tuple[ToolUse, ...]:
    return tuple(t if isinstance(t, ToolUse) else ToolUse.from_dict(t) for t in tools)


def tool_uses_from_calls(calls: Iterable[ToolCallLike]) -> tuple[ToolUse, ...]:
    """The agent's tool call records as history entries."""
    return tuple(
        ToolUse(call.name, summarise_tool_input(call.input), call.is_error, call.summary)
        for call in calls
    )


@dataclass(frozen=True, slots=True)
class Conversation:
    id: str
    started_at: datetime
    last_activity_at: datetime
    ended_at: datetime | None
    end_reason: str | None
    title: str | None
    summary: str | None
    message_count: int = 0
    """Messages on the main line (archived branches not counted)."""

    @property
    def active(self) -> bool:
        return self.ended_at is None


@dataclass(frozen=True, slots=True)
class StoredMessage:
    row_id: int
    conversation_id: str
    role: Role
    content: str
    source: Source
    input_method: InputMethod | None
    message_id: str | None
    tools_used: tuple[ToolUse, ...]
    created_at: datetime
    branch: int | None
    """None on the main line; archived branches are numbered 1, 2, ... per conversation."""
    reply_to: int | None
    """For an answer, the row id of the user message it answers."""
    kind: MessageKind = "answer"
    usage: Mapping[str, Any] | None = None
    """For an answer: tokens (input, output, cache write, cache read), model, estimated cost.
    For a request: the same, summed over its attempts that ended without an answer."""


@dataclass(frozen=True, slots=True)
class SearchHit:
    conversation: Conversation
    snippet: str
    """Matched words are marked `[like this]`; `…` marks cut text."""
    message_row_id: int | None
    """The matching message, or None when the title or summary matched."""


# --------------------------------------------------------------------------- schema

Migration: TypeAlias = str
"""An SQL script run in one transaction; its position in `MIGRATIONS` is its version."""

MIGRATION_1: Final[Migration] = """
CREATE TABLE conversations (
    seq INTEGER PRIMARY KEY,  -- an explicit rowid: VACUUM keeps it, the FTS index refers to it
    id TEXT NOT NULL UNIQUE,
    started_at TEXT NOT NULL,  -- UTC, 'YYYY-MM-DDTHH:MM:SS.ffffffZ': sorts as it compares
    last_activity_at TEXT NOT NULL,
    ended_at TEXT,
    end_reason TEXT,
    title TEXT,
    summary TEXT,
    CHECK ((ended_at IS NULL) = (end_reason IS NULL))
);
-- Every active row has the same key here, so there is at most one active conversation.
CREATE UNIQUE INDEX conversations_one_active ON conversations ((ended_at IS NULL))
    WHERE ended_at IS NULL;
CREATE INDEX conversations_started ON conversations (started_at);
CREATE INDEX conversations_ended ON conversations (ended_at) WHERE ended_at IS NOT NULL;

CREATE TABLE messages (
    id INTEGER PRIMARY KEY,
    conversation_id TEXT NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    role TEXT NOT NULL CHECK (role IN ('user', 'assistant', 'system')),
    content TEXT NOT NULL,
    source TEXT NOT NULL,
    input_method TEXT,
    message_id TEXT,
    reply_to INTEGER REFERENCES messages (id) ON DELETE SET NULL,
    tools_used TEXT NOT NULL DEFAULT '[]',
    created_at TEXT NOT NULL,
    branch INTEGER
);
CREATE INDEX messages_by_conversation ON messages (conversation_id, branch, id);
CREATE UNIQUE INDEX messages_message_id ON messages (message_id) WHERE message_id IS NOT NULL;
CREATE INDEX messages_reply_to ON messages (reply_to);

CREATE TABLE conversation_states (
    conversation_id TEXT PRIMARY KEY REFERENCES conversations (id) ON DELETE CASCADE,
    state TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX conversation_states_updated ON conversation_states (updated_at);

-- Conversations as the store reads them: with their main-line message count.
CREATE VIEW conversation_rows AS
SELECT c.*,
       (SELECT COUNT(*) FROM messages m WHERE m.conversation_id = c.id AND m.branch IS NULL)
           AS message_count
FROM conversations c;

CREATE VIRTUAL TABLE messages_fts USING fts5 (
    content, content = 'messages', content_rowid = 'id', tokenize = 'porter unicode61 remove_diacritics 2'
);
CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages BEGIN
    INSERT INTO messages_fts (rowid, content) VALUES (new.id, new.content);
END;
CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages BEGIN
    INSERT INTO messages_fts (messages_fts, rowid, content) VALUES ('delete', old.id, old.content);
END;
CREATE TRIGGER messages_fts_update AFTER UPDATE OF content ON messages BEGIN
    INSERT INTO messages_fts (messages_fts, rowid, content) VALUES ('delete', old.id, old.content);
    INSERT INTO messages_fts (rowid, content) VALUES (new.id, new.content);
END;

CREATE VIRTUAL TABLE conversations_fts USING fts5 (
    title, summary, content = 'conversations', content_rowid = 'seq', tokenize = 'porter unicode61 remove_diacritics 2'
);
CREATE TRIGGER conversations_fts_insert AFTER INSERT ON conversations BEGIN
    INSERT INTO conversations_fts (rowid, title, summary) VALUES (new.seq, new.title, new.summary);
END;
CREATE TRIGGER conversations_fts_delete AFTER DELETE ON conversations BEGIN
    INSERT INTO conversations_fts (conversations_fts, rowid, title, summary)
        VALUES ('delete', old.seq, old.title, old.summary);
END;
CREATE TRIGGER conversations_fts_update AFTER UPDATE OF title, summary ON conversations BEGIN
    INSERT INTO conversations_fts (conversations_fts, rowid, title, summary)
        VALUES ('delete', old.seq, old.title, old.summary);
    INSERT INTO conversations_fts (rowid, title, summary) VALUES (new.seq, new.title, new.summary);
END;
"""

_FTS_CHECKS: Final = (
    ("messages_fts", "INSERT INTO messages_fts (messages_fts) VALUES ('integrity-check')"),
    (
        "conversations_fts",
        "INSERT INTO conversations_fts (conversations_fts) VALUES ('integrity-check')",
    ),
)

# SQLite 3.40's FTS5 check does not compare an external-content index with its table, so
# these count the rows indexed without a source row, and the source rows never indexed.
_FTS_SYNC_CHECKS: Final = (
    (
        "messages_fts",
        "SELECT (SELECT COUNT(*) FROM messages WHERE id NOT IN "
        "(SELECT id FROM messages_fts_docsize)) + (SELECT COUNT(*) FROM messages_fts_docsize "
        "WHERE id NOT IN (SELECT id FROM messages))",
    ),
    (
        "conversations_fts",
        "SELECT (SELECT COUNT(*) FROM conversations WHERE seq NOT IN "
        "(SELECT id FROM conversations_fts_docsize)) + (SELECT COUNT(*) FROM "
        "conversations_fts_docsize WHERE id NOT IN (SELECT seq FROM conversations))",
    ),
)

MIGRATION_2: Final[Migration] = """
ALTER TABLE messages ADD COLUMN kind TEXT NOT NULL DEFAULT 'answer'
    CHECK (kind IN ('request', 'answer', 'refusal', 'update', 'question', 'retrospection'));
UPDATE messages SET kind = CASE role WHEN 'user' THEN 'request'
    WHEN 'system' THEN 'retrospection' ELSE 'answer' END;
CREATE INDEX messages_answers ON messages (reply_to) WHERE kind = 'answer';
ALTER TABLE messages ADD COLUMN usage TEXT;
"""
"""Message kinds: updates, questions and refusals are kept beside answers, and only an
answer makes its request processed. `usage`: an answer's tokens and estimated cost (JSON);
on a request, what its attempts that ended without an answer cost, summed (`add_usage`)."""

MIGRATION_3: Final[Migration] = """
CREATE TABLE spending (
    id INTEGER PRIMARY KEY,
    at TEXT NOT NULL,
    kind TEXT NOT NULL,
    usage TEXT NOT NULL,
    conversation_id TEXT REFERENCES conversations (id) ON DELETE SET NULL
);
CREATE INDEX spending_by_time ON spending (at);
CREATE INDEX spending_by_conversation ON spending (conversation_id)
    WHERE conversation_id IS NOT NULL;
INSERT INTO spending (at, kind, usage)
    SELECT created_at, 'answer', usage FROM messages
    WHERE usage IS NOT NULL AND role = 'assistant' ORDER BY id;
"""
"""`spending`: every bill once, when it was paid (answers, attempts without an answer, side
jobs), apart from the history: retention and a cleared history leave it whole (it holds no
text; the conversation it served becomes NULL), so a month's spending stays true. Side jobs
(`SIDE_JOBS`) are billed like answers but answer no one: their rows name the conversation
they served (none for a routing description), so its total is complete."""

MIGRATIONS: Final[tuple[Migration, ...]] = (MIGRATION_1, MIGRATION_2, MIGRATION_3)
"""Applied in order from the first release; `PRAGMA user_version` counts those applied.

Never edit a released migration: append one. A release adding, say, the model that wrote
each answer would append

    MIGRATION_4 = "ALTER TABLE messages ADD COLUMN model TEXT;"

and a database at version 3 gets exactly migration 4 when it is next opened.
"""

SideJob: TypeAlias = Literal["summary", "retrospection", "commit_message", "routing_description"]
SIDE_JOBS: Final[tuple[SideJob, ...]] = get_args(SideJob)


@dataclass(frozen=True, slots=True)
class SideCost:
    """What one side job's call cost (`Usage.to_dict`'s shape in `usage`)."""

    job: SideJob
    usage: Mapping[str, Any]
    created_at: datetime
    conversation_id: str | None


def migrate(conn: sqlite3.Connection, migrations: Sequence[Migration] = MIGRATIONS) -> int:
    """Bring the database to `len(migrations)`, one transaction per migration; the new version.

    A migration that fails is rolled back whole (the version stays where it was) and raises
    `SchemaError`; a database newer than this code is refused rather than misread.
    """
    version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    if version > len(migrations):
        raise SchemaError(
            f"the conversation database is at schema version {version}, newer than this "
            f"release knows ({len(migrations)}); upgrade smarthole-notes"
        )
    for number in range(version + 1, len(migrations) + 1):
        script = migrations[number - 1]
        try:
            # executescript commits any open transaction first, so the script brings its own.
            conn.executescript(
                f"BEGIN IMMEDIATE;\n{script}\nPRAGMA user_version = {number};\nCOMMIT;"
            )
        except sqlite3.Error as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise SchemaError(f"conversation database migration {number} failed: {exc}") from exc
        log.info("Conversation database migrated to schema version %d", number)
    return len(migrations)


# --------------------------------------------------------------------------- helpers


def _ts(moment: datetime) -> str:
    """A UTC timestamp of fixed width, so that text order is time order."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"timestamps must be timezone-aware, got naive {moment!r}")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _dt(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _opt_dt(text: str | None) -> datetime | None:
    return None if text is None else _dt(text)


def _check(value: str, allowed: frozenset[str], what: str) -> None:
    if value not in allowed:
        raise ValueError(f"unknown {what} {value!r}; expected one of {sorted(allowed)}")


def fts_query(text: str) -> str | None:
    """Free text as an FTS5 query that cannot be a syntax error: each word a quoted prefix.

    Words are runs of letters and digits; everything else (quotes, `*`, `-`, `:`,
    parentheses) separates words, and `AND` / `OR` / `NOT` / `NEAR` become plain words
    because they are quoted. All words must match (implicit AND). None when no word is left.
    """
    words: list[str] = []
    current: list[str] = []
    for char in text:
        if char.isalnum():
            current.append(char)
        elif current:
            words.append("".join(current))
            current = []
    if current:
        words.append("".join(current))
    if not words:
        return None
    return " ".join('"' + word.replace('"', '""') + '"*' for word in words[:MAX_SEARCH_TERMS])


def _conversation(row: sqlite3.Row) -> Conversation:
    return Conversation(
        id=row["id"],
        started_at=_dt(row["started_at"]),
        last_activity_at=_dt(row["last_activity_at"]),
        ended_at=_opt_dt(row["ended_at"]),
        end_reason=row["end_reason"],
        title=row["title"],
        summary=row["summary"],
        message_count=int(row["message_count"]),
    )


def _tool_uses(raw: str) -> tuple[ToolUse, ...]:
    try:
        data = json.loads(raw)
    except ValueError:
        log.warning("Unreadable tools_used in the conversation database: %.80r", raw)
        return ()
    if not isinstance(data, list):
        return ()
    return tuple(ToolUse.from_dict(item) for item in data if isinstance(item, dict))


def _message(row: sqlite3.Row) -> StoredMessage:
    return StoredMessage(
        row_id=int(row["id"]),
        conversation_id=row["conversation_id"],
        role=cast(Role, row["role"]),
        content=row["content"],
        source=cast(Source, row["source"]),
        input_method=cast(InputMethod | None, row["input_method"]),
        message_id=row["message_id"],
        tools_used=_tool_uses(row["tools_used"]),
        created_at=_dt(row["created_at"]),
        branch=row["branch"],
        reply_to=row["reply_to"],
        kind=cast(MessageKind, row["kind"]),
        usage=_usage(row["usage"]),
    )


def _spent(
    conn: sqlite3.Connection,
    at: datetime,
    kind: str,
    usage: Mapping[str, Any],
    conversation_id: str | None = None,
) -> None:
    """One bill in the `spending` ledger (inside the caller's transaction)."""
    conn.execute(
        "INSERT INTO spending (at, kind, usage, conversation_id) VALUES (?, ?, ?, ?)",
        (_ts(at), kind, json.dumps(dict(usage)), conversation_id),
    )


def _usage(raw: str | None) -> Mapping[str, Any] | None:
    if not raw:
        return None
    try:
        data = json.loads(raw)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


@dataclass(frozen=True, slots=True)
class _NewMessage:
    role: Role
    content: str
    source: Source
    input_method: InputMethod | None
    message_id: str | None
    tools_used: tuple[ToolUse, ...]
    at: datetime
    reply_to: int | None
    kind: MessageKind
    usage: Mapping[str, Any] | None = None

    def validate(self) -> None:
        _check(self.role, ROLES, "role")
        _check(
            self.kind, _KINDS_BY_ROLE.get(self.role, frozenset()), f"kind of a {self.role} message"
        )
        _check(self.source, SOURCES, "source")
        if self.input_method is not None:
            _check(self.input_method, INPUT_METHODS, "input method")
        if self.message_id is not None and (not self.message_id or self.role != "user"):
            raise ValueError("message_id is the inbox id of a user message: non-empty, user only")
        _ts(self.at)


# --------------------------------------------------------------------------- the store


class ConversationStore:
    """Conversations, messages, branches, states and their full-text index in one SQLite file."""

    def __init__(self, path: Path, *, migrations: Sequence[Migration] = MIGRATIONS) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._conn = sqlite3.connect(
            path,
            timeout=BUSY_TIMEOUT_SECONDS,
            isolation_level=None,  # autocommit: transactions are opened explicitly below
            check_same_thread=False,  # shared across threads, always under self._lock
        )
        try:
            self._conn.row_factory = sqlite3.Row
            mode = self._conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise SchemaError(f"could not put the conversation database in WAL mode ({mode})")
            self._conn.execute("PRAGMA synchronous=FULL")
            self._conn.execute("PRAGMA foreign_keys=ON")
            self.schema_version = migrate(self._conn, migrations)
        except BaseException:
            self._conn.close()
            raise

    # ----------------------------------------------------------------- lifecycle

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> ConversationStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @contextmanager
    def _transaction(self, mode: Literal["IMMEDIATE", "DEFERRED"]) -> Iterator[sqlite3.Connection]:
        """One transaction under the lock: committed on success, rolled back on any exception."""
        with self._lock:
            self._conn.execute(f"BEGIN {mode}")
            try:
                yield self._conn
                self._conn.execute("COMMIT")
            except BaseException:
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                raise

    def _write(self) -> AbstractContextManager[sqlite3.Connection]:
        """A write transaction that takes SQLite's write lock up front.

        Another process writing makes it wait (busy timeout) at BEGIN, instead of failing
        with SQLITE_BUSY at its first write after reads.
        """
        return self._transaction("IMMEDIATE")

    def _read(self) -> AbstractContextManager[sqlite3.Connection]:
        """A read transaction: several queries see one consistent snapshot."""
        return self._transaction("DEFERRED")

    # ----------------------------------------------------------------- conversations

    def begin_message(
        self, now: datetime, idle_timeout: timedelta
    ) -> tuple[Conversation, Conversation | None]:
        """The conversation a message arriving `now` belongs to, and the one this call ended.

        The active conversation is ended (reason `idle`) when its last activity is more than
        `idle_timeout` before `now` (exactly the timeout still continues it); a new one is
        then started at `now`. The caller summarises the ended one.
        """
        with self._write() as conn:
            ended = self._end_if_idle(conn, now, idle_timeout)
            active = self._active(conn)
            if active is None:
                active = self._create(conn, now)
            return active, ended

    def end_if_idle(self, now: datetime, idle_timeout: timedelta) -> Conversation | None:
        """End the active conversation if it went idle (for a periodic sweep); the ended one."""
        with self._write() as conn:
            return self._end_if_idle(conn, now, idle_timeout)

    def _end_if_idle(
        self, conn: sqlite3.Connection, now: datetime, idle_timeout: timedelta
    ) -> Conversation | None:
        """An idle conversation ends at its last activity: when the talking actually stopped.

        One with no message at all (its only request was cancelled) is deleted instead:
        there is nothing to summarise or show.
        """
        _ts(now)
        active = self._active(conn)
        if active is None or now - active.last_activity_at <= idle_timeout:
            return None
        if active.message_count == 0:
            conn.execute("DELETE FROM conversations WHERE id = ?", (active.id,))
            return None
        return self._end(conn, active.id, "idle", active.last_activity_at)

    def _active(self, conn: sqlite3.Connection) -> Conversation | None:
        row = conn.execute("SELECT * FROM conversation_rows c WHERE c.ended_at IS NULL").fetchone()
        return None if row is None else _conversation(row)

    def _get(self, conn: sqlite3.Connection, conversation_id: str) -> Conversation | None:
        row = conn.execute(
            "SELECT * FROM conversation_rows c WHERE c.id = ?",
            (conversation_id,),
        ).fetchone()
        return None if row is None else _conversation(row)

    def _require(self, conn: sqlite3.Connection, conversation_id: str) -> Conversation:
        conversation = self._get(conn, conversation_id)
        if conversation is None:
            raise ConversationNotFoundError(f"no conversation with id {conversation_id!r}")
        return conversation

    def _create(self, conn: sqlite3.Connection, now: datetime) -> Conversation:
        conversation_id = str(uuid.uuid4())
        at = _ts(now)
        conn.execute(
            "INSERT INTO conversations (id, started_at, last_activity_at) VALUES (?, ?, ?)",
            (conversation_id, at, at),
        )
        return self._require(conn, conversation_id)

    def _end(
        self, conn: sqlite3.Connection, conversation_id: str, reason: str, at: datetime
    ) -> Conversation:
        conn.execute(
            "UPDATE conversations SET ended_at = ?, end_reason = ? WHERE id = ? AND ended_at IS NULL",
            (_ts(at), reason, conversation_id),
        )
        # A pending question belongs to the conversation: once it is over, nobody answers it.
        conn.execute(
            "DELETE FROM conversation_states WHERE conversation_id = ?", (conversation_id,)
        )
        return self._require(conn, conversation_id)

    def end_conversation(
        self, conversation_id: str, reason: EndReason, at: datetime
    ) -> Conversation:
        """End a conversation now (e.g. the agent's `end_conversation`); already ended: unchanged.

        Record the exchange that asked for the end first: an ended conversation takes no more
        user or assistant messages.
        """
        _check(reason, END_REASONS, "end reason")
        with self._write() as conn:
            conversation = self._require(conn, conversation_id)
            if not conversation.active:
                return conversation
            return self._end(conn, conversation_id, reason, at)

    def set_summary(self, conversation_id: str, title: str, summary: str) -> Conversation:
        """Store the title and summary the micro-agent wrote (indexed for search)."""
        with self._write() as conn:
            self._require(conn, conversation_id)
            conn.execute(
                "UPDATE conversations SET title = ?, summary = ? WHERE id = ?",
                (title, summary, conversation_id),
            )
            return self._require(conn, conversation_id)

    def active_conversation(self) -> Conversation | None:
        with self._read() as conn:
            return self._active(conn)

    def get(self, conversation_id: str) -> Conversation | None:
        with self._read() as conn:
            return self._get(conn, conversation_id)

    def recent_ended(self, limit: int) -> list[Conversation]:
        """The most recently ended conversations, newest first, with their message counts."""
        with self._read() as conn:
            rows = conn.execute(
                "SELECT * FROM conversation_rows c "
                "WHERE c.ended_at IS NOT NULL ORDER BY c.ended_at DESC, c.seq DESC LIMIT ?",
                (max(0, limit),),
            ).fetchall()
        return [_conversation(row) for row in rows]

    def list_conversations(
        self, *, before: datetime | None = None, limit: int = 20
    ) -> list[Conversation]:
        """Conversations newest first (the active one included), for paging back in the chat page.

        `before` is the `started_at` of the last conversation of the previous page.
        """
        with self._read() as conn:
            if before is None:
                rows = conn.execute(
                    "SELECT * FROM conversation_rows c "
                    "ORDER BY c.started_at DESC, c.seq DESC LIMIT ?",
                    (max(0, limit),),
                ).fetchall()
            else:
                rows = conn.execute(
                    "SELECT * FROM conversation_rows c WHERE c.started_at < ? "
                    "ORDER BY c.started_at DESC, c.seq DESC LIMIT ?",
                    (_ts(before), max(0, limit)),
                ).fetchall()
        return [_conversation(row) for row in rows]

    # ----------------------------------------------------------------- messages

    def add_message(
        self,
        conversation_id: str,
        role: Role,
        content: str,
        *,
        source: Source,
        input_method: InputMethod | None = None,
        message_id: str | None = None,
        tools_used: Iterable[ToolUse | Mapping[str, Any]] = (),
        at: datetime,
        reply_to: int | str | None = None,
        kind: MessageKind | None = None,
        usage: Mapping[str, Any] | None = None,
    ) -> StoredMessage:
        """Append a message to a conversation's main line.

        `kind` defaults by role (request, answer, retrospection); only an `answer` makes its
        request processed.

        An assistant message answers `reply_to` (the user message's row id, or its inbox
        `message_id`), or by default the conversation's latest user message if that one has no
        answer yet (see `is_processed`). `tools_used` takes `ToolUse`s or their dict form
        (`input` is accepted for `input_summary`). Raises `MessageNotFoundError` for a
        `reply_to` that names no message,
        `ConversationEndedError` for a user or assistant message in an ended conversation
        (system messages, e.g. a retrospection, may still be added to it), and
        `DuplicateMessageError` when `message_id` was already recorded and answered.
        """
        new = _NewMessage(
            role,
            content,
            source,
            input_method,
            message_id,
            _tool_use_tuple(tools_used),
            at,
            None,
            kind if kind is not None else _DEFAULT_KIND.get(role, "answer"),
            usage,
        )
        new.validate()
        with self._write() as conn:
            if reply_to is not None:
                new = dataclasses.replace(new, reply_to=self._resolve_reply_to(conn, reply_to))
            return self._insert(conn, conversation_id, new)

    def add_exchange(
        self,
        conversation_id: str,
        request: str,
        answer: str,
        *,
        source: Source,
        input_method: InputMethod | None = None,
        message_id: str | None = None,
        tools_used: Iterable[ToolUse | Mapping[str, Any]] = (),
        asked_at: datetime,
        answered_at: datetime,
    ) -> tuple[StoredMessage, StoredMessage]:
        """The user's message and the agent's answer, in one transaction.

        This is the pipeline's commit point for a processed message: both rows exist or
        neither does, so `is_processed` can never see half an exchange.
        """
        user = _NewMessage(
            "user", request, source, input_method, message_id, (), asked_at, None, "request"
        )
        user.validate()
        tools = _tool_use_tuple(tools_used)
        _ts(answered_at)
        with self._write() as conn:
            asked = self._insert(conn, conversation_id, user)
            reply = _NewMessage(
                "assistant", answer, source, None, None, tools, answered_at, asked.row_id, "answer"
            )
            return asked, self._insert(conn, conversation_id, reply)

    def _insert(
        self, conn: sqlite3.Connection, conversation_id: str, new: _NewMessage
    ) -> StoredMessage:
        row = conn.execute(
            "SELECT ended_at FROM conversations WHERE id = ?", (conversation_id,)
        ).fetchone()
        if row is None:
            raise ConversationNotFoundError(f"no conversation with id {conversation_id!r}")
        if row["ended_at"] is not None and new.role != "system":
            raise ConversationEndedError(
                f"conversation {conversation_id} has ended; it takes no more {new.role} messages"
            )
        if new.message_id is not None:
            self._clear_interrupted(conn, new.message_id)
        reply_to = new.reply_to
        if new.kind == "answer" and reply_to is None:
            reply_to = self._unanswered_user_message(conn, conversation_id)
        created_at = _ts(new.at)
        tools_json = json.dumps([t.to_dict() for t in new.tools_used], ensure_ascii=False)
        cursor = conn.execute(
            "INSERT INTO messages (conversation_id, role, content, source, input_method, "
            "message_id, reply_to, tools_used, created_at, kind, usage) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                conversation_id,
                new.role,
                new.content,
                new.source,
                new.input_method,
                new.message_id,
                reply_to,
                tools_json,
                created_at,
                new.kind,
                None if new.usage is None else json.dumps(dict(new.usage)),
            ),
        )
        if new.usage is not None and new.role == "assistant":  # an answer's bill, once
            _spent(conn, _dt(created_at), new.kind, new.usage)
        if new.role != "system":
            conn.execute(
                "UPDATE conversations SET last_activity_at = MAX(last_activity_at, ?) WHERE id = ?",
                (created_at, conversation_id),
            )
        row_id = cursor.lastrowid
        assert row_id is not None
        return StoredMessage(
            row_id=row_id,
            conversation_id=conversation_id,
            role=new.role,
            content=new.content,
            source=new.source,
            input_method=new.input_method,
            message_id=new.message_id,
            tools_used=new.tools_used,
            created_at=_dt(created_at),
            branch=None,
            reply_to=reply_to,
            kind=new.kind,
            usage=new.usage,
        )

    def _resolve_reply_to(self, conn: sqlite3.Connection, reply_to: int | str) -> int:
        if isinstance(reply_to, int):
            row = conn.execute("SELECT id FROM messages WHERE id = ?", (reply_to,)).fetchone()
        else:
            row = conn.execute(
                "SELECT id FROM messages WHERE message_id = ?", (reply_to,)
            ).fetchone()
        if row is None:
            raise MessageNotFoundError(f"the message answered ({reply_to!r}) is not recorded")
        return int(row["id"])

    def _clear_interrupted(self, conn: sqlite3.Connection, message_id: str) -> None:
        """Refuse an answered duplicate; drop an unanswered one (an interrupted write being redone).

        A message recorded without its answer was not processed (`is_processed` is False), so
        the pipeline runs it again and records it again: the stale row makes way.
        """
        row = conn.execute(
            "SELECT u.id, EXISTS (SELECT 1 FROM messages a WHERE a.reply_to = u.id "
            "AND a.kind = 'answer') AS answered FROM messages u WHERE u.message_id = ?",
            (message_id,),
        ).fetchone()
        if row is None:
            return
        if row["answered"]:
            raise DuplicateMessageError(f"message id {message_id!r} was already recorded")
        conn.execute("DELETE FROM messages WHERE id = ?", (row["id"],))

    def _unanswered_user_message(
        self, conn: sqlite3.Connection, conversation_id: str
    ) -> int | None:
        row = conn.execute(
            "SELECT u.id, EXISTS (SELECT 1 FROM messages a WHERE a.reply_to = u.id "
            "AND a.kind = 'answer') AS answered "
            "FROM messages u WHERE u.conversation_id = ? AND u.branch IS NULL AND u.role = 'user' "
            "ORDER BY u.id DESC LIMIT 1",
            (conversation_id,),
        ).fetchone()
        return None if row is None or row["answered"] else int(row["id"])

    def has_user_message(self, message_id: str) -> bool:
        """Whether the user message with this inbox id is recorded (answered or not)."""
        with self._read() as conn:
            row = conn.execute(
                "SELECT EXISTS (SELECT 1 FROM messages WHERE message_id = ?)", (message_id,)
            ).fetchone()
        return bool(row[0])

    def is_processed(self, message_id: str) -> bool:
        """True when the message with this inbox id is recorded together with its answer.

        "Processed" means the exchange reached history (the pipeline's commit point), wherever
        it is now (an archived branch counts). A user row without an answer is an interrupted
        write: not processed, and recording the message again replaces it.
        """
        with self._read() as conn:
            row = conn.execute(
                "SELECT EXISTS (SELECT 1 FROM messages u JOIN messages a ON a.reply_to = u.id "
                "AND a.kind = 'answer' WHERE u.message_id = ?)",
                (message_id,),
            ).fetchone()
        return bool(row[0])

    def answer_for(self, message_id: str) -> StoredMessage | None:
        """The recorded answer to the user message with this inbox id, if there is one.

        A restart that finds a message still in the inbox but already answered delivers this
        answer instead of running the request again.
        """
        with self._read() as conn:
            row = conn.execute(
                "SELECT a.* FROM messages u JOIN messages a ON a.reply_to = u.id "
                "AND a.kind = 'answer' WHERE u.message_id = ? ORDER BY a.id DESC LIMIT 1",
                (message_id,),
            ).fetchone()
        return None if row is None else _message(row)

    def add_usage(
        self, row_id: int, usage: Mapping[str, Any], *, at: datetime | None = None
    ) -> dict[str, Any] | None:
        """Add what an attempt cost that ended without an answer (failed, refused, stopped)
        to its request's record: a request's `usage` is the sum over such attempts. The
        new sum (None if the request is gone). Counted in `spending` at `at` (now)."""
        with self._write() as conn:
            row = conn.execute("SELECT usage FROM messages WHERE id = ?", (row_id,)).fetchone()
            if row is None:
                return None
            before = _usage(row["usage"])
            total = sum_usage_records([before, usage] if before else [usage])
            conn.execute("UPDATE messages SET usage = ? WHERE id = ?", (json.dumps(total), row_id))
            _spent(conn, at or datetime.now(UTC), "unanswered", usage)
            return total

    def add_side_cost(
        self,
        job: SideJob,
        usage: Mapping[str, Any],
        *,
        at: datetime,
        conversation_id: str | None = None,
    ) -> SideCost:
        """Keep what a side job's call cost, with the conversation it served (if it still
        exists: a conversation dropped meanwhile keeps nothing)."""
        if job not in SIDE_JOBS:
            raise ValueError(f"unknown side job {job!r}")
        with self._write() as conn:
            if (
                conversation_id is not None
                and not conn.execute(
                    "SELECT 1 FROM conversations WHERE id = ?", (conversation_id,)
                ).fetchone()
            ):
                conversation_id = None
            _spent(conn, at, job, usage, conversation_id)
        return SideCost(job, usage, _dt(_ts(at)), conversation_id)

    def add_spending(self, kind: str, usage: Mapping[str, Any], *, at: datetime) -> None:
        """A bill paid outside any conversation (`ask` on the command line)."""
        with self._write() as conn:
            _spent(conn, at, kind, usage)

    def usage_since(self, since: datetime) -> list[Mapping[str, Any]]:
        """Every bill paid from `since` on (answers, attempts without an answer, side jobs),
        whatever retention or a cleared history has removed from the history since."""
        with self._read() as conn:
            rows = conn.execute(
                "SELECT usage FROM spending WHERE at >= ? ORDER BY id", (_ts(since),)
            ).fetchall()
        return [u for u in (_usage(row["usage"]) for row in rows) if u]

    def archived_usage(self, conversation_id: str) -> list[Mapping[str, Any]]:
        """What answers and unanswered attempts cost on the branches edits archived: paid
        for, though no longer shown."""
        with self._read() as conn:
            rows = conn.execute(
                "SELECT usage FROM messages WHERE conversation_id = ? AND branch IS NOT NULL "
                "AND usage IS NOT NULL ORDER BY id",
                (conversation_id,),
            ).fetchall()
        return [u for u in (_usage(row["usage"]) for row in rows) if u]

    def side_costs(self, conversation_id: str) -> list[SideCost]:
        """What side jobs spent on this conversation, oldest first."""
        with self._read() as conn:
            rows = conn.execute(
                "SELECT kind, usage, at FROM spending WHERE conversation_id = ? ORDER BY id",
                (conversation_id,),
            ).fetchall()
        return [
            SideCost(row["kind"], _usage(row["usage"]) or {}, _dt(row["at"]), conversation_id)
            for row in rows
            if row["kind"] in SIDE_JOBS
        ]

    def user_message(self, message_id: str) -> StoredMessage | None:
        """The recorded user message with this inbox id (answered or not)."""
        with self._read() as conn:
            row = conn.execute(
                "SELECT * FROM messages WHERE message_id = ?", (message_id,)
            ).fetchone()
        return None if row is None else _message(row)

    def messages(
        self, conversation_id: str, *, include_archived: bool = False
    ) -> list[StoredMessage]:
        """A conversation's messages in order: the main line, or every branch too."""
        with self._read() as conn:
            if include_archived:
                rows = conn.execute(
                    "SELECT * FROM messages WHERE conversation_id = ? ORDER BY id",
                    (conversation_id,),
                ).fetchall()
            else:
                rows = conn.execute(
                    "SELECT * FROM messages "
                    "WHERE conversation_id = ? AND branch IS NULL ORDER BY id",
                    (conversation_id,),
                ).fetchall()
        return [_message(row) for row in rows]

    def fork(self, message_row_id: int) -> Conversation:
        """Archive that message and every later one of the main line as a new branch.

        Only in the active conversation. The archived messages are kept (numbered branch,
        listed with `include_archived`), not shown, not in the context, not searched; new
        messages continue the main line. The conversation's saved state is dropped: a
        question the agent was waiting on was asked in the archived part.
        """
        with self._write() as conn:
            row = conn.execute(
                "SELECT conversation_id, branch FROM messages WHERE id = ?", (message_row_id,)
            ).fetchone()
            if row is None:
                raise MessageNotFoundError(f"no message with row id {message_row_id}")
            conversation_id: str = row["conversation_id"]
            if row["branch"] is not None:
                raise ValueError(
                    f"message {message_row_id} is already in archived branch {row['branch']}"
                )
            conversation = self._require(conn, conversation_id)
            if not conversation.active:
                raise ConversationEndedError("only the active conversation can be forked")
            branch = conn.execute(
                "SELECT COALESCE(MAX(branch), 0) + 1 FROM messages WHERE conversation_id = ?",
                (conversation_id,),
            ).fetchone()[0]
            conn.execute(
                "UPDATE messages SET branch = ? "
                "WHERE conversation_id = ? AND branch IS NULL AND id >= ?",
                (branch, conversation_id, message_row_id),
            )
            conn.execute(
                "DELETE FROM conversation_states WHERE conversation_id = ?", (conversation_id,)
            )
            return self._require(conn, conversation_id)

    # ----------------------------------------------------------------- retention

    def enforce_retention(self, max_conversations: int) -> int:
        """Drop the oldest ended conversations beyond `max_conversations` in all; how many.

        The active conversation counts towards the limit but is never dropped. Messages,
        states and index rows go with their conversation (foreign keys and triggers).
        """
        if max_conversations < 1:
            raise ValueError("max_conversations must be at least 1")
        with self._write() as conn:
            total = int(conn.execute("SELECT COUNT(*) FROM conversations").fetchone()[0])
            excess = total - max_conversations
            if excess <= 0:
                return 0
            cursor = conn.execute(
                "DELETE FROM conversations WHERE seq IN (SELECT seq FROM conversations "
                "WHERE ended_at IS NOT NULL ORDER BY ended_at, seq LIMIT ?)",
                (excess,),
            )
            return cursor.rowcount

    def clear_all(self) -> None:
        """Delete every conversation, message, branch and state, and scrub them from the file.

        The `spending` ledger stays: it holds no text, and a month's spending is still true.

        The user asked for the history to be gone, so the file is vacuumed and the WAL
        truncated: the deleted text does not linger in free pages.
        """
        with self._write() as conn:
            conn.execute("DELETE FROM conversations")
            conn.execute("INSERT INTO messages_fts (messages_fts) VALUES ('optimize')")
            conn.execute("INSERT INTO conversations_fts (conversations_fts) VALUES ('optimize')")
        with self._lock:
            self._conn.execute("VACUUM")
            self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    # ----------------------------------------------------------------- search

    def search(self, query: str, limit: int = 10) -> list[SearchHit]:
        """Ended conversations whose messages (main line) or title and summary hold every word.

        Best match first (bm25), one hit per conversation. The query is free text: see
        `fts_query` for why it can never be an FTS5 syntax error.
        """
        match = fts_query(query)
        if match is None or limit <= 0:
            return []
        with self._read() as conn:
            rows = conn.execute(
                """
                WITH hits AS (
                    SELECT c.seq AS seq, m.id AS message_row_id,
                           snippet(messages_fts, 0, '[', ']', '…', 12) AS snippet,
                           bm25(messages_fts) AS rank
                    FROM messages_fts
                    JOIN messages m ON m.id = messages_fts.rowid
                    JOIN conversations c ON c.id = m.conversation_id
                    WHERE messages_fts MATCH :match AND m.branch IS NULL
                          AND c.ended_at IS NOT NULL
                    UNION ALL
                    SELECT c.seq, NULL,
                           snippet(conversations_fts, -1, '[', ']', '…', 12),
                           bm25(conversations_fts)
                    FROM conversations_fts
                    JOIN conversations c ON c.seq = conversations_fts.rowid
                    WHERE conversations_fts MATCH :match AND c.ended_at IS NOT NULL
                ),
                best AS (
                    SELECT seq, message_row_id, snippet, rank,
                           ROW_NUMBER() OVER (
                               PARTITION BY seq ORDER BY rank, message_row_id IS NOT NULL
                           ) AS n
                    FROM hits
                )
                SELECT best.message_row_id, best.snippet, c.*
                FROM best JOIN conversation_rows c ON c.seq = best.seq
                WHERE best.n = 1
                ORDER BY best.rank, c.ended_at DESC
                LIMIT :limit
                """,
                {"match": match, "limit": limit},
            ).fetchall()
        return [
            SearchHit(_conversation(row), row["snippet"] or "", row["message_row_id"])
            for row in rows
        ]

    # ----------------------------------------------------------------- states

    def save_state(self, conversation_id: str, state: ConversationState, at: datetime) -> None:
        """Persist the agent's state for a conversation (e.g. waiting for an answer)."""
        payload = json.dumps(state.to_dict(), ensure_ascii=False)
        with self._write() as conn:
            self._require(conn, conversation_id)
            conn.execute(
                "INSERT INTO conversation_states (conversation_id, state, updated_at) "
                "VALUES (?, ?, ?) ON CONFLICT (conversation_id) DO UPDATE SET "
                "state = excluded.state, updated_at = excluded.updated_at",
                (conversation_id, payload, _ts(at)),
            )

    def load_state(self, conversation_id: str) -> ConversationState | None:
        """The saved state, or None (none saved, dropped as stale, or unreadable)."""
        with self._read() as conn:
            row = conn.execute(
                "SELECT state FROM conversation_states WHERE conversation_id = ?",
                (conversation_id,),
            ).fetchone()
        if row is None:
            return None
        try:
            data = json.loads(row["state"])
            if not isinstance(data, dict):
                raise TypeError("not an object")
            return ConversationState.from_dict(data)
        except (ValueError, TypeError) as exc:
            log.warning("Ignoring unreadable state of conversation %s: %s", conversation_id, exc)
            return None

    def drop_stale_states(self, older_than: datetime) -> int:
        """Drop states last saved before `older_than` (a question nobody answered); how many."""
        with self._write() as conn:
            cursor = conn.execute(
                "DELETE FROM conversation_states WHERE updated_at < ?", (_ts(older_than),)
            )
            return cursor.rowcount

    # ----------------------------------------------------------------- health

    def integrity_check(self) -> str:
        """`ok`, or what SQLite's integrity check and the FTS5 index checks found wrong.

        Reads the whole file: for start-up or a health command, not the message path.
        """
        with self._lock:
            rows = self._conn.execute("PRAGMA integrity_check").fetchall()
            problems = [str(row[0]) for row in rows if str(row[0]) != "ok"]
            for table, check in _FTS_CHECKS:
                try:
                    self._conn.execute(check)
                except sqlite3.DatabaseError as exc:
                    problems.append(f"{table}: {exc}")
            for table, count in _FTS_SYNC_CHECKS:
                stray = int(self._conn.execute(count).fetchone()[0])
                if stray:
                    problems.append(f"{table}: {stray} rows out of sync with their table")
        return "\n".join(problems) if problems else "ok"

    def rebuild_search_index(self) -> None:
        """Rebuild both full-text indexes from the tables (the repair for an FTS problem)."""
        with self._write() as conn:
            conn.execute("INSERT INTO messages_fts (messages_fts) VALUES ('rebuild')")
            conn.execute("INSERT INTO conversations_fts (conversations_fts) VALUES ('rebuild')")
