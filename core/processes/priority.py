"""Who goes first on a full machine: the hub and its proxy, then trainees, then visitors.

Why: in the webinar burst at full size (docs/benchmarks.md, "The port race removed") 250–450
processes were runnable at once. The hub was one of them and its event loop stalled for 1–4 s at a
time, so every login, Start and API call waited. The hub and the proxy are the control plane:
their own work is small (~0.15 of a core over the burst), but nothing else moves while they wait.
So they run at ``hub.nice`` (-10 by default), which ``atelier start`` sets as it starts them
(:func:`at`).

Niceness is inherited. Everything the hub starts therefore starts again at 0 before it runs: its
services go through :func:`command`, and so does the server template; a trainee server started as
a new process resets in its ``preexec_fn`` (:func:`normal`). A process may always raise its own
niceness, so this needs no privilege. The public apps then lower their own priority to
``apps.nice``.

Linux keeps a niceness per thread, and these functions set the calling thread's (in a process of
one thread, the process's). Inside the hub, the CPU work a login brings, hashing its password,
runs in a pool of threads at 0 (:func:`normal_pool`). At -10
those threads took turns with the hub's event loop: in the webinar burst, six of them at a time
hashing passwords left the loop a fraction of the cores, and every API call waited.

``python -m atelier.processes.priority COMMAND...`` runs COMMAND at niceness 0.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import functools
import os
import sys

#: The niceness of everything but the hub and its proxy.
NORMAL = 0


def niceness() -> int:
    """The calling thread's niceness."""
    return os.getpriority(os.PRIO_PROCESS, 0)


def set_niceness(value: int, pid: int = 0) -> None:
    """Set the niceness of ``pid`` (0: the calling thread) to ``value`` if it may.

    Only root may go below the niceness it has (the single-account demo keeps what it has); a
    process that has ended meanwhile is left alone.
    """
    with contextlib.suppress(PermissionError, ProcessLookupError):
        os.setpriority(os.PRIO_PROCESS, pid, value)


def at(value: int):
    """A ``preexec_fn`` that gives the child niceness ``value`` (:func:`set_niceness`)."""
    return functools.partial(set_niceness, value)


def normal() -> None:
    """Back to niceness 0 if the calling thread inherited a lower one from the hub."""
    if niceness() < NORMAL:
        set_niceness(NORMAL)


def normal_pool(workers: int, name: str) -> concurrent.futures.ThreadPoolExecutor:
    """A pool of ``workers`` threads at niceness 0, for CPU work the hub hands off its loop."""
    return concurrent.futures.ThreadPoolExecutor(
        max_workers=workers, thread_name_prefix=name, initializer=normal
    )


def command(argv: list[str]) -> list[str]:
    """``argv`` run at niceness 0 (for a process the hub starts)."""
    return [sys.executable, "-P", "-m", __name__, *argv]


def main(argv: list[str] | None = None) -> None:
    """Reset the niceness, then become the command."""
    argv = sys.argv[1:] if argv is None else argv
    if not argv:
        sys.exit(f"usage: python -m {__name__} COMMAND [ARGUMENT...]")
    normal()
    os.execvp(argv[0], argv)


if __name__ == "__main__":
    main()
