"""`smarthole-notes serve` start-up as the user sees it on stderr: each settings warning
once, `verbose_logging` from settings.toml honoured, a file as `--vault` named as such."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

from smarthole_notes.settings import settings_path
from tests.standins.anthropic_api import AnthropicStandIn
from tests.test_cli_ask import env_for


def start_serve(
    vault: Path, api: AnthropicStandIn, home: Path
) -> tuple[subprocess.Popen[str], list[str]]:
    """`serve` until its start-up line; returns the process and its stderr lines so far."""
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "smarthole_notes",
            "serve",
            "--vault",
            str(vault),
            "--port",
            "0",
            "--no-smarthole",
        ],
        env=env_for(api, home),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: list[str] = []
    ready = threading.Event()

    def read() -> None:
        assert process.stderr is not None
        for line in process.stderr:
            lines.append(line)
            if line.startswith("Chat page: "):
                ready.set()

    threading.Thread(target=read, daemon=True).start()
    assert ready.wait(30), "serve did not start:\n" + "".join(lines)
    return process, lines


def stop(process: subprocess.Popen[str]) -> None:
    process.terminate()
    process.wait(30)


def test_each_settings_warning_is_printed_once(
    anthropic_api: AnthropicStandIn, tmp_path: Path
) -> None:
    vault = tmp_path / "vault"
    vault.mkdir()
    path = settings_path(vault)
    path.parent.mkdir()
    path.write_text('conversation_idle_timeout_minutes = -5\nmodle = "x"\n')
    process, lines = start_serve(vault, anthropic_api, tmp_path)
    try:
        time.sleep(0.3)
        text = "".join(lines)
        assert text.count("conversation_idle_timeout_minutes = -5 is invalid") == 1, text
        assert text.count("unknown key 'modle'") == 1, text
    finally:
        stop(process)


def test_verbose_logging_from_settings_is_honoured_at_start(
    anthropic_api: AnthropicStandIn, tmp_path: Path
) -> None:
    vault = tmp_path / "vault"
    vault.mkdir()
    path = settings_path(vault)
    path.parent.mkdir()
    path.write_text("verbose_logging = true\n")
    process, lines = start_serve(vault, anthropic_api, tmp_path)
    try:
        stop(process)
        assert any(" DEBUG " in line or " INFO " in line for line in lines), "".join(lines)
    finally:
        if process.poll() is None:
            stop(process)


def test_a_file_as_vault_is_named_not_a_folder(
    anthropic_api: AnthropicStandIn, tmp_path: Path
) -> None:
    note = tmp_path / "note.md"
    note.write_text("x")
    done = subprocess.run(
        [sys.executable, "-m", "smarthole_notes", "serve", "--vault", str(note), "--port", "0"],
        env=env_for(anthropic_api, tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "is not a folder" in done.stderr
