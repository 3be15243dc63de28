"""A course review over the six OSCQR categories that writes an action plan.

Rule: for each category the reviewer picks an OSCQR rating (sufficiently present, minor, moderate or
major revision, not applicable) and may note what to change. The action plan lists every category
that needs revision, most severe first (ties in OSCQR's order), with the note; it is formative,
never a score.
"""

from __future__ import annotations

import ipywidgets as widgets

from atelier.widgets import tables
from atelier.widgets.base import FULL_WIDTH, AtelierWidget, escape, prompt


class RubricScorer(AtelierWidget):
    """Review a course with the OSCQR categories and get an action plan.

    ``value`` maps each reviewed category to ``{"rating": ..., "note": ...}``.

    Args:
        widget_id: the id under which the review is saved.
    """

    kind = "rubric"

    def __init__(self, widget_id: str | None = None, **kwargs):
        self.rubric = tables.load("oscqr")
        super().__init__(widget_id, **kwargs)

    def _build(self):
        ratings = [(self._("rubric.unrated"), None)] + [
            (self._(f"oscqr.rating.{r}"), r) for r in self.rubric["ratings"]
        ]
        self._ratings: dict[str, widgets.Dropdown] = {}
        self._notes: dict[str, widgets.Textarea] = {}
        groups = []
        for category in self.rubric["categories"]:
            name = self._(f"oscqr.category.{category}")
            rating = widgets.Dropdown(
                options=ratings,
                value=None,
                description=self._("rubric.rating", category=name),
                style={"description_width": "initial"},
                layout=widgets.Layout(width="auto", max_width="100%"),
            )
            note = widgets.Textarea(
                description=self._("rubric.note", category=name),
                continuous_update=False,
                rows=2,
                style={"description_width": "initial"},
                layout=widgets.Layout(**FULL_WIDTH),
            )
            rating.observe(self._edited, "value")
            note.observe(self._edited, "value")
            self._ratings[category], self._notes[category] = rating, note
            groups.append(
                widgets.VBox(
                    [widgets.HTML(f"<h4>{name}</h4>"), rating, note],
                    layout=widgets.Layout(**FULL_WIDTH),
                )
            )
        self._plan = widgets.HTML(layout=widgets.Layout(**FULL_WIDTH))
        return [
            prompt(self._("rubric.intro")),
            *groups,
            self._plan,
            widgets.HTML(tables.citation(self.rubric)),
        ]

    def _edited(self, _change):
        value = {}
        for category in self.rubric["categories"]:
            rating, note = self._ratings[category].value, self._notes[category].value.strip()
            if rating is not None or note:
                value[category] = {"rating": rating, "note": note}
        self._set_from_control(value or None)

    def _coerce(self, value):
        if not isinstance(value, dict):
            return None
        kept = {}
        for category, review in value.items():
            if category in self._ratings and isinstance(review, dict):
                rating = (
                    review.get("rating") if review.get("rating") in self.rubric["ratings"] else None
                )
                kept[category] = {"rating": rating, "note": str(review.get("note") or "")}
        return kept or None

    def _show(self, value):
        value = value or {}
        for category in self.rubric["categories"]:
            review = value.get(category, {})
            self._ratings[category].value = review.get("rating")
            if self._notes[category].value.strip() != review.get("note", ""):
                self._notes[category].value = review.get("note", "")
        self._plan.value = self.action_plan_html()

    def action_plan(self) -> list[dict]:
        """Categories that need revision, most severe first: ``{"category", "rating", "note"}``."""
        severity = self.rubric["severity"]
        order = self.rubric["categories"]
        value = self.value or {}
        needing = [c for c in order if severity.get((value.get(c) or {}).get("rating"), 0) > 0]
        needing.sort(key=lambda c: (-severity[value[c]["rating"]], order.index(c)))
        return [
            {"category": c, "rating": value[c]["rating"], "note": value[c]["note"]} for c in needing
        ]

    def action_plan_markdown(self) -> str:
        """The action plan as Markdown, to paste into a report."""
        lines = [f"## {self._('rubric.plan_title')}", ""]
        for number, step in enumerate(self.action_plan(), 1):
            name = self._(f"oscqr.category.{step['category']}")
            rating = self._(f"oscqr.rating.{step['rating']}")
            lines.append(
                f"{number}. **{name}** ({rating}){': ' + step['note'] if step['note'] else ''}"
            )
        if len(lines) == 2:
            lines.append(self._("rubric.plan_empty"))
        return "\n".join(lines) + "\n"

    def action_plan_html(self) -> str:
        """The action plan as an ordered list (trainee notes escaped)."""
        plan = self.action_plan()
        if not plan:
            return f"<h4>{self._('rubric.plan_title')}</h4><p>{self._('rubric.plan_empty')}</p>"
        items = []
        for step in plan:
            name = self._(f"oscqr.category.{step['category']}")
            rating = self._(f"oscqr.rating.{step['rating']}")
            note = f": {escape(step['note'])}" if step["note"] else ""
            items.append(f"<li><strong>{name}</strong> ({rating}){note}</li>")
        items = "".join(items)
        return f"<h4>{self._('rubric.plan_title')}</h4><ol>{items}</ol>"
