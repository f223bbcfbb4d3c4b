"""Queries on the outbox: rendered mails written in the ticket's transaction, delivered by the worker."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from maild.clock import from_iso, to_iso
from maild.models import OutboundMail
from maild.store.base import QueryBase, sql_limit

QUEUED, SENDING, SENT, FAILED, DROPPED = "queued", "sending", "sent", "failed", "dropped"
# Mails of a kind queued since an instant (to one recipient), counted up to a limit; ingest.py shows the plans.
COUNT_SENT_SINCE = "SELECT count(*) FROM (SELECT 1 FROM outbox WHERE kind = ? AND created_at >= ? LIMIT ?)"
COUNT_SENT_TO_SINCE = (
    "SELECT count(*) FROM (SELECT 1 FROM outbox WHERE kind = ? AND created_at >= ? AND rcpt_to = ? LIMIT ?)"
)
# A thread chain reads a ticket's root and the newest CHAIN_LATEST ids of each kind: twice the References a
# composed mail keeps (12), so repeated ids still leave enough distinct ones.
CHAIN_LATEST = 24
# An outbox row's audience ("customer." of "customer.reply"), as the index outbox_by_audience (migration 9)
# spells it: the newest of one audience are then a walk down that index, not a sort of the ticket's rows.
AUDIENCE = "substr(kind, 1, instr(kind, '.'))"
# ?1 ticket, ?2 the audience ("customer."), ?3 how many of the newest ids come before the window's first;
# ingest.py shows its plan.
THREAD_CHAIN = (
    "SELECT message_id, created_at, 0 AS src, id FROM messages"
    " WHERE ticket_id = ?1 AND direction = 'in' AND visibility = 'public' AND (id >= coalesce(("
    "  SELECT id FROM messages WHERE ticket_id = ?1 AND direction = 'in' AND visibility = 'public'"
    "  ORDER BY id DESC LIMIT 1 OFFSET ?3), 0) OR id = ("
    "  SELECT min(id) FROM messages WHERE ticket_id = ?1 AND direction = 'in' AND visibility = 'public'))"
    " UNION ALL SELECT message_id, created_at, 1 AS src, id FROM outbox"
    f" WHERE ticket_id = ?1 AND {AUDIENCE} = ?2 AND (id >= coalesce(("
    f"  SELECT id FROM outbox WHERE ticket_id = ?1 AND {AUDIENCE} = ?2 ORDER BY id DESC LIMIT 1 OFFSET ?3), 0)"
    f"  OR id = (SELECT min(id) FROM outbox WHERE ticket_id = ?1 AND {AUDIENCE} = ?2))"
    " ORDER BY 2, 3, 4"
)


class OutboxQueries(QueryBase):
    async def enqueue_mail(
        self,
        *,
        ticket_id: int | None,
        kind: str,
        message_id: str,
        mail_from: str,
        rcpt_to: list[str],
        raw: bytes,
    ) -> int:
        """Queue a mail for delivery; its Message-ID joins the ticket's thread so replies find the ticket."""
        now = self.now_iso()
        outbox_id = await self.insert(
            "INSERT INTO outbox (ticket_id, kind, message_id, mail_from, rcpt_to, raw, next_attempt_at,"
            " created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (ticket_id, kind, message_id, mail_from, json.dumps(rcpt_to), raw, now, now),
        )
        if ticket_id is not None:
            await self.run(
                "INSERT OR IGNORE INTO thread_ids (message_id, ticket_id, direction) VALUES (?, ?, ?)",
                (message_id, ticket_id, "out"),
            )
        return outbox_id

    async def claim_due_mail(self, lease_until: datetime, limit: int = 20) -> list[OutboundMail]:
        """Take up to ``limit`` due mails for delivery, leased so another process (or a crash) cannot
        send them twice before the lease ends."""
        now = self.now_iso()
        rows = await self.all(
            # Two indexed halves: an OR across them would scan the whole outbox, sent mail included.
            "SELECT * FROM outbox WHERE state = ? AND next_attempt_at <= ?"
            " UNION ALL SELECT * FROM outbox WHERE state = ? AND lease_until <= ?"
            " ORDER BY next_attempt_at, id LIMIT ?",
            (QUEUED, now, SENDING, now, limit),
        )
        for row in rows:
            await self.run(
                "UPDATE outbox SET state = ?, lease_until = ?, attempts = attempts + 1 WHERE id = ?",
                (SENDING, to_iso(lease_until), row["id"]),
            )
        return [_mail(row, attempts_bump=1, state=SENDING) for row in rows]

    async def release_mail(self, outbox_ids: list[int] | None = None) -> int:
        """Put leased mail back in the queue, due now: these ids (claimed, then not tried), or, with None, every
        lease (a new daemon's start: the one that leased them is gone). The number released."""
        params: list[Any] = [QUEUED, SENDING]
        if outbox_ids is None:
            sql = "UPDATE outbox SET state = ?, lease_until = NULL WHERE state = ?"
        else:
            marks = ", ".join("?" * len(outbox_ids))
            sql = (
                "UPDATE outbox SET state = ?, lease_until = NULL, attempts = max(attempts - 1, 0)"
                f" WHERE state = ? AND id IN ({marks})"
            )
            params += outbox_ids
        return await self.run(sql, params)

    async def mail_count_reaches(self, kind: str, since: datetime, limit: int, rcpt: str | None = None) -> bool:
        """Whether ``limit`` mails of ``kind`` were queued since then (to ``rcpt`` alone, when given).

        Counts no further than the limit, so a flood that is over it costs each later mail ``limit`` index
        entries, not the whole window's."""
        if rcpt is None:
            row = await self.one(COUNT_SENT_SINCE, (kind, to_iso(since), limit))
        else:
            row = await self.one(COUNT_SENT_TO_SINCE, (kind, to_iso(since), json.dumps([rcpt]), limit))
        return row is not None and int(row[0]) >= limit

    async def retry_mail(self, outbox_id: int) -> bool:
        """Queue a failed (or waiting) mail for delivery now; False if there is no such mail to retry."""
        return bool(
            await self.run(
                "UPDATE outbox SET state = ?, next_attempt_at = ?, lease_until = NULL WHERE id = ? AND state IN (?, ?)",
                (QUEUED, self.now_iso(), outbox_id, QUEUED, FAILED),
            )
        )

    async def drop_mail(self, outbox_id: int) -> bool:
        """Give up on a queued or failed mail (kept, marked dropped); False if there is no such mail."""
        return bool(
            await self.run(
                "UPDATE outbox SET state = ?, lease_until = NULL WHERE id = ? AND state IN (?, ?)",
                (DROPPED, outbox_id, QUEUED, FAILED),
            )
        )

    async def outbox_summary(self) -> dict[str, Any]:
        rows = await self.all("SELECT state, count(*), min(created_at) FROM outbox GROUP BY state")
        counts = {str(r[0]): int(r[1]) for r in rows}
        oldest = next((r[2] for r in rows if r[0] == QUEUED), None)
        return {"counts": counts, "oldest_queued_at": oldest}

    async def mail_with_message_id(self, message_id: str) -> OutboundMail | None:
        """The mail we sent with this Message-ID, if it is ours."""
        row = await self.one("SELECT * FROM outbox WHERE message_id = ?", (message_id,))
        return _mail(row) if row else None

    async def record_bounce(
        self, outbox_id: int, inbound_id: int, recipients: list[str], status: str, permanent: bool
    ) -> None:
        await self.run(
            "INSERT INTO bounces (outbox_id, inbound_id, recipients, status, permanent, at) VALUES (?, ?, ?, ?, ?, ?)",
            (outbox_id, inbound_id, json.dumps(recipients), status, int(permanent), self.now_iso()),
        )

    async def bounces_of(self, outbox_id: int) -> list[dict[str, Any]]:
        rows = await self.all("SELECT * FROM bounces WHERE outbox_id = ? ORDER BY id", (outbox_id,))
        return [
            {
                "recipients": json.loads(r["recipients"]),
                "status": r["status"],
                "permanent": bool(r["permanent"]),
                "inbound_id": r["inbound_id"],
                "at": r["at"],
            }
            for r in rows
        ]

    async def next_mail_due_at(self) -> datetime | None:
        row = await self.one("SELECT min(next_attempt_at) FROM outbox WHERE state = ?", (QUEUED,))
        return from_iso(row[0]) if row and row[0] else None

    async def mark_sent(self, outbox_id: int, failures: list[dict[str, Any]]) -> None:
        await self.run(
            "UPDATE outbox SET state = ?, sent_at = ?, lease_until = NULL, failures = ? WHERE id = ?",
            (SENT, self.now_iso(), json.dumps(failures), outbox_id),
        )

    async def mark_retry(
        self,
        outbox_id: int,
        next_attempt_at: datetime,
        error: str,
        remaining_rcpts: list[str],
        failures: list[dict[str, Any]],
    ) -> None:
        """A temporary failure: try the still-undelivered recipients again later."""
        await self.run(
            "UPDATE outbox SET state = ?, next_attempt_at = ?, lease_until = NULL, last_error = ?, rcpt_to = ?,"
            " failures = ? WHERE id = ?",
            (
                QUEUED,
                to_iso(next_attempt_at),
                error,
                json.dumps(remaining_rcpts),
                json.dumps(failures),
                outbox_id,
            ),
        )

    async def mark_failed(self, outbox_id: int, error: str, failures: list[dict[str, Any]]) -> None:
        """A permanent failure: kept for operators, never retried by itself."""
        await self.run(
            "UPDATE outbox SET state = ?, lease_until = NULL, last_error = ?, failures = ? WHERE id = ?",
            (FAILED, error, json.dumps(failures), outbox_id),
        )

    async def count_mail_in_state(self, state: str) -> int:
        """Outbound mails in one state: a range of the `outbox_due` index."""
        row = await self.one("SELECT count(*) FROM outbox WHERE state = ?", (state,))
        return int(row[0]) if row else 0

    async def list_mail(
        self, state: str | None = None, ticket_id: int | None = None, limit: int | None = 1000
    ) -> list[OutboundMail]:
        """Oldest first; ``limit=None`` lists all."""
        sql, params = "SELECT * FROM outbox WHERE 1 = 1", list[Any]()
        if state:
            sql, params = sql + " AND state = ?", [*params, state]
        if ticket_id is not None:
            sql, params = sql + " AND ticket_id = ?", [*params, ticket_id]
        rows = await self.all(sql + " ORDER BY id LIMIT ?", [*params, sql_limit(limit)])
        return [_mail(row) for row in rows]

    async def mail_failures(self, outbox_id: int) -> list[dict[str, Any]]:
        row = await self.one("SELECT failures FROM outbox WHERE id = ?", (outbox_id,))
        return list(json.loads(row[0])) if row else []

    async def thread_chain(self, ticket_id: int, audience: str, latest: int = CHAIN_LATEST) -> list[str]:
        """Message-IDs a mail to this audience ("customer" or "agent") should reference, oldest first: the
        customers' own mails plus what maild already sent to that audience.

        Only the thread's root and the ``latest`` newest of each kind are read: all a References header keeps
        (`compose.MAX_REFERENCES`). created_at, the sort key, lies behind an outbox row's raw mail, in its
        overflow pages, so the rows are chosen by id first (within a table ids follow created_at, both set at
        insert): a ticket of 2,000 mails costs what a short one does (benchmarks/long_ticket.py)."""
        rows = await self.all(THREAD_CHAIN, (ticket_id, f"{audience}.", latest - 1))
        return [str(row[0]) for row in rows]


def _mail(row: Any, attempts_bump: int = 0, state: str | None = None) -> OutboundMail:
    return OutboundMail(
        id=row["id"],
        ticket_id=row["ticket_id"],
        kind=row["kind"],
        message_id=row["message_id"],
        mail_from=row["mail_from"],
        rcpt_to=tuple(json.loads(row["rcpt_to"])),
        raw=bytes(row["raw"]),
        state=state or row["state"],
        attempts=row["attempts"] + attempts_bump,
        next_attempt_at=from_iso(row["next_attempt_at"]),
        created_at=from_iso(row["created_at"]),
        last_error=row["last_error"],
        sent_at=from_iso(row["sent_at"]) if row["sent_at"] else None,
    )
