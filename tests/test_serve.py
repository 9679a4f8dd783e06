"""`smarthole-notes serve` as a real process: no-key start, clean shutdown, and SIGKILL recovery."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from smarthole_notes.conversations.store import ConversationStore, default_path
from smarthole_notes.inbox import Inbox, InboxMessage, inbox_folder
from smarthole_notes.pipeline import RETRY_NOTE
from tests.llm_helpers import TEST_KEY
from tests.standins.anthropic_api import AnthropicStandIn, Reply, text_reply, tool_reply
from tests.standins.smarthole_server import ThreadedSmartHole

CLIENT = "Miss-Simone"
BIG_NOTE = "".join(f"- item {i}: a line long enough to make the note big\n" for i in range(40_000))


class ServeProcess:
    """`smarthole-notes serve` in a subprocess, with its stderr collected."""

    def __init__(
        self,
        vault: Path,
        api: AnthropicStandIn,
        hole: ThreadedSmartHole | None,
        home: Path,
        key: str | None = TEST_KEY,
    ) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("ANTHROPIC_")}
        env.update(
            {
                "ANTHROPIC_BASE_URL": api.base_url,
                "HOME": str(home),
                "XDG_CONFIG_HOME": str(home / ".config"),
                "PYTHONUNBUFFERED": "1",
            }
        )
        if key:
            env["ANTHROPIC_API_KEY"] = key
        where = ["--smarthole-url", hole.url] if hole else ["--no-smarthole"]
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "smarthole_notes",
                "serve",
                "--vault",
                str(vault),
                "--port",
                "0",
                *where,
            ],
            env=env,
            stderr=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            text=True,
        )
        self.lines: list[str] = []
        self.port: int | None = None
        self.token = ""
        self._ready = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()
        assert self._ready.wait(30), "serve did not start:\n" + "".join(self.lines)

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.append(line)
            if line.startswith("Chat page: "):
                url = line.split("Chat page: ", 1)[1].strip()
                self.port = int(url.rsplit(":", 1)[1].split("/")[0])
                self.token = url.split("token=", 1)[1]
                self._ready.set()

    def health(self) -> dict[str, Any]:
        import json

        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}/api/status",
            headers={"Authorization": f"Bearer {self.token}"},
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            return dict(json.load(response))

    def kill(self) -> None:
        self.process.kill()
        self.process.wait(10)

    def terminate(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(30)


def wait_until(predicate: Callable[[], Any], timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise TimeoutError("condition not met in time")


@pytest.fixture
def hole() -> Iterator[ThreadedSmartHole]:
    with ThreadedSmartHole() as server:
        yield server


def route(hole: ThreadedSmartHole, text: str, message_id: str) -> None:
    wait_until(lambda: CLIENT in hole.client_names)
    hole.run(hole.hole.route(CLIENT, text, message_id=message_id))


def responses(hole: ThreadedSmartHole, message_id: str, kind: str) -> list[Any]:
    return hole.snapshot(lambda h: h.responses_for(message_id, kind))


def test_serve_without_a_key_acks_keeps_and_explains(
    anthropic_api: AnthropicStandIn, hole: ThreadedSmartHole, vault: Path, tmp_path: Path
) -> None:
    serve = ServeProcess(vault, anthropic_api, hole, tmp_path, key=None)
    try:
        assert serve.health()["api_key"] == "not set"
        route(hole, "add eggs", "msg-nokey")
        wait_until(lambda: responses(hole, "msg-nokey", "ack"))
        (told,) = wait_until(lambda: responses(hole, "msg-nokey", "notification"))
        assert "needs an Anthropic API key" in told.payload["body"]
        assert [m.id for m in Inbox(inbox_folder(vault)).pending()] == ["msg-nokey"]
    finally:
        assert serve.terminate() == 0
    assert any("ANTHROPIC_API_KEY" in line for line in serve.lines)
    assert anthropic_api.requests == []


def test_sigterm_lets_the_current_message_finish(
    anthropic_api: AnthropicStandIn, vault: Path, tmp_path: Path
) -> None:
    anthropic_api.script(text_reply("A slow but complete answer.", chunk_size=2, delay=0.05))
    inbox = Inbox(inbox_folder(vault))
    inbox.put(InboxMessage(id="chat-term", text="hi", source="chat", timestamp=""))
    serve = ServeProcess(vault, anthropic_api, None, tmp_path)
    anthropic_api.wait_for_requests(1, timeout=20)
    assert serve.terminate() == 0
    assert anthropic_api.requests[0].completed
    assert inbox.pending() == []


Trigger = Callable[[AnthropicStandIn, ThreadedSmartHole, str], None]


def _before_ack(api: AnthropicStandIn, hole: ThreadedSmartHole, message_id: str) -> None:
    return None  # kill at once


def _after_ack(api: AnthropicStandIn, hole: ThreadedSmartHole, message_id: str) -> None:
    wait_until(lambda: responses(hole, message_id, "ack"))


def _mid_stream(api: AnthropicStandIn, hole: ThreadedSmartHole, message_id: str) -> None:
    api.wait_for_requests(1, timeout=20)
    time.sleep(0.3)


def _after_tool_wrote(api: AnthropicStandIn, hole: ThreadedSmartHole, message_id: str) -> None:
    api.wait_for_requests(2, timeout=20)


def _before_cleanup(api: AnthropicStandIn, hole: ThreadedSmartHole, message_id: str) -> None:
    wait_until(lambda: responses(hole, message_id, "notification"))


SCENARIOS: dict[str, tuple[list[Reply], Trigger]] = {
    "before the ack": ([text_reply("Done.")], _before_ack),
    "after the ack": ([text_reply("slow " * 200, chunk_size=1, delay=0.05)], _after_ack),
    "mid-stream": ([text_reply("slow " * 200, chunk_size=1, delay=0.05)], _mid_stream),
    "after a tool wrote": (
        [
            tool_reply("write_file", {"path": "Big.md", "content": BIG_NOTE}),
            text_reply("never", stall_after=2),
        ],
        _after_tool_wrote,
    ),
    "before clean-up": ([text_reply("Added it.")], _before_cleanup),
}


@pytest.mark.parametrize("point", list(SCENARIOS))
def test_sigkill_at_any_point_loses_nothing_and_completes_once(
    anthropic_api: AnthropicStandIn,
    hole: ThreadedSmartHole,
    vault: Path,
    tmp_path: Path,
    point: str,
) -> None:
    first_run, trigger = SCENARIOS[point]
    message_id = f"msg-kill-{point.replace(' ', '-')}"
    anthropic_api.script(*first_run)
    serve = ServeProcess(vault, anthropic_api, hole, tmp_path)
    route(hole, "write the big note", message_id)
    trigger(anthropic_api, hole, message_id)
    serve.kill()
    first_requests = len(anthropic_api.requests)

    big = vault / "Big.md"
    assert not big.exists() or big.read_text() == BIG_NOTE  # never torn
    anthropic_api.reset()
    anthropic_api.script(text_reply("Checked: it is all there."))
    serve = ServeProcess(vault, anthropic_api, hole, tmp_path)
    try:
        # SmartHole re-routes what was never acked; a re-delivered id is processed once.
        route(hole, "write the big note", message_id)
        store_path = default_path(vault)

        def answered() -> bool:
            with ConversationStore(store_path) as store:
                return store.is_processed(message_id)

        wait_until(answered, timeout=30)
        wait_until(lambda: not Inbox(inbox_folder(vault)).pending())
    finally:
        assert serve.terminate() == 0

    with ConversationStore(default_path(vault)) as store:
        assert store.integrity_check() == "ok"
        rows = [m for c in store.list_conversations(limit=50) for m in store.messages(c.id)]
    users = [m for m in rows if m.role == "user" and m.message_id == message_id]
    answers = [m for m in rows if m.role == "assistant"]
    assert len(users) == 1 and len(answers) == 1
    assert not big.exists() or big.read_text() == BIG_NOTE
    reruns = [r for r in anthropic_api.requests if r.body.get("stream")]
    if reruns and first_requests:
        rerun_text = reruns[0].body["messages"][0]["content"][-1]["text"]
        if point in ("after the ack", "mid-stream", "after a tool wrote"):
            assert rerun_text.startswith(RETRY_NOTE)


def test_the_printed_url_opens_the_chat_page_and_the_token_is_kept(
    anthropic_api: AnthropicStandIn, vault: Path, tmp_path: Path
) -> None:
    serve = ServeProcess(vault, anthropic_api, None, tmp_path)
    try:
        first_token = serve.token
        assert serve.health()["api_key"] == "set"
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor())
        with opener.open(f"http://127.0.0.1:{serve.port}/?token={serve.token}", timeout=5) as page:
            html = page.read().decode()
        assert 'aria-label="Message"' in html or "Message" in html
        assert TEST_KEY not in html
    finally:
        assert serve.terminate() == 0
    token_file = tmp_path / ".config" / "smarthole-notes" / "web-token"
    assert token_file.stat().st_mode & 0o777 == 0o600
    serve = ServeProcess(vault, anthropic_api, None, tmp_path)
    try:
        assert serve.token == first_token
    finally:
        serve.terminate()
    assert not any(
        first_token in p.read_text(errors="ignore")
        for p in vault.rglob("*")
        if p.is_file() and p.suffix != ".db"
    )


def test_listening_beyond_loopback_needs_an_explicit_flag(tmp_path: Path, vault: Path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "smarthole_notes",
            "serve",
            "--vault",
            str(vault),
            "--host",
            "0.0.0.0",
            "--port",
            "0",
        ],
        env={**os.environ, "HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "--allow-remote" in done.stderr


def test_a_busy_port_is_explained_and_nothing_is_written_to_the_vault(
    tmp_path: Path, vault: Path
) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {k: v for k, v in os.environ.items() if not k.startswith("ANTHROPIC_")}
        env.update({"HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path / ".config")})
        result = subprocess.run(
            [
                *(sys.executable, "-m", "smarthole_notes", "serve", "--vault", str(vault)),
                *("--port", str(port), "--no-smarthole"),
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert result.returncode == 2
    assert "already in use" in result.stderr and "--port 0" in result.stderr
    assert "Another smarthole-notes may be running" in result.stderr
    assert list(vault.iterdir()) == []
