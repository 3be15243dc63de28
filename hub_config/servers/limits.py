"""Limits on every trainee's server: memory, processes, CPU, file size, a private /tmp and /dev/shm.

Rule: a trainee's server and everything it starts (kernels, ``git``, anything a notebook runs) live
inside limits that root set before the server became the trainee, and that the trainee cannot
lift. Applied in the forked child (:mod:`atelier.hub_config.servers.servertemplate`) or in a new
process's ``preexec_fn`` (the spawner's fallback), as root, in this order:

1. the process joins the trainee's control groups (cgroup v1, one per account under
   ``/sys/fs/cgroup/<controller>/atelier/``), which the hub made or updated just before
   (:func:`prepare_cgroups`): ``memory`` (the kernel's OOM killer ends the largest process of that
   trainee alone, usually the kernel), ``pids`` (a fork bomb stops at the cap), ``cpu`` (a
   share of the cores, so one trainee cannot take them all);
2. a mount namespace of its own with size-capped tmpfs on ``/tmp`` (also ``/var/tmp`` and
   ``/run/lock``) and ``/dev/shm`` (:func:`atelier.processes.mounts.private_scratch`): nothing
   written there reaches the disk or another trainee, and it is gone when the server stops;
3. resource limits, soft and hard, as a backstop: ``RLIMIT_FSIZE`` (no file larger than the cap,
   anywhere; it is what keeps a fast writer from overrunning the home quota between two checks
   of the watchdog, :mod:`atelier.hub_config.servers.quota`), ``RLIMIT_NPROC`` (per account, for a
   machine without the pids controller) and no core dumps.

What each limit is and its default: ``hub.limits`` in ``core/settings.schema.json``;
``docs/capacity.md`` explains the sizes.
"""

from __future__ import annotations

import contextlib
import os
import resource
import signal
from dataclasses import asdict, dataclass
from pathlib import Path

from atelier.processes.mounts import new_mount_namespace, private_scratch

#: Where cgroup v1 controllers are mounted.
CGROUP_ROOT = Path("/sys/fs/cgroup")
#: The group holding one group per trainee account, in each controller.
CGROUP_PARENT = "atelier"
#: ``cpu.cfs_period_us`` of every trainee group: 100 ms.
CPU_PERIOD_US = 100_000
MIB = 1 << 20


@dataclass(frozen=True)
class ServerLimits:
    """The limits of one trainee's server (the ``hub.limits`` settings)."""

    memory_mb: int = 1024
    all_servers_memory_mb: int = 0
    processes: int = 256
    cpu: float = 1.0
    file_size_mb: int = 512
    tmp_mb: int = 256
    shm_mb: int = 64

    @classmethod
    def from_settings(cls, section: dict) -> ServerLimits:
        """The limits from the validated ``hub.limits`` settings (other keys ignored)."""
        names = cls.__dataclass_fields__
        return cls(**{k: v for k, v in section.items() if k in names})

    def to_json(self) -> dict:
        """Plain data, for the server's request (the template's child rebuilds the limits)."""
        return asdict(self)


def _write(path: Path, value) -> None:
    with open(path, "w") as handle:
        handle.write(str(value))


def _set_memory(group: Path, limit: int) -> None:
    """Memory and memory+swap caps (swap cannot lift the cap); the order the kernel accepts."""
    memsw = group / "memory.memsw.limit_in_bytes"
    for _ in range(2):  # memsw must stay >= limit: one of the two orders fails, the other not
        with contextlib.suppress(OSError):
            _write(group / "memory.limit_in_bytes", limit)
        if memsw.exists():
            with contextlib.suppress(OSError):
                _write(memsw, limit)
    if int((group / "memory.limit_in_bytes").read_text()) > limit:
        raise OSError(f"could not set the memory limit of {group}")


def prepare_cgroups(account: str, limits: ServerLimits, root: Path = CGROUP_ROOT) -> list[str]:
    """Make or update ``account``'s groups; the ``cgroup.procs`` files its server must join.

    Run by the hub (root) before each start, so a change of settings applies at the next start.
    A controller that is not mounted (a cgroup v2 machine) is skipped: the caller warns.
    """
    joins = []
    for controller in ("memory", "pids", "cpu"):
        base = root / controller
        if not (base / "cgroup.procs").is_file():
            continue
        parent = base / CGROUP_PARENT
        group = parent / account
        group.mkdir(parents=True, exist_ok=True)
        if controller == "memory":
            if limits.all_servers_memory_mb:
                _set_memory(parent, limits.all_servers_memory_mb * MIB)
            _set_memory(group, limits.memory_mb * MIB)
        elif controller == "pids":
            _write(group / "pids.max", limits.processes)
        elif controller == "cpu":
            _write(group / "cpu.cfs_period_us", CPU_PERIOD_US)
            quota = int(limits.cpu * CPU_PERIOD_US) if limits.cpu > 0 else -1
            _write(group / "cpu.cfs_quota_us", quota)
        joins.append(str(group / "cgroup.procs"))
    return joins


def end_processes(account: str, root: Path = CGROUP_ROOT) -> int:
    """Kill every process left in ``account``'s groups, then remove the groups; how many killed.

    Called when a server stops: a process started in a session of its own or a fork bomb's last
    copies go with it. The next start makes the groups again (:func:`prepare_cgroups`), so
    accounts that come and go leave no groups behind.
    """
    import time

    killed = 0
    groups = [root / c / CGROUP_PARENT / account for c in ("pids", "memory", "cpu")]
    for _ in range(20):  # a fork bomb's last copies may fork once more while we kill
        pids = set()
        for group in groups:
            with contextlib.suppress(OSError, ValueError):
                pids.update(int(x) for x in (group / "cgroup.procs").read_text().split())
        if not pids:
            break
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
                killed += 1
        time.sleep(0.05)
    for group in groups:
        with contextlib.suppress(OSError):
            group.rmdir()
    return killed


def set_rlimits(limits: ServerLimits) -> None:
    """File size, processes and core dumps, soft and hard (a trainee cannot raise them back)."""
    pairs = {
        resource.RLIMIT_FSIZE: limits.file_size_mb * MIB,
        resource.RLIMIT_NPROC: limits.processes,
        resource.RLIMIT_CORE: 0,
    }
    for kind, value in pairs.items():
        resource.setrlimit(kind, (value, value))


def confine(confinement: dict) -> None:
    """In the server's process, as root, before it becomes the trainee: every limit, in order.

    ``confinement`` is what the spawner sent: ``limits`` (:meth:`ServerLimits.to_json`) and
    ``cgroups`` (the ``cgroup.procs`` files :func:`prepare_cgroups` returned) and ``keep``
    (folders the server needs that may live under ``/tmp``:
    :func:`atelier.processes.mounts.private_scratch`).
    """
    limits = ServerLimits(**confinement["limits"])
    for procs in confinement.get("cgroups", []):
        _write(Path(procs), os.getpid())
    new_mount_namespace()
    private_scratch(limits.tmp_mb, limits.shm_mb, confinement.get("keep", ()))
    set_rlimits(limits)
