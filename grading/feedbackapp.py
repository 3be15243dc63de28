"""``atelier feedback``: generate feedback and return it to each trainee.

Rule: the verb only reads its options and calls the feedback pipeline
(:mod:`~atelier.grading.exchange.feedback`).
"""

from __future__ import annotations

from atelier.grading.cohort import CohortApp


class FeedbackApp(CohortApp):
    """``atelier feedback --cohort C WORKBOOK``: generate feedback and return it to each trainee."""

    name = "atelier feedback"
    description = (
        "Generate HTML feedback for every graded submission of a workbook and return it to each "
        "trainee's own exchange folder; trainees fetch it from JupyterLab's assignment list, "
        "and see their per-item results in the workbook view. Results held back (a workbook "
        "released with --no-instant-feedback) are released by this command."
    )

    def run(self):
        """Generate and return feedback for every language version of the workbook."""
        from atelier.grading.exchange.collect import Limits
        from atelier.grading.exchange.feedback import feedback
        from atelier.grading.instant.items import release_all

        course = self.course()
        trainees, _ = self.people()
        for assignment in self.released_assignments(course):
            self.say(f"Feedback for {assignment}")
            returned = feedback(course, assignment, trainees, progress=self.say)
            # The per-item results the workbook view shows: held ones (instant feedback off)
            # are released now, and hand-marked reflections show their marks.
            results = release_all(course, assignment, trainees, Limits.from_settings(self.settings),
                                  progress=self.say)  # fmt: skip
            print(assignment, f"returned={sum(1 for n in returned.values() if n)}",
                  f"results={results}")  # fmt: skip
