"""Mount namespaces and size-capped scratch space for processes that run someone else's code.

Rule: whatever an account can write outside its home is a tmpfs of a fixed size that exists only in
the mount namespace of that account's processes, so neither a grading job nor a trainee's server
can fill the machine's root filesystem through ``/tmp``, ``/var/tmp``, ``/run/lock`` or
``/dev/shm``. Two places use it, each as root before giving up its rights: the grading sandbox's
fork server (:mod:`atelier.grading.sandbox.zygote`, already the first process of its own mount
namespace) and each trainee's server (:mod:`atelier.hub_config.servers.limits`, which calls
:func:`new_mount_namespace` in the forked child first).

Mounts are made with the C library (``mount(2)``, ``unshare(2)``): Python 3.11 has neither.
"""

from __future__ import annotations

import ctypes
import os

MS_RDONLY, MS_NOSUID, MS_NODEV, MS_BIND, MS_REC, MS_PRIVATE = 1, 2, 4, 4096, 16384, 1 << 18
CLONE_NEWNS = 0x00020000
#: World-writable folders of a Debian root filesystem (``find / -xdev -perm -0002 -type d``)
#: that a private scratch space covers; ``/dev/shm`` gets a tmpfs of its own.
SHARED_SCRATCH = ("/var/tmp", "/run/lock")

_libc = ctypes.CDLL(None, use_errno=True)


def mount(source: str, target: str, fstype: str | None, flags: int, data: str | None = None):
    """``mount(2)``; raises :class:`OSError` naming the target."""
    result = _libc.mount(
        source.encode(),
        target.encode(),
        fstype.encode() if fstype else None,
        ctypes.c_ulong(flags),
        data.encode() if data else None,
    )
    if result != 0:
        error = ctypes.get_errno()
        raise OSError(error, f"mount {source} on {target}: {os.strerror(error)}")


def new_mount_namespace() -> None:
    """Move this process into a mount namespace of its own whose mounts never reach the host's."""
    if _libc.unshare(CLONE_NEWNS) != 0:
        error = ctypes.get_errno()
        raise OSError(error, f"unshare(CLONE_NEWNS): {os.strerror(error)}")
    # Shared propagation (systemd's default) would copy every mount below back to the host.
    mount("none", "/", None, MS_REC | MS_PRIVATE)


def tmpfs(target: str, size_mib: int, mode: int = 0o1777, flags: int = 0) -> None:
    """A tmpfs of ``size_mib`` MiB on ``target``: writes past it fail with ENOSPC, for root too."""
    options = f"mode={mode:o},size={int(size_mib)}m,nr_inodes={_inodes(size_mib)}"
    mount("tmpfs", target, "tmpfs", MS_NOSUID | MS_NODEV | flags, options)


def _inodes(size_mib: int) -> int:
    """Inodes of a scratch tmpfs: one per 4 KiB page (empty files cost memory too)."""
    return max(1024, int(size_mib) * 256)


def private_scratch(tmp_mib: int, shm_mib: int, keep=()) -> None:
    """Size-capped ``/tmp`` (also seen at :data:`SHARED_SCRATCH`) and ``/dev/shm``.

    Call in a mount namespace of its own (:func:`new_mount_namespace`), as root. ``/var/tmp`` and
    ``/run/lock`` show the same tmpfs as ``/tmp``, so one cap covers every world-writable folder.
    ``keep`` lists folders the process still needs that live below one of them (a test hub's
    homes and exchange under ``/tmp``): each is bound back at its own path, if every folder on the
    way from the scratch folder to it is root's and no link (:func:`_hold`).
    """
    scratch = ("/tmp", *SHARED_SCRATCH, "/dev/shm")
    held = [(path, fd) for path in keep if (fd := _hold(path, scratch)) is not None]
    try:
        tmpfs("/tmp", tmp_mib)
        for path in SHARED_SCRATCH:
            if os.path.isdir(path) and not os.path.islink(path):
                mount("/tmp", path, None, MS_BIND)
        if os.path.isdir("/dev/shm"):
            tmpfs("/dev/shm", shm_mib)
        for path, fd in held:
            os.makedirs(path, mode=0o755, exist_ok=True)
            mount(f"/proc/self/fd/{fd}", path, None, MS_BIND | MS_REC)
    finally:
        for _, fd in held:
            os.close(fd)


def _hold(path: str, scratch) -> int | None:
    """An ``O_PATH`` descriptor of folder ``path`` if it is below a scratch folder and safe to keep.

    Safe: walked one component at a time without following links, every folder before the last
    one owned by root (so nobody else can swap one), the last one a folder. The bind is made from
    this descriptor, so it is the very folder checked.
    """
    path = os.path.normpath(os.path.abspath(path))
    root = next((r for r in scratch if path.startswith(r.rstrip("/") + "/")), None)
    if root is None:
        return None
    flags = os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        fd = os.open(root, flags)
    except OSError:
        return None
    parts = path[len(root) :].strip("/").split("/")
    for name in parts:
        try:
            if os.fstat(fd).st_uid != 0:
                raise PermissionError(path)
            nxt = os.open(name, flags, dir_fd=fd)
        except OSError:
            os.close(fd)
            return None
        os.close(fd)
        fd = nxt
    return fd
