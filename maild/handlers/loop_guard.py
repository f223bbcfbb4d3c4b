"""loop_guard: drop our own mail coming back, and mark machine-sent mail so nothing ever answers it."""

from __future__ import annotations

from collections.abc import Callable

from maild.compose import LOOP_HEADER
from maild.handlers.base import CONTINUE, Context, Outcome, Services, Stop
from maild.store import Tx

_BULK_PRECEDENCE = frozenset({"bulk", "junk", "list"})
_DAEMON_LOCALPARTS = frozenset({"mailer-daemon", "postmaster"})


class LoopGuard:
    name = "loop_guard"

    def __init__(self, services: Services) -> None:
        self.support_address = services.config.support_address
        self.own_addresses = services.config.own_addresses

    async def process(self, ctx: Context, tx: Tx) -> Outcome:
        mail = ctx.parsed
        if mail.header(LOOP_HEADER).strip().lower() == self.support_address:
            return Stop("loop: our own mail came back")
        if await tx.thread_id_direction(mail.message_id) == "out":
            return Stop("loop: this Message-ID is one we sent")
        if mail.from_address in self.own_addresses:
            return Stop("loop: sent in the name of our own address")
        ctx.automatic = automatic_reason(ctx.inbound.envelope.mail_from, mail.from_address, mail.header)
        if ctx.automatic:
            ctx.notes.append(f"automatic: {ctx.automatic}")
        return CONTINUE


def automatic_reason(envelope_from: str, from_address: str, get: Callable[[str], str]) -> str | None:
    """Why this mail was sent by a machine (RFC 3834 and common practice), or None for a person.

    ``get`` returns a header's value, or "" when the header is absent.
    """
    auto_submitted = get("auto-submitted").strip().lower()
    if auto_submitted and auto_submitted.split(";")[0].strip() != "no":
        return f"Auto-Submitted: {auto_submitted}"
    if get("precedence").strip().lower() in _BULK_PRECEDENCE:
        return f"Precedence: {get('precedence').strip()}"
    if get("list-id"):
        return "List-Id"
    if get("x-autoreply") or get("x-autorespond"):
        return "X-Autoreply"
    if get("x-auto-response-suppress").strip().lower() in ("all", "oof", "autoreply"):
        return "X-Auto-Response-Suppress"
    if not envelope_from or envelope_from == "<>":
        return "null envelope sender"
    for address in (envelope_from, from_address):
        if address.partition("@")[0].lower() in _DAEMON_LOCALPARTS:
            return f"sent by {address}"
    return None
