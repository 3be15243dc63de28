"""What every pre-warmed template process does: import once, freeze, reap, die with its parent.

Atelier forks fresh processes from templates in four places: notebook kernels for ``atelier
check`` and public apps (:mod:`atelier.authoring.forkserver`), trainees' Jupyter servers
(:mod:`atelier.hub_config.servers.servertemplate`), each trainee's kernels
(:mod:`atelier.hub_config.servers.kernelzygote`) and the grading sandbox
(:mod:`atelier.grading.sandbox.zygote`, which uses the preload and freeze steps). Their protocols
and trust differ; these steps do not.
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import importlib.util
import os
import pkgutil
import signal
import sys
from typing import NoReturn


def package_modules(packages: tuple[str, ...]) -> list[str]:
    """The modules of ``packages`` and the packages themselves (found, not imported)."""
    names = []
    for package in packages:
        spec = importlib.util.find_spec(package)
        if spec and spec.submodule_search_locations:
            names.append(package)
            names.extend(
                f"{package}.{m.name}" for m in pkgutil.iter_modules(spec.submodule_search_locations)
            )
    return names


def preload(names) -> list[str]:
    """Import ``names``; return those that loaded.

    A module that cannot load is skipped: the forked process imports it again and reports the
    error where it is used, as a fresh process would. A package that loads its public names
    lazily (``atelier.widgets``) loads them now, once, instead of in every child.
    """
    loaded = []
    for name in names:
        try:
            module = importlib.import_module(name)
        except Exception:
            continue
        for public in getattr(module, "__all__", ()):
            with contextlib.suppress(Exception):
                getattr(module, public)
        loaded.append(name)
    return loaded


def freeze_heap() -> None:
    """Keep the forked processes' garbage collectors off what the template made.

    Objects made before the fork are shared copy-on-write; a collection in a child would scan them
    and copy every page it touches.
    """
    gc.collect()
    gc.freeze()


def stop_with_parent(signum: int = signal.SIGTERM) -> None:
    """Get ``signum`` when the parent dies, however it dies (Linux); not inherited by children."""
    import ctypes

    pr_set_pdeathsig = 1
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signum)


def reap_children() -> None:
    """Wait for children as they end: no zombie, and their CPU time counts as the template's."""

    def reap(signum, frame):
        with contextlib.suppress(ChildProcessError):
            while os.waitpid(-1, os.WNOHANG)[0]:
                pass

    signal.signal(signal.SIGCHLD, reap)


def end(process, grace: float = 5.0) -> None:
    """End a child process (a ``subprocess.Popen``): SIGTERM, then SIGKILL after ``grace`` s."""
    import subprocess

    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def read_line(conn, limit: int = 1 << 20) -> bytes:
    """One newline-ended message from socket ``conn`` (what came before EOF if it ends early).

    Raises ``ValueError`` past ``limit`` bytes: a request is small, and nobody may make a
    template hold an unbounded one.
    """
    data = b""
    while not data.endswith(b"\n"):
        chunk = conn.recv(65536)
        if not chunk:
            break
        data += chunk
        if len(data) > limit:
            raise ValueError("request too large")
    return data


def exit_after(main) -> NoReturn:
    """In a forked child: run ``main()``, then end the process with its exit code; never returns.

    A child forked from a template must never return into the template's own stack (its accept
    loop), so it ends with ``os._exit``; before that it runs what a normal interpreter exit would:
    the atexit handlers (``atexit._run_exitfuncs``, CPython's own, which ``os._exit`` skips) and a
    flush of the standard streams. ``SystemExit`` gives the code (0 for ``None``, 1 for a message);
    any other exception prints its traceback and gives 1.
    """
    import atexit

    code = 1
    try:
        main()
        code = 0
    except SystemExit as exit:
        code = exit.code if isinstance(exit.code, int) else (0 if exit.code is None else 1)
    except BaseException:
        import traceback

        traceback.print_exc()
    finally:
        atexit._run_exitfuncs()
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)
