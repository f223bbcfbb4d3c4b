"""End to end: maild polling a real Dovecot over IMAP (started by the tests on a free loopback port)."""

from __future__ import annotations

import asyncio
import json
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import structlog
import structlog.testing

from maild.config import load_config
from maild.intake.imap import ImapPoller
from maild.models import Envelope
from maild.spool import Spooler
from maild.store import Store
from tests.dovecot import Dovecot, dovecot, start_dovecot  # noqa: F401  (fixtures)
from tests.helpers import CUSTOMER, SUPPORT, Daemon, Smarthost, make_mail, message_id_of, wait_until

PROCESSED = "maild/processed"


def imap_config(
    server: Dovecot,
    idle: bool = True,
    poll: str = "60s",
    smtp: bool = True,
    mailbox: str = "INBOX",
    processed: str = PROCESSED,
) -> str:
    return f"""
[intake.imap]
enabled = true
host = "127.0.0.1"
port = {server.port}
tls = "none"
username = "{server.user}"
password_file = "{server.password_file()}"
mailbox = "{mailbox}"
processed_mailbox = "{processed}"
idle = {str(idle).lower()}
poll_interval = "{poll}"
"""


async def set_stale_position(daemon: Daemon) -> None:
    """Record, in the stopped daemon's store, another UIDVALIDITY for INBOX and a UID far ahead."""
    store = await Store.open(load_config(daemon.config_path).db_path)
    try:
        async with store.transaction() as tx:
            await tx.set_imap_position("INBOX", 1, 999)
    finally:
        await store.close()


def test_new_mail_becomes_a_ticket_and_is_moved(
    start_daemon: Callable[..., Daemon],
    smarthost: Smarthost,
    dovecot: Dovecot,  # noqa: F811
) -> None:
    """A message in the mailbox becomes a ticket (acknowledged) and moves to the processed folder; one that
    a person already read (\\Seen) is taken all the same."""
    dovecot.append(make_mail(subject="Via IMAP"))
    dovecot.append(make_mail(subject="Already read"), seen=True)
    daemon = start_daemon(extra=imap_config(dovecot))
    wait_until(lambda: len(daemon.tickets()) == 2, 15, "two tickets")
    assert sorted(t["subject"] for t in daemon.tickets()) == ["Already read", "Via IMAP"]
    wait_until(lambda: dovecot.count(PROCESSED) == 2 and dovecot.count("INBOX") == 0, 10, "the move")
    smarthost.wait_for(CUSTOMER, 2)
    events = [e for e in daemon.log_events() if e["event"] == "imap_cycle"]
    assert events and events[0]["seen"] == 2 and events[0]["stored"] == 2 and events[0]["moved"] == 2


def test_a_reload_starts_imap_intake_and_a_second_one_stops_it(
    start_daemon: Callable[..., Daemon],
    smarthost: Smarthost,
    dovecot: Dovecot,  # noqa: F811
) -> None:
    """SIGHUP applies [intake.imap] without a restart: enabling it takes the mailbox's mail; disabling it
    again ends the session, and mail delivered after that stays in the mailbox."""
    dovecot.append(make_mail(subject="Waiting in the mailbox"))
    daemon = start_daemon()
    plain = daemon.config_path.read_text()
    daemon.config_path.write_text(plain + imap_config(dovecot))
    assert daemon.process is not None
    daemon.process.send_signal(signal.SIGHUP)
    wait_until(lambda: daemon.tickets(), 15, "the ticket")
    assert [t["subject"] for t in daemon.tickets()] == ["Waiting in the mailbox"]
    wait_until(lambda: dovecot.count("INBOX") == 0, 10, "the move")
    daemon.config_path.write_text(plain)
    reloads = sum(e["event"] == "reloaded" for e in daemon.log_events())
    daemon.process.send_signal(signal.SIGHUP)
    wait_until(lambda: sum(e["event"] == "reloaded" for e in daemon.log_events()) > reloads, 20, "the second reload")
    dovecot.append(make_mail(subject="Not taken any more"))
    time.sleep(1.5)  # IDLE would have taken it within a few hundred ms
    assert dovecot.count("INBOX") == 1 and len(daemon.tickets()) == 1


def test_reloads_at_once_replace_the_imap_session_once(
    tmp_path: Path,
    smarthost: Smarthost,
    dovecot: Dovecot,  # noqa: F811
) -> None:
    """Two reloads at once after [intake.imap] changed (two SIGHUPs in a row) replace the poller once: the
    second waits for the first, which stops the old session between batches; a reload after the stop began
    does nothing. In process, as signals may coalesce."""
    from maild.app import App

    daemon = Daemon(tmp_path, smarthost.port, extra=imap_config(dovecot, poll="60s"))

    async def scenario() -> None:
        app = await App.start(load_config(daemon.config_path))
        try:
            for _ in range(100):
                if app.imap is not None and app.imap.idling is not None:
                    break
                await asyncio.sleep(0.05)
            first = app.imap
            daemon.config_path.write_text(daemon.config_path.read_text().replace('"60s"', '"30s"'))
            await asyncio.gather(app.reload(), app.reload())
            assert app.imap is not None and app.imap is not first and first is not None
            assert app.imap.settings.poll_interval.total_seconds() == 30
            await asyncio.sleep(0.5)
        finally:
            await app.stop()
        await app.reload()  # after the stop: nothing (no poller started on a closed store)
        assert app.imap is not None and app.imap._task is None

    with structlog.testing.capture_logs() as logs:
        asyncio.run(scenario())
    assert [e["event"] for e in logs].count("imap_connected") == 2  # the first session and one new one
    assert [e["event"] for e in logs].count("reloaded") == 2


def test_idle_wakes_promptly(start_daemon: Callable[..., Daemon], smarthost: Smarthost, dovecot: Dovecot) -> None:  # noqa: F811
    """With IDLE, a message appended while maild waits is taken at once, not at the next poll (60 s away)."""
    daemon = start_daemon(extra=imap_config(dovecot, poll="60s"))
    wait_until(lambda: any(e["event"] == "imap_connected" for e in daemon.log_events()), 10, "the connection")
    time.sleep(0.5)  # let it enter IDLE
    dovecot.append(make_mail(subject="Wake up"))
    wait_until(lambda: len(daemon.tickets()) == 1, 5, "the ticket within seconds")


def test_polling_without_idle(start_daemon: Callable[..., Daemon], smarthost: Smarthost, dovecot: Dovecot) -> None:  # noqa: F811
    """With idle = false maild polls every poll_interval."""
    daemon = start_daemon(extra=imap_config(dovecot, idle=False, poll="1s"))
    wait_until(lambda: any(e["event"] == "imap_connected" for e in daemon.log_events()), 10, "the connection")
    dovecot.append(make_mail(subject="Polled"))
    wait_until(lambda: len(daemon.tickets()) == 1, 10, "the polled ticket")


def test_dovecot_restart_mid_run_loses_nothing(
    start_daemon: Callable[..., Daemon],
    smarthost: Smarthost,
    dovecot: Dovecot,  # noqa: F811
) -> None:
    """Dovecot going away is logged once and retried; mail that arrived meanwhile is taken after it returns,
    and SMTP intake kept working throughout."""
    daemon = start_daemon(extra=imap_config(dovecot, poll="1s"))
    dovecot.append(make_mail(subject="Before"))
    wait_until(lambda: len(daemon.tickets()) == 1, 15, "the first ticket")
    dovecot.stop()
    daemon.send(make_mail(subject="Over SMTP meanwhile"))
    wait_until(lambda: len(daemon.tickets()) == 2, 10, "the SMTP ticket")
    wait_until(lambda: any(e["event"] == "imap_unavailable" for e in daemon.log_events()), 15, "the outage")
    dovecot.start()
    dovecot.append(make_mail(subject="After"))
    wait_until(lambda: len(daemon.tickets()) == 3, 40, "the ticket after the restart")
    outages = [e for e in daemon.log_events() if e["event"] == "imap_unavailable"]
    assert len(outages) == 1  # logged once per outage, not per retry
    assert dovecot.count("INBOX") == 0
    # A second outage is one more line, and the backoff starts over: back within seconds, not minutes.
    dovecot.restart()
    dovecot.append(make_mail(subject="After the second restart"))
    wait_until(lambda: len(daemon.tickets()) == 4, 10, "the ticket after the second restart")
    assert [e["event"] for e in daemon.log_events()].count("imap_unavailable") == 2


def test_crash_between_spool_and_move_gives_no_duplicate(
    start_daemon: Callable[..., Daemon],
    smarthost: Smarthost,
    dovecot: Dovecot,  # noqa: F811
) -> None:
    """A message already spooled but still in the mailbox (a crash before the move) is stored once and moved."""
    raw = make_mail(subject="Spooled before the crash")
    dovecot.append(raw)
    daemon = start_daemon(extra=imap_config(dovecot))
    daemon.stop()
    config = load_config(daemon.config_path)

    async def spool_first() -> None:
        store = await Store.open(config.db_path)
        try:
            await Spooler(store).put(Envelope("imap", CUSTOMER, (SUPPORT,)), raw)
        finally:
            await store.close()

    asyncio.run(spool_first())
    daemon.start()
    wait_until(lambda: dovecot.count(PROCESSED) == 1, 15, "the move")
    daemon.wait_processed()
    [ticket] = daemon.tickets()
    assert len(daemon.ticket(ticket["id"])["messages"]) == 1
    assert dovecot.message_ids(PROCESSED) == [message_id_of(raw)]


def test_a_backlog_of_2000_drains_in_batches(
    start_daemon: Callable[..., Daemon],
    smarthost: Smarthost,
    dovecot: Dovecot,  # noqa: F811
) -> None:
    """2,000 queued messages are all taken, in batches, none twice."""
    dovecot.append_many(make_mail(subject=f"Backlog {n}", body=f"Message {n}.") for n in range(2000))
    daemon = start_daemon(extra=imap_config(dovecot))
    wait_until(lambda: dovecot.count(PROCESSED) == 2000, 120, "the whole backlog moved")
    daemon.wait_processed()
    assert daemon.spool_states() == {"done": 2000}
    cycles = [e for e in daemon.log_events() if e["event"] == "imap_cycle"]
    assert sum(e["stored"] for e in cycles) == 2000


def test_starttls_missing_is_refused_not_downgraded(
    start_daemon: Callable[..., Daemon],
    smarthost: Smarthost,
    dovecot: Dovecot,  # noqa: F811
) -> None:
    """With tls = "starttls" and a server that offers none, maild never logs in in clear."""
    dovecot.append(make_mail(subject="Must stay"))
    daemon = start_daemon(extra=imap_config(dovecot).replace('tls = "none"', 'tls = "starttls"'))
    outage = wait_until(lambda: [e for e in daemon.log_events() if e["event"] == "imap_unavailable"], 10, "refusal")
    assert "STARTTLS" in outage[0]["error"]
    assert daemon.tickets() == [] and dovecot.count("INBOX") == 1
    assert "secret" not in daemon.log_path.read_text()


def test_uidvalidity_change_resyncs_from_the_start(
    start_daemon: Callable[..., Daemon],
    smarthost: Smarthost,
    dovecot: Dovecot,  # noqa: F811
) -> None:
    """When the mailbox's UIDVALIDITY is not the one recorded, UIDs start over: nothing is skipped because
    of a stale high-water mark, and what was already spooled is not stored twice."""
    daemon = start_daemon(extra=imap_config(dovecot))
    first = make_mail(subject="Taken before")
    dovecot.append(first)
    wait_until(lambda: dovecot.count(PROCESSED) == 1, 15, "the first move")
    daemon.stop()
    asyncio.run(set_stale_position(daemon))
    dovecot.append(make_mail(subject="After the change"))
    dovecot.append(first)  # the same message again, as a resynced server might present it
    daemon.start()
    wait_until(lambda: dovecot.count("INBOX") == 0, 15, "the resync")
    daemon.wait_processed()
    assert sorted(t["subject"] for t in daemon.tickets()) == ["After the change", "Taken before"]
    assert any(e["event"] == "imap_uidvalidity_changed" for e in daemon.log_events())


def test_a_surprise_in_a_session_is_logged_and_retried(
    start_daemon: Callable[..., Daemon],
    smarthost: Smarthost,
    dovecot: Dovecot,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An exception no outage explains (a bug, a library surprise) ends the session, not IMAP intake: it is
    logged as imap_failed with its traceback, and the next session, after the backoff, takes the mail."""
    daemon = start_daemon(extra=imap_config(dovecot))
    daemon.stop()  # used for its config and store only; the mail arrives after it stopped polling
    raw = make_mail(subject="Waiting through a surprise")
    dovecot.append(raw)
    config = load_config(daemon.config_path)
    select, calls = ImapPoller._select, []

    async def surprising_select(self: ImapPoller, client: Any) -> int:
        calls.append(client)
        if len(calls) == 1:
            raise KeyError("surprise")
        return await select(self, client)

    monkeypatch.setattr(ImapPoller, "_select", surprising_select)

    async def poll() -> dict[str, int]:
        store = await Store.open(config.db_path)
        spooler = Spooler(store)
        spooler.start()
        poller = ImapPoller(config, store, spooler)
        try:
            poller.start()
            for _ in range(150):  # the first session fails at once; the retry comes after 1 s
                if dovecot.count(PROCESSED) == 1:
                    break
                await asyncio.sleep(0.1)
        finally:
            await poller.stop()
            await spooler.stop()
        async with store.snapshot() as tx:
            counts = await tx.count_inbound()
        await store.close()
        return counts

    with structlog.testing.capture_logs() as logs:
        counts = asyncio.run(poll())
    [failed] = [entry for entry in logs if entry["event"] == "imap_failed"]
    assert failed["error"] == "KeyError: 'surprise'" and failed["retry_in"] == 1.0
    assert isinstance(failed["exc_info"], KeyError)
    assert len(calls) == 2
    assert counts == {"pending": 1}
    assert dovecot.message_ids(PROCESSED) == [message_id_of(raw)]
    assert dovecot.count("INBOX") == 0


def test_erasing_a_customer_deletes_the_copies_imap_intake_kept(
    start_daemon: Callable[..., Daemon],
    smarthost: Smarthost,
    dovecot: Dovecot,  # noqa: F811
) -> None:
    """IMAP intake moves each mail it took to its processed mailbox; `maild erase` deletes there the copies of
    the mails it erases (found by Message-ID) and leaves the others. With the server down the erasure still
    happens, and says which copies are left."""
    other = "other@example.net"
    mine, theirs = make_mail(subject="Erase me"), make_mail(sender=other, subject="Keep me a while")
    dovecot.append(mine)
    dovecot.append(theirs)
    daemon = start_daemon(extra=imap_config(dovecot))
    wait_until(lambda: len(daemon.tickets()) == 2 and dovecot.count(PROCESSED) == 2, 15, "two tickets, moved")

    dry = daemon.cli("erase", "customer", CUSTOMER).stdout
    assert "would delete their copies (1) from the IMAP processed mailbox" in dry
    assert dovecot.count(PROCESSED) == 2
    done = json.loads(daemon.cli("erase", "customer", CUSTOMER, "--yes", "--json").stdout)
    assert done["imap_message_ids"] == [message_id_of(mine)] and done["imap_deleted"] == 1
    assert dovecot.message_ids(PROCESSED) == [message_id_of(theirs)]

    dovecot.stop()
    down = json.loads(daemon.cli("erase", "customer", other, "--yes", "--json").stdout)
    assert down["tickets"] and down["imap_deleted"] is None
    assert [
        n
        for n in down["notes"]
        if n.startswith(f"the IMAP server did not let maild delete the 1 copies in {PROCESSED}")
    ]


def test_mail_that_reads_like_an_imap_response_is_taken(
    start_daemon: Callable[..., Daemon],
    smarthost: Smarthost,
    dovecot: Dovecot,  # noqa: F811
) -> None:
    """A message whose own text looks like a FETCH response line ("1 FETCH (UID 7 ...") is taken like any
    other: responses are read for UIDs, never the messages in them, and only what was spooled is moved."""
    tricky = [
        f"Subject: 1 FETCH (UID 7 RFC822.SIZE 10)\r\nFrom: {CUSTOMER}\r\nTo: {SUPPORT}\r\n"
        f"Message-ID: <fetch-{n}@customer.example>\r\n\r\nThe client says: * {n} FETCH (UID 4{n} BODY[] {{9}}\r\n"
        for n in range(2)
    ]
    for raw in tricky:
        dovecot.append(raw.encode())
    dovecot.append(make_mail(subject="An ordinary one"))
    daemon = start_daemon(extra=imap_config(dovecot))
    wait_until(lambda: len(daemon.tickets()) == 3, 15, "three tickets")
    wait_until(lambda: dovecot.count(PROCESSED) == 3 and dovecot.count("INBOX") == 0, 10, "the move")


def test_mailbox_names_with_spaces_and_accents(
    start_daemon: Callable[..., Daemon],
    smarthost: Smarthost,
    dovecot: Dovecot,  # noqa: F811
) -> None:
    """Mailbox names go out quoted, in IMAP's modified UTF-7: "Soporte Entrada" is read and mail lands in
    "Procesados/Año 2026", not in a folder named after the first word."""
    dovecot.append(make_mail(subject="Spaced out"), mailbox="Soporte Entrada")
    daemon = start_daemon(extra=imap_config(dovecot, mailbox="Soporte Entrada", processed="Procesados/Año 2026"))
    wait_until(lambda: len(daemon.tickets()) == 1, 15, "the ticket")
    wait_until(lambda: dovecot.count("Procesados/A&APE-o 2026") == 1, 10, "the move")
    assert dovecot.count("Soporte Entrada") == 0


def test_a_server_without_move_or_uidplus_gets_one_copy(
    start_daemon: Callable[..., Daemon],
    smarthost: Smarthost,
    dovecot: Dovecot,  # noqa: F811
) -> None:
    """Without MOVE and UIDPLUS the messages are copied, flagged deleted and expunged with a plain EXPUNGE:
    one copy each in the processed folder, and none left to copy again."""
    dovecot.stop()
    with dovecot.config_path.open("a") as config:
        config.write("imap_capability = IMAP4rev1 IDLE\n")
    dovecot.start()
    for n in range(3):
        dovecot.append(make_mail(subject=f"Old server {n}"))
    daemon = start_daemon(extra=imap_config(dovecot, idle=False, poll="1s"))
    wait_until(lambda: len(daemon.tickets()) == 3, 15, "three tickets")
    wait_until(lambda: dovecot.count("INBOX") == 0, 10, "the expunge")
    time.sleep(2.5)  # two more polls
    assert dovecot.count(PROCESSED) == 3
    assert not [e for e in daemon.log_events() if e["event"] in ("imap_unavailable", "imap_failed")]


def test_mail_arriving_during_a_drain_is_taken_without_waiting_for_the_poll(
    start_daemon: Callable[..., Daemon],
    smarthost: Smarthost,
    dovecot: Dovecot,  # noqa: F811
) -> None:
    """The server's news of mail that came during a drain can arrive mid-command, where aioimaplib drops it:
    the mailbox is searched again before IDLE, so that mail does not wait for poll_interval (60 s)."""
    dovecot.append_many(make_mail(subject=f"Backlog {n}") for n in range(300))
    daemon = start_daemon(extra=imap_config(dovecot, poll="60s"))
    wait_until(lambda: any(e["event"] == "imap_connected" for e in daemon.log_events()), 10, "the connection")
    dovecot.append(make_mail(subject="During the drain"))
    wait_until(lambda: dovecot.count("INBOX") == 0, 30, "every mail, the last one included")
    assert dovecot.count(PROCESSED) == 301


def test_a_too_large_mail_is_named_and_taken_once_the_limit_allows(
    start_daemon: Callable[..., Daemon],
    smarthost: Smarthost,
    dovecot: Dovecot,  # noqa: F811
) -> None:
    """A message over max_message_bytes stays in the mailbox, flagged, and the log names its sender and
    subject; once the limit is raised (and maild restarted) it is taken."""
    big = make_mail(subject="Scanned invoice", attachments=[("invoice.pdf", "application/pdf", b"%PDF" * 10_000)])
    dovecot.append(big)
    daemon = start_daemon(extra=imap_config(dovecot), max_bytes=20_000)
    [warning] = wait_until(
        lambda: [e for e in daemon.log_events() if e["event"] == "imap_too_large"], 15, "the warning"
    )
    assert warning["subject"] == "Scanned invoice" and CUSTOMER in warning["mail_from"]
    assert warning["size"] > 20_000 and warning["limit"] == 20_000
    assert dovecot.count("INBOX") == 1 and daemon.tickets() == []
    daemon.stop()
    daemon.config_path.write_text(
        daemon.config_path.read_text().replace("max_message_bytes = 20000", "max_message_bytes = 1000000")
    )
    daemon.start()
    wait_until(lambda: len(daemon.tickets()) == 1, 15, "the ticket")
    wait_until(lambda: dovecot.count("INBOX") == 0, 10, "the move")


def test_mail_delivered_to_a_queue_address_goes_to_that_queue(
    start_daemon: Callable[..., Daemon],
    smarthost: Smarthost,
    dovecot: Dovecot,  # noqa: F811
) -> None:
    """IMAP has no envelope: the Delivered-To the mailbox's MTA wrote stands for RCPT TO, so mail Bcc'd to
    the billing address lands in the billing queue."""
    dovecot.append(
        make_mail(subject="Bcc to billing", to=["someone@example.net"], headers={"Delivered-To": "billing@example.com"})
    )
    daemon = start_daemon(extra=imap_config(dovecot))
    [ticket] = wait_until(lambda: daemon.tickets(), 15, "the ticket")
    assert ticket["queue"] == "billing"


def test_a_uidvalidity_change_is_logged_once(
    start_daemon: Callable[..., Daemon],
    smarthost: Smarthost,
    dovecot: Dovecot,  # noqa: F811
) -> None:
    """A mailbox recreated empty (new UIDVALIDITY) is one warning, not one per poll until mail arrives."""
    daemon = start_daemon(extra=imap_config(dovecot, idle=False, poll="1s"))
    daemon.stop()
    asyncio.run(set_stale_position(daemon))
    daemon.start()
    wait_until(lambda: any(e["event"] == "imap_uidvalidity_changed" for e in daemon.log_events()), 10, "the warning")
    time.sleep(3)  # three more polls of the empty mailbox
    assert [e["event"] for e in daemon.log_events()].count("imap_uidvalidity_changed") == 1


def test_a_drain_an_outage_cuts_short_is_logged_and_resumed(
    start_daemon: Callable[..., Daemon],
    smarthost: Smarthost,
    dovecot: Dovecot,  # noqa: F811
) -> None:
    """Dovecot stopping in the middle of a backlog: what was taken until then is logged as a cycle before the
    outage, and the rest is taken once it is back, each message once."""
    dovecot.append_many(make_mail(subject=f"Backlog {n}", body=f"Message {n}.") for n in range(1500))
    daemon = start_daemon(extra=imap_config(dovecot))
    wait_until(lambda: dovecot.count(PROCESSED) >= 100, 60, "the first batches")
    dovecot.stop()
    wait_until(lambda: any(e["event"] == "imap_unavailable" for e in daemon.log_events()), 15, "the outage")
    events = daemon.log_events()
    outage = next(i for i, e in enumerate(events) if e["event"] == "imap_unavailable")
    [cut_short] = [e for e in events[:outage] if e["event"] == "imap_cycle"]
    assert 100 <= cut_short["moved"] < 1500
    dovecot.start()
    wait_until(lambda: dovecot.count(PROCESSED) == 1500, 120, "the rest of the backlog")
    daemon.wait_processed()
    assert daemon.spool_states() == {"done": 1500}
