"""Build plain nbgrader course directories with one submission per trainee, for grading tests.

The assignment is ``tests/fixtures/autograde/ps1.ipynb`` (two autograded answers with visible and
hidden tests, one written answer). A submission is the released notebook with the answer cells
replaced by the given code, optionally transformed (tampering cases).
"""

from __future__ import annotations

import copy
import datetime
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "autograde" / "ps1.ipynb"
BIN = Path(sys.executable).parent
#: The assignment's due date; submissions are on time unless ``late=True``.
DUE = datetime.datetime(2026, 11, 25, 12, 0, 0)

RIGHT = {
    "squares": "def squares(n):\n    return [i * i for i in range(1, n + 1)]",
    "mean": "def mean(values):\n    return sum(values) / len(values)",
    "written": "Because a wrong formula in a spreadsheet is easy to miss.",
}
WRONG = {**RIGHT, "squares": "def squares(n):\n    return [i * 2 for i in range(1, n + 1)]"}
RAISING = {**RIGHT, "mean": "def mean(values):\n    raise ValueError('not done yet')"}


def make_course(root: Path, assignment: str = "ps1", config: str = "", notebooks=None) -> Path:
    """A course at ``root`` with ``assignment`` generated (source, release, gradebook).

    ``notebooks`` maps the assignment's notebook names to fixture files (default: one notebook
    named as the assignment, from :data:`FIXTURE`).
    """
    root.mkdir(parents=True, exist_ok=True)
    (root / "nbgrader_config.py").write_text(
        "c = get_config()\n"
        f"c.CourseDirectory.root = {str(root)!r}\n"
        "c.CourseDirectory.course_id = 'testcourse'\n"
        "c.Execute.timeout = 5\n" + config
    )
    source = root / "source" / assignment
    source.mkdir(parents=True, exist_ok=True)
    for name, fixture in (notebooks or {assignment: FIXTURE}).items():
        shutil.copy(fixture, source / f"{name}.ipynb")
    env = dict(os.environ, PATH=f"{BIN}:{os.environ['PATH']}")
    subprocess.run(
        [str(BIN / "nbgrader"), "generate_assignment", assignment, "--force", "--log-level=ERROR"],
        cwd=root,
        env=env,
        check=True,
        capture_output=True,
    )
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{root / 'gradebook.db'}", course_id="testcourse") as gb:
        gb.update_or_create_assignment(assignment, duedate=DUE)
    return root


def submit(root: Path, student: str, answers: dict, assignment: str = "ps1", transform=None,
           raw: bytes | None = None, late: bool = False, notebook: str = "") -> Path:  # fmt: skip
    """Write ``student``'s submission: the released notebook with ``answers`` by grade id."""
    notebook = notebook or assignment
    release = root / "release" / assignment / f"{notebook}.ipynb"
    nb = nbformat.read(release, as_version=4)
    nb = copy.deepcopy(nb)
    for cell in nb.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if grade_id in answers:
            cell.source = answers[grade_id]
    if transform:
        nb = transform(nb) or nb
    folder = root / "submitted" / student / assignment
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{notebook}.ipynb"
    if raw is not None:
        path.write_bytes(raw)
    else:
        nbformat.write(nb, path)
    when = datetime.datetime(2026, 11, 20, 10, 0, 0) + datetime.timedelta(days=30 if late else 0)
    (folder / "timestamp.txt").write_text(when.strftime("%Y-%m-%d %H:%M:%S.%f UTC"))
    return path


def scores(root: Path, assignment: str = "ps1", course_id: str = "testcourse") -> dict:
    """Gradebook entries: ``{student: {grade_id: (auto, manual, needs_manual_grade)}}``."""
    from nbgrader.api import Gradebook

    result = {}
    with Gradebook(f"sqlite:///{root / 'gradebook.db'}", course_id=course_id) as gb:
        for submission in gb.find_assignment(assignment).submissions:
            grades = {}
            for notebook in submission.notebooks:
                for grade in notebook.grades:
                    grades[grade.name] = (
                        grade.auto_score,
                        grade.manual_score,
                        grade.needs_manual_grade,
                    )
                for comment in notebook.comments:
                    grades["comment:" + comment.name] = (
                        comment.auto_comment,
                        comment.manual_comment,
                    )
            grades["late"] = submission.total_seconds_late
            result[submission.student.id] = grades
    return result


def stock_autograde(course: Path, *args: str, assignment: str = "ps1"):
    """Stock ``nbgrader autograde`` of ``assignment`` in ``course`` (the reference scores)."""
    env = dict(os.environ, PATH=f"{BIN}:{os.environ['PATH']}")
    return subprocess.run(
        [str(BIN / "nbgrader"), "autograde", assignment, "--log-level=ERROR", *args],
        cwd=course,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
