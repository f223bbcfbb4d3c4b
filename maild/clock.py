"""Time as maild sees it: always aware UTC, injectable so tests and `maild tick --now` can move it."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], datetime]


def system_clock() -> datetime:
    """The wall clock, in UTC."""
    return datetime.now(UTC)


def to_iso(moment: datetime) -> str:
    """The one text form of instants in the store and in JSON: ISO 8601 with +00:00."""
    return moment.astimezone(UTC).isoformat(timespec="seconds")


def from_iso(text: str) -> datetime:
    """Parse what `to_iso` wrote (or any aware ISO 8601 instant); naive input is taken as UTC."""
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
