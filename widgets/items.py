"""The answer items of a notebook: the widgets given an id, found by reading its code (never run).

Rule: an item is a call of one of Atelier's widget classes (:data:`WIDGET_CLASSES`, every class
``atelier.widgets`` exports) whose id is written as a string literal, the first positional argument
or ``widget_id=``: exactly the widgets whose answers are saved in ``.atelier-answers.json`` under
that id. Reading the code with :mod:`ast` (never executing it) is what lets the trainee's home page
count "n of m answered" for a workbook nobody has opened yet, and the same list serves anyone who
must name the unanswered items. A cell that is not valid Python (a notebook edited by hand) is
skipped: it makes no widget either.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Iterator, Mapping

from atelier.widgets import _EXPORTS

#: The modules of ``atelier.widgets`` whose exports are not widgets (the store, languages, checks).
_NOT_WIDGETS = {"store", "i18n", "grading"}
#: Class names that make an answer item when called with an id.
WIDGET_CLASSES = frozenset(
    name for name, module in _EXPORTS.items() if module not in _NOT_WIDGETS and name[0].isupper()
)


def _imported_widget_names(tree: ast.AST) -> tuple[set[str], set[str]]:
    """Local names bound to widget classes, and local names bound to widget modules."""
    classes: set[str] = set()
    modules: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("atelier.widgets"):
            for alias in node.names:
                if alias.name in WIDGET_CLASSES:
                    classes.add(alias.asname or alias.name)
        elif isinstance(node, ast.ImportFrom) and node.module == "atelier":
            modules.update(a.asname or a.name for a in node.names if a.name == "widgets")
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("atelier.widgets"):
                    modules.add(alias.asname or alias.name)
    return classes, modules


def _dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return ""


def _call_id(call: ast.Call) -> str | None:
    """The literal id of a widget call, or None (no id: a formative widget nothing saves)."""
    for keyword in call.keywords:
        if keyword.arg == "widget_id":
            value = keyword.value
            return value.value if isinstance(value, ast.Constant) and value.value else None
    if call.args and isinstance(call.args[0], ast.Constant) and isinstance(call.args[0].value, str):
        return call.args[0].value or None
    return None


def _widget_calls(sources: Iterable[str]) -> Iterator[ast.Call]:
    """The calls of widget classes in the code ``sources`` (one per cell), in order.

    A widget imported in one cell may be called in any other (the cells share one kernel), so the
    imported names are gathered from every cell before any call is judged.
    """
    trees = []
    for source in sources:
        try:
            trees.append(ast.parse(source))
        except (SyntaxError, ValueError):
            continue  # IPython magics or a hand-edited cell: no widget is made by it either
    classes: set[str] = set()
    modules: set[str] = set()
    for tree in trees:
        found_classes, found_modules = _imported_widget_names(tree)
        classes |= found_classes
        modules |= found_modules
    for tree in trees:
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            name = _dotted(node.func)
            head, _, last = name.rpartition(".")
            if name in classes or (head in modules and last in WIDGET_CLASSES):
                yield node


def code_items(sources: Iterable[str]) -> list[str]:
    """The item ids the code ``sources`` (one per cell, in order) create, each once, in order."""
    items: list[str] = []
    for call in _widget_calls(sources):
        widget_id = _call_id(call)
        if widget_id and widget_id not in items:
            items.append(widget_id)
    return items


def notebook_items(notebook: Mapping) -> list[str]:
    """The item ids of a notebook (an nbformat dict), in the order the cells create them."""
    sources = []
    for cell in notebook.get("cells", []):
        if cell.get("cell_type") == "code":
            source = cell.get("source", "")
            sources.append("".join(source) if isinstance(source, list) else str(source))
    return code_items(sources)


#: Saved values that are no answer yet (a box emptied again, nothing chosen).
_EMPTY = (None, "", [], {})


def answered(items: Iterable[str], answers: Mapping[str, Mapping]) -> list[str]:
    """The items of ``items`` with a saved answer in ``answers`` (an answers file's entries)."""
    done = []
    for item in items:
        entry = answers.get(item)
        if isinstance(entry, Mapping) and entry.get("value") not in _EMPTY:
            done.append(item)
    return done


#: A declaration ``variants=`` that is not a literal (a name, a call): it cannot be read unrun.
NOT_LITERAL = object()


def _literal_variants(call: ast.Call):
    for keyword in call.keywords:
        if keyword.arg == "variants":
            try:
                return ast.literal_eval(keyword.value)
            except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
                return NOT_LITERAL
    return None


def code_variants(sources: Iterable[str]) -> dict[str, object]:
    """Item id -> the ``variants=`` its widget call declares (a literal, or :data:`NOT_LITERAL`).

    Read as :func:`code_items` reads items; items without variants are left out.
    """
    found: dict[str, object] = {}
    for call in _widget_calls(sources):
        widget_id, declared = _call_id(call), _literal_variants(call)
        if widget_id and declared is not None:
            found[widget_id] = declared
    return found


def graded_variants(source: str) -> dict[str, object]:
    """Item id -> the ``variants=`` a test cell's grading call (``check_*``, ``score_*``) gives."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return {}
    found: dict[str, object] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            last = _dotted(node.func).rpartition(".")[2]
            if last.startswith(("check_", "score_")) and last != "check_answered":
                widget_id = _call_id(node)
                if widget_id:
                    found[widget_id] = _literal_variants(node)
    return found
