"""The base of the grading verbs that work on one cohort's course (``--cohort C``).

Rule: :class:`CohortApp` is a thin traitlets Application that reads settings and the cohort's
roster and finds the cohort's course; each verb (``releaseapp.py``, ``collectapp.py``,
``feedbackapp.py``, ``gradesapp.py``) subclasses it and calls one pipeline module. Verbs that
touch trainees' exchange folders run as root (they set owners).
"""

from __future__ import annotations

import sys
from pathlib import Path

from traitlets import Unicode

from atelier.app import AtelierApp, base_aliases
from atelier.grading.course import Course, GradingError
from atelier.grading.courses.people import cohort_people

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
