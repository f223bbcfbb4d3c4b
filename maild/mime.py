"""Decoding a raw message once into the fields maild uses (mail-parser does the MIME work)."""

from __future__ import annotations

import email
import email.policy
import hashlib
import mimetypes
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from email.message import Message
from email.utils import getaddresses
from typing import Any

import mailparser

from maild.charsets import (
    bytes_text,
    codec,
    collapse_rfc2231_charsets,
    header_text,
    mend_text_charsets,
    raw_header,
)
from maild.mailtext import html_to_text, new_text

_MSGID = re.compile(r"<[^<>\s]+>")
HEADER_END = re.compile(rb"\r?\n\r?\n")  # the blank line that ends the header block
_RFC2231_CHARSET = re.compile(rb"charset\*", re.IGNORECASE)  # charset*=, or charset*0*= when continued
# The header block as email.feedparser reads it: lines that are an mbox "From " line, a field name and its
# colon, or a continuation, up to the first that is none of these (a blank line, or body text).
_HEADER_BLOCK = re.compile(rb"(?:(?:From |[\041-\071\073-\176]*:|[ \t])[^\n]*\n)*")
_RECEIVED_FIELD = re.compile(rb"^received:[^\n]*\n(?:[ \t][^\n]*\n)*", re.IGNORECASE | re.MULTILINE)
_LONE_CR = re.compile(rb"\r(?!\n)")
_FIELD_START = re.compile(rb"From |[\041-\071\073-\176]*:|[ \t]")  # what the email package takes for a field
_OBSOLETE_FIELD = re.compile(rb"^([\041-\071\073-\176]+)[ \t]+:")
_KNOWN_FIELD = re.compile(rb"(from|to|cc|subject|date|message-id|mime-version|content-type)[ \t]*:", re.IGNORECASE)
_BODY_TYPES = frozenset({"text/plain", "text/html"})
_ALTERNATIVE = "multipart/alternative"
# Types mimetypes does not know, seen on real mail.
_EXTENSIONS = {"image/jpg": ".jpg", "image/pjpeg": ".jpg", "text/rtf": ".rtf", "application/ms-tnef": ".dat"}
# Limits on hostile structure: real mail stays far below them; beyond them the mail is kept but shunted.
MAX_HEADER_BYTES = 256 * 1024
MAX_MIME_PARTS = 500
MAX_MIME_DEPTH = 20


@dataclass(frozen=True)
class Part:
    """An attachment as received: the name is for display only, never a path."""

    filename: str
    content_type: str
    data: bytes
    charset: str = ""  # of a text part, as the mail declared it


@dataclass(frozen=True)
class ParsedMail:
    message_id: str
    subject: str
    from_address: str
    from_name: str
    to: tuple[str, ...]
    cc: tuple[str, ...]
    in_reply_to: tuple[str, ...]
    references: tuple[str, ...]
    date: datetime | None
    headers: dict[str, str]
    text: str
    full_text: str
    attachments: tuple[Part, ...]
    # The decoded MIME tree (compat32), for the steps that read raw headers or parts: parsing once
    # costs as much as the rest of the pipeline's Python work together. Neither it nor ``headers`` has the
    # top-level Received fields (see `without_received`); the raw message keeps them.
    message: Message | None = field(default=None, repr=False, compare=False)

    def header(self, name: str) -> str:
        """A header's (first) value, decoded, or "" when absent."""
        return self.headers.get(name.lower(), "")


def mime_tree(mail: ParsedMail, raw: bytes) -> Message:
    """The mail's MIME tree (compat32): the one parsing kept, or parsed from ``raw`` for a ParsedMail built
    without it."""
    return mail.message or email.message_from_bytes(raw, policy=email.policy.compat32)


class UnparseableMail(ValueError):
    """The message cannot be read as mail at all."""


@dataclass(frozen=True)
class _Decoded:
    """What either decoder hands to `parse_mail`."""

    headers: dict[str, str]
    subject: str
    from_pairs: list[tuple[str, str]]
    to_pairs: list[tuple[str, str]]
    cc_pairs: list[tuple[str, str]]
    date: datetime | None
    plain: str | None
    html: str | None
    attachments: list[Part]
    message: Message


def parse_mail(raw: bytes, fallback_message_id: str) -> ParsedMail:
    """Decode ``raw``; a message without a Message-ID gets ``fallback_message_id`` (derived from content).

    mail-parser does the work; where it trips over a broken message, the plainer stdlib decoding still gets
    the headers and the text out, so the mail becomes a ticket instead of a failure.
    """
    _check_limits(raw)
    try:
        decoded = _with_mailparser(raw)
    except Exception as first:  # mail-parser raises many kinds; any failure here is the input's fault.
        try:
            decoded = _with_stdlib(raw)
        except Exception:
            raise UnparseableMail(f"{type(first).__name__}: {first}") from first
    headers = decoded.headers
    from_name, from_address = _first_address(decoded.from_pairs)
    message_ids = _MSGID.findall(headers.get("message-id", ""))
    return ParsedMail(
        message_id=message_ids[0] if message_ids else fallback_message_id,
        subject=_one_line(decoded.subject),
        from_address=from_address,
        from_name=from_name,
        to=_addresses(decoded.to_pairs),
        cc=_addresses(decoded.cc_pairs),
        in_reply_to=tuple(_MSGID.findall(headers.get("in-reply-to", ""))),
        references=tuple(_MSGID.findall(headers.get("references", ""))),
        date=decoded.date,
        headers=headers,
        text=new_text(decoded.plain, decoded.html),
        full_text=decoded.plain if decoded.plain is not None else html_to_text(decoded.html or ""),
        attachments=tuple(decoded.attachments),
        message=decoded.message,
    )


def _check_limits(raw: bytes) -> None:
    """Refuse (as UnparseableMail, so the message is kept and shunted) a header block only an attacker builds."""
    end = HEADER_END.search(raw, 0, MAX_HEADER_BYTES + 4)
    if (end is None and len(raw) > MAX_HEADER_BYTES) or (end is not None and end.start() > MAX_HEADER_BYTES):
        raise UnparseableMail(f"header block larger than {MAX_HEADER_BYTES} bytes")


def without_received(raw: bytes) -> bytes:
    """``raw`` without the Received fields of its header block.

    mail-parser 4.8 parses every Received field as it parses the mail, ~0.1 ms each, and maild reads none of
    them: they are the MTAs' trace, for postmasters, and the raw message keeps them. Mail from Gmail through
    an MX and its content filter carries five, which doubled mail-parser's time. The header block ends where
    the email package ends it, at the first line that is neither a field nor a continuation; a header block
    with a lone CR (a line break the email package honours and this scan does not) is left whole.
    """
    block = _HEADER_BLOCK.match(raw)
    end = block.end() if block else 0
    if _LONE_CR.search(raw, 0, end) is not None:
        return raw
    head, dropped = _RECEIVED_FIELD.subn(b"", raw[:end])
    return head + raw[end:] if dropped else raw


def mend_header_block(raw: bytes) -> bytes:
    """``raw`` with its header block as its writer meant it, for decoding (the raw message is kept as it came).

    The email package ends the headers at the first line that is no field, and takes everything after it as
    body: one junk line (``quite Delivered-To: ...``, left by a broken gateway) or the obsolete ``From  :``
    form (blanks before the colon, RFC 5322 section 4.5) lost the mail its From, Subject and Message-ID, so it
    threaded nowhere and answered nobody. Obsolete fields are written as fields; one junk line is dropped when
    everything after it up to the blank line is fields, at least one a field mail always has. Anything else
    (a body that starts without the blank line, say) is left as it is.
    """
    blank = HEADER_END.search(raw, 0, MAX_HEADER_BYTES)
    fields = _HEADER_BLOCK.match(raw)
    if blank is None or fields is None or fields.end() >= blank.start():
        return raw
    lines = raw[: blank.start()].split(b"\n")
    mended = [_OBSOLETE_FIELD.sub(rb"\1:", line) for line in lines]
    junk = [n for n, line in enumerate(mended) if not _FIELD_START.match(line)]
    if len(junk) > 1 or (junk and not any(_KNOWN_FIELD.match(line) for line in mended[junk[0] + 1 :])):
        return raw
    kept = [line for n, line in enumerate(mended) if n not in junk]
    return b"\n".join(kept) + raw[blank.start() :]


def _check_shape(message: Message) -> None:
    """Refuse MIME trees wider or deeper than real mail ever is (decompression-bomb style input)."""
    parts, stack = 0, [(message, 1)]
    while stack:
        part, depth = stack.pop()
        parts += 1
        if parts > MAX_MIME_PARTS:
            raise UnparseableMail(f"more than {MAX_MIME_PARTS} MIME parts")
        if depth > MAX_MIME_DEPTH:
            raise UnparseableMail(f"MIME nesting deeper than {MAX_MIME_DEPTH}")
        payload = part.get_payload() if part.is_multipart() else None  # a leaf's would be decoded, for nothing
        if isinstance(payload, list):
            stack.extend((child, depth + 1) for child in payload if isinstance(child, Message))


def _message(raw: bytes) -> Message:
    """The email package's tree of ``raw``, once it is known to be of a sane shape and labelled plainly."""
    message = email.message_from_bytes(without_received(mend_header_block(raw)), policy=email.policy.compat32)
    _check_shape(message)
    if _RFC2231_CHARSET.search(raw):
        collapse_rfc2231_charsets(message)
    return message


def _with_mailparser(raw: bytes) -> _Decoded:
    message = _message(raw)
    mend_text_charsets(message)
    parsed = mailparser.MailParser(message)
    subject = raw_header(message, "subject")
    files, broken = _files(message)
    return _Decoded(
        headers=_headers(parsed.headers),
        subject=_first(parsed.subject) if subject is None else header_text(subject),
        from_pairs=_from_pairs(message, parsed.from_ or []),
        to_pairs=parsed.to or [],
        cc_pairs=parsed.cc or [],
        date=parsed.date if isinstance(parsed.date, datetime) else None,
        plain=_seven_bit_charset("\n".join(parsed.text_plain)) or broken or None,
        html=_seven_bit_charset("\n".join(parsed.text_html)) or None,
        attachments=files,
        message=parsed.message,
    )


def _with_stdlib(raw: bytes) -> _Decoded:
    message = _message(raw)
    headers: dict[str, str] = {}
    for name, value in message.raw_items():
        headers.setdefault(name.lower(), header_text(str(value)))
    plain: list[str] = []
    html: list[str] = []
    for part in message.walk():  # into attached mails too, as mail-parser reads the body
        if part.get_content_type() in _BODY_TYPES and not _is_file(part, ""):
            payload = part.get_payload(decode=True)
            data = payload if isinstance(payload, bytes) else b""
            text = data.decode(codec(part.get_content_charset() or "utf-8"), "replace")
            (plain if part.get_content_subtype() == "plain" else html).append(text)
    attachments, broken = _files(message)
    return _Decoded(
        headers=headers,
        subject=headers.get("subject", ""),
        from_pairs=getaddresses([headers.get("from", "")]),
        to_pairs=getaddresses([headers.get("to", "")]),
        cc_pairs=getaddresses([headers.get("cc", "")]),
        date=None,
        plain="\n".join(plain) or broken or None,
        html="\n".join(html) or None,
        attachments=attachments,
        message=message,
    )


def _from_pairs(message: Message, parsed: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """mail-parser's From pairs, unless the field has 8-bit bytes or a name is an encoded word in quotes."""
    value = raw_header(message, "from")
    if value is None or (value.isascii() and not any("=?" in name for name, _ in parsed)):
        return parsed
    return _mailbox_pairs(value)


def mailboxes(message: Message, name: str) -> list[tuple[str, str]]:
    """(display name, address) of a field as it came: 8-bit bytes read as `maild.charsets` reads them, the
    addresses found first and each name decoded after (an encoded name may hold a comma)."""
    value = raw_header(message, name)
    return [] if value is None else _mailbox_pairs(value)


def _mailbox_pairs(value: str) -> list[tuple[str, str]]:
    text = bytes_text(value.encode("utf-8", "surrogateescape"))
    return [(header_text(display), address) for display, address in getaddresses([text])]


def _seven_bit_charset(text: str) -> str:
    """Decode ISO-2022 text that mail-parser 4.8 hands back undecoded.

    It returns a 7bit part's payload as is when it is valid UTF-8, which ISO-2022-JP/KR (7-bit, escape
    sequences) always is, so Japanese and Korean mail arrived as escape codes.
    """
    if "\x1b" not in text or not text.isascii():
        return text
    for seven_bit in ("iso2022_jp_2", "iso2022_kr"):
        try:
            return text.encode("ascii").decode(seven_bit)
        except UnicodeError:
            continue
    return text


def content_message_id(raw: bytes, domain: str) -> str:
    """A stable Message-ID for mail that has none, so a redelivery is still recognised."""
    return f"<sha256.{hashlib.sha256(raw).hexdigest()[:32]}@{domain}>"


def _headers(raw_headers: dict[str, Any]) -> dict[str, str]:
    headers = {}
    for name, value in raw_headers.items():
        if isinstance(value, list):
            value = (
                ", ".join(f"{n} <{a}>" if n else str(a) for n, a in value)
                if value and isinstance(value[0], tuple)
                else ", ".join(str(v) for v in value)
            )
        headers[str(name).lower()] = str(value)
    return headers


def _first_address(pairs: list[tuple[str, str]] | None) -> tuple[str, str]:
    for name, address in pairs or []:
        if address and "@" in address:
            return _one_line(name or ""), address.strip().lower()
    return "", ""


def _addresses(pairs: list[tuple[str, str]] | None) -> tuple[str, ...]:
    found = []
    for _, address in pairs or []:
        for _, inner in getaddresses([address or ""]):
            inner = inner.strip().lower()
            if "@" in inner and inner not in found:
                found.append(inner)
    return tuple(found)


def _files(message: Message) -> tuple[list[Part], str]:
    """The files of ``message`` (every part that is neither a container nor body text: a nameless PDF, a
    calendar invitation, an inline image, an attached mail) and the text of a multipart whose boundary is
    missing or wrong, which the email package leaves as one body ("" for none).

    Read here rather than from mail-parser, which leaves nameless parts out unless they have a Content-ID
    (and then names them by it), and invents random names.
    """
    files: list[Part] = []
    broken: list[str] = []
    for part, parent in _leaves(message, ""):
        if part.get_content_maintype() == "message":
            inner = part.get_payload()
            if isinstance(inner, list) and inner and isinstance(inner[0], Message):
                try:
                    data = inner[0].as_bytes()
                except (LookupError, TypeError, ValueError):  # an attached mail too broken to write back out
                    data = str(inner[0].get_payload()).encode("utf-8", "surrogateescape")
                files.append(Part(_file_name(_name_of(part, inner[0])), part.get_content_type(), data))
            continue
        broken_body = part.get_content_maintype() == "multipart"
        if not (broken_body or _is_file(part, parent)):
            continue  # body text: mail-parser's to decode
        payload = part.get_payload(decode=True)
        data = payload if isinstance(payload, bytes) else b""
        if broken_body:
            broken.append(bytes_text(data).strip())
        else:
            charset = part.get_content_charset() or "" if part.get_content_maintype() == "text" else ""
            files.append(Part(_file_name(_name_of(part)), part.get_content_type(), data, charset=charset))
    return files, "\n".join(t for t in broken if t)


def _leaves(part: Message, parent: str) -> Iterator[tuple[Message, str]]:
    """The parts under ``part`` that hold content, each with its container's type. An attached mail
    (message/rfc822 and kin, a bounce's returned mail too) is one leaf, not opened: it is a file, as the
    sender attached it, with its own files inside; a delivery report's status fields are no file."""
    content_type = part.get_content_type()
    if part.get_content_maintype() == "message" and content_type != "message/delivery-status":
        yield part, parent
        return
    payload = part.get_payload()
    if part.is_multipart() and isinstance(payload, list):
        for child in payload:
            if isinstance(child, Message):
                yield from _leaves(child, content_type)
    elif not part.is_multipart():
        yield part, parent


def _is_file(part: Message, parent: str) -> bool:
    """A leaf part that is not body text: named, marked as an attachment, or of a type that is no text to
    read. A text part among a multipart/alternative's versions of the body (text/enriched, AMP, Apple
    Watch) is another rendering of it, not a file; so is a bounce's returned headers, unless named."""
    named = bool(part.get_filename()) or part.get_content_disposition() == "attachment"
    if part.get_content_type() in _BODY_TYPES or (part.get_content_maintype() == "text" and parent == _ALTERNATIVE):
        return named
    return named or part.get_content_type() != "text/rfc822-headers"


def _name_of(part: Message, attached: Message | None = None) -> str:
    """A part's file name (RFC 2231, or an encoded word as clients write it), else the last segment of its
    Content-Location, else an attached mail's subject, else "attachment" with the extension of its type."""
    name = part.get_filename()
    if name:
        return header_text(str(name))
    location = str(part.get("Content-Location") or "").strip().rstrip("/").rpartition("/")[2]
    if location.strip(".") and "?" not in location:
        return header_text(location)
    subject = raw_header(attached, "subject") if attached is not None else None
    if subject and header_text(subject).strip():
        return f"{header_text(subject).strip()[:100]}.eml"
    extension = _EXTENSIONS.get(part.get_content_type()) or mimetypes.guess_extension(part.get_content_type())
    extension = ".eml" if attached is not None else extension
    return f"attachment{extension or ''}"


def _first(value: object) -> str:
    """A header mail-parser may give as a list (a mail with two Subject fields): the first, as readers show."""
    if isinstance(value, list):
        value = value[0] if value else ""
    return str(value or "")


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _file_name(name: str) -> str:
    """The last component of a name as a mail gives it (``../../.bashrc`` → ``.bashrc``), on one line: what
    maild lists and relays, so no client is handed a path."""
    last = re.split(r"[/\\]", name)[-1]
    shown = _one_line("".join(c if c.isprintable() else " " for c in last))
    return shown if shown.strip(".") else "attachment"
