"""The ticket lifecycle (CONTRACT §3): status moves with their side effects, SLA clocks and timers.

Every status change in maild goes through `Lifecycle.move`, which checks the transition table, counts the
time spent on the agents' or the customer's side, extends SLA due dates by the open time spent waiting for
the customer (SLA time is open time: `maild.business_hours`), and replaces the ticket's timers with those
its new status needs. Timers are rows in the store; `maild.scheduler` runs them when due.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from maild.business_hours import ALWAYS_OPEN, OpenHours
from maild.clock import Clock
from maild.config import Config
from maild.models import Ticket
from maild.statuses import CLOSED, RESOLVED, WAITING_CUSTOMER, WAITING_UNTIL, check_transition
from maild.store import Tx

# The timer each waiting or resolved status starts; leaving the status cancels it.
NO_RESPONSE, WAIT_OVER, FEEDBACK_CLOSE, SLA = "no_response", "wait_over", "feedback_close", "sla"
# `[sla.*] warn_before` ahead of the SLA timer.
SLA_WARNING = "sla_warning"
STATUS_TIMERS = {WAITING_CUSTOMER: NO_RESPONSE, WAITING_UNTIL: WAIT_OVER, RESOLVED: FEEDBACK_CLOSE}
# Time in these statuses counts on no side: the work is done.
CLOCK_STOPPED = frozenset({RESOLVED, CLOSED})
SYSTEM = "maild"


def unmet_due(ticket: Ticket) -> datetime | None:
    """The earliest of the ticket's due dates not met yet (a first response given meets its date)."""
    dues = [
        d for d in (ticket.due_at, None if ticket.first_responded_at else ticket.first_response_due_at) if d is not None
    ]
    return min(dues) if dues else None


class Lifecycle:
    def __init__(self, config: Config, clock: Clock) -> None:
        self.config = config
        self.clock = clock
        self.hours: OpenHours = config.business_hours or ALWAYS_OPEN

    def sla_due(self, ticket: Ticket, priority: str) -> dict[str, datetime | None]:
        """Due dates for a priority: its open time (`maild.business_hours`) counted from creation, plus the
        open time of the finished pauses for the customer, plus the calendar time of `#postpone`s. A pause
        still running moves them when it ends (`move`), as it does for due dates set earlier. Without an
        SLA for the priority there are none, but for a date `#postpone` set by hand."""
        sla = self.config.sla.get(priority)
        if sla is None:
            return {"first_response_due_at": None, "due_at": ticket.due_at if ticket.sla_postponed_seconds else None}
        paused = timedelta(seconds=ticket.sla_paused_seconds)
        postponed = timedelta(seconds=ticket.sla_postponed_seconds)
        return {
            "first_response_due_at": self.hours.add(ticket.created_at, sla.first_response + paused),
            "due_at": self.hours.add(ticket.created_at, sla.resolution + paused) + postponed,
        }

    def live_clock(self, ticket: Ticket) -> tuple[int, int]:
        """(agent_seconds, customer_seconds) including the side that is running now."""
        agent, customer = ticket.agent_seconds, ticket.customer_seconds
        if ticket.clock_since and ticket.status not in CLOCK_STOPPED:
            running = max(0, int((self.clock() - ticket.clock_since).total_seconds()))
            if ticket.status == WAITING_CUSTOMER:
                customer += running
            else:
                agent += running
        return agent, customer

    async def start(self, tx: Tx, ticket: Ticket) -> Ticket:
        """A new ticket: its SLA due dates, and the agents' clock starts."""
        ticket = await tx.update_ticket(
            ticket, SYSTEM, "created", clock_since=self.clock(), **self.sla_due(ticket, ticket.priority)
        )
        await self.schedule_sla(tx, ticket)
        return ticket

    async def move(self, tx: Tx, ticket: Ticket, status: str, actor: str, cause: str, **fields: Any) -> Ticket:
        """Change the status (raising TransitionRefused if the table forbids it) with all it entails."""
        check_transition(ticket.status, status)
        if status == ticket.status:
            return await self.update(tx, ticket, actor, cause, **fields)
        now = self.clock()
        agent_seconds, customer_seconds = self.live_clock(ticket)
        changes: dict[str, Any] = {
            "agent_seconds": agent_seconds,
            "customer_seconds": customer_seconds,
            "clock_since": now,
        }
        reopened = ticket.status == RESOLVED and status != CLOSED
        if reopened:
            # No longer resolved, so no resolution (history keeps it; resolved_at keeps the first).
            changes.update(resolution_method=None, resolution_note=None)
        if ticket.clock_since and (ticket.status == WAITING_CUSTOMER or reopened):
            # The SLA clock paused while we waited for the customer, or while the ticket was resolved and
            # the customer's answer reopens it: the due dates move back by the open time that passed (a
            # reopened ticket is not overdue for the days it lay resolved).
            paused = self.hours.open_time(ticket.clock_since, now)
            changes["sla_paused_seconds"] = ticket.sla_paused_seconds + int(paused.total_seconds())
            if ticket.due_at and "due_at" not in fields:
                changes["due_at"] = self.hours.add(ticket.due_at, paused)
            if ticket.first_response_due_at and not ticket.first_responded_at:
                changes["first_response_due_at"] = self.hours.add(ticket.first_response_due_at, paused)
        ticket = await tx.update_ticket(ticket, actor, cause, status=status, **changes, **fields)
        await tx.cancel_timers(ticket.id, STATUS_TIMERS.values())
        if status == WAITING_CUSTOMER:
            await tx.set_timer(ticket.id, NO_RESPONSE, now + self.config.lifecycle.close_if_no_response)
        elif status == WAITING_UNTIL and ticket.wait_until:
            await tx.set_timer(ticket.id, WAIT_OVER, ticket.wait_until)
        elif status == RESOLVED:
            await tx.set_timer(ticket.id, FEEDBACK_CLOSE, now + self.config.lifecycle.feedback_window)
        await self.schedule_sla(tx, ticket)
        return ticket

    async def update(self, tx: Tx, ticket: Ticket, actor: str, cause: str, **fields: Any) -> Ticket:
        """Change fields other than the status; a new priority recomputes the SLA due dates."""
        if "priority" in fields and fields["priority"] != ticket.priority:
            fields = {**self.sla_due(ticket, fields["priority"]), **fields}
        new_wait = ticket.status == WAITING_UNTIL and fields.get("wait_until") not in (None, ticket.wait_until)
        ticket = await tx.update_ticket(ticket, actor, cause, **fields)
        if new_wait and ticket.wait_until:  # `#wait until` again with another date: wake up then instead
            await tx.set_timer(ticket.id, WAIT_OVER, ticket.wait_until)
        await self.schedule_sla(tx, ticket)
        return ticket

    def as_of(self, moment: datetime) -> Lifecycle:
        """This lifecycle with its clock stopped at ``moment``. A status timer that runs late (maild was down,
        or `tick` runs from cron) acts as of when it was due, so what it starts (a feedback window after a
        no-response resolution) counts from then, and catching up can run that too."""
        return Lifecycle(self.config, lambda: moment)

    async def postpone(self, tx: Tx, ticket: Ticket, actor: str, cause: str, delta: timedelta) -> Ticket:
        """Move the resolution due date (or set one, from now, when there is none) by calendar time, and
        remember by how much, so that recomputed due dates keep it."""
        return await self.update(
            tx,
            ticket,
            actor,
            cause,
            due_at=(ticket.due_at or self.clock()) + delta,
            sla_postponed_seconds=ticket.sla_postponed_seconds + int(delta.total_seconds()),
        )

    async def adopt_postponement(self, tx: Tx, ticket: Ticket) -> bool:
        """Take what the resolution due date lies beyond the settings as postponed by hand (`#postpone`s made
        before maild remembered them), so that recomputing keeps it. Whether there was any."""
        if ticket.due_at is None or ticket.sla_postponed_seconds:
            return False
        computed = self.sla_due(ticket, ticket.priority)["due_at"]
        seconds = int((ticket.due_at - (computed or ticket.created_at)).total_seconds())
        if computed is None:
            seconds = max(seconds, 1)  # no SLA: the date was set by hand, all of it (a second at least marks it)
        if seconds <= 0:
            return False
        await tx.update_ticket(ticket, SYSTEM, "settings recorded", sla_postponed_seconds=seconds)
        return True

    async def follow_settings(self, tx: Tx, ticket: Ticket) -> bool:
        """Recompute the due dates and their timers by the current `[sla.*]` and `[business_hours]`
        (`maild.sla_settings`); a first response already given keeps its due date. Whether dates changed."""
        due = self.sla_due(ticket, ticket.priority)
        if ticket.first_responded_at is not None:
            del due["first_response_due_at"]
        changed = any(getattr(ticket, name) != value for name, value in due.items())
        if changed:
            ticket = await tx.update_ticket(ticket, SYSTEM, "SLA settings changed", **due)
        await self.schedule_sla(tx, ticket)  # a new warn_before moves the warning, not the dates
        return changed

    async def responded(self, tx: Tx, ticket: Ticket, actor: str) -> Ticket:
        """An agent's first public reply meets the first-response SLA."""
        if ticket.first_responded_at is None:
            ticket = await self.update(tx, ticket, actor, "first response", first_responded_at=self.clock())
        return ticket

    async def schedule_sla(self, tx: Tx, ticket: Ticket) -> None:
        """Keep one SLA timer at the earliest unmet due date, and one `warn_before` ahead of it unless the
        agents were warned of that date; none when met, breached or paused."""
        # Every processed mail comes here: one statement cancels both, as one did for the SLA timer alone.
        due = self.next_due(ticket)
        warn_at = self.warn_at(ticket, due) if due else None
        timers = {kind: at for kind, at in ((SLA, due), (SLA_WARNING, warn_at)) if at is not None}
        await tx.replace_timers(ticket.id, [SLA, SLA_WARNING], timers)

    def next_due(self, ticket: Ticket) -> datetime | None:
        """The earliest due date still to meet; None when the SLA is met, breached or paused."""
        if ticket.sla_breached or ticket.status in (*CLOCK_STOPPED, WAITING_CUSTOMER):
            return None
        return unmet_due(ticket)

    def warn_at(self, ticket: Ticket, due: datetime) -> datetime | None:
        """When to warn of ``due``: `warn_before` ahead of it, or None (no warning set, or given already)."""
        sla = self.config.sla.get(ticket.priority)
        if sla is None or sla.warn_before is None or ticket.sla_warned_for == due or due <= self.clock():
            return None  # past the date, the breach check is due, not a warning
        return due - sla.warn_before

    def warning_due(self, ticket: Ticket) -> datetime | None:
        """The due date the agents should be warned of now, if any (not yet due, not warned of already)."""
        due = self.next_due(ticket)
        warn_at = self.warn_at(ticket, due) if due else None
        return due if due and warn_at and warn_at <= self.clock() < due else None

    def breached(self, ticket: Ticket) -> bool:
        now = self.clock()
        late_response = (
            ticket.first_response_due_at is not None
            and ticket.first_responded_at is None
            and now >= ticket.first_response_due_at
        )
        late_resolution = ticket.due_at is not None and now >= ticket.due_at
        return ticket.status not in (*CLOCK_STOPPED, WAITING_CUSTOMER) and (late_response or late_resolution)
