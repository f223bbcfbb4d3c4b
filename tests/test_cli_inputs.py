"""The real `maild` CLI given bad input: out-of-range numbers and dates, a broken store, foreign tokens, unknown
queues. Each is one line on stderr and exit 1, never a traceback (CONTRACT §2)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.test_cli_config import GOOD_CONFIG, assert_no_traceback, maild, write

# Madrid, so a time without an offset is visibly not UTC; the SMTP port only matters if serve got that far.
DESK = GOOD_CONFIG.replace('language = "en"', 'language = "en"\ntimezone = "Europe/Madrid"') + (
    "\n[intake.smtp]\nport = 44872\n"
)
TOO_BIG = "9223372036854775808"  # SQLite's largest integer plus one


@pytest.fixture
def config(tmp_path: Path) -> Path:
    """A valid config for a desk in Madrid whose store lives in tmp_path/data."""
    return write(tmp_path, DESK)


def one_line_error(result: subprocess.CompletedProcess[str], *, code: int = 1) -> str:
    """The single stderr line of a failed command, after checking the exit code, stdout and tracebacks."""
    assert_no_traceback(result)
    assert result.returncode == code, result.stderr
    assert result.stdout == ""
    [line] = result.stderr.splitlines()
    return line


@pytest.mark.parametrize(
    "args",
    [
        ["ticket", "list", "--limit", "99999999999999999999"],
        ["ticket", "list", "--limit", TOO_BIG],
        ["shunt", "list", "--limit", TOO_BIG],
        ["dropped", "list", "--limit", TOO_BIG],
        ["outbox", "list", "--limit", TOO_BIG],
        ["shunt", "replay", TOO_BIG],
        ["dropped", "replay", TOO_BIG],
        ["outbox", "retry", TOO_BIG],
        ["outbox", "drop", TOO_BIG],
    ],
)
def test_numbers_too_large_for_sqlite_are_usage_errors(tmp_path: Path, config: Path, args: list[str]) -> None:
    """An id or --limit beyond SQLite's integers is refused as a bad argument, naming it and its range."""
    line = one_line_error(maild(tmp_path, *args, "--config", str(config)))
    assert line.startswith(f"maild {args[0]} {args[1]}: Invalid value for ")
    assert "is not in the range" in line


def test_the_largest_limit_still_lists(tmp_path: Path, config: Path) -> None:
    """The largest accepted --limit reaches SQLite fine (fetch_limit asks for one more)."""
    result = maild(tmp_path, "ticket", "list", "--json", "--limit", "9223372036854775806", "--config", str(config))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["tick", "--now", "0001-01-01T00:00:00+01:00"], "--now"),
        (["tick", "--now", "9999-12-31T23:59:59-01:00"], "--now"),
        (["erase", "closed", "--before", "0001-01-01T00:00:00+01:00"], "--before"),
        (["erase", "closed", "--before", "9999-12-31T23:59:59-01:00"], "--before"),
        (["report", "time", "--from", "0001-01-01", "--to", "2027-01-01"], "--from"),
        (["report", "time", "--from", "2026-01-01", "--to", "9999-12-31"], "--to"),
    ],
)
def test_dates_out_of_range_are_one_line(tmp_path: Path, config: Path, args: list[str], option: str) -> None:
    """A date or instant at the edge of the calendar is refused naming the option, not an OverflowError."""
    line = one_line_error(maild(tmp_path, *args, "--config", str(config)))
    assert line.startswith(f"maild: {option}: out of range: ")


def test_tick_refuses_an_empty_now(tmp_path: Path, config: Path) -> None:
    """`tick --now ''` is not "now": it is refused like any other text that is no instant."""
    line = one_line_error(maild(tmp_path, "tick", "--now", "", "--config", str(config)))
    assert line.startswith("maild: --now: not an ISO 8601 date or instant: ''")


def test_tick_reads_now_without_offset_in_the_desk_time_zone(tmp_path: Path, config: Path) -> None:
    """A --now without offset is the desk's time, as `#wait until` dates are; one with an offset is as given."""
    naive = maild(tmp_path, "tick", "--now", "2026-12-03T10:00", "--config", str(config))
    assert naive.returncode == 0, naive.stderr
    assert naive.stdout.strip() == "0 timer(s) run at 2026-12-03T09:00:00+00:00"  # Madrid is UTC+1 in December
    aware = maild(tmp_path, "tick", "--now", "2026-12-03T10:00:00+00:00", "--config", str(config))
    assert aware.stdout.strip() == "0 timer(s) run at 2026-12-03T10:00:00+00:00"
    assert "[maild] timezone" in maild(tmp_path, "tick", "--help").stdout


def test_report_time_refuses_csv_and_json_together(tmp_path: Path, config: Path) -> None:
    """Asking for both formats is a user error rather than silently JSON."""
    args = ["report", "time", "--from", "2026-01-01", "--to", "2026-01-31", "--csv", "--json"]
    assert one_line_error(maild(tmp_path, *args, "--config", str(config))) == "maild: --csv and --json: choose one"


@pytest.mark.parametrize(
    "args",
    [
        ["ticket", "show", "[OTHER#1]"],
        ["ticket", "show", "other#1"],
        ["outbox", "list", "--ticket", "[OTHER#1]"],
        ["erase", "ticket", "1", "[OTHER#2]"],
    ],
)
def test_a_token_of_another_desk_names_no_ticket(tmp_path: Path, config: Path, args: list[str]) -> None:
    """A token whose prefix is not the configured ticket_prefix is refused, never read as our ticket."""
    line = one_line_error(maild(tmp_path, *args, "--config", str(config)))
    assert line.startswith("maild: not a ticket of this desk: ")
    assert line.endswith("(this desk's tokens are [ACME#12])")


def test_our_own_prefix_is_accepted_in_any_case(tmp_path: Path, config: Path) -> None:
    """[acme#1] is ours (mail clients change case); with no such ticket the answer is about the ticket."""
    line = one_line_error(maild(tmp_path, "ticket", "show", "[acme#1]", "--config", str(config)))
    assert line == "maild: no ticket 1"


def test_ticket_list_refuses_an_unknown_queue(tmp_path: Path, config: Path) -> None:
    """--queue names a configured queue or the default one, as --status names a status."""
    line = one_line_error(maild(tmp_path, "ticket", "list", "--queue", "nosuch", "--config", str(config)))
    assert line == "maild: --queue: unknown queue 'nosuch' (one of default, billing)"
    known = maild(tmp_path, "ticket", "list", "--queue", "default", "--queue", "billing", "--config", str(config))
    assert known.returncode == 0, known.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["ticket", "list"],
        ["ticket", "show", "1"],
        ["tick"],
        ["status"],
        ["serve"],
        ["backup", "copy.db"],
    ],
)
def test_a_corrupt_database_is_one_line(tmp_path: Path, config: Path, args: list[str]) -> None:
    """A file that is not SQLite where the database should be is named in one line, exit 1."""
    (tmp_path / "data").mkdir()
    db = tmp_path / "data" / "maild.sqlite3"
    db.write_bytes(b"this is no SQLite database, only text\n" * 200)
    line = one_line_error(maild(tmp_path, *args, "--config", str(config)))
    assert line == f"maild: cannot open {db}: file is not a database"


def test_inject_keeps_exit_75_for_a_corrupt_database(tmp_path: Path, config: Path) -> None:
    """inject still tempfails (75), so the MTA keeps the mail while the operator repairs the store."""
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "maild.sqlite3").write_bytes(b"garbage" * 1000)
    mail = "From: customer@example.org\nTo: support@example.com\nSubject: hi\n\nhello\n"
    line = one_line_error(maild(tmp_path, "inject", "--config", str(config), stdin=mail), code=75)
    assert line.startswith("maild: cannot store the message: cannot open ")


@pytest.mark.parametrize("args", [["tick"], ["ticket", "list"]])
def test_a_data_dir_that_is_a_file_is_one_line(tmp_path: Path, args: list[str]) -> None:
    """tick, like every other command, says in one line that the data folder cannot be opened."""
    (tmp_path / "afile").write_text("x\n", encoding="utf-8")
    config = write(tmp_path, DESK.replace('data_dir = "data"', 'data_dir = "afile"'))
    line = one_line_error(maild(tmp_path, *args, "--config", str(config)))
    assert line.startswith(f"maild: cannot open {tmp_path / 'afile' / 'maild.sqlite3'}: ")


def test_backup_into_a_missing_folder_is_one_line(tmp_path: Path, config: Path) -> None:
    """A backup target whose folder does not exist is refused naming the target."""
    target = tmp_path / "nonexistent" / "x.db"
    line = one_line_error(maild(tmp_path, "backup", str(target), "--config", str(config)))
    assert line == f"maild: cannot back up to {target}: unable to open database file"
    assert not target.parent.exists()


def test_an_empty_requester_is_refused(tmp_path: Path, config: Path) -> None:
    """`--requester ''` (a script's unset variable) would otherwise list every ticket."""
    line = one_line_error(maild(tmp_path, "ticket", "list", "--requester", "", "--config", str(config)))
    assert line == "maild: --requester: an empty address (leave the option out to list every requester's)"
