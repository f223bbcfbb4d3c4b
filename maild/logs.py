"""structlog set-up: JSON lines for journald and log shippers, a readable console on a terminal."""

from __future__ import annotations

import logging
import sys
from typing import TextIO, cast

import structlog

_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}


class _Lossy:
    """A log stream that drops what it cannot write. A log line must never fail the work it reports: Postfix's
    pipe(8) reads 4 KiB of `maild inject`'s output and closes the pipe, and the next line would raise
    BrokenPipeError in the middle of a ticket's transaction. A closed pipe stays closed, so it is not written
    again; any other error (a full disk under a redirected log) loses that line alone."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.closed_pipe = False

    def write(self, text: str) -> int:
        if not self.closed_pipe:
            try:
                return self.stream.write(text)
            except BrokenPipeError:
                self.closed_pipe = True
            except OSError:
                pass
        return len(text)

    def flush(self) -> None:
        if not self.closed_pipe:
            try:
                self.stream.flush()
            except BrokenPipeError:
                self.closed_pipe = True
            except OSError:
                pass

    def isatty(self) -> bool:
        return self.stream.isatty()


def configure_logging(level: str = "info", stream: TextIO | None = None) -> None:
    """Route maild's events (and the libraries' stdlib logging) to ``stream`` (default stdout)."""
    out = cast(TextIO, _Lossy(stream or sys.stdout))
    renderer: structlog.typing.Processor = (
        structlog.dev.ConsoleRenderer() if out.isatty() else structlog.processors.JSONRenderer()
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(_LEVELS[level]),
        logger_factory=structlog.PrintLoggerFactory(out),
        cache_logger_on_first_use=True,
    )
    # Libraries (aiosmtpd, aiosqlite, mail-parser) log through the stdlib: their warnings are rendered as ours
    # are, so the stream stays one JSON object per line for journald and log shippers.
    handler = logging.StreamHandler(out)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[
                structlog.stdlib.add_log_level,
                structlog.stdlib.add_logger_name,
                structlog.processors.TimeStamper(fmt="iso", utc=True),
            ],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)
    # mail-parser warns of every MIME type it leaves alone (text/rfc822-headers in a bounce...): normal mail.
    logging.getLogger("mailparser").setLevel(logging.ERROR)
