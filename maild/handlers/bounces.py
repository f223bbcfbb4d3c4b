"""bounces: a delivery report about one of our own mails is recorded on that mail, for agents and operators;
when it says an agent's words will never arrive, the ticket's agents are told."""

from __future__ import annotations

from maild.handlers.base import CONTINUE, Context, Outcome, Services
from maild.store import Tx
from maild.undelivered import UndeliveredNotice


class Bounces:
    name = "bounces"

    def __init__(self, services: Services) -> None:
        self.undelivered = UndeliveredNotice(services.config, services.renderer, services.outbox)

    async def process(self, ctx: Context, tx: Tx) -> Outcome:
        bounce = ctx.bounce
        if bounce is None or not bounce.original_message_id:
            return CONTINUE
        mail = await tx.mail_with_message_id(bounce.original_message_id)
        if mail is None:
            ctx.notes.append("bounce of a mail that is not ours")
            return CONTINUE
        # A recipient an earlier report returned for good was told of then: a second report of it (two
        # relays' DSNs, one DSN delivered twice) is recorded, and told of no more.
        told = {
            rcpt
            for earlier in await tx.bounces_of(mail.id)
            if earlier["permanent"]
            for rcpt in earlier["recipients"] or mail.rcpt_to
        }
        await tx.record_bounce(mail.id, ctx.inbound.id, list(bounce.recipients), bounce.status, bounce.permanent)
        ctx.notes.append(f"bounce recorded on outbox {mail.id}: {', '.join(bounce.recipients) or '?'}")
        if bounce.permanent:
            lost = {rcpt: bounce.status for rcpt in bounce.recipients or mail.rcpt_to if rcpt not in told}
            if not lost:
                ctx.notes.append("agents told of these recipients by an earlier report")
            await self.undelivered.tell(tx, mail, lost, bounced=True)
        return CONTINUE
