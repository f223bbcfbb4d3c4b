"""Configuration: the TOML file of CONTRACT §1, validated into frozen dataclasses.

Every problem is reported as one line naming the dotted key (``intake.smtp.port: expected an integer``),
because a sysadmin reading ``maild check-config`` output should never have to read a traceback.
"""

from __future__ import annotations

import os
import ssl
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, time, timedelta
from email.utils import parseaddr
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from maild.business_hours import WEEKDAY_NAMES, WEEKDAYS, BusinessHours
from maild.durations import parse_duration
from maild.refusals import SHIPPED, read_catalog
from maild.tls import client_context

LANGUAGES = ("es", "en")
PRIORITIES = ("low", "normal", "high", "urgent")
ROLES = ("agent", "admin")
DEFAULT_QUEUE = "default"
WORKWEEK = frozenset(range(5))  # Monday to Friday
SEARCH_PATHS = (Path("config/maild.toml"), Path("/etc/maild/maild.toml"))


class ConfigError(Exception):
    """The configuration is unusable; ``problems`` holds one line per key at fault."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


class ConfigFileError(ConfigError):
    """No config file could be read at all; its one problem already names the file, or the places tried."""


@dataclass(frozen=True)
class SmtpIntake:
    enabled: bool
    host: str
    port: int
    lmtp: bool
    max_message_bytes: int
    max_recipients: int
    max_connections: int
    tls_cert: Path | None
    tls_key: Path | None


@dataclass(frozen=True)
class ImapIntake:
    enabled: bool
    host: str
    port: int
    tls: str
    ca_file: Path | None
    username: str
    password_file: Path | None
    mailbox: str
    processed_mailbox: str
    idle: bool
    poll_interval: timedelta


@dataclass(frozen=True)
class Outbound:
    transport: str
    host: str
    port: int
    tls: str
    directory: Path
    timeout: timedelta
    retry_base: timedelta
    retry_max: timedelta
    give_up_after: timedelta
    ca_file: Path | None = None  # also trusted, beside the system's CAs
    username: str = ""  # logs in (AUTH) when set
    password_file: Path | None = None


@dataclass(frozen=True)
class Lifecycle:
    feedback_window: timedelta
    close_if_no_response: timedelta


@dataclass(frozen=True)
class Sla:
    first_response: timedelta
    resolution: timedelta
    warn_before: timedelta | None = None  # the agents are warned this long before a due date; None: never


@dataclass(frozen=True)
class Security:
    agent_auth: str
    trusted_authserv_id: str
    # "topmost": that header alone; "all": every header of trusted_authserv_id (the MTA strips outside ones).
    authres_headers: str
    # Acknowledgements per sender and in all within a window: stops ping-pong with broken autoresponders.
    acks_per_sender: int
    acks_global: int
    ack_window: timedelta
    # Addresses and "@domain"s whose mail is stored and dropped unanswered; `#block` adds to the store's list.
    blocked_senders: frozenset[str] = frozenset()
    # A loop no header gives away: past this many mails from one sender on one ticket within the window,
    # the next is machine mail (`handlers/thread.py`).
    loop_mails: int = 10
    loop_window: timedelta = timedelta(minutes=10)

    def blocks(self, address: str) -> bool:
        return address in self.blocked_senders or "@" + address.rpartition("@")[2] in self.blocked_senders


@dataclass(frozen=True)
class Digest:
    """`[digest]`: each agent's daily mail of their open tickets (`maild.digest`)."""

    at: time  # in the desk's time zone
    days: frozenset[int]  # date.weekday(): Monday is 0
    skipped: frozenset[date]  # the business holidays
    zone: ZoneInfo


@dataclass(frozen=True)
class Agent:
    email: str
    name: str
    role: str


@dataclass(frozen=True)
class Queue:
    name: str
    address: str | None
    agents: tuple[str, ...]
    send_from: bool = False  # customers' mail of its tickets goes out From its address (RT's CorrespondAddress)
    from_name: str | None = None  # the display name of that From; else [mail] from_name


@dataclass(frozen=True)
class Config:
    path: Path | None
    data_dir: Path
    language: str
    timezone: str
    log_level: str
    templates_dir: Path | None
    support_address: str
    from_name: str
    ticket_prefix: str
    smtp: SmtpIntake
    imap: ImapIntake
    outbound: Outbound
    lifecycle: Lifecycle
    sla: Mapping[str, Sla]
    security: Security
    agents: tuple[Agent, ...]
    queues: tuple[Queue, ...]
    metrics_listen: str | None
    business_hours: BusinessHours | None = None  # None: the SLA clock counts every hour
    digest: Digest | None = None  # None: no digests
    retention: timedelta | None = None  # `[retention] erase_closed_after`; None: closed tickets are kept
    _agents_by_email: dict[str, Agent] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Built here, never passed in, so dataclasses.replace() gets an index of its own agents.
        object.__setattr__(self, "_agents_by_email", {agent.email.lower(): agent for agent in self.agents})

    @property
    def db_path(self) -> Path:
        return self.data_dir / "maild.sqlite3"

    @property
    def blob_dir(self) -> Path:
        return self.data_dir / "blobs"

    def agent(self, address: str) -> Agent | None:
        """The configured agent with this address (case-insensitive), if any."""
        return self._agents_by_email.get(address.lower())

    def queue_for(self, recipients: list[str]) -> str:
        """The queue a mail lands in: the first queue address among its recipients, else the default."""
        by_address = {q.address: q.name for q in self.queues if q.address}
        for rcpt in recipients:
            for address in (rcpt.lower(), base_address(rcpt.lower())):  # billing+urgent@ is billing's
                if address in by_address:
                    return by_address[address]
        return DEFAULT_QUEUE

    def agents_named(self, name: str) -> list[Agent]:
        """The agents whose name is ``name``, ignoring case (``#assign Ana``, ``--assignee ana``)."""
        return [a for a in self.agents if a.name.casefold() == name.casefold()]

    def ticket_agents(self, assignee: str | None, queue: str) -> list[Agent]:
        """Who hears about a ticket: its assignee when that is an agent, else the agents of its queue."""
        if assignee and (agent := self.agent(assignee)):
            return [agent]
        return self.queue_agents(queue)

    def queue_agents(self, queue: str) -> list[Agent]:
        """Agents who handle a queue: those listed for it, or every agent when none are listed."""
        listed = next((q.agents for q in self.queues if q.name == queue and q.agents), None)
        if listed is None:
            return list(self.agents)
        return [a for a in self.agents if a.email in listed]

    def queue_senders(self) -> dict[str, tuple[str, str]]:
        """(display name, address) of the From of customers' mail, for the queues that send as themselves."""
        return {q.name: (q.from_name or self.from_name, q.address) for q in self.queues if q.send_from and q.address}

    @property
    def own_addresses(self) -> frozenset[str]:
        """Addresses that are maild itself: never requesters, followers or recipients of relays."""
        return frozenset([self.support_address] + [q.address for q in self.queues if q.address])

    def is_own(self, address: str) -> bool:
        """One of maild's addresses, a ``+tag`` on it included (MTAs deliver support+x to support)."""
        return address in self.own_addresses or base_address(address) in self.own_addresses

    def is_desk(self, address: str) -> bool:
        """maild's own address or an agent's: never a customer to relay to, block, forward to or erase."""
        return self.is_own(address) or self.agent(address) is not None


def base_address(address: str) -> str:
    """An address without its ``+tag`` (an RFC 5233 subaddress): MTAs deliver support+urgent@ to support@."""
    local, at, domain = address.rpartition("@")
    return f"{local.partition('+')[0]}@{domain}" if at else address


# --- loading ------------------------------------------------------------------------------------------

Check = Callable[[Any], Any]


def find_config_path(explicit: str | None) -> Path:
    """The config file by CONTRACT §1: --config, else $MAILD_CONFIG, else ./config/maild.toml, else /etc.

    An empty --config is an error, not "no --config": a script's unset ``--config "$CFG"`` must not quietly
    work on another desk's store. An empty $MAILD_CONFIG is unset, as shells treat it.
    """
    if explicit is not None:
        if not explicit.strip():
            raise ConfigFileError(["--config: an empty path (leave the option out to search the usual places)"])
        return Path(explicit)
    if os.environ.get("MAILD_CONFIG"):
        return Path(os.environ["MAILD_CONFIG"])
    for candidate in SEARCH_PATHS:
        if candidate.exists():
            return candidate
    searched = ", ".join(f"no {_shown(candidate)}" for candidate in SEARCH_PATHS)
    raise ConfigFileError([f"no config file found: no --config, $MAILD_CONFIG unset, {searched}"])


def _shown(path: Path) -> str:
    """A search path as the README writes it: ./config/maild.toml, /etc/maild/maild.toml."""
    return str(path) if path.is_absolute() else f"./{path}"


def load_config(path: Path) -> Config:
    """Read and validate the file; raise ConfigError listing every problem found."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigFileError([f"{path}: no such config file"]) from None
    except OSError as exc:
        raise ConfigFileError([f"{path}: cannot read: {exc.strerror}"]) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigFileError([f"{path}: not valid TOML: {exc}"]) from None
    except UnicodeDecodeError:
        raise ConfigFileError([f"{path}: not UTF-8 text"]) from None
    return parse_config(raw, path.resolve().parent, path)


def parse_config(raw: dict[str, Any], base_dir: Path, path: Path | None = None) -> Config:
    """Validate a decoded TOML document; relative paths resolve against ``base_dir``."""
    reader = _Reader(base_dir)
    config = reader.build(raw, path)
    if reader.problems:
        raise ConfigError(reader.problems)
    assert config is not None
    return config


class _Reader:
    """Walks the document once, collecting problems instead of stopping at the first."""

    def __init__(self, base_dir: Path) -> None:
        self.base_dir = base_dir
        self.problems: list[str] = []

    def section(self, raw: Mapping[str, Any], key: str, known: set[str]) -> Mapping[str, Any]:
        value = raw.get(key.rsplit(".", 1)[-1], {})
        if not isinstance(value, dict):
            self.problems.append(f"{key}: expected a table")
            return {}
        for unknown in sorted(set(value) - known):
            self.problems.append(f"{key}.{unknown}: unknown key")
        return value

    def get(self, table: Mapping[str, Any], prefix: str, key: str, check: Check, default: Any) -> Any:
        if key not in table:
            return default
        try:
            return check(table[key])
        except (TypeError, ValueError) as exc:
            self.problems.append(f"{prefix}.{key}: {exc}")
            return default

    def path(self, value: Any) -> Path:
        path = Path(_string(value)).expanduser()
        return path if path.is_absolute() else (self.base_dir / path).resolve()

    def ca_file(self, value: Any) -> Path:
        """A PEM file of certificates to trust, loaded now so that `check-config` tells what is wrong with it."""
        path = self.path(value)
        try:
            client_context(path)
        except ssl.SSLError as exc:  # an OSError too: first
            raise ValueError(f"no PEM certificates in {path} ({exc.reason or exc})") from None
        except OSError as exc:
            raise ValueError(f"cannot read {path}: {exc.strerror}") from None
        return path

    def build(self, raw: dict[str, Any], path: Path | None) -> Config | None:
        top_known = {
            "metrics",
            "maild",
            "mail",
            "intake",
            "outbound",
            "lifecycle",
            "sla",
            "business_hours",
            "digest",
            "retention",
            "security",
            "agents",
            "queues",
        }
        for unknown in sorted(set(raw) - top_known):
            self.problems.append(f"{unknown}: unknown key")

        m = self.section(raw, "maild", {"data_dir", "language", "timezone", "log_level", "templates_dir"})
        data_dir = self.get(m, "maild", "data_dir", self.path, Path("/var/lib/maild"))
        language = self.get(m, "maild", "language", _choice(LANGUAGES), "en")
        timezone = self.get(m, "maild", "timezone", _timezone, "UTC")
        log_level = self.get(m, "maild", "log_level", _choice(("debug", "info", "warning", "error")), "info")

        mail = self.section(raw, "mail", {"support_address", "from_name", "ticket_prefix"})
        if "support_address" not in mail:
            self.problems.append("mail.support_address: required (the address customers write to)")
        support = self.get(mail, "mail", "support_address", _address, "support@localhost")
        from_name = self.get(mail, "mail", "from_name", _string, "Support")
        prefix = self.get(mail, "mail", "ticket_prefix", _token_prefix, "TICKET")

        intake = self.section(raw, "intake", {"smtp", "imap"})
        s = self.section(
            intake,
            "intake.smtp",
            {
                "enabled",
                "host",
                "port",
                "lmtp",
                "max_message_bytes",
                "max_recipients",
                "max_connections",
                "tls_cert",
                "tls_key",
            },
        )
        smtp = SmtpIntake(
            enabled=self.get(s, "intake.smtp", "enabled", _bool, True),
            host=self.get(s, "intake.smtp", "host", _host, "127.0.0.1"),
            port=self.get(s, "intake.smtp", "port", _port, 2525),
            lmtp=self.get(s, "intake.smtp", "lmtp", _bool, False),
            max_message_bytes=self.get(s, "intake.smtp", "max_message_bytes", _positive_int, 26214400),
            max_recipients=self.get(s, "intake.smtp", "max_recipients", _positive_int, 100),
            max_connections=self.get(s, "intake.smtp", "max_connections", _positive_int, 100),
            tls_cert=self.get(s, "intake.smtp", "tls_cert", self.path, None),
            tls_key=self.get(s, "intake.smtp", "tls_key", self.path, None),
        )
        if (smtp.tls_cert is None) != (smtp.tls_key is None):
            self.problems.append("intake.smtp.tls_key: tls_cert and tls_key go together (STARTTLS needs both)")
        i = self.section(
            intake,
            "intake.imap",
            {
                "enabled",
                "host",
                "port",
                "tls",
                "ca_file",
                "username",
                "password_file",
                "mailbox",
                "processed_mailbox",
                "idle",
                "poll_interval",
            },
        )
        imap = ImapIntake(
            enabled=self.get(i, "intake.imap", "enabled", _bool, False),
            host=self.get(i, "intake.imap", "host", _string, "127.0.0.1"),
            port=self.get(i, "intake.imap", "port", _port, 993),
            tls=self.get(i, "intake.imap", "tls", _choice(("implicit", "starttls", "none")), "implicit"),
            ca_file=self.get(i, "intake.imap", "ca_file", self.ca_file, None),
            username=self.get(i, "intake.imap", "username", _string, ""),
            password_file=self.get(i, "intake.imap", "password_file", self.path, None),
            mailbox=self.get(i, "intake.imap", "mailbox", _string, "INBOX"),
            processed_mailbox=self.get(i, "intake.imap", "processed_mailbox", _string, "maild/processed"),
            idle=self.get(i, "intake.imap", "idle", _bool, True),
            poll_interval=self.get(i, "intake.imap", "poll_interval", _period, timedelta(seconds=60)),
        )
        self.imap_checks(imap, "password_file" in i)

        o = self.section(
            raw,
            "outbound",
            {
                "transport",
                "host",
                "port",
                "tls",
                "ca_file",
                "username",
                "password_file",
                "directory",
                "timeout",
                "retry_base",
                "retry_max",
                "give_up_after",
            },
        )
        outbound = Outbound(
            transport=self.get(o, "outbound", "transport", _choice(("smtp", "file")), "smtp"),
            host=self.get(o, "outbound", "host", _host, "127.0.0.1"),
            port=self.get(o, "outbound", "port", _port, 25),
            tls=self.get(o, "outbound", "tls", _choice(("none", "starttls", "implicit")), "none"),
            ca_file=self.get(o, "outbound", "ca_file", self.ca_file, None),
            username=self.get(o, "outbound", "username", _string, ""),
            password_file=self.get(o, "outbound", "password_file", self.path, None),
            directory=self.get(o, "outbound", "directory", self.path, data_dir / "sent"),
            timeout=self.get(o, "outbound", "timeout", _period, timedelta(seconds=60)),
            retry_base=self.get(o, "outbound", "retry_base", _period, timedelta(minutes=1)),
            retry_max=self.get(o, "outbound", "retry_max", _period, timedelta(hours=1)),
            give_up_after=self.get(o, "outbound", "give_up_after", _period, timedelta(days=5)),
        )
        self.outbound_checks(outbound, "password_file" in o)
        if outbound.retry_max < outbound.retry_base:
            self.problems.append("outbound.retry_max: less than outbound.retry_base, the first wait")

        lc = self.section(raw, "lifecycle", {"feedback_window", "close_if_no_response"})
        lifecycle = Lifecycle(
            feedback_window=self.get(lc, "lifecycle", "feedback_window", _duration, timedelta(hours=72)),
            close_if_no_response=self.get(lc, "lifecycle", "close_if_no_response", _period, timedelta(days=7)),
        )

        sla_raw = self.section(raw, "sla", set(PRIORITIES))
        sla: dict[str, Sla] = {}
        for priority in PRIORITIES:
            table = self.section(sla_raw, f"sla.{priority}", {"first_response", "resolution", "warn_before"})
            if table or priority in sla_raw:
                sla[priority] = Sla(
                    first_response=self.get(table, f"sla.{priority}", "first_response", _period, timedelta(hours=4)),
                    resolution=self.get(table, f"sla.{priority}", "resolution", _period, timedelta(days=2)),
                    warn_before=self.get(table, f"sla.{priority}", "warn_before", _duration, None),
                )

        bh = self.section(raw, "business_hours", {"days", "hours", "holidays"})
        business_hours = None
        if "business_hours" in raw:
            opens, closes = self.get(bh, "business_hours", "hours", _opening_hours, (time(9), time(17)))
            business_hours = BusinessHours(
                zone=ZoneInfo(timezone),
                days=self.get(bh, "business_hours", "days", _weekdays, WORKWEEK),
                opens=opens,
                closes=closes,
                holidays=self.get(bh, "business_hours", "holidays", _dates, frozenset()),
            )

        dg = self.section(raw, "digest", {"at", "days"})
        digest = None
        if "digest" in raw:
            digest = Digest(
                at=self.get(dg, "digest", "at", _clock_time, time(8)),
                days=self.get(dg, "digest", "days", _weekdays, business_hours.days if business_hours else WORKWEEK),
                skipped=business_hours.holidays if business_hours else frozenset(),
                zone=ZoneInfo(timezone),
            )

        ret = self.section(raw, "retention", {"erase_closed_after"})
        retention = self.get(ret, "retention", "erase_closed_after", _retention, None)

        sec = self.section(
            raw,
            "security",
            {
                "agent_auth",
                "trusted_authserv_id",
                "authres_headers",
                "acks_per_sender",
                "acks_global",
                "ack_window",
                "blocked_senders",
                "loop_mails",
                "loop_window",
            },
        )
        security = Security(
            agent_auth=self.get(sec, "security", "agent_auth", _choice(("from", "authentication-results")), "from"),
            trusted_authserv_id=self.get(sec, "security", "trusted_authserv_id", _string, ""),
            authres_headers=self.get(sec, "security", "authres_headers", _choice(("topmost", "all")), "topmost"),
            acks_per_sender=self.get(sec, "security", "acks_per_sender", _positive_int, 3),
            acks_global=self.get(sec, "security", "acks_global", _positive_int, 300),
            ack_window=self.get(sec, "security", "ack_window", _period, timedelta(hours=1)),
            blocked_senders=self.get(sec, "security", "blocked_senders", _senders, frozenset()),
            loop_mails=self.get(sec, "security", "loop_mails", _positive_int, 10),
            loop_window=self.get(sec, "security", "loop_window", _period, timedelta(minutes=10)),
        )
        if security.agent_auth == "authentication-results" and not security.trusted_authserv_id:
            self.problems.append('security.trusted_authserv_id: required when agent_auth = "authentication-results"')

        met = self.section(raw, "metrics", {"listen"})
        metrics_listen = self.get(met, "metrics", "listen", _host_port, None)
        agents = tuple(self.agents(raw))
        queues = tuple(self.queues(raw, {a.email for a in agents}))
        self.cross_check(support, agents, queues)
        return Config(
            path=path,
            data_dir=data_dir,
            language=language,
            timezone=timezone,
            log_level=log_level,
            templates_dir=self.templates_dir(m),
            support_address=support,
            from_name=from_name,
            ticket_prefix=prefix,
            smtp=smtp,
            imap=imap,
            outbound=outbound,
            lifecycle=lifecycle,
            sla=sla,
            security=security,
            agents=agents,
            queues=queues,
            metrics_listen=metrics_listen,
            business_hours=business_hours,
            digest=digest,
            retention=retention,
        )

    def templates_dir(self, table: Mapping[str, Any]) -> Path | None:
        """The override folder; its refusals.toml entries are checked now, not when an agent errs."""
        folder: Path | None = self.get(table, "maild", "templates_dir", self.path, None)
        if folder is None:
            return None
        if not folder.is_dir():
            self.problems.append(f"maild.templates_dir: no such folder: {folder}")
            return None
        _, problems = read_catalog(folder, SHIPPED)
        self.problems += [f"maild.templates_dir: {problem}" for problem in problems]
        return folder

    def imap_checks(self, imap: ImapIntake, given: bool) -> None:
        """What an enabled IMAP intake cannot work without, told now: `serve` would retry forever. Its password
        file must be readable, and mail must leave the mailbox it is read from (or be fetched again forever)."""
        if not imap.enabled:
            return
        for key in ("host", "username", "mailbox", "processed_mailbox"):
            if getattr(imap, key) == "":
                self.problems.append(f"intake.imap.{key}: must not be empty")
        if _folder(imap.mailbox) == _folder(imap.processed_mailbox) != "":
            self.problems.append(
                f"intake.imap.processed_mailbox: must differ from mailbox ({imap.mailbox!r}): mail is moved there"
            )
        if imap.password_file is None:
            if not given:  # a wrong type is reported already
                self.problems.append("intake.imap.password_file: required when intake.imap.enabled = true")
            return
        self.secret_checks("intake.imap.password_file", imap.password_file)

    def outbound_checks(self, outbound: Outbound, given: bool) -> None:
        """Logging in to the smarthost needs both halves, and TLS: the password is never sent in clear."""
        if not outbound.username:
            if outbound.password_file is not None:
                self.problems.append("outbound.password_file: set outbound.username too (the login it is for)")
            return
        if outbound.tls == "none":
            self.problems.append(
                'outbound.username: logging in needs tls = "starttls" or "implicit" (never a password in clear)'
            )
        if outbound.password_file is None:
            if not given:
                self.problems.append("outbound.password_file: required when outbound.username is set")
            return
        self.secret_checks("outbound.password_file", outbound.password_file)

    def secret_checks(self, key: str, path: Path) -> None:
        """A password file must be readable now, and hold a password, or every session would fail later."""
        try:
            with path.open("rb") as secret:
                if not secret.read().strip(b"\r\n"):
                    self.problems.append(f"{key}: {path} is empty")
        except FileNotFoundError:
            self.problems.append(f"{key}: no such file: {path}")
        except OSError as exc:
            self.problems.append(f"{key}: cannot read {path}: {exc.strerror}")

    def array(self, raw: Mapping[str, Any], key: str) -> list[tuple[str, Mapping[str, Any]]]:
        value = raw.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            self.problems.append(f"{key}: expected an array of tables ([[{key}]])")
            return []
        return [(f"{key}[{n}]", item) for n, item in enumerate(value)]

    def agents(self, raw: Mapping[str, Any]) -> list[Agent]:
        agents = []
        for prefix, table in self.array(raw, "agents"):
            for unknown in sorted(set(table) - {"email", "name", "role"}):
                self.problems.append(f"{prefix}.{unknown}: unknown key")
            if "email" not in table:
                self.problems.append(f"{prefix}.email: required")
                continue
            email = self.get(table, prefix, "email", _address, "")
            agents.append(
                Agent(
                    email=email,
                    name=self.get(table, prefix, "name", _string, email.split("@")[0]),
                    role=self.get(table, prefix, "role", _choice(ROLES), "agent"),
                )
            )
        return agents

    def queues(self, raw: Mapping[str, Any], agent_emails: set[str]) -> list[Queue]:
        queues = []
        for prefix, table in self.array(raw, "queues"):
            for unknown in sorted(set(table) - {"name", "address", "agents", "send_from", "from_name"}):
                self.problems.append(f"{prefix}.{unknown}: unknown key")
            if "name" not in table:
                self.problems.append(f"{prefix}.name: required")
                continue
            members = tuple(self.get(table, prefix, "agents", _address_list, ()))
            for member in members:
                if member not in agent_emails:
                    self.problems.append(f"{prefix}.agents: {member} is not one of [[agents]]")
            queue = Queue(
                name=self.get(table, prefix, "name", _name, DEFAULT_QUEUE),
                address=self.get(table, prefix, "address", _address, None),
                agents=members,
                send_from=self.get(table, prefix, "send_from", _bool, False),
                from_name=self.get(table, prefix, "from_name", _string, None),
            )
            if queue.send_from and queue.address is None:
                self.problems.append(f"{prefix}.send_from: the queue has no address to send from")
            queues.append(queue)
        return queues

    def cross_check(self, support: str, agents: tuple[Agent, ...], queues: tuple[Queue, ...]) -> None:
        seen: set[str] = set()
        for n, agent in enumerate(agents):
            if agent.email == support or agent.email in {q.address for q in queues}:
                self.problems.append(f"agents[{n}].email: {agent.email} is one of maild's own addresses")
            if agent.email in seen:
                self.problems.append(f"agents[{n}].email: {agent.email} is listed twice")
            seen.add(agent.email)
        names = [q.name for q in queues]
        for n, queue in enumerate(queues):
            if names.count(queue.name) > 1 and names.index(queue.name) != n:
                self.problems.append(f"queues[{n}].name: {queue.name} is listed twice")
            if queue.address == support:
                self.problems.append(f"queues[{n}].address: is the support address itself")
            addresses = [q.address for q in queues[:n]]
            if queue.address is not None and queue.address in addresses:
                first = addresses.index(queue.address)
                self.problems.append(f"queues[{n}].address: {queue.address} is queues[{first}]'s already")


# --- value checks: each raises ValueError/TypeError with the sentence the user will read --------------


def _folder(name: str) -> str:
    """A mailbox name as IMAP compares it: INBOX in any case is INBOX (RFC 3501 5.1), the rest as written."""
    return "INBOX" if name.upper() == "INBOX" else name


def _string(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {_kind(value)}")
    return value


def _host(value: Any) -> str:
    """A name or address to listen on or connect to; "" would mean every interface to a listener."""
    host = _string(value).strip()
    if not host:
        raise ValueError("empty: name the host (0.0.0.0 or :: to listen on every address)")
    return host


def _bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"expected true or false, got {_kind(value)}")
    return value


def _positive_int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"expected an integer, got {_kind(value)}")
    if value <= 0:
        raise ValueError(f"expected a positive integer, got {value}")
    return value


def _port(value: Any) -> int:
    port = _positive_int(value)
    if port > 65535:
        raise ValueError(f"expected a port number 1-65535, got {port}")
    return port


def _host_port(value: Any) -> str:
    host, sep, port = _string(value).rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"expected host:port like 127.0.0.1:9181, got {value!r}")
    return f"{host}:{port}"


LONGEST = timedelta(days=36500)  # now plus or less a longer time is no date: every step would fail on it


def _duration(value: Any) -> timedelta:
    duration = parse_duration(_string(value))
    if duration > LONGEST:
        raise ValueError(f"at most 36500d (100 years), got {_string(value)!r}")
    return duration


def _period(value: Any) -> timedelta:
    """A timeout, interval or window: zero would mean a busy loop or nothing at all."""
    duration = _duration(value)
    if duration <= timedelta(0):
        raise ValueError(f"expected more than 0s, got {_string(value)!r}")
    return duration


def _retention(value: Any) -> timedelta:
    keep = _duration(value)
    if keep < timedelta(days=1):
        raise ValueError(f"at least 1d: closed tickets are erased for good (got {_string(value)!r})")
    return keep


def _address(value: Any) -> str:
    text = _string(value).strip()
    _, address = parseaddr(text)
    if not address or address != text or "@" not in address or address.startswith("@") or address.endswith("@"):
        raise ValueError(f"expected a bare address like support@example.com, got {text!r}")
    return address.lower()


def _address_list(value: Any) -> list[str]:
    if not isinstance(value, list):
        raise TypeError(f"expected a list of addresses, got {_kind(value)}")
    return [_address(item) for item in value]


def _senders(value: Any) -> frozenset[str]:
    """Addresses, or ``@domain`` for a whole domain."""
    if not isinstance(value, list):
        raise TypeError(f"expected a list of addresses or @domains, got {_kind(value)}")
    senders = set()
    for item in value:
        text = _string(item).strip().lower()
        if text.startswith("@") and len(text) > 1 and "@" not in text[1:] and " " not in text:
            senders.add(text)
        else:
            senders.add(_address(text))
    return frozenset(senders)


def _name(value: Any) -> str:
    text = _string(value)
    if not text or not all(c.isalnum() or c in "-_." for c in text):
        raise ValueError(f"expected a name of letters, digits, '-', '_' or '.', got {text!r}")
    return text


def _token_prefix(value: Any) -> str:
    text = _string(value)
    if not text or not all(c.isalnum() or c in "-_" for c in text):
        raise ValueError(f"expected letters, digits, '-' or '_' (the [PREFIX#123] token), got {text!r}")
    return text


def _timezone(value: Any) -> str:
    text = _string(value)
    try:
        ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {text!r} (use an IANA name like Europe/Madrid)") from None
    return text


def _weekdays(value: Any) -> frozenset[int]:
    if not isinstance(value, list) or not value:
        raise TypeError(f'expected a non-empty list of days like ["mon", "fri"], got {_kind(value)}')
    names = {**{day: day for day in WEEKDAYS}, **{name: name[:3] for name in WEEKDAY_NAMES}}
    days = [names.get(_string(day).lower()) for day in value]
    if None in days:
        raise ValueError(f"expected days among {', '.join(WEEKDAYS)}, got {value[days.index(None)]!r}")
    return frozenset(WEEKDAYS.index(day) for day in days if day)


def _clock_time(value: Any) -> time:
    """``"08:00"``: a time of day."""
    text = _string(value)
    try:
        at = time.fromisoformat(text.strip())
    except ValueError:
        at = None
    if at is None or at.tzinfo is not None:
        raise ValueError(f'expected a time of day like "08:00" (in [maild] timezone), got {text!r}')
    return at


def _opening_hours(value: Any) -> tuple[time, time | None]:
    """``"09:00-17:00"``; ``24:00`` closes at midnight (``None``)."""
    text = _string(value)
    opens, _, closes = text.partition("-")
    try:
        begin = time.fromisoformat(opens.strip())
        end = None if closes.strip() == "24:00" else time.fromisoformat(closes.strip())
    except ValueError:
        raise ValueError(f'expected opening hours like "09:00-17:00", got {text!r}') from None
    if end is not None and end <= begin:
        raise ValueError(f"the desk must close after it opens, got {text!r}")
    return begin, end


def _dates(value: Any) -> frozenset[date]:
    if not isinstance(value, list):
        raise TypeError(f"expected a list of dates like [2026-12-25], got {_kind(value)}")
    days = set()
    for item in value:
        if type(item) is date:  # TOML's local date (a date-time is a date too, and refused)
            days.add(item)
            continue
        try:
            days.add(date.fromisoformat(_string(item)))
        except (TypeError, ValueError):
            raise ValueError(f"expected dates like 2026-12-25, got {item!r}") from None
    return frozenset(days)


def _choice(options: tuple[str, ...]) -> Check:
    def check(value: Any) -> str:
        text = _string(value)
        if text not in options:
            raise ValueError(f"expected one of {', '.join(options)}, got {text!r}")
        return text

    return check


def _kind(value: Any) -> str:
    return {
        bool: "a boolean",
        int: "an integer",
        float: "a number",
        str: "a string",
        list: "an array",
        dict: "a table",
    }.get(type(value), type(value).__name__)
