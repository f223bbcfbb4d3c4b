"""Building outbound mail: headers that thread, identify us and stop loops; bytes ready for SMTP."""

from __future__ import annotations

import email.charset
import email.encoders
import email.policy
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from email.header import Header
from email.message import Message
from email.mime.base import MIMEBase
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.utils import format_datetime, formataddr, make_msgid
from typing import Any

from maild.clock import Clock
from maild.mime import Part

LOOP_HEADER = "X-Maild-Loop"
TICKET_HEADER = "X-Maild-Ticket"
MAX_REFERENCES = 12


class _Wire(email.policy.Compat32):
    """compat32 on the wire (CRLF, 78 columns), writing a short one-line ASCII header value as it is.

    compat32 folds every value through an `email.header.Header`, which returns such a value unchanged at
    about 0.1 ms a header: a sixth of processing a mail. Longer, non-ASCII or Header values still go there.
    """

    def _as_is(self, name: str, value: Any) -> bool:
        return (
            isinstance(value, str)
            and value.isascii()
            and value.isprintable()
            and len(name) + 2 + len(value) <= (self.max_line_length or 0)
        )

    def fold(self, name: str, value: Any) -> str:
        if self._as_is(name, value):
            return f"{name}: {value}{self.linesep}"
        return super().fold(name, value)

    def fold_binary(self, name: str, value: Any) -> bytes:
        if self._as_is(name, value):
            return f"{name}: {value}{self.linesep}".encode("ascii")
        return super().fold_binary(name, value)


# compat32 Message objects, not EmailMessage: every header set on an EmailMessage is parsed by the modern
# header grammar, which made composing more than half of a mail's processing cost (benchmarks/ingest.py).
# We write the headers ourselves (RFC 2047 where not ASCII), so nothing needs parsing.
_WIRE = _Wire(linesep="\r\n", max_line_length=78)
_UTF8_QP = email.charset.Charset("utf-8")
_UTF8_QP.body_encoding = email.charset.QP
_UTF8_QP.header_encoding = email.charset.QP
_TOKEN = re.compile(r"[A-Za-z0-9!#$&^_.+-]+")


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
        self.from_header = formataddr((from_name, support_address), charset="utf-8")

    def compose(self, draft: Draft, ticket_id: int | None) -> Composed:
        """Render a draft into RFC 5322 bytes (CRLF) with our own Message-ID."""
        message = _body(draft)
        message_id = make_msgid(idstring=f"t{ticket_id}" if ticket_id else "maild", domain=self.domain)
        message["From"] = self.from_header
        message["To"] = _text(", ".join(draft.to))
        if draft.cc:
            message["Cc"] = _text(", ".join(draft.cc))
        message["Subject"] = _text(draft.subject)
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
        return Composed(
            message_id=message_id,
            raw=message.as_bytes(policy=_WIRE),
            recipients=[*draft.to, *draft.cc],
        )


def _body(draft: Draft) -> Message[Any, Any]:  # Any: header values may be Header objects
    """The text part (7bit when it is plain ASCII with short lines, else quoted-printable UTF-8), alone or
    followed by the attachments in a multipart/mixed."""
    # 7-bit safe for any smarthost (no 8BITMIME needed), and no line over RFC 5322's 998 octets.
    plain = draft.body.isascii() and all(len(line) <= 998 for line in draft.body.splitlines())
    body = draft.body if draft.body.endswith("\n") else draft.body + "\n"
    text = MIMEText(body, "plain", "us-ascii" if plain else _UTF8_QP, policy=_WIRE)  # type: ignore[arg-type]
    if not draft.attachments:
        return text
    del text["MIME-Version"]  # once, at the top
    message = MIMEMultipart("mixed", policy=_WIRE)
    message.attach(text)
    for part in draft.attachments:
        maintype, _, subtype = part.content_type.partition("/")
        if maintype in ("multipart", "message") or not (_TOKEN.fullmatch(maintype) and _TOKEN.fullmatch(subtype)):
            # Containers cannot be attached as opaque bytes; the filename keeps their meaning.
            maintype, subtype = "application", "octet-stream"
        attachment = MIMEBase(maintype, subtype, policy=_WIRE)
        del attachment["MIME-Version"]
        attachment.set_payload(part.data)
        email.encoders.encode_base64(attachment)
        attachment.add_header("Content-Disposition", "attachment", filename=_one_line(part.filename))
        message.attach(attachment)
    return message


def _text(value: str) -> str | Header:
    """A header value on one line (no injected headers), as is when ASCII, else RFC 2047 encoded words."""
    value = _one_line(value)
    return value if value.isascii() else Header(value, _UTF8_QP)


def _one_line(value: str) -> str:
    """Control characters (CR and LF above all) become spaces: text from a mail must never start a header."""
    return value if value.isprintable() else "".join(c if c.isprintable() else " " for c in value)


def _trim(references: list[str]) -> list[str]:
    """Keep the thread root and the latest ids: enough for every client to thread, bounded in size."""
    unique = list(dict.fromkeys(references))
    if len(unique) <= MAX_REFERENCES:
        return unique
    return [unique[0], *unique[-(MAX_REFERENCES - 1) :]]
