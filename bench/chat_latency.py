"""Benchmark: how fast the chat page stops the agent, and how fast an answer shows up.

Run: `.venv/bin/python bench/chat_latency.py [--runs 20] [--json FILE]`

The real service (pipeline, web app) runs on its own event loop in a thread, against the
Anthropic stand-in (its own thread); the page runs in Debian's headless Chromium
(`/usr/bin/chromium`), driven by Playwright from the main thread. Two measurements, each
`--runs` times:

1. Stop -> stream closed. A slow answer streams; the page's Stop button is clicked. From the
   click (the page's clock, at the `click` event) to the moment the stand-in saw the client
   disconnect (its `disconnected_at`), i.e. the Anthropic stream really closed. Also from
   the click to Send being back on the page. Target: median < 200 ms.
2. First answer byte -> first character. From the stand-in writing the first `text_delta`
   event of the answer to the first character of it in the page's DOM (a MutationObserver),
   and to the next animation frame after it (painted). Target: median < 100 ms.

All times are epoch milliseconds on this process's clock: the stand-in's `time.monotonic()`
mapped to the epoch with an offset taken once, and the page's marks
(`performance.timeOrigin + performance.now()`) shifted by an offset calibrated with round
trips before each reading (the page's clock drifts from ours by tens of milliseconds). The stand-in's first-event time is recorded by
wrapping its body writer (a test stand-in, so the wrapper lives here, not in it).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from playwright.async_api import Page, async_playwright  # noqa: E402

from tests.standins import anthropic_api as standin_module  # noqa: E402
from tests.standins.anthropic_api import AnthropicStandIn, text_reply  # noqa: E402
from tests.web_harness import ThreadedWebService  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
STOP_TARGET_MS = 200.0
FIRST_CHAR_TARGET_MS = 100.0
EPOCH_OFFSET = time.time() - time.monotonic()

first_delta_at: dict[int, float] = {}
"""id(record) -> epoch ms when the stand-in wrote the first text_delta of that response."""


def record_first_delta() -> None:
    """Wrap the stand-in's body writer to note when each response's first text_delta leaves."""
    original: Callable[..., Awaitable[None]] = standin_module._ReplyResponse._body

    async def body(self: Any, send: Any, data: bytes, *, more: bool = True) -> None:
        key = id(self.record)
        if key not in first_delta_at and b'"text_delta"' in data:
            first_delta_at[key] = time.time() * 1000
        await original(self, send, data, more=more)

    setattr(standin_module._ReplyResponse, "_body", body)  # noqa: B010 (a test stand-in, wrapped here)


PAGE_PROBES = """
() => {
  const now = () => performance.timeOrigin + performance.now();
  for (const stale of window.__benchProbes || []) stale.disconnect();
  window.__bench = { click: null, sendBack: null, firstChar: null, firstPaint: null };
  const send = document.getElementById('send');
  if (!window.__benchClick) {
    window.__benchClick = true;
    send.addEventListener('click', () => {
      if (send.textContent === 'Stop') window.__bench.click = now();
    }, true);
  }
  const sendWatch = new MutationObserver(() => {
    const b = window.__bench;
    if (b.click !== null && b.sendBack === null && send.textContent === 'Send') b.sendBack = now();
  });
  sendWatch.observe(send, { childList: true, characterData: true, subtree: true });
  const known = document.querySelectorAll('.msg.assistant').length;
  const answerWatch = new MutationObserver(() => {
    const b = window.__bench;
    if (b.firstChar !== null) return;
    const answers = document.querySelectorAll('.msg.assistant');
    const body = answers.length > known ? answers[answers.length - 1].querySelector('.msg-body') : null;
    if (body && body.textContent.length) {
      b.firstChar = now();
      requestAnimationFrame(() => { b.firstPaint = now(); });
    }
  });
  answerWatch.observe(document.getElementById('conversations'), {
    childList: true, characterData: true, subtree: true,
  });
  window.__benchProbes = [sendWatch, answerWatch];
}
"""


async def probe(page: Page, offset: float) -> dict[str, float | None]:
    """The page's marks, on this process's clock (epoch ms)."""
    marks: dict[str, float | None] = await page.evaluate("window.__bench")
    return {k: None if not isinstance(v, float | int) else v - offset for k, v in marks.items()}


async def clock_offset(page: Page, rounds: int = 15) -> float:
    """The page's epoch-ms clock minus ours, from the tightest of several round trips.

    `performance.timeOrigin + performance.now()` drifts from the wall clock by tens of
    milliseconds, so it is calibrated against `time.time()` before each measurement.
    """
    best: tuple[float, float] | None = None
    for _ in range(rounds):
        before = time.time() * 1000
        theirs = float(await page.evaluate("performance.timeOrigin + performance.now()"))
        after = time.time() * 1000
        if best is None or after - before < best[0]:
            best = (after - before, theirs - (before + after) / 2)
    assert best is not None
    return best[1]


async def send_message(page: Page, text: str) -> None:
    box = page.get_by_role("textbox", name="Message", exact=True)
    await box.fill(text)
    await box.press("Enter")


def summary(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {
        "median": statistics.median(ordered),
        "p90": ordered[max(0, round(0.9 * len(ordered)) - 1)],
        "min": ordered[0],
        "max": ordered[-1],
    }


async def measure(runs: int) -> dict[str, Any]:
    record_first_delta()
    results: dict[str, list[float]] = {
        "stop_to_stream_closed_ms": [],
        "stop_to_send_back_ms": [],
        "first_byte_to_first_char_ms": [],
        "first_byte_to_first_paint_ms": [],
    }
    with tempfile.TemporaryDirectory() as temp, AnthropicStandIn() as api:
        root = Path(temp)
        (root / "vault").mkdir()
        os.environ["XDG_CONFIG_HOME"] = str(root / "config")
        os.environ["ANTHROPIC_API_KEY"] = "bench-key-not-secret"
        with ThreadedWebService(root / "vault", api) as threaded:
            service = threaded.service
            async with async_playwright() as playwright:
                browser = await playwright.chromium.launch(
                    executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
                )
                page = await browser.new_page(viewport={"width": 400, "height": 800})
                await page.goto(service.page_url)
                await page.wait_for_selector("body[data-ready='true'][data-live='true']")
                # Warm up: the first request also asks the Models API for max_tokens.
                api.script(text_reply("Warm."))
                await send_message(page, "warm up")
                await page.locator(".msg.assistant:not(.streaming)").wait_for()
                threaded.run(service.idle())

                for run in range(runs):
                    api.script(text_reply("slowly " * 400, chunk_size=4, delay=0.05))
                    index = len(api.requests)
                    await page.evaluate(PAGE_PROBES)
                    await send_message(page, f"write slowly {run}")
                    await (
                        page.locator(".msg.assistant.streaming .msg-body")
                        .filter(has_text="slo")
                        .wait_for()
                    )
                    await page.get_by_role("button", name="Stop", exact=True).click()
                    await page.get_by_role("button", name="Send", exact=True).wait_for()
                    disconnected = api.wait_for_disconnect(index, timeout=5)
                    threaded.run(service.idle())
                    marks = await probe(page, await clock_offset(page))
                    click, back = marks["click"], marks["sendBack"]
                    assert click is not None and back is not None
                    closed_ms = (disconnected + EPOCH_OFFSET) * 1000
                    results["stop_to_stream_closed_ms"].append(closed_ms - click)
                    results["stop_to_send_back_ms"].append(back - click)

                for run in range(runs):
                    api.script(text_reply("Here is the answer you asked for.", chunk_size=4))
                    index = len(api.requests)
                    await page.evaluate(PAGE_PROBES)
                    answers = page.locator(".msg.assistant:not(.streaming)")
                    before = await answers.count()
                    await send_message(page, f"answer quickly {run}")
                    await answers.nth(before).wait_for()
                    threaded.run(service.idle())
                    record = api.requests[index]
                    sent = first_delta_at[id(record)]
                    offset = await clock_offset(page)
                    marks = await probe(page, offset)
                    while marks["firstPaint"] is None:
                        await asyncio.sleep(0.01)
                        marks = await probe(page, offset)
                    first_char, first_paint = marks["firstChar"], marks["firstPaint"]
                    assert first_char is not None and first_paint is not None
                    results["first_byte_to_first_char_ms"].append(first_char - sent)
                    results["first_byte_to_first_paint_ms"].append(first_paint - sent)
                await browser.close()
    return {name: {"runs": values, **summary(values)} for name, values in results.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    if not Path(CHROMIUM).exists():
        print(f"needs Debian's Chromium at {CHROMIUM} (apt install chromium)", file=sys.stderr)
        return 2
    figures = asyncio.run(measure(args.runs))
    print(f"{'measure':32} {'median':>8} {'p90':>8} {'min':>8} {'max':>8}   (ms, {args.runs} runs)")
    for name, stats in figures.items():
        print(
            f"{name:32} {stats['median']:8.1f} {stats['p90']:8.1f} "
            f"{stats['min']:8.1f} {stats['max']:8.1f}"
        )
    stop = figures["stop_to_stream_closed_ms"]["median"]
    first = figures["first_byte_to_first_char_ms"]["median"]
    verdicts = [
        ("Stop -> stream closed", stop, STOP_TARGET_MS),
        ("first byte -> first character", first, FIRST_CHAR_TARGET_MS),
    ]
    for label, value, target in verdicts:
        verdict = "meets" if value < target else "MISSES"
        print(f"{label}: median {value:.1f} ms {verdict} the target of < {target:.0f} ms")
    if args.json is not None:
        args.json.write_text(json.dumps(figures, indent=2))
    return 0 if all(value < target for _, value, target in verdicts) else 1


if __name__ == "__main__":
    sys.exit(main())
