"""The records maild keeps, as plain typed values passed between the store and the handlers."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

Direction = Literal["in", "out"]
Visibility = Literal["public", "internal"]


@dataclass(frozen=True)
class Envelope:
    """What the SMTP/LMTP session (or IMAP, or stdin) told us besides the message itself."""

    source: str
    mail_from: str
    rcpt_to: tuple[str, ...]
    peer: str = ""


@dataclass(frozen=True)
class Inbound:
    """A raw message as durably spooled, before or after processing."""

    id: int
    received_at: datetime
    envelope: Envelope
    dedupe_key: str
    raw: bytes
    state: str
    step: str | None = None
    error: str | None = None
    ticket_id: int | None = None


@dataclass(frozen=True)
class Attachment:
    filename: str
    content_type: str
    size: int
    sha256: str


@dataclass
class Ticket:
    id: int
    subject: str
    status: str
    priority: str
    queue: str
    category: str | None
    requester: str
    assignee: str | None
    language: str
    created_at: datetime
    updated_at: datetime
    resolved_at: datetime | None = None
    resolved_by: str | None = None
    resolution_method: str | None = None
    resolution_note: str | None = None
    due_at: datetime | None = None
    first_response_due_at: datetime | None = None
    sla_breached: bool = False
    agent_seconds: int = 0
    customer_seconds: int = 0
    sla_paused_seconds: int = 0  # open time (`maild.business_hours`) the SLA clock paused for the customer
    sla_postponed_seconds: int = 0  # calendar time `#postpone` moved the resolution due date by
    sla_warned_for: datetime | None = None  # the due date the agents were last warned of (`warn_before`)
    wait_until: datetime | None = None
    clock_since: datetime | None = None
    first_responded_at: datetime | None = None
    merged_into: int | None = None  # `#merge`: the ticket this one's mail and token now lead to
    tags: list[str] = field(default_factory=list)
    followers: list[str] = field(default_factory=list)
    linked: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class Message:
    """One article of a ticket's timeline: a customer mail, an agent reply or an internal note."""

    id: int
    ticket_id: int
    direction: Direction
    visibility: Visibility
    author: str
    message_id: str
    subject: str
    text: str
    created_at: datetime
    inbound_id: int | None
    attachments: tuple[Attachment, ...] = ()


@dataclass(frozen=True)
class Timer:
    """A lifecycle event due at a time; rows in the store so they survive restarts."""

    id: int
    ticket_id: int
    kind: str
    due_at: datetime


@dataclass(frozen=True)
class TimeEntry:
    agent: str
    minutes: int
    billable: bool
    note: str
    at: datetime


@dataclass(frozen=True)
class HistoryEntry:
    at: datetime
    actor: str
    field: str
    old: str | None
    new: str | None
    cause: str = ""


@dataclass(frozen=True)
class OutboundMail:
    """A rendered mail waiting in (or gone through) the outbox."""

    id: int
    ticket_id: int | None
    kind: str
    message_id: str
    mail_from: str
    rcpt_to: tuple[str, ...]
    raw: bytes
    state: str
    attempts: int
    next_attempt_at: datetime
    created_at: datetime
    last_error: str | None = None
    sent_at: datetime | None = None
