"""Executing workbooks for ``atelier check``: every version runs top to bottom in a fresh kernel.

Rule: each run (the source with solutions, then the student version nbgrader releases) gets its own
kernel, forked from the warmed template of :mod:`atelier.authoring.forkserver` through
jupyter_client's provisioner (or, without a template, a new ipykernel), inside an empty network
namespace; ``options.kernels`` run at once, each cell under a timeout. What a run records becomes
problems here. Voila's kernels (:mod:`.voila`) start the same way.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import os
import re
import shutil
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from atelier import workbook as wb
from atelier.authoring.check.options import CheckOptions
from atelier.authoring.check.workdirs import working_folder
from atelier.workbook import Problem

#: Error text that means a cell tried the network, which the check denies.
NETWORK_ERRORS = re.compile(
    r"Network is unreachable|Temporary failure in name resolution|Name or service not known|"
    r"gaierror|Errno 101|Errno -3|Errno -2|NewConnectionError|URLError",
)


def network_isolation() -> list[str]:
    """The command prefix that runs a kernel without network: a new, empty network namespace.

    ``unshare -n`` (root only) gives the kernel a network namespace with no interface up, so every
    connection fails at the system-call level whatever library the code uses; the kernel talks to
    us over Unix sockets (ZeroMQ ``ipc`` transport), which need no network. Without root the check
    refuses to run code rather than pretend it is isolated.
    """
    unshare = shutil.which("unshare")
    if unshare and os.geteuid() == 0:
        return [unshare, "--net", "--"]
    return []


def kernel_env() -> dict[str, str]:
    """The environment of every kernel the check starts (its own and Voila's)."""
    env = dict(os.environ)
    # Belt and braces for libraries that honour proxies: a dead proxy address.
    env.update(
        http_proxy="http://127.0.0.1:9", https_proxy="http://127.0.0.1:9", PYTHONWARNINGS="default"
    )
    env.update(no_proxy="", NO_PROXY="", MPLBACKEND="agg")
    return env


def kernel_argv(fork_server=None) -> list[str]:
    """How the check starts a kernel (``{connection_file}`` is filled in by jupyter_client).

    Forked from the template when there is one (its stand-in command), else a new ipykernel; both
    inside the empty network namespace.
    """
    if fork_server is not None:
        return fork_server.kernel_cmd("{connection_file}")
    return [
        *network_isolation(),
        sys.executable,
        "-m",
        "ipykernel_launcher",
        "-f",
        "{connection_file}",
    ]


def _kernel_manager_class():
    from jupyter_client.manager import AsyncKernelManager

    class OfflineKernelManager(AsyncKernelManager):
        """A kernel manager whose kernels start inside an empty network namespace."""

        fork_server = None

        def format_kernel_cmd(self, extra_arguments=None):
            return [
                self.connection_file if arg == "{connection_file}" else arg
                for arg in kernel_argv(self.fork_server)
            ]

    return OfflineKernelManager


def _forked_kernelspecs(ipc_dir: str, fork_server):
    """A kernelspec manager whose ``python3`` kernels ``fork_server`` forks.

    Its kernelspec names :class:`atelier.authoring.forkprovisioner.ForkProvisioner`
    (jupyter_client's provisioner entry point), which asks the fork server for each kernel.
    """
    from jupyter_client.kernelspec import KernelSpecManager

    from atelier.authoring.forkprovisioner import write_kernelspec

    folder = Path(ipc_dir) / "forked"
    kernels = folder / "kernels"
    if not (kernels / "python3" / "kernel.json").exists():
        write_kernelspec(folder, fork_server.socket_path, kernel_argv(fork_server))
    return KernelSpecManager(kernel_dirs=[str(kernels)], ensure_native_kernel=False)


@dataclass
class Run:
    """One execution of one notebook: ``kind`` is ``source`` (with solutions) or ``student``."""

    path: Path
    kind: str
    nb: object
    errors: dict[int, dict] = field(default_factory=dict)
    stderr: dict[int, str] = field(default_factory=dict)
    timed_out: int | None = None
    failure: str | None = None
    source_nb: object = None
    source_run: Run | None = None
    #: The working folder (:mod:`.workdirs`); the notebook's own folder when not given.
    cwd: Path | None = None


#: nbclient logs timeouts itself; the check reports them as problems instead.
_QUIET = logging.getLogger("atelier.authoring.check.kernels")
_QUIET.addHandler(logging.NullHandler())
_QUIET.propagate = False


def _error_text(output: dict) -> str:
    return f"{output.get('ename', 'Error')}: {output.get('evalue', '')}".strip()


async def _execute(
    run: Run, options: CheckOptions, ipc_dir: str, index: int, limit, fork_server=None
) -> None:
    """Run every cell of ``run.nb`` in a fresh offline kernel; record errors, stderr."""
    from nbclient import NotebookClient
    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    from atelier.upstream.jupyter_client import bounded_channel_waits

    # Widgets' Output mirror writes to the shell socket while its reply is awaited: a reply
    # pyzmq never announces would otherwise wait out the whole cell timeout
    # (upstream/jupyter_client.py).
    bounded_channel_waits()
    km_class = _kernel_manager_class()
    km = km_class(kernel_name="python3", transport="ipc", ip=os.path.join(ipc_dir, f"k{index}"))
    km.fork_server = fork_server
    env = kernel_env()
    client = NotebookClient(
        run.nb,
        log=_QUIET,
        km=km,
        timeout=options.cell_timeout,
        allow_errors=True,
        shutdown_kernel="immediate",
        record_timing=False,
        resources={"metadata": {"path": str(run.cwd or run.path.parent)}},
    )
    async with limit:
        if fork_server is not None and not await fork_server.ready:
            km.fork_server = None  # no template: start this kernel the ordinary way, still offline
        if km.fork_server is not None:
            km.kernel_spec_manager = _forked_kernelspecs(ipc_dir, km.fork_server)
        try:
            async with client.async_setup_kernel(
                env=env, cwd=str(run.cwd or run.path.parent), cleanup_kc=True
            ):
                for i, cell in enumerate(run.nb.cells):
                    if cell.cell_type != "code":
                        continue
                    try:
                        await client.async_execute_cell(cell, i)
                    except CellTimeoutError:
                        run.timed_out = i + 1
                        break
                    for output in cell.get("outputs", []):
                        if output.get("output_type") == "error":
                            run.errors.setdefault(i + 1, output)
                        elif (
                            output.get("output_type") == "stream" and output.get("name") == "stderr"
                        ):
                            run.stderr[i + 1] = run.stderr.get(i + 1, "") + output.get("text", "")
        except DeadKernelError as exc:
            run.failure = f"the kernel died ({exc})"
        except Exception as exc:  # a kernel that cannot start is a problem to report, not a crash
            run.failure = f"could not run: {type(exc).__name__}: {exc}"


def _names_defined(cells) -> set[str]:
    """Names the trainee's answers define (functions, classes, variables; imports are setup)."""
    import ast

    names: set[str] = set()
    for cell in cells:
        if cell.cell_type != "code":
            continue
        try:
            tree = ast.parse(cell.source)
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                names.add(node.name)
            elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                names.add(node.id)
    return names


def _run_problems(run: Run) -> list[Problem]:
    """Turn one run's record into problems an author can act on."""
    where = str(run.path)
    label = "" if run.kind == "source" else "student version: "
    problems = []
    if run.failure:
        problems.append(
            Problem(where, f"{label}{run.failure}", "run it in JupyterLab to see why", code="crash")
        )
    source = run.source_run
    if run.timed_out and not (source and source.timed_out):
        problems.append(
            Problem(
                where,
                f"{label}did not finish within the per-cell timeout",
                "make the cell faster (smaller data, no loops waiting for input) or split it",
                run.timed_out,
                code="timeout",
            )
        )
    if run.kind == "source":
        for cell, output in sorted(run.errors.items())[:1]:
            text = _error_text(output)
            if NETWORK_ERRORS.search(text) or NETWORK_ERRORS.search(
                "".join(output.get("traceback", []))
            ):
                problems.append(
                    Problem(
                        where,
                        f"tries to reach the network ({text})",
                        "workbooks run offline: put the data in data/ and read it from there",
                        cell,
                        code="network",
                    )
                )
            else:
                problems.append(
                    Problem(
                        where,
                        f"raises {text}",
                        "fix the cell so that the notebook runs top to bottom (Kernel > Restart "
                        "and Run All)",
                        cell,
                        code="crash",
                    )
                )
        for cell, text in sorted(run.stderr.items()):
            first = next((line for line in text.splitlines() if line.strip()), "")
            # "/tmp/ipykernel_1/123.py:3: DeprecationWarning: ..." -> "DeprecationWarning: ..."
            first = re.sub(r"^\S+:\d+: (?=\w+: )", "", first)[:200]
            problems.append(
                Problem(
                    where,
                    f"writes a warning: {first}",
                    "fix the cause so that trainees see no warning",
                    cell,
                    severity="warning",
                    code="warning",
                )
            )
    else:
        # Stubs raise NotImplementedError, and code using an answer's names fails until it is
        # written: those are expected. Anything else means the release itself is broken.
        answer_names = _names_defined(c for c in run.source_nb.cells if wb.is_answer(c))
        for cell, output in sorted(run.errors.items()):
            nb_cell = run.nb.cells[cell - 1]
            if wb.is_answer(nb_cell) or wb.is_test(nb_cell) or (source and cell in source.errors):
                continue
            name = re.match(r"name '([^']+)' is not defined", output.get("evalue", ""))
            if output.get("ename") == "NotImplementedError" or (
                output.get("ename") == "NameError" and name and name[1] in answer_names
            ):
                continue
            problems.append(
                Problem(
                    where,
                    f"student version raises {_error_text(output)}, which the source does not",
                    "keep setup code (imports, data) out of answer cells, or put the answer "
                    "between ### BEGIN SOLUTION and ### END SOLUTION so the rest of the cell stays",
                    cell,
                    code="student-crash",
                )
            )
            break
        if not run.timed_out and not run.failure and not (source and source.errors):
            for i, cell in enumerate(run.nb.cells, 1):
                if wb.is_test(cell) and i not in run.errors:
                    problems.append(
                        Problem(
                            where,
                            f"test '{wb.nbgrader(cell).get('grade_id')}' passes on the student "
                            "version "
                            "without an answer: the answer leaks or the test checks nothing",
                            "make the test fail on nbgrader's stub (raise NotImplementedError) and "
                            "keep the answer only between the solution markers",
                            i,
                            code="leaks-solution",
                        )
                    )
    return problems


def plan_runs(
    notebooks: Iterable[tuple[Path, object]], base: str | Path
) -> tuple[list[Run], list[Problem]]:
    """The runs to make: each notebook as source, then as student version if it is graded.

    Each run works in its own folder under ``base`` (:mod:`.workdirs`: the source's holds the
    key answers of widget items). Sources come first so that they start while student versions
    wait for a kernel.
    """
    sources, students, problems = [], [], []
    for path, nb in notebooks:
        source = Run(path, "source", copy.deepcopy(nb), cwd=working_folder(base, path, "source"))
        sources.append(source)
        if not any(wb.is_answer(c) or wb.is_test(c) for c in nb.cells):
            continue
        try:
            student_nb = wb.student_version(nb)
        except wb.WorkbookError as exc:
            problems.append(
                Problem(
                    str(source.path),
                    f"nbgrader cannot make the student version: {exc}",
                    "fix the solution markers",
                    code="leaks-solution",
                )
            )
            continue
        students.append(
            Run(
                source.path,
                "student",
                student_nb,
                source_nb=nb,
                source_run=source,
                cwd=working_folder(base, path, "student"),
            )
        )
    return sources + students, problems


async def execute_all(
    runs: list[Run], options: CheckOptions, ipc_dir: str, fork_server=None
) -> list[Problem]:
    """Run every planned run in its own fresh kernel, ``options.kernels`` at once."""
    limit = asyncio.Semaphore(options.kernels)
    if fork_server is not None:
        # Every kernel waits on this while the template imports (in its own process).
        fork_server.ready = asyncio.ensure_future(fork_server.wait_ready_async())
    await asyncio.gather(
        *(
            _execute(run, options, ipc_dir, index, limit, fork_server)
            for index, run in enumerate(runs)
        )
    )
    return [problem for run in runs for problem in _run_problems(run)]
