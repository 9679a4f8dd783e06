"""SmartHole notifications that reach the user: titles that name their request, and pacing.

SmartHole's notification queue coalesces notifications whose titles match within
5 seconds (the later one is lost, or replaces the queued one's body), shows at most 10 a minute
and at least 1 second apart, and drops `low` then `normal` ones when more than 20 wait. So:

- every title names its request and its kind (`notification_title`), and the outbox never
  lets two titles repeat within the coalescing window (a " (2)" is added when two requests
  read the same);
- the outbox (`NotificationOutbox`) paces our own notifications under those limits, merges
  waiting progress updates of one request into one notification, and never drops a final
  answer, failure or question: they go out `high` (never dropped by SmartHole's overflow
  rule), are kept while SmartHole is away (for `hold` seconds), and are flushed at shutdown.

Nothing here blocks: `submit` sends at once when the budget allows, otherwise queues and
returns, and a background task sends the rest on time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from pathlib import PurePosixPath
from typing import Final, Literal, TypeAlias

from smarthole_notes.smarthole.protocol import Priority, build_notification

__all__ = [
    "FINAL_KINDS",
    "MAX_TITLE_CHARS",
    "NotificationKind",
    "NotificationLimits",
    "NotificationOutbox",
    "NotificationOutcome",
    "NotificationResult",
    "notification_title",
]

log = logging.getLogger("smarthole_notes.smarthole")

NotificationKind: TypeAlias = Literal["answer", "failure", "progress", "question"]
FINAL_KINDS: Final[frozenset[str]] = frozenset({"answer", "failure", "question"})
"""Kinds that are never dropped or merged away: the user must hear them."""

MAX_TITLE_CHARS: Final = 60
"""SmartHole shows the title as a notification heading: a line, not a paragraph."""

_KIND_WORDS: Final[Mapping[str, str]] = {
    "failure": "not done",
    "progress": "update",
    "question": "question",
}
_SNIPPET_MIN: Final = 12
_ELLIPSIS: Final = "…"
_TAG_CHARS: Final = re.compile(r"[<>]")  # SmartHole strips HTML tags: keep none in a title
_SPACES: Final = re.compile(r"\s+")


# --------------------------------------------------------------------------- titles


def _snippet(text: str, budget: int) -> str:
    """The first words of `text`, cut at a word boundary to at most `budget` characters."""
    words = _SPACES.sub(" ", _TAG_CHARS.sub("", text)).strip().strip("\"“”'")
    if len(words) <= budget:
        return words
    cut = words[: budget - 1]
    space = cut.rfind(" ")
    if space >= budget // 2:
        cut = cut[:space]
    return cut.rstrip(" ,.;:-") + _ELLIPSIS


def _note_label(note: str) -> str:
    name = PurePosixPath(note.strip("/")).name or note
    return name[:-3] if name.lower().endswith(".md") else name


def notification_title(
    kind: NotificationKind,
    request_text: str,
    *,
    note: str | None = None,
    changed: bool = False,
) -> str:
    """A short title that names the request and says what kind of news this is.

    `“add eggs to my shopping…” – done`, or with the note it touched,
    `Shopping: “add eggs to my…” – done`. An answer reads "done" when notes changed
    (`changed`), "answered" otherwise; a failure "not done"; progress "update"; a question
    "question". At most `MAX_TITLE_CHARS` characters. Two requests with the same words get the
    same title here; `NotificationOutbox` adds the disambiguator when they would meet.
    """
    word = ("done" if changed else "answered") if kind == "answer" else _KIND_WORDS[kind]
    suffix = f" – {word}"
    label = f"{_note_label(note)[:24]}: " if note else ""
    budget = MAX_TITLE_CHARS - len(suffix) - len(label) - 2  # the two quotes
    snippet = _snippet(request_text, max(budget, _SNIPPET_MIN))
    if not snippet:
        return f"{label.rstrip(': ') or 'Notes'}{suffix}"
    return f"{label}“{snippet}”{suffix}"


# --------------------------------------------------------------------------- outbox


class NotificationOutcome(StrEnum):
    """What became of one notification, as far as we can know when `submit` returns."""

    SENT = "sent"  # written to SmartHole's socket now
    QUEUED = "queued"  # waits in our outbox (pacing, or SmartHole not connected: finals only)
    MERGED = "merged"  # added as a line to a waiting update of the same request
    NOT_CONNECTED = "not_connected"  # not sent and not kept: SmartHole is not connected


@dataclass(frozen=True)
class NotificationResult:
    """The answer of `send_notification`: what happened, the title used, in words."""

    outcome: NotificationOutcome
    title: str
    detail: str

    @property
    def will_reach_smarthole(self) -> bool:
        """Sent, or kept to be sent (it may still fail if SmartHole stays away)."""
        return self.outcome is not NotificationOutcome.NOT_CONNECTED


@dataclass(frozen=True)
class NotificationLimits:
    """Our own pacing, a little inside SmartHole's limits so jitter never trips them."""

    min_interval: float = 1.1  # SmartHole: at least 1 s apart
    per_window: int = 10  # SmartHole: at most 10 ...
    window: float = 61.0  # ... per 60 s
    title_guard: float = 7.0  # SmartHole coalesces equal titles within 5 s (sliding)
    hold: float = 300.0  # how long a final waits for SmartHole to come back

    def scaled(self, factor: float) -> NotificationLimits:
        """The same limits with every duration multiplied by `factor` (for tests)."""
        return replace(
            self,
            min_interval=self.min_interval * factor,
            window=self.window * factor,
            title_guard=self.title_guard * factor,
            hold=self.hold * factor,
        )


@dataclass
class _Pending:
    message_id: str
    kind: NotificationKind
    title: str
    lines: list[str]
    priority: Priority
    queued_at: float
    earlier: list[str] = field(default_factory=list)  # progress folded into a final

    @property
    def final(self) -> bool:
        return self.kind in FINAL_KINDS

    def body(self) -> str:
        text = "\n".join(self.lines)
        if self.earlier:
            text += "\n\nEarlier: " + "\n".join(self.earlier)
        return text


_PRIORITY_RANK: Final[Mapping[str, int]] = {"high": 0, "normal": 1, "low": 2}

Send = Callable[[str, str], Awaitable[bool]]  # (message id, frame) -> sent?


class NotificationOutbox:
    """Paces our notifications to SmartHole's limits; finals are never dropped.

    `send(message_id, frame)` writes a frame (False if it could not), `connected()` says
    whether a registered connection exists now. Call `connection_ready()` when the client
    registers, so held notifications go out, and `close()` when the client stops.
    """

    def __init__(
        self,
        send: Send,
        connected: Callable[[], bool],
        *,
        limits: NotificationLimits | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._send = send
        self._connected = connected
        self.limits = limits or NotificationLimits()
        self._clock = clock
        self._pending: list[_Pending] = []
        self._sent_times: deque[float] = deque()
        self._recent_titles: dict[str, float] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self._change = asyncio.Event()
        self._busy = False  # a send is under way (the background task awaits the socket)
        self.dropped: deque[tuple[str, str, str]] = deque(maxlen=100)  # (id, title, why)

    # ------------------------------------------------------------------ state

    @property
    def pending(self) -> int:
        """Notifications waiting to be sent."""
        return len(self._pending)

    def pending_for(self, message_id: str) -> list[str]:
        """Titles waiting for `message_id`."""
        return [p.title for p in self._pending if p.message_id == message_id]

    async def wait_empty(self) -> None:
        """Wait until nothing waits (wrap it in `asyncio.timeout`)."""
        while self._pending:
            event = self._change
            await event.wait()

    # ------------------------------------------------------------------ submitting

    async def submit(
        self,
        message_id: str,
        title: str,
        body: str,
        *,
        kind: NotificationKind,
        priority: Priority | None = None,
    ) -> NotificationResult:
        """Send now if the budget allows, else queue (or merge); never waits for the budget."""
        if kind not in FINAL_KINDS and kind != "progress":
            raise ValueError(f"unknown notification kind {kind!r}")
        chosen: Priority = priority or ("high" if kind in FINAL_KINDS else "normal")
        build_notification(message_id, title or "Notes", body, chosen)  # programming errors
        now = self._clock()
        self._expire(now)
        title = title or "Notes"
        if kind == "progress":
            waiting = self._waiting_progress(message_id)
            if waiting is not None:
                waiting.lines.append(body)
                return NotificationResult(
                    NotificationOutcome.MERGED,
                    waiting.title,
                    "merged with the previous update of this request, which is still waiting "
                    "to be sent (SmartHole allows only so many notifications a minute)",
                )
            if not self._connected():
                return NotificationResult(
                    NotificationOutcome.NOT_CONNECTED, title, "SmartHole is not connected"
                )
        item = _Pending(message_id, kind, self._unique(title, now), [body], chosen, now)
        if item.final:
            for waiting_update in [
                p for p in self._pending if p.message_id == message_id and p.kind == "progress"
            ]:
                self._pending.remove(waiting_update)
                item.earlier.extend(waiting_update.lines)
        self._pending.append(item)
        self._pending.sort(key=lambda p: (_PRIORITY_RANK[p.priority], p.queued_at))
        if (
            self._connected()
            and not self._busy
            and self._pending[0] is item
            and self._slot(now) <= now
        ):
            self._pending.remove(item)
            if await self._deliver(item, now):
                return NotificationResult(NotificationOutcome.SENT, item.title, "sent")
            if not item.final:
                return NotificationResult(
                    NotificationOutcome.NOT_CONNECTED, item.title, "SmartHole is not connected"
                )
            self._pending.insert(0, item)
        self._ensure_task()
        if not self._connected():
            return NotificationResult(
                NotificationOutcome.QUEUED,
                item.title,
                "SmartHole is not connected; kept and sent if it reconnects within "
                f"{self.limits.hold / 60:g} minutes",
            )
        return NotificationResult(
            NotificationOutcome.QUEUED,
            item.title,
            f"queued behind {len(self._pending) - 1} other notification(s) "
            "(SmartHole shows at most 10 a minute)",
        )

    def _waiting_progress(self, message_id: str) -> _Pending | None:
        for item in self._pending:
            if item.message_id == message_id and item.kind == "progress":
                return item
        return None

    def _unique(self, title: str, now: float) -> str:
        """`title`, or `title (2)`, ... so it equals no title sent lately or still waiting."""
        guard = self.limits.title_guard
        for old, at in list(self._recent_titles.items()):
            if now - at > guard:
                del self._recent_titles[old]
        taken = set(self._recent_titles) | {p.title for p in self._pending}
        if title not in taken:
            return title
        number = 2
        while f"{title} ({number})" in taken:
            number += 1
        return f"{title} ({number})"

    # ------------------------------------------------------------------ pacing

    def _slot(self, now: float) -> float:
        """The earliest time our next notification may go."""
        limits = self.limits
        while self._sent_times and now - self._sent_times[0] >= limits.window:
            self._sent_times.popleft()
        slot = now
        if self._sent_times:
            slot = max(slot, self._sent_times[-1] + limits.min_interval)
        if len(self._sent_times) >= limits.per_window:
            slot = max(slot, self._sent_times[-limits.per_window] + limits.window)
        return slot

    async def _deliver(self, item: _Pending, now: float) -> bool:
        frame = build_notification(item.message_id, item.title, item.body(), item.priority)
        self._busy = True
        try:
            sent = await self._send(item.message_id, frame)
        finally:
            self._busy = False
        if sent:
            self._sent_times.append(now)
            self._recent_titles[item.title] = now
        self._changed()
        return sent

    def _expire(self, now: float) -> None:
        """Drop finals held too long while SmartHole was away (and progress while away)."""
        if self._connected():
            return
        for item in list(self._pending):
            if not item.final or now - item.queued_at > self.limits.hold:
                self._pending.remove(item)
                self._drop(item, "SmartHole was not connected in time")
                self._changed()

    def _changed(self) -> None:
        event, self._change = self._change, asyncio.Event()
        event.set()

    def _drop(self, item: _Pending, why: str) -> None:
        self.dropped.append((item.message_id, item.title, why))
        level = logging.WARNING if item.final else logging.INFO
        log.log(
            level, "Notification %r for message %s not sent: %s", item.title, item.message_id, why
        )

    def connection_ready(self) -> None:
        """The client registered: held notifications can go."""
        self._wake.set()

    def _ensure_task(self) -> None:
        if self._closed:
            return
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="smarthole-notes notifications")
        self._wake.set()

    async def _run(self) -> None:
        while self._pending and not self._closed:
            now = self._clock()
            self._expire(now)
            if not self._pending:
                return
            self._wake.clear()
            if not self._connected():
                wait = self.limits.hold
                for item in self._pending:
                    wait = min(wait, item.queued_at + self.limits.hold - now)
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(max(wait, 0.0) + 0.001):
                        await self._wake.wait()
                continue
            slot = self._slot(now)
            if slot > now:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(slot - now):
                        await self._wake.wait()
                continue
            item = self._pending.pop(0)
            if not await self._deliver(item, self._clock()):
                if item.final:
                    self._pending.insert(0, item)
                else:
                    self._drop(item, "SmartHole connection lost")
                    self._changed()

    async def flush_now(self) -> None:
        """Send every waiting final at once, ignoring our pacing (the client is stopping).

        SmartHole's own queue then paces them; as `high` they survive its overflow rule.
        Waiting progress updates are dropped: they would only delay the answers.
        """
        pending, self._pending = self._pending, []
        for item in pending:
            sent = item.final and self._connected() and await self._deliver(item, self._clock())
            if not sent:
                self._drop(item, "the SmartHole connection is closing")
        self._changed()

    async def close(self) -> None:
        """Stop the background task (after `flush_now`)."""
        self._closed = True
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def reopen(self) -> None:
        """The client starts again after a stop."""
        self._closed = False
        if self._pending:
            self._ensure_task()
