"""Crash safety: a writer killed with SIGKILL at random moments never leaves a torn note."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import sys
import time
from pathlib import Path

import pytest

from smarthole_notes.vault import Vault
from smarthole_notes.vault.names import is_temp_name
from tests.vault_fixtures import VaultHarness

KILLS = 300
SIZE = 2 * 1024 * 1024
VERSIONS = [letter * SIZE for letter in "ABC"]


def writer(root: Path) -> None:
    """The child: write the versions in turn through the real write path, forever."""
    vault = Vault(root)
    turn = 1
    while True:
        vault.write("Big note.md", VERSIONS[turn % len(VERSIONS)])
        turn += 1


def temp_files(root: Path) -> list[str]:
    return [name for name in os.listdir(root) if is_temp_name(name)]


@pytest.mark.skipif(sys.platform == "win32", reason="fork and SIGKILL")
def test_a_writer_killed_at_random_moments_leaves_the_old_or_the_new_note(
    tmp_path: Path,
) -> None:
    h = VaultHarness(tmp_path)
    root = h.root
    h.vault.write("Big note.md", VERSIONS[0])
    started = time.perf_counter()
    for _ in range(3):
        h.vault.write("Big note.md", VERSIONS[0])
    one_write = (time.perf_counter() - started) / 3
    rng = random.Random(20240601)
    expected = {v.encode() for v in VERSIONS}
    seen_versions: set[bytes] = set()
    kills_during_a_write = 0
    visibility_checks = 0
    for kill in range(1, KILLS + 1):
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child is killed
            try:
                writer(root)
            finally:
                os._exit(0)
        time.sleep(rng.uniform(0, 2.5 * one_write))
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        data = (root / "Big note.md").read_bytes()
        assert data in expected, f"torn note after kill {kill}: {len(data)} bytes"
        seen_versions.add(data[:1])
        leftovers = temp_files(root)
        if not leftovers:
            continue
        kills_during_a_write += 1
        if visibility_checks < kill // 25 + 1:
            # With a half-written temporary file on disk, list and search still show only
            # the note; then the stale-file cleaner removes the leftovers.
            check_temp_files_are_invisible(h)
            visibility_checks += 1
            assert h.vault.clean_stale_temp_files(max_age=0) == len(leftovers)
        else:
            for name in leftovers:
                os.unlink(root / name)  # keep the disk use small between checks
    # The kills landed at many different moments: inside writes, and between them.
    assert kills_during_a_write >= 10
    assert visibility_checks >= 5
    assert len(seen_versions) >= 2


def check_temp_files_are_invisible(h: VaultHarness) -> None:
    async def run() -> tuple[str, str]:
        listed = await h.ok("list_files", pattern="**/*")
        searched = await h.ok("search_files", pattern="^A|^B|^C", file_pattern="**/*")
        return listed, searched

    listed, searched = asyncio.run(run())
    assert listed.count("[file]") == 1 and "smarthole-tmp" not in listed
    assert "smarthole-tmp" not in searched and "in 1 file" in searched
