"""A cancellation signal that can fire before, during or after an LLM call."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable
from typing import TypeVar

T = TypeVar("T")


class CancelSignal:
    """Fired by `abort()`; every awaitable run through `run_cancellable` ends at once when it fires."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def fire(self) -> None:
        self._event.set()

    @property
    def fired(self) -> bool:
        return self._event.is_set()

    async def wait(self) -> None:
        await self._event.wait()


class Cancelled(Exception):
    """Raised by `run_cancellable` when the signal fired first."""


async def run_cancellable(aw: Awaitable[T], signal: CancelSignal | None) -> T:
    """Await `aw`, but cancel it (running its clean-up, e.g. closing a stream) if `signal` fires.

    Cancelling the caller's own task cancels `aw` too, so Ctrl-C via task cancellation works.
    """
    task = asyncio.ensure_future(aw)
    if signal is None:
        return await task
    if signal.fired:
        task.cancel()
        with contextlib.suppress(BaseException):
            await task
        raise Cancelled
    waiter = asyncio.ensure_future(signal.wait())
    try:
        await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
    except asyncio.CancelledError:
        task.cancel()
        with contextlib.suppress(BaseException):
            await task
        raise
    finally:
        waiter.cancel()
    if task.done():
        return task.result()
    task.cancel()
    with contextlib.suppress(BaseException):
        await task
    raise Cancelled
