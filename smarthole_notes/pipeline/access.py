"""Access to the Anthropic API: the key in effect, one client per key, and a rejected key.

One object for the life of the service, so every message, side job and the chat page share
the SDK client (and its connection pool), and a key Anthropic rejected is not tried again
until it changes.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable
from typing import TYPE_CHECKING

from smarthole_notes.agent import client_for
from smarthole_notes.credentials import ApiKey, resolve_api_key

KEY_POLL_SECONDS = 10.0

if TYPE_CHECKING:
    import anthropic


def key_fingerprint(key: ApiKey) -> str:
    """Tells keys apart without keeping one."""
    return hashlib.sha256(key.reveal().encode()).hexdigest()[:16]


class ApiAccess:
    def __init__(
        self,
        api_key: Callable[[], ApiKey | None] = resolve_api_key,
        make_client: Callable[[ApiKey], anthropic.AsyncAnthropic] = client_for,
    ) -> None:
        self._api_key = api_key
        self._make_client = make_client
        self._clients: dict[str, anthropic.AsyncAnthropic] = {}
        self._rejected: str | None = None

    def key(self) -> ApiKey | None:
        return self._api_key()

    def client(self, key: ApiKey) -> anthropic.AsyncAnthropic:
        client = self._clients.get(key.source)
        if client is None or getattr(client, "api_key", None) != key.reveal():
            client = self._clients[key.source] = self._make_client(key)
        return client

    def current_client(self) -> anthropic.AsyncAnthropic | None:
        key = self.key()
        return None if key is None else self.client(key)

    def rejected(self, key: ApiKey) -> None:
        """Anthropic refused this key: waiting messages wait for another one."""
        self._rejected = key_fingerprint(key)

    def accepted(self) -> None:
        self._rejected = None

    def usable_key_set(self) -> bool:
        """A key is set, and it is not the one Anthropic last rejected."""
        key = self.key()
        return key is not None and key_fingerprint(key) != self._rejected

    async def watch(self, waiting: Callable[[], bool], key_set: Callable[[], None]) -> None:
        """For the life of the service: a key set outside the chat page (environment,
        credentials file) is noticed too; a rejected key is not tried again until it changes."""
        while True:
            await asyncio.sleep(KEY_POLL_SECONDS)
            if waiting() and self.usable_key_set():
                key_set()

    async def close(self) -> None:
        for client in self._clients.values():
            await client.close()
