"""Handlers called directly with literal messages over a temporary store (STYLE level one and two)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

from maild.app import build_services
from maild.config import Config, parse_config
from maild.handlers.base import Context, Stop
from maild.handlers.identify import Identify
from maild.handlers.loop_guard import LoopGuard
from maild.handlers.parse import Parse
from maild.handlers.thread import Thread
from maild.models import Envelope, Inbound
from maild.store import Store, Tx
from tests.helpers import CUSTOMER, SUPPORT, make_mail

T = TypeVar("T")


def config_for(tmp_path: Path) -> Config:
    return parse_config(
        {
            "maild": {"data_dir": str(tmp_path)},
            "mail": {"support_address": SUPPORT, "ticket_prefix": "ACME"},
            "agents": [{"email": "ana@example.com"}],
        },
        tmp_path,
    )


def with_tx(tmp_path: Path, body: Callable[[Tx, Config], Awaitable[T]]) -> T:
    config = config_for(tmp_path)

    async def scenario() -> T:
        store = await Store.open(config.db_path)
        try:
            async with store.transaction() as tx:
                return await body(tx, config)
        finally:
            await store.close()

    return asyncio.run(scenario())


def context(raw: bytes, mail_from: str = CUSTOMER) -> Context:
    from datetime import UTC, datetime

    envelope = Envelope(source="test", mail_from=mail_from, rcpt_to=(SUPPORT,))
    return Context(
        inbound=Inbound(
            id=1, received_at=datetime.now(UTC), envelope=envelope, dedupe_key="k", raw=raw, state="pending"
        )
    )


def test_loop_guard_marks_machine_mail_and_passes_people(tmp_path: Path) -> None:
    """Auto-replies and bounces are marked automatic with a reason; a person's mail is not."""

    async def body(tx: Tx, config: Config) -> list[str | None]:
        services = build_services(config, tx.clock)
        found = []
        for raw, envelope_from in (
            (make_mail(headers={"Auto-Submitted": "auto-replied"}), CUSTOMER),
            (make_mail(sender="MAILER-DAEMON@mx.example.org"), ""),
            (make_mail(), CUSTOMER),
        ):
            ctx = context(raw, envelope_from)
            await Parse(services).prepare(ctx)
            await LoopGuard(services).process(ctx, tx)
            found.append(ctx.automatic)
        return found

    auto_reply, bounce, person = with_tx(tmp_path, body)
    assert auto_reply is not None and auto_reply.startswith("auto_reply")
    assert bounce is not None and bounce.startswith("bounce")
    assert person is None


def test_loop_guard_stops_our_own_mail(tmp_path: Path) -> None:
    """A mail carrying our loop header is stopped with a reason, before anything else happens."""

    async def body(tx: Tx, config: Config) -> object:
        services = build_services(config, tx.clock)
        ctx = context(make_mail(headers={"X-Maild-Loop": SUPPORT}))
        await Parse(services).prepare(ctx)
        return await LoopGuard(services).process(ctx, tx)

    outcome = with_tx(tmp_path, body)
    assert isinstance(outcome, Stop) and "loop" in outcome.reason


def test_identify_recognises_agents_case_insensitively(tmp_path: Path) -> None:
    """The From address decides who is an agent, whatever its case."""

    async def body(tx: Tx, config: Config) -> Context:
        services = build_services(config, tx.clock)
        ctx = context(make_mail(sender="Ana <ANA@Example.COM>"))
        await Parse(services).prepare(ctx)
        await Identify(services).process(ctx, tx)
        return ctx

    ctx = with_tx(tmp_path, body)
    assert ctx.sender == "ana@example.com"
    assert ctx.agent is not None and ctx.agent.email == "ana@example.com"


def test_thread_prefers_the_token_and_ignores_unknown_ones(tmp_path: Path) -> None:
    """A token naming an existing ticket wins over References; one naming no ticket is ignored."""

    async def body(tx: Tx, config: Config) -> tuple[int | None, int | None]:
        services = build_services(config, tx.clock)
        first = await tx.create_ticket(
            subject="a", requester=CUSTOMER, queue="default", priority="normal", language="en", status="new"
        )
        second = await tx.create_ticket(
            subject="b", requester=CUSTOMER, queue="default", priority="normal", language="en", status="new"
        )
        await tx.add_thread_id("<old@x>", first.id, "in")
        found = []
        for subject in (f"Re: [ACME#{second.id}]", "Re: [ACME#77]"):
            ctx = context(make_mail(subject=subject, references=["<old@x>"]))
            await Parse(services).prepare(ctx)
            await Thread(services).process(ctx, tx)
            found.append(ctx.ticket.id if ctx.ticket else None)
        return found[0], found[1]

    by_token, by_reference = with_tx(tmp_path, body)
    assert by_token == 2
    assert by_reference == 1


def test_parse_mail_refuses_hostile_shapes_and_reads_odd_encodings() -> None:
    """Huge header blocks, too many or too deeply nested parts are refused with a reason; RFC 2047/2231
    names, Latin-1 and ISO-2022-JP bodies, bare CR line ends and a missing Message-ID all decode."""
    import pytest

    from maild.mime import MAX_MIME_DEPTH, MAX_MIME_PARTS, UnparseableMail, parse_mail

    with pytest.raises(UnparseableMail, match="header block"):
        parse_mail(b"X-Junk: " + b"a" * 300_000 + b"\r\n\r\nbody", "<f@x>")
    many = b"".join(b"--B\r\nContent-Type: text/plain\r\n\r\nx\r\n" for _ in range(MAX_MIME_PARTS + 5))
    with pytest.raises(UnparseableMail, match="MIME parts"):
        parse_mail(b'Content-Type: multipart/mixed; boundary="B"\r\n\r\n' + many + b"--B--\r\n", "<f@x>")
    deep = b"".join(
        f'Content-Type: multipart/mixed; boundary="b{n}"\r\n\r\n--b{n}\r\n'.encode() for n in range(MAX_MIME_DEPTH + 5)
    )
    with pytest.raises(UnparseableMail, match=r"nesting|MIME|Recursion"):
        parse_mail(deep + b"Content-Type: text/plain\r\n\r\nx\r\n", "<f@x>")
    latin1 = (
        b"From: =?iso-8859-1?q?Jos=E9?= <jose@example.org>\r\nSubject: =?iso-8859-1?q?Se=F1al?=\r\n"
        b'Content-Type: multipart/mixed; boundary="B"\r\n\r\n--B\r\n'
        b"Content-Type: text/plain; charset=windows-1252\r\n\r\nCaf\xe9 \x80 5\r\n--B\r\n"
        b"Content-Type: application/pdf\r\nContent-Disposition: attachment; filename*=utf-8''na%C3%AFve.pdf\r\n"
        b"\r\n%PDF\r\n--B--\r\n"
    )
    mail = parse_mail(latin1, "<fallback@x>")
    assert (mail.from_name, mail.subject, mail.message_id) == ("José", "Señal", "<fallback@x>")
    assert "Café €" in mail.text and mail.attachments[0].filename == "naïve.pdf"
    jis = "こんにちは".encode("iso-2022-jp")
    mail = parse_mail(
        b"From: a@example.org\rSubject: x\rContent-Type: text/plain; charset=iso-2022-jp\r\r" + jis, "<f@x>"
    )
    assert mail.text == "こんにちは" and mail.from_address == "a@example.org"


def test_without_received_drops_the_trace_fields_and_nothing_else() -> None:
    """Received fields of the header block go, folded lines and all, whatever their case; X-Received, other
    fields, and Received lines in the body or after the header block's end stay byte for byte."""
    from maild.mime import without_received

    head = (
        b"Received: from mx.example.com\r\n\tby mail.example.com with LMTP\r\n"
        b"From: a@example.org\r\n"
        b"RECEIVED: by x; Mon, 3 Mar 2025 10:00:00 +0100\r\n"
        b"X-Received: by 2002:a05 with SMTP id 1;\r\n        Mon, 03 Mar 2025 01:00:00 -0800\r\n"
        b"Subject: hello\r\n  folded\r\n"
        b"received: from y\r\n"
    )
    body = b"\r\nReceived: in the body\r\n"
    assert without_received(head + body) == (
        b"From: a@example.org\r\n"
        b"X-Received: by 2002:a05 with SMTP id 1;\r\n        Mon, 03 Mar 2025 01:00:00 -0800\r\n"
        b"Subject: hello\r\n  folded\r\n" + body
    )
    assert without_received(head.replace(b"\r\n", b"\n")) == (
        b"From: a@example.org\nX-Received: by 2002:a05 with SMTP id 1;\n        Mon, 03 Mar 2025 01:00:00 -0800\n"
        b"Subject: hello\n  folded\n"
    )
    # The email package ends the header block at a line that is not a field: what follows is body.
    odd = b"From: a@example.org\r\nnot a field\r\nReceived: body text\r\n\r\nx\r\n"
    assert without_received(odd) == odd
    # A lone CR breaks lines for the email package but not for this scan: such a message is left whole.
    lone_cr = b"Received: from x\rFrom: a@example.org\r\r\nbody"
    assert without_received(lone_cr) is lone_cr
    mbox = b"From a@example.org Tue May 10 11:28:07 2005\r\nReceived: from x\r\nSubject: y\r\n\r\nz"
    assert without_received(mbox) == b"From a@example.org Tue May 10 11:28:07 2005\r\nSubject: y\r\n\r\nz"
    plain = b"From: a@example.org\r\nSubject: x\r\n\r\nReceived: in the body\r\n"
    assert without_received(plain) is plain


def test_parse_mail_reads_delivered_mail_as_it_reads_it_undelivered() -> None:
    """Received fields added on the way (as Postfix, amavis and Gmail do) change nothing maild reads."""
    from maild.mime import parse_mail

    raw = make_mail(subject="Printer on fire", body="It burns.\n\nOn Monday, Ana wrote:\n> hello\n")
    trace = (
        b"Received: from mail-wr1-f41.google.com (mail-wr1-f41.google.com [209.85.221.41])\r\n"
        b"\t(using TLSv1.3 with cipher TLS_AES_128_GCM_SHA256 (128/128 bits))\r\n"
        b"\tby mx.example.com (Postfix) with ESMTPS id 4Zx1Yq2Kj9z9sWd\r\n"
        b"\tfor <support@example.com>; Mon,  3 Mar 2025 10:00:01 +0100 (CET)\r\n"
        b"Received: by mail-wr1-f41.google.com with SMTP id ffacd0b85a97d-390e3b3d3f4so1234567f8f.2\r\n"
        b"        for <support@example.com>; Mon, 03 Mar 2025 01:00:00 -0800 (PST)\r\n"
    )
    plain, delivered = parse_mail(raw, "<f@x>"), parse_mail(trace + raw, "<f@x>")
    assert delivered == plain and "received" not in delivered.headers
    assert delivered.message is not None and delivered.message.get_all("Received") is None
    assert (delivered.subject, delivered.text) == ("Printer on fire", "It burns.")


def test_prepare_runs_before_the_transaction_so_the_store_stays_free(tmp_path: Path) -> None:
    """The pipeline decodes a mail (a step's `prepare`) before it opens the message's transaction: a spool
    commit made meanwhile does not wait for the decoding, and the step's `process` still runs in order."""
    from maild.pipeline import Pipeline
    from maild.spool import Spooler

    config = config_for(tmp_path)
    envelope = Envelope(source="test", mail_from=CUSTOMER, rcpt_to=(SUPPORT,))
    order: list[str] = []

    class SlowDecoder:
        name = "slow_decoder"

        def __init__(self, store: Store) -> None:
            self.store = store

        async def prepare(self, ctx: Context) -> None:
            order.append("prepare")
            # Another writer commits while this step is decoding; with the store held it would time out.
            spooled = await asyncio.wait_for(Spooler(self.store).put(envelope, make_mail(subject="meanwhile")), 5)
            order.append(f"spooled {spooled.inbound_id}")

        async def process(self, ctx: Context, tx: Tx) -> Stop:
            order.append("process")
            return Stop("done")

    async def scenario() -> str | None:
        store = await Store.open(config.db_path)
        try:
            first = await Spooler(store).put(envelope, make_mail())
            assert first.inbound_id is not None
            result = await Pipeline(store, [SlowDecoder(store)]).process(first.inbound_id)
            return result.state if result else None
        finally:
            await store.close()

    assert asyncio.run(scenario()) == "dropped"
    assert order == ["prepare", "spooled 2", "process"]
