"""`smarthole-notes inbox list|process`: see and retry what is waiting."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from smarthole_notes.inbox import Inbox, InboxMessage, inbox_folder
from tests.standins.anthropic_api import AnthropicStandIn, status_reply, text_reply
from tests.test_cli_ask import env_for


def inbox_command(vault: Path, action: str) -> list[str]:
    return [sys.executable, "-m", "smarthole_notes", "inbox", action, "--vault", str(vault)]


def test_list_and_process_the_inbox(anthropic_api: AnthropicStandIn, tmp_path: Path) -> None:
    vault = tmp_path / "vault"
    vault.mkdir()
    env = env_for(anthropic_api, tmp_path)
    run = lambda action: subprocess.run(  # noqa: E731
        inbox_command(vault, action), env=env, capture_output=True, text=True, timeout=60
    )
    assert run("list").stdout.strip() == "The inbox is empty."

    inbox = Inbox(inbox_folder(vault))
    inbox.put(
        InboxMessage(
            id="m-1", text="add milk", source="smarthole", timestamp="2026-02-05T10:00:00Z"
        )
    )
    inbox.put(
        InboxMessage(id="m-2", text="add bread", source="chat", timestamp="2026-02-05T10:01:00Z")
    )
    listed = run("list").stdout.splitlines()
    assert [line.split()[0] for line in listed] == ["m-1", "m-2"]

    anthropic_api.script(text_reply("Added milk."), *[status_reply(529, retry_after=0)] * 3)
    processed = run("process")
    assert processed.returncode == 1  # one message is still failing
    assert processed.stdout.splitlines() == ["m-1: answered", "m-2: failed"]
    assert "m-2" in run("list").stdout and "overloaded" in run("list").stdout

    anthropic_api.script(text_reply("Added bread."))
    again = run("process")
    assert again.returncode == 0 and again.stdout.strip() == "m-2: answered"
    assert inbox.pending() == []
