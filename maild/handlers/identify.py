"""identify: who sent this: a configured (and, if required, authenticated) agent, or someone outside, whose
mail is dropped unanswered when they are blocked (`[security] blocked_senders`, `#block`)."""

from __future__ import annotations

from maild.authres import agent_authenticated
from maild.handlers.base import CONTINUE, Context, Outcome, Services, Stop
from maild.mime import mailboxes, mime_tree
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
        ctx.sender_name = mail.from_name
        if agent is None and not (ctx.spoofed or ctx.automatic or ctx.bulk or self.config.is_desk(ctx.sender)):
            ctx.reply_to = self.reply_to(mailboxes(mime_tree(mail, ctx.inbound.raw), "reply-to"), ctx.sender)
        if agent is None:
            for address in (ctx.sender, ctx.reply_to[1] if ctx.reply_to else ""):
                if address and (security.blocks(address) or await tx.is_blocked(address)):
                    return Stop(f"blocked sender: {address}")
        return CONTINUE

    def reply_to(self, pairs: list[tuple[str, str]], sender: str) -> tuple[str, str] | None:
        """The one mailbox of a customer's Reply-To that is not the From one nor the desk's (a mail to answer
        at ours would loop); None for none, or several (whom to answer is then anyone's guess)."""
        found = [(" ".join(n.split()), a.strip().lower()) for n, a in pairs if _is_address(a.strip())]
        if len({address for _, address in found}) != 1:
            return None
        name, address = found[0]
        return None if address == sender or self.config.is_desk(address) else (name, address)


def _is_address(text: str) -> bool:
    """``local@domain``: a bare ``MAIL FROM:<x>`` is no one to send an acknowledgement to."""
    local, at, domain = text.rpartition("@")
    return bool(at and local and domain)
