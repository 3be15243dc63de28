"""Choosing a loopback port for a server Atelier starts: the hub's services, tests, benchmarks.

Rule: one way to ask the kernel for a free port. The port is free when chosen, not reserved: a
caller that binds it later must expect another program to have taken it in between (the test hub
retries on fresh ports).
"""

from __future__ import annotations

import socket


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port on ``host`` that nothing listens on right now."""
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]
