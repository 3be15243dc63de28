"""Choosing a loopback port for a server Atelier starts: services, trainees' servers, tests.

Rule: one way to ask the kernel for a free port. The port is free when chosen, not reserved: a
caller that binds it later must expect another program to have taken it in between (the test hub
retries on fresh ports).

Trainees' servers start by the hundred within a minute, each on a port the hub chooses and the
server binds a moment later: :func:`server_port` chooses them below the kernel's ephemeral range,
where neither ``bind(0)`` nor an outgoing connection's local port ever lands, so the only programs
that could take one are those binding that very port on purpose.
"""

from __future__ import annotations

import random
import socket
import time

#: The lowest port :func:`server_port` chooses (above the registered ports of common services).
SERVER_PORTS_FROM = 20000
#: Fewer ports than this between it and the ephemeral range: choose as :func:`free_port` does.
SERVER_PORTS_AT_LEAST = 1000
#: Seconds a port handed out stays unavailable to the next choice (its server binds it meanwhile).
HANDED_OUT_FOR = 300.0
#: Where Linux keeps the ephemeral range (``low high``).
EPHEMERAL_RANGE = "/proc/sys/net/ipv4/ip_local_port_range"

_handed_out: dict[int, float] = {}


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port on ``host`` that nothing listens on right now."""
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def ephemeral_range(path: str = EPHEMERAL_RANGE) -> tuple[int, int]:
    """The ports the kernel picks for ``bind(0)`` and outgoing connections (Linux's by default)."""
    try:
        with open(path) as lines:
            low, high = (int(part) for part in lines.read().split())
    except (OSError, ValueError):
        return 32768, 60999
    return low, high


def _bindable(host: str, port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def server_port(host: str = "127.0.0.1", attempts: int = 50) -> int:
    """A free TCP port on ``host`` below the ephemeral range, not handed out in the last minutes.

    Falls back to :func:`free_port` when the range below is too small (a machine whose ephemeral
    range starts low) or every attempt found its port taken.
    """
    low = SERVER_PORTS_FROM
    high = ephemeral_range()[0] - 1
    if high - low < SERVER_PORTS_AT_LEAST:
        return free_port(host)
    now = time.monotonic()
    for port, since in list(_handed_out.items()):
        if now - since > HANDED_OUT_FOR:
            del _handed_out[port]
    for _ in range(attempts):
        port = random.randint(low, high)
        if port not in _handed_out and _bindable(host, port):
            _handed_out[port] = now
            return port
    return free_port(host)
