"""End to end: `maild serve` on loopback, mail in over SMTP, mail out through a capturing smarthost."""

from __future__ import annotations

import contextlib
import email
import hashlib
import re
import signal
import smtplib
import socket
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.header import decode_header, make_header
from pathlib import Path

import pytest

from tests.helpers import (
    ANA,
    BILLING,
    CUSTOMER,
    LUIS,
    SUPPORT,
    Captured,
    Daemon,
    Smarthost,
    make_mail,
    message_id_of,
    wait_until,
)

FRIEND = "friend@example.org"


def open_ticket(daemon: Daemon, smarthost: Smarthost, **mail: object) -> tuple[dict[str, object], bytes]:
    """Send a customer's first mail and wait for its acknowledgement; the ticket and the raw mail."""
    raw = make_mail(**mail)  # type: ignore[arg-type]
    daemon.send(raw, mail_from=str(mail.get("sender", CUSTOMER)))
    requester = str(mail.get("sender", CUSTOMER))
    wait_until(lambda: any("received" in m["Subject"] for m in smarthost.to(requester)), 10, "the ack")
    tickets = daemon.tickets()
    return tickets[0], raw


def test_new_mail_opens_ticket_acks_customer_and_notifies_agents(daemon: Daemon, smarthost: Smarthost) -> None:
    """A customer's first mail becomes a `new` ticket; the ack carries the token and Auto-Submitted."""
    raw = make_mail(subject="Printer on fire")
    daemon.send(raw)
    [ack] = smarthost.wait_for(CUSTOMER)
    ticket = daemon.tickets()[0]
    assert ticket["status"] == "new"
    assert ticket["requester"] == CUSTOMER
    assert ticket["queue"] == "default"
    assert ticket["token"] == f"[ACME#{ticket['id']}]"
    assert ticket["token"] in ack["Subject"]
    assert ack["Auto-Submitted"] == "auto-replied"
    assert ack["From"] == f"ACME Support <{SUPPORT}>"
    assert ack["In-Reply-To"] == message_id_of(raw)
    assert ack["X-Maild-Loop"] == SUPPORT
    # Every agent of the default queue gets a notice they can reply to.
    for agent in (ANA, LUIS):
        [notice] = smarthost.wait_for(agent)
        assert ticket["token"] in notice["Subject"]
        assert "my printer is on fire" in notice.body
        assert notice["From"].endswith(f"<{SUPPORT}>")


def test_mail_to_a_queue_address_lands_in_that_queue(daemon: Daemon, smarthost: Smarthost) -> None:
    """Mail to billing@ opens a ticket in the billing queue, and only billing's agents are told."""
    daemon.send(make_mail(to=[BILLING], subject="Invoice wrong"), rcpt=[BILLING])
    smarthost.wait_for(LUIS)
    assert daemon.tickets()[0]["queue"] == "billing"
    smarthost.wait_for(CUSTOMER)
    assert smarthost.to(ANA) == []


def test_replies_thread_by_token_in_reply_to_and_references(daemon: Daemon, smarthost: Smarthost) -> None:
    """Later mail joins its ticket by subject token, by In-Reply-To of our ack, or by References."""
    ticket, first = open_ticket(daemon, smarthost)
    [ack] = smarthost.to(CUSTOMER)
    daemon.send(make_mail(subject=f"Re: {ticket['token']} more", body="By token."))
    daemon.send(make_mail(subject="no token here", body="By In-Reply-To.", in_reply_to=ack["Message-ID"]))
    daemon.send(
        make_mail(subject="still no token", body="By References.", references=["<unknown@x>", message_id_of(first)])
    )
    daemon.send(make_mail(subject="Something else entirely", body="A new problem."))
    daemon.wait_processed()
    tickets = daemon.tickets()
    assert len(tickets) == 2
    texts = [m["text"] for m in daemon.ticket(int(ticket["id"]))["messages"]]
    assert texts[1:] == ["By token.", "By In-Reply-To.", "By References."]


def test_unknown_token_opens_a_new_ticket(daemon: Daemon, smarthost: Smarthost) -> None:
    """A token naming no ticket does not attach the mail anywhere: it opens a ticket of its own."""
    daemon.send(make_mail(subject="Re: [ACME#999] hello"))
    smarthost.wait_for(CUSTOMER)
    [ticket] = daemon.tickets()
    assert ticket["id"] != 999
    assert ticket["subject"] == "Re: hello"


def test_agent_reply_is_relayed_from_support_and_takes_the_ticket(daemon: Daemon, smarthost: Smarthost) -> None:
    """An agent's reply to the notice reaches requester and Cc followers from the support address, threaded;
    the first agent reply assigns the ticket to that agent and opens it."""
    ticket, first = open_ticket(daemon, smarthost, cc=[FRIEND])
    [notice] = smarthost.wait_for(ANA)
    reply = make_mail(
        sender=f"Ana <{ANA}>",
        to=[SUPPORT],
        subject=f"Re: {notice['Subject']}",
        body="Please unplug it.\n\nOn Mon, 23 Nov 2026 at 10:00, ACME Support <support@example.com> wrote:\n"
        "> New ticket\n> Hello, my printer is on fire.\n",
        in_reply_to=notice["Message-ID"],
        references=[notice["Message-ID"]],
    )
    daemon.send(reply, mail_from=ANA)
    relayed = wait_until(lambda: [m for m in smarthost.to(CUSTOMER) if "Please unplug" in m.body], 10, "relay")[0]
    assert relayed["From"] == f"ACME Support <{SUPPORT}>"
    assert ANA not in relayed["From"] and ANA not in relayed["Reply-To"]
    assert ticket["token"] in relayed["Subject"]
    assert relayed["Auto-Submitted"] == ""
    assert FRIEND in relayed.rcpt_to and CUSTOMER in relayed.rcpt_to
    assert FRIEND in relayed["Cc"]
    # The customer's client threads it under their first mail and our ack.
    assert message_id_of(first) in relayed["References"]
    assert relayed["In-Reply-To"] in relayed["References"]
    assert "wrote:" not in relayed.body and "> Hello" not in relayed.body
    detail = daemon.ticket(int(ticket["id"]))
    assert detail["status"] == "open"
    assert detail["assignee"] == ANA
    assert detail["followers"] == [FRIEND]
    assert detail["messages"][-1]["direction"] == "out"
    assert detail["messages"][-1]["text"] == "Please unplug it."
    changes = {(h["field"], h["old"], h["new"], h["actor"]) for h in detail["history"]}
    assert ("status", "new", "open", ANA) in changes
    assert ("assignee", None, ANA, ANA) in changes


def test_customer_reply_notifies_assignee_only(daemon: Daemon, smarthost: Smarthost) -> None:
    """Once assigned, a customer's reply is sent to the assignee alone, without the quoted history."""
    ticket, _ = open_ticket(daemon, smarthost)
    [notice] = smarthost.wait_for(LUIS)
    daemon.send(
        make_mail(sender=LUIS, subject=f"Re: {notice['Subject']}", body="On it.", in_reply_to=notice["Message-ID"]),
        mail_from=LUIS,
    )
    smarthost.wait_for(CUSTOMER, 2)
    daemon.send(make_mail(subject=f"Re: {ticket['token']} Printer on fire", body="It is out now.\n\n> On it.\n"))
    [update] = [m for m in smarthost.wait_for(LUIS, 2) if "It is out now" in m.body]
    assert update["Auto-Submitted"] == "auto-generated"
    assert ticket["token"] in update["Subject"]
    daemon.wait_processed()
    assert [m for m in smarthost.to(ANA) if "It is out now" in m.body] == []
    assert daemon.ticket(int(ticket["id"]))["messages"][-1]["text"] == "It is out now."


def test_unassigned_customer_reply_notifies_all_queue_agents(daemon: Daemon, smarthost: Smarthost) -> None:
    """While nobody has taken the ticket, every agent of its queue hears about customer replies."""
    ticket, _ = open_ticket(daemon, smarthost)
    daemon.send(make_mail(subject=f"Re: {ticket['token']}", body="Any news?"))
    for agent in (ANA, LUIS):
        wait_until(lambda a=agent: [m for m in smarthost.to(a) if "Any news?" in m.body], 10, f"notice to {agent}")


def test_html_only_mail_is_stored_as_readable_text(daemon: Daemon, smarthost: Smarthost) -> None:
    """An HTML-only mail's text is stored without markup; the raw message is kept too."""
    daemon.send(make_mail(body="", html="<html><body><p>Hello <b>team</b>,</p><p>it broke.</p></body></html>"))
    smarthost.wait_for(CUSTOMER)
    message = daemon.ticket(int(daemon.tickets()[0]["id"]))["messages"][0]
    assert "<" not in message["text"]
    assert "Hello" in message["text"] and "team" in message["text"] and "it broke." in message["text"]


def test_attachments_are_stored_by_checksum_and_relayed(daemon: Daemon, smarthost: Smarthost) -> None:
    """Attachments are listed with name, size and sha256, stored content-addressed, and an agent's
    attachment reaches the customer."""
    pdf = b"%PDF-1.4 fake pdf \x00\x01\x02" * 100
    ticket, _ = open_ticket(daemon, smarthost, attachments=[("../../etc/passwd.pdf", "application/pdf", pdf)])
    [message] = daemon.ticket(int(ticket["id"]))["messages"]
    [attachment] = message["attachments"]
    digest = hashlib.sha256(pdf).hexdigest()
    assert attachment["size"] == len(pdf)
    assert attachment["sha256"] == digest
    assert "/" not in attachment["filename"]
    blob = daemon.workdir / "data" / "blobs" / digest[:2] / digest[2:]
    assert blob.read_bytes() == pdf
    log = b"line 1\nline 2\n"
    daemon.send(
        make_mail(
            sender=ANA,
            subject=f"Re: {ticket['token']}",
            body="See the log.",
            attachments=[("install.log", "application/octet-stream", log)],
        ),
        mail_from=ANA,
    )
    relayed = wait_until(lambda: [m for m in smarthost.to(CUSTOMER) if "See the log" in m.body], 10, "relay")[0]
    assert relayed.attachment_names == ["install.log"]
    [part] = list(relayed.message.iter_attachments())
    assert part.get_content() == log


def test_a_relayed_text_attachment_keeps_its_charset(daemon: Daemon, smarthost: Smarthost) -> None:
    """An agent's UTF-8 text file reaches the customer saying its charset, so clients do not read it as
    US-ASCII."""
    from email.message import EmailMessage

    ticket, _ = open_ticket(daemon, smarthost)
    reply = EmailMessage()
    reply["From"], reply["To"], reply["Subject"] = ANA, SUPPORT, f"Re: {ticket['token']}"
    reply["Message-ID"] = "<notes@ana.example.com>"
    reply.set_content("The steps are attached.")
    reply.add_attachment("Paso 1: apagar la impresora. 日本語\n", subtype="plain", filename="pasos.txt")
    daemon.send(reply.as_bytes(), mail_from=ANA)
    relayed = wait_until(lambda: [m for m in smarthost.to(CUSTOMER) if "steps are" in m.body], 10, "relay")[0]
    [part] = list(relayed.message.iter_attachments())
    assert part.get_content_type() == "text/plain" and part.get_content_charset() == "utf-8"
    assert part.get_content() == "Paso 1: apagar la impresora. 日本語\n"


def test_a_mail_with_two_subject_fields_is_read_with_the_first(daemon: Daemon, smarthost: Smarthost) -> None:
    """Two Subject fields (a broken client): the ticket and its acknowledgement take the first, as mail
    readers show it, not a list of both."""
    raw = make_mail(subject="Testing outlook").replace(
        b"Subject: Testing outlook\r\n", b"Subject: Testing outlook\r\nSubject: Another PDF\r\n"
    )
    ticket, _ = open_ticket(daemon, smarthost, subject="unused")  # an unrelated ticket first: ids differ
    daemon.send(raw)
    daemon.wait_processed()
    [second] = [t for t in daemon.tickets() if t["id"] != ticket["id"]]
    assert second["subject"] == "Testing outlook"
    [ack] = [m for m in smarthost.to(CUSTOMER) if second["token"] in m["Subject"]]
    assert ack["Subject"].endswith("Testing outlook") and "[" not in ack["Subject"].split("]", 1)[1]


def test_a_non_ascii_message_id_is_left_out_of_references(daemon: Daemon, smarthost: Smarthost) -> None:
    """A customer's Message-ID with a non-ASCII local part cannot be a msg-id in our headers: the
    acknowledgement leaves it out (no RFC 2047 word that threads nothing), and a reply to the
    acknowledgement still threads into the ticket."""
    raw = make_mail(message_id="<tono.1@client.example.org>").replace(
        b"<tono.1@client.example.org>", "<toño.1@client.example.org>".encode()
    )
    daemon.send(raw)
    [ack] = smarthost.wait_for(CUSTOMER)
    head = ack.raw.split(b"\r\n\r\n", 1)[0]
    assert b"=?" not in head and "toño".encode() not in head
    daemon.send(make_mail(subject="Re: no token here", in_reply_to=ack["Message-ID"], body="Still broken."))
    daemon.wait_processed()
    [ticket] = daemon.tickets()
    assert [m["text"] for m in daemon.ticket(ticket["id"])["messages"]][-1] == "Still broken."


def test_a_nul_in_a_customers_text_goes_out_quoted_printable(daemon: Daemon, smarthost: Smarthost) -> None:
    """A NUL in a broken mail's text is no 7bit data: the agents' notice carrying that text (here a forward,
    whose whole body is the request) goes quoted-printable (=00), and decodes to the customer's words."""
    raw = (
        f"From: {CUSTOMER}\r\nTo: {SUPPORT}\r\nSubject: Fwd: broken bytes\r\n"
        "Message-ID: <nul@client.example.org>\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n"
        "On Mon, 23 Nov 2026 at 09:00, Boss <boss@example.org> wrote:\r\n> Before\x00after, it stopped.\r\n"
    ).encode()
    daemon.send(raw)
    [notice] = smarthost.wait_for(ANA)
    assert b"Content-Transfer-Encoding: quoted-printable" in notice.raw and b"=00" in notice.raw
    assert b"\x00" not in notice.raw and "> Before\x00after, it stopped." in notice.body


def test_out_of_office_in_a_customers_own_words_is_answered(daemon: Daemon, smarthost: Smarthost) -> None:
    """A customer writing "My manager is out of office, ..." is a person, not Lotus Notes' "AUTO: ... is out of the
    office": it is acknowledged and the agents are told."""
    daemon.send(make_mail(subject="My manager is out of office, who else can approve the refund?"))
    [ack] = smarthost.wait_for(CUSTOMER)
    assert "received" in ack["Subject"]
    assert smarthost.wait_for(ANA)


def test_duplicate_message_id_is_stored_once(daemon: Daemon, smarthost: Smarthost) -> None:
    """The same Message-ID delivered twice (an MTA retry) gives one ticket, one message, one ack."""
    raw = make_mail()
    daemon.send(raw)
    daemon.send(raw)
    daemon.wait_processed()
    smarthost.wait_for(CUSTOMER)
    [ticket] = daemon.tickets()
    assert len(daemon.ticket(int(ticket["id"]))["messages"]) == 1
    wait_until(lambda: len(smarthost.to(ANA)) == 1, 5, "the notice")
    assert len(smarthost.to(CUSTOMER)) == 1


def test_foreign_recipient_is_refused_never_relayed(daemon: Daemon) -> None:
    """RCPT for an address maild does not serve gets 550: never an open relay."""
    with smtplib.SMTP("127.0.0.1", daemon.port, timeout=10) as client:
        client.ehlo()
        client.mail(CUSTOMER)
        code, text = client.rcpt("victim@elsewhere.example")
        assert code == 550
        assert b"relay" in text
        assert client.rcpt(SUPPORT)[0] == 250


def test_a_subaddress_of_a_served_address_is_delivered_to_it(daemon: Daemon) -> None:
    """support+urgent@ and billing+invoices@ are support's and billing's (RFC 5233 subaddresses, which MTAs
    deliver to the base address): accepted at RCPT, and billing's mail lands in its queue; a tag on an address
    maild does not serve is still refused."""
    with smtplib.SMTP("127.0.0.1", daemon.port, timeout=10) as client:
        client.ehlo()
        client.mail(CUSTOMER)
        assert client.rcpt("support+urgent@elsewhere.example")[0] == 550
        assert client.rcpt("sales+support@example.com")[0] == 550
        assert client.rcpt("Billing+Invoices@example.com")[0] == 250
        client.data(make_mail(to=["Billing+Invoices@example.com"], subject="Invoice 7"))
    daemon.send(make_mail(subject="Urgent"), rcpt=["support+urgent@example.com"])
    tickets = daemon.wait_ticket(lambda ts: len(ts) == 2 and ts)
    assert sorted((t["subject"], t["queue"]) for t in tickets) == [("Invoice 7", "billing"), ("Urgent", "default")]


def test_oversized_message_gets_552(start_daemon: Callable[..., Daemon]) -> None:
    """A message over max_message_bytes is refused with 552, whether announced with SIZE= or not."""
    daemon = start_daemon(max_bytes=20_000)
    big = make_mail(body="x" * 30_000)
    with pytest.raises(smtplib.SMTPSenderRefused) as announced:
        daemon.send(big)
    assert announced.value.smtp_code == 552
    with smtplib.SMTP("127.0.0.1", daemon.port, timeout=10) as client:
        client.helo("client.example.org")  # plain HELO: no SIZE extension, the limit bites during DATA
        assert client.mail(CUSTOMER)[0] == 250
        assert client.rcpt(SUPPORT)[0] == 250
        code, _ = client.data(big)
        assert code == 552
    assert daemon.tickets() == []


def test_own_loop_and_machine_mail_get_no_reply(daemon: Daemon, smarthost: Smarthost) -> None:
    """Our own mail coming back is dropped; auto-replies, bounces and bulk mail are stored, never answered;
    of them only list and bulk mail, which a person may have written through a list, is told to agents."""
    daemon.send(make_mail(headers={"X-Maild-Loop": SUPPORT}, subject="looped"))
    daemon.send(make_mail(headers={"Auto-Submitted": "auto-replied"}, subject="Out of office"))
    daemon.send(make_mail(sender="MAILER-DAEMON@mx.example.org", subject="Undelivered"), mail_from="")
    daemon.send(
        make_mail(sender="news@shop.example", subject="Newsletter", headers={"Precedence": "bulk"}),
        mail_from="news@shop.example",
    )
    daemon.wait_processed()
    subjects = sorted(t["subject"] for t in daemon.tickets())
    assert subjects == ["Newsletter", "Out of office", "Undelivered"]
    [notice] = wait_until(lambda: smarthost.matching(ANA, "Newsletter"), 10, "the notice of the bulk mail")
    assert "Note: list or bulk mail (bulk: Precedence: bulk): no acknowledgement or answer was sent" in notice.body
    assert {rcpt for m in smarthost.mails for rcpt in m.rcpt_to} <= {ANA, LUIS}


def test_a_person_writing_through_a_mailing_list_is_heard_not_answered(daemon: Daemon, smarthost: Smarthost) -> None:
    """A customer's mail through a Google Group (List-Id, Precedence: list) opens a ticket the agents hear of;
    nobody answers the list, but an agent's reply reaches the customer."""
    group = {"List-Id": "<customers.groups.example.com>", "Precedence": "list"}
    daemon.send(make_mail(subject="Invoice wrong", body="Our invoice 42 is wrong.", headers=group))
    [notice] = wait_until(lambda: smarthost.matching(ANA, "Our invoice 42 is wrong"), 10, "the notice")
    assert "list or bulk mail" in notice.body
    [ticket] = daemon.tickets()
    daemon.send(
        make_mail(sender=ANA, subject=f"Re: {ticket['token']} Invoice wrong", body="Fixed, sorry."), mail_from=ANA
    )
    [reply] = wait_until(lambda: smarthost.matching(CUSTOMER, "Fixed, sorry"), 10, "the reply")
    assert smarthost.to(CUSTOMER) == [reply]  # no acknowledgement went out


def test_restart_keeps_tickets_and_sends_what_the_outbox_held(
    start_daemon: Callable[..., Daemon], smarthost: Smarthost
) -> None:
    """Mail queued while the smarthost was down is delivered, once, after a daemon restart."""
    smarthost.stop()
    daemon = start_daemon()
    daemon.send(make_mail())
    daemon.wait_processed()
    assert daemon.stop() == 0
    smarthost.start()
    daemon.start()
    [ack] = smarthost.wait_for(CUSTOMER)
    assert "received" in ack["Subject"]
    assert len(daemon.tickets()) == 1
    smarthost.wait_for(ANA)
    daemon.cli("outbox", "list", "--state", "sent")
    assert len(smarthost.to(CUSTOMER)) == 1


def test_mail_due_together_goes_over_one_smtp_session(
    start_daemon: Callable[..., Daemon], smarthost: Smarthost
) -> None:
    """Mail that is due at the same time is delivered over one session with the smarthost (one connect,
    greeting and EHLO), and a recipient refused on the way does not stop the mails after it."""
    smarthost.stop()
    daemon = start_daemon()
    for n in range(3):
        sender = f"c{n}@customer.example"
        daemon.send(make_mail(sender=sender, subject=f"Printer {n}"), mail_from=sender)
    daemon.wait_processed()
    assert daemon.stop() == 0
    for mail in _outbox(daemon):  # due now, all of them (their retries were spread over the down time)
        daemon.cli("outbox", "retry", str(mail["id"]))
    smarthost.refuse["c1@customer.example"] = "550 5.1.1 No such user"
    smarthost.start()
    daemon.start()
    wait_until(lambda: all(m["state"] in ("sent", "failed") for m in _outbox(daemon)), 10, "all attempted")
    outbox = _outbox(daemon)
    assert len(outbox) == 9  # an acknowledgement and two agents' notices per mail
    assert [m["rcpt_to"] for m in outbox if m["state"] == "failed"] == [["c1@customer.example"]]
    assert len(smarthost.mails) == 8
    assert len({m.peer for m in smarthost.mails}) == 1


def test_unreachable_smarthost_costs_one_connect_per_batch(tmp_path: Path) -> None:
    """When the smarthost drops every connection, the mails due with the first one are deferred with its
    error, without a connect each; each is retried later."""
    accepted = []
    with socket.create_server(("127.0.0.1", 0)) as server:
        server.settimeout(0.2)
        stop = threading.Event()

        def drop_connections() -> None:
            while not stop.is_set():
                with contextlib.suppress(TimeoutError):
                    connection, peer = server.accept()
                    accepted.append(peer)
                    connection.close()

        dropper = threading.Thread(target=drop_connections, daemon=True)
        dropper.start()
        daemon = Daemon(tmp_path, server.getsockname()[1])
        config = daemon.config_path.read_text()
        daemon.config_path.write_text(
            config.replace('retry_base = "1s"', 'retry_base = "1h"').replace('retry_max = "2s"', 'retry_max = "2h"')
        )
        daemon.start()
        try:
            daemon.send(make_mail())
            outbox = wait_until(
                lambda: [m for m in _outbox(daemon) if m["attempts"] == 1 and m["state"] == "queued"] or None,
                10,
                "the first attempt",
            )
            wait_until(lambda: len(_outbox(daemon)) == len(outbox), 5, "all three attempted")
        finally:
            assert daemon.stop() == 0
            stop.set()
            dropper.join()
    assert len(outbox) == 3
    assert len(accepted) == 1
    errors = {str(m["last_error"]).partition(": ")[2] for m in outbox}  # "<recipient>: <error>"
    assert len(errors) == 1 and "SMTPConnectError" in errors.pop()


def test_a_hung_smarthost_neither_holds_a_stop_nor_strands_mail_after_a_kill(
    tmp_path: Path, smarthost: Smarthost
) -> None:
    """A smarthost that takes the connection and never answers: SIGTERM drops the delivery in hand after a
    grace instead of waiting out three SMTP timeouts (systemd would SIGKILL first). After a SIGKILL
    mid-delivery, the next start takes the leased mail back and sends it at once, not when the 5-minute
    lease ends: only one `maild serve` runs on a data folder, so the leases were the dead daemon's."""
    with socket.create_server(("127.0.0.1", 0)) as hung:  # the kernel accepts; nobody ever answers
        hung_port = hung.getsockname()[1]
        daemon = Daemon(tmp_path, hung_port)
        daemon.start()
        daemon.send(make_mail())
        wait_until(lambda: any(m["state"] == "sending" for m in _outbox(daemon)), 10, "a delivery under way")
        second = daemon.cli("serve", check=False)
        assert second.returncode == 1 and "another maild serve is running on" in second.stderr
        assert daemon.stop() == 0  # within Daemon.stop's 30 s, though [outbound] timeout is 60 s
        assert "deliver_aborted" in daemon.log_path.read_text()
        assert {m["state"] for m in _outbox(daemon)} == {"queued"}
        daemon.start()
        wait_until(lambda: any(m["state"] == "sending" for m in _outbox(daemon)), 10, "a delivery under way")
        assert daemon.stop(signal.SIGKILL) == -signal.SIGKILL
    config = daemon.config_path.read_text()
    daemon.config_path.write_text(config.replace(f"port = {hung_port}", f"port = {smarthost.port}"))
    daemon.start()
    try:
        smarthost.wait_for(CUSTOMER, timeout=20)
        wait_until(lambda: all(m["state"] == "sent" for m in _outbox(daemon)), 20, "all sent")
        assert "outbound_released" in daemon.log_path.read_text()
    finally:
        assert daemon.stop() == 0


def test_smarthost_down_then_up_delivers_once(start_daemon: Callable[..., Daemon], smarthost: Smarthost) -> None:
    """A temporary refusal (450) is retried with backoff until accepted, and delivered exactly once."""
    smarthost.refuse[CUSTOMER] = "450 4.2.0 Mailbox busy, try later"
    daemon = start_daemon()
    daemon.send(make_mail())
    smarthost.wait_for(ANA)
    wait_until(lambda: any(m["state"] == "queued" and m["attempts"] >= 1 for m in _outbox(daemon)), 10, "a retry")
    del smarthost.refuse[CUSTOMER]
    smarthost.wait_for(CUSTOMER, timeout=15)
    wait_until(lambda: all(m["state"] == "sent" for m in _outbox(daemon)), 10, "all sent")
    assert len(smarthost.to(CUSTOMER)) == 1


def test_permanent_refusal_is_recorded_not_retried(start_daemon: Callable[..., Daemon], smarthost: Smarthost) -> None:
    """A 550 from the smarthost marks the mail failed with the server's words; it is not retried."""
    smarthost.refuse[CUSTOMER] = "550 5.1.1 No such user"
    daemon = start_daemon()
    daemon.send(make_mail())
    failed = wait_until(lambda: [m for m in _outbox(daemon) if m["state"] == "failed"], 10, "a failure")
    assert "550" in failed[0]["last_error"] and "No such user" in failed[0]["last_error"]
    assert failed[0]["attempts"] == 1


def _outbox(daemon: Daemon) -> list[dict[str, object]]:
    import json

    return list(json.loads(daemon.cli("outbox", "list", "--json").stdout))


@pytest.mark.parametrize("signame", ["SIGTERM", "SIGINT"])
def test_signal_stops_gracefully_with_exit_0(daemon: Daemon, smarthost: Smarthost, signame: str) -> None:
    """SIGTERM or SIGINT: the daemon finishes what it accepted and exits 0."""
    import signal

    daemon.send(make_mail())
    assert daemon.stop(getattr(signal, signame)) == 0
    assert [e for e in daemon.log_events() if e["event"] == "stopped"]
    assert "Traceback" not in daemon.log_path.read_text()


def test_each_pipeline_step_logs_one_json_event(daemon: Daemon, smarthost: Smarthost) -> None:
    """The daemon logs JSON lines: one `step` event per pipeline step, bound to message_id and ticket_id."""
    from maild.handlers import PIPELINE

    raw = make_mail()
    daemon.send(raw)
    smarthost.wait_for(CUSTOMER)
    daemon.wait_processed()
    steps = [e for e in daemon.log_events() if e["event"] == "step" and e["message_id"] == message_id_of(raw)]
    assert [e["step"] for e in steps] == list(PIPELINE)
    ticket_id = daemon.tickets()[0]["id"]
    assert all(e["ticket_id"] == ticket_id for e in steps if PIPELINE.index(e["step"]) >= PIPELINE.index("ticket"))
    assert any(e["event"] == "received" for e in daemon.log_events())
    assert any(e["event"] == "delivered" and e["ticket_id"] == ticket_id for e in daemon.log_events())


def test_at_info_level_each_mail_logs_one_processed_event(
    start_daemon: Callable[..., Daemon], smarthost: Smarthost
) -> None:
    """At the default log level a mail is one `processed` line (its outcome and the steps' notes), not a
    line per step; a dropped mail's line names the step that stopped it."""
    daemon = start_daemon()
    daemon.stop()
    daemon.config_path.write_text(daemon.config_path.read_text().replace('log_level = "debug"', 'log_level = "info"'))
    daemon.start()
    raw = make_mail()
    daemon.send(raw)
    (ack,) = smarthost.wait_for(CUSTOMER)
    daemon.wait_processed()
    daemon.send(ack.raw, mail_from="")  # our own acknowledgement, back: a loop
    daemon.wait_processed()
    events = daemon.log_events()
    assert not [e for e in events if e["event"] == "step"]
    processed = {e["message_id"]: e for e in events if e["event"] == "processed"}
    assert len(processed) == 2
    first = processed[message_id_of(raw)]
    assert (first["state"], first["ticket_id"], first["stopped_at"]) == ("done", daemon.tickets()[0]["id"], None)
    looped = processed[message_id_of(ack.raw)]
    assert (looped["state"], looped["stopped_at"]) == ("dropped", "loop_guard") and looped["reason"]


def test_forward_without_typed_text_keeps_the_whole_body(daemon: Daemon, smarthost: Smarthost) -> None:
    """A new ticket from a mail with nothing typed above the quoted block stores the whole body, not ""."""
    body = "On Mon, 23 Nov 2026 at 09:00, Boss <boss@example.org> wrote:\n> Please fix the VPN for Carmen.\n"
    daemon.send(make_mail(subject="Fwd: VPN", body=body))
    smarthost.wait_for(CUSTOMER)
    [message] = daemon.ticket(int(daemon.tickets()[0]["id"]))["messages"]
    assert "Please fix the VPN for Carmen." in message["text"]


def test_each_notice_answers_the_reply_it_reports(daemon: Daemon, smarthost: Smarthost) -> None:
    """A reply's notice has that reply as In-Reply-To, even when the notice before it, for the previous
    reply, was written in the same second (the thread's order alone would end with that notice)."""
    ticket, first = open_ticket(daemon, smarthost)
    replies = [make_mail(subject=f"Re: {ticket['token']} still burning", body=f"Update {n}.") for n in range(5)]
    for raw in replies:
        daemon.send(raw)
    for n, raw in enumerate(replies):
        [notice] = wait_until(lambda n=n: smarthost.matching(ANA, f"Update {n}."), 10, f"the notice of reply {n}")
        assert notice["In-Reply-To"] == message_id_of(raw)
        references = notice["References"].split()
        assert references[0] == message_id_of(first)
        assert references[-1] == message_id_of(raw)
        assert len(references) == len(set(references))


def test_a_relay_answers_the_customer_mail_the_agent_answered(daemon: Daemon, smarthost: Smarthost) -> None:
    """The relay of an agent's reply to a notice has as In-Reply-To the customer's mail that notice reported:
    the customer's newest (not our acknowledgement written in the same second), or an older one when the
    agent answered an older notice."""
    ticket, first = open_ticket(daemon, smarthost)
    [ack] = smarthost.to(CUSTOMER)
    second = make_mail(
        subject=f"Re: {ticket['token']} Printer on fire", body="It smokes.", in_reply_to=ack["Message-ID"]
    )
    daemon.send(second)
    [first_notice] = wait_until(lambda: smarthost.matching(ANA, "New ticket"), 10, "the new-ticket notice")
    [second_notice] = wait_until(lambda: smarthost.matching(ANA, "It smokes."), 10, "the reply's notice")

    def answer(notice: Captured, sender: str, body: str) -> Captured:
        references = [*notice["References"].split(), notice["Message-ID"]]
        reply = make_mail(
            sender=sender,
            subject=f"Re: {notice['Subject']}",
            body=body,
            in_reply_to=notice["Message-ID"],
            references=references,
        )
        daemon.send(reply, mail_from=sender)
        [relayed] = wait_until(lambda: smarthost.matching(CUSTOMER, body), 10, "the relay")
        return relayed

    relayed = answer(second_notice, ANA, "Unplug it now.")
    assert relayed["In-Reply-To"] == message_id_of(second)
    assert relayed["References"].split()[0] == message_id_of(first)
    relayed = answer(first_notice, LUIS, "About your first mail: which model is it?")
    assert relayed["In-Reply-To"] == message_id_of(first)


def test_a_long_ticket_still_threads_under_its_first_mail(
    start_daemon: Callable[..., Daemon], smarthost: Smarthost
) -> None:
    """Past 200 messages and outbox rows a notice's References are read from a window of the thread, not
    all of it: still 12 ids, the customer's first mail first, then the newest of this ticket's thread."""
    daemon = start_daemon(extra="[security]\nloop_mails = 1000\n")  # 110 replies in seconds: no loop here
    ticket, first = open_ticket(daemon, smarthost)
    replies = [make_mail(subject=f"Re: {ticket['token']} still burning", body=f"Update {n}.") for n in range(110)]
    for raw in replies:
        daemon.send(raw)
    daemon.wait_processed()
    [last] = wait_until(lambda: smarthost.matching(ANA, "Update 109."), 20, "the last reply's notice")
    references = last["References"].split()
    assert len(references) == 12
    assert references[0] == message_id_of(first)
    assert last["In-Reply-To"] == references[-1] == message_id_of(replies[-1])
    # The rest are from the end of the thread: late replies, or notices among the last ones sent to agents.
    to_agents = [m["Message-ID"] for m in smarthost.mails if ANA in m.rcpt_to or LUIS in m.rcpt_to]
    recent = {message_id_of(raw) for raw in replies[-20:]} | set(to_agents[-40:])
    assert set(references[1:]) <= recent
    # Our notices to agents are part of the thread too.
    assert any(ref.endswith(f".t{ticket['id']}@example.com>") for ref in references[1:])
    assert len(daemon.ticket(int(ticket["id"]))["messages"]) == 111


def test_a_long_non_ascii_sender_name_is_written_as_rfc_2047_allows(
    start_daemon: Callable[..., Daemon], smarthost: Smarthost
) -> None:
    """A from_name of many accented words: the acknowledgement's From is encoded words of at most 75
    characters (RFC 2047; it was one of over 100), broken after a space, on lines of at most 78, and reads
    back as the name."""
    name = "Atención al Cliente de Compañía Española de Servicios Técnicos Avanzados, S.A."
    daemon = start_daemon(
        extra=f'[[queues]]\nname = "sales"\naddress = "sales@example.com"\nsend_from = true\nfrom_name = "{name}"\n'
    )
    daemon.send(make_mail(to=["sales@example.com"], subject="A quote, please"), rcpt=["sales@example.com"])
    [ack] = smarthost.wait_for(CUSTOMER)
    header = ack.raw.split(b"\r\n\r\n")[0].decode("ascii")
    field = re.search(r"^From:[^\r]*(?:\r\n[ \t][^\r]*)*", header, re.MULTILINE)
    assert field is not None
    words = re.findall(r"=\?utf-8\?q\?[^?]*\?=", field.group(0))
    assert len(words) > 1 and all(len(w) <= 75 and w.endswith("_?=") for w in words[:-1])
    assert all(len(line) <= 78 for line in field.group(0).split("\r\n"))
    as_written = email.message_from_bytes(ack.raw)["From"]  # compat32: the field undecoded
    assert str(make_header(decode_header(as_written))) == f"{name} <sales@example.com>"


def test_a_queue_that_sends_as_itself(start_daemon: Callable[..., Daemon], smarthost: Smarthost) -> None:
    """With `send_from`, the customers of a queue's tickets get its mail From the queue's address (and its
    from_name), acknowledgements, relays and lifecycle mail alike, with support's envelope sender for the
    bounces; agents' notices and other queues' mail stay From the support address."""
    daemon = start_daemon(
        extra='[[queues]]\nname = "sales"\naddress = "sales@example.com"\nsend_from = true\nfrom_name = "ACME Ventas"\n'
    )
    daemon.send(make_mail(to=["sales@example.com"], subject="A quote, please"), rcpt=["sales@example.com"])
    [ack] = smarthost.wait_for(CUSTOMER)
    assert ack["From"] == "ACME Ventas <sales@example.com>" and ack.mail_from == SUPPORT
    [notice] = smarthost.wait_for(ANA)
    assert notice["From"] == f"ACME Support <{SUPPORT}>"
    ticket = daemon.tickets()[0]
    assert ticket["queue"] == "sales"
    daemon.send(
        make_mail(sender=ANA, subject=f"Re: {ticket['token']} {ticket['subject']}", body="Here it is."), mail_from=ANA
    )
    [_, relay] = smarthost.wait_for(CUSTOMER, 2)
    assert relay["From"] == "ACME Ventas <sales@example.com>" and "Here it is." in relay.body
    # Lifecycle mail too: waiting for the customer, who never answers, ends in a timer's mail.
    daemon.send(make_mail(sender=ANA, subject=f"Re: {ticket['token']}", body="#wait customer\n"), mail_from=ANA)
    daemon.wait_processed()
    later = (datetime.now(UTC) + timedelta(days=8)).isoformat()
    assert daemon.cli("tick", "--now", later).stdout.startswith("1 timer(s) run")
    [_, _, closing] = smarthost.wait_for(CUSTOMER, 3)
    assert "Resolved for lack of response" in closing["Subject"]
    assert closing["From"] == "ACME Ventas <sales@example.com>"

    daemon.send(make_mail(subject="Plain support"))
    [*_, plain] = smarthost.wait_for(CUSTOMER, 4)
    assert plain["From"] == f"ACME Support <{SUPPORT}>"


@pytest.mark.parametrize("smtputf8", [True, False])
def test_internationalised_addresses_do_not_hold_up_the_others(
    daemon: Daemon, smarthost: Smarthost, smtputf8: bool
) -> None:
    """A customer Cc's toño@example.es and bob@bücher.example (RFC 6531). With a smarthost offering SMTPUTF8
    the agent's reply reaches all three; without, bob goes by his domain's ASCII form and toño is refused for
    good, alone, with a notice to the agent. Either way the next mail goes out as usual."""
    smarthost.stop()
    smarthost.smtputf8 = smtputf8
    smarthost.start()
    raw = (
        f"From: {CUSTOMER}\r\nTo: {SUPPORT}\r\nCc: toño@example.es, bob@bücher.example\r\n"
        "Subject: Printer on fire\r\nMessage-ID: <eai@customer.example>\r\nMIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\nIt burns.\r\n"
    ).encode()
    daemon.send(raw)
    smarthost.wait_for(CUSTOMER)
    [ticket] = daemon.tickets()
    assert sorted(daemon.ticket(ticket["id"])["followers"]) == ["bob@bücher.example", "toño@example.es"]
    daemon.send(
        make_mail(sender=ANA, subject=f"Re: {ticket['token']} Printer on fire", body="We are on it."), mail_from=ANA
    )
    [relay] = wait_until(lambda: smarthost.matching(CUSTOMER, "We are on it"), 10, "the relay")
    if smtputf8:
        assert sorted(relay.rcpt_to) == ["bob@bücher.example", CUSTOMER, "toño@example.es"]
    else:
        assert sorted(relay.rcpt_to) == ["bob@xn--bcher-kva.example", CUSTOMER]
        [notice] = wait_until(lambda: [m for m in smarthost.to(ANA) if "Not delivered" in m["Subject"]], 10, "notice")
        assert "toño@example.es" in notice.body and "SMTPUTF8" in notice.body
    daemon.send(make_mail(subject="Another one"))  # the next mail goes out as usual
    wait_until(lambda: [m for m in smarthost.to(CUSTOMER) if "Another one" in m["Subject"]], 10, "the next ack")


FORM = "forms@website.example.org"
CARMEN = "carmen@example.net"


def test_a_web_forms_mail_is_answered_at_its_reply_to(daemon: Daemon, smarthost: Smarthost) -> None:
    """A contact form writes From itself, on behalf of the customer in Reply-To: the ticket is the customer's,
    the acknowledgement and the agents' answers go to them, never to the form, and their own reply from that
    address is a participant's."""
    daemon.send(
        make_mail(sender=f"Website <{FORM}>", subject="Contact form", headers={"Reply-To": f"Alicia Núñez <{FRIEND}>"}),
        mail_from=FORM,
    )
    [ack] = smarthost.wait_for(FRIEND)
    assert "received" in ack["Subject"]
    [notice] = smarthost.wait_for(ANA)
    assert f"from Alicia Núñez <{FRIEND}>." in notice.body and f"Sent through {FORM}, which gave" in notice.body
    [ticket] = daemon.tickets()
    assert ticket["requester"] == FRIEND
    detail = daemon.ticket(ticket["id"])
    assert detail["messages"][0]["from"] == FRIEND
    # The form's own address stays on record, in the history.
    assert (FORM, "requester", FORM, FRIEND) in {
        (h["actor"], h["field"], h["old"], h["new"]) for h in detail["history"]
    }
    daemon.send(make_mail(sender=ANA, subject=f"Re: {ticket['token']}", body="We are on it."), mail_from=ANA)
    wait_until(lambda: smarthost.matching(FRIEND, "We are on it"), 10, "the relay")
    daemon.send(make_mail(sender=FRIEND, subject=f"Re: {ticket['token']}", body="Thanks!"), mail_from=FRIEND)
    daemon.wait_processed()
    assert smarthost.to(FORM) == []
    assert [m["visibility"] for m in daemon.ticket(ticket["id"])["messages"]] == ["public"] * 3


def test_reply_to_counts_only_for_a_mail_that_starts_a_ticket(daemon: Daemon, smarthost: Smarthost) -> None:
    """On an existing ticket the mail is its From's: a stranger naming the customer in Reply-To stays a
    stranger (an internal note, nothing reopened), and the customer's own Reply-To elsewhere changes nothing;
    a Reply-To naming the desk, or several mailboxes, is ignored."""
    ticket, _ = open_ticket(daemon, smarthost)
    stranger = "mallory@evil.example"
    daemon.send(
        make_mail(sender=stranger, subject=f"Re: {ticket['token']}", body="Refund me.", headers={"Reply-To": CUSTOMER}),
        mail_from=stranger,
    )
    daemon.send(make_mail(subject=f"Re: {ticket['token']}", body="More.", headers={"Reply-To": FRIEND}))
    daemon.wait_processed()
    messages = daemon.ticket(int(str(ticket["id"])))["messages"]
    assert [(m["from"], m["visibility"]) for m in messages[1:]] == [(stranger, "internal"), (CUSTOMER, "public")]
    for reply_to in (SUPPORT, f"{FRIEND}, other@example.net"):
        daemon.send(make_mail(sender=CARMEN, headers={"Reply-To": reply_to}), mail_from=CARMEN)
    daemon.wait_processed()
    assert {t["requester"] for t in daemon.tickets()} == {CUSTOMER, CARMEN}
    assert smarthost.to(FRIEND) == [] and smarthost.to(stranger) == []


def test_a_blocked_address_in_reply_to_is_blocked(start_daemon: Callable[..., Daemon], smarthost: Smarthost) -> None:
    """A blocked sender cannot get answers by writing from elsewhere with Reply-To: the mail is dropped."""
    daemon = start_daemon(extra=f'[security]\nblocked_senders = ["{FRIEND}"]\n')
    daemon.send(make_mail(headers={"Reply-To": FRIEND}))
    daemon.wait_processed()
    assert daemon.tickets() == [] and daemon.spool_states()["dropped"] == 1


def test_mislabelled_charsets_are_read_as_meant(daemon: Daemon, smarthost: Smarthost) -> None:
    """Outlook's Windows-1252 under an "iso-8859-1" label, a raw 8-bit subject and an encoded name in quotes:
    the ticket, its message and the agents' notice keep every letter, quote and euro sign."""
    name = "=?Windows-1252?Q?Jos=E9_N=FA=F1ez?="
    raw = (
        f'From: "{name}" <{FRIEND}>\r\nTo: {SUPPORT}\r\nSubject: Factura de diciembre: 5€ de más\r\n'
        "Message-ID: <cp1252@client.example>\r\nMIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
        "Me cobraron “dos veces” 5€ – ¿pueden revisarlo?\r\n"
    ).encode("cp1252")
    daemon.send(raw, mail_from=FRIEND)
    [notice] = smarthost.wait_for(ANA)
    [ticket] = daemon.tickets()
    assert ticket["subject"] == "Factura de diciembre: 5€ de más"
    [message] = daemon.ticket(ticket["id"])["messages"]
    assert message["text"] == "Me cobraron “dos veces” 5€ – ¿pueden revisarlo?"
    assert f"from José Núñez <{FRIEND}>." in notice.body and "“dos veces” 5€" in notice.body


def test_nameless_files_and_a_boundaryless_body_are_kept(daemon: Daemon, smarthost: Smarthost) -> None:
    """A calendar invitation and a PDF with no file name are kept on the ticket and reach the agents; a
    multipart whose boundary is missing keeps its words as the text."""
    raw = (
        f"From: {CUSTOMER}\r\nTo: {SUPPORT}\r\nSubject: Meeting and invoice\r\nMessage-ID: <files@client.example>\r\n"
        'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="B"\r\n\r\n'
        "--B\r\nContent-Type: text/plain\r\n\r\nInvitation and invoice attached.\r\n"
        "--B\r\nContent-Type: text/calendar; method=REQUEST\r\n\r\nBEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n"
        "--B\r\nContent-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQ=\r\n--B--\r\n"
    ).encode()
    daemon.send(raw)
    [notice] = smarthost.wait_for(ANA)
    assert notice.attachment_names == ["attachment.ics", "attachment.pdf"]
    [ticket] = daemon.tickets()
    [message] = daemon.ticket(ticket["id"])["messages"]
    assert [(a["filename"], a["size"]) for a in message["attachments"]] == [
        ("attachment.ics", 30),
        ("attachment.pdf", 8),
    ]
    assert message["text"] == "Invitation and invoice attached."
    broken = (
        f"From: {FRIEND}\r\nTo: {SUPPORT}\r\nSubject: No boundary\r\nMessage-ID: <nob@client.example>\r\n"
        "Content-Type: multipart/alternative\r\n\r\nMy printer prints blank pages.\r\n"
    ).encode()
    daemon.send(broken, mail_from=FRIEND)
    daemon.wait_processed()
    [other] = [t for t in daemon.tickets() if t["id"] != ticket["id"]]
    assert daemon.ticket(other["id"])["messages"][0]["text"] == "My printer prints blank pages."


def test_a_junk_line_among_the_fields_still_gives_a_ticket_that_threads(daemon: Daemon, smarthost: Smarthost) -> None:
    """A broken gateway's stray line in the header block: the sender is acknowledged by name and subject,
    and a reply naming the mail's Message-ID threads into its ticket."""
    raw = (
        f"quite Delivered-To: {SUPPORT}\r\nFrom: {CUSTOMER}\r\nTo: {SUPPORT}\r\nSubject: Toner empty\r\n"
        "Message-ID: <junk-1@client.example>\r\n\r\nThe toner is empty.\r\n"
    ).encode()
    daemon.send(raw)
    [ack] = smarthost.wait_for(CUSTOMER)
    assert ack["Subject"].endswith("Toner empty")
    daemon.send(make_mail(subject="Re: toner", body="Still empty.", references=["<junk-1@client.example>"]))
    daemon.wait_processed()
    [ticket] = daemon.tickets()
    assert [m["text"] for m in daemon.ticket(ticket["id"])["messages"]] == ["The toner is empty.", "Still empty."]


@pytest.mark.parametrize(
    ("content_type", "body", "shown"),
    [
        ("text/plain; charset=utf-8", "Café crème, por favor.".encode("cp1252"), "Café crème, por favor."),
        ("text/plain; charset=utf-7", b"Caf+AOk- cr+AOg-me, por favor.", "Café crème, por favor."),
        # RFC 2231's form of the label, with a language: the email package raised on it, and it was shunted.
        (
            "text/plain; charset*=us-ascii'es'iso-8859-1",
            "Café crème, por favor.".encode("latin-1"),
            "Café crème, por favor.",
        ),
        (
            "text/html",
            '<html><head><meta charset="windows-1251"></head><body><p>Принтер сломан</p></body></html>'.encode(
                "cp1251"
            ),
            "Принтер сломан",
        ),
    ],
)
def test_more_charsets_read_as_meant(
    daemon: Daemon, smarthost: Smarthost, content_type: str, body: bytes, shown: str
) -> None:
    """Latin-1 bytes under a UTF-8 label, UTF-7, an RFC 2231 label, and an HTML page naming its charset only
    in <meta>: the ticket's text and the agents' notice keep every letter."""
    raw = (
        (
            f"From: {CUSTOMER}\r\nTo: {SUPPORT}\r\nSubject: Charset\r\nMessage-ID: <cs@client.example>\r\n"
            f"MIME-Version: 1.0\r\nContent-Type: {content_type}\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
        ).encode()
        + body
        + b"\r\n"
    )
    daemon.send(raw)
    [notice] = smarthost.wait_for(ANA)
    [ticket] = daemon.tickets()
    assert daemon.ticket(ticket["id"])["messages"][0]["text"] == shown and shown in notice.body
