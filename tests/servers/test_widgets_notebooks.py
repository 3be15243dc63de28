"""Widgets in real kernels: every widget under papermill; nbgrader grading answers given by widgets.

The nbgrader test builds a tiny course in a temporary folder with nbgrader's own command line
(``generate_assignment``, ``autograde``), as a facilitator would; only the trainee's side (opening
the released notebook and answering) is done headless, through the same widgets, in the submission
folder.
"""

from __future__ import annotations

import getpass
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from atelier.widgets.assessment import Matching, MultipleChoice, NumericAnswer
from atelier.widgets.store import ANSWERS_FILENAME, AnswerStore

pytestmark = pytest.mark.server

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "widgets"
BIN = Path(sys.executable).parent


@pytest.mark.parametrize("language", ["en", "fr"])
def test_every_widget_runs_under_papermill(tmp_path, language):
    """Does a notebook creating and answering every widget run in a kernel, in each language?"""
    import papermill

    notebook = tmp_path / "every-widget.ipynb"
    shutil.copy(FIXTURES / "every-widget.ipynb", notebook)
    papermill.execute_notebook(
        str(notebook),
        str(tmp_path / "out.ipynb"),
        parameters={"language": language},
        cwd=str(tmp_path),
        progress_bar=False,
        kernel_name="python3",
    )
    executed = nbformat.read(tmp_path / "out.ipynb", as_version=4)
    errors = [
        o
        for c in executed.cells
        if c.cell_type == "code"
        for o in c.outputs
        if o.output_type == "error"
    ]
    assert not errors
    document = json.loads((tmp_path / ANSWERS_FILENAME).read_text("utf-8"))
    assert len(document["answers"]) == 12


# -- nbgrader ------------------------------------------------------------------------------------

QUESTION_CELLS = [
    """from atelier.widgets import Matching, MultipleChoice, NumericAnswer

q1 = MultipleChoice("ps1-q1", "How much data does one hour of 360p video use, both ways?",
                    {"a": "270 MB", "b": "540 MB", "c": "4.3 GB"})
q1""",
    """q2 = NumericAnswer("ps1-q2", "Megabytes per hour at 0.6 Mbps, one way?", unit="MB")
q2""",
    """q3 = Matching("ps1-q3", "Sort the activities.", {"zoom": "Live lecture", "pdf": "Reading"},
              {"sync": "Synchronous", "async": "Asynchronous"})
q3""",
]
# The keys are only in hidden tests: generate_assignment removes them from the trainee's copy.
TEST_CELLS = [
    (
        "test-q1",
        1,
        """from atelier.widgets.grading import check_choice
### BEGIN HIDDEN TESTS
check_choice("ps1-q1", "b", feedback={"a": "You counted one direction only."})
### END HIDDEN TESTS""",
    ),
    (
        "test-q2",
        2,
        """from atelier.widgets.grading import check_numeric
### BEGIN HIDDEN TESTS
check_numeric("ps1-q2", 270, 5, unit="MB")
### END HIDDEN TESTS""",
    ),
    (
        "test-q3",
        2,
        """from atelier.widgets.grading import score_matching
### BEGIN HIDDEN TESTS
score_matching("ps1-q3", {"zoom": "sync", "pdf": "async"}, points=2)
### END HIDDEN TESTS""",
    ),
]


def source_notebook() -> nbformat.NotebookNode:
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    for source in QUESTION_CELLS:
        notebook.cells.append(nbformat.v4.new_code_cell(source))
    for grade_id, points, source in TEST_CELLS:
        cell = nbformat.v4.new_code_cell(source)
        cell.metadata["nbgrader"] = {
            "grade": True,
            "grade_id": grade_id,
            "locked": True,
            "points": points,
            "schema_version": 3,
            "solution": False,
            "task": False,
        }
        notebook.cells.append(cell)
    return notebook


def nbgrader(course: Path, *args: str) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [str(BIN / "nbgrader"), *args],
        cwd=course,
        capture_output=True,
        text=True,
        timeout=300,
        # nbgrader runs `alembic` from PATH when it creates the gradebook.
        env={**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def answer_as_trainee(folder: Path, choice, number_typed, sorted_cards) -> None:
    """What a trainee's clicks do in the released notebook: widgets save into the submission."""
    store = AnswerStore(folder, notebook="ps1.ipynb")
    if choice is not None:
        MultipleChoice(
            "ps1-q1", "?", {"a": "270 MB", "b": "540 MB", "c": "4.3 GB"}, store=store
        )._radio.value = choice
    if number_typed is not None:
        NumericAnswer("ps1-q2", "?", unit="MB", store=store)._text.value = number_typed
    if sorted_cards is not None:
        matching = Matching(
            "ps1-q3", "?", {"zoom": "z", "pdf": "p"}, {"sync": "S", "async": "A"}, store=store
        )
        for card, category in sorted_cards.items():
            matching._menus[card].value = category


def test_nbgrader_autograde_scores_answers_given_through_widgets(tmp_path):
    """Do widget answers travel with submit and collect, and does autograde score them right?

    Keys are only in hidden tests; matching gets partial credit; no answer scores 0.

    One trainee goes through nbgrader's own exchange (release, fetch, answer, submit, collect);
    the others' submissions are placed in ``submitted/`` as collect would leave them.
    """
    course, exchange, home = tmp_path / "course", tmp_path / "exchange", tmp_path / "home"
    (course / "source" / "ps1").mkdir(parents=True)
    exchange.mkdir(mode=0o777)
    home.mkdir()
    trainee_config = (
        "c = get_config()\n"
        "c.CourseDirectory.course_id = 'widgets-course'\n"
        f"c.Exchange.root = {str(exchange)!r}\n"
    )
    (home / "nbgrader_config.py").write_text(trainee_config, "utf-8")
    facilitator_config = trainee_config + f"c.CourseDirectory.root = {str(course)!r}\n"
    (course / "nbgrader_config.py").write_text(facilitator_config, "utf-8")
    nbformat.write(source_notebook(), course / "source" / "ps1" / "ps1.ipynb")
    nbgrader(course, "generate_assignment", "ps1", "--force")

    released = course / "release" / "ps1"
    release_text = (released / "ps1.ipynb").read_text("utf-8")
    assert 'check_choice("ps1-q1", "b"' not in release_text and '"zoom": "sync"' not in release_text
    assert "270, 5" not in release_text
    assert sorted(p.name for p in released.iterdir()) == ["ps1.ipynb"], (
        "no answers file is released"
    )

    # The trainee's side, through the exchange.
    nbgrader(course, "release_assignment", "ps1", "--force")
    nbgrader(home, "fetch_assignment", "ps1", "--course=widgets-course")
    answer_as_trainee(home / "ps1", "a", "268,5", {"zoom": "sync", "pdf": "sync"})
    nbgrader(home, "submit", "ps1", "--course=widgets-course")
    nbgrader(course, "collect", "ps1")
    exchanged = getpass.getuser()
    assert (course / "submitted" / exchanged / "ps1" / ANSWERS_FILENAME).exists(), (
        "submit carries it"
    )

    trainees = {
        exchanged: None,
        "all-right": ("b", "270", {"zoom": "sync", "pdf": "async"}),
        "silent": (None, None, None),
    }
    for student, answers in trainees.items():
        if answers is None:
            continue
        submission = course / "submitted" / student / "ps1"
        shutil.copytree(released, submission)
        (submission / "timestamp.txt").write_text("2026-11-28 10:00:00.000000 UTC", "utf-8")
        answer_as_trainee(submission, *answers)

    nbgrader(course, "autograde", "ps1", "--force")

    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}", course_id="widgets-course") as gradebook:
        scores = {}
        for student in trainees:
            notebook = gradebook.find_submission_notebook("ps1", "ps1", student)
            scores[student] = {grade.name: grade.score for grade in notebook.grades}
    assert scores["all-right"] == {"test-q1": 1, "test-q2": 2, "test-q3": 2}
    assert scores[exchanged] == {"test-q1": 0, "test-q2": 2, "test-q3": 1}
    assert scores["silent"] == {"test-q1": 0, "test-q2": 0, "test-q3": 0}

    autograded = course / "autograded" / exchanged / "ps1"
    graded = nbformat.read(autograded / "ps1.ipynb", as_version=4)
    failure = "".join(
        "".join(output.get("traceback", []))
        for cell in graded.cells
        for output in cell.get("outputs", [])
    )
    assert "You counted one direction only." in failure, "the hidden feedback reaches the trainee"
    assert (autograded / ANSWERS_FILENAME).exists()
