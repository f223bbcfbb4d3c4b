"""Business-hours arithmetic (`maild.business_hours`) and its config keys; the SLA through mail is in
test_lifecycle_e2e.py."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from maild.business_hours import ALWAYS_OPEN, BusinessHours
from maild.config import ConfigError, load_config
from maild.lifecycle import Lifecycle
from maild.store import Store

MADRID = ZoneInfo("Europe/Madrid")
# Monday to Friday, 09:00-17:00 in Madrid; Christmas Day 2026 is a Friday.
DESK = BusinessHours(
    zone=MADRID,
    days=frozenset(range(5)),
    opens=time(9),
    closes=time(17),
    holidays=frozenset({date(2026, 12, 25)}),
)


def madrid(*fields: int) -> datetime:
    return datetime(*fields, tzinfo=MADRID)  # type: ignore[misc]


@pytest.mark.parametrize(
    ("start", "span", "due"),
    [
        (madrid(2026, 11, 27, 16), timedelta(hours=4), madrid(2026, 11, 30, 12)),  # Friday 16:00: Monday noon
        (madrid(2026, 11, 30, 7), timedelta(hours=1), madrid(2026, 11, 30, 10)),  # before opening
        (madrid(2026, 11, 30, 20), timedelta(hours=1), madrid(2026, 12, 1, 10)),  # after closing
        (madrid(2026, 11, 30, 9), timedelta(hours=8), madrid(2026, 11, 30, 17)),  # a whole day ends at closing
        (madrid(2026, 11, 28, 12), timedelta(minutes=30), madrid(2026, 11, 30, 9, 30)),  # from a Saturday
        (madrid(2026, 12, 24, 16), timedelta(hours=2), madrid(2026, 12, 28, 10)),  # over a holiday and weekend
        (madrid(2026, 11, 30, 10), timedelta(days=2), madrid(2026, 12, 8, 10)),  # 48 open hours: six days
        (madrid(2026, 11, 30, 10), timedelta(0), madrid(2026, 11, 30, 10)),
    ],
)
def test_add_counts_only_open_time(start: datetime, span: timedelta, due: datetime) -> None:
    assert DESK.add(start, span) == due


def test_open_time_counts_only_open_hours() -> None:
    assert DESK.open_time(madrid(2026, 11, 27, 16), madrid(2026, 11, 30, 10)) == timedelta(hours=2)
    assert DESK.open_time(madrid(2026, 11, 28, 8), madrid(2026, 11, 29, 20)) == timedelta(0)  # a weekend
    assert DESK.open_time(madrid(2026, 12, 24, 8), madrid(2026, 12, 26, 8)) == timedelta(hours=8)  # holiday
    assert DESK.open_time(madrid(2026, 11, 30, 12), madrid(2026, 11, 30, 11)) == timedelta(0)


def test_add_and_open_time_agree() -> None:
    """Whatever the start and the span, the open time between a start and its due date is the span."""
    rng = random.Random(7)
    for _ in range(2000):
        start = madrid(2026, 1, 1) + timedelta(minutes=rng.randrange(60 * 24 * 365))
        span = timedelta(minutes=rng.randrange(1, 60 * 24 * 10))
        due = DESK.add(start, span)
        assert DESK.open_time(start, due) == span, (start, span)
        assert DESK.window(due.astimezone(MADRID).date()) is not None


def test_a_desk_open_around_the_clock_counts_real_time_over_daylight_saving() -> None:
    """Madrid's 23-hour 29 March 2026: open time is elapsed time, as the always-open clock counts it."""
    always = BusinessHours(zone=MADRID, days=frozenset(range(7)), opens=time(0), closes=None, holidays=frozenset())
    start = madrid(2026, 3, 28, 12)
    day_later = always.add(start, timedelta(hours=24))
    assert day_later == start.astimezone(UTC) + timedelta(hours=24) == ALWAYS_OPEN.add(start, timedelta(hours=24))
    assert day_later.astimezone(MADRID).hour == 13  # summer time began: 24 real hours, not noon again
    assert always.open_time(start, start.astimezone(UTC) + timedelta(days=2)) == timedelta(days=2)
    assert ALWAYS_OPEN.open_time(start, start - timedelta(hours=1)) == timedelta(0)
    # Within the short day itself, given in local time: 01:00 CET to 04:00 CEST is two hours.
    assert always.open_time(madrid(2026, 3, 29, 1), madrid(2026, 3, 29, 4)) == timedelta(hours=2)


CONFIG = """
[maild]
data_dir = "data"
timezone = "Europe/Madrid"

[mail]
support_address = "support@example.com"
"""


def test_config_reads_business_hours(tmp_path: Path) -> None:
    """TOML dates or ISO strings for holidays, day names in any case; the zone is `[maild] timezone`."""
    path = tmp_path / "maild.toml"
    path.write_text(
        CONFIG + '[business_hours]\ndays = ["Mon", "tue", "Wednesday"]\nhours = "08:30-24:00"\n'
        'holidays = [2026-12-25, "2027-01-01"]\n'
    )
    hours = load_config(path).business_hours
    assert hours == BusinessHours(
        zone=MADRID,
        days=frozenset({0, 1, 2}),
        opens=time(8, 30),
        closes=None,
        holidays=frozenset({date(2026, 12, 25), date(2027, 1, 1)}),
    )
    path.write_text(CONFIG + "[business_hours]\n")
    default = load_config(path).business_hours
    assert (
        default is not None
        and default.days == frozenset(range(5))
        and (default.opens, default.closes)
        == (
            time(9),
            time(17),
        )
    )
    path.write_text(CONFIG)
    assert load_config(path).business_hours is None


@pytest.mark.parametrize(
    ("table", "problem"),
    [
        ('days = ["mon", "funday"]', "business_hours.days: expected days among mon, tue"),
        ('days = ["monkey"]', "business_hours.days: expected days among mon, tue"),
        ("days = []", "business_hours.days: expected a non-empty list"),
        ('hours = "17:00-09:00"', "business_hours.hours: the desk must close after it opens"),
        ('hours = "9 to 5"', "business_hours.hours: expected opening hours like"),
        ('holidays = ["25/12/2026"]', "business_hours.holidays: expected dates like 2026-12-25"),
        ("holidays = [2026-12-25T10:00:00]", "business_hours.holidays: expected dates like 2026-12-25"),
        ("weekends = true", "business_hours.weekends: unknown key"),
    ],
)
def test_config_names_the_bad_business_hours_key(tmp_path: Path, table: str, problem: str) -> None:
    path = tmp_path / "maild.toml"
    path.write_text(CONFIG + f"[business_hours]\n{table}\n")
    with pytest.raises(ConfigError) as raised:
        load_config(path)
    assert [p for p in raised.value.problems if p.startswith(problem)], raised.value.problems


@pytest.mark.parametrize("open_hours", ["", '[business_hours]\nhours = "00:00-24:00"\n'])
def test_a_new_priority_while_waiting_counts_the_pause_once(tmp_path: Path, open_hours: str) -> None:
    """Priority changes to high an hour into a two-hour wait for the customer: when the wait ends the due date
    is high's 8h plus the two hours, not plus three (the hour before the change counted twice, before)."""
    path = tmp_path / "maild.toml"
    path.write_text(
        CONFIG.replace("Europe/Madrid", "UTC")
        + '[sla.normal]\nfirst_response = "4h"\nresolution = "2d"\n[sla.high]\nfirst_response = "1h"\n'
        'resolution = "8h"\n' + open_hours
    )
    config = load_config(path)
    start = datetime(2026, 11, 30, 8, tzinfo=UTC)  # a Monday: the next two days are open either way
    now = [start]

    async def run() -> None:
        store = await Store.open(tmp_path / "maild.sqlite3", clock=lambda: now[0])
        lifecycle = Lifecycle(config, store.clock)
        try:
            async with store.transaction() as tx:
                ticket = await tx.create_ticket(
                    subject="s", requester="c@x", queue="default", priority="normal", language="en", status="new"
                )
                ticket = await lifecycle.start(tx, ticket)
                assert ticket.due_at == start + timedelta(days=2)
                now[0] = start + timedelta(hours=1)
                ticket = await lifecycle.move(tx, ticket, "waiting_customer", "ana@x", "command")
                now[0] = start + timedelta(hours=2)
                ticket = await lifecycle.update(tx, ticket, "ana@x", "command", priority="high")
                assert ticket.due_at == start + timedelta(hours=8)
                now[0] = start + timedelta(hours=3)
                ticket = await lifecycle.move(tx, ticket, "open", "c@x", "customer reply")
                assert ticket.due_at == start + timedelta(hours=10)
                assert ticket.sla_paused_seconds == 7200
                assert ticket.first_response_due_at == start + timedelta(hours=3)
        finally:
            await store.close()

    asyncio.run(run())
