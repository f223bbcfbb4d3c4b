"""Queries on blocked senders (`#block`, `maild blocked`): whose mail is stored and dropped unanswered."""

from __future__ import annotations

from typing import Any

from maild.store.base import QueryBase


class SenderQueries(QueryBase):
    async def is_blocked(self, address: str) -> bool:
        return await self.one("SELECT 1 FROM blocked_senders WHERE address = ?", (address,)) is not None

    async def block_sender(self, address: str, by: str, ticket_id: int | None) -> bool:
        """Block ``address``; False when it already was (the first block, and who made it, stays)."""
        changed = await self.run(
            "INSERT INTO blocked_senders (address, blocked_by, blocked_at, ticket_id) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (address) DO NOTHING",
            (address, by, self.now_iso(), ticket_id),
        )
        return changed == 1

    async def unblock_sender(self, address: str) -> bool:
        """Lift a block; False when ``address`` was not blocked."""
        return await self.run("DELETE FROM blocked_senders WHERE address = ?", (address,)) == 1

    async def blocked_senders(self) -> list[dict[str, Any]]:
        rows = await self.all("SELECT address, blocked_by, blocked_at, ticket_id FROM blocked_senders ORDER BY address")
        return [dict(row) for row in rows]
