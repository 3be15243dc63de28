"""Choosing a loopback port for a server Atelier starts: the hub's services, tests, benchmarks.

Rule: one way to ask the kernel for a free port. The port is free when chosen, not reserved: a
caller that binds it later must expect another program to have taken it in between (the test hub
retries on fresh ports).
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

from atelier.files import atomic_write


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port on ``host`` that nothing listens on right now."""
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def kept_port(record: str | os.PathLike, host: str = "127.0.0.1") -> int:
    """The port written in ``record`` if it is still free, else a free one, written there.

    For a server whose address others keep after it restarts: trainees' servers outlive a hub
    restart with the address of the hub's services in their environment.
    """
    try:
        port = int(Path(record).read_text().strip())
    except (OSError, ValueError):
        port = 0
    if 0 < port < 65536 and _free(host, port):
        return port
    port = free_port(host)
    atomic_write(record, f"{port}\n", mode=0o644)
    return port


def _free(host: str, port: int) -> bool:
    # SO_REUSEADDR as servers bind (Tornado does): a port in TIME_WAIT after a restart is free.
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
        return True
