"""Trainee servers forked from a template that has imported the Jupyter server once.

A trainee's server spends most of its start importing Jupyter Server, JupyterLab, the hub's
single-user extension and nbgrader's Lab extensions (~1.5 CPU-s here), the same modules for every
trainee. The template imports them once, as the hub's account, then forks one child per server;
the child becomes the trainee (group, groups, user) before it reads or writes anything of theirs,
and runs :func:`atelier.hub_config.singleuser.main` exactly as a freshly started server would.

The rule: the template never holds anything of one trainee that another could find. A forked child
is a copy of the template's memory, readable by the trainee it becomes, so:

- the template starts with a minimal environment (no hub token, no database address);
- the template never reads a request: it forks as soon as the hub connects, and the child reads
  its own request (environment with the trainee's API token, account) from the connection. Secrets
  only ever exist in the process of the trainee they belong to;
- the template serves only connections from the hub's own account (peer credentials checked on
  each connection to its abstract Unix socket).

Wire protocol on the Unix socket, per connection: the hub sends one JSON line (``uid``, ``gid``,
``groups``, ``home``, ``env``, ``argv``; ``uid`` null for the single-account demo), the child
answers one JSON line, ``{"pid": N}`` once it runs as the trainee in their home, or
``{"error": "..."}``.

The template dies with the hub (parent-death signal); servers it forked live on, in sessions of
their own, as servers started by the stock spawner do when the hub restarts.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import select
import signal
import socket
import struct
import subprocess
import sys
import threading
import time

from atelier import forking

#: Modules a trainee's server imports while it starts (beyond ``singleuser.import_server_modules``):
#: the server extensions enabled for trainees and what the server loads as it initialises.
PRELOAD = (
    "atelier.hub_config.delivery",
    "atelier.hub_config.slowlink",
    "jupyterhub.singleuser.extension",
    "jupyterlab_server.handlers",
    "nbgrader.server_extensions.assignment_list",
    "nbgrader.server_extensions.validate_assignment",
    "nbgitpuller.pull",
    "notebook.app",
    "notebook.services.contents.manager",
    "notebook_shim.nbserver",
    "jupyter_server_mathjax.app",
    "jupyter_server.kernelspecs.handlers",
    "jupyter_server.nbconvert.handlers",
    "jupyter_server.services.api.handlers",
    "jupyter_server.services.config.handlers",
    "jupyter_server.services.contents.handlers",
    "jupyter_server.services.contents.largefilemanager",
    "jupyter_server.services.events.handlers",
    "jupyter_server.services.kernels.handlers",
    "jupyter_server.services.kernels.kernelmanager",
    "jupyter_server.services.nbconvert.handlers",
    "jupyter_server.services.security.handlers",
    "jupyter_server.services.sessions.handlers",
    "jupyter_server.services.sessions.sessionmanager",
    "jupyter_server.services.shutdown",
    "jupyter_server.view.handlers",
    "jupyter_client.ioloop",
    "jupyter_core.migrate",
    "IPython.paths",
    "jinja2.ext",
    "tornado.platform.asyncio",
)
#: ``python -m atelier.hub_config.singleuser --template SOCKET HUB_PID`` runs :func:`serve`.
TEMPLATE_FLAG = "--template"
#: Environment variables the template keeps from the hub (nothing secret: locale and search path).
KEPT_ENVIRONMENT = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ")
#: Environment variables read only when a Python process or jupyterhub.singleuser starts: a forked
#: server cannot honour them, so a server whose environment sets one starts as a new process.
START_UP_VARIABLES = (
    "PYTHONPATH",
    "PYTHONHOME",
    "PYTHONSTARTUP",
    "JUPYTERHUB_SINGLEUSER_APP",
    "JUPYTERHUB_SINGLEUSER_EXTENSION",
)
#: Seconds a child waits for its request, and the hub for a child's answer.
REQUEST_TIMEOUT = 30.0
#: Seconds after a template failure during which servers start the stock way.
RETRY_AFTER = 60.0
_PEERCRED = struct.Struct("3i")


class TemplateUnavailable(RuntimeError):
    """The template could not fork a server (the spawner then starts one the stock way)."""


class ServerStartError(RuntimeError):
    """A forked server could not become the trainee's (the template itself is fine)."""


def _address(name: str) -> str:
    """The socket address for ``name``: ``@name`` is Linux's abstract namespace."""
    return "\0" + name[1:] if name.startswith("@") else name


def _read_line(conn: socket.socket, limit: int = 1 << 20) -> bytes:
    data = b""
    while not data.endswith(b"\n"):
        chunk = conn.recv(65536)
        if not chunk:
            break
        data += chunk
        if len(data) > limit:
            raise ValueError("request too large")
    return data


def _become_server(conn: socket.socket) -> None:
    """In the forked child: become the trainee's server described on ``conn``; never returns."""
    code = 1
    try:
        # The template's handlers are not the server's: a server reaps its own kernels, and
        # SIGINT means "shut down" to Jupyter Server as to any Python program.
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        os.setsid()
        conn.settimeout(REQUEST_TIMEOUT)
        request = json.loads(_read_line(conn))
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.close(devnull)
        # The template's stdout is its pipe to the hub; the server logs where the hub logs.
        os.dup2(2, 1)
        uid = request.get("uid")
        if uid is not None:
            os.setgid(request["gid"])
            os.setgroups(request["groups"])
            os.setuid(uid)
            if os.getuid() != uid or os.geteuid() != uid or uid == 0:
                raise PermissionError(f"could not become uid {uid}")
        os.chdir(request["home"])
        os.environ.clear()
        os.environ.update(request["env"])
        import random

        # The template's generator state is every child's: each server gets its own.
        random.seed()
        sys.argv = ["jupyterhub-singleuser", *request["argv"]]
        conn.sendall(json.dumps({"pid": os.getpid()}).encode() + b"\n")
        conn.close()
    except BaseException as error:
        with contextlib.suppress(OSError):
            conn.sendall(json.dumps({"error": f"{type(error).__name__}: {error}"}).encode() + b"\n")
        os._exit(1)
    try:
        from atelier.hub_config.singleuser import main

        main()
        code = 0
    except SystemExit as exit:
        code = exit.code if isinstance(exit.code, int) else (0 if exit.code is None else 1)
    except BaseException:
        import traceback

        traceback.print_exc()
    finally:
        import atexit

        atexit._run_exitfuncs()
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)


def serve(socket_path: str, hub_pid: int) -> None:
    """Import the server's modules once, then fork a server per connection on ``socket_path``."""
    # A new hub (an upgrade, a settings change) starts a template of its own; a hub that died
    # before this line ran is noticed just after it.
    forking.stop_with_parent()
    if os.getppid() != hub_pid:
        sys.exit(0)
    from atelier.hub_config.singleuser import import_server_modules

    import_server_modules()
    forking.preload(PRELOAD)
    forking.freeze_heap()
    forking.reap_children()
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(_address(socket_path))
    server.listen(64)
    print("ready", flush=True)
    while True:
        try:
            conn, _ = server.accept()
        except InterruptedError:
            continue
        uid = _PEERCRED.unpack(conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))[1]
        if uid != os.getuid():
            conn.close()
            continue
        pid = os.fork()
        if pid == 0:
            server.close()
            _become_server(conn)
        conn.close()


class ServerTemplate:
    """The hub's side: start the template, ask it for servers (one per hub process)."""

    def __init__(self, log):
        self.log = log
        self.lock = threading.Lock()
        self.process: subprocess.Popen | None = None
        self.socket_path = ""
        self.ready = False
        self.retry_after = 0.0

    def start(self) -> None:
        """Start the template if it is not running (returns at once; it imports meanwhile)."""
        with self.lock:
            if self.process is not None and self.process.poll() is None:
                return
            self.ready = False
            # An abstract socket: nothing on disk to clean up; who may use it is checked on accept.
            self.socket_path = f"@atelier-servers-{secrets.token_hex(8)}"
            env = {name: os.environ[name] for name in KEPT_ENVIRONMENT if name in os.environ}
            self.process = subprocess.Popen(
                # Run as the servers' own module: forked servers show the command line of their
                # template, so `ps` names them as servers started the stock way are named.
                [
                    *(sys.executable, "-P", "-m", "atelier.hub_config.singleuser"),
                    *(TEMPLATE_FLAG, self.socket_path, str(os.getpid())),
                ],
                env=env,
                cwd="/",
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                text=True,
            )

    def _wait_ready(self, timeout: float) -> None:
        with self.lock:
            if self.ready:
                return
            process = self.process
            if process is None or process.stdout is None:
                raise TemplateUnavailable("the server template is not running")
            readable, _, _ = select.select([process.stdout], [], [], timeout)
            line = process.stdout.readline() if readable else ""
            if line.strip() != "ready":
                raise TemplateUnavailable("the server template did not start")
            self.ready = True

    def _fork(self, request: dict) -> int:
        self._wait_ready(REQUEST_TIMEOUT * 4)
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
                conn.settimeout(REQUEST_TIMEOUT)
                conn.connect(_address(self.socket_path))
                conn.sendall(json.dumps(request).encode() + b"\n")
                answer = _read_line(conn)
        except OSError as error:
            raise TemplateUnavailable(f"the server template did not answer: {error}") from error
        try:
            reply = json.loads(answer)
        except ValueError as error:
            raise TemplateUnavailable("the server template gave no answer") from error
        if "pid" not in reply:
            # The template is fine; this trainee's server is not (an account that cannot be used).
            raise ServerStartError(reply.get("error", "unknown error"))
        return int(reply["pid"])

    async def fork(self, request: dict) -> int:
        """Fork a server for ``request``; its pid. Raises :class:`TemplateUnavailable`."""
        import asyncio

        if time.monotonic() < self.retry_after:
            raise TemplateUnavailable("the server template failed recently")
        self.start()
        try:
            return await asyncio.to_thread(self._fork, request)
        except TemplateUnavailable:
            # Servers start the stock way for a while, then a new template is tried.
            self.retry_after = time.monotonic() + RETRY_AFTER
            self.stop()
            raise

    def stop(self) -> None:
        """Stop the template (servers it forked keep running)."""
        with self.lock:
            process, self.process, self.ready = self.process, None, False
        forking.end(process)
