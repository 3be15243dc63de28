"""``atelier report items``: which graded items of a workbook work, as CSV.

Rule: the verb reads its options, the attempts logs of the cohorts named and calls
:mod:`atelier.grading.itemanalysis`; it changes nothing.
"""

from __future__ import annotations

from traitlets import Enum, List, Unicode

from atelier.app import AtelierApp, OutputApp, subverbs
from atelier.grading.cohort import CohortApp, cohort_aliases
from atelier.grading.course import Course, GradingError


class ReportItemsApp(CohortApp, OutputApp):
    """``atelier report items --cohort C WORKBOOK``: item statistics as CSV on standard output."""

    name = "atelier report items"
    description = (
        "Item analysis of a workbook's graded items (facility index, standard deviation, "
        "discrimination index and efficiency, options chosen, flags), from each trainee's first "
        "graded attempt (--attempt last: their last), over one cohort or several (--also)."
    )
    aliases = {
        **cohort_aliases,
        "output": "ReportItemsApp.output",
        "attempt": "ReportItemsApp.attempt",
        "also": "ReportItemsApp.also",
    }

    attempt = Enum(
        ["first", "last"], "first",
        help="Which of a trainee's graded attempts counts: their first (default) or their last.",
    ).tag(config=True)  # fmt: skip
    also = List(
        Unicode(), [],
        help="More cohorts whose attempts are pooled with --cohort's (across cohorts).",
    ).tag(config=True)  # fmt: skip

    def run(self):
        """Write the CSV."""
        from atelier.grading import itemanalysis

        spec = self.workbook_arg()
        workbook = spec.rstrip("/").rsplit("/", 1)[-1]
        workbook = workbook.split("-", 1)[1] if workbook[:2].isdigit() else workbook
        self.course()  # says how to name the cohort when none is given
        attempts = []
        for cohort in [self.cohort, *self.also]:
            course = Course.from_settings(self.settings, cohort)
            if not course.assignments_of(workbook):
                raise GradingError(f"workbook '{workbook}' was never released to cohort {cohort}")
            records = itemanalysis.read_attempts(course.root)
            for record in itemanalysis.choose_attempts(records, workbook, self.attempt):
                attempts.append({**record, "student": f"{cohort}/{record['student']}"})
        if not attempts:
            self.say(f"no graded attempt of {workbook} yet: grade submissions first")
        reports = itemanalysis.analyse(attempts)
        self.write_output(itemanalysis.report_csv(workbook, reports))


class ReportApp(AtelierApp):
    """``atelier report``: what a cohort's results teach the facilitator (sub-verb ``items``)."""

    name = "atelier report"
    description = "Reports on a cohort's results: `atelier report items --cohort C WORKBOOK`."
    subcommands = subverbs(ReportItemsApp)
