"""IMAP intake (aioimaplib): poll or IDLE on a mailbox, spool each message, then move it out of the way.

Messages are tracked by UID under the mailbox's UIDVALIDITY (stored), never by the \\Seen flag, so mail a
person already opened is still taken. Each batch is committed to the spool *before* it is moved to
`processed_mailbox`: a crash between the two fetches it again later and the spool's Message-ID dedupe keeps
one copy. A UIDVALIDITY change starts over from UID 1, with the same dedupe. Outages are logged once and
retried with backoff while the rest of the daemon keeps serving.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import re
import ssl
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from email.parser import BytesHeaderParser
from email.utils import parseaddr

import aioimaplib
import structlog

from maild.config import Config, ImapIntake
from maild.models import Envelope
from maild.spool import Spooler
from maild.store import Store
from maild.tls import client_context

log = structlog.get_logger("maild.intake.imap")

BATCH = 100  # messages listed per round trip
FETCH_BYTES = 32 * 1024 * 1024  # message bodies fetched per round trip, at most (one larger message alone)
MAX_BACKOFF = 300.0
TOO_LARGE_FLAG = "$MaildTooLarge"
_FETCH_START = re.compile(rb"\d+ FETCH \(")
_UID = re.compile(rb"[( ]UID (\d+)")
_SIZE = re.compile(rb"[( ]RFC822\.SIZE (\d+)")
_UIDVALIDITY = re.compile(rb"UIDVALIDITY (\d+)")
_NOT_PRINTABLE = re.compile(r"[^\x20-\x7e]+")


class ImapError(Exception):
    """The server refused something we cannot do without."""


@dataclass
class Cycle:
    seen: int = 0
    stored: int = 0
    duplicates: int = 0
    moved: int = 0
    too_large: int = 0
    gone: int = 0


@dataclass
class _Fetched:
    """One message of a UID FETCH response: the text of its response lines, and its first literal."""

    text: bytes = b""
    literal: bytes = field(default=b"", repr=False)


class ImapPoller:
    def __init__(self, config: Config, store: Store, spooler: Spooler) -> None:
        self.settings: ImapIntake = config.imap
        self.support_address = config.support_address
        self.own_addresses = config.own_addresses
        self.max_bytes = config.smtp.max_message_bytes
        self.store = store
        self.spooler = spooler
        self.stopping = False
        self.idling: aioimaplib.IMAP4 | None = None
        self.wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._session_task: asyncio.Task[None] | None = None
        self._selected = False  # the session in hand got as far as selecting the mailbox
        self._lost: Exception | None = None  # why the connection dropped, as the transport told

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
        """Sessions one after another. An outage is logged once, and retried with a backoff that starts over
        once a session is up again (it reached its mailbox)."""
        backoff, down = 1.0, False
        while not self.stopping:
            self._selected, self._lost = False, None
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
                if self._selected:
                    backoff, down = 1.0, False
                if not down:  # one line per outage, not one per retry
                    log.warning("imap_unavailable", error=self._reason(exc), retry_in=backoff)
                down = True
            except Exception as exc:  # a bug or a library surprise must not end IMAP intake for good: retry
                if self.stopping:
                    break
                if self._selected:
                    backoff = 1.0
                log.error("imap_failed", error=f"{type(exc).__name__}: {exc}", retry_in=backoff, exc_info=exc)
                down = True
            if self.stopping:
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), timeout=backoff)
            backoff = min(backoff * 2, MAX_BACKOFF)

    def _reason(self, exc: BaseException) -> str:
        if isinstance(exc, asyncio.CancelledError):  # _connection_lost ended the session
            lost = self._lost
            return f"connection lost ({type(lost).__name__}: {lost})" if lost else "connection closed by the server"
        return f"{type(exc).__name__}: {exc}"

    async def _session(self, recovered: bool) -> None:
        client = await self._connect()
        try:
            await self._ensure_folder(client, self.settings.processed_mailbox)
            uidvalidity = await self._select(client)
            self._selected = True
            log.info("imap_connected", host=self.settings.host, mailbox=self.settings.mailbox, recovered=recovered)
            retake_too_large = True  # once a session: max_message_bytes may have grown since they were flagged
            while not self.stopping:
                cycle = Cycle()
                try:
                    await self._drain(client, uidvalidity, retake_too_large, cycle)
                finally:  # a drain an outage cut short says what it did too
                    if cycle.seen:
                        log.info("imap_cycle", **dataclasses.asdict(cycle))
                retake_too_large = False
                if self.stopping:
                    break
                if cycle.seen:
                    continue  # mail that came during the drain may have been announced mid-command, unseen
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
        self._lost = exc
        if self._session_task is not None and not self._session_task.done():
            self._session_task.cancel()

    async def _ensure_folder(self, client: aioimaplib.IMAP4, folder: str) -> None:
        response = await client.create(mailbox_name(folder))
        # NO with [ALREADYEXISTS] (or any NO when it exists) is fine; the SELECT/MOVE later tells the truth.
        if response.result not in ("OK", "NO"):
            raise ImapError(f"cannot create {folder!r}: {response.lines}")

    async def _select(self, client: aioimaplib.IMAP4) -> int:
        response = await client.select(mailbox_name(self.settings.mailbox))
        if response.result != "OK":
            raise ImapError(f"cannot select {self.settings.mailbox!r}")
        for line in response.lines:
            if isinstance(line, bytes | bytearray) and (match := _UIDVALIDITY.search(bytes(line))):
                return int(match.group(1))
        raise ImapError("the server sent no UIDVALIDITY")

    async def _drain(self, client: aioimaplib.IMAP4, uidvalidity: int, retake_too_large: bool, cycle: Cycle) -> None:
        """Take every message above the last handled UID (and, with ``retake_too_large``, those left flagged
        as too large before), a batch at a time, counting in ``cycle``."""
        mailbox = self.settings.mailbox
        async with self.store.snapshot() as tx:
            position = await tx.imap_position(mailbox)
        last_uid = position[1] if position and position[0] == uidvalidity else 0
        if position and position[0] != uidvalidity:
            log.warning("imap_uidvalidity_changed", mailbox=mailbox, old=position[0], new=uidvalidity)
            async with self.store.transaction() as tx:  # once: the next drain starts from this UIDVALIDITY
                await tx.set_imap_position(mailbox, uidvalidity, 0)
        # A command's end is when the server tells this session about new mail (aioimaplib drops EXISTS
        # that arrive during SEARCH/FETCH): NOOP first, so the search sees everything delivered so far.
        await client.noop()
        uids = [u for u in await _search(client, f"UID {last_uid + 1}:*") if u > last_uid]  # n:* has the top
        if retake_too_large:
            uids = sorted({*uids, *await _search(client, f"KEYWORD {TOO_LARGE_FLAG}")})
        for start in range(0, len(uids), BATCH):
            if self.stopping:
                break
            batch = uids[start : start + BATCH]
            await self._take(client, batch, cycle)
            if batch[-1] > last_uid:
                async with self.store.transaction() as tx:
                    await tx.set_imap_position(mailbox, uidvalidity, batch[-1])

    async def _take(self, client: aioimaplib.IMAP4, batch: list[int], cycle: Cycle) -> None:
        """Spool a batch (committed), then move what was spooled; oversized messages are flagged and left."""
        sizes = {uid: _size(found.text) for uid, found in (await self._fetch(client, batch, "RFC822.SIZE")).items()}
        cycle.seen += len(batch)
        cycle.gone += len(batch) - len(sizes)  # another client moved or deleted them meanwhile
        too_large = [uid for uid in batch if sizes.get(uid, 0) > self.max_bytes]
        if too_large:
            await self._flag_too_large(client, too_large, sizes)
            cycle.too_large += len(too_large)
        wanted = [uid for uid in batch if uid in sizes and uid not in too_large]
        for chunk in _by_size(wanted, sizes, FETCH_BYTES):
            bodies = await self._fetch(client, chunk, "BODY.PEEK[]")
            spooled_uids = []
            for uid in chunk:
                raw = bodies[uid].literal if uid in bodies else b""
                if not raw:
                    cycle.gone += 1
                    continue
                spooled = await self.spooler.put(self._envelope(raw), raw)
                cycle.stored += not spooled.duplicate
                cycle.duplicates += spooled.duplicate
                spooled_uids.append(uid)
            if spooled_uids:  # only what is in the spool leaves the mailbox
                await self._move(client, _uid_set(spooled_uids))
                cycle.moved += len(spooled_uids)

    async def _flag_too_large(self, client: aioimaplib.IMAP4, uids: list[int], sizes: dict[int, int]) -> None:
        """Flag and leave in place what exceeds max_message_bytes, naming each for whoever reads the log."""
        heads = await self._fetch(client, uids, "BODY.PEEK[HEADER.FIELDS (FROM SUBJECT MESSAGE-ID)]")
        for uid in uids:
            header = BytesHeaderParser().parsebytes(heads[uid].literal if uid in heads else b"")
            log.warning(
                "imap_too_large",
                uid=uid,
                size=sizes[uid],
                limit=self.max_bytes,
                mail_from=str(header.get("From", "")),
                subject=str(header.get("Subject", "")),
                message_id=str(header.get("Message-ID", "")),
            )
        await client.uid("store", _uid_set(uids), "+FLAGS.SILENT", f"({TOO_LARGE_FLAG})")

    async def _fetch(self, client: aioimaplib.IMAP4, uids: list[int], item: str) -> dict[int, _Fetched]:
        """UID → its response text and literal, from ``UID FETCH uids (UID item)``.

        Only response lines are read for UIDs, never a literal: a message's own text may look like a FETCH
        line. A server may put UID after the literal, so every line up to the next FETCH counts as text."""
        response = await client.uid("fetch", _uid_set(uids), f"(UID {item})")
        if response.result != "OK":
            raise ImapError(f"UID FETCH {item} failed")
        messages: list[_Fetched] = []
        for line in response.lines:
            if isinstance(line, bytearray):  # aioimaplib hands literals over as bytearray, lines as bytes
                if messages and not messages[-1].literal:
                    messages[-1].literal = bytes(line)
            elif _FETCH_START.match(line):
                messages.append(_Fetched(text=bytes(line)))
            elif messages:
                messages[-1].text += b" " + bytes(line)
        return {int(uid.group(1)): m for m in messages if (uid := _UID.search(m.text))}

    async def _move(self, client: aioimaplib.IMAP4, uid_set: str) -> None:
        target = mailbox_name(self.settings.processed_mailbox)
        if client.has_capability("MOVE"):
            response = await client.uid("move", uid_set, target)
        else:
            response = await client.uid("copy", uid_set, target)
            if response.result == "OK":
                response = await client.uid("store", uid_set, "+FLAGS.SILENT", r"(\Deleted)")
            if response.result == "OK":  # the intake mailbox should be maild's alone (see _expunge)
                response = await _expunge(client, uid_set)
        if response.result != "OK":
            raise ImapError(f"cannot move messages to {self.settings.processed_mailbox!r}")

    def _envelope(self, raw: bytes) -> Envelope:
        """IMAP has no envelope: the delivering MTA's Return-Path stands in for MAIL FROM (empty for bounces),
        and its Delivered-To or X-Original-To naming one of our addresses for RCPT TO (mail Bcc'd to a queue's
        address goes to that queue), else the support address."""
        headers = BytesHeaderParser().parsebytes(raw[:65536])
        return_path = headers.get("Return-Path")
        mail_from = (
            parseaddr(str(return_path))[1] if return_path is not None else parseaddr(str(headers.get("From", "")))[1]
        )
        delivered_to = [
            address
            for name in ("Delivered-To", "X-Original-To")
            for value in headers.get_all(name, [])
            if (address := parseaddr(str(value))[1].lower()) in self.own_addresses
        ]
        return Envelope(
            source="imap",
            mail_from=mail_from,
            rcpt_to=tuple(dict.fromkeys(delivered_to)) or (self.support_address,),
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
    password = settings.password_file.read_text(encoding="utf-8").rstrip("\r\n")  # spaces may be the password's
    timeout = 30.0
    # Loading the system's CAs takes ~20 ms of CPU: not on the event loop, which serves SMTP sessions meanwhile.
    context = await asyncio.to_thread(client_context, settings.ca_file) if settings.tls != "none" else None
    if settings.tls == "implicit":
        client: aioimaplib.IMAP4 = aioimaplib.IMAP4_SSL(
            host=settings.host, port=settings.port, timeout=timeout, ssl_context=context
        )
    else:
        client = aioimaplib.IMAP4(host=settings.host, port=settings.port, timeout=timeout)
    if on_lost is not None:
        # aioimaplib leaves commands waiting forever on a dead connection: end the session instead.
        client.protocol.conn_lost_cb = on_lost
    await client.wait_hello_from_server()
    if context is not None and settings.tls == "starttls":
        await _starttls(client, settings.host, context)
    response = await client.login(settings.username, password)
    if response.result != "OK":
        raise ImapError(f"login refused for {settings.username!r}")
    return client


async def _starttls(client: aioimaplib.IMAP4, host: str, context: ssl.SSLContext) -> None:
    """Upgrade to TLS before logging in, or give up: never send the password in clear."""
    protocol = client.protocol
    await protocol.capability()
    if "STARTTLS" not in protocol.capabilities:
        raise ImapError("the server does not offer STARTTLS; refusing to log in without TLS")
    response = await protocol.execute(aioimaplib.Command("STARTTLS", protocol.new_tag(), loop=protocol.loop))
    if response.result != "OK":
        raise ImapError("STARTTLS refused; refusing to log in without TLS")
    loop = asyncio.get_running_loop()
    protocol.transport = await loop.start_tls(protocol.transport, protocol, context, server_hostname=host)
    await protocol.capability()


async def delete_processed(settings: ImapIntake, message_ids: Sequence[str]) -> int:
    """Delete from ``processed_mailbox`` the messages with these Message-IDs (`maild erase`: the copies IMAP
    intake moved there); how many it deleted. Raises what a session can (OSError, ImapError, ...)."""
    client = await connect(settings)
    try:
        response = await client.select(mailbox_name(settings.processed_mailbox))
        if response.result != "OK":
            raise ImapError(f"cannot select {settings.processed_mailbox!r}")
        uids: set[int] = set()
        for message_id in message_ids:
            if not message_id.isascii() or any(c in message_id for c in '"\\\r\n'):
                continue  # not expressible as a plain quoted SEARCH string; the caller counts what is left
            uids.update(await _search(client, f'HEADER Message-ID "{message_id}"'))
        if not uids:
            return 0
        uid_set = _uid_set(sorted(uids))
        stored = await client.uid("store", uid_set, "+FLAGS.SILENT", r"(\Deleted)")
        if stored.result != "OK":
            raise ImapError(f"cannot flag messages in {settings.processed_mailbox!r} as deleted")
        expunged = await _expunge(client, uid_set)
        if expunged.result != "OK":
            raise ImapError(f"cannot expunge {settings.processed_mailbox!r}")
        return len(uids)
    finally:
        await _close(client)


def mailbox_name(name: str) -> str:
    """A mailbox name as an IMAP argument (RFC 3501 5.1.3): modified UTF-7, then quoted. aioimaplib sends
    arguments as they are, so "Processed Mail" went out as two words and "Año" as 8-bit data."""

    def shifted(run: re.Match[str]) -> str:
        utf16 = base64.b64encode(run.group().encode("utf-16-be")).decode()
        return "&" + utf16.rstrip("=").replace("/", ",") + "-"

    encoded = _NOT_PRINTABLE.sub(shifted, name.replace("&", "&-"))
    return '"' + encoded.replace("\\", "\\\\").replace('"', '\\"') + '"'


async def _search(client: aioimaplib.IMAP4, criteria: str) -> list[int]:
    """The UIDs a UID SEARCH finds, in order."""
    response = await client.uid_search(criteria, charset=None)
    if response.result != "OK":
        raise ImapError("UID SEARCH failed")
    return sorted(int(u) for line in response.lines[:1] for u in bytes(line).split() if u.isdigit())


async def _expunge(client: aioimaplib.IMAP4, uid_set: str) -> aioimaplib.Response:
    """Expunge the messages of ``uid_set`` flagged \\Deleted. Without UIDPLUS only a plain EXPUNGE exists: it
    also removes what another client flagged \\Deleted in that mailbox, as fetchmail's does."""
    if client.has_capability("UIDPLUS"):
        return await client.uid("expunge", uid_set)
    return await client.expunge()


def _uid_set(uids: Sequence[int]) -> str:
    return ",".join(map(str, uids))


def _size(text: bytes) -> int:
    found = _SIZE.search(text)
    return int(found.group(1)) if found else 0


def _by_size(uids: list[int], sizes: dict[int, int], limit: int) -> Iterator[list[int]]:
    """``uids`` in runs whose messages add up to at most ``limit`` bytes (a larger message alone)."""
    run: list[int] = []
    total = 0
    for uid in uids:
        if run and total + sizes[uid] > limit:
            yield run
            run, total = [], 0
        run.append(uid)
        total += sizes[uid]
    if run:
        yield run


async def _close(client: aioimaplib.IMAP4) -> None:
    """Log out if the connection still stands, and close it in any case."""
    transport = client.protocol.transport
    if transport is not None and not transport.is_closing():
        with contextlib.suppress(Exception):
            await asyncio.wait_for(client.logout(), timeout=5)
    if transport is not None:
        transport.close()
