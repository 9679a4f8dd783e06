"""What the web app needs from the rest of the service, gathered in one object.

`serve` builds a `WebContext` from the parts it already runs (pipeline, settings holder,
SmartHole client); tests build one from the stand-ins. Everything the app does to the
outside world (the key, the credentials file, the Anthropic API, SmartHole, git undo) goes
through a field here, the real thing by default, so a test can swap any of it.
"""

from __future__ import annotations

import ipaddress
import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Protocol

from smarthole_notes import __version__
from smarthole_notes.credentials import (
    ApiKey,
    KeySource,
    clear_api_key,
    resolve_api_key,
    store_api_key,
)
from smarthole_notes.settings import Settings

if TYPE_CHECKING:
    import anthropic

    from smarthole_notes.bus import EventBus
    from smarthole_notes.conversations.store import ConversationStore
    from smarthole_notes.pipeline import Pipeline
    from smarthole_notes.smarthole import SmartHoleClient

log = logging.getLogger(__name__)

DEFAULT_MAX_BODY_BYTES = 1024 * 1024
"""Large enough for a long pasted note in a message, small enough to refuse a flood."""


class SettingsSource(Protocol):
    """The settings in effect (`serve`'s `SettingsHolder` fits): read, save, what flags set."""

    def __call__(self) -> Settings: ...

    def reload(self) -> Settings: ...

    def overridden(self) -> list[str]:
        """Keys a command-line flag sets for this run."""
        ...

    def save(self, changes: dict[str, object]) -> Settings:
        """Save to settings.toml (a choice made now wins over a flag); the settings after."""
        ...


class UndoUnavailable(Exception):
    """The undo hook's refusal, worded for the user (e.g. "nothing to undo for that message")."""


UndoHook = Callable[[str], Awaitable[str]]
"""Undo the vault changes a message made (git versioning); returns what was undone.

`serve` passes `pipeline_undo(pipeline)`. It takes the inbox id of the user message whose
changes to revert and raises `UndoUnavailable` with a user-facing reason when it cannot.
Without it the undo route answers 404 and the page shows no Undo action.
"""


def pipeline_undo(pipeline: Pipeline) -> UndoHook:
    """The undo hook over `Pipeline.undo` (git versioning): pass it as `WebContext.undo`."""

    async def undo(message_id: str) -> str:
        result = await pipeline.undo(message_id)
        if not result.ok:
            raise UndoUnavailable(result.message)
        return result.message

    return undo


ApplySettings = Callable[[Settings, Settings], Awaitable[None]]
"""Apply a settings change at runtime: `(before, after)`. `serve` re-registers with SmartHole,
enables or disables the connection, adjusts logging. Its failure is reported, never fatal."""


def generate_token() -> str:
    """A fresh access token: 256 random bits, URL-safe (it travels in the start-up URL)."""
    return secrets.token_urlsafe(32)


def _default_api_key() -> ApiKey | None:
    return resolve_api_key(on_warning=log.warning)


class ClientFactory:
    """An SDK client for the key in effect, made again only when the key changes.

    The models list and the routing-description micro-agent use it; the pipeline has its own.
    """

    def __init__(
        self,
        api_key: Callable[[], ApiKey | None] = _default_api_key,
        base_url: str | None = None,
    ) -> None:
        self._api_key = api_key
        self._base_url = base_url
        self._client: anthropic.AsyncAnthropic | None = None
        self._for: ApiKey | None = None

    def __call__(self) -> anthropic.AsyncAnthropic | None:
        key = self._api_key()
        if key is None:
            return None
        if self._client is None or self._for != key:
            from smarthole_notes.llm.anthropic_provider import make_client  # see llm.sdk

            self._client = make_client(key.reveal(), self._base_url)
            self._for = key
        return self._client


LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")


def is_loopback(host: str) -> bool:
    """Whether `host` (a name or an address, IPv6 without brackets) is this machine."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass
class WebContext:
    """Everything the chat page and its API work with.

    `host` and `port` are where the service listens; the allowed `Host` headers and
    `Origin`s derive from them (loopback names always; `host` itself and `extra_hosts` when
    the user explicitly listens elsewhere). A `port` of 0 means "not known": any port is
    then accepted in `Host` and `Origin` (only for tests that bind late; `serve` knows it).
    """

    pipeline: Pipeline
    settings: SettingsSource
    vault: Path
    token: str
    port: int
    host: str = "127.0.0.1"
    extra_hosts: tuple[str, ...] = ()
    smarthole: Callable[[], SmartHoleClient | None] = lambda: None
    apply_settings: ApplySettings | None = None
    api_key: Callable[[], ApiKey | None] = _default_api_key
    """The key in effect, for "set / not set" (never shown) and for the SDK clients."""
    store_api_key: Callable[[str], object] | None = None
    """Saves a key from the settings view (default: the credentials file, mode 0600)."""
    clear_api_key: Callable[[], object] | None = None
    anthropic_client: Callable[[], anthropic.AsyncAnthropic | None] | None = None
    """SDK client factory for the models list and the routing micro-agent (default: `ClientFactory`)."""
    undo: UndoHook | None = None
    """Git undo, see `UndoHook` (None: not offered)."""
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    version: str = field(default="")

    def __post_init__(self) -> None:
        if self.store_api_key is None:
            self.store_api_key = store_api_key
        if self.clear_api_key is None:
            self.clear_api_key = clear_api_key
        if self.anthropic_client is None:
            self.anthropic_client = ClientFactory(self.api_key)
        if not self.version:
            self.version = __version__

    @property
    def store(self) -> ConversationStore:
        return self.pipeline.store

    @property
    def bus(self) -> EventBus:
        return self.pipeline.bus

    def host_names(self) -> list[str]:
        """Host names and addresses the browser may use to reach us (lower case, no brackets)."""
        names = list(LOOPBACK_NAMES)
        for extra in (self.host, *self.extra_hosts):
            name = extra.strip("[]").lower()
            if name and name not in ("0.0.0.0", "::") and name not in names:  # noqa: S104
                names.append(name)
        return names

    def api_key_state(self) -> tuple[Literal["set", "not set"], KeySource | None]:
        """("set" | "not set", where from): all the page is ever told about the key."""
        key = self.api_key()
        return ("set", key.source) if key is not None else ("not set", None)
