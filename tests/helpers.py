"""Test plumbing: a capturing smarthost, a maild daemon in a subprocess, and mail builders."""

from __future__ import annotations

import email
import email.policy
import json
import os
import shutil
import signal
import smtplib
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

REPO = Path(__file__).resolve().parents[1]
CORPORA = REPO.parent / "shared" / "corpora"
SUPPORT = "support@example.com"
BILLING = "billing@example.com"
ANA = "ana@example.com"
LUIS = "luis@example.com"
CUSTOMER = "customer@example.org"


def wait_until(predicate: Callable[[], Any], timeout: float = 10.0, what: str = "condition") -> Any:
    """Poll ``predicate`` until it returns something truthy; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)


@dataclass(frozen=True)
class PrivateCa:
    """PEM files: a throwaway certificate authority, and a server certificate it signed for 127.0.0.1."""

    ca: Path
    cert: Path
    key: Path


def private_ca(folder: Path) -> PrivateCa:
    """Make a CA and a certificate for 127.0.0.1 and localhost with the openssl CLI (Dovecot's packages bring
    it; a test without it is skipped), as a company's own CA would sign its mail servers' certificates."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl not installed: needed to make a throwaway CA")
    folder.mkdir(parents=True, exist_ok=True)
    found = PrivateCa(folder / "ca.pem", folder / "server.pem", folder / "server.key")
    (folder / "san.ext").write_text("subjectAltName = IP:127.0.0.1, DNS:localhost\n")
    key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    authority = ["req", "-x509", *key, "-days", "2", "-subj", "/CN=Test CA", "-keyout", "ca.key", "-out", "ca.pem"]
    request = ["req", *key, "-subj", "/CN=127.0.0.1", "-keyout", "server.key", "-out", "server.csr"]
    sign = ["x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-days", "2"]
    for command in (authority, request, [*sign, "-extfile", "san.ext", "-out", "server.pem"]):
        subprocess.run(["openssl", *command], cwd=folder, check=True, capture_output=True, timeout=60)
    return found


def make_mail(
    *,
    sender: str = CUSTOMER,
    to: Iterable[str] = (SUPPORT,),
    subject: str = "Printer on fire",
    body: str = "Hello, my printer is on fire.",
    cc: Iterable[str] = (),
    message_id: str | None = None,
    in_reply_to: str | None = None,
    references: Iterable[str] = (),
    headers: dict[str, str] | None = None,
    attachments: Iterable[tuple[str, str, bytes]] = (),
    html: str | None = None,
) -> bytes:
    """A well-formed mail as CRLF bytes (what a real client sends)."""
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = ", ".join(to)
    if cc:
        msg["Cc"] = ", ".join(cc)
    msg["Subject"] = subject
    msg["Message-ID"] = message_id or make_msgid(domain="client.example.org")
    msg["Date"] = email.utils.formatdate()
    if in_reply_to:
        msg["In-Reply-To"] = in_reply_to
    if references:
        msg["References"] = " ".join(references)
    for name, value in (headers or {}).items():
        msg[name] = value
    if html is not None and not body:
        msg.set_content(html, subtype="html")
    else:
        msg.set_content(body)
        if html is not None:
            msg.add_alternative(html, subtype="html")
    for filename, content_type, data in attachments:
        maintype, subtype = content_type.split("/")
        msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)
    return msg.as_bytes(policy=email.policy.SMTP)


def message_id_of(raw: bytes) -> str:
    return str(email.message_from_bytes(raw)["Message-ID"]).strip()


@dataclass
class Captured:
    """One mail the smarthost received."""

    mail_from: str
    rcpt_to: list[str]
    raw: bytes
    peer: object = None  # the client's (host, port): one per SMTP session
    login: str | None = None  # the user the session logged in as (AUTH), if it did
    message: EmailMessage = field(init=False)

    def __post_init__(self) -> None:
        self.message = email.message_from_bytes(self.raw, policy=email.policy.default)  # type: ignore[assignment]

    def __getitem__(self, header: str) -> str:
        value = self.message[header]
        return "" if value is None else str(value)

    @property
    def body(self) -> str:
        part = self.message.get_body(preferencelist=("plain",))
        return "" if part is None else str(part.get_content())  # type: ignore[attr-defined]

    @property
    def attachment_names(self) -> list[str]:
        return [str(p.get_filename()) for p in self.message.iter_attachments()]


class Smarthost:
    """An aiosmtpd server standing in for the MTA that relays maild's outbound mail.

    ``refuse`` maps a recipient to an SMTP reply ("450 ..." or "550 ..."); ``down`` refuses connections;
    ``smtputf8`` (aiosmtpd's default, as Postfix's) offers SMTPUTF8 from the next `start`. From the next
    `start` too: ``tls`` "starttls" (required before MAIL) or "implicit", with ``certificate`` (PEM cert and
    key); ``logins`` (user: password), when set, requires AUTH with one of them.
    """

    def __init__(self) -> None:
        self.mails: list[Captured] = []
        self.refuse: dict[str, str] = {}
        self._lock = threading.Lock()
        self.port = _free_port()
        self.controller: Controller | None = None
        self.smtputf8 = True
        self.tls = "none"
        self.certificate: tuple[Path, Path] | None = None
        self.logins: dict[str, str] = {}

    def start(self) -> None:
        """Listen (again, after `stop`) on the same port, as a restarted MTA would."""
        options: dict[str, Any] = {}
        if self.tls != "none":
            assert self.certificate is not None, "TLS needs a certificate"
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(*self.certificate)
            tls = {"ssl_context": context} if self.tls == "implicit" else {"tls_context": context}
            options.update(tls, require_starttls=self.tls == "starttls")
        if self.logins:
            # aiosmtpd counts only STARTTLS as TLS: on an implicit TLS port, AUTH is offered all the same
            implicit = self.tls == "implicit"
            options.update(authenticator=self._authenticate, auth_required=True, auth_require_tls=not implicit)
        self.controller = Controller(
            self, hostname="127.0.0.1", port=self.port, enable_SMTPUTF8=self.smtputf8, **options
        )
        self.controller.start()

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        ok = isinstance(auth_data, LoginPassword) and self.logins.get(auth_data.login.decode()) == (
            auth_data.password.decode()
        )
        return AuthResult(success=ok, handled=False, auth_data=auth_data.login.decode() if ok else None)

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        with self._lock:
            self.mails.append(
                Captured(
                    str(envelope.mail_from),
                    list(envelope.rcpt_tos),
                    bytes(envelope.original_content or b""),
                    session.peer,
                    session.auth_data,
                )
            )
        return "250 OK"

    def to(self, address: str) -> list[Captured]:
        with self._lock:
            return [m for m in self.mails if address in m.rcpt_to]

    def matching(self, address: str, words: str) -> list[Captured]:
        """Mails to ``address`` whose subject or body contains ``words``."""
        return [m for m in self.to(address) if words in m["Subject"] or words in m.body]

    def wait_for(self, address: str, count: int = 1, timeout: float = 10.0) -> list[Captured]:
        """Wait until ``address`` has received ``count`` mails; return them all."""
        return list(
            wait_until(
                lambda: len(self.to(address)) >= count and self.to(address), timeout, f"{count} mail(s) to {address}"
            )
        )


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


#: The agents and the queue of every test daemon (and of benchmarks/ingest.py's).
STAFF_CONFIG = """[[agents]]
email = "ana@example.com"
name = "Ana"
role = "admin"

[[agents]]
email = "luis@example.com"
name = "Luis"
role = "agent"

[[queues]]
name = "billing"
address = "billing@example.com"
agents = ["luis@example.com"]
"""

BASE_CONFIG = (
    """
[maild]
data_dir = "data"
language = "{language}"
log_level = "debug"

[mail]
support_address = "support@example.com"
from_name = "ACME Support"
ticket_prefix = "ACME"

[intake.smtp]
host = "127.0.0.1"
port = {port}
max_message_bytes = {max_bytes}
lmtp = {lmtp}

[outbound]
transport = "smtp"
host = "127.0.0.1"
port = {smarthost_port}
retry_base = "1s"
retry_max = "2s"

"""
    + STAFF_CONFIG
)


class Daemon:
    """`maild serve` in a subprocess, talked to over SMTP and through the CLI, as a sysadmin would."""

    def __init__(
        self,
        workdir: Path,
        smarthost_port: int,
        language: str = "en",
        max_bytes: int = 1_000_000,
        extra: str = "",
        lmtp: bool = False,
    ) -> None:
        self.workdir = workdir
        self.port = _free_port()
        self.lmtp = lmtp
        self.config_path = workdir / "maild.toml"
        self.config_path.write_text(
            BASE_CONFIG.format(
                language=language,
                port=self.port,
                max_bytes=max_bytes,
                smarthost_port=smarthost_port,
                lmtp=str(lmtp).lower(),
            )
            + extra
        )
        self.log_path = workdir / "maild.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.env: dict[str, str] = {}  # extra environment for `serve` (NOTIFY_SOCKET, WATCHDOG_USEC...)

    def start(self) -> None:
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "maild", "serve", "--config", str(self.config_path)],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=self.workdir,
            env={**os.environ, **self.env},
        )
        log.close()
        wait_until(lambda: self._listening() or self._died(), 15, "maild to listen")
        if self._died():
            raise AssertionError(f"maild died at start:\n{self.log_path.read_text()}")

    def _listening(self) -> bool:
        try:
            client_class = smtplib.LMTP if self.lmtp else smtplib.SMTP
            with client_class("127.0.0.1", self.port, timeout=2) as client:
                return client.noop()[0] == 250
        except OSError:
            return False

    def _died(self) -> bool:
        return self.process is not None and self.process.poll() is not None

    def stop(self, sig: int = signal.SIGTERM) -> int:
        """Stop the daemon with ``sig``; its exit code."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(sig)
        code = self.process.wait(timeout=30)
        self.process = None
        return code

    def restart(self) -> None:
        assert self.stop() == 0
        self.start()

    def send(self, raw: bytes, rcpt: Iterable[str] = (SUPPORT,), mail_from: str = CUSTOMER) -> dict[str, Any]:
        client_class = smtplib.LMTP if self.lmtp else smtplib.SMTP
        with client_class("127.0.0.1", self.port, timeout=10) as client:
            return client.sendmail(mail_from, list(rcpt), raw)  # type: ignore[return-value]

    def cli(self, *args: str, stdin: bytes | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [sys.executable, "-m", "maild", *args, "--config", str(self.config_path)],
            input=stdin.decode("utf-8", "surrogateescape") if stdin is not None else None,
            capture_output=True,
            text=True,
            timeout=60,
            cwd=self.workdir,
            env={**os.environ, "PYTHONWARNINGS": "error"},
        )
        if check and result.returncode != 0:
            raise AssertionError(f"maild {' '.join(args)} exited {result.returncode}: {result.stderr}")
        return result

    def tickets(self, **filters: str) -> list[dict[str, Any]]:
        args = [f"--{k}={v}" for k, v in filters.items()]
        return list(json.loads(self.cli("ticket", "list", "--json", *args).stdout))

    def ticket(self, ticket_id: int) -> dict[str, Any]:
        return dict(json.loads(self.cli("ticket", "show", str(ticket_id), "--json").stdout))

    def wait_ticket(self, predicate: Callable[[list[dict[str, Any]]], Any], what: str = "tickets") -> Any:
        return wait_until(lambda: predicate(self.tickets()), 15, what)

    def wait_processed(self) -> None:
        """Wait until the spool holds nothing pending (every received mail went through the pipeline)."""
        wait_until(lambda: "pending" not in self.spool_states(), 15, "the spool to drain")

    def spool_states(self) -> dict[str, int]:
        import sqlite3

        db = sqlite3.connect(self.workdir / "data" / "maild.sqlite3", timeout=10)
        try:
            return dict(db.execute("SELECT state, count(*) FROM inbound GROUP BY state").fetchall())
        finally:
            db.close()

    def log_events(self) -> list[dict[str, Any]]:
        events = []
        for line in self.log_path.read_text(errors="replace").splitlines():
            if line.startswith("{"):
                events.append(json.loads(line))
        return events
