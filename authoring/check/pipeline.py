"""``atelier check``: every way a workbook can fail a cohort, found before a cohort meets it.

Rule: a check is a pipeline of small steps, run in this order and written down here:

1. :data:`.static.NOTEBOOK_CHECKS`, on each notebook as stored (metadata schema, stored outputs,
   nbgrader metadata, solutions and hidden tests only where nbgrader expects them, alt text, local
   links and data files, sizes, untranslated cells). Pure functions: notebook in, problems out.
2. :data:`.content.CONTENT_CHECKS`, on each notebook as stored: what it teaches and assesses (no
   graded point needs trainee-written code, graded items tagged with the ICT CFT cells claimed and
   two at the apply level, citations resolve, declared minutes match the prose and exercises,
   French glossary and typography), at the level ``options.content`` sets (error, warn, off);
   then, across each workbook's languages, the same item tags and minutes on the same cells.
3. :data:`.static.FOLDER_CHECKS`, on each workbook folder (languages present, translations aligned,
   folder size).
4. :data:`.static.ROOT_CHECKS`, on each workbooks root (the catalogue is up to date).
5. Execution (:mod:`.kernels`, kernels forked by :mod:`atelier.authoring.forkserver`): every
   language version runs top to bottom in a fresh kernel twice, as the source with solutions and as
   the student version nbgrader releases; many kernels run at once (one per core), each with a
   per-cell timeout and no network.
6. Voila (:mod:`.voila`): workbooks published as apps are rendered by Voila's own server, and the
   page must show no error.

Every problem reads ``path: cell N: problem — what to do``; :class:`Report` turns them into text or
JSON.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from atelier import workbook as wb
from atelier.authoring.check.content import content_folder_problems, content_problems
from atelier.authoring.check.kernels import execute_all, network_isolation, plan_runs
from atelier.authoring.check.options import CheckOptions
from atelier.authoring.check.static import (
    FOLDER_CHECKS,
    NOTEBOOK_CHECKS,
    ROOT_CHECKS,
    check_languages,
)
from atelier.authoring.check.voila import VoilaRenderer
from atelier.authoring.check.workdirs import working_folder
from atelier.workbook import Problem


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
    """Steps 1-4: every stored notebook, every folder, every workbooks root."""
    problems = []
    for folder, versions, loaded in workbooks:
        for path, nb in loaded.values():
            for step in NOTEBOOK_CHECKS:
                problems.extend(step(nb, path, options))
            problems.extend(content_problems(nb, path, options))
        problems.extend(content_folder_problems(loaded, options))
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
    if ((options.execute and to_run) or (options.voila and apps)) and not network_isolation():
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

                fork_server = stack.enter_context(ForkServer(ipc_dir, network_isolation()))
            if apps:
                # Rendered from the source runs' working folders, with widgets' key answers.
                copies = {
                    working_folder(ipc_dir, path, "source") / path.name: path for path in apps
                }
                voila = stack.enter_context(
                    VoilaRenderer(list(copies), options, ipc_dir, fork_server, copies)
                )
        report.problems.extend(_static_checks(workbooks, roots, options))
        runs, problems = plan_runs(to_run, ipc_dir)
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
