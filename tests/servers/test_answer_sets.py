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
import html
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
#: A trainee whose typed answer to workbook 02 is HTML with a script: formgrader shows it as text.
HOSTILE_STUDENT = "answers-hostile"
HOSTILE_SET = WORKBOOKS / "02-low-bandwidth-planner" / "answers" / "low-bandwidth-planner.en.json"
HOSTILE_TEXT = '<script>document.title="pwned"</script><img src=x onerror="alert(1)"> audio'


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
            # As a widget saves it: with the language of the widget (the workbook's).
            widget: {
                "value": value,
                "kind": "answer-set",
                "saved": "2026-11-20T10:00:00Z",
                "language": answer_set["language"],
            }
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
            everyone = {student_of(path) for path in ANSWER_SETS} | {BLANK, HOSTILE_STUDENT}
            for student in sorted(everyone):
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
        hostile = _load(HOSTILE_SET)
        hostile["widgets"] = {**hostile["widgets"], "w2-term": HOSTILE_TEXT}
        _submit(course, hostile, HOSTILE_STUDENT)
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


def formgrader_page(course, student: str, aid: str, name: str) -> str:
    """The page formgrader serves for a submission: nbgrader's exporter, the course's config."""
    from nbconvert.exporters import HTMLExporter
    from nbgrader.server_extensions.formgrader import handlers
    from traitlets.config.loader import PyFileConfigLoader

    config = PyFileConfigLoader(course.config_file.name, path=str(course.root)).load_config()
    # What nbgrader's FormgradeExtension adds to the course's configuration.
    config.HTMLExporter.template_name = "formgrade"
    config.HTMLExporter.extra_template_basedirs = [handlers.template_path]
    resources = {
        "assignment_id": aid, "notebook_id": name.removesuffix(".ipynb"), "submission_id": "s",
        "index": 0, "total": 1, "base_url": "/services/answersets", "student": student,
        "last_name": "", "first_name": "", "notebook_path": f"autograded/{student}/{aid}/{name}",
    }  # fmt: skip
    path = course.step_dir("autograded") / student / aid / name
    page, _ = HTMLExporter(config=config).from_filename(str(path), resources=resources)
    return page


@pytest.mark.parametrize("language", ["en", "fr"])
def test_formgrader_shows_the_answers_the_trainee_gave(graded, language):
    """Does formgrader's page of an autograded workbook 02 show each answer as the trainee gave it?

    The widgets' outputs carry the answer (formgrader has no widget state to draw them): the
    number with its unit, the option's words, the order and the sorting as lists, the typed text;
    in the workbook's language, and without ipywidgets' bare ``VBox(...)``.
    """
    course, assignments, _outcomes = graded
    path = (
        WORKBOOKS
        / "02-low-bandwidth-planner"
        / "answers"
        / f"low-bandwidth-planner.{language}.json"
    )
    answer_set = _load(path)
    page = formgrader_page(course, STUDENT, assignments[path], answer_set["notebook"])
    given = {"en": "Answer given to {}:", "fr": "Réponse donnée à {} :"}[language]
    for item in answer_set["widgets"]:
        assert given.format(item) in page, item
    source = nbformat.read(WORKBOOKS / path.parent.parent / answer_set["notebook"], as_version=4)
    texts = _widget_texts(source)
    assert {"en": "405 MB", "fr": "405 Mo"}[language] in page
    assert {"en": "2.5 %", "fr": "2,5 %"}[language] in page
    assert html.escape(texts["w2-plan"]["c"], quote=False) in page
    order = [
        html.escape(texts["w2-order"][key], quote=False)
        for key in answer_set["widgets"]["w2-order"]
    ]
    start = page.index(given.format("w2-order"))
    block = page[start : page.index("</ul>", start)]
    assert all(item in block for item in order)
    assert [block.index(item) for item in order] == sorted(block.index(item) for item in order)
    sorted_cards = answer_set["widgets"]["w2-match"]
    for card, category in sorted_cards.items():
        card, category = (html.escape(texts["w2-match"][k], quote=False) for k in (card, category))
        assert f"<strong>{card} →</strong> <span>{category}</span>" in page, card
    assert html.escape(answer_set["widgets"]["w2-term"], quote=False) in page
    assert "VBox(children" not in page


def test_formgrader_shows_a_hostile_typed_answer_as_text(graded):
    """Does a typed answer holding HTML and a script show as text in formgrader, never as markup?"""
    course, assignments, outcomes = graded
    aid = assignments[HOSTILE_SET]
    assert outcomes[aid, HOSTILE_STUDENT]["status"] == "graded", outcomes[aid, HOSTILE_STUDENT]
    page = formgrader_page(course, HOSTILE_STUDENT, aid, _load(HOSTILE_SET)["notebook"])
    assert "&lt;script&gt;document.title" in page and "onerror" in page
    assert '<script>document.title="pwned"' not in page
    assert '<img src="x"' not in page and "<img src=x" not in page


def _widget_texts(notebook) -> dict[str, dict[str, str]]:
    """Widget id -> its keys' words (options, items, cards and categories), read from the source."""
    import ast

    texts: dict[str, dict[str, str]] = {}
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        try:
            tree = ast.parse(cell.source)
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            widget = isinstance(node, ast.Call) and getattr(node.func, "id", "")[:1].isupper()
            if widget and node.args and isinstance(node.args[0], ast.Constant):
                words: dict[str, str] = {}
                for keyword in node.keywords:
                    if isinstance(keyword.value, ast.Dict):
                        words.update(ast.literal_eval(keyword.value))
                texts[str(node.args[0].value)] = words
    return texts


@pytest.mark.parametrize("language", ["en", "fr"])
def test_the_facilitator_reads_and_marks_the_reflection_written_in_the_view(graded, language):
    """Does the facilitator read the reflection a trainee typed in the view, and can they mark it?

    Workbook 07's reflection is nbgrader's manually graded task (the prompt and rubric) with a
    journal below it. The autograded notebook, and formgrader's page of it, show the trainee's
    text under the rubric; the task waits for a manual grade (the trainee's results say
    "waiting"); a mark given as formgrader gives it counts in the score and reaches the results
    with its comment, under the journal.
    """
    from nbgrader.coursedir import CourseDirectory

    from atelier.grading.instant.items import item_results

    course, assignments, _outcomes = graded
    path = WORKBOOKS / "07-home-learning" / "answers" / f"home-learning.{language}.json"
    answer_set = _load(path)
    aid, name = assignments[path], answer_set["notebook"]
    notebook = name.removesuffix(".ipynb")
    text = answer_set["widgets"]["w7-reflect"]["a"]
    autograded = nbformat.read(course.step_dir("autograded") / STUDENT / aid / name, as_version=4)
    ids = [cell.metadata.get("nbgrader", {}).get("grade_id") for cell in autograded.cells]
    task, journal = autograded.cells[ids.index("reflection")], ids.index("w7-reflect")
    assert task.metadata["nbgrader"]["task"] and ids.index("reflection") + 1 == journal
    shown = {
        kind: "".join(output.get("data", {}).get(kind, ""))
        for output in autograded.cells[journal].outputs
        for kind in ("text/plain", "text/html")
        if kind in output.get("data", {})
    }
    assert text in shown["text/plain"], shown
    page = formgrader_page(course, STUDENT, aid, name)
    rubric = {"en": "Rubric (4 points)", "fr": "évaluation (4 points)"}[language]
    written = html.escape(text[:60], quote=False)
    assert written in page and page.index(rubric) < page.index(written)
    # Formgrader's score and comment boxes of the task, for the facilitator's mark.
    assert 'id="reflection"' in page and 'id="reflection-comment"' in page

    coursedir = CourseDirectory(config=course.nbgrader_config())
    mark = {"en": "Three elements, each an action.", "fr": "Trois éléments, chacun une action."}
    with course.gradebook() as gb:
        grade = gb.find_grade("reflection", notebook, aid, STUDENT)
        assert grade.needs_manual_grade and grade.auto_score is None and grade.max_score == 4
        before = gb.find_submission(aid, STUDENT).score
    waiting = {i["id"]: i for i in item_results(coursedir, aid, STUDENT)["items"]}["reflection"]
    assert (waiting["kind"], waiting["status"], waiting["score"]) == ("manual", "waiting", None)
    assert waiting["widgets"] == ["w7-reflect"]
    try:
        with course.gradebook() as gb:
            # What formgrader's grade and comment boxes do (nbgrader's GradeHandler.put).
            grade = gb.find_grade("reflection", notebook, aid, STUDENT)
            grade.manual_score = 3.0
            grade.needs_manual_grade = False
            gb.find_comment("reflection", notebook, aid, STUDENT).manual_comment = mark[language]
            gb.db.commit()
            assert gb.find_submission(aid, STUDENT).score == before + 3
        results = item_results(coursedir, aid, STUDENT)
        marked = {i["id"]: i for i in results["items"]}["reflection"]
        assert (marked["status"], marked["score"], marked["comment"]) == (
            "marked",
            3.0,
            mark[language],
        )
        assert results["score"] == answer_set["expected_score"] + 3
    finally:
        with course.gradebook() as gb:
            grade = gb.find_grade("reflection", notebook, aid, STUDENT)
            grade.manual_score, grade.needs_manual_grade = None, True
            gb.find_comment("reflection", notebook, aid, STUDENT).manual_comment = None
            gb.db.commit()


def test_every_graded_attempt_is_in_the_item_analysis_log(graded):
    """Does grading log each attempt's item scores (as the gradebook has them) and choices?

    `atelier report items` reads this log (docs/grading.md, "Item analysis"): the gradebook
    keeps only a trainee's latest submission, the log every attempt.
    """
    from atelier.grading import itemanalysis

    course, assignments, _outcomes = graded
    logged = {(r["student"], r["assignment"]): r for r in itemanalysis.read_attempts(course.root)}
    for path in ANSWER_SETS:
        aid, student, answer_set = assignments[path], student_of(path), _load(path)
        record = logged[student, aid]
        with course.gradebook() as gb:
            submission = gb.find_submission(aid, student)
            scores = {
                g.name: (g.score, g.max_score)
                for nb in submission.notebooks
                for g in nb.grades
                if g.auto_score is not None
            }
        assert {k: (v["score"], v["max"]) for k, v in record["items"].items()} == scores, aid
        for item in record["items"].values():
            given = answer_set["widgets"].get(item["widget"])
            if isinstance(given, str) and len(given) <= 200:
                assert item["answer"] == given, (aid, item)
    # The blank submissions are attempts too, with nothing chosen.
    for path in WIDGET_GRADED:
        blank = logged[BLANK, assignments[path]]
        assert all(item["answer"] is None for item in blank["items"].values())
