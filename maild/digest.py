"""The agents' daily digest (`[digest]`): each agent's open tickets and what waits unassigned in their queues.

Agents work by mail alone, so they have no dashboard like RT's "RT at a glance" or Zammad's overviews to
see what is on their plate; every other mail maild sends them is about one ticket. Once a day, at `at` in the
desk's time zone on the digest days, each agent with anything open gets one mail listing it, most urgent
first. The store records the days sent, so a restart sends no day twice, and a daemon that was down at
that hour sends the day's digest when it starts (one, not one per missed day). `maild tick --now` sends it
too, as of the instant it is given; a day it sends in the future does not stop today's.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import structlog

from maild.compose import Draft
from maild.config import DEFAULT_QUEUE, Agent, Config, Digest
from maild.lifecycle import Lifecycle, unmet_due
from maild.models import Ticket
from maild.outbox import Outbox
from maild.render import Renderer
from maild.statuses import WAITING_CUSTOMER
from maild.store import Store, Tx
from maild.tokens import format_token
from maild.worker import Worker

log = structlog.get_logger("maild.digest")

SETTING = "digest_sent_on"  # the local days of the latest digests, a JSON list
KEPT_DAYS = 31
MAX_LISTED = 50  # per section; the rest is counted, and `maild ticket list` shows it
KIND = "agent.digest"  # the template, and the outbox kind by which a reply to a digest is known


@dataclass(frozen=True)
class Entry:
    """One ticket's line: its token, its earliest unmet due date (None when paused or without SLA), whether
    it is overdue (that date past, or the SLA breached before), and whether that date itself is past (a
    ticket whose first response was late is overdue, but its resolution may be due in days)."""

    token: str
    ticket: Ticket
    due: datetime | None
    overdue: bool
    late: bool = False


class AgentDigests:
    """Builds and queues the day's digests."""

    def __init__(self, config: Config, lifecycle: Lifecycle, renderer: Renderer, outbox: Outbox) -> None:
        self.config = config
        self.lifecycle = lifecycle
        self.renderer = renderer
        self.outbox = outbox

    def day_due(self, now: datetime) -> date | None:
        """The local day whose digest is due at ``now``: today, on a digest day once its hour has come."""
        digest = self.config.digest
        if digest is None:
            return None
        local = now.astimezone(digest.zone)
        today = local.date()
        if not _digest_day(digest, today) or local.time() < digest.at:
            return None
        return today

    def next_at(self, now: datetime) -> datetime | None:
        """The first digest hour after ``now``."""
        digest = self.config.digest
        if digest is None:
            return None
        today = now.astimezone(digest.zone).date()
        for offset in range(367):
            day = today + timedelta(days=offset)
            at = datetime.combine(day, digest.at, tzinfo=digest.zone)
            if _digest_day(digest, day) and at > now:
                return at
        return None  # no digest day in a year (all holidays): the hourly poll looks again

    def today(self) -> date:
        """The desk's date now, in its time zone."""
        return self.lifecycle.clock().astimezone(ZoneInfo(self.config.timezone)).date()

    async def queue_asked(self, tx: Tx, agent: Agent) -> None:
        """`#digest`: ``agent``'s digest of today, even when nothing is open."""
        await self.queue_one(tx, agent, self.today(), asked=True)

    async def queue(self, tx: Tx, day: date) -> int:
        """Queue the digest of ``day`` to every agent with something open; the number of mails."""
        sent = 0
        for agent in self.config.agents:
            if await self.queue_one(tx, agent, day):
                sent += 1
        return sent

    async def queue_one(self, tx: Tx, agent: Agent, day: date, *, asked: bool = False) -> bool:
        """Queue ``agent``'s digest; whether it was. Unless ``asked`` for (`#digest`), none when nothing is open."""
        mine, mine_total = await tx.open_tickets_by_urgency(MAX_LISTED, assignee=agent.email)
        queues = [q for q in (DEFAULT_QUEUE, *(q.name for q in self.config.queues)) if self.handles(agent, q)]
        waiting, waiting_total = await tx.open_tickets_by_urgency(MAX_LISTED, queues=queues)
        if not mine_total and not waiting_total and not asked:
            return False  # nothing to say: no mail
        mine_entries = [self.entry(t) for t in mine]
        overdue = sum(1 for e in mine_entries if e.overdue)
        # Most urgent first: when every listed ticket is overdue, more may be beyond the list.
        more_overdue = overdue == len(mine_entries) < mine_total
        rendered = self.renderer.render(
            KIND,
            self.config.language,
            agent=agent,
            day=day,
            mine=mine_entries,
            mine_total=mine_total,
            overdue=f"{overdue}{'+' if more_overdue else ''}" if overdue else "",  # for the subject
            waiting=[self.entry(t) for t in waiting],
            waiting_total=waiting_total,
            support_address=self.config.support_address,
            from_name=self.config.from_name,
        )
        draft = Draft(kind=KIND, to=[agent.email], subject=rendered.subject, body=rendered.body)
        await self.outbox.queue(tx, draft, None)
        return True

    def handles(self, agent: Agent, queue: str) -> bool:
        return agent in self.config.queue_agents(queue)

    def entry(self, ticket: Ticket) -> Entry:
        # A pause for the customer will move the dates when it ends: showing them now would mislead.
        due = None if ticket.status == WAITING_CUSTOMER else unmet_due(ticket)
        late = due is not None and due <= self.lifecycle.clock()
        return Entry(format_token(self.config.ticket_prefix, ticket.id), ticket, due, ticket.sla_breached or late, late)


def _digest_day(digest: Digest, day: date) -> bool:
    return day.weekday() in digest.days and day not in digest.skipped


async def sent_days(tx: Tx) -> list[str]:
    """The days (ISO dates) the latest daily digests went out on, oldest first."""
    days: list[str] = json.loads(await tx.setting(SETTING) or "[]")
    return days


async def send_due_digest(store: Store, digests: AgentDigests, now: datetime) -> int:
    """Queue the digest due at ``now`` unless that day's went out; the mails queued."""
    day = digests.day_due(now)
    if day is None:
        return 0
    async with store.transaction() as tx:
        days = await sent_days(tx)
        if day.isoformat() in days:
            return 0
        sent = await digests.queue(tx, day)
        await tx.set_setting(SETTING, json.dumps(sorted([*days, day.isoformat()])[-KEPT_DAYS:]))
    log.info("digest", day=day.isoformat(), mails=sent)
    return sent


class DigestWorker(Worker):
    """Sends the day's digest when it falls due; sleeps until the next one (or a reload)."""

    name = "digest"

    def __init__(self, store: Store, digests: AgentDigests, wakeup: asyncio.Event, on_queued: asyncio.Event) -> None:
        super().__init__(wakeup, poll_seconds=3600.0)
        self.store = store
        self.digests = digests  # replaced on reload, with the new config
        self.on_queued = on_queued

    async def work(self) -> float | None:
        if await send_due_digest(self.store, self.digests, self.store.clock()):
            self.on_queued.set()  # wake the outbound worker
        now = self.store.clock()
        next_at = self.digests.next_at(now)
        return (next_at - now).total_seconds() if next_at else None
