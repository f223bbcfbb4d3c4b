"""#forward: the ticket's public thread, with its files, mailed to a third party (a vendor, a colleague
outside the desk).

The files go along as a help desk's forward carries them (RT, Zammad), up to `FORWARD_FILE_BYTES` together:
base64 makes them a third larger, and what is left then stays under Postfix's default 10 MB message limit.
Files beyond it, or whose stored copy is missing, are named in the mail instead of silently left out.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from maild.charsets import is_utf8
from maild.compose import Draft
from maild.handlers.base import Context, Services
from maild.mime import Part
from maild.models import Attachment
from maild.render import ticket_vars
from maild.store import Tx

FORWARD_FILE_BYTES = 7 * 1024 * 1024


@dataclass(frozen=True)
class LeftOut:
    """A file of the thread the forward names but does not carry."""

    filename: str
    size: int
    why: str  # "too large" (over the forward's budget) or "missing" (its stored copy is gone)


async def forward_thread(services: Services, ctx: Context, tx: Tx, address: str) -> None:
    """Queue the forward of the current ticket's public thread (never internal notes, nor the empty messages
    of mails of commands alone) to ``address``, the agent's own text first."""
    config = services.config
    ticket = ctx.current_ticket
    public = [m for m in await tx.messages(ticket.id) if m.visibility == "public"]
    messages = [m for m in public if m.text.strip()]
    # The agent's own files first (the forward mail is an internal note, so not among the public ones),
    # then the thread's, a customer's reply of a photo alone included.
    own = list(ctx.message.attachments) if ctx.message else []
    files, left_out = await _files(services, [*own, *(a for m in public for a in m.attachments)])
    rendered = services.renderer.render(
        "external.forward",
        ticket.language,
        **ticket_vars(ticket, config.ticket_prefix, config.from_name),
        agent=ctx.agent,
        text=ctx.text,
        messages=messages,
        left_out=left_out,
        # Agents' own addresses stay inside the desk: a third party reads their names, and writes to ours.
        agents={a.email: a.name for a in config.agents},
    )
    draft = Draft(
        kind="external.forward",
        to=[address],
        subject=rendered.subject,
        body=rendered.body,
        auto_submitted=None,
        attachments=files,
    )
    await services.outbox.queue(tx, draft, ticket.id)


async def _files(services: Services, attachments: list[Attachment]) -> tuple[list[Part], list[LeftOut]]:
    """The files in order, each once, within the budget; the rest as `LeftOut`."""
    files: list[Part] = []
    left_out: list[LeftOut] = []
    seen: set[tuple[str, str]] = set()
    budget = FORWARD_FILE_BYTES
    for attachment in attachments:
        if (attachment.sha256, attachment.filename) in seen:
            continue  # the same file quoted back and forth
        seen.add((attachment.sha256, attachment.filename))
        if attachment.size > budget:
            left_out.append(LeftOut(attachment.filename, attachment.size, "too large"))
            continue
        try:
            data = await asyncio.to_thread(services.blobs.get, attachment.sha256)
        except (OSError, ValueError):
            left_out.append(LeftOut(attachment.filename, attachment.size, "missing"))
            continue
        budget -= len(data)
        files.append(Part(attachment.filename, attachment.content_type, data, charset=_charset(attachment, data)))
    return files, left_out


def _charset(attachment: Attachment, data: bytes) -> str:
    """The store keeps no charset: a text file that is valid UTF-8 says so (ASCII needs none)."""
    text = attachment.content_type.startswith("text/") and not data.isascii()
    return "utf-8" if text and is_utf8(data) else ""
