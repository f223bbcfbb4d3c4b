"""Intake paths besides plain SMTP: LMTP, `maild inject`, a failing store, shunting and replay."""

from __future__ import annotations

import asyncio
import json
import os
import smtplib
import socket
import sqlite3
import ssl
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from maild.app import build_services
from maild.config import load_config
from maild.handlers import build_handlers
from maild.handlers.base import CONTINUE, Context, Outcome
from maild.intake.smtp import IntakeHandler, SmtpListener
from maild.pipeline import BATCH, BATCH_BACKLOG, Pipeline, Result, Runner
from maild.spool import Spooler
from maild.store import Store, Tx
from tests.helpers import (
    ANA,
    BILLING,
    CUSTOMER,
    SUPPORT,
    Daemon,
    Smarthost,
    make_mail,
    message_id_of,
    private_ca,
    wait_until,
)

CONTRACT_TICKET_KEYS = {
    "id",
    "token",
    "subject",
    "status",
    "priority",
    "queue",
    "category",
    "tags",
    "requester",
    "assignee",
    "followers",
    "linked",
    "created_at",
    "resolved_at",
    "resolved_by",
    "resolution",
    "due_at",
    "first_response_due_at",
    "sla_breached",
    "clock",
    "time_entries",
    "messages",
    "history",
}


def test_lmtp_answers_once_per_recipient(start_daemon: Callable[..., Daemon], smarthost: Smarthost) -> None:
    """With lmtp = true the listener speaks LMTP and gives each accepted recipient its own reply."""
    daemon = start_daemon(lmtp=True)
    with smtplib.LMTP("127.0.0.1", daemon.port, timeout=10) as client:
        client.ehlo_or_helo_if_needed()
        assert client.mail(CUSTOMER)[0] == 250
        assert client.rcpt(SUPPORT)[0] == 250
        assert client.rcpt(BILLING)[0] == 250
        client.putcmd("data")
        assert client.getreply()[0] == 354
        client.send(smtplib.quotedata(make_mail(to=[SUPPORT, BILLING]).decode()).encode() + b"\r\n.\r\n")
        replies = [client.getreply(), client.getreply()]  # one per recipient (RFC 2033)
    assert [code for code, _ in replies] == [250, 250]
    smarthost.wait_for(CUSTOMER)
    [ticket] = daemon.tickets()
    assert ticket["queue"] == "billing"


def test_inject_reads_stdin_and_processes(daemon: Daemon, smarthost: Smarthost) -> None:
    """`maild inject` (an MTA pipe) stores and processes a message; the running daemon sends the ack."""
    raw = make_mail(subject="Via pipe")
    result = daemon.cli("inject", "--from", CUSTOMER, "--to", SUPPORT, stdin=raw)
    assert "done" in result.stdout and "ticket" in result.stdout
    [ack] = smarthost.wait_for(CUSTOMER)
    assert "Via pipe" in ack["Subject"]
    again = daemon.cli("inject", stdin=raw)
    assert "duplicate" in again.stdout
    assert len(daemon.tickets()) == 1


def test_a_different_mail_reusing_a_message_id_is_kept_shunted_not_dropped(
    daemon: Daemon, smarthost: Smarthost
) -> None:
    """A client that reuses a Message-ID: the second mail is no copy of the first (its body differs), so it is
    not dropped as a duplicate, nor processed (it may be a copy changed on its way): it is kept shunted with
    the reason, and replayed it opens a ticket of its own. Copies of either mail, relayed with other header
    fields, are still duplicates."""
    first = make_mail(subject="Printer on fire", body="It burns.", message_id="<reused@client.example.org>")
    other = make_mail(subject="Invoice 7 is wrong", body="It says 700.", message_id="<reused@client.example.org>")
    daemon.send(first)
    [ack] = smarthost.wait_for(CUSTOMER)
    daemon.send(other)
    daemon.send(b"Received: from relay.example.net by mx.example.com; Mon, 1 Dec 2026 10:00:00 +0000\r\n" + other)
    daemon.send(first.replace(b"\r\n", b"\n"))  # the same mail, as a pipe hands it over
    piped = daemon.cli("inject", stdin=make_mail(subject="Third", message_id="<reused@client.example.org>"))
    daemon.wait_processed()
    assert [t["subject"] for t in daemon.tickets()] == ["Printer on fire"]
    kept = json.loads(daemon.cli("shunt", "list", "--json").stdout)
    assert [(k["step"], k["error"].split(":")[0]) for k in kept] == [
        ("spool", "Message-ID <reused@client.example.org> already taken by inbound 1, whose body differs")
    ] * 2
    assert piped.stdout.startswith(f"shunted: inbound {kept[1]['id']} (Message-ID <reused@client.example.org>")
    assert daemon.spool_states() == {"done": 1, "shunted": 2}
    assert smarthost.to(CUSTOMER) == [ack]  # nothing answered the second mail, nor a copy
    assert daemon.cli("shunt", "replay", str(kept[0]["id"])).stdout.strip() == f"{kept[0]['id']}: done"
    assert sorted(t["subject"] for t in daemon.tickets()) == ["Invoice 7 is wrong", "Printer on fire"]


def test_inject_bounces_mail_for_an_address_maild_does_not_serve(daemon: Daemon, smarthost: Smarthost) -> None:
    """A pipe transport routed wider than maild serves: as RCPT refuses such an address over SMTP, inject
    exits 67 (the MTA bounces "user unknown") and keeps nothing; a served address with a +tag goes through."""
    stray = daemon.cli("inject", "--to", "sales@example.com", stdin=make_mail(subject="Wrong door"), check=False)
    assert stray.returncode == 67
    assert stray.stderr.strip() == "maild: not an address maild serves: sales@example.com"
    assert daemon.spool_states() == {}
    tagged = daemon.cli("inject", "--to", "Support+urgent@example.com", stdin=make_mail(subject="Right door"))
    assert tagged.stdout.startswith("done: ticket")
    assert [t["subject"] for t in daemon.tickets()] == ["Right door"]


def test_inject_exits_75_when_the_store_fails(tmp_path: Path, smarthost: Smarthost) -> None:
    """A store that cannot be written makes `maild inject` exit 75 so the MTA keeps the mail and retries."""
    daemon = Daemon(tmp_path, smarthost.port)
    (tmp_path / "data").write_text("not a folder")  # data_dir is unusable
    result = daemon.cli("inject", stdin=make_mail(), check=False)
    assert result.returncode == 75
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("maild: cannot store the message")


def test_store_failure_answers_4xx_over_smtp(tmp_path: Path, smarthost: Smarthost) -> None:
    """When the spool commit fails, the SMTP client gets a 451 (the sending MTA retries), never a 250."""
    daemon = Daemon(tmp_path, smarthost.port)
    config = load_config(daemon.config_path)

    async def scenario() -> tuple[int, bytes]:
        store = await Store.open(config.db_path)
        await store._db.close()  # the database goes away under the daemon
        spooler = Spooler(store)
        spooler.start()
        listener = SmtpListener(config, IntakeHandler(config, spooler))
        await listener.start()
        try:
            return await asyncio.to_thread(_send_data, listener.port)
        finally:
            await listener.stop(grace_seconds=1)
            await spooler.stop()

    code, _ = asyncio.run(scenario())
    assert code == 451


def _send_data(port: int) -> tuple[int, bytes]:
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
        client.ehlo()
        client.mail(CUSTOMER)
        client.rcpt(SUPPORT)
        return client.data(make_mail())


class _Explodes:
    """A step that fails, standing in for any bug or broken dependency."""

    name = "explodes"

    def __init__(self, *_: object) -> None:
        pass

    async def process(self, ctx: Context, tx: Tx) -> Outcome:
        raise RuntimeError("disk on fire")


def test_a_burst_over_concurrent_sessions_is_answered_and_processed_once_each(
    daemon: Daemon, smarthost: Smarthost
) -> None:
    """Six sessions send five mails each at once, while the runner processes the first ones (group commits of
    several sessions, messages sharing transactions): each is answered 250 once, and each becomes one ticket
    with one acknowledgement, none lost, none twice."""
    senders = {(s, n): f"burst{s}.{n}@example.org" for s in range(6) for n in range(5)}
    mails = {key: make_mail(subject=f"Burst {key[0]}.{key[1]}", sender=sender) for key, sender in senders.items()}

    def session(s: int) -> list[dict[str, tuple[int, bytes]]]:
        with smtplib.SMTP("127.0.0.1", daemon.port, timeout=30) as client:
            return [client.sendmail(senders[(s, n)], [SUPPORT], mails[(s, n)]) for n in range(5)]

    with ThreadPoolExecutor(6) as pool:
        refused = [r for answers in pool.map(session, range(6)) for r in answers if r]
    assert refused == []  # sendmail returns the refused recipients, and raises on any answer but 250
    daemon.wait_processed()
    tickets = daemon.tickets()
    assert sorted(t["subject"] for t in tickets) == sorted(f"Burst {s}.{n}" for s, n in senders)
    assert sorted(t["requester"] for t in tickets) == sorted(senders.values())
    received = [e for e in daemon.log_events() if e.get("event") == "received"]
    assert len({e["inbound_id"] for e in received if not e["duplicate"]}) == len(received) == len(mails)
    for key, sender in senders.items():
        [ack] = smarthost.wait_for(sender, 1)
        assert ack["In-Reply-To"] == message_id_of(mails[key])


def test_failed_step_shunts_the_message_and_replay_processes_it(daemon: Daemon, smarthost: Smarthost) -> None:
    """A step that raises rolls back all of the message's changes, keeps it shunted with the step's name and
    error, and `maild shunt replay` processes it once the cause is gone."""
    daemon.stop()  # only this process touches the store while the message is shunted
    asyncio.run(_shunt(daemon.config_path, ["Shunt me"]))
    assert daemon.tickets() == []  # the half-made ticket was rolled back
    [shunted] = json.loads(daemon.cli("shunt", "list", "--json").stdout)
    assert shunted["step"] == "explodes"
    assert "disk on fire" in shunted["error"]
    replayed = daemon.cli("shunt", "replay", str(shunted["id"]))
    assert replayed.stdout.strip() == f"{shunted['id']}: done"  # the pipeline's log lines go to stderr
    assert [t["subject"] for t in daemon.tickets()] == ["Shunt me"]
    assert json.loads(daemon.cli("shunt", "list", "--json").stdout) == []
    missing = daemon.cli("shunt", "replay", "9999", check=False)
    assert missing.returncode == 1 and "no shunted message 9999" in missing.stderr


def test_messages_committed_together_are_shunted_alone(daemon: Daemon, smarthost: Smarthost) -> None:
    """Messages waiting together share one transaction, each in its own savepoint: the one whose step raises
    is shunted with nothing of it kept, and the others around it keep their tickets and acknowledgements."""
    daemon.stop()
    subjects = ["First", "Shunt me", *(f"Mail {n}" for n in range(3, 3 + BATCH_BACKLOG))]  # a backlog
    asyncio.run(_drain_with_a_failure(daemon.config_path, subjects))
    [shunted] = json.loads(daemon.cli("shunt", "list", "--json").stdout)
    assert shunted["step"] == "explodes" and "disk on fire" in shunted["error"]
    tickets = json.loads(daemon.cli("ticket", "list", "--json").stdout)
    assert sorted(t["subject"] for t in tickets) == sorted(s for s in subjects if s != "Shunt me")
    acks = [m for m in json.loads(daemon.cli("outbox", "list", "--json").stdout) if m["kind"] == "customer.ack"]
    assert len(acks) == len(subjects) - 1


async def _drain_with_a_failure(config_path: Path, subjects: list[str]) -> None:
    """Spool one mail per subject, then drain the spool as the daemon does, through a pipeline with a step
    that raises for the subject "Shunt me" after its ticket was made."""

    class ExplodesOnce(_Explodes):
        async def process(self, ctx: Context, tx: Tx) -> Outcome:
            assert ctx.mail is not None
            return await super().process(ctx, tx) if ctx.mail.subject == "Shunt me" else CONTINUE

    config = load_config(config_path)
    store = await Store.open(config.db_path)
    try:
        for n, subject in enumerate(subjects):  # each from its own customer: no acknowledgement limit
            await Spooler(store).put(_envelope(), make_mail(subject=subject, sender=f"{n}{CUSTOMER}"))
        handlers = build_handlers(build_services(config, store.clock))
        broken = Pipeline(store, [*handlers[:7], ExplodesOnce(), *handlers[7:]])
        batches: list[list[int]] = []
        process_batch = broken.process_batch

        async def recorded(inbound_ids: list[int]) -> list[Result | None]:
            batches.append(list(inbound_ids))
            return await process_batch(inbound_ids)

        broken.process_batch = recorded  # type: ignore[method-assign, assignment]
        assert await Runner(store, broken, asyncio.Event(), ()).drain() == len(subjects)
        assert [len(batch) for batch in batches] == [BATCH, BATCH, len(subjects) - 2 * BATCH]
    finally:
        await store.close()


def test_shunt_and_outbox_lists_say_when_they_are_cut(daemon: Daemon, smarthost: Smarthost) -> None:
    """`shunt list` and `outbox list` show the oldest rows up to `--limit`, say on stderr that there were
    more, and list all with `--limit 0`."""
    daemon.send(make_mail())
    smarthost.wait_for(CUSTOMER)
    daemon.wait_processed()
    daemon.stop()
    asyncio.run(_shunt(daemon.config_path, ["First", "Second"]))
    for command in (["shunt", "list"], ["outbox", "list"]):
        every = daemon.cli(*command, "--json", "--limit", "0")
        rows = json.loads(every.stdout)
        assert len(rows) >= 2 and every.stderr == ""
        cut = daemon.cli(*command, "--json", "--limit", "1")
        assert json.loads(cut.stdout) == rows[:1]
        assert cut.stderr.strip() == "maild: only the oldest 1 shown; --limit 0 lists them all"
        assert daemon.cli(*command, "--json", "--limit", str(len(rows))).stderr == ""


async def _shunt(config_path: Path, subjects: list[str]) -> None:
    """Spool one mail per subject and process each through a pipeline whose sixth step raises."""
    config = load_config(config_path)
    store = await Store.open(config.db_path)
    try:
        handlers = build_handlers(build_services(config, store.clock))
        broken = Pipeline(store, [*handlers[:5], _Explodes(), *handlers[5:]])  # after a ticket was made
        for subject in subjects:
            spooled = await Spooler(store).put(_envelope(), make_mail(subject=subject))
            assert spooled.inbound_id is not None
            result = await broken.process(spooled.inbound_id)
            assert result is not None and result.state == "shunted"
    finally:
        await store.close()


def _envelope():  # type: ignore[no-untyped-def]
    from maild.models import Envelope

    return Envelope(source="test", mail_from=CUSTOMER, rcpt_to=(SUPPORT,))


def test_ticket_show_json_has_the_contract_shape(daemon: Daemon, smarthost: Smarthost) -> None:
    """`ticket show --json` prints every key CONTRACT §2 lists, with the documented types."""
    daemon.send(make_mail(attachments=[("a.pdf", "application/pdf", b"%PDF-1.4")]))
    smarthost.wait_for(CUSTOMER)
    detail = daemon.ticket(int(daemon.tickets()[0]["id"]))
    assert set(detail) >= CONTRACT_TICKET_KEYS
    assert set(detail["clock"]) == {"agent_seconds", "customer_seconds"}
    assert detail["clock"]["customer_seconds"] == 0 and detail["clock"]["agent_seconds"] >= 0
    assert detail["resolution"] is None and detail["sla_breached"] is False
    [message] = detail["messages"]
    assert {"direction", "visibility", "from", "message_id", "text", "attachments"} <= set(message)
    assert set(message["attachments"][0]) >= {"filename", "size", "sha256"}
    assert {"at", "actor", "field", "old", "new"} <= set(detail["history"][0])
    listed = daemon.tickets()[0]
    assert {"id", "token", "subject", "status", "requester", "assignee", "queue"} <= set(listed)
    human = daemon.cli("ticket", "show", str(detail["id"])).stdout
    assert detail["token"] in human and "a.pdf" in human
    assert "[ACME#" in daemon.cli("ticket", "list").stdout
    for copied in (detail["token"], f"ACME#{detail['id']}", f"#{detail['id']}"):  # as people paste it
        assert json.loads(daemon.cli("ticket", "show", copied, "--json").stdout)["id"] == detail["id"]
    missing = daemon.cli("ticket", "show", "4242", check=False)
    assert missing.returncode == 1 and missing.stderr.strip() == "maild: no ticket 4242"


def test_ticket_list_filters_by_status_and_queue(daemon: Daemon, smarthost: Smarthost) -> None:
    """`ticket list --status/--queue` narrow the list; an unknown status is a one-line error."""
    daemon.send(make_mail(subject="one"))
    daemon.send(make_mail(subject="two", to=[BILLING]), rcpt=[BILLING])
    daemon.wait_processed()
    assert [t["subject"] for t in daemon.tickets(queue="billing")] == ["two"]
    assert len(daemon.tickets(status="new")) == 2
    assert daemon.tickets(status="open") == []
    bad = daemon.cli("ticket", "list", "--status", "bogus", check=False)
    assert bad.returncode == 1 and "unknown status" in bad.stderr


def test_ticket_list_finds_an_agents_tickets_and_says_when_it_cuts_the_list(
    daemon: Daemon, smarthost: Smarthost
) -> None:
    """`--assignee` (address, name or none), `--requester`, repeated `--status`; `--limit` cuts the newest
    first and says so on stderr, leaving stdout valid JSON."""
    other = "other@example.org"
    daemon.send(make_mail(subject="mine", sender=f"Carla <{CUSTOMER}>"))
    daemon.send(make_mail(subject="theirs", sender=f"Otto <{other}>"), mail_from=other)
    daemon.wait_processed()
    mine = next(t for t in daemon.tickets() if t["subject"] == "mine")
    daemon.send(make_mail(sender=f"Ana <{ANA}>", subject=f"Re: {mine['token']} mine", body="On it."), mail_from=ANA)
    daemon.wait_ticket(lambda ts: any(t["assignee"] == ANA for t in ts), "Ana's ticket")

    def subjects(*args: str) -> list[str]:
        return [t["subject"] for t in json.loads(daemon.cli("ticket", "list", "--json", *args).stdout)]

    assert subjects("--assignee", ANA.upper()) == subjects("--assignee", "ana") == ["mine"]
    assert subjects("--assignee", "none") == ["theirs"]
    assert subjects("--requester", other) == ["theirs"]
    assert subjects("--status", "new", "--status", "open") == ["theirs", "mine"]
    assert subjects("--status", "open", "--requester", other) == []
    cut = daemon.cli("ticket", "list", "--json", "--limit", "1")
    assert [t["subject"] for t in json.loads(cut.stdout)] == ["theirs"]
    assert cut.stderr.strip() == "maild: only the newest 1 shown; --limit 0 lists them all"
    whole = daemon.cli("ticket", "list", "--json", "--limit", "0")
    assert len(json.loads(whole.stdout)) == 2 and whole.stderr == ""
    unknown = daemon.cli("ticket", "list", "--assignee", "Zoe", check=False)
    assert unknown.returncode == 1
    assert (
        unknown.stderr.strip()
        == "maild: --assignee: no single agent named 'Zoe' (agents: Ana, Luis; or an address, or none)"
    )


@pytest.mark.parametrize("language,ack_words", [("es", "Hemos recibido"), ("en", "We have received")])
def test_notifications_use_the_configured_language(
    start_daemon: Callable[..., Daemon], smarthost: Smarthost, language: str, ack_words: str
) -> None:
    """`language` picks the templates: Spanish or English acknowledgements (when the customer's mail does not
    tell its own language) and notices (always: it is the agents' language)."""
    daemon = start_daemon(language=language)
    daemon.send(make_mail(subject="HP LaserJet M404dn", body="E-1204 / 50.4"))
    [ack] = smarthost.wait_for(CUSTOMER)
    assert ack_words in ack["Subject"]
    [notice] = smarthost.wait_for(ANA)
    assert ("Nuevo ticket" if language == "es" else "New ticket") in notice["Subject"]
    # A customer writing in English on a Spanish desk gets English, the agents still Spanish.
    daemon.send(
        make_mail(sender="other@example.org", body="Hello, my printer is on fire."), mail_from="other@example.org"
    )
    [other] = smarthost.wait_for("other@example.org")
    assert "We have received" in other["Subject"]
    new_ticket = "Nuevo ticket" if language == "es" else "New ticket"
    wait_until(lambda: len(smarthost.matching(ANA, new_ticket)) == 2, 10, "the second notice")


def test_starttls_is_offered_and_works(
    start_daemon: Callable[..., Daemon], smarthost: Smarthost, tmp_path: Path
) -> None:
    """With tls_cert/tls_key the listener offers STARTTLS; mail sent over it (the certificate verified)
    becomes a ticket."""
    ca = private_ca(tmp_path / "ca")
    daemon = start_daemon(extra="")
    daemon.stop()
    text = daemon.config_path.read_text().replace(
        "[intake.smtp]\n", f'[intake.smtp]\ntls_cert = "{ca.cert}"\ntls_key = "{ca.key}"\n'
    )
    daemon.config_path.write_text(text)
    daemon.start()
    context = ssl.create_default_context(cafile=ca.ca)
    with smtplib.SMTP("127.0.0.1", daemon.port, timeout=10) as client:
        client.ehlo()
        assert client.has_extn("starttls")
        client.starttls(context=context)
        client.sendmail(CUSTOMER, [SUPPORT], make_mail(subject="Over TLS"))
    smarthost.wait_for(CUSTOMER)
    assert [t["subject"] for t in daemon.tickets()] == ["Over TLS"]


def test_connections_over_the_limit_get_421(start_daemon: Callable[..., Daemon]) -> None:
    """Past max_connections a new session is told 421 (try later) while the open ones keep working."""
    daemon = start_daemon()
    daemon.stop()
    daemon.config_path.write_text(
        daemon.config_path.read_text().replace("[intake.smtp]\n", "[intake.smtp]\nmax_connections = 2\n")
    )
    daemon.start()
    first, second = (
        smtplib.SMTP("127.0.0.1", daemon.port, timeout=10),
        smtplib.SMTP("127.0.0.1", daemon.port, timeout=10),
    )
    try:
        with pytest.raises(smtplib.SMTPConnectError) as refused:
            smtplib.SMTP("127.0.0.1", daemon.port, timeout=10)
        assert refused.value.smtp_code == 421
        assert first.noop()[0] == 250 and second.noop()[0] == 250
    finally:
        first.quit()
        second.quit()


def test_unreadable_tls_certificate_is_a_one_line_error(start_daemon: Callable[..., Daemon], tmp_path: Path) -> None:
    """A missing certificate stops `maild serve` with one line naming the key, not a traceback."""
    daemon = start_daemon()
    daemon.stop()
    daemon.config_path.write_text(
        daemon.config_path.read_text().replace(
            "[intake.smtp]\n", f'[intake.smtp]\ntls_cert = "{tmp_path}/nope.pem"\ntls_key = "{tmp_path}/nope.key"\n'
        )
    )
    result = daemon.cli("serve", check=False)
    assert result.returncode == 1
    assert "intake.smtp.tls_cert" in result.stderr and "Traceback" not in result.stderr + result.stdout


def test_inject_whose_output_nobody_reads_still_succeeds(tmp_path: Path, smarthost: Smarthost) -> None:
    """Postfix's pipe(8) reads 4 KiB of a command's output and then closes the pipe: the logs and the result
    line `maild inject` writes after that must not turn a mail it kept and processed into exit 1 (a bounce
    to the customer of a mail that did open a ticket). Here no byte of the output is read at all."""
    import subprocess
    import sys

    daemon = Daemon(tmp_path, smarthost.port)  # log_level = "debug": a line per step, over 4 KiB
    read_end, write_end = os.pipe()
    os.close(read_end)  # every write gets EPIPE
    try:
        result = subprocess.run(
            [sys.executable, "-m", "maild", "inject", "--config", str(daemon.config_path)],
            input=make_mail(subject="Nobody reads my output"),
            stdout=write_end,
            stderr=write_end,
            timeout=60,
            cwd=tmp_path,
        )
    finally:
        os.close(write_end)
    assert result.returncode == 0
    assert [t["subject"] for t in daemon.tickets()] == ["Nobody reads my output"]


def test_inject_tempfails_on_a_broken_config(tmp_path: Path, smarthost: Smarthost) -> None:
    """A config error makes `maild inject` exit 75, so an MTA pipe defers the mail instead of bouncing it."""
    daemon = Daemon(tmp_path, smarthost.port)
    daemon.config_path.write_text(daemon.config_path.read_text() + "\n[bogus]\n")
    result = daemon.cli("inject", stdin=make_mail(), check=False)
    assert result.returncode == 75
    assert result.stderr.strip() == "maild: config: bogus: unknown key"


def test_mail_that_cannot_be_decoded_is_shunted_at_parse_and_kept(daemon: Daemon, smarthost: Smarthost) -> None:
    """A mail refused by the decoder (here 600 MIME parts) gets its 250, is kept whole and shunted with the
    step "parse" and the reason; it opens no ticket and sends nothing."""
    parts = "".join(f"--B\r\nContent-Type: text/plain\r\n\r\npart {n}\r\n" for n in range(600))
    raw = (
        f"From: {CUSTOMER}\r\nTo: {SUPPORT}\r\nSubject: Many parts\r\nMessage-ID: <parts@customer.example>\r\n"
        f'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="B"\r\n\r\n{parts}--B--\r\n'
    ).encode()
    assert daemon.send(raw) == {}
    wait_until(lambda: daemon.spool_states() == {"shunted": 1}, 10, "the shunt")
    [shunted] = json.loads(daemon.cli("shunt", "list", "--json").stdout)
    assert shunted["step"] == "parse"
    assert "more than 500 MIME parts" in shunted["error"]
    assert daemon.tickets() == []
    daemon.stop()
    assert smarthost.mails == []
    db = sqlite3.connect(daemon.workdir / "data" / "maild.sqlite3")
    [(kept,)] = db.execute("SELECT raw FROM inbound").fetchall()
    db.close()
    assert kept.count(b"\r\n--B\r\n") == 600 and kept.endswith(b"--B--\r\n")


def test_a_line_longer_than_rfc_5321_allows_is_kept(daemon: Daemon, smarthost: Smarthost) -> None:
    """A broken client's 300 KB line (a pasted blob, HTML with no line breaks) gets its 250 and a ticket:
    only the size limit refuses mail, and the raw message is kept byte for byte."""
    blob = "x" * 300_000
    raw = make_mail(subject="One very long line", body=f"See the log:\n{blob}\nThanks")
    raw = raw.replace(b"=\r\n", b"")  # undo the quoted-printable folding: one line of 300,000 octets
    assert blob.encode() in raw
    assert daemon.send(raw) == {}
    [ticket] = daemon.wait_ticket(lambda tickets: tickets, "the ticket")
    assert ticket["subject"] == "One very long line"
    smarthost.wait_for(CUSTOMER)
    [notice] = smarthost.wait_for(ANA)  # the agents' notice carries the text, in lines SMTP allows
    assert blob in notice.body.replace("\n", "")
    db = sqlite3.connect(daemon.workdir / "data" / "maild.sqlite3")
    [(kept,)] = db.execute("SELECT raw FROM inbound").fetchall()
    db.close()
    assert kept == raw


def test_stopping_tells_open_sessions_421(daemon: Daemon) -> None:
    """SIGTERM ends an idle session with 421 (RFC 5321 3.8) so its client retries later, not with a
    connection dropped mid-conversation."""
    with socket.create_connection(("127.0.0.1", daemon.port), timeout=10) as sock:
        reader = sock.makefile("rb")
        assert reader.readline().startswith(b"220 ")
        sock.sendall(b"HELO client.example.org\r\n")
        assert reader.readline().startswith(b"250 ")
        assert daemon.stop() == 0
        assert reader.readline().startswith(b"421 4.3.2 ")
        assert reader.readline() == b""  # and the connection is closed
