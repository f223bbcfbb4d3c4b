"""identify: who sent this: a configured agent, or someone outside (customer or stranger)."""

from __future__ import annotations

from maild.handlers.base import CONTINUE, Context, Outcome, Services
from maild.store import Tx


class Identify:
    name = "identify"

    def __init__(self, services: Services) -> None:
        self.config = services.config

    async def process(self, ctx: Context, tx: Tx) -> Outcome:
        mail = ctx.parsed
        envelope_from = ctx.inbound.envelope.mail_from.strip("<>").lower()
        ctx.sender = mail.from_address or envelope_from
        # With agent_auth = "from" the From: address alone makes an agent (warned at start).
        ctx.agent = self.config.agent(ctx.sender) if ctx.sender else None
        return CONTINUE
