"""End to end: the operations commands against a running daemon."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from tests.helpers import ANA, CUSTOMER, Daemon, Smarthost, make_mail, wait_until


def test_status_reports_backlogs(daemon: Daemon, smarthost: Smarthost) -> None:
    """`maild status` shows the spool, outbox, shunted, last intake, timers and tickets."""
    smarthost.refuse[CUSTOMER] = "450 4.2.0 try later"
    daemon.send(make_mail())
    smarthost.wait_for(ANA)
    report = json.loads(daemon.cli("status", "--json").stdout)
    assert report["spool_pending"] == 0 and report["shunted"] == 0
    assert report["last_received_at"] is not None
    assert report["tickets"] == {"new": 1}
    assert report["digest_sent_on"] is None
    wait_until(lambda: json.loads(daemon.cli("status", "--json").stdout)["outbox_queued"] == 1, 10, "a queued ack")
    human = daemon.cli("status").stdout
    assert "1 queued (oldest" in human and "1 new" in human


def test_outbox_retry_and_drop(start_daemon: Callable[..., Daemon], smarthost: Smarthost) -> None:
    """A mail failed for good can be retried after the cause is fixed, or dropped."""
    smarthost.refuse[CUSTOMER] = "550 5.1.1 no such user"
    daemon = start_daemon()
    daemon.send(make_mail())
    daemon.send(make_mail(subject="Second"))

    def failures() -> list[dict[str, object]]:
        return [m for m in _outbox(daemon) if m["state"] == "failed"]

    failed = wait_until(lambda: len(failures()) == 2 and failures(), 10, "two failures")
    del smarthost.refuse[CUSTOMER]
    assert "queued" in daemon.cli("outbox", "retry", str(failed[0]["id"])).stdout
    smarthost.wait_for(CUSTOMER)
    assert "dropped" in daemon.cli("outbox", "drop", str(failed[1]["id"])).stdout
    states = {m["id"]: m["state"] for m in _outbox(daemon)}
    wait_until(lambda: {m["id"]: m["state"] for m in _outbox(daemon)}[failed[0]["id"]] == "sent", 10, "sent")
    assert states[failed[1]["id"]] == "dropped"
    missing = daemon.cli("outbox", "retry", "999", check=False)
    assert missing.returncode == 1 and "no queued or failed mail 999" in missing.stderr


def _outbox(daemon: Daemon) -> list[dict[str, object]]:
    return list(json.loads(daemon.cli("outbox", "list", "--json").stdout))


def test_backup_while_running_is_consistent(daemon: Daemon, smarthost: Smarthost, tmp_path: Path) -> None:
    """`maild backup` copies the live database; the copy opens and holds the tickets."""
    for n in range(5):
        daemon.send(make_mail(subject=f"Ticket {n}"))
    daemon.wait_processed()
    target = tmp_path / "backup.sqlite3"
    assert "backed up" in daemon.cli("backup", str(target)).stdout
    copy = sqlite3.connect(target)
    try:
        assert copy.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert copy.execute("SELECT count(*) FROM tickets").fetchone() == (5,)
    finally:
        copy.close()
    again = daemon.cli("backup", str(target), check=False)
    assert again.returncode == 1 and "exists" in again.stderr


def test_init_writes_a_valid_config_and_data_folder(tmp_path: Path) -> None:
    """`maild init` writes a commented config that check-config accepts, and the data folder."""
    config, data = tmp_path / "etc" / "maild.toml", tmp_path / "lib" / "maild"

    def maild(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "maild", *args], capture_output=True, text=True, timeout=60)

    created = maild("init", "--config", str(config), "--data-dir", str(data), "--support-address", "help@acme.test")
    assert created.returncode == 0, created.stderr
    assert data.is_dir() and 'support_address = "help@acme.test"' in config.read_text()
    assert f'directory = "{data.resolve() / "sent"}"' in config.read_text()  # the file transport's, in it too
    checked = maild("check-config", "--config", str(config))
    assert checked.returncode == 0 and ": ok (" in checked.stdout
    again = maild("init", "--config", str(config), "--data-dir", str(data))
    assert again.returncode == 1 and "exists" in again.stderr


def test_metrics_endpoint_serves_prometheus_text(start_daemon: Callable[..., Daemon], smarthost: Smarthost) -> None:
    """With [metrics] listen, GET /metrics returns counters, backlogs and the processing-time histogram."""
    import socket
    import urllib.request

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    daemon = start_daemon(extra=f'\n[metrics]\nlisten = "127.0.0.1:{port}"\n')
    daemon.send(make_mail())
    smarthost.wait_for(CUSTOMER)
    smarthost.wait_for(ANA)

    def scrape() -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            return str(response.read().decode())

    text = wait_until(lambda: "maild_mails_sent_total 3" in scrape() and scrape(), 10, "three mails counted")
    assert "maild_mails_received_total 1" in text
    assert "maild_processing_seconds_count 1" in text
    assert 'maild_processing_seconds_bucket{le="+Inf"} 1' in text
    assert "maild_outbox_backlog 0" in text and "maild_shunted 0" in text


def test_ticket_list_finds_tickets_by_their_words(daemon: Daemon, smarthost: Smarthost) -> None:
    """`maild ticket list --text` keeps the tickets with every word in the subject or in a message (an agent's
    reply or note included), without case; `%` and `_` are plain characters."""
    daemon.send(make_mail(subject="Printer on fire", body="Smoke everywhere."))
    daemon.send(make_mail(subject="Invoice wrong", body="The total is 100% off."))
    daemon.send(make_mail(subject="Fax broken", body="It beeps."))
    daemon.wait_processed()
    by_subject = {t["subject"]: t for t in daemon.tickets()}
    fax = by_subject["Fax broken"]
    daemon.send(
        make_mail(sender=ANA, subject=f"Re: {fax['token']} {fax['subject']}", body="#internal\nSent RMA_4711 out."),
        mail_from=ANA,
    )
    daemon.wait_processed()

    def found(text: str) -> list[str]:
        return [t["subject"] for t in daemon.tickets(text=text)]

    assert found("rma_4711") == ["Fax broken"]  # in an agent's note
    assert found("SMOKE printer") == ["Printer on fire"]  # a word of the subject and one of a message
    assert found("100%") == ["Invoice wrong"] and found("1_0") == [] and found("smoke fax") == []
    assert found("e") == ["Fax broken", "Invoice wrong", "Printer on fire"]  # newest first
