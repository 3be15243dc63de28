"""Fresh kernels in milliseconds, forked from a template process that has imported ipykernel.

Rule: every notebook still runs in its own new process that has executed no user code; only the
imports (ipykernel, IPython, ipywidgets) are paid once, in the template, instead of once per kernel
(~0.5 s of CPU each here). The template runs inside an empty network namespace (``unshare --net``),
so every kernel forked from it has no network either.

Three parts:

* :func:`serve` (``python -m atelier.authoring.forkserver SOCKET``) is the template: it imports,
then waits on
  a Unix socket. Each request (connection file, working directory, environment) gets a forked
  kernel; when the requester's connection closes, that kernel is killed.
* ``forkclient.py`` asks for a kernel and holds its connection: either as the tiny command a
  kernel manager starts as "the kernel" (``python -I -S``, standard library only; Voila's kernels),
  which forwards SIGINT/SIGTERM and exits when the kernel exits, or in the caller's own process
  (``atelier check``'s kernels, through a jupyter_client provisioner: no stand-in process).
* :class:`ForkServer` starts and stops the template from ``atelier check``.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from atelier.processes import forking

#: Modules the template imports once; forked kernels find them already loaded. Importing runs no
#: workbook code, so a forked kernel is as fresh as a new one. Besides the kernel itself, this is
#: what a kernel imports while it starts (its debugger alone, debugpy, is ~40% of a forked kernel's
#: start) and what it imports to show an error.
PRELOAD = (
    "ipykernel.kernelapp",
    "ipykernel.ipkernel",
    "ipykernel.debugger",
    "IPython",
    "IPython.core.completerlib",
    "IPython.core.debugger",
    "IPython.core.oinspect",
    "IPython.extensions.storemagic",
    "tornado.platform.asyncio",
    "tornado.queues",
    "ipywidgets",
    "comm",
)
#: Packages whose every module is imported too: Atelier's widgets are what workbooks use.
PRELOAD_PACKAGES = ("atelier.widgets",)
#: The ``PYTHONWARNINGS`` values a forked kernel honours (a single action for every warning).
WARNING_ACTIONS = ("default", "error", "ignore", "always", "module", "once")
CLIENT = Path(__file__).with_name("forkclient.py")


def _start_kernel(request: dict) -> None:
    """In the forked child: become the kernel described by ``request``; never returns."""
    try:
        # The template's handlers are not the kernel's: a kernel must reap its own subprocesses
        # and must not, on SIGTERM, run the template's "kill every kernel" handler.
        for signum in (signal.SIGCHLD, signal.SIGTERM):
            signal.signal(signum, signal.SIG_DFL)
        os.setsid()
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        # The check shows and grades the default variant (atelier.variants), even when an author
        # runs it from a trainee's server, whose environment carries a seed.
        os.environ.pop("ATELIER_VARIANT_SEED", None)
        devnull = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(devnull, fd)
        sys.path.insert(0, request["cwd"])
        import warnings

        # As a new interpreter would: the requester's PYTHONWARNINGS ("default", "ignore"...).
        action = request["env"].get("PYTHONWARNINGS", "default")
        warnings.resetwarnings()
        warnings.simplefilter(action if action in WARNING_ACTIONS else "default")
        from ipykernel.kernelapp import IPKernelApp

        IPKernelApp.launch_instance(
            argv=["-f", request["connection_file"], *request.get("args", [])]
        )
    finally:
        os._exit(0)


def serve(socket_path: str) -> None:
    """Import the kernel's modules once, then fork a kernel per request on ``socket_path``."""
    import selectors

    # debugpy warns on stderr about frozen modules when imported; kernels run it without
    # breakpoints, so the warning would only reach the author's terminal.
    os.environ.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")
    forking.preload(PRELOAD + tuple(forking.package_modules(PRELOAD_PACKAGES)))
    forking.freeze_heap()
    forking.reap_children()
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(socket_path)
    server.listen(64)
    selector = selectors.DefaultSelector()
    selector.register(server, selectors.EVENT_READ)
    kernels: dict[socket.socket, int] = {}

    def stop(signum, frame):
        # Kernels run in their own sessions: end each one, then the template.
        for pid in kernels.values():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
        os._exit(0)

    signal.signal(signal.SIGTERM, stop)
    # No kernel outlives `atelier check`, however it dies.
    forking.stop_with_parent()
    print("ready", flush=True)
    while True:
        for key, _ in selector.select():
            if key.fileobj is server:
                conn, _ = server.accept()
                try:
                    data = forking.read_line(conn)
                except ValueError:
                    data = b""
                if not data:
                    conn.close()
                    continue
                pid = os.fork()
                if pid == 0:
                    server.close()
                    conn.close()
                    _start_kernel(json.loads(data))
                conn.sendall(f"{pid}\n".encode())
                kernels[conn] = pid
                selector.register(conn, selectors.EVENT_READ)
            else:
                conn = key.fileobj
                # The launcher went away (kernel shut down or killed): make sure its kernel is gone.
                selector.unregister(conn)
                conn.close()
                pid = kernels.pop(conn)
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pid, signal.SIGKILL)


class ForkServer:
    """The template process of one ``atelier check`` run (a context manager)."""

    def __init__(self, directory: str, prefix: list[str]):
        self.socket_path = os.path.join(directory, "forkserver.sock")
        self.prefix = prefix
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> ForkServer:
        """Start the template; kernels may be requested as soon as it says ``ready``."""
        self.process = subprocess.Popen(
            [*self.prefix, sys.executable, "-m", "atelier.authoring.forkserver", self.socket_path],
            stdout=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
        )
        return self

    def wait_ready(self, timeout: float = 60) -> None:
        """Block until the template has imported everything and listens."""
        assert self.process is not None and self.process.stdout is not None
        deadline = time.monotonic() + timeout
        line = self.process.stdout.readline()
        if line.strip() != "ready" or time.monotonic() > deadline:
            raise RuntimeError("the kernel fork server did not start")

    async def wait_ready_async(self) -> bool:
        """Whether the template came up (waits in a thread, never raises)."""
        import asyncio

        try:
            await asyncio.to_thread(self.wait_ready)
        except Exception:
            return False
        return True

    def kernel_cmd(self, connection_file: str) -> list[str]:
        """The command jupyter_client runs as a kernel: the launcher, pointed at this template."""
        return [sys.executable, "-I", "-S", str(CLIENT), self.socket_path, connection_file]

    def __exit__(self, *exc) -> None:
        forking.end(self.process)


if __name__ == "__main__":
    serve(sys.argv[1])
