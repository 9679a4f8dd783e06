"""`smarthole-notes mcp` with the official MCP client over real stdio pipes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

import pytest

from tests.mcp_harness import (
    CLIENT_NAME,
    EXPECTED_ANNOTATIONS,
    REPO,
    child_env,
    git,
    needs_git,
    stdio_mcp,
    turn_git_on,
    wait_for_commit,
)
from tests.mcp_harness import home as home  # the fixtures, for this module too
from tests.mcp_harness import vault as vault
from tests.test_vault_hostile import ESCAPES, PROTECTED, SECRET, calls, snapshot

VAULT_TOOLS = {
    "read_file",
    "edit_file",
    "write_file",
    "create_folder",
    "delete_file",
    "move_file",
    "search_files",
    "list_files",
    "get_file_info",
    "get_active_note",
    "search_notes",
    "get_links",
    "set_properties",
}
GIT_TOOLS = {"search_git_history", "view_file_history", "view_commit", "undo"}
CONVERSATION_TOOLS = {"send_message", "end_conversation", "get_conversation"}


@pytest.fixture
def errlog(tmp_path: Path) -> Iterator[TextIO]:
    with open(tmp_path / "server-stderr.txt", "w+", encoding="utf-8") as log:
        yield log


async def test_lists_the_vault_tools_with_their_schemas_and_annotations(
    vault: Path, home: Path, errlog: TextIO
) -> None:
    async with stdio_mcp(vault, home, errlog) as client:
        tools = await client.tools()
    assert set(tools) == VAULT_TOOLS  # git is off: no history tools, no undo
    assert not set(tools) & CONVERSATION_TOOLS
    edit = tools["edit_file"]
    assert edit.description and "old_text" in json.dumps(edit.input_schema)
    assert edit.input_schema["type"] == "object"
    assert "path" in edit.input_schema["required"]
    for name, tool in tools.items():
        assert tool.annotations == EXPECTED_ANNOTATIONS[name], name
    read_only = {n for n, t in tools.items() if t.annotations and t.annotations.read_only_hint}
    assert read_only == {
        "read_file",
        "search_files",
        "list_files",
        "get_file_info",
        "get_active_note",
        "search_notes",
        "get_links",
    }
    write = tools["write_file"].annotations
    assert write is not None and write.destructive_hint and write.idempotent_hint
    folder = tools["create_folder"].annotations
    assert folder is not None and folder.destructive_hint is False and folder.idempotent_hint
    edit_hints = tools["edit_file"].annotations
    assert edit_hints is not None and edit_hints.idempotent_hint is False


async def test_write_read_edit_move_delete(vault: Path, home: Path, errlog: TextIO) -> None:
    (vault / "Index.md").write_text("See [[Projects/Plan]] and [plan](Projects/Plan.md).\n")
    async with stdio_mcp(vault, home, errlog) as client:
        out = await client.ok("write_file", path="Projects/Plan.md", content="step one\n")
        assert out.startswith("Created file Projects/Plan.md")
        assert (vault / "Projects" / "Plan.md").read_text() == "step one\n"

        # Case-insensitive lookup, line-numbered output with the agent's footer.
        out = await client.ok("read_file", path="projects/PLAN.md")
        assert "1: step one" in out and "[lines 1-1 of 1]" in out

        out = await client.ok("edit_file", path="Projects/Plan.md", old_text="one", new_text="two")
        assert "Replaced" in out
        assert (vault / "Projects" / "Plan.md").read_text() == "step two\n"
        out = await client.err("edit_file", path="Projects/Plan.md", old_text="zzz", new_text="y")
        assert "not found" in out.lower()

        out = await client.ok("move_file", source="Projects/Plan.md", destination="Archive/Plan.md")
        assert "link" in out.lower()
        assert (vault / "Archive" / "Plan.md").read_text() == "step two\n"
        index = (vault / "Index.md").read_text()
        # Rewritten as Obsidian does: the shortest form that still finds the moved note.
        assert "Projects/Plan" not in index and "[[Plan]]" in index and "(Plan.md)" in index

        out = await client.ok("delete_file", path="Archive/Plan.md")
        assert ".trash" in out
        assert not (vault / "Archive" / "Plan.md").exists()
        assert (vault / ".trash" / "Archive" / "Plan.md").read_text() == "step two\n"

        # An error is a result, never a crash: the session goes on.
        await client.err("read_file", path="Nope.md")
        await client.err("no_such_tool")
        await client.err("write_file", path="x.md")  # content missing: the schema says so
        assert "1: # Home" in await client.ok("read_file", path="home.md")


async def test_paths_that_climb_out_are_refused(
    tmp_path: Path, vault: Path, home: Path, errlog: TextIO
) -> None:
    """Every escape of the hostile suite, through every tool, in one session."""
    _hostile_neighbours(tmp_path)
    before = _outside(tmp_path)
    async with stdio_mcp(vault, home, errlog) as client:
        for path in ESCAPES:
            for name, args in calls(path):
                out = await client.err(name, **args)
                assert "TOP SECRET" not in out and "root:" not in out, (path, name)
    assert _outside(tmp_path) == before
    assert _files(vault) == {"Home.md": b"# Home\n"}


async def test_protected_folders_and_links_out_are_refused(
    tmp_path: Path, vault: Path, home: Path, errlog: TextIO
) -> None:
    _hostile_neighbours(tmp_path)
    (vault / ".obsidian").mkdir()
    (vault / ".obsidian" / "app.json").write_text('{"x": 1}')
    (vault / ".git").mkdir()
    (vault / ".git" / "config").write_text("[core]\n")
    (vault / ".smarthole").mkdir()
    (vault / ".smarthole" / "state.json").write_text("{}")
    os.symlink(tmp_path / "outside", vault / "Linked")
    os.symlink(tmp_path / "outside" / "secret.md", vault / "Innocent.md")
    os.symlink(tmp_path / "notes_evil", vault / "Evil")
    before_outside = _outside(tmp_path)
    before_inside = _files(vault)
    async with stdio_mcp(vault, home, errlog) as client:
        for path in PROTECTED:
            for name, args in calls(path):
                out = await client.err(name, **args)
                assert "[core]" not in out and '"x"' not in out
        for path in ("Linked/secret.md", "Innocent.md", "Evil/secret.md"):
            for name, args in calls(path):
                assert "TOP SECRET" not in await client.err(name, **args)
        await client.err("write_file", path="Linked/new.md", content="pwned")
        await client.err("write_file", path="a\x00.md", content="x")
        await client.err("delete_file", path="/")
        await client.err("list_files", pattern="../*")
        listing = await client.ok("list_files", pattern="**/*")
        assert "secret" not in listing and ".obsidian" not in listing
    assert _outside(tmp_path) == before_outside
    assert _files(vault) == before_inside
    assert (vault / ".obsidian" / "app.json").read_text() == '{"x": 1}'


def _hostile_neighbours(base: Path) -> None:
    outside = base / "outside"
    outside.mkdir(exist_ok=True)
    (outside / "secret.md").write_text(SECRET)
    evil = base / "notes_evil"
    evil.mkdir(exist_ok=True)
    (evil / "secret.md").write_text(SECRET)


def _outside(base: Path) -> dict[str, bytes]:
    """Everything outside the vault but the server's own stderr log and the client's HOME."""
    found = snapshot(base)
    return {k: v for k, v in found.items() if k != "server-stderr.txt" and not k.startswith("home")}


def _files(root: Path) -> dict[str, bytes]:
    found: dict[str, bytes] = {}
    for folder, _, names in os.walk(root):
        for name in names:
            path = Path(folder) / name
            if not path.is_symlink():
                found[str(path.relative_to(root))] = path.read_bytes()
    return found


@needs_git
async def test_a_change_is_committed_with_source_mcp_and_the_client_name(
    vault: Path, home: Path, errlog: TextIO
) -> None:
    turn_git_on(vault)
    async with stdio_mcp(vault, home, errlog, client="Claude Desktop") as client:
        tools = await client.tools()
        assert set(tools) >= GIT_TOOLS
        undo = tools["undo"].annotations
        assert undo is not None and undo.destructive_hint and not undo.idempotent_hint
        await client.ok("write_file", path="Lists/Shopping.md", content="- eggs\n")
        message = await wait_for_commit(vault, "Lists/Shopping.md")
        await client.ok("read_file", path="Lists/Shopping.md")  # reading commits nothing
        await client.ok("write_file", path="Lists/Shopping.md", content="- eggs\n- milk\n")
        await wait_for_commit(vault, "update Lists/Shopping.md")
        history = await client.ok("view_file_history", file_path="Lists/Shopping.md")
        assert "Lists" in history

        out = await client.ok("undo")
        assert "Undid" in out or "undone" in out.lower() or "reverted" in out.lower()
        assert (vault / "Lists" / "Shopping.md").read_text() == "- eggs\n"
    assert "Smarthole-Source: mcp" in message
    assert "Smarthole-Client: Claude Desktop" in message
    assert "Smarthole-Tools-Used: write_file" in message
    assert "Smarthole-Message-Id: mcp-" in message
    assert message.startswith("vault(Lists): add Lists/Shopping.md")
    assert git(vault, "status", "--porcelain").strip() == ""
    count = int(git(vault, "rev-list", "--count", "HEAD"))
    assert count >= 3  # two changes and the undo


def test_stdout_carries_only_the_protocol(vault: Path, home: Path, tmp_path: Path) -> None:
    """Raw pipes: every stdout line is a JSON-RPC message; logs (verbose) go to stderr."""
    messages: list[dict[str, Any]] = [
        {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {
                "protocolVersion": "2025-06-18",
                "capabilities": {},
                "clientInfo": {"name": CLIENT_NAME, "version": "1"},
            },
        },
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {"jsonrpc": "2.0", "id": 2, "method": "tools/list"},
        {
            "jsonrpc": "2.0",
            "id": 3,
            "method": "tools/call",
            "params": {"name": "read_file", "arguments": {"path": "../../etc/passwd"}},
        },
        {
            "jsonrpc": "2.0",
            "id": 4,
            "method": "tools/call",
            "params": {"name": "write_file", "arguments": {"path": "a.md", "content": "x\n"}},
        },
    ]
    process = subprocess.Popen(
        [sys.executable, "-m", "smarthole_notes", "mcp", "--vault", str(vault), "--verbose"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=child_env(home),
        cwd=REPO,
    )
    assert process.stdin is not None and process.stdout is not None
    replies: list[dict[str, Any]] = []
    try:
        for message in messages:
            process.stdin.write(json.dumps(message) + "\n")
            process.stdin.flush()
            if "id" in message:  # wait for each answer: every stdout line must be JSON-RPC
                reply = json.loads(process.stdout.readline())
                assert reply["jsonrpc"] == "2.0"
                replies.append(reply)
        process.stdin.close()
        rest = process.stdout.read()
        stderr = process.stderr.read() if process.stderr else ""
        assert process.wait(60) == 0, stderr
    finally:
        if process.poll() is None:
            process.kill()
    assert rest.strip() == ""
    by_id = {r["id"]: r for r in replies}
    assert set(by_id) == {1, 2, 3, 4}
    assert by_id[1]["result"]["serverInfo"]["name"] == "smarthole-notes"
    assert by_id[3]["result"]["isError"] is True
    assert by_id[3]["result"]["content"][0]["text"].startswith("Error:")
    assert by_id[4]["result"]["isError"] is False
    assert (vault / "a.md").read_text() == "x\n"
    assert "DEBUG" in stderr  # --verbose logs went to stderr, not into the protocol


def test_a_missing_vault_is_a_configuration_error(tmp_path: Path, home: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "smarthole_notes", "mcp", "--vault", str(tmp_path / "nope")],
        input="",
        capture_output=True,
        text=True,
        env=child_env(home),
        cwd=REPO,
        timeout=60,
    )
    assert done.returncode == 2
    assert done.stdout == ""
    assert "does not exist" in done.stderr
