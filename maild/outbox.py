"""Queueing mail: drafts become outbox rows inside the caller's transaction (transactional outbox).

So a ticket change and the mail telling people about it commit together or not at all; delivery is the
separate job of `maild.outbound`.
"""

from __future__ import annotations

from maild.compose import Composer, Draft
from maild.store import Tx


class Outbox:
    def __init__(self, composer: Composer) -> None:
        self.composer = composer

    async def queue(self, tx: Tx, draft: Draft, ticket_id: int | None) -> str:
        """Compose and queue ``draft``; returns its Message-ID (already recorded for threading)."""
        composed = self.composer.compose(draft, ticket_id)
        await tx.enqueue_mail(
            ticket_id=ticket_id,
            kind=draft.kind,
            message_id=composed.message_id,
            mail_from=self.composer.support_address,
            rcpt_to=composed.recipients,
            raw=composed.raw,
        )
        return composed.message_id
