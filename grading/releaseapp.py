"""``atelier release``: release a workbook to a cohort.

Rule: the verb only reads its options and calls the release pipeline
(:mod:`~atelier.grading.exchange.release`).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from traitlets import Bool, Enum, Integer, Unicode

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
    aliases = {
        **cohort_aliases,
        "due": "ReleaseApp.due",
        "workbooks": "ReleaseApp.workbooks_dir",
        "mode": "ReleaseApp.mode",
        "attempts": "ReleaseApp.attempts",
    }
    flags = {
        "instant-feedback": (
            {"ReleaseApp": {"instant_feedback": True}},
            "Trainees see their auto-graded feedback seconds after submitting (the default).",
        ),
        "no-instant-feedback": (
            {"ReleaseApp": {"instant_feedback": False}},
            "Hold results until the facilitator releases them (atelier feedback): for an exam.",
        ),
        "close-at-due": (
            {"ReleaseApp": {"close_at_due": True}},
            "Refuse submissions received after the due date (--due).",
        ),
    }

    due = Unicode(
        "", help="Due date, ISO 8601 with a time zone (2026-12-01T17:00+00:00); empty: none."
    ).tag(config=True)
    workbooks_dir = Unicode(
        "workbooks", help="Where workbook folders are looked up when WORKBOOK is an id."
    ).tag(config=True)
    mode = Enum(
        ["practice", "assessed"],
        "assessed",
        help="practice: any number of submissions, feedback after each, the last counts; "
        "assessed: a set number of attempts (--attempts), diagnostics after the last one or the "
        "due date.",
    ).tag(config=True)
    attempts = Integer(
        -1,
        help="Submissions that count (assessed; default 1). 0: unlimited (practice's default), "
        "always within grading.max_submissions.",
    ).tag(config=True)
    instant_feedback = Bool(
        True, help="Grade each submission as it arrives and show its feedback at once."
    ).tag(config=True)
    close_at_due = Bool(False, help="Refuse submissions received after the due date.").tag(
        config=True
    )

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
        from atelier.grading.exchange.policy import Policy

        policy = Policy.make(self.mode, None if self.attempts < 0 else self.attempts,
                             self.instant_feedback, self.close_at_due, duedate)  # fmt: skip
        folder = resolve_workbook(self.workbook_arg(), [Path(self.workbooks_dir)])
        self.say(f"Releasing {folder.name} to cohort {course.cohort}")
        done = release(Release(course, folder, trainees, duedate, progress=self.say, policy=policy))
        print(" ".join(done.assignments))
