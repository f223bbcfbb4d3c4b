"""Decoding a raw message once into the fields maild uses (mail-parser does the MIME work)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass
from datetime import datetime
from email.utils import getaddresses
from typing import Any

import mailparser

from maild.mailtext import html_to_text, new_text

_MSGID = re.compile(r"<[^<>\s]+>")


@dataclass(frozen=True)
class Part:
    """An attachment as received: the name is for display only, never a path."""

    filename: str
    content_type: str
    data: bytes


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

    def header(self, name: str) -> str:
        """A header's (first) value, decoded, or "" when absent."""
        return self.headers.get(name.lower(), "")


class UnparseableMail(ValueError):
    """The message cannot be read as mail at all."""


def parse_mail(raw: bytes, fallback_message_id: str) -> ParsedMail:
    """Decode ``raw``; a message without a Message-ID gets ``fallback_message_id`` (derived from content)."""
    try:
        parsed = mailparser.parse_from_bytes(raw)
    except Exception as exc:  # mail-parser wraps nothing uniformly; any failure here is the input's fault.
        raise UnparseableMail(f"{type(exc).__name__}: {exc}") from exc
    headers = _headers(parsed.headers)
    plain = "\n".join(parsed.text_plain) or None
    html = "\n".join(parsed.text_html) or None
    from_name, from_address = _first_address(parsed.from_)
    message_ids = _MSGID.findall(headers.get("message-id", ""))
    return ParsedMail(
        message_id=message_ids[0] if message_ids else fallback_message_id,
        subject=_one_line(parsed.subject or ""),
        from_address=from_address,
        from_name=from_name,
        to=_addresses(parsed.to),
        cc=_addresses(parsed.cc),
        in_reply_to=tuple(_MSGID.findall(headers.get("in-reply-to", ""))),
        references=tuple(_MSGID.findall(headers.get("references", ""))),
        date=parsed.date if isinstance(parsed.date, datetime) else None,
        headers=headers,
        text=new_text(plain, html),
        full_text=plain if plain is not None else html_to_text(html or ""),
        attachments=tuple(_parts(parsed.attachments)),
    )


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


def _parts(attachments: list[dict[str, Any]]) -> list[Part]:
    parts = []
    for item in attachments:
        payload = item.get("payload") or ""
        if item.get("binary"):
            try:
                data = base64.b64decode(payload)
            except (binascii.Error, ValueError):
                data = str(payload).encode("utf-8", "surrogateescape")
        else:
            data = str(payload).encode("utf-8", "surrogateescape")
        name = item.get("safe_filename") or item.get("filename") or "attachment"
        parts.append(
            Part(
                filename=_one_line(str(name)),
                content_type=str(item.get("mail_content_type") or "application/octet-stream"),
                data=data,
            )
        )
    return parts


def _one_line(text: str) -> str:
    return " ".join(str(text).split())
