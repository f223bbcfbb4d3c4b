"""Building outbound mail: headers that thread, identify us and stop loops; bytes ready for SMTP."""

from __future__ import annotations

import email.policy
import functools
from collections.abc import Sequence
from dataclasses import dataclass, field
from email.headerregistry import BaseHeader, HeaderRegistry
from email.message import EmailMessage
from email.utils import format_datetime, formataddr, make_msgid

from maild.clock import Clock
from maild.mime import Part

LOOP_HEADER = "X-Maild-Loop"
TICKET_HEADER = "X-Maild-Ticket"
MAX_REFERENCES = 12


class _CachedHeaderRegistry(HeaderRegistry):
    """The stdlib registry builds a new header class with type() on every lookup, which was 40% of the
    cost of composing a mail (benchmarks/ingest.py); the classes for a name never change, so keep them."""

    @functools.lru_cache(maxsize=256)  # noqa: B019 - one registry per process; the cache is the point
    def __getitem__(self, name: str) -> type[BaseHeader]:
        return super().__getitem__(name)


SMTP_POLICY = email.policy.SMTP.clone(header_factory=_CachedHeaderRegistry())


@dataclass(frozen=True)
class Draft:
    """What a handler wants sent; the composer adds everything that is the same for every mail."""

    kind: str
    to: Sequence[str]
    subject: str
    body: str
    cc: Sequence[str] = ()
    references: Sequence[str] = ()
    auto_submitted: str | None = "auto-generated"
    attachments: Sequence[Part] = field(default_factory=tuple)


@dataclass(frozen=True)
class Composed:
    message_id: str
    raw: bytes
    recipients: list[str]


class Composer:
    def __init__(self, support_address: str, from_name: str, clock: Clock) -> None:
        self.support_address = support_address
        self.from_name = from_name
        self.domain = support_address.rpartition("@")[2]
        self.clock = clock

    def compose(self, draft: Draft, ticket_id: int | None) -> Composed:
        """Render a draft into RFC 5322 bytes (CRLF) with our own Message-ID."""
        message = EmailMessage(policy=SMTP_POLICY)
        message_id = make_msgid(idstring=f"t{ticket_id}" if ticket_id else "maild", domain=self.domain)
        message["From"] = formataddr((self.from_name, self.support_address))
        message["To"] = ", ".join(draft.to)
        if draft.cc:
            message["Cc"] = ", ".join(draft.cc)
        message["Subject"] = draft.subject
        message["Date"] = format_datetime(self.clock())
        message["Message-ID"] = message_id
        references = _trim(list(draft.references))
        if references:
            message["In-Reply-To"] = references[-1]
            message["References"] = " ".join(references)
        if draft.auto_submitted:
            # RFC 3834: well-behaved responders never answer this; Exchange honours the second header.
            message["Auto-Submitted"] = draft.auto_submitted
            message["X-Auto-Response-Suppress"] = "All"
        message[LOOP_HEADER] = self.support_address
        if ticket_id is not None:
            message[TICKET_HEADER] = str(ticket_id)
        # 7-bit safe for any smarthost (no 8BITMIME needed), and no line over RFC 5322's 998 octets.
        plain = draft.body.isascii() and all(len(line) <= 998 for line in draft.body.splitlines())
        message.set_content(draft.body, cte="7bit" if plain else "quoted-printable")
        for part in draft.attachments:
            maintype, _, subtype = part.content_type.partition("/")
            if maintype in ("multipart", "message", ""):
                # Containers cannot be attached as opaque bytes; the filename keeps their meaning.
                maintype, subtype = "application", "octet-stream"
            message.add_attachment(
                part.data, maintype=maintype, subtype=subtype or "octet-stream", filename=part.filename
            )
        return Composed(
            message_id=message_id,
            raw=message.as_bytes(policy=SMTP_POLICY),
            recipients=[*draft.to, *draft.cc],
        )


def _trim(references: list[str]) -> list[str]:
    """Keep the thread root and the latest ids: enough for every client to thread, bounded in size."""
    unique = list(dict.fromkeys(references))
    if len(unique) <= MAX_REFERENCES:
        return unique
    return [unique[0], *unique[-(MAX_REFERENCES - 1) :]]
