"""The answer items of a notebook, found by reading its code (the home page's "n of m")."""

from __future__ import annotations

import json

import pytest
from harness import FIXTURES

from atelier.widgets.items import answered, code_items, notebook_items

pytestmark = pytest.mark.unit


def test_items_are_the_widgets_given_an_id_in_cell_order():
    """Are items the widget calls with a literal id, however the class was imported, each once?"""
    cells = [
        "from atelier.widgets import MultipleChoice, set_language\nset_language('en')",
        'MultipleChoice("q1", "Which?", {"a": "A", "b": "B"})',
        'from atelier import widgets as w\nw.NumericAnswer("q2", "How much?")',
        'import atelier.widgets\natelier.widgets.ShortText(widget_id="q3", question="Why?")',
        'MultipleChoice("q1", "Again the same id")',
        'MultipleChoice(question="Formative: no id, nothing saved")',
        "%%bash\nls",  # not Python: makes no widget
        'Unrelated("q9")',
    ]
    assert code_items(cells) == ["q1", "q2", "q3"]


def test_a_fixture_workbook_has_its_three_questions():
    """Does the home fixture's released workbook have three items, in both languages?"""
    for lang in ("en", "fr"):
        path = FIXTURES / "home" / "01-progress" / f"progress.{lang}.ipynb"
        notebook = json.loads(path.read_text("utf-8"))
        assert notebook_items(notebook) == ["progress-q1", "progress-q2", "progress-q3"]


def test_an_item_counts_as_answered_only_with_a_value():
    """Is an emptied answer, or an answer to another id, not counted?"""
    answers = {
        "q1": {"value": ["b"]},
        "q2": {"value": ""},
        "q3": {"value": None},
        "q4": "not an entry",
        "other": {"value": 3},
    }
    assert answered(["q1", "q2", "q3", "q4", "q5"], answers) == ["q1"]
