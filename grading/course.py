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
of their language (see :mod:`atelier.grading.exchange.trainee`); scores of ``W-en`` and ``W-fr`` are
the same workbook in the grade export.

Students: the nbgrader student id is the trainee's Unix account name (what ``nbgrader`` itself uses
on the trainee's server), so that ownership on disk and the student id can be compared.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from traitlets.config import Config

from atelier.errors import AtelierError
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

    Build it with :meth:`from_settings`; create its folders with
    :func:`atelier.grading.courses.folders.ensure`.
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
        # Feedback never shows hidden tests (see atelier.grading.exchange.feedback.HideHiddenTests).
        c.GenerateFeedback.preprocessors = [
            "nbgrader.preprocessors.GetGrades",
            "atelier.grading.exchange.feedback.HideHiddenTests",
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
    from atelier.processes.jupyterpath import prepend

    return prepend(JUPYTER_DATA, current)


# --- creating a course on disk -----------------------------------------------------------------


# --- who is in the cohort ---------------------------------------------------------------------


def nbgrader_api(course: Course):
    """An in-process :class:`nbgrader.apps.api.NbGraderAPI` configured for ``course``."""
    from nbgrader.apps.api import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory

    ensure_env_on_path()
    config = course.nbgrader_config()
    return NbGraderAPI(coursedir=CourseDirectory(config=config), config=config)
