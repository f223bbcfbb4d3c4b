"""Fixtures that return running parts: a capturing smarthost and maild daemons (factories)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import Daemon, Smarthost


@pytest.fixture
def smarthost() -> Iterator[Smarthost]:
    """The MTA maild relays through, capturing every mail it is given."""
    host = Smarthost()
    host.start()
    yield host
    host.stop()


@pytest.fixture
def start_daemon(tmp_path: Path, smarthost: Smarthost) -> Iterator[Callable[..., Daemon]]:
    """Factory: start `maild serve` on a free loopback port, relaying to the smarthost."""
    daemons: list[Daemon] = []

    def start(**kwargs: Any) -> Daemon:
        workdir = tmp_path / f"maild{len(daemons)}"
        workdir.mkdir()
        daemon = Daemon(workdir, smarthost.port, **kwargs)
        daemon.start()
        daemons.append(daemon)
        return daemon

    yield start
    for daemon in daemons:
        if daemon.process is not None:
            daemon.stop()


@pytest.fixture
def daemon(start_daemon: Callable[..., Daemon]) -> Daemon:
    """A running maild with the default test config (English, agents Ana and Luis, a billing queue)."""
    return start_daemon()
