"""Grading answers given through widgets, from nbgrader's hidden test cells.

Rule: the key is never in the released notebook. The author writes it in a hidden test cell
(``### BEGIN HIDDEN TESTS`` ... ``### END HIDDEN TESTS``, which ``nbgrader generate_assignment``
strips) and checks the saved answer there::

    from atelier.widgets.grading import check_choice
    check_choice("w5-q1", "b", feedback={"a": "Averages hide the spread: ..."})

Each ``check_*`` raises ``AssertionError`` with a message the trainee sees in nbgrader's feedback
(a missing answer is wrong, never an error of the grader); each ``score_*`` returns the points
earned (nbgrader reads a number as the cell's partial credit when it is the cell's last expression).
Answers are read from the answers file of the working directory, which is the autograded
submission's folder when ``nbgrader autograde`` runs the test cells.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from atelier.widgets import i18n
from atelier.widgets.store import AnswerStore

_NO_ANSWER = object()


def answers(directory: str | None = None) -> dict[str, Any]:
    """Widget id -> saved value, from the answers file of ``directory`` (default: here)."""
    store = AnswerStore(directory)
    return {widget_id: entry.get("value") for widget_id, entry in store.read()["answers"].items()}


def answer(widget_id: str, directory: str | None = None, default: Any = None) -> Any:
    """The saved value of widget ``widget_id`` (``default`` if it was never answered)."""
    return answers(directory).get(widget_id, default)


def _given(widget_id: str, directory: str | None, language: str | None) -> Any:
    value = answers(directory).get(widget_id, _NO_ANSWER)
    if value is _NO_ANSWER or value is None:
        raise AssertionError(i18n.translate("grading.no_answer", language, id=widget_id))
    return value


def check_choice(
    widget_id: str,
    correct: str | Sequence[str],
    *,
    feedback: Mapping[str, str] | None = None,
    directory: str | None = None,
    language: str | None = None,
) -> None:
    """Assert that the choice saved for ``widget_id`` is exactly ``correct`` (a key, or keys).

    ``feedback`` (option key -> misconception) is added to the failure message for each wrong key
    chosen.
    """
    value = _given(widget_id, directory, language)
    chosen = {value} if isinstance(value, str) else set(value)
    expected = {correct} if isinstance(correct, str) else set(correct)
    if chosen != expected:
        notes = [feedback[k] for k in sorted(chosen - expected) if feedback and k in feedback]
        message = i18n.translate("grading.wrong_choice", language, id=widget_id)
        raise AssertionError(" ".join([message, *notes]))


def check_numeric(
    widget_id: str,
    correct: float,
    tolerance: float = 0.0,
    *,
    unit: str = "",
    directory: str | None = None,
    language: str | None = None,
) -> None:
    """Assert that the number saved for ``widget_id`` is within ``tolerance`` of ``correct``."""
    value = _given(widget_id, directory, language)
    if not isinstance(value, int | float) or abs(value - correct) > abs(tolerance) + 1e-9 * max(
        1, abs(correct)
    ):
        raise AssertionError(
            i18n.translate(
                "grading.wrong_number", language, id=widget_id, value=value, unit=unit
            ).strip()
        )


def check_text(
    widget_id: str,
    accept: str | Sequence[str],
    *,
    directory: str | None = None,
    language: str | None = None,
) -> None:
    """Assert that the text saved for ``widget_id`` is in ``accept`` (case, accents ignored)."""
    value = _given(widget_id, directory, language)
    accepted = {i18n.normalise_text(a) for a in ([accept] if isinstance(accept, str) else accept)}
    if i18n.normalise_text(value) not in accepted:
        raise AssertionError(i18n.translate("grading.wrong_text", language, id=widget_id))


def score_order(
    widget_id: str, correct: Sequence[str], points: float = 1.0, *, directory: str | None = None
) -> float:
    """Points for an ordering: ``points`` times the share of items in their right place."""
    value = answers(directory).get(widget_id)
    if not isinstance(value, list) or not correct:
        return 0.0
    placed = sum(1 for mine, right in zip(value, correct, strict=False) if mine == right)
    return round(points * placed / len(correct), 4)


def check_order(
    widget_id: str,
    correct: Sequence[str],
    *,
    directory: str | None = None,
    language: str | None = None,
) -> None:
    """Assert that the order saved for ``widget_id`` is exactly ``correct``."""
    value = _given(widget_id, directory, language)
    if list(value) != list(correct):
        placed = score_order(widget_id, correct, len(correct), directory=directory)
        raise AssertionError(
            i18n.translate(
                "grading.wrong_order", language, id=widget_id, right=int(placed), total=len(correct)
            )
        )


def score_matching(
    widget_id: str, correct: Mapping[str, str], points: float = 1.0, *, directory: str | None = None
) -> float:
    """Points for a card sort: ``points`` times the share of cards in their right category."""
    value = answers(directory).get(widget_id)
    if not isinstance(value, dict) or not correct:
        return 0.0
    right = sum(1 for card, category in correct.items() if value.get(card) == category)
    return round(points * right / len(correct), 4)


def check_matching(
    widget_id: str,
    correct: Mapping[str, str],
    *,
    directory: str | None = None,
    language: str | None = None,
) -> None:
    """Assert that every card saved for ``widget_id`` is in its right category."""
    value = _given(widget_id, directory, language)
    right = sum(1 for card, category in correct.items() if value.get(card) == category)
    if right != len(correct):
        raise AssertionError(
            i18n.translate(
                "grading.wrong_matching", language, id=widget_id, right=right, total=len(correct)
            )
        )
