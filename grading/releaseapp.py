"""``atelier release``: release a workbook to a cohort.

Rule: the verb only reads its options and calls the release pipeline
(:mod:`~atelier.grading.exchange.release`).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from traitlets import Unicode

from atelier.grading.cohort import CohortApp, cohort_aliases
from atelier.grading.course import GradingError


class ReleaseApp(CohortApp):
    """``atelier release WORKBOOK --cohort C``: make the student versions and release them."""

    name = "atelier release"
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
        from atelier.grading.exchange.release import Release, release, resolve_workbook

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
