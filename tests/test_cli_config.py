"""The real `maild` CLI in a subprocess, as a sysadmin runs it: check-config and config errors (CONTRACT §2)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import pytest

GOOD_CONFIG = """
[maild]
data_dir = "data"
language = "en"

[mail]
support_address = "support@example.com"
from_name = "ACME Support"
ticket_prefix = "ACME"

[[agents]]
email = "ana@example.com"
name = "Ana"
role = "admin"

[[agents]]
email = "luis@example.com"
name = "Luis"

[[queues]]
name = "billing"
address = "billing@example.com"
agents = ["luis@example.com"]
"""

AUTH_RESULTS = """
[security]
agent_auth = "authentication-results"
trusted_authserv_id = "mx.example.com"
"""

UNKNOWN_KEY = """
[mail]
support_address = "support@example.com"

[intake.smtp]
prot = 2525
"""


def maild(
    cwd: Path, *args: str, stdin: str | None = None, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run `python -m maild ARGS` in ``cwd`` with warnings as errors (``env`` added to the environment, an
    empty value standing for unset); never raises on a non-zero exit."""
    return subprocess.run(
        [sys.executable, "-m", "maild", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd,
        env={**os.environ, "PYTHONWARNINGS": "error", **(env or {})},
    )


def write(tmp_path: Path, text: str, name: str = "maild.toml") -> Path:
    """Write a config file and return its path."""
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def assert_no_traceback(result: subprocess.CompletedProcess[str]) -> None:
    """Neither output stream holds a Python traceback."""
    assert "Traceback" not in result.stdout
    assert "Traceback" not in result.stderr


def test_check_config_good_config_in_from_mode(tmp_path: Path) -> None:
    """A good config exits 0 with the agent_auth = "from" warning and an ok line summarising it."""
    path = write(tmp_path, GOOD_CONFIG)
    result = maild(tmp_path, "check-config", "--config", str(path))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 2, lines
    assert lines[0].startswith(f"{path}: warning: security.agent_auth")
    assert lines[1].startswith(f"{path}: ok (2 agents, 1 queue, data in ")
    assert str((tmp_path / "data").resolve()) in lines[1]
    assert result.stderr == ""


def test_check_config_good_config_with_authentication_results(tmp_path: Path) -> None:
    """With agent_auth = "authentication-results" the ok line stands alone, without the warning."""
    path = write(tmp_path, GOOD_CONFIG + AUTH_RESULTS)
    result = maild(tmp_path, "check-config", "--config", str(path))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"{path}: ok (")
    assert "warning" not in result.stdout


def test_check_config_warns_of_priorities_without_an_sla(tmp_path: Path) -> None:
    """CONTRACT's example sets [sla.normal] alone: check-config says which priorities then have no due
    dates; a desk with no [sla.*] at all has chosen none, and hears nothing of it."""
    path = write(tmp_path, GOOD_CONFIG + AUTH_RESULTS + '\n[sla.normal]\nfirst_response = "4h"\nresolution = "2d"\n')
    result = maild(tmp_path, "check-config", "--config", str(path))
    assert result.returncode == 0, result.stderr
    warning, ok = result.stdout.splitlines()
    assert warning == (
        f"{path}: warning: no [sla.low], [sla.high], [sla.urgent]: tickets of priority low, high, urgent"
        " get no due dates (#priority to one of them drops them)"
    )
    assert ok.startswith(f"{path}: ok (")


def test_check_config_unknown_key(tmp_path: Path) -> None:
    """A config with an unknown key exits 1 with one line naming the dotted key, and no traceback."""
    path = write(tmp_path, UNKNOWN_KEY)
    result = maild(tmp_path, "check-config", "--config", str(path))
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert lines == [f"{path}: intake.smtp.prot: unknown key"]
    assert_no_traceback(result)


def test_check_config_lists_every_problem(tmp_path: Path) -> None:
    """check-config prints one line per problem when there are several."""
    path = write(
        tmp_path,
        '[maild]\nlanguage = "fr"\n[intake.smtp]\nport = "25"\n[outbound]\ntransport = "carrier-pigeon"\n',
    )
    result = maild(tmp_path, "check-config", "--config", str(path))
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    keys = sorted(line.removeprefix(f"{path}: ").split(": ", 1)[0] for line in lines)
    assert keys == ["intake.smtp.port", "mail.support_address", "maild.language", "outbound.transport"]
    assert_no_traceback(result)


def test_check_config_invalid_toml(tmp_path: Path) -> None:
    """A file that is not TOML exits 1 with one line, no traceback."""
    path = write(tmp_path, "[mail\nsupport_address = 1\n")
    result = maild(tmp_path, "check-config", "--config", str(path))
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert len(lines) == 1, lines
    assert "not valid TOML" in lines[0]
    assert_no_traceback(result)


def test_check_config_missing_file(tmp_path: Path) -> None:
    """A missing config file exits 1 with one line naming it once."""
    path = tmp_path / "absent.toml"
    result = maild(tmp_path, "check-config", "--config", str(path))
    assert result.returncode == 1
    assert result.stdout.splitlines() == [f"{path}: no such config file"]
    assert_no_traceback(result)


@pytest.mark.skipif(Path("/etc/maild/maild.toml").exists(), reason="this machine has a system-wide config")
@pytest.mark.parametrize("command", [["check-config"], ["ticket", "list"]])
def test_no_config_anywhere_names_every_place_tried(tmp_path: Path, command: list[str]) -> None:
    """With no --config, no $MAILD_CONFIG and neither default file, the one line lists all four places."""
    result = maild(tmp_path, *command, env={"MAILD_CONFIG": ""})
    assert result.returncode == 1
    [line] = (result.stdout + result.stderr).splitlines()
    assert line.endswith(
        "no config file found: no --config, $MAILD_CONFIG unset, no ./config/maild.toml, no /etc/maild/maild.toml"
    )
    assert_no_traceback(result)


@pytest.mark.parametrize("command", [["check-config"], ["ticket", "list"], ["tick"]])
def test_an_empty_config_option_is_an_error_not_the_default(tmp_path: Path, command: list[str]) -> None:
    """`--config ''` (a script's unset variable) names --config and never falls back to ./config/maild.toml."""
    (tmp_path / "config").mkdir()
    write(tmp_path / "config", GOOD_CONFIG)
    result = maild(tmp_path, *command, "--config", "")
    assert result.returncode == 1
    [line] = (result.stdout + result.stderr).splitlines()
    assert "--config: an empty path" in line
    assert "ok (" not in result.stdout
    assert not (tmp_path / "data").exists()  # the default config's store was never opened
    assert_no_traceback(result)


IMAP_ON = """
[intake.smtp]
port = 44871

[intake.imap]
enabled = true
username = "support"
"""


def test_check_config_reports_a_missing_imap_password_file(tmp_path: Path) -> None:
    """An enabled IMAP intake whose password_file does not exist is a problem naming the key, resolved
    against the config's folder."""
    path = write(tmp_path, GOOD_CONFIG + AUTH_RESULTS + IMAP_ON + 'password_file = "missing.secret"\n')
    result = maild(tmp_path, "check-config", "--config", str(path))
    assert result.returncode == 1
    assert result.stdout.splitlines() == [
        f"{path}: intake.imap.password_file: no such file: {tmp_path.resolve() / 'missing.secret'}"
    ]
    assert_no_traceback(result)


def test_check_config_requires_a_password_file_for_enabled_imap(tmp_path: Path) -> None:
    """An enabled IMAP intake without password_file at all is a problem too."""
    path = write(tmp_path, GOOD_CONFIG + AUTH_RESULTS + IMAP_ON)
    result = maild(tmp_path, "check-config", "--config", str(path))
    assert result.returncode == 1
    assert result.stdout.splitlines() == [
        f"{path}: intake.imap.password_file: required when intake.imap.enabled = true"
    ]


def test_imap_password_file_is_checked_only_when_imap_is_enabled(tmp_path: Path) -> None:
    """A disabled intake's missing secret is no problem, and an enabled one with its secret present is ok."""
    disabled = IMAP_ON.replace("enabled = true", "enabled = false") + 'password_file = "missing.secret"\n'
    path = write(tmp_path, GOOD_CONFIG + AUTH_RESULTS + disabled)
    assert maild(tmp_path, "check-config", "--config", str(path)).returncode == 0
    (tmp_path / "imap.secret").write_text("s3cret\n", encoding="utf-8")
    path = write(tmp_path, GOOD_CONFIG + AUTH_RESULTS + IMAP_ON + 'password_file = "imap.secret"\n')
    assert maild(tmp_path, "check-config", "--config", str(path)).returncode == 0


def test_check_config_refuses_imap_settings_that_cannot_work(tmp_path: Path) -> None:
    """Mail moved into the mailbox it is read from would be fetched again forever; empty names and an empty
    password file cannot log in or select: each is a line naming its key."""
    (tmp_path / "imap.secret").write_text("\n", encoding="utf-8")
    settings = 'password_file = "imap.secret"\nhost = ""\nmailbox = "inbox"\nprocessed_mailbox = "INBOX"\n'
    path = write(tmp_path, GOOD_CONFIG + AUTH_RESULTS + IMAP_ON + settings)
    result = maild(tmp_path, "check-config", "--config", str(path))
    assert result.returncode == 1
    assert sorted(result.stdout.splitlines()) == [
        f"{path}: intake.imap.host: must not be empty",
        f"{path}: intake.imap.password_file: {tmp_path.resolve() / 'imap.secret'} is empty",
        f"{path}: intake.imap.processed_mailbox: must differ from mailbox ('inbox'): mail is moved there",
    ]
    assert_no_traceback(result)


def test_check_config_refuses_settings_that_would_misbehave(tmp_path: Path) -> None:
    """An empty listen host (every interface), two queues on one address, a zero SLA time and a backoff whose
    longest wait is under its first: each a line naming its key, and `serve` does not start."""
    bad = (
        GOOD_CONFIG
        + '\n[[queues]]\nname = "refunds"\naddress = "billing@example.com"\n'
        + '\n[intake.smtp]\nhost = ""\n[outbound]\nretry_base = "2h"\nretry_max = "1m"\n'
        + '[sla.high]\nfirst_response = "0s"\n'
    )
    path = write(tmp_path, bad)
    result = maild(tmp_path, "check-config", "--config", str(path))
    assert result.returncode == 1
    assert sorted(result.stdout.splitlines()) == [
        f"{path}: intake.smtp.host: empty: name the host (0.0.0.0 or :: to listen on every address)",
        f"{path}: outbound.retry_max: less than outbound.retry_base, the first wait",
        f"{path}: queues[1].address: billing@example.com is queues[0]'s already",
        f"{path}: sla.high.first_response: expected more than 0s, got '0s'",
    ]
    assert maild(tmp_path, "serve", "--config", str(path)).returncode == 1
    assert_no_traceback(result)


def test_serve_refuses_to_start_without_the_imap_password_file(tmp_path: Path) -> None:
    """`serve` exits 1 at once with the check-config line instead of retrying the IMAP login forever."""
    path = write(tmp_path, GOOD_CONFIG + AUTH_RESULTS + IMAP_ON + 'password_file = "missing.secret"\n')
    result = maild(tmp_path, "serve", "--config", str(path))
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"maild: config: intake.imap.password_file: no such file: {tmp_path.resolve() / 'missing.secret'}"
    ]
    assert result.stdout == ""


def test_config_given_before_the_command_counts(tmp_path: Path) -> None:
    """`maild --config PATH <command>` is read as `<command> --config PATH`; the command's own wins."""
    path = write(tmp_path, GOOD_CONFIG + AUTH_RESULTS, "elsewhere.toml")
    result = maild(tmp_path, "--config", str(path), "check-config")
    assert result.returncode == 0 and result.stdout.startswith(f"{path}: ok ("), result.stderr
    listed = maild(tmp_path, "--config", str(tmp_path / "nope.toml"), "ticket", "list", "--json", "--config", str(path))
    assert listed.returncode == 0 and listed.stdout.strip() == "[]", listed.stderr
    missing = maild(tmp_path, "--config", str(tmp_path / "nope.toml"), "status")
    assert missing.returncode == 1 and "nope.toml: no such config file" in missing.stderr


def test_check_config_uses_maild_config_env(tmp_path: Path) -> None:
    """Without --config, check-config reads the file named by $MAILD_CONFIG."""
    path = write(tmp_path, GOOD_CONFIG + AUTH_RESULTS, "elsewhere.toml")
    result = subprocess.run(
        [sys.executable, "-m", "maild", "check-config"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env={**os.environ, "PYTHONWARNINGS": "error", "MAILD_CONFIG": str(path)},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"{path}: ok (")


def test_ticket_list_with_bad_config(tmp_path: Path) -> None:
    """`maild ticket list` with a bad config exits 1 with one stderr line "maild: config: ..." and no traceback."""
    path = write(tmp_path, UNKNOWN_KEY, "bad.toml")
    result = maild(tmp_path, "ticket", "list", "--config", str(path))
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert lines == ["maild: config: intake.smtp.prot: unknown key"]
    assert result.stdout == ""
    assert_no_traceback(result)


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (["ticket", "show", "x12"], "maild ticket show: Invalid value for 'TICKET_ID': not a ticket: 'x12'"),
        (["ticket", "show"], "maild ticket show: Missing argument 'TICKET_ID'."),
        (["bogus"], "maild: No such command 'bogus'."),
        (["outbox", "list", "--state", "nope"], "maild outbox list: Invalid value for '--state': 'nope' is not one"),
        (["ticket", "list", "--limit", "-1"], "maild ticket list: Invalid value for '--limit'"),
    ],
)
def test_a_bad_argument_exits_1_with_one_line(tmp_path: Path, args: list[str], line: str) -> None:
    """Bad arguments, options and commands are user errors (CONTRACT §2): exit 1, one line naming the
    command, no usage dump."""
    result = maild(tmp_path, *args)
    assert result.returncode == 1
    [said] = result.stderr.splitlines()
    assert said.startswith(line) and said.endswith("(--help for usage)")
    assert result.stdout == ""
    assert_no_traceback(result)


def test_help_and_version_still_exit_0(tmp_path: Path) -> None:
    """Taking over click's error handling keeps --help and --version as they were."""
    assert "Usage: maild ticket show" in maild(tmp_path, "ticket", "show", "--help").stdout
    version = maild(tmp_path, "--version")
    assert version.returncode == 0 and version.stdout.startswith("maild, version ")


def test_ticket_list_with_missing_config(tmp_path: Path) -> None:
    """`maild ticket list` with a missing config file exits 1 with one stderr line "maild: config: ..."."""
    path = tmp_path / "absent.toml"
    result = maild(tmp_path, "ticket", "list", "--config", str(path))
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("maild: config: ")
    assert "no such config file" in lines[0]
    assert result.stdout == ""
    assert_no_traceback(result)


def test_check_config_huge_duration_is_not_a_traceback(tmp_path: Path) -> None:
    """A duration too large for a timedelta is one problem line, never a traceback."""
    path = write(
        tmp_path, '[mail]\nsupport_address = "support@example.com"\n[lifecycle]\nfeedback_window = "99999999999d"\n'
    )
    result = maild(tmp_path, "check-config", "--config", str(path))
    assert_no_traceback(result)
    assert result.returncode == 1
    assert result.stdout.splitlines()[0].startswith(f"{path}: lifecycle.feedback_window: ")


def test_shipped_configs_are_valid(tmp_path: Path) -> None:
    """The documented example and the demo config written by `make run` both pass check-config."""
    repo = Path(__file__).resolve().parents[1]
    for name in ("maild.example.toml", "maild.demo.toml"):
        result = maild(tmp_path, "check-config", "--config", str(repo / "config" / name))
        assert result.returncode == 0, result.stdout + result.stderr
        assert ": ok (" in result.stdout


def test_check_config_refuses_a_retention_longer_than_a_century(tmp_path: Path) -> None:
    """`erase_closed_after` beyond 36500d is a problem, so `maild tick` never computes a date before year 1."""
    path = write(tmp_path, GOOD_CONFIG + AUTH_RESULTS + '[retention]\nerase_closed_after = "99999999d"\n')
    result = maild(tmp_path, "check-config", "--config", str(path))
    assert result.returncode == 1
    assert result.stdout.splitlines() == [
        f"{path}: retention.erase_closed_after: at most 36500d (100 years), got '99999999d'"
    ]
