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
from maild.intake.imap import ImapPoller
from maild.intake.smtp import IntakeHandler, SmtpListener
from maild.lifecycle import Lifecycle
from maild.outbound import OutboundWorker, make_transport
from maild.outbox import Outbox
from maild.pipeline import Pipeline, Runner
from maild.render import Renderer
from maild.scheduler import Scheduler, TimerActions
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
        lifecycle=Lifecycle(config, clock),
    )


def build_timer_actions(services: Services) -> TimerActions:
    return TimerActions(services.config, services.lifecycle, services.renderer, services.outbox)


def build_pipeline(services: Services, store: Store) -> Pipeline:
    return Pipeline(store, build_handlers(services))


@dataclass
class App:
    """The running daemon's parts, started and stopped in dependency order."""

    config: Config
    store: Store
    spooler: Spooler
    runner: Runner
    outbound: OutboundWorker
    scheduler: Scheduler
    listener: SmtpListener | None
    imap: ImapPoller | None

    @classmethod
    async def start(cls, config: Config, clock: Clock = system_clock) -> App:
        store = await Store.open(config.db_path, clock)
        services = build_services(config, clock)
        spooled, queued, changed = asyncio.Event(), asyncio.Event(), asyncio.Event()
        spooler = Spooler(store, on_commit=spooled)
        # A processed message may queue mail (wake delivery) and schedule timers (wake the scheduler).
        runner = Runner(store, build_pipeline(services, store), wakeup=spooled, on_processed=(queued, changed))
        outbound = OutboundWorker(store, config.outbound, make_transport(config.outbound), queued, clock)
        scheduler = Scheduler(store, build_timer_actions(services), wakeup=changed, on_fired=queued)
        try:
            listener = SmtpListener(config, IntakeHandler(config, spooler)) if config.smtp.enabled else None
        except BaseException:
            await store.close()  # else its thread keeps the process alive after the error
            raise
        imap = ImapPoller(config, store, spooler) if config.imap.enabled else None
        app = cls(config, store, spooler, runner, outbound, scheduler, listener, imap)
        spooler.start()
        runner.start()
        outbound.start()
        scheduler.start()
        if imap:
            imap.start()
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
        if self.imap:
            await self.imap.stop()
        await self.spooler.stop()
        await self.runner.stop()
        await self.scheduler.stop()
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
