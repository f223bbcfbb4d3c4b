"""Queries on agents' time entries and the invoicing report built from them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from maild.clock import from_iso, to_iso
from maild.models import TimeEntry
from maild.store.base import QueryBase

# What a report may group by, and the SQL expression giving the group's key.
REPORT_GROUPS = {"requester": "t.requester", "agent": "e.agent", "queue": "t.queue", "ticket": "t.id"}


class TimeQueries(QueryBase):
    async def add_time_entry(
        self, *, ticket_id: int, message_id: int | None, agent: str, minutes: int, billable: bool, note: str
    ) -> None:
        await self.run(
            "INSERT INTO time_entries (ticket_id, message_id, agent, minutes, billable, note, at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (ticket_id, message_id, agent, minutes, int(billable), note, self.now_iso()),
        )

    async def time_entries(self, ticket_id: int) -> list[TimeEntry]:
        rows = await self.all("SELECT * FROM time_entries WHERE ticket_id = ? ORDER BY id", (ticket_id,))
        return [
            TimeEntry(
                agent=r["agent"],
                minutes=r["minutes"],
                billable=bool(r["billable"]),
                note=r["note"],
                at=from_iso(r["at"]),
            )
            for r in rows
        ]

    async def time_report(self, start: datetime, end: datetime, by: str) -> list[dict[str, Any]]:
        """Billable and non-billable minutes per group for entries in [start, end)."""
        key = REPORT_GROUPS[by]
        rows = await self.all(
            f"SELECT {key} AS grp, sum(CASE WHEN e.billable THEN e.minutes ELSE 0 END) AS billable,"
            " sum(CASE WHEN e.billable THEN 0 ELSE e.minutes END) AS nonbillable, count(*) AS entries,"
            " count(DISTINCT e.ticket_id) AS tickets"
            " FROM time_entries e JOIN tickets t ON t.id = e.ticket_id"
            f" WHERE e.at >= ? AND e.at < ? GROUP BY {key} ORDER BY {key}",
            (to_iso(start), to_iso(end)),
        )
        return [
            {
                by: r["grp"],
                "billable_minutes": r["billable"],
                "nonbillable_minutes": r["nonbillable"],
                "entries": r["entries"],
                "tickets": r["tickets"],
            }
            for r in rows
        ]
