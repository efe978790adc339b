"""Sockets on the demo's ports (3000, 5000, 8443, 8080), read from the kernel's tables.

``make demo`` right after ``make test`` must find its ports free: no test may listen on them or
leave a closed connection there (TIME_WAIT). The suite compares what it sees at its start and
its end (tests/conftest.py).
"""

from __future__ import annotations

from pathlib import Path

from entra_ciam.demo import Ports

__all__ = ["DEMO_PORTS", "sockets_on_demo_ports"]

DEMO_PORTS = frozenset(port for port, _option in Ports().named().values())
_STATES = {"01": "ESTABLISHED", "06": "TIME_WAIT", "0A": "LISTEN", "08": "CLOSE_WAIT"}


def sockets_on_demo_ports() -> set[tuple[str, str, str]] | None:
    """``(local, remote, state)`` of every TCP socket whose local port is a demo port; None where
    the kernel's tables cannot be read (not Linux)."""
    found: set[tuple[str, str, str]] = set()
    tables = [Path("/proc/net/tcp"), Path("/proc/net/tcp6")]
    if not any(table.exists() for table in tables):
        return None
    for table in tables:
        if not table.exists():
            continue
        for line in table.read_text().splitlines()[1:]:
            fields = line.split()
            local, remote, state = fields[1], fields[2], fields[3]
            if int(local.rsplit(":", 1)[1], 16) in DEMO_PORTS:
                found.add((local, remote, _STATES.get(state, state)))
    return found
