"""The runner: takes spooled messages in arrival order and runs the pipeline's steps over each.

Each message is processed in its own savepoint of one transaction, so its ticket change and the mail it
causes commit together; the decoding that needs no store comes before it (`Prepares`). A step that raises
rolls the whole message back; the message is then shunted with the step's name and the error, kept intact,
and `maild shunt replay` puts it back in line. Nothing is lost, nothing half-done.

When a backlog is waiting, up to `BATCH` small messages share the transaction (group commit, as the spool does
for SMTP sessions): a commit and its fsync cost as much CPU as a third of a message's steps. Under light load
each message still commits alone, at once.
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

# Messages per transaction at most, and the largest message that shares one. Four keep the event loop, which
# runs the steps inline, from being held more than ~10 ms at a time; messages over 256 KiB (decoded in a
# thread) commit alone, so a batch's raw and decoded mails stay within a few MiB. Messages share commits only
# from a backlog of `BATCH_BACKLOG` on: below it, the SMTP sessions' 250s would wait on a batch's commit for
# throughput nobody needs (ingest.py's p99 at half saturation rose from 18-39 to 32-51 ms with batches always).
BATCH = 4
BATCH_BYTES = 256 * 1024
BATCH_BACKLOG = 8


@dataclass(frozen=True)
class Result:
    """How processing of one spooled message ended."""

    inbound_id: int
    state: str
    ticket_id: int | None = None
    reason: str | None = None
    stopped_at: str | None = None  # the step that ended a dropped message
    notes: tuple[str, ...] = ()  # what the steps noted, as "step: note"


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
        return (await self.process_batch([inbound_id]))[0]

    async def process_batch(self, inbound_ids: Sequence[int]) -> list[Result | None]:
        """Process these spooled messages, in order, in one transaction; for each, its result, or None when
        it was not pending. Each is decoded first, outside the transaction, and yields the event loop between
        decodings so the SMTP sessions are served meanwhile."""
        started = time.perf_counter()
        prepared: list[Context | None] = []
        failures: dict[int, _StepFailed] = {}
        for number, inbound_id in enumerate(inbound_ids):
            if number:
                await asyncio.sleep(0)
            async with self.store.snapshot() as tx:
                inbound = await tx.get_inbound(inbound_id)
            if inbound is None or inbound.state != PENDING:
                prepared.append(None)
                continue
            ctx = Context(inbound=inbound)
            try:
                await self._prepare(ctx)
            except _StepFailed as failed:
                failures[inbound_id] = failed
            prepared.append(ctx)
        if not any(prepared):
            return [None] * len(prepared)
        async with self.store.transaction() as tx:
            results = [
                await self._in_transaction(tx, ctx, failures.get(ctx.inbound.id)) if ctx else None for ctx in prepared
            ]
        for done, result in zip(prepared, results, strict=True):
            if done is not None and result is not None and result.state != SHUNTED:  # a shunt is logged as one
                log.info(
                    "processed",
                    inbound_id=result.inbound_id,
                    message_id=done.mail.message_id if done.mail else None,
                    ticket_id=result.ticket_id,
                    state=result.state,
                    stopped_at=result.stopped_at,
                    reason=result.reason,
                    notes=list(result.notes),
                )
        if self.metrics is not None:
            seconds = time.perf_counter() - started  # each waited for the batch's commit
            for _ in filter(None, results):
                self.metrics.observe_processing(seconds)
        return results

    async def _in_transaction(self, tx: Tx, ctx: Context, failed: _StepFailed | None) -> Result | None:
        inbound_id = ctx.inbound.id
        if await tx.inbound_state(inbound_id) != PENDING:
            return None  # another process (maild inject, shunt replay) took it meanwhile
        if failed is None:
            try:
                trail: list[str] = []
                async with tx.savepoint("message"):
                    stopped = await self._run_steps(ctx, tx, trail)
                    ticket_id = ctx.ticket.id if ctx.ticket else None
                    state = DROPPED if stopped else DONE
                    reason = stopped[1].reason if stopped else None
                    await tx.finish_inbound(inbound_id, state, ticket_id=ticket_id, error=reason)
                return Result(inbound_id, state, ticket_id, reason, stopped[0] if stopped else None, tuple(trail))
            except _StepFailed as step_failed:
                failed = step_failed
        log.error("shunted", inbound_id=inbound_id, step=failed.step, error=str(failed.error), exc_info=failed.error)
        error = f"{type(failed.error).__name__}: {failed.error}"[:2000]
        await tx.finish_inbound(inbound_id, SHUNTED, step=failed.step, error=error)
        return Result(inbound_id, SHUNTED, reason=str(failed))

    async def _prepare(self, ctx: Context) -> None:
        for handler in self.preparers:
            try:
                await handler.prepare(ctx)
            except Exception as exc:
                raise _StepFailed(handler.name, exc) from exc

    async def _run_steps(self, ctx: Context, tx: Tx, trail: list[str]) -> tuple[str, Stop] | None:
        """The steps in order: the one that stopped the message and its Stop, or None. Each step's notes go
        into ``trail``; the per-step trace is logged at debug level, the message's outcome once at info by
        `process_batch` (fifteen JSON lines per mail cost ~10% of its CPU, and flood the journal)."""
        for handler in self.handlers:
            try:
                outcome = await handler.process(ctx, tx)
            except Exception as exc:
                raise _StepFailed(handler.name, exc) from exc
            notes, ctx.notes = ctx.notes, []
            trail.extend(f"{handler.name}: {note}" for note in notes)
            stop = outcome if isinstance(outcome, Stop) else None
            log.debug(
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
                return handler.name, stop
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
                waiting = await tx.pending_inbound_sizes(limit=100)
            if not waiting:
                break
            for batch in _batches(waiting):
                if self.stopping:
                    break
                processed = [result for result in await self.pipeline.process_batch(batch) if result]
                count += len(processed)
                if processed:
                    for event in self.on_processed:
                        event.set()
        return count


def _batches(waiting: Sequence[tuple[int, int]]) -> list[list[int]]:
    """Consecutive runs of up to `BATCH` messages of at most `BATCH_BYTES` each, a larger one alone; each
    alone below a backlog of `BATCH_BACKLOG`."""
    if len(waiting) < BATCH_BACKLOG:
        return [[inbound_id] for inbound_id, _ in waiting]
    batches: list[list[int]] = []
    shareable = False  # whether the last batch may take more
    for inbound_id, size in waiting:
        small = size <= BATCH_BYTES
        if small and shareable and len(batches[-1]) < BATCH:
            batches[-1].append(inbound_id)
        else:
            batches.append([inbound_id])
        shareable = small
    return batches
