"""The connection to SmartHole: register, take routed messages, answer them, reconnect forever.

One background task owns the socket. Each pass connects, sends the registration as soon as the
socket opens, waits for SmartHole's answer, then reads frames until the connection ends, and
finally sleeps on the backoff schedule before the next pass. Runtime changes (disable, enable,
new name or description, stop) cancel that task and, where needed, start a fresh one, so there
is never more than one connection and the backoff restarts from the beginning.

Keepalive pings are answered by the websockets library in the background as long as nothing
blocks the event loop; the pipeline's `on_message` is awaited in the receive loop and must stay
quick (write the inbox, ack), or frames pile up and pings go unread.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Final, NoReturn

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.frames import CloseCode
from websockets.uri import parse_uri

from smarthole_notes.smarthole.notifications import (
    NotificationKind,
    NotificationLimits,
    NotificationOutbox,
    NotificationResult,
)
from smarthole_notes.smarthole.protocol import (
    MalformedFrame,
    Priority,
    RegistrationResponse,
    RoutedMessage,
    UnacceptableMessage,
    build_ack,
    build_registration,
    build_reject,
    description_problem,
    name_problem,
    parse_frame,
    url_problem,
)

__all__ = ["DEFAULT_BACKOFF", "LIBRARY_MAX_SIZE", "Backoff", "ConnectionStatus", "SmartHoleClient"]

log = logging.getLogger("smarthole_notes.smarthole")

DEFAULT_BACKOFF: Final[tuple[float, ...]] = (1, 2, 4, 8, 16, 30)

LIBRARY_MAX_SIZE: Final = 8 * 2**20
"""What the websockets library will buffer before it closes the connection (code 1009).

Frames over 1 MB must be dropped without disconnecting, so the library's limit sits well above
that and `parse_frame` applies the 1 MB rule itself. Beyond 8 MiB a frame is not a slightly
oversized message but a runaway peer, and buffering it is the bigger risk: the library closes
the connection and we reconnect on the backoff schedule.
"""

HANDLER_GRACE_SECONDS: Final = 5.0
"""On stop/disable, how long a running `on_message` may finish (and ack) before it is cancelled."""

OnMessage = Callable[[RoutedMessage], Awaitable[None]]
OnStatus = Callable[["ConnectionStatus", str | None], None]
Sleep = Callable[[float], Awaitable[None]]


class ConnectionStatus(StrEnum):
    """The connection as the chat page shows it (four words: connecting, connected, disconnected, disabled)."""

    CONNECTING = "connecting"
    CONNECTED = "connected"  # registered, not merely connected
    DISCONNECTED = "disconnected"
    DISABLED = "disabled"


class Backoff:
    """Reconnect delays: the schedule in order, then its last value forever, until `reset`."""

    def __init__(self, delays: Sequence[float] = DEFAULT_BACKOFF) -> None:
        if not delays or any(not math.isfinite(d) or d < 0 for d in delays):
            raise ValueError("backoff needs at least one finite, non-negative delay")
        self._delays = tuple(float(d) for d in delays)
        self._attempt = 0

    def next(self) -> float:
        """The delay before the next attempt."""
        delay = self._delays[min(self._attempt, len(self._delays) - 1)]
        self._attempt += 1
        return delay

    def reset(self) -> None:
        """A registration succeeded: the next failure starts the schedule again."""
        self._attempt = 0


@dataclass(frozen=True)
class _Outcome:
    """How one connection attempt ended."""

    detail: str
    retry: bool  # False: wait for update_registration (the settings must change)
    registered: bool = False  # registration succeeded on this connection: reset the backoff


async def _asyncio_sleep(seconds: float) -> None:
    await asyncio.sleep(seconds)


def _describe(exc: BaseException) -> str:
    """A connection error in a few words, for the status line."""
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, InvalidStatus):
        return f"HTTP {exc.response.status_code} instead of a WebSocket handshake"
    if isinstance(exc, TimeoutError):
        return str(exc) or "timed out"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    return str(exc) or type(exc).__name__


def _describe_close(exc: ConnectionClosed) -> str:
    if exc.sent is not None and exc.sent.code == CloseCode.MESSAGE_TOO_BIG:
        return f"SmartHole sent a frame over {LIBRARY_MAX_SIZE // 2**20} MiB"
    if exc.rcvd is not None:
        reason = f": {exc.rcvd.reason}" if exc.rcvd.reason else ""
        return f"closed by SmartHole, code {exc.rcvd.code}{reason}"
    if exc.sent is not None:
        reason = f": {exc.sent.reason}" if exc.sent.reason else ""
        return f"closed, code {exc.sent.code}{reason}"
    return "connection dropped"


def _excerpt(data: str | bytes, limit: int = 120) -> str:
    shown = repr(data[:limit])
    return shown + ("…" if len(data) > limit else "")


class SmartHoleClient:
    """A SmartHole client that keeps itself registered and never takes the service down.

    Failures are reported through `status`, `status_detail`, `on_status` and the log, never
    raised: the service runs without SmartHole if it must.
    """

    def __init__(
        self,
        url: str,
        *,
        name: str,
        description: str,
        version: str,
        on_message: OnMessage,
        on_status: OnStatus | None = None,
        allow_remote: bool = False,
        backoff: Sequence[float] = DEFAULT_BACKOFF,
        enabled: bool = True,
        registration_timeout: float = 10.0,
        open_timeout: float = 10.0,
        ping_interval: float | None = 20.0,
        ping_timeout: float | None = 20.0,
        sleep: Sleep = _asyncio_sleep,
        notification_limits: NotificationLimits | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        """`sleep` waits out backoff delays (injectable so tests can record the schedule);
        `notification_limits` and `clock` pace notifications (scaled down in tests)."""
        Backoff(backoff)  # fail fast on a bad schedule
        self._url = url
        self._name = name
        self._description = description
        self._version = version
        self._on_message = on_message
        self._on_status = on_status
        self._allow_remote = allow_remote
        self._backoff = tuple(backoff)
        self._enabled = enabled
        self._registration_timeout = registration_timeout
        self._open_timeout = open_timeout
        self._ping_interval = ping_interval
        self._ping_timeout = ping_timeout
        self._sleep = sleep
        self._status = ConnectionStatus.DISCONNECTED if enabled else ConnectionStatus.DISABLED
        self._detail: str | None = None
        self._started = False
        self._task: asyncio.Task[None] | None = None
        self._generation = 0
        self._lock = asyncio.Lock()
        self._ws: ClientConnection | None = None  # set only while registered
        self._client_id: str | None = None
        self._handler: asyncio.Task[None] | None = None
        self._early: list[RoutedMessage] = []  # messages that came before the registration answer
        self._answering: str | None = None  # id of the message on_message is handling
        self._answered = False
        self._last_failure: str | None = None
        self._outbox = NotificationOutbox(
            self._send_notification_frame,
            lambda: self._ws is not None,
            limits=notification_limits,
            **({"clock": clock} if clock is not None else {}),
        )

    # ------------------------------------------------------------------ state

    @property
    def status(self) -> ConnectionStatus:
        """`connected` means registered: only then are messages routed to us."""
        return self._status

    @property
    def status_detail(self) -> str | None:
        """Why the status is what it is (a refusal, the next retry), worded for the user."""
        return self._detail

    @property
    def client_id(self) -> str | None:
        """The id SmartHole gave the current registration, while connected."""
        return self._client_id if self._ws is not None else None

    @property
    def notifications_waiting(self) -> int:
        """Notifications queued by our pacing (or held while SmartHole is away)."""
        return self._outbox.pending

    def pending_for(self, message_id: str) -> list[str]:
        """Titles of the notifications for `message_id` still waiting to be sent."""
        return self._outbox.pending_for(message_id)

    async def wait_notifications_sent(self) -> None:
        """Wait until no notification waits in the outbox (wrap it in `asyncio.timeout`)."""
        await self._outbox.wait_empty()

    @property
    def enabled(self) -> bool:
        return self._enabled

    @property
    def name(self) -> str:
        return self._name

    @property
    def description(self) -> str:
        return self._description

    @property
    def url(self) -> str:
        return self._url

    def _set_status(
        self, status: ConnectionStatus, detail: str | None, *, force: bool = False
    ) -> None:
        if (status, detail) == (self._status, self._detail) and not force:
            return
        self._status, self._detail = status, detail
        level = logging.DEBUG if status is ConnectionStatus.CONNECTING else logging.INFO
        log.log(level, "SmartHole: %s%s", status.value, f" ({detail})" if detail else "")
        if self._on_status is not None:
            try:
                self._on_status(status, detail)
            except Exception:
                log.exception("SmartHole status listener failed")

    def _publish(self, generation: int, status: ConnectionStatus, detail: str | None) -> None:
        """Status from a connection task, ignored once that task has been superseded."""
        if generation == self._generation:
            self._set_status(status, detail)

    # ------------------------------------------------------------------ control

    async def start(self) -> None:
        """Start connecting in the background; returns at once. A second call does nothing."""
        async with self._lock:
            if self._started:
                return
            self._started = True
            self._outbox.reopen()
            if self._enabled:
                self._spawn()
            else:
                self._set_status(ConnectionStatus.DISABLED, None, force=True)

    async def stop(self) -> None:
        """Close the connection cleanly (letting a running `on_message` finish) and stop retrying."""
        async with self._lock:
            if not self._started:
                return
            self._started = False
            await self._outbox.flush_now()
            await self._outbox.close()
            await self._halt()
            if self._enabled:
                self._set_status(ConnectionStatus.DISCONNECTED, "stopped")

    async def enable(self) -> None:
        """Turn the connection on at runtime (the user's setting)."""
        async with self._lock:
            if self._enabled:
                return
            self._enabled = True
            if self._started:
                self._spawn()
            else:
                self._set_status(ConnectionStatus.DISCONNECTED, None)

    async def disable(self) -> None:
        """Close the connection and stay off: no reconnects until `enable`."""
        async with self._lock:
            if not self._enabled:
                return
            self._enabled = False
            await self._outbox.flush_now()
            await self._halt()
            self._set_status(ConnectionStatus.DISABLED, None)

    async def update_registration(self, name: str, description: str) -> None:
        """The settings changed: register again under the new name and description.

        A registration cannot be changed on an open connection (SmartHole answers
        ALREADY_REGISTERED), so this reconnects. With unchanged values it reconnects only when
        not currently registered, which is also how a refused registration is retried.
        """
        async with self._lock:
            changed = (name, description) != (self._name, self._description)
            self._name, self._description = name, description
            if not (self._started and self._enabled):
                return
            if not changed and self._status is ConnectionStatus.CONNECTED:
                return
            await self._halt()
            self._spawn()

    def _spawn(self) -> None:
        """Start a connection task; the status says at once whether it will connect."""
        problem = self._configuration_problem()
        if problem is None:
            self._set_status(ConnectionStatus.CONNECTING, None)
        else:
            self._set_status(ConnectionStatus.DISCONNECTED, problem)
        self._generation += 1
        self._task = asyncio.create_task(
            self._run(self._generation), name="smarthole-notes SmartHole connection"
        )

    async def _halt(self) -> None:
        """Silence and end the connection task (its clean-up closes the socket)."""
        self._generation += 1
        task, self._task = self._task, None
        if task is None:
            return
        if self._handler is not None and self._handler is asyncio.current_task():
            # Called from inside on_message: the connection task must not wait for this
            # handler, which is waiting for it.
            self._handler = None
        task.cancel()
        await asyncio.wait({task})
        if not task.cancelled() and task.exception() is not None:
            log.error("SmartHole connection task failed", exc_info=task.exception())

    # ------------------------------------------------------------------ responses

    async def send_ack(self, message_id: str) -> bool:
        """Tell SmartHole the message is safely stored. False if it could not be sent."""
        return await self._send_response(message_id, build_ack(message_id), "ack")

    async def send_reject(self, message_id: str, reason: str) -> bool:
        """Hand the message back so SmartHole can route it elsewhere. False if not sent."""
        return await self._send_response(message_id, build_reject(message_id, reason), "reject")

    async def send_notification(
        self,
        message_id: str,
        title: str,
        body: str,
        priority: Priority | None = None,
        *,
        kind: NotificationKind = "answer",
    ) -> NotificationResult:
        """Show the user an answer, failure, question or progress update through SmartHole.

        Returns at once with what happened: sent now, queued (our pacing keeps SmartHole from
        coalescing or dropping it; a final answer, failure or question is also kept while
        SmartHole is away, for a few minutes), merged into a waiting update of the same
        request, or not sent because SmartHole is not connected (progress only). `priority`
        defaults to `high` for finals and questions, `normal` for progress. The title is
        made unique if another notification used it seconds ago (see `notifications.py`).
        Raises ValueError only for a bad priority or kind, or an empty id.
        """
        return await self._outbox.submit(message_id, title, body, kind=kind, priority=priority)

    async def _send_notification_frame(self, message_id: str, frame: str) -> bool:
        return await self._send_response(message_id, frame, "notification")

    async def _send_response(self, message_id: str, frame: str, kind: str) -> bool:
        ws = self._ws
        if ws is None:
            log.warning(
                "Could not send %s for message %s: not connected to SmartHole", kind, message_id
            )
            return False
        sent = await self._send_on(ws, frame, f"{kind} for message {message_id}")
        if sent and kind != "notification" and message_id == self._answering:
            self._answered = True
        return sent

    async def _send_on(self, ws: ClientConnection, frame: str, what: str) -> bool:
        try:
            await ws.send(frame)
        except ConnectionClosed as exc:
            log.warning("Could not send %s: %s", what, _describe_close(exc))
            return False
        except Exception:
            log.exception("Could not send %s", what)
            return False
        log.debug("Sent %s", what)
        return True

    # ------------------------------------------------------------------ connection task

    def _configuration_problem(self) -> str | None:
        url = url_problem(self._url, allow_remote=self._allow_remote)
        if url is not None:
            return f"Refusing to connect to SmartHole: {url}"
        name = name_problem(self._name)
        if name is not None:
            return f"Not registering with SmartHole: {name}. Change client_name in the settings."
        description = description_problem(self._description)
        if description is not None:
            return (
                f"Not registering with SmartHole: {description}. "
                "Change routing_description in the settings."
            )
        return None

    async def _run(self, generation: int) -> None:
        backoff = Backoff(self._backoff)
        while True:
            problem = self._configuration_problem()
            if problem is not None:
                log.error("SmartHole connection not attempted: %s", problem)
                self._publish(generation, ConnectionStatus.DISCONNECTED, problem)
                return  # nothing will change until update_registration (or a new client)
            self._publish(generation, ConnectionStatus.CONNECTING, None)
            try:
                outcome = await self._session(generation)
            except Exception as exc:  # a bug here must not end reconnection for good
                log.exception("SmartHole connection failed unexpectedly")
                outcome = _Outcome(f"unexpected error: {_describe(exc)}", retry=True)
            if outcome.registered:
                backoff.reset()
            if not outcome.retry:
                self._publish(generation, ConnectionStatus.DISCONNECTED, outcome.detail)
                return
            delay = backoff.next()
            self._publish(
                generation,
                ConnectionStatus.DISCONNECTED,
                f"{outcome.detail}; retrying in {delay:g} s",
            )
            await self._sleep(delay)

    async def _open(self) -> ClientConnection:
        target = parse_uri(self._url)
        return await connect(
            self._url,
            # An explicit host and port make the library refuse cross-origin redirects, and no
            # proxy: either could carry us off the loopback address checked above.
            host=target.host,
            port=target.port,
            proxy=None,
            open_timeout=self._open_timeout,
            ping_interval=self._ping_interval,
            ping_timeout=self._ping_timeout,
            close_timeout=2.0,
            max_size=LIBRARY_MAX_SIZE,
            user_agent_header=f"smarthole-notes/{self._version}",
        )

    async def _session(self, generation: int) -> _Outcome:
        """One connection, from opening to its end; how it ended decides what comes next."""
        try:
            ws = await self._open()
        except Exception as exc:  # OSError, handshake refused or timed out, bad redirect, ...
            detail = f"cannot reach SmartHole at {self._url} ({_describe(exc)})"
            if detail != self._last_failure:
                log.warning("%s", detail)
            self._last_failure = detail
            return _Outcome(detail, retry=True)
        self._last_failure = None
        registered = False
        try:
            await ws.send(build_registration(self._name, self._description, self._version))
            failure = await self._register(ws)
            if failure is not None:
                return failure
            registered = True
            self._ws = ws
            log.info(
                "Registered with SmartHole at %s as %s (client id %s)",
                self._url,
                self._name,
                self._client_id,
            )
            self._publish(generation, ConnectionStatus.CONNECTED, None)
            self._outbox.connection_ready()
            for message in self._early:
                await self._handle_message(message)
            self._early = []
            await self._receive(ws)
        except ConnectionClosed as exc:
            what = (
                "connection to SmartHole lost" if registered else "SmartHole closed the connection"
            )
            detail = f"{what} ({_describe_close(exc)})"
            log.warning("%s", detail)
            return _Outcome(detail, retry=True, registered=registered)
        finally:
            await self._finish_handler()
            if self._ws is ws:
                self._ws = None
            self._early = []
            with contextlib.suppress(Exception):
                await ws.close()

    async def _register(self, ws: ClientConnection) -> _Outcome | None:
        """Wait for the registration_response: None on success, else how to go on.

        Messages that arrive before it (a correct SmartHole never sends them) are held and
        handled once registration succeeds, or rejected if it fails, so none is lost.
        """
        self._early = []
        answer: RegistrationResponse | None = None
        try:
            async with asyncio.timeout(self._registration_timeout):
                while answer is None:
                    frame = self._parse(await ws.recv())
                    if isinstance(frame, RegistrationResponse):
                        answer = frame
                    elif isinstance(frame, UnacceptableMessage):
                        await self._reject_unacceptable(ws, frame)
                    elif isinstance(frame, RoutedMessage):
                        log.warning(
                            "Message %s arrived before SmartHole confirmed the registration; "
                            "held until it does",
                            frame.id,
                        )
                        self._early.append(frame)
        except TimeoutError:
            detail = (
                f"SmartHole did not answer the registration within {self._registration_timeout:g} s"
            )
            log.warning("%s", detail)
            await self._reject_early(ws, "smarthole-notes could not register with SmartHole")
            return _Outcome(detail, retry=True)
        if answer.success:
            self._client_id = answer.client_id
            return None
        await self._reject_early(ws, "smarthole-notes is not registered with SmartHole")
        return self._refusal(answer)

    def _refusal(self, answer: RegistrationResponse) -> _Outcome:
        code = answer.code or "no code"
        said = f": {answer.message}" if answer.message else ""
        if answer.code == "DUPLICATE_NAME":
            detail = f"another client named {self._name!r} is already connected to SmartHole{said}"
            log.warning("SmartHole refused the registration (DUPLICATE_NAME)%s", said)
            return _Outcome(detail, retry=True)  # the other instance may go away
        if answer.code == "ALREADY_REGISTERED":
            # We register once per connection, so this is SmartHole's confusion about this
            # connection; a new connection starts clean, and settings cannot fix it.
            detail = f"SmartHole said this connection was already registered{said}"
            log.warning("SmartHole refused the registration (ALREADY_REGISTERED)%s", said)
            return _Outcome(detail, retry=True)
        if answer.code == "INVALID_NAME":
            detail = (
                f"SmartHole refused the client name {self._name!r}{said}. "
                "Change client_name in the settings."
            )
        elif answer.code == "INVALID_DESCRIPTION":
            detail = (
                f"SmartHole refused the routing description{said}. "
                "Change routing_description in the settings."
            )
        elif answer.code == "VALIDATION_ERROR":
            detail = (
                f"SmartHole refused the registration (VALIDATION_ERROR){said}. "
                "Not retried until the settings change."
            )
        else:  # a code this version does not know: maybe transient, and the backoff caps it
            detail = f"SmartHole refused the registration ({code}){said}"
            log.warning("%s", detail)
            return _Outcome(detail, retry=True)
        log.error("%s", detail)
        return _Outcome(detail, retry=False)

    async def _reject_early(self, ws: ClientConnection, reason: str) -> None:
        early, self._early = self._early, []
        for message in early:
            await self._send_on(ws, build_reject(message.id, reason), f"reject for {message.id}")

    async def _reject_unacceptable(self, ws: ClientConnection, frame: UnacceptableMessage) -> None:
        log.warning("Rejected message %s: %s", frame.message_id, frame.reason)
        await self._send_on(
            ws,
            build_reject(frame.message_id, frame.reason),
            f"reject for message {frame.message_id}",
        )

    def _parse(
        self, data: str | bytes
    ) -> RoutedMessage | UnacceptableMessage | RegistrationResponse | None:
        """The frame, or None (logged) if it is malformed: dropped, the connection stays."""
        try:
            return parse_frame(data)
        except MalformedFrame as exc:
            log.warning(
                "Dropped a malformed frame from SmartHole: %s; it began %s", exc, _excerpt(data)
            )
            return None

    async def _receive(self, ws: ClientConnection) -> NoReturn:
        """Handle frames until the connection ends (ConnectionClosed)."""
        while True:
            frame = self._parse(await ws.recv())
            if isinstance(frame, RoutedMessage):
                await self._handle_message(frame)
            elif isinstance(frame, UnacceptableMessage):
                await self._reject_unacceptable(ws, frame)
            elif isinstance(frame, RegistrationResponse):
                log.warning("Ignored a registration_response from SmartHole after registering")

    async def _handle_message(self, message: RoutedMessage) -> None:
        """Run `on_message` to completion, even if this task is cancelled meanwhile.

        It runs as its own task so a stop or disable does not interrupt it half-way: the clean-up
        gives it a grace period to finish and ack before the socket closes.
        """
        log.info("SmartHole message %s (%d characters)", message.id, len(message.text))
        self._handler = asyncio.create_task(
            self._dispatch(message), name=f"smarthole-notes on_message {message.id}"
        )
        await asyncio.shield(self._handler)

    async def _dispatch(self, message: RoutedMessage) -> None:
        self._answering, self._answered = message.id, False
        try:
            await self._on_message(message)
        except Exception:
            log.exception("Handling SmartHole message %s failed", message.id)
            if not self._answered:
                await self.send_reject(
                    message.id, "smarthole-notes could not take the message (internal error)"
                )
        finally:
            self._answering = None

    async def _finish_handler(self) -> None:
        handler, self._handler = self._handler, None
        if handler is None or handler.done():
            return
        done, _ = await asyncio.wait({handler}, timeout=HANDLER_GRACE_SECONDS)
        if not done:
            log.warning("on_message did not finish within %g s; cancelled", HANDLER_GRACE_SECONDS)
            handler.cancel()
            await asyncio.wait({handler})
