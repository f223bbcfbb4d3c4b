"""The runner: takes spooled messages in arrival order and runs the pipeline's steps over each.

Each message is processed in one transaction, so its ticket change and the mail it causes commit together;
the decoding that needs no store comes before it (`Prepares`). A step that raises rolls the whole message
back; the message is then shunted with the step's name and the error, kept intact, and `maild shunt replay`
puts it back in line. Nothing is lost, nothing half-done.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass

import structlog

from maild.handlers.base import Context, Handler, Prepares, Stop
from maild.metrics import Metrics
from maild.store import Store, Tx
from maild.store.inbound import DONE, DROPPED, PENDING, SHUNTED
from maild.worker import Worker

log = structlog.get_logger("maild.pipeline")


@dataclass(frozen=True)
class Result:
    """How processing of one spooled message ended."""

    inbound_id: int
    state: str
    ticket_id: int | None = None
    reason: str | None = None


class _StepFailed(Exception):
    def __init__(self, step: str, error: BaseException) -> None:
        super().__init__(f"{step}: {type(error).__name__}: {error}")
        self.step = step
        self.error = error


class Pipeline:
    def __init__(self, store: Store, handlers: Sequence[Handler], metrics: Metrics | None = None) -> None:
        self.store = store
        self.handlers = handlers
        self.preparers = [h for h in handlers if isinstance(h, Prepares)]
        self.metrics = metrics

    async def process(self, inbound_id: int) -> Result | None:
        """Process one spooled message; None when it was not pending (someone else took it)."""
        started = time.perf_counter()
        result = await self._process(inbound_id)
        if result is not None and self.metrics is not None:
            self.metrics.observe_processing(time.perf_counter() - started)
        return result

    async def _process(self, inbound_id: int) -> Result | None:
        async with self.store.snapshot() as tx:
            inbound = await tx.get_inbound(inbound_id)
        if inbound is None or inbound.state != PENDING:
            return None
        ctx = Context(inbound=inbound)
        try:
            await self._prepare(ctx)
            async with self.store.transaction() as tx:
                if await tx.inbound_state(inbound_id) != PENDING:
                    return None  # another process (maild inject, shunt replay) took it meanwhile
                stop = await self._run_steps(ctx, tx)
                ticket_id = ctx.ticket.id if ctx.ticket else None
                state = DROPPED if stop else DONE
                await tx.finish_inbound(inbound_id, state, ticket_id=ticket_id, error=stop.reason if stop else None)
        except _StepFailed as failed:
            log.error(
                "shunted",
                inbound_id=inbound_id,
                step=failed.step,
                error=str(failed.error),
                exc_info=failed.error,
            )
            async with self.store.transaction() as tx:
                await tx.finish_inbound(
                    inbound_id,
                    SHUNTED,
                    step=failed.step,
                    error=f"{type(failed.error).__name__}: {failed.error}"[:2000],
                )
            return Result(inbound_id, SHUNTED, reason=str(failed))
        return Result(inbound_id, state, ticket_id, stop.reason if stop else None)

    async def _prepare(self, ctx: Context) -> None:
        for handler in self.preparers:
            try:
                await handler.prepare(ctx)
            except Exception as exc:
                raise _StepFailed(handler.name, exc) from exc

    async def _run_steps(self, ctx: Context, tx: Tx) -> Stop | None:
        for handler in self.handlers:
            try:
                outcome = await handler.process(ctx, tx)
            except Exception as exc:
                raise _StepFailed(handler.name, exc) from exc
            notes, ctx.notes = ctx.notes, []
            stop = outcome if isinstance(outcome, Stop) else None
            log.info(
                "step",
                step=handler.name,
                inbound_id=ctx.inbound.id,
                message_id=ctx.mail.message_id if ctx.mail else None,
                ticket_id=ctx.ticket.id if ctx.ticket else None,
                outcome="stop" if stop else "continue",
                reason=stop.reason if stop else None,
                notes=notes,
            )
            if stop:
                return stop
        return None


class Runner(Worker):
    """Drains the spool through the pipeline; woken by new commits, polling as a fallback because another
    process (such as `maild inject`) may have spooled mail."""

    name = "runner"

    def __init__(
        self,
        store: Store,
        pipeline: Pipeline,
        wakeup: asyncio.Event,
        on_processed: tuple[asyncio.Event, ...],
        poll_seconds: float = 1.0,
    ) -> None:
        super().__init__(wakeup, poll_seconds)
        self.store = store
        self.pipeline = pipeline
        self.on_processed = on_processed

    async def work(self) -> float | None:
        await self.drain()
        return None

    async def drain(self) -> int:
        """Process everything pending now; the number of messages processed."""
        count = 0
        while not self.stopping:
            async with self.store.snapshot() as tx:
                ids = await tx.pending_inbound_ids(limit=100)
            if not ids:
                break
            for inbound_id in ids:
                if self.stopping:
                    break
                if await self.pipeline.process(inbound_id) is not None:
                    count += 1
                    for event in self.on_processed:
                        event.set()
        return count
