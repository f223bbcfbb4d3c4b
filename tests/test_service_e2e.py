"""End to end: maild as a systemd service: notify protocol, watchdog, reload on SIGHUP, socket activation."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.helpers import CUSTOMER, REPO, SUPPORT, Daemon, Smarthost, make_mail, wait_until


class NotifySocket:
    """The datagram socket systemd would listen on, collecting what the service tells it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(0.1)
        self.messages: list[str] = []

    def received(self) -> list[str]:
        while True:
            try:
                self.messages.append(self.sock.recv(4096).decode())
            except TimeoutError:
                return self.messages

    def fields(self) -> list[str]:
        return [field for message in self.received() for field in message.split("\n")]

    def close(self) -> None:
        self.sock.close()


def test_notify_ready_status_watchdog_stopping(start_daemon: Callable[..., Daemon], tmp_path: Path) -> None:
    """Under systemd maild says READY=1 once listening, keeps STATUS and WATCHDOG=1 coming, and STOPPING=1."""
    notify = NotifySocket(tmp_path / "notify.sock")
    try:
        daemon = start_daemon()
        daemon.stop()
        daemon.env = {"NOTIFY_SOCKET": str(notify.path), "WATCHDOG_USEC": "1000000"}
        daemon.start()
        wait_until(lambda: "READY=1" in notify.fields(), 10, "READY=1")
        assert any(f.startswith("STATUS=spool 0 pending") for f in notify.fields())
        wait_until(lambda: notify.fields().count("WATCHDOG=1") >= 2, 10, "two watchdog pings")
        assert daemon.stop() == 0
        assert "STOPPING=1" in notify.fields()
    finally:
        notify.close()


def test_sighup_reloads_templates_and_agents(
    start_daemon: Callable[..., Daemon], smarthost: Smarthost, tmp_path: Path
) -> None:
    """SIGHUP (systemctl reload) applies a changed template and a new agent without dropping the listener."""
    overrides = tmp_path / "templates"
    (overrides / "en").mkdir(parents=True)
    daemon = start_daemon(extra="")
    daemon.stop()
    text = daemon.config_path.read_text().replace("[maild]\n", f'[maild]\ntemplates_dir = "{overrides}"\n')
    daemon.config_path.write_text(text)
    daemon.start()
    daemon.send(make_mail(subject="Before"))
    [ack] = smarthost.wait_for(CUSTOMER)
    assert "We have received" in ack["Subject"]
    (overrides / "en" / "customer.ack.txt").write_text("Subject: {{ token }} Got it\n\nThanks, we are on it.\n")
    daemon.config_path.write_text(
        daemon.config_path.read_text() + '\n[[agents]]\nemail = "eva@example.com"\nname = "Eva"\n'
    )
    assert daemon.process is not None
    daemon.process.send_signal(signal.SIGHUP)
    wait_until(lambda: any(e["event"] == "reloaded" for e in daemon.log_events()), 10, "the reload")
    daemon.send(make_mail(subject="After"))
    acks = smarthost.wait_for(CUSTOMER, 2)
    assert acks[1]["Subject"].endswith("Got it") and "on it" in acks[1].body
    smarthost.wait_for("eva@example.com")  # the new agent hears of the new ticket


def test_sighup_moves_outbound_mail_to_a_new_smarthost(
    start_daemon: Callable[..., Daemon], smarthost: Smarthost
) -> None:
    """A reload that changes [outbound] (a new relay, say) sends the next mail through it, no restart."""
    daemon = start_daemon()
    daemon.send(make_mail(subject="Before"))
    smarthost.wait_for(CUSTOMER)
    other = Smarthost()
    other.start()
    try:
        text = daemon.config_path.read_text()
        assert text.count(f"port = {smarthost.port}\n") == 1
        daemon.config_path.write_text(text.replace(f"port = {smarthost.port}\n", f"port = {other.port}\n"))
        assert daemon.process is not None
        daemon.process.send_signal(signal.SIGHUP)
        wait_until(lambda: any(e["event"] == "reloaded" for e in daemon.log_events()), 10, "the reload")
        daemon.send(make_mail(subject="After"))
        [ack] = other.wait_for(CUSTOMER)
        assert "After" in ack["Subject"]
        assert len(smarthost.to(CUSTOMER)) == 1
    finally:
        other.stop()


def test_sighup_with_a_broken_config_keeps_running(start_daemon: Callable[..., Daemon], smarthost: Smarthost) -> None:
    """A reload with an invalid config is refused with a log line; the daemon goes on with the old one."""
    daemon = start_daemon()
    daemon.config_path.write_text(daemon.config_path.read_text() + "\n[bogus]\n")
    assert daemon.process is not None
    daemon.process.send_signal(signal.SIGHUP)
    refused = wait_until(lambda: [e for e in daemon.log_events() if e["event"] == "reload_refused"], 10, "refusal")
    assert refused[0]["problems"] == ["bogus: unknown key"]
    daemon.send(make_mail())
    smarthost.wait_for(CUSTOMER)


def test_socket_activation_serves_on_the_passed_socket(
    start_daemon: Callable[..., Daemon], smarthost: Smarthost
) -> None:
    """Started with LISTEN_FDS (systemd socket activation), maild serves on the socket it was handed."""
    daemon = start_daemon()
    daemon.stop()
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    fd = listener.fileno()
    # What systemd does: the socket becomes fd 3 and LISTEN_PID names the exec'd process (same pid).
    launcher = (
        "import os, sys; os.dup2(int(sys.argv[1]), 3); os.environ.update(LISTEN_FDS='1', "
        "LISTEN_PID=str(os.getpid())); os.execv(sys.executable, [sys.executable, '-m', 'maild', 'serve', "
        "'--config', sys.argv[2]])"
    )
    with daemon.log_path.open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-c", launcher, str(fd), str(daemon.config_path)],
            pass_fds=(fd,),
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=daemon.workdir,
        )
    listener.close()
    try:
        daemon.port = port
        daemon.process = process  # so the fixture stops it
        wait_until(lambda: sum(e["event"] == "started" for e in daemon.log_events()) == 2, 10, "the start")
        daemon.send(make_mail(subject="Activated"), rcpt=[SUPPORT])
        smarthost.wait_for(CUSTOMER)
    finally:
        assert daemon.stop() == 0


def test_systemd_units_verify(tmp_path: Path) -> None:
    """The shipped unit files pass `systemd-analyze verify` where systemd is installed."""
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed on this machine")
    # Verify copies whose ExecStart names this checkout's maild (the units name the installed path).
    units = []
    for name in ("maild.service", "maild.socket"):
        text = (REPO / "systemd" / name).read_text()
        (tmp_path / name).write_text(text.replace("/usr/local/bin/maild", str(Path(sys.executable).parent / "maild")))
        units.append(tmp_path / name)
    result = subprocess.run(
        ["systemd-analyze", "verify", *map(str, units)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "SYSTEMD_LOG_LEVEL": "warning"},
    )
    problems = [line for line in result.stderr.splitlines() if "maild" in line]
    assert problems == [], result.stderr
