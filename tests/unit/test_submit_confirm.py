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


def test_an_empty_reflection_journal_below_its_task_is_unanswered(tmp_path):
    """Is a reflection written in the view (a task, then its journal) unanswered until written?

    Workbooks 02 and 07 ask for the reflection in a journal under nbgrader's task cell: the
    task is the prompt and rubric, never an answer; the journal's saved text is the answer.
    """
    from atelier.hub_config.view.submit import item_labels, unanswered

    task = new_markdown_cell("## Reflect (graded by your facilitator)\n\n**Rubric (4 points)**")
    task.metadata["nbgrader"] = {"task": True, "grade": False, "solution": False,
                                 "locked": True, "points": 4, "grade_id": "reflection"}  # fmt: skip
    journal = new_code_cell('ReflectionJournal("w7-reflect", prompts=["Your message."])')
    journal.metadata["nbgrader"] = {"grade": False, "solution": False, "locked": True,
                                    "grade_id": "w7-reflect"}  # fmt: skip
    released, mine = tmp_path / "released", tmp_path / "mine"
    for folder in (released, mine):
        folder.mkdir()
        nbformat.write(new_notebook(cells=[task, journal]), folder / "w7.en.ipynb")
    assert unanswered(mine, released) == [{"id": "w7-reflect", "kind": "widget"}]
    assert item_labels(mine)["w7-reflect"] == "Reflect (graded by your facilitator)"
    answers = {"w7-reflect": {"value": {"a": "Dear students, ..."}, "kind": "journal"}}
    document = {"format": "atelier-answers", "version": 1, "answers": answers}
    (mine / ".atelier-answers.json").write_text(json.dumps(document))
    assert unanswered(mine, released) == []


def test_items_are_named_by_the_heading_a_trainee_reads_above_them(tmp_path):
    """Are unanswered items and results named by their heading, without Markdown, not by ids?"""
    from atelier.hub_config.view.submit import item_labels, plain

    intro = new_markdown_cell("# Quiz\n\n### 2. A *student* who [works](#x) too much (2 points)")
    question = new_code_cell('MultipleChoice("w7-case", "Kofi writes...", {"a": "A"})')
    test = new_code_cell('check_answered("w7-case")')
    test.metadata["nbgrader"] = {"grade": True, "grade_id": "test-w7-case", "points": 2}
    reflection = new_markdown_cell("## Reflection <small>(marked)</small>")
    written = new_markdown_cell("YOUR ANSWER HERE")
    written.metadata["nbgrader"] = {"solution": True, "grade": True, "grade_id": "reflection"}
    nbformat.write(new_notebook(cells=[intro, question, test, reflection, written]),
                   tmp_path / "w7.en.ipynb")  # fmt: skip
    (tmp_path / "broken.ipynb").write_text("{not json")
    labels = item_labels(tmp_path)
    assert labels == {
        "w7-case": "2. A student who works too much (2 points)",
        "test-w7-case": "2. A student who works too much (2 points)",
        "reflection": "Reflection (marked)",
    }
    assert plain("x" * 200).endswith("…") and len(plain("x" * 200)) == 120


def test_a_refusal_reaches_the_trainee_as_a_sentence_never_a_traceback():
    """Does an error reply carry the refusal's own sentence, and a general one for a crash?"""
    from tornado import web

    from atelier.hub_config.view import submit

    class Reply:
        def __init__(self):
            self.body = None

        def set_header(self, *args):
            pass

        def finish(self, body):
            self.body = body

    closed = web.HTTPError(409, submit.words("fr")["closed"])
    reply = Reply()
    submit._Base.write_error(reply, 409, exc_info=(web.HTTPError, closed, None))
    assert reply.body == {"state": "refused", "status": 409,
                          "message": submit.words("fr")["closed"]}  # fmt: skip
    reply = Reply()
    crash = KeyError("grade_id")
    submit._Base.write_error(reply, 500, exc_info=(KeyError, crash, None))
    assert reply.body["message"] == submit.words()["failed"]
    assert "grade_id" not in reply.body["message"]
