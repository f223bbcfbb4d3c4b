"""End to end: maild reaching its smarthost and its IMAP mailbox over TLS, with a private CA and a login.

The servers are real (aiosmtpd with STARTTLS or implicit TLS and AUTH; a throwaway Dovecot with TLS), their
certificates signed by a CA the test makes, which no system trusts: `ca_file` is what makes maild trust it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.dovecot import Dovecot, start_dovecot  # noqa: F401  (fixtures)
from tests.helpers import CUSTOMER, Daemon, PrivateCa, Smarthost, make_mail, private_ca, wait_until

# aiosmtpd counts only STARTTLS as TLS, and warns when AUTH is offered on its implicit TLS port as in clear.
pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")


@pytest.fixture
def ca(tmp_path: Path) -> PrivateCa:
    return private_ca(tmp_path / "ca")


def outbound_settings(daemon: Daemon, settings: str) -> None:
    """Put ``settings`` (TOML lines) into the stopped daemon's [outbound] table."""
    text = daemon.config_path.read_text().replace("[outbound]\n", f"[outbound]\n{settings}\n")
    daemon.config_path.write_text(text)


def login(ca: PrivateCa, tls: str, password: Path) -> str:
    """[outbound] lines for a smarthost behind ``ca`` that requires a login as "maild"."""
    return f'tls = "{tls}"\nca_file = "{ca.ca}"\nusername = "maild"\npassword_file = "{password}"'


def secret(tmp_path: Path, password: str) -> Path:
    path = tmp_path / "smarthost-password"
    path.write_text(password + "\n")
    path.chmod(0o600)
    return path


def outbox(daemon: Daemon) -> list[dict[str, object]]:
    return list(json.loads(daemon.cli("outbox", "list", "--json").stdout))


@pytest.mark.parametrize("tls", ["starttls", "implicit"])
def test_smarthost_behind_a_private_ca_with_a_login(
    start_daemon: Callable[..., Daemon], smarthost: Smarthost, ca: PrivateCa, tmp_path: Path, tls: str
) -> None:
    """A smarthost whose certificate a private CA signed, which requires AUTH: with ca_file, username and
    password_file, the acknowledgement is delivered over TLS, logged in."""
    smarthost.stop()
    smarthost.tls, smarthost.certificate, smarthost.logins = tls, (ca.cert, ca.key), {"maild": "s3cret pass"}
    smarthost.start()
    daemon = start_daemon()
    daemon.stop()
    password = secret(tmp_path, "s3cret pass")
    outbound_settings(daemon, login(ca, tls, password))
    daemon.start()
    daemon.send(make_mail(subject="Over TLS to the smarthost"))
    (ack,) = smarthost.wait_for(CUSTOMER)
    assert ack.login == "maild"
    assert "Over TLS to the smarthost" in ack["Subject"]


def test_a_refused_login_waits_for_the_password_to_be_fixed(
    start_daemon: Callable[..., Daemon], smarthost: Smarthost, ca: PrivateCa, tmp_path: Path
) -> None:
    """A wrong smarthost password fails no mail for good: mail waits in the outbox with the reason, the log
    says the login was refused, and once the password file is right the next retry delivers (no restart)."""
    smarthost.stop()
    smarthost.tls, smarthost.certificate, smarthost.logins = "starttls", (ca.cert, ca.key), {"maild": "right"}
    smarthost.start()
    daemon = start_daemon()
    daemon.stop()
    password = secret(tmp_path, "wrong")
    outbound_settings(daemon, login(ca, "starttls", password))
    daemon.start()
    daemon.send(make_mail())
    daemon.wait_processed()
    waiting = wait_until(lambda: [m for m in outbox(daemon) if m["attempts"]], 10, "a delivery attempt")
    assert all(m["state"] == "queued" and "login refused: 535" in str(m["last_error"]) for m in waiting)
    assert any(e["event"] == "smarthost_login_refused" for e in daemon.log_events())
    assert smarthost.mails == []
    password.write_text("right\n")
    (ack,) = smarthost.wait_for(CUSTOMER, timeout=15)
    assert ack.login == "maild"


def test_a_certificate_no_one_vouches_for_gets_nothing(
    start_daemon: Callable[..., Daemon], smarthost: Smarthost, ca: PrivateCa
) -> None:
    """Without ca_file the private CA is not trusted: nothing is sent (not even in clear), and the mail
    waits in the outbox with the verification error for a fixed configuration."""
    smarthost.stop()
    smarthost.tls, smarthost.certificate = "starttls", (ca.cert, ca.key)
    smarthost.start()
    daemon = start_daemon()
    daemon.stop()
    outbound_settings(daemon, 'tls = "starttls"')
    daemon.start()
    daemon.send(make_mail())
    daemon.wait_processed()
    waiting = wait_until(lambda: [m for m in outbox(daemon) if m["attempts"]], 10, "a delivery attempt")
    assert all(m["state"] == "queued" and "CERTIFICATE_VERIFY_FAILED" in str(m["last_error"]) for m in waiting)
    assert smarthost.mails == []


@pytest.mark.parametrize("tls", ["implicit", "starttls"])
def test_imap_mailbox_behind_a_private_ca(
    start_daemon: Callable[..., Daemon],
    smarthost: Smarthost,
    start_dovecot: Callable[..., Dovecot],  # noqa: F811
    ca: PrivateCa,
    tls: str,
) -> None:
    """A Dovecot whose certificate a private CA signed: with ca_file, maild logs in over TLS and takes the mail."""
    dovecot = start_dovecot(certificate=(ca.cert, ca.key))
    dovecot.append(make_mail(subject="Polled over TLS"))
    port = dovecot.imaps_port if tls == "implicit" else dovecot.port
    daemon = start_daemon(extra=imap_settings(dovecot, port, f'tls = "{tls}"\nca_file = "{ca.ca}"'))
    wait_until(lambda: daemon.tickets(), 15, "the ticket")
    assert [t["subject"] for t in daemon.tickets()] == ["Polled over TLS"]
    smarthost.wait_for(CUSTOMER)


def test_imap_without_the_ca_never_logs_in(
    start_daemon: Callable[..., Daemon],
    start_dovecot: Callable[..., Dovecot],  # noqa: F811
    ca: PrivateCa,
) -> None:
    """Without ca_file, maild will not log in to a server it cannot verify: it reports the outage (once) with
    the verification error, and takes nothing."""
    dovecot = start_dovecot(certificate=(ca.cert, ca.key))
    dovecot.append(make_mail(subject="Not over an unverified TLS"))
    daemon = start_daemon(extra=imap_settings(dovecot, dovecot.imaps_port, 'tls = "implicit"'))
    outage = wait_until(
        lambda: [e for e in daemon.log_events() if e["event"] == "imap_unavailable"], 15, "the outage report"
    )
    assert "CERTIFICATE_VERIFY_FAILED" in outage[0]["error"]
    assert daemon.tickets() == [] and dovecot.count("INBOX") == 1
    assert "TLS handshaking: Connection closed" in dovecot.log()  # maild hung up before any login


def imap_settings(server: Dovecot, port: int, tls: str) -> str:
    return f"""
[intake.imap]
enabled = true
host = "127.0.0.1"
port = {port}
{tls}
username = "{server.user}"
password_file = "{server.password_file()}"
idle = true
"""
