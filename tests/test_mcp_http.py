"""MCP over streamable HTTP at `/mcp` inside a real `serve`, and `serve` beside `mcp`."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any, TextIO

import httpx2
import pytest
import websockets

from tests.mcp_harness import (
    EXPECTED_ANNOTATIONS,
    git,
    http_mcp,
    needs_git,
    stdio_mcp,
    turn_git_on,
    wait_for_commit,
)
from tests.mcp_harness import home as home  # the fixtures, for this module too
from tests.mcp_harness import vault as vault
from tests.standins.anthropic_api import AnthropicStandIn
from tests.test_serve import ServeProcess
from tests.test_vault_hostile import ESCAPES, SECRET, calls

INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "raw", "version": "1"},
    },
}


@pytest.fixture
def serve(anthropic_api: AnthropicStandIn, vault: Path, home: Path) -> Iterator[ServeProcess]:
    process = ServeProcess(vault, anthropic_api, None, home, key=None)
    try:
        yield process
    finally:
        process.terminate()


@pytest.fixture
def errlog(tmp_path: Path) -> Iterator[TextIO]:
    with open(tmp_path / "server-stderr.txt", "w+", encoding="utf-8") as log:
        yield log


def url(serve: ServeProcess) -> str:
    return f"http://127.0.0.1:{serve.port}/mcp"


async def post(serve: ServeProcess, headers: dict[str, str]) -> httpx2.Response:
    async with httpx2.AsyncClient(timeout=10) as http:
        return await http.post(
            url(serve),
            json=INITIALIZE,
            headers={"accept": "application/json, text/event-stream", **headers},
        )


async def test_without_the_token_mcp_is_refused(serve: ServeProcess, vault: Path) -> None:
    assert (await post(serve, {})).status_code == 401
    assert (await post(serve, {"authorization": "Bearer wrong-token"})).status_code == 401
    bearer = {"authorization": f"Bearer {serve.token}"}
    # The same Host and Origin checks as the rest of the API.
    assert (await post(serve, {**bearer, "host": "evil.example"})).status_code == 400
    assert (await post(serve, {**bearer, "origin": "http://evil.example"})).status_code == 403
    assert (await post(serve, bearer)).status_code == 200
    with pytest.raises(Exception):  # noqa: B017 - the SDK client gives up on the 401
        async with http_mcp(url(serve), None) as client:
            await client.ok("write_file", path="Stolen.md", content="x")
    assert not (vault / "Stolen.md").exists()


async def test_tools_over_http_with_schemas_annotations_and_every_operation(
    serve: ServeProcess, vault: Path, tmp_path: Path
) -> None:
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "secret.md").write_text(SECRET)
    (vault / "Index.md").write_text("See [[Projects/Plan]].\n")
    async with http_mcp(url(serve), serve.token) as client:
        tools = await client.tools()
        assert "write_file" in tools and "send_message" not in tools
        assert "undo" not in tools  # git is off
        for name, tool in tools.items():
            assert tool.annotations == EXPECTED_ANNOTATIONS[name], name
            assert tool.input_schema["type"] == "object"
        await client.ok("write_file", path="Projects/Plan.md", content="one\n")
        assert "1: one" in await client.ok("read_file", path="PROJECTS/plan.md")
        await client.ok("edit_file", path="projects/plan.md", old_text="one", new_text="two")
        assert (vault / "Projects" / "Plan.md").read_text() == "two\n"
        await client.ok("move_file", source="Projects/Plan.md", destination="Done/Plan.md")
        assert "Projects/Plan" not in (vault / "Index.md").read_text()
        await client.ok("delete_file", path="Done/Plan.md")
        assert (vault / ".trash" / "Done" / "Plan.md").read_text() == "two\n"
        for path in ESCAPES:
            for name, args in calls(path):
                assert "TOP SECRET" not in await client.err(name, **args)
    assert (tmp_path / "outside" / "secret.md").read_text() == SECRET
    assert sorted(p.name for p in (tmp_path / "outside").iterdir()) == ["secret.md"]


class Events:
    """The chat page's live event stream (`/api/events`), collected in the background."""

    def __init__(self, serve: ServeProcess) -> None:
        self.uri = f"ws://127.0.0.1:{serve.port}/api/events?token={serve.token}"
        self.seen: list[dict[str, Any]] = []

    @contextlib.asynccontextmanager
    async def watching(self) -> AsyncIterator[Events]:
        async with websockets.connect(self.uri) as socket:
            first = json.loads(await asyncio.wait_for(socket.recv(), 10))
            self.seen.append(first)

            async def collect() -> None:
                async for raw in socket:
                    self.seen.append(json.loads(raw))

            task = asyncio.create_task(collect())
            try:
                yield self
            finally:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task

    async def wait_for(self, event_type: str, **fields: Any) -> dict[str, Any]:
        for _ in range(200):
            for event in self.seen:
                if event.get("type") == event_type and all(
                    event.get(k) == v for k, v in fields.items()
                ):
                    return event
            await asyncio.sleep(0.05)
        raise AssertionError(f"no {event_type} {fields} in {self.seen}")


@needs_git
async def test_http_changes_are_committed_and_shown_live(
    anthropic_api: AnthropicStandIn, vault: Path, home: Path
) -> None:
    turn_git_on(vault)
    serve = ServeProcess(vault, anthropic_api, None, home, key=None)
    try:
        async with (
            Events(serve).watching() as events,
            http_mcp(url(serve), serve.token, client="Claude Code") as client,
        ):
            tools = await client.tools()
            assert {"undo", "view_commit", "search_git_history"} <= set(tools)
            await client.ok("write_file", path="Journal/Today.md", content="- ran\n")
            started = await events.wait_for("tool_started", tool="write_file")
            assert started["source"] == "mcp" and started["client"] == "Claude Code"
            done = await events.wait_for("response", message_id=started["message_id"])
            assert "Created file Journal/Today.md" in done["text"]
            assert done["tools_used"][0]["name"] == "write_file"
            message = await wait_for_commit(vault, "Journal/Today.md")
            assert "Smarthole-Source: mcp" in message
            assert "Smarthole-Client: Claude Code" in message
            assert f"Smarthole-Message-Id: {started['message_id']}" in message
            assert "1: - ran" in await client.ok("read_file", path="journal/today.md")
    finally:
        serve.terminate()


@needs_git
async def test_a_stdio_servers_changes_show_in_serves_live_view(
    anthropic_api: AnthropicStandIn, vault: Path, home: Path, errlog: TextIO
) -> None:
    serve = ServeProcess(vault, anthropic_api, None, home, key=None)
    try:
        async with (
            Events(serve).watching() as events,
            stdio_mcp(vault, home, errlog, client="Claude Desktop") as client,
        ):
            await client.ok("write_file", path="From Desktop.md", content="hello\n")
            done = await events.wait_for("response", client="Claude Desktop")
            assert done["source"] == "mcp" and done["message_id"].startswith("mcp-")
            assert "Created file From Desktop.md" in done["text"]
    finally:
        serve.terminate()


@needs_git
async def test_serve_and_mcp_side_by_side_lose_no_write(
    anthropic_api: AnthropicStandIn, vault: Path, home: Path, errlog: TextIO
) -> None:
    """Both processes write at once, to their own notes and to one shared note, with git on:
    every write is on disk, and every change ends up committed."""
    turn_git_on(vault)
    (vault / "Shared.md").write_text("top\n")
    serve = ServeProcess(vault, anthropic_api, None, home, key=None)
    rounds = 12
    try:
        async with (
            http_mcp(url(serve), serve.token, client="over-http") as over_http,
            stdio_mcp(vault, home, errlog, client="over-stdio") as over_stdio,
        ):

            async def writer(client: Any, name: str) -> None:
                for i in range(rounds):
                    await client.ok("write_file", path=f"{name}/note {i}.md", content=f"{i}\n")
                    await client.ok(
                        "edit_file",
                        path="Shared.md",
                        old_text="top\n",
                        new_text=f"top\n{name} {i}\n",
                    )

            await asyncio.gather(writer(over_http, "http"), writer(over_stdio, "stdio"))
            shared = (vault / "Shared.md").read_text()
            for name in ("http", "stdio"):
                for i in range(rounds):
                    assert (vault / name / f"note {i}.md").read_text() == f"{i}\n"
                    assert f"{name} {i}\n" in shared, (name, i, shared)
            # Every change committed: nothing left over in the working tree.
            for _ in range(100):
                if git(vault, "status", "--porcelain").strip() == "":
                    break
                await asyncio.sleep(0.2)
            assert git(vault, "status", "--porcelain").strip() == ""
            log = git(vault, "log", "--format=%B")
            assert "Smarthole-Client: over-http" in log and "Smarthole-Client: over-stdio" in log
    finally:
        serve.terminate()
