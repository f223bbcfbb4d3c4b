"""Running the lifecycle timers: the daemon sleeps until the next one is due (or something changed).

Each timer runs in its own transaction that first marks it done, so a timer runs once even if two processes
(the daemon and `maild tick`) reach it together, and each action re-checks the ticket's state, so a timer
made stale by a later change does nothing. After downtime every overdue timer runs at once: catching up. A
status timer acts as of when it was due (a feedback window it starts ends when it would have), and SLA
timers as of now (a breach is noticed late, and a warning whose date has passed is not sent).
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

import structlog

from maild.automail import is_no_reply
from maild.compose import Draft
from maild.config import Config
from maild.lifecycle import FEEDBACK_CLOSE, NO_RESPONSE, SLA, SLA_WARNING, SYSTEM, WAIT_OVER, Lifecycle
from maild.models import Ticket, Timer
from maild.outbox import Outbox
from maild.render import Renderer, ticket_vars
from maild.statuses import CLOSED, NEW, RESOLVED, WAITING_CUSTOMER, WAITING_UNTIL
from maild.store import Store, Tx
from maild.worker import Worker

log = structlog.get_logger("maild.scheduler")


class TimerActions:
    """What each kind of timer does when it fires."""

    def __init__(self, config: Config, lifecycle: Lifecycle, renderer: Renderer, outbox: Outbox) -> None:
        self.config = config
        self.lifecycle = lifecycle
        self.renderer = renderer
        self.outbox = outbox

    async def fire(self, tx: Tx, timer: Timer) -> str | None:
        """Mark ``timer`` done and run it; None when it was no longer pending (run elsewhere, or cancelled)."""
        if not await tx.finish_timer(timer.id):
            return None
        return await self.run(tx, timer)

    async def run(self, tx: Tx, timer: Timer) -> str:
        """Fire ``timer``; a word saying what happened, for the log."""
        ticket = await tx.get_ticket(timer.ticket_id)
        if ticket is None:
            return "no ticket"
        on_time = self.lifecycle.as_of(timer.due_at)  # a status timer acts as of when it was due
        if timer.kind == NO_RESPONSE and ticket.status == WAITING_CUSTOMER:
            first = {} if ticket.resolved_at else {"resolved_at": timer.due_at, "resolved_by": SYSTEM}
            ticket = await on_time.move(
                tx,
                ticket,
                RESOLVED,
                SYSTEM,
                "timer: no response",
                resolution_method="no_response",
                resolution_note=None,
                **first,
            )
            await self.mail(tx, ticket, "customer.no_response", [ticket.requester, *ticket.followers])
            return "resolved: no response"
        if timer.kind == WAIT_OVER and ticket.status == WAITING_UNTIL:
            ticket = await on_time.move(tx, ticket, NEW, SYSTEM, "timer: waiting date reached", wait_until=None)
            await self.mail(tx, ticket, "agent.wait_over", self.agents_for(ticket))
            return "back to new"
        if timer.kind == FEEDBACK_CLOSE and ticket.status == RESOLVED:
            ticket = await on_time.move(tx, ticket, CLOSED, SYSTEM, "timer: feedback window ended")
            if ticket.resolution_method != "spam":
                await self.mail(tx, ticket, "customer.closed", [ticket.requester, *ticket.followers])
            return "closed"
        if timer.kind == SLA:
            return await self.check_sla(tx, ticket)
        if timer.kind == SLA_WARNING:
            return await self.warn_sla(tx, ticket)
        return "stale"

    async def check_sla(self, tx: Tx, ticket: Ticket) -> str:
        if not self.lifecycle.breached(ticket):
            await self.lifecycle.schedule_sla(tx, ticket)  # the due dates moved: wait for the new one
            return "not due"
        ticket = await tx.update_ticket(ticket, SYSTEM, "timer: SLA breached", sla_breached=True)
        admins = [a.email for a in self.config.agents if a.role == "admin"]
        recipients = list(dict.fromkeys([*admins, *([ticket.assignee] if ticket.assignee else [])]))
        await self.mail(tx, ticket, "agent.sla_breach", recipients)
        return "breached"

    async def warn_sla(self, tx: Tx, ticket: Ticket) -> str:
        """Tell whoever works the ticket (its assignee, else its queue's agents) that a due date is near."""
        due = self.lifecycle.warning_due(ticket)
        if due is None:
            await self.lifecycle.schedule_sla(tx, ticket)  # met, paused or moved since: wait for what is due
            return "not due"
        ticket = await tx.update_ticket(ticket, SYSTEM, "timer: SLA warning", sla_warned_for=due)
        first_response = due == ticket.first_response_due_at and ticket.first_responded_at is None
        await self.mail(
            tx,
            ticket,
            "agent.sla_warning",
            self.agents_for(ticket),
            due=due,
            due_what="first_response" if first_response else "resolution",
        )
        return "warned"

    def agents_for(self, ticket: Ticket) -> list[str]:
        if ticket.assignee:
            return [ticket.assignee]
        return [a.email for a in self.config.queue_agents(ticket.queue)]

    async def mail(self, tx: Tx, ticket: Ticket, event: str, recipients: list[str], **extra: Any) -> None:
        """Queue one mail per recipient (customers' language for customers, the default for agents);
        ``extra`` are the event's own template variables. Automatic mail to a customer skips no-reply
        addresses."""
        language = ticket.language if event.startswith("customer.") else self.config.language
        if event.startswith("customer."):
            recipients = [r for r in recipients if not is_no_reply(r)]
        references = await tx.thread_chain(ticket.id, event.split(".")[0])
        for recipient in dict.fromkeys(recipients):
            rendered = self.renderer.render(
                event, language, **ticket_vars(ticket, self.config.ticket_prefix, self.config.from_name), **extra
            )
            draft = Draft(
                kind=event, to=[recipient], subject=rendered.subject, body=rendered.body, references=references
            )
            await self.outbox.queue(tx, draft, ticket.id)


async def run_due(store: Store, actions: TimerActions, now: datetime) -> int:
    """Run every timer due at ``now``; the number run."""
    count = 0
    while True:
        async with store.snapshot() as tx:
            due = await tx.due_timers(now)
        if not due:
            return count
        for timer in due:
            async with store.transaction() as tx:
                outcome = await actions.fire(tx, timer)
            if outcome is None:
                continue
            count += 1
            log.info(
                "timer", kind=timer.kind, ticket_id=timer.ticket_id, due_at=timer.due_at.isoformat(), outcome=outcome
            )


class Scheduler(Worker):
    """Sleeps until the next timer is due, or until a processed message may have scheduled one."""

    name = "scheduler"

    def __init__(
        self,
        store: Store,
        actions: TimerActions,
        wakeup: asyncio.Event,
        on_fired: asyncio.Event,
        poll_seconds: float = 30.0,
    ) -> None:
        super().__init__(wakeup, poll_seconds)
        self.store = store
        self.actions = actions
        self.on_fired = on_fired

    async def work(self) -> float | None:
        if await run_due(self.store, self.actions, self.store.clock()):
            self.on_fired.set()  # timers queue mail: wake the outbound worker
        async with self.store.snapshot() as tx:
            next_at = await tx.next_timer_at()
        return (next_at - self.store.clock()).total_seconds() if next_at else None
