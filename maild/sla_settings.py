"""Open tickets follow a change of the SLA targets or the business hours, as Zammad's calendars do.

A ticket's due dates are computed when it is created, when its priority changes and when a pause for the
customer ends. Without this, a desk that changes `[sla.*]` or `[business_hours]` (by a reload or a restart)
would keep the old dates on every open ticket until one of those happens. The store keeps the settings the
dates (and their warnings' timers) were computed with; when the config's differ, `SlaFollower` recomputes
the due dates and timers of every ticket whose SLA is still running (not breached, not resolved or closed)
with `Lifecycle.follow_settings`, a chunk of tickets per transaction so that mail keeps flowing, and records
the new settings when all are done. A stop midway leaves the old settings recorded: the next start goes over
the tickets again, which is harmless. The first start on a store records its settings and, for tickets from
before maild remembered `#postpone`s, takes what their due dates lie beyond the settings as postponed.
"""

from __future__ import annotations

import asyncio
import json

import structlog

from maild.config import Config
from maild.lifecycle import CLOCK_STOPPED, Lifecycle
from maild.store import Store
from maild.worker import Worker

log = structlog.get_logger("maild.sla_settings")

SETTING = "sla_settings"
# Tickets per transaction. At ~0.15 ms of CPU a ticket, a mail waits for the store at most ~40 ms while a
# recompute runs; 20,000 open tickets took 3.3 s in all on the 2-core machine.
CHUNK = 100


def settings_json(config: Config) -> str:
    """What due dates and their timers depend on, as canonical JSON: the SLA targets and warnings, and the
    business hours."""
    hours = config.business_hours
    return json.dumps(
        {
            "sla": {
                priority: [
                    sla.first_response.total_seconds(),
                    sla.resolution.total_seconds(),
                    sla.warn_before.total_seconds() if sla.warn_before is not None else None,
                ]
                for priority, sla in config.sla.items()
            },
            "business_hours": None
            if hours is None
            else {
                "timezone": str(hours.zone),
                "days": sorted(hours.days),
                "opens": hours.opens.isoformat(),
                "closes": hours.closes.isoformat() if hours.closes else None,
                "holidays": sorted(day.isoformat() for day in hours.holidays),
            },
        },
        sort_keys=True,
    )


class SlaFollower(Worker):
    """Brings open tickets' due dates in line with the settings; woken on start and after a reload."""

    name = "sla_follower"

    def __init__(self, store: Store, lifecycle: Lifecycle, wakeup: asyncio.Event, on_changed: asyncio.Event) -> None:
        # It acts on a wake-up only; the poll is a fallback that costs one read.
        super().__init__(wakeup, poll_seconds=3600.0)
        self.store = store
        self.lifecycle = lifecycle  # replaced on reload, with the new config
        self.on_changed = on_changed

    async def work(self) -> float | None:
        lifecycle = self.lifecycle
        wanted = settings_json(lifecycle.config)
        async with self.store.snapshot() as tx:
            recorded = await tx.setting(SETTING)
            # A store from before maild recorded its settings (or a new one): its dates are this config's, and
            # what lies beyond them was postponed by hand before maild remembered postponements.
            adopting = recorded is None
            ids = [] if recorded == wanted else await tx.tickets_with_running_sla(unpostponed_due=adopting)
        if recorded == wanted:
            return None
        step = lifecycle.adopt_postponement if adopting else lifecycle.follow_settings
        changed = 0
        for start in range(0, len(ids), CHUNK):
            if self.stopping:
                return None  # the settings stay unrecorded: the next start goes over the tickets again
            if self.lifecycle is not lifecycle:
                return 0  # reloaded meanwhile: start over with the newest settings
            async with self.store.transaction() as tx:
                for ticket_id in ids[start : start + CHUNK]:
                    ticket = await tx.get_ticket(ticket_id)
                    # Mail may have resolved it or the SLA timer breached it since the list was read.
                    if ticket is None or ticket.sla_breached or ticket.status in CLOCK_STOPPED:
                        continue
                    if await step(tx, ticket):
                        changed += 1
            self.on_changed.set()  # SLA timers were set again: the scheduler recomputes its sleep
        async with self.store.transaction() as tx:
            await tx.set_setting(SETTING, wanted)
        log.info("sla_settings_adopted" if adopting else "sla_settings_followed", tickets=changed)
        return None
