"""record: add the mail to the ticket's timeline: its new text and its attachments (content-addressed)."""

from __future__ import annotations

import asyncio

from maild.handlers.base import CONTINUE, Context, Outcome, Services
from maild.models import Attachment
from maild.store import Tx


class Record:
    name = "record"

    def __init__(self, services: Services) -> None:
        self.blobs = services.blobs

    async def process(self, ctx: Context, tx: Tx) -> Outcome:
        mail, ticket = ctx.parsed, ctx.current_ticket
        # An agent's mail of commands alone says nothing to the customer: a note of what the agent did.
        commands_only = bool(ctx.commands or ctx.command_errors) and not ctx.text.strip() and not mail.attachments
        attachments = []
        for part in mail.attachments:
            digest = await asyncio.to_thread(self.blobs.put, part.data)
            attachments.append(
                Attachment(filename=part.filename, content_type=part.content_type, size=len(part.data), sha256=digest)
            )
        ctx.message = await tx.add_message(
            ticket_id=ticket.id,
            inbound_id=ctx.inbound.id,
            # Direction says which side speaks: agents' mail goes out to the customer, the rest comes in.
            direction="out" if ctx.agent and not ctx.automatic else "in",
            # Machine mail, and a stranger's who quoted the token, is kept for agents but is no part of the
            # conversation with the customer (nor of what `#forward` sends).
            visibility="internal"
            if ctx.internal or commands_only or ctx.automatic or ctx.spoofed or not ctx.participant
            else "public",
            author=ctx.sender,
            message_id=mail.message_id,
            subject=mail.subject,
            text=ctx.text,
            attachments=attachments,
        )
        return CONTINUE
