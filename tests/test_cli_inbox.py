"""`smarthole-notes inbox list|process`: see and retry what is waiting."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta
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
    lines = processed.stdout.splitlines()
    assert lines[:2] == ["m-1: answered", "m-2: failed, will be tried again by serve"]
    assert "overloaded" in lines[2] and "next try at" in lines[2]
    listed_after = run("list").stdout
    assert "m-2" in listed_after and "[failed, next try at " in listed_after
    assert "overloaded" in listed_after

    anthropic_api.script(text_reply("Added bread."))
    again = run("process")
    assert again.returncode == 0 and again.stdout.strip() == "m-2: answered"
    assert inbox.pending() == []


def test_list_shows_each_state_with_the_next_try_in_local_time(
    anthropic_api: AnthropicStandIn, tmp_path: Path
) -> None:
    vault = tmp_path / "vault"
    vault.mkdir()
    inbox = Inbox(inbox_folder(vault))
    soon = datetime.now(UTC).replace(microsecond=0) + timedelta(minutes=5)
    states: list[tuple[str, dict[str, object]]] = [
        ("m-key", {"state": "waiting_for_key"}),
        (
            "m-retry",
            {
                "state": "retry_scheduled",
                "next_attempt_at": soon.isoformat(),
                "error": "Anthropic is overloaded; kept, next try at later.",
                "attempts": 3,
            },
        ),
        ("m-failed", {"state": "failed", "error": "The request was invalid.", "attempts": 1}),
        ("m-refused", {"state": "refused", "error": "Claude declined this request."}),
        ("m-queued", {}),
    ]
    for number, (message_id, fields) in enumerate(states):
        inbox.put(
            InboxMessage(
                id=message_id,
                text=f"request {number}",
                source="chat",
                timestamp="2026-02-05T10:00:00+00:00",
                received_ns=number,
            )
        )
        if fields:
            inbox.update(message_id, **fields)
    done = subprocess.run(
        inbox_command(vault, "list"),
        env=env_for(anthropic_api, tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    by_id = {line.split()[0]: line for line in lines if line.startswith("m-")}
    assert "[waiting for an API key]" in by_id["m-key"]
    local = soon.astimezone().strftime("%H:%M")
    assert "[failed, next try at " in by_id["m-retry"] and local in by_id["m-retry"]
    assert ", 3 attempts]" in by_id["m-retry"]
    assert "[failed, waiting for you (inbox process), 1 attempt]" in by_id["m-failed"]
    assert "[refused by Claude, waiting for you]" in by_id["m-refused"]
    assert "[queued]" in by_id["m-queued"]
    assert "    Anthropic is overloaded; kept, next try at later." in lines
    assert "    Claude declined this request." in lines
    assert anthropic_api.requests == []


def test_inbox_process_prints_each_settings_warning_once(
    anthropic_api: AnthropicStandIn, tmp_path: Path
) -> None:
    vault = tmp_path / "vault"
    (vault / ".smarthole").mkdir(parents=True)
    (vault / ".smarthole" / "settings.toml").write_text('verbose_logging = "yes"\n')
    done = subprocess.run(
        inbox_command(vault, "process"),
        env=env_for(anthropic_api, tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr.count('verbose_logging = "yes" is invalid') == 1, done.stderr
    assert done.stdout.strip() == "The inbox is empty."
