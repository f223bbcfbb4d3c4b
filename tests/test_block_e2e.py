"""End to end: blocking senders by mail (`#block`, `#unblock`), by config, and from the command line."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from tests.helpers import ANA, LUIS, Daemon, Smarthost, make_mail, wait_until

SPAMMER = "offers@spam.example"


def _agent_mail(daemon: Daemon, ticket: dict[str, Any], body: str, sender: str = ANA) -> None:
    daemon.send(
        make_mail(sender=sender, subject=f"Re: {ticket['token']} {ticket['subject']}", body=body), mail_from=sender
    )
    daemon.wait_processed()


def test_an_agent_blocks_a_sender_by_mail_and_lifts_it(daemon: Daemon, smarthost: Smarthost) -> None:
    """`#block` on a ticket refuses its customer's mail from then on: stored and dropped, no ticket, no
    acknowledgement, not even on the old ticket. `#unblock` lifts it; an agent cannot be blocked."""
    daemon.send(make_mail(sender=SPAMMER, subject="Cheap watches"), mail_from=SPAMMER)
    [ack] = smarthost.wait_for(SPAMMER)
    spam = daemon.tickets()[0]
    _agent_mail(daemon, spam, "#block\n#resolve spam\n")
    [transcript] = wait_until(lambda: smarthost.matching(ANA, "Applied"), 10, "the transcript")
    assert f"blocked: - → {SPAMMER}" in transcript.body
    shown = daemon.ticket(spam["id"])
    assert shown["status"] == "closed"
    assert ("blocked", None, SPAMMER) in {(h["field"], h["old"], h["new"]) for h in shown["history"]}
    listed = json.loads(daemon.cli("blocked", "list", "--json").stdout)
    assert [(b["address"], b["blocked_by"], b["ticket_id"]) for b in listed] == [(SPAMMER, ANA, spam["id"])]

    daemon.send(make_mail(sender=SPAMMER, subject="Cheaper watches"), mail_from=SPAMMER)
    daemon.send(
        make_mail(sender=SPAMMER, subject=f"Re: {ack['Subject']}", in_reply_to=ack["Message-ID"]), mail_from=SPAMMER
    )
    daemon.wait_processed()
    assert len(daemon.tickets()) == 1 and len(daemon.ticket(spam["id"])["messages"]) == 2  # theirs and Ana's
    assert daemon.spool_states()["dropped"] == 2 and len(smarthost.to(SPAMMER)) == 1
    stops = [e for e in daemon.log_events() if e.get("event") == "step" and e.get("outcome") == "stop"]
    assert [(e["step"], e["reason"]) for e in stops][-2:] == [("identify", f"blocked sender: {SPAMMER}")] * 2

    _agent_mail(daemon, spam, "#unblock\n")
    assert json.loads(daemon.cli("blocked", "list", "--json").stdout) == []
    daemon.send(make_mail(sender=SPAMMER, subject="Sorry, a real question"), mail_from=SPAMMER)
    smarthost.wait_for(SPAMMER, 2)
    assert len(daemon.tickets()) == 2

    _agent_mail(daemon, spam, "#unblock\n")
    [refused] = wait_until(lambda: smarthost.matching(ANA, "Commands refused"), 10, "the refusal")
    assert f"{SPAMMER} is not blocked" in refused.body

    daemon.send(make_mail(sender=LUIS, subject="Internal question"), mail_from=LUIS)
    daemon.wait_processed()
    luis = next(t for t in daemon.tickets() if t["requester"] == LUIS)
    _agent_mail(daemon, luis, "#block\n")
    [own] = wait_until(lambda: smarthost.matching(ANA, "maild's own address or an agent's"), 10, "the refusal")
    assert LUIS in own.body and json.loads(daemon.cli("blocked", "list", "--json").stdout) == []


def test_the_config_blocks_addresses_and_domains(start_daemon: Callable[..., Daemon], smarthost: Smarthost) -> None:
    """`[security] blocked_senders` takes addresses and whole @domains; `maild blocked list` shows them, and
    `maild blocked remove` lifts only what `#block` made."""
    daemon = start_daemon(extra='[security]\nblocked_senders = ["@spam.example", "Pest@Example.net"]\n')
    for sender in (SPAMMER, "pest@example.net", "friend@example.net"):
        daemon.send(make_mail(sender=sender, subject=f"From {sender}"), mail_from=sender)
    daemon.wait_processed()
    assert [t["requester"] for t in daemon.tickets()] == ["friend@example.net"]
    assert smarthost.to(SPAMMER) == [] and smarthost.to("pest@example.net") == []
    listed = daemon.cli("blocked", "list").stdout
    assert "@spam.example" in listed and "pest@example.net" in listed and "config" in listed
    missing = daemon.cli("blocked", "remove", "pest@example.net", check=False)
    assert missing.returncode == 1 and missing.stderr.strip() == "maild: pest@example.net is not blocked by #block"


def test_dropped_mail_is_listed_with_its_reason_and_replayed_once_unblocked(
    daemon: Daemon, smarthost: Smarthost
) -> None:
    """`maild dropped list` shows what maild kept but acted on no further, newest first, by sender too;
    `maild dropped replay` processes one again: a blocked sender's stays dropped while the block holds and
    opens its ticket once lifted. A mail dropped on a ticket (its commands refused) is not replayed."""
    daemon.send(make_mail(sender=SPAMMER, subject="Cheap watches"), mail_from=SPAMMER)
    smarthost.wait_for(SPAMMER)
    spam = daemon.tickets()[0]
    _agent_mail(daemon, spam, "#block\n")
    daemon.send(make_mail(sender=SPAMMER, subject="A real question after all"), mail_from=SPAMMER)
    _agent_mail(daemon, spam, "#priority whenever\n")  # refused: dropped on its ticket
    daemon.wait_processed()

    listed = json.loads(daemon.cli("dropped", "list", "--json").stdout)
    assert [(d["mail_from"], d["ticket_id"], d["error"]) for d in listed] == [
        (ANA, spam["id"], "commands refused: 1 error(s)"),
        (SPAMMER, None, f"blocked sender: {SPAMMER}"),
    ]
    [theirs] = json.loads(daemon.cli("dropped", "list", "--from", SPAMMER.upper(), "--json").stdout)
    assert "blocked sender" in daemon.cli("dropped", "list").stdout

    again = daemon.cli("dropped", "replay", str(theirs["id"])).stdout.strip()
    assert again == f"{theirs['id']}: dropped (blocked sender: {SPAMMER})"
    assert daemon.cli("blocked", "remove", SPAMMER).stdout.strip() == f"{SPAMMER}: unblocked"
    assert daemon.cli("dropped", "replay", str(theirs["id"])).stdout.strip() == f"{theirs['id']}: done"
    assert "A real question after all" in [t["subject"] for t in daemon.tickets()]
    smarthost.wait_for(SPAMMER, 2)  # its acknowledgement

    refused = daemon.cli("dropped", "replay", str(listed[0]["id"]), check=False)
    assert refused.returncode == 1 and "is on that ticket already" in refused.stderr
