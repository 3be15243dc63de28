"""What the ``atelier peer`` verbs and the ``atelier-peer`` service both do to a peer review.

Rule: every change goes load → change → save under the cohort's lock
(:func:`atelier.grading.peerreview.state.locked`), after :func:`~state.advance` has applied the
clock, so the verbs and the service never write over each other's changes. Grades go to the
gradebook through :mod:`atelier.grading.peerreview.marks` (as the grader account).
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from datetime import datetime, timedelta

from atelier.grading.course import Course, GradingError, split_assignment
from atelier.grading.peerreview import late, marks, reflection, state


def options(settings: Mapping) -> dict:
    """The ``grading.peer_review`` settings."""
    return dict(settings["grading"]["peer_review"])


def records_dir(settings: Mapping) -> str:
    """Where the records are: ``grading.peer_review.state_dir``, else ``hub.state_dir``.

    One machine keeps them in root's state directory; a cluster on the courses volume, which
    the ``atelier-peer`` pod and the grading pod both mount (:mod:`atelier.hub_config.kubernetes`).
    """
    own = settings["grading"].get("peer_review", {}).get("state_dir", "")
    return own or settings["hub"]["state_dir"]


@contextlib.contextmanager
def changing(settings: Mapping, cohort: str, workbook: str, at: datetime | None = None):
    """The record of a peer review, advanced to ``at``, saved on exit; ``GradingError`` if none."""
    state_dir = records_dir(settings)
    at = at or state.now()
    with state.locked(state_dir, cohort):
        record = state.load(state_dir, cohort, workbook)
        if record is None:
            raise GradingError(
                f"{workbook} was never opened for peer review in cohort {cohort}: "
                f"run atelier peer open --cohort {cohort} {workbook}"
            )
        state.advance(record, at)
        yield record
        state.save(state_dir, record)


def current(settings: Mapping, cohort: str, workbook: str, at: datetime | None = None):
    """The record advanced to now (saved when the clock changed it), or ``None``."""
    state_dir = records_dir(settings)
    if state.load(state_dir, cohort, workbook) is None:
        return None
    with changing(settings, cohort, workbook, at) as record:
        return record


def collected(
    course: Course, trainees, assignments: list[str], skip: set[str] = frozenset()
) -> tuple[dict, dict]:
    """``(rubrics, submissions)``: each assignment's rubric, each submitter's (assignment, text).

    ``skip``: accounts whose text is not read (already in the review).
    """
    rubrics, submissions = {}, {}
    accounts = [t.account for t in trainees if t.account not in skip]
    for assignment in assignments:
        rubric = reflection.course_rubric(course, assignment)
        rubrics[assignment] = rubric.to_json()
        for account in reflection.submitted_accounts(course, assignment, accounts):
            if account in submissions:
                continue  # both languages submitted: the first language's counts, once
            submissions[account] = (assignment, reflection.submission_text(course, account, rubric))
    return rubrics, submissions


def open_review(
    settings: Mapping,
    course: Course,
    trainees,
    workbook: str,
    assignments: list[str],
    *,
    k: int,
    due: datetime | None,
    seed: str,
    at: datetime | None = None,
) -> dict:
    """Open ``workbook`` for peer review: the submitters, their texts, the rubrics, the pairs."""
    opts = options(settings)
    at = at or state.now()
    due = due or at + timedelta(days=opts["due_days"])
    state_dir = records_dir(settings)
    rubrics, submissions = collected(course, trainees, assignments)
    with state.locked(state_dir, course.cohort):
        old = state.load(state_dir, course.cohort, workbook)
        if old is not None and not state.is_closed(old):
            raise GradingError(
                f"{workbook} is already open for peer review in cohort {course.cohort} "
                f"(due {old['due']}): atelier peer status --cohort {course.cohort} {workbook}"
            )
        if old is not None:
            raise GradingError(
                f"{workbook} was already peer reviewed in cohort {course.cohort} "
                f"(closed {old['closed']}); its reviews are kept, so it is not opened again"
            )
        record = state.create(
            course.cohort,
            workbook,
            submissions,
            rubrics,
            k=k,
            due=due,
            grace_days=opts["grace_days"],
            seed=seed,
            anonymous=opts["anonymous"],
            how=opts["aggregate"],
            at=at,
        )
        state.save(state_dir, record)
    return record


def add_late(
    settings: Mapping,
    course: Course,
    trainees,
    workbook: str,
    assignments: list[str],
    at: datetime | None = None,
) -> tuple[dict, list[tuple[str, list[str], list[str]]]]:
    """Bring the submissions collected since the review opened into it while it is open.

    Returns the record and, per submission added, ``(account, its reviewers, whom it reviews)``
    (:func:`atelier.grading.peerreview.late.add_submissions`).
    """
    state_dir = records_dir(settings)
    before = state.load(state_dir, course.cohort, workbook)
    if before is None:
        raise GradingError(
            f"{workbook} was never opened for peer review in cohort {course.cohort}: "
            f"run atelier peer open --cohort {course.cohort} {workbook}"
        )
    known = {s["author"] for s in before["submissions"].values()}
    # The texts are read before taking the lock (root reading the course, possibly slow).
    _, newcomers = collected(course, trainees, assignments, skip=known)
    with changing(settings, course.cohort, workbook, at) as record:
        added = late.add_submissions(record, newcomers, at or state.now())
    return record, added


def _grade_item(record: Mapping, sid: str) -> dict:
    submission = record["submissions"][sid]
    rubric = record["rubrics"][submission["assignment"]]
    split_assignment(submission["assignment"])
    return {
        "grade_id": rubric["grade_id"],
        "notebook": rubric["notebook"],
        "assignment": submission["assignment"],
        "student": submission["author"],
    }


def facilitator_scores(course: Course, record: Mapping) -> dict[str, dict]:
    """The gradebook's grade of each submission's reflection cell, by submission id."""
    items = [{**_grade_item(record, sid), "submission": sid} for sid in record["submissions"]]
    return {item["submission"]: item for item in marks.run(course, "read", items)}


def decide(
    settings: Mapping,
    course: Course,
    workbook: str,
    sid: str,
    how: str,
    score: float | None,
    by: str,
) -> float:
    """Accept the peer score of ``sid`` or override it with ``score``; written to the gradebook."""
    with changing(settings, course.cohort, workbook) as record:
        if sid not in record["submissions"]:
            raise GradingError("no such submission in this peer review")
        if not state.is_closed(record):
            raise GradingError("close the peer review first")
        row = next(r for r in state.rows(record) if r["submission"] == sid)
        if how == "accept":
            score = row["peer_score"]
            if score is None:
                raise GradingError("nobody reviewed this submission: give your own score")
        elif score is None:
            raise GradingError("give a score to override the peer score")
        written = marks.run(course, "write", [{**_grade_item(record, sid), "manual_score": score}])
        if written[0].get("missing"):
            raise GradingError("this submission is not graded yet: run atelier grade first")
        record["decisions"][sid] = {
            "score": score,
            "how": how,
            "by": by,
            "peer_score": row["peer_score"],
            "at": state.stamp(state.now()),
        }
    return score


def award_marks(settings: Mapping, course: Course, workbook: str, by: str) -> dict[str, float]:
    """Give ``review_points`` to each reviewer who did every review given to them.

    The mark is extra credit on their own reflection; the others get none. Returns account ->
    points given.
    """
    points = float(options(settings)["review_points"])
    if points <= 0:
        raise GradingError("grading.peer_review.review_points is 0: no mark for reviewing")
    with changing(settings, course.cohort, workbook) as record:
        if not state.is_closed(record):
            raise GradingError("close the peer review first")
        given = {}
        items = []
        for account, counts in state.reviewer_counts(record).items():
            sid = state.submission_of(record, account)
            earned = points if counts["done"] and not counts["missed"] else 0.0
            given[account] = earned
            items.append({**_grade_item(record, sid), "extra_credit": earned})
        marks.run(course, "write", items)
        record["marks"] = {"points": given, "by": by, "at": state.stamp(state.now())}
    return given
