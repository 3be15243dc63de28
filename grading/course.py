"""The course of a cohort: where its assessment files live, and how nbgrader is configured for it.

Rule: one cohort is one nbgrader course, and every path, account and setting of that course is
derived here from the cohort id and the ``grading`` settings, never typed by hand. Every grading
verb, the formgrader service and the autograde engine build a :class:`Course` and use its paths.

Layout (``C`` is the cohort id, which is also the nbgrader course id)::

    <grading.courses_root>/C/              owner <prefix>grader-C, group <prefix>grader-C, mode 2770
        nbgrader_config.py                 generated from Course.nbgrader_config(); do not edit
        gradebook.db                       nbgrader's SQLite gradebook (WAL journal, busy timeout)
        source/<assignment>/<nb>.ipynb     the graded workbook (with solutions and hidden tests)
        release/<assignment>/<nb>.ipynb    the student version made by nbgrader generate_assignment
        submitted/<student>/<assignment>/  collected (timestamp.txt = server receipt time)
        autograded/<student>/<assignment>/ autograded copies (written by ``atelier grade``)
        feedback/<student>/<assignment>/   generated HTML feedback
        log/receipts.jsonl                 one line per submission seen by collect

    <grading.courses_root>/.config/C/      root:<prefix>grader-C 0750: what root and formgrader load
        nbgrader_config.py                 root:<prefix>grader-C 0640, same content; the grader
                                           account reads it and cannot change it

    <grading.exchange_root>/C/             root:root 0755
        outbound/<assignment>/             owner grader, world-readable: the student version only
        inbound/                           root:root 0711: nobody can list it
        inbound/<student>/                 owner <student>, group <prefix>grader-C, mode 2770
        feedback/                          root:root 0711
        feedback/<student>/<hash>.html     folder: owner grader, group <student's group>, 2750
    <grading.exchange_root>/.jupyter/      trainees' nbgrader config (atelier.grading.hubconfig)

Assignments: a workbook ``W`` in language ``L`` is the assignment ``W-L`` (for example
``continuity-fr``), holding one notebook ``W.L.ipynb``. Each trainee is shown only the assignments
of their language (see :mod:`atelier.grading.exchange.trainee`); scores of ``W-en`` and ``W-fr``
are the
same workbook in the grade export.

Students: the nbgrader student id is the trainee's Unix account name (what ``nbgrader`` itself uses
on the trainee's server), so that ownership on disk and the student id can be compared.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import re
import sqlite3
import stat
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from traitlets.config import Config

from atelier.errors import AtelierError
from atelier.grading import safefs
from atelier.languages import LANGUAGES

#: A cohort id is also a course id, a hub service name and part of a Unix account name.
COHORT_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,29}$")
#: Longest Unix account name (useradd's limit).
MAX_ACCOUNT = 32
#: The folder of ``courses_root`` where root keeps each course's config (cohort ids never start
#: with a dot, so it is never a course).
TRUSTED_CONFIG = ".config"
#: A workbook id, as used in assignment names (``<workbook>-<lang>``).
WORKBOOK_ID = re.compile(r"^[a-z0-9][a-z0-9-]*$")

#: Seconds a writer waits for the SQLite gradebook lock before giving up: two facilitators saving
#: grades at once wait for each other instead of failing with "database is locked".
BUSY_TIMEOUT = 60

#: A Jupyter data folder put first on ``JUPYTER_PATH`` wherever nbgrader renders HTML (formgrader,
#: feedback): its nbconvert templates replace nbconvert's CDN MathJax with the local one.
JUPYTER_DATA = Path(__file__).parent / "jupyter"


class GradingError(AtelierError):
    """A grading step cannot go on: the message names the cohort, workbook or file, and the fix."""


def assignment_id(workbook: str, language: str) -> str:
    """The nbgrader assignment id of ``workbook`` in ``language`` (``W-L``)."""
    return f"{workbook}-{language}"


def notebook_name(workbook: str, language: str) -> str:
    """The file name of the notebook inside assignment ``W-L``: the workbook's own file name."""
    return f"{workbook}.{language}.ipynb"


def split_assignment(assignment: str) -> tuple[str, str]:
    """The (workbook, language) of an assignment id ``W-L``, or a :class:`GradingError`."""
    workbook, _, language = assignment.rpartition("-")
    if not workbook or language not in LANGUAGES:
        raise GradingError(
            f"assignment '{assignment}' is not <workbook>-<language> with a language in {LANGUAGES}"
        )
    return workbook, language


@dataclass(frozen=True)
class Course:
    """The nbgrader course of one cohort: its paths, its grader account and its nbgrader config.

    Build it with :meth:`from_settings`; create its folders with :func:`ensure`.
    """

    cohort: str
    courses_root: Path
    exchange_root: Path
    account_prefix: str = "at-"
    late_policy: str = "flag"
    #: (bytes, files, submissions): the bounds of one trainee's submissions of one assignment.
    submission_limits: tuple[int, int, int] = (20_000_000, 200, 20)
    #: ``database.url``: empty for a SQLite gradebook file, else the PostgreSQL database whose
    #: schema ``gradebook_<cohort>`` holds this gradebook (see :mod:`atelier.database`).
    database_url: str = ""
    #: (``grading.identity``, ``grading.exchange_uid``): what proves who submitted, for collect.
    identity: tuple[str, int] = ("owner", 1000)

    @classmethod
    def from_settings(cls, settings, cohort: str) -> Course:
        """The course of ``cohort`` as the ``grading`` and ``accounts`` settings place it."""
        if not COHORT_ID.match(cohort or ""):
            raise GradingError(
                f"cohort id '{cohort}' must be 1-30 lowercase letters, digits or '-' "
                "(it names the nbgrader course, the formgrader service and the grader account)"
            )
        prefix = settings.get_path("accounts.prefix", "at-")
        if len(f"{prefix}grader-{cohort}") > MAX_ACCOUNT:
            raise GradingError(
                f"cohort id '{cohort}' is too long for its grader account "
                f"'{prefix}grader-{cohort}' (Unix allows {MAX_ACCOUNT} characters): "
                "use a shorter cohort id or accounts.prefix"
            )
        return cls(
            cohort=cohort,
            courses_root=Path(settings.get_path("grading.courses_root", "/srv/atelier/courses")),
            exchange_root=Path(settings.get_path("grading.exchange_root", "/srv/atelier/exchange")),
            account_prefix=prefix,
            late_policy=settings.get_path("grading.late_policy", "flag"),
            submission_limits=(
                settings.get_path("grading.max_submission_bytes", 20_000_000),
                settings.get_path("grading.max_submission_files", 200),
                settings.get_path("grading.max_submissions", 20),
            ),
            database_url=settings.get_path("database.url", "") or "",
            identity=(
                settings.get_path("grading.identity", "owner"),
                settings.get_path("grading.exchange_uid", 1000),
            ),
        )

    # --- identities -------------------------------------------------------------------------
    @property
    def course_id(self) -> str:
        """The nbgrader course id, equal to the cohort id and to the formgrader service name."""
        return self.cohort

    @property
    def grader_account(self) -> str:
        """The Unix account that owns the course and runs formgrader: ``<prefix>grader-<C>``."""
        return f"{self.account_prefix}grader-{self.cohort}"

    @property
    def formgrade_group(self) -> str:
        """The hub group of the people who may open this course's formgrader."""
        return f"formgrade-{self.course_id}"

    @property
    def student_group(self) -> str:
        """The hub group nbgrader's lab extension uses for this course's trainees."""
        return f"nbgrader-{self.course_id}"

    # --- course files -------------------------------------------------------------------------
    @property
    def root(self) -> Path:
        """The course directory (nbgrader's ``CourseDirectory.root``)."""
        return self.courses_root / self.cohort

    @property
    def config_file(self) -> Path:
        """The generated ``nbgrader_config.py`` that formgrader and nbgrader apps read."""
        return self.root / "nbgrader_config.py"

    @property
    def trusted_config_dir(self) -> Path:
        """The folder of the course's config that only root can change (``.config/C``).

        The course folder belongs to the grader account; a config file there is code that
        account wrote. Root (``atelier grade``) and the formgrader service load this copy.
        """
        return self.courses_root / TRUSTED_CONFIG / self.cohort

    @property
    def trusted_config_file(self) -> Path:
        """``nbgrader_config.py`` in :attr:`trusted_config_dir`."""
        return self.trusted_config_dir / "nbgrader_config.py"

    @property
    def gradebook_path(self) -> Path:
        """The SQLite gradebook file."""
        return self.root / "gradebook.db"

    @property
    def db_url(self) -> str:
        """SQLAlchemy URL of the gradebook; ``timeout`` is SQLite's busy timeout in seconds."""
        from atelier.database import gradebook_url

        return gradebook_url(self.database_url, self.cohort, self.gradebook_path, BUSY_TIMEOUT)

    def step_dir(self, step: str) -> Path:
        """``source``, ``release``, ``submitted``, ``autograded`` or ``feedback`` of this course."""
        return self.root / step

    source = property(lambda self: self.step_dir("source"), doc="Graded workbooks.")
    release = property(lambda self: self.step_dir("release"), doc="Student versions.")
    submitted = property(lambda self: self.step_dir("submitted"), doc="Collected submissions.")
    autograded = property(lambda self: self.step_dir("autograded"), doc="Autograded copies.")
    feedback = property(lambda self: self.step_dir("feedback"), doc="Generated feedback.")

    @property
    def log_dir(self) -> Path:
        """Append-only records: ``receipts.jsonl`` (collect)."""
        return self.root / "log"

    @property
    def receipts_log(self) -> Path:
        """One JSON line per submission folder collect saw, kept or rejected, with the reason."""
        return self.log_dir / "receipts.jsonl"

    def assignments_of(self, workbook: str) -> list[str]:
        """The assignments (``<workbook>-<lang>``) of ``workbook`` released to this course."""
        return [
            assignment_id(workbook, lang)
            for lang in LANGUAGES
            if (self.source / assignment_id(workbook, lang)).is_dir()
        ]

    def submission_dir(self, student: str, assignment: str) -> Path:
        """Where the collected submission of ``student`` for ``assignment`` lives."""
        return self.submitted / student / assignment

    # --- exchange -------------------------------------------------------------------------------
    @property
    def exchange(self) -> Path:
        """This course's folder in the exchange (``Exchange.path_includes_course``-style)."""
        return self.exchange_root / self.course_id

    @property
    def outbound(self) -> Path:
        """Released student versions, readable by everyone, writable by root only."""
        return self.exchange / "outbound"

    @property
    def inbound(self) -> Path:
        """Parent of the per-trainee inbound folders; not listable."""
        return self.exchange / "inbound"

    def inbound_of(self, student: str) -> Path:
        """The inbound folder only ``student`` (and the grader group) may use."""
        return self.inbound / student

    @property
    def exchange_feedback(self) -> Path:
        """Parent of the per-trainee feedback folders; not listable."""
        return self.exchange / "feedback"

    def feedback_of(self, student: str) -> Path:
        """The released feedback of ``student``, readable by that trainee only."""
        return self.exchange_feedback / student

    # --- nbgrader -------------------------------------------------------------------------------
    def nbgrader_config(self) -> Config:
        """The nbgrader configuration of this course (formgrader and the grading verbs)."""
        c = Config()
        c.CourseDirectory.root = str(self.root)
        c.CourseDirectory.course_id = self.course_id
        c.CourseDirectory.db_url = self.db_url
        c.Exchange.root = str(self.exchange_root)
        c.Exchange.path_includes_course = True
        # The course's own exchange steps go through Atelier's hardened exchange, so the
        # formgrader buttons (release, collect, release feedback) enforce the same rules as the CLI.
        c.ExchangeFactory.release_assignment = (
            "atelier.grading.exchange.course.AtelierReleaseAssignment"
        )
        c.ExchangeFactory.collect = "atelier.grading.exchange.course.AtelierCollect"
        c.ExchangeFactory.list = "atelier.grading.exchange.course.AtelierCourseList"
        c.ExchangeFactory.release_feedback = (
            "atelier.grading.exchange.course.AtelierReleaseFeedback"
        )
        # Trainee-written HTML is text in formgrader and feedback pages (atelier.grading.sanitize).
        c.HTMLExporter.sanitize_html = True
        c.HTMLExporter.preprocessors = ["atelier.grading.sanitize.SanitizeTraineeMarkdown"]
        # Feedback never shows hidden tests (see atelier.grading.feedback.HideHiddenTests).
        c.GenerateFeedback.preprocessors = [
            "nbgrader.preprocessors.GetGrades",
            "atelier.grading.feedback.HideHiddenTests",
            "nbconvert.preprocessors.CSSHTMLHeaderPreprocessor",
        ]
        max_bytes, max_files, max_submissions = self.submission_limits
        c.AtelierCollect.max_submission_bytes = max_bytes
        c.AtelierCollect.max_submission_files = max_files
        c.AtelierCollect.max_submissions = max_submissions
        c.AtelierCollect.identity, c.AtelierCollect.exchange_uid = self.identity
        # Late policy: "flag" records lateness with no penalty (nbgrader's "none"); "zero" scores a
        # late submission 0. Lateness is computed from timestamp.txt, which collect sets to the
        # server's receipt time.
        c.LateSubmissionPlugin.penalty_method = "zero" if self.late_policy == "zero" else "none"
        return c

    def nbgrader_config_text(self) -> str:
        """The generated ``nbgrader_config.py`` file content."""
        lines = [
            "# Generated by atelier (atelier.grading.course); changes are overwritten.",
            "c = get_config()  # noqa: F821",
        ]
        for section, values in sorted(self.nbgrader_config().items()):
            for key, value in sorted(values.items()):
                lines.append(f"c.{section}.{key} = {value!r}")
        return "\n".join(lines) + "\n"

    @contextmanager
    def gradebook(self) -> Iterator:
        """An open nbgrader :class:`~nbgrader.api.Gradebook` of this course, closed on exit."""
        from nbgrader.api import Gradebook

        ensure_env_on_path()
        gb = Gradebook(self.db_url, course_id=self.course_id)
        try:
            yield gb
        finally:
            gb.close()


def ensure_env_on_path() -> None:
    """Put this Python's ``bin/`` first on PATH: nbgrader runs ``alembic`` by name."""
    import sys

    bindir = str(Path(sys.executable).parent)
    if os.environ.get("PATH", "").split(os.pathsep)[0] != bindir:
        os.environ["PATH"] = bindir + os.pathsep + os.environ.get("PATH", "")


def jupyter_path(current: str | None) -> str:
    """``JUPYTER_PATH`` with :data:`JUPYTER_DATA` first (``current`` kept after it)."""
    from atelier.jupyterpath import prepend

    return prepend(JUPYTER_DATA, current)


def config_folder(course_root: str | os.PathLike) -> Path:
    """The folder whose ``nbgrader_config.py`` this process may load for ``course_root``.

    Loading a config file runs it. A process loads one only when no other account can change it:
    the course folder itself when it and its config belong to this account (or root) and nobody
    else may write them; else, for a cohort's course (the grader account's folder), the copy
    root keeps in ``<courses_root>/.config/C`` (:attr:`Course.trusted_config_dir`). Otherwise a
    :class:`GradingError` says what to do.
    """
    root = Path(course_root)
    config = root / "nbgrader_config.py"
    if _only_ours(root) and (not os.path.lexists(config) or _only_ours(config)):
        return root
    trusted = root.parent / TRUSTED_CONFIG / root.name
    if all(_only_ours(p) for p in (trusted.parent, trusted, trusted / "nbgrader_config.py")):
        return trusted
    raise GradingError(
        f"{config} can be changed by another account than this one, so it is not loaded here. "
        f"For a cohort's course, `atelier release` as root writes the copy root loads ({trusted}); "
        "for another course, run as the account that owns it, or make the folder and its "
        "nbgrader_config.py writable by this account only"
    )


def without_foreign_config(app_class):
    """A subclass of the traitlets ``app_class`` loading no config file others can change.

    nbgrader's apps load ``nbgrader_config.py`` from the course folder whatever the working
    directory (``NbGrader.initialize``); a cohort's course folder is the grader account's, so as
    root that file would be code the grader account wrote. Such a folder is skipped (with a
    warning on the app's log); :func:`config_folder` gives the one to load instead.
    """

    class Guarded(app_class):
        @classmethod
        def _load_config_files(cls, basefilename, path=None, log=None, **kwargs):
            if os.path.isabs(basefilename):
                path, basefilename = [os.path.dirname(basefilename)], os.path.basename(basefilename)
            paths = [path] if isinstance(path, str) or path is None else list(path)
            kept = []
            for folder in paths:
                where = Path(folder or os.getcwd())
                files = [where / f"{basefilename}{ext}" for ext in (".py", ".json")]
                if _only_ours(where) and all(
                    not os.path.lexists(f) or _only_ours(f) for f in files
                ):
                    kept.append(folder)
                elif log is not None and any(os.path.lexists(f) for f in files):
                    log.warning("not loading %s: another account can change it", where)
            if kept:
                yield from super()._load_config_files(basefilename, path=kept, log=log, **kwargs)

    Guarded.__name__ = Guarded.__qualname__ = app_class.__name__
    return Guarded


def _only_ours(path: Path) -> bool:
    """Whether ``path`` (not a link) is this account's or root's and no one else may write it."""
    try:
        st = os.lstat(path)
    except OSError:
        return False
    if stat.S_ISLNK(st.st_mode) or st.st_uid not in (0, os.geteuid()):
        return False
    return not st.st_mode & 0o022


# --- creating a course on disk -----------------------------------------------------------------


def append_record(path: Path, record: dict) -> None:
    """Append one JSON line to a course log (``<course>/log/<name>``) in one ``write`` call.

    The log's folder and the log are the grader account's to change: they are opened from the
    course folder without following links (:mod:`atelier.grading.safefs`), so a link put in place
    of either is refused, never written through.
    """
    line = json.dumps(record, sort_keys=True, ensure_ascii=False) + "\n"
    with safefs.opened_dir(path.parent.parent, [path.parent.name]) as folder:
        safefs.append_at(folder, path.name, line.encode("utf-8"), path)


def check_log(course: Course) -> None:
    """Refuse, before anything is done, a receipts log the grader replaced with a link."""
    with safefs.opened_dir(course.root, ["log"]) as folder:
        safefs.append_at(folder, course.receipts_log.name, b"", course.receipts_log)


def _ensure_dir(path: Path, mode: int, uid: int = -1, gid: int = -1) -> None:
    """Create ``path`` if needed and set its mode and owner (idempotent), following no link.

    ``path``'s parent is opened by path (every folder given here has a parent only root can
    change); ``path`` itself is opened without following a link and changed through that
    descriptor. Only root sets owners; another account (the grader, running formgrader) leaves
    folders it does not own as they are.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    with safefs.opened_dir(path.parent) as parent:
        os.close(safefs.ensure_dir_at(parent, path.name, mode, path, uid, gid))


def course_owners(course: Course) -> set[int]:
    """Who may own a folder of the course: root, this process and the course's grader account."""
    owners = {0, os.geteuid()}
    with contextlib.suppress(KeyError):  # a course made by hand has no grader account
        owners.add(pwd.getpwnam(course.grader_account).pw_uid)
    return owners


def as_grader(course: Course, func: Callable[..., Any], *args: Any) -> Any:
    """``func(*args)`` run as the course's grader account: in a forked child when root, else here.

    nbgrader's own steps (making student versions, feedback) read and write the course, which is
    the grader's: run as the grader, whatever that account put there (a link, say) can make them
    do only what the grader could do itself. The result, and an error's message, come back as
    JSON (never pickle: root would run what the child sent).
    """
    try:
        entry = pwd.getpwnam(course.grader_account)
    except KeyError:
        entry = None  # a course made by hand with no grader account: root's alone
    if os.geteuid() != 0 or entry is None:
        return func(*args)
    import sys

    uid, gid = entry.pw_uid, entry.pw_gid
    sys.stdout.flush()
    sys.stderr.flush()
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: become the grader, run, report
        status = 1
        try:
            os.close(read_fd)
            os.setgroups([gid])
            os.setgid(gid)
            os.setuid(uid)
            os.chdir(course.root)
            os.environ.update({"HOME": str(course.root), "USER": course.grader_account})
            try:
                outcome = {"value": func(*args)}
            except Exception as error:  # reported to the parent, which raises it as a message
                outcome = {"error": f"{type(error).__name__}: {error}"}
            with os.fdopen(write_fd, "w", encoding="utf-8") as channel:
                channel.write(json.dumps(outcome, default=str))
            status = 0
        finally:
            os._exit(status)
    os.close(write_fd)
    with os.fdopen(read_fd, encoding="utf-8") as channel:
        text = channel.read()
    _, status = os.waitpid(pid, 0)
    try:
        outcome = json.loads(text)
    except ValueError:
        raise GradingError(
            f"a step run as {course.grader_account} stopped without a result "
            f"(exit status {os.waitstatus_to_exitcode(status)}); see the messages above"
        ) from None
    if "error" in outcome:
        raise GradingError(f"as {course.grader_account}: {outcome['error']}")
    return outcome.get("value")


def ensure_grader_account(course: Course) -> tuple[int, int]:
    """Create the course's grader Unix account if missing; return its (uid, gid).

    The account must be one Atelier created as a grader (its marker, see
    :func:`atelier.accounts.check_marked`): a trainee's account or any other existing
    account of that name is refused, never made the owner of the course. An unmarked system
    account that already owns the course folder was made by an Atelier without markers; it is
    marked and kept.
    """
    from atelier.accounts import check_marked, create_system_account

    def legacy(entry) -> bool:
        try:
            owner = os.lstat(course.root).st_uid
        except OSError:
            return False
        return not entry.pw_gecos and entry.pw_uid < 1000 and owner == entry.pw_uid != 0

    try:
        entry = check_marked(course.grader_account, "grader", legacy)
    except AtelierError as error:
        raise GradingError(f"cohort {course.cohort}: {error}") from None
    if entry is None:
        if os.geteuid() != 0:
            raise GradingError(
                f"the grader account {course.grader_account} does not exist; "
                "run this command as root once to create the course"
            ) from None
        entry = create_system_account(course.grader_account, "grader", str(course.root))
    return entry.pw_uid, entry.pw_gid


def ensure(course: Course) -> Course:
    """Create the course and exchange folders with their owners and modes, the config and gradebook.

    Idempotent: run by every verb before it works, so a course repairs itself.
    """
    uid, gid = ensure_grader_account(course)
    _ensure_dir(course.courses_root, 0o755, 0, 0)
    # The course folder is the grader's: everything below it is opened from its descriptor,
    # without following links, and changed through descriptors.
    with safefs.opened_dir(course.courses_root) as top:
        root = safefs.ensure_dir_at(top, course.cohort, 0o2770, course.root, uid, gid)
    try:
        for step in ("source", "release", "submitted", "autograded", "feedback", "log"):
            os.close(safefs.ensure_dir_at(root, step, 0o2770, course.root / step, uid, gid))
        text = course.nbgrader_config_text()
        try:
            current = safefs.read_at(root, course.config_file.name, course.config_file)
        except (FileNotFoundError, safefs.UnsafePath):
            current = None  # missing, or not a plain file: replaced (a rename, never followed)
        if current != text.encode("utf-8"):
            safefs.write_at(
                root, course.config_file.name, text, 0o640, course.config_file, uid, gid
            )
    finally:
        os.close(root)
    _ensure_dir(course.exchange_root, 0o755, 0, 0)
    _ensure_dir(course.exchange, 0o755, 0, 0)
    # The grader account publishes (formgrader's release button); everyone reads.
    _ensure_dir(course.outbound, 0o755, uid, gid)
    _ensure_dir(course.inbound, 0o711, 0, 0)
    _ensure_dir(course.exchange_feedback, 0o711, 0, 0)
    ensure_gradebook(course, uid, gid)
    ensure_trusted_config(course, gid)
    return course


def ensure_trusted_config(course: Course, gid: int) -> None:
    """Write the course's config where only root can change it (:attr:`Course.trusted_config_dir`).

    Root (``atelier grade``) and the formgrader service load this copy, never the one in the
    course folder, which the grader account can change. Readable by the grader group.
    """
    if os.geteuid() != 0:
        return
    _ensure_dir(course.courses_root / TRUSTED_CONFIG, 0o755, 0, 0)
    _ensure_dir(course.trusted_config_dir, 0o750, 0, gid)
    text = course.nbgrader_config_text()
    with safefs.opened_dir(course.trusted_config_dir) as folder:
        name = course.trusted_config_file.name
        try:
            current = safefs.read_at(folder, name, course.trusted_config_file)
        except (FileNotFoundError, safefs.UnsafePath):
            current = None
        if current != text.encode("utf-8"):
            safefs.write_at(folder, name, text, 0o640, course.trusted_config_file, 0, gid)


def ensure_gradebook(course: Course, uid: int = -1, gid: int = -1) -> None:
    """Create the gradebook if missing and switch it to WAL, so readers never block a writer.

    WAL is a property of the database file, so it is set once here and every later connection
    (formgrader, ``atelier grade``, exports) uses it; the busy timeout is in :attr:`Course.db_url`.
    On PostgreSQL the gradebook is the cohort's schema, created here; there is no file to set up.
    """
    if course.database_url:
        from atelier.database import ensure_schema

        ensure_schema(course.db_url)
        with course.gradebook():
            return
    names = [f"{course.gradebook_path.name}{suffix}" for suffix in ("", "-wal", "-shm", "-journal")]
    # SQLite opens these by name: refuse to start on one the grader replaced with a link.
    with safefs.opened_dir(course.root) as root:
        for name in names:
            try:
                info = os.stat(name, dir_fd=root, follow_symlinks=False)
            except FileNotFoundError:
                continue
            if not stat.S_ISREG(info.st_mode) or info.st_nlink != 1:
                what = (
                    f"has {info.st_nlink} hard links"
                    if stat.S_ISREG(info.st_mode)
                    else (f"is {safefs.kind(info.st_mode)}")
                )
                raise safefs.refusal(course.root / name, what)
    with course.gradebook():
        pass
    use_wal(course.gradebook_path)
    if os.geteuid() == 0:
        with safefs.opened_dir(course.root) as root:
            for name in names:
                try:
                    fd = os.open(name, safefs.READ_FLAGS, dir_fd=root)
                except FileNotFoundError:
                    continue
                except OSError as error:
                    raise safefs.refusal(course.root / name, safefs.describe(error)) from None
                try:
                    safefs.check_plain_file(fd, course.root / name)
                    os.fchown(fd, uid, gid)
                    os.fchmod(fd, 0o660)
                finally:
                    os.close(fd)


def use_wal(path: Path, timeout: float = BUSY_TIMEOUT) -> None:
    """Switch the SQLite database at ``path`` to WAL, once, from one process.

    Changing the journal mode needs the database to itself: two processes switching a gradebook
    that nbgrader made (rollback journal) at the same moment deadlock, and SQLite answers one of
    them "database is locked" at once, without waiting for its busy timeout. So the switch is made
    by one process before any other starts (``atelier grade`` does it before its grading processes
    fork; they never issue it), and is retried here while someone else (formgrader reading) holds
    the file. Already WAL: nothing to do, and no lock is taken.
    """
    import time

    deadline = time.monotonic() + timeout
    con = sqlite3.connect(path, timeout=timeout)
    try:
        while True:
            try:
                if con.execute("PRAGMA journal_mode").fetchone()[0].lower() == "wal":
                    return
                con.execute("PRAGMA journal_mode=WAL").fetchone()
                return
            except sqlite3.OperationalError as error:
                if "locked" not in str(error) or time.monotonic() > deadline:
                    raise GradingError(
                        f"{path}: could not switch the gradebook to WAL ({error}); "
                        "stop what holds it (formgrader, another atelier grade) and try again"
                    ) from None
                time.sleep(0.05)
    finally:
        con.close()


@contextmanager
def course_umask() -> Iterator[None]:
    """Files made inside a course are group-writable by its grader group (SQLite WAL files too)."""
    old = os.umask(0o007)
    try:
        yield
    finally:
        os.umask(old)


def account_ids(account: str) -> tuple[int, int]:
    """The (uid, gid) of a Unix account, or a :class:`GradingError` naming it."""
    try:
        entry = pwd.getpwnam(account)
    except KeyError:
        raise GradingError(f"no Unix account named '{account}' on this machine") from None
    return entry.pw_uid, entry.pw_gid


# --- who is in the cohort ---------------------------------------------------------------------


@dataclass(frozen=True)
class Trainee:
    """A trainee of a cohort as grading sees them: the Unix account is the nbgrader student id."""

    username: str
    account: str
    language: str
    full_name: str = ""
    email: str = ""


def cohort_people(settings, cohort: str) -> tuple[list[Trainee], list[str]]:
    """The (trainees, facilitator usernames) of ``cohort`` from the roster the hub keeps.

    The roster store is owned by :mod:`atelier.accounts` (``atelier roster import``).
    """
    from atelier.accounts import AccountPolicy, load_people

    people = load_people(settings.get_path("hub.state_dir"))
    policy = AccountPolicy.from_settings(settings)
    trainees, facilitators = [], []
    for person in sorted(people.values(), key=lambda p: p.username):
        if cohort not in person.cohorts:
            continue
        if person.role == "facilitator":
            facilitators.append(person.username)
        else:
            trainees.append(
                Trainee(
                    username=person.username,
                    account=policy.account(person.username),
                    language=person.language,
                    full_name=person.full_name,
                    email=person.email,
                )
            )
    return trainees, facilitators


def nbgrader_api(course: Course):
    """An in-process :class:`nbgrader.apps.api.NbGraderAPI` configured for ``course``."""
    from nbgrader.apps.api import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory

    ensure_env_on_path()
    config = course.nbgrader_config()
    return NbGraderAPI(coursedir=CourseDirectory(config=config), config=config)
