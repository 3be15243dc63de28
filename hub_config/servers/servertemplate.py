"""Trainee servers forked from a template that has imported the Jupyter server once.

A trainee's server spends most of its start importing Jupyter Server, JupyterLab, the hub's
single-user extension and nbgrader's Lab extensions (~1.5 CPU-s here), the same modules for every
trainee. The template imports them once, as the hub's account, then forks one child per server;
the child becomes the trainee (group, groups, user) before it reads or writes anything of theirs,
and runs :func:`atelier.hub_config.servers.singleuser.main` exactly as a freshly started server
would.

The rule: the template never holds anything of one trainee that another could find. A forked child
is a copy of the template's memory, readable by the trainee it becomes, so:

- the template starts with a minimal environment (no hub token, no database address);
- the template never reads a request: it forks as soon as the hub connects, and the child reads
  its own request (environment with the trainee's API token, account) from the connection. Secrets
  only ever exist in the process of the trainee they belong to;
- the template serves only connections from the hub's own account (peer credentials checked on
  each connection to its abstract Unix socket).

Wire protocol on the Unix socket, per connection: the hub sends one JSON line (``uid``, ``gid``,
``groups``, ``home``, ``env``, ``argv``, ``confine``: the limits the child applies while still root,
:func:`atelier.hub_config.servers.limits.confine`; ``uid`` null for the single-account demo), the
child answers one JSON line, ``{"pid": N}`` once it runs as the trainee in their home, or
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

from atelier.processes import forking, priority
from atelier.upstream import traitlets as upstream_traitlets

#: Modules a trainee's server imports while it starts (beyond ``singleuser.import_server_modules``):
#: the server extensions enabled for trainees and what the server loads as it initialises.
PRELOAD = (
    "atelier.hub_config.servers.delivery",
    "atelier.hub_config.servers.limits",
    "atelier.hub_config.view.home",
    "atelier.slowlink",
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
#: ``python -m atelier.hub_config.servers.singleuser --template SOCKET HUB_PID`` runs :func:`serve`.
TEMPLATE_FLAG = "--template"
#: Environment variables the template keeps from the hub (nothing secret: locale and search path).
KEPT_ENVIRONMENT = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ")
#: The template's HOME: a path that does not exist. Some modules compute paths from HOME when
#: imported (JupyterLab's user-settings and workspaces folders, send2trash's trash); a forked
#: server replaces this prefix with its trainee's home (:class:`Rehome`), and whatever might be
#: missed points nowhere rather than into the hub account's home.
TEMPLATE_HOME = "/nonexistent/atelier-server-template"
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


def traited_classes() -> set[type]:
    """Every class with traits loaded so far (``HasTraits`` and all its subclasses)."""
    from traitlets import HasTraits

    classes, todo = set(), [HasTraits]
    while todo:
        for sub in todo.pop().__subclasses__():
            if sub not in classes:
                classes.add(sub)
                todo.append(sub)
    return classes


class Rehome:
    """The values the template's imports computed from its HOME, and how to move them to another.

    Found once in the template (:meth:`scan`): class-level defaults of configurable traits (e.g.
    ``LabApp.user_settings_dir``, and traitlets' per-class cache of them) and module-level
    strings (e.g. send2trash's home trash, the user site folder) that start with
    :data:`TEMPLATE_HOME`. :meth:`apply`, in a forked server, puts the trainee's home in their
    place, as if the server had imported them itself.
    """

    def __init__(self, old_home: str):
        self.old_home = old_home
        self.traits: list[tuple[object, str]] = []
        self.globals: list[tuple[dict, str]] = []

    @classmethod
    def scan(cls, old_home: str) -> Rehome:
        """Find what the modules imported so far computed from ``old_home``."""
        found = cls(old_home)
        for klass in traited_classes():
            for trait in klass.class_own_traits().values():
                default = getattr(trait, "default_value", None)
                if found._under_home(default):
                    found.traits.append((trait, default))
            # traitlets copies each class's immutable defaults into a per-class cache, which is
            # what new instances actually get.
            cached = upstream_traitlets.immutable_initial_values(klass)
            found.globals.extend((cached, k) for k, v in cached.items() if found._under_home(v))
        for name, module in list(sys.modules.items()):
            if name in ("os", "posix") or module is None:
                continue
            namespace = getattr(module, "__dict__", {})
            for key, value in list(namespace.items()):
                if found._under_home(value):
                    found.globals.append((namespace, key))
        return found

    def _under_home(self, value) -> bool:
        if isinstance(value, bytes):
            value = value.decode("utf-8", "surrogateescape")
        return isinstance(value, str) and (
            value == self.old_home or value.startswith(self.old_home + "/")
        )

    def _moved(self, value, new_home: str):
        if isinstance(value, bytes):
            moved = self._moved(value.decode("utf-8", "surrogateescape"), new_home)
            return moved.encode("utf-8", "surrogateescape")
        return new_home + value[len(self.old_home) :]

    def apply(self, new_home: str) -> None:
        """Put ``new_home`` where the template's home was, then add the trainee's user site."""
        for trait, default in self.traits:
            trait.default_value = self._moved(default, new_home)
        for namespace, key in self.globals:
            value = namespace.get(key)
            if self._under_home(value):
                namespace[key] = self._moved(value, new_home)
        import site

        # What Python's start-up does for a new process: the trainee's own user site, if any.
        if site.ENABLE_USER_SITE and site.USER_SITE and os.path.isdir(site.USER_SITE):
            site.addsitedir(site.USER_SITE)


def _become_server(conn: socket.socket, rehome: Rehome | None = None) -> None:
    """In the forked child: become the trainee's server described on ``conn``; never returns."""
    try:
        # The template's handlers are not the server's: a server reaps its own kernels, and
        # SIGINT means "shut down" to Jupyter Server as to any Python program.
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        os.setsid()
        conn.settimeout(REQUEST_TIMEOUT)
        request = json.loads(forking.read_line(conn))
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.close(devnull)
        # The template's stdout is its pipe to the hub; the server logs where the hub logs.
        os.dup2(2, 1)
        uid = request.get("uid")
        if request.get("confine"):
            # Limits, a private /tmp and the trainee's control groups, while still root.
            from atelier.hub_config.servers.limits import confine

            confine(request["confine"])
        if uid is not None:
            os.setgid(request["gid"])
            os.setgroups(request["groups"])
            os.setuid(uid)
            if os.getuid() != uid or os.geteuid() != uid or uid == 0:
                raise PermissionError(f"could not become uid {uid}")
        os.chdir(request["home"])
        os.environ.clear()
        os.environ.update(request["env"])
        if rehome is not None:
            rehome.apply(request["env"].get("HOME") or request["home"])
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
    from atelier.hub_config.servers.singleuser import main

    forking.exit_after(main)


def compile_notebook_validators() -> None:
    """Compile nbformat's notebook validators once, for every forked server.

    nbformat compiles its JSON schema into a validator (fastjsonschema) the first time a process
    validates a notebook: ~0.1 CPU-s in each trainee's server as it opens its first workbook, the
    largest single item of the view's side in a login burst's profile (benchmarks.md, "Load").
    Compiled here, the validators are in every forked server's copy of nbformat's cache (keyed by
    validator name and schema version: a server configured otherwise compiles its own).
    """
    with contextlib.suppress(Exception):
        import nbformat.v4
        from nbformat.validator import get_validator

        # The current schema and the one before it (what workbooks and Lab write), strict (reading
        # a notebook) and relaxed (nbconvert's exporters, the view's page).
        for minor in {nbformat.v4.nbformat_minor, nbformat.v4.nbformat_minor - 1}:
            for relaxed in (False, True):
                get_validator(version=4, version_minor=minor, relax_add_props=relaxed)


def serve(socket_path: str, hub_pid: int) -> None:
    """Import the server's modules once, then fork a server per connection on ``socket_path``."""
    # A new hub (an upgrade, a settings change) starts a template of its own; a hub that died
    # before this line ran is noticed just after it.
    forking.stop_with_parent()
    if os.getppid() != hub_pid:
        sys.exit(0)
    from atelier.hub_config.servers.singleuser import import_server_modules

    import_server_modules()
    forking.preload(PRELOAD)
    # What a trainee's kernel imports: each server's kernel zygote finds it loaded
    # (kernelzygote.py).
    from atelier.hub_config.servers.kernelzygote import preload_names

    os.environ.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")
    forking.preload(preload_names())
    compile_notebook_validators()
    rehome = Rehome.scan(os.environ.get("HOME") or os.path.expanduser("~"))
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
            _become_server(conn, rehome)
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
            env["HOME"] = TEMPLATE_HOME
            self.process = subprocess.Popen(
                # Run as the servers' own module: forked servers show the command line of their
                # template, so `ps` names them as servers started the stock way are named. At
                # niceness 0, not the hub's (processes/priority.py).
                priority.command(
                    [
                        *(sys.executable, "-P", "-m", "atelier.hub_config.servers.singleuser"),
                        *(TEMPLATE_FLAG, self.socket_path, str(os.getpid())),
                    ]
                ),
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
                answer = forking.read_line(conn)
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
