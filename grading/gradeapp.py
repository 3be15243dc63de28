"""``atelier grade``: autograde a whole cohort in parallel, each submission in its own sandbox.

Rule: the verb only wires things together: it resolves the course (``--cohort`` through
:class:`atelier.grading.course.Course`, or any nbgrader course with ``--course-dir``), loads that
course's nbgrader configuration the way ``nbgrader autograde`` does, starts a pool
(:mod:`atelier.grading.sandbox.pool`) and runs
:class:`atelier.grading.autograde.SandboxedAutograde`. It
shows a progress bar with an ETA and ends with a table: graded, failed (with the reason), timed out,
skipped as already graded.

On one machine the work is shared by grading processes forked from the command once nbgrader is
loaded (one per core by default): each grades its share of the (assignment, trainee) pairs with its
own sandboxes and reports each outcome, as a JSON line, on a pipe to the command.

Run as root on a course another account owns (a cohort's course belongs to its grader account
``<prefix>grader-C``; ``--course-dir`` a folder of another account), a grading process starts its
sandbox slots (which need root) and then gives up root for good, becoming that account
(:func:`become`): nbgrader's own file work in the course (copying ``submitted/`` to
``autograded/``, writing and deleting autograded files, the gradebook) is done with that account's
rights, so a link it planted there can reach only what it could reach itself. The sandbox fork
servers stay root and make each job's folder from the bytes the grading process sends.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import sys
import time
from collections import Counter
from pathlib import Path

from traitlets import Bool, Float, Integer, Unicode
from traitlets.config import Configurable

from atelier.app import AtelierApp, base_aliases, base_flags
from atelier.errors import AtelierError
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
    # nbgrader autograde's own aliases, with nbgrader's meaning (atelier.grading.grade_options).
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
            own_classes=[*type(self).mro(), *self.classes],
            run_as=self.run_as,
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


def grading_account(course_root: Path, cohort_account: str = ""):
    """The account grading processes become (a ``pwd`` entry), or ``None`` to stay as they are.

    Only root changes account. A cohort's course is graded as its grader account
    (``cohort_account``), which owns it and can write all of it; any other course as the owner of
    its folder, unless that is root (a course only root can change is graded as root, as before).
    """
    import pwd

    if os.geteuid() != 0:
        return None
    if cohort_account:
        try:
            return pwd.getpwnam(cohort_account)
        except KeyError:
            pass  # a course made by hand, with no grader account: its folder's owner decides
    owner = os.stat(course_root).st_uid
    if owner == 0:
        return None
    try:
        return pwd.getpwuid(owner)
    except KeyError:
        raise AtelierError(
            f"{course_root} belongs to uid {owner}, which has no account on this machine; "
            "root grades a course only as the account that owns it: chown it to an account"
        ) from None


def become(entry) -> None:
    """Give up root for good in this process: become ``entry``'s account, with its groups.

    Called in a grading process once its sandbox slots are running (their fork servers stay
    root; this process keeps only pipes to them). Real, effective and saved ids all change, so
    there is no way back; the process is kept undumpable, so that the account's other processes
    cannot trace it or open its descriptors.
    """
    import ctypes

    uid, gid = entry.pw_uid, entry.pw_gid
    os.setgroups(os.getgrouplist(entry.pw_name, gid))
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)
    try:
        os.setuid(0)
    except PermissionError:
        pass
    else:
        # Not an AtelierError: nothing may catch this and grade on as root.
        raise RuntimeError(f"could not give up root for {entry.pw_name}")
    ctypes.CDLL(None, use_errno=True).prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE, 0
    os.environ.update({"HOME": entry.pw_dir, "USER": entry.pw_name, "LOGNAME": entry.pw_name})
    os.chdir("/")


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
            (:mod:`atelier.grading.grade_options`), before anything is graded.
        extra_hidden: more paths to hide from submissions.
        log_level: nbgrader's log level.
        shards: grading processes (0: one per core, at most ``workers``).
        own_classes: classes whose options are the caller's, not nbgrader's.
        run_as: the account (a ``pwd`` entry, see :func:`grading_account`) grading processes
            become once their sandboxes run; then grading always happens in forked processes,
            never in this one.
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
    nbgrader_config, submitted = _plan(
        course_root, assignments, students, config, own, log_level, run_as
    )
    options = {
        "dask_address": dask_address,
        "force": force,
        "config": config,
        "nbgrader_config": nbgrader_config,
        "extra_hidden": list(extra_hidden),
        "log_level": log_level,
    }
    pairs = [(a, student) for a in assignments for student in submitted[a]]
    shards = min(shards, len(pairs))
    if run_as is not None and pairs:
        # This process stays root (it reads the outcomes); the grading is done in forks.
        options["run_as"] = run_as
        shards = 1 if dask_address else max(1, shards)
    elif dask_address or shards <= 1:
        units = [(a, list(students)) for a in assignments]
        return _grade_share(course_root, units, workers=workers, progress=progress, **options)
    outcomes = []
    for assignment in assignments:
        if not submitted[assignment]:
            # Nothing to deal out: graded here, so that nbgrader's "nothing to grade" is the
            # message.
            outcomes += _grade_share(
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
    outcomes += _grade_in_forks(course_root, shares, per_process, progress, options)
    return outcomes


def grade(course_root: Path, assignment: str, **options) -> list:
    """Autograde one assignment (see :func:`grade_assignments` for the options)."""
    return grade_assignments(course_root, [assignment], **options)


def _plan(course_root: Path, assignments, students, config, own, log_level, run_as=None):
    """Check the options and prepare the gradebook; return nbgrader's options and the submissions.

    Runs in the command, before any grading process starts: an option that cannot be honoured
    stops the run before anything is graded; the gradebook gets the trainees about to be graded
    and is switched to WAL here, once (grading processes never switch it: see
    :func:`atelier.grading.course.use_wal`). The submissions of each assignment are those nbgrader
    itself would grade (``--student``, ``CourseDirectory.student_id_exclude``, ``--notebook``),
    limited to ``students`` if given. With ``run_as`` the course's folders are listed and its
    gradebook prepared as that account (:func:`_as_account`): root only reads the names it
    reports, never the course (where that account may have planted links).
    """
    from nbgrader.converters.autograde import Autograde

    from atelier.grading import grade_options

    _load_before_fork()
    nbgrader_config = None
    converters = []
    app = None
    for assignment in assignments:
        if nbgrader_config is None:
            bare = _nbgrader_app(course_root, assignment, log_level)
            nbgrader_config = grade_options.check_command_line(
                config, own, Autograde(coursedir=bare.coursedir, parent=bare)
            )
        app = _nbgrader_app(course_root, assignment, log_level, nbgrader_config)
        converter = Autograde(coursedir=app.coursedir, parent=app)
        grade_options.check_execute(
            app.config, nbgrader_config, str(course_root / "nbgrader_config.py")
        )
        grade_options.check_steps(converter)
        converters.append((assignment, converter))
    if app is None:
        return nbgrader_config, {}
    from atelier.grading.autograde import GradeJournal

    # Refused here, once, if its folder is a link (rather than by every grading process).
    GradeJournal(Path(app.coursedir.root) / "log" / "grade-journal.jsonl")
    found = _as_account(run_as, _list_and_prepare, app, converters, sorted(students))
    if not isinstance(found, dict) or any(
        not isinstance(names, list) or not all(isinstance(n, str) for n in names)
        for names in found.values()
    ):
        raise AtelierError(f"as {run_as.pw_name}: an unexpected list of submissions")
    return nbgrader_config, {a: found.get(a, []) for a in assignments}


def _list_and_prepare(app, converters, students) -> dict:
    """The trainees with a submission of each assignment; the gradebook made ready for them.

    A submission folder this process finds but may not list (a link to a folder the account
    grading the course may not read) is counted too, so that its trainee gets an error naming it
    rather than silence.
    """
    import glob

    from nbgrader.converters.base import NbGraderException

    wanted = set(students)
    submitted: dict[str, list[str]] = {}
    for assignment, converter in converters:
        exclude = set(filter(None, converter.coursedir.student_id_exclude.split(",")))
        try:
            converter.init_notebooks()
            paths = {path for path, notebooks in converter.assignments.items() if notebooks}
        except NbGraderException:
            paths = set()  # graded alone, so that nbgrader's message is the one shown
        pattern = converter._format_source(assignment, converter.coursedir.student_id)
        for path in glob.glob(pattern):
            try:
                os.listdir(path)
            except PermissionError:
                paths.add(path)
            except OSError:
                pass
        found = {_student_of(converter, path) for path in paths if os.path.isdir(path)}
        submitted[assignment] = sorted(
            s for s in found if s not in exclude and (not wanted or s in wanted)
        )
    everyone = sorted({s for names in submitted.values() for s in names})
    _prepare_gradebook(app, everyone)
    return submitted


def _as_account(run_as, func, *args):
    """``func(*args)`` as ``run_as`` (a ``pwd`` entry) in a forked child, or here if ``None``.

    The child's result comes back as JSON, its error as its message (text and plain data, never
    an object root would load), at most :data:`ACCOUNT_REPLY_LIMIT` bytes.
    """
    if run_as is None:
        return func(*args)
    sys.stdout.flush()
    sys.stderr.flush()
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:
        status = 1
        try:
            os.close(read_fd)
            become(run_as)
            try:
                reply = {"result": func(*args)}
            except AtelierError as error:
                reply = {"error": str(error) or type(error).__name__}
            except Exception as error:
                reply = {"error": f"{type(error).__name__}: {error}"}
            data = json.dumps(reply).encode("utf-8", "replace")
            if len(data) > ACCOUNT_REPLY_LIMIT:
                data = json.dumps({"error": "its reply was too long"}).encode()
            with os.fdopen(write_fd, "wb") as channel:
                channel.write(data)
            status = 0
        finally:
            os._exit(status)
    os.close(write_fd)
    with os.fdopen(read_fd, "rb") as channel:
        data = channel.read(ACCOUNT_REPLY_LIMIT + 1)
    _, status = os.waitpid(pid, 0)
    try:
        reply = json.loads(data) if len(data) <= ACCOUNT_REPLY_LIMIT else {}
    except ValueError:
        reply = {}
    if status != 0 or not isinstance(reply, dict) or "result" not in reply:
        message = reply.get("error") if isinstance(reply, dict) else None
        raise AtelierError(
            f"as {run_as.pw_name}: {str(message or 'stopped without a result')[:4000]} (listing "
            "the submissions and preparing the gradebook)"
        )
    return reply["result"]


#: The most bytes root reads back from a child working as the course's account.
ACCOUNT_REPLY_LIMIT = 16 << 20


def _student_of(converter, path: str) -> str:
    regexp = converter._format_source("(?P<assignment_id>.*)", "(?P<student_id>.*)", escape=True)
    return re.match(regexp, path).group("student_id")


def _nbgrader_app(course_root: Path, assignment: str, log_level: int, nbgrader_config=None):
    """The ``autograde`` app, configured as ``nbgrader autograde`` configures it.

    ``nbgrader_config`` (the command line's nbgrader options) goes over the course's
    configuration files, as options on nbgrader's own command line do.
    """
    from nbgrader.apps.autogradeapp import AutogradeApp

    bindir = str(Path(sys.executable).parent)
    if os.environ.get("PATH", "").split(os.pathsep)[0] != bindir:
        # nbgrader runs alembic
        os.environ["PATH"] = bindir + os.pathsep + os.environ.get("PATH", "")
    from atelier.grading.course import config_folder, without_foreign_config

    # nbgrader loads the course folder's config too: never one another account can change.
    app = without_foreign_config(AutogradeApp)()
    cwd = os.getcwd()
    # nbgrader reads nbgrader_config.py from the working directory: the course's, or (when another
    # account can change that one, as the grader account can in a cohort's course) root's copy.
    os.chdir(config_folder(course_root))
    try:
        app.initialize([f"--CourseDirectory.root={course_root}", "--log-level=WARN", assignment])
    finally:
        os.chdir(cwd)
    if nbgrader_config:
        app.cli_config.merge(nbgrader_config)
        app.update_config(nbgrader_config)
    app.log.setLevel(log_level)
    app.coursedir.assignment_id = assignment
    return app


def _isolating(app, config) -> bool:
    """Whether sandboxes made with this app's and the command line's options isolate."""
    from traitlets.config import Config

    merged = Config(app.config)
    if config is not None:
        merged.merge(config)
    return SandboxOptions(config=merged).isolate


def _make_pool(app, course_root: Path, workers: int, dask_address: str, config, extra_hidden):
    """The execution pool for a course, with the course's limits and hidden paths."""
    from traitlets.config import Config

    from atelier.grading.sandbox.pool import DaskPool, LocalPool

    merged = Config(app.config)
    if config is not None:
        merged.merge(config)
    limits = SandboxLimits(config=merged)
    if "cell_timeout" not in merged.get("SandboxLimits", {}):
        # nbgrader's per-cell timeout (Execute.timeout, ExecutePreprocessor.timeout; from the
        # course's configuration or the command line) applies unless overridden; None means none.
        from atelier.grading.grade_options import cell_timeout

        limits.cell_timeout = cell_timeout(app.config)
    options = SandboxOptions(config=merged)
    hidden = [str(course_root), *extra_hidden]
    db_url = app.coursedir.db_url
    if db_url.startswith("sqlite:///"):
        hidden.append(db_url[len("sqlite:///") :].split("?")[0])
    exchange_root = merged.get("Exchange", {}).get("root")
    hidden.append(exchange_root if isinstance(exchange_root, str) else "/usr/local/share/nbgrader")
    if dask_address:
        return DaskPool(dask_address, limits, options, hidden)
    return LocalPool(workers, limits, options, hidden)


def _grade_share(course_root: Path, units, *, workers, dask_address, force, progress, config,
                 extra_hidden, log_level, nbgrader_config=None, report=None, run_as=None,
                 errors_as_outcomes=False) -> list:  # fmt: skip
    """Grade ``units`` ((assignment, students) pairs) in turn, with one pool for all of them.

    ``students`` empty means everyone. ``report`` is called with each finished outcome. With
    ``run_as`` (in a forked grading process only) this process becomes that account as soon as
    the pool's sandboxes run, before nbgrader touches the course. With ``errors_as_outcomes``, an
    assignment that cannot be graded makes an error outcome for each of its students instead of
    stopping the others.
    """
    import warnings

    from atelier.grading.autograde import Outcome

    # nbgrader's own gradebook code triggers SQLAlchemy autoflush warnings that say nothing to
    # users.
    warnings.filterwarnings("ignore", module="nbgrader.api")
    warnings.filterwarnings("ignore", message=".*not in session.*")
    outcomes = []
    pool = None
    try:
        for assignment, students in units:
            try:
                app = _nbgrader_app(course_root, assignment, log_level, nbgrader_config)
                if pool is None:
                    # Isolating slots need root to start; without isolation (--no-sandbox) the
                    # code runs as whoever starts the slot: then root is given up first.
                    early = run_as is not None and not _isolating(app, config)
                    if early:
                        become(run_as)
                    pool = _make_pool(app, course_root, workers, dask_address, config, extra_hidden)
                    if run_as is not None and not early:
                        become(run_as)
                outcomes += _grade_assignment(
                    app, assignment, students, pool, force, progress, report, errors_as_outcomes
                )
            except AtelierError as error:
                if not errors_as_outcomes:
                    raise
                outcomes += [Outcome(s, assignment, "error", str(error)[:200]) for s in students]
    finally:
        if pool is not None:
            pool.close()
    return outcomes


def _grade_assignment(app, assignment, students, pool, force, progress, report,
                      planned=False) -> list:  # fmt: skip
    """Run the sandboxed converter on one assignment; return its outcomes.

    ``planned``: ``students`` are those the command found submissions of; any not graded here
    gets an error outcome rather than none.
    """
    from nbgrader.converters.base import NbGraderException

    from atelier.grading.autograde import SandboxedAutograde

    course_root = app.coursedir.root
    converter = SandboxedAutograde(coursedir=app.coursedir, parent=app)
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
    bar = None
    if progress:
        from tqdm import tqdm

        def on_start(total):
            nonlocal bar
            bar = tqdm(total=total, unit="trainee", desc=f"grading {assignment}", file=sys.stderr)

    def on_progress(outcome):
        if bar is not None:
            bar.update(1)
            bar.set_postfix_str(f"{outcome.student}: {outcome.status}", refresh=False)
        if report is not None:
            report(outcome)

    if progress:
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
        if bar is not None:
            bar.close()
    if planned:
        _report_unseen(converter, assignment, students, on_progress)
    return converter.outcomes


def _report_unseen(converter, assignment: str, students, on_progress) -> None:
    """An error for each of ``students`` whose submission this process found no notebook in.

    The command found one: gone since, or a folder the course's account may not read (a link to a
    folder of another account), which it must not grade.
    """
    import pwd

    from atelier.grading.autograde import Outcome

    seen = {outcome.student for outcome in converter.outcomes}
    account = pwd.getpwuid(os.geteuid()).pw_name
    for student in sorted(set(students) - seen):
        folder = converter._format_source(assignment, student)
        folder = os.path.relpath(folder, converter.coursedir.root)
        outcome = Outcome(
            student,
            assignment,
            "error",
            f"{folder}: no notebook found there by {account}, the account grading this course "
            "(removed since, or a link to a folder it may not read?)",
        )
        converter.outcomes.append(outcome)
        on_progress(outcome)


def _load_before_fork() -> None:
    """Import and set up, once, what every grading process needs, so that forks share it."""
    import nbformat
    from nbgrader.apps.autogradeapp import AutogradeApp  # noqa: F401
    from sqlalchemy.orm import configure_mappers

    import atelier.grading.autograde
    import atelier.grading.sandbox.pool  # noqa: F401

    configure_mappers()  # nbgrader's gradebook classes
    nbformat.validate(nbformat.v4.new_notebook())  # compiles nbformat's schema validator


def _grade_in_forks(course_root: Path, shares, workers: int, progress: bool, options) -> list:
    """Grade each share in a process forked from this one; gather outcomes as they come.

    Each process reports its outcomes, one JSON line each, on a pipe. A process that dies leaves
    its unreported submissions as errors (not journaled: the next run grades them).
    """
    import selectors
    import signal
    import traceback

    from atelier.grading.autograde import Outcome

    _load_before_fork()
    sys.stdout.flush()
    sys.stderr.flush()
    children: dict[int, tuple] = {}
    for share in shares:
        read_fd, write_fd = os.pipe()
        pid = os.fork()
        if pid == 0:  # the grading process
            status = 1
            try:
                os.close(read_fd)
                for other_fd, *_ in children.values():
                    os.close(other_fd)
                with open(write_fd, "w", encoding="utf-8") as channel:
                    reported = set()

                    def report(outcome, channel=channel, reported=reported):
                        reported.add(id(outcome))
                        channel.write(json.dumps(outcome.__dict__) + "\n")
                        channel.flush()

                    # One pool for the whole share: once it runs, the process may have given
                    # up root (``run_as``) and could not start another.
                    done = _grade_share(course_root, share, workers=workers, progress=False,
                                        report=report, errors_as_outcomes=True,
                                        **options)  # fmt: skip
                    for outcome in done:  # those not graded now (skipped as already done)
                        if id(outcome) not in reported:
                            report(outcome)
                status = 0
            except BaseException:
                traceback.print_exc()
            finally:
                os._exit(status)
        os.close(write_fd)
        expected = {(a, student) for a, students in share for student in students}
        children[pid] = (read_fd, expected, bytearray())
    bar = None
    if progress:
        from tqdm import tqdm

        total = sum(len(expected) for _, expected, _ in children.values())
        bar = tqdm(total=total, unit="trainee", desc="grading", file=sys.stderr)
    outcomes = []
    selector = selectors.DefaultSelector()
    for pid, (read_fd, _, _) in children.items():
        selector.register(read_fd, selectors.EVENT_READ, pid)
    try:
        while selector.get_map():
            for key, _ in selector.select():
                pid = key.data
                read_fd, expected, buffer = children[pid]
                chunk = os.read(read_fd, 1 << 16)
                buffer += chunk
                *lines, rest = buffer.split(b"\n")
                buffer[:] = rest
                for line in lines:
                    outcome = Outcome(**json.loads(line))
                    expected.discard((outcome.assignment, outcome.student))
                    outcomes.append(outcome)
                    if bar is not None:
                        bar.update(1)
                        bar.set_postfix_str(f"{outcome.student}: {outcome.status}", refresh=False)
                if chunk:
                    continue
                selector.unregister(read_fd)
                os.close(read_fd)
                _, status = os.waitpid(pid, 0)
                code = os.waitstatus_to_exitcode(status)
                if code == 0:
                    continue  # all reported (nbgrader leaves out excluded students, as here)
                reason = f"grading process failed (exit status {code})"
                for assignment, student in sorted(expected):
                    outcomes.append(Outcome(student, assignment, "error", reason))
    except KeyboardInterrupt:
        for pid in children:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGTERM)
        raise
    finally:
        if bar is not None:
            bar.close()
        selector.close()
    return outcomes


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


def _prepare_gradebook(app, students) -> None:
    """Add the trainees about to be graded and switch to WAL, once, before grading processes start.

    Each grading process adds a missing trainee itself (nbgrader checks, then inserts): two
    processes grading one trainee's different assignments would both insert, and one would fail.
    Switching the journal mode needs the database to itself: grading processes doing it at once
    failed with "database is locked".
    """
    from nbgrader.api import Gradebook
    from nbgrader.converters.autograde import Autograde
    from sqlalchemy.engine import make_url

    from atelier.grading.course import ensure_env_on_path, use_wal

    ensure_env_on_path()
    create = Autograde(coursedir=app.coursedir, parent=app).create_student
    with Gradebook(app.coursedir.db_url, app.coursedir.course_id) as gradebook:
        known = {student.id for student in gradebook.students}
        # The course only grades trainees registered by release when create_student is off.
        for student in sorted(set(students) - known) if create else ():
            gradebook.add_student(student)
    url = make_url(app.coursedir.db_url)
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        use_wal(Path(url.database))
