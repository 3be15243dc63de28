"""``atelier collect``: take a cohort's latest valid submissions in.

Rule: the verb only reads its options and calls the collect pipeline
(:mod:`~atelier.grading.exchange.collect`).
"""

from __future__ import annotations

from atelier.grading.cohort import CohortApp


class CollectApp(CohortApp):
    """``atelier collect --cohort C WORKBOOK``: take the latest valid submissions in."""

    name = "atelier collect"
    description = (
        "Collect each trainee's latest valid submission of a workbook. Submissions are checked "
        "(owner, size, count) and timed by the server; rejected ones are recorded with a reason."
    )

    def run(self):
        """Collect every language version of the workbook."""
        from atelier.grading.exchange.collect import Limits, collect
        from atelier.grading.exchange.policy import limits_for, read_policy

        course = self.course()
        trainees, _ = self.people()
        limits = Limits.from_settings(self.settings)
        for assignment in self.released_assignments(course):
            # Every trainee is looked at, not only those of that language: a trainee may have
            # fetched the other version, and a folder forged in any inbound folder is recorded.
            self.say(f"Collecting {assignment} from {len(trainees)} trainee(s)")
            # The workbook's policy: attempts counted, closed at the due date if it says so.
            own = limits_for(read_policy(course, assignment), limits)
            result = collect(course, assignment, trainees, own, progress=self.say)
            for candidate in result.rejected:
                self.say(f"  rejected {candidate.folder}: {candidate.problem}")
            counts = {}
            for outcome in result.outcome.values():
                counts[outcome] = counts.get(outcome, 0) + 1
            print(assignment, " ".join(f"{k}={v}" for k, v in sorted(counts.items())))
