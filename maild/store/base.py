"""Shared plumbing of the query mixins: the connection, the clock and row helpers."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from typing import Any

from maild.clock import Clock, to_iso


def sql_limit(limit: int | None) -> int:
    """A LIMIT parameter where None lists all rows (SQLite reads a negative LIMIT as none)."""
    return -1 if limit is None else limit


class QueryBase:
    """Statements run inline, on the caller's thread, inside a transaction the store has opened.

    A hop to aiosqlite's thread and back (a queue, a thread wake-up, a wake-up of the event loop) costs more
    than the keyed statement it carries: on a WAL database, with SQLite's write lock already held by
    `BEGIN IMMEDIATE`, a statement only touches the page cache. What can wait on another process or on the
    disk (BEGIN IMMEDIATE, COMMIT and its fsync, the backup) goes through aiosqlite's thread: see `Store`.
    The helpers stay `async` so that any of them can go back to the thread without touching a caller.
    """

    def __init__(self, db: sqlite3.Connection, clock: Clock) -> None:
        self.db = db
        self.clock = clock

    def now_iso(self) -> str:
        return to_iso(self.clock())

    async def one(self, sql: str, params: Iterable[Any] = ()) -> sqlite3.Row | None:
        """The first row; for lookups by a key, which return one row at most.

        Fetched to the end, so the statement is done (an INSERT ... RETURNING included) before COMMIT,
        whatever becomes of the cursor.
        """
        rows = self.db.execute(sql, tuple(params)).fetchall()
        return rows[0] if rows else None

    async def all(self, sql: str, params: Iterable[Any] = ()) -> list[sqlite3.Row]:
        return self.db.execute(sql, tuple(params)).fetchall()

    async def many(self, sql: str, rows: Iterable[Iterable[Any]]) -> None:
        """One statement over many parameter rows."""
        self.db.executemany(sql, (tuple(row) for row in rows))

    @asynccontextmanager
    async def savepoint(self, name: str = "sp") -> AsyncIterator[None]:
        """A nested unit inside the transaction: released on success, rolled back alone if the block raises."""
        self.db.execute(f"SAVEPOINT {name}")
        try:
            yield
        except BaseException:
            self.db.execute(f"ROLLBACK TO {name}")
            self.db.execute(f"RELEASE {name}")
            raise
        self.db.execute(f"RELEASE {name}")

    async def insert(self, sql: str, params: Iterable[Any] = ()) -> int:
        cursor = self.db.execute(sql, tuple(params))
        assert cursor.lastrowid is not None
        return cursor.lastrowid

    async def run(self, sql: str, params: Iterable[Any] = ()) -> int:
        """Execute a write; the number of rows it changed."""
        return self.db.execute(sql, tuple(params)).rowcount
