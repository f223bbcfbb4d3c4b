"""Shared plumbing of the query mixins: the connection, the clock and row helpers."""

from __future__ import annotations

from collections.abc import Iterable
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

    async def insert(self, sql: str, params: Iterable[Any] = ()) -> int:
        async with self.db.execute(sql, tuple(params)) as cursor:
            assert cursor.lastrowid is not None
            return cursor.lastrowid

    async def run(self, sql: str, params: Iterable[Any] = ()) -> int:
        """Execute a write; the number of rows it changed."""
        async with self.db.execute(sql, tuple(params)) as cursor:
            return cursor.rowcount
