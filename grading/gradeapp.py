"""``atelier grade``: autograde a whole cohort in parallel, each submission in its own sandbox.

Rule: the verb only wires things together: it resolves the course (``--cohort`` through
:class:`atelier.grading.course.Course`, or any nbgrader course with ``--course-dir``), loads that
course's
nbgrader configuration the way ``nbgrader autograde`` does, starts a pool
(:mod:`atelier.grading.pool`)
and runs :class:`atelier.grading.autograde.SandboxedAutograde`. It shows a progress bar with an
ETA and
ends with a table: graded, failed (with the reason), timed out, skipped as already graded.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
import time
from collections import Counter
from pathlib import Path

from traitlets import Bool, Float, Integer, Unicode

from atelier.app import AtelierApp, base_aliases, base_flags
from atelier.errors import AtelierError
from atelier.grading.sandbox import SandboxLimits, SandboxOptions

aliases = {
    **base_aliases,
    "cohort": "GradeApp.cohort",
    "course-dir": "GradeApp.course_dir",
    "students": "GradeApp.students",
    "dask": "GradeApp.dask_address",
    "workers": "GradeApp.workers",
    "shards": "GradeApp.shards",
    "outcomes-json": "GradeApp.outcomes_json",
    "cell-timeout": "SandboxLimits.cell_timeout",
    "notebook-timeout": "SandboxLimits.notebook_timeout",
    "memory-mb": "SandboxLimits.memory_mb",
}
flags = {
    **base_flags,
    "force": ({"GradeApp": {"force": True}}, "Grade again submissions already graded."),
    "no-sandbox": (
        {"SandboxOptions": {"isolate": False}},
        "Run submissions without account/namespace isolation (limits still apply). "
        "Development only.",
    ),
    "no-progress": ({"GradeApp": {"progress": False}}, "No progress bar (for logs)."),
}


class GradeApp(AtelierApp):
    """Autograde every collected submission of an assignment, in parallel sandboxes."""

    name = "atelier-grade"
    description = __doc__.split("\n\n")[0]
    aliases = aliases
    flags = flags
    examples = """
    atelier grade --cohort spring26 continuity-en
    atelier grade --course-dir /srv/course ps1 --students alice,bob --workers 4
    atelier grade --cohort spring26 continuity-en --dask tcp://10.0.0.5:8786
    """

    cohort = Unicode("", help="Cohort whose course to grade (see `atelier.grading.course`).").tag(
        config=True
    )
    course_dir = Unicode(
        "", help="Any nbgrader course directory to grade instead of a cohort."
    ).tag(config=True)
    students = Unicode("", help="Comma-separated student ids to grade; empty means all.").tag(
        config=True
    )
    dask_address = Unicode(
        "", help="Address of a Dask distributed scheduler (tcp://host:port) to run submissions on."
    ).tag(config=True)
    workers = Integer(0, help="Sandboxes run at once on this machine; 0 means one per core.").tag(
        config=True
    )
    force = Bool(False, help="Grade again submissions the journal records as already graded.").tag(
        config=True
    )
    shards = Integer(
        0,
        help="Grading processes, each running nbgrader's steps for a share of the trainees with "
        "its own sandboxes (gradebook writes are short SQLite WAL transactions). 0: one per core, "
        "at most one per worker; ignored with --dask.",
    ).tag(config=True)
    outcomes_json = Unicode("", help="Also write the outcomes to this JSON file.").tag(config=True)
    progress = Bool(True, help="Show a progress bar with an ETA.").tag(config=True)
    summary_timeout = Float(0.0)

    classes = [SandboxLimits, SandboxOptions]

    def resolve_course_root(self) -> Path:
        """The course directory to grade, from ``--cohort`` or ``--course-dir``."""
        if bool(self.cohort) == bool(self.course_dir):
            raise AtelierError("give exactly one of --cohort C or --course-dir DIR")
        if self.course_dir:
            root = Path(self.course_dir).resolve()
        else:
            from atelier.grading.course import Course

            root = Course.from_settings(self.settings, self.cohort).root
        if not root.is_dir():
            raise AtelierError(f"{root}: no such course directory")
        return root

    def run(self):
        """Grade, then print the table; exit 1 if any submission could not be processed."""
        if not self.extra_args:
            raise AtelierError(
                "give the assignment to grade (W-L) or a workbook id W for all its language "
                "versions, for example: atelier grade --cohort C quiz-en, atelier grade --cohort "
                "C quiz"
            )
        root = self.resolve_course_root()
        self.assignments = expand_assignments(root, self.extra_args)
        umask = contextlib.nullcontext()
        if self.cohort:
            from atelier.grading.course import course_umask

            # Files made in a cohort's course stay writable by its grader group (formgrader).
            umask = course_umask()
        with umask:
            outcomes = self._grade(root)
        if self.outcomes_json:
            Path(self.outcomes_json).write_text(json.dumps([o.__dict__ for o in outcomes]))
        print(format_table(outcomes))
        if any(o.status == "error" for o in outcomes):
            self.exit(1)

    def _grade(self, root: Path):
        return grade_assignments(
            root,
            self.assignments,
            students=[s for s in self.students.split(",") if s.strip()],
            dask_address=self.dask_address,
            workers=self.workers,
            force=self.force,
            progress=self.progress,
            config=self.config,
            extra_hidden=self._hidden_from_settings(),
            shards=self.shards,
        )

    def _hidden_from_settings(self) -> list[str]:
        return [
            str(self.settings.get_path(key))
            for key in ("hub.state_dir", "grading.courses_root", "grading.exchange_root")
            if self.settings.get_path(key)
        ]


def expand_assignments(course_root: Path, specs: list[str]) -> list[str]:
    """The assignments named by ``specs``, in order, without repeats.

    An assignment id stays as is; a workbook id ``W`` stands for every language version ``W-L``
    generated in the course (``source/W-L/``, as :meth:`Course.assignments_of` finds them). A
    name that is neither is passed on as is, so that nbgrader says what is missing.
    """
    from atelier.grading.course import LANGUAGES, assignment_id

    source = Path(course_root) / "source"
    found: list[str] = []
    for spec in specs:
        versions = [assignment_id(spec, lang) for lang in LANGUAGES]
        versions = [a for a in versions if (source / a).is_dir()]
        if (source / spec).is_dir() or not versions:
            versions = [spec]
        found += [a for a in versions if a not in found]
    return found


def grade_assignments(course_root: Path, assignments: list[str], **options):
    """Grade several assignments; return the outcomes of all of them.

    With several grading processes (``shards``) and at least as many assignments, the assignments
    are shared out among the processes (each grades its share one after the other), so that many
    small assignments (one answer set each, say) grade in parallel; otherwise each assignment in
    turn is graded with its trainees shared out. Options are those of :func:`grade`.
    """
    shards = options.get("shards", 1)
    workers = options.get("workers", 0)
    cores = os.cpu_count() or 1
    if shards == 0:
        shards = min(cores, workers or cores)
    if shards > 1 and len(assignments) >= shards and not options.get("dask_address"):
        options = {**options, "shards": shards}
        return _assignments_in_shards(Path(course_root).resolve(), assignments, **options)
    outcomes = []
    for assignment in assignments:
        outcomes += grade(course_root, assignment, **options)
    return outcomes


def grade(
    course_root: Path,
    assignment: str,
    students: list[str] = (),
    dask_address: str = "",
    workers: int = 0,
    force: bool = False,
    progress: bool = False,
    config=None,
    extra_hidden: list[str] = (),
    log_level: int = logging.WARNING,
    shards: int = 1,
):
    """Autograde ``assignment`` in ``course_root``; return one :class:`Outcome` per submission.

    Args:
        course_root: an nbgrader course directory (with its ``nbgrader_config.py``, if any).
        assignment: the assignment id.
        students: only these student ids (default: everyone with a submission).
        dask_address: run on this Dask scheduler instead of local sandboxes.
        workers: local sandboxes at once (0: one per core).
        force: grade again what the journal says is done.
        progress: show a progress bar on stderr.
        config: traitlets config (``SandboxLimits``, ``SandboxOptions``, nbgrader classes).
        extra_hidden: more paths to hide from submissions.
        log_level: nbgrader's log level.
        shards: grading processes sharing the trainees (0: one per core, at most ``workers``).
    """
    cores = os.cpu_count() or 1
    if shards == 0:
        shards = min(cores, workers or cores)
    if shards > 1 and not dask_address:
        return _grade_in_shards(
            Path(course_root).resolve(), assignment, students, workers or cores, force, progress,
            config, extra_hidden, shards,
        )  # fmt: skip
    import warnings

    from nbgrader.apps.autogradeapp import AutogradeApp
    from nbgrader.converters.base import NbGraderException
    from traitlets.config import Config

    from atelier.grading.autograde import SandboxedAutograde
    from atelier.grading.pool import DaskPool, LocalPool

    # nbgrader's own gradebook code triggers SQLAlchemy autoflush warnings that say nothing to
    # users.
    warnings.filterwarnings("ignore", module="nbgrader.api")
    warnings.filterwarnings("ignore", message=".*not in session.*")
    bindir = str(Path(sys.executable).parent)
    if os.environ.get("PATH", "").split(os.pathsep)[0] != bindir:
        os.environ["PATH"] = (
            bindir + os.pathsep + os.environ.get("PATH", "")
        )  # nbgrader runs alembic
    course_root = Path(course_root).resolve()
    nbgrader = AutogradeApp()
    cwd = os.getcwd()
    os.chdir(course_root)  # nbgrader also reads nbgrader_config.py from the working directory
    try:
        nbgrader.initialize(
            [f"--CourseDirectory.root={course_root}", "--log-level=WARN", assignment]
        )
    finally:
        os.chdir(cwd)
    nbgrader.log.setLevel(log_level)
    nbgrader.coursedir.assignment_id = assignment
    merged = Config(nbgrader.config)
    if config is not None:
        merged.merge(config)
    limits = SandboxLimits(config=merged)
    if "cell_timeout" not in merged.get("SandboxLimits", {}):
        # The course's own per-cell timeout for nbgrader (Execute.timeout) applies unless
        # overridden.
        timeout = merged.get("Execute", {}).get("timeout")
        if isinstance(timeout, int | float) and timeout > 0:
            limits.cell_timeout = float(timeout)
    options = SandboxOptions(config=merged)
    hidden = [str(course_root), *extra_hidden]
    db_url = nbgrader.coursedir.db_url
    if db_url.startswith("sqlite:///"):
        hidden.append(db_url[len("sqlite:///") :].split("?")[0])
    exchange_root = merged.get("Exchange", {}).get("root")
    hidden.append(exchange_root if isinstance(exchange_root, str) else "/usr/local/share/nbgrader")

    if dask_address:
        pool = DaskPool(dask_address, limits, options, hidden)
    else:
        pool = LocalPool(workers, limits, options, hidden)
    bar = None
    try:
        converter = SandboxedAutograde(coursedir=nbgrader.coursedir, parent=nbgrader)
        converter.pool = pool
        converter.regrade = force
        if students:
            wanted = set(students)
            original = converter.init_notebooks

            def init_only_wanted():
                original()
                converter.assignments = {
                    path: notebooks
                    for path, notebooks in converter.assignments.items()
                    if converter._parse(path)["student_id"] in wanted
                }

            converter.init_notebooks = init_only_wanted
        if progress:
            from tqdm import tqdm

            def on_start(total):
                nonlocal bar
                bar = tqdm(
                    total=total, unit="trainee", desc=f"grading {assignment}", file=sys.stderr
                )

            def on_progress(outcome):
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix_str(f"{outcome.student}: {outcome.status}", refresh=False)

            converter.on_start = on_start
            converter.on_progress = on_progress
        started = time.monotonic()
        try:
            converter.start()
        except NbGraderException as error:
            raise AtelierError(
                f"nothing to grade for '{assignment}' in {course_root}: {error} "
                "(are submissions in submitted/<student>/<assignment>/ and was the assignment "
                "generated?)"
            ) from None
        finally:
            converter.elapsed = time.monotonic() - started
    finally:
        if bar is not None:
            bar.close()
        pool.close()
    return converter.outcomes


def format_table(outcomes) -> str:
    """The end-of-run table: counts by status, then one line per submission that was not graded."""
    counts = Counter(o.status for o in outcomes)
    order = ["graded", "failed", "timed out", "error", "skipped"]
    lines = ["", "status      trainees", "----------  --------"]
    for status in order:
        if counts.get(status):
            lines.append(f"{status:<10}  {counts[status]:>8}")
    problems = [o for o in outcomes if o.status in ("failed", "timed out", "error")]
    if problems:
        width = max(len(o.student) for o in problems)
        lines += ["", f"{'trainee':<{width}}  {'status':<9}  reason", "-" * (width + 40)]
        for o in sorted(problems, key=lambda o: o.student):
            lines.append(f"{o.student:<{width}}  {o.status:<9}  {o.reason}")
    return "\n".join(lines)


def _grade_in_shards(course_root, assignment, students, workers, force, progress, config,
                     extra_hidden, shards):  # fmt: skip
    """Grade with ``shards`` ``atelier grade`` processes, each taking every n-th trainee."""
    import subprocess
    import tempfile

    from atelier.grading.autograde import Outcome

    found = sorted(p.parent.name for p in (course_root / "submitted").glob(f"*/{assignment}"))
    everyone = [s for s in found if not students or s in set(students)]
    groups = [everyone[i::shards] for i in range(shards) if everyone[i::shards]]
    if len(groups) < 2:
        return grade(course_root, assignment, everyone or students, "", workers, force, progress,
                     config, extra_hidden, shards=1)  # fmt: skip
    _register_students(course_root, everyone)
    settings = _shard_settings(config, extra_hidden)
    journal = course_root / "log" / "grade-journal.jsonl"
    seen = len(journal.read_text("utf-8").splitlines()) if journal.exists() else 0
    with tempfile.TemporaryDirectory(prefix="atelier-grade-") as tmp:
        runs = []
        for index, group in enumerate(groups):
            out = Path(tmp) / f"shard{index}.json"
            command = [sys.executable, "-m", "atelier", "grade", "--course-dir", str(course_root),
                       assignment, f"--students={','.join(group)}", "--shards=1", "--no-progress",
                       f"--workers={max(1, workers // len(groups))}", f"--outcomes-json={out}",
                       *settings, *(["--force"] if force else [])]  # fmt: skip
            process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
            runs.append((process, out, group))
        bar = None
        if progress:
            from tqdm import tqdm

            bar = tqdm(total=len(everyone), unit="trainee", desc=f"grading {assignment}",
                       file=sys.stderr)  # fmt: skip
        try:
            while any(process.poll() is None for process, _, _ in runs):
                time.sleep(0.5)
                if bar is not None and journal.exists():
                    done = len(journal.read_text("utf-8").splitlines()) - seen
                    bar.update(max(0, min(done, bar.total) - bar.n))
        except KeyboardInterrupt:
            for process, _, _ in runs:
                process.terminate()
            raise
        finally:
            if bar is not None:
                bar.update(bar.total - bar.n)
                bar.close()
        outcomes = []
        for process, out, group in runs:
            if out.exists():
                outcomes += [Outcome(**o) for o in json.loads(out.read_text("utf-8"))]
            else:
                reason = f"grading process failed (exit status {process.returncode})"
                outcomes += [Outcome(s, assignment, "error", reason) for s in group]
    return outcomes


def _register_students(course_root: Path, students) -> None:
    """Add the trainees about to be graded to the gradebook, once, before grading processes start.

    Each grading process adds a missing trainee itself (nbgrader checks, then inserts): two
    processes grading one trainee's different assignments would both insert, and one would fail.
    """
    from nbgrader.api import Gradebook
    from nbgrader.coursedir import CourseDirectory
    from traitlets.config import Config
    from traitlets.config.loader import PyFileConfigLoader

    config = Config()
    if (course_root / "nbgrader_config.py").exists():
        config = PyFileConfigLoader("nbgrader_config.py", path=str(course_root)).load_config()
    if not config.get("Autograde", {}).get("create_student", True):
        return  # the course only grades trainees registered by release: nothing to add here
    coursedir = CourseDirectory(config=config)
    coursedir.root = str(course_root)
    with Gradebook(coursedir.db_url, coursedir.course_id) as gradebook:
        known = {student.id for student in gradebook.students}
        for student in sorted(set(students) - known):
            gradebook.add_student(student)


def _shard_settings(config, extra_hidden) -> list[str]:
    """Command-line options giving a shard process the same resolved options as this one."""
    limits, options = SandboxLimits(config=config), SandboxOptions(config=config)
    settings = [f"--SandboxLimits.{k}={v}" for k, v in limits.as_dict().items()]
    if config is None or "cell_timeout" not in config.get("SandboxLimits", {}):
        settings = [a for a in settings if not a.startswith("--SandboxLimits.cell_timeout=")]
    settings.append(f"--SandboxOptions.isolate={options.isolate}")
    settings += [
        f"--SandboxOptions.hidden_paths={p}" for p in [*options.hidden_paths, *extra_hidden]
    ]
    return settings


def _assignments_in_shards(course_root, assignments, *, shards, students=(), workers=0,
                           force=False, progress=False, config=None, extra_hidden=(),
                           **_ignored):  # fmt: skip
    """Grade ``assignments`` with ``shards`` ``atelier grade`` processes, each taking every n-th."""
    import subprocess
    import tempfile

    from atelier.grading.autograde import Outcome

    groups = [assignments[i::shards] for i in range(shards) if assignments[i::shards]]
    submitted = {
        path.parent.name
        for assignment in assignments
        for path in (Path(course_root) / "submitted").glob(f"*/{assignment}")
    }
    _register_students(Path(course_root), [s for s in submitted if not students or s in students])
    settings = _shard_settings(config, extra_hidden)
    workers = workers or os.cpu_count() or 1
    outcomes = []
    with tempfile.TemporaryDirectory(prefix="atelier-grade-") as tmp:
        runs = []
        for index, group in enumerate(groups):
            out = Path(tmp) / f"shard{index}.json"
            command = [sys.executable, "-m", "atelier", "grade", "--course-dir", str(course_root),
                       *group, "--shards=1", "--no-progress",
                       f"--workers={max(1, workers // len(groups))}", f"--outcomes-json={out}",
                       *settings, *(["--force"] if force else []),
                       *([f"--students={','.join(students)}"] if students else [])]  # fmt: skip
            runs.append((subprocess.Popen(command, stdout=subprocess.DEVNULL), out, group))
        try:
            for process, _, _ in runs:
                process.wait()
        except KeyboardInterrupt:
            for process, _, _ in runs:
                process.terminate()
            raise
        for process, out, group in runs:
            if out.exists():
                outcomes += [Outcome(**o) for o in json.loads(out.read_text("utf-8"))]
            else:
                reason = f"grading process failed (exit status {process.returncode})"
                outcomes += [Outcome("(all)", a, "error", reason) for a in group]
    return outcomes
