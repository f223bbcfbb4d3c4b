"""lifecycle: the status moves a mail causes by itself (an agent's first reply takes the ticket)."""

from __future__ import annotations

from maild.handlers.base import CONTINUE, Context, Outcome, Services
from maild.statuses import NEW, OPEN, check_transition
from maild.store import Tx


class Lifecycle:
    name = "lifecycle"

    def __init__(self, services: Services) -> None:
        self.config = services.config

    async def process(self, ctx: Context, tx: Tx) -> Outcome:
        ticket = ctx.current_ticket
        # Machine mail never moves a ticket: an out-of-office is not an answer.
        if ctx.automatic or ctx.agent is None or ctx.created or ctx.internal:
            return CONTINUE
        # An agent's public reply takes the ticket, unless their commands already said otherwise.
        commanded = {field for field, _, _ in ctx.changes}
        changes: dict[str, object] = {}
        if ticket.assignee is None and "assignee" not in commanded:
            changes["assignee"] = ctx.agent.email
        if ticket.status == NEW and "status" not in commanded:
            check_transition(ticket.status, OPEN)
            changes["status"] = OPEN
        if changes:
            ctx.ticket = await tx.update_ticket(ticket, ctx.agent.email, "agent reply", **changes)
        return CONTINUE
