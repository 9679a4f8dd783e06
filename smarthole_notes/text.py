"""Shortening text for where room is short (titles, summaries, notifications, tool inputs)."""

from __future__ import annotations

ELLIPSIS = "…"


def shorten(text: str, limit: int) -> str:
    """`text` itself if it fits in `limit` characters, else cut with `…` (the cut included)."""
    if len(text) <= limit:
        return text
    return text[: limit - 1].rstrip() + ELLIPSIS
