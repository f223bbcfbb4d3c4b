"""Delivery of the outbox: through the smarthost (SMTP) or into ``.eml`` files (demo), with retries.

A temporary failure (4xx, refused or dropped connection, timeout) is retried with exponential backoff
until ``give_up_after``; a permanent one (5xx) is recorded and never retried by itself. Mails are leased
while being sent, so a crash mid-delivery retries them after the lease instead of losing them.
"""

from __future__ import annotations

import asyncio
import os
import ssl
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import timedelta
from pathlib import Path
from typing import Any, Protocol

import aiosmtplib
import structlog

from maild.clock import Clock
from maild.config import Outbound
from maild.metrics import Metrics
from maild.models import OutboundMail
from maild.store import Store, Tx
from maild.tls import client_context
from maild.undelivered import UndeliveredNotice
from maild.worker import Worker

log = structlog.get_logger("maild.outbound")

LEASE = timedelta(minutes=5)
# How long a stop waits for the delivery in hand before dropping it (systemd's TimeoutStopSec is 60 s, and a
# hung smarthost would hold a session up to [outbound] timeout per step).
STOP_GRACE = 10.0


@dataclass
class Delivery:
    """What one attempt achieved: recipients accepted, refused for good, or to try again."""

    accepted: list[str] = field(default_factory=list)
    permanent: dict[str, str] = field(default_factory=dict)
    temporary: dict[str, str] = field(default_factory=dict)


class Transport(Protocol):
    async def deliver(self, mail: OutboundMail) -> Delivery: ...

    async def end_batch(self) -> None:
        """The worker's batch is done: release what was kept for it (an open SMTP session)."""

    def abort(self) -> None:
        """Give up what is in flight, at once (a stop that cannot wait for a hung smarthost)."""


class SmtpTransport:
    """Delivers a batch of mails over one session with the smarthost, as MTAs reuse connections: a
    connect, greeting and EHLO (and TLS) per batch, not per mail. When the smarthost cannot be reached,
    the rest of the batch is deferred with that error instead of each mail trying again at once."""

    def __init__(self, settings: Outbound) -> None:
        self.settings = settings
        self._client: aiosmtplib.SMTP | None = None
        self._unreachable: BaseException | None = None
        self._tls: ssl.SSLContext | None = None

    async def deliver(self, mail: OutboundMail) -> Delivery:
        if self._unreachable is not None:
            return _failed(mail, self._unreachable)
        try:
            client = await self._connected()
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            if isinstance(exc, aiosmtplib.SMTPAuthenticationError):
                log.error("smarthost_login_refused", username=self.settings.username, error=f"{exc.code} {exc.message}")
            self._unreachable = exc
            return _failed(mail, exc)
        utf8 = client.supports_extension("smtputf8")
        envelope, unsendable = _envelope_addresses(mail.rcpt_to, utf8)
        result = Delivery(permanent=unsendable)
        if not envelope:
            return result
        try:
            options = ["SMTPUTF8"] if utf8 and not all(map(str.isascii, envelope)) else []
            errors, _ = await client.sendmail(mail.mail_from, list(envelope), mail.raw, mail_options=options)
        except (aiosmtplib.SMTPRecipientsRefused, aiosmtplib.SMTPResponseException) as exc:
            # aiosmtplib has reset the envelope (RSET): the session goes on
            return _merged(result, _failed(replace(mail, rcpt_to=tuple(envelope)), exc), envelope)
        except (aiosmtplib.SMTPException, OSError, TimeoutError, UnicodeError) as exc:
            self._drop()  # the session broke, or is mid-transaction: the next mail connects afresh
            return _merged(result, _failed(replace(mail, rcpt_to=tuple(envelope)), exc), envelope)
        for sent, rcpt in envelope.items():
            if sent in errors:
                _classify(result, rcpt, errors[sent].code, errors[sent].message)
            else:
                result.accepted.append(rcpt)
        return result

    def abort(self) -> None:
        """Drop the session at once, without QUIT: the daemon is stopping and the smarthost hangs."""
        self._drop()

    async def end_batch(self) -> None:
        self._unreachable = None
        if self._client is not None:
            client, self._client = self._client, None
            try:
                await client.quit()
            except (aiosmtplib.SMTPException, OSError, TimeoutError):
                client.close()

    async def _connected(self) -> aiosmtplib.SMTP:
        if self._client is None or not self._client.is_connected:
            s = self.settings
            if s.tls != "none" and self._tls is None:
                self._tls = await asyncio.to_thread(client_context, s.ca_file)  # ~20 ms of CPU: off the loop
            password = None
            if s.username and s.password_file is not None:  # read at each connect: a new password needs no restart
                password = s.password_file.read_text(encoding="utf-8").rstrip("\r\n")
            client = aiosmtplib.SMTP(
                hostname=s.host,
                port=s.port,
                use_tls=s.tls == "implicit",
                start_tls=s.tls == "starttls",
                tls_context=self._tls,
                username=s.username or None,
                password=password,
                timeout=s.timeout.total_seconds(),
            )
            try:
                await client.connect()
                if client.is_ehlo_or_helo_needed:  # its extensions (SMTPUTF8) decide how addresses are sent
                    await client.ehlo()
            except BaseException:
                client.close()
                raise
            self._client = client
        return self._client

    def _drop(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


def _envelope_addresses(rcpt_to: Sequence[str], utf8: bool) -> tuple[dict[str, str], dict[str, str]]:
    """({address as RCPT TO sends it: address}, {address that cannot be sent: why}). Without the smarthost's
    SMTPUTF8 an internationalised domain goes in its ASCII form (IDNA), and a non-ASCII local part cannot
    go at all: refused for good, alone, instead of failing the whole mail (and the session) on every try."""
    envelope: dict[str, str] = {}
    unsendable: dict[str, str] = {}
    for rcpt in rcpt_to:
        local, _, domain = rcpt.rpartition("@")
        if rcpt.isascii() or utf8:
            envelope[rcpt] = rcpt
        elif local.isascii():
            try:
                envelope[f"{local}@{domain.encode('idna').decode('ascii')}"] = rcpt
            except UnicodeError:
                unsendable[rcpt] = f"553 5.1.3 not a valid domain: {domain!r}"
        else:
            unsendable[rcpt] = "553 5.6.7 a non-ASCII address needs SMTPUTF8, which the smarthost does not offer"
    return envelope, unsendable


def _merged(result: Delivery, attempt: Delivery, envelope: dict[str, str]) -> Delivery:
    """``attempt``'s outcome (keyed by envelope address) added to ``result`` by the addresses as stored."""
    result.accepted += [envelope[a] for a in attempt.accepted]
    result.permanent.update({envelope.get(a, a): e for a, e in attempt.permanent.items()})
    result.temporary.update({envelope.get(a, a): e for a, e in attempt.temporary.items()})
    return result


def _failed(mail: OutboundMail, exc: BaseException) -> Delivery:
    """What an SMTP error means for each recipient: the server's code decides temporary or permanent; no
    code (refused, dropped, timed out) is temporary, and so is a refused login: our password, not the mail, is
    wrong, and mail waits for it to be fixed (Postfix's smtp_sasl_auth_soft_bounce) instead of failing for good."""
    result = Delivery()
    if isinstance(exc, aiosmtplib.SMTPAuthenticationError):
        result.temporary = {rcpt: f"smarthost login refused: {exc.code} {exc.message}" for rcpt in mail.rcpt_to}
    elif isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        for refused in exc.recipients:
            _classify(result, refused.recipient, refused.code, refused.message)
    elif isinstance(exc, aiosmtplib.SMTPResponseException):
        for rcpt in mail.rcpt_to:
            _classify(result, rcpt, exc.code, exc.message)
    else:
        result.temporary = {rcpt: f"{type(exc).__name__}: {exc}" for rcpt in mail.rcpt_to}
    return result


class FileTransport:
    """Writes each mail as ``<directory>/<outbox id>.eml``: the demo's outbound, and handy for debugging."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    async def deliver(self, mail: OutboundMail) -> Delivery:
        await asyncio.to_thread(self._write, mail)
        return Delivery(accepted=list(mail.rcpt_to))

    async def end_batch(self) -> None:
        pass

    def abort(self) -> None:
        pass

    def _write(self, mail: OutboundMail) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        envelope = f"X-Maild-Envelope-From: {mail.mail_from}\r\nX-Maild-Envelope-To: {', '.join(mail.rcpt_to)}\r\n"
        fd, temp = tempfile.mkstemp(dir=self.directory, prefix=".tmp-")
        with os.fdopen(fd, "wb") as handle:
            handle.write(envelope.encode("ascii", "replace") + mail.raw)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, self.directory / f"{mail.id:08d}.eml")


def make_transport(settings: Outbound) -> Transport:
    return FileTransport(settings.directory) if settings.transport == "file" else SmtpTransport(settings)


def _classify(result: Delivery, rcpt: str, code: int, message: str) -> None:
    text = f"{code} {message}".strip()
    if 500 <= code < 600:
        result.permanent[rcpt] = text
    else:
        result.temporary[rcpt] = text


class OutboundWorker(Worker):
    """Sends what is due in the outbox; woken when a transaction queued mail, polls as a fallback."""

    name = "outbound"

    def __init__(
        self,
        store: Store,
        settings: Outbound,
        transport: Transport,
        wakeup: asyncio.Event,
        clock: Clock,
        poll_seconds: float = 1.0,
        metrics: Metrics | None = None,
        undelivered: UndeliveredNotice | None = None,
    ) -> None:
        super().__init__(wakeup, poll_seconds)
        self.store = store
        self.settings = settings
        self.transport = transport
        self.clock = clock
        self.metrics = metrics
        self.undelivered = undelivered  # replaced on reload, with the new templates and agents
        self._in_flight: asyncio.Future[Delivery] | None = None
        self._reconfigured: tuple[Outbound, Transport] | None = None

    def reconfigure(self, settings: Outbound, transport: Transport) -> None:
        """A reload changed [outbound]: the next batch goes through ``transport`` (the batch in hand, if any,
        finishes on its session with the old one)."""
        self._reconfigured = (settings, transport)
        self.wakeup.set()

    async def work(self) -> float | None:
        while not self.stopping and await self.send_due():
            pass
        async with self.store.snapshot() as tx:
            due = await tx.next_mail_due_at()
        return (due - self.clock()).total_seconds() if due else None

    async def send_due(self) -> int:
        """One pass over the mails due now; the number of attempts made.

        A mail sent is recorded at once, so a crash sends again at most the one in flight. Mails that went
        nowhere (a smarthost down defers the whole batch) are recorded together when the batch ends, or with
        the next mail sent: a retry pass over a long queue during an outage then costs one commit per
        batch, not one per mail, and a crash before that commit only leaves them leased until `LEASE`."""
        if self._reconfigured is not None:  # between batches: no session of the old transport is open
            (self.settings, self.transport), self._reconfigured = self._reconfigured, None
        async with self.store.transaction() as tx:
            batch = await tx.claim_due_mail(self.clock() + LEASE)
        unsent: list[tuple[OutboundMail, Delivery]] = []
        tried = 0
        try:
            for mail in batch:
                if self.stopping:
                    break
                delivery = await self._deliver(mail)
                tried += 1
                unsent.append((mail, delivery))
                if delivery.accepted:
                    await self._record(unsent)
                    unsent = []
        finally:
            await self.transport.end_batch()
        if unsent:
            await self._record(unsent)
        if tried < len(batch):  # stopping: the rest waits in the queue, as if never claimed
            async with self.store.transaction() as tx:
                await tx.release_mail([mail.id for mail in batch[tried:]])
        return tried

    async def _deliver(self, mail: OutboundMail) -> Delivery:
        """One attempt, as a task `stop` may cancel: a hung smarthost must not outlast the service's stop."""
        self._in_flight = attempt = asyncio.ensure_future(self.transport.deliver(mail))
        try:
            await asyncio.wait({attempt})
        except asyncio.CancelledError:
            attempt.cancel()
            raise
        finally:
            self._in_flight = None
        if attempt.cancelled():
            return Delivery(temporary={rcpt: "maild stopped during the delivery" for rcpt in mail.rcpt_to})
        if (exc := attempt.exception()) is not None:  # a transport bug must not kill the worker: retry as a 4xx
            self.transport.abort()  # and the next mail must not find the session mid-transaction
            return Delivery(temporary={rcpt: f"{type(exc).__name__}: {exc}" for rcpt in mail.rcpt_to})
        return attempt.result()

    async def stop(self) -> None:
        """Finish the delivery in hand if it ends within `STOP_GRACE`, else drop it (retried at the next
        start), and leave the rest of the batch queued."""
        self.stopping = True
        self.wakeup.set()
        if self._task is not None:
            done, _ = await asyncio.wait({self._task}, timeout=STOP_GRACE)
            if not done and self._in_flight is not None:
                log.warning("deliver_aborted", reason=f"still delivering {STOP_GRACE:.0f}s into the stop")
                self._in_flight.cancel()
                self.transport.abort()
        await super().stop()

    async def _record(self, attempts: list[tuple[OutboundMail, Delivery]]) -> None:
        async with self.store.transaction() as tx:
            for mail, delivery in attempts:
                await self._record_one(tx, mail, delivery)

    async def _record_one(self, tx: Tx, mail: OutboundMail, delivery: Delivery) -> None:
        failures: list[dict[str, Any]] = await tx.mail_failures(mail.id)
        failures += [{"rcpt": r, "error": e, "permanent": True} for r, e in delivery.permanent.items()]
        give_up = self.clock() - mail.created_at >= self.settings.give_up_after
        lost = {**delivery.permanent, **(delivery.temporary if give_up else {})}
        if lost and self.undelivered is not None:
            await self.undelivered.tell(tx, mail, lost)
        if delivery.temporary and not give_up:
            delay = min(self.settings.retry_base * 2 ** (mail.attempts - 1), self.settings.retry_max)
            error = "; ".join(f"{r}: {e}" for r, e in delivery.temporary.items())
            await tx.mark_retry(mail.id, self.clock() + delay, error, list(delivery.temporary), failures)
            log.warning(
                "deliver_retry",
                outbox_id=mail.id,
                attempts=mail.attempts,
                error=error,
                retry_in=delay.total_seconds(),
            )
            return
        failures += [{"rcpt": r, "error": e, "permanent": False} for r, e in delivery.temporary.items()]
        if delivery.accepted:
            await tx.mark_sent(mail.id, failures)
            if self.metrics is not None:
                self.metrics.mails_out += 1
            log.info(
                "delivered",
                outbox_id=mail.id,
                kind=mail.kind,
                ticket_id=mail.ticket_id,
                message_id=mail.message_id,
                accepted=delivery.accepted,
                failed=len(failures),
            )
        else:
            error = "; ".join(f"{f['rcpt']}: {f['error']}" for f in failures)
            await tx.mark_failed(mail.id, error, failures)
            log.error("deliver_failed", outbox_id=mail.id, kind=mail.kind, ticket_id=mail.ticket_id, error=error)
