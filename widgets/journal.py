"""A reflection journal: one text box per prompt, saved as the trainee writes, graded by hand.

Rule: ``value`` maps each prompt's key to the text written (empty answers are absent). The journal
shows a word count per prompt; if the author sets ``min_words`` it says how many words are still
expected. Reflections are read by a facilitator (nbgrader manual grading); nothing is marked
automatically.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import ipywidgets as widgets

from atelier.widgets.assessment import keyed
from atelier.widgets.base import FULL_WIDTH, AtelierWidget, feedback_html, plain, prompt


def word_count(text: str) -> int:
    """Words in ``text`` (runs of non-space characters)."""
    return len(str(text).split())


class ReflectionJournal(AtelierWidget):
    """Write reflections in answer to the author's prompts.

    Args:
        widget_id: the id under which the reflections are saved.
        prompts: ``{"key": "prompt"}``, pairs, or a list of prompts (keys a, b, c...); one prompt is
            fine.
        min_words: words expected per reflection (``None``: no expectation).
    """

    kind = "journal"

    def __init__(
        self,
        widget_id: str | None = None,
        prompts: Mapping[str, str] | Sequence = (),
        *,
        min_words: int | None = None,
        **kwargs,
    ):
        prompts = [prompts] if isinstance(prompts, str) else prompts
        self.prompts = keyed(prompts, "prompts", minimum=1)
        self.min_words = min_words
        super().__init__(widget_id, **kwargs)

    def _build(self):
        self._boxes: dict[str, widgets.Textarea] = {}
        children = []
        for number, (key, text) in enumerate(self.prompts, 1):
            box = widgets.Textarea(
                description=self._("journal.label", n=number),
                placeholder=self._("journal.placeholder"),
                continuous_update=False,
                rows=5,
                style={"description_width": "initial"},
                layout=widgets.Layout(**FULL_WIDTH),
            )
            box.observe(self._written, "value")
            self._boxes[key] = box
            children += [prompt(f"<strong>{number}.</strong> {text}"), box]
        # Reflections may go to peer review, anonymous both ways (grading/peerreview/).
        children.append(prompt(f"<em>{self._('journal.unsigned')}</em>"))
        return children

    def _written(self, _change):
        texts = {key: box.value.strip() for key, box in self._boxes.items() if box.value.strip()}
        self._set_from_control(texts or None)

    def _coerce(self, value):
        if not isinstance(value, dict):
            return None
        return {k: str(v) for k, v in value.items() if k in self._boxes and str(v).strip()} or None

    def _show(self, value):
        value = value or {}
        for key, box in self._boxes.items():
            if box.value.strip() != value.get(key, ""):
                box.value = value.get(key, "")

    def _answer_lines(self, value):
        if not isinstance(value, dict):
            return [str(value)]
        return [
            (f"{number}. {plain(text)}", value.get(key) or self._("answer.none"))
            for number, (key, text) in enumerate(self.prompts, 1)
        ]

    def _feedback(self, value):
        if value is None:
            return ""
        items: list[tuple[bool | None, str]] = []
        for number, (key, _text) in enumerate(self.prompts, 1):
            words = word_count((value or {}).get(key, ""))
            if self.min_words and words < self.min_words:
                items.append(
                    (
                        None,
                        self._(
                            "journal.words_more", n=number, words=words, more=self.min_words - words
                        ),
                    )
                )
            else:
                items.append((None, self._("journal.words", n=number, words=words)))
        return feedback_html(items)
