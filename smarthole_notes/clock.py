"""The user's clock: the machine's time zone and how local times are written for the model.

Its own module (not llm/prompt.py) so tools and conversations can use it without importing
the LLM layer (issue 10's import cycle).
"""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo

import tzlocal

__all__ = ["format_local_time", "format_utc_offset", "local_zone", "utc_now"]


def local_zone() -> tuple[tzinfo, str]:
    """The machine's time zone and its IANA name (e.g. America/New_York)."""
    return tzlocal.get_localzone(), tzlocal.get_localzone_name() or "UTC"


def format_utc_offset(moment: datetime) -> str:
    offset = moment.utcoffset()
    minutes = int(offset.total_seconds() // 60) if offset is not None else 0
    sign = "-" if minutes < 0 else "+"
    hours, rest = divmod(abs(minutes), 60)
    return f"UTC{sign}{hours}" + (f":{rest:02d}" if rest else "")


def format_local_time(moment: datetime, zone_name: str) -> str:
    """`Thursday, Feb 5, 2026 2:30 PM (America/New_York, UTC-5)`."""
    hour = moment.hour % 12 or 12
    meridiem = "AM" if moment.hour < 12 else "PM"
    return (
        f"{moment:%A}, {moment:%b} {moment.day}, {moment.year} {hour}:{moment:%M} {meridiem} "
        f"({zone_name}, {format_utc_offset(moment)})"
    )


def utc_now() -> datetime:
    return datetime.now(UTC)
