"""The sandbox a submission's code runs in, seen from the grader.

Rule: trainee code never runs with the grader's rights. A :class:`Sandbox` is one slot: an
unprivileged account of its own (``atelier-sbx<N>``, created on first use), a fork server
(:mod:`atelier.grading.sandbox.zygote`) running in new network, mount and PID namespaces with the
libraries pre-imported, and a private job folder per notebook holding only that submission's files
(made by the fork server from the bytes :meth:`Sandbox.execute` sends: the grader itself may have
given up root once its slots run, see :func:`atelier.grading.autograde.account.become`).
Limits (:class:`SandboxLimits`) cap memory, processes, CPU time, file size, wall time per cell and
per notebook, output, and the space a job may write (a tmpfs private to the fork server's mount
namespace: the machine's disk is never written by a submission). Slots are claimed with a lock
file, so any number of graders and Dask workers on one machine never share an account.

:meth:`Sandbox.execute` returns an :class:`Execution`: the cell records the child reported and the
supervisor's verdict; it is :mod:`atelier.grading.autograde` that turns them into outputs, failing
closed.
"""

from __future__ import annotations

import fcntl
import json
import os
import pwd
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path

from traitlets import Bool, Float, Integer, List, Unicode
from traitlets.config import Configurable

from atelier.errors import AtelierError
from atelier.grading.sandbox.kernel import FRAME_HEADER, FRAME_MAGIC, decode_frames, encode_frame

#: Where slot locks live (root only).
LOCK_DIR = Path("/run/atelier-sandbox")
#: Paths hidden from every sandbox, whatever the course: homes, hub state, configuration, exchange.
ALWAYS_HIDDEN = [
    "/home",
    "/root",
    "/srv",
    "/mnt",
    "/media",
    "/etc/atelier",
    "/etc/jupyter",
    "/etc/jupyterhub",
    "/usr/local/etc/jupyter",
    "/usr/local/share/nbgrader",
    "/var/lib/atelier",
    "/var/log",
    "/var/mail",
    "/var/spool",
    "/var/backups",
    "/run/postgresql",  # the gradebook may be PostgreSQL: not even its socket is reachable
    os.path.join(sys.prefix, "etc", "jupyter"),
]


class SandboxError(AtelierError):
    """The sandbox could not be set up (not root, account creation failed, fork server died)."""


class SandboxLimits(Configurable):
    """Resource limits applied to each submission's process (and everything it starts)."""

    memory_mb = Integer(2048, help="Address-space limit of a submission's process, in MiB.").tag(
        config=True
    )
    processes = Integer(
        64, help="Most processes a submission may run at once (its sandbox account's RLIMIT_NPROC)."
    ).tag(config=True)
    cpu_seconds = Integer(
        300, help="CPU seconds a submission's process may use in total, per notebook."
    ).tag(config=True)
    cell_timeout = Float(
        30.0,
        help="Seconds a cell may run; then it is interrupted, scores 0 and later cells still run.",
    ).tag(config=True)
    notebook_timeout = Float(
        600.0, help="Seconds a whole notebook may run; then it is killed and unrun cells score 0."
    ).tag(config=True)
    cell_output_chars = Integer(
        100_000, help="Characters of output kept per cell; the rest is replaced by a marker."
    ).tag(config=True)
    notebook_output_chars = Integer(
        1_000_000, help="Characters of output kept per notebook; the rest is replaced by a marker."
    ).tag(config=True)
    file_size_mb = Integer(64, help="Largest file a submission may write, in MiB.").tag(config=True)
    scratch_mb = Integer(
        256,
        help="Size in MiB of the tmpfs holding a sandbox's job folder, /tmp, /var/tmp and "
        "/dev/shm: everything a submission (and its files) may write. Past it, writes fail; the "
        "disk is never written.",
    ).tag(config=True)
    open_files = Integer(256, help="Most files a submission's process may hold open.").tag(
        config=True
    )

    def as_dict(self) -> dict:
        """The limits as sent to the fork server."""
        return {name: getattr(self, name) for name in self.trait_names(config=True)}


class SandboxOptions(Configurable):
    """How sandboxes are made: isolation, accounts, pre-imported libraries, hidden paths."""

    isolate = Bool(
        True,
        help="Run submissions as unprivileged sandbox accounts in network/mount/PID namespaces "
        "(needs root). False keeps only limits and timeouts: for development, never for trainees.",
    ).tag(config=True)
    account_prefix = Unicode(
        "atelier-sbx", help="Prefix of the sandbox accounts; slot N runs as <prefix>N."
    ).tag(config=True)
    preload = List(
        Unicode(),
        [
            "numpy",
            "numpy.testing",
            "pandas",
            "matplotlib",
            "matplotlib.pyplot",
            "ipywidgets",
            "atelier.widgets",
        ],
        help="Modules imported once by each fork server (when installed): submissions start warm.",
    ).tag(config=True)
    hidden_paths = List(
        Unicode(),
        [],
        help="Extra paths hidden from submissions, on top of homes, hub state and the course.",
    ).tag(config=True)


@dataclass
class Execution:
    """What came back from running one notebook in the sandbox."""

    records: list[dict] = field(default_factory=list)
    well_formed: bool = True
    nonce: str = ""
    killed_for: str | None = None
    exit_code: int = 0
    elapsed: float = 0.0
    cpu: float = 0.0

    def to_dict(self) -> dict:
        """Plain data, for sending across processes (Dask)."""
        return self.__dict__.copy()


def _lock_slot(account_prefix: str, max_slots: int = 256) -> tuple[int, int]:
    LOCK_DIR.mkdir(mode=0o700, parents=True, exist_ok=True)
    for slot in range(max_slots):
        fd = os.open(LOCK_DIR / f"{account_prefix}{slot}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        return slot, fd
    raise SandboxError(f"all {max_slots} sandbox slots are in use (locks in {LOCK_DIR})")


def ensure_account(name: str) -> pwd.struct_passwd:
    """Create the sandbox account ``name`` (system, no home, no login) unless it exists.

    An existing account is used only if Atelier created it as a sandbox (its marker, see
    :func:`atelier.accounts.check_marked`): submissions must never run as an account
    that owns anything, such as a trainee's or a system account that happens to have this name.
    """
    from atelier.accounts import check_marked, create_system_account

    def existing():
        try:
            return check_marked(name, "sandbox")
        except AtelierError as error:
            raise SandboxError(str(error)) from None

    entry = existing()
    if entry is not None:
        return entry
    LOCK_DIR.mkdir(mode=0o700, parents=True, exist_ok=True)
    with open(LOCK_DIR / "accounts.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        error = None
        for _attempt in range(5):
            entry = existing()
            if entry is not None:
                return entry
            try:
                return create_system_account(name, "sandbox")
            except AtelierError as failure:
                # Another tool holds /etc/passwd's lock: try again shortly.
                error = failure
                threading.Event().wait(0.5)
    raise SandboxError(f"could not create the sandbox account {name}: {error}")


class Sandbox:
    """One sandbox slot: an account, a fork server, and a private job folder per notebook.

    Args:
        limits: resource limits for every job.
        options: isolation options.
        hidden: extra paths (course root, gradebook, exchange) to hide from submissions.
    """

    def __init__(self, limits: SandboxLimits, options: SandboxOptions, hidden: list[str] = ()):
        self.limits = limits
        self.options = options
        self.hidden = list(ALWAYS_HIDDEN) + list(options.hidden_paths) + list(hidden)
        self.process: subprocess.Popen | None = None
        self.slot = -1
        self._lock_fd = -1
        self.workbase = ""
        self.preloaded: list[str] = []

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self) -> Sandbox:
        """Claim a slot, create its account if needed, and start the fork server."""
        isolate = self.options.isolate
        if isolate and os.geteuid() != 0:
            raise SandboxError(
                "the grading sandbox needs root (to switch to the sandbox accounts and create "
                "namespaces); run as root, or pass --no-sandbox on a development machine only"
            )
        env = {
            "PATH": f"{Path(sys.executable).parent}:/usr/local/bin:/usr/bin:/bin",
            "LANG": "C.UTF-8",
            "LC_ALL": "C.UTF-8",
            "PYTHONDONTWRITEBYTECODE": "1",
            "OPENBLAS_NUM_THREADS": "1",
            "OMP_NUM_THREADS": "1",
            "MKL_NUM_THREADS": "1",
            "MPLBACKEND": "module://matplotlib_inline.backend_inline",
            # As stock nbgrader sets it: code may see it is being graded. That does not help it
            # cheat, since a test that did not run or did not pass still scores 0.
            "NBGRADER_EXECUTION": "autograde",
        }
        if isolate:
            self.slot, self._lock_fd = _lock_slot(self.options.account_prefix)
            account = ensure_account(f"{self.options.account_prefix}{self.slot}")
            uid, gid, user = account.pw_uid, account.pw_gid, account.pw_name
            # Job folders left by a grader of an earlier version: this slot is ours now.
            for stale in Path("/var/tmp").glob(f"atelier-{user}-*"):
                shutil.rmtree(stale, ignore_errors=True)
            # Job folders live on a tmpfs that exists only in the fork server's mount namespace
            # (zygote.confine_filesystem): nothing on the host to make or clean up.
        else:
            uid, gid, user = os.getuid(), os.getgid(), pwd.getpwuid(os.getuid()).pw_name
            self.workbase = tempfile.mkdtemp(prefix="atelier-sandbox-")
        env.update({"USER": user, "LOGNAME": user})
        self.uid, self.gid = uid, gid
        conf = {
            "isolate": isolate,
            "uid": uid,
            "gid": gid,
            "env": env,
            "workbase": self.workbase,
            "scratch_mb": self.limits.scratch_mb,
            "hidden": self.hidden,
            "preload": list(self.options.preload),
        }
        argv = [sys.executable, "-m", "atelier.grading.sandbox.zygote"]
        if isolate:
            argv = ["unshare", "--net", "--mount", "--pid", "--fork", "--mount-proc",
                    "--propagation", "private", "--", *argv]  # fmt: skip
        self.process = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env={**env, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)},
            cwd="/",
        )
        self.process.stdin.write(encode_frame(conf))
        self.process.stdin.flush()
        ready = self._read_record()
        if not isinstance(ready, dict) or not ready.get("ready"):
            self.close()
            raise SandboxError("the sandbox fork server did not start (see the messages above)")
        self.preloaded = ready.get("preloaded", [])
        return self

    def close(self) -> None:
        """Stop the fork server, release the slot and remove the job folders."""
        if self.process is not None:
            try:
                self.process.stdin.close()
                self.process.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                self.process.kill()
                self.process.wait()
            self.process = None
        if self.workbase:
            shutil.rmtree(self.workbase, ignore_errors=True)
            self.workbase = ""
        if self._lock_fd >= 0:
            os.close(self._lock_fd)
            self._lock_fd = -1

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    # -- jobs ----------------------------------------------------------------------------------
    def _read_exact(self, size: int) -> bytes:
        data = b""
        while len(data) < size:
            chunk = self.process.stdout.read(size - len(data))
            if not chunk:
                raise SandboxError("the sandbox fork server stopped unexpectedly")
            data += chunk
        return data

    def _read_record(self, raw: bool = False):
        magic, length = FRAME_HEADER.unpack(self._read_exact(FRAME_HEADER.size))
        if magic != FRAME_MAGIC:
            raise SandboxError("the sandbox fork server sent garbled data")
        body = self._read_exact(length)
        return body if raw else json.loads(body)

    def execute(
        self, cells: list[dict], files: dict[str, bytes] | None = None, variant_seed: str = ""
    ) -> Execution:
        """Run ``cells`` (``index``, ``source``, ``test``) in a fresh confined process.

        Args:
            cells: the code cells to run, in order.
            files: the submission's other files (relative path -> content), placed next to it.
            variant_seed: the trainee's seed (:mod:`atelier.variants`), pinned for the tests;
                ``""`` for the default variant.

        Returns:
            The records the child wrote and the supervisor's verdict.
        """
        if self.process is None or self.process.poll() is not None:
            self.close()
            try:
                self.start()
            except SandboxError as error:  # e.g. this grading process has given up root
                return Execution(killed_for=f"sandbox failure: {error}", exit_code=-1)
        job = secrets.token_hex(8)
        nonce = secrets.token_hex(16)
        # The fork server makes the job folder and writes the files (on the slot's tmpfs): this
        # process may have given up root (it runs as the course's grader account).
        files = files or {}
        request = {
            "job": job,
            "cells": cells,
            "limits": self.limits.as_dict(),
            "nonce": nonce,
            "variant_seed": variant_seed or "",
            "files": [[relpath, len(content)] for relpath, content in files.items()],
        }
        blob = b"".join(files.values())
        try:
            self.process.stdin.write(encode_frame(request))
            self.process.stdin.write(FRAME_HEADER.pack(FRAME_MAGIC, len(blob)) + blob)
            self.process.stdin.flush()
            verdict = self._read_record()
            raw = self._read_record(raw=True)
        except (OSError, SandboxError) as error:
            self.close()
            return Execution(nonce=nonce, killed_for=f"sandbox failure: {error}", exit_code=-1)
        records, well_formed = decode_frames(raw)
        return Execution(
            records=records,
            well_formed=well_formed,
            nonce=nonce,
            killed_for=verdict.get("killed_for"),
            exit_code=verdict.get("exit_code", 0),
            elapsed=verdict.get("elapsed", 0.0),
            cpu=verdict.get("cpu", 0.0),
        )
