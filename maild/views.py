"""What the CLI shows: tickets as the JSON of CONTRACT §2, and as text tables for people."""

from __future__ import annotations

import re
from typing import Any

from maild.clock import to_iso
from maild.models import HistoryEntry, Inbound, Message, OutboundMail, Ticket, TimeEntry
from maild.tokens import format_token


def _iso(moment: Any) -> str | None:
    return to_iso(moment) if moment is not None else None


def ticket_summary(ticket: Ticket, prefix: str) -> dict[str, Any]:
    """The fields of `ticket list --json`."""
    return {
        "id": ticket.id,
        "token": format_token(prefix, ticket.id),
        "subject": ticket.subject,
        "status": ticket.status,
        "priority": ticket.priority,
        "requester": ticket.requester,
        "assignee": ticket.assignee,
        "queue": ticket.queue,
        "created_at": _iso(ticket.created_at),
        "updated_at": _iso(ticket.updated_at),
    }


def ticket_detail(
    ticket: Ticket,
    prefix: str,
    messages: list[Message],
    history: list[HistoryEntry],
    time_entries: list[TimeEntry],
    clock: tuple[int, int],
) -> dict[str, Any]:
    """The object of `ticket show --json`."""
    resolution = None
    if ticket.resolution_method:
        resolution = {"method": ticket.resolution_method, "note": ticket.resolution_note}
    return {
        "id": ticket.id,
        "token": format_token(prefix, ticket.id),
        "subject": ticket.subject,
        "status": ticket.status,
        "priority": ticket.priority,
        "queue": ticket.queue,
        "category": ticket.category,
        "tags": ticket.tags,
        "requester": ticket.requester,
        "assignee": ticket.assignee,
        "followers": ticket.followers,
        "linked": ticket.linked,
        "merged_into": ticket.merged_into,
        "language": ticket.language,
        "created_at": _iso(ticket.created_at),
        "updated_at": _iso(ticket.updated_at),
        "resolved_at": _iso(ticket.resolved_at),
        "resolved_by": ticket.resolved_by,
        "resolution": resolution,
        "due_at": _iso(ticket.due_at),
        "first_response_due_at": _iso(ticket.first_response_due_at),
        "wait_until": _iso(ticket.wait_until),
        "sla_breached": ticket.sla_breached,
        "clock": {"agent_seconds": clock[0], "customer_seconds": clock[1]},
        "time_entries": [
            {"agent": e.agent, "minutes": e.minutes, "billable": e.billable, "note": e.note, "at": _iso(e.at)}
            for e in time_entries
        ],
        "messages": [message_json(m) for m in messages],
        "history": [
            {
                "at": _iso(h.at),
                "actor": h.actor,
                "field": h.field,
                "old": h.old,
                "new": h.new,
                "cause": h.cause,
            }
            for h in history
        ],
    }


def message_json(message: Message) -> dict[str, Any]:
    return {
        "id": message.id,
        "direction": message.direction,
        "visibility": message.visibility,
        "from": message.author,
        "message_id": message.message_id,
        "subject": message.subject,
        "created_at": _iso(message.created_at),
        "text": message.text,
        "attachments": [
            {"filename": a.filename, "content_type": a.content_type, "size": a.size, "sha256": a.sha256}
            for a in message.attachments
        ],
    }


def inbound_json(inbound: Inbound) -> dict[str, Any]:
    return {
        "id": inbound.id,
        "received_at": _iso(inbound.received_at),
        "source": inbound.envelope.source,
        "mail_from": inbound.envelope.mail_from,
        "rcpt_to": list(inbound.envelope.rcpt_to),
        "size": len(inbound.raw),
        "state": inbound.state,
        "step": inbound.step,
        "error": inbound.error,
        "ticket_id": inbound.ticket_id,
    }


def outbound_json(mail: OutboundMail, bounces: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "id": mail.id,
        "ticket_id": mail.ticket_id,
        "kind": mail.kind,
        "message_id": mail.message_id,
        "rcpt_to": list(mail.rcpt_to),
        "state": mail.state,
        "attempts": mail.attempts,
        "next_attempt_at": _iso(mail.next_attempt_at),
        "created_at": _iso(mail.created_at),
        "sent_at": _iso(mail.sent_at),
        "last_error": mail.last_error,
        "bounces": bounces,
    }


# C0 and C1 controls and DEL (ESC starts a terminal's escape sequences: a subject could retitle the window or
# hide lines), and the bidirectional overrides that reorder what is shown. What the CLI prints of mail shows
# them escaped, never obeys them; tabs and line breaks stay.
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def terminal_safe(text: str) -> str:
    """``text`` with every control character that a terminal would act on written as an escape."""
    return _UNSAFE.sub(lambda found: ascii(found.group())[1:-1], text)


def table(rows: list[dict[str, Any]], columns: list[str]) -> str:
    """A plain aligned text table; long cells are cut so one row stays one line."""
    cells = [[_cell(row.get(c)) for c in columns] for row in rows]
    widths = [max([len(c), *(len(r[i]) for r in cells)]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.upper().ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip()]
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() for r in cells]
    return "\n".join(lines)


def _cell(value: Any) -> str:
    if value is None or value == []:
        return "-"
    text = ", ".join(map(str, value)) if isinstance(value, list) else str(value)
    text = terminal_safe(" ".join(text.split()))
    return text if len(text) <= 60 else text[:59] + "…"


def ticket_text(detail: dict[str, Any]) -> str:
    """`ticket show` for people: the fields, then the timeline, then the history."""
    fields = [
        "status",
        "priority",
        "queue",
        "category",
        "tags",
        "requester",
        "assignee",
        "followers",
        "linked",
        "merged_into",
        "created_at",
        "wait_until",
        "due_at",
        "first_response_due_at",
        "resolved_at",
        "resolved_by",
    ]
    lines = [f"{detail['token']} {detail['subject']}"]
    lines += [f"  {name:<22} {_cell(detail[name])}" for name in fields]
    if detail["resolution"]:
        lines.append(f"  {'resolution':<22} {detail['resolution']['method']}: {detail['resolution']['note'] or ''}")
    for message in detail["messages"]:
        marker = "internal note" if message["visibility"] == "internal" else message["direction"]
        lines += ["", f"--- {message['created_at']}  {message['from']}  ({marker})  {message['message_id']}"]
        lines += [f"    {line}" for line in (message["text"] or "").splitlines()]
        lines += [
            f"    [attachment] {a['filename']}  {a['size']} bytes  sha256:{a['sha256']}" for a in message["attachments"]
        ]
    if detail["history"]:
        lines += ["", "history:"]
        lines += [
            f"  {h['at']}  {h['actor']}  {h['field']}: {h['old'] or '-'} → {h['new'] or '-'}"
            + (f"  ({h['cause']})" if h["cause"] else "")
            for h in detail["history"]
        ]
    return terminal_safe("\n".join(lines))
