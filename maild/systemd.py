"""The systemd service protocols, spoken directly (they are a datagram and two environment variables).

sd_notify: READY=1 once listening, STATUS= lines, WATCHDOG=1 pings, STOPPING=1. Socket activation: the
sockets systemd passes as LISTEN_FDS. Outside systemd every function here does nothing.
"""

from __future__ import annotations

import os
import socket

SD_LISTEN_FDS_START = 3


def notify(*fields: str) -> bool:
    """Send "KEY=value" fields to $NOTIFY_SOCKET; False when not run by systemd (or it is unreachable)."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):  # abstract namespace
        address = "\0" + address[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.sendto("\n".join(fields).encode("utf-8"), address)
    except OSError:
        return False
    return True


def watchdog_seconds() -> float | None:
    """How often to ping (half of WatchdogSec), or None when no watchdog watches this process."""
    usec = os.environ.get("WATCHDOG_USEC")
    pid = os.environ.get("WATCHDOG_PID")
    if not usec or not usec.isdigit() or (pid and pid != str(os.getpid())):
        return None
    return int(usec) / 1_000_000 / 2


def listen_sockets() -> list[socket.socket]:
    """The listening sockets systemd passed (socket activation), in order; [] when there are none."""
    count = os.environ.get("LISTEN_FDS", "")
    if not count.isdigit() or os.environ.get("LISTEN_PID") != str(os.getpid()):
        return []
    sockets = []
    for fd in range(SD_LISTEN_FDS_START, SD_LISTEN_FDS_START + int(count)):
        os.set_inheritable(fd, False)
        sockets.append(socket.socket(fileno=fd))
    for name in ("LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES"):
        os.environ.pop(name, None)  # not for our children
    return sockets
