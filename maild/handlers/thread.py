"""thread: find the ticket a mail belongs to, by the subject token or by In-Reply-To/References, and bring it up
to date: its timers that are due run first, as the scheduler would have run them."""

from __future__ import annotations

from maild.durations import format_duration
from maild.handlers.base import CONTINUE, Context, Outcome, Services
from maild.store import Tx
from maild.tokens import ticket_ids_in

MAX_MERGE_STEPS = 20
MAX_CATCH_UP = 20  # due timers one mail runs on its ticket, at most


class Thread:
    name = "thread"

    def __init__(self, services: Services) -> None:
        self.prefix = services.config.ticket_prefix
        self.timers = services.timers
        self.clock = services.clock
        self.security = services.config.security

    async def process(self, ctx: Context, tx: Tx) -> Outcome:
        mail = ctx.parsed
        # The token is explicit (and survives clients that drop References), so it wins.
        for ticket_id in ticket_ids_in(mail.subject, self.prefix):
            ctx.ticket = await tx.get_ticket(ticket_id)
            if ctx.ticket:
                ctx.notes.append(f"threaded by token {ticket_id}")
                await self.found(ctx, tx)
                return CONTINUE
        # References lists the thread oldest first, In-Reply-To names the parent: parent first.
        candidates = [*mail.references, *mail.in_reply_to]
        # A bounce names the mail it returns; that mail's ticket is where agents will look for it.
        if ctx.bounce and ctx.bounce.original_message_id:
            candidates.append(ctx.bounce.original_message_id)
        referenced = await tx.ticket_for_thread_ids(candidates) if candidates else None
        if referenced is not None:
            ctx.ticket = await tx.get_ticket(referenced)
            ctx.notes.append(f"threaded by reference to {referenced}")
            await self.found(ctx, tx)
        return CONTINUE

    async def found(self, ctx: Context, tx: Tx) -> None:
        """The mail's ticket: where merges led, brought up to date, and whether this sender floods it."""
        await self.follow_merges(ctx, tx)
        await self.catch_up(ctx, tx)
        await self.check_flood(ctx, tx)

    async def follow_merges(self, ctx: Context, tx: Tx) -> None:
        """A merged ticket's mail goes where its thread went. Merges only go into unmerged tickets, but the
        target may be merged on later: follow the chain, a bounded number of steps."""
        for _ in range(MAX_MERGE_STEPS):
            if ctx.ticket is None or ctx.ticket.merged_into is None:
                return
            ctx.notes.append(f"ticket {ctx.ticket.id} was merged into {ctx.ticket.merged_into}")
            ctx.ticket = await tx.get_ticket(ctx.ticket.merged_into)

    async def catch_up(self, ctx: Context, tx: Tx) -> None:
        """Run the ticket's due timers before the mail touches it. Without a running scheduler (`maild inject`
        with `maild tick` from cron, or a daemon that was down) a reply after the feedback window would
        otherwise reopen a ticket that is closed by then, instead of opening a new one."""
        if ctx.ticket is None:
            return
        now, ran = self.clock(), False
        # The earliest due timer each time: one may start another that is due too (a no-response resolution
        # its feedback window). Bounded, as a chain of status timers ends at closed within a few.
        for _ in range(MAX_CATCH_UP):
            due = [t for t in await tx.pending_timers(ctx.ticket.id) if t.due_at <= now]
            if not due:
                break
            if (outcome := await self.timers.fire(tx, due[0])) is not None:
                ctx.notes.append(f"due timer {due[0].kind}: {outcome}")
                ran = True
        if ran:
            ctx.ticket = await tx.get_ticket(ctx.ticket.id)

    async def check_flood(self, ctx: Context, tx: Tx) -> None:
        """Keep a loop no header gives away from feeding itself (two autoresponders without Auto-Submitted, an
        agent's answering our notices): past `[security] loop_mails` from one sender on this ticket within
        `loop_window`, their mail is kept as machine mail (internal, never answered, relayed or notified)
        until the pace drops, as Zammad's loop protection does. An agent's mail with commands is a person's
        (no autoresponder writes them) and never held; an agent whose plain mail is held is told, once."""
        if ctx.automatic or ctx.ticket is None or not ctx.sender or ctx.commands or ctx.command_errors:
            return
        limit, window = self.security.loop_mails, self.security.loop_window
        # The newest five times as many messages: two or three parties answering each other still show.
        authors = await tx.recent_authors(ctx.ticket.id, self.clock() - window, 5 * limit)
        if (count := authors.count(ctx.sender)) >= limit:
            ctx.automatic = (
                f"loop suspected: {limit} mails from {ctx.sender} on this ticket within {format_duration(window)}"
            )
            ctx.held = count == limit and ctx.agent is not None  # the first held: tell the agent
            ctx.notes.append(ctx.automatic)
