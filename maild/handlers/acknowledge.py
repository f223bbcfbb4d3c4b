"""acknowledge: tell a customer who opened a ticket that we have it, and under which token."""

from __future__ import annotations

from maild.automail import is_no_reply
from maild.compose import Draft
from maild.handlers.base import CONTINUE, Context, Outcome, Services
from maild.render import ticket_vars
from maild.store import Tx
from maild.tokens import format_token


class Acknowledge:
    name = "acknowledge"

    def __init__(self, services: Services) -> None:
        self.services = services

    async def process(self, ctx: Context, tx: Tx) -> Outcome:
        # Never answer machines (RFC 3834). An agent's own new mail is acknowledged only to the customer it was
        # opened for ("#requester"), with the agent's words.
        if not ctx.created or ctx.automatic or ctx.spoofed:
            return CONTINUE
        ticket, config = ctx.current_ticket, self.services.config
        if ctx.agent is not None and (ticket.requester == ctx.agent.email or ctx.internal):
            return CONTINUE
        if ctx.agent is None and is_no_reply(ticket.requester):
            ctx.notes.append(f"acknowledge: {ticket.requester} takes no answers, not sent")
            return CONTINUE
        if ctx.agent is None and await self.over_limit(tx, ticket.requester):
            ctx.notes.append(f"acknowledge: rate limit reached for {ticket.requester}, not sent")
            return CONTINUE
        event = "customer.ack" if ctx.agent is None else "customer.opened_by_agent"
        if ctx.spawned_from:
            event = "customer.new_after_closed"
        rendered = self.services.renderer.render(
            event,
            ticket.language,
            **ticket_vars(ticket, config.ticket_prefix, config.from_name),
            text=ctx.text,
            agent=ctx.agent,
            old_token=format_token(config.ticket_prefix, ctx.spawned_from or 0),
        )
        draft = Draft(
            kind=event,
            to=[ticket.requester],
            subject=rendered.subject,
            body=rendered.body,
            references=[ctx.parsed.message_id],
            # An acknowledgement is automatic; an agent's words on the customer's behalf are not.
            auto_submitted="auto-replied" if ctx.agent is None else None,
        )
        await self.services.outbox.queue(tx, draft, ticket.id)
        return CONTINUE

    async def over_limit(self, tx: Tx, requester: str) -> bool:
        """An autoresponder that fools every header check still gets only a few acks, and a flood of new
        senders cannot make us a spam cannon."""
        limits = self.services.config.security
        since = self.services.clock() - limits.ack_window
        if await tx.mail_count_reaches("customer.ack", since, limits.acks_per_sender, requester):
            return True
        return await tx.mail_count_reaches("customer.ack", since, limits.acks_global)
