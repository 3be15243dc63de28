"""A gap map over the six dimensions of the Handbook on flexible learning during disruption.

Rule: for each dimension the trainee rates where their institution is now and where it needs to be
(0 to 3); the gap is the difference, never below 0. The map shows gaps as bars and a table, and
lists priorities, largest gap first (ties in the Handbook's order).
"""

from __future__ import annotations

import ipywidgets as widgets

from atelier.widgets import svg, tables
from atelier.widgets.base import FULL_WIDTH, AtelierWidget, feedback_html, prompt, row

LEVELS = (0, 1, 2, 3)


class GapMap(AtelierWidget):
    """Where are we, where must we be, on each of the Handbook's six dimensions?

    ``value`` maps each rated dimension to ``{"now": n, "needed": m}``.

    Args:
        widget_id: the id under which the map is saved.
    """

    kind = "gapmap"

    def __init__(self, widget_id: str | None = None, **kwargs):
        self.dimensions = tables.load("handbook")["dimensions"]
        super().__init__(widget_id, **kwargs)

    def _build(self):
        levels = [(self._("gapmap.unrated"), None)] + [
            (self._(f"gapmap.level.{n}"), n) for n in LEVELS
        ]
        self._menus: dict[tuple[str, str], widgets.Dropdown] = {}
        groups = []
        for dimension in self.dimensions:
            name = self._(f"handbook.{dimension}")
            menus = []
            for when in ("now", "needed"):
                menu = widgets.Dropdown(
                    options=levels,
                    value=None,
                    description=self._(f"gapmap.{when}", dimension=name),
                    style={"description_width": "initial"},
                    layout=widgets.Layout(width="auto", max_width="100%"),
                )
                menu.observe(self._rated, "value")
                self._menus[dimension, when] = menu
                menus.append(menu)
            groups.append(
                widgets.VBox(
                    [widgets.HTML(f"<h4>{name}</h4>"), row(*menus)],
                    layout=widgets.Layout(**FULL_WIDTH),
                )
            )
        self._chart = widgets.HTML(layout=widgets.Layout(**FULL_WIDTH))
        source = widgets.HTML(tables.citation(tables.load("handbook")))
        return [prompt(self._("gapmap.intro")), *groups, self._chart, source]

    def _rated(self, _change):
        value = {}
        for dimension in self.dimensions:
            now, needed = (
                self._menus[dimension, "now"].value,
                self._menus[dimension, "needed"].value,
            )
            if now is not None or needed is not None:
                value[dimension] = {"now": now, "needed": needed}
        self._set_from_control(value or None)

    def _coerce(self, value):
        if not isinstance(value, dict):
            return None
        kept = {}
        for dimension, rating in value.items():
            if dimension in self.dimensions and isinstance(rating, dict):
                kept[dimension] = {
                    w: rating.get(w) if rating.get(w) in LEVELS else None for w in ("now", "needed")
                }
        return kept or None

    def gaps(self) -> dict[str, int]:
        """Dimension -> gap (needed - now, at least 0) for every dimension rated on both sides."""
        value = self.value or {}
        return {
            d: max(0, value[d]["needed"] - value[d]["now"])
            for d in self.dimensions
            if d in value and value[d]["now"] is not None and value[d]["needed"] is not None
        }

    def priorities(self) -> list[str]:
        """Dimensions with a gap, largest first."""
        gaps = self.gaps()
        return sorted(
            (d for d in gaps if gaps[d] > 0), key=lambda d: (-gaps[d], self.dimensions.index(d))
        )

    def _show(self, value):
        value = value or {}
        for (dimension, when), menu in self._menus.items():
            menu.value = value.get(dimension, {}).get(when)
        gaps = self.gaps()
        names = {d: self._(f"handbook.{d}") for d in self.dimensions}
        chart = svg.bars(
            [(names[d], gaps.get(d, 0)) for d in self.dimensions],
            max(LEVELS),
            self._("gapmap.chart_title"),
        )
        rows = [
            [
                names[d],
                value.get(d, {}).get("now", "–"),
                value.get(d, {}).get("needed", "–"),
                gaps.get(d, "–"),
            ]
            for d in self.dimensions
        ]
        header = [
            self._("gapmap.dimension"),
            self._("gapmap.col_now"),
            self._("gapmap.col_needed"),
            self._("gapmap.gap"),
        ]
        self._chart.value = chart + svg.table(self._("gapmap.table_caption"), header, rows)

    def _feedback(self, value):
        if value is None:
            return ""
        priorities = self.priorities()
        if not priorities:
            return feedback_html([(None, self._("gapmap.no_gap"))])
        listed = "".join(
            f"<li>{self._(f'handbook.{d}')} ({self.gaps()[d]})</li>" for d in priorities
        )
        return feedback_html([(None, self._("gapmap.priorities") + f"<ol>{listed}</ol>")])
