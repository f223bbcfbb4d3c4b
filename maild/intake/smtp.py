"""SMTP/LMTP intake (aiosmtpd): accept mail for our addresses only, answer 250 only once it is committed."""

from __future__ import annotations

import asyncio
import socket
import ssl
import weakref
from typing import Any, cast

import structlog
from aiosmtpd.lmtp import LMTP
from aiosmtpd.smtp import SMTP, Session
from aiosmtpd.smtp import Envelope as SmtpEnvelope

from maild.config import Config, ConfigError, base_address
from maild.models import Envelope
from maild.spool import Spooler

log = structlog.get_logger("maild.intake.smtp")

OK = "250 2.0.0 Ok: queued"
OK_DUPLICATE = "250 2.0.0 Ok: already received"
RCPT_OK = "250 2.1.5 Ok"
NO_RELAY = "550 5.7.1 <{}>: relay access denied (not an address maild serves)"
TOO_MANY_RCPTS = "452 4.5.3 Too many recipients"
STORE_FAILED = "451 4.3.0 Temporary failure storing the message, try again later"
SHUTTING_DOWN = b"421 4.3.2 maild is shutting down, try again later\r\n"


def _session_class(base: type[SMTP], max_message_bytes: int) -> type[SMTP]:
    """aiosmtpd refuses a DATA line past `line_length_limit` with a permanent 500, and the mail is lost.

    Lines longer than RFC 5321's 1000 octets come from real (broken) clients, so we keep any line that fits
    in the largest message we take: only the size limit refuses mail. The limit is also the StreamReader's
    buffer bound, which the message itself is held to already.
    """
    return type(base.__name__, (base,), {"line_length_limit": max_message_bytes + 1002})


class _Busy(asyncio.Protocol):
    """Answers a connection over `max_connections` with 421 (the client retries later) and hangs up."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        stream = cast(asyncio.Transport, transport)  # uvloop's TCP transport is no WriteTransport subclass
        stream.write(b"421 4.7.0 Too many connections, try again later\r\n")
        stream.close()


class IntakeHandler:
    """aiosmtpd hooks: RCPT decides who we accept mail for, DATA spools it durably."""

    def __init__(self, config: Config, spooler: Spooler) -> None:
        self.addresses = config.own_addresses
        self.max_recipients = config.smtp.max_recipients
        self.lmtp = config.smtp.lmtp
        self.spooler = spooler
        self.in_flight = 0
        self.idle = asyncio.Event()
        self.idle.set()

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: SmtpEnvelope, address: str, rcpt_options: list[str]
    ) -> str:
        lowered = address.lower()
        if lowered not in self.addresses and base_address(lowered) not in self.addresses:  # support+urgent@ too
            log.info("rcpt_refused", rcpt=address, peer=_peer(session))
            return NO_RELAY.format(address)
        if len(envelope.rcpt_tos) >= self.max_recipients:
            return TOO_MANY_RCPTS
        envelope.rcpt_tos.append(address)
        return RCPT_OK

    async def handle_DATA(self, server: SMTP, session: Session, envelope: SmtpEnvelope) -> str:
        self.in_flight += 1
        self.idle.clear()
        try:
            return await self._spool(session, envelope)
        finally:
            self.in_flight -= 1
            if self.in_flight == 0:
                self.idle.set()

    async def _spool(self, session: Session, envelope: SmtpEnvelope) -> str:
        raw: bytes = envelope.original_content or b""
        meta = Envelope(
            source="lmtp" if self.lmtp else "smtp",
            mail_from=envelope.mail_from or "",
            rcpt_to=tuple(envelope.rcpt_tos),
            peer=_peer(session),
        )
        try:
            spooled = await self.spooler.put(meta, raw)
        except Exception as exc:
            log.error("spool_failed", error=str(exc), peer=meta.peer, size=len(raw))
            status = STORE_FAILED
        else:
            log.info(
                "received",
                inbound_id=spooled.inbound_id,
                duplicate=spooled.duplicate,
                size=len(raw),
                mail_from=meta.mail_from,
                rcpt_to=list(meta.rcpt_to),
                peer=meta.peer,
            )
            status = OK_DUPLICATE if spooled.duplicate else OK
        # LMTP answers DATA once per recipient (RFC 2033): each was accepted, each gets the same fate.
        return "\r\n".join([status] * len(envelope.rcpt_tos)) if self.lmtp else status


class SmtpListener:
    """The listening socket and its sessions; stops accepting first, then lets DATA in flight finish."""

    def __init__(self, config: Config, handler: IntakeHandler) -> None:
        self.config = config
        self.handler = handler
        self.server: asyncio.Server | None = None
        self.sessions: weakref.WeakSet[SMTP] = weakref.WeakSet()
        self.tls_context = _tls_context(config)
        limit = config.smtp.max_message_bytes
        self.session_class = _session_class(LMTP if config.smtp.lmtp else SMTP, limit)

    def _factory(self) -> asyncio.Protocol:
        open_sessions = sum(1 for s in self.sessions if s.transport is not None and not s.transport.is_closing())
        if open_sessions >= self.config.smtp.max_connections:
            log.warning("too_many_connections", limit=self.config.smtp.max_connections)
            return _Busy()
        session: SMTP = self.session_class(
            self.handler,
            data_size_limit=self.config.smtp.max_message_bytes,
            enable_SMTPUTF8=True,
            decode_data=False,
            hostname=socket.gethostname(),
            ident="maild",
            tls_context=self.tls_context,
            require_starttls=False,
        )
        self.sessions.add(session)
        return session

    async def start(self, sock: socket.socket | None = None) -> None:
        loop = asyncio.get_running_loop()
        kwargs: dict[str, Any] = (
            {"sock": sock} if sock else {"host": self.config.smtp.host, "port": self.config.smtp.port}
        )
        self.server = await loop.create_server(self._factory, reuse_address=True, **kwargs)

    @property
    def port(self) -> int:
        assert self.server is not None
        return int(self.server.sockets[0].getsockname()[1])

    async def stop(self, grace_seconds: float = 30.0) -> None:
        """Close the socket, let DATA in flight reach the spool, then tell the open sessions 421 (RFC 5321
        3.8): their clients retry later instead of seeing a dropped connection."""
        if self.server is None:
            return
        self.server.close()
        try:
            await asyncio.wait_for(self.handler.idle.wait(), timeout=grace_seconds)
        except TimeoutError:
            log.warning("shutdown_data_in_flight", sessions=self.handler.in_flight)
        for session in list(self.sessions):
            stream = cast(asyncio.Transport | None, session.transport)
            if stream is not None and not stream.is_closing():
                stream.write(SHUTTING_DOWN)
                stream.close()
        self.sessions.clear()
        self.server = None


def _peer(session: Session) -> str:
    peer = getattr(session, "peer", None)
    if isinstance(peer, tuple) and peer:
        return f"{peer[0]}:{peer[1]}" if len(peer) > 1 else str(peer[0])
    return str(peer or "")


def _tls_context(config: Config) -> ssl.SSLContext | None:
    """The STARTTLS context when a certificate is configured (offered, not required: MTAs fall back)."""
    if config.smtp.tls_cert is None or config.smtp.tls_key is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(config.smtp.tls_cert, config.smtp.tls_key)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError([f"intake.smtp.tls_cert: cannot load the certificate and key: {exc}"]) from None
    return context
