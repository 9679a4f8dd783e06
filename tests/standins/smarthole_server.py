"""A stand-in for SmartHole's WebSocket server, for tests.

`SmartHoleStandIn` is a real WebSocket server on 127.0.0.1 (an ephemeral port, kept across
`restart`) built on `websockets.asyncio.server`. It speaks protocol.md from SmartHole's side:

- validates each `registration` (name rules, description 1..1024 characters, duplicate names
  among connected clients, a second registration on the same connection) and answers with a
  `registration_response`; `script_registration` overrides the next answers (any code, no
  answer at all, frames sent before the answer);
- `route(client, text, ...)` sends a `message` frame to a registered client and returns its id;
  routing the same id again is a re-delivery; `send_raw` / `send_json` send anything at all;
- pings every client every `ping_interval` seconds (default 30) and drops a client whose pong
  has not come within `ping_timeout` (default 10), recording each pong's round trip;
- records every `response` frame with its monotonic time and the delivery it answers, and
  applies SmartHole's deadline (default 30 s): a delivery with no response in time is marked
  rejected by timeout (`Delivery.outcome == "timed_out"`); a response after that is `late`;
- can drop every connection abruptly, stop, start again and restart on the same port;
- runs every `notification` through SmartHole's notification queue (protocol.md, and the real
  router's `notification-queue.ts`): a title equal to one seen within 5 s is coalesced (the
  still-queued one takes the later body with "(N occurrences)" appended, or the later one is
  dropped when the earlier was already shown); at most 10 shown per 60 s and at least 1 s
  apart; `high` shown at once when that allows, else queued ahead of the rest; more than 20
  waiting drops the newest `low`, then the newest `normal`. `shown` records what the user
  actually saw, with times, and `lost` what never reached them and why. `notification_time_scale`
  multiplies every one of those durations, so tests need not wait minutes.

Use it inside a pytest-asyncio test (`async with SmartHoleStandIn() as hole:`), or from a
background thread with its own event loop (`with SmartHoleStandIn.in_thread() as hole:`,
blocking methods of the same names) for tests that drive the service as a subprocess.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import re
import threading
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Literal, Self, TypeVar

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

__all__ = [
    "Delivery",
    "LostNotification",
    "PingTimeout",
    "Pong",
    "ProtocolError",
    "RecordedResponse",
    "Registration",
    "ScriptedRegistration",
    "ShownNotification",
    "SmartHoleStandIn",
    "ThreadedSmartHole",
]

log = logging.getLogger("tests.standins.smarthole")

T = TypeVar("T")

_NAME_RE = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,63}")
_MAX_DESCRIPTION = 1024
# What JavaScript's String.prototype.trim() strips (listed by Node 20 over every code point).
_JS_SPACE = (
    "\t\n\v\f\r \u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007"
    "\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"
)


def _js_length(text: str) -> int:
    """JavaScript's `length`: UTF-16 code units."""
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


_RESPONSE_TYPES = ("ack", "reject", "notification")
_PRIORITIES = ("low", "normal", "high")
DEFAULT_ROUTING_REASON = "The router stand-in matched this client"

Outcome = Literal["pending", "answered", "timed_out"]

# SmartHole's notification queue (src/services/notification-queue.ts defaults), in seconds.
COALESCING_WINDOW = 5.0
MIN_INTERVAL = 1.0
RATE_WINDOW = 60.0
MAX_PER_WINDOW = 10
MAX_QUEUE_DEPTH = 20
_PRIORITY_RANK = {"high": 3, "normal": 2, "low": 1}


@dataclass
class Registration:
    """One `registration` frame and the answer sent (None: no answer, as scripted)."""

    connection: int
    payload: Any
    answer: dict[str, Any] | None
    at: float


@dataclass
class Delivery:
    """One `message` frame routed to one client, and what became of it."""

    message_id: str
    client: str
    text: str
    frame: dict[str, Any]
    connection: int
    sent_at: float
    deadline_at: float
    outcome: Outcome = "pending"
    answered_at: float | None = None
    responses: list[RecordedResponse] = field(default_factory=list)

    @property
    def rejected_by_timeout(self) -> bool:
        """SmartHole counts a message with no response by the deadline as rejected."""
        return self.outcome == "timed_out"


@dataclass
class RecordedResponse:
    """A well-formed `response` frame from a client."""

    client: str | None  # None: the connection had not registered
    connection: int
    message_id: str
    type: str
    payload: dict[str, Any]
    frame: dict[str, Any]
    raw: str
    at: float
    delivery: Delivery | None  # the latest delivery of that id to that client, if any
    late: bool  # that delivery had already timed out


@dataclass
class ShownNotification:
    """A notification the user saw, as SmartHole showed it."""

    title: str
    body: str
    priority: str
    client: str | None
    message_id: str
    received_at: float  # when SmartHole got the (latest) response behind it
    at: float  # when it was shown


@dataclass
class LostNotification:
    """A notification the user never saw, and why."""

    title: str
    body: str
    priority: str
    client: str | None
    message_id: str
    why: Literal["coalesced", "replaced", "overflow", "quit"]
    at: float


@dataclass
class _Queued:
    title: str
    body: str
    priority: str  # the priority it was queued with (a coalesced update keeps it)
    client: str | None
    message_id: str
    received_at: float


@dataclass
class _Coalescing:
    count: int
    last_update: float


class NotificationQueue:
    """SmartHole's notification queue, faithfully: what the user is actually shown."""

    def __init__(self, changed: Callable[[], None], time_scale: float = 1.0) -> None:
        if time_scale <= 0:
            raise ValueError("time_scale must be positive")
        self.coalescing_window = COALESCING_WINDOW * time_scale
        self.min_interval = MIN_INTERVAL * time_scale
        self.rate_window = RATE_WINDOW * time_scale
        self.shown: list[ShownNotification] = []
        self.lost: list[LostNotification] = []
        self._changed = changed
        self._queue: list[_Queued] = []
        self._recent: list[float] = []  # times shown within the rate window
        self._last_shown = -float("inf")
        self._coalescing: dict[str, _Coalescing] = {}
        self._timer: asyncio.TimerHandle | None = None

    @property
    def waiting(self) -> list[tuple[str, str, str]]:
        """(title, body, priority) of the notifications still queued, in showing order."""
        return [(q.title, q.body, q.priority) for q in self._queue]

    def enqueue(
        self, title: str, body: str, priority: str, client: str | None, message_id: str
    ) -> None:
        now = time.monotonic()
        entry = self._coalescing.get(title)
        if entry is not None and now - entry.last_update < self.coalescing_window:
            entry.count += 1
            entry.last_update = now
            merged_body = f"{body} ({entry.count} occurrences)"
            queued = next((q for q in self._queue if q.title == title), None)
            if queued is not None:
                self.lost.append(
                    LostNotification(
                        queued.title,
                        queued.body,
                        queued.priority,
                        queued.client,
                        queued.message_id,
                        "replaced",
                        now,
                    )
                )
                queued.body, queued.client, queued.message_id = merged_body, client, message_id
                queued.received_at = now
            else:
                self.lost.append(
                    LostNotification(title, body, priority, client, message_id, "coalesced", now)
                )
            self._changed()
            return
        self._coalescing[title] = _Coalescing(1, now)
        item = _Queued(title, body, priority, client, message_id, now)
        if priority == "high" and not self._rate_limited(now):
            self._show(item, now)
            return
        self._queue.append(item)
        self._queue.sort(key=lambda q: -_PRIORITY_RANK.get(q.priority, 1))  # stable
        self._enforce_depth(now)
        self._schedule(now)
        self._changed()

    def reset(self) -> None:
        """SmartHole quit: whatever waited is gone, and its counters start again."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        now = time.monotonic()
        for q in self._queue:
            self.lost.append(
                LostNotification(q.title, q.body, q.priority, q.client, q.message_id, "quit", now)
            )
        self._queue.clear()
        self._recent.clear()
        self._coalescing.clear()
        self._last_shown = -float("inf")
        self._changed()

    def cancel(self) -> None:
        """Stop the showing timer (the stand-in closes); the records stay."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _rate_limited(self, now: float) -> bool:
        self._recent = [t for t in self._recent if now - t < self.rate_window]
        return len(self._recent) >= MAX_PER_WINDOW or now - self._last_shown < self.min_interval

    def _next_allowed(self, now: float) -> float:
        self._rate_limited(now)  # prunes
        at = self._last_shown + self.min_interval
        if len(self._recent) >= MAX_PER_WINDOW:
            at = max(at, self._recent[-MAX_PER_WINDOW] + self.rate_window)
        return max(at, now)

    def _show(self, item: _Queued, now: float) -> None:
        self._recent.append(now)
        self._last_shown = now
        self.shown.append(
            ShownNotification(
                item.title,
                item.body,
                item.priority,
                item.client,
                item.message_id,
                item.received_at,
                now,
            )
        )
        log.debug("shown: %r %r", item.title, item.body)
        self._changed()

    def _enforce_depth(self, now: float) -> None:
        while len(self._queue) > MAX_QUEUE_DEPTH:
            for priority in ("low", "normal"):
                index = next(
                    (
                        i
                        for i in reversed(range(len(self._queue)))
                        if self._queue[i].priority == priority
                    ),
                    None,
                )
                if index is not None:
                    q = self._queue.pop(index)
                    self.lost.append(
                        LostNotification(
                            q.title, q.body, q.priority, q.client, q.message_id, "overflow", now
                        )
                    )
                    break
            else:
                return  # only high ones: SmartHole keeps them all

    def _schedule(self, now: float) -> None:
        if self._timer is not None or not self._queue:
            return
        delay = self._next_allowed(now) - now
        self._timer = asyncio.get_running_loop().call_later(delay, self._process)

    def _process(self) -> None:
        self._timer = None
        now = time.monotonic()
        if not self._queue:
            return
        if not self._rate_limited(now):
            self._show(self._queue.pop(0), now)
        self._schedule(now)


@dataclass
class ProtocolError:
    """A frame from a client that SmartHole would not accept."""

    client: str | None
    connection: int
    reason: str
    raw: str | bytes
    at: float


@dataclass
class Pong:
    client: str | None
    connection: int
    round_trip: float
    at: float


@dataclass
class PingTimeout:
    client: str | None
    connection: int
    at: float


@dataclass
class ScriptedRegistration:
    """How to answer one future registration instead of validating it.

    `answer` is the registration_response payload (None: never answer); `before` are raw frames
    sent first. A successful answer registers the connection under the name it asked for.
    """

    answer: dict[str, Any] | None
    before: Sequence[str | bytes] = ()


@dataclass
class _Peer:
    id: int
    ws: ServerConnection
    name: str | None = None
    pinger: asyncio.Task[None] | None = None


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _failure(code: str, message: str) -> dict[str, Any]:
    return {"success": False, "code": code, "message": message}


class SmartHoleStandIn:
    """SmartHole's WebSocket server, as far as one client can tell."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        deadline: float = 30.0,
        ping_interval: float | None = 30.0,
        ping_timeout: float = 10.0,
        notification_time_scale: float = 1.0,
    ) -> None:
        self.host = host
        self._port = port
        self.deadline = deadline
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self.registrations: list[Registration] = []
        self.deliveries: list[Delivery] = []
        self.responses: list[RecordedResponse] = []
        self.protocol_errors: list[ProtocolError] = []
        self.pongs: list[Pong] = []
        self.ping_timeouts: list[PingTimeout] = []
        self.connections_opened = 0
        self._server: Server | None = None
        self._peers: dict[int, _Peer] = {}
        self._by_name: dict[str, _Peer] = {}
        self._ids = itertools.count(1)
        self._scripted: deque[ScriptedRegistration] = deque()
        self._timers: list[asyncio.TimerHandle] = []
        self._change = asyncio.Event()
        self.notifications = NotificationQueue(self._changed, notification_time_scale)
        self.on_response: Callable[[RecordedResponse], None] | None = None
        """Called as each response arrives (a test can kill the client at that instant)."""

    # ------------------------------------------------------------------ life cycle

    @property
    def port(self) -> int:
        if not self._port:
            raise RuntimeError("the stand-in has not been started")
        return self._port

    @property
    def url(self) -> str:
        return f"ws://{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._server is not None

    async def start(self) -> None:
        """Listen (again) on the same port once one has been chosen."""
        if self._server is not None:
            return
        self._server = await serve(
            self._handle,
            self.host,
            self._port,
            ping_interval=None,  # our own pinger below, so pongs can be recorded
            max_size=2**20,
            close_timeout=1.0,
        )
        self._port = self._server.sockets[0].getsockname()[1]
        log.debug("SmartHole stand-in listening on %s", self.url)

    async def stop(self, *, abrupt: bool = False) -> None:
        """Stop listening and close every connection (abruptly: no close frame, like a crash)."""
        server, self._server = self._server, None
        if server is None:
            return
        if abrupt:
            for peer in list(self._peers.values()):
                peer.ws.transport.abort()
        server.close(close_connections=True)
        await server.wait_closed()
        await self.wait_until(lambda: not self._peers, timeout=5.0)
        self.notifications.reset()

    async def restart(self, *, down_for: float = 0.0, abrupt: bool = False) -> None:
        """Stop, stay away `down_for` seconds, and listen again on the same port."""
        await self.stop(abrupt=abrupt)
        if down_for > 0:
            await asyncio.sleep(down_for)
        await self.start()

    async def drop_connections(self) -> None:
        """Abort every connection (no close frame), keep listening."""
        for peer in list(self._peers.values()):
            peer.ws.transport.abort()
        await self.wait_until(lambda: not self._peers, timeout=5.0)

    async def close(self) -> None:
        """Stop for good: the server, the pingers and the deadline timers."""
        await self.stop()
        self.notifications.cancel()
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    @staticmethod
    def in_thread(
        *,
        deadline: float = 30.0,
        ping_interval: float | None = 30.0,
        ping_timeout: float = 10.0,
        notification_time_scale: float = 1.0,
    ) -> ThreadedSmartHole:
        """A stand-in running on its own event loop in a background thread (not yet started)."""
        return ThreadedSmartHole(
            deadline=deadline,
            ping_interval=ping_interval,
            ping_timeout=ping_timeout,
            notification_time_scale=notification_time_scale,
        )

    # ------------------------------------------------------------------ what tests look at

    @property
    def shown(self) -> list[ShownNotification]:
        """What the user saw, in order, with times (SmartHole's notification queue)."""
        return self.notifications.shown

    @property
    def lost(self) -> list[LostNotification]:
        """Notifications the user never saw: coalesced, replaced, overflowed, or lost at a quit."""
        return self.notifications.lost

    def shown_for(self, message_id: str) -> list[ShownNotification]:
        return [n for n in self.shown if n.message_id == message_id]

    @property
    def client_names(self) -> list[str]:
        """Names of the registered clients now connected, in order of registration."""
        return list(self._by_name)

    @property
    def connection_count(self) -> int:
        """Open connections, registered or not."""
        return len(self._peers)

    def connection_of(self, client: str) -> int | None:
        """The id of the connection `client` is registered on (to tell a reconnect apart)."""
        peer = self._by_name.get(client)
        return None if peer is None else peer.id

    def delivery(self, message_id: str, client: str | None = None) -> Delivery | None:
        """The latest delivery of `message_id` (to `client`, if given)."""
        for delivery in reversed(self.deliveries):
            if delivery.message_id == message_id and client in (None, delivery.client):
                return delivery
        return None

    def responses_for(self, message_id: str, type: str | None = None) -> list[RecordedResponse]:
        return [
            r
            for r in self.responses
            if r.message_id == message_id and (type is None or r.type == type)
        ]

    def script_registration(self, *answers: ScriptedRegistration | dict[str, Any] | None) -> None:
        """Answer the next registrations like this, in order, instead of validating them."""
        for answer in answers:
            self._scripted.append(
                answer if isinstance(answer, ScriptedRegistration) else ScriptedRegistration(answer)
            )

    # ------------------------------------------------------------------ waiting

    def _changed(self) -> None:
        event, self._change = self._change, asyncio.Event()
        event.set()

    async def wait_until(self, predicate: Callable[[], T | None], timeout: float = 5.0) -> T:
        """Wait until `predicate()` is truthy (checked on every recorded change) and return it."""
        try:
            async with asyncio.timeout(timeout):
                while True:
                    event = self._change
                    result = predicate()
                    if result:
                        return result
                    await event.wait()
        except TimeoutError:
            raise TimeoutError(f"condition not met within {timeout:g} s") from None

    async def wait_for_client(self, client: str, timeout: float = 5.0) -> int:
        """Wait until `client` is registered; returns its connection id."""
        try:
            return await self.wait_until(lambda: self.connection_of(client), timeout)
        except TimeoutError:
            raise TimeoutError(
                f"{client!r} did not register within {timeout:g} s "
                f"(registered: {self.client_names}, registrations: {len(self.registrations)})"
            ) from None

    async def wait_for_response(
        self,
        message_id: str,
        type: str = "ack",
        timeout: float = 5.0,
        *,
        client: str | None = None,
        count: int = 1,
    ) -> RecordedResponse:
        """The `count`-th response of `type` to `message_id` (from `client`, if given)."""

        def found() -> RecordedResponse | None:
            matches = [
                r for r in self.responses_for(message_id, type) if client in (None, r.client)
            ]
            return matches[count - 1] if len(matches) >= count else None

        try:
            return await self.wait_until(found, timeout)
        except TimeoutError:
            seen = [(r.type, r.message_id) for r in self.responses[-10:]]
            raise TimeoutError(
                f"no {type} for {message_id!r} within {timeout:g} s (latest responses: {seen})"
            ) from None

    async def wait_for_outcome(
        self, message_id: str, timeout: float = 5.0, *, client: str | None = None
    ) -> Delivery:
        """Wait until the latest delivery of `message_id` is answered or timed out."""

        def settled() -> Delivery | None:
            delivery = self.delivery(message_id, client)
            return delivery if delivery is not None and delivery.outcome != "pending" else None

        return await self.wait_until(settled, timeout)

    # ------------------------------------------------------------------ sending

    def _peer(self, client: str) -> _Peer:
        peer = self._by_name.get(client)
        if peer is None:
            raise LookupError(
                f"no client named {client!r} is connected (connected: {self.client_names})"
            )
        return peer

    async def route(
        self,
        client: str,
        text: str,
        *,
        message_id: str | None = None,
        input_method: str = "voice",
        direct_routed: bool = False,
        confidence: float | None = 0.95,
        routing_reason: str | None = DEFAULT_ROUTING_REASON,
        timestamp: str | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> str:
        """Route a message to `client` as SmartHole does; returns its id.

        `confidence` is sent for voice only and `routingReason` only when not direct-routed,
        as protocol.md says; `metadata` replaces the whole metadata object when given.
        """
        message_id = message_id if message_id is not None else f"msg-{uuid.uuid4()}"
        if metadata is None:
            meta: dict[str, Any] = {"inputMethod": input_method, "directRouted": direct_routed}
            if input_method == "voice" and confidence is not None:
                meta["confidence"] = confidence
            if not direct_routed and routing_reason is not None:
                meta["routingReason"] = routing_reason
        else:
            meta = dict(metadata)
        payload = {
            "id": message_id,
            "text": text,
            "timestamp": timestamp if timestamp is not None else _now_iso(),
            "metadata": meta,
        }
        return await self.route_payload(client, payload)

    async def route_payload(self, client: str, payload: dict[str, Any]) -> str:
        """Route a `message` frame with exactly this payload (any content), as a delivery with
        SmartHole's deadline; returns `payload["id"]` (which must be a string)."""
        peer = self._peer(client)
        message_id: str = payload["id"]
        text = payload.get("text")
        frame = {"type": "message", "payload": payload}
        now = time.monotonic()
        delivery = Delivery(
            message_id,
            client,
            text if isinstance(text, str) else repr(text),
            frame,
            peer.id,
            now,
            now + self.deadline,
        )
        self.deliveries.append(delivery)
        self._timers.append(
            asyncio.get_running_loop().call_later(self.deadline, self._expire, delivery)
        )
        self._changed()
        try:
            await peer.ws.send(json.dumps(frame))
        except ConnectionClosed:
            log.info("message %s not delivered: %s's connection closed", message_id, client)
        return message_id

    async def send_raw(self, client: str, data: str | bytes) -> None:
        """Send any frame at all (text for str, binary for bytes) to a registered client."""
        await self._peer(client).ws.send(data)

    async def send_json(self, client: str, value: Any) -> None:
        await self.send_raw(client, json.dumps(value))

    def _expire(self, delivery: Delivery) -> None:
        if delivery.outcome == "pending":
            delivery.outcome = "timed_out"
            log.info("message %s to %s timed out (rejected)", delivery.message_id, delivery.client)
            self._changed()

    # ------------------------------------------------------------------ connections

    async def _handle(self, ws: ServerConnection) -> None:
        peer = _Peer(next(self._ids), ws)
        self._peers[peer.id] = peer
        self.connections_opened += 1
        if self.ping_interval is not None:
            peer.pinger = asyncio.create_task(self._ping(peer, self.ping_interval))
        self._changed()
        try:
            async for data in ws:
                await self._on_frame(peer, data)
        except ConnectionClosed:
            pass
        finally:
            if peer.pinger is not None:
                peer.pinger.cancel()
            del self._peers[peer.id]
            if peer.name is not None and self._by_name.get(peer.name) is peer:
                del self._by_name[peer.name]
            self._changed()

    async def _ping(self, peer: _Peer, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                pong = await peer.ws.ping()
                sent = time.monotonic()
                async with asyncio.timeout(self.ping_timeout):
                    await pong
            except ConnectionClosed:
                return
            except TimeoutError:
                self.ping_timeouts.append(PingTimeout(peer.name, peer.id, time.monotonic()))
                log.info("client %s did not answer a ping; dropped", peer.name)
                peer.ws.transport.abort()
                self._changed()
                return
            now = time.monotonic()
            self.pongs.append(Pong(peer.name, peer.id, now - sent, now))
            self._changed()

    def _error(self, peer: _Peer, reason: str, data: str | bytes) -> None:
        self.protocol_errors.append(
            ProtocolError(peer.name, peer.id, reason, data, time.monotonic())
        )
        self._changed()

    async def _on_frame(self, peer: _Peer, data: str | bytes) -> None:
        if isinstance(data, bytes):
            self._error(peer, "binary frame", data)
            return
        try:
            frame = json.loads(data)
        except ValueError:
            self._error(peer, "not JSON", data)
            return
        if not isinstance(frame, dict) or not isinstance(frame.get("payload"), dict):
            self._error(peer, "not an object with a payload object", data)
            return
        kind = frame.get("type")
        if kind == "registration":
            await self._on_registration(peer, frame["payload"])
        elif kind == "response":
            self._on_response(peer, frame, data)
        else:
            self._error(peer, f"unknown type {kind!r}", data)

    def _validate_registration(self, peer: _Peer, payload: dict[str, Any]) -> dict[str, Any]:
        if peer.name is not None:
            return _failure("ALREADY_REGISTERED", "This connection is already registered")
        name = payload.get("name")
        description = payload.get("description")
        version = payload.get("version")
        capabilities = payload.get("capabilities")
        if not isinstance(name, str) or not isinstance(description, str):
            return _failure("VALIDATION_ERROR", "name and description must be strings")
        if version is not None and not isinstance(version, str):
            return _failure("VALIDATION_ERROR", "version must be a string")
        if capabilities is not None and not (
            isinstance(capabilities, list) and all(isinstance(c, str) for c in capabilities)
        ):
            return _failure("VALIDATION_ERROR", "capabilities must be a list of strings")
        if not _NAME_RE.fullmatch(name):
            return _failure(
                "INVALID_NAME",
                "Name must start with a letter and contain only letters, digits, - and _ "
                "(at most 64 characters)",
            )
        if not description.strip(_JS_SPACE):
            return _failure("INVALID_DESCRIPTION", "Description cannot be empty")
        if _js_length(description) > _MAX_DESCRIPTION:
            return _failure("INVALID_DESCRIPTION", "Description must be 1024 characters or less")
        if name in self._by_name:
            return _failure("DUPLICATE_NAME", f"A client named {name} is already connected")
        return {"success": True, "clientId": str(uuid.uuid4()), "message": f"Registered {name}"}

    async def _on_registration(self, peer: _Peer, payload: dict[str, Any]) -> None:
        scripted = self._scripted.popleft() if self._scripted else None
        if scripted is not None:
            for frame in scripted.before:
                await peer.ws.send(frame)
            answer = scripted.answer
            if answer is not None and answer.get("success") is True:
                answer = {"clientId": str(uuid.uuid4()), **answer}
        else:
            answer = self._validate_registration(peer, payload)
        self.registrations.append(Registration(peer.id, payload, answer, time.monotonic()))
        if answer is not None:
            if answer.get("success") is True and isinstance(payload.get("name"), str):
                peer.name = payload["name"]
                self._by_name[payload["name"]] = peer
            self._changed()
            await peer.ws.send(json.dumps({"type": "registration_response", "payload": answer}))
        else:
            self._changed()

    def _on_response(self, peer: _Peer, frame: dict[str, Any], raw: str) -> None:
        outer = frame["payload"]
        message_id = outer.get("messageId")
        kind = outer.get("type")
        inner = outer.get("payload")
        problem = None
        if not isinstance(message_id, str) or not message_id:
            problem = "response without a messageId"
        elif kind not in _RESPONSE_TYPES:
            problem = f"unknown response type {kind!r}"
        elif not isinstance(inner, dict):
            problem = "response without a payload object"
        elif kind == "reject" and not isinstance(inner.get("reason"), str):
            problem = "reject without a reason"
        elif kind == "notification" and not (
            isinstance(inner.get("title"), str)
            and isinstance(inner.get("body"), str)
            and inner.get("priority", "normal") in _PRIORITIES
        ):
            problem = "notification without a title, a body and a valid priority"
        if problem is not None:
            self._error(peer, problem, raw)
            return
        assert isinstance(message_id, str) and isinstance(kind, str) and isinstance(inner, dict)
        now = time.monotonic()
        delivery = self.delivery(message_id, peer.name) if peer.name is not None else None
        late = delivery is not None and delivery.outcome == "timed_out"
        response = RecordedResponse(
            peer.name, peer.id, message_id, kind, inner, frame, raw, now, delivery, late
        )
        self.responses.append(response)
        if self.on_response is not None:
            self.on_response(response)
        if delivery is not None:
            delivery.responses.append(response)
            if delivery.outcome == "pending":
                delivery.outcome = "answered"
                delivery.answered_at = now
        if kind == "notification":
            self.notifications.enqueue(
                inner["title"],
                inner["body"],
                inner.get("priority", "normal"),
                peer.name,
                message_id,
            )
        self._changed()


class ThreadedSmartHole:
    """`SmartHoleStandIn` on its own event loop in a daemon thread, with blocking methods.

    For tests that run the service as a subprocess (or block their own loop on purpose). The
    blocking methods must not be called from a coroutine whose loop runs the client under
    test: they would freeze it.
    """

    def __init__(self, **options: Any) -> None:
        self._options = options
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._hole: SmartHoleStandIn | None = None

    @property
    def hole(self) -> SmartHoleStandIn:
        """The stand-in itself: read its records through `snapshot`, not directly."""
        if self._hole is None:
            raise RuntimeError("the threaded stand-in has not been started")
        return self._hole

    def run(self, coroutine: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
        """Run a coroutine on the stand-in's loop and wait for its result."""
        if self._loop is None:
            coroutine.close()
            raise RuntimeError("the threaded stand-in has not been started")
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout)

    def snapshot(self, read: Callable[[SmartHoleStandIn], T]) -> T:
        """Read the stand-in's state on its own thread, e.g. `lambda h: list(h.responses)`."""
        hole = self.hole

        async def read_it() -> T:
            return read(hole)

        return self.run(read_it())

    def start(self) -> Self:
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._thread = threading.Thread(
            target=loop.run_forever, name="SmartHole stand-in", daemon=True
        )
        self._thread.start()

        async def create() -> SmartHoleStandIn:
            hole = SmartHoleStandIn(**self._options)
            await hole.start()
            return hole

        self._hole = self.run(create())
        return self

    def close(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        if self._hole is not None:
            self.run(self._hole.close())

        async def cancel_the_rest() -> None:
            current = asyncio.current_task()
            tasks = [t for t in asyncio.all_tasks() if t is not current]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        self.run(cancel_the_rest())
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()
        self._loop = self._thread = self._hole = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # The stand-in's API, blocking.

    @property
    def port(self) -> int:
        return self.hole.port

    @property
    def url(self) -> str:
        return self.hole.url

    @property
    def client_names(self) -> list[str]:
        return self.snapshot(lambda h: h.client_names)

    @property
    def responses(self) -> list[RecordedResponse]:
        return self.snapshot(lambda h: list(h.responses))

    @property
    def deliveries(self) -> list[Delivery]:
        return self.snapshot(lambda h: list(h.deliveries))

    @property
    def shown(self) -> list[ShownNotification]:
        return self.snapshot(lambda h: list(h.shown))

    @property
    def lost(self) -> list[LostNotification]:
        return self.snapshot(lambda h: list(h.lost))

    @property
    def registrations(self) -> list[Registration]:
        return self.snapshot(lambda h: list(h.registrations))

    @property
    def ping_timeouts(self) -> list[PingTimeout]:
        return self.snapshot(lambda h: list(h.ping_timeouts))

    def connection_of(self, client: str) -> int | None:
        return self.snapshot(lambda h: h.connection_of(client))

    def route(self, client: str, text: str, **options: Any) -> str:
        return self.run(self.hole.route(client, text, **options))

    def send_raw(self, client: str, data: str | bytes) -> None:
        self.run(self.hole.send_raw(client, data))

    def send_json(self, client: str, value: Any) -> None:
        self.run(self.hole.send_json(client, value))

    def script_registration(self, *answers: ScriptedRegistration | dict[str, Any] | None) -> None:
        self.snapshot(lambda h: h.script_registration(*answers))

    def wait_for_client(self, client: str, timeout: float = 5.0) -> int:
        return self.run(self.hole.wait_for_client(client, timeout), timeout + 5)

    def wait_for_response(
        self, message_id: str, type: str = "ack", timeout: float = 5.0, **options: Any
    ) -> RecordedResponse:
        return self.run(
            self.hole.wait_for_response(message_id, type, timeout, **options), timeout + 5
        )

    def wait_for_outcome(self, message_id: str, timeout: float = 5.0, **options: Any) -> Delivery:
        return self.run(self.hole.wait_for_outcome(message_id, timeout, **options), timeout + 5)

    def wait_until(
        self, predicate: Callable[[SmartHoleStandIn], T | None], timeout: float = 5.0
    ) -> T:
        """Like `SmartHoleStandIn.wait_until`; the predicate gets the stand-in."""
        hole = self.hole
        return self.run(hole.wait_until(lambda: predicate(hole), timeout), timeout + 5)

    def drop_connections(self) -> None:
        self.run(self.hole.drop_connections())

    def stop_server(self, *, abrupt: bool = False) -> None:
        """Stop listening (SmartHole quit); `start_server` brings it back on the same port."""
        self.run(self.hole.stop(abrupt=abrupt))

    def start_server(self) -> None:
        self.run(self.hole.start())

    def restart(self, *, down_for: float = 0.0, abrupt: bool = False) -> None:
        self.run(self.hole.restart(down_for=down_for, abrupt=abrupt), down_for + 30)

    def call(
        self, function: Callable[[SmartHoleStandIn], Awaitable[T]], timeout: float = 30.0
    ) -> T:
        """Run any coroutine function of the stand-in on its loop, e.g. `lambda h: h.route(...)`."""
        hole = self.hole

        async def call_it() -> T:
            return await function(hole)

        return self.run(call_it(), timeout)
