"""identify: who sent this: a configured (and, if required, authenticated) agent, or someone outside, whose
mail is dropped unanswered when they are blocked (`[security] blocked_senders`, `#block`)."""

from __future__ import annotations

from maild.authres import agent_authenticated
from maild.handlers.base import CONTINUE, Context, Outcome, Services, Stop
from maild.mime import mime_tree
from maild.store import Tx


class Identify:
    name = "identify"

    def __init__(self, services: Services) -> None:
        self.config = services.config

    async def process(self, ctx: Context, tx: Tx) -> Outcome:
        mail = ctx.parsed
        envelope_from = ctx.inbound.envelope.mail_from.strip("<>").lower()
        ctx.sender = next((a for a in (mail.from_address, envelope_from) if _is_address(a)), "")
        if not ctx.sender and not ctx.automatic:
            # Nobody to answer (no From: address, and a null, absent or bare envelope sender): kept, no ticket.
            return Stop("no sender address")
        agent = self.config.agent(ctx.sender) if ctx.sender else None
        security = self.config.security
        if agent is not None and security.agent_auth == "authentication-results":
            # Anyone can write an agent's address in From:; only our MTA's DKIM/DMARC verdict proves it.
            headers = mime_tree(mail, ctx.inbound.raw).items()
            verdict = agent_authenticated(
                headers,
                agent.email,
                security.trusted_authserv_id,
                every_trusted_header=security.authres_headers == "all",
            )
            if not verdict.trusted:
                ctx.spoofed = verdict.reason
                ctx.notes.append(f"untrusted mail in the name of {agent.email}: {verdict.reason}")
                agent = None
        ctx.agent = agent
        if agent is None and ctx.sender and (security.blocks(ctx.sender) or await tx.is_blocked(ctx.sender)):
            return Stop(f"blocked sender: {ctx.sender}")
        return CONTINUE


def _is_address(text: str) -> bool:
    """``local@domain``: a bare ``MAIL FROM:<x>`` is no one to send an acknowledgement to."""
    local, at, domain = text.rpartition("@")
    return bool(at and local and domain)
