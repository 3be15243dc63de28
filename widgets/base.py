"""The base of every Atelier widget: an id, a JSON value that persists, a language, a status line.

Rule (after ipywidgets' ``interaction.py``): a widget is a ``VBox`` whose children are private
controls; its public state is the ``value`` trait (plain JSON: what is saved and graded). The flow
is one-way: a control event sets ``value``; one ``@observe("value")`` redraws the controls from it,
shows feedback and saves it. So ``widget.value = ...`` in a test does exactly what a trainee's click
does. Texts come from the catalogues (:mod:`atelier.widgets.i18n`); author content (questions,
options, feedback) is trusted HTML; anything a trainee typed is escaped before it is shown as HTML.
"""

from __future__ import annotations

import html
from typing import Any

import ipywidgets as widgets
from traitlets import Any as AnyTrait
from traitlets import Unicode, observe

from atelier.widgets import i18n
from atelier.widgets.store import AnswersFileError, AnswerStore, check_id

#: Phone-first layout, in CSS only (no JavaScript): labels wrap instead of being cut, rows wrap,
#: nothing is wider than the screen. Scoped to ``.atelier`` so it never restyles other widgets.
STYLE = """<style>
.atelier { max-width: 100%; box-sizing: border-box; }
.atelier .widget-inline-hbox, .atelier .widget-hbox { flex-wrap: wrap; max-width: 100%; }
.atelier .widget-label, .atelier .widget-inline-hbox .widget-label { white-space: normal;
  overflow: visible; text-overflow: clip; height: auto; line-height: 1.3; max-width: 100%; }
.atelier .atelier-stacked > .widget-label { flex: 1 0 100%; text-align: left; margin-bottom: 2px; }
.atelier .atelier-stacked > select { flex: 1 1 100%; }
.atelier .widget-html-content { white-space: normal; max-width: 100%; overflow-wrap: anywhere; }
.atelier .widget-radio-box label, .atelier .widget-checkbox label { white-space: normal; height:
auto; }
.atelier .widget-radio-box label { display: flex; align-items: flex-start; line-height: 1.3;
  margin-bottom: 4px; }
.atelier .widget-radio-box input { order: -1; float: none; flex: 0 0 auto; margin-top: 2px; }
.atelier .widget-text input, .atelier .widget-textarea textarea, .atelier .widget-dropdown select {
  min-width: 0; max-width: 100%; }
.atelier .atelier-feedback-good { color: #1b5e20; }
.atelier .atelier-feedback-bad { color: #8a1c1c; }
.atelier table { border-collapse: collapse; max-width: 100%; }
.atelier th, .atelier td { border: 1px solid #bbb; padding: 2px 4px; text-align: left;
  line-height: 1.3;
  overflow-wrap: normal; word-break: normal; }
.atelier .atelier-table-box { max-width: 100%; overflow-x: auto; }
.atelier svg { max-width: 100%; height: auto; }
</style>"""

FULL_WIDTH = {"width": "100%", "max_width": "100%"}
#: The prefix of the class that carries a widget's id in the page (``atelier-id-w7-case``).
ID_CLASS = "atelier-id-"


def escape(text: Any) -> str:
    """Text a trainee typed, safe to put inside HTML."""
    return html.escape(str(text), quote=True)


#: A control whose label (``description``) is too long for ipywidgets' label column: the label takes
#: a whole line above the box. Inline styles (``description_width``, ``flex_flow``) so that no
#: style sheet order can undo it; the label stays the control's own ``<label for>``.
STACKED_STYLE = {"description_width": "100%"}


def stacked(control: widgets.DOMWidget) -> widgets.DOMWidget:
    """``control`` with its label on its own full-width line above it (long labels, phones)."""
    control.layout.flex_flow = "row wrap"
    control.layout.width = "100%"
    control.layout.max_width = "100%"
    control.add_class("atelier-stacked")
    return control


def row(*children: widgets.Widget) -> widgets.HBox:
    """A horizontal row that wraps onto several lines on a narrow screen."""
    return widgets.HBox(list(children), layout=widgets.Layout(flex_flow="row wrap", **FULL_WIDTH))


class AtelierWidget(widgets.VBox):
    """A widget whose ``value`` persists beside the notebook when it has an id.

    Subclasses set ``kind``, build their controls in ``_build()`` (returning the children shown
    between the prompt and the status line), redraw controls from ``value`` in ``_show(value)``, and
    may turn a value into feedback HTML in ``_feedback(value)``.

    Args:
        widget_id: the id under which the answer is saved and graded; ``None`` means not saved.
        language: the language of the widget's own texts; default the workbook's.
        store: where answers are saved; default the answers file of the working directory.
    """

    kind = "answer"
    value = AnyTrait(
        None, allow_none=True, help="The answer, as plain JSON (what is saved and graded)."
    )
    widget_id = Unicode(
        None, allow_none=True, read_only=True, help="Id under which the answer is saved."
    )
    status = Unicode(
        "", help="The last status message shown under the widget (saved, not saved...)."
    )

    def __init__(
        self, widget_id: str | None = None, *, language: str | None = None, store=None, **kwargs
    ):
        super().__init__(**kwargs)
        if widget_id is not None:
            check_id(widget_id)
        self.set_trait("widget_id", widget_id)
        self.language = i18n.get_language(language)
        self._store = store if store is not None else AnswerStore()
        self._redrawing = False
        self._restoring = False
        self._status = widgets.HTML(layout=widgets.Layout(**FULL_WIDTH))
        self._feedback_box = widgets.HTML(layout=widgets.Layout(**FULL_WIDTH))
        body = self._build()
        self.children = [widgets.HTML(STYLE), *body, self._feedback_box, self._status]
        self.add_class("atelier")
        self.add_class(f"atelier-{self.kind}")
        if widget_id is not None:
            # The workbook view finds the widget by this class to show its feedback beside it
            # (hub_config/view/); ipywidgets gives a widget classes, not attributes.
            self.add_class(f"{ID_CLASS}{widget_id}")
        self.layout.max_width = "100%"
        self._restore()

    # -- for subclasses
    # -------------------------------------------------------------------------------
    def _build(self) -> list[widgets.Widget]:
        """Create the private controls; return the children to show."""
        return []

    def _show(self, value: Any) -> None:
        """Redraw the controls so that they show ``value``."""

    def _feedback(self, value: Any) -> str:
        """Feedback HTML for ``value`` ("" for none)."""
        return ""

    def _coerce(self, value: Any) -> Any:
        """Turn a saved value back into a valid one (``None`` if it no longer fits the widget)."""
        return value

    def _(self, key: str, **fields: Any) -> str:
        """The text of ``key`` in this widget's language."""
        return i18n.translate(key, self.language, **fields)

    def _set_from_control(self, value: Any) -> None:
        """Called by control events: the trainee gave ``value``."""
        if not self._redrawing:
            self.value = value

    # -- the one flow
    # ---------------------------------------------------------------------------------
    @observe("value")
    def _on_value(self, change) -> None:
        self._redrawing = True
        try:
            self._show(change["new"])
        finally:
            self._redrawing = False
        self._feedback_box.value = self._feedback(change["new"])
        if not self._restoring:
            self._save(change["new"])

    def _save(self, value: Any) -> None:
        if self.widget_id is None or not self._store.enabled:
            return
        try:
            entry = self._store.save(self.widget_id, value, self.kind, language=self.language)
        except (OSError, ValueError, TypeError) as exc:
            # The workbook view's save state looks for this class (hub_config/view/).
            self._set_status(
                "status.not_saved", bad=True, css="atelier-save-failed", reason=escape(exc)
            )
            return
        self._set_status("status.saved", time=entry["saved"][11:16])

    def _restore(self) -> None:
        """Show the answer saved earlier (after a kernel restart or a page reload)."""
        if self.widget_id is None or not self._store.enabled:
            self._redraw_all()
            return
        try:
            entry = self._store.get(self.widget_id)
        except (AnswersFileError, OSError) as exc:
            self._set_status("status.unreadable", bad=True, reason=escape(exc))
            entry = None
        if entry is None or entry.get("value") is None:
            self._redraw_all()
            return
        self._restoring = True
        try:
            value = self._coerce(entry["value"])
            if value == self.value:
                self._redraw_all()
            else:
                self.value = value
        finally:
            self._restoring = False
        self._set_status("status.restored", time=str(entry.get("saved", ""))[11:16])

    def _redraw_all(self) -> None:
        self._redrawing = True
        try:
            self._show(self.value)
        finally:
            self._redrawing = False
        self._feedback_box.value = self._feedback(self.value)

    def _set_status(self, key: str, bad: bool = False, css: str = "", **fields: Any) -> None:
        self.status = self._(key, **fields)
        css = " ".join(filter(None, ["atelier-feedback-bad" if bad else "atelier-status", css]))
        self._status.value = (
            f'<div role="status" aria-live="polite" class="{css}">{self.status}</div>'
        )

    @property
    def feedback(self) -> str:
        """The feedback shown now, as HTML ("" for none)."""
        return self._feedback_box.value


def prompt(text: str) -> widgets.HTML:
    """The question or instructions, above the controls (author content: trusted HTML)."""
    return widgets.HTML(
        f'<div class="atelier-prompt">{text}</div>', layout=widgets.Layout(**FULL_WIDTH)
    )


def feedback_html(items: list[tuple[bool | None, str]]) -> str:
    """Feedback lines in a live region; ``True`` good, ``False`` bad, ``None`` neutral."""
    if not items:
        return ""
    lines = []
    for good, text in items:
        css = {True: "atelier-feedback-good", False: "atelier-feedback-bad"}.get(good, "")
        lines.append(f'<p class="{css}">{text}</p>')
    return f'<div role="status" aria-live="polite" class="atelier-feedback">{"".join(lines)}</div>'
