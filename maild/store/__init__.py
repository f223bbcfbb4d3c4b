"""The store: one SQLite database (WAL, synchronous=FULL) holding spool, tickets and outbox.

All SQL of maild lives in this package. One connection serves the daemon and an asyncio lock serialises
transactions on it, so a spool commit can never slip into a half-done ticket change (or the reverse), and
SQLite's busy-waiting never runs inside the process. Other processes (the CLI) open their own connection
and meet the daemon through SQLite's file locking, with a busy timeout.

What may wait goes through aiosqlite's thread, so the event loop never does: `BEGIN IMMEDIATE` (another
process may hold the write lock), `COMMIT` (the fsync, and a checkpoint now and then), `ROLLBACK`, the
backup and the migrations. The statements between them run inline (see `QueryBase`).
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiosqlite

from maild.clock import Clock, system_clock
from maild.store.erase import EraseQueries
from maild.store.inbound import InboundQueries
from maild.store.outbox import OutboxQueries
from maild.store.schema import MIGRATIONS
from maild.store.senders import SenderQueries
from maild.store.tickets import TicketQueries
from maild.store.time import TimeQueries
from maild.store.timers import TimerQueries


class StoreError(Exception):
    """The database cannot be opened (or a backup written), is not SQLite, or is newer than this maild."""


class Tx(InboundQueries, TicketQueries, OutboxQueries, TimeQueries, TimerQueries, EraseQueries, SenderQueries):
    """Named queries bound to one open transaction; obtained from `Store.transaction()` only."""


class Store:
    def __init__(self, db: aiosqlite.Connection, raw: sqlite3.Connection, clock: Clock) -> None:
        self._db = db
        self._raw = raw  # the same connection, for the statements run inline
        self._lock = asyncio.Lock()
        self.clock = clock

    @classmethod
    async def open(cls, path: Path, clock: Clock = system_clock) -> Store:
        """Open (creating and migrating as needed) the database at ``path``."""
        opened: list[sqlite3.Connection] = []

        def connect() -> sqlite3.Connection:  # runs in aiosqlite's thread; the loop's thread uses it too
            raw = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            raw.row_factory = sqlite3.Row
            opened.append(raw)
            return raw

        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            db = await aiosqlite.Connection(connect, iter_chunk_size=64)
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"cannot open {path}: {exc}") from exc
        try:
            await db.execute("PRAGMA busy_timeout = 10000")
            await db.execute("PRAGMA journal_mode = WAL")
            # FULL makes every commit fsync the WAL: a 250 sent after it survives a power cut.
            await db.execute("PRAGMA synchronous = FULL")
            await db.execute("PRAGMA foreign_keys = ON")
            await _migrate(db)
        except sqlite3.DatabaseError as exc:
            # SQLite reads the file only now: a corrupt or foreign file ("file is not a database") is the
            # operator's to fix, and a command says so in one line naming the file.
            await db.close()
            raise StoreError(f"cannot open {path}: {exc}") from exc
        except BaseException:
            await db.close()
            raise
        return cls(db, opened[0], clock)

    async def close(self) -> None:
        async with self._lock:
            await self._db.close()

    @asynccontextmanager
    async def transaction(self, *, check_references: bool = True) -> AsyncIterator[Tx]:
        """A write transaction: committed when the block ends, rolled back if it raises.

        ``check_references=False`` turns SQLite's foreign-key checks off for it, for `maild erase` alone:
        deleting a ticket makes SQLite look for rows naming it in every table that references tickets,
        thread_ids included, which has no index by ticket (a walk of millions of rows per ticket on a large
        store, the write lock held). The erasure deletes those rows itself, found by their keys.
        """
        async with self._lock:
            if not check_references:
                await self._db.execute("PRAGMA foreign_keys = OFF")  # outside a transaction, or it is ignored
            try:
                await self._to_the_end("BEGIN IMMEDIATE")
                try:
                    yield Tx(self._raw, self.clock)
                except BaseException:
                    await self._to_the_end("ROLLBACK")
                    raise
                await self._to_the_end("COMMIT")
            finally:
                if not check_references:
                    await self._db.execute("PRAGMA foreign_keys = ON")

    async def _to_the_end(self, statement: str) -> None:
        """Run a transaction boundary in aiosqlite's thread, and wait for it even when our caller is cancelled.

        The thread runs the statement whatever happens to the coroutine that queued it. Letting the lock go
        before it ran would hand the connection on in an unknown state: a BEGIN that ran after its caller was
        cancelled (an IMAP session whose connection dropped) left a transaction open that no one ended, and
        every later BEGIN failed "within a transaction" until a restart. So the cancellation waits for the
        statement, rolls back such a BEGIN, and goes on.
        """
        done = asyncio.ensure_future(self._db.execute(statement))
        try:
            await asyncio.shield(done)
        except asyncio.CancelledError:
            while not done.done():  # cancelled again meanwhile: the statement still runs, so still wait
                with contextlib.suppress(asyncio.CancelledError):
                    await asyncio.wait({done})
            if not done.cancelled():
                done.exception()  # retrieved, not raised: the caller is gone, its cancellation is what goes on
            if statement.startswith("BEGIN") and self._raw.in_transaction:
                self._raw.execute("ROLLBACK")  # inline: the thread is idle, the lock still ours
            raise

    async def backup(self, target: Path) -> None:
        """A consistent copy of the live database (SQLite's online backup API), safe while the daemon runs."""
        try:
            async with self._lock, aiosqlite.connect(target) as copy:
                await self._db.backup(copy)
        except sqlite3.Error as exc:  # most often the target's folder: missing, full or not ours to write
            raise StoreError(f"cannot back up to {target}: {exc}") from exc

    async def checkpoint(self) -> bool:
        """Copy the WAL into the database file and empty it, so old page images (an erasure's) leave the disk;
        False when a reader kept part of it, which a later checkpoint of the daemon's then copies."""
        async with self._lock, self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)") as cursor:
            row = await cursor.fetchone()
        return row is not None and row[0] == 0

    @asynccontextmanager
    async def snapshot(self) -> AsyncIterator[Tx]:
        """A read transaction: a consistent view for reports; writing in it is a bug."""
        async with self._lock:
            # Inline: in WAL mode a reader does not wait for writers.
            self._raw.execute("BEGIN DEFERRED")
            try:
                yield Tx(self._raw, self.clock)
            finally:
                self._raw.execute("ROLLBACK")


async def _migrate(db: aiosqlite.Connection) -> None:
    async with db.execute("PRAGMA user_version") as cursor:
        row = await cursor.fetchone()
    version = int(row[0]) if row else 0
    if version > len(MIGRATIONS):
        raise StoreError(f"the database is at schema {version}, newer than this maild ({len(MIGRATIONS)})")
    for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
        await db.executescript(f"BEGIN IMMEDIATE;\n{script}\nPRAGMA user_version = {number};\nCOMMIT;")


__all__ = ["Store", "StoreError", "Tx"]
