"""Building outbound mail: headers that thread, identify us and stop loops; bytes ready for SMTP."""

from __future__ import annotations

import base64
import binascii
import email.charset
import email.policy
import email.quoprimime
import functools
import re
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from email.header import Header
from email.message import Message
from email.utils import format_datetime, formataddr, make_msgid
from typing import Any

from maild.clock import Clock
from maild.mime import Part

LOOP_HEADER = "X-Maild-Loop"
TICKET_HEADER = "X-Maild-Ticket"
MAX_REFERENCES = 12
# RFC 5322 caps a line at 998 octets, and smarthosts refuse longer ones for good. compat32 folds only at
# spaces, so a longer unbroken run (a pasted URL in a subject) goes into encoded words, which split anywhere;
# a Message-ID cannot be split at all, and one this long is left out of In-Reply-To and References.
LONGEST_RUN = 900


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


# compat32 folding, not the modern policy: that one parses every header value by the full header grammar,
# which made composing more than half of a mail's processing cost (benchmarks/ingest.py). We encode the
# values ourselves (RFC 2047 where not ASCII), so nothing needs parsing.
_WIRE = _Wire(linesep="\r\n", max_line_length=78)
_UTF8_QP = email.charset.Charset("utf-8")
_UTF8_QP.header_encoding = email.charset.QP
_TOKEN = re.compile(r"[A-Za-z0-9!#$&^_.+-]+")
_LONGEST_WORD = 75  # an RFC 2047 encoded word, =?utf-8?q? and ?= included


@dataclass(frozen=True)
class Draft:
    """What a handler wants sent; the composer adds everything that is the same for every mail."""

    kind: str
    to: Sequence[str]
    subject: str
    body: str
    cc: Sequence[str] = ()
    references: Sequence[str] = ()
    in_reply_to: str | None = None  # the mail this one answers, when not the newest of ``references``
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
        self.from_header = _mailbox(from_name, support_address)

    def compose(self, draft: Draft, ticket_id: int | None, sender: tuple[str, str] | None = None) -> Composed:
        """Render a draft into RFC 5322 bytes (CRLF) with our own Message-ID; From ``sender`` (display name,
        address: a queue's) when given, else the support address."""
        message_id = make_msgid(idstring=f"t{ticket_id}" if ticket_id else "maild", domain=self.domain)
        content, body = _body(draft)
        headers: _Headers = [
            *content,
            ("From", _mailbox(*sender) if sender else self.from_header),
            ("To", _text(", ".join(draft.to))),
        ]
        if draft.cc:
            headers.append(("Cc", _text(", ".join(draft.cc))))
        headers += [
            ("Subject", _text(draft.subject)),
            ("Date", format_datetime(self.clock())),
            ("Message-ID", message_id),
        ]
        references = list(draft.references)
        if draft.in_reply_to:  # what this answers ends the chain, so it is the In-Reply-To and never trimmed
            references = [*(r for r in references if r != draft.in_reply_to), draft.in_reply_to]
        # An id too long for a header line, or not ASCII (RFC 5322's msg-id; RFC 2047 would mangle it): left out.
        references = _trim([r for r in references if len(r) <= LONGEST_RUN and r.isascii()])
        if references:
            headers += [("In-Reply-To", references[-1]), ("References", " ".join(references))]
        if draft.auto_submitted:
            # RFC 3834: well-behaved responders never answer this; Exchange honours the second header.
            headers += [("Auto-Submitted", draft.auto_submitted), ("X-Auto-Response-Suppress", "All")]
        headers.append((LOOP_HEADER, self.support_address))
        if ticket_id is not None:
            headers.append((TICKET_HEADER, str(ticket_id)))
        return Composed(
            message_id=message_id,
            raw=_header_block(headers) + b"\r\n" + body,
            recipients=[*draft.to, *draft.cc],
        )


# The body is written here rather than by email.generator: our mails have one fixed shape (a text part,
# then base64 attachments), and the generic generator cost ~0.15 ms per mail, ~1.3 ms with a 20 KB attachment
# (its per-line writes). Headers still go through compat32's folding, so their encoding is the stdlib's.
_LINE_END = re.compile(r"\r\n|\r|\n")
_Headers = list[tuple[str, "str | Header"]]


def _body(draft: Draft) -> tuple[_Headers, bytes]:
    """The top-level content headers and the body bytes: the text part alone, or followed by the
    attachments in a multipart/mixed."""
    text_headers, text = _text_part(draft.body)
    if not draft.attachments:
        return [text_headers[0], ("MIME-Version", "1.0"), *text_headers[1:]], text
    parts = [_header_block(text_headers) + b"\r\n" + text]
    parts += [_attachment(part) for part in draft.attachments]
    boundary = _boundary(parts)
    delimiter = b"--" + boundary.encode("ascii")
    body = b"".join(delimiter + b"\r\n" + part + b"\r\n" for part in parts) + delimiter + b"--\r\n"
    return [("Content-Type", f'multipart/mixed; boundary="{boundary}"'), ("MIME-Version", "1.0")], body


def _text_part(text: str) -> tuple[_Headers, bytes]:
    """7bit when the text is plain ASCII with short lines, else quoted-printable UTF-8; CRLF line ends and
    a final newline either way."""
    lines = _LINE_END.split(text)
    if lines[-1] == "":
        lines.pop()
    # 7-bit safe for any smarthost (no 8BITMIME needed), and no line over RFC 5322's 998 octets; a NUL (from
    # a broken mail) is no 7bit data (RFC 2045 2.7): quoted-printable writes it as =00.
    if text.isascii() and "\x00" not in text and all(len(line) <= 998 for line in lines):
        charset, encoding = "us-ascii", "7bit"
        data = "".join(line + "\r\n" for line in lines).encode("ascii")
    else:
        charset, encoding = "utf-8", "quoted-printable"
        # Encoded with LF (no CR left after the split), so CRLF can be restored without touching the data.
        lf = "".join(line + "\n" for line in lines).encode("utf-8", "surrogatepass")
        data = binascii.b2a_qp(lf, istext=True).replace(b"\n", b"\r\n")
    return [("Content-Type", f'text/plain; charset="{charset}"'), ("Content-Transfer-Encoding", encoding)], data


def _attachment(part: Part) -> bytes:
    """One attachment as a base64 MIME part (headers and body)."""
    maintype, _, subtype = part.content_type.partition("/")
    if maintype in ("multipart", "message") or not (_TOKEN.fullmatch(maintype) and _TOKEN.fullmatch(subtype)):
        # Containers cannot be attached as opaque bytes; the filename keeps their meaning.
        maintype, subtype = "application", "octet-stream"
    headers = Message(policy=_WIRE)
    headers["Content-Type"] = f"{maintype}/{subtype}"
    if maintype == "text" and part.charset and _TOKEN.fullmatch(part.charset):
        headers.set_param("charset", part.charset)  # a text file's bytes mean nothing without it
    headers["Content-Transfer-Encoding"] = "base64"
    # add_header quotes the filename, or writes it RFC 2231-encoded when it is not ASCII.
    headers.add_header("Content-Disposition", "attachment", filename=_short_name(_one_line(part.filename)))
    return _header_block(headers.items()) + b"\r\n" + base64.encodebytes(part.data).replace(b"\n", b"\r\n")


def _boundary(parts: Sequence[bytes]) -> str:
    """A boundary (in the stdlib's style) that occurs in no part."""
    while True:
        boundary = f"==============={secrets.randbelow(10**19):019d}=="
        if not any(boundary.encode("ascii") in part for part in parts):
            return boundary


def _header_block(headers: Iterable[tuple[str, Any]]) -> bytes:
    return b"".join(_WIRE.fold_binary(name, value) for name, value in headers)


def _text(value: str) -> str | Header:
    """A header value on one line (no injected headers), as is when ASCII and foldable, else RFC 2047
    encoded words."""
    value = _one_line(value)
    if value.isascii() and (len(value) <= LONGEST_RUN or max(map(len, value.split()), default=0) <= LONGEST_RUN):
        return value
    return Header(value, _UTF8_QP)


@functools.lru_cache(maxsize=64)  # a queue's sender is written for each of its mails
def _mailbox(name: str, address: str) -> str:
    """A From value: the display name as it is when ASCII, else RFC 2047 words, then the address.

    formataddr writes one encoded word however long the name, and RFC 2047 allows 75 characters. The words
    break after a space, which each keeps: a reader that (against RFC 2047) keeps the folding whitespace
    between two words of a name then shows one space more, not a space inside a word."""
    name = _one_line(name)
    if name.isascii():
        return formataddr((name, address))
    words: list[str] = []
    for piece in re.findall(r"\S*\s*", name)[:-1] or [name]:  # each word with the spaces after it
        joined = (words[-1] if words else "") + piece
        if words and len(email.quoprimime.header_encode(joined.encode(), "utf-8")) <= _LONGEST_WORD:
            words[-1] = joined
        else:
            words += _split_word(piece)
    return " ".join(email.quoprimime.header_encode(w.encode(), "utf-8") for w in words) + f" <{address}>"


def _split_word(text: str) -> list[str]:
    """``text`` in pieces that each encode to one RFC 2047 word of at most 75 characters."""
    pieces = [""]
    for char in text:
        if len(email.quoprimime.header_encode((pieces[-1] + char).encode(), "utf-8")) > _LONGEST_WORD:
            pieces.append("")
        pieces[-1] += char
    return pieces


def _one_line(value: str) -> str:
    """Control characters (CR and LF above all) become spaces: text from a mail must never start a header."""
    return value if value.isprintable() else "".join(c if c.isprintable() else " " for c in value)


def _short_name(filename: str) -> str:
    """A file name short enough for one header line (and any file system), its extension kept: a non-ASCII
    one is written RFC 2231-encoded, up to nine octets a character."""
    longest = 200 if filename.isascii() else 80
    if len(filename) <= longest:
        return filename
    stem, dot, extension = filename.rpartition(".")
    if not dot or len(extension) > 20:
        return filename[:longest]
    return stem[: longest - len(extension) - 1] + "." + extension


def _trim(references: list[str]) -> list[str]:
    """Keep the thread root and the latest ids: enough for every client to thread, bounded in size."""
    unique = list(dict.fromkeys(references))
    if len(unique) <= MAX_REFERENCES:
        return unique
    return [unique[0], *unique[-(MAX_REFERENCES - 1) :]]
