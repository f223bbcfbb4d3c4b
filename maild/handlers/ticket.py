"""ticket: open a ticket for a mail that threads nowhere (or into a closed one); settle who takes part."""

from __future__ import annotations

from maild.commands import Requester
from maild.config import LANGUAGES
from maild.handlers.base import CONTINUE, Context, Outcome, Services, Stop
from maild.language import customer_language
from maild.statuses import CLOSED, NEW
from maild.store import Tx
from maild.tokens import strip_tokens


class OpenTicket:
    name = "ticket"

    def __init__(self, services: Services) -> None:
        self.config = services.config
        self.lifecycle = services.lifecycle

    async def process(self, ctx: Context, tx: Tx) -> Outcome:
        old = ctx.ticket
        # Closed is final: a person writing into it starts a new ticket, linked to the old one when they took
        # part in it; a stranger quoting its token learns nothing of it. Agents' mail and machine mail stay on
        # the closed ticket for the record.
        if old is not None and old.status == CLOSED and ctx.agent is None and not ctx.automatic:
            ctx.ticket = None
            if ctx.sender in (old.requester, *old.followers):
                ctx.spawned_from = old.id
            else:
                ctx.notes.append(f"closed ticket {old.id} is not the sender's: a new ticket, not linked")
        if ctx.ticket is None:
            if not ctx.sender:
                return Stop("no sender address")  # machine mail that names no ticket and nobody
            if old is None:
                answer_at_reply_to(ctx)
            await self.create(ctx, tx)
            if old is not None and ctx.spawned_from:
                await tx.link_tickets(ctx.current_ticket.id, old.id, ctx.sender, "reply to a closed ticket")
                ctx.current_ticket.linked = [old.id]
        ticket = ctx.current_ticket
        ctx.participant = ctx.agent is not None or ctx.sender in (ticket.requester, *ticket.followers)
        return CONTINUE

    async def create(self, ctx: Context, tx: Tx) -> None:
        mail = ctx.parsed
        recipients = [*ctx.inbound.envelope.rcpt_to, *mail.to, *mail.cc]
        ticket = await tx.create_ticket(
            subject=strip_tokens(mail.subject, self.config.ticket_prefix),
            # An agent's "#requester ADDR" then gives it to that customer, with the mail's other commands: a
            # refused mail leaves it the agent's own.
            requester=ctx.sender,
            queue=self.config.queue_for([r.lower() for r in recipients]),
            priority="normal",
            language=customer_language(
                f"{mail.subject}\n{ctx.text.strip() or mail.full_text}",  # the subject is the customer's words too
                [mail.header("content-language"), mail.header("accept-language")],
                self.config.language,
                LANGUAGES,
            ),
            status=NEW,
        )
        ctx.created = True
        await tx.add_history(ticket.id, ctx.sender, "status", None, NEW, "mail")
        if ctx.via:  # who wrote it stays on record: the requester is the Reply-To address
            await tx.add_history(ticket.id, ctx.via, "requester", ctx.via, ctx.sender, "Reply-To of the first mail")
        ctx.ticket = await self.lifecycle.start(tx, ticket)
        # A forward or a mail that starts with a quoted block has no "new" text: the whole body is the request.
        if not ctx.text.strip():
            ctx.text = mail.full_text.strip()
        # Everyone the customer wrote to besides us is in the conversation: they follow the public replies.
        ctx.ticket.followers = await tx.add_followers(
            ticket.id, self.followers(ctx, [*mail.to, *mail.cc]), ctx.sender, "in the first mail's To/Cc"
        )

    def followers(self, ctx: Context, addresses: list[str]) -> list[str]:
        on_behalf = {c.args.address for c in ctx.commands if isinstance(c.args, Requester)}
        excluded = {ctx.sender, ctx.current_ticket.requester, *on_behalf}
        return [a for a in dict.fromkeys(addresses) if a not in excluded and not self.config.is_desk(a)]


def answer_at_reply_to(ctx: Context) -> None:
    """A customer's mail that starts a conversation is theirs at its Reply-To address: a web form writes From
    itself on behalf of the customer it names in Reply-To, and a person may ask for answers at another
    address of theirs (FreeScout and RT read Reply-To so). The ticket, its answers and the message's author
    are then that address. Never for mail about an existing ticket, open or closed: the ticket knows its
    people by From, and a stranger naming its customer in Reply-To must not write as them."""
    if ctx.reply_to is None:
        return
    name, address = ctx.reply_to
    ctx.notes.append(f"answered at Reply-To {address}, not From {ctx.sender}")
    ctx.via, ctx.sender, ctx.sender_name = ctx.sender, address, name
