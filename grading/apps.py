"""The grading verbs: ``atelier release``, ``collect``, ``feedback`` and ``grades export``.

Rule: each verb is a thin traitlets Application that reads settings and the cohort's roster, then
calls one pipeline module (:mod:`~atelier.grading.release`, :mod:`~atelier.grading.collect`,
:mod:`~atelier.grading.feedback`, :mod:`~atelier.grading.export`). Verbs that touch trainees'
exchange folders run as root (they set owners); ``atelier grade`` belongs to the autograde room.
"""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path

from traitlets import Bool, Unicode

from atelier.app import AtelierApp, base_aliases
from atelier.grading.course import Course, GradingError, cohort_people

cohort_aliases = {**base_aliases, "cohort": "CohortApp.cohort"}


class CohortApp(AtelierApp):
    """A grading verb that works on one cohort's course."""

    aliases = cohort_aliases

    cohort = Unicode("", help="The cohort (its id is also the nbgrader course id).").tag(
        config=True
    )

    def course(self) -> Course:
        """The cohort's course, or a message saying how to name the cohort."""
        if not self.cohort:
            raise GradingError(f"atelier {self.name}: say which cohort with --cohort ID")
        return Course.from_settings(self.settings, self.cohort)

    def people(self):
        """The cohort's (trainees, facilitators); a cohort with no trainee is an error."""
        trainees, facilitators = cohort_people(self.settings, self.cohort)
        if not trainees:
            raise GradingError(
                f"cohort {self.cohort} has no trainee in the roster: "
                "import the roster first (atelier roster import)"
            )
        return trainees, facilitators

    def workbook_arg(self) -> str:
        """The one WORKBOOK argument (a folder or a workbook id)."""
        if len(self.extra_args) != 1:
            raise GradingError(f"atelier {self.name}: give exactly one WORKBOOK (folder or id)")
        return self.extra_args[0]

    def released_assignments(self, course: Course) -> list[str]:
        """The assignments (one per language) of the WORKBOOK argument released to the course."""
        spec = self.workbook_arg()
        workbook = Path(spec).name.split("-", 1)[-1] if Path(spec).is_dir() else spec
        found = course.assignments_of(workbook)
        if not found:
            raise GradingError(
                f"workbook '{workbook}' was never released to cohort {self.cohort}: "
                f"run atelier release {spec} --cohort {self.cohort} first"
            )
        return found

    def say(self, text: str) -> None:
        """Progress for long steps, on standard error so standard output stays data."""
        print(text, file=sys.stderr, flush=True)


class ReleaseApp(CohortApp):
    """``atelier release WORKBOOK --cohort C``: make the student versions and release them."""

    name = "release"
    description = (
        "Release a graded workbook to a cohort: nbgrader makes the student version in each "
        "language of the cohort's trainees (solutions stripped, hidden tests removed, checksums "
        "recorded), and every trainee gets their own exchange folders."
    )
    aliases = {**cohort_aliases, "due": "ReleaseApp.due", "workbooks": "ReleaseApp.workbooks_dir"}

    due = Unicode(
        "", help="Due date, ISO 8601 with a time zone (2026-12-01T17:00+00:00); empty: none."
    ).tag(config=True)
    workbooks_dir = Unicode(
        "workbooks", help="Where workbook folders are looked up when WORKBOOK is an id."
    ).tag(config=True)

    def run(self):
        """Release the workbook."""
        from atelier.grading.release import Release, release, resolve_workbook

        course = self.course()
        trainees, _ = self.people()
        duedate = None
        if self.due:
            try:
                duedate = datetime.fromisoformat(self.due)
            except ValueError as exc:
                raise GradingError(f"--due {self.due!r} is not an ISO 8601 date: {exc}") from None
            if duedate.tzinfo is None:
                raise GradingError(f"--due {self.due!r} needs a time zone, e.g. +00:00")
        folder = resolve_workbook(self.workbook_arg(), [Path(self.workbooks_dir)])
        self.say(f"Releasing {folder.name} to cohort {course.cohort}")
        done = release(Release(course, folder, trainees, duedate, progress=self.say))
        print(" ".join(done.assignments))


class CollectApp(CohortApp):
    """``atelier collect --cohort C WORKBOOK``: take the latest valid submissions in."""

    name = "collect"
    description = (
        "Collect each trainee's latest valid submission of a workbook. Submissions are checked "
        "(owner, size, count) and timed by the server; rejected ones are recorded with a reason."
    )

    def run(self):
        """Collect every language version of the workbook."""
        from atelier.grading.collect import Limits, collect

        course = self.course()
        trainees, _ = self.people()
        limits = Limits.from_settings(self.settings)
        for assignment in self.released_assignments(course):
            # Every trainee is looked at, not only those of that language: a trainee may have
            # fetched the other version, and a folder forged in any inbound folder is recorded.
            self.say(f"Collecting {assignment} from {len(trainees)} trainee(s)")
            result = collect(course, assignment, trainees, limits, progress=self.say)
            for candidate in result.rejected:
                self.say(f"  rejected {candidate.folder}: {candidate.problem}")
            counts = {}
            for outcome in result.outcome.values():
                counts[outcome] = counts.get(outcome, 0) + 1
            print(assignment, " ".join(f"{k}={v}" for k, v in sorted(counts.items())))


class FeedbackApp(CohortApp):
    """``atelier feedback --cohort C WORKBOOK``: generate feedback and return it to each trainee."""

    name = "feedback"
    description = (
        "Generate HTML feedback for every graded submission of a workbook and return it to each "
        "trainee's own exchange folder; trainees fetch it from JupyterLab's assignment list."
    )

    def run(self):
        """Generate and return feedback for every language version of the workbook."""
        from atelier.grading.feedback import feedback

        course = self.course()
        trainees, _ = self.people()
        for assignment in self.released_assignments(course):
            self.say(f"Feedback for {assignment}")
            returned = feedback(course, assignment, trainees, progress=self.say)
            print(assignment, f"returned={sum(1 for n in returned.values() if n)}")


class GradesExportApp(CohortApp):
    """``atelier grades export --cohort C [--moodle]``: grades as CSV on standard output."""

    name = "export"
    description = (
        "Export a cohort's grades as CSV: one row per trainee with each workbook's score, "
        "completion and lateness; with --moodle, a CSV for Moodle's gradebook import."
    )
    aliases = {**cohort_aliases, "output": "GradesExportApp.output"}
    flags = {
        "moodle": ({"GradesExportApp": {"moodle": True}}, "Write the Moodle import CSV."),
    }

    moodle = Bool(False, help="Write the Moodle gradebook import CSV instead.").tag(config=True)
    output = Unicode("", help="File to write (atomically); empty means standard output.").tag(
        config=True
    )

    def run(self):
        """Write the CSV."""
        from atelier.files import atomic_write
        from atelier.grading.export import full_csv, gather, moodle_csv

        course = self.course()
        trainees, _ = self.people()
        from atelier.database import gradebook_exists

        if not gradebook_exists(course.db_url):
            raise GradingError(f"cohort {self.cohort} has no gradebook yet: release a workbook")
        workbooks, rows = gather(course, trainees)
        text = (moodle_csv if self.moodle else full_csv)(workbooks, rows)
        if self.output:
            atomic_write(Path(self.output), text, 0o640)
        else:
            sys.stdout.write(text)


class GradesApp(AtelierApp):
    """``atelier grades``: grade reports (sub-verb ``export``)."""

    name = "grades"
    description = "Grade reports of a cohort."
    subcommands = {
        "export": ("atelier.grading.apps.GradesExportApp", GradesExportApp.description),
    }
