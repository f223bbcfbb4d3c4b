"""Shared plumbing of the query mixins: the connection, the clock and row helpers."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from typing import Any

import aiosqlite

from maild.clock import Clock, to_iso


class QueryBase:
    def __init__(self, db: aiosqlite.Connection, clock: Clock) -> None:
        self.db = db
        self.clock = clock

    def now_iso(self) -> str:
        return to_iso(self.clock())

    # Each helper is one hop to aiosqlite's thread. `async with db.execute(...)` plus a fetch costs three
    # (execute, fetch, close), which made thread hand-offs the largest cost of processing a mail.

    async def one(self, sql: str, params: Iterable[Any] = ()) -> aiosqlite.Row | None:
        """The first row; for lookups by a key, which return one row at most."""
        rows = await self.db.execute_fetchall(sql, tuple(params))
        for row in rows:
            return row
        return None

    async def all(self, sql: str, params: Iterable[Any] = ()) -> list[aiosqlite.Row]:
        return list(await self.db.execute_fetchall(sql, tuple(params)))

    @asynccontextmanager
    async def savepoint(self, name: str = "sp") -> AsyncIterator[None]:
        """A nested unit inside the transaction: released on success, rolled back alone if the block raises."""
        await self.db.execute(f"SAVEPOINT {name}")
        try:
            yield
        except BaseException:
            await self.db.execute(f"ROLLBACK TO {name}")
            await self.db.execute(f"RELEASE {name}")
            raise
        await self.db.execute(f"RELEASE {name}")

    async def insert(self, sql: str, params: Iterable[Any] = ()) -> int:
        cursor = await self.db.execute(sql, tuple(params))
        assert cursor.lastrowid is not None
        return cursor.lastrowid

    async def run(self, sql: str, params: Iterable[Any] = ()) -> int:
        """Execute a write; the number of rows it changed."""
        cursor = await self.db.execute(sql, tuple(params))
        return cursor.rowcount
