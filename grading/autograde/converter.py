"""nbgrader's own ``Autograde`` converter, with execution moved into parallel sandboxes.

Rule: everything nbgrader's ``Autograde`` converter does is done by nbgrader's own code, in the
grader's process, in nbgrader's order: sanitize (``ClearOutput``, ``DeduplicateIds``,
``OverwriteKernelspec``, ``OverwriteCells`` restoring locked and test cells from the gradebook,
``CheckCellMetadata``), then autograde (``IgnorePattern``, ``ClearMetadataPreprocessor``,
``LimitOutput``, ``SaveAutoGrades``, ``AssignLatePenalties``, ``CheckCellMetadata``). Only
nbgrader's ``Execute`` step is replaced, by
:class:`~atelier.grading.autograde.preprocessor.ApplySandboxRun`, which takes the outputs of a
run made in a sandbox (:mod:`atelier.grading.sandbox.sandbox`) from a pool
(:mod:`atelier.grading.sandbox.pool`), failing closed (:mod:`atelier.grading.autograde.records`).
So the gradebook is written only by the grader, one submission at a time, after that submission's
code has stopped.

Order of work: submissions are sanitized and sent to the pool one by one; finished runs are written
back as they come. The journal (:mod:`atelier.grading.autograde.journal`) makes runs resumable.
With a notebook filter (``CourseDirectory.notebook_id``) only the chosen notebooks' files are
deleted and regraded.

A notebook whose kernel is not Python is refused (an error for that submission naming the file):
the sandbox runs Python only.
"""

from __future__ import annotations

import contextlib
import os
import re
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from nbformat.notebooknode import NotebookNode
from nbgrader import utils
from nbgrader.converters.autograde import Autograde
from nbgrader.preprocessors import Execute
from nbgrader.utils import find_all_files, rmtree
from traitlets import Any as AnyTrait
from traitlets import Bool, List

from atelier.grading.autograde.journal import GradeJournal, file_digest, submission_digest
from atelier.grading.autograde.outcome import Outcome
from atelier.grading.autograde.preprocessor import ApplySandboxRun
from atelier.grading.autograde.records import cells_to_run
from atelier.upstream import nbconvert as upstream_nbconvert
from atelier.upstream.nbgrader import fast_gradebook

#: Files next to a notebook larger than this are not copied into the sandbox.
MAX_SIDE_FILE_BYTES = 50 * 1024 * 1024


class KernelRefused(Exception):
    """A notebook's kernel is not Python: the submission is an error, never run as Python."""


@dataclass
class _Pending:
    assignment_dir: str
    student: str
    assignment: str
    notebooks: list[str]
    digest: str
    futures: dict = field(default_factory=dict)
    #: Every notebook the filter matched, including those nbgrader then skips.
    all_notebooks: list[str] = field(default_factory=list)
    outcome: Outcome | None = None
    #: The sanitized notebooks, by the path nbgrader wrote them to, parsed once.
    sanitized: dict = field(default_factory=dict)


class SandboxedAutograde(Autograde):
    """nbgrader's ``Autograde`` converter, with submissions run in parallel in sandboxes.

    Set :attr:`pool` (an :class:`~atelier.grading.sandbox.pool.ExecutionPool`) before
    :meth:`start`; read
    :attr:`outcomes` after it. ``on_progress`` is called with each finished :class:`Outcome`.
    """

    pool = AnyTrait(None, help="The execution pool submissions are run in.")
    variants = AnyTrait(
        None,
        allow_none=True,
        help="The cohort's variant keys (atelier.variants.CohortVariants): each submission runs "
        "with its trainee's seed. None: every submission gets the default variant.",
    )
    on_progress = AnyTrait(None, allow_none=True, help="Called with each finished Outcome.")
    on_start = AnyTrait(
        None, allow_none=True, help="Called with the number of submissions to grade."
    )
    regrade = Bool(
        False, help="Grade again submissions the journal records as already graded."
    ).tag(config=True)
    outcomes = List()

    def start(self) -> None:
        """Run nbgrader's converter, validating each notebook once after all steps."""
        from traitlets.config import Config

        # nbconvert's own option: the same validation (an invalid notebook still fails its
        # trainee), once per notebook instead of once per step.
        config = Config()
        config.Exporter.optimistic_validation = True
        self.update_config(config)
        super().start()

    def _init_preprocessors(self) -> None:
        # Each phase's steps are made once per run rather than once per submission: every
        # nbgrader step resets its state in ``preprocess``.
        phase = "sanitize" if self._sanitizing else "autograde"
        made = getattr(self, "_phase_steps", None)
        if made is None:
            made = self._phase_steps = {}
        if phase not in made:
            made[phase] = self._make_steps()
        upstream_nbconvert.set_preprocessors(self.exporter, made[phase])

    def _make_steps(self) -> list:
        upstream_nbconvert.set_preprocessors(self.exporter, [])
        if self._sanitizing:
            steps = list(self.sanitize_preprocessors)
        else:
            # Execution is the only step replaced: the sandboxed run takes its place.
            from traitlets.utils.importstring import import_item

            execute_enabled = Execute(parent=self).enabled
            steps = [
                import_item(step) if isinstance(step, str) else step
                for step in self.autograde_preprocessors
            ]
            steps = [
                (ApplySandboxRun if execute_enabled else None) if step is Execute else step
                for step in steps
            ]
            steps = [step for step in steps if step is not None]
        for step in steps:
            self.exporter.register_preprocessor(step)
        return upstream_nbconvert.preprocessors(self.exporter)

    def init_single_notebook_resources(self, notebook_filename):
        """Nbgrader's resources, plus this notebook's sandboxed run during the autograde phase."""
        resources = super().init_single_notebook_resources(notebook_filename)
        if not self._sanitizing:
            key = (resources["nbgrader"]["student"], resources["nbgrader"]["notebook"])
            resources["atelier"] = {"execution": self._executions.get(key)}
        return resources

    def write_single_notebook(self, output, resources):
        """Write as nbgrader does, and keep the run summary for the report."""
        super().write_single_notebook(output, resources)
        self._last_written = output
        summary = resources.get("atelier", {}).get("summary")
        if summary is not None:
            self._summaries.append(summary)

    # -- the run -----------------------------------------------------------------------------
    @property
    def journal(self) -> GradeJournal:
        """The course's grading journal."""
        if getattr(self, "_journal", None) is None:
            self._journal = GradeJournal(Path(self.coursedir.root) / "log" / "grade-journal.jsonl")
        return self._journal

    def _parse(self, assignment_dir: str) -> dict:
        regexp = self._format_source("(?P<assignment_id>.*)", "(?P<student_id>.*)", escape=True)
        match = re.match(regexp, assignment_dir)
        if match is None:
            raise RuntimeError(f"could not match '{assignment_dir}' with '{regexp}'")
        return match.groupdict()

    def _handle_failure(self, student: str, assignment: str) -> None:
        self._remove_outputs(student, assignment)

    def _remove_outputs(self, student: str, assignment: str) -> None:
        """Delete what this run regrades, as nbgrader does, and nothing else.

        That is the submission's autograded folder, or with a notebook filter only the chosen
        notebooks' autograded copies.
        """
        dest = os.path.normpath(self._format_dest(assignment, student))
        if self.coursedir.notebook_id == "*":
            if os.path.exists(dest):
                rmtree(dest)
            return
        for notebook in self.notebooks:
            path = os.path.join(dest, os.path.basename(notebook))
            if os.path.lexists(path):
                os.remove(path)

    def _refuse_other_kernels(self, nb: NotebookNode, notebook_filename: str) -> None:
        """Refuse a notebook whose kernel is not Python: the sandbox would run it as Python."""
        spec = nb.metadata.get("kernelspec") or {}
        if not isinstance(spec, dict):
            spec = {}
        name, language = str(spec.get("name") or ""), str(spec.get("language") or "")
        python = language.lower() == "python" if language else name.lower().startswith("python")
        if not spec or python:
            return
        if getattr(self, "_kernel_forced", None) is None:
            # --Execute.kernel_name=python3 asks nbgrader to run every notebook as Python.
            self._kernel_forced = bool(Execute(parent=self).kernel_name)
        if self._kernel_forced:
            return
        where = os.path.relpath(notebook_filename, self.coursedir.root)
        raise KernelRefused(
            f"{where}: its kernel is '{name}' ({language or 'language not given'}), not Python; "
            "atelier grade runs Python notebooks only (grade it with nbgrader autograde)"
        )

    def convert_notebooks(self) -> None:
        """Grade every matched submission: sanitize, send to the pool, write back results."""
        self._executions: dict[tuple[str, str], dict] = {}
        self._summaries: list[dict] = []
        self.outcomes = []
        pending: list[_Pending] = []
        for assignment_dir in sorted(self.assignments):
            gd = self._parse(assignment_dir)
            student, assignment = gd["student_id"], gd["assignment_id"]
            if (
                self.coursedir.student_id_exclude
                and student in self.coursedir.student_id_exclude.split(",")
            ):
                continue
            source = Path(
                self.coursedir.format_path(self.coursedir.source_directory, ".", assignment)
            )
            try:
                digest = submission_digest(Path(assignment_dir), source)
            except OSError as error:
                outcome = Outcome(student, assignment, "error", self._describe(error))
                self.outcomes.append(outcome)
                if self.on_progress:
                    self.on_progress(outcome)
                continue
            dest = self._format_dest(assignment, student)
            wanted = [Path(n).stem for n in self.assignments[assignment_dir]]
            entry = self.journal.done(student, assignment, digest, wanted, dest)
            if entry and not (self.regrade or self.force):
                self.outcomes.append(
                    Outcome(student, assignment, "skipped", f"already {entry['status']}")
                )
                continue
            pending.append(
                _Pending(
                    assignment_dir,
                    student,
                    assignment,
                    sorted(self.assignments[assignment_dir]),
                    digest,
                    all_notebooks=sorted(self.assignments[assignment_dir]),
                )
            )
        if self.on_start:
            self.on_start(len(pending))
        self._sanitized: dict = {}
        read_file = self.exporter.from_file

        def from_file(file_stream, resources=None, **kw):
            # A notebook this run sanitized is taken as parsed; any other file is read as usual.
            nb = self._sanitized.pop(os.path.abspath(getattr(file_stream, "name", "")), None)
            if nb is None:
                return read_file(file_stream, resources=resources, **kw)
            return self.exporter.from_notebook_node(nb, resources=resources, **kw)

        self.exporter.from_file = from_file
        with fast_gradebook():
            self._grade(pending)

    def _grade(self, pending: list[_Pending]) -> None:
        in_flight: dict = {}
        for item in pending:
            try:
                self._prepare(item)
            except Exception as error:
                self._fail(item, error)
                continue
            for future in item.futures.values():
                in_flight[future] = item
            self._write_back_finished(in_flight, block=False)
        self._write_back_finished(in_flight, block=True)

    def _prepare(self, item: _Pending) -> None:
        """Sanitize one submission with nbgrader's steps and send its notebooks to the pool."""
        self.notebooks = item.notebooks
        dest = self._format_dest(item.assignment, item.student)
        # Recorded first: from here on, until its "done" line, this submission is not graded.
        self.journal.start(item.student, item.assignment, [Path(n).stem for n in item.notebooks])
        self._remove_outputs(item.student, item.assignment)
        self.coursedir.student_id = item.student
        self.run_pre_convert_hook()
        self.init_assignment(item.assignment, item.student)
        item.notebooks = list(self.notebooks)
        side_files: dict[str, bytes] = {}
        for filename in find_all_files(dest, [*self.coursedir.ignore, "*.ipynb"]):
            if os.path.getsize(filename) <= MAX_SIDE_FILE_BYTES:
                with open(filename, "rb") as handle:
                    side_files[os.path.relpath(filename, dest)] = handle.read()
        self._sanitizing = True
        self._init_preprocessors()
        for notebook_filename in item.notebooks:
            super(Autograde, self).convert_single_notebook(notebook_filename)
            # What nbgrader just wrote (validated by it): the autograde phase reads this copy
            # instead of parsing and validating the file again.
            nb = nbformat.convert(nbformat.reader.reads(self._last_written), 4)
            self._refuse_other_kernels(nb, notebook_filename)
            built = os.path.abspath(os.path.join(dest, os.path.basename(notebook_filename)))
            item.sanitized[built] = nb
            notebook_id = os.path.splitext(os.path.basename(notebook_filename))[0]
            # The trainee's variant seed, computed here from the cohort's key and the student id:
            # never read from anything the trainee submitted.
            seed = self.variants.seed_of_student(item.student) if self.variants else ""
            item.futures[notebook_id] = self.pool.submit(cells_to_run(nb), side_files, seed)

    def _write_back_finished(self, in_flight: dict, block: bool) -> None:
        for future in self.pool.finished(list(in_flight), block=block):
            item = in_flight.pop(future)
            if any(f in in_flight for f in item.futures.values()):
                continue
            try:
                self._write_back(item)
            except Exception as error:
                self._fail(item, error)

    def _write_back(self, item: _Pending) -> None:
        """Run nbgrader's autograde steps on one submission's runs; write the gradebook."""
        self.notebooks = item.notebooks
        self.coursedir.student_id = item.student
        self._summaries = []
        elapsed = cpu = 0.0
        for notebook_id, future in item.futures.items():
            execution = self.pool.result(future)
            elapsed += execution.get("elapsed", 0.0)
            cpu += execution.get("cpu", 0.0)
            self._executions[(item.student, notebook_id)] = execution
        self._sanitizing = False
        self._init_preprocessors()
        self._sanitized = item.sanitized
        try:
            with utils.setenv(NBGRADER_EXECUTION="autograde"):
                for notebook_filename in item.notebooks:
                    built = os.path.join(
                        self._format_dest(item.assignment, item.student),
                        os.path.basename(notebook_filename),
                    )
                    super(Autograde, self).convert_single_notebook(built)
        finally:
            self._sanitizing = True
            self._sanitized = item.sanitized = {}
            for notebook_id in item.futures:
                self._executions.pop((item.student, notebook_id), None)
        self.set_permissions(item.assignment, item.student)
        self.run_post_convert_hook()
        outcome = Outcome(
            item.student, item.assignment, seconds=round(elapsed, 2), cpu=round(cpu, 3)
        )
        outcome.notebooks = [Path(n).stem for n in item.notebooks]
        reasons = [s["reason"] for s in self._summaries if s["reason"]]
        if any(s["timeouts"] for s in self._summaries) or any("time limit" in r for r in reasons):
            outcome.status = "timed out"
            outcome.reason = reasons[0] if reasons else "a cell ran past its time limit"
        elif reasons:
            outcome.status = "failed"
            outcome.reason = reasons[0]
        self._finish(item, outcome)

    def _fail(self, item: _Pending, error: Exception) -> None:
        import shutil

        # A refused kernel or a file this account may not use is said in one line; anything else
        # comes with its traceback.
        said = isinstance(error, (KernelRefused, OSError, shutil.Error))
        self.log.error(
            "Autograding %s for %s failed:\n%s",
            item.assignment,
            item.student,
            self._describe(error) if said else traceback.format_exc(),
        )
        self.notebooks = item.notebooks
        with contextlib.suppress(OSError):  # what stopped it may stop this too
            self._handle_failure(item.student, item.assignment)
        message = self._describe(error)
        # Not journaled: a submission that could not be processed is tried again by the next run.
        outcome = Outcome(item.student, item.assignment, "error", message[:200])
        self._finish(item, outcome, journal=False)

    def _record_attempt(self, item: _Pending, dest: str) -> None:
        """Add this graded attempt's item scores to the course's attempts log (item analysis).

        The gradebook keeps only the latest submission; the log keeps each attempt, so the item
        report can count first attempts. A failure here is logged, never a grading failure.
        """
        from nbgrader.api import Gradebook

        from atelier.grading.courses.folders import append_record
        from atelier.grading.itemanalysis import ATTEMPTS_LOG, attempt_record

        try:
            with Gradebook(self.coursedir.db_url, self.coursedir.course_id) as gb:
                seed = self.variants.seed_of_student(item.student) if self.variants else ""
                record = attempt_record(gb, Path(dest), item.student, item.assignment, seed)
            if record is not None:
                append_record(Path(self.coursedir.root) / "log" / ATTEMPTS_LOG, record)
        except Exception as error:  # the grades are written: the report only misses this one
            self.log.warning(
                "item analysis: the attempt of %s at %s was not recorded: %s",
                item.student, item.assignment, error,
            )  # fmt: skip

    def _describe(self, error: Exception) -> str:
        """One line for the report: a file this process may not read or write is named."""
        import pwd
        import shutil

        where = None
        if isinstance(error, shutil.Error) and error.args and isinstance(error.args[0], list):
            first = error.args[0][0] if error.args[0] else None
            where, why = (first[0], str(first[2])) if first else (None, str(error))
        elif isinstance(error, OSError) and error.filename:
            where, why = error.filename, error.strerror or str(error)
        if where is None or not isinstance(error, (OSError, shutil.Error)):
            text = str(error).strip()
            return (text.splitlines()[0] if text else type(error).__name__)[:200]
        where = os.path.relpath(str(where), self.coursedir.root)
        if "Permission denied" in why or "Operation not permitted" in why:
            account = pwd.getpwuid(os.geteuid()).pw_name
            why = (
                f"permission denied to {account}, the account grading this course (a link to "
                "something it may not use?)"
            )
        return f"{where}: {why}"[:300]

    def _finish(self, item: _Pending, outcome: Outcome, journal: bool = True) -> None:
        if journal:
            dest = self._format_dest(item.assignment, item.student)
            outputs = {
                Path(n).stem: file_digest(os.path.join(dest, os.path.basename(n)))
                for n in item.notebooks
            }
            # Matched by the filter but not in the gradebook (nbgrader skips those): nothing to
            # write, nothing to check next time.
            for notebook in item.all_notebooks:
                outputs.setdefault(Path(notebook).stem, None)
            self.journal.record(outcome, item.digest, outputs)
            self._record_attempt(item, dest)
        self.outcomes.append(outcome)
        if self.on_progress:
            self.on_progress(outcome)
