"""Instant start: what the command line and `serve` load before they answer.

`--help`, `--version` and each command's `--help` must not import the `anthropic` SDK (or
the MCP SDK, or FastAPI); `serve`'s modules up to "ready" must not either; and `serve`
acks a SmartHole message and prints its address while the SDK's import is still going
on (made slow here by an import hook in the test's own wrapper, not by the product).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from smarthole_notes.conversations.store import ConversationStore, default_path
from smarthole_notes.inbox import Inbox, inbox_folder
from tests.llm_helpers import process_env
from tests.standins.anthropic_api import AnthropicStandIn, text_reply
from tests.standins.smarthole_server import ThreadedSmartHole

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("anthropic", "mcp", "mcp_types", "fastapi", "httpx2")
SDK_DELAY_SECONDS = 6.0
LATE_PARTS = {"pipeline", "agent", "tools", "vault", "versioning", "conversations"}
PIPELINE_DELAY_SECONDS = 4.0


def _loaded_after(code: str, cwd: Path) -> dict[str, object]:
    """Run `code` in a fresh interpreter; which heavy packages it left in sys.modules."""
    body = textwrap.indent(textwrap.dedent(code).strip(), "        ")
    script = (
        "import contextlib, io, json, sys\n"
        "out = io.StringIO()\n"
        "code = None\n"
        "with contextlib.redirect_stdout(out):\n"
        "    try:\n"
        f"{body}\n"
        "    except SystemExit as exc:\n"
        "        code = exc.code\n"
        f"heavy = sorted({{n.split('.')[0] for n in sys.modules}} & set({HEAVY!r}))\n"
        "print(json.dumps({'heavy': heavy, 'exit': code, 'out': out.getvalue()}))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, cwd=cwd, timeout=60
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, object] = json.loads(done.stdout)
    return result


@pytest.mark.parametrize(
    "argv",
    [
        ["--help"],
        ["--version"],
        ["ask", "--help"],
        ["serve", "--help"],
        ["inbox", "list", "--help"],
        ["undo", "--help"],
        ["mcp", "--help"],
    ],
)
def test_help_and_version_import_nothing_heavy(argv: list[str], tmp_path: Path) -> None:
    result = _loaded_after(
        f"""
        from smarthole_notes.cli import main
        main({argv!r})
        """,
        tmp_path,
    )
    assert result["exit"] == 0
    assert "smarthole-notes" in str(result["out"])
    assert result["heavy"] == []


def test_serve_modules_up_to_ready_do_not_import_the_sdk(tmp_path: Path) -> None:
    """What `serve` imports before it is ready: the server module and what it pulls in."""
    result = _loaded_after(
        """
        import smarthole_notes.server
        import smarthole_notes.cli
        print(sorted(m for m in sys.modules if m.startswith("smarthole_notes.")))
        """,
        tmp_path,
    )
    assert result["heavy"] == []
    # Nor the pipeline's parts: they load after "ready", while messages are already acked.
    loaded = {name.split(".")[1] for name in json.loads(str(result["out"]).replace("'", '"'))}
    assert loaded & LATE_PARTS == set()


def test_the_mcp_endpoint_in_serve_loads_the_mcp_sdk_only_when_used(tmp_path: Path) -> None:
    result = _loaded_after(
        """
        import smarthole_notes.mcp.http
        import smarthole_notes.mcp.live
        """,
        tmp_path,
    )
    assert result["heavy"] == []


# A wrapper around `serve` (test code): importing one module (argv[1]) takes argv[2]
# seconds longer, as on a slow machine; the wall-clock moment its import goes on is printed.
SLOW_IMPORT_WRAPPER = """
import importlib.abc, sys, time

class SlowImport(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == sys.argv[1]:
            sys.meta_path.remove(self)
            time.sleep(float(sys.argv[2]))
            print(f"test: import goes on now {time.time()!r}", file=sys.stderr, flush=True)
        return None

sys.meta_path.insert(0, SlowImport())
from smarthole_notes.cli import main
sys.exit(main(sys.argv[3:]))
"""
RESUMED = "test: import goes on now "


@pytest.fixture
def hole() -> Iterator[ThreadedSmartHole]:
    with ThreadedSmartHole() as server:
        yield server


class SlowServe:
    """`serve` run by SLOW_IMPORT_WRAPPER, its stderr collected by a thread."""

    def __init__(
        self,
        tmp_path: Path,
        api: AnthropicStandIn,
        hole: ThreadedSmartHole,
        slow: str,
        delay: float,
    ) -> None:
        self.vault = tmp_path / "vault"
        self.vault.mkdir()
        self.hole = hole
        env = process_env(tmp_path, base_url=api.base_url, pythonpath=ROOT)
        self.lines: list[str] = []
        self.printed = threading.Event()
        self.resumed: list[float] = []  # time.time() when the slow import went on
        self.resumed_at: list[float] = []  # time.monotonic() of the same moment, seen here
        self.process = subprocess.Popen(
            [
                *(sys.executable, "-c", SLOW_IMPORT_WRAPPER, slow, str(delay), "serve"),
                *("--vault", str(self.vault), "--port", "0", "--smarthole-url", hole.hole.url),
            ],
            env=env,
            cwd=tmp_path,
            stderr=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            text=True,
        )
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.append(line)
            if line.startswith("Chat page: "):
                self.printed.set()
            if line.startswith(RESUMED):
                self.resumed_at.append(time.monotonic())
                self.resumed.append(float(line.removeprefix(RESUMED)))

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def registered_name(self) -> str:
        assert self.printed.wait(60), "serve printed no address:\n" + self.output
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            names = self.hole.snapshot(lambda h: h.client_names)
            if names:
                return names[0]
            time.sleep(0.01)
        raise AssertionError("serve never registered:\n" + self.output)

    def acked_at(self, message_id: str) -> float:
        """The stand-in's monotonic time of the message's ack."""
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            acks = self.hole.snapshot(lambda h: h.responses_for(message_id, "ack"))
            if acks:
                return float(acks[0].at)
            time.sleep(0.01)
        raise AssertionError("no ack:\n" + self.output)

    def stop(self) -> None:
        self.process.terminate()
        assert self.process.wait(30) == 0, self.output


def test_serve_acks_a_message_while_the_sdk_is_still_loading(
    anthropic_api: AnthropicStandIn, hole: ThreadedSmartHole, tmp_path: Path
) -> None:
    anthropic_api.script(text_reply("Added eggs."))
    serve = SlowServe(tmp_path, anthropic_api, hole, "anthropic", SDK_DELAY_SECONDS)
    try:
        name = serve.registered_name()
        hole.run(hole.hole.route(name, "add eggs", message_id="early-1"))
        acked_at = serve.acked_at("early-1")
        # Acked while the SDK's import was still held up by the wrapper.
        assert not serve.resumed_at or acked_at < serve.resumed_at[0], serve.output
        # Then the message waits for the SDK, and is answered.
        anthropic_api.wait_for_requests(1, timeout=60)
        assert serve.resumed_at, "the SDK was never imported:\n" + serve.output
        assert anthropic_api.requests[0].received_at > serve.resumed_at[0]
    finally:
        serve.stop()


def test_serve_acks_and_keeps_messages_while_the_pipeline_is_still_loading(
    anthropic_api: AnthropicStandIn, hole: ThreadedSmartHole, tmp_path: Path
) -> None:
    """Messages that arrive before the pipeline exists are acked once stored, then run in
    arrival order, recorded at the time they arrived, each once."""
    anthropic_api.script(text_reply("Added eggs."), text_reply("Added milk."))
    serve = SlowServe(
        tmp_path, anthropic_api, hole, "smarthole_notes.pipeline", PIPELINE_DELAY_SECONDS
    )
    try:
        name = serve.registered_name()
        hole.run(hole.hole.route(name, "add eggs", message_id="early-1"))
        hole.run(hole.hole.route(name, "add milk", message_id="early-2"))
        acks = [serve.acked_at("early-1"), serve.acked_at("early-2")]
        sent = time.time()
        assert not serve.resumed_at or max(acks) < serve.resumed_at[0], serve.output
        inbox = Inbox(inbox_folder(serve.vault))
        assert "early-1" in inbox and "early-2" in inbox  # stored before the ack
        anthropic_api.wait_for_requests(2, timeout=60)
        assert serve.resumed, "the pipeline was never imported:\n" + serve.output
        asked = [json.dumps(r.body["messages"]) for r in anthropic_api.requests]
        assert "add eggs" in asked[0] and "add milk" in asked[1]
        deadline = time.monotonic() + 30
        while "early-2" in inbox:
            assert time.monotonic() < deadline, serve.output
            time.sleep(0.05)
    finally:
        serve.stop()
    store = ConversationStore(default_path(serve.vault))
    try:
        recorded = [store.user_message(m) for m in ("early-1", "early-2")]
    finally:
        store.close()
    assert all(r is not None for r in recorded)
    times = [r.created_at.timestamp() for r in recorded if r is not None]
    # Recorded when they arrived (before the pipeline's import went on), not when it ran them.
    assert times[0] <= times[1] < serve.resumed[0] and times[1] <= sent
    assert len(anthropic_api.requests) == 2


def test_stopping_serve_while_the_pipeline_loads_keeps_the_messages_for_next_time(
    anthropic_api: AnthropicStandIn, hole: ThreadedSmartHole, tmp_path: Path
) -> None:
    serve = SlowServe(
        tmp_path, anthropic_api, hole, "smarthole_notes.pipeline", PIPELINE_DELAY_SECONDS
    )
    try:
        name = serve.registered_name()
        hole.run(hole.hole.route(name, "add eggs", message_id="early-1"))
        serve.acked_at("early-1")
        assert not serve.resumed_at, "the pipeline loaded too soon for this test"
    finally:
        serve.stop()  # SIGTERM while the pipeline is still importing: exit 0
    assert "Traceback" not in serve.output
    assert "early-1" in Inbox(inbox_folder(serve.vault))
    assert anthropic_api.requests == []
