"""`maild erase` over a temporary store: the rows mail rarely makes (bounces, mail about no ticket, mail still
in the spool), and the numbering of tickets after an erasure."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from maild.blobs import BlobStore
from maild.clock import to_iso
from maild.config import ConfigError, load_config
from maild.erase import Holdings, erase_closed, erase_customer, erase_tickets
from maild.models import Envelope
from maild.store import Store

CUSTOMER = "customer@example.org"


def _config(tmp_path: Path, extra: str = "") -> Path:
    path = tmp_path / "maild.toml"
    path.write_text(
        f'[maild]\ndata_dir = "{tmp_path}"\n[mail]\nsupport_address = "support@example.com"\n'
        '[[agents]]\nemail = "ana@example.com"\nname = "Ana"\n' + extra
    )
    return path


async def _ticket(store: Store, requester: str = CUSTOMER, status: str = "new", updated: str | None = None) -> int:
    async with store.transaction() as tx:
        ticket = await tx.create_ticket(
            subject="Hello", requester=requester, queue="default", priority="normal", language="en", status=status
        )
        if updated is not None:
            await tx.run("UPDATE tickets SET updated_at = ? WHERE id = ?", (updated, ticket.id))
    return ticket.id


def test_a_customer_erasure_reaches_bounces_and_mail_about_no_ticket_and_spares_the_spool(tmp_path: Path) -> None:
    """Also kept, and said: mail still in the spool, and a block (which must go on refusing their mail)."""
    config = load_config(_config(tmp_path))

    async def scenario() -> None:
        store = await Store.open(config.db_path)
        ticket_id = await _ticket(store)
        async with store.transaction() as tx:
            mail = {"mail_from": "support@example.com", "rcpt_to": [CUSTOMER], "raw": b"Subject: x\r\n\r\nx"}
            sent = await tx.enqueue_mail(ticket_id=ticket_id, kind="customer.ack", message_id="<a@us>", **mail)
            await tx.enqueue_mail(ticket_id=None, kind="customer.refused", message_id="<b@us>", **mail)
            bounce = await tx.insert_inbound(Envelope("smtp", "", ("support@example.com",)), "mid:<dsn@mx>", b"DSN")
            assert bounce is not None
            await tx.finish_inbound(bounce, "done", ticket_id=ticket_id)
            await tx.record_bounce(sent, bounce, [CUSTOMER], "5.1.1", True)
            # As the client spelled it: addresses compare without case.
            envelope = Envelope("smtp", "Customer@Example.ORG", ("support@example.com",))
            waiting = await tx.insert_inbound(envelope, "mid:<w@c>", b"W")
            await tx.block_sender(CUSTOMER, "ana@example.com", ticket_id)
        where = Holdings(store, BlobStore(config.blob_dir))
        report = await erase_customer(where, config, CUSTOMER, apply=True)
        assert (report.erased.tickets, report.erased.sent, report.erased.received) == ([ticket_id], 2, 1)
        assert report.notes == [
            f"{CUSTOMER} stays blocked, so that its mail is still refused: `maild blocked remove {CUSTOMER}` lifts it",
            f"1 mail(s) from {CUSTOMER} still wait in the spool: run this again once processed",
        ]
        async with store.snapshot() as tx:
            assert await tx.all("SELECT * FROM bounces") == []
            assert [b["ticket_id"] for b in await tx.blocked_senders()] == [None]  # the ticket is gone
            assert await tx.all("SELECT * FROM outbox") == []
            assert [tuple(r) for r in await tx.all("SELECT state, raw FROM inbound ORDER BY id")] == [
                ("erased", b""),
                ("pending", b"W"),
            ]
            assert waiting is not None
            assert await tx.all("PRAGMA foreign_key_check") == []
        await store.close()

    asyncio.run(scenario())


def test_tickets_are_numbered_above_every_erased_one(tmp_path: Path) -> None:
    config = load_config(_config(tmp_path))

    async def scenario() -> None:
        store = await Store.open(config.db_path)
        first, second, third = [await _ticket(store) for _ in range(3)]
        where = Holdings(store, BlobStore(config.blob_dir))
        await erase_tickets(where, [third], apply=True)
        assert await _ticket(store) == third + 1
        await erase_tickets(where, [second], apply=True)  # not the highest: the floor stays
        assert await _ticket(store) == third + 2
        dry = await erase_tickets(where, [first], apply=False)
        assert dry.erased.tickets == [first] and not dry.applied
        async with store.snapshot() as tx:
            assert await tx.get_ticket(first) is not None  # a dry run changes nothing
        await store.close()

    asyncio.run(scenario())


def test_retention_is_at_least_a_day(tmp_path: Path) -> None:
    keep = load_config(_config(tmp_path, '[retention]\nerase_closed_after = "730d"\n')).retention
    assert keep is not None and keep.days == 730
    assert load_config(_config(tmp_path)).retention is None
    with pytest.raises(ConfigError) as raised:
        load_config(_config(tmp_path, '[retention]\nerase_closed_after = "12h"\n'))
    assert raised.value.problems == [
        "retention.erase_closed_after: at least 1d: closed tickets are erased for good (got '12h')"
    ]


def test_erasing_closed_tickets_goes_in_batches_oldest_first_and_a_dry_run_pages_on(tmp_path: Path) -> None:
    """Closed tickets unchanged since before the date go, oldest first, a batch per transaction, stopping
    after the batch that reaches ``most``; a dry run (each batch rolled back) reports the same; open tickets
    and ones closed since stay."""
    config = load_config(_config(tmp_path))

    async def scenario() -> None:
        store = await Store.open(config.db_path)
        now = datetime.now(UTC)
        ages = (40, 70, 60, 50, 40, 40, 40)  # four closed at the same instant: the batches page on by id
        old = [await _ticket(store, status="closed", updated=to_iso(now - timedelta(days=n))) for n in ages]
        kept = [
            await _ticket(store, status="open", updated=to_iso(now - timedelta(days=90))),
            await _ticket(store, status="closed", updated=to_iso(now - timedelta(days=10))),
        ]
        where = Holdings(store, BlobStore(config.blob_dir))
        dry = await erase_closed(where, now - timedelta(days=30), apply=False, batch=3)
        halted = await erase_closed(where, now - timedelta(days=30), apply=False, batch=3, stopping=lambda: True)
        assert len(halted.erased.tickets) == 3  # a shutdown waits for one batch only
        share = await erase_closed(where, now - timedelta(days=30), apply=True, batch=3, most=4)
        rest = await erase_closed(where, now - timedelta(days=30), apply=True, batch=3)
        # Batches of three, oldest first: (70, 60, 50 days), then the 40-day ones by id; each sorted by id.
        assert dry.erased.tickets == [old[1], old[2], old[3], old[0], old[4], old[5], old[6]]
        assert share.erased.tickets == dry.erased.tickets[:6] and rest.erased.tickets == dry.erased.tickets[6:]
        assert share.wal_emptied is True and dry.wal_emptied is None
        async with store.snapshot() as tx:
            assert [int(r[0]) for r in await tx.all("SELECT id FROM tickets ORDER BY id")] == kept
        await store.close()

    asyncio.run(scenario())


def test_a_long_list_of_tickets_is_cut_in_the_text_not_in_the_json() -> None:
    from maild.erase import Report
    from maild.store.erase import Erased

    report = Report(applied=False, erased=Erased(tickets=list(range(1, 26))))
    assert report.as_text().startswith(f"would erase tickets: {', '.join(map(str, range(1, 21)))} and 5 more;")
    assert report.as_json()["tickets"] == list(range(1, 26))


def test_a_customers_ticket_merged_on_into_another_customers_is_named_where_its_mail_lives(tmp_path: Path) -> None:
    config = load_config(_config(tmp_path))

    async def scenario() -> None:
        store = await Store.open(config.db_path)
        first, second, theirs = await _ticket(store), await _ticket(store), await _ticket(store, "other@example.net")
        async with store.transaction() as tx:  # first merged into second, which was merged into theirs later
            await tx.run("UPDATE tickets SET merged_into = ? WHERE id = ?", (second, first))
            await tx.run("UPDATE tickets SET merged_into = ? WHERE id = ?", (theirs, second))
        report = await erase_customer(Holdings(store, BlobStore(config.blob_dir)), config, CUSTOMER, apply=False)
        assert report.erased.tickets == []
        assert report.notes == [
            f"ticket {t} was merged into {theirs}, another customer's ticket that holds its mail:"
            f" erase {theirs} too if it must go"
            for t in (first, second)
        ]
        await store.close()

    asyncio.run(scenario())


def test_erasing_imap_mail_kept_aside_reports_its_message_id_alone(tmp_path: Path) -> None:
    """IMAP mail set aside under a reused Message-ID has the content's hash after it in its key: the erasure
    reports the Message-ID (for the copies in IMAP's processed mailbox), not the key."""
    from maild.spool import spool
    from maild.store.erase import Erased

    config = load_config(_config(tmp_path))
    envelope = Envelope("imap", CUSTOMER, ("support@example.com",))

    async def scenario() -> list[str]:
        store = await Store.open(config.db_path)
        try:
            async with store.transaction() as tx:
                first = await spool(tx, envelope, b"Message-ID: <m@c>\r\n\r\nOne.\r\n")
                other = await spool(tx, envelope, b"Message-ID: <m@c>\r\n\r\nTwo.\r\n")
                assert other.set_aside and first.inbound_id and other.inbound_id
                erased = Erased()
                await tx.blank_inbound([first.inbound_id, other.inbound_id], erased)
            return erased.imap_message_ids
        finally:
            await store.close()

    assert asyncio.run(scenario()) == ["<m@c>", "<m@c>"]
