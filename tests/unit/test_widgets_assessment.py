"""Assessment widgets, headless: set values as a trainee would; check state, feedback, saves."""

from __future__ import annotations

import pytest

from atelier.errors import AtelierError
from atelier.widgets.assessment import Matching, MultipleChoice, NumericAnswer, Ordering, ShortText
from atelier.widgets.store import AnswerStore

pytestmark = pytest.mark.unit

OPTIONS = {"a": "270 MB", "b": "540 MB", "c": "4.3 GB"}
FEEDBACK = {"a": "You counted one direction only.", "c": "Megabits are not megabytes."}


@pytest.fixture
def store(tmp_path):
    return AnswerStore(tmp_path)


def saved(store, widget_id):
    return store.get(widget_id)["value"]


def test_single_choice_formative_feedback_names_the_misconception(store):
    """Does a wrong choice show its misconception and 'not quite', and a right one 'correct'?"""
    q = MultipleChoice(
        "q1", "Data for one hour?", OPTIONS, feedback=FEEDBACK, correct="b", store=store
    )
    q._radio.value = "a"  # the trainee clicks option a
    assert q.value == "a" and saved(store, "q1") == "a"
    assert "one direction only" in q.feedback and "Not quite" in q.feedback
    q.value = "b"
    assert q._radio.value == "b" and "Correct." in q.feedback and "one direction" not in q.feedback


def test_graded_choice_shows_no_verdict(store):
    """Does a question without its key only record the answer (nothing reveals right or wrong)?"""
    q = MultipleChoice("q1", "Data for one hour?", OPTIONS, store=store)
    q._radio.value = "c"
    assert q.feedback == "" and saved(store, "q1") == "c"
    assert "saved" in q.status


def test_several_answers_with_check_boxes(store):
    """Are chosen boxes saved in option order, and is a partial answer not 'wrong'?"""
    q = MultipleChoice(
        "q2", "Which?", ["x", "y", "z"], multiple=True, correct=["a", "c"], store=store
    )
    q._boxes[2].value = True
    assert q.value == ["c"] and "still missing" in q.feedback
    q._boxes[0].value = True
    assert q.value == ["a", "c"] and saved(store, "q2") == ["a", "c"] and "Correct." in q.feedback
    q.value = ["b"]
    assert [box.value for box in q._boxes] == [False, True, False] and "Not quite" in q.feedback


def test_choice_accessible_labels():
    """Is every option a labelled control, and does the group have a label?"""
    q = MultipleChoice(None, "Q?", OPTIONS)
    assert q._radio.description == "Choose one answer"
    assert [label for label, _key in q._radio.options] == list(OPTIONS.values())
    boxes = MultipleChoice(None, "Q?", OPTIONS, multiple=True)._boxes
    assert [box.description for box in boxes] == list(OPTIONS.values())


def test_choice_key_must_be_an_option():
    """Is a key naming no option an author error with a clear message?"""
    with pytest.raises(AtelierError, match="not options"):
        MultipleChoice("q1", "Q?", OPTIONS, correct="z")


def test_restored_choice_drops_options_that_no_longer_exist(store):
    """If the author removed an option, does the restored answer stay valid?"""
    store.save("q1", ["a", "gone"], "choice")
    q = MultipleChoice("q1", "Q?", ["x", "y"], multiple=True, store=store)
    assert q.value == ["a"]


@pytest.mark.parametrize(
    "typed, number", [("270", 270.0), ("268,5", 268.5), ("1 200", 1200.0), ("1,200.5", 1200.5)]
)
def test_numeric_reads_both_decimal_marks(store, typed, number):
    """Does '268,5' (French) count like '268.5', and '1 200' like 1200?"""
    q = NumericAnswer("q3", "MB?", unit="MB", store=store)
    q._text.value = typed
    assert q.value == number and saved(store, "q3") == number


def test_numeric_tolerance_and_hints(store):
    """Is an answer within tolerance correct, and does a typical wrong answer get its hint?"""
    q = NumericAnswer(
        "q3",
        "MB?",
        unit="MB",
        correct=540,
        tolerance=10,
        hints=[(260, 280, "One direction only?")],
        store=store,
    )
    q._text.value = "549"
    assert q.is_correct() and "Correct." in q.feedback
    q._text.value = "270"
    assert not q.is_correct() and "One direction only?" in q.feedback
    assert q._text.description == "Your answer (MB)"


def test_numeric_rejects_text_without_losing_the_answer(store):
    """Does typing words give a message while the last number stays saved?"""
    q = NumericAnswer("q3", "MB?", store=store)
    q._text.value = "540"
    q._text.value = "about five hundred"
    assert q.value == 540 and saved(store, "q3") == 540
    assert "is not a number" in q.feedback and q._text.value == "about five hundred"


def test_numeric_shows_a_french_decimal_comma(store):
    """Is a restored 2.5 shown as 2,5 in a French workbook?"""
    store.save("q3", 2.5, "numeric")
    assert NumericAnswer("q3", "?", store=store, language="fr")._text.value == "2,5"


def test_short_text_ignores_case_accents_and_spacing(store):
    """Is ' Bande Passante. ' accepted for 'bande passante', and empty text no answer at all?"""
    q = ShortText("q4", "?", accept=["bande passante"], store=store)
    q._text.value = "  Bande   Passante. "
    assert q.value == "Bande   Passante." and "Correct." in q.feedback
    q._text.value = "débit"
    assert "Not quite" in q.feedback
    q._text.value = "   "
    assert q.value is None and q.feedback == ""
    assert ShortText("q4", "?", accept=["bände"], store=store) is not None


def test_ordering_by_buttons(store):
    """Do the move buttons reorder, save the order and count items in place?"""
    q = Ordering(
        "q5", "Order", {"p": "Plan", "d": "Do", "r": "Review"}, correct=["p", "d", "r"], store=store
    )
    assert q.value is None
    first_up = q._list.children[0].children[1]
    last_down = q._list.children[2].children[2]
    assert first_up.disabled and last_down.disabled
    _label, _up, down = q._list.children[1].children
    assert down.description == "Move 2 down"
    down.click()
    assert q.value == ["p", "r", "d"] and saved(store, "q5") == ["p", "r", "d"]
    assert "1 of 3" in q.feedback
    q.move("d", -1)
    assert q.value == ["p", "d", "r"] and "Correct" in q.feedback
    assert q._list.children[0].children[0].value.startswith("<strong>1.</strong> Plan")


def test_ordering_can_confirm_the_order_shown(store):
    """Can a trainee who agrees with the order shown give it as the answer?"""
    q = Ordering("q5", "Order", ["one", "two"], store=store)
    q._confirm.click()
    assert q.value == ["a", "b"] and saved(store, "q5") == ["a", "b"]


def test_ordering_needs_every_item_in_its_key():
    """Is an incomplete key refused?"""
    with pytest.raises(AtelierError, match="every item"):
        Ordering("q5", "Order", ["one", "two"], correct=["a"])


def test_matching_card_sort(store):
    """Does sorting cards with labelled menus save card -> category and count the right ones?"""
    q = Matching(
        "q6",
        "Sort",
        {"zoom": "Live lecture", "pdf": "Reading"},
        {"sync": "Synchronous", "async": "Asynchronous"},
        correct={"zoom": "sync", "pdf": "async"},
        store=store,
    )
    assert q._menus["zoom"].description == "Live lecture"
    q._menus["zoom"].value = "sync"
    assert q.value == {"zoom": "sync"} and "1 of 2" in q.feedback
    q._menus["pdf"].value = "async"
    assert saved(store, "q6") == {"zoom": "sync", "pdf": "async"} and "every card" in q.feedback
    q.value = None
    assert all(menu.value is None for menu in q._menus.values())


def test_matching_key_must_name_cards_and_categories():
    """Is a key naming an unknown card refused?"""
    with pytest.raises(AtelierError, match="unknown cards"):
        Matching("q6", "Sort", ["x", "y"], ["c", "d"], correct={"zz": "a"})
