"""Durable intake: raw messages committed to the store before anyone is told "250".

Sessions hand their message to `Spooler.put`; a single writer task commits every message waiting at that
moment in one transaction (one fsync for many sessions: group commit), then answers each session. So the
SMTP 250 is never sent before the message is on disk, and a burst costs one fsync, not one per mail.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from dataclasses import dataclass

import structlog

from maild.metrics import Metrics
from maild.mime import HEADER_END, without_received
from maild.models import Envelope
from maild.store import Store, Tx
from maild.store.inbound import ERASED

log = structlog.get_logger("maild.spool")

_MESSAGE_ID = re.compile(rb"^message-id:[ \t]*(?:\r?\n[ \t]+)?(<[^<>\s]+>)", re.IGNORECASE | re.MULTILINE)
MAX_BATCH = 256


@dataclass(frozen=True)
class Spooled:
    """Where a message went: its spool id, and whether it was already there (same Message-ID); or, for a
    different mail under a Message-ID already taken, the id it is kept shunted under and why (`set_aside`)."""

    inbound_id: int | None
    duplicate: bool
    set_aside: str | None = None


def dedupe_key(raw: bytes) -> str:
    """The idempotency key: the Message-ID when the header block has one, else the sha256 of the content
    without its Received fields, which each relay adds: the same mail through one more hop is the same mail."""
    end = HEADER_END.search(raw)
    headers = raw[: end.start()] if end else raw[:65536]
    match = _MESSAGE_ID.search(headers)
    if match:
        return "mid:" + match.group(1).decode("ascii", "replace")
    return "sha256:" + hashlib.sha256(without_received(raw)).hexdigest()


class Spooler:
    """Group-committing writer of inbound messages."""

    def __init__(self, store: Store, on_commit: asyncio.Event | None = None, metrics: Metrics | None = None) -> None:
        self._store = store
        self._waiting: list[tuple[Envelope, bytes, asyncio.Future[Spooled]]] = []
        self._wakeup = asyncio.Event()
        self._on_commit = on_commit
        self._metrics = metrics
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="spooler")

    async def stop(self) -> None:
        """Commit what is waiting, then end the writer (never cancelled mid-commit: sessions await it)."""
        if self._task:
            self._stopping = True
            self._wakeup.set()
            await self._task
            self._task = None

    async def put(self, envelope: Envelope, raw: bytes) -> Spooled:
        """Return once the message is durably committed; raise if the store failed."""
        if self._task is None or self._stopping:
            async with self._store.transaction() as tx:
                spooled = await spool(tx, envelope, raw)
            self._notify()
            return spooled
        future: asyncio.Future[Spooled] = asyncio.get_running_loop().create_future()
        self._waiting.append((envelope, raw, future))
        self._wakeup.set()
        return await future

    async def _run(self) -> None:
        while not self._stopping:
            await self._wakeup.wait()
            self._wakeup.clear()
            await self._flush()

    async def _flush(self) -> None:
        while self._waiting:
            batch, self._waiting = self._waiting[:MAX_BATCH], self._waiting[MAX_BATCH:]
            try:
                async with self._store.transaction() as tx:
                    results = [await spool(tx, envelope, raw) for envelope, raw, _ in batch]
            except Exception as exc:
                log.error("spool_commit_failed", error=str(exc), batch=len(batch))
                for _, _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            if self._metrics is not None:
                self._metrics.mails_in += sum(1 for r in results if not r.duplicate)
            for (_, _, future), result in zip(batch, results, strict=True):
                if not future.done():
                    future.set_result(result)
            self._notify()

    def _notify(self) -> None:
        if self._on_commit is not None:
            self._on_commit.set()


async def spool(tx: Tx, envelope: Envelope, raw: bytes) -> Spooled:
    """Insert one message in ``tx``, once: a second copy of a spooled mail (same Message-ID, same body) is a
    duplicate. A different body under a Message-ID already taken is no duplicate to drop, but maild cannot
    tell a client that reuses Message-IDs from a copy changed on its way (a list's footer, a re-encoding),
    which processed would open a second ticket for one request: it is kept shunted with the reason, and
    `maild shunt replay` processes it as a mail of its own."""
    key = dedupe_key(raw)
    inbound_id = await tx.insert_inbound(envelope, key, raw)
    if inbound_id is not None or not key.startswith("mid:"):
        return Spooled(inbound_id, inbound_id is None)
    first = await tx.inbound_by_dedupe_key(key)
    # An erased mail's row keeps its key with no content: a copy of it arriving again stays erased.
    if first is None or first.state == ERASED or _body(first.raw) == _body(raw):
        return Spooled(None, True)
    reason = f"Message-ID {key[4:]} already taken by inbound {first.id}, whose body differs: kept, not processed"
    content_key = f"{key} sha256:{hashlib.sha256(without_received(raw)).hexdigest()}"
    kept = await tx.insert_inbound(envelope, content_key, raw, shunted_at="spool", error=reason)
    if kept is None:  # this very mail came before, and is kept already
        return Spooled(None, True)
    log.warning("message_id_reused", inbound_id=kept, first=first.id, message_id=key[4:])
    return Spooled(kept, False, reason)


def _body(raw: bytes) -> bytes:
    """What follows the header block, line endings aside: relays add header fields, not body lines."""
    end = HEADER_END.search(raw)
    return raw[end.end() :].replace(b"\r\n", b"\n").rstrip() if end else b""
