"""A jupyter_client kernel provisioner: kernels forked by :mod:`atelier.authoring.forkserver`.

Rule: ``atelier check`` gets its own kernels through jupyter_client's supported extension point, a
kernel provisioner registered under the ``jupyter_client.kernel_provisioners`` entry point as
:data:`NAME` and chosen by a kernelspec's ``metadata.kernel_provisioner``
(:func:`write_kernelspec`), not by reaching into the kernel manager. The kernel is the fork
server's child, held by the open connection that asked for it
(:class:`atelier.authoring.forkclient.ForkedKernel`), with no stand-in process in between.
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

from jupyter_client.provisioning import LocalProvisioner
from traitlets import Unicode

#: The provisioner's entry-point name (``pyproject.toml``, ``jupyter_client.kernel_provisioners``).
NAME = "atelier-fork"


class ForkProvisioner(LocalProvisioner):
    """Kernels forked by the template on request, with no stand-in process in between."""

    socket_path = Unicode(
        "",
        config=True,
        help="The fork server's Unix socket (from the kernelspec's provisioner config).",
    )

    async def launch_kernel(self, cmd, **kwargs):
        """Ask the fork server for a kernel on this manager's connection file."""
        from atelier.authoring.forkclient import ForkedKernel, request_kernel

        conn, pid = await asyncio.to_thread(
            request_kernel,
            self.socket_path,
            self.parent.connection_file,
            str(kwargs.get("cwd") or os.getcwd()),
            kwargs.get("env") or os.environ,
        )
        self.process = ForkedKernel(conn, pid)
        self.pid = self.pgid = pid  # the kernel leads its own session
        self.cwd = kwargs.get("cwd")
        return self.connection_info


def write_kernelspec(folder: Path, socket_path: str, argv: list[str]) -> Path:
    """Write a ``python3`` kernelspec in ``folder`` whose kernels this provisioner forks.

    ``argv`` is what the kernel manager formats (the provisioner does not run it). Returns the
    kernels folder to give a ``KernelSpecManager`` as ``kernel_dirs``.
    """
    kernels = Path(folder) / "kernels"
    spec = kernels / "python3"
    spec.mkdir(parents=True, exist_ok=True)
    (spec / "kernel.json").write_text(
        json.dumps(
            {
                "argv": argv,
                "display_name": "Python 3 (ipykernel)",
                "language": "python",
                "metadata": {
                    "kernel_provisioner": {
                        "provisioner_name": NAME,
                        "config": {"socket_path": socket_path},
                    }
                },
            }
        )
    )
    return kernels
