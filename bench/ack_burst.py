"""Ack latency for a burst of 50 SmartHole messages while the agent is slow.

Baseline, same run: the ack latency of single messages routed to an idle service.
Everything runs over real sockets: SmartHole stand-in -> client -> durable inbox -> ack.

Run: .venv/bin/python bench/ack_burst.py
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.pipeline_harness import CLIENT_NAME, Service
from tests.standins.anthropic_api import AnthropicStandIn, text_reply
from tests.standins.smarthole_server import SmartHoleStandIn

BURST = 50


async def latencies(hole: SmartHoleStandIn, texts: list[str], *, wait_each: bool) -> list[float]:
    ids = []
    for text in texts:
        message_id = await hole.route(CLIENT_NAME, text)
        ids.append(message_id)
        if wait_each:
            await hole.wait_for_response(message_id, "ack")
    for message_id in ids:
        await hole.wait_for_response(message_id, "ack", timeout=30)
    return [
        hole.responses_for(i, "ack")[0].at - hole.delivery(i).sent_at  # type: ignore[union-attr]
        for i in ids
    ]


def row(name: str, values: list[float]) -> str:
    ms = sorted(v * 1000 for v in values)
    p95 = ms[int(len(ms) * 0.95) - 1]
    return f"{name:<28} {statistics.median(ms):>8.1f} {p95:>8.1f} {ms[-1]:>8.1f}"


async def main() -> None:
    with AnthropicStandIn() as api, tempfile.TemporaryDirectory() as tmp:
        async with SmartHoleStandIn() as hole:
            vault = Path(tmp)
            service = Service(vault, api, smarthole_url=hole.url)
            await service.start()
            api.default_reply = text_reply("ok")
            idle = []
            for i in range(20):
                idle += await latencies(hole, [f"idle {i}"], wait_each=True)
                await service.idle()
            api.default_reply = text_reply("a slow answer " * 5, chunk_size=2, delay=0.02)
            burst = await latencies(hole, [f"burst {i}" for i in range(BURST)], wait_each=False)
            print(f"{'ack latency (ms)':<28} {'median':>8} {'p95':>8} {'max':>8}")
            print(row("idle service, one at a time", idle))
            print(row(f"burst of {BURST}, agent slow", burst))
            print(f"burst max / idle median: {max(burst) / statistics.median(idle):.1f}x")
            service.pipeline.cancel_current()
            await service.stop(grace=0.1)


if __name__ == "__main__":
    asyncio.run(main())
