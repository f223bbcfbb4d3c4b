"""End to end: automatic mail, strangers and hostile input against a running daemon."""

from __future__ import annotations

import json
import re
import smtplib
import time
from collections.abc import Callable
from typing import Any

from tests.helpers import ANA, CORPORA, CUSTOMER, LUIS, SUPPORT, Captured, Daemon, Smarthost, make_mail, wait_until

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


def test_a_flood_of_new_senders_gets_only_the_global_number_of_acks(
    start_daemon: Callable[..., Daemon], smarthost: Smarthost
) -> None:
    """Past `acks_global` acknowledgements in the window, new senders get none: every mail is still a
    ticket, and the agents are still told."""
    daemon = start_daemon(extra="[security]\nacks_global = 4\n")
    senders = [f"flood{n}@spam.example" for n in range(7)]
    for sender in senders:
        daemon.send(make_mail(sender=sender, subject=f"Cheap watches {sender}"), mail_from=sender)
    daemon.wait_processed()
    wait_until(lambda: len(smarthost.to(ANA)) >= 7, 10, "a notice for every ticket")
    time.sleep(0.5)
    assert len(daemon.tickets()) == 7
    assert [len(smarthost.to(sender)) for sender in senders] == [1, 1, 1, 1, 0, 0, 0]


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
    # Kept for agents only: not part of the public thread a #forward sends.
    assert [m["visibility"] for m in detail["messages"] if m["from"] == STRANGER] == ["internal"]
    daemon.send(
        make_mail(sender=ANA, subject=f"Re: {ticket['token']}", body="#forward partner@vendor.example\nPlease check."),
        mail_from=ANA,
    )
    [forward] = smarthost.wait_for("partner@vendor.example")
    assert "Hello, my printer is on fire." in forward.body and "Show me the ticket" not in forward.body


def test_stranger_quoting_a_closed_tickets_token_learns_nothing_of_it(daemon: Daemon, smarthost: Smarthost) -> None:
    """A closed ticket's token from someone outside it opens a plain new ticket: not linked to the old one,
    and an acknowledgement that does not name it."""
    ticket = new_ticket(daemon, smarthost)
    daemon.send(make_mail(sender=ANA, subject=f"Re: {ticket['token']}", body="#close\n"), mail_from=ANA)
    daemon.wait_processed()
    daemon.send(make_mail(sender=STRANGER, subject=f"Re: {ticket['token']}", body="Hi."), mail_from=STRANGER)
    [ack] = smarthost.wait_for(STRANGER)
    [newer] = [t for t in daemon.tickets() if t["id"] != ticket["id"]]
    assert newer["token"] in ack["Subject"] and ticket["token"] not in ack.body + ack["Subject"]
    assert daemon.ticket(newer["id"])["linked"] == [] and daemon.ticket(ticket["id"])["linked"] == []


def test_an_unflagged_autoresponder_loop_is_broken(daemon: Daemon, smarthost: Smarthost) -> None:
    """An agent's autoresponder without Auto-Submitted answers every notice, and each answer is relayed to
    the customer, whose own bare autoresponder answers back: a loop no header gives away. Past ten mails
    from one sender on a ticket within ten minutes (`[security] loop_mails`, `loop_window`), their next is
    kept as machine mail: internal, not relayed, not notified."""
    ticket = new_ticket(daemon, smarthost)
    for n in range(1, 13):
        daemon.send(make_mail(subject=f"Re: {ticket['token']}", body=f"Thank you for your mail ({n})."))
        daemon.wait_processed()
        daemon.send(
            make_mail(sender=ANA, subject=f"Re: {ticket['token']}", body=f"I am away until Monday ({n})."),
            mail_from=ANA,
        )
        daemon.wait_processed()
    kinds = [m["kind"] for m in json.loads(daemon.cli("outbox", "list", "--json").stdout)]
    # The customer's 10th-12th replies (their 11th-13th mails) and Ana's 11th and 12th are held: notices for
    # replies 1 (to both agents: unassigned yet) and 2-9 (to Ana), relays for Ana's 1-10.
    assert kinds.count("agent.customer_reply") == 2 + 8 and kinds.count("customer.reply") == 10
    assert kinds.count("agent.held") == 1  # Ana is told of her first held mail, and of no other
    messages = daemon.ticket(ticket["id"])["messages"]
    # c10 (held), a10 (relayed), then c11, a11, c12, a12, all held.
    assert [m["visibility"] for m in messages[-6:]] == ["internal", "public", *["internal"] * 4]
    steps = [json.loads(line) for line in daemon.log_path.read_text().splitlines() if '"step": "thread"' in line]
    assert f"loop suspected: 10 mails from {ANA} on this ticket within 10m" in steps[-1]["notes"]


def test_an_agents_mail_with_commands_is_never_held(daemon: Daemon, smarthost: Smarthost) -> None:
    """Ten mails from an agent on a ticket within ten minutes, then a reply with "#resolve": no autoresponder
    writes commands, so it is applied and relayed like any other, not held as a loop."""
    ticket = new_ticket(daemon, smarthost)
    for n in range(1, 11):
        daemon.send(
            make_mail(sender=ANA, subject=f"Re: {ticket['token']}", body=f"#time 5m\nStep {n} done."), mail_from=ANA
        )
        daemon.wait_processed()
    daemon.send(
        make_mail(sender=ANA, subject=f"Re: {ticket['token']}", body="#resolve responded\nAll fixed."), mail_from=ANA
    )
    daemon.wait_processed()
    assert daemon.ticket(ticket["id"])["status"] == "resolved"
    wait_until(lambda: smarthost.matching(CUSTOMER, "All fixed"), 10, "the relay")
    assert not [m for m in smarthost.to(ANA) if "Not sent" in m["Subject"]]


def test_our_address_with_a_tag_is_still_ours(daemon: Daemon, smarthost: Smarthost) -> None:
    """MTAs deliver support+anything to support: mail From support+tag is our own come back (dropped, not
    answered), and support+tag in a customer's Cc never becomes a follower."""
    daemon.send(make_mail(sender="support+loop@example.com", subject="Echo"), mail_from="support+loop@example.com")
    daemon.send(make_mail(cc=["support+copy@example.com", "boss@customer.example"]))
    smarthost.wait_for(CUSTOMER)
    [ticket] = daemon.tickets()
    assert daemon.ticket(ticket["id"])["followers"] == ["boss@customer.example"]
    [dropped] = json.loads(daemon.cli("dropped", "list", "--json").stdout)
    assert dropped["error"] == "loop: sent in the name of our own address"


def test_a_mail_from_nobody_is_kept_and_opens_no_ticket(daemon: Daemon, smarthost: Smarthost) -> None:
    """No From: and a null or bare envelope sender (over SMTP), or no From: and no --from (maild inject): nobody to
    open a ticket for or to answer. The mail is kept, dropped with that reason, and shows in `dropped list`."""
    daemon.send(b"Subject: hi\r\nMessage-ID: <nobody@x>\r\n\r\nbody\r\n", mail_from="")
    daemon.send(b"Subject: hi\r\nMessage-ID: <bare@x>\r\n\r\nbody\r\n", mail_from="x")  # no domain
    daemon.cli("inject", stdin=b"hello world, this is not a mail\n")
    daemon.wait_processed()
    assert daemon.tickets() == []
    dropped = json.loads(daemon.cli("dropped", "list", "--json").stdout)
    assert [d["error"] for d in dropped] == ["no sender address"] * 3
    daemon.cli("inject", stdin=make_mail())  # a From: is enough
    smarthost.wait_for(CUSTOMER)
    assert [t["requester"] for t in daemon.tickets()] == [CUSTOMER]


def test_what_maild_sends_keeps_lines_within_998_octets(daemon: Daemon, smarthost: Smarthost) -> None:
    """A subject with a pasted 1,070-character URL, a 1,500-character Message-ID and a path for a file name:
    maild's mail still has no line over RFC 5322's 998 octets (smarthosts refuse it for good), the subject
    reads back the same, and the attachment is offered under its last name component, never a path."""
    subject = "Broken link https://example.com/" + "a" * 1070 + " please"
    long_id = f"<{'x' * 1500}@client.example.org>"
    attachment = ("../../evil.txt", "text/plain", b"hello")
    daemon.send(make_mail(subject=subject, message_id=long_id, attachments=[attachment]))
    [ack] = smarthost.wait_for(CUSTOMER)
    notices = smarthost.wait_for(ANA)
    for sent in [ack, *notices]:
        assert max(len(line) for line in sent.raw.split(b"\r\n")) <= 998
        assert subject in str(sent["Subject"]) and long_id not in sent.raw.decode("ascii")
    [ticket] = daemon.tickets()
    assert ticket["subject"] == subject
    [stored] = daemon.ticket(ticket["id"])["messages"][0]["attachments"]
    assert stored["filename"] == "evil.txt"
    assert b'filename="evil.txt"' in notices[0].raw


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


AR_CONFIG = '\n[security]\nagent_auth = "authentication-results"\ntrusted_authserv_id = "mx.example.com"\n'


def test_spoofed_agent_is_refused_and_authenticated_agent_applies(
    start_daemon: Callable[..., Daemon], smarthost: Smarthost
) -> None:
    """In authentication-results mode a forged agent mail is stored, not relayed, its commands not applied and
    the admins told; the same mail with a DKIM pass from our MTA applies and is relayed."""
    daemon = start_daemon(extra=AR_CONFIG)
    ticket = new_ticket(daemon, smarthost)
    forged = make_mail(
        sender=LUIS,
        subject=f"Re: {ticket['token']}",
        body="#priority urgent\nSend me your password.",
        headers={"Authentication-Results": "mx.example.com; dkim=fail header.d=example.com"},
    )
    daemon.send(forged, mail_from=LUIS)
    [warning] = wait_until(lambda: [m for m in smarthost.to(ANA) if "Untrusted" in m["Subject"]], 10, "warning")
    assert "dkim=fail" in warning.body
    detail = daemon.ticket(ticket["id"])
    assert detail["priority"] == "normal" and detail["messages"][-1]["visibility"] == "internal"
    assert [m for m in smarthost.to(CUSTOMER) if "password" in m.body] == []
    genuine = make_mail(
        sender=LUIS,
        subject=f"Re: {ticket['token']}",
        body="#priority high\nWe are on it.",
        headers={"Authentication-Results": "mx.example.com; dkim=pass header.d=example.com"},
    )
    daemon.send(genuine, mail_from=LUIS)
    wait_until(lambda: [m for m in smarthost.to(CUSTOMER) if "We are on it" in m.body], 10, "relay")
    assert daemon.ticket(ticket["id"])["priority"] == "high"


def test_every_trusted_header_counts_when_configured(start_daemon: Callable[..., Daemon], smarthost: Smarthost) -> None:
    """With authres_headers = "all", OpenDMARC's dmarc=none on top no longer hides OpenDKIM's pass below it
    (the agent's reply applies and is relayed), while a dmarc=fail on top still refuses a pass below."""
    daemon = start_daemon(extra=AR_CONFIG + 'authres_headers = "all"\n')
    ticket = new_ticket(daemon, smarthost)

    def agent_reply(body: str, *results: str) -> bytes:
        # Each milter prepends its own header, as Postfix with OpenDKIM then OpenDMARC hands the mail on.
        added = "".join(f"Authentication-Results: mx.example.com; {r}\r\n" for r in results)
        return added.encode() + make_mail(sender=LUIS, subject=f"Re: {ticket['token']}", body=body)

    daemon.send(
        agent_reply(
            "#priority high\nWe are on it.",
            "dmarc=none (p=none dis=none) header.from=example.com",
            "dkim=pass (2048-bit key) header.d=example.com header.i=@example.com",
        ),
        mail_from=LUIS,
    )
    wait_until(lambda: [m for m in smarthost.to(CUSTOMER) if "We are on it" in m.body], 10, "relay")
    assert daemon.ticket(ticket["id"])["priority"] == "high"
    daemon.send(
        agent_reply(
            "#priority low\nSend me your password.",
            "dmarc=fail (p=reject dis=none) header.from=example.com",
            "dkim=pass header.d=example.com",
        ),
        mail_from=LUIS,
    )
    [warning] = wait_until(lambda: [m for m in smarthost.to(ANA) if "Untrusted" in m["Subject"]], 10, "warning")
    assert "dmarc=fail" in warning.body
    assert daemon.ticket(ticket["id"])["priority"] == "high"
    assert [m for m in smarthost.to(CUSTOMER) if "password" in m.body] == []


def _dsn(message_id: str, status: str, returned_type: str, returned: bytes) -> bytes:
    """A Postfix-style delivery report to support: mail to the customer failed with ``status``; ``returned``
    is what it gives back of that mail, as a ``returned_type`` part (its header block, or all of it)."""
    return (
        (
            "From: Mail Delivery System <MAILER-DAEMON@mx.example.org>\r\n"
            f"To: {SUPPORT}\r\nSubject: Undelivered Mail Returned to Sender\r\n"
            f"Message-ID: {message_id}\r\nMIME-Version: 1.0\r\n"
            'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\r\n\r\n'
            "--B\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered.\r\n"
            "--B\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example.org\r\n\r\n"
            f"Final-Recipient: rfc822; {CUSTOMER}\r\nAction: failed\r\nStatus: {status}\r\n\r\n"
            f"--B\r\nContent-Type: {returned_type}\r\n\r\n"
        ).encode()
        + returned
        + b"\r\n--B--\r\n"
    )


def _returned_headers(mail: Captured) -> bytes:
    """The header fields a report returning only headers gives back of our ``mail``."""
    return (
        f"From: ACME Support <{SUPPORT}>\r\nTo: {CUSTOMER}\r\nSubject: {mail['Subject']}\r\n"
        f"Message-ID: {mail['Message-ID']}\r\n"
    ).encode()


def test_bounce_of_our_notice_is_recorded_not_threaded_as_a_reply(daemon: Daemon, smarthost: Smarthost) -> None:
    """A DSN returning our acknowledgement is recorded on that outbound mail and kept on the ticket for
    agents, never as a customer reply; nobody is mailed about it."""
    ticket = new_ticket(daemon, smarthost)
    [ack] = smarthost.to(CUSTOMER)
    before = len(smarthost.mails)
    dsn = _dsn("<dsn-1@mx.example.org>", "5.1.1", "text/rfc822-headers", _returned_headers(ack))
    daemon.send(dsn, mail_from="")
    daemon.wait_processed()

    rows = json.loads(daemon.cli("outbox", "list", "--json").stdout)
    [acked] = [r for r in rows if r["message_id"] == ack["Message-ID"]]
    assert acked["bounces"][0]["recipients"] == [CUSTOMER] and acked["bounces"][0]["status"] == "5.1.1"
    detail = daemon.ticket(ticket["id"])
    assert detail["messages"][-1]["visibility"] == "internal"
    assert detail["status"] == "new" and len(daemon.tickets()) == 1
    time.sleep(0.5)
    assert len(smarthost.mails) == before
    # mail-parser's warning about the text/rfc822-headers part was a plain-text line among the JSON ones.
    lines = daemon.log_path.read_text().splitlines()
    assert lines and all(line.startswith("{") and json.loads(line) for line in lines)


def test_agents_hear_when_their_reply_does_not_reach_the_customer(daemon: Daemon, smarthost: Smarthost) -> None:
    """A reply the smarthost refuses for good, or one that bounces later, gets the assignee a notice naming
    the address and the error; a bounced acknowledgement (above) does not, as it carried no agent's words."""
    ticket = new_ticket(daemon, smarthost)
    smarthost.refuse[CUSTOMER] = "550 5.1.1 <customer@example.org>: No such user"
    daemon.send(make_mail(sender=ANA, subject=f"Re: {ticket['token']}", body="Please unplug it."), mail_from=ANA)
    [notice] = wait_until(lambda: [m for m in smarthost.to(ANA) if "Not delivered" in m["Subject"]], 10, "notice")
    assert notice["Subject"] == f"{ticket['token']} Not delivered: Printer on fire"
    assert f"{CUSTOMER}: 550 5.1.1 <customer@example.org>: No such user" in notice.body
    assert f'("{ticket["token"]} Re: Printer on fire") did not reach' in notice.body
    assert notice["In-Reply-To"] in notice["References"]
    assert [m for m in smarthost.mails if "Not delivered" in m["Subject"] and ANA not in m.rcpt_to] == []

    del smarthost.refuse[CUSTOMER]
    daemon.send(make_mail(sender=ANA, subject=f"Re: {ticket['token']}", body="Try it now."), mail_from=ANA)
    [relayed] = wait_until(lambda: [m for m in smarthost.to(CUSTOMER) if "Try it now" in m.body], 10, "relay")
    dsn = _dsn("<dsn-2@mx.example.org>", "5.2.2", "text/rfc822-headers", _returned_headers(relayed))
    daemon.send(dsn, mail_from="")
    notices = wait_until(
        lambda: [m for m in smarthost.to(ANA) if "Not delivered" in m["Subject"]][1:] or None, 10, "second notice"
    )
    assert f"{CUSTOMER}: returned by the receiving mail system (5.2.2)" in notices[0].body
    # A second report of the same loss (another relay's DSN) is recorded on the mail, and told of no more.
    daemon.send(dsn.replace(b"<dsn-2@mx.example.org>", b"<dsn-3@mx2.example.org>"), mail_from="")
    daemon.wait_processed()
    rows = json.loads(daemon.cli("outbox", "list", "--json").stdout)
    [bounced] = [r for r in rows if r["message_id"] == relayed["Message-ID"]]
    assert [b["status"] for b in bounced["bounces"]] == ["5.2.2", "5.2.2"]
    time.sleep(0.5)
    assert len([m for m in smarthost.to(ANA) if "Not delivered" in m["Subject"]]) == 2


def test_agents_hear_when_delivery_to_the_customer_is_given_up(daemon: Daemon, smarthost: Smarthost) -> None:
    """A reply deferred (4xx) until `give_up_after` gets the assignee the same notice, with the last error."""
    daemon.stop()
    config = daemon.config_path.read_text().replace('retry_max = "2s"', 'retry_max = "1s"\ngive_up_after = "2s"')
    daemon.config_path.write_text(config)
    daemon.start()
    ticket = new_ticket(daemon, smarthost)
    smarthost.refuse[CUSTOMER] = "450 4.2.0 Mailbox busy, try later"
    daemon.send(make_mail(sender=ANA, subject=f"Re: {ticket['token']}", body="Please unplug it."), mail_from=ANA)
    [notice] = wait_until(lambda: [m for m in smarthost.to(ANA) if "Not delivered" in m["Subject"]], 15, "notice")
    assert f"{CUSTOMER}: 450 4.2.0 Mailbox busy, try later" in notice.body
    [failed] = [r for r in json.loads(daemon.cli("outbox", "list", "--json").stdout) if r["state"] == "failed"]
    assert failed["kind"] == "customer.reply" and failed["attempts"] >= 2


def _header_names(raw: bytes) -> list[bytes]:
    """The names of a mail's top-level headers, as its recipient's MTA reads them."""
    head = raw.split(b"\r\n\r\n", 1)[0]
    return [line.split(b":", 1)[0].lower() for line in head.split(b"\r\n") if line and line[:1] not in b" \t"]


def test_encoded_line_breaks_from_strangers_never_become_headers(daemon: Daemon, smarthost: Smarthost) -> None:
    """A subject and an attachment name whose encoded words decode to CR LF + "Bcc: ..." reach the
    acknowledgement, the agents' notices and the relay as text on one line: no Bcc or X-Evil header is
    added, and nobody but the intended recipients is mailed. (Two layers guard this: parsing keeps names and
    subjects on one line, and so does the composer, whose guard test_units checks alone.)"""
    victim = "victim@elsewhere.example"
    first = (
        f"From: {CUSTOMER}\r\nTo: {SUPPORT}\r\nSubject: =?utf-8?q?Hello=0D=0ABcc=3A_{victim}?=\r\n"
        "Message-ID: <inject-1@client.example.org>\r\nDate: Mon, 23 Nov 2026 10:00:00 +0000\r\n"
        "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nMy printer is on fire.\r\n"
    ).encode()
    daemon.send(first)
    [ack] = smarthost.wait_for(CUSTOMER)
    ticket = daemon.tickets()[0]
    notices = [smarthost.wait_for(agent)[0] for agent in (ANA, LUIS)]
    # An agent answers with an attachment whose RFC 2231 name decodes to a header line.
    reply = (
        f"From: Ana <{ANA}>\r\nTo: {SUPPORT}\r\nSubject: Re: {ticket['token']}\r\n"
        "Message-ID: <inject-2@client.example.org>\r\nDate: Mon, 23 Nov 2026 10:05:00 +0000\r\n"
        'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="b1"\r\n\r\n'
        "--b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nHere is the report.\r\n"
        "--b1\r\nContent-Type: application/pdf\r\n"
        "Content-Disposition: attachment; filename*=utf-8''report%0D%0AX-Evil%3A%201.pdf\r\n"
        "Content-Transfer-Encoding: base64\r\n\r\nJVBERg==\r\n--b1--\r\n"
    ).encode()
    daemon.send(reply, mail_from=ANA)
    relayed = wait_until(lambda: [m for m in smarthost.to(CUSTOMER) if "the report" in m.body], 10, "relay")[0]
    for mail in (ack, *notices, relayed):
        assert b"bcc" not in _header_names(mail.raw) and b"x-evil" not in _header_names(mail.raw)
        assert victim not in mail.rcpt_to
    assert re.search(rf"Hello\s+Bcc: {victim}$", ack["Subject"])  # the text survives, on one line
    (part,) = relayed.message.iter_attachments()
    assert re.fullmatch(r"report\s+X-Evil: 1\.pdf", str(part.get_filename()))
    assert part.get_content() == b"%PDF"
    assert all(victim not in m.rcpt_to for m in smarthost.mails)


def test_list_servers_bulk_senders_and_no_reply_addresses_get_no_answer(daemon: Daemon, smarthost: Smarthost) -> None:
    """A Mailman digest from list-request@, a LISTSERV post whose Sender is owner-list@ and a mail from
    noreply@ each open a ticket the agents hear of, and none is acknowledged; an Exim bounce
    (X-Failed-Recipients) is told to nobody."""
    digest = make_mail(
        sender="ppp-request@lists.example", subject="PPP digest, Vol 1 #2", headers={"X-Mailman-Version": "2.1"}
    )
    daemon.send(digest, mail_from="ppp-bounces@lists.example")
    post = make_mail(sender=STRANGER, subject="Printers on the list", headers={"Sender": "owner-rrga-l@lists.example"})
    daemon.send(post, mail_from="owner-rrga-l@lists.example")
    noreply = make_mail(sender="noreply@shop.example", subject="Your order 1234 could not be shipped")
    daemon.send(noreply, mail_from="noreply@shop.example")
    exim = make_mail(
        sender="someone@mx.example", subject="Mail delivery failed", headers={"X-Failed-Recipients": CUSTOMER}
    )
    daemon.send(exim, mail_from="someone@mx.example")
    daemon.wait_processed()
    notices = wait_until(lambda: len(smarthost.to(ANA)) >= 3 and smarthost.to(ANA), 10, "three notices")
    assert sorted(m["Subject"].split(": ", 1)[1] for m in notices) == [
        "PPP digest, Vol 1 #2",
        "Printers on the list",
        "Your order 1234 could not be shipped",
    ]
    assert sum("list or bulk mail" in m.body for m in notices) == 2
    time.sleep(1)  # what the outbound worker would still send
    assert {r for m in smarthost.mails for r in m.rcpt_to} == {ANA, LUIS}  # agents only: no acknowledgement
    assert len(daemon.tickets()) == 4  # the bounce is kept on a ticket of its own, as machine mail


def test_the_command_line_shows_control_characters_escaped(daemon: Daemon, smarthost: Smarthost) -> None:
    """A subject or text carrying a terminal escape (here one retitling the window) is printed by `ticket
    list` and `ticket show` as a visible escape, never as the control characters a terminal would obey."""
    raw = make_mail(subject="placeholder", body="Look\x1b[2J here").replace(
        b"Subject: placeholder", b"Subject: =?utf-8?q?hi=1B]0;pwned=07?="
    )
    daemon.send(raw)
    smarthost.wait_for(CUSTOMER)
    [ticket] = daemon.tickets()
    assert ticket["subject"] == "hi\x1b]0;pwned\x07"  # the JSON keeps the subject as it came
    listed = daemon.cli("ticket", "list").stdout
    shown = daemon.cli("ticket", "show", str(ticket["id"])).stdout
    for output in (listed, shown):
        assert "\x1b" not in output and "\x07" not in output
        assert "hi\\x1b]0;pwned\\x07" in output


def test_a_bounces_returned_mail_is_kept_as_one_file(daemon: Daemon, smarthost: Smarthost) -> None:
    """A delivery report returning our whole acknowledgement keeps it as one .eml file on the ticket's
    internal message (its own files inside); the report's status fields are no file."""
    new_ticket(daemon, smarthost)
    [ack] = smarthost.to(CUSTOMER)
    dsn = _dsn("<dsn-2@mx.example.org>", "5.1.1", "message/rfc822", ack.raw)
    daemon.send(dsn, mail_from="")
    daemon.wait_processed()
    [ticket] = daemon.tickets()
    [returned] = daemon.ticket(ticket["id"])["messages"][-1]["attachments"]
    assert returned["filename"] == f"{ack['Subject']}.eml" and returned["size"] > len(ack.raw) // 2


def test_role_mailboxes_are_people_and_spanish_out_of_office_is_not(daemon: Daemon, smarthost: Smarthost) -> None:
    """product-owner@ (a list server's shape, but in From) is a person and gets an acknowledgement; a
    "Fuera de la oficina:" responder with no telltale header gets none."""
    owner = "product-owner@customer.example"
    daemon.send(make_mail(sender=owner, subject="Roadmap question"), mail_from=owner)
    daemon.send(make_mail(sender=STRANGER, subject="Fuera de la oficina: Roadmap question"), mail_from=STRANGER)
    [ack] = smarthost.wait_for(owner)
    assert "received" in ack["Subject"]
    daemon.wait_processed()
    time.sleep(0.5)
    assert smarthost.to(STRANGER) == []
