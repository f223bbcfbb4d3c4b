"""Queries on tickets and their timeline: messages, attachments, followers, links, history, thread ids."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from maild.clock import from_iso, to_iso
from maild.models import Attachment, Direction, HistoryEntry, Message, Ticket, Visibility
from maild.statuses import CLOSED, RESOLVED, WAITING_CUSTOMER
from maild.store.base import QueryBase, sql_limit

# Columns a caller may change through update_ticket; everything else is fixed at creation.
UPDATABLE = frozenset(
    {
        "subject",
        "status",
        "priority",
        "queue",
        "category",
        "requester",
        "assignee",
        "language",
        "resolved_at",
        "resolved_by",
        "resolution_method",
        "resolution_note",
        "due_at",
        "first_response_due_at",
        "sla_breached",
        "agent_seconds",
        "customer_seconds",
        "sla_paused_seconds",
        "sla_postponed_seconds",
        "sla_warned_for",
        "wait_until",
        "clock_since",
        "first_responded_at",
        "merged_into",
    }
)
# Bookkeeping that changes with every status move; the history shows the moves, not these.
UNRECORDED = frozenset(
    {"clock_since", "agent_seconds", "customer_seconds", "sla_paused_seconds", "sla_postponed_seconds"}
)
# Open tickets: the partial index tickets_open (migration 12) holds just these, and SQLite uses it only for a
# query that states this very condition, so it is spelled here once, as the migration spells it.
OPEN = f"status NOT IN ('{RESOLVED}', '{CLOSED}')"
# `settings`: the highest ticket id `maild erase` removed. A new ticket is numbered above it as well as above
# the tickets there are, so an erased ticket's token, still in the customer's old mails, never leads to a
# ticket opened since (SQLite would give the highest id again once its row is gone).
ERASED_THROUGH = "tickets_erased_through"
NEXT_TICKET_ID = (
    "max((SELECT coalesce(max(id), 0) FROM tickets),"
    " coalesce((SELECT CAST(value AS INTEGER) FROM settings WHERE name = ?), 0)) + 1"
)
# Breached first, then the earliest unmet due date (ISO instants sort as text; "~" after them all), tickets
# waiting for the customer (their dates move when the pause ends) and those without dates last.
_BY_URGENCY = (
    f"ORDER BY sla_breached DESC, status = '{WAITING_CUSTOMER}', min(coalesce(due_at, '~'),"
    " CASE WHEN first_responded_at IS NULL THEN coalesce(first_response_due_at, '~') ELSE '~' END), id"
)
COUNT_OPEN_OF_ASSIGNEE = f"SELECT count(*) FROM tickets WHERE {OPEN} AND assignee = ?"
OPEN_OF_ASSIGNEE_BY_URGENCY = f"SELECT * FROM tickets WHERE {OPEN} AND assignee = ? {_BY_URGENCY} LIMIT ?"
_UNASSIGNED_IN = "assignee IS NULL AND queue IN (SELECT value FROM json_each(?))"
COUNT_OPEN_UNASSIGNED = f"SELECT count(*) FROM tickets WHERE {OPEN} AND {_UNASSIGNED_IN}"
OPEN_UNASSIGNED_BY_URGENCY = f"SELECT * FROM tickets WHERE {OPEN} AND {_UNASSIGNED_IN} {_BY_URGENCY} LIMIT ?"
_TIME_COLUMNS = (
    "created_at",
    "updated_at",
    "resolved_at",
    "due_at",
    "first_response_due_at",
    "sla_warned_for",
    "wait_until",
    "clock_since",
    "first_responded_at",
)

# One statement, not four: every mail reads its ticket.
TICKET_BY_ID = (
    "SELECT t.*,"
    " (SELECT json_group_array(tag) FROM ticket_tags WHERE ticket_id = t.id) AS tags_,"
    " (SELECT json_group_array(address) FROM followers WHERE ticket_id = t.id) AS followers_,"
    " (SELECT json_group_array(other_id) FROM links WHERE ticket_id = t.id) AS linked_"
    " FROM tickets t WHERE t.id = ?"
)


class TicketQueries(QueryBase):
    async def create_ticket(
        self, *, subject: str, requester: str, queue: str, priority: str, language: str, status: str
    ) -> Ticket:
        now = self.now_iso()
        ticket_id = await self.insert(
            "INSERT INTO tickets (id, subject, status, priority, queue, requester, language, created_at, updated_at)"
            f" VALUES ({NEXT_TICKET_ID}, ?, ?, ?, ?, ?, ?, ?, ?)",
            (ERASED_THROUGH, subject, status, priority, queue, requester, language, now, now),
        )
        ticket = await self.get_ticket(ticket_id)
        assert ticket is not None
        return ticket

    async def get_ticket(self, ticket_id: int) -> Ticket | None:
        row = await self.one(TICKET_BY_ID, (ticket_id,))
        if row is None:
            return None
        values = dict(row)
        tags, followers, linked = (json.loads(values.pop(name)) for name in ("tags_", "followers_", "linked_"))
        ticket = _ticket(values)
        ticket.tags, ticket.followers, ticket.linked = sorted(tags), sorted(followers), sorted(map(int, linked))
        return ticket

    async def ticket_queue(self, ticket_id: int) -> str | None:
        row = await self.one("SELECT queue FROM tickets WHERE id = ?", (ticket_id,))
        return str(row[0]) if row else None

    async def count_tickets(self) -> dict[str, int]:
        rows = await self.all("SELECT status, count(*) FROM tickets GROUP BY status")
        return {str(r[0]): int(r[1]) for r in rows}

    async def count_breached(self) -> int:
        row = await self.one("SELECT count(*) FROM tickets WHERE sla_breached = 1")
        return int(row[0]) if row else 0

    async def tickets_with_running_sla(self, *, unpostponed_due: bool = False) -> list[int]:
        """Ids, in order, of the tickets whose SLA may still be met: open and not breached; with
        ``unpostponed_due``, only those with a resolution due date that no known `#postpone` moved."""
        more = " AND due_at IS NOT NULL AND sla_postponed_seconds = 0" if unpostponed_due else ""
        # Through tickets_open, the open tickets alone: ORDER BY id would make SQLite walk the whole table in
        # id order instead (0.6 s on 1,000,000 tickets, against 0.1 s for 50,000 open ones), so Python sorts.
        rows = await self.all(f"SELECT id FROM tickets WHERE {OPEN} AND sla_breached = 0{more}")
        return sorted(int(r[0]) for r in rows)

    async def open_tickets_by_urgency(
        self, limit: int, *, assignee: str | None = None, queues: Sequence[str] = ()
    ) -> tuple[list[Ticket], int]:
        """Open tickets (not resolved or closed) of ``assignee``, or the unassigned ones in ``queues``, and how
        many there are: at most ``limit``, breached first, then by their earliest unmet due date (those with
        none, or waiting for the customer, last)."""
        if assignee is not None:
            count, select, params = COUNT_OPEN_OF_ASSIGNEE, OPEN_OF_ASSIGNEE_BY_URGENCY, [assignee]
        else:
            count, select, params = COUNT_OPEN_UNASSIGNED, OPEN_UNASSIGNED_BY_URGENCY, [json.dumps(list(queues))]
        (total,) = await self.one(count, params) or (0,)
        rows = await self.all(select, [*params, limit])
        return [_ticket(row) for row in rows], int(total)

    async def setting(self, name: str) -> str | None:
        """A value maild keeps about the store itself (`settings` table), or None."""
        row = await self.one("SELECT value FROM settings WHERE name = ?", (name,))
        return str(row[0]) if row else None

    async def set_setting(self, name: str, value: str) -> None:
        await self.run(
            "INSERT INTO settings (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value",
            (name, value),
        )

    async def list_tickets(
        self,
        *,
        statuses: Sequence[str] = (),
        queues: Sequence[str] = (),
        assignee: str | None = None,
        requester: str | None = None,
        words: Sequence[str] = (),
        limit: int | None = 1000,
    ) -> list[Ticket]:
        """Newest first, each filter narrowing the list; ``assignee=""`` is the unassigned ones and
        ``limit=None`` lists all. ``words`` must each be in the subject or in one of the ticket's messages
        (as stored: new text, notes included), without case for ASCII letters; a walk of the tickets, newest
        first, and of their messages by index, which stops at ``limit`` found."""
        sql, params = "SELECT * FROM tickets WHERE 1 = 1", list[Any]()
        for column, values in (("status", statuses), ("queue", queues)):
            if values:
                sql += f" AND {column} IN ({', '.join('?' * len(values))})"
                params += values
        if assignee == "":
            sql += " AND assignee IS NULL"
        elif assignee is not None:
            sql, params = sql + " AND assignee = ?", [*params, assignee]
        if requester is not None:
            sql, params = sql + " AND requester = ?", [*params, requester]
        for word in words:
            pattern = "%" + word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            sql += (
                " AND (subject LIKE ? ESCAPE '\\' OR EXISTS (SELECT 1 FROM messages m"
                " WHERE m.ticket_id = tickets.id AND m.text LIKE ? ESCAPE '\\'))"
            )
            params += [pattern, pattern]
        sql, params = sql + " ORDER BY id DESC LIMIT ?", [*params, sql_limit(limit)]
        return [_ticket(row) for row in await self.all(sql, params)]

    async def update_ticket(self, ticket: Ticket, actor: str, cause: str, **changes: Any) -> Ticket:
        """Apply field changes, recording each real change in the history; returns the updated ticket."""
        changed = {k: v for k, v in changes.items() if getattr(ticket, k) != v}
        if unknown := set(changed) - UPDATABLE:
            raise ValueError(f"not updatable: {sorted(unknown)}")
        if not changed:
            return ticket
        now = self.clock()
        columns = ", ".join(f"{name} = ?" for name in changed)
        await self.run(
            f"UPDATE tickets SET {columns}, updated_at = ? WHERE id = ?",
            [*(_column(v) for v in changed.values()), to_iso(now), ticket.id],
        )
        for name, new in changed.items():
            if name in UNRECORDED:
                setattr(ticket, name, new)
                continue
            await self.add_history(ticket.id, actor, name, _text(getattr(ticket, name)), _text(new), cause)
            setattr(ticket, name, new)
        ticket.updated_at = now
        return ticket

    async def add_history(
        self, ticket_id: int, actor: str, field: str, old: str | None, new: str | None, cause: str = ""
    ) -> None:
        await self.run(
            "INSERT INTO history (ticket_id, at, actor, field, old, new, cause) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (ticket_id, self.now_iso(), actor, field, old, new, cause),
        )

    async def history(self, ticket_id: int) -> list[HistoryEntry]:
        rows = await self.all("SELECT * FROM history WHERE ticket_id = ? ORDER BY id", (ticket_id,))
        return [
            HistoryEntry(
                at=from_iso(r["at"]),
                actor=r["actor"],
                field=r["field"],
                old=r["old"],
                new=r["new"],
                cause=r["cause"],
            )
            for r in rows
        ]

    async def add_followers(self, ticket_id: int, addresses: Iterable[str], actor: str, cause: str) -> list[str]:
        """Add followers not yet on the ticket; returns those actually added (each one in the history)."""
        added = []
        for address in addresses:
            if await self.run(
                "INSERT OR IGNORE INTO followers (ticket_id, address) VALUES (?, ?)", (ticket_id, address)
            ):
                await self.add_history(ticket_id, actor, "followers", None, address, cause)
                added.append(address)
        return added

    async def remove_followers(self, ticket_id: int, addresses: Iterable[str], actor: str, cause: str) -> list[str]:
        """Remove followers; returns those actually removed (each one in the history)."""
        removed = []
        for address in addresses:
            if await self.run("DELETE FROM followers WHERE ticket_id = ? AND address = ?", (ticket_id, address)):
                await self.add_history(ticket_id, actor, "followers", address, None, cause)
                removed.append(address)
        return removed

    async def change_tags(
        self, ticket_id: int, add: Iterable[str], remove: Iterable[str], actor: str, cause: str
    ) -> None:
        for tag in add:
            if await self.run("INSERT OR IGNORE INTO ticket_tags (ticket_id, tag) VALUES (?, ?)", (ticket_id, tag)):
                await self.add_history(ticket_id, actor, "tags", None, tag, cause)
        for tag in remove:
            if await self.run("DELETE FROM ticket_tags WHERE ticket_id = ? AND tag = ?", (ticket_id, tag)):
                await self.add_history(ticket_id, actor, "tags", tag, None, cause)

    async def move_thread(self, source_id: int, target_id: int) -> None:
        """`#merge`: the source ticket's messages (with their attachments), thread ids, sent mail and time
        entries now belong to the target, so its timeline, References and time report hold them. The history
        stays where it was made."""
        # thread_ids has no ticket index: its rows are found through the messages and the mail they name.
        await self.run(
            "UPDATE thread_ids SET ticket_id = ?1 WHERE ticket_id = ?2 AND message_id IN ("
            " SELECT message_id FROM messages WHERE ticket_id = ?2"
            " UNION SELECT message_id FROM outbox WHERE ticket_id = ?2)",
            (target_id, source_id),
        )
        for table in ("messages", "outbox", "time_entries"):
            await self.run(f"UPDATE {table} SET ticket_id = ? WHERE ticket_id = ?", (target_id, source_id))

    async def link_tickets(self, ticket_id: int, other_id: int, actor: str, cause: str) -> bool:
        """Link two tickets both ways; False when they already were."""
        added = await self.run("INSERT OR IGNORE INTO links (ticket_id, other_id) VALUES (?, ?)", (ticket_id, other_id))
        await self.run("INSERT OR IGNORE INTO links (ticket_id, other_id) VALUES (?, ?)", (other_id, ticket_id))
        if added:
            await self.add_history(ticket_id, actor, "linked", None, str(other_id), cause)
            await self.add_history(other_id, actor, "linked", None, str(ticket_id), cause)
        return bool(added)

    async def add_message(
        self,
        *,
        ticket_id: int,
        inbound_id: int | None,
        direction: Direction,
        visibility: Visibility,
        author: str,
        message_id: str,
        subject: str,
        text: str,
        attachments: Sequence[Attachment] = (),
    ) -> Message:
        now = self.now_iso()
        row_id = await self.insert(
            "INSERT INTO messages (ticket_id, inbound_id, direction, visibility, author, message_id, subject,"
            " text, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (ticket_id, inbound_id, direction, visibility, author, message_id, subject, text, now),
        )
        await self.many(
            "INSERT INTO attachments (message_id, filename, content_type, size, sha256) VALUES (?, ?, ?, ?, ?)",
            [(row_id, a.filename, a.content_type, a.size, a.sha256) for a in attachments],
        )
        await self.add_thread_id(message_id, ticket_id, direction)
        # A message is a change of its ticket: an agent's note on a closed ticket restarts its retention.
        await self.run("UPDATE tickets SET updated_at = ? WHERE id = ?", (now, ticket_id))
        return Message(
            id=row_id,
            ticket_id=ticket_id,
            direction=direction,
            visibility=visibility,
            author=author,
            message_id=message_id,
            subject=subject,
            text=text,
            created_at=from_iso(now),
            inbound_id=inbound_id,
            attachments=tuple(attachments),
        )

    async def set_message_visibility(self, message_id: int, visibility: Visibility) -> None:
        await self.run("UPDATE messages SET visibility = ? WHERE id = ?", (visibility, message_id))

    async def messages(self, ticket_id: int) -> list[Message]:
        rows = await self.all("SELECT * FROM messages WHERE ticket_id = ? ORDER BY id", (ticket_id,))
        files: dict[int, list[Attachment]] = {}
        for a in await self.all(
            "SELECT a.* FROM attachments a JOIN messages m ON m.id = a.message_id WHERE m.ticket_id = ? ORDER BY a.id",
            (ticket_id,),
        ):
            files.setdefault(a["message_id"], []).append(
                Attachment(filename=a["filename"], content_type=a["content_type"], size=a["size"], sha256=a["sha256"])
            )
        return [_message(r, tuple(files.get(r["id"], ()))) for r in rows]

    async def recent_authors(self, ticket_id: int, since: datetime, limit: int) -> list[str]:
        """The authors of the ticket's newest messages, at most ``limit``, written since ``since``."""
        rows = await self.all(
            "SELECT author FROM (SELECT author, created_at FROM messages WHERE ticket_id = ? ORDER BY id DESC"
            " LIMIT ?) WHERE created_at >= ?",
            (ticket_id, limit, to_iso(since)),
        )
        return [str(row[0]) for row in rows]

    async def latest_message(self, ticket_id: int, direction: Direction, visibility: Visibility) -> Message | None:
        """The ticket's newest message of that direction and visibility; its attachments are not read."""
        row = await self.one(
            "SELECT * FROM messages WHERE ticket_id = ? AND direction = ? AND visibility = ? ORDER BY id DESC LIMIT 1",
            (ticket_id, direction, visibility),
        )
        return _message(row, ()) if row else None

    async def add_thread_id(self, message_id: str, ticket_id: int, direction: str) -> None:
        """Remember a Message-ID (received or sent) as belonging to a ticket; the first owner wins."""
        await self.run(
            "INSERT OR IGNORE INTO thread_ids (message_id, ticket_id, direction) VALUES (?, ?, ?)",
            (message_id, ticket_id, direction),
        )

    async def ticket_for_thread_ids(self, message_ids: Sequence[str]) -> int | None:
        """The ticket owning the latest of these Message-IDs (References lists the newest last)."""
        for message_id in reversed(message_ids):
            row = await self.one("SELECT ticket_id FROM thread_ids WHERE message_id = ?", (message_id,))
            if row:
                return int(row[0])
        return None

    async def thread_id_direction(self, message_id: str) -> str | None:
        row = await self.one("SELECT direction FROM thread_ids WHERE message_id = ?", (message_id,))
        return str(row[0]) if row else None


def _message(r: Any, attachments: tuple[Attachment, ...]) -> Message:
    return Message(
        id=r["id"],
        ticket_id=r["ticket_id"],
        direction=r["direction"],
        visibility=r["visibility"],
        author=r["author"],
        message_id=r["message_id"],
        subject=r["subject"],
        text=r["text"],
        created_at=from_iso(r["created_at"]),
        inbound_id=r["inbound_id"],
        attachments=attachments,
    )


def _ticket(row: Any) -> Ticket:
    values = dict(row)
    for name in _TIME_COLUMNS:
        values[name] = from_iso(values[name]) if values[name] else None
    values["sla_breached"] = bool(values["sla_breached"])
    return Ticket(**values)


def _column(value: Any) -> Any:
    """A Python value as stored: instants as ISO text, booleans as 0/1."""
    if hasattr(value, "isoformat"):
        return to_iso(value)
    if isinstance(value, bool):
        return int(value)
    return value


def _text(value: Any) -> str | None:
    """A value as the history shows it."""
    if value is None:
        return None
    if hasattr(value, "isoformat"):
        return to_iso(value)
    return str(value).lower() if isinstance(value, bool) else str(value)
