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

from tests.llm_helpers import TEST_KEY
from tests.standins.anthropic_api import AnthropicStandIn, text_reply
from tests.standins.smarthole_server import ThreadedSmartHole

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("anthropic", "mcp", "mcp_types", "fastapi", "httpx2")
SDK_DELAY_SECONDS = 6.0


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
        """,
        tmp_path,
    )
    assert result["heavy"] == []


def test_the_mcp_endpoint_in_serve_loads_the_mcp_sdk_only_when_used(tmp_path: Path) -> None:
    result = _loaded_after(
        """
        import smarthole_notes.mcp.http
        import smarthole_notes.mcp.live
        """,
        tmp_path,
    )
    assert result["heavy"] == []


# A wrapper around `serve` (test code): `import anthropic` takes SDK_DELAY_SECONDS longer,
# as on a slow machine, and the moment it finishes is printed on stderr.
SLOW_SDK_WRAPPER = """
import importlib.abc, sys, time

class SlowSdk(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "anthropic":
            sys.meta_path.remove(self)
            time.sleep(float(sys.argv[1]))
            print("test: the SDK's import goes on now", file=sys.stderr, flush=True)
        return None

sys.meta_path.insert(0, SlowSdk())
from smarthole_notes.cli import main
sys.exit(main(sys.argv[2:]))
"""


@pytest.fixture
def hole() -> Iterator[ThreadedSmartHole]:
    with ThreadedSmartHole() as server:
        yield server


def test_serve_acks_a_message_while_the_sdk_is_still_loading(
    anthropic_api: AnthropicStandIn, hole: ThreadedSmartHole, tmp_path: Path
) -> None:
    vault = tmp_path / "vault"
    vault.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANTHROPIC_")}
    env.update(
        {
            "ANTHROPIC_BASE_URL": anthropic_api.base_url,
            "ANTHROPIC_API_KEY": TEST_KEY,
            "HOME": str(tmp_path),
            "XDG_CONFIG_HOME": str(tmp_path / ".config"),
            "PYTHONUNBUFFERED": "1",
            "PYTHONPATH": str(ROOT),
        }
    )
    anthropic_api.script(text_reply("Added eggs."))
    started = time.monotonic()
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            SLOW_SDK_WRAPPER,
            str(SDK_DELAY_SECONDS),
            "serve",
            "--vault",
            str(vault),
            "--port",
            "0",
            "--smarthole-url",
            hole.hole.url,
        ],
        env=env,
        cwd=tmp_path,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )
    lines: list[str] = []
    printed = threading.Event()
    sdk_resumed: list[float] = []

    def read() -> None:
        assert process.stderr is not None
        for line in process.stderr:
            lines.append(line)
            if line.startswith("Chat page: "):
                printed.set()
            if line.startswith("test: the SDK's import goes on now"):
                sdk_resumed.append(time.monotonic())

    threading.Thread(target=read, daemon=True).start()
    try:
        assert printed.wait(60), "serve printed no address:\n" + "".join(lines)

        def client() -> str | None:
            names = hole.snapshot(lambda h: h.client_names)
            return names[0] if names else None

        name = None
        while name is None and time.monotonic() - started < 60:
            name = client()
            time.sleep(0.01)
        assert name is not None, "serve never registered:\n" + "".join(lines)
        hole.run(hole.hole.route(name, "add eggs", message_id="early-1"))
        deadline = time.monotonic() + 60
        acked_at = None
        while acked_at is None and time.monotonic() < deadline:
            acks = hole.snapshot(lambda h: h.responses_for("early-1", "ack"))
            acked_at = acks[0].at if acks else None
            time.sleep(0.01)
        assert acked_at is not None, "no ack:\n" + "".join(lines)
        # Acked while the SDK's import was still held up by the wrapper.
        assert not sdk_resumed or acked_at < sdk_resumed[0], "".join(lines)
        # Then the message waits for the SDK, and is answered.
        anthropic_api.wait_for_requests(1, timeout=60)
        assert sdk_resumed, "the SDK was never imported:\n" + "".join(lines)
        assert anthropic_api.requests[0].received_at > sdk_resumed[0]
    finally:
        process.terminate()
        assert process.wait(30) == 0, "".join(lines)
