"""The hardened exchange, course side: formgrader's buttons (release, collect, feedback), its list.

Rule: formgrader's buttons do exactly what the ``atelier`` verbs do, through the same functions
(:mod:`.release`, :mod:`.collect`, :mod:`.feedback` beside this module), so there is one set of
rules whichever way a facilitator works. They run as the course's grader account inside the
formgrader service, which owns the course's ``outbound/`` and feedback folders and is the group of
every ``inbound/<account>/``; only root (``atelier release``) creates a new trainee's folders.
Trainees are the gradebook's students (``atelier release`` registers them).
"""

from __future__ import annotations

import os
import pwd
from pathlib import Path

from nbgrader.exchange.default import (
    ExchangeCollect,
    ExchangeList,
    ExchangeReleaseAssignment,
    ExchangeReleaseFeedback,
)
from traitlets import Integer, Unicode

from atelier.errors import AtelierError
from atelier.grading.course import Course
from atelier.grading.courses.folders import course_umask
from atelier.grading.courses.people import Trainee


class RootOwnedExchangeMixin:
    """The exchange root is root's: for the grader it must exist, not be writable."""

    def ensure_root(self):
        """Fail with what to do when the exchange is missing (nbgrader wants it writable)."""
        if not os.path.isdir(self.root):
            self.fail(f"The exchange {self.root} does not exist: run atelier release as root once.")


class AtelierCourseList(RootOwnedExchangeMixin, ExchangeList):
    """Formgrader's view of the exchange: stock listing of what ``outbound/`` holds.

    Stock listing first checks that the exchange root is writable; it is root's, so formgrader
    concluded that the exchange was missing and showed every released assignment as a draft.
    """


class CourseExchangeMixin(RootOwnedExchangeMixin):
    """What the three course-side classes share: the :class:`Course` and its trainees."""

    def init_src(self):
        """Nothing to check here: the Atelier functions check what they use."""

    def init_dest(self):
        """Nothing to check here: the Atelier functions check what they use."""

    def course(self) -> Course:
        """The course these buttons act on, from nbgrader's own configuration."""
        course_id = self.coursedir.course_id
        if not course_id:
            self.fail("No course id configured.")
        me = pwd.getpwuid(os.geteuid()).pw_name
        suffix = f"grader-{course_id}"
        prefix = me[: -len(suffix)] if me.endswith(suffix) else "at-"
        from atelier.database import database_of

        return Course(
            cohort=course_id,
            courses_root=Path(self.coursedir.root).resolve().parent,
            exchange_root=Path(self.root),
            account_prefix=prefix,
            # The gradebook where nbgrader's config puts it (a PostgreSQL schema or the file).
            database_url=database_of(self.coursedir.db_url),
        )

    def trainees(self, course: Course, assignment: str) -> list[Trainee]:
        """The gradebook's students who have an inbound folder, in the assignment's language."""
        with course.gradebook() as gb:
            accounts = sorted(s.id for s in gb.students)
        language = assignment.rpartition("-")[2]
        return [
            Trainee(username=a, account=a, language=language)
            for a in accounts
            if course.inbound_of(a).is_dir()
        ]


class AtelierReleaseAssignment(CourseExchangeMixin, ExchangeReleaseAssignment):
    """Formgrader's *release*: publish ``release/<assignment>`` to ``outbound/`` for everyone."""

    def copy_files(self):
        """Publish the student version made by generate_assignment."""
        from atelier.grading.exchange.release import Release, publish

        course = self.course()
        assignment = self.coursedir.assignment_id
        if not (course.release / assignment).is_dir():
            self.fail(f"Generate the student version of {assignment} first.")
        workbook = assignment.rpartition("-")[0]
        release = Release(course, course.source / assignment, [], progress=self.log.info)
        release.workbook, release.languages = workbook, [assignment.rpartition("-")[2]]
        with course_umask():
            try:
                publish(release)
            except (AtelierError, OSError) as exc:
                self.fail(str(exc))


class AtelierCollect(CourseExchangeMixin, ExchangeCollect):
    """Formgrader's *collect*: the checked, server-timed :mod:`atelier.grading.exchange.collect`."""

    max_submission_bytes = Integer(20_000_000, help="Largest submission accepted.").tag(config=True)
    max_submission_files = Integer(200, help="Most files in one submission.").tag(config=True)
    max_submissions = Integer(20, help="Most submissions of one assignment.").tag(config=True)
    identity = Unicode(
        "owner",
        help="What proves who submitted: 'owner' (the trainee's account owns the files) or "
        "'folder' (Kubernetes: the per-trainee inbound folder, files owned by exchange_uid).",
    ).tag(config=True)
    exchange_uid = Integer(1000, help="Owner of exchange files in 'folder' mode.").tag(config=True)

    def copy_files(self):
        """Collect the assignment from every trainee of the course."""
        from atelier.grading.exchange.collect import Limits, collect
        from atelier.grading.exchange.policy import limits_for, read_policy

        course = self.course()
        assignment = self.coursedir.assignment_id
        limits = Limits(
            self.max_submission_bytes,
            self.max_submission_files,
            self.max_submissions,
            self.identity,
            self.exchange_uid,
        )
        try:
            limits = limits_for(read_policy(course, assignment), limits)
            collect(course, assignment, self.trainees(course, assignment), limits, self.log.info)
        except (AtelierError, OSError) as exc:
            self.fail(str(exc))


class AtelierReleaseFeedback(CourseExchangeMixin, ExchangeReleaseFeedback):
    """Formgrader's *release feedback*: each file into its trainee's own feedback folder."""

    def copy_files(self):
        """Return the generated feedback of the assignment to each trainee."""
        from atelier.grading.exchange.feedback import return_feedback

        course = self.course()
        assignment = self.coursedir.assignment_id
        with course_umask():
            try:
                return_feedback(
                    course, assignment, self.trainees(course, assignment), self.log.info
                )
            except (AtelierError, OSError) as exc:
                self.fail(str(exc))
