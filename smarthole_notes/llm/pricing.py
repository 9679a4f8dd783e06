"""What an answer cost: the one price table, and the estimate made from it.

Prices are Anthropic's public list prices in USD per million tokens (platform.claude.com,
"Pricing"); update `PRICES` when they change, nothing else. A 5-minute cache write costs
1.25x the input price, a cache read 0.1x. The figure is an estimate: the bill is the
API's (batch discounts, long-context rates and 1-hour cache writes are not modelled).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from smarthole_notes.llm.types import Usage

__all__ = [
    "CACHE_READ_FACTOR",
    "CACHE_WRITE_FACTOR",
    "FALLBACK",
    "PRICES",
    "Price",
    "estimate_cost",
    "format_usage",
    "price_for",
]

CACHE_WRITE_FACTOR = 1.25
"""A 5-minute cache write, as a multiple of the input price."""
CACHE_READ_FACTOR = 0.1
"""A cache read (hit or refresh), as a multiple of the input price."""


@dataclass(frozen=True, slots=True)
class Price:
    """USD per million tokens."""

    input: float
    output: float

    @property
    def cache_write(self) -> float:
        return self.input * CACHE_WRITE_FACTOR

    @property
    def cache_read(self) -> float:
        return self.input * CACHE_READ_FACTOR


PRICES: dict[str, Price] = {
    "claude-haiku-4-5": Price(input=1.0, output=5.0),
    "claude-sonnet-4-5": Price(input=3.0, output=15.0),
    "claude-sonnet-4-6": Price(input=3.0, output=15.0),
    "claude-opus-4-5": Price(input=5.0, output=25.0),
    "claude-opus-4-6": Price(input=5.0, output=25.0),
    "claude-opus-4-7": Price(input=5.0, output=25.0),
}
"""Model id (without its date suffix) -> list price."""

FALLBACK: dict[str, str] = {
    "haiku": "claude-haiku-4-5",
    "sonnet": "claude-sonnet-4-6",
    "opus": "claude-opus-4-7",
}
"""An unlisted Claude model is priced as the newest listed model of its family."""

_DATE_SUFFIX = re.compile(r"-\d{8}$")


def price_for(model: str) -> tuple[str, Price] | None:
    """The table entry `model` is priced as, or None for a model that is not Claude's."""
    name = _DATE_SUFFIX.sub("", model.strip().lower())
    if name in PRICES:
        return name, PRICES[name]
    listed = [key for key in PRICES if name.startswith(key)]
    if listed:
        key = max(listed, key=len)
        return key, PRICES[key]
    if "claude" not in name:
        return None
    for family, key in FALLBACK.items():
        if family in name:
            return key, PRICES[key]
    key = FALLBACK["sonnet"]
    return key, PRICES[key]


def estimate_cost(model: str, usage: Usage) -> float | None:
    """The estimated cost in USD of `usage` on `model`; None when the model has no price."""
    found = price_for(model)
    if found is None:
        return None
    _, price = found
    dollars = (
        usage.input_tokens * price.input
        + usage.output_tokens * price.output
        + (usage.cache_creation_input_tokens or 0) * price.cache_write
        + (usage.cache_read_input_tokens or 0) * price.cache_read
    ) / 1_000_000
    return round(dollars, 6)


def format_usage(usage: Usage, model: str) -> str:
    """One line for people: `usage: 1,234 input, ... tokens; about $0.0123 (model)`."""
    cost = estimate_cost(model, usage)
    money = f"about ${cost:.4f}" if cost is not None else "cost unknown"
    return (
        f"usage: {usage.input_tokens:,} input, {usage.output_tokens:,} output, "
        f"{usage.cache_creation_input_tokens or 0:,} cache write, "
        f"{usage.cache_read_input_tokens or 0:,} cache read tokens; {money} ({model})"
    )
