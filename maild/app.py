"""Wiring: builds the store, spool, pipeline, workers and listeners from the config, and runs them.

This is the only place that knows how the parts fit; each part gets what it needs handed in.
"""

from __future__ import annotations

import asyncio
import signal
from dataclasses import dataclass

import structlog

from maild.blobs import BlobStore
from maild.clock import Clock, system_clock
from maild.compose import Composer
from maild.config import Config
from maild.handlers import build_handlers
from maild.handlers.base import Services
from maild.intake.smtp import IntakeHandler, SmtpListener
from maild.outbound import OutboundWorker, make_transport
from maild.outbox import Outbox
from maild.pipeline import Pipeline, Runner
from maild.render import Renderer
from maild.spool import Spooler
from maild.store import Store

log = structlog.get_logger("maild.app")


def build_services(config: Config, clock: Clock) -> Services:
    composer = Composer(config.support_address, config.from_name, clock)
    return Services(
        config=config,
        renderer=Renderer(config.language),
        outbox=Outbox(composer),
        blobs=BlobStore(config.blob_dir),
        clock=clock,
    )


def build_pipeline(config: Config, store: Store, clock: Clock) -> Pipeline:
    return Pipeline(store, build_handlers(build_services(config, clock)))


@dataclass
class App:
    """The running daemon's parts, started and stopped in dependency order."""

    config: Config
    store: Store
    spooler: Spooler
    runner: Runner
    outbound: OutboundWorker
    listener: SmtpListener | None

    @classmethod
    async def start(cls, config: Config, clock: Clock = system_clock) -> App:
        store = await Store.open(config.db_path, clock)
        spooled, queued = asyncio.Event(), asyncio.Event()
        spooler = Spooler(store, on_commit=spooled)
        runner = Runner(store, build_pipeline(config, store, clock), wakeup=spooled, on_processed=queued)
        outbound = OutboundWorker(store, config.outbound, make_transport(config.outbound), queued, clock)
        listener = SmtpListener(config, IntakeHandler(config, spooler)) if config.smtp.enabled else None
        app = cls(config, store, spooler, runner, outbound, listener)
        spooler.start()
        runner.start()
        outbound.start()
        if listener:
            try:
                await listener.start()
            except OSError:
                await app.stop()
                raise
        log.info(
            "started",
            smtp=f"{config.smtp.host}:{listener.port}" if listener else None,
            lmtp=config.smtp.lmtp,
            transport=config.outbound.transport,
            data_dir=str(config.data_dir),
        )
        if config.security.agent_auth == "from":
            log.warning(
                "agent_auth_from",
                detail="agents are recognised by the From: address alone, which "
                'anyone can forge; set [security] agent_auth = "authentication-results"',
            )
        return app

    async def stop(self) -> None:
        """Graceful drain: stop accepting, commit what sessions sent, finish the message and the
        deliveries in hand, close the store."""
        if self.listener:
            await self.listener.stop()
        await self.spooler.stop()
        await self.runner.stop()
        await self.outbound.stop()
        await self.store.close()
        log.info("stopped")


async def serve(config: Config) -> None:
    """Run until SIGTERM or SIGINT, then drain and return."""
    app = await App.start(config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        await stop.wait()
        log.info("stopping")
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
        await app.stop()
