"""Every workbook's prepared answer sets, released, submitted and graded the way a cohort is.

Issue 7: for every workbook, release it to a test course, submit one prepared answer set
(``workbooks/*/answers/<id>.<lang>.json``, see docs/answer-sets.md), grade it and check the score.
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


def _load(path: Path) -> dict:
    data = json.loads(path.read_text("utf-8"))
    assert data.get("format") == "atelier-answer-set" and data.get("version") == 1, path
    return data


def _submit(course, answer_set: dict) -> str:
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
    folder = course.submission_dir(STUDENT, aid)
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
            gb.update_or_create_student(STUDENT)
        workbooks = []
        with course_umask():
            for folder in sorted({path.parent.parent for path in ANSWER_SETS}):
                release = Release(course, folder, [], progress=lambda _: None)
                # No cohort, no exchange: the steps that make the student versions, not the
                # ones that register trainees and publish.
                for step in (read_workbook, copy_sources, generate_student_versions):
                    step(release)
                workbooks.append(release.workbook)
        assignments = {path: _submit(course, _load(path)) for path in ANSWER_SETS}
        outcomes_file = base / "outcomes.json"
        done = subprocess.run(
            [str(BIN / "atelier"), "grade", f"--course-dir={course.root}", "--no-progress",
             f"--outcomes-json={outcomes_file}", *workbooks],
            capture_output=True, text=True, timeout=240,
        )  # fmt: skip
        assert done.returncode == 0, f"{done.stdout}\n{done.stderr[-3000:]}"
        outcomes = {o["assignment"]: o for o in json.loads(outcomes_file.read_text())}
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
    assert outcomes[aid]["status"] == "graded", outcomes[aid]
    with course.gradebook() as gb:
        submission = gb.find_submission(aid, STUDENT)
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
