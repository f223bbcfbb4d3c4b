"""A throwaway Dovecot IMAP server for tests: its own config, ports and Maildir, never /etc/dovecot.

Dovecot runs as root (its master drops privileges itself); the mail user is uid/gid 65534, as the package's
``first_valid_uid = 500`` requires a uid of at least 500. Everything the server touches lives in a
``tempfile.mkdtemp()`` folder of mode 0755 (pytest's tmp_path may sit under a 0700 folder the ``dovecot`` and
``dovenull`` users cannot traverse); that folder is removed by `Dovecot.close`, after its log is copied to
``workdir``.
"""

from __future__ import annotations

import contextlib
import email
import imaplib
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import pytest

MAIL_UID = 65534  # "nobody": any uid >= 500 passes Dovecot's first_valid_uid

CONFIG = """\
# A throwaway Dovecot for maild's tests: nothing here reads or writes /etc/dovecot.
protocols = imap
listen = 127.0.0.1
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
{ssl}
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_verbose = yes
# a wrong password is refused at once (the default waits 2 s)
auth_failure_delay = 0
mail_location = maildir:{root}/mail/%u
mail_fsync = never
# "/" as the hierarchy separator (Maildir++ alone would use "."), so maild/processed is a valid name.
namespace inbox {{
  inbox = yes
  separator = /
  prefix =
}}
passdb {{
  driver = passwd-file
  args = {root}/users
}}
userdb {{
  driver = passwd-file
  args = {root}/users
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {imaps_port}
  }}
}}
"""


def dovecot_binary() -> str | None:
    """The path of the ``dovecot`` executable (also found in /usr/sbin when that is not on PATH)."""
    found = shutil.which("dovecot")
    if found is None and os.access("/usr/sbin/dovecot", os.X_OK):
        found = "/usr/sbin/dovecot"
    return found


def dovecot_available() -> str | None:
    """None if a throwaway Dovecot can run here, else the reason to skip the tests that need one."""
    if dovecot_binary() is None:
        return "dovecot not installed: run make test as root (it installs dovecot-imapd)"
    if Path("/usr/lib/dovecot").is_dir() and not Path("/usr/lib/dovecot/imap").exists():
        return "dovecot-imapd not installed: run make test as root"
    if os.geteuid() != 0:
        return "the test Dovecot must be started as root"
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _signal_group(group: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(group, sig)


def _quote(mailbox: str) -> str:
    """``mailbox`` as an IMAP quoted string (imaplib sends arguments as they are)."""
    return '"' + mailbox.replace("\\", "\\\\").replace('"', '\\"') + '"'


class Dovecot:
    """A real Dovecot IMAP server on a free loopback port, with one passwd-file user and a Maildir in a temp dir."""

    user: str = "support"
    password: str = "secret"
    host = "127.0.0.1"

    def __init__(self, workdir: Path, certificate: tuple[Path, Path] | None = None) -> None:
        """With ``certificate`` (PEM cert and key), STARTTLS is offered on ``port`` and implicit TLS served on
        ``imaps_port``; without, no TLS at all."""
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = _free_port()
        self.certificate = certificate
        self.imaps_port = _free_port() if certificate else 0
        self.root = Path(tempfile.mkdtemp(prefix="maild-dovecot-"))
        self.root.chmod(0o755)
        self.config_path = self.root / "dovecot.conf"
        self.log_path = self.root / "dovecot.log"
        self.maildir = self.root / "mail" / self.user
        self.process: subprocess.Popen[bytes] | None = None
        self._prepare()

    def _prepare(self) -> None:
        (self.root / "mail").mkdir(mode=0o755)
        self.maildir.mkdir(mode=0o700)
        os.chown(self.maildir, MAIL_UID, MAIL_UID)
        users = self.root / "users"
        users.write_text(f"{self.user}:{{PLAIN}}{self.password}:{MAIL_UID}:{MAIL_UID}::{self.maildir}::\n")
        users.chmod(0o644)
        ssl = "ssl = no"
        if self.certificate is not None:
            cert, key = self.certificate
            ssl = f"ssl = yes\nssl_cert = <{cert}\nssl_key = <{key}"
        self.config_path.write_text(CONFIG.format(root=self.root, port=self.port, ssl=ssl, imaps_port=self.imaps_port))

    # -- life cycle ---------------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the server (again, after `stop`, on the same port); return once it greets."""
        if self.process is not None:
            return
        binary = dovecot_binary()
        if binary is None:
            raise RuntimeError("dovecot is not installed")
        with (self.root / "stderr.log").open("ab") as out:
            self.process = subprocess.Popen(
                [binary, "-F", "-c", str(self.config_path)],
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: `stop` ends every process of this instance
            )
        deadline = time.monotonic() + 10
        while not self._greets():
            if self.process.poll() is not None or time.monotonic() > deadline:
                code = self.process.poll()
                self.stop()
                state = f"exited {code}" if code is not None else "did not greet within 10 s"
                raise RuntimeError(f"dovecot {state}:\n{self.log()}")
            time.sleep(0.02)

    def _greets(self) -> bool:
        try:
            with socket.create_connection((self.host, self.port), timeout=2) as sock:
                return sock.recv(100).startswith(b"* OK")
        except OSError:
            return False

    def stop(self) -> None:
        """SIGTERM to the master and its children, and wait; does nothing when stopped.

        The master alone would leave the imap processes serving their clients (shutdown_clients notwithstanding),
        so the whole process group is signalled: clients get ``* BYE Server shutting down.`` and a closed
        connection, as when a real server goes down.
        """
        if self.process is None:
            return
        group = self.process.pid  # start_new_session: the master leads its own process group
        _signal_group(group, signal.SIGTERM)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
        _signal_group(group, signal.SIGKILL)  # stragglers, if any
        self.process = None

    def restart(self) -> None:
        """Stop and start again on the same port, keeping the mail."""
        self.stop()
        self.start()

    def close(self) -> None:
        """Stop, keep a copy of the log in ``workdir`` and remove the temp folder (mail included)."""
        self.stop()
        if self.root.exists():
            for name in ("dovecot.log", "stderr.log"):
                if (self.root / name).exists():
                    shutil.copyfile(self.root / name, self.workdir / name)
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> Dovecot:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def log(self) -> str:
        """Dovecot's log and whatever it printed, for failure messages."""
        parts = [p.read_text(errors="replace") for p in (self.log_path, self.root / "stderr.log") if p.exists()]
        return "\n".join(parts)

    def password_file(self) -> Path:
        """A file holding the password, newline-terminated (for maild's [intake.imap] password_file)."""
        path = self.workdir / "imap-password"
        path.write_text(self.password + "\n")
        path.chmod(0o600)
        return path

    # -- mail, through IMAP as a mail client would ----------------------------------------------------------

    def connect(self) -> imaplib.IMAP4:
        """A logged-in stdlib IMAP client; use it in a ``with`` block (it logs out at the end)."""
        client = imaplib.IMAP4(self.host, self.port, timeout=10)
        try:
            client.login(self.user, self.password)
        except BaseException:
            client.shutdown()
            raise
        return client

    def append(self, raw: bytes, mailbox: str = "INBOX", seen: bool = False) -> None:
        """Deliver ``raw`` into ``mailbox`` (created if missing), flagged \\Seen if ``seen``."""
        with self.connect() as client:
            self._append(client, raw, mailbox, seen)

    def append_many(self, raws: Iterable[bytes], mailbox: str = "INBOX") -> None:
        """Deliver several mails over one connection."""
        with self.connect() as client:
            created = False
            for raw in raws:
                self._append(client, raw, mailbox, False, create=not created)
                created = True

    @staticmethod
    def _append(client: imaplib.IMAP4, raw: bytes, mailbox: str, seen: bool, create: bool = True) -> None:
        if create and mailbox.upper() != "INBOX":
            client.create(_quote(mailbox))  # NO [ALREADYEXISTS] when it exists: fine
        typ, data = client.append(_quote(mailbox), "(\\Seen)" if seen else None, None, raw)
        if typ != "OK":
            raise RuntimeError(f"APPEND to {mailbox} failed: {data!r}")

    def count(self, mailbox: str = "INBOX") -> int:
        """How many messages ``mailbox`` holds (0 if it does not exist)."""
        with self.connect() as client:
            typ, data = client.status(_quote(mailbox), "(MESSAGES)")
        if typ != "OK":
            return 0
        match = re.search(rb"MESSAGES (\d+)", data[0] if isinstance(data[0], bytes) else b"")
        return int(match.group(1)) if match else 0

    def message_ids(self, mailbox: str = "INBOX") -> list[str]:
        """The Message-ID headers of the messages in ``mailbox``, in UID order ([] if it does not exist)."""
        with self.connect() as client:
            typ, _ = client.select(_quote(mailbox), readonly=True)
            if typ != "OK":
                return []
            typ, data = client.uid("FETCH", "1:*", "(BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])")
        ids = []
        for item in data:
            if isinstance(item, tuple):
                value = email.message_from_bytes(item[1])["Message-ID"]
                ids.append(str(value).strip() if value is not None else "")
        return ids

    def flags(self, mailbox: str = "INBOX") -> list[str]:
        """The flags of each message in ``mailbox``, in UID order (as the raw IMAP list, e.g. ``\\Seen``)."""
        with self.connect() as client:
            typ, _ = client.select(_quote(mailbox), readonly=True)
            if typ != "OK":
                return []
            typ, data = client.uid("FETCH", "1:*", "(FLAGS)")
        return [m.group(1).decode() for item in data if (m := re.search(rb"FLAGS \(([^)]*)\)", bytes(item or b"")))]


@pytest.fixture
def start_dovecot(tmp_path: Path) -> Iterator[Callable[..., Dovecot]]:
    """Factory: start a throwaway Dovecot (several may run at once; ``certificate`` as `Dovecot` takes it); all
    are stopped and removed at teardown."""
    reason = dovecot_available()
    if reason is not None:
        pytest.skip(reason)
    servers: list[Dovecot] = []

    def start(certificate: tuple[Path, Path] | None = None) -> Dovecot:
        server = Dovecot(tmp_path / f"dovecot{len(servers)}", certificate)
        servers.append(server)
        server.start()
        return server

    yield start
    for server in servers:
        server.close()


@pytest.fixture
def dovecot(start_dovecot: Callable[..., Dovecot]) -> Dovecot:
    """A running throwaway Dovecot with user ``support``/``secret`` (skips when Dovecot cannot run here)."""
    return start_dovecot()
