"""The fork server: a pre-warmed interpreter that forks one fresh, confined process per notebook.

Rule: this process never holds anything worth stealing. It is started by
:class:`~atelier.grading.sandbox.sandbox.Sandbox` with a clean environment, in new network, mount
and PID namespaces (no network at all, a private ``/proc``, the course, homes and hub state hidden
under empty read-only mounts, and one size-capped tmpfs, seen nowhere else, for everything a job may
write: ``/tmp`` holding its job folder, ``/var/tmp``, ``/run/lock`` and ``/dev/shm``). It imports
IPython and the libraries trainees use once, then for each job forks a child that gives up root for
the slot's own unprivileged account, sets resource limits and runs the notebook
(:mod:`atelier.grading.sandbox.kernel`). The fork server supervises the child from outside: it
enforces the per-cell and per-notebook wall time and the output byte cap, then kills every process
of the slot's account, so nothing a submission started outlives it. It reports raw bytes; the grader
judges them.

Wire protocol on stdin/stdout: framed JSON (see
:func:`~atelier.grading.sandbox.kernel.encode_frame`). The configuration is the first record the
grader sends; one ``ready`` record answers it; then for each job, a request record followed by
one frame holding the submission's files one after another (the request lists their paths and
sizes), answered by one response record followed by one frame holding the child's raw result
bytes.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import json
import os
import resource
import select
import signal
import sys
import time

from atelier.grading.sandbox.kernel import FRAME_HEADER, FRAME_MAGIC, encode_frame
from atelier.processes import forking
from atelier.processes.mounts import (
    MS_BIND,
    MS_NODEV,
    MS_NOSUID,
    MS_PRIVATE,
    MS_RDONLY,
    MS_REC,
    SHARED_SCRATCH,
    mount,
    tmpfs,
)

PR_SET_DUMPABLE, PR_SET_NO_NEW_PRIVS = 4, 38
#: Seconds a cell may overrun its limit (the in-process alarm comes first) before the child is
#: killed.
KILL_GRACE = 2.0
#: The one scratch folder a job may write outside its job folder, on the slot's tmpfs; it is
#: also what ``/var/tmp``, ``/run/lock`` and ``/dev/shm`` show, and is emptied after every job.
SCRATCH = "/tmp/.scratch"

_libc = ctypes.CDLL(None, use_errno=True)


def confine_filesystem(scratch_mb: int, hidden: list[str]) -> None:
    """One tmpfs of ``scratch_mb`` MiB for everything a job may write; hide ``hidden``.

    ``/tmp`` is that tmpfs (root's, mode 711: a job finds its own folder, lists nothing); job
    folders are made in it, and :data:`SCRATCH` in it is what ``/var/tmp``, ``/run/lock`` and
    ``/dev/shm`` show. The fork server is the first process of its own mount namespace (the
    grader starts it with ``unshare``), so the tmpfs exists nowhere else and goes with it: a job
    that writes without end gets ENOSPC, and the machine's disk never sees a byte of it.
    """
    mount("none", "/", None, MS_REC | MS_PRIVATE)
    tmpfs("/tmp", scratch_mb, mode=0o711)
    os.mkdir(SCRATCH, 0o1777)
    os.chmod(SCRATCH, 0o1777)
    for path in (*SHARED_SCRATCH, "/dev/shm"):
        if os.path.isdir(path) and not os.path.islink(path):
            mount(SCRATCH, path, None, MS_BIND)
    done: list[str] = []
    for path in sorted({os.path.realpath(p) for p in hidden if p}):
        if any(path == d or path.startswith(d.rstrip("/") + "/") for d in done):
            continue
        if path in ("/", "/tmp") or not os.path.lexists(path):
            continue
        if os.path.isdir(path):
            mount("tmpfs", path, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV, "mode=755,size=4k")
        else:
            mount("/dev/null", path, None, MS_BIND)
        done.append(path)


def _set_limits(limits: dict) -> None:
    mib = 1024 * 1024
    cpu = int(limits["cpu_seconds"])
    pairs = {
        resource.RLIMIT_AS: int(limits["memory_mb"]) * mib,
        resource.RLIMIT_NPROC: int(limits["processes"]),
        resource.RLIMIT_CPU: (cpu, cpu + 1),
        resource.RLIMIT_FSIZE: int(limits["file_size_mb"]) * mib,
        resource.RLIMIT_NOFILE: int(limits["open_files"]),
        resource.RLIMIT_CORE: 0,
    }
    for kind, value in pairs.items():
        soft, hard = value if isinstance(value, tuple) else (value, value)
        resource.setrlimit(kind, (soft, hard))


def _child(conf: dict, job: dict, out_fd: int, shell, snapshot) -> None:
    """In the forked child: confine this process, then run the notebook. Never returns."""
    from atelier.grading.sandbox.kernel import run_notebook

    # Bound now: the trainee's code may replace os._exit, and must not keep this process going.
    exit_now = os._exit
    try:
        os.setsid()
        null = os.open("/dev/null", os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        os.closerange(3, out_fd)
        os.closerange(out_fd + 1, 1 << 16)
        workdir = job["job"]
        os.chdir(workdir)
        if conf["isolate"]:
            os.setgroups([])
            os.setgid(conf["gid"])
            os.setuid(conf["uid"])
            _libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
            _libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
        _set_limits(job["limits"])
        os.umask(0o077)
        os.environ.clear()
        os.environ.update(conf["env"])
        os.environ.update({"HOME": workdir, "TMPDIR": workdir, "PWD": workdir})
        if job.get("variant_seed"):
            # As in the trainee's server: the widgets' cells show this trainee's numbers (the
            # tests use the seed the harness pins, never this variable).
            os.environ["ATELIER_VARIANT_SEED"] = job["variant_seed"]
        if sys.path[:1] != [""]:
            sys.path.insert(0, "")
        run_notebook(shell, snapshot, job, out_fd)
    except BaseException:
        exit_now(70)
    exit_now(0)


def _kill_account(conf: dict, child: int) -> None:
    """Kill the child and every process the slot's account still runs (a submission's leftovers)."""
    with contextlib.suppress(OSError):
        os.killpg(child, signal.SIGKILL)
    if not conf["isolate"]:
        return
    if os.getpid() == 1:
        # The fork server is the init of its own PID namespace, where only it and the jobs it
        # forked live: kill(-1) ends every other process in it (init itself is spared), with no
        # fork of this large process. Twice, for copies forked while the first one ran.
        for _ in range(2):
            with contextlib.suppress(OSError):
                os.kill(-1, signal.SIGKILL)
        return
    for _ in range(2):
        pid = os.fork()
        if pid == 0:
            try:
                os.setgid(conf["gid"])
                os.setuid(conf["uid"])
                os.kill(-1, signal.SIGKILL)
            except BaseException:
                pass
            os._exit(0)
        os.waitpid(pid, 0)


def _cpu_seconds() -> float:
    """CPU seconds used so far by this server and by the jobs it has reaped."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    jobs = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + jobs.ru_utime + jobs.ru_stime


def _reap() -> None:
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def supervise(conf: dict, job: dict, shell, snapshot) -> tuple[dict, bytes]:
    """Run one job in a fresh child and watch it; return the verdict and the child's raw bytes."""
    limits = job["limits"]
    cell_limit = float(limits["cell_timeout"]) + KILL_GRACE
    hard_cap = 4 * int(limits["notebook_output_chars"]) + (1 << 20)
    read_fd, write_fd = os.pipe()
    started = time.monotonic()
    used_before = _cpu_seconds()
    pid = os.fork()
    if pid == 0:
        os.close(read_fd)
        _child(conf, job, write_fd, shell, snapshot)
    os.close(write_fd)
    notebook_deadline = started + float(limits["notebook_timeout"])
    cell_deadline: float | None = None
    buffer = bytearray()
    parsed = 0
    killed_for = None
    status = None
    while True:
        now = time.monotonic()
        deadlines = [notebook_deadline] + ([cell_deadline] if cell_deadline else [])
        if now >= min(deadlines):
            killed_for = "timeout"
            break
        ready, _, _ = select.select([read_fd], [], [], min(0.25, min(deadlines) - now))
        if ready:
            chunk = os.read(read_fd, 1 << 16)
            if not chunk:
                break
            if len(buffer) + len(chunk) > hard_cap:
                killed_for = "output"
                break
            buffer += chunk
            # Follow "start"/"cell" records only to time cells; the grader re-reads everything.
            while len(buffer) - parsed >= FRAME_HEADER.size:
                magic, length = FRAME_HEADER.unpack_from(buffer, parsed)
                if magic != FRAME_MAGIC or len(buffer) - parsed - FRAME_HEADER.size < length:
                    break
                body = bytes(
                    buffer[parsed + FRAME_HEADER.size : parsed + FRAME_HEADER.size + length]
                )
                parsed += FRAME_HEADER.size + length
                try:
                    kind = json.loads(body).get("kind")
                except (ValueError, AttributeError):
                    kind = None
                if kind == "start":
                    cell_deadline = time.monotonic() + cell_limit
                elif kind == "cell":
                    cell_deadline = None
        elif status is None:
            done, status_code = os.waitpid(pid, os.WNOHANG)
            if done:
                status = status_code
                # Leftover processes may hold the pipe open: end them so the read sees EOF.
                _kill_account(conf, pid)
    _kill_account(conf, pid)
    if killed_for is None:
        # Drain what is left after every writer is gone.
        while True:
            ready, _, _ = select.select([read_fd], [], [], 1.0)
            if not ready:
                break
            chunk = os.read(read_fd, 1 << 16)
            if not chunk or len(buffer) + len(chunk) > hard_cap:
                break
            buffer += chunk
    os.close(read_fd)
    if status is None:
        try:
            _, status = os.waitpid(pid, 0)
        except ChildProcessError:
            status = 0
    _reap()
    verdict = {
        "killed_for": killed_for,
        "exit_code": os.waitstatus_to_exitcode(status),
        "elapsed": round(time.monotonic() - started, 3),
        # CPU seconds of the submission's processes and of this server's watching, for reports.
        "cpu": round(_cpu_seconds() - used_before, 3),
    }
    return verdict, bytes(buffer)


def _read_exact(stream, size: int) -> bytes | None:
    data = b""
    while len(data) < size:
        chunk = stream.read(size - len(data))
        if not chunk:
            return None
        data += chunk
    return data


def read_frame(stream, raw: bool = False) -> dict | bytes | None:
    """Read one framed record from ``stream`` (its bytes if ``raw``); ``None`` at end of stream."""
    header = _read_exact(stream, FRAME_HEADER.size)
    if header is None:
        return None
    magic, length = FRAME_HEADER.unpack(header)
    if magic != FRAME_MAGIC:
        raise ValueError("bad frame")
    body = _read_exact(stream, length)
    if body is None:
        return None
    return body if raw else json.loads(body)


def place_files(conf: dict, workdir: str, files: list, blob: bytes) -> str | None:
    """Make the job folder ``workdir`` with the submission's ``files``; an error message or None.

    ``files`` lists ``[relative path, size]`` in the order of their contents in ``blob``. The fork
    server writes them itself, on the slot's tmpfs, then gives the folder to the slot's account:
    no process of that account is alive between jobs, so nothing can change the folder meanwhile.
    A submission whose files do not fit in the tmpfs is that trainee's error, not the grader's.
    """
    os.mkdir(workdir, 0o700)
    offset = 0
    try:
        for relpath, size in files:
            content = blob[offset : offset + size]
            offset += size
            target = os.path.normpath(os.path.join(workdir, relpath))
            if not target.startswith(workdir + os.sep):
                continue
            os.makedirs(os.path.dirname(target), mode=0o700, exist_ok=True)
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
            with open(fd, "wb") as handle:
                handle.write(content)
    except OSError as error:
        if error.errno in (errno.ENOSPC, errno.EDQUOT):
            return (
                f"sandbox error: the submission's files do not fit in the sandbox's "
                f"{conf.get('scratch_mb')} MiB of space"
            )
        return f"sandbox error: could not place the submission's files: {error.strerror}"
    if conf["isolate"]:
        for root, dirs, names in os.walk(workdir):
            for name in dirs + names:
                os.lchown(os.path.join(root, name), conf["uid"], conf["gid"])
        os.chown(workdir, conf["uid"], conf["gid"])
    return None


def clear_job(conf: dict, workdir: str) -> None:
    """Remove the job folder and whatever the job left in the shared scratch folder."""
    import shutil

    shutil.rmtree(workdir, ignore_errors=True)
    if not conf["isolate"]:
        return
    # Only the job's own entries: the fork server's (IPython's folder) are root's.
    with os.scandir(SCRATCH) as entries:
        for entry in entries:
            if entry.stat(follow_symlinks=False).st_uid == conf["uid"]:
                if entry.is_dir(follow_symlinks=False):
                    shutil.rmtree(entry.path, ignore_errors=True)
                else:
                    with contextlib.suppress(OSError):
                        os.unlink(entry.path)


def main() -> None:
    """Set up the confinement, pre-warm, then serve jobs until stdin closes."""
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    # The configuration comes on stdin, not argv: /proc/1/cmdline is readable inside the sandbox.
    conf = read_frame(stdin)
    if not isinstance(conf, dict):
        sys.exit(2)
    os.chdir("/")
    os.environ.clear()
    os.environ.update(conf["env"])
    if conf["isolate"]:
        confine_filesystem(conf["scratch_mb"], conf["hidden"])
    else:
        # Without namespaces, job folders are reached through a symlink-free path of their own.
        os.environ["ATELIER_SANDBOX_WORKBASE"] = conf["workbase"]
    os.environ["IPYTHONDIR"] = "/var/tmp/ipython" if conf["isolate"] else conf["workbase"]
    # Libraries preloaded here (matplotlib's font cache, anything following XDG) would otherwise
    # write their caches into the home of the account running this server: without a sandbox
    # that is the grader's home, the course folder. They go to this server's scratch space.
    scratch = "/var/tmp" if conf["isolate"] else conf["workbase"]
    for name, folder in (
        ("MPLCONFIGDIR", "matplotlib"),
        ("XDG_CACHE_HOME", "cache"),
        ("XDG_CONFIG_HOME", "config"),
    ):
        os.environ[name] = os.path.join(scratch, folder)
    from atelier.grading.sandbox.kernel import Snapshot, new_shell, preload, warm_up

    loaded = preload(conf["preload"])
    shell = new_shell()
    warm_up(shell)
    snapshot = Snapshot(shell)
    forking.freeze_heap()
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    stdout.write(encode_frame({"ready": True, "pid": os.getpid(), "preloaded": loaded}))
    stdout.flush()
    while True:
        job = read_frame(stdin)
        blob = read_frame(stdin, raw=True) if job is not None else None
        if job is None or blob is None:
            break
        base = "/tmp" if conf["isolate"] else conf["workbase"]
        job = dict(job, job=os.path.join(base, os.path.basename(job["job"])))
        try:
            refused = place_files(conf, job["job"], job.pop("files", []), blob)
            del blob
            if refused:
                verdict, raw = {"killed_for": refused, "exit_code": -1}, b""
            else:
                verdict, raw = supervise(conf, job, shell, snapshot)
        except OSError as error:
            if error.errno == errno.EINTR:
                continue
            verdict, raw = {"killed_for": f"sandbox error: {error}", "exit_code": -1}, b""
        finally:
            clear_job(conf, job["job"])
        stdout.write(encode_frame(verdict))
        stdout.write(FRAME_HEADER.pack(FRAME_MAGIC, len(raw)) + raw)
        stdout.flush()


if __name__ == "__main__":
    main()
