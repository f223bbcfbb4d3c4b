"""How fast maild takes and processes mail, side by side with its ceiling (issue 8).

Run from the repository root:

    .venv/bin/python benchmarks/ingest.py [--quick] [--mails N] [--clients C] [--prefill N] [--long]

Everything runs on 127.0.0.1 in one go on this machine, each server in its own subprocess, the clients in
this process (aiosmtplib); the ceiling, maild and the clients all run on uvloop, maild's event loop:

- ceiling: a bare aiosmtpd server whose handler answers "250 OK" and nothing else;
- intake: maild's own SMTP listener, handler and group-committing spool on its real store, with nothing
  processing the spool: what a durable 250 costs when no ticket work shares its core (for reading the
  durable figures; not a target);
- maild: `python -m maild serve` on a temporary data folder, against a store seeded with the few tickets
  the replies need ("empty") and against one pre-filled with --prefill tickets by direct SQL;
- each with C persistent sessions and with a new connection per mail, then an open-loop run at half of
  maild's measured saturation rate for the SMTP transaction's latency (MAIL .. end of DATA);
- in full mode (or with --long), 100,000 mails through one daemon: its RSS after warm-up and at the end.

"durable" counts mails answered 250 (maild answers only after the commit), "processed" waits until the
spool has nothing pending (each mail's ticket change and notifications committed in the outbox). The
outbound transport is SMTP to a closed loopback port with retry_base = 1h: delivery, which is the MTA's
speed and not maild's, costs one refused connect and one retry mark per outgoing mail and nothing more.

Prints one table, writes it as JSON to benchmarks/results/ingest-<timestamp>.json, and always exits 0
unless the benchmark itself broke: it measures, the targets read PASS or MISS.
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import base64
import contextlib
import json
import math
import os
import random
import re
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import uvloop

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # the test staff lives in tests/helpers.py; the store's SQL in maild/

from maild.store.outbox import (  # noqa: E402
    CHAIN_LATEST,
    COUNT_SENT_SINCE,
    COUNT_SENT_TO_SINCE,
    THREAD_CHAIN,
)
from maild.store.tickets import (  # noqa: E402
    COUNT_OPEN_OF_ASSIGNEE,
    COUNT_OPEN_UNASSIGNED,
    OPEN_OF_ASSIGNEE_BY_URGENCY,
    OPEN_UNASSIGNED_BY_URGENCY,
    TICKET_BY_ID,
)
from tests.helpers import ANA, LUIS, STAFF_CONFIG  # noqa: E402

RESULTS = REPO / "benchmarks" / "results"
HOST = "127.0.0.1"
SUPPORT = "support@example.com"
AGENTS = (ANA, LUIS)  # the agents of STAFF_CONFIG
PREFIX = "ACME"
ATTACHMENT_BYTES = 20 * 1024

# Targets of issue 8 (2 cores).
DURABLE_TARGET = 0.6  # x ceiling
PROCESSED_TARGET = 0.3  # x ceiling
P99_TARGET_MS = 50.0
RSS_TARGET_MB = 150.0
RSS_GROWTH_TOLERANCE = 0.10  # --long: RSS at the end within 10% of RSS after warm-up
SCALE_TOLERANCE = 0.10  # pre-filled figures within 10% of the empty store's

CONFIG = (
    """
[maild]
data_dir = "{data_dir}"
language = "en"
log_level = "{log_level}"

[mail]
support_address = "support@example.com"
from_name = "ACME Support"
ticket_prefix = "ACME"

[intake.smtp]
host = "127.0.0.1"
port = {port}
max_message_bytes = 10000000
max_connections = 200

[outbound]
{outbound}

# Every new ticket's sender is a different customer and every acknowledgement must be written (the real
# work): the global limit is lifted so that it does not turn most acknowledgements into a skipped step.
[security]
acks_per_sender = 3
acks_global = 100000000
ack_window = "1h"

"""
    + STAFF_CONFIG
)

OUTBOUND_REFUSED = """transport = "smtp"
host = "127.0.0.1"
port = {port}
timeout = "10s"
retry_base = "1h"
retry_max = "1h"
"""

OUTBOUND_FILE = """transport = "file"
directory = "{directory}"
"""


# ----------------------------------------------------------------------------------------------- settings


@dataclass(frozen=True)
class Settings:
    quick: bool
    mails: int
    clients: int
    prefill: int
    long: bool
    long_mails: int
    latency_seconds: float
    drain_timeout: float
    outbound: str
    log_level: str
    profile: bool
    keep: bool

    @property
    def seed_tickets(self) -> int:
        """Open tickets the replies go to; the "empty" store holds only these."""
        return max(200, self.mails // 10)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="CI size: 2,000 mails, 20,000 pre-filled tickets")
    parser.add_argument("--mails", type=int, help="mails per saturation run (default 10,000; --quick 2,000)")
    parser.add_argument("--clients", type=int, default=8, help="concurrent SMTP connections (default 8)")
    parser.add_argument("--prefill", type=int, help="tickets in the large store (default 1,000,000; --quick 20,000)")
    parser.add_argument(
        "--long", action="store_true", help="100,000 mails on one daemon, RSS over time (always in full mode)"
    )
    parser.add_argument("--long-mails", type=int, default=100_000, help=argparse.SUPPRESS)
    parser.add_argument("--latency-seconds", type=float, help="length of the open-loop runs (default 20; quick 6)")
    parser.add_argument(
        "--drain-timeout", type=float, help="max seconds to wait for processing (default 600; --quick 90)"
    )
    parser.add_argument(
        "--outbound",
        choices=("refused", "file"),
        default="refused",
        help="refused: SMTP to a closed port, retried in 1h (default); file: .eml files with fsync",
    )
    parser.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"))
    parser.add_argument("--profile", action="store_true", help="sample each maild daemon with py-spy")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (stores, logs)")
    parser.add_argument("--ceiling-server", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--intake-server", action="store_true", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def settings_from(args: argparse.Namespace) -> Settings:
    quick = bool(args.quick)
    return Settings(
        quick=quick,
        mails=args.mails or (2_000 if quick else 10_000),
        clients=args.clients,
        prefill=args.prefill if args.prefill is not None else (20_000 if quick else 1_000_000),
        long=bool(args.long) or not quick,
        long_mails=args.long_mails,
        latency_seconds=args.latency_seconds or (6.0 if quick else 20.0),
        drain_timeout=args.drain_timeout or (90.0 if quick else 600.0),
        outbound=args.outbound,
        log_level=args.log_level,
        profile=bool(args.profile),
        keep=bool(args.keep),
    )


# ------------------------------------------------------------------------------------------------- mails


@dataclass(frozen=True)
class Target:
    """An open ticket that replies go to."""

    ticket_id: int
    requester: str
    assignee: str
    first_message_id: str


@dataclass(frozen=True)
class Mail:
    kind: str  # new, reply, agent
    mail_from: str
    raw: bytes


_PROSE = (
    "printer invoice order delivery account password screen error update server login cable refund shipment "
    "contract license backup network report warehouse label customer payment address support office broken "
    "again yesterday morning please urgent since still cannot working attached number reference thanks "
    "hello the a and of to we our my your is was it this that with on for when after before because"
)
WORDS = tuple(_PROSE.split())


def _paragraphs(rng: random.Random, size: int) -> str:
    """Plain ASCII prose of about ``size`` characters, wrapped at 72 columns, with blank lines between."""
    chunks, total = [], 0
    while total < size:
        sentence = " ".join(rng.choice(WORDS) for _ in range(rng.randint(8, 18))).capitalize() + "."
        para = " ".join([sentence] + [" ".join(rng.choices(WORDS, k=12)) + "." for _ in range(rng.randint(1, 3))])
        chunks.append(textwrap.fill(para, 72))
        total += len(para) + 2
    return "\n\n".join(chunks)


def _message_id(tag: str, index: int) -> str:
    return f"<{tag}.{index}@client.example.org>"


def build_mails(count: int, tag: str, targets: Sequence[Target], seed: int = 8) -> list[Mail]:
    """``count`` mails of about 3 KB as CRLF bytes: half new tickets, half replies with a token (in the mix,
    1 in 50 is an assignee's reply with ``#time 10m``), 1 in 10 with a 20 KB attachment."""
    rng = random.Random(f"{seed}-{tag}")
    date = format_datetime(datetime.now(UTC))
    mails = []
    for i in range(count):
        target = targets[rng.randrange(len(targets))]
        if i % 50 == 25:
            kind, sender, name = "agent", target.assignee, target.assignee.split("@")[0].title()
            subject = f"Re: [{PREFIX}#{target.ticket_id}] Printer on fire"
            text = (
                "Hello,\n\n"
                + _paragraphs(rng, 400)
                + "\n\n#time 10m\n\nRegards,\n"
                + name
                + "\n\n"
                + _quoted(rng, 1800)
            )
        elif i % 2 == 0:
            kind, sender, name = "new", f"c{i}.{tag}@customers.example.net", f"Customer {i}"
            subject = f"Problem {i}: " + " ".join(rng.choices(WORDS, k=5))
            text = "Hello,\n\n" + _paragraphs(rng, 2500) + "\n\nThanks,\n" + name
        else:
            kind, sender, name = "reply", target.requester, "Customer"
            subject = f"Re: [{PREFIX}#{target.ticket_id}] Printer on fire"
            text = "Hi again,\n\n" + _paragraphs(rng, 900) + "\n\n" + _quoted(rng, 1600)
        headers = [
            f"From: {name} <{sender}>",
            f"To: {SUPPORT}",
            f"Subject: {subject}",
            f"Date: {date}",
            f"Message-ID: {_message_id(tag, i)}",
            "MIME-Version: 1.0",
        ]
        if kind != "new":
            headers += [f"In-Reply-To: {target.first_message_id}", f"References: {target.first_message_id}"]
        body = text.replace("\n", "\r\n")
        if i % 10 == 3:
            boundary = f"=_bench_{tag}_{i}"
            data = base64.encodebytes(rng.randbytes(ATTACHMENT_BYTES)).decode("ascii").replace("\n", "\r\n")
            headers.append(f'Content-Type: multipart/mixed; boundary="{boundary}"')
            body = (
                f"--{boundary}\r\nContent-Type: text/plain; charset=us-ascii\r\nContent-Transfer-Encoding: 7bit\r\n"
                f'\r\n{body}\r\n--{boundary}\r\nContent-Type: application/pdf; name="report-{i}.pdf"\r\n'
                f'Content-Disposition: attachment; filename="report-{i}.pdf"\r\n'
                f"Content-Transfer-Encoding: base64\r\n\r\n{data}--{boundary}--\r\n"
            )
        else:
            headers += ["Content-Type: text/plain; charset=us-ascii", "Content-Transfer-Encoding: 7bit"]
        raw = ("\r\n".join(headers) + "\r\n\r\n" + body + "\r\n").encode("ascii")
        mails.append(Mail(kind, sender, raw))
    return mails


def _quoted(rng: random.Random, size: int) -> str:
    quote = _paragraphs(rng, size)
    header = "On Mon, 3 Mar 2025 at 10:00, ACME Support <support@example.com> wrote:"
    return header + "\n" + "\n".join("> " + line if line else ">" for line in quote.split("\n"))


def mix_of(mails: Sequence[Mail]) -> dict[str, Any]:
    kinds = Counter(m.kind for m in mails)
    sizes = [len(m.raw) for m in mails]
    return {
        "kinds": dict(kinds),
        "with_attachment": sum(1 for m in mails if b"multipart/mixed" in m.raw[:2000]),
        "median_bytes": int(statistics.median(sizes)),
        "mean_bytes": int(statistics.fmean(sizes)),
    }


# ------------------------------------------------------------------------------------------------- store


def iso(moment: datetime) -> str:
    """As maild.clock.to_iso writes instants."""
    return moment.astimezone(UTC).isoformat(timespec="seconds")


def prefill(db_path: Path, count: int, open_every: int, targets_wanted: int) -> tuple[list[Target], float]:
    """Bulk-insert ``count`` old tickets with their timeline, thread ids, acknowledgement and history, the
    way a store of that age looks; one in ``open_every`` is open and assigned. Returns reply targets
    (open tickets spread over the whole id range) and the seconds it took."""
    started = time.perf_counter()
    db = sqlite3.connect(db_path, isolation_level=None)
    db.execute("PRAGMA synchronous = OFF")
    db.execute("PRAGMA cache_size = -400000")
    (first,) = db.execute("SELECT coalesce(max(id), 0) + 1 FROM tickets").fetchone()
    now = datetime.now(UTC)
    oldest = now - timedelta(days=2) - timedelta(minutes=count)
    ack_body = "Subject: [ACME#{0}] We have received your request\r\n\r\n" + "x" * 300
    batch = 50_000
    open_ids: list[int] = []
    for start in range(first, first + count, batch):
        tickets, messages, thread_ids, outbox, history = [], [], [], [], []
        for tid in range(start, min(start + batch, first + count)):
            created = iso(oldest + timedelta(minutes=tid - first))
            requester = f"customer{tid}@example.net"
            agent = AGENTS[tid % 2]
            scrambled = (tid * 2654435761) % 4294967296  # real Message-IDs arrive in no particular order
            in_id, out_id, ack_id = (
                f"<{scrambled:08x}.{tid}@client.example.net>",
                f"<{scrambled:08x}.{tid}.r@example.com>",
                f"<{scrambled:08x}.{tid}.a@example.com>",
            )
            subject = f"Old request {tid}"
            is_open = tid % open_every == 0
            if is_open:
                open_ids.append(tid)
            status, resolved = ("open", (None, None, None)) if is_open else ("closed", (created, agent, "solved"))
            row = (tid, subject, status, "normal", "default", requester, agent, "en", created, created)
            tickets.append((*row, *resolved, created, created))
            messages.append((tid, "in", "public", requester, in_id, subject, "My printer is on fire. " * 6, created))
            messages.append((tid, "out", "public", agent, out_id, "Re: " + subject, "Fixed it, regards. " * 4, created))
            thread_ids += [(in_id, tid, "in"), (out_id, tid, "out"), (ack_id, tid, "out")]
            outbox.append(
                (
                    tid,
                    "customer.ack",
                    ack_id,
                    SUPPORT,
                    json.dumps([requester]),
                    ack_body.format(tid).encode(),
                    "sent",
                    1,
                    created,
                    created,
                    created,
                )
            )
            history.append((tid, created, requester, "status", None, "new", "mail"))
        db.execute("BEGIN")
        db.executemany(
            "INSERT INTO tickets (id, subject, status, priority, queue, requester, assignee, language, created_at,"
            " updated_at, resolved_at, resolved_by, resolution_method, clock_since, first_responded_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            tickets,
        )
        db.executemany(
            "INSERT INTO messages (ticket_id, direction, visibility, author, message_id, subject, text, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            messages,
        )
        db.executemany("INSERT INTO thread_ids (message_id, ticket_id, direction) VALUES (?, ?, ?)", thread_ids)
        db.executemany(
            "INSERT INTO outbox (ticket_id, kind, message_id, mail_from, rcpt_to, raw, state, attempts,"
            " next_attempt_at, created_at, sent_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            outbox,
        )
        db.executemany(
            "INSERT INTO history (ticket_id, at, actor, field, old, new, cause) VALUES (?, ?, ?, ?, ?, ?, ?)",
            history,
        )
        db.execute("COMMIT")
    db.execute("ANALYZE")
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    rng = random.Random(8)
    chosen = sorted(rng.sample(open_ids, min(targets_wanted, len(open_ids))))
    targets = []
    for tid in chosen:
        scrambled = (tid * 2654435761) % 4294967296
        targets.append(
            Target(tid, f"customer{tid}@example.net", AGENTS[tid % 2], f"<{scrambled:08x}.{tid}@client.example.net>")
        )
    return targets, time.perf_counter() - started


# --------------------------------------------------------------------------------------------- processes

CHILDREN: list[subprocess.Popen[bytes]] = []


def kill_children() -> None:
    """Stop every subprocess this run started (SIGTERM, then SIGKILL); safe to call twice."""
    for proc in CHILDREN:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.terminate()
    deadline = time.monotonic() + 15
    for proc in CHILDREN:
        if proc.poll() is None:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                proc.wait(timeout=5)


def spawn(argv: list[str], log_path: Path, cwd: Path) -> subprocess.Popen[bytes]:
    with log_path.open("ab") as log:
        proc = subprocess.Popen(
            argv, stdout=log, stderr=subprocess.STDOUT, cwd=cwd, start_new_session=True, stdin=subprocess.DEVNULL
        )
    CHILDREN.append(proc)
    return proc


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def wait_listening(proc: subprocess.Popen[bytes], port: int, log_path: Path, timeout: float = 30.0) -> None:
    """Until the server greets with 220 on ``port``; raise with its log if it died or never did."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited {proc.returncode} at start:\n{tail(log_path)}")
        try:
            with socket.create_connection((HOST, port), timeout=2) as sock:
                if sock.recv(512).startswith(b"220"):
                    sock.sendall(b"QUIT\r\n")
                    return
        except OSError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"server did not listen on {port} within {timeout}s:\n{tail(log_path)}")


def tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def stop_process(proc: subprocess.Popen[bytes], timeout: float = 60.0) -> int:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
    return int(proc.returncode)


def proc_status(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (peak RSS) in kB from /proc."""
    values = {}
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                values[key] = int(rest.split()[0])
    return values


def proc_cpu(pid: int) -> float:
    """User + system CPU seconds of a process."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return math.nan
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Server:
    """A server subprocess the load is sent to: the ceiling or maild."""

    def __init__(self, name: str, proc: subprocess.Popen[bytes], port: int, log_path: Path) -> None:
        self.name = name
        self.proc = proc
        self.port = port
        self.log_path = log_path
        self.profiler: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        return self.proc.pid

    def cpu(self) -> float:
        return proc_cpu(self.pid)

    def memory_mb(self) -> dict[str, float]:
        status = proc_status(self.pid)
        return {"rss_mb": status.get("VmRSS", 0) / 1024, "peak_rss_mb": status.get("VmHWM", 0) / 1024}

    def stop(self) -> int:
        code = stop_process(self.proc)
        if self.profiler is not None:
            stop_process(self.profiler, timeout=30)
        return code


def start_ceiling(workdir: Path) -> Server:
    log_path = workdir / "ceiling.log"
    port = free_port()
    proc = spawn([sys.executable, str(Path(__file__).resolve()), "--ceiling-server", str(port)], log_path, workdir)
    wait_listening(proc, port, log_path)
    return Server("ceiling", proc, port, log_path)


def start_intake(data_dir: Path, settings: Settings) -> Server:
    config, port = write_config(data_dir, settings)
    log_path = data_dir.parent / f"{data_dir.name}.log"
    proc = spawn([sys.executable, str(Path(__file__).resolve()), "--intake-server", str(config)], log_path, REPO)
    wait_listening(proc, port, log_path)
    return Server("intake", proc, port, log_path)


def write_config(data_dir: Path, settings: Settings) -> tuple[Path, int]:
    port = free_port()
    if settings.outbound == "file":
        outbound = OUTBOUND_FILE.format(directory=data_dir / "sent")
    else:
        outbound = OUTBOUND_REFUSED.format(port=free_port())  # nothing listens there: refused at once
    path = data_dir.parent / f"{data_dir.name}.toml"
    path.write_text(
        CONFIG.format(data_dir=data_dir, log_level=settings.log_level, port=port, outbound=outbound.strip())
    )
    return path, port


def start_maild(name: str, data_dir: Path, settings: Settings, profile_to: Path | None = None) -> Server:
    config, port = write_config(data_dir, settings)
    log_path = data_dir.parent / f"{data_dir.name}.log"
    proc = spawn([sys.executable, "-m", "maild", "serve", "--config", str(config)], log_path, REPO)
    wait_listening(proc, port, log_path)
    server = Server(name, proc, port, log_path)
    if profile_to is not None:
        py_spy = Path(sys.executable).parent / "py-spy"
        if py_spy.exists():
            server.profiler = spawn(
                [
                    str(py_spy),
                    "record",
                    "--pid",
                    str(proc.pid),
                    "--rate",
                    "200",
                    "--format",
                    "raw",
                    "--output",
                    str(profile_to),
                    "--nonblocking",
                ],
                data_dir.parent / f"{data_dir.name}.py-spy.log",
                REPO,
            )
        else:
            print(f"  (no py-spy in {py_spy.parent}: `pip install py-spy` to profile)", flush=True)
    return server


def create_store(workdir: Path, name: str, settings: Settings) -> Path:
    """A data folder whose database maild itself created and migrated (started once, then stopped)."""
    data_dir = workdir / name
    data_dir.mkdir()
    server = start_maild(f"{name}-migrate", data_dir, settings)
    code = server.stop()
    if code != 0:
        raise RuntimeError(f"maild exited {code} after the migration run:\n{tail(server.log_path)}")
    return data_dir


def copy_store(template: Path, workdir: Path, name: str) -> Path:
    data_dir = workdir / name
    data_dir.mkdir()
    for item in template.iterdir():
        if item.is_file() and item.name.startswith("maild.sqlite3"):
            shutil.copyfile(item, data_dir / item.name)
    # Written out now: else the kernel's writeback of the copy (1.8 GB for the large store) runs during the
    # measurement and slows every fsync of maild's, a cost no production store has.
    os.sync()
    return data_dir


class Spool:
    """Reads the daemon's spool states through a read-only connection."""

    def __init__(self, data_dir: Path) -> None:
        self.db = sqlite3.connect(f"file:{data_dir / 'maild.sqlite3'}?mode=ro", uri=True, timeout=30)

    def pending(self) -> int:
        (count,) = self.db.execute("SELECT count(*) FROM inbound WHERE state = 'pending'").fetchone()
        return int(count)

    def states(self) -> dict[str, int]:
        return {str(k): int(v) for k, v in self.db.execute("SELECT state, count(*) FROM inbound GROUP BY state")}

    def outbox(self) -> int:
        (count,) = self.db.execute("SELECT count(*) FROM outbox").fetchone()
        return int(count)

    def first_shunt(self) -> str | None:
        row = self.db.execute("SELECT step, error FROM inbound WHERE state = 'shunted' LIMIT 1").fetchone()
        return f"{row[0]}: {row[1]}" if row else None

    def close(self) -> None:
        self.db.close()


# -------------------------------------------------------------------------------------------------- load


@dataclass
class Load:
    """What one client run achieved."""

    mode: str
    offered: int
    ok: int = 0
    failed: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    started: float = 0.0  # perf_counter of the first send
    finished: float = 0.0  # perf_counter of the last answer
    latencies: list[float] = field(default_factory=list)  # MAIL .. end of DATA (or connect .. QUIT)
    queued_latencies: list[float] = field(default_factory=list)  # from the scheduled send (open loop)
    client_cpu: float = 0.0
    timed_out: bool = False

    @property
    def seconds(self) -> float:
        return max(1e-9, self.finished - self.started)

    @property
    def rate(self) -> float:
        return self.ok / self.seconds


async def run_load(
    port: int,
    mails: Sequence[Mail],
    clients: int,
    mode: str,
    max_seconds: float,
    on_answer: Callable[[int], None] | None = None,
) -> Load:
    """Send every mail as fast as ``clients`` sessions allow: ``persistent`` sessions kept open (one EHLO,
    then MAIL/RCPT/DATA per mail) or a ``connection`` per mail (connect, EHLO, ..., QUIT)."""
    import aiosmtplib

    load = Load(mode, len(mails))
    indexes: Iterator[int] = iter(range(len(mails)))

    def answered(ok: bool, error: str = "") -> None:
        load.finished = time.perf_counter()
        if ok:
            load.ok += 1
            if on_answer is not None:
                on_answer(load.ok)
        else:
            load.failed += 1
            load.errors[error[:120]] += 1

    async def persistent() -> None:
        client: aiosmtplib.SMTP | None = None
        failures = 0
        for i in indexes:
            mail = mails[i]
            try:
                if client is None:
                    client = aiosmtplib.SMTP(hostname=HOST, port=port, timeout=60)
                    await client.connect()
                began = time.perf_counter()
                await client.sendmail(mail.mail_from, [SUPPORT], mail.raw)
                load.latencies.append(time.perf_counter() - began)
                answered(True)
                failures = 0
            except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
                answered(False, f"{type(exc).__name__}: {exc}")
                if client is not None:
                    client.close()
                client = None
                failures += 1
                if failures >= 5:
                    return  # this session gives up; the others carry on
        if client is not None:
            with contextlib.suppress(aiosmtplib.SMTPException, OSError, TimeoutError):
                await client.quit()

    async def per_connection() -> None:
        for i in indexes:
            mail = mails[i]
            began = time.perf_counter()
            try:
                await aiosmtplib.send(
                    mail.raw, sender=mail.mail_from, recipients=[SUPPORT], hostname=HOST, port=port, timeout=60
                )
            except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
                answered(False, f"{type(exc).__name__}: {exc}")
                continue
            load.latencies.append(time.perf_counter() - began)
            answered(True)

    worker = persistent if mode == "persistent" else per_connection
    cpu = time.process_time()
    load.started = time.perf_counter()
    tasks = [asyncio.create_task(worker()) for _ in range(clients)]
    done, pending = await asyncio.wait(tasks, timeout=max_seconds)
    for task in pending:
        task.cancel()
    if pending:
        load.timed_out = True
        await asyncio.gather(*pending, return_exceptions=True)
    for task in done:
        if task.exception() is not None:
            raise task.exception()  # type: ignore[misc]
    load.client_cpu = time.process_time() - cpu
    return load


async def run_paced(port: int, mails: Sequence[Mail], clients: int, rate: float, max_seconds: float) -> Load:
    """Open loop: mail i is due at start + i/rate whatever happened before; it takes a free session from a
    pool of ``clients`` persistent ones. The transaction latency is MAIL .. end of DATA; the queued latency
    counts from the scheduled instant, so a stalled server shows there (no coordinated omission)."""
    import aiosmtplib

    load = Load("open-loop", len(mails))
    pool: asyncio.Queue[aiosmtplib.SMTP] = asyncio.Queue()
    for _ in range(clients):
        client = aiosmtplib.SMTP(hostname=HOST, port=port, timeout=60)
        await client.connect()
        pool.put_nowait(client)

    async def one(mail: Mail, due: float) -> None:
        client = await pool.get()
        began = time.perf_counter()
        try:
            await client.sendmail(mail.mail_from, [SUPPORT], mail.raw)
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            load.failed += 1
            load.errors[f"{type(exc).__name__}: {exc}"[:120]] += 1
            client.close()
            client = aiosmtplib.SMTP(hostname=HOST, port=port, timeout=60)
            with contextlib.suppress(aiosmtplib.SMTPException, OSError, TimeoutError):
                await client.connect()
        else:
            end = time.perf_counter()
            load.latencies.append(end - began)
            load.queued_latencies.append(end - due)
            load.ok += 1
            load.finished = end
        pool.put_nowait(client)

    cpu = time.process_time()
    start = time.perf_counter() + 0.05
    load.started = start
    tasks = []
    for i, mail in enumerate(mails):
        due = start + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(mail, due)))
    _, pending = await asyncio.wait(tasks, timeout=max_seconds)
    for task in pending:
        task.cancel()
    load.timed_out = bool(pending)
    await asyncio.gather(*pending, return_exceptions=True)
    while not pool.empty():
        client = pool.get_nowait()
        with contextlib.suppress(aiosmtplib.SMTPException, OSError, TimeoutError):
            await client.quit()
    load.client_cpu = time.process_time() - cpu
    return load


def percentile(values: Sequence[float], q: float) -> float:
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q / 100 * len(ordered)) - 1))]


# ------------------------------------------------------------------------------------------------ phases


@dataclass
class Row:
    """One line of the table."""

    scenario: str
    store: str
    mode: str
    mails: int
    ok: int = 0
    failed: int = 0
    durable_per_s: float | None = None
    processed_per_s: float | None = None
    processed_partial: bool = False
    server_cpu_ms_per_mail: float | None = None
    client_cpu_share: float | None = None
    offered_per_s: float | None = None
    p50_ms: float | None = None
    p99_ms: float | None = None
    p99_queued_ms: float | None = None
    rss_mb: float | None = None
    peak_rss_mb: float | None = None
    outbox_rows: int | None = None
    shunted: int = 0
    note: str = ""
    rss_marks: dict[str, float] = field(default_factory=dict)  # --long: RSS MB at 10/50/100% answered, processed


def wait_drained(spool: Spool, expected_total: int, deadline: float) -> tuple[float, int]:
    """Poll the spool until everything spooled is processed; (perf_counter then, still pending)."""
    while True:
        states = spool.states()
        pending = states.get("pending", 0)
        if pending == 0 and sum(states.values()) >= expected_total:
            return time.perf_counter(), 0
        if time.perf_counter() > deadline:
            return time.perf_counter(), pending
        time.sleep(0.02)


def saturation_row(
    server: Server,
    load: Load,
    store: str,
    cpu_before: float,
    spool: Spool | None = None,
    expected_total: int = 0,
    drain_timeout: float = 0.0,
) -> Row:
    row = Row(server.name, store, load.mode, load.offered, load.ok, load.failed, durable_per_s=load.rate)
    row.client_cpu_share = load.client_cpu / load.seconds
    row.p50_ms = percentile(load.latencies, 50) * 1000
    row.p99_ms = percentile(load.latencies, 99) * 1000
    if load.timed_out:
        row.note = "load timed out; "
    if load.errors:
        row.note += "errors: " + "; ".join(f"{n}x {e}" for e, n in load.errors.most_common(2)) + "; "
    if spool is None:
        row.server_cpu_ms_per_mail = (server.cpu() - cpu_before) / max(1, load.ok) * 1000
        return row
    ended, pending = wait_drained(spool, expected_total, time.perf_counter() + drain_timeout)
    done = load.ok - pending
    row.processed_per_s = done / max(1e-9, ended - load.started)
    row.processed_partial = pending > 0
    if pending:
        row.note += f"drain timed out after {drain_timeout:.0f}s with {pending} pending; "
    row.server_cpu_ms_per_mail = (server.cpu() - cpu_before) / max(1, done) * 1000
    states = spool.states()
    row.shunted = states.get("shunted", 0)
    if row.shunted:
        row.note += f"{row.shunted} shunted (first: {spool.first_shunt()}); "
    row.outbox_rows = spool.outbox()
    return row


def say(text: str) -> None:
    print(text, flush=True)


class Bench:
    def __init__(self, settings: Settings, workdir: Path, stamp: str) -> None:
        self.settings = settings
        self.workdir = workdir
        self.stamp = stamp
        self.rows: list[Row] = []
        self.extra: dict[str, Any] = {}
        self.profiles: dict[str, Path] = {}

    def profile_path(self, name: str) -> Path | None:
        if not self.settings.profile:
            return None
        RESULTS.mkdir(parents=True, exist_ok=True)
        path = RESULTS / f"ingest-{self.stamp}-{name}.py-spy.txt"
        self.profiles[name] = path
        return path

    async def ceiling(self, mails: dict[str, list[Mail]]) -> None:
        for mode in ("persistent", "connection"):
            row = await self.durable_run(start_ceiling(self.workdir), "-", mode, mails[mode])
            say(f"  ceiling, {mode}: {row.durable_per_s:,.0f} mails/s")

    async def intake(self, template: Path, mails: dict[str, list[Mail]]) -> None:
        """maild's intake alone, on a fresh copy of ``template`` each time; durable only."""
        for mode in ("persistent", "connection"):
            server = start_intake(copy_store(template, self.workdir, f"intake-{mode}"), self.settings)
            row = await self.durable_run(server, "empty", mode, mails[mode])
            say(f"  intake, {mode}: {row.durable_per_s:,.0f} mails/s, {row.server_cpu_ms_per_mail:.2f} ms CPU/mail")

    async def durable_run(self, server: Server, store: str, mode: str, mails: list[Mail]) -> Row:
        """One saturation run against a server that only answers (nothing to drain); the server is stopped."""
        try:
            cpu = server.cpu()
            load = await run_load(server.port, mails, self.settings.clients, mode, max_seconds=300)
            row = saturation_row(server, load, store, cpu)
            mem = server.memory_mb()
            row.rss_mb, row.peak_rss_mb = mem["rss_mb"], mem["peak_rss_mb"]
            self.rows.append(row)
            return row
        finally:
            code = server.stop()
            if code != 0:
                say(f"  warning: the {server.name} server exited {code}; log: {server.log_path}")

    async def ceiling_latency(self, mails: list[Mail], rate: float) -> None:
        server = start_ceiling(self.workdir)
        try:
            load = await run_paced(server.port, mails, self.settings.clients, rate, max_seconds=self.latency_timeout())
            self.rows.append(latency_row(server, load, "-", rate, None))
            say(f"  ceiling, open loop at {rate:,.0f}/s: p99 {percentile(load.latencies, 99) * 1000:.1f} ms")
        finally:
            server.stop()

    def latency_timeout(self) -> float:
        return self.settings.latency_seconds * 3 + 60

    async def maild_saturation(
        self,
        store: str,
        template: Path,
        mode: str,
        mails: list[Mail],
        latency: Callable[[Row], tuple[list[Mail], float]] | None,
    ) -> Row:
        """One fresh daemon on a copy of ``template``: a saturation run, drained; then maybe an open-loop run."""
        s = self.settings
        name = f"{store}-{mode}"
        data_dir = copy_store(template, self.workdir, name)
        server = start_maild("maild", data_dir, s, self.profile_path(name))
        spool = Spool(data_dir)
        try:
            base = sum(spool.states().values())
            cpu = server.cpu()
            load = await run_load(server.port, mails, s.clients, mode, max_seconds=s.drain_timeout + 300)
            row = saturation_row(server, load, store, cpu, spool, base + load.ok, s.drain_timeout)
            mem = server.memory_mb()
            row.rss_mb, row.peak_rss_mb = mem["rss_mb"], mem["peak_rss_mb"]
            self.rows.append(row)
            say(
                f"  maild {store}, {mode}: durable {row.durable_per_s:,.0f}/s, processed {row.processed_per_s:,.0f}/s"
                f"{' (partial)' if row.processed_partial else ''}, {row.server_cpu_ms_per_mail:.2f} ms CPU/mail"
            )
            if latency is not None:
                lat_mails, rate = latency(row)
                base = sum(spool.states().values())
                cpu = server.cpu()
                load = await run_paced(server.port, lat_mails, s.clients, rate, max_seconds=self.latency_timeout())
                _, pending = wait_drained(spool, base + load.ok, time.perf_counter() + s.drain_timeout)
                lrow = latency_row(server, load, store, rate, spool)
                lrow.server_cpu_ms_per_mail = (server.cpu() - cpu) / max(1, load.ok - pending) * 1000
                if pending:
                    lrow.note += f"drain timed out with {pending} pending; "
                self.rows.append(lrow)
                say(f"  maild {store}, open loop at {rate:,.0f}/s: p50 {lrow.p50_ms:.1f} ms, p99 {lrow.p99_ms:.1f} ms")
            return row
        finally:
            spool.close()
            code = server.stop()
            if code != 0:
                say(f"  warning: maild exited {code}; log: {server.log_path}")

    async def long_run(self, template: Path, mails: list[Mail]) -> None:
        """--long: one daemon takes 100,000 mails; RSS at 10%, 50% and 100% of them, and after processing."""
        s = self.settings
        data_dir = copy_store(template, self.workdir, "long")
        server = start_maild("maild", data_dir, s)
        spool = Spool(data_dir)
        marks = {max(1, len(mails) * p // 100): p for p in (10, 50, 100)}
        samples: dict[str, float] = {}

        def on_answer(ok: int) -> None:
            if ok in marks:
                samples[f"{marks[ok]}%"] = server.memory_mb()["rss_mb"]

        try:
            base = sum(spool.states().values())
            cpu = server.cpu()
            load = await run_load(server.port, mails, s.clients, "persistent", s.drain_timeout * 10, on_answer)
            row = saturation_row(server, load, "empty", cpu, spool, base + load.ok, s.drain_timeout * 10)
            row.scenario = "maild (--long)"
            mem = server.memory_mb()
            samples["processed"] = mem["rss_mb"]
            row.rss_mb, row.peak_rss_mb = mem["rss_mb"], mem["peak_rss_mb"]
            row.note += "RSS MB: " + ", ".join(f"{k} {v:.0f}" for k, v in samples.items())
            row.rss_marks = samples
            self.rows.append(row)
            say(f"  long run: {row.note}")
        finally:
            spool.close()
            server.stop()


def latency_row(server: Server, load: Load, store: str, rate: float, spool: Spool | None) -> Row:
    row = Row(server.name, store, "open-loop", load.offered, load.ok, load.failed, offered_per_s=rate)
    row.p50_ms = percentile(load.latencies, 50) * 1000
    row.p99_ms = percentile(load.latencies, 99) * 1000
    row.p99_queued_ms = percentile(load.queued_latencies, 99) * 1000
    row.client_cpu_share = load.client_cpu / load.seconds
    mem = server.memory_mb()
    row.rss_mb, row.peak_rss_mb = mem["rss_mb"], mem["peak_rss_mb"]
    if load.timed_out:
        row.note += "timed out; "
    if load.errors:
        row.note += "errors: " + "; ".join(f"{n}x {e}" for e, n in load.errors.most_common(2)) + "; "
    if spool is not None:
        row.outbox_rows = spool.outbox()
    return row


# ------------------------------------------------------------------------------------------- query plans

PLANS: tuple[tuple[str, str, tuple[Any, ...]], ...] = (
    ("thread: Message-ID lookup", "SELECT ticket_id FROM thread_ids WHERE message_id = ?", ("<x@y>",)),
    ("loop_guard: our own Message-ID?", "SELECT direction FROM thread_ids WHERE message_id = ?", ("<x@y>",)),
    ("thread/ticket: ticket, tags, followers, links", TICKET_BY_ID, (1,)),
    (
        "acknowledge: per-sender rate limit",
        COUNT_SENT_TO_SINCE,
        ("customer.ack", "2000-01-01T00:00:00+00:00", '["a@b"]', 3),
    ),
    (
        "acknowledge: global rate limit (at most 300)",
        COUNT_SENT_SINCE,
        ("customer.ack", "2000-01-01T00:00:00+00:00", 300),
    ),
    ("notify/relay: thread_chain", THREAD_CHAIN, (1, "agent.", CHAIN_LATEST - 1)),
    (
        "cli: ticket list --requester",
        "SELECT * FROM tickets WHERE 1 = 1 AND requester = ? ORDER BY id DESC LIMIT ?",
        ("requester@b", 1000),
    ),
    (
        "cli: ticket list --assignee",
        "SELECT * FROM tickets WHERE 1 = 1 AND assignee = ? ORDER BY id DESC LIMIT ?",
        ("assignee@b", 1000),
    ),
    (
        "runner: pending spool",
        "SELECT id, length(raw) FROM inbound WHERE state = ? ORDER BY id LIMIT ?",
        ("pending", 100),
    ),
    (
        "lifecycle: cancel timers",
        "UPDATE timers SET state = ?, done_at = ? WHERE ticket_id = ? AND state = ? AND kind IN (?)",
        ("cancelled", "x", 1, "pending", "sla"),
    ),
    (
        "scheduler: due timers",
        "SELECT * FROM timers WHERE state = ? AND due_at <= ? ORDER BY due_at, id LIMIT ?",
        ("pending", "x", 100),
    ),
    (
        "outbound: claim due mail",
        "SELECT * FROM outbox WHERE state = ? AND next_attempt_at <= ?"
        " UNION ALL SELECT * FROM outbox WHERE state = ? AND lease_until <= ?"
        " ORDER BY next_attempt_at, id LIMIT ?",
        ("queued", "x", "sending", "x", 20),
    ),
    # Once a day per agent, inside one transaction: they must not read the tickets of all time.
    ("digest: an agent's open tickets (count)", COUNT_OPEN_OF_ASSIGNEE, ("assignee@b",)),
    ("digest: an agent's open tickets", OPEN_OF_ASSIGNEE_BY_URGENCY, ("assignee@b", 51)),
    ("digest: unassigned in the agent's queues (count)", COUNT_OPEN_UNASSIGNED, ('["default"]',)),
    ("digest: unassigned in the agent's queues", OPEN_UNASSIGNED_BY_URGENCY, ('["default"]', 51)),
)


def query_plans(data_dir: Path, targets: Sequence[Target]) -> list[dict[str, Any]]:
    """EXPLAIN QUERY PLAN of the per-mail lookups, and how long each takes on this store (warm cache)."""
    db = sqlite3.connect(f"file:{data_dir / 'maild.sqlite3'}?mode=ro", uri=True)
    sample = targets[: min(50, len(targets))]
    since = iso(datetime.now(UTC) - timedelta(hours=1))
    out = []
    for name, sql, params in PLANS:
        plan = [str(r[3]) for r in db.execute("EXPLAIN QUERY PLAN " + sql, params)]
        # A SCAN of a subquery, or of json_each over a parameter, reads the few rows it produced, not a table.
        scans = [
            p
            for p in plan
            if p.startswith("SCAN")
            and not any(word in p for word in ("USING", "CONSTANT ROW", "(subquery", "VIRTUAL TABLE"))
        ]
        timings = []
        if sql.startswith("SELECT"):
            for target in sample:
                actual = tuple(_bind(p, target, since) for p in params)
                began = time.perf_counter()
                db.execute(sql, actual).fetchall()
                timings.append(time.perf_counter() - began)
        out.append(
            {
                "lookup": name,
                "sql": sql,
                "plan": plan,
                "indexed": not scans,
                "median_us": statistics.median(timings) * 1e6 if timings else None,
            }
        )
    db.close()
    return out


def _bind(param: Any, target: Target, since: str) -> Any:
    """Real values for the sample parameters: an existing ticket, its Message-ID, the last hour."""
    if param == 1:
        return target.ticket_id
    if param == "<x@y>":
        return target.first_message_id
    if param == "2000-01-01T00:00:00+00:00":
        return since
    if param == '["a@b"]':
        return json.dumps([target.requester])
    if param == "x":
        return since
    if param == "requester@b":
        return target.requester
    if param == "assignee@b":
        return target.assignee
    return param


# ------------------------------------------------------------------------------------------------ profile

CATEGORIES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("logging (structlog)", ("structlog/",)),
    ("compose outbound mail (email.message)", ("maild/compose.py",)),
    ("render templates (jinja2)", ("maild/render.py",)),
    ("new text / quote stripping", ("maild/mailtext.py",)),
    ("parse (mail-parser)", ("maild/mime.py",)),
    ("automail classify", ("maild/automail.py",)),
    ("blob store (attachments)", ("maild/blobs.py",)),
    ("SQLite in aiosqlite's thread", ("aiosqlite/core.py) run",)),
    ("aiosqlite calls from the loop", ("aiosqlite/",)),
    ("SQLite statements run inline", ("maild/store/base.py",)),
    ("SMTP sessions (aiosmtpd)", ("aiosmtpd/",)),
    ("spool / pipeline glue", ("maild/spool.py", "maild/pipeline.py", "maild/handlers/", "maild/store/")),
    ("asyncio event loop", ("asyncio/",)),
)


def summarize_profile(path: Path) -> dict[str, Any]:
    """py-spy's raw (collapsed) stacks → share of samples per part of maild, and the hottest leaf functions."""
    totals: Counter[str] = Counter()
    leaves: Counter[str] = Counter()
    samples = 0
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return {}
    for line in lines:
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        samples += count
        # The first category found from the leaf up names the sample: the innermost known part did the work.
        frames = stack.split(";")
        category = "other"
        for frame in reversed(frames):
            hit = next((n for n, keys in CATEGORIES if any(k in frame for k in keys)), None)
            if hit:
                category = hit
                break
        totals[category] += count
        leaves[re.sub(r" \(.*?/(site-packages|lib/python3\.\d+)/", " (", frames[-1])] += count
    return {
        "samples": samples,
        "by_part": {k: round(100 * v / max(1, samples), 1) for k, v in totals.most_common()},
        "hottest": [(k, round(100 * v / max(1, samples), 1)) for k, v in leaves.most_common(12)],
    }


# ------------------------------------------------------------------------------------------------- report


def fmt(value: float | None, digits: int = 0) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:,.{digits}f}"


def find(rows: Sequence[Row], scenario: str, store: str, mode: str) -> Row | None:
    return next((r for r in rows if r.scenario == scenario and r.store == store and r.mode == mode), None)


def judge(rows: Sequence[Row], large: str) -> list[dict[str, Any]]:
    """The issue's targets: PASS or MISS, with the figures they come from."""
    ceiling = find(rows, "ceiling", "-", "persistent")
    empty = find(rows, "maild", "empty", "persistent")
    big = find(rows, "maild", large, "persistent")
    empty_lat = find(rows, "maild", "empty", "open-loop")
    big_lat = find(rows, "maild", large, "open-loop")
    verdicts: list[dict[str, Any]] = []

    def add(what: str, value: float | None, goal: str, ok: bool | None, unit: str = "") -> None:
        verdicts.append(
            {
                "target": what,
                "value": value,
                "unit": unit,
                "goal": goal,
                "result": "-" if ok is None else ("PASS" if ok else "MISS"),
            }
        )

    if ceiling and empty and ceiling.durable_per_s:
        d = (empty.durable_per_s or 0) / ceiling.durable_per_s
        p = (empty.processed_per_s or 0) / ceiling.durable_per_s
        add("durable / ceiling (persistent, empty store)", d, f">= {DURABLE_TARGET}", d >= DURABLE_TARGET, "x")
        add("processed / ceiling (persistent, empty store)", p, f">= {PROCESSED_TARGET}", p >= PROCESSED_TARGET, "x")
    for mode in ("persistent", "connection"):
        i_ceiling, alone = find(rows, "ceiling", "-", mode), find(rows, "intake", "empty", mode)
        if i_ceiling and alone and i_ceiling.durable_per_s:
            # No goal: it shows how much of the durable gap is the intake's own work, how much sharing the core.
            add(
                f"intake alone / ceiling ({mode}, empty)",
                (alone.durable_per_s or 0) / i_ceiling.durable_per_s,
                "-",
                None,
                "x",
            )
    for conn_store in ("empty", large):
        c_ceiling = find(rows, "ceiling", "-", "connection")
        c_maild = find(rows, "maild", conn_store, "connection")
        if c_ceiling and c_maild and c_ceiling.durable_per_s:
            d = (c_maild.durable_per_s or 0) / c_ceiling.durable_per_s
            p = (c_maild.processed_per_s or 0) / c_ceiling.durable_per_s
            add(
                f"durable / ceiling (connection per mail, {conn_store})",
                d,
                f">= {DURABLE_TARGET}",
                d >= DURABLE_TARGET,
                "x",
            )
            add(
                f"processed / ceiling (connection per mail, {conn_store})",
                p,
                f">= {PROCESSED_TARGET}",
                p >= PROCESSED_TARGET,
                "x",
            )
    if ceiling and big and ceiling.durable_per_s:
        d = (big.durable_per_s or 0) / ceiling.durable_per_s
        p = (big.processed_per_s or 0) / ceiling.durable_per_s
        add(f"durable / ceiling (persistent, {large})", d, f">= {DURABLE_TARGET}", d >= DURABLE_TARGET, "x")
        add(f"processed / ceiling (persistent, {large})", p, f">= {PROCESSED_TARGET}", p >= PROCESSED_TARGET, "x")
    for lat in (empty_lat, big_lat):
        if lat and lat.p99_ms is not None:
            add(
                f"p99 MAIL..DATA at {fmt(lat.offered_per_s)}/s ({lat.store})",
                lat.p99_ms,
                f"< {P99_TARGET_MS:.0f} ms",
                lat.p99_ms < P99_TARGET_MS,
                "ms",
            )
    peaks = [r.peak_rss_mb for r in rows if r.scenario.startswith("maild") and r.peak_rss_mb]
    if peaks:
        add("peak RSS of maild (any run)", max(peaks), f"< {RSS_TARGET_MB:.0f} MB", max(peaks) < RSS_TARGET_MB, "MB")
    long = find(rows, "maild (--long)", "empty", "persistent")
    if long and "10%" in long.rss_marks and "processed" in long.rss_marks:
        # No growth after warm-up: RSS once every mail is processed against RSS after the first tenth.
        growth = long.rss_marks["processed"] / long.rss_marks["10%"]
        add(
            f"RSS after {long.ok:,} mails processed / after the first 10%",
            growth,
            f"<= {1 + RSS_GROWTH_TOLERANCE:.2f}",
            growth <= 1 + RSS_GROWTH_TOLERANCE,
            "x",
        )
    if empty and big:
        for what in ("durable_per_s", "processed_per_s"):
            e, b = getattr(empty, what), getattr(big, what)
            if e and b is not None:
                ratio = b / e
                add(
                    f"{large} / empty, {what.split('_')[0]} (persistent)",
                    ratio,
                    f">= {1 - SCALE_TOLERANCE:.2f}",
                    ratio >= 1 - SCALE_TOLERANCE,
                    "x",
                )
    return verdicts


def render_table(meta: dict[str, Any], rows: Sequence[Row], verdicts: Sequence[dict[str, Any]], plans: Any) -> str:
    out = [
        f"maild ingest benchmark  {meta['when']}  {meta['mode']} mode  host {meta['host']}",
        f"{meta['cpus']} CPUs (shared with other work: figures are noisy), load average before {meta['loadavg']}, "
        f"Python {meta['python']}, {meta['clients']} client connections, outbound {meta['outbound']}",
        f"mails: {meta['mix']}",
        "",
    ]
    header = (
        f"{'scenario':<8} {'store':<15} {'mode':<10} {'mails':>7} {'durable/s':>10} {'processed/s':>12} "
        f"{'srv ms/mail':>11} {'cli CPU':>7} {'offered/s':>9} {'p50 ms':>7} {'p99 ms':>7} {'p99q ms':>7} "
        f"{'RSS MB':>7} {'peak MB':>7}  note"
    )
    out += [header, "-" * len(header)]
    for r in rows:
        processed = fmt(r.processed_per_s) + ("*" if r.processed_partial else "")
        out.append(
            f"{r.scenario:<8.15} {r.store:<15} {r.mode:<10} {r.ok:>7,} {fmt(r.durable_per_s):>10} {processed:>12} "
            f"{fmt(r.server_cpu_ms_per_mail, 2):>11} {fmt(r.client_cpu_share, 2):>7} {fmt(r.offered_per_s):>9} "
            f"{fmt(r.p50_ms, 1):>7} {fmt(r.p99_ms, 1):>7} {fmt(r.p99_queued_ms, 1):>7} {fmt(r.rss_mb):>7} "
            f"{fmt(r.peak_rss_mb):>7}  {r.note.strip('; ')}"
        )
    out += [
        "",
        "durable/s: mails answered 250 per second, first send to last answer (maild answers after the commit).",
        "processed/s: mails per second from the first send until nothing is pending in the spool (* = partial:",
        "the drain timed out; rate of what was processed). srv ms/mail: server CPU per mail (processed ones for",
        "maild). cli CPU: client process CPU / wall time (near 1.0 = the client may be the bottleneck).",
        "p50/p99: MAIL..end of DATA (connect..QUIT per mail); p99q: from the scheduled send (open loop).",
        "",
        f"{'target':<58} {'value':>10} {'goal':>10}  result",
    ]
    for v in verdicts:
        digits = 2 if v["unit"] == "x" else 1
        out.append(f"{v['target']:<58} {fmt(v['value'], digits) + ' ' + v['unit']:>10} {v['goal']:>10}  {v['result']}")
    if plans:
        out += ["", f"query plans on the {meta['large_store']} store (median time per lookup, warm cache):"]
        for p in plans:
            flag = "indexed" if p["indexed"] else "FULL SCAN"
            out.append(f"  {p['lookup']:<36} {fmt(p['median_us'], 0):>8} us  {flag:<9}  {' | '.join(p['plan'])}")
    return "\n".join(out)


# --------------------------------------------------------------------------------------------------- main


async def bench(settings: Settings, workdir: Path, stamp: str) -> dict[str, Any]:
    s = settings
    b = Bench(s, workdir, stamp)
    large = f"{s.prefill:,} tickets"
    meta: dict[str, Any] = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "mode": "quick" if s.quick else "full",
        "host": socket.gethostname(),
        "cpus": os.cpu_count(),
        "loadavg": " ".join(f"{x:.2f}" for x in os.getloadavg()),
        "python": sys.version.split()[0],
        "clients": s.clients,
        "outbound": "smtp to a closed port (retry in 1h)" if s.outbound == "refused" else "file (.eml, fsync)",
        "large_store": large,
        "settings": asdict(s),
    }

    say(f"stores: the empty one (seeded with {s.seed_tickets} open tickets for the replies) ...")
    empty_template = create_store(workdir, "template-empty", s)
    empty_targets, _ = prefill(empty_template / "maild.sqlite3", s.seed_tickets, 1, s.seed_tickets)

    say("building mails ...")
    mails = {mode: build_mails(s.mails, f"e{mode[0]}", empty_targets) for mode in ("persistent", "connection")}
    meta["mix"] = mix_of(mails["persistent"])

    say("ceiling (bare aiosmtpd answering 250) ...")
    await b.ceiling(mails)

    say("intake alone (maild's listener and spool, nothing processing) ...")
    await b.intake(empty_template, mails)

    say("maild on the empty store ...")
    latency: dict[str, Any] = {}

    def half_saturation(row: Row) -> tuple[list[Mail], float]:
        """The open-loop run offers half the rate this daemon just saturated at (built before it starts)."""
        latency["rate"] = max(1.0, (row.durable_per_s or 1.0) / 2)
        latency["count"] = max(50, int(latency["rate"] * s.latency_seconds))
        return build_mails(latency["count"], "el", empty_targets), latency["rate"]

    await b.maild_saturation("empty", empty_template, "persistent", mails["persistent"], half_saturation)
    rate, lat_count = latency["rate"], latency["count"]
    await b.maild_saturation("empty", empty_template, "connection", mails["connection"], None)
    await b.ceiling_latency(build_mails(lat_count, "cl", empty_targets), rate)

    say(f"pre-filling a store with {s.prefill:,} tickets by direct SQL ...")
    big_template = create_store(workdir, "template-large", s)
    big_targets, seconds = prefill(big_template / "maild.sqlite3", s.prefill, 10, s.seed_tickets)
    size = sum(f.stat().st_size for f in big_template.iterdir() if f.is_file())
    meta["prefill"] = {"tickets": s.prefill, "seconds": round(seconds, 1), "db_mb": round(size / 2**20)}
    say(f"  {s.prefill:,} tickets in {seconds:.1f}s, {size / 2**20:,.0f} MB")
    big_mails = {mode: build_mails(s.mails, f"l{mode[0]}", big_targets) for mode in ("persistent", "connection")}
    say(f"maild on the {large} store ...")
    big_lat_mails = build_mails(lat_count, "ll", big_targets)
    await b.maild_saturation(
        large, big_template, "persistent", big_mails["persistent"], lambda _: (big_lat_mails, rate)
    )
    await b.maild_saturation(large, big_template, "connection", big_mails["connection"], None)
    plans = query_plans(workdir / f"{large}-persistent", big_targets)

    if s.long:
        say(f"--long: {s.long_mails:,} mails through one daemon ...")
        long_mails = build_mails(s.long_mails, "long", empty_targets)
        await b.long_run(empty_template, long_mails)
        del long_mails

    verdicts = judge(b.rows, large)
    profiles = {name: summarize_profile(path) for name, path in b.profiles.items()}
    return {
        "meta": meta,
        "rows": [asdict(r) for r in b.rows],
        "targets": verdicts,
        "query_plans": plans,
        "profiles": profiles,
        **b.extra,
        "table": render_table(meta, b.rows, verdicts, plans),
    }


def ceiling_server(port: int) -> None:
    """The ceiling: aiosmtpd with a handler that answers 250 and does nothing else (same SMTP class settings
    as maild's listener)."""
    from aiosmtpd.smtp import SMTP

    class Handler:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            return "250 OK"

    class Session(SMTP):
        line_length_limit = 64 * 1024

    async def serve() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(
            lambda: Session(Handler(), decode_data=False, enable_SMTPUTF8=True, hostname="ceiling", ident="ceiling"),
            host=HOST,
            port=port,
            reuse_address=True,
        )
        stop = asyncio.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        await stop.wait()
        server.close()

    uvloop.run(serve())  # the event loop maild runs on


def intake_server(config_path: str) -> None:
    """maild's intake alone: the listener, handler and spool that `maild serve` starts, on the same store and
    config, but no runner, delivery or timers; the spool only fills."""
    from maild.config import load_config
    from maild.intake.smtp import IntakeHandler, SmtpListener
    from maild.logs import configure_logging
    from maild.metrics import Metrics
    from maild.spool import Spooler
    from maild.store import Store

    config = load_config(Path(config_path))
    configure_logging(config.log_level)

    async def serve() -> None:
        store = await Store.open(config.db_path)
        spooler = Spooler(store, metrics=Metrics())
        spooler.start()
        listener = SmtpListener(config, IntakeHandler(config, spooler))
        await listener.start()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        await stop.wait()
        await listener.stop()
        await spooler.stop()
        await store.close()

    uvloop.run(serve())


def main(argv: Sequence[str] | None = None) -> int:
    args, rest = parse_args_with_rest(argv)
    if args.ceiling_server:
        ceiling_server(int(rest[0]))
        return 0
    if args.intake_server:
        intake_server(rest[0])
        return 0
    settings = settings_from(args)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    workdir = Path(tempfile.mkdtemp(prefix="maild-bench-"))
    atexit.register(kill_children)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    started = time.monotonic()
    try:
        result = uvloop.run(bench(settings, workdir, stamp))  # a lighter client leaves more CPU to the server
    finally:
        kill_children()
        if settings.keep:
            print(f"kept {workdir}", flush=True)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    result["meta"]["wall_seconds"] = round(time.monotonic() - started, 1)
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"ingest-{stamp}.json"
    out.write_text(json.dumps(result, indent=2, default=str) + "\n")
    print()
    print(result["table"])
    for name, summary in result["profiles"].items():
        if summary:
            print(f"\npy-spy, maild {name}: {summary['samples']} samples; share by part:")
            for part, share in summary["by_part"].items():
                print(f"  {share:5.1f}%  {part}")
            print("  hottest leaf functions: " + "; ".join(f"{f} {p}%" for f, p in summary["hottest"][:8]))
    print(f"\nwritten {out.relative_to(REPO)} ({result['meta']['wall_seconds']}s)")
    return 0


def parse_args_with_rest(argv: Sequence[str] | None) -> tuple[argparse.Namespace, list[str]]:
    argv = list(sys.argv[1:] if argv is None else argv)
    for flag in ("--ceiling-server", "--intake-server"):
        if flag in argv:
            return parse_args([flag]), [a for a in argv if a != flag]
    return parse_args(argv), []


if __name__ == "__main__":
    sys.exit(main())
