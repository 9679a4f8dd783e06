"""CPU cost of assembling a streamed response with a large tool input.

Three figures per size, in one run over the same bytes:
  (a) the product's provider (raw events, linear assembly),
  (b) the SDK's `messages.stream()` + `get_final_message()`,
  (c) just iterating the raw events of `messages.create(stream=True)` (the floor).
The bytes are served by httpx2's in-process transport so only parsing is measured.

Run: .venv/bin/python bench/stream_assembly.py
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import anthropic
import httpx2

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from smarthole_notes.llm.anthropic_provider import AnthropicProvider
from smarthole_notes.llm.types import LLMRequest, Message
from tests.standins.anthropic_api import encode_sse, reply_events, tool_reply

SIZES_KB = (50, 200, 400)
MODEL = "claude-haiku-4-5"
PARAMS = {"model": MODEL, "max_tokens": 64_000, "messages": [{"role": "user", "content": "hi"}]}


def body_for(size_kb: int) -> bytes:
    line = "A line of a long note, with some words in it; é 漢字.\n"
    content = (line * (size_kb * 1024 // len(line.encode()) + 1))[: size_kb * 1024]
    reply = tool_reply("write_file", {"path": "Big.md", "content": content}, json_chunk_size=16)
    return encode_sse(reply_events(reply, MODEL))


def client_for(body: bytes) -> anthropic.AsyncAnthropic:
    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, headers={"content-type": "text/event-stream"}, content=body)

    http = httpx2.AsyncClient(transport=httpx2.MockTransport(handler))
    return anthropic.AsyncAnthropic(
        api_key="bench-key-not-secret", base_url="http://bench", http_client=http, max_retries=0
    )


async def product(client: anthropic.AsyncAnthropic) -> None:
    provider = AnthropicProvider(client, MODEL)
    request = LLMRequest(system="", messages=(Message.user_text("hi"),), max_tokens=64_000)
    response = await provider.send(request)
    assert response.tool_uses


async def sdk_helper(client: anthropic.AsyncAnthropic) -> None:
    async with client.messages.stream(**PARAMS) as stream:  # type: ignore[arg-type]
        message = await stream.get_final_message()
    assert message.stop_reason == "tool_use"


async def raw_events(client: anthropic.AsyncAnthropic) -> None:
    stream = await client.messages.create(**PARAMS, stream=True)  # type: ignore[call-overload]
    async for _event in stream:
        pass


async def cpu_seconds(
    run: Callable[[anthropic.AsyncAnthropic], Awaitable[None]], body: bytes
) -> float:
    best = float("inf")
    for _ in range(3):
        client = client_for(body)
        start = time.process_time()
        await run(client)
        best = min(best, time.process_time() - start)
        await client.close()
    return best


async def main() -> None:
    print(
        f"{'tool input':>10} | {'(a) product':>11} | {'(b) SDK':>9} | {'(c) raw':>9} | {'a/c':>5} | {'b/c':>5}"
    )
    for size in SIZES_KB:
        body = body_for(size)
        a = await cpu_seconds(product, body)
        b = await cpu_seconds(sdk_helper, body)
        c = await cpu_seconds(raw_events, body)
        print(
            f"{size:>7} KB | {a:>9.3f} s | {b:>7.3f} s | {c:>7.3f} s | {a / c:>5.2f} | {b / c:>5.2f}"
        )


if __name__ == "__main__":
    asyncio.run(main())
