"""Kernels that talk to their server over Unix sockets (ZeroMQ ``ipc``), not loopback TCP ports.

Why: over TCP, jupyter_client picks each kernel's five ports by binding port 0 and closing the
socket, and the kernel binds them again a moment later. In between, any process on the machine
may take one (another kernel's choice, an outgoing connection's local port): in a burst of 100
trainees starting their workbooks, about one kernel in 100 died with ``Address already in use``
and its trainee lost the page (docs/benchmarks.md, "The deadline at full size"). A Unix socket is
a file its server names in a folder only its account can enter, so nothing can take it; and only
that account can connect to it, where a TCP port answers every account on the machine.

Every Jupyter server Atelier runs kernels in (a trainee's server, the public apps, the dashboard)
sets ``KernelManager.transport = "ipc"`` and makes :class:`UnixSocketProvisioner` (or the trainee
servers' zygote provisioner, a subclass) its default provisioner: :func:`configure`.

The one limit of a Unix socket is its path: at most :data:`SOCKET_PATH_MAX` bytes. jupyter_client
names a kernel's sockets after its connection file (``<runtime folder>/kernel-<id>-ipc-<n>``),
which a long home folder or user name pushes past it. The provisioner then moves the sockets into
a private folder with a short path (:func:`socket_prefix`); the connection file stays where it was
and names them.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile

from jupyter_client.provisioning import LocalProvisioner

#: The provisioner's entry-point name (``pyproject.toml``, ``jupyter_client.kernel_provisioners``).
NAME = "atelier-unix"
#: Longest path of a Unix socket on Linux (``sun_path`` is 108 bytes, with its final NUL).
SOCKET_PATH_MAX = 107
#: What jupyter_client and ipykernel add to a socket prefix: ``-<n>``, with room for ``n`` > 9.
SUFFIX_ROOM = 4
#: Where the short folder goes when the temporary folder's own path is already too long.
FALLBACK_ROOT = "/tmp"

_folder: str | None = None


def fits(prefix: str) -> bool:
    """Whether every socket named ``<prefix>-<n>`` fits in a Unix socket's path."""
    return len(os.fsencode(prefix)) + SUFFIX_ROOM <= SOCKET_PATH_MAX


def private_folder() -> str:
    """This process's folder for kernel sockets whose own path is too long: new, 0700, short.

    Made once per process with ``mkdtemp`` (a new name nobody else can have made, mode 0700),
    again if something removed it, and removed when the process ends.
    """
    global _folder
    if _folder is None or not os.path.isdir(_folder):
        root = tempfile.gettempdir()
        if not fits(os.path.join(root, "atelier-kernels-XXXXXXXX", "k" * 49)):
            root = FALLBACK_ROOT
        _folder = tempfile.mkdtemp(prefix="atelier-kernels-", dir=root)
        atexit.register(shutil.rmtree, _folder, True)
    return _folder


def socket_prefix(prefix: str) -> str:
    """``prefix`` if its sockets' paths fit, else the same name in :func:`private_folder`.

    Raises:
        OSError: not even the short folder leaves room (a temporary folder with a very long path).
    """
    if fits(prefix):
        return prefix
    short = os.path.join(private_folder(), os.path.basename(prefix))
    if not fits(short):
        raise OSError(
            f"a kernel's Unix socket path would be longer than {SOCKET_PATH_MAX} bytes: {short}"
        )
    return short


class UnixSocketProvisioner(LocalProvisioner):
    """jupyter_client's local provisioner, with ``ipc`` sockets moved where their paths fit."""

    async def pre_launch(self, **kwargs):
        """Shorten the kernel's socket prefix if needed, then prepare as jupyter_client does."""
        km = self.parent
        if km is not None and km.transport == "ipc":
            # Before the connection file is written: it names the sockets.
            km.ip = socket_prefix(km.ip)
        return await super().pre_launch(**kwargs)


def configure(config, provisioner: str = NAME) -> None:
    """Have the kernels of the server or Voila app that ``config`` configures use Unix sockets."""
    config.KernelManager.transport = "ipc"
    config.KernelProvisionerFactory.default_provisioner_name = provisioner


def arguments(provisioner: str = NAME) -> list[str]:
    """:func:`configure` as command-line options (for a trainee's server, set by its arguments)."""
    return [
        "--KernelManager.transport=ipc",
        f"--KernelProvisionerFactory.default_provisioner_name={provisioner}",
    ]
