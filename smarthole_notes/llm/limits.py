"""Each model's own maximum output (`max_tokens`), asked of the Models API once and cached.

Streaming lifts the HTTP-timeout ceiling, so the agent call asks for everything the
model can write: a whole document in one `write_file` is never cut by a guess.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Protocol

log = logging.getLogger(__name__)

# Known output limits, for when the Models API cannot be asked. Longest prefix wins,
# so dated ids ("claude-haiku-4-5-20251001") match their family.
KNOWN_MAX_TOKENS: dict[str, int] = {
    "claude-opus-4-7": 128_000,
    "claude-opus-4-6": 128_000,
    "claude-opus-4-5": 64_000,
    "claude-opus-4-1": 32_000,
    "claude-opus-4": 32_000,
    "claude-sonnet-4-6": 64_000,
    "claude-sonnet-4-5": 64_000,
    "claude-sonnet-4": 64_000,
    "claude-haiku-4-5": 64_000,
    "claude-3-7-sonnet": 64_000,
    "claude-3-5-haiku": 8_192,
    "claude-3-5-sonnet": 8_192,
    "claude-3-haiku": 4_096,
}

DEFAULT_MAX_TOKENS = 8_192
"""For a model in neither the API's answer nor the table: small enough for any model."""

FAILED_LOOKUP_TTL_SECONDS = 600.0


def table_max_tokens(model: str) -> int | None:
    best = max((p for p in KNOWN_MAX_TOKENS if model.startswith(p)), key=len, default=None)
    return KNOWN_MAX_TOKENS[best] if best is not None else None


class ModelLookup(Protocol):
    async def __call__(self, model: str) -> int | None:
        """The model's max_tokens according to the API, or None if it does not say."""


class ModelLimits:
    """Cache of max_tokens per model. A failed lookup falls back and is retried later."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._known: dict[str, int] = {}
        self._fallback_until: dict[str, tuple[float, int]] = {}
        self._clock = clock

    async def max_tokens(self, model: str, lookup: ModelLookup) -> int:
        if model in self._known:
            return self._known[model]
        cached = self._fallback_until.get(model)
        if cached is not None and cached[0] > self._clock():
            return cached[1]
        try:
            value = await lookup(model)
            reason = "the Models API gave no max_tokens"
        except Exception as exc:  # offline, old endpoint, unknown model: fall back
            value = None
            reason = f"the Models API lookup failed ({type(exc).__name__})"
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            self._known[model] = value
            return value
        fallback = table_max_tokens(model)
        if fallback is None:
            fallback = DEFAULT_MAX_TOKENS
            log.warning(
                "max_tokens for %s: %s and the model is not in the built-in table; "
                "using the conservative default %d",
                model,
                reason,
                fallback,
            )
        else:
            log.info("max_tokens for %s: %s; using the built-in %d", model, reason, fallback)
        self._fallback_until[model] = (self._clock() + FAILED_LOOKUP_TTL_SECONDS, fallback)
        return fallback
