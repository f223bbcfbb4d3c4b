"""The shape shared by maild's background loops: work when woken, else poll; finish the work in hand on stop."""

from __future__ import annotations

import asyncio
import contextlib

import structlog

log = structlog.get_logger("maild.worker")


class Worker:
    """Subclasses implement `work()`, returning how long they may sleep at most before working again."""

    name = "worker"

    def __init__(self, wakeup: asyncio.Event, poll_seconds: float) -> None:
        self.wakeup = wakeup
        self.poll_seconds = poll_seconds
        self.stopping = False
        self._task: asyncio.Task[None] | None = None

    async def work(self) -> float | None:
        raise NotImplementedError

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=self.name)

    async def stop(self) -> None:
        """Let the work in hand finish (a transaction is never abandoned midway), then return."""
        self.stopping = True
        self.wakeup.set()
        if self._task:
            await self._task
            self._task = None

    async def _run(self) -> None:
        while not self.stopping:
            self.wakeup.clear()
            try:
                sleep = await self.work()
            except Exception as exc:  # e.g. the store failing: stay up and try again later.
                log.error(f"{self.name}_failed", error=str(exc), exc_info=exc)
                sleep = None
            if self.stopping:
                break
            timeout = self.poll_seconds if sleep is None else max(0.05, min(sleep, self.poll_seconds))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wakeup.wait(), timeout=timeout)
