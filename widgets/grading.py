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

A failure says, in the trainee's language, what was wrong and what was expected: the author's
``explanation=`` (written in the workbook's language) follows the verdict, after the diagnostic of a
wrong option (``feedback=``) or of a typical wrong number (``hints=``). Pass ``language=`` in every
call: Atelier's grading sandbox puts the modules a test imports back as they were before the
notebook ran, so a language chosen by an earlier cell is forgotten there.

The visible part of a widget's test cell is :func:`check_answered` (it reveals no key, and fails on
the released notebook, so ``atelier check`` can prove the test is not passed by doing nothing); the
key follows between the hidden-test markers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from atelier import variants as variant_draw
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


def _fail(message: str, notes: Sequence[str], explanation: str | None, language: str | None):
    """Raise the failure the trainee reads: verdict, diagnostics, then what was expected."""
    parts = [message, *notes]
    if explanation:
        parts.append(i18n.translate("grading.expected", language, text=explanation))
    raise AssertionError(" ".join(parts))


def _variant(
    widget_id: str, variants: Mapping[str, Sequence[Any]] | None, language: str | None
) -> tuple[dict[str, Any], str]:
    """The trainee's parameters of an item declaring ``variants``, and the sentence naming them.

    At autograde the seed is the one the grader pinned (:func:`atelier.variants.pin`), computed
    from the server's secret and the submission's trainee: never what the notebook wrote.
    """
    if not variants:
        return {}, ""
    params = variant_draw.draw(widget_id, variants)
    lang = i18n.get_language(language)
    numbers = ", ".join(
        f"{name} = {variant_draw.format_value(value, lang)}" for name, value in params.items()
    )
    return params, i18n.translate("grading.variant", language, numbers=numbers)


def _of(value: Any, params: dict[str, Any]) -> Any:
    """``value``, or what it gives for ``params`` when it is a function of the parameters."""
    return value(dict(params)) if callable(value) else value


def _filled(text: str | None, params: dict[str, Any], language: str | None) -> str | None:
    if text is None or not params:
        return text
    return variant_draw.fill(text, params, i18n.get_language(language))


def check_answered(
    widget_id: str, *, directory: str | None = None, language: str | None = None
) -> None:
    """Assert that ``widget_id`` has a saved answer (the visible, key-free part of its test)."""
    _given(widget_id, directory, language)


def check_choice(
    widget_id: str,
    correct: str | Sequence[str],
    *,
    feedback: Mapping[str, str] | None = None,
    explanation: str | None = None,
    variants: Mapping[str, Sequence[Any]] | None = None,
    directory: str | None = None,
    language: str | None = None,
) -> None:
    """Assert that the choice saved for ``widget_id`` is exactly ``correct`` (a key, or keys).

    ``feedback`` (option key -> misconception) is added to the failure message for each wrong key
    chosen, then ``explanation`` (what was expected). With ``variants`` (the widget's own
    declaration), ``correct`` may be a function of the trainee's parameters, ``{name}`` in
    ``feedback`` and ``explanation`` shows their values, and the message names them.
    """
    params, numbers = _variant(widget_id, variants, language)
    value = _given(widget_id, directory, language)
    correct = _of(correct, params)
    chosen = {value} if isinstance(value, str) else set(value)
    expected = {correct} if isinstance(correct, str) else set(correct)
    if chosen != expected:
        notes = [
            _filled(feedback[k], params, language)
            for k in sorted(chosen - expected)
            if feedback and k in feedback
        ]
        message = i18n.translate("grading.wrong_choice", language, id=widget_id)
        notes = [numbers, *notes] if numbers else notes
        _fail(message, notes, _filled(explanation, params, language), language)
    if numbers:
        print(numbers)  # the facilitator reads, in formgrader, which numbers were graded


def check_numeric(
    widget_id: str,
    correct: float,
    tolerance: float = 0.0,
    *,
    unit: str = "",
    hints: Sequence[tuple[float, float, str]] = (),
    explanation: str | None = None,
    variants: Mapping[str, Sequence[Any]] | None = None,
    directory: str | None = None,
    language: str | None = None,
) -> None:
    """Assert that the number saved for ``widget_id`` is within ``tolerance`` of ``correct``.

    ``hints`` (``[(low, high, text)]``, as the widget takes them) name the typical wrong
    calculation behind an answer in ``low``-``high``; ``explanation`` says what was expected.
    With ``variants`` (the widget's own declaration), ``correct``, ``tolerance`` and ``hints``
    may be functions of the trainee's parameters (a dict), ``{name}`` in ``explanation`` and the
    hints shows their values (``{answer}``: the expected number), and the message names them.
    """
    params, numbers = _variant(widget_id, variants, language)
    value = _given(widget_id, directory, language)
    correct = float(_of(correct, params))
    tolerance = float(_of(tolerance, params))
    hints = [(low, high, _filled(text, params, language)) for low, high, text in _of(hints, params)]
    # ``{answer}`` in the explanation is the number this trainee's parameters give.
    explanation = _filled(explanation, {**params, "answer": round(correct, 2)} if params else {},
                          language)  # fmt: skip
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if not number or abs(value - correct) > abs(tolerance) + 1e-9 * max(1, abs(correct)):
        shown = f"{value:g}" if number else value
        shown = shown.replace(".", ",") if number and i18n.get_language(language) == "fr" else shown
        message = i18n.translate(
            "grading.wrong_number", language, id=widget_id, value=shown, unit=unit
        ).replace(" )", ")")
        notes = [text for low, high, text in hints if number and low <= value <= high]
        _fail(message, [numbers, *notes] if numbers else notes, explanation, language)
    if numbers:
        print(numbers)  # the facilitator reads, in formgrader, which numbers were graded


def check_text(
    widget_id: str,
    accept: str | Sequence[str],
    *,
    explanation: str | None = None,
    directory: str | None = None,
    language: str | None = None,
) -> None:
    """Assert that the text saved for ``widget_id`` is in ``accept`` (case, accents ignored).

    List the accepted variants of both languages: a trainee may answer with the English term in
    the French workbook, or the other way round.
    """
    value = _given(widget_id, directory, language)
    accepted = {i18n.normalise_text(a) for a in ([accept] if isinstance(accept, str) else accept)}
    if i18n.normalise_text(str(value)) not in accepted:
        message = i18n.translate("grading.wrong_text", language, id=widget_id)
        _fail(message, [], explanation, language)


def _short_of(earned: float, points: float, message: str, explanation: str | None, language):
    """Print what a partly right answer missed (nbgrader shows a test's output as feedback)."""
    if earned < points:
        parts = [message]
        if explanation:
            parts.append(i18n.translate("grading.expected", language, text=explanation))
        print(" ".join(parts))
    return earned


def score_order(
    widget_id: str,
    correct: Sequence[str],
    points: float = 1.0,
    *,
    explanation: str | None = None,
    directory: str | None = None,
    language: str | None = None,
) -> float:
    """Points for an ordering: ``points`` times the share of items in their right place.

    Short of full points, it prints how many items are in place and ``explanation``.
    """
    value = answers(directory).get(widget_id)
    placed = 0
    if isinstance(value, list) and correct:
        placed = sum(1 for mine, right in zip(value, correct, strict=False) if mine == right)
    earned = round(points * placed / len(correct), 4) if correct else 0.0
    message = i18n.translate(
        "grading.wrong_order", language, id=widget_id, right=placed, total=len(correct)
    )
    return _short_of(earned, points, message, explanation, language)


def check_order(
    widget_id: str,
    correct: Sequence[str],
    *,
    explanation: str | None = None,
    directory: str | None = None,
    language: str | None = None,
) -> None:
    """Assert that the order saved for ``widget_id`` is exactly ``correct``."""
    value = _given(widget_id, directory, language)
    if not isinstance(value, list) or value != list(correct):
        placed = score_order(widget_id, correct, len(correct), directory=directory)
        message = i18n.translate(
            "grading.wrong_order", language, id=widget_id, right=int(placed), total=len(correct)
        )
        _fail(message, [], explanation, language)


def score_matching(
    widget_id: str,
    correct: Mapping[str, str],
    points: float = 1.0,
    *,
    explanation: str | None = None,
    directory: str | None = None,
    language: str | None = None,
) -> float:
    """Points for a card sort: ``points`` times the share of cards in their right category.

    Short of full points, it prints how many cards are right and ``explanation``.
    """
    value = answers(directory).get(widget_id)
    right = 0
    if isinstance(value, dict) and correct:
        right = sum(1 for card, category in correct.items() if value.get(card) == category)
    earned = round(points * right / len(correct), 4) if correct else 0.0
    message = i18n.translate(
        "grading.wrong_matching", language, id=widget_id, right=right, total=len(correct)
    )
    return _short_of(earned, points, message, explanation, language)


def check_matching(
    widget_id: str,
    correct: Mapping[str, str],
    *,
    explanation: str | None = None,
    directory: str | None = None,
    language: str | None = None,
) -> None:
    """Assert that every card saved for ``widget_id`` is in its right category."""
    value = _given(widget_id, directory, language)
    value = value if isinstance(value, dict) else {}
    right = sum(1 for card, category in correct.items() if value.get(card) == category)
    if right != len(correct):
        message = i18n.translate(
            "grading.wrong_matching", language, id=widget_id, right=right, total=len(correct)
        )
        _fail(message, [], explanation, language)


#: The days and activities of a week plan: the value of ``HomeLearningBalancer``.
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
ACTIVITIES = ("learning", "play", "exercise", "reflection")


def schedule_problems(
    week: Mapping[str, Mapping[str, Any]],
    max_learning_minutes: float | None = None,
    *,
    weekly_minimum: Mapping[str, float] | None = None,
    weekly_maximum: Mapping[str, float] | None = None,
) -> tuple[int, list[tuple[str, dict]]]:
    """The rules a week plan is checked against, and the ones it breaks.

    The SCIENCE rules a schedule can show (the balancer and the grader share them, so a week the
    balancer calls balanced is a week the grader accepts): play on every day with learning (S),
    exercise every day (E), reflection in the week (C); then, when given, a daily learning ceiling
    and weekly minimum or maximum minutes per activity (a case's own rules).

    Returns:
        ``(rules checked, [(problem, fields)])``; ``problem`` is ``no_play``, ``no_exercise``,
        ``no_reflection``, ``too_much_learning``, ``weekly_minimum`` or ``weekly_maximum``, and
        ``fields`` fill its message (``days``, ``activity``, ``minutes``, ``limit``).
    """

    def minutes(day: str, activity: str) -> float:
        plan = week.get(day) if isinstance(week, Mapping) else None
        value = plan.get(activity, 0) if isinstance(plan, Mapping) else 0
        return value if isinstance(value, int | float) and not isinstance(value, bool) else 0

    problems: list[tuple[str, dict]] = []
    no_play = [d for d in DAYS if minutes(d, "learning") > 0 and minutes(d, "play") <= 0]
    if no_play:
        problems.append(("no_play", {"days": no_play}))
    no_exercise = [d for d in DAYS if minutes(d, "exercise") <= 0]
    if no_exercise:
        problems.append(("no_exercise", {"days": no_exercise}))
    if not any(minutes(d, "reflection") > 0 for d in DAYS):
        problems.append(("no_reflection", {}))
    rules = 3
    if max_learning_minutes is not None:
        rules += 1
        heavy = [d for d in DAYS if minutes(d, "learning") > max_learning_minutes]
        if heavy:
            problems.append(("too_much_learning", {"days": heavy, "limit": max_learning_minutes}))
    for problem, bounds, broken in (
        ("weekly_minimum", weekly_minimum or {}, lambda total, limit: total < limit),
        ("weekly_maximum", weekly_maximum or {}, lambda total, limit: total > limit),
    ):
        for activity, limit in bounds.items():
            rules += 1
            total = sum(minutes(d, activity) for d in DAYS)
            if broken(total, limit):
                fields = {"activity": activity, "minutes": total, "limit": limit}
                problems.append((problem, fields))
    return rules, problems


def _planned(week: Any) -> bool:
    """Whether ``week`` plans any minutes at all: an empty plan keeps no rule, it is no answer."""
    if not isinstance(week, Mapping):
        return False
    return any(
        isinstance(plan, Mapping)
        and any(
            isinstance(m, int | float) and not isinstance(m, bool) and m > 0 for m in plan.values()
        )
        for plan in week.values()
    )


def _schedule_message(problem: str, fields: dict, language: str | None) -> str:
    """One broken rule, in the trainee's language (day and activity names translated)."""
    words = dict(fields)
    if "days" in words:
        words["days"] = ", ".join(i18n.translate(f"day.{d}", language) for d in words["days"])
    if "activity" in words:
        words["activity"] = i18n.translate(f"schedule.activity_name.{words['activity']}", language)
    for key in ("minutes", "limit"):
        if key in words:
            words[key] = f"{words[key]:g}"
    return i18n.translate(f"schedule.problem.{problem}", language, **words)


def _plan_review(
    widget_id: str, value: Any, language: str | None, **rules: Any
) -> tuple[float, str | None]:
    """The share of ``rules`` a saved week plan keeps, and what the trainee reads if not all.

    An empty plan (or none saved) keeps none: rules about learning days hold vacuously for a week
    with no learning, and such a week is no answer.
    """
    if not _planned(value):
        return 0.0, i18n.translate("grading.no_answer", language, id=widget_id)
    total, problems = schedule_problems(value, rules.pop("max_learning_minutes"), **rules)
    if not problems:
        return 1.0, None
    verdict = i18n.translate(
        "grading.plan_rules", language, id=widget_id, broken=len(problems), total=total
    )
    notes = (_schedule_message(problem, fields, language) for problem, fields in problems)
    return (total - len(problems)) / total, " ".join([verdict, *notes])


def score_schedule(
    widget_id: str,
    points: float = 1.0,
    *,
    max_learning_minutes: float | None = None,
    weekly_minimum: Mapping[str, float] | None = None,
    weekly_maximum: Mapping[str, float] | None = None,
    explanation: str | None = None,
    directory: str | None = None,
    language: str | None = None,
) -> float:
    """Points for a week plan: ``points`` times the share of rules it keeps (none saved: 0).

    Short of full points, it prints each rule broken and ``explanation``.
    """
    share, message = _plan_review(
        widget_id,
        answers(directory).get(widget_id),
        language,
        max_learning_minutes=max_learning_minutes,
        weekly_minimum=weekly_minimum,
        weekly_maximum=weekly_maximum,
    )
    return _short_of(round(points * share, 4), points, message or "", explanation, language)


def check_schedule(
    widget_id: str,
    *,
    max_learning_minutes: float | None = None,
    weekly_minimum: Mapping[str, float] | None = None,
    weekly_maximum: Mapping[str, float] | None = None,
    explanation: str | None = None,
    directory: str | None = None,
    language: str | None = None,
) -> None:
    """Assert that the week plan saved for ``widget_id`` keeps every rule; name each one broken."""
    _, message = _plan_review(
        widget_id,
        _given(widget_id, directory, language),
        language,
        max_learning_minutes=max_learning_minutes,
        weekly_minimum=weekly_minimum,
        weekly_maximum=weekly_maximum,
    )
    if message is not None:
        _fail(message, [], explanation, language)
