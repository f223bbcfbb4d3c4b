"""lifecycle: the status moves a mail causes by itself: agents' replies take tickets, customers' reopen them."""

from __future__ import annotations

from maild.handlers.base import CONTINUE, Context, Outcome, Services
from maild.statuses import NEW, OPEN, RESOLVED, WAITING_CUSTOMER
from maild.store import Tx

# The ticket fields a command sets, for the moves an agent's reply makes by itself.
_COMMANDED = {"status": "status", "wait": "status", "resolve": "status", "close": "status", "assign": "assignee"}


class Lifecycle:
    name = "lifecycle"

    def __init__(self, services: Services) -> None:
        self.lifecycle = services.lifecycle

    async def process(self, ctx: Context, tx: Tx) -> Outcome:
        # Machine mail never moves a ticket: an out-of-office is not an answer.
        if ctx.automatic or ctx.spoofed:
            return CONTINUE
        if ctx.created:
            # An agent's mail that opened a ticket for a customer ("#requester") is its first reply.
            if ctx.agent is not None and ctx.current_ticket.requester != ctx.agent.email:
                await self.agent_replied(ctx, tx)
            return CONTINUE
        if ctx.agent is not None:
            await self.agent_replied(ctx, tx)
        elif ctx.participant:
            await self.customer_replied(ctx, tx)
        return CONTINUE

    async def agent_replied(self, ctx: Context, tx: Tx) -> None:
        # A public reply takes the ticket unless commands said otherwise. An internal note is not a reply, nor
        # is a mail of commands alone (the customer gets nothing), but "#assign me" in one still takes a new
        # ticket into work.
        assert ctx.agent is not None
        ticket, actor = ctx.current_ticket, ctx.agent.email
        # What the agent's commands set, even to the value it had ("#status new", "#assign none" on a new
        # ticket): the reply leaves it so.
        commanded = {field for field, _, _ in ctx.changes} | {
            _COMMANDED[c.keyword] for c in ctx.commands if c.keyword in _COMMANDED
        }
        if ctx.internal or not (ctx.text.strip() or ctx.parsed.attachments):
            if ticket.status == NEW and ticket.assignee == actor and "status" not in commanded:
                ctx.ticket = await self.lifecycle.move(tx, ticket, OPEN, actor, "agent took it")
            return
        ticket = await self.lifecycle.responded(tx, ticket, actor)
        if ticket.assignee is None and "assignee" not in commanded:
            ticket = await self.lifecycle.update(tx, ticket, actor, "agent reply", assignee=actor)
        if ticket.status == NEW and "status" not in commanded:
            ticket = await self.lifecycle.move(tx, ticket, OPEN, actor, "agent reply")
        ctx.ticket = ticket

    async def customer_replied(self, ctx: Context, tx: Tx) -> None:
        ticket = ctx.current_ticket
        if ticket.status == WAITING_CUSTOMER:
            ctx.ticket = await self.lifecycle.move(tx, ticket, OPEN, ctx.sender, "customer reply")
        elif ticket.status == RESOLVED:
            # Inside the feedback window a reply means "not solved": reopen.
            ctx.ticket = await self.lifecycle.move(tx, ticket, OPEN, ctx.sender, "customer reply: reopened")
            ctx.reopened = True
