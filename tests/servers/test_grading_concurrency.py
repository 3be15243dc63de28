"""Two facilitators grading the same cohort at once, and a cohort submitting all at once.

The gradebook is written by separate processes (as two formgrader requests or a formgrader and
``atelier grade`` are), on the course's real gradebook settings: WAL journal and busy timeout.
"""

from __future__ import annotations

import multiprocessing

import pytest

from atelier.grading.course import Course
from atelier.grading.courses.gradebook import ensure_gradebook

pytestmark = pytest.mark.server

CELLS = 20


def _course(tmp_path, database: dict) -> Course:
    url = database.get("database", {}).get("url", "")
    course = Course("c1", tmp_path / "courses", tmp_path / "exchange", database_url=url)
    course.root.mkdir(parents=True)
    ensure_gradebook(course)
    with course.gradebook() as gb:
        gb.add_assignment("quiz-en")
        gb.add_notebook("quiz.en", "quiz-en")
        for i in range(CELLS):
            gb.add_grade_cell(f"r{i}", "quiz.en", "quiz-en", max_score=3, cell_type="markdown")
            gb.add_solution_cell(f"r{i}", "quiz.en", "quiz-en")
        gb.add_student("alice")
        gb.add_submission("quiz-en", "alice")
    return course


def _facilitator(course: Course, what: str, start, errors) -> None:
    start.wait()
    try:
        for i in range(CELLS):
            # A fresh connection per save, as formgrader opens one per request.
            with course.gradebook() as gb:
                if what == "score":
                    grade = gb.find_grade(f"r{i}", "quiz.en", "quiz-en", "alice")
                    grade.manual_score = 1 + i % 3
                else:
                    comment = gb.find_comment(f"r{i}", "quiz.en", "quiz-en", "alice")
                    comment.manual_comment = f"comment {i}"
                gb.db.commit()
    except Exception as exc:  # the parent reports what went wrong in the child
        errors.put(f"{what}: {exc!r}")


def test_two_facilitators_saving_at_once_lose_no_write(tmp_path, test_database):
    """Do 40 saves by two facilitators at once all land, without 'database is locked'?"""
    course = _course(tmp_path, test_database())
    ctx = multiprocessing.get_context("fork")
    start, errors = ctx.Barrier(2), ctx.Queue()
    workers = [
        ctx.Process(target=_facilitator, args=(course, what, start, errors))
        for what in ("score", "comment")
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(120)
    problems = [errors.get() for _ in range(errors.qsize())] if not errors.empty() else []
    assert problems == []
    assert all(worker.exitcode == 0 for worker in workers)
    with course.gradebook() as gb:
        for i in range(CELLS):
            assert gb.find_grade(f"r{i}", "quiz.en", "quiz-en", "alice").manual_score == 1 + i % 3
            comment = gb.find_comment(f"r{i}", "quiz.en", "quiz-en", "alice")
            assert comment.manual_comment == f"comment {i}"
