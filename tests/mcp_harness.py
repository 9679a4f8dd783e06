"""The official MCP client against our server: over stdio (a real `smarthole-notes mcp`
process) and over streamable HTTP (a real `serve`)."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TextIO

import httpx2
import mcp_types as types
import pytest
from mcp import ClientSession, StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client

from smarthole_notes.settings import save_settings

REPO = Path(__file__).resolve().parent.parent
CLIENT_NAME = "pytest-mcp-client"


def child_env(home: Path) -> dict[str, str]:
    """No API key (deterministic commit messages), no git variables, a private HOME."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "GIT_"))}
    env.update(
        {
            "HOME": str(home),
            "XDG_CONFIG_HOME": str(home / ".config"),
            "PYTHONUNBUFFERED": "1",
            "ANTHROPIC_BASE_URL": "http://127.0.0.1:9",  # never reached: there is no key
        }
    )
    return env


def turn_git_on(vault: Path) -> None:
    save_settings(vault, {"enable_git_version_control": True})


def git(vault: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(vault), *args], capture_output=True, text=True, check=True
    ).stdout


def text_of(result: types.CallToolResult) -> str:
    return "\n".join(c.text for c in result.content if isinstance(c, types.TextContent))


class Mcp:
    """A connected, initialized `ClientSession` with short helpers for the tests."""

    def __init__(self, session: ClientSession) -> None:
        self.session = session

    async def call(self, name: str, **arguments: Any) -> types.CallToolResult:
        return await self.session.call_tool(name, arguments)

    async def ok(self, name: str, **arguments: Any) -> str:
        result = await self.call(name, **arguments)
        assert not result.is_error, text_of(result)
        return text_of(result)

    async def err(self, name: str, **arguments: Any) -> str:
        result = await self.call(name, **arguments)
        assert result.is_error, f"expected an error result, got: {text_of(result)}"
        out = text_of(result)
        assert out.startswith("Error:"), out
        return out

    async def tools(self) -> dict[str, types.Tool]:
        listed = await self.session.list_tools()
        return {tool.name: tool for tool in listed.tools}


@asynccontextmanager
async def stdio_mcp(
    vault: Path, home: Path, errlog: TextIO, client: str = CLIENT_NAME
) -> AsyncIterator[Mcp]:
    """`python -m smarthole_notes mcp --vault ...` driven by the SDK's stdio client."""
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "smarthole_notes", "mcp", "--vault", str(vault)],
        env=child_env(home),
        cwd=str(REPO),
    )
    async with (
        stdio_client(params, errlog=errlog) as (read, write),
        ClientSession(
            read, write, client_info=types.Implementation(name=client, version="1.0")
        ) as session,
    ):
        await asyncio.wait_for(session.initialize(), 30)
        yield Mcp(session)


@asynccontextmanager
async def http_mcp(url: str, token: str | None, client: str = CLIENT_NAME) -> AsyncIterator[Mcp]:
    """The SDK's streamable HTTP client at `url`, with `Authorization: Bearer <token>`."""
    headers = {"authorization": f"Bearer {token}"} if token else {}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=30) as http,
        streamable_http_client(url, http_client=http) as (read, write),
        ClientSession(
            read, write, client_info=types.Implementation(name=client, version="1.0")
        ) as session,
    ):
        await asyncio.wait_for(session.initialize(), 30)
        yield Mcp(session)


async def wait_for_commit(vault: Path, needle: str, timeout: float = 20.0) -> str:
    """The newest commit message containing `needle` (commits are written in the background)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        log = git(vault, "log", "--format=%B%x00")
        for message in log.split("\0"):
            if needle in message:
                return message.strip()
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"no commit with {needle!r} in:\n{log}")
        await asyncio.sleep(0.1)


needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="needs git")


@pytest.fixture
def vault(tmp_path: Path) -> Path:
    """The notes folder MCP tests serve: `<tmp>/notes` (`<tmp>/notes_evil` sits beside it
    in the hostile cases), with one note."""
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "Home.md").write_text("# Home\n")
    return folder


@pytest.fixture
def home(tmp_path: Path) -> Path:
    folder = tmp_path / "home"
    folder.mkdir()
    return folder


def hints(
    read_only: bool, destructive: bool, idempotent: bool, open_world: bool = False
) -> types.ToolAnnotations:
    if read_only:
        return types.ToolAnnotations(read_only_hint=True, open_world_hint=open_world)
    return types.ToolAnnotations(
        read_only_hint=False,
        destructive_hint=destructive,
        idempotent_hint=idempotent,
        open_world_hint=open_world,
    )


# What each tool truthfully is, written here independently of the tool catalog.
EXPECTED_ANNOTATIONS: dict[str, types.ToolAnnotations] = {
    # Reading: nothing in the vault changes.
    "read_file": hints(True, False, True),
    "search_files": hints(True, False, True),
    "list_files": hints(True, False, True),
    "get_file_info": hints(True, False, True),
    "get_active_note": hints(True, False, True),
    "search_notes": hints(True, False, True),
    "get_links": hints(True, False, True),
    "search_git_history": hints(True, False, True),
    "view_file_history": hints(True, False, True),
    "view_commit": hints(True, False, True),
    # Writing. Destructive: may replace or remove what is there. Idempotent: the same call
    # again changes nothing more (a second delete or move finds nothing left to do).
    "write_file": hints(False, True, True),  # overwrites
    "edit_file": hints(False, True, False),  # an insert repeated inserts twice
    "create_folder": hints(False, False, True),  # only adds; an existing folder is reported
    "delete_file": hints(False, True, True),  # out of the vault (kept in .trash/)
    "move_file": hints(False, True, True),  # renames and rewrites links in other notes
    "set_properties": hints(False, True, True),  # null removes a key
    "undo": hints(False, True, False),  # each call reverts one more change
}
