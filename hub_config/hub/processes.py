"""Processes and ports as ``/proc`` shows them, for ``atelier start`` and the hub's admin verbs.

Rule: read ``/proc``, never a ``ps`` or ``ss`` command's output; a process that vanished or is not
ours to read answers "nothing" (an empty list or dict), never an error.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path


def alive(pid: int) -> bool:
    """Whether process ``pid`` exists (another account's too)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def environ(pid: int) -> dict[str, str]:
    """The environment process ``pid`` started with (empty when gone or not ours to read)."""
    try:
        raw = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:  # gone, or not ours to read
        return {}
    pairs = (item.split(b"=", 1) for item in raw.split(b"\0") if b"=" in item)
    return {k.decode(errors="replace"): v.decode(errors="replace") for k, v in pairs}


def cmdline(pid: int) -> list[str]:
    """The command line of process ``pid`` (empty when gone)."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes().decode()
        return [part for part in raw.split("\0") if part]
    except OSError:
        return []


def leftover_services(hub_url: str) -> list[int]:
    """Pids of the processes of services started by the hub at ``hub_url`` (and their children).

    JupyterHub gives a service's process ``JUPYTERHUB_SERVICE_NAME`` and the hub's API address,
    which its children inherit; trainees' servers get no service name. Other hubs on the machine
    have other addresses.
    """
    api = hub_url.rstrip("/") + "/"
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        env = environ(int(entry.name))
        if env.get("JUPYTERHUB_SERVICE_NAME") and env.get("JUPYTERHUB_API_URL", "").startswith(api):
            pids.append(int(entry.name))
    return pids


def end_leftover_services(hub_url: str, grace: float = 10.0) -> list[int]:
    """End the services a stopped hub left running: SIGTERM, then SIGKILL after ``grace`` s."""
    pids = leftover_services(hub_url)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(alive(pid) for pid in pids):
        time.sleep(0.1)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return pids


def listening_inodes(port: int) -> set[str]:
    """Inodes of the sockets listening on TCP ``port`` (any address), from /proc/net/tcp{,6}."""
    inodes = set()
    for table in ("tcp", "tcp6"):
        try:
            lines = Path(f"/proc/net/{table}").read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            # local_address is ADDR:PORT in hex; state 0A is LISTEN; field 9 is the inode.
            listening = len(fields) > 9 and fields[3] == "0A"
            if listening and int(fields[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(fields[9])
    return inodes


def socket_inodes(pid: int) -> set[str]:
    """Inodes of the sockets process ``pid`` holds open."""
    inodes = set()
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return inodes
    for fd in fds:
        with contextlib.suppress(OSError):
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
            if target.startswith("socket:["):
                inodes.add(target[len("socket:[") : -1])
    return inodes


def port_holders(port: int) -> list[int]:
    """Pids of the processes listening on TCP ``port``."""
    wanted = listening_inodes(port)
    if not wanted:
        return []
    return sorted(
        int(entry.name)
        for entry in Path("/proc").iterdir()
        if entry.name.isdigit() and socket_inodes(int(entry.name)) & wanted
    )
