"""Prometheus metrics on `[metrics] listen`: counters kept in the process, backlogs read from the store.

The text format is simple enough that a client library would add more than it saves; the HTTP side is one
GET answered by a 40-line asyncio server bound to the configured (loopback) address.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
from dataclasses import dataclass, field

import structlog

from maild.clock import Clock, from_iso
from maild.store import Store

log = structlog.get_logger("maild.metrics")

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


@dataclass
class Metrics:
    """What the running daemon counts; every part gets the same instance from `maild.app`."""

    mails_in: int = 0
    mails_out: int = 0
    processed: int = 0
    latency_counts: list[int] = field(default_factory=lambda: [0] * (len(LATENCY_BUCKETS) + 1))
    latency_sum: float = 0.0

    def observe_processing(self, seconds: float) -> None:
        self.processed += 1
        self.latency_sum += seconds
        self.latency_counts[bisect.bisect_left(LATENCY_BUCKETS, seconds)] += 1

    async def render(self, store: Store, clock: Clock) -> str:
        async with store.snapshot() as tx:
            intake, outbound, breached = await tx.intake_summary(), await tx.outbox_summary(), await tx.count_breached()
        oldest = outbound["oldest_queued_at"]
        backlog = outbound["counts"].get("queued", 0) + outbound["counts"].get("sending", 0)
        lines = [
            *_metric("maild_mails_received_total", "counter", "Mails accepted (committed) since start.", self.mails_in),
            *_metric("maild_mails_sent_total", "counter", "Mails delivered since start.", self.mails_out),
            *_metric("maild_outbox_backlog", "gauge", "Mails waiting for delivery.", backlog),
            *_metric(
                "maild_outbox_oldest_age_seconds",
                "gauge",
                "Age of the oldest waiting mail.",
                (clock() - from_iso(oldest)).total_seconds() if oldest else 0,
            ),
            *_metric(
                "maild_outbox_failed", "gauge", "Mails that failed for good.", outbound["counts"].get("failed", 0)
            ),
            *_metric(
                "maild_spool_pending", "gauge", "Received mails not yet processed.", intake["counts"].get("pending", 0)
            ),
            *_metric(
                "maild_shunted",
                "gauge",
                "Mails whose processing failed (maild shunt list).",
                intake["counts"].get("shunted", 0),
            ),
            *_metric("maild_sla_breached_tickets", "gauge", "Tickets that missed their SLA.", breached),
            "# HELP maild_processing_seconds Time to process one mail through the pipeline.",
            "# TYPE maild_processing_seconds histogram",
        ]
        cumulative = 0
        for bound, count in zip((*LATENCY_BUCKETS, float("inf")), self.latency_counts, strict=True):
            cumulative += count
            label = "+Inf" if bound == float("inf") else repr(bound)
            lines.append(f'maild_processing_seconds_bucket{{le="{label}"}} {cumulative}')
        lines += [
            f"maild_processing_seconds_sum {self.latency_sum}",
            f"maild_processing_seconds_count {self.processed}",
        ]
        return "\n".join(lines) + "\n"


def _metric(name: str, kind: str, help_text: str, value: float) -> list[str]:
    return [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}", f"{name} {value}"]


class MetricsServer:
    def __init__(self, listen: str, metrics: Metrics, store: Store, clock: Clock) -> None:
        self.host, _, port = listen.rpartition(":")
        self.port = int(port)
        self.metrics, self.store, self.clock = metrics, store, clock
        self.server: asyncio.Server | None = None

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._serve, self.host or "127.0.0.1", self.port)

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            self.server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=5)
            path = request.split(b" ", 2)[1] if request.count(b" ") >= 2 else b""
            if request.startswith(b"GET ") and path in (b"/metrics", b"/"):
                status, body = "200 OK", (await self.metrics.render(self.store, self.clock)).encode()
            else:
                status, body = "404 Not Found", b"not found\n"
            writer.write(
                f"HTTP/1.0 {status}\r\nContent-Type: text/plain; version=0.0.4\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
                + body
            )
            await writer.drain()
        except (OSError, TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as exc:
            log.debug("metrics_request_failed", error=str(exc))
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
