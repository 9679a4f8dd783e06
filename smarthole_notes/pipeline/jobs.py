"""Side jobs: background work that never delays an answer and whose failures are only logged."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

log = logging.getLogger("smarthole_notes.pipeline")


class SideJobs:
    """The running side jobs, so that shutdown can wait for them."""

    def __init__(self) -> None:
        self.running: set[asyncio.Task[None]] = set()

    def start(self, job: Coroutine[Any, Any, object]) -> None:
        async def guarded() -> None:
            try:
                await job
            except Exception:
                log.exception("A background job failed")

        task = asyncio.create_task(guarded())
        self.running.add(task)
        task.add_done_callback(self.running.discard)

    async def wait_all(self, grace: float) -> None:
        """Give the running jobs up to `grace` seconds to finish (at shutdown)."""
        if self.running:
            await asyncio.wait(self.running, timeout=grace)
