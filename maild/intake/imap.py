"""IMAP intake (aioimaplib): poll or IDLE on a mailbox, spool each message, then move it out of the way.

Messages are tracked by UID under the mailbox's UIDVALIDITY (stored), never by the \\Seen flag, so mail a
person already opened is still taken. Each batch is committed to the spool *before* it is moved to
`processed_mailbox`: a crash between the two fetches it again later and the spool's Message-ID dedupe keeps
one copy. A UIDVALIDITY change starts over from UID 1, with the same dedupe. Outages are logged once and
retried with backoff while the rest of the daemon keeps serving.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import ssl
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from email.parser import BytesHeaderParser
from email.utils import parseaddr

import aioimaplib
import structlog

from maild.config import Config, ImapIntake
from maild.models import Envelope
from maild.spool import Spooler
from maild.store import Store

log = structlog.get_logger("maild.intake.imap")

BATCH = 100  # messages fetched per round trip: bounded memory for any backlog
MAX_BACKOFF = 300.0
TOO_LARGE_FLAG = "$MaildTooLarge"
_FETCH_HEAD = re.compile(rb"UID (\d+)")
_SIZE = re.compile(rb"RFC822\.SIZE (\d+)")
_UIDVALIDITY = re.compile(rb"UIDVALIDITY (\d+)")


class ImapError(Exception):
    """The server refused something we cannot do without."""


@dataclass
class Cycle:
    seen: int = 0
    stored: int = 0
    duplicates: int = 0
    moved: int = 0
    too_large: int = 0


class ImapPoller:
    def __init__(self, config: Config, store: Store, spooler: Spooler) -> None:
        self.settings: ImapIntake = config.imap
        self.support_address = config.support_address
        self.max_bytes = config.smtp.max_message_bytes
        self.store = store
        self.spooler = spooler
        self.stopping = False
        self.idling: aioimaplib.IMAP4 | None = None
        self.wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._session_task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="imap")

    async def stop(self) -> None:
        """Stop between batches (a batch in hand is spooled first); leave IDLE at once."""
        self.stopping = True
        self.wake.set()
        if self.idling is not None:
            with contextlib.suppress(Exception):
                await self.idling.stop_wait_server_push()
        if self._task:
            done, _ = await asyncio.wait({self._task}, timeout=15)
            if not done:  # stuck on a dead server: nothing is half-done outside the spool, so cut it short
                log.warning("imap_stop_timeout")
                if self._session_task is not None:
                    self._session_task.cancel()
                await asyncio.wait({self._task}, timeout=5)
            self._task = None

    async def _run(self) -> None:
        backoff, down = 1.0, False
        while not self.stopping:
            self._session_task = asyncio.create_task(self._session(recovered=down), name="imap-session")
            try:
                await self._session_task
                backoff, down = 1.0, False
            except (
                asyncio.CancelledError,
                OSError,
                TimeoutError,
                aioimaplib.AioImapException,
                ImapError,
                ValueError,
            ) as exc:
                if self.stopping:
                    break
                if not down:  # one line per outage, not one per retry
                    reason = "connection lost" if isinstance(exc, asyncio.CancelledError) else str(exc)
                    log.warning("imap_unavailable", error=f"{type(exc).__name__}: {reason}", retry_in=backoff)
                down = True
            except Exception as exc:  # a bug or a library surprise must not end IMAP intake for good: retry
                if self.stopping:
                    break
                log.error("imap_failed", error=f"{type(exc).__name__}: {exc}", retry_in=backoff, exc_info=exc)
                down = True
            if self.stopping:
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), timeout=backoff)
            backoff = min(backoff * 2, MAX_BACKOFF)

    async def _session(self, recovered: bool) -> None:
        client = await self._connect()
        try:
            log.info("imap_connected", host=self.settings.host, mailbox=self.settings.mailbox, recovered=recovered)
            await self._ensure_folder(client, self.settings.processed_mailbox)
            uidvalidity = await self._select(client)
            while not self.stopping:
                cycle = await self._drain(client, uidvalidity)
                if cycle.seen:
                    log.info(
                        "imap_cycle",
                        seen=cycle.seen,
                        stored=cycle.stored,
                        duplicates=cycle.duplicates,
                        moved=cycle.moved,
                        too_large=cycle.too_large,
                    )
                if self.stopping:
                    break
                await self._wait_for_mail(client)
        except RuntimeError as exc:
            # uvloop refuses a write on a closed transport with RuntimeError (asyncio's loop only logged it): for
            # aioimaplib, whose commands write, that is the connection lost, an outage like any OSError.
            transport = client.protocol.transport
            if transport is None or transport.is_closing():
                raise ConnectionResetError(f"connection lost ({exc})") from exc
            raise
        finally:
            await _close(client)

    async def _connect(self) -> aioimaplib.IMAP4:
        return await connect(self.settings, self._connection_lost)

    def _connection_lost(self, exc: Exception | None) -> None:
        if self._session_task is not None and not self._session_task.done():
            self._session_task.cancel()

    async def _ensure_folder(self, client: aioimaplib.IMAP4, folder: str) -> None:
        response = await client.create(folder)
        # NO with [ALREADYEXISTS] (or any NO when it exists) is fine; the SELECT/MOVE later tells the truth.
        if response.result not in ("OK", "NO"):
            raise ImapError(f"cannot create {folder!r}: {response.lines}")

    async def _select(self, client: aioimaplib.IMAP4) -> int:
        response = await client.select(self.settings.mailbox)
        if response.result != "OK":
            raise ImapError(f"cannot select {self.settings.mailbox!r}")
        for line in response.lines:
            if isinstance(line, bytes | bytearray) and (match := _UIDVALIDITY.search(bytes(line))):
                return int(match.group(1))
        raise ImapError("the server sent no UIDVALIDITY")

    async def _drain(self, client: aioimaplib.IMAP4, uidvalidity: int) -> Cycle:
        """Take every message above the last handled UID, a batch at a time."""
        mailbox, cycle = self.settings.mailbox, Cycle()
        async with self.store.snapshot() as tx:
            position = await tx.imap_position(mailbox)
        last_uid = position[1] if position and position[0] == uidvalidity else 0
        if position and position[0] != uidvalidity:
            log.warning("imap_uidvalidity_changed", mailbox=mailbox, old=position[0], new=uidvalidity)
        # A command's end is when the server tells this session about new mail (aioimaplib drops EXISTS
        # that arrive during SEARCH/FETCH): NOOP first, so the search sees everything delivered so far.
        await client.noop()
        response = await client.uid_search(f"UID {last_uid + 1}:*", charset=None)
        if response.result != "OK":
            raise ImapError("UID SEARCH failed")
        uids = sorted(int(u) for line in response.lines[:1] for u in bytes(line).split() if u.isdigit())
        uids = [u for u in uids if u > last_uid]  # "n:*" always matches the highest UID, even below n
        for start in range(0, len(uids), BATCH):
            if self.stopping:
                break
            batch = uids[start : start + BATCH]
            await self._take(client, batch, cycle)
            async with self.store.transaction() as tx:
                await tx.set_imap_position(mailbox, uidvalidity, batch[-1])
        return cycle

    async def _take(self, client: aioimaplib.IMAP4, batch: list[int], cycle: Cycle) -> None:
        """Spool a batch (committed), then move it; oversized messages are flagged and left in place."""
        uid_set = ",".join(map(str, batch))
        sizes = await self._fetch(client, uid_set, "(UID RFC822.SIZE)")
        wanted = [uid for uid in batch if sizes.get(uid, (0, b""))[0] <= self.max_bytes]
        too_large = [uid for uid in batch if uid not in wanted]
        cycle.seen += len(batch)
        if too_large:
            cycle.too_large += len(too_large)
            log.warning("imap_too_large", uids=too_large, limit=self.max_bytes)
            await client.uid("store", ",".join(map(str, too_large)), "+FLAGS", f"({TOO_LARGE_FLAG})")
        if not wanted:
            return
        bodies = await self._fetch(client, ",".join(map(str, wanted)), "(UID BODY.PEEK[])")
        for uid in wanted:
            raw = bodies.get(uid, (0, b""))[1]
            if not raw:
                continue  # gone meanwhile (another client moved it)
            spooled = await self.spooler.put(self._envelope(raw), raw)
            cycle.stored += not spooled.duplicate
            cycle.duplicates += spooled.duplicate
        await self._move(client, ",".join(map(str, wanted)))
        cycle.moved += len(wanted)

    async def _fetch(self, client: aioimaplib.IMAP4, uid_set: str, parts: str) -> dict[int, tuple[int, bytes]]:
        """UID → (RFC822.SIZE, literal body) from a UID FETCH response."""
        response = await client.uid("fetch", uid_set, parts)
        if response.result != "OK":
            raise ImapError(f"UID FETCH {parts} failed")
        found: dict[int, tuple[int, bytes]] = {}
        current: int | None = None
        for line in response.lines:
            data = bytes(line)
            head = _FETCH_HEAD.search(data) if b"FETCH" in data[:40] else None
            if head:
                current = int(head.group(1))
                size = _SIZE.search(data)
                found[current] = (int(size.group(1)) if size else 0, b"")
            elif current is not None and isinstance(line, bytearray):
                found[current] = (found[current][0], data)  # the literal that followed the FETCH line
                current = None
        return found

    async def _move(self, client: aioimaplib.IMAP4, uid_set: str) -> None:
        target = self.settings.processed_mailbox
        if client.has_capability("MOVE"):
            response = await client.uid("move", uid_set, target)
        else:
            response = await client.uid("copy", uid_set, target)
            if response.result == "OK":
                await client.uid("store", uid_set, "+FLAGS", r"(\Deleted)")
                response = await client.uid("expunge", uid_set)
        if response.result != "OK":
            raise ImapError(f"cannot move messages to {target!r}")

    def _envelope(self, raw: bytes) -> Envelope:
        """IMAP has no envelope: the delivering MTA's Return-Path stands in for MAIL FROM (empty for bounces)."""
        headers = BytesHeaderParser().parsebytes(raw[:65536])
        return_path = headers.get("Return-Path")
        mail_from = (
            parseaddr(str(return_path))[1] if return_path is not None else parseaddr(str(headers.get("From", "")))[1]
        )
        return Envelope(
            source="imap",
            mail_from=mail_from,
            rcpt_to=(self.support_address,),
            peer=f"{self.settings.host}:{self.settings.port}",
        )

    async def _wait_for_mail(self, client: aioimaplib.IMAP4) -> None:
        """IDLE until the server pushes news (or poll_interval passes); plain sleep without IDLE."""
        interval = self.settings.poll_interval.total_seconds()
        if not (self.settings.idle and client.has_capability("IDLE")):
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), timeout=interval)
            await client.noop()
            return
        # Bounded: a push can be lost (see _drain), so IDLE ends now and then and the mailbox is searched again.
        wait = min(interval, 300.0)
        idle = await client.idle_start(timeout=wait)
        self.idling = client
        try:
            await client.wait_server_push(timeout=wait + 5)
        except TimeoutError:
            pass
        finally:
            self.idling = None
            # A DONE outside IDLE makes the server answer BAD, which kills aioimaplib's connection.
            if client.has_pending_idle():
                client.idle_done()
                await asyncio.wait_for(idle, timeout=10)
            else:
                idle.cancel()


async def connect(settings: ImapIntake, on_lost: Callable[[Exception | None], None] | None = None) -> aioimaplib.IMAP4:
    """A logged-in session (TLS as configured); ``on_lost`` is told when the connection drops."""
    if settings.password_file is None:
        raise ImapError("intake.imap.password_file is not set")
    password = settings.password_file.read_text(encoding="utf-8").strip()
    timeout = 30.0
    if settings.tls == "implicit":
        client: aioimaplib.IMAP4 = aioimaplib.IMAP4_SSL(host=settings.host, port=settings.port, timeout=timeout)
    else:
        client = aioimaplib.IMAP4(host=settings.host, port=settings.port, timeout=timeout)
    if on_lost is not None:
        # aioimaplib leaves commands waiting forever on a dead connection: end the session instead.
        client.protocol.conn_lost_cb = on_lost
    await client.wait_hello_from_server()
    if settings.tls == "starttls":
        await _starttls(client, settings.host)
    response = await client.login(settings.username, password)
    if response.result != "OK":
        raise ImapError(f"login refused for {settings.username!r}")
    return client


async def _starttls(client: aioimaplib.IMAP4, host: str) -> None:
    """Upgrade to TLS before logging in, or give up: never send the password in clear."""
    protocol = client.protocol
    await protocol.capability()
    if "STARTTLS" not in protocol.capabilities:
        raise ImapError("the server does not offer STARTTLS; refusing to log in without TLS")
    response = await protocol.execute(aioimaplib.Command("STARTTLS", protocol.new_tag(), loop=protocol.loop))
    if response.result != "OK":
        raise ImapError("STARTTLS refused; refusing to log in without TLS")
    loop = asyncio.get_running_loop()
    context = ssl.create_default_context()
    protocol.transport = await loop.start_tls(protocol.transport, protocol, context, server_hostname=host)
    await protocol.capability()


async def delete_processed(settings: ImapIntake, message_ids: Sequence[str]) -> int:
    """Delete from ``processed_mailbox`` the messages with these Message-IDs (`maild erase`: the copies IMAP
    intake moved there); how many it deleted. Raises what a session can (OSError, ImapError, ...)."""
    client = await connect(settings)
    try:
        response = await client.select(settings.processed_mailbox)
        if response.result != "OK":
            raise ImapError(f"cannot select {settings.processed_mailbox!r}")
        uids: set[int] = set()
        for message_id in message_ids:
            if not message_id.isascii() or any(c in message_id for c in '"\\\r\n'):
                continue  # not expressible as a plain quoted SEARCH string; the caller counts what is left
            found = await client.uid_search(f'HEADER Message-ID "{message_id}"', charset=None)
            if found.result != "OK":
                raise ImapError("UID SEARCH failed")
            uids.update(int(u) for line in found.lines[:1] for u in bytes(line).split() if u.isdigit())
        if not uids:
            return 0
        uid_set = ",".join(map(str, sorted(uids)))
        stored = await client.uid("store", uid_set, "+FLAGS.SILENT", r"(\Deleted)")
        if stored.result != "OK":
            raise ImapError(f"cannot flag messages in {settings.processed_mailbox!r} as deleted")
        if client.has_capability("UIDPLUS"):
            expunged = await client.uid("expunge", uid_set)
        else:  # the processed mailbox is maild's own: what else is flagged deleted there goes too
            expunged = await client.expunge()
        if expunged.result != "OK":
            raise ImapError(f"cannot expunge {settings.processed_mailbox!r}")
        return len(uids)
    finally:
        await _close(client)


async def _close(client: aioimaplib.IMAP4) -> None:
    """Log out if the connection still stands, and close it in any case."""
    transport = client.protocol.transport
    if transport is not None and not transport.is_closing():
        with contextlib.suppress(Exception):
            await asyncio.wait_for(client.logout(), timeout=5)
    if transport is not None:
        transport.close()
