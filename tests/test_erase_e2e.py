"""End to end: `maild erase` against a running daemon, for a customer's data-protection request."""

from __future__ import annotations

import hashlib
import json
import signal
import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tests.helpers import ANA, CUSTOMER, LUIS, SUPPORT, Daemon, Smarthost, make_mail, wait_until

OTHER = "other@example.net"
SECRET = "Zebra-7731"  # in the erased ticket's subject and text, nowhere else
SLA = '[sla.normal]\nfirst_response = "4h"\nresolution = "2d"\nwarn_before = "1h"\n'


def _agent_mail(daemon: Daemon, ticket: dict[str, Any], body: str) -> None:
    daemon.send(make_mail(sender=ANA, subject=f"Re: {ticket['token']} {ticket['subject']}", body=body), mail_from=ANA)
    daemon.wait_processed()


def _ticket_of(daemon: Daemon, requester: str, subject: str) -> dict[str, Any]:
    return next(t for t in daemon.tickets() if t["requester"] == requester and t["subject"] == subject)


def _blob(daemon: Daemon, data: bytes) -> Path:
    digest = hashlib.sha256(data).hexdigest()
    return daemon.workdir / "data" / "blobs" / digest[:2] / digest[2:]


def _database_holds(daemon: Daemon, text: str) -> bool:
    return any(text.encode() in path.read_bytes() for path in (daemon.workdir / "data").glob("maild.sqlite3*"))


def _sql(daemon: Daemon, sql: str, *params: object) -> list[tuple[object, ...]]:
    db = sqlite3.connect(daemon.workdir / "data" / "maild.sqlite3", timeout=10)
    try:
        rows = db.execute(sql, params).fetchall()
        db.commit()
        return rows
    finally:
        db.close()


def _timers_of(daemon: Daemon, ticket_id: int) -> object:
    return _sql(daemon, "SELECT count(*) FROM timers WHERE ticket_id = ?", ticket_id)[0][0]


def _dangling_references(daemon: Daemon) -> list[tuple[object, ...]]:
    """Rows naming a row that is gone: the erasure runs without SQLite's checks, so the test checks."""
    return _sql(daemon, "PRAGMA foreign_key_check")


def test_erasing_a_ticket_leaves_no_trace_of_it_and_never_gives_its_number_again(
    start_daemon: Callable[..., Daemon], smarthost: Smarthost
) -> None:
    """`maild erase ticket` says what would go, then removes the ticket, its mail in and out, its time and
    the attachment files no other ticket names, down to the bytes of the database files. The other ticket
    keeps the file they share; the customer's later reply opens a new ticket with a new number, and an MTA
    delivering the erased mail again opens nothing."""
    daemon = start_daemon(extra=SLA)  # so the ticket has timers to erase too
    shared, own = b"price list " * 200, b"passport scan " * 200
    daemon.send(
        make_mail(sender=OTHER, subject="Prices", attachments=[("prices.pdf", "application/pdf", shared)]),
        mail_from=OTHER,
    )
    smarthost.wait_for(OTHER)
    original = make_mail(
        subject=f"Account {SECRET}",
        body=f"My customer number is {SECRET}.",
        attachments=[("prices.pdf", "application/pdf", shared), ("passport.pdf", "application/pdf", own)],
    )
    daemon.send(original)
    [ack] = smarthost.wait_for(CUSTOMER)
    mine, theirs = _ticket_of(daemon, CUSTOMER, f"Account {SECRET}"), _ticket_of(daemon, OTHER, "Prices")
    _agent_mail(daemon, mine, f"#time 30m\n#tag +vip\n#link {theirs['id']}\nYour account {SECRET} is fixed.\n")
    assert daemon.ticket(theirs["id"])["linked"] == [mine["id"]]
    smarthost.wait_for(CUSTOMER, 2)
    assert _blob(daemon, shared).exists() and _blob(daemon, own).exists()
    assert _database_holds(daemon, SECRET) and _timers_of(daemon, mine["id"]) > 0

    dry = daemon.cli("erase", "ticket", mine["token"])
    assert (
        f"would erase tickets: {mine['id']}; 2 messages, 2 attachments (1 file(s) no other ticket shares)" in dry.stdout
    )
    assert "30 minutes of recorded time" in dry.stdout and "nothing changed: run again with --yes" in dry.stdout
    assert daemon.ticket(mine["id"])["subject"] == f"Account {SECRET}" and _blob(daemon, own).exists()

    done = json.loads(daemon.cli("erase", "ticket", str(mine["id"]), "--yes", "--json").stdout)
    assert done["applied"] and done["tickets"] == [mine["id"]]
    assert (done["messages"], done["attachments"], done["files"], done["time_minutes"]) == (2, 2, 1, 30)
    assert done["received"] == 2  # the customer's mail and the agent's reply
    assert done["sent"] >= 3  # the acknowledgement, the agent's notice, the relay (and the transcript)
    assert done["wal_emptied"] is True
    gone = daemon.cli("ticket", "show", str(mine["id"]), check=False)
    assert gone.returncode == 1
    assert json.loads(daemon.cli("outbox", "list", "--ticket", str(mine["id"]), "--json").stdout) == []
    assert not _blob(daemon, own).exists() and _blob(daemon, shared).exists()
    assert [m["attachments"][0]["filename"] for m in daemon.ticket(theirs["id"])["messages"]] == ["prices.pdf"]
    assert daemon.ticket(theirs["id"])["linked"] == [] and _timers_of(daemon, mine["id"]) == 0
    assert daemon.spool_states()["erased"] == 2
    assert not _database_holds(daemon, SECRET)
    assert _dangling_references(daemon) == []

    daemon.send(original)  # the MTA delivers it again: its Message-ID is still known
    daemon.send(make_mail(subject=f"Re: {ack['Subject']}", body="Any news?", in_reply_to=ack["Message-ID"]))
    daemon.wait_processed()
    [reply] = [t for t in daemon.tickets() if t["requester"] == CUSTOMER]
    assert reply["id"] == mine["id"] + 1  # not the erased number, the highest SQLite would give again
    assert [m["text"] for m in daemon.ticket(reply["id"])["messages"]] == ["Any news?"]
    assert len(daemon.tickets()) == 2

    missing = daemon.cli("erase", "ticket", "999", "--yes", check=False)
    assert missing.returncode == 1 and missing.stderr.strip() == "maild: no ticket 999"


def test_erasing_a_customer_takes_their_tickets_and_their_traces_elsewhere(
    daemon: Daemon, smarthost: Smarthost
) -> None:
    """`maild erase customer` removes the tickets the customer opened with those merged into them, their mail
    that opened none, and their address from other tickets' followers and history; a ticket of theirs merged
    into another customer's stays there, and another's merged into theirs goes: the report says both. A merged
    ticket alone, or an agent, is refused."""
    dup = "dup@example.net"
    daemon.send(make_mail(subject="Invoice wrong"))
    daemon.send(make_mail(subject="Invoice still wrong"))
    daemon.send(make_mail(sender=OTHER, subject="Outage"), mail_from=OTHER)
    daemon.send(make_mail(subject="Outage here too"))
    daemon.send(make_mail(sender=dup, subject="Invoice wrong for us too"), mail_from=dup)
    daemon.send(make_mail(headers={"X-Maild-Loop": SUPPORT}, subject="looped"))  # dropped: opens no ticket
    daemon.wait_processed()
    first, second = _ticket_of(daemon, CUSTOMER, "Invoice wrong"), _ticket_of(daemon, CUSTOMER, "Invoice still wrong")
    outage, too = _ticket_of(daemon, OTHER, "Outage"), _ticket_of(daemon, CUSTOMER, "Outage here too")
    _agent_mail(daemon, second, f"#merge {first['id']}\n")
    _agent_mail(daemon, too, f"#merge {outage['id']}\n")
    theirs = _ticket_of(daemon, dup, "Invoice wrong for us too")
    _agent_mail(daemon, theirs, f"#merge {first['id']}\n")
    assert CUSTOMER in daemon.ticket(outage["id"])["followers"]
    assert any(CUSTOMER in (h["old"], h["new"], h["actor"]) for h in daemon.ticket(outage["id"])["history"])

    merged = daemon.cli("erase", "ticket", str(second["id"]), check=False)
    assert merged.returncode == 1
    assert merged.stderr.strip() == (
        f"maild: ticket {second['id']} was merged into {first['id']}, which holds its mail:"
        f" erase {first['id']} (it takes {second['id']} with it)"
    )
    agent = daemon.cli("erase", "customer", ANA, check=False)
    assert agent.returncode == 1 and "one of this desk's own addresses" in agent.stderr

    done = json.loads(daemon.cli("erase", "customer", CUSTOMER.upper(), "--yes", "--json").stdout)
    assert done["tickets"] == [first["id"], second["id"], theirs["id"]]
    assert done["followed"] == 1 and done["history_mentions"] >= 1
    # The three invoice mails, the agent's two #merges into the first and the looped mail; "Outage here too"
    # lives on in the other customer's ticket.
    assert done["received"] == 6
    assert done["notes"] == [
        f"ticket {too['id']} was merged into {outage['id']}, another customer's ticket that holds its mail:"
        f" erase {outage['id']} too if it must go",
        f"ticket {theirs['id']}, opened by {dup}, goes too: it was merged into one of these",
        f"1 message(s) {CUSTOMER} wrote on other customers' tickets (part of their record; erase those tickets"
        " to remove them)",
    ]
    assert [t["id"] for t in daemon.tickets(requester=CUSTOMER)] == [too["id"]]
    kept = daemon.ticket(outage["id"])
    assert kept["followers"] == []
    assert not any(CUSTOMER in (h["old"], h["new"], h["actor"]) for h in kept["history"])
    assert daemon.spool_states()["erased"] == 6
    assert _dangling_references(daemon) == []

    again = daemon.cli("erase", "customer", CUSTOMER)
    assert again.stdout.startswith("would erase tickets: none; 0 messages")


def test_retention_erases_tickets_closed_long_enough(start_daemon: Callable[..., Daemon], smarthost: Smarthost) -> None:
    """`[retention] erase_closed_after`: the daemon erases by itself (hourly, and when reloaded) the tickets
    closed and unchanged that long; `maild tick --now` runs the rule at that instant, and `maild erase closed`
    says what it would erase by any date. Open tickets stay, however old."""
    daemon = start_daemon(extra='[retention]\nerase_closed_after = "30d"\n')
    for subject in ("Old question", "Still open", "Closed lately"):
        daemon.send(make_mail(subject=subject))
    daemon.wait_processed()
    old, still_open, lately = (_ticket_of(daemon, CUSTOMER, s) for s in ("Old question", "Still open", "Closed lately"))
    _agent_mail(daemon, old, "#close\n")
    _agent_mail(daemon, lately, "#close\n")
    assert "retention    tickets closed and unchanged for 30d are erased" in daemon.cli("status").stdout
    assert daemon.cli("erase", "closed").stdout.startswith("would erase tickets: none;")
    in_40_days = (datetime.now(UTC) + timedelta(days=40)).isoformat()
    preview = daemon.cli("erase", "closed", "--before", in_40_days).stdout
    assert preview.startswith(f"would erase tickets: {old['id']}, {lately['id']};")

    # The age a test cannot wait for: closed 60 days ago, and every other ticket as old.
    long_ago = (datetime.now(UTC) - timedelta(days=60)).isoformat()
    _sql(daemon, "UPDATE tickets SET updated_at = ?, created_at = ? WHERE id = ?", long_ago, long_ago, old["id"])
    _sql(daemon, "UPDATE tickets SET created_at = ? WHERE id = ?", long_ago, still_open["id"])
    assert daemon.process is not None
    daemon.process.send_signal(signal.SIGHUP)
    wait_until(lambda: daemon.cli("ticket", "show", str(old["id"]), check=False).returncode == 1, 10, "the sweep")
    assert [t["id"] for t in daemon.tickets()] == [lately["id"], still_open["id"]]
    assert any(e["event"] == "retention_erased" and e["tickets"] == 1 for e in daemon.log_events())

    daemon.cli("tick", "--now", in_40_days)
    assert [t["id"] for t in daemon.tickets()] == [still_open["id"]]
    assert _dangling_references(daemon) == []


def test_a_note_on_a_closed_ticket_restarts_its_retention(
    start_daemon: Callable[..., Daemon], smarthost: Smarthost
) -> None:
    """An agent's mail to a closed ticket is a change of it: the ticket is no longer "closed and unchanged"
    for the retention period, counted from that note."""
    daemon = start_daemon(extra='[retention]\nerase_closed_after = "30d"\n')
    daemon.send(make_mail(subject="Old question"))
    daemon.wait_processed()
    old = _ticket_of(daemon, CUSTOMER, "Old question")
    _agent_mail(daemon, old, "#close\n")
    assert daemon.stop() == 0
    long_ago = (datetime.now(UTC) - timedelta(days=60)).isoformat()
    _sql(daemon, "UPDATE tickets SET updated_at = ?, created_at = ? WHERE id = ?", long_ago, long_ago, old["id"])
    assert daemon.cli("erase", "closed").stdout.startswith(f"would erase tickets: {old['id']};")
    note = make_mail(
        sender=LUIS, subject=f"Re: {old['token']} Old question", body="#internal\nCustomer called: keep this."
    )
    daemon.cli("inject", stdin=note)
    assert daemon.cli("erase", "closed").stdout.startswith("would erase tickets: none;")
