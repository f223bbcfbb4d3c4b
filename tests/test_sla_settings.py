"""Due dates that follow changed SLA settings (`maild.sla_settings`) and keep `#postpone`, and the warnings
ahead of them (`warn_before`), over a temporary store; through mail in test_lifecycle_e2e.py."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from maild import sla_settings
from maild.app import build_services, build_timer_actions
from maild.config import Config, load_config
from maild.lifecycle import Lifecycle
from maild.models import Ticket
from maild.scheduler import run_due
from maild.sla_settings import SETTING, SlaFollower
from maild.store import Store, Tx

START = datetime(2026, 11, 30, 8, tzinfo=UTC)  # a Monday
SLA = '[sla.normal]\nfirst_response = "4h"\nresolution = "2d"\n[sla.high]\nfirst_response = "1h"\nresolution = "8h"\n'
# Monday to Friday 09:00-17:00 UTC: from Monday 08:00, 4 open hours end at 13:00, and 2 days (48 open hours,
# six working days) at the close of the next Monday.
HOURS = '[business_hours]\ndays = ["mon", "tue", "wed", "thu", "fri"]\nhours = "09:00-17:00"\n'


def config(tmp_path: Path, extra: str, desk: str = "") -> Config:
    path = tmp_path / "maild.toml"
    path.write_text(
        f'[maild]\ndata_dir = "data"\ntimezone = "UTC"\n{desk}\n[mail]\nsupport_address = "help@x.example"\n' + extra
    )
    return load_config(path)


async def new_ticket(tx: Tx, lifecycle: Lifecycle, priority: str = "normal") -> Ticket:
    ticket = await tx.create_ticket(
        subject="s", requester="c@x.example", queue="default", priority=priority, language="en", status="new"
    )
    return await lifecycle.start(tx, ticket)


def test_a_new_priority_keeps_the_postponement(tmp_path: Path) -> None:
    """`#postpone` is remembered: a later priority change recomputes the due date and adds it again."""

    async def run() -> None:
        store = await Store.open(tmp_path / "maild.sqlite3", clock=lambda: START)
        lifecycle = Lifecycle(config(tmp_path, SLA), store.clock)
        try:
            async with store.transaction() as tx:
                ticket = await new_ticket(tx, lifecycle)
                ticket = await lifecycle.postpone(tx, ticket, "ana@x.example", "command", timedelta(days=1))
                assert ticket.due_at == START + timedelta(days=3)
                ticket = await lifecycle.update(tx, ticket, "ana@x.example", "command", priority="high")
                assert ticket.due_at == START + timedelta(hours=8, days=1)
                assert ticket.first_response_due_at == START + timedelta(hours=1)
        finally:
            await store.close()

    asyncio.run(run())


def test_the_follower_recomputes_running_slas_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A first run records the settings and moves nothing; after a change every ticket whose SLA runs is
    recomputed (over several transactions), breached and resolved ones are left, and the new settings are
    recorded so that a second run does nothing."""
    monkeypatch.setattr(sla_settings, "CHUNK", 2)
    before, after = config(tmp_path, SLA), config(tmp_path, SLA + HOURS)

    async def run() -> None:
        store = await Store.open(tmp_path / "maild.sqlite3", clock=lambda: START)
        lifecycle = Lifecycle(before, store.clock)
        follower = SlaFollower(store, lifecycle, asyncio.Event(), on_changed=asyncio.Event())
        try:
            async with store.transaction() as tx:
                running = [(await new_ticket(tx, lifecycle)).id for _ in range(5)]
                breached = await tx.update_ticket(await new_ticket(tx, lifecycle), "maild", "t", sla_breached=True)
                resolved = await lifecycle.move(tx, await new_ticket(tx, lifecycle), "resolved", "ana@x.example", "t")
            assert await follower.work() is None
            async with store.snapshot() as tx:
                assert await tx.setting(SETTING) == sla_settings.settings_json(before)
                assert (await tx.get_ticket(running[0])).due_at == START + timedelta(days=2)  # type: ignore[union-attr]

            follower.lifecycle = Lifecycle(after, store.clock)
            assert await follower.work() is None
            assert follower.on_changed.is_set()
            async with store.snapshot() as tx:
                assert await tx.setting(SETTING) == sla_settings.settings_json(after)
                for ticket_id in running:
                    ticket = await tx.get_ticket(ticket_id)
                    assert ticket is not None
                    assert ticket.first_response_due_at == START.replace(hour=13)
                    assert ticket.due_at == START.replace(hour=17) + timedelta(days=7)
                    assert [(h.field, h.cause) for h in await tx.history(ticket_id)][-2:] == [
                        ("first_response_due_at", "SLA settings changed"),
                        ("due_at", "SLA settings changed"),
                    ]
                for kept in (breached, resolved):
                    ticket = await tx.get_ticket(kept.id)
                    assert ticket is not None and ticket.due_at == START + timedelta(days=2)
                history = len(await tx.history(running[0]))

            assert await follower.work() is None
            async with store.snapshot() as tx:
                assert len(await tx.history(running[0])) == history
        finally:
            await store.close()

    asyncio.run(run())


def test_settings_name_what_due_dates_depend_on(tmp_path: Path) -> None:
    """The recorded settings change with an SLA target or the business hours, not with anything else."""
    base = sla_settings.settings_json(config(tmp_path, SLA + HOURS))
    assert sla_settings.settings_json(config(tmp_path, SLA + HOURS, desk='language = "es"\n')) == base
    assert sla_settings.settings_json(config(tmp_path, SLA.replace('"8h"', '"9h"') + HOURS)) != base
    assert sla_settings.settings_json(config(tmp_path, SLA + HOURS + 'holidays = ["2026-12-25"]\n')) != base
    assert sla_settings.settings_json(config(tmp_path, SLA)) != base


def test_a_warning_skips_a_pause_and_follows_a_moved_due_date(tmp_path: Path) -> None:
    """`warn_before` ahead of the first response: a ticket paused for the customer is not warned; one whose
    pause moved its due date is warned at the new time, once, and the warning names that date."""
    sla = '[sla.normal]\nfirst_response = "4h"\nresolution = "2d"\nwarn_before = "1h"\n'
    sla += '[[agents]]\nemail = "ana@x.example"\nname = "Ana"\n'
    now = [START]

    async def run() -> None:
        store = await Store.open(tmp_path / "maild.sqlite3", clock=lambda: now[0])
        services = build_services(config(tmp_path, sla), store.clock)
        actions, lifecycle = build_timer_actions(services), services.lifecycle

        async def warnings_at(moment: datetime) -> list[str]:
            now[0] = moment
            await run_due(store, actions, moment)
            async with store.snapshot() as tx:
                return [m.raw.decode() for m in await tx.list_mail(limit=None) if m.kind == "agent.sla_warning"]

        try:
            async with store.transaction() as tx:
                paused = await new_ticket(tx, lifecycle)
                moved = await new_ticket(tx, lifecycle)
                await lifecycle.move(tx, paused, "waiting_customer", "ana@x.example", "command")
            now[0] = START + timedelta(hours=1)
            async with store.transaction() as tx:
                moved = await lifecycle.move(tx, moved, "waiting_customer", "ana@x.example", "command")
            now[0] = START + timedelta(hours=3)
            async with store.transaction() as tx:  # two hours paused: first response due 14:00, not 12:00
                moved = await lifecycle.move(tx, moved, "open", "c@x.example", "customer reply")
            assert await warnings_at(START + timedelta(hours=3)) == []
            assert await warnings_at(START + timedelta(hours=4, minutes=59)) == []
            [warning] = await warnings_at(START + timedelta(hours=5))
            assert "first response is due at 2026-11-30 14:00 UTC" in warning
            assert len(await warnings_at(START + timedelta(hours=5, minutes=30))) == 1
        finally:
            await store.close()

    asyncio.run(run())


def test_a_reload_adding_warn_before_sets_open_tickets_warnings(tmp_path: Path) -> None:
    """`warn_before` added to a running desk times the warnings of tickets already open, their dates unmoved."""

    async def run() -> None:
        store = await Store.open(tmp_path / "maild.sqlite3", clock=lambda: START)
        lifecycle = Lifecycle(config(tmp_path, SLA), store.clock)
        follower = SlaFollower(store, lifecycle, asyncio.Event(), on_changed=asyncio.Event())
        try:
            async with store.transaction() as tx:
                ticket = await new_ticket(tx, lifecycle)
            await follower.work()
            follower.lifecycle = Lifecycle(
                config(tmp_path, SLA.replace('"4h"', '"4h"\nwarn_before = "1h"')), store.clock
            )
            await follower.work()
            async with store.snapshot() as tx:
                timers = [(t.kind, t.due_at) for t in await tx.pending_timers(ticket.id)]
                assert (await tx.get_ticket(ticket.id)).due_at == ticket.due_at  # type: ignore[union-attr]
            assert timers == [("sla_warning", START + timedelta(hours=3)), ("sla", START + timedelta(hours=4))]
        finally:
            await store.close()

    asyncio.run(run())


def test_postponements_from_before_are_adopted_on_the_first_run(tmp_path: Path) -> None:
    """On a store from before maild remembered `#postpone`, the first run takes what a due date lies beyond
    the settings as postponed, so that a later change of the settings keeps it; a date set by hand on a
    ticket without SLA stays too."""

    async def run() -> None:
        store = await Store.open(tmp_path / "maild.sqlite3", clock=lambda: START)
        lifecycle = Lifecycle(config(tmp_path, SLA), store.clock)
        follower = SlaFollower(store, lifecycle, asyncio.Event(), on_changed=asyncio.Event())
        try:
            async with store.transaction() as tx:  # as the old #postpone left them: the date moved, nothing else
                postponed = await new_ticket(tx, lifecycle)
                await tx.update_ticket(postponed, "ana@x.example", "command", due_at=START + timedelta(days=3))
                by_hand = await new_ticket(tx, lifecycle, priority="low")  # no [sla.low]
                await tx.update_ticket(by_hand, "ana@x.example", "command", due_at=START + timedelta(days=5))
                plain = await new_ticket(tx, lifecycle)
            await follower.work()
            async with store.snapshot() as tx:
                tickets = [await tx.get_ticket(t.id) for t in (postponed, by_hand, plain)]
            assert [t.sla_postponed_seconds for t in tickets if t] == [86400, 5 * 86400, 0]

            follower.lifecycle = Lifecycle(config(tmp_path, SLA + HOURS), store.clock)
            await follower.work()
            async with store.snapshot() as tx:
                tickets = [await tx.get_ticket(t.id) for t in (postponed, by_hand, plain)]
            assert [t.due_at for t in tickets if t] == [
                START.replace(hour=17) + timedelta(days=8),  # 48 open hours, then the day
                START + timedelta(days=5),
                START.replace(hour=17) + timedelta(days=7),
            ]
        finally:
            await store.close()

    asyncio.run(run())
