"""Unit tests of maild's small pieces: durations, tokens, dedupe keys, statuses, compose, render, blobs, store."""

from __future__ import annotations

import asyncio
import contextlib
import email
import email.encoders
import email.policy
import hashlib
import re
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import jinja2
import pytest

from maild.app import build_services
from maild.blobs import BlobStore
from maild.commands import CommandError
from maild.compose import LOOP_HEADER, MAX_REFERENCES, TICKET_HEADER, Composed, Composer, Draft, _trim
from maild.config import Agent, Outbound, load_config
from maild.digest import Entry
from maild.durations import format_duration, parse_duration
from maild.handlers.forward import LeftOut
from maild.mime import Part, parse_mail
from maild.models import Attachment, Envelope, Message, OutboundMail, Ticket
from maild.outbound import Delivery, OutboundWorker
from maild.pipeline import BATCH_BACKLOG, BATCH_BYTES, _batches
from maild.render import Renderer, TemplateError, ticket_vars
from maild.spool import Spooled, dedupe_key, spool
from maild.statuses import (
    CLOSED,
    NEW,
    OPEN,
    RESOLVED,
    STATUSES,
    TRANSITIONS,
    WAITING_CUSTOMER,
    WAITING_THIRD_PARTY,
    WAITING_UNTIL,
    TransitionRefused,
    check_transition,
)
from maild.store import Store
from maild.tokens import format_token, strip_tokens, ticket_ids_in

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
SUPPORT = "support@example.com"


# --- durations ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90s", timedelta(seconds=90)),
        ("45m", timedelta(minutes=45)),
        ("4h", timedelta(hours=4)),
        ("3d", timedelta(days=3)),
        ("2w", timedelta(weeks=2)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("1d2h30m15s", timedelta(days=1, hours=2, minutes=30, seconds=15)),
        ("1.5h", timedelta(hours=1, minutes=30)),
        ("0.5d", timedelta(hours=12)),
        ("1:30", timedelta(hours=1, minutes=30)),
        ("0:05", timedelta(minutes=5)),
        ("1H30M", timedelta(hours=1, minutes=30)),
        (" 1h 30m ", timedelta(hours=1, minutes=30)),
        ("0s", timedelta(0)),
    ],
)
def test_parse_duration_accepts(text: str, expected: timedelta) -> None:
    """Every documented duration form parses to the right timedelta."""
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    "text", ["", "   ", "soon", "4", "h", "4x", "-1h", "1h-", "1:3", "1:60", "1:30:00", "1.h", ".5h", "4 hours", "1,5h"]
)
def test_parse_duration_refuses(text: str) -> None:
    """Anything that is not a duration raises ValueError with a hint of the accepted forms."""
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration(text)


def test_parse_duration_refuses_a_huge_value_with_value_error() -> None:
    """A duration too large for a timedelta is refused with ValueError like any other bad input."""
    with pytest.raises(ValueError):
        parse_duration("99999999999d")


@pytest.mark.parametrize(
    ("delta", "expected"),
    [
        (timedelta(0), "0s"),
        (timedelta(seconds=90), "1m30s"),
        (timedelta(hours=4), "4h"),
        (timedelta(days=1, hours=2, minutes=30), "1d2h30m"),
        (timedelta(days=10, seconds=5), "10d5s"),
        (timedelta(weeks=1), "7d"),
        (timedelta(seconds=59, milliseconds=900), "59s"),
    ],
)
def test_format_duration(delta: timedelta, expected: str) -> None:
    """format_duration writes the shortest d/h/m/s form, dropping zero units and fractions of a second."""
    assert format_duration(delta) == expected


@pytest.mark.parametrize("text", ["90s", "45m", "1h30m", "3d", "1d2h30m15s"])
def test_format_duration_round_trips(text: str) -> None:
    """What format_duration writes, parse_duration reads back to the same duration."""
    delta = parse_duration(text)
    assert parse_duration(format_duration(delta)) == delta


def test_format_duration_negative() -> None:
    """A negative duration (an overdue time) is written with a minus sign, never as an empty string."""
    assert format_duration(timedelta(seconds=-90)) == "-1m30s"


# --- tokens ---------------------------------------------------------------------------------------------


def test_format_token() -> None:
    """The token is the prefix and id in brackets."""
    assert format_token("ACME", 12) == "[ACME#12]"


@pytest.mark.parametrize(
    ("subject", "expected"),
    [
        ("Re: [ACME#12] x", [12]),
        ("[ACME#12]", [12]),
        ("Fwd: Re: [acme#12] printer", [12]),
        ("RE: [ ACME # 12 ] printer", [12]),
        ("[ACME#12] and [ACME#7]", [12, 7]),
        ("Re: [OTHER#5] x", []),
        ("Re: [ACMEX#5] [XACME#6] x", []),
        ("Re: ACME#12 without brackets", []),
        ("Re: [ACME#] empty", []),
        ("Re: [ACME#1a] letters", []),
        ("", []),
    ],
)
def test_ticket_ids_in(subject: str, expected: list[int]) -> None:
    """Ids are found in our tokens (any case, spaces tolerated); other prefixes and near misses are ignored."""
    assert ticket_ids_in(subject, "ACME") == expected


def test_ticket_ids_prefix_is_literal() -> None:
    """A prefix with regex metacharacters matches only itself."""
    assert ticket_ids_in("[A.B#3] [AxB#4]", "A.B") == [3]


def test_strip_tokens() -> None:
    """strip_tokens removes our tokens and collapses the spaces they leave, keeping other prefixes."""
    assert strip_tokens("Re: [ACME#12]  Printer on fire", "ACME") == "Re: Printer on fire"
    assert strip_tokens("[ acme # 12 ] [OTHER#3] x", "ACME") == "[OTHER#3] x"
    assert strip_tokens("No token here", "ACME") == "No token here"


# --- spool dedupe key -----------------------------------------------------------------------------------


def test_dedupe_key_uses_message_id() -> None:
    """A message with a Message-ID is keyed by it."""
    raw = b"From: a@example.org\r\nMessage-ID: <abc.123@example.org>\r\nSubject: x\r\n\r\nbody\r\n"
    assert dedupe_key(raw) == "mid:<abc.123@example.org>"


def test_dedupe_key_finds_folded_message_id() -> None:
    """A Message-ID folded onto the next line is still found."""
    raw = b"From: a@example.org\r\nMessage-ID:\r\n <folded@example.org>\r\nSubject: x\r\n\r\nbody\r\n"
    assert dedupe_key(raw) == "mid:<folded@example.org>"
    tabbed = b"Message-ID: \n\t<tab@example.org>\nSubject: x\n\nbody\n"
    assert dedupe_key(tabbed) == "mid:<tab@example.org>"


@pytest.mark.parametrize("name", [b"message-id", b"MESSAGE-ID", b"Message-Id"])
def test_dedupe_key_header_name_is_case_insensitive(name: bytes) -> None:
    """The Message-ID header is recognised whatever the case of its name."""
    raw = b"Subject: x\r\n" + name + b": <case@example.org>\r\n\r\nbody\r\n"
    assert dedupe_key(raw) == "mid:<case@example.org>"


def test_dedupe_key_ignores_message_id_in_body() -> None:
    """A Message-ID line in the body (a quoted mail) is not taken: the key falls back to the hash."""
    raw = b"From: a@example.org\r\nSubject: x\r\n\r\nMessage-ID: <quoted@example.org>\r\n"
    assert dedupe_key(raw) == "sha256:" + hashlib.sha256(raw).hexdigest()


def test_dedupe_key_ignores_other_headers_ending_in_message_id() -> None:
    """Headers such as X-Original-Message-ID are not the Message-ID."""
    raw = b"X-Original-Message-ID: <other@example.org>\r\nSubject: x\r\n\r\nbody\r\n"
    assert dedupe_key(raw).startswith("sha256:")


def test_dedupe_key_falls_back_to_sha256() -> None:
    """Without a Message-ID the key is the sha256 of the whole message."""
    raw = b"From: a@example.org\r\nSubject: no id\r\n\r\nbody\r\n"
    assert dedupe_key(raw) == "sha256:" + hashlib.sha256(raw).hexdigest()


def test_dedupe_key_without_message_id_ignores_the_relays_trace() -> None:
    """The same mail without a Message-ID, through one more relay (one more Received field), is the same."""
    mail = b"Subject: x\r\nFrom: a@b\r\n\r\nbody\r\n"
    relayed = b"Received: from mx2 by mx3; Thu, 3 Dec 2026 10:00:00 +0000\r\n" + mail
    assert dedupe_key(relayed) == dedupe_key(mail) != dedupe_key(mail + b"more\r\n")


def test_dedupe_key_is_stable() -> None:
    """The same bytes always give the same key, and a redelivery with the same Message-ID matches."""
    first = b"Message-ID: <same@example.org>\r\nReceived: by mx1\r\n\r\nbody\r\n"
    again = b"Message-ID: <same@example.org>\r\nReceived: by mx2\r\n\r\nbody\r\n"
    assert dedupe_key(first) == dedupe_key(first) == dedupe_key(again)
    no_id = b"Subject: x\r\n\r\nbody\r\n"
    assert dedupe_key(no_id) == dedupe_key(bytes(no_id))
    assert dedupe_key(no_id) != dedupe_key(no_id + b"more\r\n")


# --- statuses -------------------------------------------------------------------------------------------

# The moves CONTRACT §3 implies, written out independently of maild/statuses.py. A ticket in work may go
# back to new (RT's open → new): "nobody has picked it up" again.
EXPECTED_MOVES: dict[str, set[str]] = {
    NEW: {OPEN, WAITING_CUSTOMER, WAITING_THIRD_PARTY, WAITING_UNTIL, RESOLVED, CLOSED},
    OPEN: {NEW, WAITING_CUSTOMER, WAITING_THIRD_PARTY, WAITING_UNTIL, RESOLVED, CLOSED},
    WAITING_CUSTOMER: {NEW, OPEN, WAITING_THIRD_PARTY, WAITING_UNTIL, RESOLVED, CLOSED},
    WAITING_THIRD_PARTY: {NEW, OPEN, WAITING_CUSTOMER, WAITING_UNTIL, RESOLVED, CLOSED},
    WAITING_UNTIL: {NEW, OPEN, WAITING_CUSTOMER, WAITING_THIRD_PARTY, RESOLVED, CLOSED},
    RESOLVED: {OPEN, CLOSED},
    CLOSED: set(),
}
ALL_MOVES = [(old, new) for old in STATUSES for new in STATUSES if old != new]


def test_transition_table_covers_every_status() -> None:
    """TRANSITIONS has a row for every status and names only known statuses, as the contract lists them."""
    assert STATUSES == (NEW, OPEN, WAITING_CUSTOMER, WAITING_THIRD_PARTY, WAITING_UNTIL, RESOLVED, CLOSED)
    assert set(TRANSITIONS) == set(STATUSES)
    assert all(targets <= set(STATUSES) for targets in TRANSITIONS.values())
    # Self-moves are ignored here: check_transition allows staying put before it reads the table.
    assert {old: set(targets) - {old} for old, targets in TRANSITIONS.items()} == EXPECTED_MOVES


@pytest.mark.parametrize(("old", "new"), [m for m in ALL_MOVES if m[1] in EXPECTED_MOVES[m[0]]])
def test_allowed_move(old: str, new: str) -> None:
    """check_transition lets every move of the table through."""
    assert new in TRANSITIONS[old]
    check_transition(old, new)


@pytest.mark.parametrize(("old", "new"), [m for m in ALL_MOVES if m[1] not in EXPECTED_MOVES[m[0]]])
def test_refused_move(old: str, new: str) -> None:
    """check_transition refuses every move not in the table, naming both ends."""
    assert new not in TRANSITIONS[old]
    with pytest.raises(TransitionRefused, match=f"{old} → {new} is not allowed"):
        check_transition(old, new)


@pytest.mark.parametrize("status", STATUSES)
def test_staying_put_is_allowed(status: str) -> None:
    """Setting a ticket to the status it already has is never refused, closed included."""
    assert check_transition(status, status) is None


@pytest.mark.parametrize("new", [s for s in STATUSES if s != CLOSED])
def test_closed_is_final(new: str) -> None:
    """A closed ticket never changes status again; the refusal says nothing is allowed."""
    with pytest.raises(TransitionRefused, match=r"from closed: none"):
        check_transition(CLOSED, new)


def test_unknown_status_is_refused() -> None:
    """A status that does not exist is refused as target and as origin, as a ValueError."""
    with pytest.raises(ValueError, match="not allowed"):
        check_transition(OPEN, "pending")
    with pytest.raises(TransitionRefused):
        check_transition("pending", OPEN)


# --- compose --------------------------------------------------------------------------------------------


def compose(ticket_id: int | None = 12, from_name: str = "ACME Support", **draft: Any) -> tuple[Composed, EmailMessage]:
    """Compose a draft (defaults filled in) and parse the bytes back as a client would."""
    fields: dict[str, Any] = {
        "kind": "customer.reply",
        "to": ["customer@example.org"],
        "subject": "[ACME#12] Re: Printer",
        "body": "Hello.\n",
    }
    fields.update(draft)
    composed = Composer(SUPPORT, from_name, lambda: NOW).compose(Draft(**fields), ticket_id)
    parsed = email.message_from_bytes(composed.raw, policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    return composed, parsed


def body_of(message: EmailMessage) -> str:
    """The text/plain body of a parsed message, with the wire's CRLF read back as newlines."""
    part = message.get_body(preferencelist=("plain",))
    assert isinstance(part, EmailMessage)
    return str(part.get_content()).replace("\r\n", "\n")


def test_compose_from_is_support_address_with_name() -> None:
    """From: is the support address with the configured display name, even a non-ASCII one."""
    _, message = compose(from_name="Soporte Ñandú")
    (sender,) = message["From"].addresses
    assert sender.addr_spec == SUPPORT
    assert sender.display_name == "Soporte Ñandú"


def test_compose_recipients_and_headers() -> None:
    """To, Cc and the envelope recipients come from the draft; Date comes from the clock."""
    composed, message = compose(to=["a@example.org", "b@example.org"], cc=["c@example.org"])
    assert [a.addr_spec for a in message["To"].addresses] == ["a@example.org", "b@example.org"]
    assert [a.addr_spec for a in message["Cc"].addresses] == ["c@example.org"]
    assert composed.recipients == ["a@example.org", "b@example.org", "c@example.org"]
    assert message["Date"].datetime == NOW


def test_compose_without_cc_has_no_cc_header() -> None:
    """A draft without cc gives no Cc header."""
    _, message = compose()
    assert message["Cc"] is None


def test_compose_message_id_is_ours() -> None:
    """The Message-ID is in the support address's domain and is the one reported back."""
    composed, message = compose()
    assert composed.message_id.startswith("<")
    assert composed.message_id.endswith("@example.com>")
    assert message["Message-ID"] == composed.message_id


def test_compose_message_ids_are_unique() -> None:
    """Two mails composed at the same instant still get different Message-IDs."""
    first, _ = compose()
    second, _ = compose()
    assert first.message_id != second.message_id


def test_compose_threads_on_last_reference() -> None:
    """In-Reply-To is the last reference and References keeps them in order."""
    refs = ["<root@example.org>", "<second@example.org>", "<last@example.org>"]
    _, message = compose(references=refs)
    assert message["In-Reply-To"] == "<last@example.org>"
    assert message["References"].split() == refs


def test_compose_without_references_has_no_threading_headers() -> None:
    """A first mail of a thread has neither In-Reply-To nor References."""
    _, message = compose(references=())
    assert message["In-Reply-To"] is None
    assert message["References"] is None


def test_compose_bounds_references_keeping_root() -> None:
    """A long thread's References is bounded to 12 ids: the root plus the latest ones."""
    refs = [f"<m{n}.{'x' * 30}@example.org>" for n in range(30)]
    _, message = compose(references=refs)
    kept = message["References"].split()
    assert len(kept) == MAX_REFERENCES == 12
    assert kept == [refs[0], *refs[-11:]]
    assert message["In-Reply-To"] == refs[-1]


def test_compose_drops_duplicate_references() -> None:
    """A reference repeated in the draft appears once."""
    refs = ["<a@example.org>", "<b@example.org>", "<a@example.org>", "<c@example.org>"]
    _, message = compose(references=refs)
    assert message["References"].split() == ["<a@example.org>", "<b@example.org>", "<c@example.org>"]


def test_compose_auto_submitted_headers() -> None:
    """Automatic mail carries Auto-Submitted and X-Auto-Response-Suppress, so responders stay quiet."""
    _, message = compose(auto_submitted="auto-replied")
    assert message["Auto-Submitted"] == "auto-replied"
    assert message["X-Auto-Response-Suppress"] == "All"
    _, default = compose()
    assert default["Auto-Submitted"] == "auto-generated"


def test_compose_human_mail_has_no_auto_submitted() -> None:
    """A mail relaying a person's words has neither Auto-Submitted nor X-Auto-Response-Suppress."""
    _, message = compose(auto_submitted=None)
    assert message["Auto-Submitted"] is None
    assert message["X-Auto-Response-Suppress"] is None


def test_compose_loop_and_ticket_headers() -> None:
    """Every mail carries our loop header; mail about a ticket carries its id."""
    _, message = compose(ticket_id=12)
    assert message[LOOP_HEADER] == SUPPORT
    assert message[TICKET_HEADER] == "12"
    _, no_ticket = compose(ticket_id=None)
    assert no_ticket[LOOP_HEADER] == SUPPORT
    assert no_ticket[TICKET_HEADER] is None


def test_compose_uses_crlf_only() -> None:
    """The bytes use CRLF line endings only: no bare LF, no bare CR."""
    body = "line one\nline two\n\nparagraph ñ\n"
    composed, _ = compose(body=body, attachments=[Part("a.pdf", "application/pdf", b"%PDF\n\r\x00")])
    assert b"\r\n" in composed.raw
    stripped = composed.raw.replace(b"\r\n", b"")
    assert b"\n" not in stripped
    assert b"\r" not in stripped


def test_compose_non_ascii_round_trips() -> None:
    """A non-ASCII subject and body read back identical; the raw bytes stay 7-bit."""
    subject = "[ACME#12] Re: La impresora está en llamas 🔥 — ¿ayuda? " + "ñandú " * 12
    subject = subject.strip()
    body = "Hola Ñandú,\n\nGracias por su paciencia: «ya está».\n€ 12,50 — 日本語\n"
    composed, message = compose(subject=subject, body=body)
    assert composed.raw.isascii()
    assert message["Subject"] == subject
    assert body_of(message) == body


def test_compose_ascii_body_round_trips() -> None:
    """A plain ASCII body reads back identical."""
    body = "Hello,\n\nYour printer is fixed.\n\n-- \nAna\n"
    _, message = compose(body=body)
    assert body_of(message) == body


def test_compose_keeps_lines_within_rfc5322_limit() -> None:
    """A body with a very long ASCII line is encoded so no line of the mail exceeds 998 characters."""
    body = "x" * 2000 + "\n"
    composed, message = compose(body=body)
    assert max(len(line) for line in composed.raw.split(b"\r\n")) <= 998
    assert body_of(message) == body


def test_compose_attachments_survive() -> None:
    """Text and PDF attachments arrive with their filenames and exact bytes."""
    text = "línea uno\r\nline two\n".encode()
    pdf = b"%PDF-1.4\n\x00\xff\xfe binary \r\n%%EOF"
    _, message = compose(
        attachments=[Part("notes.txt", "text/plain", text), Part("factura ñ.pdf", "application/pdf", pdf)]
    )
    found = {str(p.get_filename()): p for p in message.iter_attachments()}
    assert set(found) == {"notes.txt", "factura ñ.pdf"}
    assert isinstance(found["notes.txt"], EmailMessage)
    assert isinstance(found["factura ñ.pdf"], EmailMessage)
    assert found["notes.txt"].get_payload(decode=True) == text
    assert found["factura ñ.pdf"].get_payload(decode=True) == pdf
    assert found["factura ñ.pdf"].get_content_type() == "application/pdf"
    assert body_of(message) == "Hello.\n"


def test_compose_text_attachment_keeps_its_type() -> None:
    """A text/plain attachment is still text/plain when it arrives."""
    _, message = compose(attachments=[Part("notes.txt", "text/plain", b"hello\n")])
    (part,) = message.iter_attachments()
    assert part.get_content_type() == "text/plain"


def test_compose_text_from_a_mail_cannot_inject_headers() -> None:
    """CR/LF in a subject, an attachment's name or its content type (all from a stranger's mail) never
    start a header of ours."""
    composed, message = compose(
        subject="Hello\r\nBcc: victim@example.org",
        attachments=[
            Part("report\r\nX-Evil: 1.pdf", "application/pdf", b"%PDF"),
            Part("a.txt", "text/plain\r\nBcc: victim@example.org", b"a"),
        ],
    )
    lines = composed.raw.split(b"\r\n")
    assert not any(line.startswith((b"Bcc", b"X-Evil")) for line in lines)
    assert message["Subject"] == "Hello  Bcc: victim@example.org"
    attachments = list(message.iter_attachments())
    assert [a.get_filename() for a in attachments] == ["report  X-Evil: 1.pdf", "a.txt"]
    assert attachments[1].get_content_type() == "application/octet-stream"


def test_compose_wire_policy_folds_exactly_like_compat32() -> None:
    """The composer's shortcut for short ASCII header values gives the bytes compat32 gives, for every kind
    of value: short and long, spaces and tabs, encoded-word look-alikes, non-ASCII and Header objects."""
    import random
    from email.header import Header

    from maild.compose import _WIRE

    reference = email.policy.compat32.clone(linesep="\r\n", max_line_length=78)
    rng = random.Random(8)
    alphabet = "abcXYZ019  ,;:<>@.()[]\"'=?_-!/\\\t\r\nñ€"
    names = ["Subject", "To", "From", "References", "Message-ID", "Content-Disposition", "X-Maild-Ticket"]
    values: list[Any] = ["", " ", "=?utf-8?q?x?=", "a  b", " lead", "trail ", Header("Impresora ¡ayuda!", "utf-8")]
    values += ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 120))) for _ in range(5_000)]

    def outcome(fold: Any, name: str, value: Any) -> object:
        try:
            return fold(name, value)
        except Exception as exc:  # compat32 refuses a value whose line break would start a header
            return type(exc)

    shortcut = 0
    for value in values:
        name = rng.choice(names)
        pairs = [(_WIRE.fold_binary, reference.fold_binary)]
        if isinstance(value, str):
            pairs.append((_WIRE.fold, reference.fold))
        for ours, theirs in pairs:
            assert outcome(ours, name, value) == outcome(theirs, name, value), (name, value)
        shortcut += _WIRE._as_is(name, value)
    assert shortcut > 300  # the shortcut was taken, so the equality is not vacuous


def _stdlib_compose(composed: Composed, draft: Draft) -> bytes:
    """The same MIME structure built with email.mime and written by email.generator (how maild composed
    before it wrote bodies itself): text part, then base64 attachments, with the boundary of ``composed``.
    Only the content headers: the others go through the same fold function either way."""
    from email.mime.base import MIMEBase
    from email.mime.multipart import MIMEMultipart
    from email.mime.text import MIMEText

    from maild.compose import _WIRE

    ours = email.message_from_bytes(composed.raw, policy=email.policy.compat32)
    ascii_text = draft.body.isascii() and all(len(line) <= 998 for line in draft.body.splitlines())
    body = draft.body if draft.body.endswith("\n") else draft.body + "\n"
    text = MIMEText(body, "plain", "us-ascii", policy=_WIRE)
    message: Any = text
    if draft.attachments:
        del text["MIME-Version"]
        message = MIMEMultipart("mixed", policy=_WIRE, boundary=ours.get_boundary())
        message.attach(text)
        for part in draft.attachments:
            maintype, _, subtype = part.content_type.partition("/")
            attachment = MIMEBase(maintype, subtype, policy=_WIRE)
            del attachment["MIME-Version"]
            attachment.set_payload(part.data)
            email.encoders.encode_base64(attachment)
            attachment.add_header("Content-Disposition", "attachment", filename=part.filename)
            message.attach(attachment)
    assert ascii_text, "the reference writes 7bit text only"
    return bytes(message.as_bytes(policy=_WIRE))


def test_compose_writes_the_bytes_email_generator_writes() -> None:
    """For ASCII text and any attachments, the composer's own body writer gives exactly the content headers
    and body bytes of email.mime + email.generator; quoted-printable text (whose line splitting differs) decodes to the
    draft's text with its line ends made CRLF, and every mail parses without a defect."""
    import random

    rng = random.Random(5)
    words = ["printer", "fire", "=", "=?utf-8?q?x?=", ".", "From", "--", "\t", " ", "ñandú", "€", "日本", "\x0c"]
    ends = ["\n", "\r\n", "\r", "\n\n", " \n", "\t\n"]
    checked = {"7bit": 0, "quoted-printable": 0, "attachments": 0}
    for _ in range(600):
        chunks = [rng.choice(words if rng.random() < 0.99 else ["x" * rng.randint(70, 1200)]) for _ in range(40)]
        body = "".join(chunk + (rng.choice(ends) if rng.random() < 0.2 else " ") for chunk in chunks)
        if rng.random() < 0.5:
            body = body.encode("ascii", "ignore").decode()
        parts = [
            Part(
                rng.choice(["a.pdf", "factura ñ.pdf", 'say "hi".txt', "x" * 90]),
                rng.choice(["application/pdf", "text/plain", "image/png"]),
                rng.randbytes(rng.randint(0, 3000)),
            )
            for _ in range(rng.choice([0, 0, 1, 2]))
        ]
        composed, message = compose(body=body, attachments=parts, subject=rng.choice(["Hi", "Hola ñandú " * 8]))
        raw = composed.raw
        assert raw.isascii() and b"\n" not in raw.replace(b"\r\n", b"") and b"\r" not in raw.replace(b"\r\n", b"")
        for part in message.walk():
            assert not part.defects, (body, part.defects)
        text_part = message.get_body(preferencelist=("plain",))
        assert isinstance(text_part, EmailMessage)
        encoding = text_part["Content-Transfer-Encoding"]
        lines = re.split(r"\r\n|\r|\n", body)  # any line end, read back as LF; a final one added if missing
        expected = "".join(line + "\n" for line in (lines[:-1] if lines[-1] == "" else lines))
        assert str(text_part.get_content()).replace("\r\n", "\n") == expected
        got = [(a.get_filename(), a.get_content_type(), a.get_payload(decode=True)) for a in message.iter_attachments()]
        assert got == [(p.filename, p.content_type, p.data) for p in parts]
        checked[encoding] += 1
        if encoding == "7bit" and all(len(line) <= 998 for line in body.splitlines()):
            reference = _stdlib_compose(composed, Draft("k", ["customer@example.org"], "s", body, attachments=parts))
            content_headers, _, reference_body = reference.partition(b"\r\n\r\n")
            assert raw.startswith(content_headers + b"\r\nFrom: ")
            assert raw.partition(b"\r\n\r\n")[2] == reference_body
            checked["attachments"] += bool(parts)
    assert min(checked.values()) > 50, checked  # every path was taken, so the equalities are not vacuous


# --- render ---------------------------------------------------------------------------------------------


@pytest.fixture
def renderer() -> Renderer:
    """The shipped templates, English by default."""
    return Renderer("en")


def render_context(**overrides: Any) -> dict[str, Any]:
    """A realistic context holding every variable any template uses."""
    ticket = Ticket(
        id=12,
        subject="Impresora en llamas — ¡ayuda!",
        status="open",
        priority="normal",
        queue="billing",
        category=None,
        requester="customer@example.org",
        assignee="ana@example.com",
        language="es",
        created_at=NOW,
        updated_at=NOW,
        followers=["colleague@example.org"],
    )
    latest = Message(
        id=1,
        ticket_id=12,
        direction="in",
        visibility="public",
        author="customer@example.org",
        message_id="<m@x>",
        subject="s",
        text="Hola",
        created_at=NOW,
        inbound_id=1,
    )
    context = {
        **ticket_vars(ticket, "ACME", "ACME Support"),
        "text": "Hola,\n\nmi impresora está en llamas.\n",
        "agent": Agent(email="ana@example.com", name="Ana", role="agent"),
        "sender": "customer@example.org",
        "sender_name": "Carmen Ruiz",
        "via": "forms@website.example.org",
        "participant": True,
        "attachments": [Attachment(filename="foto.jpg", content_type="image/jpeg", size=2048, sha256="a" * 64)],
        "changes": [("status", "new", "waiting_customer"), ("time", None, "+30m billable")],
        "old_token": "[ACME#7]",
        "reason": "dkim=fail for example.com",
        "errors": [CommandError("#status bogus", 2, "unknown status 'bogus'", "one of new, open")],
        "messages": [latest],
        "agents": {"ana@example.com": "Ana"},
        "left_out": [LeftOut("informe.pdf", 9_000_000, "too large"), LeftOut("viejo.gif", 10, "missing")],
        "latest": latest,
        "assigned_by": Agent(email="luis@example.com", name="Luis", role="agent"),
        "lost": [("customer@example.org", "550 5.1.1 No such user")],
        "bounced": False,
        "mail_subject": "[ACME#12] Re: Impresora en llamas",
        "sent_at": "2026-11-23 10:00 UTC",
        "reassigned": False,
        "new_assignee": None,
        "due": NOW,
        "due_what": "first_response",
        "day": NOW.date(),
        "mine": [Entry("[ACME#12]", ticket, NOW, True)],
        "mine_total": 1,
        "overdue": "1",
        "waiting": [],
        "waiting_total": 0,
        "support_address": "support@example.com",
        "limit": 10,
        "bulk": "bulk: List-Id: <group.example.org>",
        "window": "10m",
        "subject": "Re: Sus tickets del 2026-11-23: abiertos 1",
    }
    context.update(overrides)
    return context


def test_template_sets_match_across_languages(renderer: Renderer) -> None:
    """Every template shipped in English exists in Spanish and vice versa."""
    english = renderer.names("en")
    assert english
    assert renderer.names("es") == english
    assert {"customer.ack", "customer.reply", "agent.new_ticket", "agent.customer_reply"} <= set(english)


@pytest.mark.parametrize("language", ["en", "es"])
def test_every_template_renders(renderer: Renderer, language: str) -> None:
    """Each template renders in both languages with a realistic context, its subject carrying the token (but
    the digest's, which lists many, and the answer to a reply to it, about none)."""
    for name in renderer.names(language):
        rendered = renderer.render(name, language, **render_context())
        if name not in ("agent.digest", "agent.digest_reply"):  # a reply to these must not thread into a ticket
            assert "[ACME#12]" in rendered.subject, name
        assert "\n" not in rendered.subject, name
        assert rendered.body.strip(), name
        assert rendered.body.endswith("\n"), name


def test_template_languages_differ(renderer: Renderer) -> None:
    """The Spanish template is actually Spanish, not a copy of the English one."""
    english = renderer.render("customer.ack", "en", **render_context())
    spanish = renderer.render("customer.ack", "es", **render_context())
    assert english.body != spanish.body
    assert "Hola" in spanish.body


def test_customer_reply_carries_text_and_agent(renderer: Renderer) -> None:
    """The customer reply holds the agent's text and signs with the agent's name and ours."""
    rendered = renderer.render("customer.reply", "en", **render_context(text="Your printer is fixed."))
    assert rendered.subject == "[ACME#12] Re: Impresora en llamas — ¡ayuda!"
    assert "Your printer is fixed." in rendered.body
    assert "Ana, ACME Support" in rendered.body


def test_agent_mail_lists_attachments_and_sender(renderer: Renderer) -> None:
    """Agent notifications name the sender and list the attachments."""
    rendered = renderer.render("agent.new_ticket", "en", **render_context())
    assert "Carmen Ruiz <customer@example.org>" in rendered.body
    assert "foto.jpg (2048 bytes)" in rendered.body
    assert "colleague@example.org" in rendered.body


def test_agent_customer_reply_warns_about_non_participants(renderer: Renderer) -> None:
    """A reply from a non-participant carries the warning; one from a participant does not."""
    warned = renderer.render("agent.customer_reply", "en", **render_context(participant=False, sender_name=""))
    assert "neither the requester nor a follower" in warned.body
    assert "customer@example.org wrote" in warned.body
    plain = renderer.render("agent.customer_reply", "en", **render_context(participant=True))
    assert "neither the requester nor a follower" not in plain.body


@pytest.mark.parametrize(
    ("language", "new_assignee", "said"),
    [
        ("en", None, "and left it unassigned"),
        ("en", "luis", "and took it over from you"),
        ("en", "pat", "and assigned it to Pat <pat@example.com>"),
        ("es", None, "y lo ha dejado sin asignar"),
        ("es", "luis", "y se ha quedado con él"),
        ("es", "pat", "y se lo ha asignado a Pat <pat@example.com>"),
    ],
)
def test_colleague_reply_says_where_the_ticket_went(
    renderer: Renderer, language: str, new_assignee: str | None, said: str
) -> None:
    """The copy to whoever had the ticket says whether the colleague kept it, passed it on or left it
    unassigned; without a change it says the ticket is still theirs."""
    agents = {
        "luis": Agent(email="luis@example.com", name="Luis", role="agent"),
        "pat": Agent(email="pat@example.com", name="Pat", role="agent"),
    }
    moved = render_context(sender="luis@example.com", reassigned=True, new_assignee=agents.get(new_assignee or ""))
    assert said in renderer.render("agent.colleague_reply", language, **moved).body
    kept = renderer.render("agent.colleague_reply", language, **render_context(sender="luis@example.com"))
    assert ("which is assigned to you" if language == "en" else "que tiene usted asignado") in kept.body


def test_empty_text_and_subject_have_placeholders(renderer: Renderer) -> None:
    """An empty mail and subject render as "(no text)" and "(no subject)" rather than blanks."""
    context = render_context(text="  \n", attachments=[])
    context["ticket"].subject = ""
    rendered = renderer.render("agent.new_ticket", "en", **context)
    assert rendered.subject == "[ACME#12] New ticket: (no subject)"
    assert "(no text)" in rendered.body
    assert "Attachments" not in rendered.body


def test_missing_variable_raises(renderer: Renderer) -> None:
    """StrictUndefined: a template variable left out of the context is an error, not a blank."""
    context = render_context()
    del context["agent"]
    with pytest.raises(jinja2.UndefinedError):
        renderer.render("customer.reply", "en", **context)


def test_unknown_language_falls_back_to_default(renderer: Renderer) -> None:
    """A language without templates uses the default language's."""
    assert renderer.render("customer.ack", "fr", **render_context()) == renderer.render(
        "customer.ack", "en", **render_context()
    )


def test_unknown_template_is_a_template_error(renderer: Renderer) -> None:
    """Asking for a template that does not exist raises TemplateError naming it."""
    with pytest.raises(TemplateError, match=r"no\.such"):
        renderer.render("no.such", "en", **render_context())


def test_template_without_subject_line_is_refused(tmp_path: Path) -> None:
    """A template that does not start with "Subject:" and a blank line is a TemplateError."""
    (tmp_path / "en").mkdir()
    (tmp_path / "en" / "broken.txt").write_text("Hello {{ token }}\n", encoding="utf-8")
    with pytest.raises(TemplateError, match="Subject"):
        Renderer("en", tmp_path).render("broken", "en", token="[ACME#1]")


# --- blobs ----------------------------------------------------------------------------------------------


def test_blob_put_returns_sha256(tmp_path: Path) -> None:
    """put returns the content's sha256, which get turns back into the same bytes."""
    store = BlobStore(tmp_path / "blobs")
    data = b"%PDF-1.4\n\x00\xff binary"
    digest = store.put(data)
    assert digest == hashlib.sha256(data).hexdigest()
    assert store.get(digest) == data


def test_blob_same_content_stored_once(tmp_path: Path) -> None:
    """The same content put twice is one file, and no temporary file is left behind."""
    store = BlobStore(tmp_path / "blobs")
    first = store.put(b"same bytes")
    second = store.put(b"same bytes")
    other = store.put(b"other bytes")
    assert first == second != other
    files = sorted(p for p in (tmp_path / "blobs").rglob("*") if p.is_file())
    assert files == sorted([store.path(first), store.path(other)])


def test_blob_empty_content(tmp_path: Path) -> None:
    """An empty attachment is stored and read back as empty bytes."""
    store = BlobStore(tmp_path / "blobs")
    assert store.get(store.put(b"")) == b""


def test_blob_path_is_inside_root(tmp_path: Path) -> None:
    """A blob lives under the root, fanned out by the first two hex digits."""
    store = BlobStore(tmp_path / "blobs")
    digest = store.put(b"x")
    assert store.path(digest) == tmp_path / "blobs" / digest[:2] / digest[2:]


@pytest.mark.parametrize(
    "name",
    ["../../etc/passwd", "invoice.pdf", "", "a" * 63, "a" * 65, "A" * 64, "g" * 64, "../" + "a" * 61, "a" * 63 + "/"],
)
def test_blob_refuses_non_digest_names(tmp_path: Path, name: str) -> None:
    """Only a lower-case 64-hex-digit name is accepted, so names from mail never become paths."""
    store = BlobStore(tmp_path / "blobs")
    with pytest.raises(ValueError, match="not a sha256 digest"):
        store.get(name)
    with pytest.raises(ValueError, match="not a sha256 digest"):
        store.path(name)


def _store_test(tmp_path: Path, body: Callable[[Store], Awaitable[None]]) -> None:
    async def run() -> None:
        store = await Store.open(tmp_path / "maild.sqlite3")
        try:
            await body(store)
        finally:
            await store.close()

    asyncio.run(run())


def test_status_counts_are_exact_beyond_the_listing_limit(tmp_path: Path) -> None:
    """systemctl status counts every queued mail and pending message, not the first thousand listed."""

    async def body(store: Store) -> None:
        async with store.transaction() as tx:
            for n in range(1005):
                await tx.enqueue_mail(
                    ticket_id=None, kind="ack", message_id=f"<{n}@x>", mail_from="s@x", rcpt_to=["c@x"], raw=b"x"
                )
            for n in range(3):
                await tx.insert_inbound(Envelope("smtp", "c@x", ("s@x",), "127.0.0.1"), f"k{n}", b"raw")
        async with store.snapshot() as tx:
            assert await tx.count_mail_in_state("queued") == 1005
            assert await tx.count_mail_in_state("sent") == 0
            assert await tx.count_in_state("pending") == 3

    _store_test(tmp_path, body)


def test_waiting_messages_are_batched_in_order_and_large_ones_alone() -> None:
    small, large = BATCH_BYTES, BATCH_BYTES + 1
    waiting = [(1, small), (2, small), (3, large), (4, small), (5, 10), (6, 10), (7, 10), (8, 10), (9, large)]
    assert len(waiting) >= BATCH_BACKLOG
    assert _batches(waiting) == [[1, 2], [3], [4, 5, 6, 7], [8], [9]]
    few = waiting[: BATCH_BACKLOG - 1]  # no backlog: each commits alone, at once
    assert _batches(few) == [[inbound_id] for inbound_id, _ in few]
    assert _batches([]) == []


def test_unsent_mail_is_recorded_per_batch_and_sent_mail_at_once(tmp_path: Path) -> None:
    """A mail sent is committed before the next is tried (a crash re-sends at most one); mails that went
    nowhere wait for the next sent mail or the batch's end: one commit per batch while the smarthost is down."""
    settings = Outbound("smtp", "127.0.0.1", 25, "none", tmp_path, *(timedelta(hours=1),) * 4)
    outcomes = {"<1@x>": "451", "<2@x>": "451", "<3@x>": "250", "<4@x>": "550", "<5@x>": "451"}

    class Scripted:
        async def deliver(self, mail: OutboundMail) -> Delivery:
            code = outcomes[mail.message_id]
            if code == "250":
                return Delivery(accepted=list(mail.rcpt_to))
            errors = {rcpt: f"{code} no" for rcpt in mail.rcpt_to}
            return Delivery(permanent=errors) if code == "550" else Delivery(temporary=errors)

        async def end_batch(self) -> None:
            pass

    async def body(store: Store) -> None:
        async with store.transaction() as tx:
            for message_id in outcomes:
                await tx.enqueue_mail(
                    ticket_id=None, kind="ack", message_id=message_id, mail_from="s@x", rcpt_to=["c@x"], raw=b"x"
                )
        commits: list[dict[str, str]] = []
        transaction = store.transaction

        @contextlib.asynccontextmanager
        async def counted(**kwargs: Any) -> AsyncIterator[Any]:
            async with transaction(**kwargs) as tx:
                yield tx
            async with store.snapshot() as view:
                rows = await view.all("SELECT message_id, state FROM outbox ORDER BY id")
            commits.append({row["message_id"]: row["state"] for row in rows})

        store.transaction = counted  # type: ignore[method-assign]
        worker = OutboundWorker(store, settings, Scripted(), asyncio.Event(), store.clock)
        assert await worker.send_due() == 5
        claimed, with_the_sent_one, at_the_end = commits
        assert set(claimed.values()) == {"sending"}
        assert with_the_sent_one == {
            "<1@x>": "queued",
            "<2@x>": "queued",
            "<3@x>": "sent",
            "<4@x>": "sending",
            "<5@x>": "sending",
        }
        assert at_the_end == {**with_the_sent_one, "<4@x>": "failed", "<5@x>": "queued"}

    _store_test(tmp_path, body)


def test_a_reused_message_id_is_a_duplicate_only_with_the_same_body(tmp_path: Path) -> None:
    """Under a Message-ID already spooled, the same body (line endings and added header fields aside) is a
    duplicate and a different body is kept shunted, once; an erased mail's key keeps a copy of it out."""
    envelope = Envelope("smtp", "c@x", ("s@x",), "127.0.0.1")
    first = b"Message-ID: <m@x>\r\nSubject: one\r\n\r\nIt burns.\r\n"
    other = b"Message-ID: <m@x>\r\nSubject: two\r\n\r\nIt freezes.\r\n"

    async def body(store: Store) -> None:
        async with store.transaction() as tx:
            assert await spool(tx, envelope, first) == Spooled(1, False)
            relayed = b"X-Spam-Status: No\nMessage-ID: <m@x>\nSubject: one\n\nIt burns.\n"
            assert await spool(tx, envelope, relayed) == Spooled(None, True)
            kept = await spool(tx, envelope, other)
            assert (kept.inbound_id, kept.duplicate) == (2, False) and kept.set_aside
            assert kept.set_aside.startswith("Message-ID <m@x> already taken by inbound 1, whose body differs")
            assert await spool(tx, envelope, other) == Spooled(None, True)
            await tx.run("UPDATE inbound SET raw = x'', state = 'erased' WHERE id = 1")
            erased_again = await spool(tx, envelope, b"Message-ID: <m@x>\r\n\r\nAnything.\r\n")
            assert erased_again == Spooled(None, True)
            inbound = await tx.get_inbound(2)
        assert inbound is not None and (inbound.state, inbound.step) == ("shunted", "spool")

    _store_test(tmp_path, body)


def test_a_write_transaction_waiting_for_another_process_leaves_the_event_loop_free(tmp_path: Path) -> None:
    """BEGIN IMMEDIATE waits for SQLite's lock in aiosqlite's thread: while the CLI (another connection)
    holds the write lock, the daemon's other coroutines keep running; the transaction then goes through,
    and a transaction that raises leaves nothing of what its inline statements wrote."""

    async def body(store: Store) -> None:
        other = sqlite3.connect(tmp_path / "maild.sqlite3", isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        envelope = Envelope("smtp", "c@x", ("s@x",), "127.0.0.1")

        async def spool() -> int | None:
            async with store.transaction() as tx:
                return await tx.insert_inbound(envelope, "held", b"raw")

        waiting = asyncio.create_task(spool())
        ticks = 0
        for _ in range(20):  # the loop stays free while the transaction waits for the lock
            await asyncio.sleep(0.01)
            ticks += 1
        assert ticks == 20 and not waiting.done()
        other.execute("COMMIT")
        assert await asyncio.wait_for(waiting, 10) is not None
        with pytest.raises(RuntimeError):
            async with store.transaction() as tx:
                await tx.insert_inbound(envelope, "rolled-back", b"raw")
                raise RuntimeError("a step failed")
        keys = [row[0] for row in other.execute("SELECT dedupe_key FROM inbound ORDER BY id")]
        assert keys == ["held"]
        other.close()

    _store_test(tmp_path, body)


@pytest.mark.parametrize(("mails", "step_seconds"), [(10, 0), (100, 0), (100, 1)])
def test_thread_chain_of_a_long_ticket_reads_a_window_and_references_stay_the_same(
    tmp_path: Path, mails: int, step_seconds: int
) -> None:
    """thread_chain reads the root and the newest of each kind only (on a short ticket: all of it), and the
    References a composed mail keeps are those of the whole chain, also when many share a second."""
    from maild.store.outbox import CHAIN_LATEST

    start = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
    calls = iter(range(1_000_000))

    def clock() -> datetime:
        return start + timedelta(seconds=step_seconds * next(calls))

    async def run() -> None:
        store = await Store.open(tmp_path / "maild.sqlite3", clock=clock)
        try:
            async with store.transaction() as tx:
                ticket = await tx.create_ticket(
                    subject="s", requester="c@x", queue="default", priority="normal", language="en", status="open"
                )
                for n in range(mails):
                    await tx.add_message(
                        ticket_id=ticket.id,
                        inbound_id=None,
                        direction="in",
                        visibility="public" if n % 7 else "internal",
                        author="c@x",
                        message_id=f"<in{n}@x>",
                        subject="s",
                        text="t",
                    )
                    for kind in ("customer.reply", "agent.notice") if n % 3 else ("agent.notice",):
                        await tx.enqueue_mail(
                            ticket_id=ticket.id,
                            kind=kind,
                            message_id=f"<{kind}{n}@x>",
                            mail_from="s@x",
                            rcpt_to=["c@x"],
                            raw=b"x" * 5000,
                        )
            async with store.snapshot() as tx:
                for audience in ("customer", "agent"):
                    chain = await tx.thread_chain(ticket.id, audience)
                    full = [
                        str(row[0])
                        for row in await tx.all(
                            "SELECT message_id, created_at, 0 AS src, id FROM messages WHERE ticket_id = ?"
                            " AND direction = 'in' AND visibility = 'public' UNION ALL SELECT message_id,"
                            " created_at, 1 AS src, id FROM outbox WHERE ticket_id = ? AND kind LIKE ?"
                            " ORDER BY 2, 3, 4",
                            (ticket.id, ticket.id, f"{audience}.%"),
                        )
                    ]
                    if mails > 10:  # more than CHAIN_LATEST of a kind: the window
                        assert len(chain) <= 2 * (CHAIN_LATEST + 1) < len(full)
                    else:
                        assert chain == full
                    # <in0@x> is internal; within one second a customer's mail comes before what we sent.
                    root = "<in1@x>" if audience == "customer" or not step_seconds else "<agent.notice0@x>"
                    assert chain[0] == full[0] == root
                    assert _trim(chain) == _trim(full)
                    assert len(_trim(chain)) == min(MAX_REFERENCES, len(full))
        finally:
            await store.close()

    asyncio.run(run())


def test_a_store_of_an_older_schema_is_migrated_and_keeps_its_tickets(tmp_path: Path) -> None:
    """A store made by an earlier maild (schema 5) opens under this one: migrated in place, its tickets
    read back, not merged, the new merged_into column takes a value, and the SLA pauses so far (every hour
    counted then) carry over as the customer's side of the clock."""
    from maild.store.schema import MIGRATIONS

    path = tmp_path / "maild.sqlite3"
    old = sqlite3.connect(path, isolation_level=None)
    for number, script in enumerate(MIGRATIONS[:5], start=1):
        old.executescript(f"BEGIN;\n{script}\nPRAGMA user_version = {number};\nCOMMIT;")
    old.execute(
        "INSERT INTO tickets (subject, status, priority, queue, requester, language, created_at, updated_at,"
        " customer_seconds) VALUES ('Old one', 'open', 'normal', 'default', 'c@example.org', 'en', ?1, ?1, 120)",
        (NOW.isoformat(),),
    )
    old.close()

    async def body(store: Store) -> None:
        async with store.transaction() as tx:
            [row] = await tx.all("PRAGMA user_version")
            assert row[0] == len(MIGRATIONS)
            ticket = await tx.get_ticket(1)
            assert ticket is not None and ticket.subject == "Old one" and ticket.merged_into is None
            assert ticket.sla_paused_seconds == ticket.customer_seconds == 120
            other = await tx.create_ticket(
                subject="New one",
                requester="c@example.org",
                queue="default",
                priority="normal",
                language="en",
                status="new",
            )
            await tx.update_ticket(ticket, "ana@example.com", "test", merged_into=other.id)
            again = await tx.get_ticket(1)
            assert again is not None and again.merged_into == other.id

    _store_test(tmp_path, body)


def test_a_relay_answers_the_last_customer_mail_the_agent_referenced() -> None:
    """`relay.answered` is the last referenced customer-thread id; ids outside the thread (notices) are
    ignored, and a mail referencing nothing answers nothing in particular (the thread's newest, composed)."""
    from maild.handlers.relay import answered

    chain = ["<m1>", "<m2>", "<ack>"]
    assert answered(chain, ("<m1>", "<n1>", "<m2>"), ("<n2>",)) == "<m2>"
    assert answered(chain, ("<m1>", "<n1>"), ("<n1>",)) == "<m1>"
    assert answered(chain, (), ("<elsewhere>",)) is None


def test_in_reply_to_names_what_a_mail_answers_and_ends_its_references() -> None:
    """A draft's in_reply_to becomes In-Reply-To and the last of References (moved there if it was in the
    chain, kept past trimming); without it the chain's newest is In-Reply-To."""
    composer = Composer("support@example.com", "ACME Support", lambda: NOW)
    chain = [f"<r{n}@x>" for n in range(20)]

    def headers(**extra: Any) -> tuple[str, list[str]]:
        raw = composer.compose(Draft(kind="k", to=["c@x"], subject="s", body="b", references=chain, **extra), 1).raw
        parsed = email.message_from_bytes(raw)
        return str(parsed["In-Reply-To"]), str(parsed["References"]).split()

    assert headers() == ("<r19@x>", _trim(chain))
    reply_to, references = headers(in_reply_to="<r3@x>")
    assert reply_to == references[-1] == "<r3@x>" and references.count("<r3@x>") == 1
    assert len(references) == MAX_REFERENCES and references[0] == "<r0@x>"
    assert headers(in_reply_to="<new@x>")[1][-2:] == ["<r19@x>", "<new@x>"]


def test_instants_are_written_in_the_desks_time_zone(tmp_path: Path) -> None:
    """The `when` filter writes an instant as the desk reads it, named with its zone (summer time too), and
    the daemon's renderer takes the zone from `[maild] timezone`."""
    madrid = Renderer("en", timezone="Europe/Madrid")
    assert madrid.when(datetime(2026, 12, 3, 9, tzinfo=UTC)) == "2026-12-03 10:00 CET"
    assert madrid.when(datetime(2026, 7, 3, 9, tzinfo=UTC)) == "2026-07-03 11:00 CEST"
    assert Renderer("en").when(datetime(2026, 12, 3, 9, tzinfo=UTC)) == "2026-12-03 09:00 UTC"
    path = tmp_path / "maild.toml"
    path.write_text('[maild]\ntimezone = "America/Mexico_City"\n[mail]\nsupport_address = "s@example.com"\n')
    renderer = build_services(load_config(path), lambda: NOW).renderer
    assert renderer.when(datetime(2026, 12, 3, 9, tzinfo=UTC)) == "2026-12-03 03:00 CST"
    breach = renderer.render("agent.sla_breach", "en", **render_context(ticket=_breached()))
    assert "Resolution is due at 2026-11-23 05:00 CST." in breach.body


def _breached() -> Ticket:
    ticket = render_context()["ticket"]
    ticket.due_at = datetime(2026, 11, 23, 11, tzinfo=UTC)
    return ticket


def test_a_transaction_cancelled_while_it_waits_to_begin_leaves_the_store_usable(tmp_path: Path) -> None:
    """A writer cancelled while its BEGIN waits for another process's lock (an IMAP session whose connection
    dropped) must not leave the connection inside a transaction: the next writer commits as usual."""

    async def body(store: Store) -> None:
        other = sqlite3.connect(tmp_path / "maild.sqlite3", isolation_level=None)
        other.execute("BEGIN IMMEDIATE")  # as a CLI command holding the write lock would

        async def write() -> None:
            async with store.transaction() as tx:
                await tx.set_imap_position("INBOX", 1, 5)

        writer = asyncio.create_task(write())
        await asyncio.sleep(0.3)  # its BEGIN IMMEDIATE now waits in aiosqlite's thread
        writer.cancel()
        await asyncio.sleep(0.1)
        other.execute("COMMIT")
        with pytest.raises(asyncio.CancelledError):
            await writer
        async with store.transaction() as tx:
            await tx.set_imap_position("INBOX", 1, 7)
        assert other.execute("SELECT uidvalidity, last_uid FROM imap_state").fetchall() == [(1, 7)]
        other.close()

    _store_test(tmp_path, body)


def test_imap_bodies_are_fetched_in_runs_bounded_by_size() -> None:
    """A backlog of large messages is fetched a few at a time (at most the limit in one round trip), and a
    message larger than the limit alone: memory is bounded by the limit, not by the batch."""
    from maild.intake.imap import _by_size

    sizes = {1: 10, 2: 10, 3: 25, 4: 5, 5: 40, 6: 1}
    assert list(_by_size([1, 2, 3, 4, 5, 6], sizes, 30)) == [[1, 2], [3, 4], [5], [6]]
    assert list(_by_size([], sizes, 30)) == []


@pytest.mark.parametrize(
    ("language", "late_line", "breached_line"),
    [("en", "OVERDUE since", "OVERDUE, due"), ("es", "VENCIDO desde el", "VENCIDO, vence el")],
)
def test_the_digest_says_since_only_for_a_date_past(
    renderer: Renderer, language: str, late_line: str, breached_line: str
) -> None:
    """A ticket whose first response was late is overdue, but its resolution due in days is no "overdue
    since" that future date: the line says when it is due."""
    base = render_context()
    ticket = base["mine"][0].ticket
    late = renderer.render(
        "agent.digest", language, **render_context(mine=[Entry("[ACME#12]", ticket, NOW, True, True)])
    )
    ahead = NOW + timedelta(days=3)
    breached = renderer.render(
        "agent.digest", language, **render_context(mine=[Entry("[ACME#12]", ticket, ahead, True, False)])
    )
    assert late_line in late.body
    assert breached_line in breached.body and late_line not in breached.body


def test_every_mail_to_agents_starts_with_the_reply_marker(renderer: Renderer) -> None:
    """Each agent.* template, in each language, renders with the marker its reply is cut at as first line;
    mail to customers has none."""
    from maild.mailtext import REPLY_MARKER

    for language in ("en", "es"):
        for name in renderer.names(language):
            first = renderer.render(name, language, **render_context()).body.splitlines()[0]
            assert bool(REPLY_MARKER.fullmatch(first)) == name.startswith("agent."), (language, name)


def test_the_reply_markers_ship_as_template_files_an_override_cannot_replace(tmp_path: Path) -> None:
    """Each shipped language's marker comes from its ``reply_marker.line`` and is one `REPLY_MARKER` finds;
    a ``templates_dir`` with its own file of that name changes nothing."""
    from maild.mailtext import REPLY_MARKER
    from maild.render import REPLY_MARKERS, TEMPLATE_DIR

    assert set(REPLY_MARKERS) == {"en", "es"}
    for language, marker in REPLY_MARKERS.items():
        assert (TEMPLATE_DIR / language / "reply_marker.line").read_text(encoding="utf-8").strip() == marker
        assert REPLY_MARKER.fullmatch(marker), language
    (tmp_path / "es").mkdir()
    (tmp_path / "es" / "reply_marker.line").write_text("Escriba arriba\n", encoding="utf-8")
    body = Renderer("es", overrides=tmp_path).render("agent.held", "es", **render_context()).body
    assert body.splitlines()[0] == REPLY_MARKERS["es"] == "##- Responda encima de esta línea -##"


def test_an_agents_reply_ends_at_the_marker_and_the_quote_header_above_it() -> None:
    """Outlook's quote header in a language the header patterns do not know (Turkish), with no ">" on the
    quoted lines: the new text ends above it, and a signature above the rule is kept."""
    from maild.mailtext import new_text

    reply = (
        "Done, I refunded it.\n\nAna\nPhone: 555 0100\n________________________________\n"
        "Kimden: ACME Support <support@example.com>\nGönderildi: 3 Aralık 2026 Perşembe 10:00\n"
        "Kime: ana@example.com\nKonu: [ACME#1] Re: Refund\n\n##- Reply above this line -##\n\n"
        "mallory@evil.example wrote on [ACME#1] (status: open):\n\n#forward mallory@evil.example\n"
    )
    assert new_text(reply, None) == "Done, I refunded it.\n\nAna\nPhone: 555 0100"
    quoted = "> ##- Reply above this line -##\n> Old text\nMy answer below the quote."
    assert new_text(quoted, None) == "My answer below the quote."


def test_compose_leaves_out_message_ids_that_are_not_ascii() -> None:
    """A customer's non-ASCII Message-ID cannot be a msg-id in our headers (RFC 2047 words would break the
    threading they are for): it is left out, the others kept."""
    _, message = compose(references=["<root@example.org>", "<toño@example.es>"])
    assert message["References"] == "<root@example.org>" and message["In-Reply-To"] == "<root@example.org>"


def test_compose_writes_a_nul_quoted_printable() -> None:
    """A NUL from a broken mail is no 7bit data (RFC 2045 2.7): the body goes quoted-printable (=00)."""
    composed, message = compose(body="Before\x00after\x08.\n")
    assert b"Content-Transfer-Encoding: quoted-printable" in composed.raw and b"=00" in composed.raw
    assert body_of(message) == "Before\x00after\x08.\n"


def test_a_text_attachment_keeps_its_charset() -> None:
    """A relayed text file says its charset, or clients read its UTF-8 as US-ASCII."""
    data = "日本語のテキスト\n".encode()
    _, message = compose(attachments=[Part("notes.txt", "text/plain", data, charset="utf-8")])
    [attached] = list(message.iter_attachments())
    assert attached.get_content_charset() == "utf-8" and attached.get_payload(decode=True) == data


def test_a_mail_with_two_subjects_is_read_with_the_first() -> None:
    """mail-parser gives a repeated Subject as a list: the ticket takes the first, as mail readers show."""
    raw = b"From: a@example.org\r\nSubject: Testing outlook\r\nSubject: Another PDF\r\n\r\nbody\r\n"
    assert parse_mail(raw, "<s@x>").subject == "Testing outlook"


def test_a_forward_carries_files_up_to_its_budget_and_names_the_rest() -> None:
    """Files go along in the thread's order while they fit in `FORWARD_FILE_BYTES` together; a file that no
    longer fits is named as too large, and a later smaller one still goes."""
    from types import SimpleNamespace

    from maild.handlers.forward import FORWARD_FILE_BYTES, LeftOut, _files

    sizes = {"a" * 64: FORWARD_FILE_BYTES - 100, "b" * 64: 200, "c" * 64: 100, "d" * 64: FORWARD_FILE_BYTES + 1}
    blobs = SimpleNamespace(get=lambda digest: b"x" * sizes[digest])
    files = [Attachment(f"{d[0]}.bin", "application/octet-stream", size, d) for d, size in sizes.items()]
    parts, left_out = asyncio.run(_files(SimpleNamespace(blobs=blobs), files))  # type: ignore[arg-type]
    assert [p.filename for p in parts] == ["a.bin", "c.bin"]
    assert left_out == [LeftOut("b.bin", 200, "too large"), LeftOut("d.bin", FORWARD_FILE_BYTES + 1, "too large")]


def test_library_log_lines_are_json_like_ours() -> None:
    """A library's stdlib warning (aiosmtpd, aiosqlite) is one JSON object on one line, with its logger, level
    and traceback; mail-parser's notes on MIME types it leaves alone are not logged."""
    import io
    import json
    import logging

    import structlog

    from maild.logs import configure_logging

    root, saved = logging.getLogger(), structlog.get_config()
    handlers, level = root.handlers[:], root.level
    out = io.StringIO()
    try:
        configure_logging("info", out)
        logging.getLogger("aiosmtpd.smtp").warning("client %s went away", "127.0.0.1")
        logging.getLogger("mailparser.core").warning("Email content 'rfc822-headers' not handled")
        try:
            raise RuntimeError("disk on fire")
        except RuntimeError:
            logging.getLogger("aiosqlite").exception("statement failed")
    finally:
        root.handlers[:], root.level = handlers, level
        structlog.configure(**saved)
    first, second = (json.loads(line) for line in out.getvalue().splitlines())
    assert (first["event"], first["level"], first["logger"]) == (
        "client 127.0.0.1 went away",
        "warning",
        "aiosmtpd.smtp",
    )
    assert second["logger"] == "aiosqlite" and "RuntimeError: disk on fire" in second["exception"]
