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
import re
from collections.abc import Mapping
from typing import Any

import ipywidgets as widgets
from traitlets import Any as AnyTrait
from traitlets import Unicode, observe

from atelier import variants as variant_draw
from atelier.errors import AtelierError
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


#: Tags that end a line or a block (a space in one line of text); any other tag is inline.
_BREAK = re.compile(r"(?i)<\s*/?\s*(?:br|p|div|li|ul|ol|tr|td|th|h[1-6])\b[^>]*>")
_TAG = re.compile(r"<[^>]*>")


def plain(text: Any) -> str:
    """Author HTML (a question, an option) as one line of text: tags dropped, entities read."""
    return " ".join(html.unescape(_TAG.sub("", _BREAK.sub(" ", str(text)))).split())


#: An answer shown as text: lines, each a string or a ``(label, text)`` pair, and an optional
#: table ``(header, rows)`` (plans).
Lines = list[str | tuple[str, str]]
Table = tuple[list[str], list[list[Any]]]
#: Saved values that are no answer yet (a box emptied again, nothing chosen).
EMPTY = (None, "", [], {})


def generic_lines(value: Any) -> Lines:
    """Any JSON answer as readable lines: one ``key: value`` line per entry of a mapping."""
    if isinstance(value, Mapping):
        lines: Lines = []
        for key, item in value.items():
            if isinstance(item, Mapping):
                item = ", ".join(f"{k}: {v}" for k, v in item.items() if v not in EMPTY)
            elif isinstance(item, list | tuple):
                item = ", ".join(map(str, item))
            lines.append((f"{key}:", str(item)))
        return lines
    if isinstance(value, list | tuple):
        return [str(item) for item in value]
    return [str(value)]


def text_table(table: Table) -> list[str]:
    """A small table as aligned lines of text (every page shows it, even without table tags)."""
    header, rows = table
    cells = [[str(c) for c in header], *[[str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    lines = []
    for number, row in enumerate(cells):
        lines.append("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
        if number == 0:
            lines.append("  ".join("-" * w for w in widths))
    return lines


def answer_bundle(heading: str, lines: Lines, table: Table | None = None) -> dict:
    """The ``text/plain`` and ``text/html`` of an answer, everything the trainee wrote escaped.

    The HTML uses only the tags nbconvert's ``clean_html`` keeps (``div``, ``strong``, ``ul``,
    ``li``, ``pre``): formgrader and nbgrader's feedback pages sanitize outputs with it, and would
    show any other tag (``p``, ``br``, ``th``, the ``tbody`` a parser adds to a table) as text.
    """
    text = [heading]
    items = []
    for line in lines:
        label, body = line if isinstance(line, tuple) else ("", line)
        parts = str(body).splitlines() or [""]
        text.append("  " + " ".join(filter(None, [label, parts[0]])))
        text.extend(f"  {part}" for part in parts[1:])
        # One line stays beside its label; the lines of a longer text are one block each.
        shown = (
            f"<span>{escape(parts[0])}</span>"
            if len(parts) == 1
            else "".join(f"<div>{escape(part)}</div>" for part in parts)
        )
        items.append(f"<li>{f'<strong>{escape(label)}</strong> ' if label else ''}{shown}</li>")
    rendered = ""
    if items:
        rendered += f"<ul>{''.join(items)}</ul>"
    if table is not None:
        grid = text_table(table)
        text.extend(f"  {row}" for row in grid)
        rendered += f"<pre>{escape(chr(10).join(grid))}</pre>"
    return {
        "text/plain": "\n".join(text),
        "text/html": (
            f'<div class="atelier-answer"><strong>{escape(heading)}</strong>{rendered}</div>'
        ),
    }


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


def drawn(widget_id: str | None, variants: Mapping | None) -> dict[str, Any]:
    """The parameters drawn for this trainee of an item declaring ``variants`` ({} if none).

    See :mod:`atelier.variants`: the trainee's seed comes from their server's environment; with
    none (a public app, ``atelier check``), each parameter's first value.
    """
    if not variants:
        return {}
    if widget_id is None:
        raise AtelierError("a widget with variants needs an id: the numbers are drawn per item")
    return variant_draw.draw(widget_id, variants)


def numbers_text(params: Mapping[str, Any], language: str) -> str:
    """``minutes = 60, up = 1,000``: the parameters of a variant, as a trainee reads numbers."""
    return ", ".join(
        f"{name} = {variant_draw.format_value(value, language)}" for name, value in params.items()
    )


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
    #: The parameters drawn for this trainee when the item declares variants ({} otherwise).
    variant: dict[str, Any] = {}
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

    # -- the answer as text: what a page without the live widget shows
    # ---------------------------------------------------------------
    def _answer_lines(self, value: Any) -> Lines:
        """The answer ``value`` as lines of text (see :data:`Lines`); subclasses say it better."""
        return generic_lines(value)

    def _answer_table(self, value: Any) -> Table | None:
        """The answer as a small table (plans), or ``None``."""
        return None

    def answer_text(self) -> dict[str, str]:
        """The answer now as ``text/plain`` and ``text/html``, in the widget's language.

        What the trainee answered, never whether it is right: no key, no verdict.
        """
        value = self.value
        heading = (
            self._("answer.given", id=self.widget_id)
            if self.widget_id
            else self._("answer.given_here")
        )
        # A variant's numbers first: the facilitator reads the answer against this trainee's
        # question, not the default one.
        numbers: Lines = []
        if self.variant:
            numbers.append((self._("variant.numbers"), numbers_text(self.variant, self.language)))
            numbers.append((self._("variant.question"), plain(getattr(self, "question", ""))))
        if value in EMPTY:
            return answer_bundle(heading, [*numbers, self._("answer.none")])
        lines = [*numbers, *self._answer_lines(value)]
        return answer_bundle(heading, lines, self._answer_table(value))

    def _repr_mimebundle_(self, **kwargs):
        """The bundle of ipywidgets, with the answer as text and HTML beside the live widget's view.

        A live page (the workbook view, JupyterLab with a kernel) renders the widget, which
        ranks above HTML; a page rendered from the stored notebook (formgrader, nbgrader's
        feedback, nbconvert) has no widget state and shows the answer the trainee gave instead
        of ipywidgets' ``VBox(children=...)``. The bundle is made when the cell runs, after the
        widget restored the saved answer: at autograde, the submitted one.
        """
        data = super()._repr_mimebundle_(**kwargs)
        data.update(self.answer_text())
        return data


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
