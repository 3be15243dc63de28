"""Grading a list of trainees with nbgrader's converters, which take one student or all."""

from __future__ import annotations

import nbformat
import pytest
from nbformat.v4 import new_notebook
from nbgrader.converters import GenerateFeedback
from nbgrader.coursedir import CourseDirectory

from atelier.grading.autograde.share import only_students

pytestmark = pytest.mark.unit


def test_a_converter_finds_the_listed_trainees_only(tmp_path):
    """Does a batch of trainees reach nbgrader's converter as exactly those trainees' notebooks?"""
    for student in ("at-amina", "at-benoit", "at-chen", "at-amina2"):
        folder = tmp_path / "autograded" / student / "quiz-en"
        folder.mkdir(parents=True)
        nbformat.write(new_notebook(), folder / "quiz.en.ipynb")
    coursedir = CourseDirectory(root=str(tmp_path), assignment_id="quiz-en", student_id="*")
    converter = GenerateFeedback(coursedir=coursedir)
    only_students(converter, ["at-amina", "at-chen"])
    converter.init_notebooks()
    found = sorted(path.split("/")[-2] for path in converter.assignments)
    # at-amina2 starts like at-amina: the whole student part of the folder counts.
    assert found == ["at-amina", "at-chen"]
