"""Assessment widgets: multiple choice, numeric, short text, ordering and matching (card sort).

Rule: a widget is *formative* when the author gives it its key (``correct=``): it then says at once
whether the answer is right, and shows the author's per-option feedback, which names the
misconception behind each wrong answer. A widget is *graded* when it has no key in the notebook: it
only records the answer (with its id, in the answers file); the key lives in a hidden nbgrader test
cell that calls :mod:`atelier.widgets.grading`, so the released notebook never contains it.
Per-option feedback reveals which answers are wrong: give it to graded items only in the hidden test
cell (``feedback=`` of the grading helpers), never to the widget.

Why one module of a little over 500 lines: the five question widgets are one family (the
catalogue's "Questions") sharing one way to name options (:func:`keyed`), one shape of key
(``correct=``) and one rule for what a formative or a graded item shows; each is a short class,
and an author reading how one behaves finds its siblings beside it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import ipywidgets as widgets

from atelier.errors import AtelierError
from atelier.variants import fill
from atelier.widgets import i18n
from atelier.widgets.base import (
    FULL_WIDTH,
    STACKED_STYLE,
    AtelierWidget,
    drawn,
    escape,
    feedback_html,
    plain,
    prompt,
    row,
    stacked,
)
from atelier.widgets.i18n import normalise_text

Choices = Mapping[str, str] | Sequence[str] | Sequence[tuple[str, str]]


def keyed(choices: Choices, what: str, minimum: int = 2) -> list[tuple[str, str]]:
    """``{"a": "text"}``, ``[("a", "text")]`` or ``["text", ...]`` (keys a, b...) -> pairs."""
    if isinstance(choices, Mapping):
        pairs = [(str(k), str(v)) for k, v in choices.items()]
    else:
        pairs = []
        for index, item in enumerate(choices):
            if isinstance(item, tuple | list) and len(item) == 2:
                pairs.append((str(item[0]), str(item[1])))
            else:
                pairs.append((chr(ord("a") + index) if index < 26 else str(index), str(item)))
    keys = [key for key, _ in pairs]
    if len(pairs) < minimum or len(set(keys)) != len(keys):
        raise AtelierError(
            f"{what}: give at least {minimum} {what} with distinct keys (got {keys})"
        )
    return pairs


class MultipleChoice(AtelierWidget):
    """A question with one (radio buttons) or several (check boxes) answers.

    ``value`` is the chosen key (one answer) or the list of chosen keys in option order (several).

    Args:
        widget_id: the id under which the answer is saved and graded.
        question: the question (HTML).
        options: ``{"a": "text", ...}``, ``[("a", "text"), ...]`` or ``["text", ...]`` (keys a, b,
            c...).
        multiple: several answers may be chosen.
        feedback: option key -> what choosing it reveals (the misconception behind a wrong answer).
        correct: the key (or keys) of the right answer(s): makes the question formative; with
            ``variants``, a function of the drawn parameters may give them.
        variants: parameter name -> values, drawn per trainee (:mod:`atelier.variants`); each
            ``{name}`` in the question, the options and the feedback shows the trainee's value.
    """

    kind = "choice"

    def __init__(
        self,
        widget_id: str | None = None,
        question: str = "",
        options: Choices = (),
        *,
        multiple: bool = False,
        feedback: Mapping[str, str] | None = None,
        correct: str | Sequence[str] | None = None,
        variants: Mapping[str, Sequence[Any]] | None = None,
        **kwargs: Any,
    ):
        self.variant = drawn(widget_id, variants)
        language = i18n.get_language(kwargs.get("language"))
        self.question = fill(question, self.variant, language)
        self.options = [(k, fill(t, self.variant, language)) for k, t in keyed(options, "options")]
        self.multiple = multiple
        self.option_feedback = {
            k: fill(t, self.variant, language) for k, t in dict(feedback or {}).items()
        }
        if callable(correct):
            correct = correct(dict(self.variant))
        if correct is not None:
            correct = [correct] if isinstance(correct, str) else list(correct)
            unknown = set(correct) - {key for key, _ in self.options}
            if unknown:
                raise AtelierError(
                    f"choice {widget_id}: correct keys {sorted(unknown)} are not options"
                )
        self.correct = correct
        super().__init__(widget_id, **kwargs)

    def _build(self):
        if self.multiple:
            self._boxes = []
            for key, text in self.options:
                box = widgets.Checkbox(
                    False, description=text, indent=False, layout=widgets.Layout(**FULL_WIDTH)
                )
                box.observe(self._boxes_changed, "value")
                box._atelier_key = key
                self._boxes.append(box)
            group = widgets.VBox(self._boxes, layout=widgets.Layout(**FULL_WIDTH))
            hint = widgets.HTML(f"<em>{self._('choice.several')}</em>")
            return [prompt(self.question), hint, group]
        self._radio = widgets.RadioButtons(
            options=[(text, key) for key, text in self.options],
            index=None,
            description=self._("choice.one"),
            style={"description_width": "initial"},
            layout=widgets.Layout(**FULL_WIDTH),
        )
        self._radio.observe(lambda change: self._set_from_control(change["new"]), "value")
        return [prompt(self.question), self._radio]

    def _boxes_changed(self, _change):
        chosen = [box._atelier_key for box in self._boxes if box.value]
        self._set_from_control(chosen)

    def _coerce(self, value):
        keys = [key for key, _ in self.options]
        if self.multiple:
            chosen = value if isinstance(value, list) else [value]
            return [key for key in keys if key in chosen]
        return value if value in keys else None

    def _show(self, value):
        if self.multiple:
            chosen = set(value or [])
            for box in self._boxes:
                box.value = box._atelier_key in chosen
        else:
            self._radio.value = value

    def _answer_lines(self, value):
        chosen = value if isinstance(value, list) else [value]
        labels = dict(self.options)
        return [plain(labels[key]) if key in labels else str(key) for key in chosen]

    def chosen(self) -> list[str]:
        """The chosen keys, as a list in both modes."""
        if self.value is None:
            return []
        return list(self.value) if self.multiple else [self.value]

    def _feedback(self, value):
        chosen = [] if value is None else (list(value) if self.multiple else [value])
        if not chosen:
            return ""
        items: list[tuple[bool | None, str]] = []
        for key in chosen:
            if key in self.option_feedback:
                good = None if self.correct is None else key in self.correct
                items.append((good, self.option_feedback[key]))
        if self.correct is not None:
            right = set(chosen) == set(self.correct)
            verdict = self._("choice.correct") if right else self._("choice.not_yet")
            if not right and self.multiple and set(chosen) < set(self.correct):
                verdict = self._("choice.missing_some")
            items.insert(0, (right, verdict))
        return feedback_html(items)


class NumericAnswer(AtelierWidget):
    """A number, with an optional unit; decimal comma or point both accepted.

    ``value`` is the number typed (a float), or ``None``.

    Args:
        widget_id: the id under which the answer is saved and graded.
        question: the question (HTML).
        unit: the unit the answer is in (shown beside the box and in its label), e.g. ``"MB"``.
        correct: the right value: makes the question formative.
        tolerance: how far from ``correct`` still counts as right (absolute, in ``unit``).
        hints: ``[(low, high, text)]``: feedback for answers in a range (a typical wrong
            calculation).
        variants: parameter name -> values, drawn per trainee (:mod:`atelier.variants`); each
            ``{name}`` in the question and the unit shows the trainee's value, and ``correct`` and
            ``hints`` may be functions of the drawn parameters (a dict).
    """

    kind = "numeric"

    def __init__(
        self,
        widget_id: str | None = None,
        question: str = "",
        *,
        unit: str | None = None,
        correct: float | None = None,
        tolerance: float = 0.0,
        hints: Sequence[tuple[float, float, str]] = (),
        variants: Mapping[str, Sequence[Any]] | None = None,
        **kwargs: Any,
    ):
        self.variant = drawn(widget_id, variants)
        language = i18n.get_language(kwargs.get("language"))
        self.question = fill(question, self.variant, language)
        self.unit = fill(unit, self.variant, language) if unit else unit
        self.correct = correct(dict(self.variant)) if callable(correct) else correct
        self.tolerance = abs(float(tolerance))
        self.hints = list(hints(dict(self.variant)) if callable(hints) else hints)
        self._invalid_text = ""
        super().__init__(widget_id, **kwargs)

    def _build(self):
        label = self._("numeric.label") + (f" ({self.unit})" if self.unit else "")
        self._text = widgets.Text(
            description=label,
            placeholder=self._("numeric.placeholder"),
            continuous_update=False,
            style={"description_width": "initial"},
            layout=widgets.Layout(width="100%", max_width="22em"),
        )
        self._text.observe(self._typed, "value")
        unit = widgets.HTML(escape(self.unit)) if self.unit else widgets.HTML("")
        return [prompt(self.question), row(self._text, unit)]

    def _typed(self, change):
        if self._redrawing:
            return
        text = change["new"]
        number = i18n.parse_number(text)
        if number is None and text.strip():
            self._invalid_text = text
            self._feedback_box.value = feedback_html(
                [(False, self._("numeric.invalid", text=escape(text)))]
            )
            return
        self._invalid_text = ""
        self._set_from_control(number)

    def _coerce(self, value):
        return (
            float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
        )

    def _show(self, value):
        if value is None:
            if not self._invalid_text:
                self._text.value = ""
            return
        shown = f"{value:g}"
        if self.language == "fr":
            shown = shown.replace(".", ",")
        if i18n.parse_number(self._text.value) != value:
            self._text.value = shown

    def _answer_lines(self, value):
        if not isinstance(value, int | float) or isinstance(value, bool):
            return [str(value)]
        shown = f"{value:g}"
        if self.language == "fr":
            shown = shown.replace(".", ",")
        return [f"{shown} {plain(self.unit)}" if self.unit else shown]

    def is_correct(self, value: float | None = None) -> bool | None:
        """Whether ``value`` (default the answer) is within tolerance; ``None`` without a key."""
        value = self.value if value is None else value
        if self.correct is None or value is None:
            return None
        return abs(value - self.correct) <= self.tolerance + 1e-9 * max(1.0, abs(self.correct))

    def _feedback(self, value):
        if value is None:
            return ""
        items: list[tuple[bool | None, str]] = []
        right = self.is_correct(value)
        if right is not None:
            items.append((right, self._("numeric.correct") if right else self._("numeric.not_yet")))
        for low, high, text in self.hints:
            if low <= value <= high and not right:
                items.append((False if right is not None else None, text))
        return feedback_html(items)


class ShortText(AtelierWidget):
    """A short typed answer (a word or a phrase).

    ``value`` is the text typed (surrounding spaces removed), or ``None`` when empty.

    Args:
        widget_id: the id under which the answer is saved and graded.
        question: the question (HTML).
        accept: accepted answers: makes the question formative (case, accents and spacing do not
            count).
        placeholder: grey text in the empty box.
    """

    kind = "text"

    def __init__(
        self,
        widget_id: str | None = None,
        question: str = "",
        *,
        accept: Sequence[str] | None = None,
        placeholder: str = "",
        **kwargs: Any,
    ):
        self.question = question
        self.accept = list(accept) if accept is not None else None
        self.placeholder = placeholder
        super().__init__(widget_id, **kwargs)

    def _build(self):
        self._text = widgets.Text(
            description=self._("text.label"),
            placeholder=self.placeholder,
            continuous_update=False,
            style={"description_width": "initial"},
            layout=widgets.Layout(**FULL_WIDTH),
        )
        self._text.observe(
            lambda change: self._set_from_control(change["new"].strip() or None), "value"
        )
        return [prompt(self.question), self._text]

    def _coerce(self, value):
        return str(value).strip() or None if value is not None else None

    def _show(self, value):
        if (self._text.value.strip() or None) != value:
            self._text.value = value or ""

    def _answer_lines(self, value):
        return [str(value)]

    def _feedback(self, value):
        if value is None or self.accept is None:
            return ""
        right = normalise_text(value) in {normalise_text(a) for a in self.accept}
        return feedback_html([(right, self._("text.correct") if right else self._("text.not_yet"))])


class Ordering(AtelierWidget):
    """Put items in order with "move up" and "move down" buttons (no dragging: phone and keyboard).

    ``value`` is the list of item keys in the trainee's order, or ``None`` until the trainee moves
    an item or confirms the order shown.

    Args:
        widget_id: the id under which the answer is saved and graded.
        question: the instructions (HTML).
        items: the items, in the order first shown (``{"key": "text"}``, pairs or texts).
        correct: the right order of keys: makes the question formative.
    """

    kind = "order"

    def __init__(
        self,
        widget_id: str | None = None,
        question: str = "",
        items: Choices = (),
        *,
        correct: Sequence[str] | None = None,
        **kwargs: Any,
    ):
        self.question = question
        self.items = keyed(items, "items")
        self.texts = dict(self.items)
        if correct is not None and sorted(correct) != sorted(self.texts):
            raise AtelierError(f"ordering {widget_id}: correct must list every item key once")
        self.correct = list(correct) if correct is not None else None
        self._order = [key for key, _ in self.items]
        super().__init__(widget_id, **kwargs)

    def _build(self):
        self._list = widgets.VBox(layout=widgets.Layout(**FULL_WIDTH))
        self._confirm = widgets.Button(
            description=self._("order.confirm"),
            layout=widgets.Layout(width="auto", max_width="100%"),
        )
        self._confirm.on_click(lambda _button: self._set_from_control(list(self._order)))
        return [prompt(self.question), self._list, self._confirm]

    def move(self, key: str, step: int) -> None:
        """Move item ``key`` by ``step`` places (negative: up), as its buttons do."""
        order = list(self._order)
        index = order.index(key)
        target = max(0, min(len(order) - 1, index + step))
        order.insert(target, order.pop(index))
        self._set_from_control(order)

    def _answer_lines(self, value):
        if not isinstance(value, list):
            return [str(value)]
        return [
            (f"{number}.", plain(self.texts.get(key, key))) for number, key in enumerate(value, 1)
        ]

    def _coerce(self, value):
        if isinstance(value, list) and sorted(value) == sorted(self.texts):
            return value
        return None

    def _show(self, value):
        if value is not None:
            self._order = list(value)
        rows = []
        last = len(self._order) - 1
        for position, key in enumerate(self._order):
            label = widgets.HTML(
                f"<strong>{position + 1}.</strong> {self.texts[key]}",
                layout=widgets.Layout(flex="1 1 12em", min_width="0"),
            )
            up = widgets.Button(
                description=self._("order.up", n=position + 1),
                disabled=position == 0,
                layout=widgets.Layout(width="auto"),
            )
            down = widgets.Button(
                description=self._("order.down", n=position + 1),
                disabled=position == last,
                layout=widgets.Layout(width="auto"),
            )
            up.on_click(lambda _b, k=key: self.move(k, -1))
            down.on_click(lambda _b, k=key: self.move(k, +1))
            rows.append(row(label, up, down))
        self._list.children = rows

    def _feedback(self, value):
        if value is None or self.correct is None:
            return ""
        placed = sum(1 for mine, right in zip(value, self.correct, strict=True) if mine == right)
        if placed == len(self.correct):
            return feedback_html([(True, self._("order.correct"))])
        return feedback_html(
            [(False, self._("order.partly", right=placed, total=len(self.correct)))]
        )


class Matching(AtelierWidget):
    """Sort cards into categories (a card sort), one labelled drop-down list per card.

    ``value`` maps each sorted card's key to its category key (cards not yet sorted are absent), or
    is ``None`` when no card is sorted.

    Args:
        widget_id: the id under which the answer is saved and graded.
        question: the instructions (HTML).
        cards: the cards (``{"key": "text"}``, pairs or texts).
        categories: the categories (``{"key": "name"}``, pairs or texts).
        correct: card key -> category key: makes the question formative.
    """

    kind = "matching"

    def __init__(
        self,
        widget_id: str | None = None,
        question: str = "",
        cards: Choices = (),
        categories: Choices = (),
        *,
        correct: Mapping[str, str] | None = None,
        **kwargs: Any,
    ):
        self.question = question
        self.cards = keyed(cards, "cards")
        self.categories = keyed(categories, "categories")
        if correct is not None:
            bad = {
                c: k
                for c, k in correct.items()
                if c not in dict(self.cards) or k not in dict(self.categories)
            }
            if bad:
                raise AtelierError(
                    f"matching {widget_id}: correct names unknown cards or categories: {bad}"
                )
        self.correct = dict(correct) if correct is not None else None
        super().__init__(widget_id, **kwargs)

    def _build(self):
        choices = [(self._("matching.unsorted"), None)] + [
            (text, key) for key, text in self.categories
        ]
        self._menus: dict[str, widgets.Dropdown] = {}
        for key, text in self.cards:
            # A card's text is long: it goes on its own line above its list (phones).
            menu = stacked(
                widgets.Dropdown(options=choices, value=None, description=text, style=STACKED_STYLE)
            )
            menu.observe(self._menus_changed, "value")
            self._menus[key] = menu
        return [
            prompt(self.question),
            widgets.VBox(list(self._menus.values()), layout=widgets.Layout(**FULL_WIDTH)),
        ]

    def _menus_changed(self, _change):
        sorted_cards = {
            key: menu.value for key, menu in self._menus.items() if menu.value is not None
        }
        self._set_from_control(sorted_cards or None)

    def _coerce(self, value):
        if not isinstance(value, dict):
            return None
        categories = dict(self.categories)
        kept = {c: k for c, k in value.items() if c in self._menus and k in categories}
        return kept or None

    def _show(self, value):
        value = value or {}
        for key, menu in self._menus.items():
            menu.value = value.get(key)

    def _answer_lines(self, value):
        if not isinstance(value, dict):
            return [str(value)]
        categories = dict(self.categories)
        lines = []
        for key, text in self.cards:
            category = value.get(key)
            shown = (
                plain(categories.get(category, category))
                if category is not None
                else self._("answer.not_sorted")
            )
            lines.append((f"{plain(text)} →", shown))
        return lines

    def _feedback(self, value):
        if value is None or self.correct is None:
            return ""
        right = sum(1 for card, category in value.items() if self.correct.get(card) == category)
        total = len(self.correct)
        if right == total and len(value) == len(self.cards):
            return feedback_html([(True, self._("matching.correct"))])
        return feedback_html([(False, self._("matching.partly", right=right, total=total))])
