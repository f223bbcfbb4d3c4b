"""Queries on lifecycle timers: due events stored as rows, so downtime only delays them."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from maild.clock import from_iso, to_iso
from maild.models import Timer
from maild.store.base import QueryBase

PENDING, DONE, CANCELLED = "pending", "done", "cancelled"


class TimerQueries(QueryBase):
    async def set_timer(self, ticket_id: int, kind: str, due_at: datetime) -> None:
        """Schedule ``kind`` for the ticket at ``due_at``, replacing a pending one of the same kind."""
        await self.replace_timers(ticket_id, [kind], {kind: due_at})

    async def replace_timers(self, ticket_id: int, kinds: Iterable[str], due: dict[str, datetime]) -> None:
        """Cancel the ticket's pending timers of ``kinds`` (one statement), then schedule those in ``due``."""
        await self.cancel_timers(ticket_id, kinds)
        now = self.now_iso()
        for kind, due_at in due.items():
            await self.run(
                "INSERT INTO timers (ticket_id, kind, due_at, created_at) VALUES (?, ?, ?, ?)",
                (ticket_id, kind, to_iso(due_at), now),
            )

    async def cancel_timers(self, ticket_id: int, kinds: Iterable[str]) -> None:
        kinds = list(kinds)
        if kinds:
            marks = ", ".join("?" * len(kinds))
            await self.run(
                f"UPDATE timers SET state = ?, done_at = ? WHERE ticket_id = ? AND state = ? AND kind IN ({marks})",
                (CANCELLED, self.now_iso(), ticket_id, PENDING, *kinds),
            )

    async def due_timers(self, now: datetime, limit: int = 100) -> list[Timer]:
        rows = await self.all(
            "SELECT * FROM timers WHERE state = ? AND due_at <= ? ORDER BY due_at, id LIMIT ?",
            (PENDING, to_iso(now), limit),
        )
        return [Timer(id=r["id"], ticket_id=r["ticket_id"], kind=r["kind"], due_at=from_iso(r["due_at"])) for r in rows]

    async def finish_timer(self, timer_id: int) -> bool:
        """Mark a timer done; False if it was no longer pending (run elsewhere, or cancelled)."""
        return bool(
            await self.run(
                "UPDATE timers SET state = ?, done_at = ? WHERE id = ? AND state = ?",
                (DONE, self.now_iso(), timer_id, PENDING),
            )
        )

    async def next_timer_at(self) -> datetime | None:
        row = await self.one("SELECT min(due_at) FROM timers WHERE state = ?", (PENDING,))
        return from_iso(row[0]) if row and row[0] else None

    async def pending_timers(self, ticket_id: int) -> list[Timer]:
        rows = await self.all(
            "SELECT * FROM timers WHERE ticket_id = ? AND state = ? ORDER BY due_at", (ticket_id, PENDING)
        )
        return [Timer(id=r["id"], ticket_id=r["ticket_id"], kind=r["kind"], due_at=from_iso(r["due_at"])) for r in rows]

    async def count_due_timers(self, now: datetime) -> int:
        row = await self.one("SELECT count(*) FROM timers WHERE state = ? AND due_at <= ?", (PENDING, to_iso(now)))
        return int(row[0]) if row else 0
