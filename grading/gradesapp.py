"""``atelier grades export``: a cohort's grades as CSV.

Rule: the verb only reads its options and calls the export pipeline
(:mod:`~atelier.grading.export`).
"""

from __future__ import annotations

from traitlets import Bool

from atelier.app import AtelierApp, OutputApp, subverbs
from atelier.grading.cohort import CohortApp, cohort_aliases
from atelier.grading.course import GradingError


class GradesExportApp(CohortApp, OutputApp):
    """``atelier grades export --cohort C [--moodle]``: grades as CSV on standard output."""

    name = "atelier grades export"
    description = (
        "Export a cohort's grades as CSV: one row per trainee with each workbook's score, "
        "completion and lateness; with --moodle, a CSV for Moodle's gradebook import."
    )
    aliases = {**cohort_aliases, "output": "GradesExportApp.output"}
    flags = {
        "moodle": ({"GradesExportApp": {"moodle": True}}, "Write the Moodle import CSV."),
    }

    moodle = Bool(False, help="Write the Moodle gradebook import CSV instead.").tag(config=True)

    def run(self):
        """Write the CSV."""
        from atelier.grading.export import full_csv, gather, moodle_csv

        course = self.course()
        trainees, _ = self.people()
        from atelier.database import gradebook_exists

        if not gradebook_exists(course.db_url):
            raise GradingError(f"cohort {self.cohort} has no gradebook yet: release a workbook")
        workbooks, rows = gather(course, trainees)
        text = (moodle_csv if self.moodle else full_csv)(workbooks, rows)
        self.write_output(text)


class GradesApp(AtelierApp):
    """``atelier grades``: grade reports (sub-verb ``export``)."""

    name = "atelier grades"
    description = "Grade reports of a cohort."
    subcommands = subverbs(GradesExportApp)
