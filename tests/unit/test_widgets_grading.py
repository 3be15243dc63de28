"""The grading helpers that nbgrader's hidden test cells call on answers saved by widgets."""

from __future__ import annotations

import pytest

from atelier.widgets import grading
from atelier.widgets.assessment import Matching, MultipleChoice, NumericAnswer, Ordering, ShortText
from atelier.widgets.store import AnswerStore

pytestmark = pytest.mark.unit


@pytest.fixture
def answered(tmp_path, monkeypatch):
    """A folder where a trainee answered five questions through widgets; tests run from it."""
    store = AnswerStore(tmp_path)
    MultipleChoice("q1", "?", {"a": "x", "b": "y", "c": "z"}, store=store).value = "a"
    NumericAnswer("q2", "?", unit="MB", store=store)._text.value = "538"
    ShortText("q3", "?", store=store)._text.value = "Bande passante"
    Ordering("q4", "?", ["p", "d", "r"], store=store).move("c", -1)
    Matching("q5", "?", ["x", "y"], {"s": "S", "t": "T"}, store=store).value = {"a": "s", "b": "s"}
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_answer_reads_what_the_widgets_saved(answered):
    """Does answer() give back each value exactly as saved?"""
    assert grading.answer("q1") == "a"
    assert grading.answer("q2") == 538.0
    assert grading.answer("q4") == ["a", "c", "b"]
    assert grading.answer("never-answered") is None
    assert set(grading.answers()) == {"q1", "q2", "q3", "q4", "q5"}


def test_check_choice_passes_and_fails_with_the_misconception(answered):
    """Does a wrong choice fail with the hidden feedback of the option chosen?"""
    with pytest.raises(AssertionError, match=r"not correct\. Averages hide"):
        grading.check_choice("q1", "b", feedback={"a": "Averages hide the spread."})
    grading.check_choice("q1", "a")
    grading.check_choice("q1", ["a"])


def test_check_numeric_with_tolerance(answered):
    """Is 538 right for 540 ± 5 and wrong for 540 ± 1?"""
    grading.check_numeric("q2", 540, 5)
    with pytest.raises(AssertionError, match=r"\(538.0 MB\)"):
        grading.check_numeric("q2", 540, 1, unit="MB")


def test_check_text_is_kind(answered):
    """Is 'bande passante' accepted for 'Bande passante'?"""
    grading.check_text("q3", ["bande passante", "débit"])
    with pytest.raises(AssertionError):
        grading.check_text("q3", "latence")


def test_partial_credit_for_ordering_and_matching(answered):
    """Do score_order and score_matching give points in proportion?"""
    assert grading.score_order("q4", ["a", "b", "c"], points=3) == 1.0
    assert grading.score_matching("q5", {"a": "s", "b": "t"}, points=2) == 1.0
    assert grading.score_order("missing", ["a"], points=3) == 0.0
    with pytest.raises(AssertionError, match="1 of 3"):
        grading.check_order("q4", ["a", "b", "c"])
    with pytest.raises(AssertionError, match="1 of 2"):
        grading.check_matching("q5", {"a": "s", "b": "t"})


def test_no_answer_fails_in_the_trainee_language(answered):
    """Is a missing answer a failed test (score 0) with a message, in French if asked?"""
    with pytest.raises(AssertionError, match="Aucune réponse"):
        grading.check_choice("q9", "a", language="fr")


def test_a_folder_without_answers_scores_zero(tmp_path, monkeypatch):
    """With no answers file at all, do checks fail rather than crash the grader?"""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(AssertionError, match="No answer"):
        grading.check_numeric("q2", 1)
    assert grading.score_matching("q5", {"a": "s"}) == 0.0
