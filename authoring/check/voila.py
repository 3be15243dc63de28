"""Rendering app workbooks for ``atelier check``: Voila's own server, whose pages show no error.

Rule: one Voila server per check, over the workbooks published as apps, on a free loopback port;
its only kernelspec is the check's own (:mod:`.kernels`: forked, no network), and a page that fails,
shows an error or tried the network is a problem.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from atelier.authoring.check.kernels import NETWORK_ERRORS, kernel_argv, kernel_env
from atelier.authoring.check.options import CheckOptions
from atelier.processes import forking
from atelier.processes.ports import free_port
from atelier.workbook import Problem

#: Voila's own entry point, with jsonschema's IRI grammars deferred (~1.3 s of CPU at every start,
#: jsonschema #1428): nothing Voila validates uses IRI formats.
VOILA_MAIN = (
    "import sys; from atelier.upstream import rfc3987_syntax; rfc3987_syntax.install(); "
    "sys.argv[0] = 'voila'; from voila.app import main; main()"
)

#: What an error looks like in a page Voila rendered with tracebacks shown.
VOILA_ERROR = re.compile(
    r"There was an error when executing cell|An exception occurred at the server|"
    r"data-mime-type=\"application/vnd.jupyter.error\"|class=\"[^\"]*jp-RenderedText[^\"]*\"[^>]*"
    r"data-mime-type=\"application/vnd.jupyter.stderr\"",
)


def _offline_kernelspec(ipc_dir: str, fork_server=None) -> str:
    """Write the only kernel Voila may start, ``python3``, as the check starts its own kernels.

    Returns the data folder to put first on ``JUPYTER_PATH``, where this ``python3`` hides the
    installed one; Voila allows no other kernel name, so a notebook cannot pick an ordinary kernel
    with network access by naming another kernelspec.
    """
    import json

    data = Path(ipc_dir) / "jupyter"
    spec = data / "kernels" / "python3"
    spec.mkdir(parents=True, exist_ok=True)
    (spec / "kernel.json").write_text(
        json.dumps(
            {
                "argv": kernel_argv(fork_server),
                "display_name": "Python 3 (ipykernel)",
                "language": "python",
            }
        )
    )
    return str(data)


class VoilaRenderer:
    """Voila's own server over the app notebooks, on a free loopback port (a context manager).

    It is started before the static checks so that it is up when the kernels run; its kernels
    are the check's kernels: forked from the same template, in the same empty network namespace,
    talking to Voila over Unix sockets (``ipc`` transport).
    """

    def __init__(
        self,
        apps: list[Path],
        options: CheckOptions,
        ipc_dir: str,
        fork_server=None,
        originals: dict[Path, Path] | None = None,
    ):
        self.apps = apps
        #: The workbook file each app copy stands for (the check renders working folders).
        self.originals = originals or {}
        self.options = options
        self.ipc_dir = ipc_dir
        self.fork_server = fork_server
        self.root = Path(os.path.commonpath([str(p.parent.resolve()) for p in apps]))
        self.port = free_port()
        self.log = Path(ipc_dir) / "voila.log"
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> VoilaRenderer:
        cmd = [
            sys.executable,
            "-c",
            VOILA_MAIN,
            "--no-browser",
            f"--port={self.port}",
            "--Voila.ip=127.0.0.1",
            "--show_tracebacks=True",
            "--Voila.open_browser=False",
            f"--Voila.root_dir={self.root}",
            "--KernelSpecManager.allowed_kernelspecs=python3",
            "--KernelSpecManager.ensure_native_kernel=False",
            "--KernelManager.transport=ipc",
            str(self.root),
        ]
        # Voila's kernels inherit this environment. Warnings are the execution step's to report:
        # in Voila's page they would read as errors.
        env = dict(kernel_env(), PYTHONWARNINGS="ignore")
        data = _offline_kernelspec(self.ipc_dir, self.fork_server)
        env["JUPYTER_PATH"] = os.pathsep.join(filter(None, [data, env.get("JUPYTER_PATH")]))
        # Its log goes to a file: a pipe nobody reads would stall Voila once full.
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=log,
                env=env,
                cwd=str(self.root),
            )
        return self

    def __exit__(self, *exc) -> None:
        forking.end(self.process)

    async def _started(self) -> str | None:
        """Wait until Voila listens; the end of its log if it never does."""
        assert self.process is not None
        deadline = time.monotonic() + self.options.voila_timeout
        while True:
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", self.port)
                writer.close()
                return None
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    return self.log.read_text(errors="replace")[-400:].strip()
                await asyncio.sleep(0.05)

    def _fetch(self, path: Path) -> tuple[int, str]:
        rel = path.resolve().relative_to(self.root).as_posix()
        url = f"http://127.0.0.1:{self.port}/voila/render/{urllib.request.quote(rel)}"
        try:
            with urllib.request.urlopen(url, timeout=self.options.voila_timeout) as response:
                return response.status, response.read().decode("utf-8", "replace")
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode("utf-8", "replace")
        except OSError as exc:
            return 0, str(exc)

    async def render_all(self) -> list[Problem]:
        """Render every app notebook at once; one problem per page that fails."""
        failure = await self._started()
        if failure is not None:
            return [
                Problem(
                    str(self.originals.get(p, p)),
                    f"Voila did not start: {failure}",
                    "check the Voila install",
                    code="voila",
                )
                for p in self.apps
            ]
        results = await asyncio.gather(*(asyncio.to_thread(self._fetch, p) for p in self.apps))
        problems = []
        for app, (status, body) in zip(self.apps, results, strict=True):
            path = self.originals.get(app, app)
            if status != 200:
                problems.append(
                    Problem(
                        str(path),
                        f"Voila answers HTTP {status}",
                        "open it with `voila` to see why",
                        code="voila",
                    )
                )
            elif VOILA_ERROR.search(body) and NETWORK_ERRORS.search(body):
                problems.append(
                    Problem(
                        str(path),
                        "tries to reach the network when Voila renders it",
                        "apps run offline: put the data in data/ and read it from there",
                        code="network",
                    )
                )
            elif VOILA_ERROR.search(body):
                problems.append(
                    Problem(
                        str(path),
                        "Voila's rendering shows an error",
                        f"run `voila {path}` and fix the failing cell; app cells must not "
                        "depend on JupyterLab",
                        code="voila",
                    )
                )
        return problems
