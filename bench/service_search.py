"""Benchmark: a search in the 1st, then the 2nd..Nth message of a running service, against ripgrep.

Run: `.venv/bin/python bench/service_search.py [--notes 4000] [--messages 8]`

The service (the pipeline `serve` runs, with the Anthropic stand-in scripted to call
`search_files` once per message) keeps one vault-access layer for its whole life, so its
content cache warms in the first message and serves the later ones. Each search's time is
taken from the pipeline's own `tool_started` / `tool_finished` events; ripgrep
(`rg -i --count-matches`) runs on the same files in the same run, between the messages.
Ratios are ours / ripgrep's (median over messages 2..N).
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.vault_search import LITERAL, build_vault  # noqa: E402
from tests.pipeline_harness import Service  # noqa: E402
from tests.standins.anthropic_api import AnthropicStandIn, text_reply, tool_reply  # noqa: E402


def ripgrep(rg: str, root: Path) -> float:
    started = time.perf_counter()
    command = [rg, "--no-config", "-i", "--count-matches", LITERAL, "."]
    subprocess.run(command, cwd=root, check=False, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


async def searches(root: Path, messages: int, rg: str) -> tuple[list[float], list[float]]:
    ours: list[float] = []
    theirs: list[float] = []
    with AnthropicStandIn() as api:
        service = Service(root, api)
        await service.start()
        timed: list[tuple[float, dict[str, object]]] = []

        async def watch() -> None:
            async with service.bus.subscribe() as queue:
                while True:
                    event = await queue.get()
                    timed.append((time.perf_counter(), event))

        watcher = asyncio.create_task(watch())
        await asyncio.sleep(0)
        try:
            for n in range(messages):
                api.script(tool_reply("search_files", {"pattern": LITERAL}), text_reply("Found."))
                seen = len(timed)
                await service.chat(f"where did I write about the roadmap? ({n})", f"bench-{n}")
                await service.idle(timeout=120)
                events = timed[seen:]
                started = next(t for t, e in events if e["type"] == "tool_started")
                finished, event = next((t, e) for t, e in events if e["type"] == "tool_finished")
                assert not event["is_error"], event
                ours.append(finished - started)
                theirs.append(ripgrep(rg, root))
        finally:
            watcher.cancel()
            await service.stop()
    return ours, theirs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--notes", type=int, default=4000)
    parser.add_argument("--messages", type=int, default=8)
    options = parser.parse_args()
    rg = shutil.which("rg")
    if rg is None:
        print("ripgrep (rg) is not installed: apt-get install -y ripgrep", file=sys.stderr)
        raise SystemExit(2)
    workdir = Path(tempfile.mkdtemp(prefix="service-search-"))
    try:
        root = workdir / "vault"
        root.mkdir()
        size = build_vault(root, options.notes)
        time.sleep(2.1)  # the content cache keeps only files whose last change has settled
        ours, theirs = asyncio.run(searches(root, options.messages, rg))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"{options.notes} notes, {size / 1e6:.1f} MB; search_files {LITERAL!r} per message")
    print(f"{'message':>8} {'ours (ms)':>10} {'rg (ms)':>9} {'ratio':>7}")
    for n, (a, b) in enumerate(zip(ours, theirs, strict=True), start=1):
        print(f"{n:>8} {a * 1000:>10.1f} {b * 1000:>9.1f} {a / b:>7.2f}")
    later = [a / b for a, b in zip(ours[1:], theirs[1:], strict=True)]
    print(f"messages 2..{len(ours)}: median ratio {statistics.median(later):.2f}x ripgrep")


if __name__ == "__main__":
    main()
