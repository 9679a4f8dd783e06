"""The durable inbox: every message is on disk before anything else happens to it.

One JSON file per message in `<vault>/.smarthole/inbox/`, written atomically and fsynced.
A message leaves the inbox only when it has been answered and recorded, so a crash or an
outage never loses one. The methods are synchronous file work; async callers use
`asyncio.to_thread`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import threading
import time
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, TypeAlias, get_args

from smarthole_notes.durable import fsync_folder, write_file_atomically

log = logging.getLogger(__name__)

Source = Literal["smarthole", "chat"]
StoredState: TypeAlias = Literal[
    "queued", "waiting_for_key", "retry_scheduled", "failed", "refused"
]
"""A waiting message's state as kept in its inbox file (it survives restarts):
queued (to be processed as soon as its turn comes), waiting_for_key (processed once an API key
is set), retry_scheduled (failed for a transient reason; tried again at `next_attempt_at`),
failed (a retry cannot fix it, or the schedule is spent: it waits for the user), refused
(Claude declined it: it waits for the user)."""
DeliveryState: TypeAlias = StoredState | Literal["processing"]
STORED_STATES = frozenset(get_args(StoredState))
MAX_ID_LENGTH = 256
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def inbox_folder(vault: Path) -> Path:
    return vault / ".smarthole" / "inbox"


def file_name_for(message_id: str) -> str:
    """A safe, unique file name for any id: readable part plus a hash of the exact id.

    `../x`, `a/b`, `CON`, NUL bytes or 10 KB of text all become a plain file name, and
    two ids that sanitise alike (`a/b`, `a_b`) still get different files.
    """
    readable = _UNSAFE.sub("_", message_id).strip("._")[:60] or "message"
    digest = hashlib.sha256(message_id.encode("utf-8", "surrogatepass")).hexdigest()[:16]
    return f"{readable}-{digest}.json"


@dataclass(frozen=True, slots=True)
class InboxMessage:
    id: str
    text: str
    source: Source
    timestamp: str
    """When the message was sent (ISO 8601), as the sender said, or when received."""
    metadata: dict[str, Any] = field(default_factory=dict)
    received_ns: int = field(default_factory=time.time_ns)
    attempts: int = 0
    """How many times processing started: more than one means an earlier run was interrupted."""
    last_error: str | None = None
    """The last failure, for logs (error code and detail)."""
    state: StoredState = "queued"
    next_attempt_at: str | None = None
    """When an automatic retry is due (ISO 8601, UTC), for `retry_scheduled`."""
    error: str | None = None
    """The sentence the user was told about the last failure."""
    retries: int = 0
    """Automatic retries scheduled so far (an index into the retry schedule)."""

    def view(self) -> MessageState:
        """What the chat page, the API and `inbox list` show of this message."""
        return MessageState(
            self.state,
            datetime.fromisoformat(self.next_attempt_at) if self.next_attempt_at else None,
            self.error,
            self.attempts,
        )

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), ensure_ascii=False, indent=1).encode()

    @classmethod
    def from_json(cls, data: bytes) -> InboxMessage:
        raw = json.loads(data)
        if not isinstance(raw, dict):
            raise ValueError("an inbox file must hold a JSON object")
        source = raw.get("source")
        if source not in ("smarthole", "chat"):
            raise ValueError(f"unknown source {source!r}")
        metadata = raw.get("metadata")
        error = raw.get("last_error")
        state = raw.get("state", "queued")
        if state not in STORED_STATES:
            state = "queued"
        next_attempt = raw.get("next_attempt_at")
        if isinstance(next_attempt, str):
            try:
                datetime.fromisoformat(next_attempt)
            except ValueError:
                next_attempt = None
        user_error = raw.get("error")
        return cls(
            id=str(raw["id"]),
            text=str(raw["text"]),
            source=source,
            timestamp=str(raw.get("timestamp", "")),
            metadata=metadata if isinstance(metadata, dict) else {},
            received_ns=int(raw.get("received_ns", 0)),
            attempts=int(raw.get("attempts", 0)),
            last_error=error if isinstance(error, str) else None,
            state=state,
            next_attempt_at=next_attempt if isinstance(next_attempt, str) else None,
            error=user_error if isinstance(user_error, str) else None,
            retries=int(raw.get("retries", 0)),
        )


@dataclass(frozen=True, slots=True)
class MessageState:
    """A message still in the inbox, as the user is shown it."""

    state: DeliveryState
    next_attempt_at: datetime | None = None
    error: str | None = None
    attempts: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "next_attempt_at": self.next_attempt_at.isoformat() if self.next_attempt_at else None,
            "error": self.error,
        }


class Inbox:
    """Pending messages, oldest first. Safe to use from several threads."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._lock = threading.Lock()

    def _path(self, message_id: str) -> Path:
        return self.folder / file_name_for(message_id)

    def put(self, message: InboxMessage) -> bool:
        """Store a new message durably; False (and nothing written) if that id is already here."""
        if not message.id or len(message.id) > MAX_ID_LENGTH:
            raise ValueError(f"a message id must be 1 to {MAX_ID_LENGTH} characters")
        with self._lock:
            self.folder.mkdir(parents=True, exist_ok=True)
            path = self._path(message.id)
            if path.exists():
                return False
            write_file_atomically(path, message.to_json(), mode=0o600, exact=True)
            return True

    def get(self, message_id: str) -> InboxMessage | None:
        try:
            return InboxMessage.from_json(self._path(message_id).read_bytes())
        except FileNotFoundError:
            return None

    def __contains__(self, message_id: object) -> bool:
        return isinstance(message_id, str) and self._path(message_id).exists()

    def update(self, message_id: str, **changes: Any) -> InboxMessage | None:
        """Rewrite a message's bookkeeping (attempts, last_error) durably."""
        with self._lock:
            current = self.get(message_id)
            if current is None:
                return None
            updated = replace(current, **changes)
            write_file_atomically(self._path(message_id), updated.to_json(), mode=0o600, exact=True)
            return updated

    def mark_started(self, message_id: str) -> InboxMessage | None:
        current = self.get(message_id)
        return None if current is None else self.update(message_id, attempts=current.attempts + 1)

    def remove(self, message_id: str) -> None:
        with self._lock:
            try:
                self._path(message_id).unlink()
            except FileNotFoundError:
                return
            fsync_folder(self.folder)

    def pending(self) -> list[InboxMessage]:
        """Every message still here, oldest first. Unreadable files are logged and skipped."""
        messages: list[InboxMessage] = []
        try:
            entries = list(os.scandir(self.folder))
        except FileNotFoundError:
            return []
        for entry in entries:
            if not entry.name.endswith(".json") or entry.name.startswith("."):
                continue
            try:
                messages.append(InboxMessage.from_json(Path(entry.path).read_bytes()))
            except (OSError, ValueError, KeyError, TypeError) as exc:
                log.warning("Skipping unreadable inbox file %s: %s", entry.name, exc)
        messages.sort(key=lambda m: (m.received_ns, m.id))
        return messages
