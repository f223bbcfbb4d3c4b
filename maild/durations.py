"""Durations as people write them in config and commands: "90s", "45m", "1h30m", "3d", "1.5h", "1:30"."""

from __future__ import annotations

import re
from datetime import timedelta

_UNIT_SECONDS = {"w": 604800, "d": 86400, "h": 3600, "m": 60, "s": 1}
_PART = re.compile(r"(\d+(?:\.\d+)?)([wdhms])")
_WHOLE = re.compile(r"(?:\d+(?:\.\d+)?[wdhms])+")
_CLOCK = re.compile(r"(\d+):([0-5]\d)")


def parse_duration(text: str) -> timedelta:
    """Parse "1h30m", "1.5h", "45m", "3d" or "1:30" (hours:minutes); raise ValueError otherwise.

    One grammar for config and agents' commands, so "#postpone 2d" means what "close_if_no_response = 2d" means.
    """
    value = text.strip().lower().replace(" ", "")
    clock = _CLOCK.fullmatch(value)
    if clock:
        return timedelta(hours=int(clock.group(1)), minutes=int(clock.group(2)))
    if not value or not _WHOLE.fullmatch(value):
        raise ValueError(f"not a duration: {text!r} (use e.g. 90s, 45m, 1h30m, 1.5h, 3d)")
    seconds = sum(float(number) * _UNIT_SECONDS[unit] for number, unit in _PART.findall(value))
    try:
        return timedelta(seconds=round(seconds))
    except (OverflowError, ValueError):
        raise ValueError(f"duration too large: {text!r}") from None


def format_duration(delta: timedelta) -> str:
    """Shortest "1d2h30m" form of a duration, for logs, transcripts and reports."""
    seconds = int(delta.total_seconds())
    if seconds < 0:
        return "-" + format_duration(-delta)
    if seconds == 0:
        return "0s"
    parts = []
    for unit in ("d", "h", "m", "s"):
        size = _UNIT_SECONDS[unit]
        if seconds >= size:
            parts.append(f"{seconds // size}{unit}")
            seconds %= size
    return "".join(parts)
