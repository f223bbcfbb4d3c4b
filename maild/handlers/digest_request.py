"""digest_request: an agent's mail that belongs to no ticket and only asks for their digest (``#digest``) is
answered with the digest; any other reply to a digest is answered with a word on how to reach a ticket.
Neither opens a ticket: a digest is about many tickets, and a reply to it about none of them."""

from __future__ import annotations

from maild.commands import SendDigest
from maild.compose import Draft
from maild.digest import KIND as DIGEST_KIND
from maild.handlers.base import CONTINUE, Context, Outcome, Services, Stop
from maild.store import Tx


class DigestRequest:
    name = "digest_request"

    def __init__(self, services: Services) -> None:
        self.services = services
        self.digests = services.digests

    async def process(self, ctx: Context, tx: Tx) -> Outcome:
        # With a ticket the mail goes on (and the commands step sends a digest asked for beside others).
        if ctx.agent is None or ctx.ticket is not None:
            return CONTINUE
        only_digest = not ctx.command_errors and bool(ctx.commands)
        if only_digest and all(isinstance(command.args, SendDigest) for command in ctx.commands):
            await self.digests.queue_asked(tx, ctx.agent)
            return Stop("digest sent on request")
        if not await self.answers_a_digest(ctx, tx):
            return CONTINUE
        if ctx.automatic:  # the agent's out-of-office answering the digest: nothing answers machine mail
            return Stop("automatic reply to a digest")
        config = self.services.config
        rendered = self.services.renderer.render(
            "agent.digest_reply",
            config.language,
            agent=ctx.agent,
            subject=ctx.parsed.subject,
            support_address=config.support_address,
            from_name=config.from_name,
        )
        draft = Draft(
            kind="agent.digest_reply",
            to=[ctx.agent.email],
            subject=rendered.subject,
            body=rendered.body,
            references=[ctx.parsed.message_id],
        )
        await self.services.outbox.queue(tx, draft, None)
        return Stop("reply to a digest, which belongs to no ticket")

    async def answers_a_digest(self, ctx: Context, tx: Tx) -> bool:
        """The mail's parent (In-Reply-To, else the last of References) is a digest we sent."""
        mail = ctx.parsed
        parents = mail.in_reply_to or mail.references[-1:]
        for message_id in parents[:5]:
            sent = await tx.mail_with_message_id(message_id)
            if sent is not None and sent.kind == DIGEST_KIND:
                return True
        return False
