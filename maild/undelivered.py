"""Telling agents that their words did not reach a customer: refused at delivery, retried until given up,
or bounced back later. Agents see the conversation only in their mail; without this they believe the
customer has their answer.

Only mail carrying an agent's words is reported (`TOLD_KINDS`): an acknowledgement to a forged sender is
nothing an agent can act on, and a failed mail to an agent is never reported, so a notice cannot breed one.
"""

from __future__ import annotations

from collections.abc import Mapping
from email.parser import BytesHeaderParser

from maild.compose import Draft
from maild.config import Config
from maild.models import OutboundMail
from maild.outbox import Outbox
from maild.render import Renderer, ticket_vars
from maild.store import Tx

TOLD_KINDS = frozenset({"customer.reply", "customer.resolved", "customer.opened_by_agent", "external.forward"})


class UndeliveredNotice:
    def __init__(self, config: Config, renderer: Renderer, outbox: Outbox) -> None:
        self.config = config
        self.renderer = renderer
        self.outbox = outbox

    async def tell(self, tx: Tx, mail: OutboundMail, lost: Mapping[str, str], bounced: bool = False) -> None:
        """Mail the ticket's agents which recipients of ``mail`` did not get it and why: address → the
        server's error, or with ``bounced`` the status of the delivery report that returned it."""
        if not lost or mail.ticket_id is None or mail.kind not in TOLD_KINDS:
            return
        ticket = await tx.get_ticket(mail.ticket_id)
        if ticket is None:
            return
        headers = BytesHeaderParser().parsebytes(mail.raw)
        references = await tx.thread_chain(ticket.id, "agent")
        for agent in self.config.ticket_agents(ticket.assignee, ticket.queue):
            rendered = self.renderer.render(
                "agent.undelivered",
                self.config.language,
                **ticket_vars(ticket, self.config.ticket_prefix, self.config.from_name),
                agent=agent,
                lost=sorted(lost.items()),
                bounced=bounced,
                mail_subject=" ".join(str(headers.get("Subject", "")).split()),
                sent_at=self.renderer.when(mail.created_at),
            )
            draft = Draft(
                kind="agent.undelivered",
                to=[agent.email],
                subject=rendered.subject,
                body=rendered.body,
                references=references,
            )
            await self.outbox.queue(tx, draft, ticket.id)
