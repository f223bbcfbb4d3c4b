"""Queries on the spool: raw inbound messages and their processing state."""

from __future__ import annotations

import json
from typing import Any

from maild.clock import from_iso
from maild.models import Envelope, Inbound
from maild.store.base import QueryBase, sql_limit

PENDING, DONE, SHUNTED, DROPPED = "pending", "done", "shunted", "dropped"
ERASED = "erased"  # `maild erase`: the row and its dedupe key kept, the mail gone


class InboundQueries(QueryBase):
    async def insert_inbound(
        self,
        envelope: Envelope,
        dedupe_key: str,
        raw: bytes,
        *,
        shunted_at: str | None = None,
        error: str | None = None,
    ) -> int | None:
        """Spool a raw message, in line for processing or, given ``shunted_at`` (a step) and ``error``, kept
        shunted; None when a message with the same dedupe key is already spooled."""
        row = await self.one(
            "INSERT INTO inbound (received_at, source, peer, mail_from, rcpt_to, dedupe_key, raw, state, step, error)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (dedupe_key) DO NOTHING RETURNING id",
            (
                self.now_iso(),
                envelope.source,
                envelope.peer,
                envelope.mail_from,
                json.dumps(list(envelope.rcpt_to)),
                dedupe_key,
                raw,
                PENDING if shunted_at is None else SHUNTED,
                shunted_at,
                error,
            ),
        )
        return int(row[0]) if row else None

    async def inbound_by_dedupe_key(self, dedupe_key: str) -> Inbound | None:
        row = await self.one("SELECT * FROM inbound WHERE dedupe_key = ?", (dedupe_key,))
        return _inbound(row) if row else None

    async def pending_inbound_sizes(self, limit: int = 100) -> list[tuple[int, int]]:
        """Spooled messages not yet processed, oldest first, with the size of each raw message."""
        rows = await self.all(
            "SELECT id, length(raw) FROM inbound WHERE state = ? ORDER BY id LIMIT ?", (PENDING, limit)
        )
        return [(int(row[0]), int(row[1])) for row in rows]

    async def get_inbound(self, inbound_id: int) -> Inbound | None:
        row = await self.one("SELECT * FROM inbound WHERE id = ?", (inbound_id,))
        return _inbound(row) if row else None

    async def inbound_state(self, inbound_id: int) -> str | None:
        row = await self.one("SELECT state FROM inbound WHERE id = ?", (inbound_id,))
        return str(row[0]) if row else None

    async def finish_inbound(
        self,
        inbound_id: int,
        state: str,
        ticket_id: int | None = None,
        step: str | None = None,
        error: str | None = None,
    ) -> None:
        """Record how processing ended: done, dropped (with the reason in error) or shunted."""
        await self.run(
            "UPDATE inbound SET state = ?, ticket_id = ?, step = ?, error = ?, processed_at = ? WHERE id = ?",
            (state, ticket_id, step, error, self.now_iso(), inbound_id),
        )

    async def requeue_inbound(self, inbound_id: int, state: str = SHUNTED) -> bool:
        """Put a shunted message back in line for processing (`maild shunt replay`), or a dropped one that
        reached no ticket (`maild dropped replay`: a blocked sender's, say). One dropped on a ticket (its
        commands refused) is there already, as a note: processed again it would be recorded twice."""
        changed = await self.run(
            "UPDATE inbound SET state = ?, step = NULL, error = NULL WHERE id = ? AND state = ? AND ticket_id IS NULL",
            (PENDING, inbound_id, state),
        )
        return changed == 1

    async def list_dropped(self, sender: str | None = None, limit: int | None = 1000) -> list[Inbound]:
        """Dropped messages, newest first (the one an operator looks for came lately), of one envelope sender
        if given; ``limit=None`` lists all."""
        rows = await self.all(
            "SELECT * FROM inbound WHERE state = ?1 AND (?2 IS NULL OR lower(mail_from) = ?2)"
            " ORDER BY id DESC LIMIT ?3",
            (DROPPED, sender, sql_limit(limit)),
        )
        return [_inbound(row) for row in rows]

    async def list_inbound(self, state: str, limit: int | None = 1000) -> list[Inbound]:
        """Oldest first; ``limit=None`` lists all."""
        rows = await self.all("SELECT * FROM inbound WHERE state = ? ORDER BY id LIMIT ?", (state, sql_limit(limit)))
        return [_inbound(row) for row in rows]

    async def imap_position(self, mailbox: str) -> tuple[int, int] | None:
        """(uidvalidity, last UID handled) of an IMAP mailbox, or None before its first poll."""
        row = await self.one("SELECT uidvalidity, last_uid FROM imap_state WHERE mailbox = ?", (mailbox,))
        return (int(row[0]), int(row[1])) if row else None

    async def set_imap_position(self, mailbox: str, uidvalidity: int, last_uid: int) -> None:
        await self.run(
            "INSERT INTO imap_state (mailbox, uidvalidity, last_uid) VALUES (?, ?, ?)"
            " ON CONFLICT (mailbox) DO UPDATE SET uidvalidity = excluded.uidvalidity,"
            " last_uid = excluded.last_uid",
            (mailbox, uidvalidity, last_uid),
        )

    async def intake_summary(self) -> dict[str, Any]:
        row = await self.one(
            "SELECT max(received_at), (SELECT min(received_at) FROM inbound WHERE state = ?) FROM inbound", (PENDING,)
        )
        return {
            "counts": await self.count_inbound(),
            "last_received_at": row[0] if row else None,
            "oldest_pending_at": row[1] if row else None,
        }

    async def count_in_state(self, state: str) -> int:
        """Spooled messages in one state: a range of the state index, never a walk of the whole spool."""
        row = await self.one("SELECT count(*) FROM inbound WHERE state = ?", (state,))
        return int(row[0]) if row else 0

    async def count_inbound(self) -> dict[str, int]:
        rows = await self.all("SELECT state, count(*) FROM inbound GROUP BY state")
        return {str(row[0]): int(row[1]) for row in rows}


def _inbound(row: Any) -> Inbound:
    envelope = Envelope(
        source=row["source"],
        mail_from=row["mail_from"],
        rcpt_to=tuple(json.loads(row["rcpt_to"])),
        peer=row["peer"],
    )
    return Inbound(
        id=row["id"],
        received_at=from_iso(row["received_at"]),
        envelope=envelope,
        dedupe_key=row["dedupe_key"],
        raw=bytes(row["raw"]),
        state=row["state"],
        step=row["step"],
        error=row["error"],
        ticket_id=row["ticket_id"],
    )
