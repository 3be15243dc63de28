"""``atelier check``: every way a workbook can fail a cohort, found before a cohort meets it.

Rule: a check is a pipeline of small steps, run in this order and written down here:

1. :data:`NOTEBOOK_CHECKS`, on each notebook as stored (metadata schema, stored outputs, nbgrader
   metadata, solutions and hidden tests only where nbgrader expects them, alt text, local links and
   data files, sizes, untranslated cells). Pure functions: notebook in, problems out.
2. :data:`FOLDER_CHECKS`, on each workbook folder (languages present, translations aligned, folder
   size).
3. :data:`ROOT_CHECKS`, on each workbooks root (the catalogue is up to date).
4. Execution (kernels forked by :mod:`atelier.authoring.forkserver`): every language version runs
top to
   bottom in a fresh kernel twice, as the source with solutions and as the student version nbgrader
   releases; many kernels run at once (one per core), each with a per-cell timeout and no network.
5. Voila: workbooks published as apps are rendered by Voila's own server, and the page must show no
   error.

Every problem reads ``path: cell N: problem — what to do``; :class:`Report` turns them into text or
JSON.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import copy
import logging
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from atelier import forking
from atelier import workbook as wb
from atelier.languages import LANGUAGES
from atelier.workbook import Problem

#: Markers nbgrader uses; a solution or hidden test outside its cell type would leak or break
#: release.
BEGIN_SOLUTION, END_SOLUTION = "### BEGIN SOLUTION", "### END SOLUTION"
BEGIN_HIDDEN, END_HIDDEN = "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS"
#: Markdown images ``![alt](src)``, links ``[text](target)`` and HTML ``<img>`` tags.
MD_IMAGE = re.compile(r"!\[(?P<alt>[^\]]*)\]\((?P<src>[^)\s]+)(?:\s+\"[^\"]*\")?\)")
MD_LINK = re.compile(r"(?<!!)\[[^\]]*\]\((?P<target>[^)\s]+)(?:\s+\"[^\"]*\")?\)")
HTML_IMG = re.compile(r"<img\b[^>]*>", re.IGNORECASE)
HTML_ALT = re.compile(r"\balt\s*=\s*(\"([^\"]*)\"|'([^']*)')", re.IGNORECASE)
HTML_SRC = re.compile(r"\bsrc\s*=\s*(\"([^\"]*)\"|'([^']*)')", re.IGNORECASE)
#: String literals in code that name a file beside the notebook.
DATA_PATH = re.compile(r"[\"'](?:\./)?(?P<path>(?:data|images)/[^\"'\s]+)[\"']")
#: Marker ``atelier translate`` puts at the top of prose that still needs translating.
TRANSLATE_MARKER = "<!-- TRANSLATE"
#: Error text that means a cell tried the network, which the check denies.
NETWORK_ERRORS = re.compile(
    r"Network is unreachable|Temporary failure in name resolution|Name or service not known|"
    r"gaierror|Errno 101|Errno -3|Errno -2|NewConnectionError|URLError",
)


@dataclass
class CheckOptions:
    """Limits and switches of one check run (defaults from the ``workbooks`` settings section)."""

    cell_timeout: float = 30.0
    workers: int = 0
    max_notebook_bytes: int = 1_000_000
    max_file_bytes: int = 5_000_000
    max_folder_bytes: int = 20_000_000
    execute: bool = True
    voila: bool = True
    voila_timeout: float = 90.0
    fork: bool = True

    @property
    def kernels(self) -> int:
        """How many kernels run at once: the given number, or two per core.

        A kernel spends much of a run waiting for the check to read its messages and send the
        next cell; two per core keep the cores busy through those waits (on 2 shared cores
        the check took 18-20 s with 4 kernels against 25-34 s with 2, the same CPU seconds).
        """
        return self.workers or 2 * (os.cpu_count() or 1)


@dataclass
class Report:
    """What a check found, in the order an author fixes things."""

    problems: list[Problem] = field(default_factory=list)
    notebooks: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def errors(self) -> list[Problem]:
        """Problems that fail the check."""
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[Problem]:
        """Problems that are reported but do not fail the check."""
        return [p for p in self.problems if p.severity != "error"]

    def sort(self) -> None:
        """Order problems by file, then cell."""
        self.problems.sort(key=lambda p: (p.path, p.cell or 0, p.severity != "error"))

    def as_dict(self) -> dict:
        """The report as JSON-ready data."""
        return {
            "ok": not self.errors,
            "errors": len(self.errors),
            "warnings": len(self.warnings),
            "seconds": round(self.seconds, 2),
            "notebooks": self.notebooks,
            "problems": [p.as_dict() for p in self.problems],
        }

    def lines(self) -> list[str]:
        """One line per problem, then a summary line."""
        out = [str(p) for p in self.problems]
        out.append(
            f"{len(self.notebooks)} notebook(s) checked in {self.seconds:.1f} s: "
            f"{len(self.errors)} error(s), {len(self.warnings)} warning(s)"
        )
        return out


# --------------------------------------------------------------------------------- notebook checks


def check_metadata(nb, path: Path, options: CheckOptions) -> list[Problem]:
    """The front matter follows the schema, names real ICT CFT cells and a 45–90 minute plan."""
    return wb.metadata_problems(nb, path)


def check_stored_outputs(nb, path: Path, options: CheckOptions) -> list[Problem]:
    """Notebooks are committed without outputs, execution counts or widget state."""
    problems = []
    for i, cell in enumerate(nb.cells, 1):
        if cell.cell_type == "code" and (cell.get("outputs") or cell.get("execution_count")):
            problems.append(
                Problem(
                    str(path),
                    "has stored outputs",
                    "clear outputs before committing (JupyterLab: Edit > Clear Outputs of All "
                    "Cells, then save)",
                    cell=i,
                    code="stored-output",
                )
            )
    if "widgets" in nb.metadata:
        problems.append(
            Problem(
                str(path),
                "stores widget state (metadata.widgets)",
                "save without widget state (JupyterLab: Settings > Save Widget State "
                "Automatically off) or delete metadata.widgets",
                code="stored-output",
            )
        )
    return problems


def check_nbgrader(nb, path: Path, options: CheckOptions) -> list[Problem]:
    """Grade ids unique, points given, tests after answers, markers only where they belong."""
    problems = []
    where = str(path)
    seen: dict[str, int] = {}
    last_answer_kind = None  # "code" or "markdown" of the nearest answer cell above
    for i, cell in enumerate(nb.cells, 1):
        meta = wb.nbgrader(cell)
        source = cell.source
        if meta:
            grade_id = meta.get("grade_id")
            if not grade_id:
                problems.append(
                    Problem(
                        where,
                        "nbgrader cell has no grade_id",
                        "give it a unique grade_id",
                        i,
                        code="nbgrader",
                    )
                )
            elif grade_id in seen:
                problems.append(
                    Problem(
                        where,
                        f"grade_id '{grade_id}' is also used by cell {seen[grade_id]}",
                        "give every nbgrader cell its own grade_id",
                        i,
                        code="duplicate-grade-id",
                    )
                )
            else:
                seen[grade_id] = i
            if meta.get("schema_version") != 3:
                problems.append(
                    Problem(
                        where,
                        f"nbgrader schema_version is {meta.get('schema_version')!r}",
                        "use nbgrader 0.9's schema_version 3 (Create Assignment toolbar sets it)",
                        i,
                        code="nbgrader",
                    )
                )
            if meta.get("grade"):
                points = meta.get("points")
                if not isinstance(points, int | float) or isinstance(points, bool) or points <= 0:
                    problems.append(
                        Problem(
                            where,
                            f"graded cell has points {points!r}",
                            "give graded cells a positive number of points",
                            i,
                            code="nbgrader",
                        )
                    )
        if wb.is_answer(cell):
            last_answer_kind = cell.cell_type
        if wb.is_test(cell) and last_answer_kind != "code":
            problems.append(
                Problem(
                    where,
                    "autograded test has no answer cell before it",
                    "put an autograded answer cell (solution, code) above the test",
                    i,
                    code="test-without-answer",
                )
            )
        has_solution = BEGIN_SOLUTION in source or END_SOLUTION in source
        if has_solution and not wb.is_answer(cell):
            problems.append(
                Problem(
                    where,
                    "solution markers in a cell that is not an answer cell: the solution "
                    "would leak",
                    "mark the cell as an answer cell (nbgrader solution) or remove the markers",
                    i,
                    code="leaks-solution",
                )
            )
        if source.count(BEGIN_SOLUTION) != source.count(END_SOLUTION):
            problems.append(
                Problem(
                    where,
                    "unbalanced solution markers",
                    f"close every '{BEGIN_SOLUTION}' with '{END_SOLUTION}'",
                    i,
                    code="leaks-solution",
                )
            )
        if BEGIN_HIDDEN in source or END_HIDDEN in source:
            if not wb.is_test(cell):
                problems.append(
                    Problem(
                        where,
                        "hidden tests in a cell that is not an autograded test: they would "
                        "be shown",
                        "move hidden tests into a locked autograded test cell",
                        i,
                        code="leaks-solution",
                    )
                )
            elif source.count(BEGIN_HIDDEN) != source.count(END_HIDDEN):
                problems.append(
                    Problem(
                        where,
                        "unbalanced hidden-test markers",
                        f"close every '{BEGIN_HIDDEN}' with '{END_HIDDEN}'",
                        i,
                        code="leaks-solution",
                    )
                )
        if wb.is_test(cell) and not meta.get("locked"):
            problems.append(
                Problem(
                    where,
                    "autograded test is not locked",
                    "set nbgrader locked: true so trainees cannot edit the test",
                    i,
                    code="nbgrader",
                )
            )
    return problems


def _local(target: str) -> str | None:
    """The local file a link or image points to, or None for web, mail, anchor and data links."""
    if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*:", target) or target.startswith(("#", "//")):
        return None
    return target.split("#", 1)[0].split("?", 1)[0] or None


def check_images_and_links(nb, path: Path, options: CheckOptions) -> list[Problem]:
    """Images have alt text; local links, images and data files named in code exist."""
    problems = []
    folder = path.parent
    for i, cell in enumerate(nb.cells, 1):
        source = cell.source
        targets: list[str] = []
        if cell.cell_type == "markdown":
            for match in MD_IMAGE.finditer(source):
                if not match["alt"].strip():
                    problems.append(
                        Problem(
                            str(path),
                            f"image '{match['src']}' has no alt text",
                            "describe the image in the brackets: ![what it shows](...)",
                            i,
                            code="alt-text",
                        )
                    )
                targets.append(match["src"])
            for tag in HTML_IMG.findall(source):
                alt = HTML_ALT.search(tag)
                src = HTML_SRC.search(tag)
                src_value = (src.group(2) or src.group(3) or "") if src else ""
                if not alt or not (alt.group(2) or alt.group(3) or "").strip():
                    problems.append(
                        Problem(
                            str(path),
                            f"image '{src_value}' has no alt text",
                            'add alt="what it shows" to the <img> tag',
                            i,
                            code="alt-text",
                        )
                    )
                if src_value:
                    targets.append(src_value)
            targets.extend(m["target"] for m in MD_LINK.finditer(source))
        elif cell.cell_type == "code":
            targets.extend(m["path"] for m in DATA_PATH.finditer(source))
        for target in targets:
            local = _local(target)
            if local and local.startswith("attachment:"):
                continue
            if local and not (folder / local).exists():
                problems.append(
                    Problem(
                        str(path),
                        f"'{local}' does not exist beside the notebook",
                        "add the file (data/ or images/) or fix the path",
                        i,
                        code="missing-file",
                    )
                )
    return problems


def check_notebook_size(nb, path: Path, options: CheckOptions) -> list[Problem]:
    """A notebook stays small enough for a phone on a slow link."""
    size = path.stat().st_size
    if size > options.max_notebook_bytes:
        return [
            Problem(
                str(path),
                f"notebook is {size // 1000} kB (cap {options.max_notebook_bytes // 1000} kB)",
                "move images and data into images/ and data/ files, shrink embedded attachments",
                code="oversize",
            )
        ]
    return []


def check_untranslated(nb, path: Path, options: CheckOptions) -> list[Problem]:
    """Prose ``atelier translate`` copied from the source is still waiting for a translator."""
    return [
        Problem(
            str(path),
            "prose not translated yet (or its source changed)",
            "translate the text, then delete the <!-- TRANSLATE ... --> line",
            i,
            severity="warning",
            code="untranslated",
        )
        for i, cell in enumerate(nb.cells, 1)
        if (cell.cell_type == "markdown" and TRANSLATE_MARKER in cell.source)
        or (cell.cell_type == "code" and cell.source.startswith("# TRANSLATE:"))
    ]


NotebookCheck = Callable[..., list[Problem]]
#: Checks of one stored notebook, cheapest first.
NOTEBOOK_CHECKS: list[NotebookCheck] = [
    check_metadata,
    check_stored_outputs,
    check_nbgrader,
    check_images_and_links,
    check_notebook_size,
    check_untranslated,
]


# ----------------------------------------------------------------------------------- folder checks


def reference_language(versions: dict[str, Path]) -> str:
    """The language other versions are compared with: English when present, else the first."""
    return "en" if "en" in versions else sorted(versions)[0]


def check_languages(folder: Path, notebooks: dict, options: CheckOptions) -> list[Problem]:
    """A workbook folder holds notebooks, ideally in every language."""
    if not notebooks:
        return [
            Problem(
                str(folder),
                "workbook folder holds no <id>.<lang>.ipynb notebook",
                "create one with `atelier new ID --lang en`",
                code="layout",
            )
        ]
    problems = []
    ids = {wb.NOTEBOOK_NAME.match(p.name)["id"] for p in notebooks.values()}
    if len(ids) > 1:
        problems.append(
            Problem(
                str(folder),
                f"notebooks of different workbooks in one folder: {', '.join(sorted(ids))}",
                "keep one workbook per folder",
                code="layout",
            )
        )
    for lang in LANGUAGES:
        if lang not in notebooks:
            problems.append(
                Problem(
                    str(folder),
                    f"no '{lang}' version",
                    f"create it with `atelier translate {sorted(ids)[0]} --to {lang}`",
                    severity="warning",
                    code="layout",
                )
            )
    return problems


def check_alignment(folder: Path, notebooks: dict, options: CheckOptions) -> list[Problem]:
    """Every translation has the reference's code, graded cells, points and shared metadata."""
    if len(notebooks) < 2:
        return []
    ref = reference_language({lang: p for lang, (p, _) in notebooks.items()})
    ref_path, ref_nb = notebooks[ref]
    problems = []
    for lang, (path, nb) in notebooks.items():
        if lang != ref:
            problems.extend(wb.alignment_problems(ref_nb, ref_path, nb, path))
    return problems


def check_folder_size(folder: Path, notebooks: dict, options: CheckOptions) -> list[Problem]:
    """Files and the folder as a whole stay under their caps."""
    problems = []
    total = 0
    for path in sorted(folder.rglob("*")):
        if not path.is_file() or any(
            part.startswith(".") for part in path.relative_to(folder).parts
        ):
            continue
        size = path.stat().st_size
        total += size
        if path.suffix != ".ipynb" and size > options.max_file_bytes:
            problems.append(
                Problem(
                    str(path),
                    f"file is {size // 1000} kB (cap {options.max_file_bytes // 1000} kB)",
                    "compress it, sample the data, or link to it with a cited address",
                    code="oversize",
                )
            )
    if total > options.max_folder_bytes:
        problems.append(
            Problem(
                str(folder),
                f"workbook folder is {total // 1000} kB "
                f"(cap {options.max_folder_bytes // 1000} kB)",
                "shrink images and data: trainees download all of it",
                code="oversize",
            )
        )
    return problems


FOLDER_CHECKS = [check_languages, check_alignment, check_folder_size]


def check_catalogue_fresh(root: Path, options: CheckOptions) -> list[Problem]:
    """The landing notebooks list the workbooks as their metadata says today."""
    from atelier.authoring.catalogue import catalogue_problems

    return catalogue_problems(root)


ROOT_CHECKS = [check_catalogue_fresh]


# ------------------------------------------------------------------------------------------
# execution


def _network_isolation() -> list[str]:
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


def _kernel_env() -> dict[str, str]:
    """The environment of every kernel the check starts (its own and Voila's)."""
    env = dict(os.environ)
    # Belt and braces for libraries that honour proxies: a dead proxy address.
    env.update(
        http_proxy="http://127.0.0.1:9", https_proxy="http://127.0.0.1:9", PYTHONWARNINGS="default"
    )
    env.update(no_proxy="", NO_PROXY="", MPLBACKEND="agg")
    return env


def _kernel_argv(fork_server=None) -> list[str]:
    """How the check starts a kernel (``{connection_file}`` is filled in by jupyter_client).

    Forked from the template when there is one (its stand-in command), else a new ipykernel; both
    inside the empty network namespace.
    """
    if fork_server is not None:
        return fork_server.kernel_cmd("{connection_file}")
    return [
        *_network_isolation(),
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
                for arg in _kernel_argv(self.fork_server)
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
        write_kernelspec(folder, fork_server.socket_path, _kernel_argv(fork_server))
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

    km_class = _kernel_manager_class()
    km = km_class(kernel_name="python3", transport="ipc", ip=os.path.join(ipc_dir, f"k{index}"))
    km.fork_server = fork_server
    env = _kernel_env()
    client = NotebookClient(
        run.nb,
        log=_QUIET,
        km=km,
        timeout=options.cell_timeout,
        allow_errors=True,
        shutdown_kernel="immediate",
        record_timing=False,
        resources={"metadata": {"path": str(run.path.parent)}},
    )
    async with limit:
        if fork_server is not None and not await fork_server.ready:
            km.fork_server = None  # no template: start this kernel the ordinary way, still offline
        if km.fork_server is not None:
            km.kernel_spec_manager = _forked_kernelspecs(ipc_dir, km.fork_server)
        try:
            async with client.async_setup_kernel(
                env=env, cwd=str(run.path.parent), cleanup_kc=True
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


def plan_runs(notebooks: Iterable[tuple[Path, object]]) -> tuple[list[Run], list[Problem]]:
    """The runs to make: each notebook as source, then as student version if it has answers.

    Sources come first so that they start while student versions wait for a kernel.
    """
    sources, students, problems = [], [], []
    for path, nb in notebooks:
        source = Run(path, "source", copy.deepcopy(nb))
        sources.append(source)
        if not any(wb.is_answer(c) for c in nb.cells):
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
        students.append(Run(source.path, "student", student_nb, source_nb=nb, source_run=source))
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


# ----------------------------------------------------------------------------------------------
# voila


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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
                "argv": _kernel_argv(fork_server),
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

    def __init__(self, apps: list[Path], options: CheckOptions, ipc_dir: str, fork_server=None):
        self.apps = apps
        self.options = options
        self.ipc_dir = ipc_dir
        self.fork_server = fork_server
        self.root = Path(os.path.commonpath([str(p.parent.resolve()) for p in apps]))
        self.port = _free_port()
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
        env = dict(_kernel_env(), PYTHONWARNINGS="ignore")
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
                    str(p),
                    f"Voila did not start: {failure}",
                    "check the Voila install",
                    code="voila",
                )
                for p in self.apps
            ]
        results = await asyncio.gather(*(asyncio.to_thread(self._fetch, p) for p in self.apps))
        problems = []
        for path, (status, body) in zip(self.apps, results, strict=True):
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


# ----------------------------------------------------------------------------------------------
# entry


def _run_coroutine(coroutine):
    """Run ``coroutine`` to completion, also when the caller already runs an event loop.

    ``check`` is called from the command line, but also from notebooks and test sessions whose
    thread already runs a loop (asyncio.run refuses that): there it runs in a thread of its own.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def _read(folders: list[Path], report: Report) -> list[tuple[Path, dict, dict]]:
    """Each workbook folder with its notebook files and the notebooks that could be read."""
    workbooks = []
    for folder in folders:
        versions = wb.workbook_notebooks(folder)
        loaded = {}
        for lang, path in versions.items():
            report.notebooks.append(str(path))
            try:
                loaded[lang] = (path, wb.read_notebook(path))
            except wb.WorkbookError as exc:
                report.problems.append(
                    Problem(str(path), str(exc), "repair the JSON", code="unreadable")
                )
        workbooks.append((folder, versions, loaded))
    return workbooks


def _static_checks(workbooks, roots: list[Path], options: CheckOptions) -> list[Problem]:
    """Steps 1-3: every stored notebook, every folder, every workbooks root."""
    problems = []
    for folder, versions, loaded in workbooks:
        for path, nb in loaded.values():
            for step in NOTEBOOK_CHECKS:
                problems.extend(step(nb, path, options))
        for step in FOLDER_CHECKS:
            problems.extend(
                step(folder, loaded if step is not check_languages else versions, options)
            )
    for root in roots:
        for step in ROOT_CHECKS:
            problems.extend(step(root, options))
    return problems


def check(paths: list[str | Path], options: CheckOptions | None = None) -> Report:
    """Check the workbooks at ``paths`` (notebooks, workbook folders or workbooks roots).

    The processes that run code (the kernel template, Voila) start first; the static checks
    and the student versions are made while they warm up, then the kernels run.
    """
    options = options or CheckOptions()
    started = time.monotonic()
    report = Report()
    folders, roots = wb.find_workbooks(paths)
    workbooks = _read(folders, report)
    notebooks = [pair for _, _, loaded in workbooks for pair in loaded.values()]
    to_run = [(p, nb) for p, nb in notebooks if any(c.cell_type == "code" for c in nb.cells)]
    apps = [p for p, nb in notebooks if wb.metadata(nb).get("app") is True]
    if ((options.execute and to_run) or (options.voila and apps)) and not _network_isolation():
        report.problems.append(
            Problem(
                "atelier check",
                "cannot run notebooks without network here (needs root and util-linux unshare)",
                "run the check as root (as CI does) or with --no-execute --no-voila for the "
                "static checks",
                code="isolation",
            )
        )
        options = CheckOptions(**{**options.__dict__, "execute": False, "voila": False})
    to_run = to_run if options.execute else []
    apps = apps if options.voila else []
    with contextlib.ExitStack() as stack:
        ipc_dir, fork_server, voila = "", None, None
        if to_run or apps:
            ipc_dir = stack.enter_context(tempfile.TemporaryDirectory(prefix="atelier-check-"))
            if options.fork:
                from atelier.authoring.forkserver import ForkServer

                fork_server = stack.enter_context(ForkServer(ipc_dir, _network_isolation()))
            if apps:
                voila = stack.enter_context(VoilaRenderer(apps, options, ipc_dir, fork_server))
        report.problems.extend(_static_checks(workbooks, roots, options))
        runs, problems = plan_runs(to_run)
        report.problems.extend(problems)

        async def dynamic() -> list[Problem]:
            jobs = []
            if runs:
                jobs.append(execute_all(runs, options, ipc_dir, fork_server))
            if voila is not None:
                jobs.append(voila.render_all())
            return [p for found in await asyncio.gather(*jobs) for p in found]

        if runs or voila is not None:
            report.problems.extend(_run_coroutine(dynamic()))
    report.sort()
    report.seconds = time.monotonic() - started
    return report
