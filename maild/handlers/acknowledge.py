"""acknowledge: tell a customer who opened a ticket that we have it, and under which token."""

from __future__ import annotations

from maild.compose import Draft
from maild.handlers.base import CONTINUE, Context, Outcome, Services
from maild.render import ticket_vars
from maild.store import Tx


class Acknowledge:
    name = "acknowledge"

    def __init__(self, services: Services) -> None:
        self.services = services

    async def process(self, ctx: Context, tx: Tx) -> Outcome:
        # Never answer machines (RFC 3834) and never acknowledge agents' own mail.
        if not ctx.created or ctx.automatic or ctx.agent is not None:
            return CONTINUE
        ticket, config = ctx.current_ticket, self.services.config
        rendered = self.services.renderer.render(
            "customer.ack",
            ticket.language,
            **ticket_vars(ticket, config.ticket_prefix, config.from_name),
            text=ctx.text,
        )
        draft = Draft(
            kind="customer.ack",
            to=[ticket.requester],
            subject=rendered.subject,
            body=rendered.body,
            references=[ctx.parsed.message_id],
            auto_submitted="auto-replied",
        )
        await self.services.outbox.queue(tx, draft, ticket.id)
        return CONTINUE
