"""Sizes and dates as the model sees them."""

from __future__ import annotations

from datetime import datetime, tzinfo


def human_size(size: int) -> str:
    if size < 1024:
        return f"{size} byte" if size == 1 else f"{size} bytes"
    value = float(size)
    for unit in ("KB", "MB", "GB", "TB"):
        value /= 1024
        if value < 1024 or unit == "TB":
            return f"{value:.1f} {unit}"
    raise AssertionError("unreachable")  # pragma: no cover


def local_time(timestamp: float, tz: tzinfo | None) -> datetime:
    """The moment in the user's zone: `tz`, or the system's local zone (with its DST rules)."""
    if tz is None:
        return datetime.fromtimestamp(timestamp).astimezone()
    return datetime.fromtimestamp(timestamp, tz)


def format_time(timestamp: float, tz: tzinfo | None) -> str:
    return local_time(timestamp, tz).strftime("%Y-%m-%d %H:%M")
