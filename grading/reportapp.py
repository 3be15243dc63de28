"""``atelier report items`` and ``atelier report participation``: what a cohort's work says.

Rule: each verb reads its options and the cohort's records, calls the module that computes
(:mod:`atelier.grading.itemanalysis`, :mod:`atelier.grading.participation`) and writes its output;
it changes nothing else.
"""

from __future__ import annotations

from traitlets import Enum, List, Unicode

from atelier.app import AtelierApp, OutputApp, subverbs
from atelier.grading.cohort import CohortApp, cohort_aliases
from atelier.grading.course import Course, GradingError
from atelier.languages import LANGUAGES


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


class ReportParticipationApp(CohortApp, OutputApp):
    """``atelier report participation --cohort C``: participation as CSV or a one-page PDF.

    Options: ``[--institution NAME] [--format csv|pdf] [--language en|fr] -o FILE``.
    """

    name = "atelier report participation"
    description = (
        "Participation of a cohort (participants, countries, institutions, shares by gender and "
        "language, active trainees per day, time per workbook), as CSV or a one-page PDF; "
        "--institution keeps one partner institution's trainees only. Groups under "
        "grading.participation.min_group are suppressed by gender and country (docs/dashboard.md)."
    )
    aliases = {
        **cohort_aliases,
        "output": "ReportParticipationApp.output",
        "o": "ReportParticipationApp.output",
        "institution": "ReportParticipationApp.institution",
        "format": "ReportParticipationApp.format",
        "language": "ReportParticipationApp.language",
    }

    institution = Unicode(
        "", help="Only this institution's trainees (as the roster names it; case is ignored)."
    ).tag(config=True)
    format = Enum(
        ["csv", "pdf"], "csv", help="csv (standard output or -o) or pdf (a one-page report, -o)."
    ).tag(config=True)
    language = Enum(list(LANGUAGES), LANGUAGES[0], help="Language of the report's words.").tag(
        config=True
    )

    def run(self):
        """Compute the cohort's participation and write it."""
        from atelier.grading.participation import events, exports, stats

        self.course()  # says how to name the cohort when none is given
        participants, found, workbooks = events.read_cohort(self.settings, self.cohort)
        if not participants:
            raise GradingError(
                f"cohort {self.cohort} has no trainee in the roster: import the roster first"
            )
        if self.institution and not stats.of_institution(participants, self.institution):
            names = sorted({" ".join(p.institution.split()) for p in participants if p.consents})
            raise GradingError(
                f"cohort {self.cohort} has no trainee of institution {self.institution!r} who "
                f"consented to be counted by it; its institutions: "
                f"{', '.join(repr(n) for n in names if n) or 'none'}"
            )
        report = stats.participation(
            participants,
            found,
            workbooks,
            gap_cap_minutes=self.settings.get_path("grading.participation.gap_cap_minutes", 10),
            min_group=self.settings.get_path("grading.participation.min_group", 5),
            institution=self.institution,
        )
        if self.format == "csv":
            self.write_output(exports.to_csv(report, self.language))
            return
        if not self.output:
            raise GradingError("atelier report participation --format pdf: name the file with -o")
        exports.to_pdf(report, self.cohort, self.output, self.language)
        self.log.info("wrote %s", self.output)


class ReportApp(AtelierApp):
    """``atelier report``: what a cohort's work teaches (sub-verbs ``items``, ``participation``)."""

    name = "atelier report"
    description = (
        "Reports on a cohort: `atelier report items --cohort C WORKBOOK`, "
        "`atelier report participation --cohort C [--institution NAME] [--format csv|pdf] -o FILE`."
    )
    subcommands = subverbs(ReportItemsApp, ReportParticipationApp)
