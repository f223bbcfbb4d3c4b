"""parse: decode the raw message once; everything later reads the parsed fields.

The decoding is this step's `prepare`, done before the message's transaction (see `Prepares`).
"""

from __future__ import annotations

import asyncio

from maild.handlers.base import CONTINUE, Context, Outcome, Services
from maild.mime import content_message_id, parse_mail
from maild.store import Tx


class Parse:
    name = "parse"

    def __init__(self, services: Services) -> None:
        self.domain = services.config.support_address.rpartition("@")[2]

    async def prepare(self, ctx: Context) -> None:
        raw = ctx.inbound.raw
        fallback = content_message_id(raw, self.domain)
        # Large messages parse in a thread so the SMTP sessions keep being served meanwhile.
        if len(raw) > 256 * 1024:
            ctx.mail = await asyncio.to_thread(parse_mail, raw, fallback)
        else:
            ctx.mail = parse_mail(raw, fallback)
        ctx.text = ctx.mail.text

    async def process(self, ctx: Context, tx: Tx) -> Outcome:
        return CONTINUE
