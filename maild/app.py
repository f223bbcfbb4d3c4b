"""Wiring: builds the store, spool, pipeline, workers and listeners from the config, and runs them.

This is the only place that knows how the parts fit; each part gets what it needs handed in.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import signal
import socket
from dataclasses import dataclass, field
from pathlib import Path

import structlog

from maild import systemd
from maild.blobs import BlobStore
from maild.clock import Clock, system_clock
from maild.compose import Composer
from maild.config import Config, ConfigError, load_config
from maild.digest import AgentDigests, DigestWorker
from maild.erase import Holdings, RetentionWorker
from maild.handlers import build_handlers
from maild.handlers.base import Services
from maild.intake.imap import ImapPoller
from maild.intake.smtp import IntakeHandler, SmtpListener
from maild.lifecycle import Lifecycle
from maild.metrics import Metrics, MetricsServer
from maild.outbound import OutboundWorker, make_transport
from maild.outbox import Outbox
from maild.pipeline import Pipeline, Runner
from maild.render import Renderer, TemplateError
from maild.scheduler import Scheduler, TimerActions
from maild.sla_settings import SlaFollower
from maild.spool import Spooler
from maild.store import Store, StoreError
from maild.store.inbound import PENDING, SHUNTED
from maild.store.outbox import QUEUED
from maild.undelivered import UndeliveredNotice

log = structlog.get_logger("maild.app")


def hold_data_dir(data_dir: Path) -> int:
    """Lock ``data_dir/maild.lock`` for the daemon's life (released by the kernel however it ends): one
    `maild serve` per store, so the mail an earlier one leased and never finished is its own to take back."""
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        lock = os.open(data_dir / "maild.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o640)
    except OSError as exc:
        raise StoreError(f"cannot open {data_dir}: {exc.strerror or exc}") from None
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(lock)
        raise StoreError(f"another maild serve is running on {data_dir}") from None
    return lock


def build_services(config: Config, clock: Clock) -> Services:
    renderer = Renderer(config.language, config.templates_dir, config.timezone)
    outbox = Outbox(Composer(config.support_address, config.from_name, clock), config.queue_senders())
    lifecycle = Lifecycle(config, clock)
    return Services(
        config=config,
        renderer=renderer,
        outbox=outbox,
        blobs=BlobStore(config.blob_dir),
        clock=clock,
        lifecycle=lifecycle,
        digests=AgentDigests(config, lifecycle, renderer, outbox),
        timers=TimerActions(config, lifecycle, renderer, outbox),
    )


def build_undelivered(services: Services) -> UndeliveredNotice:
    return UndeliveredNotice(services.config, services.renderer, services.outbox)


def build_timer_actions(services: Services) -> TimerActions:
    return services.timers


def build_pipeline(services: Services, store: Store, metrics: Metrics | None = None) -> Pipeline:
    return Pipeline(store, build_handlers(services), metrics)


@dataclass
class App:
    """The running daemon's parts, started and stopped in dependency order."""

    config: Config
    store: Store
    spooler: Spooler
    runner: Runner
    outbound: OutboundWorker
    scheduler: Scheduler
    sla_follower: SlaFollower
    digest: DigestWorker
    retention: RetentionWorker
    listener: SmtpListener | None
    imap: ImapPoller | None
    metrics: Metrics
    metrics_server: MetricsServer | None
    lock: int  # the data folder's lock file, held while the daemon runs
    # One reload at a time, and none once the stop began: a reload replaces workers (the IMAP poller) that two
    # reloads, or a reload and the stop, must not both replace or leave running.
    reloading: asyncio.Lock = field(default_factory=asyncio.Lock)
    stopped: bool = False

    @classmethod
    async def start(
        cls, config: Config, clock: Clock = system_clock, sockets: list[socket.socket] | None = None
    ) -> App:
        lock = hold_data_dir(config.data_dir)
        try:
            store = await Store.open(config.db_path, clock)
        except BaseException:
            os.close(lock)
            raise
        async with store.transaction() as tx:
            released = await tx.release_mail()
        if released:  # the daemon before this one stopped mid-delivery: those may go out a second time
            log.warning("outbound_released", count=released)
        services = build_services(config, clock)
        spooled, queued, changed = asyncio.Event(), asyncio.Event(), asyncio.Event()
        metrics = Metrics()
        spooler = Spooler(store, on_commit=spooled, metrics=metrics)
        # A processed message may queue mail (wake delivery) and schedule timers (wake the scheduler).
        pipeline = build_pipeline(services, store, metrics)
        runner = Runner(store, pipeline, wakeup=spooled, on_processed=(queued, changed))
        transport = make_transport(config.outbound)
        outbound = OutboundWorker(
            store, config.outbound, transport, queued, clock, metrics=metrics, undelivered=build_undelivered(services)
        )
        scheduler = Scheduler(store, build_timer_actions(services), wakeup=changed, on_fired=queued)
        sla_follower = SlaFollower(store, services.lifecycle, asyncio.Event(), on_changed=changed)
        digest = DigestWorker(store, services.digests, asyncio.Event(), on_queued=queued)
        retention = RetentionWorker(Holdings.of(store, config), config.retention, asyncio.Event())
        try:
            listener = SmtpListener(config, IntakeHandler(config, spooler)) if config.smtp.enabled else None
        except BaseException:
            await store.close()  # else its thread keeps the process alive after the error
            os.close(lock)
            raise
        imap = ImapPoller(config, store, spooler) if config.imap.enabled else None
        metrics_server = MetricsServer(config.metrics_listen, metrics, store, clock) if config.metrics_listen else None
        app = cls(
            config,
            store,
            spooler,
            runner,
            outbound,
            scheduler,
            sla_follower,
            digest,
            retention,
            listener,
            imap,
            metrics,
            metrics_server,
            lock,
        )
        spooler.start()
        runner.start()
        outbound.start()
        scheduler.start()
        sla_follower.start()
        digest.start()
        retention.start()
        if metrics_server:
            try:
                await metrics_server.start()
            except OSError:
                await app.stop()
                raise
        if imap:
            imap.start()
        if listener:
            try:
                # Socket activation: systemd bound the port (25 without privileges); else bind it ourselves.
                await listener.start(sock=sockets[0] if sockets else None)
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
        async with self.reloading:  # a reload in hand finishes first
            self.stopped = True
        if self.listener:
            await self.listener.stop()
        if self.imap:
            await self.imap.stop()
        if self.metrics_server:
            await self.metrics_server.stop()
        await self.spooler.stop()
        await self.runner.stop()
        await self.sla_follower.stop()
        await self.digest.stop()
        await self.retention.stop()
        await self.scheduler.stop()
        await self.outbound.stop()
        await self.store.close()
        os.close(self.lock)
        log.info("stopped")

    def _refuse_reload(self, problems: list[str]) -> None:
        log.error("reload_refused", problems=problems)
        systemd.notify("READY=1", "STATUS=reload refused: the config has errors (see the log)")

    async def reload(self) -> None:
        """SIGHUP: re-read the config; templates, agents, queues and lifecycle settings apply to the next
        message, [outbound] to the next batch of mail sent, [intake.imap] to a new IMAP session. The listeners
        and the store stay as they are (changing those needs a restart)."""
        async with self.reloading:
            if not self.stopped:
                await self._reload()

    async def _reload(self) -> None:
        if self.config.path is None:
            return
        systemd.notify("RELOADING=1")
        try:
            config = load_config(self.config.path)
            services = build_services(config, self.store.clock)
        except ConfigError as exc:
            self._refuse_reload(exc.problems)
            return
        except TemplateError as exc:  # an override changed since load_config checked it
            self._refuse_reload([str(exc)])
            return
        self.runner.pipeline = build_pipeline(services, self.store, self.metrics)
        self.scheduler.actions = build_timer_actions(services)
        self.sla_follower.lifecycle = services.lifecycle
        self.sla_follower.wakeup.set()
        self.digest.digests = services.digests
        self.digest.wakeup.set()
        self.retention.where, self.retention.keep = Holdings.of(self.store, config), config.retention
        self.retention.wakeup.set()
        self.outbound.undelivered = build_undelivered(services)
        # Always: a CA file renewed under the same name is read again too (the TLS context is built per transport).
        self.outbound.reconfigure(config.outbound, make_transport(config.outbound))
        if self.listener:
            self.listener.handler.addresses = config.own_addresses
        if _imap_view(config) != _imap_view(self.config):
            await self._replace_imap(config)
        self.config = config
        log.info("reloaded", agents=len(config.agents), queues=len(config.queues))
        systemd.notify("READY=1", f"STATUS={await self.summary()}")

    async def _replace_imap(self, config: Config) -> None:
        """A new poller for a changed [intake.imap]: the old one stops between batches, as at shutdown (what it
        spooled stays spooled), and the new one connects with the new settings, or none is left if disabled."""
        if self.imap:
            await self.imap.stop()
        self.imap = ImapPoller(config, self.store, self.spooler) if config.imap.enabled else None
        if self.imap:
            self.imap.start()

    async def summary(self) -> str:
        """One line for systemctl status; every 30 s, so counts by index ranges only."""
        async with self.store.snapshot() as tx:
            pending, shunted = await tx.count_in_state(PENDING), await tx.count_in_state(SHUNTED)
            queued = await tx.count_mail_in_state(QUEUED)
        return f"spool {pending} pending, {shunted} shunted; outbox {queued} queued"

    async def heartbeat(self, stop: asyncio.Event) -> None:
        """READY once, then STATUS (and WATCHDOG=1 when systemd watches) until stopped."""
        systemd.notify("READY=1", f"STATUS={await self.summary()}")
        interval = systemd.watchdog_seconds()
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=interval or 30.0)
            if stop.is_set():
                break
            try:
                status = await self.summary()
            except Exception as exc:  # the store failing must not stop the pings: systemd would kill us
                status = f"store error: {exc}"
            systemd.notify(*(["WATCHDOG=1"] if interval else []), f"STATUS={status}")


async def serve(config: Config) -> None:
    """Run until SIGTERM or SIGINT, then drain and return; SIGHUP reloads the config."""
    app = await App.start(config, sockets=systemd.listen_sockets())
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    loop.add_signal_handler(signal.SIGHUP, lambda: asyncio.ensure_future(app.reload()))
    heartbeat = asyncio.create_task(app.heartbeat(stop), name="heartbeat")
    try:
        await stop.wait()
        log.info("stopping")
        systemd.notify("STOPPING=1", "STATUS=draining")
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            loop.remove_signal_handler(signum)
        heartbeat.cancel()
        await app.stop()


def _imap_view(config: Config) -> tuple[object, ...]:
    """What an IMAP poller reads of the config: a reload that changes none of it keeps the session."""
    return (config.imap, config.support_address, config.own_addresses, config.smtp.max_message_bytes)
