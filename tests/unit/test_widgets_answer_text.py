"""A widget's answer as text: what formgrader and feedback pages show where the live widget was.

Formgrader renders the autograded notebook with nbconvert, which has no widget state: it shows the
output's ``text/html`` (sanitized with ``clean_html``) or ``text/plain``. Each widget puts the
trainee's answer there, in the workbook's language, escaped, and never its key.
"""

from __future__ import annotations

import pytest
from IPython.core.formatters import DisplayFormatter
from nbconvert.filters.strings import clean_html

from atelier.widgets.assessment import Matching, MultipleChoice, NumericAnswer, Ordering, ShortText
from atelier.widgets.journal import ReflectionJournal
from atelier.widgets.schedule import HomeLearningBalancer
from atelier.widgets.store import AnswerStore
from atelier.widgets.timeline import TimelinePlanner

pytestmark = pytest.mark.unit

HOSTILE = '<script>alert(1)</script><img src=x onerror="alert(2)">'
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


@pytest.fixture
def store(tmp_path):
    return AnswerStore(tmp_path)


def bundle(widget) -> dict:
    """What IPython publishes for the widget as a cell's result (as the kernel or sandbox does)."""
    data, _metadata = DisplayFormatter().format(widget)
    return data


def shown(widget) -> tuple[str, str]:
    """The text and the HTML a page rendered from the stored notebook shows, as formgrader does."""
    data = bundle(widget)
    assert WIDGET_VIEW in data  # the live widget is still what a live page renders
    html = clean_html(data["text/html"])
    # Nothing clean_html refuses: it would show a refused tag as text ("&lt;tbody&gt;").
    assert html == data["text/html"]
    return data["text/plain"], html


def test_a_choice_shows_the_label_of_the_option_chosen_and_not_the_key(store):
    """Does a choice show the chosen option's words, and nothing of the right answer?"""
    options = {"a": "Video at <strong>720p</strong>", "b": "Audio only", "c": "Slides by email"}
    q = MultipleChoice("w2-plan", "Which plan?", options, correct="b", store=store)
    q.value = "a"
    text, html = shown(q)
    assert "Video at 720p" in text and "Video at 720p" in html
    assert "w2-plan" in text
    for giveaway in ("Audio only", "Correct", "Not quite"):
        assert giveaway not in text and giveaway not in html
    several = MultipleChoice("w2-many", "Which?", options, multiple=True, store=store)
    several.value = ["b", "c"]
    text, html = shown(several)
    assert "Audio only" in text and "Slides by email" in html and "720p" not in text


def test_a_number_shows_with_its_unit_in_the_workbook_language(store):
    """Is a number shown with its unit, with a decimal comma in a French workbook?"""
    q = NumericAnswer("w2-afford", "Share of income?", unit="%", store=store, language="fr")
    q.value = 2.5
    text, html = shown(q)
    assert "2,5 %" in text and "2,5 %" in html
    assert "Réponse donnée à w2-afford" in text
    english = NumericAnswer("w2-data", "Megabytes?", unit="MB", store=store, language="en")
    english.value = 1080.0
    assert "1080 MB" in shown(english)[0]


def test_an_ordering_and_a_matching_show_the_list_as_given(store):
    """Are an ordering's items listed in the trainee's order, and each card with its category?"""
    order = Ordering("w2-order", "Order", {"x": "Voice", "y": "Video 360p", "z": "Video 720p"},
                     store=store)  # fmt: skip
    order.value = ["z", "x", "y"]
    text, html = shown(order)
    assert text.index("Video 720p") < text.index("Voice") < text.index("Video 360p")
    assert "<strong>1.</strong> <span>Video 720p</span>" in html
    match = Matching(
        "w2-match", "Sort", {"f": "Fibre at home", "s": "Basic phone"},
        {"video": "Live video", "text": "Text messages"}, store=store,
    )  # fmt: skip
    match.value = {"f": "text"}
    text, html = shown(match)
    assert "Fibre at home → Text messages" in text
    assert "Basic phone → not sorted" in text


def test_typed_text_and_reflections_are_shown_as_text_even_when_hostile(store):
    """Does a typed answer show as written, with HTML and scripts inert in the page?"""
    term = ShortText("w2-term", "Name it", store=store)
    term.value = f"Audio only {HOSTILE}"
    text, html = shown(term)
    assert HOSTILE in text
    assert "<script" not in html and "<img" not in html and "&lt;script&gt;" in html
    journal = ReflectionJournal(
        "w7-reflect", {"what": "What <em>changed</em>?", "next": "What next?"}, store=store
    )
    journal.value = {"what": f"First line\nSecond line {HOSTILE}"}
    text, html = shown(journal)
    assert "1. What changed?" in text and "Second line" in text
    assert "<div>First line</div><div>Second line &lt;script&gt;" in html
    assert "2. What next?" in text and "No answer given." in text
    assert "<script" not in html and "<img" not in html


def test_plans_show_as_a_small_table(store):
    """Is a week plan a table of days by activities, and a session plan a table of segments?"""
    week = HomeLearningBalancer("w7-week", store=store, language="fr")
    week.value = {"mon": {"learning": 180, "play": 30, "exercise": 20, "reflection": 0}}
    text, html = shown(week)
    rows = text.splitlines()
    header = next(r for r in rows if "Jour" in r)
    monday = next(r for r in rows if r.strip().startswith("lun."))
    assert monday.split() == ["lun.", "180", "30", "20", "0"], monday
    assert len(header.split()) == 5
    assert "<pre>" in html and "180" in html
    session = TimelinePlanner("w3-plan", store=store, language="en")
    session.value = [{"activity": "talk", "minutes": 15}, {"activity": "poll", "minutes": 3}]
    text, html = shown(session)
    assert "Talk or slides" in text and "Poll or quiz" in html and "15" in text


def test_an_unanswered_widget_says_so(store):
    """Does a widget nobody answered say 'no answer given' (in the workbook's language)?"""
    q = MultipleChoice("w7-case", "Which?", {"a": "A", "b": "B"}, store=store, language="fr")
    text, html = shown(q)
    assert "Aucune réponse donnée." in text and "Aucune réponse donnée." in html


def test_the_answer_shown_is_the_saved_one_restored(store):
    """When the notebook runs again (autograde), does the output show the answer saved before?"""
    first = NumericAnswer("w2-data", "Megabytes?", unit="MB", store=store, language="en")
    first.value = 405.0
    again = NumericAnswer("w2-data", "Megabytes?", unit="MB", store=store, language="en")
    assert "405 MB" in shown(again)[0]
