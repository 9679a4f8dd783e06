"""Putting an agent together: provider, system prompt and every tool that exists for a vault.

`ask` uses this for one request; the pipeline uses it for each message.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from smarthole_notes.credentials import NO_API_KEY_MESSAGE, ApiKey, resolve_api_key
from smarthole_notes.llm.errors import ConfigurationError

if TYPE_CHECKING:
    import anthropic

    from smarthole_notes.llm.service import AgentService
    from smarthole_notes.settings import Settings
    from smarthole_notes.tools.base import Tool
    from smarthole_notes.vault import Vault

log = logging.getLogger(__name__)


def require_api_key() -> ApiKey:
    """The configured key, or a `ConfigurationError` that says how to set one."""
    key = resolve_api_key(on_warning=log.warning)
    if key is None:
        raise ConfigurationError(NO_API_KEY_MESSAGE)
    return key


def build_agent(
    vault: Path | Vault,
    settings: Settings,
    client: anthropic.AsyncAnthropic,
    *,
    extra_tools: list[Tool] | None = None,
    conversation_context: Callable[[], str] | None = None,
) -> AgentService:
    """A streaming agent on the chosen model with every tool for this vault.

    A long-running service passes its one `Vault` (its caches and link index live on);
    `ask` passes the folder."""
    # Imported here, not above: `serve` imports this module before it is ready.
    from smarthole_notes.llm.anthropic_provider import AnthropicProvider  # the SDK: see llm.sdk
    from smarthole_notes.llm.prompt import SystemPrompt
    from smarthole_notes.llm.service import AgentService
    from smarthole_notes.tools.base import ToolRegistry
    from smarthole_notes.tools.vault import vault_tools
    from smarthole_notes.vault import Vault

    provider = AnthropicProvider(
        client,
        settings.model,
        streaming=True,
        stream_idle_timeout=float(settings.stream_idle_timeout_seconds),
    )
    access = vault if isinstance(vault, Vault) else Vault(vault)
    prompt = SystemPrompt(
        settings.information_architecture,
        conversation_context=conversation_context,
        vault_conventions=access.conventions_prompt,  # Obsidian's settings: stable part
        daily_note=access.daily_note_prompt,  # today's daily note: volatile part
    )
    tools = ToolRegistry([*vault_tools(access), *(extra_tools or [])])
    return AgentService(provider, system_prompt=prompt, tools=tools)


def client_for(key: ApiKey) -> anthropic.AsyncAnthropic:
    from smarthole_notes.llm.anthropic_provider import make_client  # the SDK: see llm.sdk

    return make_client(key.reveal())
