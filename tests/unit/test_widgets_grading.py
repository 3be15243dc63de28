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
    with pytest.raises(AssertionError, match=r"\(538 MB\)"):
        grading.check_numeric("q2", 540, 1, unit="MB")


def test_numeric_failure_names_the_typical_mistake_and_what_was_expected(answered):
    """Does a wrong number fail with the hint of its range and the expected value, in French?"""
    hints = [(530, 539, "Vous avez arrondi trop tôt."), (2000, 2200, "Divisez par 8.")]
    with pytest.raises(AssertionError) as failed:
        grading.check_numeric(
            "q2", 540, 1, unit="Mo", hints=hints, explanation="540 Mo.", language="fr"
        )
    message = str(failed.value)
    assert "(538 Mo)" in message and "Vous avez arrondi trop tôt." in message
    assert "Divisez" not in message and message.endswith("Ce qui était attendu : 540 Mo.")


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


def test_every_check_says_what_was_expected(answered):
    """Does each kind of check end its failure with the author's explanation?"""
    calls = [
        lambda: grading.check_choice("q1", "b", explanation="B."),
        lambda: grading.check_text("q3", "latence", explanation="B."),
        lambda: grading.check_order("q4", ["a", "b", "c"], explanation="B."),
        lambda: grading.check_matching("q5", {"a": "s", "b": "t"}, explanation="B."),
    ]
    for call in calls:
        with pytest.raises(AssertionError, match=r"Expected: B\.$"):
            call()


def test_partial_credit_says_what_was_missed(answered, capsys):
    """Does a partly right ordering print, in French, how many are in place and what is expected?"""
    assert grading.score_order("q4", ["a", "b", "c"], 3, explanation="a, b, c.", language="fr") == 1
    printed = capsys.readouterr().out
    assert "1 élément(s) sur 3" in printed and "Ce qui était attendu : a, b, c." in printed
    assert grading.score_order("q4", ["a", "c", "b"], 3, explanation="?") == 3
    assert capsys.readouterr().out == ""


def test_check_answered_reveals_no_key(answered):
    """Does the visible part of a widget test pass on any answer and fail on none?"""
    grading.check_answered("q1")
    with pytest.raises(AssertionError, match="No answer was saved for this question"):
        grading.check_answered("q9")


@pytest.mark.parametrize("language", ["en", "fr"])
def test_failures_never_name_a_widget_id(answered, language):
    """Does a failure the trainee reads under an item say "this question", never the widget's id?

    The view shows each message under its item, so the id (``q9``, ``w7-match``) would only be a
    code the trainee cannot place.
    """
    failures = [
        lambda: grading.check_answered("q9", language=language),
        lambda: grading.check_choice("q1", "b", language=language),
    ]
    said = []
    for failing in failures:
        with pytest.raises(AssertionError) as raised:
            failing()
        said.append(str(raised.value))
    assert (
        said[0]
        == {
            "en": "No answer was saved for this question.",
            "fr": "Aucune réponse n’a été enregistrée pour cette question.",
        }[language]
    )
    assert all("q9" not in text and "q1" not in text for text in said), said


def test_answers_of_the_wrong_shape_fail_without_crashing(tmp_path, monkeypatch):
    """Does an answers file edited by hand (a string for an order) fail the test, not the grader?"""
    store = AnswerStore(tmp_path)
    store.save("o", "a, b, c", "order")
    store.save("m", ["x"], "matching")
    store.save("n", "540", "numeric")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(AssertionError):
        grading.check_order("o", ["a", "b", "c"])
    with pytest.raises(AssertionError):
        grading.check_matching("m", {"x": "y"})
    with pytest.raises(AssertionError):
        grading.check_numeric("n", 540, hints=[(0, 1000, "?")])
    with pytest.raises(AssertionError):
        grading.check_schedule("m")


def _week(**changes):
    """A balanced week (learning, play, exercise daily; reflection on Friday), then ``changes``."""
    week = {d: {"learning": 120, "play": 60, "exercise": 30, "reflection": 0} for d in grading.DAYS}
    week["fri"]["reflection"] = 15
    for day, plan in changes.items():
        week[day] = plan
    return week


def test_schedule_rules_are_the_balancer_rules():
    """Is a week the balancer calls balanced accepted by the grader, and the same faults found?"""
    from atelier.widgets.schedule import check

    assert grading.schedule_problems(_week()) == (3, [])
    lazy = _week(sat={"learning": 300, "play": 0, "exercise": 0, "reflection": 0})
    rules, problems = grading.schedule_problems(lazy, 240)
    assert rules == 4
    assert [p for p, _ in problems] == ["no_play", "no_exercise", "too_much_learning"]
    assert check(lazy, 240) == [
        ("no_play", ["sat"]),
        ("no_exercise", ["sat"]),
        ("too_much_learning", ["sat"]),
    ]


def test_check_schedule_names_every_broken_rule_in_french(tmp_path, monkeypatch):
    """Does a plan that breaks two rules fail with both, in French, and score in proportion?"""
    store = AnswerStore(tmp_path)
    store.save("week", _week(sun={"learning": 60, "play": 30, "exercise": 0}), "schedule")
    store.save("good", _week(), "schedule")
    monkeypatch.chdir(tmp_path)
    rules = {"max_learning_minutes": 240, "weekly_minimum": {"learning": 900}}
    with pytest.raises(AssertionError) as failed:
        grading.check_schedule("week", **rules, explanation="Au moins 900 min.", language="fr")
    message = str(failed.value)
    assert "enfreint 2 de ses 5 règles" in message
    assert "dimanche" in message.lower() and "780 minutes" in message
    assert message.endswith("Ce qui était attendu : Au moins 900 min.")
    assert grading.score_schedule("week", 5, **rules) == 3.0
    assert grading.score_schedule("week", 5, **{**rules, "weekly_minimum": {"learning": 700}}) == 4
    assert grading.score_schedule("missing", 5) == 0.0
    store.save("empty", {d: dict.fromkeys(grading.ACTIVITIES, 0) for d in grading.DAYS}, "schedule")
    assert grading.score_schedule("empty", 5, **rules) == 0.0  # no learning day breaks no rule
    with pytest.raises(AssertionError, match="Aucune réponse"):
        grading.check_schedule("empty", language="fr")
    grading.check_schedule("good", weekly_maximum={"learning": 900})
    with pytest.raises(AssertionError, match="Learning: 840 minutes in the week, more than"):
        grading.check_schedule("good", weekly_maximum={"learning": 700}, language="en")


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
