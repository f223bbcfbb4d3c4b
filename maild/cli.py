"""The `maild` command (CONTRACT §2). Exit 0 on success, 1 on a user error with one line on stderr."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar
from zoneinfo import ZoneInfo

import click
import uvloop

from maild.config import DEFAULT_QUEUE, PRIORITIES, Config, ConfigError, ConfigFileError, find_config_path, load_config
from maild.logs import configure_logging
from maild.store import Store, StoreError, Tx
from maild.tokens import Reference, format_token, ticket_reference
from maild.views import terminal_safe

if TYPE_CHECKING:
    from maild.erase import Holdings, Report

T = TypeVar("T")
EX_NOUSER = 67  # sysexits.h: the MTA bounces the mail, "user unknown"
EX_TEMPFAIL = 75  # sysexits.h: the MTA keeps the mail and retries
SQLITE_INTEGER_MAX = 2**63 - 1  # a larger id or limit cannot reach SQLite at all (OverflowError)
# Row ids as typed (`shunt replay ID`, `outbox retry ID`): what SQLite can hold, so a huge one is a usage error.
ROW_ID = click.IntRange(min=1, max=SQLITE_INTEGER_MAX)
# Instants a person may ask about: the margins leave room for the durations the commands add or take away
# (retention, SLA times, a report's last day), so no date arithmetic leaves Python's years 1 to 9999.
EARLIEST, LATEST = datetime(1900, 1, 1, tzinfo=UTC), datetime(9000, 1, 1, tzinfo=UTC)


def fail(message: str, code: int = 1) -> NoReturn:
    with contextlib.suppress(OSError):  # nobody reads stderr (an MTA's pipe that closed): the exit code tells
        click.echo(f"maild: {message}", err=True)
    sys.exit(code)


CONFIG_HELP = "Config file (default: $MAILD_CONFIG, ./config/maild.toml, /etc/maild/maild.toml)."


def config_option(command: Callable[..., Any]) -> Callable[..., Any]:
    """Every command's --config; without it, the one given before the command (`maild --config X status`)."""
    return click.option("--config", "config_path", metavar="PATH", default=_group_config, help=CONFIG_HELP)(command)


def _group_config() -> str | None:
    value = click.get_current_context().find_root().params.get("config_path")
    return str(value) if value is not None else None


def ticket_id(ctx: click.Context, param: click.Parameter, value: str | None) -> Reference | None:
    """A ticket as people copy it from a subject: 12, #12, ACME#12 or [ACME#12]; its prefix is kept, as only
    the config knows whether ``[OTHER#1]`` is ours."""
    if value is None:
        return None
    found = ticket_reference(value.strip())
    if found is None or found.id < 1:
        raise click.BadParameter(f"not a ticket: {value!r} (12, #12 or [ACME#12])")
    return found


def own_ticket(config: Config, ref: Reference) -> int:
    """The id of a ticket of this desk: a token with another prefix names another desk's ticket, never ours."""
    if ref.of_another_desk(config.ticket_prefix):
        named, ours = format_token(ref.prefix, ref.id), format_token(config.ticket_prefix, 12)
        fail(f"not a ticket of this desk: {named} (this desk's tokens are {ours})")
    return ref.id


def limit_option(command: Callable[..., Any]) -> Callable[..., Any]:
    # One less than SQLite's largest integer: fetch_limit asks for one row more.
    return click.option(
        "--limit",
        type=click.IntRange(min=0, max=SQLITE_INTEGER_MAX - 1),
        default=1000,
        show_default=True,
        help="At most this many; 0 lists all.",
    )(command)


def fetch_limit(limit: int) -> int | None:
    """How many rows to read for ``--limit``: one more than shown tells whether the list was cut."""
    return limit + 1 if limit else None


def shown(rows: list[T], limit: int, which: str) -> list[T]:
    """The rows ``--limit`` lets through, saying on stderr when there were more: a list never ends silently."""
    if limit and len(rows) > limit:
        click.echo(f"maild: only the {which} {limit} shown; --limit 0 lists them all", err=True)
        return rows[:limit]
    return rows


def desk_instant(config: Config, text: str, option: str, example: str) -> datetime:
    """An instant a person typed, in UTC; without an offset it is the desk's time (``[maild] timezone``), as
    `#wait until` reads dates."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        fail(f"{option}: not an ISO 8601 date or instant: {text!r} (e.g. {example})")
    return in_range(moment if moment.tzinfo else moment.replace(tzinfo=ZoneInfo(config.timezone)), option, text)


def desk_day_start(config: Config, day: date, option: str) -> datetime:
    """Midnight of ``day`` in the desk's time zone, in UTC."""
    return in_range(datetime.combine(day, time(), ZoneInfo(config.timezone)), option, day.isoformat())


def in_range(moment: datetime, option: str, given: str) -> datetime:
    """``moment`` (typed as ``given``) in UTC, refused in one line when it lies outside the years the commands
    can compute with."""
    try:
        inside = EARLIEST <= moment.astimezone(UTC) <= LATEST
    except OverflowError:  # in UTC it is before year 1 or after 9999
        inside = False
    if not inside:
        fail(f"{option}: out of range: {given} (from {EARLIEST:%Y-%m-%d} to {LATEST:%Y-%m-%d})")
    return moment.astimezone(UTC)


def read_config(config_path: str | None) -> Config:
    try:
        return load_config(find_config_path(config_path))
    except ConfigError as exc:
        for problem in exc.problems[1:]:
            click.echo(f"maild: config: {problem}", err=True)
        fail(f"config: {exc.problems[0]}")


def run(coro_fn: Callable[[], Awaitable[T]]) -> T:
    """Run on uvloop: libuv's event loop makes the daemon's many small hand-offs (SMTP sessions, the
    store's thread) cheaper, about 15% less CPU per processed mail (README, Performance)."""

    async def main() -> T:
        return await coro_fn()

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(main())


async def with_store(config: Config, action: Callable[[Store], Awaitable[T]]) -> T:
    try:
        store = await Store.open(config.db_path)
    except StoreError as exc:
        fail(str(exc))
    try:
        return await action(store)
    finally:
        await store.close()


def change_one(config_path: str | None, change: Callable[[Tx], Awaitable[bool]], missing: str) -> None:
    """Make one change in a transaction of its own; fail with ``missing`` when there was nothing to change."""

    async def action(store: Store) -> bool:
        async with store.transaction() as tx:
            return await change(tx)

    if not run(lambda: with_store(read_config(config_path), action)):
        fail(missing)


def emit_json(value: Any) -> None:
    click.echo(json.dumps(value, ensure_ascii=False, indent=2))


class MaildGroup(click.Group):
    """CONTRACT §2: a user error exits 1 with one line on stderr; for click that is a bad argument, an
    unknown option or command (click's own way is exit 2 after the usage text)."""

    def main(self, *args: Any, **kwargs: Any) -> Any:
        if kwargs.get("standalone_mode", True) is False:
            return super().main(*args, **kwargs)
        try:
            code = super().main(*args, **{**kwargs, "standalone_mode": False})
        except click.ClickException as exc:
            where = exc.ctx.command_path if isinstance(exc, click.UsageError) and exc.ctx else "maild"
            click.echo(f"{where}: {exc.format_message()} (--help for usage)", err=True)
            sys.exit(1)
        except click.Abort:
            click.echo("maild: aborted", err=True)
            sys.exit(1)
        except StoreError as exc:  # the data folder or database, whichever command met it (inject has its own)
            fail(str(exc))
        sys.exit(code if isinstance(code, int) else 0)


@click.group(cls=MaildGroup)
@click.version_option(package_name="maild")
@click.option("--config", "config_path", metavar="PATH", default=None, help=CONFIG_HELP)
def main(config_path: str | None) -> None:
    """maild: an email-first ticketing daemon."""


@main.command()
@config_option
def serve(config_path: str | None) -> None:
    """Run the daemon in the foreground until SIGTERM/SIGINT (then drain gracefully)."""
    from maild.app import serve as serve_app

    config = read_config(config_path)
    configure_logging(config.log_level)
    try:
        run(lambda: serve_app(config))
    except ConfigError as exc:
        fail(f"config: {exc.problems[0]}")
    except StoreError as exc:
        fail(str(exc))
    except OSError as exc:
        fail(f"cannot listen on {config.smtp.host}:{config.smtp.port}: {exc.strerror or exc}")


@main.command("check-config")
@config_option
def check_config(config_path: str | None) -> None:
    """Validate the config; print one line per problem."""
    try:
        path = find_config_path(config_path)
        config = load_config(path)
    except ConfigFileError as exc:  # its line names the file, or the places tried, already
        click.echo(exc.problems[0])
        sys.exit(1)
    except ConfigError as exc:
        for problem in exc.problems:
            click.echo(f"{path}: {problem}")
        sys.exit(1)
    if config.security.agent_auth == "from":
        click.echo(
            f'{path}: warning: security.agent_auth = "from" trusts the From: address alone, which anyone can forge'
        )
    missing = [priority for priority in PRIORITIES if priority not in config.sla]
    if config.sla and missing:  # no [sla.*] at all is a desk without SLAs; some is easy to leave half-done
        click.echo(
            f"{path}: warning: no [sla.{'], [sla.'.join(missing)}]: tickets of priority {', '.join(missing)}"
            " get no due dates (#priority to one of them drops them)"
        )
    agents, queues = len(config.agents), len(config.queues)
    counts = f"{agents} agent{'s' * (agents != 1)}, {queues} queue{'s' * (queues != 1)}"
    click.echo(f"{path}: ok ({counts}, data in {config.data_dir})")


@main.command()
@config_option
@click.option(
    "--from",
    "mail_from",
    default="",
    metavar="ADDR",
    help="Envelope sender (the MTA's ${sender}; default: the From: header).",
)
@click.option("--to", "rcpt_to", multiple=True, metavar="ADDR", help="Envelope recipient(s) (default: support).")
def inject(config_path: str | None, mail_from: str, rcpt_to: tuple[str, ...]) -> None:
    """Read one RFC 5322 message on stdin and process it as if received (exit 75 = try again later)."""
    from maild.app import build_pipeline, build_services
    from maild.models import Envelope
    from maild.spool import Spooler

    try:
        config = load_config(find_config_path(config_path))
    except ConfigError as exc:
        # An MTA pipe must keep the mail while the operator fixes the config: tempfail, never bounce.
        fail(f"config: {exc.problems[0]}", EX_TEMPFAIL)
    configure_logging(config.log_level, sys.stderr)
    raw = sys.stdin.buffer.read(config.smtp.max_message_bytes + 1)
    if len(raw) > config.smtp.max_message_bytes:
        fail(f"message larger than intake.smtp.max_message_bytes ({config.smtp.max_message_bytes})")
    if not raw.strip():
        fail("no message on standard input")
    # As over SMTP, where RCPT refuses them: a pipe transport routed wider than maild serves bounces the mail
    # back to its sender instead of opening a ticket for a mailbox nobody reads here.
    unserved = [address for address in rcpt_to if not config.is_own(address.lower())]
    if unserved:
        fail(f"not an address maild serves: {', '.join(unserved)}", EX_NOUSER)
    if not mail_from:
        # Without --from (a person piping a file) the From: header stands in for the envelope sender; an MTA
        # pipe passes ${sender}, which is empty exactly for bounces.
        from email.parser import BytesHeaderParser
        from email.utils import parseaddr

        mail_from = parseaddr(str(BytesHeaderParser().parsebytes(raw).get("From", "")))[1]
    envelope = Envelope(source="inject", mail_from=mail_from, rcpt_to=rcpt_to or (config.support_address,))

    async def action() -> str:
        store = await Store.open(config.db_path)
        try:
            spooled = await Spooler(store).put(envelope, raw)
            if spooled.inbound_id is None:
                return "duplicate: already received"
            if spooled.set_aside:
                return f"shunted: inbound {spooled.inbound_id} ({spooled.set_aside})"
            result = await build_pipeline(build_services(config, store.clock), store).process(spooled.inbound_id)
        finally:
            await store.close()
        if result is None:
            return f"spooled as {spooled.inbound_id}: taken by the running daemon"
        where = f" ticket {result.ticket_id}" if result.ticket_id else ""
        reason = f" ({result.reason})" if result.reason else ""
        return f"{result.state}:{where} inbound {result.inbound_id}{reason}"

    try:
        outcome = terminal_safe(run(action))
    except Exception as exc:  # the store failing: the MTA must keep the mail and retry later
        fail(f"cannot store the message: {exc}", EX_TEMPFAIL)
    try:
        click.echo(outcome)
    except OSError:
        # The mail is kept: a pipe nobody reads any more (pipe(8) reads 4 KiB) must not make it a failure, nor
        # the flush of standard output at exit (Python's exit 120).
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


@main.command()
@config_option
@click.option(
    "--now",
    "now_text",
    default=None,
    metavar="ISO8601",
    help="The instant to run for (default: now); without an offset, in the config's [maild] timezone.",
)
def tick(config_path: str | None, now_text: str | None) -> None:
    """Run the lifecycle timers due at that instant, send the agents' digest if it is due then, and erase the
    tickets `[retention]` says were closed long enough (the daemon does all this by itself; for operators and
    tests)."""
    from maild.app import build_services, build_timer_actions
    from maild.clock import system_clock
    from maild.digest import send_due_digest
    from maild.scheduler import run_due

    config = read_config(config_path)
    configure_logging(config.log_level, sys.stderr)
    now = system_clock() if now_text is None else desk_instant(config, now_text, "--now", "2026-12-01T09:00:00+01:00")

    async def action(store: Store) -> int:
        # The timers judge the ticket as of --now; what is written (history, outbox) is stamped with the real
        # time, so the mail the timers queue goes out at once.
        services = build_services(config, lambda: now)
        count = await run_due(store, build_timer_actions(services), now)
        await send_due_digest(store, services.digests, now)  # logged; the line below counts timers
        if config.retention is not None:
            from maild.erase import Holdings, sweep

            await sweep(Holdings.of(store, config), config.retention, now)  # logged too
        return count

    count = run(lambda: with_store(config, action))
    click.echo(f"{count} timer(s) run at {now.astimezone(UTC).isoformat(timespec='seconds')}")


@main.group()
def ticket() -> None:
    """Look at tickets."""


@ticket.command("list")
@config_option
@click.option("--status", "statuses", multiple=True, help="Only tickets in this status (repeatable).")
@click.option("--queue", "queues", multiple=True, help="Only tickets in this queue (repeatable).")
@click.option(
    "--assignee", default=None, help="Only tickets assigned to this agent (address or name); none: unassigned."
)
@click.option("--requester", default=None, help="Only tickets this customer opened (address).")
@click.option(
    "--text",
    default=None,
    metavar="WORDS",
    help="Only tickets with every word in the subject or a message (ASCII letters without case).",
)
@limit_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def ticket_list(
    config_path: str | None,
    statuses: tuple[str, ...],
    queues: tuple[str, ...],
    assignee: str | None,
    requester: str | None,
    text: str | None,
    limit: int,
    as_json: bool,
) -> None:
    """List tickets, newest first."""
    from maild.statuses import STATUSES
    from maild.views import table, ticket_summary

    config = read_config(config_path)
    for status in statuses:
        if status not in STATUSES:
            fail(f"--status: unknown status {status!r} (one of {', '.join(STATUSES)})")
    known_queues(config, queues)
    if requester is not None and not requester.strip():
        fail("--requester: an empty address (leave the option out to list every requester's)")
    wanted_assignee = None if assignee is None else assignee_filter(config, assignee)

    async def action(store: Store) -> list[dict[str, Any]]:
        async with store.snapshot() as tx:
            tickets = await tx.list_tickets(
                statuses=statuses,
                queues=queues,
                assignee=wanted_assignee,
                requester=requester.strip().lower() if requester is not None else None,
                words=text.split() if text else (),
                limit=fetch_limit(limit),
            )
        return [ticket_summary(t, config.ticket_prefix) for t in tickets]

    rows = shown(run(lambda: with_store(config, action)), limit, "newest")
    if as_json:
        emit_json(rows)
    else:
        click.echo(table(rows, ["token", "status", "queue", "requester", "assignee", "subject"]))


def known_queues(config: Config, given: tuple[str, ...]) -> None:
    """``--queue`` names one of the config's queues or the default one, as ``#queue`` does: a typo is an error,
    not an empty list."""
    known = list(dict.fromkeys([DEFAULT_QUEUE, *(q.name for q in config.queues)]))
    for queue in given:
        if queue not in known:
            fail(f"--queue: unknown queue {queue!r} (one of {', '.join(known)})")


def assignee_filter(config: Config, given: str) -> str:
    """``--assignee``'s address: an address as given, an agent's name looked up, ``none`` as ""."""
    wanted = given.strip()
    if wanted.casefold() in ("none", "nobody"):
        return ""
    if "@" in wanted:
        return wanted.lower()
    matches = config.agents_named(wanted)
    if len(matches) != 1:
        names = ", ".join(a.name for a in config.agents) or "none configured"
        fail(f"--assignee: no single agent named {wanted!r} (agents: {names}; or an address, or none)")
    return matches[0].email


@ticket.command("show")
@config_option
@click.argument("ticket_id", callback=ticket_id)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def ticket_show(config_path: str | None, ticket_id: Reference, as_json: bool) -> None:
    """Show one ticket with its timeline and history."""
    from maild.lifecycle import Lifecycle
    from maild.views import ticket_detail, ticket_text

    config = read_config(config_path)
    number = own_ticket(config, ticket_id)

    async def action(store: Store) -> dict[str, Any] | None:
        async with store.snapshot() as tx:
            found = await tx.get_ticket(number)
            if found is None:
                return None
            messages, history = await tx.messages(number), await tx.history(number)
            entries, clock = await tx.time_entries(number), Lifecycle(config, store.clock).live_clock(found)
            return ticket_detail(found, config.ticket_prefix, messages, history, entries, clock)

    detail = run(lambda: with_store(config, action))
    if detail is None:
        fail(f"no ticket {number}")
    if as_json:
        emit_json(detail)
    else:
        click.echo(ticket_text(detail))


@main.group()
def shunt() -> None:
    """Messages whose processing failed: kept intact, with the step and the error."""


@shunt.command("list")
@config_option
@limit_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def shunt_list(config_path: str | None, limit: int, as_json: bool) -> None:
    """List shunted messages."""
    from maild.store.inbound import SHUNTED
    from maild.views import inbound_json, table

    config = read_config(config_path)

    async def action(store: Store) -> list[dict[str, Any]]:
        async with store.snapshot() as tx:
            return [inbound_json(i) for i in await tx.list_inbound(SHUNTED, fetch_limit(limit))]

    rows = shown(run(lambda: with_store(config, action)), limit, "oldest")
    if as_json:
        emit_json(rows)
    else:
        click.echo(table(rows, ["id", "received_at", "mail_from", "step", "error"]))


@shunt.command("replay")
@config_option
@click.argument("inbound_id", type=ROW_ID)
def shunt_replay(config_path: str | None, inbound_id: int) -> None:
    """Process a shunted message again (after fixing its cause)."""
    from maild.store.inbound import SHUNTED

    replay(read_config(config_path), inbound_id, SHUNTED, f"no shunted message {inbound_id}")


def replay(config: Config, inbound_id: int, state: str, missing: str) -> None:
    """Put a stored message in ``state`` back in line and process it now; the outcome on stdout, the
    pipeline's log lines on stderr."""
    from maild.app import build_pipeline, build_services

    configure_logging(config.log_level, sys.stderr)

    async def action(store: Store) -> str:
        async with store.transaction() as tx:
            if not await tx.requeue_inbound(inbound_id, state):
                fail(missing)
        result = await build_pipeline(build_services(config, store.clock), store).process(inbound_id)
        if result is None:
            return f"{inbound_id}: taken by the running daemon"
        return f"{inbound_id}: {result.state}" + (f" ({result.reason})" if result.reason else "")

    click.echo(terminal_safe(run(lambda: with_store(config, action))))


@main.group()
def dropped() -> None:
    """Messages kept but acted on no further (our own mail come back, blocked senders, refused commands),
    with the reason."""


@dropped.command("list")
@config_option
@click.option("--from", "sender", default=None, metavar="ADDR", help="Only those of this envelope sender.")
@limit_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def dropped_list(config_path: str | None, sender: str | None, limit: int, as_json: bool) -> None:
    """List dropped messages, newest first."""
    from maild.views import inbound_json, table

    config = read_config(config_path)
    wanted = sender.strip().lower() if sender else None

    async def action(store: Store) -> list[dict[str, Any]]:
        async with store.snapshot() as tx:
            return [inbound_json(i) for i in await tx.list_dropped(wanted, fetch_limit(limit))]

    rows = shown(run(lambda: with_store(config, action)), limit, "newest")
    if as_json:
        emit_json(rows)
    else:
        click.echo(table(rows, ["id", "received_at", "mail_from", "ticket_id", "step", "error"]))


@dropped.command("replay")
@config_option
@click.argument("inbound_id", type=ROW_ID)
def dropped_replay(config_path: str | None, inbound_id: int) -> None:
    """Process a dropped message again, one that reached no ticket (a blocked sender's, once unblocked)."""
    from maild.store.inbound import DROPPED

    missing = (
        f"no dropped message {inbound_id} that reached no ticket (one dropped on a ticket, its commands"
        " refused, is on that ticket already)"
    )
    replay(read_config(config_path), inbound_id, DROPPED, missing)


@main.group()
def report() -> None:
    """Reports for invoicing and follow-up."""


@report.command("time")
@config_option
@click.option("--from", "start", required=True, metavar="DATE", help="First day (YYYY-MM-DD), inclusive.")
@click.option("--to", "end", required=True, metavar="DATE", help="Last day (YYYY-MM-DD), inclusive.")
@click.option("--by", type=click.Choice(["requester", "agent", "queue", "ticket"]), default="requester")
@click.option("--csv", "as_csv", is_flag=True, help="Print CSV (for spreadsheets and invoicing tools).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def report_time(config_path: str | None, start: str, end: str, by: str, as_csv: bool, as_json: bool) -> None:
    """Billable and non-billable minutes per requester, agent, queue or ticket, days in the config's zone."""
    import csv

    from maild.views import table

    if as_csv and as_json:
        fail("--csv and --json: choose one")
    config = read_config(config_path)
    try:
        first, last = date.fromisoformat(start), date.fromisoformat(end)
    except ValueError:
        fail("--from/--to: expected dates like 2026-11-01")
    if last < first:
        fail("--to is before --from")
    since = desk_day_start(config, first, "--from")
    desk_day_start(config, last, "--to")  # in range, so the day after it is a date too
    # The report ends at the desk's next midnight, 23 or 25 hours later on the days clocks change.
    until = desk_day_start(config, last + timedelta(days=1), "--to")

    async def action(store: Store) -> list[dict[str, Any]]:
        async with store.snapshot() as tx:
            return await tx.time_report(since, until, by)

    rows = run(lambda: with_store(config, action))
    columns = [by, "billable_minutes", "nonbillable_minutes", "entries", "tickets"]
    if as_json:
        emit_json(rows)
    elif as_csv:
        writer = csv.DictWriter(sys.stdout, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    else:
        click.echo(table(rows, columns))


@main.group()
def outbox() -> None:
    """Mail maild sends: queued, sent and failed."""


@outbox.command("list")
@config_option
@click.option("--state", type=click.Choice(["queued", "sending", "sent", "failed"]), default=None)
@click.option("--ticket", "ticket_id", callback=ticket_id, default=None, help="Only mail about this ticket.")
@limit_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def outbox_list(
    config_path: str | None, state: str | None, ticket_id: Reference | None, limit: int, as_json: bool
) -> None:
    """List outbound mail."""
    from maild.views import outbound_json, table

    config = read_config(config_path)
    about = None if ticket_id is None else own_ticket(config, ticket_id)

    async def action(store: Store) -> list[dict[str, Any]]:
        async with store.snapshot() as tx:
            return [
                outbound_json(m, await tx.bounces_of(m.id))
                for m in await tx.list_mail(state=state, ticket_id=about, limit=fetch_limit(limit))
            ]

    rows = shown(run(lambda: with_store(config, action)), limit, "oldest")
    if as_json:
        emit_json(rows)
    else:
        for row in rows:
            row["bounced"] = ", ".join(r for b in row["bounces"] for r in b["recipients"]) or None
        click.echo(table(rows, ["id", "ticket_id", "kind", "state", "attempts", "rcpt_to", "bounced", "last_error"]))


@outbox.command("retry")
@config_option
@click.argument("outbox_id", type=ROW_ID)
def outbox_retry(config_path: str | None, outbox_id: int) -> None:
    """Send a failed (or waiting) mail again now; the running daemon picks it up."""

    change_one(config_path, lambda tx: tx.retry_mail(outbox_id), f"no queued or failed mail {outbox_id}")
    click.echo(f"{outbox_id}: queued for delivery")


@outbox.command("drop")
@config_option
@click.argument("outbox_id", type=ROW_ID)
def outbox_drop(config_path: str | None, outbox_id: int) -> None:
    """Give up on a queued or failed mail (it is kept, marked dropped)."""

    change_one(config_path, lambda tx: tx.drop_mail(outbox_id), f"no queued or failed mail {outbox_id}")
    click.echo(f"{outbox_id}: dropped")


@main.command()
@config_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def status(config_path: str | None, as_json: bool) -> None:
    """Backlogs at a glance: spool, shunted, outbox (and its oldest), last intake, timers due, tickets, and
    the day of the last agents' digest."""
    from maild.clock import from_iso, system_clock
    from maild.digest import sent_days
    from maild.durations import format_duration

    config = read_config(config_path)

    async def action(store: Store) -> dict[str, Any]:
        async with store.snapshot() as tx:
            intake, outbound = await tx.intake_summary(), await tx.outbox_summary()
            next_timer = await tx.next_timer_at()
            return {
                "spool_pending": intake["counts"].get("pending", 0),
                "shunted": intake["counts"].get("shunted", 0),
                "last_received_at": intake["last_received_at"],
                "outbox_queued": outbound["counts"].get("queued", 0) + outbound["counts"].get("sending", 0),
                "outbox_failed": outbound["counts"].get("failed", 0),
                "outbox_oldest_queued_at": outbound["oldest_queued_at"],
                "timers_due": await tx.count_due_timers(system_clock()),
                "next_timer_at": next_timer.isoformat() if next_timer else None,
                "tickets": await tx.count_tickets(),
                "sla_breached": await tx.count_breached(),
                "digest_sent_on": next(reversed(await sent_days(tx)), None),
            }

    report = run(lambda: with_store(config, action))
    if as_json:
        emit_json(report)
        return
    oldest = report["outbox_oldest_queued_at"]
    age = f" (oldest {int((system_clock() - from_iso(oldest)).total_seconds())}s)" if oldest else ""
    lines = [
        f"spool        {report['spool_pending']} pending, {report['shunted']} shunted",
        f"last intake  {report['last_received_at'] or 'never'}",
        f"outbox       {report['outbox_queued']} queued{age}, {report['outbox_failed']} failed",
        f"timers       {report['timers_due']} due now, next at {report['next_timer_at'] or '-'}",
        "tickets      "
        + (", ".join(f"{n} {s}" for s, n in sorted(report["tickets"].items())) or "none")
        + f"; {report['sla_breached']} SLA breached",
    ]
    if config.digest is not None:
        at = config.digest.at.strftime("%H:%M")
        lines.append(f"digest       daily at {at}, last sent on {report['digest_sent_on'] or 'no day yet'}")
    if config.retention is not None:
        lines.append(f"retention    tickets closed and unchanged for {format_duration(config.retention)} are erased")
    click.echo("\n".join(lines))


@main.command()
@config_option
@click.argument("target", type=click.Path(dir_okay=False, writable=True))
def backup(config_path: str | None, target: str) -> None:
    """Write a consistent copy of the database to TARGET while the daemon runs (attachments are files under
    data_dir/blobs, content-addressed: copy them with any tool, before or after)."""
    path = Path(target)
    if path.exists():
        fail(f"{path} exists; choose a new file")
    config = read_config(config_path)

    async def action(store: Store) -> None:
        await store.backup(path)

    run(lambda: with_store(config, action))
    click.echo(f"backed up {config.db_path} to {path}")


@main.group()
def blocked() -> None:
    """Senders whose mail is stored and dropped unanswered (`#block`, `[security] blocked_senders`)."""


@blocked.command("list")
@config_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def blocked_list(config_path: str | None, as_json: bool) -> None:
    """Who is blocked, by whom, when and from which ticket; then the config's list."""
    from maild.views import table

    config = read_config(config_path)

    async def action(store: Store) -> list[dict[str, Any]]:
        async with store.snapshot() as tx:
            return await tx.blocked_senders()

    rows = run(lambda: with_store(config, action))
    rows += [
        {"address": a, "blocked_by": "config", "blocked_at": None, "ticket_id": None}
        for a in sorted(config.security.blocked_senders)
    ]
    if as_json:
        emit_json(rows)
        return
    click.echo(table(rows, ["address", "blocked_by", "blocked_at", "ticket_id"]))


@blocked.command("remove")
@config_option
@click.argument("address")
def blocked_remove(config_path: str | None, address: str) -> None:
    """Lift a block made with #block (the config's list is edited in the config)."""
    wanted = address.strip().lower()
    change_one(config_path, lambda tx: tx.unblock_sender(wanted), f"{wanted} is not blocked by #block")
    click.echo(f"{wanted}: unblocked")


@main.group()
def erase() -> None:
    """Remove tickets, or a customer, from the store for good (a data-protection request). Without --yes it
    only says what would go."""


def erase_options(command: Callable[..., Any]) -> Callable[..., Any]:
    command = click.option("--json", "as_json", is_flag=True, help="Print JSON.")(command)
    command = click.option("--yes", "apply", is_flag=True, help="Erase; without it, only say what would go.")(command)
    return config_option(command)


def ticket_ids(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> list[Reference]:
    return [found for value in values if (found := ticket_id(ctx, param, value)) is not None]


@erase.command("ticket")
@erase_options
@click.argument("ticket_ids", nargs=-1, required=True, callback=ticket_ids)
def erase_ticket(config_path: str | None, ticket_ids: list[Reference], apply: bool, as_json: bool) -> None:
    """Erase tickets and the tickets merged into them: messages, attachments, received and sent mail,
    history, time entries. IDs as 12, #12 or [ACME#12]."""
    from maild.erase import erase_tickets

    config = read_config(config_path)
    numbers = [own_ticket(config, ref) for ref in ticket_ids]
    show_erasure(config, lambda where: erase_tickets(where, numbers, apply=apply), as_json)


@erase.command("customer")
@erase_options
@click.argument("address")
def erase_customer(config_path: str | None, address: str, apply: bool, as_json: bool) -> None:
    """Erase the tickets ADDRESS opened (with those merged into them), its mail that opened none, mail to it,
    and its address among other tickets' followers and history."""
    from maild.erase import erase_customer as erase_of

    config = read_config(config_path)
    show_erasure(config, lambda where: erase_of(where, config, address, apply=apply), as_json)


@erase.command("closed")
@erase_options
@click.option(
    "--before",
    "before_text",
    default=None,
    metavar="DATE",
    help="Closed and unchanged since before this date or instant (desk time zone unless it has an offset);"
    " default: now less [retention] erase_closed_after.",
)
def erase_closed(config_path: str | None, before_text: str | None, apply: bool, as_json: bool) -> None:
    """Erase the tickets closed and unchanged since before DATE, with those merged into them (the
    `[retention]` rule, at once or for another date)."""
    from maild.clock import system_clock
    from maild.erase import erase_closed as erase_until

    config = read_config(config_path)
    if before_text is not None:
        before = desk_instant(config, before_text, "--before", "2024-01-01")
    elif config.retention is not None:
        before = system_clock() - config.retention
    else:
        fail("--before DATE is needed when the config has no [retention] erase_closed_after")
    show_erasure(config, lambda where: erase_until(where, before, apply=apply), as_json)


def show_erasure(config: Config, erase: Callable[[Holdings], Awaitable[Report]], as_json: bool) -> None:
    """Run an erasure over the store, the attachment files and IMAP intake's processed mailbox."""
    from maild.erase import EraseRefused, Holdings

    try:
        report = run(lambda: with_store(config, lambda store: erase(Holdings.of(store, config))))
    except EraseRefused as exc:
        fail(str(exc))
    if as_json:
        emit_json(report.as_json())
        return
    click.echo(terminal_safe(report.as_text()))


@main.command()
@click.option(
    "--config",
    "config_path",
    metavar="PATH",
    default="/etc/maild/maild.toml",
    show_default=True,
    help="Where to write the new config.",
)
@click.option("--data-dir", default="/var/lib/maild", show_default=True, help="The data folder to create.")
@click.option("--support-address", default="support@example.com", show_default=True)
@click.option("--force", is_flag=True, help="Overwrite an existing config.")
def init(config_path: str, data_dir: str, support_address: str, force: bool) -> None:
    """Write a commented config and create the data folder for a new install."""
    from importlib.resources import files

    path, data = Path(config_path), Path(data_dir).resolve()
    if path.exists() and not force:
        fail(f"{path} exists (use --force to overwrite)")
    text = files("maild").joinpath("data/maild.example.toml").read_text(encoding="utf-8")
    text = text.replace('data_dir = "/var/lib/maild"', f'data_dir = "{data}"', 1)
    text = text.replace('directory = "/var/lib/maild/sent"', f'directory = "{data / "sent"}"', 1)
    text = text.replace('support_address = "support@example.com"', f'support_address = "{support_address}"', 1)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        data.mkdir(parents=True, exist_ok=True, mode=0o750)
    except OSError as exc:
        fail(f"cannot write {exc.filename}: {exc.strerror}")
    click.echo(f"wrote {path} and created {data}; edit the config, then: maild check-config --config {path}")
