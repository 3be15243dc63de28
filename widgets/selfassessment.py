"""Self-assessment on the UNESCO ICT CFT matrix (6 aspects x 3 levels), with a radar chart.

Rule: the trainee rates each of the 18 cells from 0 (not yet) to 3 (can help others); ``value`` maps
the rated cells (``"3.KD"``) to their rating. The radar has one axis per aspect and one polygon per
level; the table under it carries the same numbers for screen readers. In a public app, create it
without an id: nothing is stored, the answers stay in the visitor's page.

Names are those of UNESCO's official edition in the widget's language (``core/ictcft.json``, via
:func:`atelier.widgets.tables.ictcft_names`). Under each competency the widget says which Atelier
workbook addresses it, or that it is beyond this programme: ``widgets/data/ictcft_coverage.json``,
which ``atelier catalogue`` writes from the workbooks' metadata.
"""

from __future__ import annotations

import html

import ipywidgets as widgets

from atelier.errors import AtelierError
from atelier.widgets import svg, tables
from atelier.widgets.base import FULL_WIDTH, STACKED_STYLE, AtelierWidget, prompt, stacked

SCALE = (0, 1, 2, 3)


class ICTCFTSelfAssessment(AtelierWidget):
    """Rate yourself on the 18 cells of the ICT CFT; see your profile as a radar chart.

    Args:
        widget_id: the id under which the ratings are saved (``None`` in public apps: nothing
            stored).
        language: the language of the widget's texts; default the workbook's.
    """

    kind = "selfassessment"

    def __init__(self, widget_id: str | None = None, **kwargs):
        self.matrix = tables.load("ictcft")
        try:
            self.coverage = tables.load("ictcft_coverage")["cells"]
        except AtelierError:
            self.coverage = None  # no coverage shipped: say nothing rather than guess
        super().__init__(widget_id, **kwargs)

    @property
    def names(self) -> dict:
        """The official names in the widget's language (levels, aspects, cells, source)."""
        return tables.ictcft_names(self.matrix, self.language)

    def cell_name(self, aspect: str, level: str) -> str:
        """The official name of a cell, e.g. ``("4", "KD")`` -> "Infusion" ("Imprégnation")."""
        return self.names["cells"][aspect][level]

    def level_name(self, level: str) -> str:
        """The official name of a level code, e.g. ``"KA"`` -> "Knowledge Acquisition"."""
        return self.names["levels"][level]

    def coverage_text(self, aspect: str, level: str) -> str | None:
        """Which workbooks address a cell, or "Beyond this programme"; None without coverage."""
        if self.coverage is None:
            return None
        workbooks = self.coverage.get(f"{aspect}.{level}", [])
        if not workbooks:
            return self._("selfassess.beyond")
        named = [
            self._(
                "selfassess.workbook",
                number=w["number"],
                title=w["titles"].get(self.language) or next(iter(w["titles"].values())),
            )
            for w in workbooks
        ]
        return self._("selfassess.addressed_in", workbooks="; ".join(named))

    def _build(self):
        scale = [(self._(f"selfassess.scale.{n}"), n) for n in SCALE]
        self._menus: dict[str, widgets.Dropdown] = {}
        groups = []
        for aspect in self.matrix["aspects"]:
            menus = []
            for level in self.matrix["levels"]:
                # Cell names are long: each goes on its own line above its list (phones).
                menu = stacked(
                    widgets.Dropdown(
                        options=[(self._("selfassess.unrated"), None), *scale],
                        value=None,
                        description=f"{self.cell_name(aspect, level)} ({self.level_name(level)})",
                        style=STACKED_STYLE,
                    )
                )
                menu.observe(self._rated, "value")
                self._menus[f"{aspect}.{level}"] = menu
                menus.append(menu)
                covered = self.coverage_text(aspect, level)
                if covered is not None:
                    menus.append(widgets.HTML(f"<small>{html.escape(covered)}</small>"))
            aspect_name = html.escape(self.names["aspects"][aspect])
            heading = widgets.HTML(f"<h4>{aspect}. {aspect_name}</h4>")
            groups.append(widgets.VBox([heading, *menus], layout=widgets.Layout(**FULL_WIDTH)))
        self._chart = widgets.HTML(layout=widgets.Layout(**FULL_WIDTH))
        intro = prompt(self._("selfassess.intro"))
        source = widgets.HTML(tables.citation({**self.matrix, **self.names["source"]}))
        return [intro, *groups, self._chart, source]

    def _rated(self, _change):
        ratings = {cell: menu.value for cell, menu in self._menus.items() if menu.value is not None}
        self._set_from_control(ratings or None)

    def _coerce(self, value):
        if not isinstance(value, dict):
            return None
        kept = {c: int(v) for c, v in value.items() if c in self._menus and v in SCALE}
        return kept or None

    def _show(self, value):
        value = value or {}
        for cell, menu in self._menus.items():
            menu.value = value.get(cell)
        self._chart.value = self.chart_html()

    def profile(self) -> dict[str, dict[str, int]]:
        """Level -> aspect -> rating (0 where not rated)."""
        value = self.value or {}
        return {
            level: {aspect: value.get(f"{aspect}.{level}", 0) for aspect in self.matrix["aspects"]}
            for level in self.matrix["levels"]
        }

    def chart_html(self) -> str:
        """The radar chart and its text table, as HTML."""
        aspects = self.matrix["aspects"]
        profile = self.profile()
        series = [
            (self.level_name(level), [profile[level][a] for a in aspects])
            for level in self.matrix["levels"]
        ]
        axes = [f"{a}. {self._(f'ictcft.aspect_short.{a}')}" for a in aspects]
        chart = svg.radar(axes, series, max(SCALE), self._("selfassess.chart_title"))
        header = [self._("selfassess.aspect"), *(name for name, _values in series)]
        rows = [[axes[i], *(values[i] for _name, values in series)] for i in range(len(aspects))]
        return chart + svg.table(self._("selfassess.table_caption"), header, rows)
