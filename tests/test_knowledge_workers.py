"""The search index's worker processes end with the service, even when it is SIGKILLed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from smarthole_notes.vault.index import PARALLEL_FROM

BUILDER = """
import sys, time
from pathlib import Path
from smarthole_notes.vault import Vault
vault = Vault(Path(sys.argv[1]))
vault.start_index()
print("started", flush=True)
time.sleep(60)
"""


def children_of(pid: int) -> set[int]:
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.add(int(entry.name))
    return found


def alive(pid: int) -> bool:
    try:
        state = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.skipif(not Path("/proc").exists(), reason="reads /proc (Linux)")
def test_a_killed_service_leaves_no_index_worker_behind(tmp_path: Path) -> None:
    vault = tmp_path / "vault"
    vault.mkdir()
    body = "".join(f"Line {i} with [[Note {i + 1}]] and #tag/{i % 7}\n" for i in range(400))
    for i in range(PARALLEL_FROM * 3):
        (vault / f"Note {i}.md").write_text(f"# Note {i}\n\n{body}")
    builder = subprocess.Popen(
        [sys.executable, "-c", BUILDER, str(vault)], stdout=subprocess.PIPE, text=True
    )
    assert builder.stdout is not None and builder.stdout.readline().strip() == "started"
    workers: set[int] = set()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len(workers) < 2:
        workers = {p for p in children_of(builder.pid) if alive(p)}
        time.sleep(0.05)
    assert workers, "the index build did not start worker processes"
    os.kill(builder.pid, signal.SIGKILL)
    builder.wait(10)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and any(alive(p) for p in workers):
        time.sleep(0.1)
    assert not any(alive(p) for p in workers)
