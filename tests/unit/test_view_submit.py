"""The confirm step of Submit: which items are still unanswered (no server)."""

from __future__ import annotations

import json

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook


def _notebook(answer: str):
    widget = new_code_cell(
        "from atelier.widgets.assessment import MultipleChoice\n"
        'MultipleChoice("quiz-q1", "Which?", {"a": "A", "b": "B"})\n'
        'Numeric(widget_id="quiz-n1", prompt="How many?")'
    )
    written = new_markdown_cell(answer)
    written.metadata["nbgrader"] = {"solution": True, "grade": True, "grade_id": "reflection"}
    return new_notebook(cells=[widget, written])


def test_unanswered_lists_widgets_without_a_value_and_untouched_written_answers(tmp_path):
    """Does the confirm step list an unanswered widget and a written answer left as released?"""
    from atelier.hub_config.view.submit import unanswered

    released, mine = tmp_path / "released", tmp_path / "mine"
    released.mkdir()
    mine.mkdir()
    nbformat.write(_notebook("YOUR ANSWER HERE"), released / "quiz.en.ipynb")
    nbformat.write(_notebook("YOUR ANSWER HERE"), mine / "quiz.en.ipynb")
    answers = {"quiz-q1": {"value": "b", "kind": "choice", "saved": "2026-12-01T10:00:00Z"}}
    document = {"format": "atelier-answers", "version": 1, "answers": answers}
    (mine / ".atelier-answers.json").write_text(json.dumps(document))
    assert unanswered(mine, released) == [
        {"id": "quiz-n1", "kind": "widget"},
        {"id": "reflection", "kind": "written"},
    ]
    nbformat.write(_notebook("I would use it weekly."), mine / "quiz.en.ipynb")
    assert unanswered(mine, released) == [{"id": "quiz-n1", "kind": "widget"}]
