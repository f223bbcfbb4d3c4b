"""A throwaway Postfix for tests: its own main.cf/master.cf, queue, data directory, log and port; never /etc/postfix.

Postfix is started as root with ``postfix -c CONFDIR start`` (its master drops privileges itself) and stopped
with ``postfix -c CONFDIR stop``. As root, ``postfix``, ``postconf`` and ``postqueue`` take any ``-c``
directory: ``alternate_config_directories`` in /etc/postfix/main.cf (which the package's "No configuration"
install does not even create) only matters to the set-gid ``postqueue``/``postdrop`` run by other users. The
queue and data directories live under the temp root and are created by ``postfix start`` itself (its
``post-install create-missing`` step gives them their owners: root, ``postfix`` and ``postdrop``).

Everything lives in a ``tempfile.mkdtemp()`` folder of mode 0755 (pytest's tmp_path may sit under a 0700 folder
that the ``postfix`` user and the pipe user cannot traverse); `Postfix.close` removes it after copying the
log to ``workdir``.

What reaches Postfix on its loopback port is handled like this:

- mail for ``support@example.com`` and ``billing@example.com`` (``relay_domains = example.com``) goes where
  `Postfix.route` says: ``smtp:[127.0.0.1]:PORT``, ``lmtp:inet:127.0.0.1:PORT``, or the ``maild`` pipe
  service (`Postfix.pipe_to_maild`), which runs ``maild inject`` as the unprivileged `PIPE_USER`;
- everything else goes to ``relayhost`` (the test's capturing smarthost), so maild can use this Postfix as its
  own smarthost.

No DNS is used anywhere: next hops are IP literals, ``smtp_dns_support_level = disabled`` and
``smtpd_peername_lookup = no``.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import pwd
import re
import shutil
import signal
import site
import smtplib
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import Smarthost

REPO = Path(__file__).resolve().parents[1]
HOSTNAME = "mx.maild-test.invalid"
ROUTED = ("support@example.com", "billing@example.com")

# The pipe's user: Postfix's pipe(8) refuses root and the mail_owner (postfix); "nobody" owns nothing else,
# so the maild data directory it writes to is made its own (see docs/postfix.md, "Permissions").
PIPE_USER = "nobody"

MAIN_CF = """\
# A throwaway Postfix for maild's tests: nothing here reads or writes /etc/postfix.
compatibility_level = 3.6
queue_directory = {root}/queue
data_directory = {root}/data
maillog_file = {root}/postfix.log
maillog_file_prefixes = {root}
myhostname = {hostname}
mydomain = maild-test.invalid
myorigin = $myhostname
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mydestination =
local_recipient_maps =
alias_maps =
alias_database =
relay_domains = example.com
mynetworks = 127.0.0.0/8
smtputf8_enable = no
smtpd_peername_lookup = no
smtp_dns_support_level = disabled
lmtp_dns_support_level = disabled
transport_maps = texthash:{config}/transport
relayhost = [127.0.0.1]:{relayhost_port}
# A refused delivery is retried by `postqueue -f`, not by the clock, while a test runs.
queue_run_delay = 1h
minimal_backoff_time = 1h
maximal_backoff_time = 1h
"""

MASTER_CF = """\
# service type  private unpriv  chroot  wakeup  maxproc command + args
127.0.0.1:{port} inet n -       n       -       -       smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""

# ${recipient} inside an argument repeats the whole argument once per recipient: "--to=${recipient}" gives
# "--to=a --to=b" for a mail to two routed addresses. R prepends Return-Path: (<> for a bounce, which maild's
# loop guard reads); q quotes unusual local parts.
PIPE_SERVICE = """\
maild     unix  -       n       n       -       -       pipe
  flags=Rq user={user} argv={command} inject --config {config} --from=${{sender}} --to=${{recipient}}
"""

WRAPPER = """\
#!/bin/sh
# `maild` for the pipe user: this checkout's code and its virtualenv's packages, run by a Python that user may
# execute (a virtualenv under a 0700 home is out of its reach).
PYTHONPATH={pythonpath}
export PYTHONPATH
exec {python} -m maild "$@"
"""


def postfix_binary() -> str | None:
    """The path of the ``postfix`` command (also found in /usr/sbin when that is not on PATH)."""
    found = shutil.which("postfix")
    if found is None and os.access("/usr/sbin/postfix", os.X_OK):
        found = "/usr/sbin/postfix"
    return found


def _command(name: str) -> str:
    """A Postfix command beside ``postfix`` (postqueue, postconf)."""
    binary = postfix_binary()
    assert binary is not None
    return str(Path(binary).with_name(name))


def postfix_available() -> str | None:
    """None if a throwaway Postfix can run here, else the reason to skip the tests that need one."""
    if postfix_binary() is None:
        return "postfix not installed: run make test as root (it installs Debian's postfix)"
    if os.geteuid() != 0:
        return "the test Postfix must be started as root"
    try:
        pwd.getpwnam("postfix")
    except KeyError:
        return "no 'postfix' user: the postfix package is not properly installed"
    return None


def run_as_pipe_user() -> dict[str, Any]:
    """`subprocess` keywords that run a command as `PIPE_USER` with its own group only (as pipe(8) does)."""
    entry = pwd.getpwnam(PIPE_USER)
    return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}


@functools.cache
def pipe_python() -> tuple[str, str] | str:
    """(interpreter, PYTHONPATH) with which `PIPE_USER` can import this checkout's maild, or why there is none.

    The test's own interpreter comes first; a virtualenv whose base Python sits under a 0700 home (pyenv in
    /root) is out of reach of other users, so a system Python of the same version follows, given the
    virtualenv's site-packages (same minor version, so the same ABI for compiled packages).
    """
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    pythonpath = os.pathsep.join([str(REPO), *site.getsitepackages()])
    candidates = dict.fromkeys(
        [
            sys.executable,
            os.path.realpath(sys.executable),
            getattr(sys, "_base_executable", sys.executable),
            f"/usr/bin/python{version}",
            f"/usr/local/bin/python{version}",
        ]
    )
    tried = []
    for python in candidates:
        if not os.path.exists(python):
            continue
        try:
            result = subprocess.run(
                [python, "-c", "import sys, maild.cli; print(sys.version_info[:2])"],
                env={"PATH": "/usr/bin:/bin", "PYTHONPATH": pythonpath},
                capture_output=True,
                text=True,
                timeout=60,
                cwd="/",
                **run_as_pipe_user(),
            )
        except OSError as exc:
            tried.append(f"{python}: {exc.strerror}")
            continue
        if result.returncode == 0 and result.stdout.strip() == str(sys.version_info[:2]):
            return python, pythonpath
        tried.append(f"{python}: {(result.stderr.strip().splitlines() or ['exit ' + str(result.returncode)])[-1]}")
    return f"no Python {version} that user {PIPE_USER!r} can run maild with ({'; '.join(tried)})"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Postfix:
    """A real Postfix on a free loopback port, relaying maild's addresses as `route` says and all else to
    ``relayhost_port`` (the test's smarthost)."""

    host = "127.0.0.1"
    hostname = HOSTNAME

    def __init__(self, workdir: Path, relayhost_port: int) -> None:
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.relayhost_port = relayhost_port
        self.port = _free_port()
        self.root = Path(tempfile.mkdtemp(prefix="maild-postfix-"))
        self.root.chmod(0o755)
        self.config_dir = self.root / "etc"
        self.config_dir.mkdir(mode=0o755)
        # The queue directory must exist (root-owned); `postfix start` creates its subdirectories and the data
        # directory, with their owners (post-install create-missing).
        self.queue_dir = self.root / "queue"
        self.queue_dir.mkdir(mode=0o755)
        self.log_path = self.root / "postfix.log"
        self.routes: dict[str, str] = {}
        self.pipe_service = ""
        self.running = False
        self._master_pid: int | None = None

    # -- configuration -------------------------------------------------------------------------------------

    def route(self, nexthop: str, addresses: Iterable[str] = ROUTED) -> None:
        """Deliver mail for ``addresses`` to ``nexthop`` (a transport(5) value such as
        ``smtp:[127.0.0.1]:2525``, ``lmtp:inet:127.0.0.1:2525`` or ``maild:``); call before `start`."""
        if self.running:
            raise RuntimeError("route() before start(): the transport map is read when Postfix starts")
        for address in addresses:
            self.routes[address] = nexthop

    def pipe_to_maild(self, maild_config: Path, addresses: Iterable[str] = ROUTED) -> Path:
        """Route ``addresses`` to a ``maild`` pipe service running ``maild inject`` as `PIPE_USER`; returns the
        ``maild`` command it runs (a wrapper script the pipe user can execute)."""
        found = pipe_python()
        if isinstance(found, str):
            pytest.skip(found)
        python, pythonpath = found
        command = self.root / "bin" / "maild"
        command.parent.mkdir(mode=0o755, exist_ok=True)
        command.write_text(WRAPPER.format(python=python, pythonpath=pythonpath))
        command.chmod(0o755)
        self.pipe_service = PIPE_SERVICE.format(user=PIPE_USER, command=command, config=maild_config)
        self.route("maild:", addresses)
        return command

    def _write_config(self) -> None:
        values = {
            "root": self.root,
            "config": self.config_dir,
            "hostname": self.hostname,
            "port": self.port,
            "relayhost_port": self.relayhost_port,
        }
        (self.config_dir / "main.cf").write_text(MAIN_CF.format(**values))
        (self.config_dir / "master.cf").write_text(MASTER_CF.format(**values) + self.pipe_service)
        (self.config_dir / "transport").write_text("".join(f"{a}\t{n}\n" for a, n in self.routes.items()))
        # Postfix waits (in 300 ms steps, up to about 2 s) for a main.cf written in the last second or two to
        # settle, lest it read a half-written file; files dated a minute ago are read at once.
        past = time.time() - 60
        for name in ("main.cf", "master.cf", "transport"):
            os.utime(self.config_dir / name, (past, past))

    # -- life cycle ---------------------------------------------------------------------------------------

    def postfix(self, *args: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """Run ``postfix -c CONFDIR ARGS`` (start, stop, check, reload, flush...)."""
        binary = postfix_binary()
        if binary is None:
            raise RuntimeError("postfix is not installed")
        return self._run([binary, "-c", str(self.config_dir), *args], check, timeout)

    def _run(self, argv: list[str], check: bool, timeout: float) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
        if check and result.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} exited {result.returncode}:\n{result.stderr}\n{self.log()}")
        return result

    def start(self) -> None:
        """Write main.cf, master.cf and the transport map, start Postfix, and return once its smtpd greets."""
        if self.running:
            return
        self._write_config()
        try:
            self.postfix("start")  # `master -w`: returns once the master has initialised (or failed)
        finally:
            self.running = True  # so that stop() cleans up after a half-started instance too
            self._master_pid = self._read_master_pid()
        deadline = time.monotonic() + 10
        while not self._greets():
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"postfix did not greet on port {self.port} within 10 s:\n{self.log()}")
            time.sleep(0.02)

    def _read_master_pid(self) -> int | None:
        with contextlib.suppress(OSError, ValueError):
            return int((self.queue_dir / "pid" / "master.pid").read_text().split()[0])
        return None

    def _greets(self) -> bool:
        try:
            with socket.create_connection((self.host, self.port), timeout=2) as sock:
                return sock.recv(100).startswith(b"220")
        except OSError:
            return False

    def stop(self) -> None:
        """``postfix stop`` (it waits for the master to go, up to 5 s), then SIGKILL to whatever is left of the
        master's process group; does nothing when stopped."""
        if not self.running:
            return
        self.running = False
        with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
            self.postfix("stop", timeout=30)
        if self._master_pid is not None:
            # The master runs in its own session (setsid) and so leads its own process group.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self._master_pid, signal.SIGKILL)
            self._master_pid = None

    def close(self) -> None:
        """Stop, keep a copy of the log in ``workdir`` and remove the temp folder (queue included)."""
        self.stop()
        if self.root.exists():
            if self.log_path.exists():
                shutil.copyfile(self.log_path, self.workdir / "postfix.log")
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> Postfix:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- mail and its traces --------------------------------------------------------------------------------

    def submit(self, raw: bytes, rcpt: Iterable[str], mail_from: str) -> None:
        """Hand ``raw`` to Postfix over SMTP, as a customer's mail server would."""
        with smtplib.SMTP(self.host, self.port, timeout=10) as client:
            refused = client.sendmail(mail_from, list(rcpt), raw)
        assert not refused, refused

    def log(self) -> str:
        """The mail log (maillog_file, written by postlogd), for failure messages and assertions."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def wait_log(self, pattern: str, timeout: float = 20) -> re.Match[str]:
        """Wait until the log matches the regular expression ``pattern``; the match."""
        deadline = time.monotonic() + timeout
        while True:
            match = re.search(pattern, self.log())
            if match:
                return match
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"timed out after {timeout}s waiting for /{pattern}/ in the Postfix log:\n{self.log()}"
                )
            time.sleep(0.05)

    def queue(self) -> list[dict[str, Any]]:
        """The queue as ``postqueue -j`` tells it: one dict per message (queue_name, recipients with
        delay_reason...)."""
        output = self._run([_command("postqueue"), "-c", str(self.config_dir), "-j"], True, 30).stdout
        return [json.loads(line) for line in output.splitlines() if line.strip()]

    def flush(self) -> None:
        """``postqueue -f``: retry every deferred message now."""
        self._run([_command("postqueue"), "-c", str(self.config_dir), "-f"], True, 30)


@pytest.fixture
def postfix(tmp_path: Path, smarthost: Smarthost) -> Iterator[Postfix]:
    """A throwaway Postfix relaying to the test's smarthost, configured but not started (skips when Postfix
    cannot run here): `Postfix.route` maild's addresses, then `Postfix.start`. Stopped and removed at teardown."""
    reason = postfix_available()
    if reason is not None:
        pytest.skip(reason)
    server = Postfix(tmp_path / "postfix", smarthost.port)
    yield server
    server.close()
