"""`smarthole-notes ask` end to end: a real process talking to the stand-in over sockets."""

from __future__ import annotations

import contextlib
import os
import pty
import select
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from smarthole_notes.conversations.store import ConversationStore, default_path
from tests.llm_helpers import TEST_KEY, process_env
from tests.standins.anthropic_api import AnthropicStandIn, status_reply, text_reply, tool_reply


def env_for(api: AnthropicStandIn, home: Path, key: str | None = TEST_KEY) -> dict[str, str]:
    return process_env(home, base_url=api.base_url, key=key)


def ask_command(vault: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "smarthole_notes", "ask", "--vault", str(vault), *args]


def run_ask(
    api: AnthropicStandIn, tmp_path: Path, *args: str, key: str | None = TEST_KEY
) -> subprocess.CompletedProcess[str]:
    vault = tmp_path / "vault"
    vault.mkdir(exist_ok=True)
    return subprocess.run(
        ask_command(vault, *args),
        env=env_for(api, tmp_path, key),
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_ask_prints_the_answer_and_exits_0(anthropic_api: AnthropicStandIn, tmp_path: Path) -> None:
    anthropic_api.script(text_reply("Added eggs to Lists/Shopping.md."))
    done = run_ask(anthropic_api, tmp_path, "add eggs to my shopping list")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "Added eggs to Lists/Shopping.md.\n"
    body = anthropic_api.requests[0].body
    assert body["stream"] is True
    assert body["messages"][0]["content"][0]["text"] == "add eggs to my shopping list"


def test_model_flag_overrides_the_setting(anthropic_api: AnthropicStandIn, tmp_path: Path) -> None:
    (tmp_path / "vault" / ".smarthole").mkdir(parents=True)
    (tmp_path / "vault" / ".smarthole" / "settings.toml").write_text(
        'model = "claude-sonnet-4-6"\n'
    )
    assert run_ask(anthropic_api, tmp_path, "hi").returncode == 0
    assert run_ask(anthropic_api, tmp_path, "--model", "claude-opus-4-7", "hi").returncode == 0
    models = [r.body["model"] for r in anthropic_api.requests]
    assert models == ["claude-sonnet-4-6", "claude-opus-4-7"]
    assert anthropic_api.requests[1].body["max_tokens"] == 128_000


def test_no_api_key_exits_2_and_says_how_to_set_one(
    anthropic_api: AnthropicStandIn, tmp_path: Path
) -> None:
    done = run_ask(anthropic_api, tmp_path, "hi", key=None)
    assert done.returncode == 2
    assert "ANTHROPIC_API_KEY" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert "Traceback" not in done.stderr
    assert anthropic_api.requests == []


def test_missing_vault_folder_exits_2(anthropic_api: AnthropicStandIn, tmp_path: Path) -> None:
    done = subprocess.run(
        ask_command(tmp_path / "nowhere", "hi"),
        env=env_for(anthropic_api, tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "does not exist" in done.stderr


def test_a_file_as_vault_is_named_not_a_folder(
    anthropic_api: AnthropicStandIn, tmp_path: Path
) -> None:
    note = tmp_path / "Shopping.md"
    note.write_text("- eggs\n")
    done = subprocess.run(
        ask_command(note, "hi"),
        env=env_for(anthropic_api, tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "is not a folder" in done.stderr and "does not exist" not in done.stderr
    assert anthropic_api.requests == []


def test_invalid_key_exits_1_with_one_specific_line(
    anthropic_api: AnthropicStandIn, tmp_path: Path
) -> None:
    anthropic_api.expected_api_key = "the-right-test-key"
    done = run_ask(anthropic_api, tmp_path, "hi", key="a-wrong-test-key")
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        "smarthole-notes: error: The Anthropic API key is missing or invalid (check ANTHROPIC_API_KEY)"
    ]
    assert len(anthropic_api.requests) == 1


def test_persistent_overload_exits_1_after_three_attempts(
    anthropic_api: AnthropicStandIn, tmp_path: Path
) -> None:
    anthropic_api.script(*[status_reply(529, retry_after=0)] * 3)
    done = run_ask(anthropic_api, tmp_path, "hi")
    assert done.returncode == 1
    assert "Anthropic is overloaded; failed after 3 attempts" in done.stderr
    assert "Traceback" not in done.stderr
    assert len(anthropic_api.requests) == 3


def test_verbose_shows_a_traceback_and_debug_lines_but_never_the_key(
    anthropic_api: AnthropicStandIn, tmp_path: Path
) -> None:
    anthropic_api.script(status_reply(400, message="messages: bad shape"))
    done = run_ask(anthropic_api, tmp_path, "--verbose", "hi")
    assert done.returncode == 1
    assert "Traceback" in done.stderr
    assert "LLM request: model=claude-haiku-4-5" in done.stderr
    assert "messages: bad shape" in done.stderr
    assert TEST_KEY not in done.stderr and TEST_KEY not in done.stdout


def test_verbose_shows_what_a_failed_request_cost_before_it_failed(
    anthropic_api: AnthropicStandIn, tmp_path: Path
) -> None:
    def failing() -> None:
        usage = {"input_tokens": 1500, "output_tokens": 20}
        anthropic_api.script(
            tool_reply("list_files", {"path": ""}, usage=usage), *[status_reply(500)] * 3
        )

    failing()
    done = run_ask(anthropic_api, tmp_path, "--verbose", "tidy my notes")
    assert done.returncode == 1
    assert "usage: 1,500 input, 20 output, 0 cache write, 0 cache read tokens" in done.stderr
    failing()
    quiet = run_ask(anthropic_api, tmp_path, "tidy my notes")  # not without --verbose
    assert quiet.returncode == 1 and "usage:" not in quiet.stderr
    anthropic_api.script(text_reply("Tidy.", usage={"input_tokens": 700, "output_tokens": 7}))
    assert run_ask(anthropic_api, tmp_path, "tidy my notes").returncode == 0
    # Each bill, failed or answered, is in the vault's spending ledger (this month's figure).
    with ConversationStore(default_path(tmp_path / "vault")) as store:
        spent = store.usage_since(datetime(2000, 1, 1, tzinfo=UTC))
    assert [u["input_tokens"] for u in spent] == [1500, 1500, 700]


def test_ctrl_c_closes_the_stream_at_once_and_exits_130(
    anthropic_api: AnthropicStandIn, tmp_path: Path
) -> None:
    anthropic_api.script(text_reply("a slow answer " * 50, chunk_size=3, delay=0.2))
    vault = tmp_path / "vault"
    vault.mkdir()
    process = subprocess.Popen(
        ask_command(vault, "tell me a story"),
        env=env_for(anthropic_api, tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    anthropic_api.wait_for_requests(1, timeout=20)
    time.sleep(0.5)
    interrupted_at = time.monotonic()
    process.send_signal(signal.SIGINT)
    _out, err = process.communicate(timeout=10)
    assert process.returncode == 130, err
    assert anthropic_api.wait_for_disconnect(0) - interrupted_at < 0.2
    assert "Traceback" not in err


def test_answer_streams_to_a_terminal_as_it_is_written(
    anthropic_api: AnthropicStandIn, tmp_path: Path
) -> None:
    anthropic_api.script(
        text_reply("First words arrive early. " + "then more " * 10, chunk_size=5, delay=0.1)
    )
    vault = tmp_path / "vault"
    vault.mkdir()
    leader, follower = pty.openpty()
    process = subprocess.Popen(
        ask_command(vault, "hi"),
        env=env_for(anthropic_api, tmp_path),
        stdout=follower,
        stderr=subprocess.PIPE,
    )
    os.close(follower)
    seen = b""
    deadline = time.monotonic() + 20
    while b"First words" not in seen and time.monotonic() < deadline:
        ready, _, _ = select.select([leader], [], [], 0.1)
        if ready:
            seen += os.read(leader, 1024)
    assert b"First words" in seen
    assert not anthropic_api.requests[0].completed  # the stream was still running
    process.wait(timeout=20)
    os.close(leader)
    assert process.returncode == 0


def test_an_error_after_streamed_text_starts_on_a_new_line(
    anthropic_api: AnthropicStandIn, tmp_path: Path
) -> None:
    # Text streams, then an in-stream error that no retry can fix ends the request.
    anthropic_api.script(
        text_reply(
            "Partial answer that never ends",
            chunk_size=4,
            error_after=5,
            error_type="invalid_request_error",
            error_message="bad",
        )
    )
    vault = tmp_path / "vault"
    vault.mkdir()
    leader, follower = pty.openpty()
    process = subprocess.Popen(
        ask_command(vault, "hi"),
        env=env_for(anthropic_api, tmp_path),
        stdout=follower,
        stderr=follower,
    )
    os.close(follower)
    seen = b""
    deadline = time.monotonic() + 30
    while process.poll() is None and time.monotonic() < deadline:
        ready, _, _ = select.select([leader], [], [], 0.1)
        if ready:
            with contextlib.suppress(OSError):
                seen += os.read(leader, 4096)
    with contextlib.suppress(OSError):
        while select.select([leader], [], [], 0.2)[0]:
            chunk = os.read(leader, 4096)
            if not chunk:
                break
            seen += chunk
    os.close(leader)
    assert process.wait(10) == 1
    lines = seen.decode().replace("\r\n", "\n").split("\n")
    error_lines = [line for line in lines if "smarthole-notes: error:" in line]
    assert error_lines, seen
    assert all(line.startswith("smarthole-notes: error:") for line in error_lines), lines


@pytest.mark.parametrize("args", [["--help"], ["ask", "--help"]])
def test_help_works(args: list[str]) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "smarthole_notes", *args], capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0
    assert "ask" in done.stdout


def help_text(*args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "smarthole_notes", *args, "--help"],
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_serve_help_shows_the_defaults() -> None:
    text = help_text("serve")
    assert "(default: 127.0.0.1)" in text
    assert "(default: 8765)" in text
    assert "ws://127.0.0.1:9473" in text
    assert "claude-haiku-4-5" in text
    assert "verbose_logging" in text


def test_inbox_help_describes_its_subcommands() -> None:
    text = help_text("inbox")
    assert "list" in text and "with its state and next automatic try" in text
    assert "process" in text and "run every waiting message through the pipeline now" in text
    assert "--vault" in help_text("inbox", "list")
    assert "exit: 0 if all were answered" in help_text("inbox", "process")


def test_main_help_lists_the_exit_codes() -> None:
    assert "3 undo did nothing" in help_text()


def test_ask_uses_the_vault_tools_to_write_a_note(
    anthropic_api: AnthropicStandIn, tmp_path: Path
) -> None:
    anthropic_api.script(
        tool_reply("write_file", {"path": "Lists/Shopping", "content": "- eggs\n"}),
        text_reply("Added eggs to Lists/Shopping.md."),
    )
    done = run_ask(anthropic_api, tmp_path, "add eggs to my shopping list")
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "vault" / "Lists" / "Shopping.md").read_text() == "- eggs\n"
    tools = {t["name"] for t in anthropic_api.requests[0].body["tools"]}
    assert {"read_file", "write_file", "move_file", "search_files", "get_active_note"} <= tools
    (result,) = [
        b
        for b in anthropic_api.requests[1].body["messages"][-1]["content"]
        if b["type"] == "tool_result"
    ]
    assert result["content"].startswith("Created file Lists/Shopping.md")
