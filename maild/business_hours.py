"""Business hours: the SLA clock of most help desks runs only while the desk is open.

`[business_hours]` names the open weekdays, the daily opening hours and the holidays, in `[maild] timezone`.
With it, SLA due dates count only open time (a 4h first response asked at 16:00 on a Friday of a 09:00-17:00
desk is due at 12:00 on Monday), and a pause waiting for the customer moves them by the open time it
covered. Without it the desk is always open and both are plain clock arithmetic. Only the SLA uses it:
waiting periods, feedback windows and `#postpone` stay calendar time, as agents and customers read them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
WEEKDAY_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
# More closed days in a row than any calendar has: the config check refuses a desk that never opens, so
# only a bug could walk this far.
MAX_CLOSED_DAYS = 3660


class OpenHours(Protocol):
    """What the lifecycle asks of a calendar: `BusinessHours`, or `ALWAYS_OPEN` without one."""

    def add(self, start: datetime, span: timedelta) -> datetime: ...

    def open_time(self, start: datetime, end: datetime) -> timedelta: ...


@dataclass(frozen=True)
class BusinessHours:
    """Open ``opens``-``closes`` (``closes`` may be midnight, 24:00) local time on ``days``, except holidays."""

    zone: ZoneInfo
    days: frozenset[int]  # date.weekday(): Monday is 0
    opens: time
    closes: time | None  # None: midnight at the end of the day
    holidays: frozenset[date]

    def add(self, start: datetime, span: timedelta) -> datetime:
        """The instant ``span`` of open time after ``start`` (``start`` itself when ``span`` is not positive)."""
        start = start.astimezone(UTC)  # all arithmetic in UTC (see `AlwaysOpen.add`)
        if span <= timedelta(0):
            return start
        left, day, closed_days = span, start.astimezone(self.zone).date(), 0
        while closed_days <= MAX_CLOSED_DAYS:
            window = self.window(day)
            if window is not None and window[1] > start:
                closed_days = 0
                begin = max(window[0], start)
                if left <= window[1] - begin:
                    return begin + left
                left -= window[1] - begin
            else:
                closed_days += 1
            day += timedelta(days=1)
        raise RuntimeError("business hours: no open day found")  # unreachable with a checked config

    def open_time(self, start: datetime, end: datetime) -> timedelta:
        """How much of ``start``-``end`` the desk was open."""
        start, end = start.astimezone(UTC), end.astimezone(UTC)
        total, day, last = timedelta(0), start.astimezone(self.zone).date(), end.astimezone(self.zone).date()
        while day <= last:
            window = self.window(day)
            if window is not None:
                total += max(timedelta(0), min(window[1], end) - max(window[0], start))
            day += timedelta(days=1)
        return total

    def window(self, day: date) -> tuple[datetime, datetime] | None:
        """That day's opening and closing instants (UTC), or None when closed all day."""
        if day.weekday() not in self.days or day in self.holidays:
            return None
        begin = datetime.combine(day, self.opens, self.zone)
        end = datetime.combine(day + timedelta(days=1), time(0), self.zone)
        if self.closes is not None:
            end = datetime.combine(day, self.closes, self.zone)
        return begin.astimezone(UTC), end.astimezone(UTC)


class AlwaysOpen:
    """No `[business_hours]`: every hour counts."""

    def add(self, start: datetime, span: timedelta) -> datetime:
        # In UTC: Python adds to a zoned datetime in wall-clock time, an hour off across a DST change.
        return start.astimezone(UTC) + max(span, timedelta(0))

    def open_time(self, start: datetime, end: datetime) -> timedelta:
        return max(end.astimezone(UTC) - start.astimezone(UTC), timedelta(0))


ALWAYS_OPEN = AlwaysOpen()
