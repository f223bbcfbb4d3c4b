"""Queueing mail: drafts become outbox rows inside the caller's transaction (transactional outbox).

So a ticket change and the mail telling people about it commit together or not at all; delivery is the
separate job of `maild.outbound`.
"""

from __future__ import annotations

from collections.abc import Mapping

from maild.compose import Composer, Draft
from maild.store import Tx

# Mail to people outside the desk (customers, followers, third parties), which a queue may send as itself.
OUTSIDE_KINDS = ("customer.", "external.")


class Outbox:
    def __init__(self, composer: Composer, queue_senders: Mapping[str, tuple[str, str]] | None = None) -> None:
        self.composer = composer
        self.queue_senders = queue_senders or {}  # queue name → (display name, address) of its From

    async def queue(self, tx: Tx, draft: Draft, ticket_id: int | None) -> str:
        """Compose and queue ``draft``; returns its Message-ID (already recorded for threading).

        Mail to people outside about a ticket of a queue that sends as itself (`send_from`) is From that
        queue's address, decided here for every kind of it; the envelope sender stays the support address,
        where bounces are read."""
        sender = None
        if self.queue_senders and ticket_id is not None and draft.kind.startswith(OUTSIDE_KINDS):
            sender = self.queue_senders.get(await tx.ticket_queue(ticket_id) or "")
        composed = self.composer.compose(draft, ticket_id, sender)
        await tx.enqueue_mail(
            ticket_id=ticket_id,
            kind=draft.kind,
            message_id=composed.message_id,
            mail_from=self.composer.support_address,
            rcpt_to=composed.recipients,
            raw=composed.raw,
        )
        return composed.message_id
