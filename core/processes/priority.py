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

``python -m atelier.processes.priority COMMAND...`` runs COMMAND at niceness 0.
"""

from __future__ import annotations

import contextlib
import functools
import os
import sys

#: The niceness of everything but the hub and its proxy.
NORMAL = 0


def niceness() -> int:
    """This process's niceness."""
    return os.getpriority(os.PRIO_PROCESS, 0)


def set_niceness(value: int) -> None:
    """Set this process's niceness to ``value`` if it may.

    Only root may go below the niceness it has (the single-account demo keeps what it has).
    """
    with contextlib.suppress(PermissionError):
        os.setpriority(os.PRIO_PROCESS, 0, value)


def at(value: int):
    """A ``preexec_fn`` that gives the child niceness ``value`` (:func:`set_niceness`)."""
    return functools.partial(set_niceness, value)


def normal() -> None:
    """Back to niceness 0 if this process inherited a lower one from the hub."""
    if niceness() < NORMAL:
        set_niceness(NORMAL)


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
