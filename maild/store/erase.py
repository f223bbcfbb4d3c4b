"""Queries of `maild erase`: what the store holds of some tickets, or of one customer, found by keys and
removed in the caller's transaction, so that a crash leaves all of it or none.

Deleted rows are overwritten on their pages (`overwrite_deleted`); `Store.checkpoint` then empties the WAL
of their old images. Received mails stay as rows without their content (state ``erased``): their dedupe key,
the Message-ID, keeps an MTA's late redelivery of an erased mail from opening its ticket again.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field

from maild.statuses import CLOSED
from maild.store.base import QueryBase
from maild.store.inbound import DROPPED, ERASED, PENDING, SHUNTED
from maild.store.tickets import ERASED_THROUGH

IN_LIST = "IN (SELECT value FROM json_each(?))"


@dataclass
class Erased:
    """What an erasure removed (or, in a dry run, would remove)."""

    tickets: list[int] = field(default_factory=list)
    messages: int = 0
    attachments: int = 0
    received: int = 0
    sent: int = 0
    history: int = 0
    time_minutes: int = 0
    followed: int = 0  # other tickets the customer was a follower of
    history_mentions: int = 0  # entries of other tickets naming the customer, now naming no one
    unreferenced_files: list[str] = field(default_factory=list)  # attachment files no message names any more
    imap_message_ids: list[str] = field(default_factory=list)  # of received mails IMAP intake took: copies remain
    imap_without_message_id: int = 0  # such mails with no Message-ID to find their copies by


class EraseQueries(QueryBase):
    async def overwrite_deleted(self) -> None:
        """Zero what this connection deletes, on its pages and in the free list (Debian's SQLite does by default;
        a build without SQLITE_SECURE_DELETE would leave it readable in the file)."""
        self.db.execute("PRAGMA secure_delete = ON")

    async def merged_into_these(self, ticket_ids: Sequence[int]) -> list[int]:
        """``ticket_ids`` and every ticket merged into them, at any depth, in order."""
        rows = await self.all(
            "WITH RECURSIVE closure (id) AS (SELECT value FROM json_each(?)"
            " UNION SELECT t.id FROM tickets t JOIN closure c ON t.merged_into = c.id)"
            " SELECT id FROM closure",
            (json.dumps(list(ticket_ids)),),
        )
        return sorted(int(row[0]) for row in rows)

    async def closed_before(self, before: str, after: tuple[str, int], limit: int) -> list[tuple[str, int]]:
        """(updated_at, id) of up to ``limit`` tickets closed and unchanged since before ``before``, past
        ``after`` in that order (a dry run rolls each batch back, so it pages on); merged ones come with
        their target."""
        rows = await self.all(
            # Pinned: without statistics SQLite prefers tickets_by_status and sorts every closed ticket.
            f"SELECT updated_at, id FROM tickets INDEXED BY tickets_closed WHERE status = '{CLOSED}' AND updated_at < ?"
            " AND (updated_at, id) > (?, ?) AND merged_into IS NULL ORDER BY updated_at, id LIMIT ?",
            (before, *after, limit),
        )
        return [(str(row[0]), int(row[1])) for row in rows]

    async def tickets_of_requester(self, address: str) -> list[tuple[int, int | None]]:
        """(id, merged_into) of each ticket ``address`` opened."""
        rows = await self.all("SELECT id, merged_into FROM tickets WHERE requester = ? ORDER BY id", (address,))
        return [(int(row[0]), row[1]) for row in rows]

    async def erase_tickets(self, ticket_ids: Sequence[int], erased: Erased) -> None:
        """Remove the tickets and all they hold: messages, attachments' rows, received and sent mail, thread
        ids, history, time entries, timers, tags, followers and links. Merged tickets must come with their
        target (`merged_into_these`): their mail lives there."""
        if not ticket_ids:
            return
        ids = json.dumps(list(ticket_ids))
        messages = await self.all(f"SELECT id, message_id FROM messages WHERE ticket_id {IN_LIST}", (ids,))
        sent = await self.all(f"SELECT id, message_id FROM outbox WHERE ticket_id {IN_LIST}", (ids,))
        received = await self.all(f"SELECT id FROM inbound WHERE ticket_id {IN_LIST}", (ids,))
        message_ids = json.dumps([row[0] for row in messages])
        digests = await self.all(f"SELECT DISTINCT sha256 FROM attachments WHERE message_id {IN_LIST}", (message_ids,))
        (minutes,) = await self.one(
            f"SELECT coalesce(sum(minutes), 0) FROM time_entries WHERE ticket_id {IN_LIST}", (ids,)
        ) or (0,)

        await self.run(f"DELETE FROM bounces WHERE outbox_id {IN_LIST}", (json.dumps([row[0] for row in sent]),))
        await self.run(f"DELETE FROM bounces WHERE inbound_id {IN_LIST}", (json.dumps([row[0] for row in received]),))
        erased.attachments += await self.run(f"DELETE FROM attachments WHERE message_id {IN_LIST}", (message_ids,))
        await self.run(f"DELETE FROM time_entries WHERE ticket_id {IN_LIST}", (ids,))
        # thread_ids has no ticket index: its rows are found through the mail they name, as in move_thread.
        await self.run(
            f"DELETE FROM thread_ids WHERE message_id {IN_LIST} AND ticket_id {IN_LIST}",
            (json.dumps([row[1] for row in [*messages, *sent]]), ids),
        )
        erased.messages += await self.run(f"DELETE FROM messages WHERE ticket_id {IN_LIST}", (ids,))
        erased.sent += await self.run(f"DELETE FROM outbox WHERE ticket_id {IN_LIST}", (ids,))
        erased.history += await self.run(f"DELETE FROM history WHERE ticket_id {IN_LIST}", (ids,))
        for table in ("timers", "ticket_tags", "followers"):
            await self.run(f"DELETE FROM {table} WHERE ticket_id {IN_LIST}", (ids,))
        # Links go both ways; the other side's rows are found by their key.
        others = await self.all(f"SELECT other_id, ticket_id FROM links WHERE ticket_id {IN_LIST}", (ids,))
        await self.many("DELETE FROM links WHERE ticket_id = ? AND other_id = ?", [tuple(row) for row in others])
        await self.run(f"DELETE FROM links WHERE ticket_id {IN_LIST}", (ids,))
        await self.blank_inbound([int(row[0]) for row in received], erased)
        await self.run(f"UPDATE blocked_senders SET ticket_id = NULL WHERE ticket_id {IN_LIST}", (ids,))
        await self.run(f"DELETE FROM tickets WHERE id {IN_LIST}", (ids,))
        await self.run(
            "INSERT INTO settings (name, value) VALUES (?1, ?2) ON CONFLICT (name)"
            " DO UPDATE SET value = max(CAST(value AS INTEGER), CAST(excluded.value AS INTEGER))",
            (ERASED_THROUGH, str(max(ticket_ids, default=0))),
        )
        erased.tickets += ticket_ids
        erased.time_minutes += int(minutes)
        for (digest,) in digests:
            if await self.one("SELECT 1 FROM attachments WHERE sha256 = ?", (digest,)) is None:
                erased.unreferenced_files.append(str(digest))

    async def blank_inbound(self, inbound_ids: Sequence[int], erased: Erased) -> None:
        """Keep the rows (and their dedupe keys), drop what the mail said and who sent it; note the
        Message-IDs of those IMAP intake took, whose copies wait in its processed mailbox."""
        ids = json.dumps(list(inbound_ids))
        rows = await self.all(f"SELECT dedupe_key FROM inbound WHERE id {IN_LIST} AND source = 'imap'", (ids,))
        keys = [str(row[0]) for row in rows]
        # A mail kept aside under a reused Message-ID has its content's hash after it in its key.
        erased.imap_message_ids += [key[len("mid:") :].split(" ")[0] for key in keys if key.startswith("mid:")]
        erased.imap_without_message_id += sum(not key.startswith("mid:") for key in keys)
        erased.received += await self.run(
            "UPDATE inbound SET raw = x'', mail_from = '', rcpt_to = '[]', peer = '', step = NULL, error = NULL,"
            f" ticket_id = NULL, state = ? WHERE id {IN_LIST}",
            (ERASED, ids),
        )

    async def erase_customer_traces(self, address: str, erased: Erased) -> None:
        """What names ``address`` outside its own tickets: its mail that opened no ticket (dropped or shunted),
        mail to it about no ticket, its place among other tickets' followers and their history."""
        loose = await self.all(
            "SELECT id FROM inbound WHERE state IN (?, ?) AND ticket_id IS NULL AND lower(mail_from) = ?",
            (DROPPED, SHUNTED, address),
        )
        await self.blank_inbound([int(row[0]) for row in loose], erased)
        unticketed = await self.all(
            "SELECT id FROM outbox WHERE ticket_id IS NULL"
            " AND EXISTS (SELECT 1 FROM json_each(rcpt_to) WHERE lower(value) = ?)",
            (address,),
        )
        unticketed_ids = json.dumps([row[0] for row in unticketed])
        await self.run(f"DELETE FROM bounces WHERE outbox_id {IN_LIST}", (unticketed_ids,))
        erased.sent += await self.run(f"DELETE FROM outbox WHERE id {IN_LIST}", (unticketed_ids,))
        erased.followed += await self.run("DELETE FROM followers WHERE address = ?", (address,))
        erased.history_mentions += await self.run(
            "UPDATE history SET actor = iif(actor = ?1, ?2, actor), old = iif(old = ?1, ?2, old),"
            " new = iif(new = ?1, ?2, new) WHERE ?1 IN (actor, old, new)",
            (address, "(erased)"),
        )

    async def pending_from(self, address: str) -> int:
        """Mails from ``address`` still waiting in the spool: an erasure cannot reach them yet."""
        row = await self.one(
            "SELECT count(*) FROM inbound WHERE state = ? AND lower(mail_from) = ?", (PENDING, address)
        )
        return int(row[0]) if row else 0

    async def messages_by_author(self, address: str) -> int:
        """Messages ``address`` wrote that are still stored (once its own tickets are gone: those on other
        customers' tickets, part of their record). A walk of the messages: an erasure is rare."""
        row = await self.one("SELECT count(*) FROM messages WHERE author = ?", (address,))
        return int(row[0]) if row else 0
