"""Every workbook's prepared answer sets, released, submitted and graded the way a cohort is.

Issue 7: for every workbook, release it to a test course, submit its prepared answer sets
(``workbooks/*/answers/<id>.<lang>.json``, the typical mistake, and ``<id>.<lang>.<name>.json`` such
as ``right``, see docs/answer-sets.md), each as its own trainee, grade them and check the scores.
One module-scoped run does the work for all answer sets: the student versions are made by the
release pipeline's own steps (:mod:`atelier.grading.exchange.release`: copy the sources, nbgrader's
``generate_assignment``) into one course made by :mod:`atelier.grading.course` (no hub, no
roster), every submission is written under ``submitted/<student>/<W-L>/``, and ONE ``atelier grade``
run (workbook ids, expanded to every language version; parallel grading processes, each
submission in its own sandbox) grades them all. Each workbook and language is its own test id.
"""

from __future__ import annotations

import datetime
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import nbformat
import pytest
from harness import BIN, WORKBOOKS

pytestmark = pytest.mark.server

ANSWER_SETS = sorted(WORKBOOKS.glob("*/answers/*.json"))
STUDENT = "answers"
#: Workbooks graded through widgets (they have an all-right set): a blank submission of each too.
BLANK = "answers-blank"
WIDGET_GRADED = sorted(path for path in ANSWER_SETS if path.stem.endswith(".right"))


def student_of(path: Path) -> str:
    """The trainee who submits an answer set: ``answers``, or ``answers-<name>`` for a named set."""
    parts = path.stem.split(".")
    return STUDENT if len(parts) == 2 else f"{STUDENT}-{parts[2]}"


def _load(path: Path) -> dict:
    data = json.loads(path.read_text("utf-8"))
    assert data.get("format") == "atelier-answer-set" and data.get("version") == 1, path
    return data


def _submit(course, answer_set: dict, student: str) -> str:
    """Write the released notebook with the answer set's cells (and widget answers) as submitted."""
    from atelier.grading.course import assignment_id, notebook_name

    workbook, lang = answer_set["workbook"], answer_set["language"]
    aid, name = assignment_id(workbook, lang), notebook_name(workbook, lang)
    assert answer_set["notebook"] == name
    nb = nbformat.read(course.release / aid / name, as_version=4)
    remaining = dict(answer_set["cells"])
    for cell in nb.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if grade_id in remaining:
            cell.source = remaining.pop(grade_id)
    assert not remaining, f"{aid}: answer cells not in the released notebook: {sorted(remaining)}"
    folder = course.submission_dir(student, aid)
    folder.mkdir(parents=True)
    nbformat.write(nb, folder / name)
    when = datetime.datetime(2026, 11, 20, 10, 0, 0)
    (folder / "timestamp.txt").write_text(when.strftime("%Y-%m-%d %H:%M:%S.%f UTC"))
    if answer_set["widgets"]:
        answers = {
            widget: {"value": value, "kind": "answer-set", "saved": "2026-11-20T10:00:00Z"}
            for widget, value in answer_set["widgets"].items()
        }
        document = {"format": "atelier-answers", "version": 1, "answers": answers}
        (folder / ".atelier-answers.json").write_text(json.dumps(document))
    return aid


@pytest.fixture(scope="module")
def graded():
    """One course with every answer set's workbook released, submitted and graded in one run."""
    from atelier.files import atomic_write
    from atelier.grading.course import Course
    from atelier.grading.courses.folders import course_umask
    from atelier.grading.courses.gradebook import ensure_gradebook
    from atelier.grading.exchange.release import (
        Release,
        copy_sources,
        generate_student_versions,
        read_workbook,
    )

    base = Path(tempfile.mkdtemp(prefix="atelier-answers-", dir="/tmp"))
    os.chmod(base, 0o755)
    course = Course("answersets", base / "courses", base / "exchange")
    try:
        for step in ("source", "release", "submitted", "autograded", "log"):
            course.step_dir(step).mkdir(parents=True)
        atomic_write(course.config_file, course.nbgrader_config_text())
        ensure_gradebook(course)
        # The trainee is in the gradebook before grading, as a cohort release registers them:
        # otherwise every grading process creates them at once (nbgrader's find-then-add) and
        # all but one fail on the gradebook's unique student id.
        with course.gradebook() as gb:
            for student in sorted({student_of(path) for path in ANSWER_SETS} | {BLANK}):
                gb.update_or_create_student(student)
        workbooks = []
        with course_umask():
            for folder in sorted({path.parent.parent for path in ANSWER_SETS}):
                release = Release(course, folder, [], progress=lambda _: None)
                # No cohort, no exchange: the steps that make the student versions, not the
                # ones that register trainees and publish.
                for step in (read_workbook, copy_sources, generate_student_versions):
                    step(release)
                workbooks.append(release.workbook)
        assignments = {path: _submit(course, _load(path), student_of(path)) for path in ANSWER_SETS}
        for path in WIDGET_GRADED:
            # The released notebook as it is, with no answers file: what a trainee who answered
            # nothing submits.
            _submit(course, {**_load(path), "cells": {}, "widgets": {}}, BLANK)
        outcomes_file = base / "outcomes.json"
        done = subprocess.run(
            [str(BIN / "atelier"), "grade", f"--course-dir={course.root}", "--no-progress",
             f"--outcomes-json={outcomes_file}", *workbooks],
            capture_output=True, text=True, timeout=240,
        )  # fmt: skip
        assert done.returncode == 0, f"{done.stdout}\n{done.stderr[-3000:]}"
        outcomes = {
            (o["assignment"], o["student"]): o for o in json.loads(outcomes_file.read_text())
        }
        yield course, assignments, outcomes
    finally:
        shutil.rmtree(base, ignore_errors=True)


@pytest.mark.parametrize("path", ANSWER_SETS, ids=[p.stem for p in ANSWER_SETS])
def test_answer_set_scores_what_it_expects(graded, path):
    """Released, submitted and graded, does the answer set get its expected score?

    And do its deliberate mistakes fail their (hidden) tests, and only those?
    """
    course, assignments, outcomes = graded
    answer_set = _load(path)
    aid = assignments[path]
    outcome = outcomes[aid, student_of(path)]
    assert outcome["status"] == "graded", outcome
    with course.gradebook() as gb:
        submission = gb.find_submission(aid, student_of(path))
        grades = {g.name: g for nb in submission.notebooks for g in nb.grades}
        score, max_auto = (
            submission.score,
            sum(g.max_score for g in grades.values() if g.auto_score is not None),
        )
        by_name = {name: g.score for name, g in grades.items()}
        failing = sorted(
            name
            for name, g in grades.items()
            if g.auto_score is not None and g.auto_score < g.max_score
        )
    assert score == answer_set["expected_score"], (aid, by_name)
    assert failing == sorted(answer_set["expected"]["failing_tests"])
    if "autograded_max" in answer_set["expected"]:
        assert max_auto == answer_set["expected"]["autograded_max"]


@pytest.mark.parametrize("path", WIDGET_GRADED, ids=[p.stem for p in WIDGET_GRADED])
def test_blank_submission_scores_zero(graded, path):
    """Does a trainee who answered no widget get no point (and no error of the grader)?"""
    course, assignments, outcomes = graded
    aid = assignments[path]
    assert outcomes[aid, BLANK]["status"] == "graded", outcomes[aid, BLANK]
    with course.gradebook() as gb:
        submission = gb.find_submission(aid, BLANK)
        assert submission.score == 0, {
            g.name: g.score for nb in submission.notebooks for g in nb.grades
        }


TYPICAL_WIDGET_SETS = [
    path for path in ANSWER_SETS if path.with_name(f"{path.stem}.right.json") in WIDGET_GRADED
]


@pytest.mark.parametrize("path", TYPICAL_WIDGET_SETS, ids=[p.stem for p in TYPICAL_WIDGET_SETS])
def test_feedback_says_what_was_expected_in_the_trainee_language(graded, path):
    """Does each failing widget test tell the trainee, in their language, what was expected?"""
    course, assignments, _outcomes = graded
    answer_set = _load(path)
    aid, name = assignments[path], answer_set["notebook"]
    graded_nb = nbformat.read(course.step_dir("autograded") / STUDENT / aid / name, as_version=4)
    said = {}
    for cell in graded_nb.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if grade_id in answer_set["expected"]["failing_tests"]:
            said[grade_id] = " ".join(
                output.get("text", "") + output.get("evalue", "") for output in cell.outputs
            )
    expected = {"en": "Expected: ", "fr": "Ce qui était attendu : "}[answer_set["language"]]
    assert sorted(said) == sorted(answer_set["expected"]["failing_tests"])
    for grade_id, text in said.items():
        assert expected in text, (grade_id, text)
