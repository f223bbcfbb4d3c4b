"""End to end: agents run tickets purely by mail with #commands, over SMTP to a running daemon."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Callable
from typing import Any

from tests.helpers import ANA, CUSTOMER, LUIS, SUPPORT, Daemon, Smarthost, make_mail, wait_until

THIRD = "vendor@thirdparty.example"


def new_ticket(daemon: Daemon, smarthost: Smarthost, **mail: Any) -> dict[str, Any]:
    daemon.send(make_mail(**mail))
    smarthost.wait_for(CUSTOMER)
    return daemon.tickets()[0]


def agent_mail(daemon: Daemon, ticket: dict[str, Any], body: str, sender: str = ANA, **mail: Any) -> None:
    daemon.send(
        make_mail(sender=sender, subject=f"Re: {ticket['token']} {ticket['subject']}", body=body, **mail),
        mail_from=sender,
    )
    daemon.wait_processed()


def test_commands_apply_relay_the_rest_and_send_a_transcript(daemon: Daemon, smarthost: Smarthost) -> None:
    """Command lines change the ticket, never reach the customer, and the agent gets a transcript."""
    ticket = new_ticket(daemon, smarthost)
    agent_mail(
        daemon,
        ticket,
        "#status waiting_customer\n#time 1h30m\n#priority high\n#tag +printer +fire\n"
        "Could you send us a photo of the printer?\n",
    )
    relayed = wait_until(lambda: smarthost.matching(CUSTOMER, "photo of the printer"), 10, "relay")[0]
    assert "#" not in relayed.body.split("--")[0]
    [transcript] = wait_until(lambda: smarthost.matching(ANA, "Applied"), 10, "transcript")
    assert "status: new → waiting_customer" in transcript.body
    assert "priority: normal → high" in transcript.body
    assert "+1h30m billable" in transcript.body
    detail = daemon.ticket(ticket["id"])
    assert detail["status"] == "waiting_customer"
    assert detail["priority"] == "high"
    assert detail["tags"] == ["fire", "printer"]
    assert detail["assignee"] == ANA  # the reply still takes the ticket
    assert detail["time_entries"][0] | {"at": None} == {
        "agent": ANA,
        "minutes": 90,
        "billable": True,
        "note": "",
        "at": None,
    }
    assert detail["messages"][-1]["text"] == "Could you send us a photo of the printer?"
    assert ("status", "new", "waiting_customer") in {(h["field"], h["old"], h["new"]) for h in detail["history"]}


def test_one_bad_command_applies_nothing_and_names_the_line(daemon: Daemon, smarthost: Smarthost) -> None:
    """A mail with one bad command applies none, relays nothing, and the error mail lists the line and why."""
    ticket = new_ticket(daemon, smarthost)
    agent_mail(daemon, ticket, "#priority urgent\n#status sleeping\n#time 20m\nDo not send this.\n")
    [error] = wait_until(lambda: smarthost.matching(ANA, "Commands refused"), 10, "error mail")
    assert "#status sleeping" in error.body
    assert "waiting_customer" in error.body  # what is accepted
    assert smarthost.matching(CUSTOMER, "Do not send this") == []
    detail = daemon.ticket(ticket["id"])
    assert detail["priority"] == "normal" and detail["status"] == "new" and detail["time_entries"] == []
    assert detail["assignee"] is None
    assert detail["messages"][-1]["visibility"] == "internal"


def test_a_misspelt_command_is_refused_not_relayed(daemon: Daemon, smarthost: Smarthost) -> None:
    """An agent's "#stauts" is a typo, not text for the customer: the mail applies nothing, relays nothing, and the
    error mail names the keyword it misses; "#note" makes a mail internal, as in RT and Zammad."""
    ticket = new_ticket(daemon, smarthost)
    agent_mail(daemon, ticket, "#time 10m\n#stauts waiting_customer\nPlease send the logs.\n")
    [error] = wait_until(lambda: smarthost.matching(ANA, "Commands refused"), 10, "error mail")
    assert "#stauts waiting_customer" in error.body and "did you mean #status?" in error.body
    assert smarthost.matching(CUSTOMER, "logs") == [] and smarthost.matching(CUSTOMER, "stauts") == []
    detail = daemon.ticket(ticket["id"])
    assert detail["status"] == "new" and detail["time_entries"] == []
    agent_mail(daemon, ticket, "#note\nThe customer sounds upset.\n")
    assert daemon.ticket(ticket["id"])["messages"][-1]["visibility"] == "internal"
    assert smarthost.matching(CUSTOMER, "upset") == []


def test_a_first_reply_keeps_the_status_and_assignee_its_commands_set(daemon: Daemon, smarthost: Smarthost) -> None:
    """An agent's first public reply takes a new ticket, unless its own commands say otherwise, even to the
    value the ticket has: "#status new" and "#assign none" leave it new and unassigned, and the transcript
    says so."""
    ticket = new_ticket(daemon, smarthost)
    agent_mail(daemon, ticket, "#status new\n#assign none\nWe will look at it next week.\n")
    wait_until(lambda: smarthost.matching(CUSTOMER, "next week"), 10, "the relay")
    detail = daemon.ticket(ticket["id"])
    assert (detail["status"], detail["assignee"]) == ("new", None)
    [transcript] = wait_until(lambda: smarthost.matching(ANA, "Now: status new"), 10, "the transcript")
    assert "assignee nobody" in transcript.body


def test_status_resolved_resolves_as_responded(daemon: Daemon, smarthost: Smarthost) -> None:
    """An agent's "#status resolved" (CONTRACT §4 sets any status) resolves as "#resolve responded": the text goes to
    the customer as the resolution."""
    ticket = new_ticket(daemon, smarthost)
    agent_mail(daemon, ticket, "#status resolved\nThe new driver fixes it.\n")
    wait_until(lambda: smarthost.matching(CUSTOMER, "new driver"), 10, "the resolution")
    detail = daemon.ticket(ticket["id"])
    assert detail["status"] == "resolved" and detail["resolution"] == {"method": "responded", "note": None}


def test_error_mail_speaks_the_configured_language(start_daemon: Callable[..., Daemon], smarthost: Smarthost) -> None:
    """With language = "es" the error mail gives each line's reason and what is accepted in Spanish, the
    command words and values as the agent types them."""
    daemon = start_daemon(language="es")
    ticket = new_ticket(daemon, smarthost)
    agent_mail(daemon, ticket, "#status dormido\n#time 30h\n#link abc\nNo enviar.\n")
    [error] = wait_until(lambda: smarthost.matching(ANA, "Comandos rechazados"), 10, "error mail")
    assert "línea 1: valor desconocido para el estado: 'dormido'" in error.body
    assert "se acepta: uno de new, open, waiting_customer" in error.body
    assert "línea 2: la duración no puede pasar de 24h" in error.body
    assert "línea 3: no es un número de ticket: 'abc'" in error.body
    assert "se acepta: un número de ticket: 12, #12 o [ACME#12]" in error.body
    for english in ("unknown status", "the duration must", "not a ticket id", "accepted:", "one of"):
        assert english not in error.body
    assert daemon.ticket(ticket["id"])["status"] == "new"  # nothing applied


def test_a_templates_dir_rewords_refusals(start_daemon: Callable[..., Daemon], smarthost: Smarthost) -> None:
    """An es/refusals.toml in templates_dir rewords the reasons it lists in Spanish error mails (the rest stay
    as shipped), and check-config refuses a reworded reason with a field maild does not fill."""
    daemon = start_daemon(language="es")
    daemon.stop()
    overrides = daemon.workdir / "templates"
    (overrides / "es").mkdir(parents=True)
    catalog = overrides / "es" / "refusals.toml"
    catalog.write_text('"unknown" = "no conozco {what} {got}; mire la guía interna"\n', encoding="utf-8")
    text = daemon.config_path.read_text().replace("[maild]\n", f'[maild]\ntemplates_dir = "{overrides}"\n')
    daemon.config_path.write_text(text)
    daemon.start()
    ticket = new_ticket(daemon, smarthost)
    agent_mail(daemon, ticket, "#status dormido\n#time 30h\nNo enviar.\n")
    [error] = wait_until(lambda: smarthost.matching(ANA, "Comandos rechazados"), 10, "error mail")
    assert "línea 1: no conozco el estado 'dormido'; mire la guía interna" in error.body
    assert "línea 2: la duración no puede pasar de 24h" in error.body  # shipped wording
    assert "valor desconocido" not in error.body

    catalog.write_text('"unknown" = "no conozco {what} {line}"\n', encoding="utf-8")
    result = daemon.cli("check-config", check=False)
    assert result.returncode == 1
    assert "maild.templates_dir: es/refusals.toml: 'unknown': unknown field {line}" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr


def test_customer_commands_are_plain_text(daemon: Daemon, smarthost: Smarthost) -> None:
    """A customer's "#status closed" changes nothing and is stored as what they wrote."""
    ticket = new_ticket(daemon, smarthost)
    daemon.send(make_mail(subject=f"Re: {ticket['token']}", body="#status closed\nPlease!"))
    daemon.wait_processed()
    detail = daemon.ticket(ticket["id"])
    assert detail["status"] == "new"
    assert detail["messages"][-1]["text"] == "#status closed\nPlease!"


def test_commands_in_quoted_text_are_ignored(daemon: Daemon, smarthost: Smarthost) -> None:
    """A command inside the quoted history of an agent's reply is not run."""
    ticket = new_ticket(daemon, smarthost)
    agent_mail(
        daemon,
        ticket,
        "Thanks, looking at it.\n\nOn Mon, 23 Nov 2026, Luis <luis@example.com> wrote:\n"
        "> #priority urgent\n> old text\n",
    )
    assert daemon.ticket(ticket["id"])["priority"] == "normal"
    assert smarthost.matching(ANA, "Applied") == []  # a plain reply gets no transcript


def test_internal_note_reaches_agents_never_the_customer(daemon: Daemon, smarthost: Smarthost) -> None:
    """#internal (or #nota) keeps the mail among agents: the other agents hear of it, the customer does not."""
    ticket = new_ticket(daemon, smarthost)
    agent_mail(daemon, ticket, "#nota\n#time 10m nonbillable checked the logs\nThe customer seems upset.\n")
    wait_until(lambda: smarthost.matching(LUIS, "seems upset"), 10, "the note to Luis")
    assert smarthost.matching(CUSTOMER, "seems upset") == []
    detail = daemon.ticket(ticket["id"])
    note = detail["messages"][-1]
    assert note["visibility"] == "internal" and note["text"] == "The customer seems upset."
    assert detail["time_entries"][0]["billable"] is False
    assert detail["time_entries"][0]["note"] == "checked the logs"
    assert detail["status"] == "new" and detail["assignee"] is None  # a note is not a reply


def test_close_is_for_admins_only(daemon: Daemon, smarthost: Smarthost) -> None:
    """#close from an agent is refused with an error mail; from an admin it closes the ticket."""
    ticket = new_ticket(daemon, smarthost)
    agent_mail(daemon, ticket, "#close\n", sender=LUIS)
    [error] = wait_until(lambda: smarthost.matching(LUIS, "Commands refused"), 10, "refusal")
    assert "only admins" in error.body
    assert daemon.ticket(ticket["id"])["status"] == "new"
    agent_mail(daemon, ticket, "#cerrar\n", sender=ANA)
    assert daemon.ticket(ticket["id"])["status"] == "closed"


def test_resolve_sends_the_text_as_the_resolution(daemon: Daemon, smarthost: Smarthost) -> None:
    """#resolve METHOD sends the mail's text to the customer as the resolution and records who resolved it."""
    ticket = new_ticket(daemon, smarthost)
    agent_mail(daemon, ticket, "#resolve\n")  # no method: refused
    wait_until(lambda: smarthost.matching(ANA, "Commands refused"), 10, "refusal")
    agent_mail(daemon, ticket, "#resolver respondido\n")  # no text and no note: refused
    wait_until(lambda: len(smarthost.matching(ANA, "Commands refused")) == 2, 10, "second refusal")
    agent_mail(daemon, ticket, "#resolve responded\nThe printer was replaced.\n")
    [resolved] = wait_until(lambda: smarthost.matching(CUSTOMER, "replaced"), 10, "resolution mail")
    assert "Resolved" in resolved["Subject"] and "reopened" in resolved.body
    detail = daemon.ticket(ticket["id"])
    assert detail["status"] == "resolved"
    assert detail["resolution"] == {"method": "responded", "note": None}
    assert detail["resolved_by"] == ANA and detail["resolved_at"]


def test_resolve_with_an_internal_note_sends_nothing(daemon: Daemon, smarthost: Smarthost) -> None:
    """A resolution with #internal keeps its text as the resolution note and mails the customer nothing."""
    ticket = new_ticket(daemon, smarthost)
    agent_mail(daemon, ticket, "#internal\n#resolve rejected\nDuplicate of another ticket.\n")
    detail = daemon.ticket(ticket["id"])
    assert detail["resolution"] == {"method": "rejected", "note": "Duplicate of another ticket."}
    assert smarthost.matching(CUSTOMER, "Duplicate") == []


def test_requester_opens_a_ticket_for_a_customer_who_is_told(daemon: Daemon, smarthost: Smarthost) -> None:
    """An agent's new mail with #requester opens the ticket on the customer's behalf and mails them."""
    daemon.send(
        make_mail(
            sender=ANA,
            to=[SUPPORT],
            subject="Your renewal",
            body="#requester Carmen <carmen@example.org>\nYour licence expires next week.\n",
        ),
        mail_from=ANA,
    )
    [told] = smarthost.wait_for("carmen@example.org")
    assert "Your licence expires next week." in told.body and "#requester" not in told.body
    [ticket] = daemon.tickets()
    assert ticket["requester"] == "carmen@example.org"
    assert ticket["token"] in told["Subject"]
    assert told["From"] == f"ACME Support <{SUPPORT}>"


def test_a_ticket_opened_for_a_customer_is_the_agents_first_reply(daemon: Daemon, smarthost: Smarthost) -> None:
    """The agent wrote first: the ticket is theirs, open, its first response given; no colleague is told of
    a "new ticket" nobody needs to pick up."""
    daemon.send(
        make_mail(sender=ANA, subject="Your invoice", body="#requester carmen@example.org\nHello Carmen.\n"),
        mail_from=ANA,
    )
    smarthost.wait_for("carmen@example.org")
    [ticket] = daemon.tickets()
    detail = daemon.ticket(ticket["id"])
    assert (detail["requester"], detail["status"], detail["assignee"]) == ("carmen@example.org", "open", ANA)
    assert "first_responded_at" in {h["field"] for h in detail["history"]}
    daemon.wait_processed()
    assert smarthost.to(LUIS) == []


def test_a_refused_mail_opens_no_ticket_for_the_customer_it_names(daemon: Daemon, smarthost: Smarthost) -> None:
    """`#requester` is a command like the others: refused with them, it gives nobody's ticket to the customer
    (the mail stays on a ticket of the agent's own, as a note), and the customer is not written to."""
    daemon.send(
        make_mail(
            sender=ANA,
            cc=["carmen@example.org"],
            subject="On behalf",
            body="#requester carmen@example.org\n#priority bogus\nHello Carmen.\n",
        ),
        mail_from=ANA,
    )
    wait_until(lambda: smarthost.matching(ANA, "Commands refused"), 10, "the refusal")
    [ticket] = daemon.tickets()
    detail = daemon.ticket(ticket["id"])
    assert detail["requester"] == ANA and detail["followers"] == []
    assert [m["visibility"] for m in detail["messages"]] == ["internal"]
    assert smarthost.to("carmen@example.org") == []


def test_a_mail_of_commands_alone_is_no_reply(daemon: Daemon, smarthost: Smarthost) -> None:
    """Commands without a word for the customer do not take the ticket nor meet its first response: the
    customer got nothing, and the mail is kept as an internal note, not an empty message to them. `#status
    new` hands a ticket back to the pile."""
    ticket = new_ticket(daemon, smarthost)
    agent_mail(daemon, ticket, "#tag +triaged\n#priority high\n", sender=LUIS)
    detail = daemon.ticket(ticket["id"])
    assert (detail["status"], detail["assignee"], detail["tags"]) == ("new", None, ["triaged"])
    assert (detail["messages"][-1]["visibility"], detail["messages"][-1]["text"]) == ("internal", "")
    assert "first_responded_at" not in {h["field"] for h in detail["history"]}
    agent_mail(daemon, ticket, "Looking into it.\n")
    assert daemon.ticket(ticket["id"])["assignee"] == ANA  # the real reply takes it
    agent_mail(daemon, ticket, "#status new\n#assign none\n")
    detail = daemon.ticket(ticket["id"])
    assert (detail["status"], detail["assignee"]) == ("new", None)
    agent_mail(daemon, ticket, "#resolve responded\nDone.\n")
    agent_mail(daemon, ticket, "#status new\n")  # refused: what it accepts is where a resolved ticket may go
    [refusal] = wait_until(lambda: smarthost.matching(ANA, "Commands refused"), 10, "the refusal")
    assert "accepted: one of open, closed" in refusal.body


def test_assign_queue_category_cc_link_postpone_forward(daemon: Daemon, smarthost: Smarthost) -> None:
    """The remaining commands change what `ticket show --json` reports, each in the history."""
    other = new_ticket(daemon, smarthost, subject="Older problem")
    daemon.send(make_mail(subject="Newer problem"))
    daemon.wait_processed()
    ticket = next(t for t in daemon.tickets() if t["subject"] == "Newer problem")
    agent_mail(
        daemon,
        ticket,
        f"#assign Luis\n#queue billing\n#category hardware\n#cc +boss@example.org\n"
        f"#link {other['id']}\n#postpone 2d\n#forward {THIRD}\n#internal\nFYI vendor.\n",
    )
    detail = daemon.ticket(ticket["id"])
    assert detail["assignee"] == LUIS and detail["queue"] == "billing" and detail["category"] == "hardware"
    assert detail["followers"] == ["boss@example.org"]
    assert detail["linked"] == [other["id"]] and daemon.ticket(other["id"])["linked"] == [ticket["id"]]
    assert detail["due_at"] is not None
    [forwarded] = smarthost.wait_for(THIRD)
    assert "Newer problem" in forwarded["Subject"] and "Hello, my printer is on fire." in forwarded.body
    assert "FYI vendor" in forwarded.body
    fields = {h["field"] for h in detail["history"] if h["actor"] == ANA}
    assert {"assignee", "queue", "category", "followers", "linked", "due_at"} <= fields
    agent_mail(daemon, ticket, "#assign nobody-known\n")
    wait_until(lambda: smarthost.matching(ANA, "Commands refused"), 10, "refusal")
    agent_mail(daemon, ticket, "#cc -boss@example.org\n#assign none\n#internal\n")
    detail = daemon.ticket(ticket["id"])
    assert detail["followers"] == [] and detail["assignee"] is None


def test_an_agent_given_the_ticket_is_told_once(start_daemon: Callable[..., Daemon], smarthost: Smarthost) -> None:
    """`#assign` to another agent mails them what the ticket is about, the customer's latest words and the
    assigning mail, threaded with the ticket; a note that assigns tells them in the note's notice instead,
    and an agent taking the ticket tells nobody."""
    daemon = start_daemon()
    ticket = new_ticket(daemon, smarthost)
    daemon.send(make_mail(subject=f"Re: {ticket['token']} Printer on fire", body="Now it smokes too."))
    daemon.wait_processed()
    agent_mail(daemon, ticket, "#assign Luis\nLuis will call you today.\n")
    [told] = wait_until(lambda: smarthost.matching(LUIS, "Assigned to you"), 10, "the assignment notice")
    assert ticket["token"] in told["Subject"]
    assert f"Ana <{ANA}> assigned {ticket['token']} to you." in told.body
    assert "Now it smokes too." in told.body and "Luis will call you today." in told.body
    assert "#assign" not in told.body
    assert told["In-Reply-To"] in told["References"] and told["Auto-Submitted"] == "auto-generated"
    assert daemon.ticket(ticket["id"])["assignee"] == LUIS
    assert smarthost.matching(CUSTOMER, "Luis will call you today.")  # still relayed
    wait_until(lambda: smarthost.matching(ANA, "Applied"), 10, "Ana's transcript")
    assert [m for m in smarthost.to(ANA) if "Assigned" in m["Subject"]] == []

    # A note handing the ticket back: one mail to Ana, the note's notice, saying so.
    before = len(smarthost.to(ANA))
    agent_mail(daemon, ticket, "#internal\n#assign ana\nBack to you, I am out.\n", sender=LUIS)
    to_ana = wait_until(lambda: smarthost.to(ANA)[before:] if len(smarthost.to(ANA)) > before else None, 10, "notes")
    assert [m for m in to_ana if "Assigned to you" in m["Subject"]] == []
    [note] = [m for m in to_ana if "Internal note" in m["Subject"]]
    assert "added an internal note" in note.body and "and assigned it to you" in note.body
    assert "Back to you, I am out." in note.body

    # Taking it oneself is no news to anyone.
    agent_mail(daemon, ticket, "#assign me\n#internal\n", sender=LUIS)
    wait_until(lambda: smarthost.matching(LUIS, f"assignee: {ANA} → {LUIS}"), 10, "Luis's transcript")
    assert len([m for m in smarthost.mails if "Assigned" in m["Subject"]]) == 1

    spanish = start_daemon(language="es")
    ticket = new_ticket(spanish, smarthost, subject="Impresora en llamas")
    agent_mail(spanish, ticket, "#asignar Luis\n#nota\n")
    assert spanish.ticket(ticket["id"])["assignee"] == LUIS
    agent_mail(spanish, ticket, "#asignar Ana\n", sender=LUIS)
    [dicho] = wait_until(lambda: smarthost.matching(ANA, "Asignado a usted"), 10, "el aviso de asignación")
    assert f"Luis <{LUIS}> le ha asignado {ticket['token']}." in dicho.body


def test_the_assignee_hears_when_a_colleague_answers_their_customer(daemon: Daemon, smarthost: Smarthost) -> None:
    """Luis answering Ana's customer sends Ana a copy of what went out, also when he takes the ticket in
    that mail; his command-only mail and Ana's own reply send her none."""
    ticket = new_ticket(daemon, smarthost)
    agent_mail(daemon, ticket, "I am on it.\n")
    assert daemon.ticket(ticket["id"])["assignee"] == ANA
    agent_mail(daemon, ticket, "#time 5m\n", sender=f"Luis <{LUIS}>")
    agent_mail(daemon, ticket, "I will drop by at noon.\n", sender=f"Luis <{LUIS}>")
    wait_until(lambda: smarthost.matching(CUSTOMER, "drop by at noon"), 10, "the relay")
    [copy] = wait_until(lambda: smarthost.matching(ANA, "Answered by"), 10, "Ana's copy")
    assert copy["Subject"] == f"{ticket['token']} Answered by Luis: Printer on fire"
    assert f"Luis <{LUIS}> answered the customer on {ticket['token']}, which is assigned to you" in copy.body
    assert "I will drop by at noon." in copy.body
    assert copy["In-Reply-To"] in copy["References"]
    assert smarthost.matching(LUIS, "Answered by") == []
    agent_mail(daemon, ticket, "See you at noon then.\n")
    wait_until(lambda: smarthost.matching(CUSTOMER, "See you at noon"), 10, "Ana's relay")
    assert len(smarthost.matching(ANA, "Answered by")) == 1
    assert daemon.ticket(ticket["id"])["assignee"] == ANA

    # Luis takes the ticket while answering: Ana, who had it, hears what he said and that it is his now.
    agent_mail(daemon, ticket, "#assign me\nI will handle it from here.\n", sender=f"Luis <{LUIS}>")
    [taken] = wait_until(lambda: smarthost.matching(ANA, "handle it from here"), 10, "Ana's copy")
    assert f"answered the customer on {ticket['token']} and took it over from you" in taken.body
    assert daemon.ticket(ticket["id"])["assignee"] == LUIS


def test_the_customer_is_answered_in_the_language_they_write(
    start_daemon: Callable[..., Daemon], smarthost: Smarthost
) -> None:
    """On an English desk a Spanish mail gets the Spanish acknowledgement, a short one too, and a mail whose
    words say nothing follows its Content-Language; `#language` (`#idioma`) puts a ticket right, for every
    later mail to its customer."""
    daemon = start_daemon(language="en")
    spanish = new_ticket(
        daemon, smarthost, subject="Impresora en llamas", body="Hola, mi impresora está en llamas. Gracias."
    )
    [ack] = smarthost.to(CUSTOMER)
    assert ack["Subject"].startswith(f"{spanish['token']} Hemos recibido su solicitud")
    assert daemon.ticket(spanish["id"])["language"] == "es"

    agent_mail(daemon, spanish, "#language en\nYour printer is fixed.\n")
    [transcript] = wait_until(lambda: smarthost.matching(ANA, "Applied"), 10, "the transcript")
    assert "language: es → en" in transcript.body
    [reply] = wait_until(lambda: smarthost.matching(CUSTOMER, "Your printer is fixed."), 10, "the relay")
    assert "Reply to this message to continue" in reply.body
    assert daemon.ticket(spanish["id"])["language"] == "en"

    labelled = "other@example.org"
    # Outlook's label, on top (EmailMessage.set_content would drop a Content-* header given before it).
    raw = make_mail(sender=labelled, subject="Factura 2026/11", body="Ref. 44120")
    daemon.send(b"Content-Language: es-ES\r\n" + raw, mail_from=labelled)
    [labelled_ack] = smarthost.wait_for(labelled)
    assert "Hemos recibido su solicitud" in labelled_ack["Subject"]

    # A two-line Spanish mail has too few telling words, but its subject and its ¿ say enough.
    brief = "brief@example.org"
    daemon.send(make_mail(sender=brief, subject="Impresora averiada", body="¿Me ayudan?"), mail_from=brief)
    [brief_ack] = smarthost.wait_for(brief)
    assert "Hemos recibido su solicitud" in brief_ack["Subject"]


PAT = "pat@example.com"
PAT = "pat@example.com"


def test_who_had_the_ticket_hears_where_a_colleague_sent_it(
    start_daemon: Callable[..., Daemon], smarthost: Smarthost
) -> None:
    """A colleague answering the customer and handing the ticket on, or leaving it unassigned, tells whoever
    had it what was said and where the ticket went; the new assignee gets the assignment notice."""
    daemon = start_daemon(extra=f'\n[[agents]]\nemail = "{PAT}"\nname = "Pat"\nrole = "agent"\n')
    ticket = new_ticket(daemon, smarthost)
    agent_mail(daemon, ticket, "I am on it.\n")
    assert daemon.ticket(ticket["id"])["assignee"] == ANA

    agent_mail(daemon, ticket, "#assign Pat\nPat knows this printer; she will write to you.\n", sender=LUIS)
    wait_until(lambda: smarthost.matching(CUSTOMER, "Pat knows this printer"), 10, "the relay")
    [told] = wait_until(lambda: smarthost.matching(PAT, "Assigned to you"), 10, "Pat's assignment notice")
    assert "Pat knows this printer" in told.body
    [copy] = wait_until(lambda: smarthost.matching(ANA, "Answered by"), 10, "Ana's copy")
    assert f"answered the customer on {ticket['token']} and assigned it to Pat <{PAT}>" in copy.body
    assert "Pat knows this printer" in copy.body
    assert smarthost.matching(PAT, "Answered by") == [] and smarthost.matching(LUIS, "Answered by") == []
    assert daemon.ticket(ticket["id"])["assignee"] == PAT

    agent_mail(daemon, ticket, "#assign none\nWhoever is free first, please call.\n", sender=LUIS)
    [left] = wait_until(lambda: smarthost.matching(PAT, "Whoever is free first"), 10, "Pat's copy")
    assert f"answered the customer on {ticket['token']} and left it unassigned" in left.body
    assert daemon.ticket(ticket["id"])["assignee"] is None
    assert len(smarthost.matching(ANA, "Answered by")) == 1


def test_merge_moves_a_duplicate_into_the_first_ticket(daemon: Daemon, smarthost: Smarthost) -> None:
    """`#merge ID` moves the ticket's thread and people into ticket ID and closes it; the rest of the mail goes
    to ID's customers, and mail quoting the old token lands in ID, not in a new ticket. A merge with other
    commands, or into a merged ticket, is refused and changes nothing."""
    colleague = "colleague@example.org"
    first = new_ticket(daemon, smarthost, subject="Printer on fire")
    daemon.send(make_mail(sender=colleague, subject="Our printer burns", body="Smoke everywhere."), mail_from=colleague)
    [ack] = smarthost.wait_for(colleague)
    duplicate = next(t for t in daemon.tickets() if t["requester"] == colleague)

    agent_mail(daemon, duplicate, f"#merge {first['id']}\n#priority high\nSame fire.\n")
    [refused] = wait_until(lambda: smarthost.matching(ANA, "Commands refused"), 10, "the refusal")
    assert "#merge goes alone in a mail, with #internal at most" in refused.body
    assert duplicate["token"] in refused["Subject"]
    assert daemon.ticket(duplicate["id"])["merged_into"] is None

    agent_mail(daemon, duplicate, f"#merge {first['id']}\nWe follow this under the first report.\n")
    merged, kept = daemon.ticket(duplicate["id"]), daemon.ticket(first["id"])
    assert merged["status"] == "closed" and merged["merged_into"] == first["id"] and merged["messages"] == []
    assert [(m["text"], m["visibility"]) for m in kept["messages"]] == [
        ("Hello, my printer is on fire.", "public"),
        ("Smoke everywhere.", "public"),
        ("Same fire.", "internal"),  # the refused mail, kept for agents
        ("We follow this under the first report.", "public"),
    ]
    assert kept["followers"] == [colleague] and duplicate["id"] in kept["linked"]
    assert ("merged_into", None, str(first["id"])) in {(h["field"], h["old"], h["new"]) for h in merged["history"]}
    relayed = wait_until(lambda: smarthost.matching(CUSTOMER, "under the first report"), 10, "the relay")[0]
    assert first["token"] in relayed["Subject"] and colleague in relayed.rcpt_to
    [transcript] = wait_until(lambda: smarthost.matching(ANA, "Applied"), 10, "the transcript")
    assert f"merged: {duplicate['token']} → {first['token']}" in transcript.body

    # The colleague answers our first acknowledgement: the old token leads to the ticket it was merged into.
    daemon.send(
        make_mail(
            sender=colleague, subject=f"Re: {ack['Subject']}", body="Now the fax too.", in_reply_to=ack["Message-ID"]
        ),
        mail_from=colleague,
    )
    daemon.wait_processed()
    assert len(daemon.tickets()) == 2
    assert daemon.ticket(first["id"])["messages"][-1]["text"] == "Now the fax too."

    agent_mail(daemon, first, f"#merge {duplicate['id']}\n#internal\n")
    [again] = wait_until(lambda: smarthost.matching(ANA, "was merged into"), 10, "the second refusal")
    assert f"ticket {duplicate['id']} was merged into {first['id']}: merge into that one" in again.body
    assert daemon.ticket(first["id"])["status"] != "closed"


def test_time_report_sums_billable_and_nonbillable(daemon: Daemon, smarthost: Smarthost) -> None:
    """`maild report time` adds up the minutes per requester, agent or queue, as table, JSON or CSV."""
    ticket = new_ticket(daemon, smarthost)
    agent_mail(daemon, ticket, "#time 45m\n#internal\n")
    agent_mail(daemon, ticket, "#tiempo 1:30 nofacturable\n#internal\n", sender=LUIS)
    agent_mail(daemon, ticket, "#time 0.5h\n#internal\n")
    args = ("report", "time", "--from", "2000-01-01", "--to", "2100-12-31")
    by_agent = json.loads(daemon.cli(*args, "--by", "agent", "--json").stdout)
    assert by_agent == [
        {"agent": ANA, "billable_minutes": 75, "nonbillable_minutes": 0, "entries": 2, "tickets": 1},
        {"agent": LUIS, "billable_minutes": 0, "nonbillable_minutes": 90, "entries": 1, "tickets": 1},
    ]
    rows = list(csv.DictReader(io.StringIO(daemon.cli(*args, "--csv").stdout)))
    assert rows == [
        {"requester": CUSTOMER, "billable_minutes": "75", "nonbillable_minutes": "90", "entries": "3", "tickets": "1"}
    ]
    assert json.loads(daemon.cli("report", "time", "--from", "2000-01-01", "--to", "2000-01-02", "--json").stdout) == []
    bad = daemon.cli("report", "time", "--from", "yesterday", "--to", "2100-01-01", check=False)
    assert bad.returncode == 1 and "expected dates" in bad.stderr


def test_an_agent_asks_for_the_digest_by_mail(daemon: Daemon, smarthost: Smarthost) -> None:
    """`#digest` alone in a new mail (or a reply to a digest) brings the agent their digest now, even with
    nothing open, and opens no ticket; beside other commands on a ticket it is sent too; from a customer it
    is only text."""
    daemon.send(make_mail(sender=LUIS, subject="my list", body="#digest\n"), mail_from=LUIS)
    daemon.wait_processed()
    [empty] = wait_until(lambda: smarthost.matching(LUIS, "Your tickets on"), 10, "Luis's digest")
    assert "Nothing is assigned to you." in empty.body
    # As the digest says: a reply to it with the line alone brings a fresh one.
    reply = make_mail(
        sender=LUIS,
        subject=f"Re: {empty['Subject']}",
        body="#digest\n\n> Nothing is assigned to you.\n",
        in_reply_to=empty["Message-ID"],
        references=[empty["Message-ID"]],
    )
    daemon.send(reply, mail_from=LUIS)
    daemon.wait_processed()
    wait_until(lambda: len(smarthost.matching(LUIS, "Your tickets on")) == 2, 10, "the second digest")
    assert daemon.tickets() == []
    assert daemon.spool_states() == {"dropped": 2}

    ticket = new_ticket(daemon, smarthost)
    agent_mail(daemon, ticket, "#assign me\n#digest\n#internal\n")
    [digest] = wait_until(lambda: smarthost.matching(ANA, "Your tickets on"), 10, "Ana's digest")
    assert digest["Subject"].endswith(": 1 open")
    assert ticket["token"] in digest.body
    [transcript] = wait_until(lambda: smarthost.matching(ANA, "Applied"), 10, "the transcript")
    assert "digest: - → sent" in transcript.body

    daemon.send(make_mail(subject="Question", body="#digest\nWhat is my order's status?"))
    daemon.wait_processed()
    assert [t["subject"] for t in daemon.tickets()].count("Question") == 1
    assert not smarthost.matching(CUSTOMER, "Your tickets on")


def test_a_reply_to_a_digest_opens_no_ticket_and_says_how_to_reach_one(daemon: Daemon, smarthost: Smarthost) -> None:
    """Any other reply to a digest (about many tickets, so about none) opens no ticket: it is kept among the
    dropped mail and the agent is told how to reach a ticket; their out-of-office answering it is told
    nothing. A reply with a ticket's token in its subject goes to that ticket."""
    daemon.send(make_mail(sender=LUIS, subject="my list", body="#digest\n"), mail_from=LUIS)
    [digest] = wait_until(lambda: smarthost.matching(LUIS, "Your tickets on"), 10, "Luis's digest")
    reply = dict(sender=LUIS, subject=f"Re: {digest['Subject']}", in_reply_to=digest["Message-ID"])
    daemon.send(make_mail(**reply, body="I will take the printer one.\n"), mail_from=LUIS)
    [word] = wait_until(lambda: smarthost.matching(LUIS, "went to no ticket"), 10, "the word on tickets")
    assert f'your mail "Re: {digest["Subject"]}" answers a digest' in " ".join(word.body.split())
    assert "write to support@example.com with its token" in word.body
    daemon.send(
        make_mail(**reply, body="Back on Monday.\n", headers={"Auto-Submitted": "auto-replied"}), mail_from=LUIS
    )
    daemon.wait_processed()
    assert daemon.tickets() == [] and len(smarthost.matching(LUIS, "went to no ticket")) == 1
    dropped = json.loads(daemon.cli("dropped", "list", "--json").stdout)
    assert [d["error"] for d in dropped] == [
        "automatic reply to a digest",
        "reply to a digest, which belongs to no ticket",
        "digest sent on request",
    ]

    ticket = new_ticket(daemon, smarthost)
    daemon.send(make_mail(**{**reply, "subject": f"Re: {ticket['token']}"}, body="#assign me\n"), mail_from=LUIS)
    daemon.wait_processed()
    assert daemon.ticket(ticket["id"])["assignee"] == LUIS


def test_dates_read_and_shown_in_the_desks_time_zone(start_daemon: Callable[..., Daemon], smarthost: Smarthost) -> None:
    """On a desk in Madrid, "#wait until 2031-01-15 09:00" means 09:00 there (08:00 UTC), and the transcript
    shows it as the agent wrote it, with the desk's offset."""
    daemon = start_daemon()
    daemon.stop()
    daemon.config_path.write_text(
        daemon.config_path.read_text().replace("[maild]\n", '[maild]\ntimezone = "Europe/Madrid"\n')
    )
    daemon.start()
    ticket = new_ticket(daemon, smarthost)
    agent_mail(daemon, ticket, "#wait until 2031-01-15 09:00\n#internal\n")
    history = daemon.ticket(ticket["id"])["history"]
    assert [h["new"] for h in history if h["field"] == "wait_until"] == ["2031-01-15T08:00:00+00:00"]
    [transcript] = wait_until(lambda: smarthost.matching(ANA, "Applied"), 10, "the transcript")
    assert "wait_until: - → 2031-01-15T09:00+01:00" in transcript.body
    # 02:30 on the last Sunday of March does not exist in Madrid: refused, not moved to 03:30 unsaid.
    agent_mail(daemon, ticket, "#wait until 2031-03-30 02:30\n#internal\n")
    [refused] = wait_until(lambda: smarthost.matching(ANA, "Commands refused"), 10, "the refusal")
    assert "2031-03-30 02:30 does not exist in Europe/Madrid: the clocks skip that hour" in refused.body
    assert daemon.ticket(ticket["id"])["wait_until"] == "2031-01-15T08:00:00+00:00"


def test_link_and_merge_refuse_another_desks_token(daemon: Daemon, smarthost: Smarthost) -> None:
    """[OTHER#5] names another desk's ticket 5: #link and #merge refuse it instead of taking ours with that
    number, and this desk's own token is taken in any case."""
    first = new_ticket(daemon, smarthost, subject="Printer on fire")
    second = new_ticket(daemon, smarthost, subject="Fax on fire")
    for command in (f"#link [OTHER#{first['id']}]", f"#merge OTHER#{first['id']}"):
        agent_mail(daemon, second, f"{command}\n#internal\n")
        [refused] = wait_until(lambda: smarthost.matching(ANA, f"[OTHER#{first['id']}] is a ticket"), 10, command)
        assert f"this desk's tokens read {first['token']}" in refused.body
        smarthost.mails.clear()
    assert daemon.ticket(second["id"])["linked"] == [] and daemon.ticket(second["id"])["merged_into"] is None
    agent_mail(daemon, second, f"#link {first['token'].lower()}\n#internal\n")
    assert daemon.ticket(second["id"])["linked"] == [first["id"]]


def outlook_reply(notice: Any, text: str) -> bytes:
    """An agent's top-posted reply to a notice as Outlook writes it in a language whose quote header maild
    does not know (Turkish here): no ">" on the quoted lines, the header block in plain text."""
    quoted = (
        f"{text}\n\n________________________________\nKimden: ACME Support <{SUPPORT}>\n"
        f"Gönderildi: 3 Aralık 2026 Perşembe 10:00\nKime: {ANA}\nKonu: {notice['Subject']}\n\n{notice.body}"
    )
    return make_mail(sender=ANA, subject=f"RE: {notice['Subject']}", body=quoted, in_reply_to=notice["Message-ID"])


def test_a_notice_quoted_without_marks_is_neither_commands_nor_relayed(daemon: Daemon, smarthost: Smarthost) -> None:
    """Every notice to agents starts with "##- Reply above this line -##", and an agent's reply ends there
    however their client quoted it: a stranger's "#forward" line in a notice does not run as the agent's
    command, and an internal note quoted in the agent's answer does not reach the customer."""
    ticket = new_ticket(daemon, smarthost)
    stranger = "mallory@evil.example"
    daemon.send(
        make_mail(sender=stranger, subject=f"Re: {ticket['token']}", body=f"Hi,\n#forward {stranger}\n"),
        mail_from=stranger,
    )
    [notice] = wait_until(lambda: smarthost.matching(ANA, f"#forward {stranger}"), 10, "the notice")
    assert notice.body.startswith("##- Reply above this line -##")
    daemon.send(outlook_reply(notice, "Thanks, we are looking into it."), mail_from=ANA)
    daemon.wait_processed()
    [relayed] = wait_until(lambda: smarthost.matching(CUSTOMER, "looking into it"), 10, "the relay")
    assert "Kimden" not in relayed.body and "#forward" not in relayed.body
    assert smarthost.to(stranger) == []
    assert daemon.ticket(ticket["id"])["messages"][-1]["text"] == "Thanks, we are looking into it."

    agent_mail(daemon, ticket, "#internal\nDo NOT refund: third claim this year.\n", sender=LUIS)
    [note] = wait_until(lambda: smarthost.matching(ANA, "Do NOT refund"), 10, "the internal note's notice")
    daemon.send(outlook_reply(note, "We will send a replacement."), mail_from=ANA)
    daemon.wait_processed()
    [answer] = wait_until(lambda: smarthost.matching(CUSTOMER, "replacement"), 10, "the answer")
    assert "Do NOT refund" not in answer.body
    assert smarthost.to(stranger) == []


def test_a_forwards_note_goes_to_the_third_party_alone(daemon: Daemon, smarthost: Smarthost) -> None:
    """`#forward ADDR` with text: the text is the note to the third party, once, before the thread; the
    customer does not get it, and the ticket keeps it as an internal note."""
    ticket = new_ticket(daemon, smarthost)
    agent_mail(daemon, ticket, "#priority high\n")  # commands alone: an empty message, not in the thread sent
    agent_mail(daemon, ticket, f"#forward {THIRD}\nPlease check this printer's warranty.\n")
    [forwarded] = smarthost.wait_for(THIRD)
    assert forwarded.body.count("warranty") == 1 and forwarded.body.count("-----") == 2  # the customer's mail
    assert forwarded.body.index("warranty") < forwarded.body.index("Hello, my printer is on fire.")
    daemon.wait_processed()
    assert smarthost.matching(CUSTOMER, "warranty") == []
    note = daemon.ticket(ticket["id"])["messages"][-1]
    assert note["visibility"] == "internal" and note["text"] == "Please check this printer's warranty."


def test_a_forward_carries_the_public_threads_files(daemon: Daemon, smarthost: Smarthost) -> None:
    """`#forward` attaches the files of the forwarding mail and of the public thread (a reply of a file alone
    too), each once; an internal note's file stays inside, and a file whose stored copy is gone is named in
    the mail instead."""
    photo, log = b"\xff\xd8\xff\xe0 fake jpeg" * 50, "Error: impresión fallida\n".encode()
    ticket = new_ticket(daemon, smarthost, attachments=[("photo.jpg", "image/jpeg", photo)])
    reply = make_mail(
        subject=f"Re: {ticket['token']}", body="Log attached.", attachments=[("log.txt", "text/plain", log)]
    )
    daemon.send(reply)
    daemon.wait_processed()
    secret = b"%PDF-1.4 internal pricing"
    agent_mail(daemon, ticket, "#internal\nOur costs.", attachments=[("costs.pdf", "application/pdf", secret)])
    gone, screenshot = b"GIF89a gone", b"\x89PNG screenshot"
    daemon.send(
        make_mail(subject=f"Re: {ticket['token']}", body="One more.", attachments=[("old.gif", "image/gif", gone)])
    )
    daemon.send(  # a reply of a screenshot alone
        make_mail(subject=f"Re: {ticket['token']}", body="", attachments=[("screen.png", "image/png", screenshot)])
    )
    daemon.wait_processed()
    blob = (
        daemon.workdir / "data" / "blobs" / hashlib.sha256(gone).hexdigest()[:2] / hashlib.sha256(gone).hexdigest()[2:]
    )
    blob.unlink()
    model = [("model.txt", "text/plain", b"LaserJet 4000")]
    agent_mail(daemon, ticket, f"#forward {THIRD}\nThe customer's photo and log.\n", attachments=model)
    [forwarded] = smarthost.wait_for(THIRD)
    parts = {p.get_filename(): p for p in forwarded.message.iter_attachments()}
    assert list(parts) == ["model.txt", "photo.jpg", "log.txt", "screen.png"]  # the agent's own first
    assert parts["photo.jpg"].get_content() == photo and parts["photo.jpg"].get_content_type() == "image/jpeg"
    assert parts["log.txt"].get_content_charset() == "utf-8" and parts["log.txt"].get_content() == log.decode()
    assert f"old.gif ({len(gone)} bytes): no longer stored" in forwarded.body
    assert "costs.pdf" not in forwarded.body and "Our costs" not in forwarded.body


def test_a_forward_names_agents_without_their_addresses(daemon: Daemon, smarthost: Smarthost) -> None:
    """A third party reads the agents' names and the desk's, never their own addresses."""
    ticket = new_ticket(daemon, smarthost)
    agent_mail(daemon, ticket, "We are checking the toner.\n")
    agent_mail(daemon, ticket, f"#forward {THIRD}\nCan you help?\n")
    [forwarded] = smarthost.wait_for(THIRD)
    assert "Ana (ACME Support) -----" in forwarded.body and "We are checking the toner." in forwarded.body
    assert ANA not in forwarded.body and CUSTOMER in forwarded.body


def test_the_transcript_shows_the_ticket_as_the_mail_left_it(daemon: Daemon, smarthost: Smarthost) -> None:
    """A reply with commands takes the new ticket (open, the agent's) after the commands ran: the
    transcript's "Now:" line says so, not the state before the reply counted."""
    ticket = new_ticket(daemon, smarthost)
    agent_mail(daemon, ticket, "#time 15m\nLooking into it.\n")
    [transcript] = wait_until(lambda: smarthost.matching(ANA, "Applied"), 10, "the transcript")
    assert f"Now: status open, assignee {ANA}, priority normal" in transcript.body
