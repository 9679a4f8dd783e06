"""`smarthole-notes mcp`: the vault's MCP server over stdin/stdout, for one MCP client.

stdout carries the protocol and nothing else: logs go to stderr, and while the SDK's
stdio transport serves, stray writes to file descriptor 1 are diverted to stderr too.

The `anthropic` SDK (only for Haiku's commit messages) is imported in a thread while the
handshake is answered and the tools listed (`llm.sdk`), not before.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from pathlib import Path

from mcp.server.stdio import stdio_server

from smarthole_notes.credentials import resolve_api_key
from smarthole_notes.llm import sdk
from smarthole_notes.logs import configure_logging
from smarthole_notes.mcp.live import LiveSender
from smarthole_notes.mcp.server import McpVaultService, build_server
from smarthole_notes.settings import Settings, load_settings
from smarthole_notes.versioning import GitError
from smarthole_notes.versioning.commit_message import LLM

log = logging.getLogger(__name__)


def _settings(vault: Path) -> Settings:
    return load_settings(vault).settings


class CommitMessageClient:
    """The SDK client for Haiku's commit messages, for the key in effect (None: no key, and
    the deterministic message is used); made again only when the key changes."""

    def __init__(self) -> None:
        self._client: LLM = None
        self._key: str | None = None

    def __call__(self) -> LLM:
        key = resolve_api_key(on_warning=log.warning)
        if key is None:
            return None
        if self._client is None or self._key != key.reveal():
            from smarthole_notes.llm.anthropic_provider import make_client  # see llm.sdk

            self._client = make_client(key.reveal())
            self._key = key.reveal()
        return self._client


async def run_stdio(vault: Path) -> int:
    """Serve until the client closes stdin; the commits still being written finish first."""
    for problem in load_settings(vault).problems:
        log.warning("settings.toml: %s", problem.message)
    sender = LiveSender(vault)
    service = McpVaultService(
        vault, settings=lambda: _settings(vault), llm=CommitMessageClient(), publish=sender
    )
    git = service.current_git()
    if git is not None:
        try:
            await asyncio.to_thread(git.ensure_repository)
        except (GitError, OSError) as exc:
            log.warning("Git versioning is on but the repository is not usable: %s", exc)
    server = build_server(service)
    if resolve_api_key() is not None:
        sdk.start_loading()  # for the first commit message, while the client says hello
    try:
        async with stdio_server() as (read_stream, write_stream):
            await server.run(read_stream, write_stream, server.create_initialization_options())
    finally:
        await service.drain()
        sender.close()
    return 0


def command(vault_arg: str | None, verbose: bool) -> int:
    """The `mcp` subcommand: exit 0 when the client hung up, 2 for a vault that is not there."""
    from smarthole_notes.exits import EXIT_CONFIGURATION, EXIT_INTERRUPTED, vault_folder
    from smarthole_notes.llm.errors import ConfigurationError

    try:
        vault = vault_folder(vault_arg)
        if _settings(vault).verbose_logging and not verbose:
            configure_logging(True)
        return asyncio.run(run_stdio(vault))
    except ConfigurationError as exc:
        print(f"smarthole-notes: error: {exc}", file=sys.stderr)
        return EXIT_CONFIGURATION
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
