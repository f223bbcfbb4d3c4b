"""maild behind a real Postfix: mail relayed to it over SMTP and LMTP or piped to `maild inject`, and maild's own
mail sent out through Postfix as its smarthost (the recipes of docs/postfix.md)."""
# ruff: noqa: F811  (the postfix fixture imported from tests.postfix is redefined as a test argument)

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import BILLING, CUSTOMER, SUPPORT, Daemon, Smarthost, make_mail, wait_until
from tests.postfix import Postfix, postfix, run_as_pipe_user  # noqa: F401  (fixture)


class PipeUserDaemon(Daemon):
    """`maild serve` and the maild CLI run as the pipe user, through the same ``maild`` command the pipe runs,
    so the daemon and `maild inject` share a data directory that user owns."""

    def __init__(self, workdir: Path, smarthost_port: int, command: Path) -> None:
        super().__init__(workdir, smarthost_port)
        self.command = command

    def start(self) -> None:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [str(self.command), "serve", "--config", str(self.config_path)],
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.workdir,
                env={"PATH": "/usr/bin:/bin"},
                **run_as_pipe_user(),
            )
        wait_until(lambda: self._listening() or self._died(), 15, "maild to listen")
        if self._died():
            raise AssertionError(f"maild died at start:\n{self.log_path.read_text()}")

    def cli(self, *args: str, stdin: bytes | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [str(self.command), *args, "--config", str(self.config_path)],
            input=stdin.decode("utf-8", "surrogateescape") if stdin is not None else None,
            capture_output=True,
            text=True,
            timeout=60,
            cwd=self.workdir,
            env={"PATH": "/usr/bin:/bin", "PYTHONWARNINGS": "error"},
            **run_as_pipe_user(),
        )
        if check and result.returncode != 0:
            raise AssertionError(f"maild {' '.join(args)} exited {result.returncode}: {result.stderr}")
        return result


@pytest.fixture
def behind(postfix: Postfix, tmp_path: Path) -> Iterator[Callable[..., Daemon]]:
    """Factory: a `maild serve` (not yet started) whose outbound smarthost is the test's Postfix."""
    daemons: list[Daemon] = []

    def make(**kwargs: Any) -> Daemon:
        workdir = tmp_path / f"maild{len(daemons)}"
        workdir.mkdir()
        daemon = Daemon(workdir, postfix.port, **kwargs)
        daemons.append(daemon)
        return daemon

    yield make
    for daemon in daemons:
        if daemon.process is not None:
            daemon.stop()


@pytest.fixture
def piped(postfix: Postfix, tmp_path: Path) -> Iterator[PipeUserDaemon]:
    """A maild (not started) fed by Postfix's ``maild`` pipe service: its folder, in a 0755 temp dir, belongs to
    the pipe user, who runs both `maild inject` and `maild serve` (the daemon sends the acknowledgements)."""
    root = Path(tempfile.mkdtemp(prefix="maild-pipe-"))
    root.chmod(0o755)
    workdir = root / "maild"
    workdir.mkdir(mode=0o755)
    user = run_as_pipe_user()
    os.chown(workdir, user["user"], user["group"])
    config_path = workdir / "maild.toml"
    command = postfix.pipe_to_maild(config_path)
    daemon = PipeUserDaemon(workdir, postfix.port, command)
    assert daemon.config_path == config_path
    yield daemon
    if daemon.process is not None:
        daemon.stop()
    if daemon.log_path.exists():
        shutil.copyfile(daemon.log_path, tmp_path / "maild.log")
    shutil.rmtree(root, ignore_errors=True)


def _came_through(ack: Any, postfix: Postfix) -> bool:
    """Whether a mail the smarthost captured was handed over by the test's Postfix."""
    return any(f"by {postfix.hostname} (Postfix)" in str(value) for value in ack.message.get_all("Received", []))


def test_smtp_relay_from_postfix_makes_a_ticket(
    postfix: Postfix, behind: Callable[..., Daemon], smarthost: Smarthost
) -> None:
    """Postfix relays a customer's mail to `maild serve` over SMTP, and the acknowledgement leaves through Postfix."""
    maild = behind()
    postfix.route(f"smtp:[127.0.0.1]:{maild.port}")
    postfix.start()
    maild.start()
    postfix.submit(make_mail(subject="Relayed by Postfix"), [SUPPORT], CUSTOMER)
    postfix.wait_log(rf"to=<{SUPPORT}>, relay=127\.0\.0\.1\[127\.0\.0\.1\]:{maild.port},.* status=sent")
    [ack] = smarthost.wait_for(CUSTOMER, timeout=30)
    assert "Relayed by Postfix" in ack["Subject"]
    assert _came_through(ack, postfix)
    [ticket] = maild.tickets()
    assert ticket["subject"] == "Relayed by Postfix"
    assert ticket["requester"] == CUSTOMER


def test_lmtp_from_postfix_makes_a_ticket(
    postfix: Postfix, behind: Callable[..., Daemon], smarthost: Smarthost
) -> None:
    """Postfix delivers over LMTP (transport_maps ``lmtp:inet:``) to maild, one reply per recipient."""
    maild = behind(lmtp=True)
    postfix.route(f"lmtp:inet:127.0.0.1:{maild.port}")
    postfix.start()
    maild.start()
    postfix.submit(make_mail(subject="Over LMTP", to=[SUPPORT, BILLING]), [SUPPORT, BILLING], CUSTOMER)
    for address in (SUPPORT, BILLING):
        postfix.wait_log(rf"postfix/lmtp\[\d+\]: \w+: to=<{address}>, relay=127\.0\.0\.1\[127\.0\.0\.1\]:{maild.port},")
    assert len(re.findall(r"postfix/lmtp\[\d+\]: .* status=sent", postfix.log())) == 2
    [ack] = smarthost.wait_for(CUSTOMER, timeout=30)
    assert "Over LMTP" in ack["Subject"]
    assert _came_through(ack, postfix)
    [ticket] = maild.tickets()
    assert ticket["queue"] == "billing"


def test_pipe_to_maild_inject_makes_a_ticket(postfix: Postfix, piped: PipeUserDaemon, smarthost: Smarthost) -> None:
    """Postfix's pipe transport runs `maild inject` as the pipe user, and the ticket and its acknowledgement follow."""
    postfix.start()
    piped.start()
    postfix.submit(make_mail(subject="Through the pipe", to=[SUPPORT, BILLING]), [SUPPORT, BILLING], CUSTOMER)
    postfix.wait_log(rf"to=<{BILLING}>, relay=maild,.* status=sent \(delivered via maild service")
    postfix.wait_log(rf"to=<{SUPPORT}>, relay=maild,.* status=sent \(delivered via maild service")
    [ack] = smarthost.wait_for(CUSTOMER, timeout=30)
    assert "Through the pipe" in ack["Subject"]
    assert _came_through(ack, postfix)
    [ticket] = piped.tickets()
    assert ticket["queue"] == "billing"  # both recipients reached maild ("--to=${recipient}" per recipient)
    assert ticket["requester"] == CUSTOMER


def test_pipe_store_failure_is_deferred_then_flushed(postfix: Postfix, piped: PipeUserDaemon) -> None:
    """When `maild inject` cannot store the mail it exits 75, Postfix keeps it deferred, and
    `postqueue -f` delivers it once the store works again."""
    data = piped.workdir / "data"
    data.write_text("not a folder")  # data_dir is unusable
    postfix.start()
    postfix.submit(make_mail(subject="Keep me"), [SUPPORT], CUSTOMER)
    # "temporary failure" (4.3.0) is how pipe(8) reports exit 75, EX_TEMPFAIL; maild's exit 1 would bounce.
    postfix.wait_log(rf"to=<{SUPPORT}>, relay=maild,.* dsn=4\.3\.0, status=deferred \(temporary failure\.")
    [queued] = wait_until(
        lambda: [m for m in postfix.queue() if m["queue_name"] == "deferred"], 10, "the mail in the deferred queue"
    )
    [recipient] = queued["recipients"]
    assert recipient["address"] == SUPPORT
    assert "cannot store the message" in recipient["delay_reason"]
    assert "Traceback" not in postfix.log()

    data.unlink()  # the store works again
    postfix.flush()
    postfix.wait_log(rf"to=<{SUPPORT}>, relay=maild,.* status=sent \(delivered via maild service")
    wait_until(lambda: postfix.queue() == [], 10, "the Postfix queue to empty")
    [ticket] = piped.tickets()
    assert ticket["subject"] == "Keep me"


def test_two_postfix_instances_at_once(postfix: Postfix, smarthost: Smarthost, tmp_path: Path) -> None:
    """Two throwaway Postfix instances run side by side, each with its own port, queue and log."""
    other = Postfix(tmp_path / "other", smarthost.port)
    try:
        postfix.start()
        other.start()
        assert other.port != postfix.port and other.root != postfix.root
        for server, name in ((postfix, "first"), (other, "second")):
            server.submit(
                make_mail(subject=f"Via the {name}", to=["someone@example.net"]), ["someone@example.net"], CUSTOMER
            )
        mails = smarthost.wait_for("someone@example.net", count=2, timeout=30)
        assert sorted(m["Subject"] for m in mails) == ["Via the first", "Via the second"]
        for server in (postfix, other):
            server.wait_log(r"to=<someone@example\.net>, relay=127\.0\.0\.1.* status=sent")
            assert server.log().count("status=sent") == 1
    finally:
        other.close()
    assert not other.root.exists()
