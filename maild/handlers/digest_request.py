"""digest_request: an agent's mail that only asks for their digest (``#digest``) and belongs to no ticket is
answered with the digest and opens no ticket."""

from __future__ import annotations

from maild.commands import SendDigest
from maild.handlers.base import CONTINUE, Context, Outcome, Services, Stop
from maild.store import Tx


class DigestRequest:
    name = "digest_request"

    def __init__(self, services: Services) -> None:
        self.digests = services.digests

    async def process(self, ctx: Context, tx: Tx) -> Outcome:
        # With a ticket, or with other commands, the mail goes on and the commands step sends the digest.
        if ctx.agent is None or ctx.ticket is not None or ctx.command_errors or not ctx.commands:
            return CONTINUE
        if not all(isinstance(command.args, SendDigest) for command in ctx.commands):
            return CONTINUE
        await self.digests.queue_asked(tx, ctx.agent)
        return Stop("digest sent on request")
