"""loop_guard: drop our own mail coming back, and mark machine-sent mail so nothing ever answers it."""

from __future__ import annotations

from maild.automail import classify, read_bounce
from maild.handlers.base import CONTINUE, Context, Outcome, Services, Stop
from maild.store import Tx


class LoopGuard:
    name = "loop_guard"

    def __init__(self, services: Services) -> None:
        self.support_address = services.config.support_address
        self.is_own = services.config.is_own

    async def process(self, ctx: Context, tx: Tx) -> Outcome:
        mail = ctx.parsed
        if await tx.thread_id_direction(mail.message_id) == "out":
            return Stop("loop: this Message-ID is one we sent")
        if mail.from_address and self.is_own(mail.from_address):
            return Stop("loop: sent in the name of our own address")
        verdict = classify(ctx.inbound.raw, mail, ctx.inbound.envelope.mail_from, self.support_address)
        if verdict.kind == "loop":
            return Stop(f"loop: {verdict.reason}")
        if verdict.automatic:
            ctx.automatic = f"{verdict.kind}: {verdict.reason}"
            ctx.notes.append(f"automatic: {ctx.automatic}")
            ctx.bulk = verdict.kind == "bulk"
            if verdict.kind == "bounce":
                ctx.bounce = read_bounce(ctx.inbound.raw)
        return CONTINUE
