"""relay: an agent's reply goes to the requester and followers, from the support address."""

from __future__ import annotations

from maild.compose import Draft
from maild.handlers.base import CONTINUE, Context, Outcome, Services
from maild.render import ticket_vars
from maild.store import Tx


class Relay:
    name = "relay"

    def __init__(self, services: Services) -> None:
        self.services = services

    async def process(self, ctx: Context, tx: Tx) -> Outcome:
        # Internal notes and command-only mail stay inside; spam is never answered.
        if ctx.agent is None or ctx.automatic or ctx.created or ctx.internal or ctx.resolution == "spam":
            return CONTINUE
        ticket, config, mail = ctx.current_ticket, self.services.config, ctx.parsed
        customers = [
            a for a in dict.fromkeys([ticket.requester, *ticket.followers]) if a != ctx.sender and not config.is_desk(a)
        ]
        if not customers:
            ctx.notes.append("relay: nobody outside to send to")
            return CONTINUE
        if not ctx.text.strip() and not mail.attachments:
            ctx.notes.append("relay: empty reply not sent")
            return CONTINUE
        # "#resolve METHOD" is send-and-resolve: the text goes out as the resolution message.
        event = "customer.resolved" if ctx.resolution else "customer.reply"
        rendered = self.services.renderer.render(
            event,
            ticket.language,
            **ticket_vars(ticket, config.ticket_prefix, config.from_name),
            agent=ctx.agent,
            text=ctx.text,
        )
        chain = await tx.thread_chain(ticket.id, "customer")
        draft = Draft(
            kind=event,
            to=customers[:1],
            cc=customers[1:],
            subject=rendered.subject,
            body=rendered.body,
            references=chain,
            in_reply_to=answered(chain, mail.references, mail.in_reply_to),
            auto_submitted=None,
            attachments=mail.attachments,
        )
        await self.services.outbox.queue(tx, draft, ticket.id)
        ctx.relayed = True
        return CONTINUE


def answered(chain: list[str], references: tuple[str, ...], in_reply_to: tuple[str, ...]) -> str | None:
    """The customer mail the agent answered: the last of the agent's references in the customer thread.

    An agent answers a notice, whose References carry the customers' mails it followed, the one it reported
    last. The thread's own order cannot say it: written seconds apart, an acknowledgement and a customer's
    mail sort by second. Without such a reference (a fresh mail with the token), None: the newest answers."""
    known = set(chain)
    found = [r for r in (*references, *in_reply_to) if r in known]
    return found[-1] if found else None
