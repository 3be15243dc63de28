"""Grade export: a row per trainee with each workbook's score, completion, lateness; Moodle CSV.

Rule: the gradebook is the only source of scores; a workbook's score is that of whichever language
version (``<workbook>-en`` or ``<workbook>-fr``) the trainee submitted. Lateness follows the
``grading.late_policy`` setting: ``flag`` (default) reports it without changing the score, ``zero``
applies nbgrader's penalty (the score becomes 0). Receipt times are the server's (see
:mod:`atelier.grading.exchange.collect`), so lateness cannot be forged by the trainee's clock.

Columns of the full export, per workbook ``W`` (in release order):
``W score``, ``W max``, ``W percent``, ``W status`` (``missing``, ``needs grading``, ``graded``),
``W late`` (``yes``/``no``) and ``W minutes late``; before them ``username``, ``account``,
``full name``, ``email``, ``language``.

The Moodle export has the columns ``Email address`` (Moodle's user identifier in a CSV grade
import) and one column per workbook holding the score, empty when nothing was submitted.

Both are written through :func:`atelier.csvcells.writer`: a name (or any cell) a spreadsheet would
run as a formula starts with ``'``; scores stay numbers.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field

from atelier import csvcells
from atelier.grading.course import Course
from atelier.grading.courses.people import Trainee
from atelier.languages import LANGUAGES


@dataclass
class WorkbookGrade:
    """One trainee's result on one workbook."""

    score: float | None = None
    max_score: float = 0.0
    status: str = "missing"
    seconds_late: float = 0.0

    @property
    def percent(self) -> float | None:
        """The score as a percentage of the maximum, or None when nothing was submitted."""
        if self.score is None or not self.max_score:
            return None
        return 100.0 * self.score / self.max_score


@dataclass
class Row:
    """One trainee's line of the export."""

    trainee: Trainee
    grades: dict[str, WorkbookGrade] = field(default_factory=dict)


def _workbook_of(assignment: str) -> str:
    workbook, _, language = assignment.rpartition("-")
    return workbook if workbook and language in LANGUAGES else assignment


def gather(course: Course, trainees: list[Trainee]) -> tuple[list[str], list[Row]]:
    """Read the gradebook: the workbooks (release order) and one row per trainee."""
    from nbgrader.api import MissingEntry

    with course.gradebook() as gb:
        assignments = gb.assignments
        workbooks: list[str] = []
        max_scores: dict[str, float] = {}
        for assignment in assignments:
            workbook = _workbook_of(assignment.name)
            if workbook not in workbooks:
                workbooks.append(workbook)
            max_scores.setdefault(workbook, float(assignment.max_score or 0.0))
        rows = []
        for trainee in trainees:
            row = Row(trainee, {w: WorkbookGrade(max_score=max_scores[w]) for w in workbooks})
            for assignment in assignments:
                try:
                    sub = gb.find_submission(assignment.name, trainee.account)
                except MissingEntry:
                    continue
                grade = row.grades[_workbook_of(assignment.name)]
                penalty = float(sub.late_submission_penalty or 0.0)
                grade.score = max(0.0, float(sub.score or 0.0) - penalty)
                grade.max_score = float(sub.max_score or 0.0)
                grade.status = "needs grading" if _ungraded(sub) else "graded"
                grade.seconds_late = float(sub.total_seconds_late or 0.0)
            rows.append(row)
    return workbooks, rows


def _ungraded(submission) -> bool:
    """Whether a cell still waits for a facilitator's score.

    nbgrader also flags for review a manual grade that a re-grade kept; that one has a score.
    """
    return any(
        grade.needs_manual_grade and grade.manual_score is None and grade.auto_score is None
        for notebook in submission.notebooks
        for grade in notebook.grades
    )


def _number(value: float | None) -> str:
    if value is None:
        return ""
    return f"{value:.2f}".rstrip("0").rstrip(".")


def full_csv(workbooks: list[str], rows: list[Row]) -> str:
    """The facilitator's export: one row per trainee, every workbook's score and completion."""
    out = io.StringIO()
    writer = csvcells.writer(out, lineterminator="\n")
    header = ["username", "account", "full name", "email", "language"]
    for w in workbooks:
        header += [f"{w} score", f"{w} max", f"{w} percent", f"{w} status", f"{w} late"]
        header += [f"{w} minutes late"]
    writer.writerow(header)
    for row in rows:
        t = row.trainee
        line = [t.username, t.account, t.full_name, t.email, t.language]
        for w in workbooks:
            g = row.grades[w]
            late = g.seconds_late > 0
            line += [_number(g.score), _number(g.max_score), _number(g.percent), g.status]
            line += ["yes" if late else "no", _number(round(g.seconds_late / 60, 1))]
        writer.writerow(line)
    return out.getvalue()


def moodle_csv(workbooks: list[str], rows: list[Row]) -> str:
    """A CSV that Moodle's gradebook import accepts: ``Email address`` then one column per item."""
    out = io.StringIO()
    writer = csvcells.writer(out, lineterminator="\n")
    writer.writerow(["Email address", *workbooks])
    for row in rows:
        writer.writerow([row.trainee.email, *(_number(row.grades[w].score) for w in workbooks)])
    return out.getvalue()
