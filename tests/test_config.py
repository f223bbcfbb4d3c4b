"""Unit tests of maild/config.py: defaults, the CONTRACT §1 example, paths, and one line per problem."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from maild.config import Agent, Config, ConfigError, find_config_path, load_config, parse_config
from tests.helpers import private_ca

SUPPORT = "support@example.com"

# CONTRACT §1, verbatim apart from [sla.urgent], a second agent and the billing queue's agents.
FULL_EXAMPLE = """
[maild]
data_dir = "../var"            # SQLite db, raw messages, attachments
language = "es"                # default language of notifications: "es" or "en"
timezone = "Europe/Madrid"

[mail]
support_address = "support@example.com"   # From: of everything maild sends
from_name = "ACME Support"
ticket_prefix = "ACME"                    # subject token "[ACME#123]"

[intake.smtp]                  # SMTP (and optionally LMTP) listener
enabled = true
host = "127.0.0.1"
port = 2525
lmtp = false
max_message_bytes = 26214400

[intake.imap]                  # polling a mailbox instead of, or beside, SMTP
enabled = false
host = "127.0.0.1"
port = 993
tls = "implicit"               # "implicit" | "starttls" | "none"
username = "support"
password_file = "/etc/maild/imap.secret"
mailbox = "INBOX"
processed_mailbox = "maild/processed"
idle = true
poll_interval = "60s"

[outbound]
transport = "smtp"             # "smtp" relays via a smarthost; "file" writes .eml files (demo)
host = "127.0.0.1"
port = 25
tls = "none"                   # "none" | "starttls" | "implicit"
directory = "../var/sent"      # for transport = "file"

[lifecycle]
feedback_window = "72h"        # after resolve: customer reply reopens; after it: closed
close_if_no_response = "7d"    # waiting_customer with no reply: resolved(no_response)

[sla.normal]                   # one table per priority: low, normal, high, urgent
first_response = "4h"          # due for the first agent reply
resolution = "2d"              # due for resolution; the clock pauses in waiting_customer

[sla.urgent]
first_response = "30m"
resolution = "1h30m"

[security]
agent_auth = "from"            # "from": the From: address alone (like RT's default; warned at start)
                               # "authentication-results": see below
trusted_authserv_id = "mx.example.com"   # the authserv-id of the Authentication-Results header your MTA adds

[[agents]]
email = "ana@example.com"
name = "Ana"
role = "agent"                 # "agent" | "admin"

[[agents]]
email = "Luis@Example.com"
name = "Luis"
role = "admin"

[[queues]]
name = "billing"
address = "billing@example.com"   # mail to this address lands in this queue
agents = ["luis@example.com"]
"""


def minimal(**tables: Any) -> dict[str, Any]:
    """A valid document (only the support address) with ``tables`` merged in."""
    raw: dict[str, Any] = {"mail": {"support_address": SUPPORT}}
    for name, value in tables.items():
        if isinstance(value, dict) and isinstance(raw.get(name), dict):
            raw[name] = {**raw[name], **value}
        else:
            raw[name] = value
    return raw


def problems_of(raw: dict[str, Any], base_dir: Path = Path("/srv/maild/etc")) -> list[str]:
    """The problem lines parse_config reports for ``raw`` (failing the test if it accepts it)."""
    with pytest.raises(ConfigError) as caught:
        parse_config(raw, base_dir)
    return caught.value.problems


@pytest.fixture
def full_config(tmp_path: Path) -> Config:
    """The CONTRACT §1 example loaded from a file in ``tmp_path/etc``."""
    etc = tmp_path / "etc"
    etc.mkdir()
    path = etc / "maild.toml"
    path.write_text(FULL_EXAMPLE, encoding="utf-8")
    return load_config(path)


# --- defaults and the full example ----------------------------------------------------------------------


def test_minimal_config_gets_the_defaults() -> None:
    """A config with only [mail] support_address gets the documented defaults for everything else."""
    config = parse_config(minimal(), Path("/srv/maild/etc"))
    assert config.support_address == SUPPORT
    assert config.language == "en"
    assert config.timezone == "UTC"
    assert config.log_level == "info"
    assert config.from_name == "Support"
    assert config.ticket_prefix == "TICKET"
    assert config.data_dir == Path("/var/lib/maild")
    assert config.db_path == Path("/var/lib/maild/maild.sqlite3")
    assert config.blob_dir == Path("/var/lib/maild/blobs")
    assert (config.smtp.enabled, config.smtp.host, config.smtp.port, config.smtp.lmtp) == (
        True,
        "127.0.0.1",
        2525,
        False,
    )
    assert config.smtp.max_message_bytes == 26214400
    assert config.smtp.max_recipients == 100
    assert config.imap.enabled is False
    assert (config.imap.port, config.imap.tls, config.imap.mailbox) == (993, "implicit", "INBOX")
    assert config.imap.password_file is None
    assert config.imap.poll_interval == timedelta(seconds=60)
    assert (config.outbound.transport, config.outbound.host, config.outbound.port) == ("smtp", "127.0.0.1", 25)
    assert config.outbound.tls == "none"
    assert config.outbound.directory == Path("/var/lib/maild/sent")
    assert config.lifecycle.feedback_window == timedelta(hours=72)
    assert config.lifecycle.close_if_no_response == timedelta(days=7)
    assert dict(config.sla) == {}
    assert config.security.agent_auth == "from"
    assert config.security.trusted_authserv_id == ""
    assert config.security.authres_headers == "topmost"
    assert config.agents == ()
    assert config.queues == ()
    assert config.path is None


def test_full_contract_example_loads(full_config: Config, tmp_path: Path) -> None:
    """The CONTRACT §1 example, written to a file, loads with every value as written."""
    config = full_config
    assert config.path == tmp_path / "etc" / "maild.toml"
    assert config.language == "es"
    assert config.timezone == "Europe/Madrid"
    assert (config.support_address, config.from_name, config.ticket_prefix) == (SUPPORT, "ACME Support", "ACME")
    assert config.smtp.port == 2525
    assert config.imap.username == "support"
    assert config.imap.password_file == Path("/etc/maild/imap.secret")
    assert config.imap.processed_mailbox == "maild/processed"
    assert config.imap.idle is True
    assert config.outbound.transport == "smtp"
    assert config.security.agent_auth == "from"
    assert config.security.trusted_authserv_id == "mx.example.com"


def test_full_example_durations_and_sla(full_config: Config) -> None:
    """Durations in the example become timedeltas, and each [sla.<priority>] table its own Sla."""
    assert full_config.imap.poll_interval == timedelta(seconds=60)
    assert full_config.lifecycle.feedback_window == timedelta(hours=72)
    assert full_config.lifecycle.close_if_no_response == timedelta(days=7)
    assert set(full_config.sla) == {"normal", "urgent"}
    assert full_config.sla["normal"].first_response == timedelta(hours=4)
    assert full_config.sla["normal"].resolution == timedelta(days=2)
    assert full_config.sla["urgent"].first_response == timedelta(minutes=30)
    assert full_config.sla["urgent"].resolution == timedelta(hours=1, minutes=30)


def test_full_example_agents_and_queues(full_config: Config) -> None:
    """Agents keep name and role with lower-cased addresses; queues keep address and members."""
    assert full_config.agents == (
        Agent(email="ana@example.com", name="Ana", role="agent"),
        Agent(email="luis@example.com", name="Luis", role="admin"),
    )
    assert len(full_config.queues) == 1
    billing = full_config.queues[0]
    assert (billing.name, billing.address, billing.agents) == ("billing", "billing@example.com", ("luis@example.com",))


def test_relative_paths_resolve_against_the_config_folder(tmp_path: Path) -> None:
    """data_dir, outbound.directory and intake.imap.password_file are relative to the config file's folder."""
    etc = tmp_path / "etc"
    etc.mkdir()
    path = etc / "maild.toml"
    path.write_text(
        '[maild]\ndata_dir = "../var"\n'
        '[mail]\nsupport_address = "support@example.com"\n'
        '[intake.imap]\npassword_file = "secrets/imap.secret"\n'
        '[outbound]\ntransport = "file"\ndirectory = "../var/sent"\n',
        encoding="utf-8",
    )
    config = load_config(path)
    root = tmp_path.resolve()
    assert config.data_dir == root / "var"
    assert config.outbound.directory == root / "var" / "sent"
    assert config.imap.password_file == root / "etc" / "secrets" / "imap.secret"
    assert config.db_path == root / "var" / "maild.sqlite3"


def test_outbound_directory_defaults_under_data_dir(tmp_path: Path) -> None:
    """Without outbound.directory, sent mail goes to data_dir/sent (after data_dir is resolved)."""
    config = parse_config(minimal(maild={"data_dir": "state"}), tmp_path)
    assert config.data_dir == (tmp_path / "state").resolve()
    assert config.outbound.directory == (tmp_path / "state" / "sent").resolve()


def test_absolute_paths_are_kept() -> None:
    """An absolute data_dir does not move with the config file."""
    config = parse_config(minimal(maild={"data_dir": "/srv/data"}), Path("/elsewhere"))
    assert config.data_dir == Path("/srv/data")


# --- one line per problem, naming the dotted key ----------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        pytest.param(minimal(colour="blue"), "colour", id="unknown-top-level-key"),
        pytest.param(minimal(intake={"smtp": {"prot": 25}}), "intake.smtp.prot", id="unknown-key-intake-smtp"),
        pytest.param(minimal(mail={"reply_to": "x@example.com"}), "mail.reply_to", id="unknown-key-mail"),
        pytest.param(minimal(sla={"critical": {"resolution": "1h"}}), "sla.critical", id="unknown-sla-priority"),
        pytest.param(minimal(agents=[{"email": "a@example.com", "phone": "1"}]), "agents[0].phone", id="agent-key"),
        pytest.param(minimal(intake={"smtp": {"port": "25"}}), "intake.smtp.port", id="port-as-string"),
        pytest.param(minimal(intake={"smtp": {"port": 70000}}), "intake.smtp.port", id="port-out-of-range"),
        pytest.param(minimal(intake={"smtp": {"lmtp": "yes"}}), "intake.smtp.lmtp", id="bool-as-string"),
        pytest.param(
            minimal(intake={"smtp": {"max_message_bytes": -1}}), "intake.smtp.max_message_bytes", id="negative-int"
        ),
        pytest.param(minimal(intake="smtp"), "intake", id="table-as-string"),
        pytest.param(minimal(lifecycle={"feedback_window": "soon"}), "lifecycle.feedback_window", id="bad-duration"),
        pytest.param(minimal(lifecycle={"feedback_window": 72}), "lifecycle.feedback_window", id="duration-as-int"),
        pytest.param(minimal(maild={"language": "fr"}), "maild.language", id="bad-language"),
        pytest.param(minimal(outbound={"transport": "carrier-pigeon"}), "outbound.transport", id="bad-transport"),
        pytest.param(minimal(maild={"timezone": "Mars/Olympus_Mons"}), "maild.timezone", id="bad-timezone"),
        pytest.param(
            {"mail": {"support_address": "Support <support@example.com>"}},
            "mail.support_address",
            id="address-with-display-name",
        ),
        pytest.param(
            {"mail": {"support_address": "support.example.com"}}, "mail.support_address", id="address-without-at"
        ),
        pytest.param({"mail": {"support_address": "support@"}}, "mail.support_address", id="address-without-domain"),
        pytest.param(minimal(mail={"ticket_prefix": "AC ME"}), "mail.ticket_prefix", id="bad-prefix"),
        pytest.param({"mail": {"from_name": "ACME"}}, "mail.support_address", id="missing-support-address"),
        pytest.param(
            minimal(agents=[{"email": "ana@example.com"}, {"email": "ANA@example.com"}]),
            "agents[1].email",
            id="agent-listed-twice",
        ),
        pytest.param(minimal(agents=[{"email": SUPPORT}]), "agents[0].email", id="agent-is-support-address"),
        pytest.param(
            minimal(
                agents=[{"email": "billing@example.com"}],
                queues=[{"name": "billing", "address": "billing@example.com"}],
            ),
            "agents[0].email",
            id="agent-is-queue-address",
        ),
        pytest.param(minimal(agents=[{"name": "Ana"}]), "agents[0].email", id="agent-without-email"),
        pytest.param(minimal(agents=[{"email": "a@example.com", "role": "boss"}]), "agents[0].role", id="bad-role"),
        pytest.param(minimal(agents={"email": "a@example.com"}), "agents", id="agents-not-an-array"),
        pytest.param(
            minimal(agents=[{"email": "ana@example.com"}], queues=[{"name": "billing", "agents": ["bob@example.com"]}]),
            "queues[0].agents",
            id="queue-names-non-agent",
        ),
        pytest.param(minimal(queues=[{"name": "bad name"}]), "queues[0].name", id="bad-queue-name"),
        pytest.param(minimal(queues=[{"name": "q", "address": SUPPORT}]), "queues[0].address", id="queue-is-support"),
        pytest.param(minimal(queues=[{"name": "q"}, {"name": "q"}]), "queues[1].name", id="queue-listed-twice"),
        pytest.param(
            minimal(security={"agent_auth": "authentication-results"}),
            "security.trusted_authserv_id",
            id="auth-results-without-authserv-id",
        ),
        pytest.param(minimal(security={"agent_auth": "dkim"}), "security.agent_auth", id="bad-agent-auth"),
        pytest.param(minimal(security={"authres_headers": "every"}), "security.authres_headers", id="bad-authres"),
    ],
)
def test_each_problem_is_one_line_naming_the_key(raw: dict[str, Any], key: str) -> None:
    """Each kind of mistake is reported as exactly one line that starts with its dotted key."""
    problems = problems_of(raw)
    assert len(problems) == 1, problems
    assert problems[0].startswith(f"{key}: "), problems
    assert "\n" not in problems[0]


def test_wrong_type_problem_says_what_was_expected() -> None:
    """A wrong type names what was expected and what was found, in words a sysadmin reads."""
    assert problems_of(minimal(intake={"smtp": {"port": "25"}})) == [
        "intake.smtp.port: expected an integer, got a string"
    ]
    assert problems_of(minimal(intake={"smtp": {"lmtp": "yes"}})) == [
        "intake.smtp.lmtp: expected true or false, got a string"
    ]


def test_bad_choice_lists_the_options() -> None:
    """A bad choice lists the allowed values."""
    (problem,) = problems_of(minimal(maild={"language": "fr"}))
    assert "es" in problem
    assert "en" in problem
    assert "'fr'" in problem


def test_valid_auth_results_config_is_accepted() -> None:
    """agent_auth = "authentication-results" with a trusted_authserv_id is a valid setting."""
    config = parse_config(
        minimal(security={"agent_auth": "authentication-results", "trusted_authserv_id": "mx.example.com"}),
        Path("/srv"),
    )
    assert config.security.agent_auth == "authentication-results"
    assert config.security.trusted_authserv_id == "mx.example.com"
    assert config.security.authres_headers == "topmost"
    every = minimal(
        security={"agent_auth": "authentication-results", "trusted_authserv_id": "mx", "authres_headers": "all"}
    )
    assert parse_config(every, Path("/srv")).security.authres_headers == "all"


def test_several_problems_are_reported_at_once() -> None:
    """Validation does not stop at the first mistake: every problem is listed, one line each."""
    raw = {
        "colour": "blue",
        "maild": {"language": "fr", "timezone": "Nowhere/Special"},
        "intake": {"smtp": {"port": "25", "lmtp": "yes", "bogus": 1}},
        "lifecycle": {"feedback_window": "soon"},
        "outbound": {"transport": "carrier-pigeon"},
        "agents": [{"email": "ana@example.com"}, {"email": "ana@example.com"}],
        "queues": [{"name": "billing", "agents": ["bob@example.com"]}],
    }
    problems = problems_of(raw)
    keys = {problem.split(": ", 1)[0] for problem in problems}
    assert keys == {
        "colour",
        "maild.language",
        "maild.timezone",
        "mail.support_address",
        "intake.smtp.port",
        "intake.smtp.lmtp",
        "intake.smtp.bogus",
        "lifecycle.feedback_window",
        "outbound.transport",
        "agents[1].email",
        "queues[0].agents",
    }
    assert len(problems) == len(keys)
    assert all("\n" not in problem for problem in problems)


def test_config_error_message_joins_the_problems() -> None:
    """str(ConfigError) carries every problem, so a log line is complete too."""
    error = ConfigError(["a: one", "b: two"])
    assert error.problems == ["a: one", "b: two"]
    assert str(error) == "a: one; b: two"


def test_huge_duration_is_a_problem_not_a_crash() -> None:
    """A duration too large for a timedelta is reported as one problem line, not an OverflowError."""
    assert problems_of(minimal(lifecycle={"feedback_window": "99999999999d"}))[0].startswith(
        "lifecycle.feedback_window: "
    )


def test_a_duration_past_a_century_is_a_problem() -> None:
    """Within a timedelta but past 36500d, now plus it is no date: every mail would fail at its step."""
    assert problems_of(minimal(lifecycle={"feedback_window": "99999999d"})) == [
        "lifecycle.feedback_window: at most 36500d (100 years), got '99999999d'"
    ]
    config = parse_config(minimal(lifecycle={"feedback_window": "36500d"}), Path("/srv/maild/etc"))
    assert config.lifecycle.feedback_window == timedelta(days=36500)


@pytest.mark.parametrize(
    ("section", "key"),
    [
        ("outbound", "timeout"),
        ("outbound", "retry_base"),
        ("outbound", "retry_max"),
        ("security", "ack_window"),
        ("security", "loop_window"),
        ("outbound", "give_up_after"),
        ("lifecycle", "close_if_no_response"),
    ],
)
def test_timeouts_and_windows_must_be_longer_than_zero(section: str, key: str) -> None:
    """Zero would be a busy retry loop, a timeout nothing meets, a window that holds nothing, mail given up
    on at its first refusal, or a waiting_customer resolved as soon as it is set."""
    problem = f"{section}.{key}: expected more than 0s, got '0s'"
    assert problem in problems_of(minimal(**{section: {key: "0s"}}))


@pytest.mark.parametrize("key", ["first_response", "resolution"])
def test_sla_times_must_be_longer_than_zero(key: str) -> None:
    """An SLA of nothing breaches every ticket the moment it opens."""
    assert problems_of(minimal(sla={"high": {key: "0s"}})) == [f"sla.high.{key}: expected more than 0s, got '0s'"]


def test_a_feedback_window_of_zero_closes_at_once() -> None:
    """No feedback window is a choice (resolved tickets close at once), not a mistake."""
    assert parse_config(
        minimal(lifecycle={"feedback_window": "0s"}), Path("/srv")
    ).lifecycle.feedback_window == timedelta(0)


def test_retry_max_below_retry_base_is_refused() -> None:
    """The longest wait between tries cannot be shorter than the first."""
    raw = minimal(outbound={"retry_base": "2h", "retry_max": "1m"})
    assert problems_of(raw) == ["outbound.retry_max: less than outbound.retry_base, the first wait"]


@pytest.mark.parametrize(
    ("table", "prefix"),
    [({"intake": {"smtp": {"host": " "}}}, "intake.smtp"), ({"outbound": {"host": ""}}, "outbound")],
)
def test_an_empty_host_is_refused(table: dict[str, Any], prefix: str) -> None:
    """An empty listen host would listen on every interface, an empty smarthost connect nowhere."""
    assert problems_of(minimal(**table)) == [
        f"{prefix}.host: empty: name the host (0.0.0.0 or :: to listen on every address)"
    ]


def test_a_smarthost_login_and_a_private_ca_are_read(tmp_path: Path) -> None:
    """ca_file is loaded as certificates now, and the login's password file read now, so that check-config
    tells what is wrong with either."""
    ca = private_ca(tmp_path / "ca")
    (tmp_path / "secret").write_text("pass\n")
    raw = minimal(outbound={"tls": "starttls", "ca_file": "ca/ca.pem", "username": "maild", "password_file": "secret"})
    outbound = parse_config(raw, tmp_path).outbound
    assert (outbound.ca_file, outbound.username, outbound.password_file) == (ca.ca, "maild", tmp_path / "secret")
    imap = {"enabled": True, "username": "u", "password_file": "secret", "ca_file": str(ca.ca)}
    assert parse_config(minimal(intake={"imap": imap}), tmp_path).imap.ca_file == ca.ca


@pytest.mark.parametrize("table", ["outbound", "imap"])
def test_a_ca_file_that_holds_no_certificates_is_one_line(tmp_path: Path, table: str) -> None:
    (tmp_path / "secret").write_text("pass\n")
    (tmp_path / "ca.pem").write_text("not a certificate\n")
    for name, problem in (("ca.pem", f"no PEM certificates in {tmp_path}/ca.pem"), ("nope.pem", "cannot read")):
        if table == "outbound":
            raw, key = minimal(outbound={"tls": "implicit", "ca_file": name}), "outbound.ca_file"
        else:
            imap = {"enabled": True, "username": "u", "password_file": "secret", "ca_file": name}
            raw, key = minimal(intake={"imap": imap}), "intake.imap.ca_file"
        (line,) = problems_of(raw, tmp_path)
        assert line.startswith(f"{key}: {problem}") and "\n" not in line


@pytest.mark.parametrize(
    ("outbound", "problem"),
    [
        (
            {"username": "maild", "password_file": "secret"},
            'outbound.username: logging in needs tls = "starttls" or "implicit" (never a password in clear)',
        ),
        ({"tls": "starttls", "username": "maild"}, "outbound.password_file: required when outbound.username is set"),
        ({"tls": "starttls", "password_file": "secret"}, "outbound.password_file: set outbound.username too"),
        (
            {"tls": "starttls", "username": "maild", "password_file": "empty"},
            "outbound.password_file: {dir}/empty is empty",
        ),
    ],
)
def test_a_smarthost_login_needs_tls_and_a_password(tmp_path: Path, outbound: dict[str, str], problem: str) -> None:
    (tmp_path / "secret").write_text("pass\n")
    (tmp_path / "empty").write_text("\n")
    (line,) = problems_of(minimal(outbound=outbound), tmp_path)
    assert line.startswith(problem.format(dir=tmp_path))


def test_two_queues_with_one_address_are_refused() -> None:
    """Mail to the address would land in one of them, silently."""
    queues = [{"name": "sales", "address": "sales@example.com"}, {"name": "shop", "address": "Sales@example.com"}]
    assert problems_of(minimal(queues=queues)) == ["queues[1].address: sales@example.com is queues[0]'s already"]


# --- reading files --------------------------------------------------------------------------------------


def test_invalid_toml_is_one_problem_line(tmp_path: Path) -> None:
    """A file that is not TOML gives one problem line naming the file, not a traceback."""
    path = tmp_path / "maild.toml"
    path.write_text('[mail]\nsupport_address = "support@example.com\n', encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    (problem,) = caught.value.problems
    assert problem.startswith(f"{path}: not valid TOML")
    assert "\n" not in problem


def test_missing_file_is_one_problem_line(tmp_path: Path) -> None:
    """A missing config file gives one problem line naming the file."""
    path = tmp_path / "absent.toml"
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert caught.value.problems == [f"{path}: no such config file"]


def test_non_utf8_file_is_one_problem_line(tmp_path: Path) -> None:
    """A file that is not UTF-8 gives one problem line naming the file."""
    path = tmp_path / "maild.toml"
    path.write_bytes(b'[mail]\nfrom_name = "\xff"\n')
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert caught.value.problems == [f"{path}: not UTF-8 text"]


def test_problems_in_a_file_name_the_key(tmp_path: Path) -> None:
    """load_config reports validation problems with the same dotted keys as parse_config."""
    path = tmp_path / "maild.toml"
    path.write_text('[mail]\nsupport_address = "support@example.com"\n[intake.smtp]\nport = "25"\n', encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert caught.value.problems == ["intake.smtp.port: expected an integer, got a string"]


def test_explicit_config_path_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    """--config is used even when $MAILD_CONFIG is set."""
    monkeypatch.setenv("MAILD_CONFIG", "/from/env.toml")
    assert find_config_path("/explicit.toml") == Path("/explicit.toml")


def test_env_config_path_is_second(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Without --config, $MAILD_CONFIG is used before ./config/maild.toml."""
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "maild.toml").write_text("", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MAILD_CONFIG", "/from/env.toml")
    assert find_config_path(None) == Path("/from/env.toml")
    monkeypatch.delenv("MAILD_CONFIG")
    assert find_config_path(None) == Path("config/maild.toml")


# --- lookups --------------------------------------------------------------------------------------------


def test_agent_lookup_is_case_insensitive(full_config: Config) -> None:
    """Config.agent finds an agent whatever the case of the address, and None for strangers."""
    luis = full_config.agent("LUIS@example.COM")
    assert luis is not None
    assert luis.name == "Luis"
    assert full_config.agent("ana@EXAMPLE.com") == Agent("ana@example.com", "Ana", "agent")
    assert full_config.agent("customer@example.org") is None


def test_queue_for_picks_queue_by_recipient(full_config: Config) -> None:
    """A mail to a queue's address lands in that queue, whatever the case and position of the recipient."""
    assert full_config.queue_for([SUPPORT, "Billing@Example.com"]) == "billing"
    assert full_config.queue_for(["billing@example.com"]) == "billing"


def test_queue_for_falls_back_to_default(full_config: Config) -> None:
    """A mail to no queue address (or to no one) lands in the default queue."""
    assert full_config.queue_for([SUPPORT]) == "default"
    assert full_config.queue_for(["someone@example.org"]) == "default"
    assert full_config.queue_for([]) == "default"


def test_queue_agents(full_config: Config) -> None:
    """A queue with listed agents has only those; any other queue is handled by every agent."""
    assert [a.email for a in full_config.queue_agents("billing")] == ["luis@example.com"]
    assert [a.email for a in full_config.queue_agents("default")] == ["ana@example.com", "luis@example.com"]
    assert [a.email for a in full_config.queue_agents("nonexistent")] == ["ana@example.com", "luis@example.com"]


def test_queue_without_agents_is_handled_by_everyone() -> None:
    """A queue whose [[queues]] entry lists no agents is handled by every agent."""
    config = parse_config(
        minimal(
            agents=[{"email": "ana@example.com"}, {"email": "luis@example.com"}],
            queues=[{"name": "sales", "address": "sales@example.com"}],
        ),
        Path("/srv"),
    )
    assert [a.email for a in config.queue_agents("sales")] == ["ana@example.com", "luis@example.com"]


def test_queue_senders_need_the_queue_address() -> None:
    """`send_from` makes a queue's customers' mail come From its address, named by its from_name or ours;
    a queue without an address has nothing to send from."""
    config = parse_config(
        minimal(
            queues=[
                {"name": "sales", "address": "sales@example.com", "send_from": True, "from_name": "ACME Sales"},
                {"name": "billing", "address": "billing@example.com", "send_from": True},
                {"name": "quiet", "address": "quiet@example.com"},
            ]
        ),
        Path("/srv"),
    )
    assert config.queue_senders() == {
        "sales": ("ACME Sales", "sales@example.com"),
        "billing": (config.from_name, "billing@example.com"),
    }
    assert problems_of(minimal(queues=[{"name": "nowhere", "send_from": True}])) == [
        "queues[0].send_from: the queue has no address to send from"
    ]


def test_own_addresses(full_config: Config) -> None:
    """maild's own addresses are the support address and every queue address, and nothing else."""
    assert full_config.own_addresses == frozenset({SUPPORT, "billing@example.com"})


def test_agent_name_defaults_to_local_part() -> None:
    """An agent without a name is called by the local part of the address, with role agent."""
    config = parse_config(minimal(agents=[{"email": "Maria.Lopez@example.com"}]), Path("/srv"))
    assert config.agents == (Agent("maria.lopez@example.com", "maria.lopez", "agent"),)


def test_replaced_config_has_its_own_agent_index(full_config: Config) -> None:
    """A config derived with dataclasses.replace looks up its own agents and leaves the original alone."""
    derived = dataclasses.replace(full_config, agents=(Agent("bob@example.com", "Bob", "agent"),))
    assert derived.agent("ana@example.com") is None
    assert full_config.agent("bob@example.com") is None


def _overrides(tmp_path: Path, refusals_es: str) -> dict[str, Any]:
    (tmp_path / "templates" / "es").mkdir(parents=True)
    (tmp_path / "templates" / "es" / "refusals.toml").write_text(refusals_es, encoding="utf-8")
    return {"maild": {"templates_dir": "templates"}, "mail": {"support_address": SUPPORT}}


@pytest.mark.parametrize(
    "refusals_es,problem",
    [
        (
            '"missing" = "falta {what} {where}"',
            "maild.templates_dir: es/refusals.toml: 'missing': unknown field {where}",
        ),
        ('"mising" = "falta {what}"', "maild.templates_dir: es/refusals.toml: 'mising': not an entry maild uses"),
        ('"missing" = "falta {what"', "maild.templates_dir: es/refusals.toml: 'missing': bad braces: "),
        ('"missing" = 3', "maild.templates_dir: es/refusals.toml: 'missing': expected a string"),
        ('"missing" = ', "maild.templates_dir: es/refusals.toml: cannot read: "),
    ],
)
def test_a_bad_refusal_override_is_one_line_naming_the_file_and_entry(
    tmp_path: Path, refusals_es: str, problem: str
) -> None:
    """A reworded refusal that names a field maild does not fill, an entry maild does not have, broken
    braces or broken TOML is refused with the config, not when an agent's command fails."""
    [line] = problems_of(_overrides(tmp_path, refusals_es), tmp_path)
    assert line.startswith(problem) and "\n" not in line, line


def test_a_missing_templates_dir_is_a_problem(tmp_path: Path) -> None:
    """A templates_dir that does not exist is named, instead of silently using the shipped templates."""
    raw = {"maild": {"templates_dir": "nowhere"}, "mail": {"support_address": SUPPORT}}
    assert problems_of(raw, tmp_path) == [f"maild.templates_dir: no such folder: {tmp_path / 'nowhere'}"]


def test_a_refusal_override_rewords_only_its_entries(tmp_path: Path) -> None:
    """Entries of an override's refusals.toml replace the shipped wording in that language; the others,
    the other language and the English str of the reason (logs, CLI) stay as shipped."""
    from maild.commands import parse_commands
    from maild.render import Renderer

    config = parse_config(_overrides(tmp_path, '"unknown" = "{what} {got}: no lo conozco"\n'), tmp_path)
    renderer = Renderer("es", config.templates_dir)
    ticket = SimpleNamespace(subject="Printer")  # the template reads only its subject
    errors = parse_commands("#status dormido\n#priority").errors
    rendered = renderer.render("agent.command_errors", errors=errors, ticket=ticket, token="[ACME#1]")
    assert "el estado 'dormido': no lo conozco" in rendered.body
    assert "falta la prioridad" in rendered.body  # not overridden: shipped Spanish
    english = renderer.render("agent.command_errors", "en", errors=errors, ticket=ticket, token="[ACME#1]")
    assert "unknown status 'dormido'" in english.body
    assert errors[0].reason == "unknown status 'dormido'"
