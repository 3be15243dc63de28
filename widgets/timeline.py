"""A live-session timeline planner that warns when trainees would go too long without interacting.

Rule: a plan is an ordered list of segments ``{"activity": ..., "minutes": ...}``. Activities are
interactive (poll, chat, questions, breakout, exercise) or not (talk, demonstration, video); a break
resets the count. Any run of non-interactive minutes longer than the limit (the facilitator's
choice, 10 by default) is a warning, located by its start and end minute (:func:`quiet_stretches`).
"""

from __future__ import annotations

from collections.abc import Sequence

import ipywidgets as widgets

from atelier.widgets import svg
from atelier.widgets.base import FULL_WIDTH, AtelierWidget, feedback_html, prompt, row

ACTIVITIES = ("talk", "demo", "video", "poll", "chat", "qa", "breakout", "exercise", "break")
INTERACTIVE = frozenset({"poll", "chat", "qa", "breakout", "exercise"})
RESETS = frozenset({"break"})


def quiet_stretches(segments: Sequence[dict], limit: float) -> list[tuple[float, float]]:
    """``(start, end)`` minutes of every run without interaction longer than ``limit`` minutes."""
    stretches = []
    clock = 0.0
    start = None
    for segment in [*segments, {"activity": "break", "minutes": 0}]:
        minutes = float(segment.get("minutes") or 0)
        if segment.get("activity") in INTERACTIVE or segment.get("activity") in RESETS:
            if start is not None and clock - start > limit:
                stretches.append((start, clock))
            start = None
        elif start is None:
            start = clock
        clock += minutes
    return stretches


class TimelinePlanner(AtelierWidget):
    """Plan a live session segment by segment; see where attention is at risk.

    ``value`` is the list of segments. Example::

        TimelinePlanner("w3-plan", limit=10,
                        segments=[{"activity": "talk", "minutes": 15}, {"activity": "poll",
                        "minutes": 3}])

    Args:
        widget_id: the id under which the plan is saved.
        segments: the plan shown at first (not an answer until the trainee changes it).
        limit: minutes without interaction before a warning.
    """

    kind = "timeline"

    def __init__(
        self,
        widget_id: str | None = None,
        *,
        segments: Sequence[dict] = (),
        limit: float = 10,
        **kwargs,
    ):
        self.limit = limit
        self._initial = [dict(s) for s in segments] or [{"activity": "talk", "minutes": 10}]
        super().__init__(widget_id, **kwargs)

    def _build(self):
        self._rows = widgets.VBox(layout=widgets.Layout(**FULL_WIDTH))
        self._add = widgets.Button(
            description=self._("timeline.add"), layout=widgets.Layout(width="auto")
        )
        self._add.on_click(
            lambda _b: self._set_from_control([*self.plan(), {"activity": "talk", "minutes": 5}])
        )
        self._chart = widgets.HTML(layout=widgets.Layout(**FULL_WIDTH))
        return [
            prompt(self._("timeline.intro", limit=self.limit)),
            self._rows,
            self._add,
            self._chart,
        ]

    def plan(self) -> list[dict]:
        """The segments shown now (the answer, or the initial plan)."""
        return [dict(s) for s in (self.value if self.value is not None else self._initial)]

    def _coerce(self, value):
        if not isinstance(value, list):
            return None
        plan = [
            {"activity": s["activity"], "minutes": max(0, int(s.get("minutes") or 0))}
            for s in value
            if isinstance(s, dict) and s.get("activity") in ACTIVITIES
        ]
        return plan or None

    def _edit(self, index: int, field: str, new) -> None:
        if self._redrawing:
            return
        plan = self.plan()
        plan[index][field] = new
        self._set_from_control(plan)

    def _remove(self, index: int) -> None:
        plan = self.plan()
        del plan[index]
        self._set_from_control(plan or None)

    def _show(self, value):
        plan = self.plan()
        options = [(self._(f"timeline.activity.{a}"), a) for a in ACTIVITIES]
        rows = []
        for index, segment in enumerate(plan):
            activity = widgets.Dropdown(
                options=options,
                value=segment["activity"],
                description=self._("timeline.segment", n=index + 1),
                style={"description_width": "initial"},
                layout=widgets.Layout(width="auto", max_width="100%"),
            )
            minutes = widgets.BoundedIntText(
                value=int(segment["minutes"]),
                min=0,
                max=600,
                description=self._("timeline.minutes", n=index + 1),
                style={"description_width": "initial"},
                layout=widgets.Layout(width="11em", max_width="100%"),
            )
            remove = widgets.Button(
                description=self._("timeline.remove", n=index + 1),
                layout=widgets.Layout(width="auto"),
            )
            activity.observe(lambda c, i=index: self._edit(i, "activity", c["new"]), "value")
            minutes.observe(lambda c, i=index: self._edit(i, "minutes", c["new"]), "value")
            remove.on_click(lambda _b, i=index: self._remove(i))
            rows.append(row(activity, minutes, remove))
        self._rows.children = rows
        stretches = quiet_stretches(plan, self.limit)
        blocks = []
        clock = 0
        for segment in plan:
            quiet = any(start <= clock < end for start, end in stretches)
            blocks.append(
                (self._(f"timeline.activity.{segment['activity']}"), segment["minutes"], quiet)
            )
            clock += segment["minutes"]
        total = sum(s["minutes"] for s in plan)
        self._chart.value = svg.timeline(blocks, self._("timeline.chart_title", total=total))

    def warnings(self) -> list[tuple[float, float]]:
        """The quiet stretches of the plan shown now."""
        return quiet_stretches(self.plan(), self.limit)

    def _answer_lines(self, value):
        return []

    def _answer_table(self, value):
        if not isinstance(value, list):
            return None
        header = [self._("answer.segment"), self._("answer.activity"), self._("answer.minutes")]
        rows = [
            [number, self._(f"timeline.activity.{s.get('activity')}"), s.get("minutes", 0)]
            for number, s in enumerate(value, 1)
            if isinstance(s, dict)
        ]
        return header, rows

    def _feedback(self, value):
        plan = self.plan()
        total = sum(s["minutes"] for s in plan)
        interactive = sum(s["minutes"] for s in plan if s["activity"] in INTERACTIVE)
        items: list[tuple[bool | None, str]] = [
            (None, self._("timeline.summary", total=total, interactive=interactive))
        ]
        stretches = self.warnings()
        for start, end in stretches:
            items.append(
                (
                    False,
                    self._(
                        "timeline.warning", start=f"{start:g}", end=f"{end:g}", limit=self.limit
                    ),
                )
            )
        if not stretches and total:
            items.append((True, self._("timeline.ok", limit=self.limit)))
        return feedback_html(items)
