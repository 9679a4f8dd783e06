"""Changes made by a `smarthole-notes mcp` process, shown live on `serve`'s chat page.

The stdio server is a separate process (the MCP client starts it), so it cannot publish on
`serve`'s event bus. Instead it sends each event as one datagram to a Unix socket that a
running `serve` binds at `<vault>/.smarthole/mcp-live.sock`, and `serve` republishes it.

Why a datagram socket: sending never blocks and needs no connection, so an MCP call is
never slowed or failed by the live view; when `serve` is not running the datagram is simply
dropped (there is no page to show it on). The socket file is the user's only (mode 0600,
inside `.smarthole/`), so no other user can put events on the page, and `serve` accepts
only the three event types an MCP call produces, with bounded, typed fields.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import stat
from pathlib import Path
from typing import Any, Final

from smarthole_notes.mcp.names import MCP_SOURCE, MESSAGE_ID_PREFIX, Publish

log = logging.getLogger(__name__)

SOCKET_NAME: Final = "mcp-live.sock"
MAX_DATAGRAM: Final = 16 * 1024
SUN_PATH_LIMIT: Final = 100
"""A Unix socket's path must fit `sun_path` (104 bytes on macOS, 108 on Linux)."""

EVENT_TYPES: Final = frozenset({"tool_started", "tool_finished", "response"})
TEXT_FIELDS: Final = {
    "message_id": 64,
    "source": 16,
    "client": 100,
    "tool": 64,
    "input": 400,
    "summary": 400,
    "text": 600,
}
TOOL_USE_FIELDS: Final = {"name": 64, "input_summary": 400, "summary": 400}


def socket_path(vault: Path) -> Path | None:
    """Where `serve` listens for this vault, or None when the path is too long for a socket."""
    path = Path(os.path.realpath(vault)) / ".smarthole" / SOCKET_NAME
    return path if len(os.fsencode(path)) <= SUN_PATH_LIMIT else None


class LiveSender:
    """The stdio side: a `Publish` that sends each event to `serve`, if it is there."""

    def __init__(self, vault: Path) -> None:
        self._path = socket_path(vault)
        self._sock: socket.socket | None = None
        if self._path is not None and hasattr(socket, "AF_UNIX"):
            self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            self._sock.setblocking(False)

    def __call__(self, event_type: str, **fields: Any) -> None:
        if self._sock is None or self._path is None:
            return
        data = json.dumps({"type": event_type, **fields}, ensure_ascii=False).encode()
        if len(data) > MAX_DATAGRAM:
            return
        # No serve running, or its queue full: the page is not watching, nothing to do.
        with contextlib.suppress(OSError):
            self._sock.sendto(data, os.fsencode(self._path))

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


def clean_event(data: bytes) -> dict[str, Any] | None:
    """The event a datagram holds, if it is one an MCP call produces; else None."""
    try:
        raw = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None
    if not isinstance(raw, dict) or raw.get("type") not in EVENT_TYPES:
        return None
    message_id = raw.get("message_id")
    if not isinstance(message_id, str) or not message_id.startswith(MESSAGE_ID_PREFIX):
        return None
    if raw.get("source") != MCP_SOURCE:
        return None
    event: dict[str, Any] = {"type": raw["type"]}
    for key, limit in TEXT_FIELDS.items():
        value = raw.get(key)
        if isinstance(value, str):
            event[key] = value[:limit]
    if isinstance(raw.get("is_error"), bool):
        event["is_error"] = raw["is_error"]
    uses = raw.get("tools_used")
    if isinstance(uses, list):
        event["tools_used"] = [_clean_use(use) for use in uses[:5] if isinstance(use, dict)]
    return event


def _clean_use(use: dict[str, Any]) -> dict[str, Any]:
    clean: dict[str, Any] = {
        key: str(use.get(key, ""))[:limit] for key, limit in TOOL_USE_FIELDS.items()
    }
    clean["is_error"] = use.get("is_error") is True
    return clean


class LiveRelay:
    """The `serve` side: receive the stdio servers' events and publish them on the bus."""

    def __init__(self, vault: Path, publish: Publish) -> None:
        self._path = socket_path(vault)
        self._publish = publish
        self._sock: socket.socket | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def start(self) -> bool:
        """Bind the socket (replacing a stale one); False when this platform or path cannot."""
        if self._sock is not None:
            return True
        if self._path is None or not hasattr(socket, "AF_UNIX"):
            return False
        try:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            with contextlib.suppress(FileNotFoundError):
                if stat.S_ISSOCK(os.lstat(self._path).st_mode):
                    self._path.unlink()
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            old_mask = os.umask(0o177)
            try:
                sock.bind(os.fsencode(self._path))
            finally:
                os.umask(old_mask)
            sock.setblocking(False)
            self._loop = asyncio.get_running_loop()
            self._loop.add_reader(sock.fileno(), self._receive)
        except (OSError, RuntimeError, NotImplementedError) as exc:
            log.warning("MCP changes from other processes will not show live: %s", exc)
            return False
        self._sock = sock
        return True

    def _receive(self) -> None:
        assert self._sock is not None
        for _ in range(100):
            try:
                data = self._sock.recv(MAX_DATAGRAM)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                log.debug("MCP live socket: %s", exc)
                return
            event = clean_event(data)
            if event is not None:
                event_type = event.pop("type")
                self._publish(event_type, **event)

    def close(self) -> None:
        if self._sock is None:
            return
        if self._loop is not None:
            with contextlib.suppress(Exception):
                self._loop.remove_reader(self._sock.fileno())
        self._sock.close()
        self._sock = None
        if self._path is not None:
            with contextlib.suppress(OSError):
                self._path.unlink()
