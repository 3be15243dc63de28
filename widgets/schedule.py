"""A weekly home-learning schedule balancer, after the SCIENCE model of active learning at home.

Rule: ``value`` maps each day (``mon`` ... ``sun``) to minutes of learning, play, exercise and
reflection.
The balancer checks what a schedule can show of the model: learning and play in balance each day
(S: scheduling), exercise every day (E: exercising daily), reflection during the week (C: carrying
out reflection), and, if the facilitator sets one, a daily learning ceiling. It sets no targets of
its own.
"""

from __future__ import annotations

import ipywidgets as widgets

from atelier.widgets import svg, tables
from atelier.widgets.base import FULL_WIDTH, AtelierWidget, feedback_html, prompt

# The rules live with the grading helpers (which import no widget code), so that a week this
# balancer calls balanced is a week a hidden test accepts.
from atelier.widgets.grading import ACTIVITIES, DAYS, schedule_problems


def check(week: dict, max_learning_minutes: int | None = None) -> list[tuple[str, list[str]]]:
    """The problems of ``week``, as ``[(problem, [days])]``.

    ``problem`` is one of ``no_play``, ``no_exercise``, ``no_reflection``, ``too_much_learning``.
    """
    _rules, problems = schedule_problems(week, max_learning_minutes)
    return [(problem, fields.get("days", [])) for problem, fields in problems]


class HomeLearningBalancer(AtelierWidget):
    """Plan a week of learning at home; see whether it keeps the balance the SCIENCE model asks for.

    Args:
        widget_id: the id under which the week is saved (``None`` in a public app).
        max_learning_minutes: a daily learning ceiling set by the facilitator (``None``: no check).
    """

    kind = "schedule"

    def __init__(
        self, widget_id: str | None = None, *, max_learning_minutes: int | None = None, **kwargs
    ):
        self.max_learning_minutes = max_learning_minutes
        super().__init__(widget_id, **kwargs)

    def _build(self):
        style = {"description_width": "initial"}
        self._day = widgets.Dropdown(
            options=[(self._(f"day.{d}"), d) for d in DAYS],
            value="mon",
            description=self._("schedule.day"),
            style=style,
            layout=widgets.Layout(width="auto", max_width="100%"),
        )
        self._day.observe(lambda _c: self._redraw_all(), "value")
        self._inputs = {}
        for activity in ACTIVITIES:
            box = widgets.BoundedIntText(
                min=0,
                max=24 * 60,
                step=5,
                description=self._(f"schedule.activity.{activity}"),
                style=style,
                layout=widgets.Layout(width="auto", max_width="100%"),
            )
            box.observe(lambda change, a=activity: self._typed(a, change["new"]), "value")
            self._inputs[activity] = box
        self._copy = widgets.Button(
            description=self._("schedule.copy"), layout=widgets.Layout(width="auto")
        )
        self._copy.on_click(lambda _b: self.copy_to_school_days())
        self._chart = widgets.HTML(layout=widgets.Layout(**FULL_WIDTH))
        source = widgets.HTML(tables.citation(tables.load("science")))
        return [
            prompt(self._("schedule.intro")),
            self._day,
            widgets.VBox(list(self._inputs.values())),
            self._copy,
            self._chart,
            source,
        ]

    def week(self) -> dict[str, dict[str, int]]:
        """Every day with every activity (0 where nothing is planned)."""
        value = self.value or {}
        return {d: {a: int(value.get(d, {}).get(a, 0)) for a in ACTIVITIES} for d in DAYS}

    def _typed(self, activity: str, minutes: int) -> None:
        if self._redrawing:
            return
        week = self.week()
        week[self._day.value][activity] = minutes
        self._set_from_control(week)

    def copy_to_school_days(self) -> None:
        """Copy the day shown to Monday to Friday."""
        week = self.week()
        for d in DAYS[:5]:
            week[d] = dict(week[self._day.value])
        self._set_from_control(week)

    def _coerce(self, value):
        if not isinstance(value, dict):
            return None
        return {
            d: {a: max(0, int(value[d].get(a, 0) or 0)) for a in ACTIVITIES}
            for d in DAYS
            if isinstance(value.get(d), dict)
        } or None

    def _show(self, value):
        day = self.week()[self._day.value]
        for activity, box in self._inputs.items():
            box.value = day[activity]
        week = self.week()
        totals = [
            (self._(f"schedule.activity.{a}"), sum(week[d][a] for d in DAYS) / 60)
            for a in ACTIVITIES
        ]
        title = self._("schedule.chart_title")
        chart = svg.bars(
            [(label, round(hours, 1)) for label, hours in totals],
            max(h for _l, h in totals) or 1,
            title,
            " h",
        )
        # Short day and activity names: five columns must fit a 360 px phone without breaking a
        # word ("lun/di"); the caption says the numbers are minutes.
        header = [
            self._("schedule.day"),
            *(self._(f"schedule.activity_short.{a}") for a in ACTIVITIES),
        ]
        rows = [[self._(f"day.short.{d}"), *(week[d][a] for a in ACTIVITIES)] for d in DAYS]
        self._chart.value = chart + svg.table(self._("schedule.table_caption"), header, rows)

    def _answer_lines(self, value):
        return [self._("answer.minutes_per_day")]

    def _answer_table(self, value):
        week = self.week()
        header = [
            self._("schedule.day"),
            *(self._(f"schedule.activity_short.{a}") for a in ACTIVITIES),
        ]
        return header, [[self._(f"day.short.{d}"), *(week[d][a] for a in ACTIVITIES)] for d in DAYS]

    def problems(self) -> list[tuple[str, list[str]]]:
        """What the week lacks (see :func:`check`)."""
        return check(self.week(), self.max_learning_minutes)

    def _feedback(self, value):
        if value is None:
            return ""
        items: list[tuple[bool | None, str]] = []
        for problem, days in self.problems():
            names = ", ".join(self._(f"day.{d}") for d in days)
            items.append(
                (
                    False,
                    self._(
                        f"schedule.problem.{problem}", days=names, limit=self.max_learning_minutes
                    ),
                )
            )
        if not items:
            items.append((True, self._("schedule.balanced")))
        return feedback_html(items)
