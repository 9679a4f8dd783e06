"""The provider's retry policy: three attempts, 1 s then 2 s, honouring `retry-after`.

This is the only retry loop between the user and the API: the SDK's own retries are
off, and the pipeline does not wrap this in another loop.
"""

from __future__ import annotations

import asyncio
import email.utils
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_attempts: int = 3
    delays: tuple[float, ...] = (1.0, 2.0)
    retry_after_cap: float = 30.0
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep

    def delay(self, failed_attempt: int, retry_after: float | None) -> float:
        """Seconds to wait after attempt number `failed_attempt` (1-based) failed."""
        if retry_after is not None:
            return max(0.0, min(retry_after, self.retry_after_cap))
        return self.delays[min(failed_attempt, len(self.delays)) - 1]


def parse_retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds from `retry-after-ms` or `retry-after` (seconds or an HTTP date), if present."""
    raw_ms = headers.get("retry-after-ms")
    if raw_ms:
        try:
            return float(raw_ms) / 1000.0
        except ValueError:
            pass
    raw = headers.get("retry-after")
    if not raw:
        return None
    try:
        return float(raw)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())
