"""A trainee's kernels forked from a zygote of their own server, which has the kernel imported.

Why: when a cohort opens its workbooks within seconds (a webinar's link), every view page starts a
kernel, and a new kernel spends most of its CPU importing ipykernel, IPython, debugpy, ipywidgets
and Atelier's widgets (~0.2-0.4 CPU-s of the ~0.35-0.5 a view kernel uses in all,
``docs/benchmarks.md``, "Load"). The hub's server template (``servertemplate.py``) imports those
modules once with the server's; a trainee's server, forked from it, forks this zygote first thing
(:func:`start`, from :func:`atelier.hub_config.servers.singleuser.main`, before any thread or event
loop exists), and every kernel of that server is then a fork of the zygote that imports nothing.

The rule: a forked kernel is what a kernel started by jupyter_client would be, and nothing more.

- It is the trainee's: the zygote is a copy of the trainee's server, already their account, inside
  their limits and control groups (``limits.py``); root takes no part. The zygote runs no workbook
  code, so every kernel is a fresh process that has executed none.
- It gets what jupyter_client gives a new kernel: the kernel manager's command line (its
  connection file, written 0600 by jupyter_client as before), working directory and environment,
  stdin on ``/dev/null``, stdout/stderr where the server's go, a session of its own (interrupt and
  kill reach its process group), the working directory first on ``sys.path`` and the trainee's
  user site-packages, as ``python -m ipykernel_launcher`` would have.
- A command that is not the server's own ``python -m ipykernel_launcher``, or an environment that
  changes what Python reads only when it starts (``PYTHONPATH``...), starts the stock way, as does
  every kernel if the zygote is gone.

Wire protocol: the server holds one end of a ``SOCK_SEQPACKET`` socket pair; per kernel it sends one
JSON record (``argv``, ``cwd``, ``env``) with one end of a new socket pair (``SCM_RIGHTS``). The
zygote forks, answers ``{"pid": N}`` on that socket and keeps it: the kernel lives while the server
holds its end; when that end closes (shut down, killed, the server gone), the zygote kills the
kernel's process group. The zygote ends with its server (parent-death signal, end of its socket).

Jupyter Server uses this for every kernel of the trainee (view, Lab) through jupyter_client's
provisioner entry point (:data:`NAME`, ``pyproject.toml``) made the default provisioner on the
server's command line; interrupt, restart and shutdown are jupyter_client's own. The kernels talk
to the server over Unix sockets in the trainee's own folders, never over loopback TCP ports
(:mod:`atelier.processes.kernelsockets` says why).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import sys
import threading

from atelier.processes import forking
from atelier.processes.kernelsockets import UnixSocketProvisioner

#: The provisioner's entry-point name (``pyproject.toml``, ``jupyter_client.kernel_provisioners``).
NAME = "atelier-zygote"
#: The module jupyter_client's ``python3`` kernelspec runs (``python -m ipykernel_launcher``).
LAUNCHER = "ipykernel_launcher"
#: Environment variables Python reads only when it starts: a kernel whose environment differs from
#: the server's in one of them starts as a new process (a fork cannot honour it).
START_UP_VARIABLES = (
    "PYTHONPATH",
    "PYTHONHOME",
    "PYTHONSTARTUP",
    "PYTHONSAFEPATH",
    "PYTHONNOUSERSITE",
    "PYTHONUSERBASE",
    "PYTHONHASHSEED",
    "PYTHONOPTIMIZE",
    "PYTHONDONTWRITEBYTECODE",
    "PYTHONMALLOC",
    "PYTHONDEVMODE",
    "PYTHONUTF8",
)
#: Seconds the server waits for the zygote's answer before starting a kernel the stock way.
ANSWER_TIMEOUT = 20.0
#: Largest request the zygote reads (a command line and an environment).
REQUEST_LIMIT = 1 << 20

_zygote: Zygote | None = None


def preload_names() -> tuple[str, ...]:
    """The modules a kernel imports as it starts and runs a workbook (imported before forking).

    The same list as ``atelier check``'s kernel fork server: ipykernel, IPython, debugpy,
    ipywidgets, and every module of Atelier's widgets (what workbooks import).
    """
    from atelier.authoring.forkserver import PRELOAD, PRELOAD_PACKAGES

    return PRELOAD + tuple(forking.package_modules(PRELOAD_PACKAGES))


class Zygote:
    """The server's end of its kernel zygote."""

    def __init__(self, sock: socket.socket, pid: int):
        self.sock = sock
        self.pid = pid
        # Kernels may be started from several threads (asyncio.to_thread): one record at a time.
        self.lock = threading.Lock()

    def fork_kernel(self, argv: list[str], cwd: str, env: dict) -> tuple[socket.socket, int]:
        """A kernel forked with ``argv`` (ipykernel's arguments); its socket and pid.

        Raises:
            ConnectionError: the zygote is gone or did not answer.
        """
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            record = json.dumps({"argv": argv, "cwd": cwd, "env": dict(env)}).encode()
            with self.lock:
                socket.send_fds(self.sock, [record], [theirs.fileno()])
        except OSError as error:
            ours.close()
            raise ConnectionError(f"the kernel zygote is gone: {error}") from error
        finally:
            theirs.close()
        try:
            ours.settimeout(ANSWER_TIMEOUT)
            answer = json.loads(forking.read_line(ours) or b"{}")
            ours.settimeout(None)
        except (OSError, ValueError) as error:
            ours.close()
            raise ConnectionError(f"the kernel zygote did not answer: {error}") from error
        if not isinstance(answer.get("pid"), int):
            ours.close()
            raise ConnectionError(answer.get("error") or "the kernel zygote did not fork a kernel")
        return ours, answer["pid"]


def current() -> Zygote | None:
    """This server's zygote, if :func:`start` made one."""
    return _zygote


def start() -> Zygote | None:
    """Fork this process's kernel zygote; None if it cannot be forked.

    Call it while the process has a single thread (a fork copies only the calling thread, and any
    lock another thread holds stays locked in the copy): first thing in the trainee's server.
    """
    global _zygote
    try:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        pid = os.fork()
    except OSError:
        return None
    if pid == 0:
        code = 1
        try:
            ours.close()
            _serve(theirs)
            code = 0
        finally:
            os._exit(code)
    theirs.close()
    _zygote = Zygote(ours, pid)
    return _zygote


def _serve(master: socket.socket) -> None:
    """In the zygote: import the kernel once, then fork a kernel per record on ``master``."""
    import selectors

    kernels: dict[socket.socket, int] = {}

    def stop(signum=None, frame=None):
        # The server is gone: so are its kernels (each leads its own session).
        for pid in kernels.values():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)
        os._exit(0)

    signal.signal(signal.SIGTERM, stop)
    # Ctrl-C in a terminal running the server is the server's to handle, not the zygote's.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    forking.stop_with_parent()
    # A server forked by the root template is not dumpable (it changed user), so its /proc files
    # are root's and its copy could not even rename itself. A kernel started by `python -m
    # ipykernel_launcher` is dumpable (a new program as the trainee): so are the zygote and its
    # kernels. The trainee's code runs in the kernel and can read its memory anyway; being
    # dumpable only lets the trainee's other processes (theirs as well) look at it too.
    _set_dumpable()
    retitle([sys.executable, "-m", __name__])
    # debugpy warns on stderr about frozen modules when imported (the kernels use no breakpoint).
    os.environ.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")
    # Already imported when the server was forked from the hub's template: then this costs nothing.
    forking.preload(preload_names())
    forking.freeze_heap()
    forking.reap_children()
    selector = selectors.DefaultSelector()
    selector.register(master, selectors.EVENT_READ)
    while True:
        for key, _ in selector.select():
            if key.fileobj is master:
                try:
                    record, fds, _flags, _address = socket.recv_fds(master, REQUEST_LIMIT, 1)
                except InterruptedError:
                    continue
                if not record and not fds:
                    stop()
                if len(fds) != 1:
                    for fd in fds:
                        os.close(fd)
                    continue
                conn = socket.socket(fileno=fds[0])
                try:
                    request = json.loads(record)
                except ValueError:
                    conn.close()
                    continue
                pid = os.fork()
                if pid == 0:
                    master.close()
                    for other in kernels:
                        other.close()
                    conn.close()
                    _become_kernel(request)
                with contextlib.suppress(OSError):
                    conn.sendall(json.dumps({"pid": pid}).encode() + b"\n")
                kernels[conn] = pid
                selector.register(conn, selectors.EVENT_READ)
            else:
                # The server let the kernel go (shut down, killed, or the server died).
                conn = key.fileobj
                selector.unregister(conn)
                conn.close()
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(kernels.pop(conn), signal.SIGKILL)


def _set_dumpable() -> None:
    import ctypes

    pr_set_dumpable = 4
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_dumpable, 1, 0, 0, 0)


def retitle(argv: list[str], spill: bool = False) -> bool:
    """Show ``argv`` as this process's command line (``ps``, ``/proc/PID/cmdline``).

    A forked process shows its parent's command line: without this every kernel and the zygote
    would look like the trainee's server to ``ps``, to the load benchmark's memory per process kind,
    to tools that find a kernel by its connection file, and to an administrator ending a runaway
    kernel. The process's original argument area is rewritten in place, through its own
    ``/proc/self/mem``, as ``setproctitle`` does: the arguments NUL-separated if they fit; if not
    and ``spill`` is true, one space-separated line over the argument and environment areas (which
    Linux shows whole as the command line); else cut to fit. ``spill`` only once the process's
    environment has been replaced (``os.environ.clear()``): nothing may still point into the
    original environment area. Best effort: False if it could not be written.
    """
    try:
        with open("/proc/self/stat", "rb") as stat:
            fields = stat.read().rsplit(b")", 1)[1].split()
        # Fields 48-51 of proc(5) (arg_start, arg_end, env_start, env_end), counted from field 3.
        start, end, env_start, env_end = (int(fields[i]) for i in (45, 46, 47, 48))
        title = b"\0".join(part.encode() for part in argv)
        if len(title) >= end - start and spill and env_start == end:
            title, end = b" ".join(part.encode() for part in argv), env_end
        title = title[: end - start - 1]
        with open("/proc/self/mem", "r+b", buffering=0) as memory:
            memory.seek(start)
            memory.write(title.ljust(end - start, b"\0"))
    except (OSError, ValueError, IndexError):
        return False
    return True


def _user_site_first() -> None:
    """Put the trainee's user site-packages on ``sys.path`` where a new interpreter would.

    The server was forked from the hub's template, whose home was not the trainee's: a new
    ``python`` run as the trainee puts ``~/.local/lib/pythonX.Y/site-packages`` (what ``pip install
    --user`` fills) before the environment's site-packages, if it exists.
    """
    import site

    site.USER_BASE = None
    site.USER_SITE = None
    user_site = site.getusersitepackages()
    if not site.ENABLE_USER_SITE or user_site in sys.path or not os.path.isdir(user_site):
        return
    before = list(sys.path)
    site.addsitedir(user_site)
    added = [path for path in sys.path if path not in before]
    for path in added:
        sys.path.remove(path)
    packages = [i for i, path in enumerate(sys.path) if path.endswith("-packages")]
    first = packages[0] if packages else len(sys.path)
    sys.path[first:first] = added


def _become_kernel(request: dict) -> None:
    """In the forked child: become the kernel ``request`` describes; never returns."""

    def run() -> None:
        # The zygote's handlers are not the kernel's: a kernel reaps its own subprocesses, and
        # SIGINT interrupts its cell.
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        os.setsid()
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        # ipykernel ends itself when this parent goes (the zygote, which ends with the server),
        # as a kernel started by jupyter_client does when its server goes. Its trait read
        # JPY_PARENT_PID when the zygote imported it: the value goes on the command line.
        parent = str(os.getppid())
        os.environ["JPY_PARENT_PID"] = parent
        argv = [f"--IPKernelApp.parent_handle={parent}", *request["argv"]]
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.close(devnull)
        # ``python -m`` puts the working directory first: a workbook imports modules beside it.
        sys.path.insert(0, os.getcwd())
        _user_site_first()
        # As a new interpreter would: the kernel's PYTHONWARNINGS ("default", "ignore"...).
        action = request["env"].get("PYTHONWARNINGS")
        if action:
            import warnings

            from atelier.authoring.forkserver import WARNING_ACTIONS

            warnings.resetwarnings()
            warnings.simplefilter(action if action in WARNING_ACTIONS else "default")
        # Where ``-m`` would find it: the kernel's argv[0].
        import ipykernel_launcher
        from ipykernel.kernelapp import IPKernelApp

        sys.argv = [ipykernel_launcher.__file__, *request["argv"]]
        retitle([sys.executable, "-m", LAUNCHER, *request["argv"]], spill=True)
        # IPKernelApp.launch_instance, with what modules imported before the kernel existed do
        # when imported inside one: ipywidgets registers its comm targets at import, only if it
        # finds a running IPython (the widget manager's `jupyter.widget.control` requests).
        app = IPKernelApp.instance()
        app.initialize(argv)
        _register_with_kernel()
        app.start()

    forking.exit_after(run)


def _register_with_kernel() -> None:
    """What preloaded modules would have registered had they been imported in this kernel."""
    if "ipywidgets" in sys.modules:
        import ipywidgets
        from IPython import get_ipython

        if get_ipython() is not None:
            ipywidgets.register_comm_target()


def kernel_arguments(cmd: list[str], env: dict | None) -> list[str] | None:
    """Arguments for ipykernel if ``cmd`` with ``env`` can be forked from the zygote, else None."""
    if len(cmd) < 3 or cmd[0] != sys.executable or cmd[1:3] != ["-m", LAUNCHER]:
        return None
    env = os.environ if env is None else env
    if any(env.get(name) != os.environ.get(name) for name in START_UP_VARIABLES):
        return None
    return list(cmd[3:])


class ZygoteProvisioner(UnixSocketProvisioner):
    """jupyter_client's local provisioner, with kernels forked from the server's zygote.

    Over Unix sockets when the server's ``KernelManager.transport`` is ``ipc``, as a trainee's
    server's is (:mod:`atelier.processes.kernelsockets`).
    """

    async def launch_kernel(self, cmd, **kwargs):
        """Fork the kernel from the zygote (or start it the stock way; the module says when)."""
        from atelier.authoring.forkclient import ForkedKernel

        zygote = current()
        arguments = kernel_arguments(cmd, kwargs.get("env"))
        if zygote is None or arguments is None:
            return await super().launch_kernel(cmd, **kwargs)
        cwd = str(kwargs.get("cwd") or os.getcwd())
        env = dict(kwargs.get("env") or os.environ)
        try:
            conn, pid = await asyncio.to_thread(zygote.fork_kernel, arguments, cwd, env)
        except ConnectionError as error:
            self.log.warning("atelier: %s; the kernel starts as a new process", error)
            return await super().launch_kernel(cmd, **kwargs)
        self.process = ForkedKernel(conn, pid)
        self.pid = self.pgid = pid  # the kernel leads its own session
        self.cwd = cwd
        return self.connection_info
