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

    async def one(self, sql: str, params: Iterable[Any] = ()) -> aiosqlite.Row | None:
        async with self.db.execute(sql, tuple(params)) as cursor:
            return await cursor.fetchone()

    async def all(self, sql: str, params: Iterable[Any] = ()) -> list[aiosqlite.Row]:
        async with self.db.execute(sql, tuple(params)) as cursor:
            return list(await cursor.fetchall())

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
        async with self.db.execute(sql, tuple(params)) as cursor:
            assert cursor.lastrowid is not None
            return cursor.lastrowid

    async def run(self, sql: str, params: Iterable[Any] = ()) -> int:
        """Execute a write; the number of rows it changed."""
        async with self.db.execute(sql, tuple(params)) as cursor:
            return cursor.rowcount
