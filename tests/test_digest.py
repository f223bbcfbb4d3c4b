"""The agents' digest (`maild.digest`): when it is due, its config keys, and that no day goes out twice,
over a temporary store; through the daemon and `maild tick` in test_lifecycle_e2e.py."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, time
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from maild.app import build_services
from maild.config import Config, ConfigError, load_config
from maild.digest import SETTING, send_due_digest
from maild.store import Store
from maild.store.tickets import (
    COUNT_OPEN_OF_ASSIGNEE,
    COUNT_OPEN_UNASSIGNED,
    OPEN_OF_ASSIGNEE_BY_URGENCY,
    OPEN_UNASSIGNED_BY_URGENCY,
)

MADRID = ZoneInfo("Europe/Madrid")
DESK = """
[maild]
data_dir = "data"
timezone = "Europe/Madrid"

[mail]
support_address = "support@example.com"

[[agents]]
email = "ana@example.com"
name = "Ana"
"""
# Monday to Friday, Christmas Day 2026 (a Friday) closed.
HOURS = '[business_hours]\nhours = "09:00-17:00"\nholidays = [2026-12-25]\n'


def config(tmp_path: Path, extra: str) -> Config:
    path = tmp_path / "maild.toml"
    path.write_text(DESK + extra)
    return load_config(path)


def madrid(*fields: int) -> datetime:
    return datetime(*fields, tzinfo=MADRID)  # type: ignore[misc]


def test_digest_days_and_hour_follow_the_desk(tmp_path: Path) -> None:
    """By default the business days (Mon-Fri), business holidays skipped, at `at` in the desk's zone."""
    digests = build_services(config(tmp_path, HOURS + '[digest]\nat = "08:30"\n'), lambda: madrid(2026, 1, 1)).digests
    assert digests.day_due(madrid(2026, 12, 3, 8, 29)) is None  # Thursday, before the hour
    assert digests.day_due(madrid(2026, 12, 3, 8, 30)) == date(2026, 12, 3)
    assert digests.day_due(datetime(2026, 12, 3, 7, 30, tzinfo=UTC)) == date(2026, 12, 3)  # 08:30 in Madrid
    assert digests.day_due(madrid(2026, 12, 5, 9)) is None  # Saturday
    assert digests.day_due(madrid(2026, 12, 25, 9)) is None  # a holiday
    assert digests.next_at(madrid(2026, 12, 3, 8, 0)) == madrid(2026, 12, 3, 8, 30)
    assert digests.next_at(madrid(2026, 12, 24, 9, 0)) == madrid(2026, 12, 28, 8, 30)  # over Christmas and a weekend


def test_digest_config(tmp_path: Path) -> None:
    """No table, no digest; `days` and `at` are read, and a bad value names its key."""
    assert config(tmp_path, "").digest is None
    digest = config(tmp_path, '[digest]\ndays = ["sat"]\n').digest
    assert digest is not None and (digest.at, digest.days, digest.zone) == (time(8), frozenset({5}), MADRID)
    for table, problem in (
        ('at = "8am"', "digest.at: "),
        ('at = "08:00+01:00"', "digest.at: "),
        ("days = []", "digest.days: "),
    ):
        with pytest.raises(ConfigError) as raised:
            config(tmp_path, f"[digest]\n{table}\n")
        assert [p for p in raised.value.problems if p.startswith(problem)], raised.value.problems


def test_a_day_goes_out_once(tmp_path: Path) -> None:
    """Sending is recorded with the day: the same day again sends nothing; a day sent ahead (`maild tick
    --now` in the future) does not stop an earlier one."""
    desk = config(tmp_path, '[digest]\nat = "08:00"\n')

    async def run() -> None:
        store = await Store.open(desk.db_path)
        try:
            async with store.transaction() as tx:
                await tx.create_ticket(
                    subject="s",
                    requester="c@x.example",
                    queue="default",
                    priority="normal",
                    language="en",
                    status="new",
                )

            async def send(now: datetime) -> int:
                return await send_due_digest(store, build_services(desk, lambda: now).digests, now)

            assert await send(madrid(2026, 12, 3, 9)) == 1  # Ana: one unassigned ticket in her queue
            assert await send(madrid(2026, 12, 3, 17)) == 0
            assert await send(madrid(2026, 12, 2, 9)) == 1
            assert await send(madrid(2026, 12, 2, 10)) == 0
            async with store.snapshot() as tx:
                assert await tx.setting(SETTING) == '["2026-12-02", "2026-12-03"]'
        finally:
            await store.close()

    asyncio.run(run())


def test_the_digest_reads_only_open_tickets(tmp_path: Path) -> None:
    """Its queries go through the partial index of open tickets, never the tickets of all time."""
    desk = config(tmp_path, "")

    async def run() -> None:
        store = await Store.open(desk.db_path)
        try:
            async with store.snapshot() as tx:
                for sql, params in (
                    (COUNT_OPEN_OF_ASSIGNEE, ["ana@example.com"]),
                    (OPEN_OF_ASSIGNEE_BY_URGENCY, ["ana@example.com", 51]),
                    (COUNT_OPEN_UNASSIGNED, ['["default"]']),
                    (OPEN_UNASSIGNED_BY_URGENCY, ['["default"]', 51]),
                ):
                    plan = [row[3] for row in await tx.all("EXPLAIN QUERY PLAN " + sql, params)]
                    assert plan[0].startswith("SEARCH tickets USING INDEX tickets_open"), plan
        finally:
            await store.close()

    asyncio.run(run())
