"""``atelier grade``: autograde a whole cohort in parallel, each submission in its own sandbox.

Rule: the verb only wires things together: it resolves the course (``--cohort`` through
:class:`atelier.grading.course.Course`, or any nbgrader course with ``--course-dir``), loads that
course's nbgrader configuration the way ``nbgrader autograde`` does, starts a pool
(:mod:`atelier.grading.sandbox.pool`) and runs
:class:`atelier.grading.autograde.converter.SandboxedAutograde` (the engine is the sub-room
:mod:`atelier.grading.autograde`). It shows a progress bar with an ETA and ends with a table:
graded, failed (with the reason), timed out, skipped as already graded.

On one machine the work is shared by grading processes forked from the command once nbgrader is
loaded (one per core by default): each grades its share of the (assignment, trainee) pairs with its
own sandboxes and reports each outcome, as a JSON line, on a pipe to the command.

Run as root on a course another account owns (a cohort's course belongs to its grader account
``<prefix>grader-C``; ``--course-dir`` a folder of another account), a grading process starts its
sandbox slots (which need root) and then gives up root for good, becoming that account
(:func:`atelier.grading.autograde.account.become`): nbgrader's own file work in the course
(copying ``submitted/`` to ``autograded/``, writing and deleting autograded files, the gradebook)
is done with that account's rights, so a link it planted there can reach only what it could reach
itself. The sandbox fork servers stay root and make each job's folder from the bytes the grading
process sends.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections import Counter
from pathlib import Path

from traitlets import Bool, Float, Integer, Unicode
from traitlets.config import Configurable

from atelier.app import AtelierApp, base_aliases, base_flags
from atelier.errors import AtelierError
from atelier.grading.autograde.account import grading_account
from atelier.grading.autograde.plan import plan
from atelier.grading.autograde.processes import grade_in_forks
from atelier.grading.autograde.share import grade_share
from atelier.grading.sandbox.sandbox import SandboxLimits, SandboxOptions

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
    # nbgrader autograde's own aliases, with nbgrader's meaning
    # (atelier.grading.autograde.grade_options).
    "student": "CourseDirectory.student_id",
    "assignment": "CourseDirectory.assignment_id",
    "notebook": "CourseDirectory.notebook_id",
    "db": "CourseDirectory.db_url",
    "course": "CourseDirectory.course_id",
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
    # nbgrader autograde's own flags, with nbgrader's meaning.
    "f": ({"GradeApp": {"force": True}}, "Same as --force (nbgrader's -f)."),
    "no-execute": (
        {"Execute": {"enabled": False}, "ClearOutput": {"enabled": False}},
        "Don't execute notebooks and clear output when autograding (as nbgrader).",
    ),
    "create": (
        {"Autograde": {"create_student": True}},
        "nbgrader's deprecated --create: trainees missing from the gradebook are added (default).",
    ),
    "debug": ({"Application": {"log_level": "DEBUG"}}, "Log level DEBUG."),
    "quiet": ({"Application": {"log_level": "CRITICAL"}}, "Log level CRITICAL."),
}


class GradeApp(AtelierApp):
    """Autograde every collected submission of an assignment, in parallel sandboxes."""

    name = "atelier grade"
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
        named = self.config.get("CourseDirectory", {}).get("assignment_id")
        if named is not None:
            # nbgrader's --assignment: the same as naming it after the options.
            named = str(named.get_value(Unicode()) if hasattr(named, "get_value") else named)
            if self.extra_args and self.extra_args != [named]:
                raise AtelierError(
                    f"--assignment={named} and {' '.join(self.extra_args)}: name the assignment "
                    "once"
                )
            self.extra_args = [named]
        if not self.extra_args:
            raise AtelierError(
                "give the assignment to grade (W-L) or a workbook id W for all its language "
                "versions, for example: atelier grade --cohort C quiz-en, atelier grade --cohort "
                "C quiz"
            )
        root = self.resolve_course_root()
        self.assignments = expand_assignments(root, self.extra_args)
        self.run_as = grading_account(root, self._cohort_account())
        self._sandbox_settings()
        umask = contextlib.nullcontext()
        if self.cohort:
            from atelier.grading.courses.folders import course_umask

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
            own_classes=[*type(self).mro(), *self.classes],
            run_as=self.run_as,
            variants=self._variants(),
        )

    def _variants(self):
        """The cohort's variant keys, read as root before grading gives root up (None: no cohort).

        A course directory graded without ``--cohort`` has no cohort to derive trainees' seeds
        from: every submission is graded against the default variant.
        """
        if not self.cohort:
            return None
        from atelier.variants import CohortVariants

        return CohortVariants.load(
            self.settings.get_path("hub.state_dir"),
            self.cohort,
            self.settings.get_path("accounts.prefix", "at-"),
        )

    def _cohort_account(self) -> str:
        if not self.cohort:
            return ""
        from atelier.grading.course import Course

        return Course.from_settings(self.settings, self.cohort).grader_account

    def _sandbox_settings(self) -> None:
        """The sandbox's space from ``grading.sandbox_scratch_mb``, unless the command sets it."""
        limits = self.config.SandboxLimits
        if "scratch_mb" not in limits and self.settings.get_path("grading.sandbox_scratch_mb"):
            limits.scratch_mb = self.settings.get_path("grading.sandbox_scratch_mb")

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
    from atelier.grading.course import assignment_id
    from atelier.languages import LANGUAGES

    source = Path(course_root) / "source"
    found: list[str] = []
    for spec in specs:
        versions = [assignment_id(spec, lang) for lang in LANGUAGES]
        versions = [a for a in versions if (source / a).is_dir()]
        if (source / spec).is_dir() or not versions:
            versions = [spec]
        found += [a for a in versions if a not in found]
    return found


def grade_assignments(
    course_root: Path,
    assignments: list[str],
    *,
    students: list[str] = (),
    dask_address: str = "",
    workers: int = 0,
    force: bool = False,
    progress: bool = False,
    config=None,
    extra_hidden: list[str] = (),
    log_level: int = logging.WARNING,
    shards: int = 0,
    own_classes=(),
    run_as=None,
    variants=None,
) -> list:
    """Autograde ``assignments`` in ``course_root``; return one :class:`Outcome` per submission.

    The submissions, every (assignment, trainee) pair, are dealt out in turn to ``shards``
    grading processes forked from this one once nbgrader is loaded (so they share its start-up);
    each runs nbgrader's steps for its share, assignment by assignment, with its own sandboxes.
    With one process (or with Dask, whose workers run the notebooks) the grading runs here.

    Args:
        course_root: an nbgrader course directory (with its ``nbgrader_config.py``, if any).
        assignments: the assignment ids.
        students: only these student ids (default: everyone with a submission).
        dask_address: run on this Dask scheduler instead of local sandboxes.
        workers: local sandboxes at once, in all (0: one per core).
        force: grade again what the journal says is done.
        progress: show a progress bar on stderr.
        config: traitlets config (``SandboxLimits``, ``SandboxOptions``, nbgrader classes), as the
            command line gives it: each nbgrader option is honoured or refused
            (:mod:`atelier.grading.autograde.grade_options`), before anything is graded.
        extra_hidden: more paths to hide from submissions.
        log_level: nbgrader's log level.
        shards: grading processes (0: one per core, at most ``workers``).
        own_classes: classes whose options are the caller's, not nbgrader's.
        run_as: the account (a ``pwd`` entry, see :func:`grading_account`) grading processes
            become once their sandboxes run; then grading always happens in forked processes,
            never in this one.
        variants: the cohort's variant keys (:class:`atelier.variants.CohortVariants`), so each
            submission runs with its trainee's seed; None grades every one with the default.
    """
    from traitlets.config import Config

    if dask_address:
        # Before any work: say at once when the opt-in Dask extra is missing.
        from atelier.grading.sandbox.pool import require_distributed

        require_distributed()
    course_root = Path(course_root).resolve()
    cores = os.cpu_count() or 1
    workers = workers or cores
    if shards == 0:
        shards = min(cores, workers)
    config = Config(config or {})
    own = {
        cls.__name__: cls
        for cls in (GradeApp, *GradeApp.mro(), *GradeApp.classes, *own_classes)
        if isinstance(cls, type) and issubclass(cls, Configurable)
    }
    nbgrader_config, submitted = plan(
        course_root, assignments, students, config, own, log_level, run_as
    )
    options = {
        "dask_address": dask_address,
        "force": force,
        "config": config,
        "nbgrader_config": nbgrader_config,
        "extra_hidden": list(extra_hidden),
        "log_level": log_level,
        "variants": variants,
    }
    pairs = [(a, student) for a in assignments for student in submitted[a]]
    shards = min(shards, len(pairs))
    if run_as is not None and pairs:
        # This process stays root (it reads the outcomes); the grading is done in forks.
        options["run_as"] = run_as
        shards = 1 if dask_address else max(1, shards)
    elif dask_address or shards <= 1:
        units = [(a, list(students)) for a in assignments]
        return grade_share(course_root, units, workers=workers, progress=progress, **options)
    outcomes = []
    for assignment in assignments:
        if not submitted[assignment]:
            # Nothing to deal out: graded here, so that nbgrader's "nothing to grade" is the
            # message.
            outcomes += grade_share(
                course_root,
                [(assignment, list(students))],
                workers=1,
                progress=False,
                **{k: v for k, v in options.items() if k != "run_as"},
            )
    shares = []
    for index in range(shards):
        units: dict[str, list[str]] = {}
        for assignment, student in pairs[index::shards]:
            units.setdefault(assignment, []).append(student)
        shares.append(list(units.items()))
    per_process = max(1, workers // shards)
    outcomes += grade_in_forks(course_root, shares, per_process, progress, options)
    return outcomes


def grade(course_root: Path, assignment: str, **options) -> list:
    """Autograde one assignment (see :func:`grade_assignments` for the options)."""
    return grade_assignments(course_root, [assignment], **options)


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
