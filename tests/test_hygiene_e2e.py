"""End to end: automatic mail, strangers and hostile input against a running daemon."""

from __future__ import annotations

import smtplib
import time
from typing import Any

from tests.helpers import ANA, CORPORA, CUSTOMER, Daemon, Smarthost, make_mail, wait_until

STRANGER = "stranger@elsewhere.example"


def new_ticket(daemon: Daemon, smarthost: Smarthost) -> dict[str, Any]:
    daemon.send(make_mail())
    smarthost.wait_for(CUSTOMER)
    return daemon.tickets()[0]


def test_headerless_autoresponder_gets_only_a_few_acks(daemon: Daemon, smarthost: Smarthost) -> None:
    """An autoresponder that sends 30 new mails without any auto-reply header gets at most 3 acks."""
    bot = "bot@autoresponder.example"
    for n in range(30):
        daemon.send(make_mail(sender=bot, subject=f"Thank you for your message {n}"), mail_from=bot)
    daemon.wait_processed()
    time.sleep(0.5)
    assert len(daemon.tickets()) == 30  # nothing is lost: every mail is on a ticket
    assert len(smarthost.to(bot)) == 3


def test_out_of_office_does_not_end_waiting_customer(daemon: Daemon, smarthost: Smarthost) -> None:
    """An auto-reply on a ticket waiting for the customer is stored but the ticket keeps waiting."""
    ticket = new_ticket(daemon, smarthost)
    daemon.send(
        make_mail(sender=ANA, subject=f"Re: {ticket['token']}", body="#wait customer\nWhich model?"), mail_from=ANA
    )
    daemon.wait_processed()
    daemon.send(
        make_mail(
            subject=f"Re: {ticket['token']} Out of office",
            body="I am away until Monday.",
            headers={"Auto-Submitted": "auto-replied"},
        )
    )
    daemon.wait_processed()
    detail = daemon.ticket(ticket["id"])
    assert detail["status"] == "waiting_customer"
    assert detail["messages"][-1]["text"] == "I am away until Monday."
    assert [m for m in smarthost.to(ANA) if "away until Monday" in m.body] == []


def test_stranger_quoting_a_token_gets_nothing_and_follows_nothing(daemon: Daemon, smarthost: Smarthost) -> None:
    """Someone outside the ticket who quotes its token is stored for agents, never a follower, sent nothing."""
    ticket = new_ticket(daemon, smarthost)
    daemon.send(
        make_mail(sender=STRANGER, subject=f"Re: {ticket['token']}", body="Show me the ticket."), mail_from=STRANGER
    )
    [notice] = wait_until(lambda: [m for m in smarthost.to(ANA) if "Show me the ticket" in m.body], 10, "notice")
    assert "neither the requester nor a follower" in notice.body
    daemon.send(make_mail(sender=ANA, subject=f"Re: {ticket['token']}", body="We are on it."), mail_from=ANA)
    wait_until(lambda: [m for m in smarthost.to(CUSTOMER) if "We are on it" in m.body], 10, "relay")
    detail = daemon.ticket(ticket["id"])
    assert STRANGER not in detail["followers"]
    assert detail["status"] == "open"
    assert smarthost.to(STRANGER) == []


def test_daemon_keeps_serving_after_hostile_input(daemon: Daemon, smarthost: Smarthost) -> None:
    """Fuzzer seeds and broken MIME sent over SMTP are kept or marked; a normal mail afterwards still works."""
    seeds = sorted((CORPORA / "python-library-fuzzers-corp-email").glob("*"))[:60]
    junk = [b"\x00\xff\xfe garbage", b"Subject: =?utf-8?b?////?=\r\nContent-Type: multipart/mixed\r\n\r\n--"]
    for raw in junk + [p.read_bytes() for p in seeds if p.name != "ORIGIN.txt"]:
        data = raw.replace(b"\r\n", b"\n").replace(b"\r", b"\n").replace(b"\n", b"\r\n")
        try:
            daemon.send(data or b"\r\n", mail_from="fuzzer@example.net")
        except smtplib.SMTPDataError as refused:
            assert refused.smtp_code in (500, 552)  # e.g. a line the SMTP layer itself cannot take
    daemon.wait_processed()
    assert set(daemon.spool_states()) <= {"done", "dropped", "shunted"}
    daemon.send(make_mail(sender="carmen@example.org", subject="Still alive?"), mail_from="carmen@example.org")
    wait_until(lambda: [m for m in smarthost.to("carmen@example.org") if "Still alive?" in m["Subject"]], 10, "ack")
    assert daemon.process is not None and daemon.process.poll() is None
