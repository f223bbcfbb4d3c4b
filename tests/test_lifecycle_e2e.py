"""End to end: the ticket lifecycle with short durations, timers run by the daemon itself or by `maild tick`."""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.helpers import ANA, CUSTOMER, LUIS, Daemon, Smarthost, make_mail, wait_until

SHORT = """
[lifecycle]
feedback_window = "{window}"
close_if_no_response = "7d"

[sla.normal]
first_response = "{first_response}"
resolution = "30d"
"""


def start(start_daemon: Callable[..., Daemon], window: str = "1h", first_response: str = "4h") -> Daemon:
    return start_daemon(extra=SHORT.format(window=window, first_response=first_response))


def new_ticket(daemon: Daemon, smarthost: Smarthost, subject: str = "Printer on fire") -> dict[str, Any]:
    daemon.send(make_mail(subject=subject))
    daemon.wait_processed()
    return next(t for t in daemon.tickets() if t["subject"] == subject)


def agent_mail(daemon: Daemon, ticket: dict[str, Any], body: str, sender: str = ANA) -> None:
    daemon.send(make_mail(sender=sender, subject=f"Re: {ticket['token']}", body=body), mail_from=sender)
    daemon.wait_processed()


def customer_mail(daemon: Daemon, ticket: dict[str, Any], body: str) -> None:
    daemon.send(make_mail(subject=f"Re: {ticket['token']} Printer on fire", body=body))
    daemon.wait_processed()


def test_reply_in_feedback_window_reopens_and_first_resolver_is_kept(
    start_daemon: Callable[..., Daemon], smarthost: Smarthost
) -> None:
    """A customer reply after resolution reopens the ticket and tells the assignee; a second resolution by
    someone else keeps the first resolved_at/resolved_by."""
    daemon = start(start_daemon)
    ticket = new_ticket(daemon, smarthost)
    agent_mail(daemon, ticket, "#resolve responded\nFixed it.")
    first = daemon.ticket(ticket["id"])
    assert first["status"] == "resolved" and first["resolved_by"] == ANA
    customer_mail(daemon, ticket, "It is burning again!")
    reopened = daemon.ticket(ticket["id"])
    assert reopened["status"] == "open"
    wait_until(lambda: smarthost.matching(ANA, "Reopened"), 10, "the reopened notice")
    time.sleep(1.1)  # a later second, so a overwritten resolved_at would show
    agent_mail(daemon, ticket, "#resolve responded\nReally fixed now.", sender=LUIS)
    again = daemon.ticket(ticket["id"])
    assert again["status"] == "resolved"
    assert again["resolved_by"] == ANA and again["resolved_at"] == first["resolved_at"]
    causes = [h["cause"] for h in again["history"] if h["field"] == "status"]
    assert "customer reply: reopened" in causes


def test_feedback_window_closes_by_itself_then_a_reply_spawns_a_linked_ticket(
    start_daemon: Callable[..., Daemon], smarthost: Smarthost
) -> None:
    """When the window ends the daemon closes the ticket unprompted; a later customer mail opens a new
    ticket linked both ways, and the customer is told the new token."""
    daemon = start(start_daemon, window="2s")
    ticket = new_ticket(daemon, smarthost)
    agent_mail(daemon, ticket, "#resolve responded\nDone.")
    wait_until(lambda: daemon.ticket(ticket["id"])["status"] == "closed", 15, "the automatic close")
    wait_until(lambda: smarthost.matching(CUSTOMER, "Closed"), 10, "the closed notice")
    history = daemon.ticket(ticket["id"])["history"]
    assert ("resolved", "closed", "timer: feedback window ended") in {(h["old"], h["new"], h["cause"]) for h in history}
    customer_mail(daemon, ticket, "One more thing.")
    newer = [t for t in daemon.tickets() if t["id"] != ticket["id"]]
    assert len(newer) == 1
    assert daemon.ticket(newer[0]["id"])["linked"] == [ticket["id"]]
    assert daemon.ticket(ticket["id"])["linked"] == [newer[0]["id"]]
    [told] = wait_until(lambda: smarthost.matching(CUSTOMER, newer[0]["token"]), 10, "the new token")
    assert ticket["token"] in told.body
    assert daemon.ticket(ticket["id"])["status"] == "closed"


def test_a_reply_after_the_window_finds_the_ticket_closed_though_no_timer_ran(
    start_daemon: Callable[..., Daemon], smarthost: Smarthost
) -> None:
    """With nothing running the timers (the daemon down, or `maild inject` with `maild tick` from cron), a
    reply after the feedback window still closes the old ticket and opens a new one linked to it; the
    reopened resolution is cleared from a ticket a reply inside the window reopens."""
    daemon = start(start_daemon, window="3s")
    ticket = new_ticket(daemon, smarthost)
    agent_mail(daemon, ticket, "#resolve rejected\nNot ours to fix.")
    assert daemon.ticket(ticket["id"])["resolution"] == {"method": "rejected", "note": None}
    customer_mail(daemon, ticket, "But it is!")  # inside the window: reopens
    reopened = daemon.ticket(ticket["id"])
    assert reopened["status"] == "open" and reopened["resolution"] is None and reopened["resolved_by"] == ANA
    agent_mail(daemon, ticket, "#resolve responded\nFixed now.")
    assert daemon.stop() == 0
    time.sleep(3.5)
    daemon.cli("inject", stdin=make_mail(subject=f"Re: {ticket['token']} Printer on fire", body="New problem."))
    old = daemon.ticket(ticket["id"])
    assert old["status"] == "closed"
    assert ("resolved", "closed", "timer: feedback window ended") in {
        (h["old"], h["new"], h["cause"]) for h in old["history"]
    }
    [newer] = [t for t in daemon.tickets() if t["id"] != ticket["id"]]
    assert old["linked"] == [newer["id"]] and newer["status"] == "new"


def test_waiting_customer_reply_reopens_and_counts_customer_time(
    start_daemon: Callable[..., Daemon], smarthost: Smarthost
) -> None:
    """In waiting_customer the customer's clock runs; their reply moves the ticket back to open."""
    daemon = start(start_daemon)
    ticket = new_ticket(daemon, smarthost)
    agent_mail(daemon, ticket, "#wait customer\nWhich model is it?")
    assert daemon.ticket(ticket["id"])["status"] == "waiting_customer"
    time.sleep(2.2)
    customer_mail(daemon, ticket, "An HP LaserJet.")
    detail = daemon.ticket(ticket["id"])
    assert detail["status"] == "open"
    assert detail["clock"]["customer_seconds"] >= 2
    assert detail["clock"]["agent_seconds"] >= 0
    wait_until(lambda: smarthost.matching(ANA, "HP LaserJet"), 10, "the assignee's notice")


def test_third_party_wait_keeps_status_on_customer_reply(daemon: Daemon, smarthost: Smarthost) -> None:
    """waiting_third_party is not the customer's turn: their reply keeps the status and notifies."""
    ticket = new_ticket(daemon, smarthost)
    agent_mail(daemon, ticket, "#wait third_party\nAsked the vendor.")
    customer_mail(daemon, ticket, "Any news?")
    assert daemon.ticket(ticket["id"])["status"] == "waiting_third_party"
    wait_until(lambda: smarthost.matching(ANA, "Any news?"), 10, "the notice")


def test_tick_runs_waiting_until_and_no_response(daemon: Daemon, smarthost: Smarthost) -> None:
    """`maild tick --now` runs what is due then: a waiting_until date returns the ticket to new, and a
    customer who never answers gets a no_response resolution."""
    waiting = new_ticket(daemon, smarthost, "Renew licence")
    agent_mail(daemon, waiting, "#wait until 2031-01-15 09:00\n#internal\n")
    silent = new_ticket(daemon, smarthost, "Need logs")
    agent_mail(daemon, silent, "#wait customer\nPlease send the logs.")
    soon, later = (datetime.now(UTC) + timedelta(days=d) for d in (1, 8))
    assert "0 timer(s)" in daemon.cli("tick", "--now", soon.isoformat()).stdout
    assert "1 timer(s)" in daemon.cli("tick", "--now", later.isoformat()).stdout  # 7d without an answer
    resolved = daemon.ticket(silent["id"])
    assert resolved["status"] == "resolved"
    assert resolved["resolution"] == {"method": "no_response", "note": None}
    wait_until(lambda: smarthost.matching(CUSTOMER, "lack of response"), 10, "the customer's notice")
    assert daemon.ticket(waiting["id"])["status"] == "waiting_until"
    # Catching up: the wait ends, and the silent ticket's feedback window has long ended too.
    assert "2 timer(s)" in daemon.cli("tick", "--now", "2031-01-16T00:00:00+00:00").stdout
    assert daemon.ticket(waiting["id"])["status"] == "new"
    assert daemon.ticket(silent["id"])["status"] == "closed"
    wait_until(lambda: smarthost.matching(ANA, "Waiting date reached"), 10, "the wait-over notice")
    assert "0 timer(s)" in daemon.cli("tick", "--now", "2031-01-16T00:00:00+00:00").stdout  # each ran once


def test_sla_breach_escalates_once(start_daemon: Callable[..., Daemon], smarthost: Smarthost) -> None:
    """A missed first response marks the ticket breached and mails the admins once, never again."""
    daemon = start(start_daemon, first_response="2s")
    ticket = new_ticket(daemon, smarthost)
    detail = daemon.ticket(ticket["id"])
    assert detail["first_response_due_at"] is not None and detail["due_at"] is not None
    wait_until(lambda: daemon.ticket(ticket["id"])["sla_breached"], 15, "the breach")
    wait_until(lambda: smarthost.matching(ANA, "SLA breached"), 10, "the escalation")
    time.sleep(2)
    assert len(smarthost.matching(ANA, "SLA breached")) == 1
    assert smarthost.matching(LUIS, "SLA breached") == []  # Luis is neither admin nor assignee


def test_priority_change_recomputes_due_dates(start_daemon: Callable[..., Daemon], smarthost: Smarthost) -> None:
    """A new priority takes its own [sla.<priority>] due dates; #postpone moves due_at."""
    daemon = start_daemon(
        extra='\n[sla.normal]\nfirst_response = "4h"\nresolution = "2d"\n'
        '\n[sla.urgent]\nfirst_response = "30m"\nresolution = "4h"\n'
    )
    ticket = new_ticket(daemon, smarthost)
    before = daemon.ticket(ticket["id"])
    agent_mail(daemon, ticket, "#priority urgent\n#internal\n")
    after = daemon.ticket(ticket["id"])
    assert after["due_at"] < before["due_at"]
    assert after["first_response_due_at"] < before["first_response_due_at"]
    agent_mail(daemon, ticket, "#postpone 1d\n#internal\n")
    assert daemon.ticket(ticket["id"])["due_at"] > after["due_at"]


def test_sla_counts_only_business_hours(start_daemon: Callable[..., Daemon], smarthost: Smarthost) -> None:
    """With `[business_hours]`, SLA due dates count open time only: the desk here opens 10:00-12:00 UTC on
    tomorrow's weekday alone, so today's ticket is due tomorrow; the breach comes then, and a pause for the
    customer while the desk is closed moves nothing."""
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).date()
    daemon = start_daemon(
        extra=f'\n[business_hours]\ndays = ["{tomorrow:%a}"]\nhours = "10:00-12:00"\n'
        '\n[sla.normal]\nfirst_response = "1h"\nresolution = "3h"\n'
        '\n[sla.high]\nfirst_response = "30m"\nresolution = "1h"\n'
    )
    ticket = new_ticket(daemon, smarthost)
    at = f"{tomorrow.isoformat()}T{{}}:00+00:00".format
    week_later = (tomorrow + timedelta(days=7)).isoformat()
    detail = daemon.ticket(ticket["id"])
    # 1h of the 2 open hours tomorrow; 3h is tomorrow's two and one more a week later.
    assert (detail["first_response_due_at"], detail["due_at"]) == (at("11:00"), f"{week_later}T11:00:00+00:00")

    agent_mail(daemon, ticket, "#priority high\n#internal\n")
    detail = daemon.ticket(ticket["id"])
    assert (detail["first_response_due_at"], detail["due_at"]) == (at("10:30"), at("11:00"))
    daemon.cli("tick", "--now", at("10:29"))
    assert not daemon.ticket(ticket["id"])["sla_breached"]
    daemon.cli("tick", "--now", at("10:31"))
    assert daemon.ticket(ticket["id"])["sla_breached"]
    wait_until(lambda: smarthost.matching(ANA, "SLA breached"), 10, "the escalation")

    agent_mail(daemon, ticket, "#wait customer\nCould you send the printer's logs?\n")
    assert daemon.ticket(ticket["id"])["status"] == "waiting_customer"
    time.sleep(1.1)  # a pause of real time, none of it open
    daemon.send(make_mail(subject=f"Re: {ticket['token']} Printer on fire", body="Logs attached."))
    daemon.wait_processed()
    detail = daemon.ticket(ticket["id"])
    assert detail["status"] == "open" and detail["due_at"] == at("11:00")


def test_agents_are_warned_before_each_due_date(start_daemon: Callable[..., Daemon], smarthost: Smarthost) -> None:
    """`warn_before` mails whoever works the ticket once ahead of each due date: the queue's agents before an
    unassigned ticket's first response, the assignee alone before its resolution."""
    daemon = start_daemon(extra='\n[sla.normal]\nfirst_response = "2h"\nresolution = "1d"\nwarn_before = "30m"\n')
    ticket = new_ticket(daemon, smarthost)
    created = datetime.fromisoformat(daemon.ticket(ticket["id"])["created_at"])

    def tick(after: timedelta) -> None:
        daemon.cli("tick", "--now", (created + after).isoformat())

    tick(timedelta(minutes=89))
    assert not smarthost.matching(ANA, "SLA due soon")
    tick(timedelta(minutes=91))
    [warning] = wait_until(lambda: smarthost.matching(ANA, "SLA due soon"), 10, "the warning")
    first_due = daemon.ticket(ticket["id"])["first_response_due_at"]
    assert f"first response is due at {first_due[:10]} {first_due[11:16]} UTC" in warning.body
    wait_until(lambda: smarthost.matching(LUIS, "SLA due soon"), 10, "the other agent's warning")
    tick(timedelta(minutes=100))
    assert [h["cause"] for h in daemon.ticket(ticket["id"])["history"]].count("timer: SLA warning") == 1

    agent_mail(daemon, ticket, "Looking into it.")  # Ana answers: she has the ticket, the first response is met
    tick(timedelta(hours=23, minutes=31))
    wait_until(lambda: len(smarthost.matching(ANA, "SLA due soon")) == 2, 10, "the resolution's warning")
    assert "resolution is due at" in smarthost.matching(ANA, "SLA due soon")[1].body
    time.sleep(0.5)  # the outbound worker had time to deliver a wrong second warning to Luis
    assert len(smarthost.matching(LUIS, "SLA due soon")) == 1
    assert not daemon.ticket(ticket["id"])["sla_breached"]


def test_each_agent_gets_a_morning_digest(start_daemon: Callable[..., Daemon], smarthost: Smarthost) -> None:
    """At `[digest] at` on a digest day each agent with something open gets one mail: their own tickets,
    overdue first, then the unassigned ones in their queues; nobody gets it twice, nor on other days."""
    daemon = start_daemon(
        extra='\n[digest]\nat = "08:00"\ndays = ["mon", "tue", "wed", "thu", "fri"]\n'
        '\n[sla.normal]\nfirst_response = "4h"\nresolution = "2d"\n'
    )
    mine_late = new_ticket(daemon, smarthost, "Printer on fire")
    agent_mail(daemon, mine_late, "#assign me\n#internal\n")
    mine = new_ticket(daemon, smarthost, "Scanner jammed")
    agent_mail(daemon, mine, "#postpone 7d\nLooking into it.")  # answered, so not overdue
    unassigned = new_ticket(daemon, smarthost, "Toner low")
    done = new_ticket(daemon, smarthost, "Fax broken")
    agent_mail(daemon, done, "#resolve responded\nFixed.")
    created = datetime.fromisoformat(daemon.ticket(mine["id"])["created_at"])
    # The next weekday after the tickets are three days old, at 07:59 and 08:00 UTC (the desk's zone).
    day = (created + timedelta(days=3)).date()
    while day.weekday() >= 5:
        day += timedelta(days=1)
    saturday = day + timedelta(days=(5 - day.weekday()) % 7 or 7)

    daemon.cli("tick", "--now", f"{day}T07:59:00+00:00")
    time.sleep(0.5)
    assert not smarthost.matching(ANA, "Your tickets")
    daemon.cli("tick", "--now", f"{day}T08:00:00+00:00")
    [digest] = wait_until(lambda: smarthost.matching(ANA, "Your tickets"), 10, "Ana's digest")
    assert digest["Subject"] == f"Your tickets on {day}: 2 open, 1 overdue, 1 unassigned"
    body = digest.body
    assert body.index(mine_late["token"]) < body.index(mine["token"]) < body.index("Unassigned in your queues")
    assert "OVERDUE since" in body.split(mine_late["token"])[1].split(mine["token"])[0]
    assert body.index("Unassigned in your queues") < body.index(unassigned["token"])
    assert done["token"] not in body
    [luis] = wait_until(lambda: smarthost.matching(LUIS, "Your tickets"), 10, "Luis's digest")
    assert luis["Subject"] == f"Your tickets on {day}: 0 open, 1 unassigned"
    assert "Nothing is assigned to you." in luis.body
    assert json.loads(daemon.cli("status", "--json").stdout)["digest_sent_on"] == str(day)
    assert f"digest       daily at 08:00, last sent on {day}" in daemon.cli("status").stdout

    daemon.cli("tick", "--now", f"{day}T12:00:00+00:00")
    daemon.cli("tick", "--now", f"{saturday}T08:00:00+00:00")
    time.sleep(0.5)
    assert len(smarthost.matching(ANA, "Your tickets")) == 1


def test_open_tickets_follow_changed_business_hours_and_sla(
    start_daemon: Callable[..., Daemon], smarthost: Smarthost
) -> None:
    """When a reload adds `[business_hours]`, or a restart changes `[sla.*]`, open tickets' due dates are
    recomputed by the new settings, keeping `#postpone`; resolved tickets and met first responses keep theirs."""
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).date()
    at = f"{tomorrow.isoformat()}T{{}}:00+00:00".format
    week_later = tomorrow + timedelta(days=7)
    sla = '\n[sla.normal]\nfirst_response = "1h"\nresolution = "3h"\n'
    daemon = start_daemon(extra=sla)
    waiting = new_ticket(daemon, smarthost, "Printer on fire")
    postponed = new_ticket(daemon, smarthost, "Scanner jammed")
    agent_mail(daemon, postponed, "#postpone 1d\n#internal\n")
    answered = new_ticket(daemon, smarthost, "Toner low")
    agent_mail(daemon, answered, "Ordered a new cartridge.")
    done = new_ticket(daemon, smarthost, "Fax broken")
    agent_mail(daemon, done, "#resolve responded\nFixed.")
    before = {t["id"]: daemon.ticket(t["id"]) for t in (waiting, postponed, answered, done)}

    # The desk now opens 10:00-12:00 UTC on tomorrow's weekday alone (as in the test above).
    daemon.config_path.write_text(
        daemon.config_path.read_text() + f'\n[business_hours]\ndays = ["{tomorrow:%a}"]\nhours = "10:00-12:00"\n'
    )
    assert daemon.process is not None
    daemon.process.send_signal(signal.SIGHUP)
    wait_until(lambda: [e for e in daemon.log_events() if e["event"] == "sla_settings_followed"], 10, "the recompute")
    detail = daemon.ticket(waiting["id"])
    assert (detail["first_response_due_at"], detail["due_at"]) == (at("11:00"), f"{week_later}T11:00:00+00:00")
    assert ("maild", "due_at", "SLA settings changed") in {
        (h["actor"], h["field"], h["cause"]) for h in detail["history"]
    }
    later = week_later + timedelta(days=1)
    assert daemon.ticket(postponed["id"])["due_at"] == f"{later}T11:00:00+00:00"  # the day #postpone added
    detail = daemon.ticket(answered["id"])
    assert detail["first_response_due_at"] == before[answered["id"]]["first_response_due_at"]
    assert detail["due_at"] == f"{week_later}T11:00:00+00:00"
    assert daemon.ticket(done["id"])["due_at"] == before[done["id"]]["due_at"]

    # Stopped, a faster resolution configured, started: the same tickets follow once more.
    assert daemon.stop() == 0
    daemon.config_path.write_text(daemon.config_path.read_text().replace('resolution = "3h"', 'resolution = "1h"'))
    daemon.start()
    wait_until(lambda: daemon.ticket(waiting["id"])["due_at"] == at("11:00"), 10, "the recompute at start")
    assert daemon.ticket(postponed["id"])["due_at"] == (tomorrow + timedelta(days=1)).isoformat() + "T11:00:00+00:00"


def test_timers_survive_a_restart(start_daemon: Callable[..., Daemon], smarthost: Smarthost) -> None:
    """A timer that fell due while the daemon was down runs when it starts again."""
    daemon = start(start_daemon, window="2s")
    ticket = new_ticket(daemon, smarthost)
    agent_mail(daemon, ticket, "#resolve responded\nDone.")
    assert daemon.stop() == 0
    time.sleep(2.5)
    daemon.start()
    wait_until(lambda: daemon.ticket(ticket["id"])["status"] == "closed", 15, "the catch-up close")


def test_spam_closes_at_once_and_sends_nothing(daemon: Daemon, smarthost: Smarthost) -> None:
    """#resolve spam closes the ticket immediately and mails nothing to the sender."""
    ticket = new_ticket(daemon, smarthost)
    before = len(smarthost.to(CUSTOMER))
    agent_mail(daemon, ticket, "#resolve spam\n")
    detail = daemon.ticket(ticket["id"])
    assert detail["status"] == "closed" and detail["resolution"]["method"] == "spam"
    time.sleep(0.5)
    assert len(smarthost.to(CUSTOMER)) == before


def test_taking_a_ticket_opens_it(daemon: Daemon, smarthost: Smarthost) -> None:
    """ "#assign me" in an internal note takes a new ticket into work (open) without a reply."""
    ticket = new_ticket(daemon, smarthost)
    agent_mail(daemon, ticket, "#assign me\n#internal\n", sender=LUIS)
    detail = daemon.ticket(ticket["id"])
    assert detail["status"] == "open" and detail["assignee"] == LUIS


def test_a_warning_whose_date_has_passed_gives_way_to_the_breach(
    start_daemon: Callable[..., Daemon], smarthost: Smarthost
) -> None:
    """Timers run late (`tick` from cron past the due date, or a daemon that was down): the warning is not
    sent for a date already missed, the breach is marked and mailed once, and the run ends."""
    daemon = start_daemon(extra='\n[sla.normal]\nfirst_response = "2h"\nresolution = "1d"\nwarn_before = "30m"\n')
    ticket = new_ticket(daemon, smarthost)
    created = datetime.fromisoformat(daemon.ticket(ticket["id"])["created_at"])
    daemon.cli("tick", "--now", (created + timedelta(hours=3)).isoformat())  # returns: no timer loop
    assert daemon.ticket(ticket["id"])["sla_breached"]
    wait_until(lambda: smarthost.matching(ANA, "SLA breached"), 10, "the escalation")
    assert "0 timer(s)" in daemon.cli("tick", "--now", (created + timedelta(hours=3)).isoformat()).stdout
    time.sleep(0.5)
    assert len(smarthost.matching(ANA, "SLA breached")) == 1 and smarthost.matching(ANA, "SLA due soon") == []


def test_a_reopened_ticket_is_not_overdue_for_the_time_it_lay_resolved(
    start_daemon: Callable[..., Daemon], smarthost: Smarthost
) -> None:
    """The SLA clock stops while a ticket is resolved: when the customer's answer reopens it, its due date
    moves back by the time it lay resolved, as after a wait for the customer, instead of breaching at once."""
    daemon = start_daemon(
        extra='\n[lifecycle]\nfeedback_window = "1h"\n\n[sla.normal]\nfirst_response = "1h"\nresolution = "4s"\n'
    )
    ticket = new_ticket(daemon, smarthost)
    due = datetime.fromisoformat(daemon.ticket(ticket["id"])["due_at"])
    agent_mail(daemon, ticket, "#resolve responded\nFixed it.")
    time.sleep(5)  # resolved past the first due date
    customer_mail(daemon, ticket, "It is burning again!")
    reopened = daemon.ticket(ticket["id"])
    assert reopened["status"] == "open"
    assert datetime.fromisoformat(reopened["due_at"]) >= due + timedelta(seconds=4)
    time.sleep(0.5)  # the scheduler had time to mark a wrong breach
    assert not daemon.ticket(ticket["id"])["sla_breached"]


def test_waiting_until_another_date_wakes_up_then(daemon: Daemon, smarthost: Smarthost) -> None:
    """`#wait until` again with an earlier date moves the wake-up to it (the ticket shows the date), and a
    date past what can be computed with is refused in the agent's error mail."""
    ticket = new_ticket(daemon, smarthost, "Renew licence")
    agent_mail(daemon, ticket, "#wait until 2031-01-15 09:00\n#internal\n")
    agent_mail(daemon, ticket, "#wait until 2031-01-10 09:00\n#internal\n")
    assert daemon.ticket(ticket["id"])["wait_until"] == "2031-01-10T09:00:00+00:00"
    assert "1 timer(s)" in daemon.cli("tick", "--now", "2031-01-11T00:00:00+00:00").stdout
    assert daemon.ticket(ticket["id"])["status"] == "new"
    agent_mail(daemon, ticket, "#wait until 9999-12-31 23:59\n#internal\n")
    [refused] = wait_until(lambda: smarthost.matching(ANA, "Commands refused"), 10, "the refusal")
    assert "'9999-12-31 23:59' is too far ahead (at most 8999-12-31)" in refused.body


def test_catching_up_runs_each_timer_as_of_when_it_was_due(
    start_daemon: Callable[..., Daemon], smarthost: Smarthost
) -> None:
    """With nothing running the timers (`inject` from an MTA, `tick` from cron), a customer's answer that
    comes after the no-response period and the feedback window that follows it finds the ticket resolved as
    of the period's end and closed as of the window's: it opens a new linked ticket, not a reopened one."""
    daemon = start_daemon(extra='\n[lifecycle]\nfeedback_window = "2s"\nclose_if_no_response = "2s"\n')
    ticket = new_ticket(daemon, smarthost)
    assert daemon.stop() == 0
    inject = daemon.cli
    inject("inject", stdin=make_mail(sender=ANA, subject=f"Re: {ticket['token']}", body="#wait customer\nWhich model?"))
    time.sleep(4.5)
    inject("inject", stdin=make_mail(subject=f"Re: {ticket['token']} Printer on fire", body="An HP LaserJet."))
    old = daemon.ticket(ticket["id"])
    assert old["status"] == "closed" and old["resolution"] == {"method": "no_response", "note": None}
    waited = next(h["at"] for h in old["history"] if h["field"] == "status" and h["new"] == "waiting_customer")
    resolved_after = datetime.fromisoformat(old["resolved_at"]) - datetime.fromisoformat(waited)
    assert timedelta(seconds=2) <= resolved_after < timedelta(seconds=3)
    [newer] = [t for t in daemon.tickets() if t["id"] != ticket["id"]]
    assert old["linked"] == [newer["id"]] and newer["status"] == "new"
