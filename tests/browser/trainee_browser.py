"""A trainee in Chromium on the workbook view: a checked browser, the home page, the items.

What the journey and "nothing lost" tests share (no pytest here): a browser context whose every
request is routed and refused unless it stays on this machine, the login and home pages, how a
trainee gives each item of a workbook (taps, typed words and numbers, read from the workbook's
code and the prepared answer sets), and what a code editor looks like.
"""

from __future__ import annotations

import ast
import json
import re
import time
from pathlib import Path
from urllib.parse import urlparse

from accessibility import serious_violations
from playwright.sync_api import expect

from atelier.hub_config.view.workbook import page_words
from atelier.widgets.i18n import translate

PHONE = {"width": 360, "height": 740}
DESKTOP = {"width": 1280, "height": 800}
#: Hosts a page may reach: this machine.
LOOPBACK = {"127.0.0.1", "localhost", "::1", "[::1]"}
#: What a code editor or a code cell's input looks like in JupyterLab's, Notebook's or Voila's DOM.
EDITORS = (
    ".CodeMirror, .cm-editor, .jp-CodeMirrorEditor, .jp-InputArea-editor, "
    ".jp-CodeCell .jp-InputArea, .jp-CodeCell .jp-Cell-inputWrapper, "
    # A text box for prose (a reflection's journal) is an answer box, not a code editor.
    "textarea:not(.widget-textarea > textarea)"
)
#: Text that only Python source of the workbooks shows (imports, calls of the widget classes,
#: the hidden tests' checks, assignments of the optional cells).
SOURCE = re.compile(
    r"from atelier|import \w|atelier\.widgets|check_\w+\(|score_\w+\(|def \w+\(|"
    r"(MultipleChoice|NumericAnswer|ShortText|Ordering|Matching|HomeLearningBalancer)\(|"
    r"set_language\(|\bwith open\("
)
#: Every step waits at most this long (ms), however loaded the shared machine.
STEP_MS = 120_000


class Browser:
    """One person's browser context: a screen, a language, every request checked.

    Every HTTP request goes through :meth:`_route`: to this machine it goes on, anywhere else it
    is refused and recorded in :attr:`outside`. WebSockets (kernels) are recorded the same way.
    A ``beforeunload`` question is answered "leave" (the trainee chose to reload).
    """

    def __init__(self, browser, screen: dict, locale: str):
        phone = screen["width"] < 600
        self.context = browser.new_context(
            viewport=screen, locale=locale, is_mobile=phone, has_touch=phone
        )
        self.context.set_default_timeout(STEP_MS)
        self.outside: list[str] = []
        self.seen: list[str] = []
        self.context.route("**/*", self._route)
        self.context.on("page", self._watch)

    def _route(self, route) -> None:
        url = route.request.url
        self.seen.append(url)
        if url.startswith(("data:", "blob:")) or urlparse(url).hostname in LOOPBACK:
            route.fallback()
        else:
            self.outside.append(url)
            route.abort("blockedbyclient")

    def _watch(self, page) -> None:
        def socket(ws):
            self.seen.append(ws.url)
            if urlparse(ws.url).hostname not in LOOPBACK:
                self.outside.append(ws.url)

        page.on("websocket", socket)
        page.on("dialog", lambda dialog: dialog.accept())

    def page(self):
        """A new tab."""
        return self.context.new_page()

    def close(self) -> None:
        self.context.close()


def audit(page, where: str, *include: str) -> None:
    """axe-core: no serious or critical violation on ``page`` (or inside ``include``)."""
    issues = serious_violations(page, *include)
    assert not issues, (where, issues)


def assert_no_code(page, where: str) -> None:
    """No code editor in the DOM and no Python source shown on the page."""
    editors = page.locator(EDITORS).count()
    assert editors == 0, f"{where}: {editors} code editor(s) in the DOM"
    shown = SOURCE.findall(page.locator("body").inner_text())
    assert not shown, f"{where}: the page shows Python source: {shown}"


def log_in(page, hub, username: str, language: str) -> None:
    """Sign in on the hub's login page (checked in the trainee's language) and land on home."""
    page.goto(f"{hub.url}/hub/login")
    heading = {"fr": "Connexion", "en": "Sign in"}[language]
    page.get_by_role("heading", name=heading).wait_for()
    # JupyterHub's page.html says <html lang="en">; Atelier's form says its own language.
    expect(page.locator("#login-main")).to_have_attribute("lang", language)
    assert_no_code(page, "login")
    audit(page, "login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", hub.passwords[username])
    page.click("[type=submit]")
    page.wait_for_url(f"{hub.url}/user/{username}/atelier/home**")
    title = {"fr": "Mes cahiers", "en": "My workbooks"}[language]
    page.get_by_role("heading", name=title, level=1).wait_for()


def card(page, assignment: str):
    """The home page's card of ``assignment``."""
    return page.locator(f'li.card[data-assignment="{assignment}"]')


def open_from_home(page, hub, username: str, assignment: str, first_item: str) -> None:
    """Press the card's button on the home page; wait until the view shows ``first_item``."""
    card(page, assignment).locator("a.button").click()
    page.wait_for_url(f"{hub.url}/user/{username}/atelier/view/**", wait_until="commit")
    wait_for_view(page, first_item)


def wait_for_view(page, first_item: str) -> None:
    """The view has shown its widgets (``first_item`` among them) and connected its kernel."""
    page.locator(f".atelier-id-{first_item}").wait_for()
    expect(page.locator("#atelier-save")).to_have_attribute(
        "data-state", re.compile("^(ready|saved)$")
    )


def save_state(page, language: str, state: str, timeout: float = STEP_MS) -> None:
    """The save bar shows ``state`` with its sentence in the trainee's language."""
    bar = page.locator("#atelier-save")
    expect(bar).to_have_attribute("data-state", state, timeout=timeout)
    expect(bar).to_have_text(page_words(language)[state])


# --- the items of a workbook ---------------------------------------------------------------------


def widget_calls(notebook: Path) -> dict[str, tuple[str, dict]]:
    """Widget id -> (class, literal keyword arguments) of every widget call in the notebook."""
    found = {}
    for cell in json.loads(notebook.read_text("utf-8"))["cells"]:
        if cell["cell_type"] != "code":
            continue
        try:
            tree = ast.parse("".join(cell["source"]))
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            # Widget classes only (the test cells call check_* functions with the same ids).
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)):
                continue
            if not node.func.id[:1].isupper():
                continue
            if not (node.args and isinstance(node.args[0], ast.Constant)):
                continue
            arguments = {}
            for keyword in node.keywords:
                try:
                    arguments[keyword.arg] = ast.literal_eval(keyword.value)
                except ValueError:
                    continue
            found[node.args[0].value] = (node.func.id, arguments)
    return found


def typed_number(value: float, language: str) -> str:
    """A number as a trainee types it: ``1 080`` and ``2,5`` in French, ``1080`` and ``2.5``."""
    text = f"{value:g}"
    if language == "fr":
        whole, _, decimals = text.partition(".")
        if len(whole) > 3:
            whole = f"{whole[:-3]} {whole[-3:]}"
        text = whole + ("," + decimals if decimals else "")
    return text


def widget(page, widget_id: str):
    """The widget of ``widget_id`` on the page, scrolled into view."""
    box = page.locator(f".atelier-id-{widget_id}")
    box.scroll_into_view_if_needed()
    return box


def give(page, calls: dict, widget_id: str, value, language: str) -> None:
    """Give ``value`` to the item ``widget_id`` as a trainee does: tap, choose, type, move."""
    kind, arguments = calls[widget_id]
    box = widget(page, widget_id)
    if kind == "MultipleChoice":
        box.get_by_label(arguments["options"][value], exact=True).check()
    elif kind in ("NumericAnswer", "ShortText"):
        field = box.get_by_role("textbox")
        typed = typed_number(value, language) if kind == "NumericAnswer" else value
        field.fill(typed)
        field.press("Enter")
    elif kind == "Matching":
        for card_key, category in value.items():
            box.get_by_label(arguments["cards"][card_key]).select_option(
                label=arguments["categories"][category]
            )
    elif kind == "Ordering":
        labels = [arguments["items"][key] for key in value]
        for target, label in enumerate(labels):
            while True:
                order = shown_order(box)
                assert sorted(order) == sorted(labels), (order, labels)
                position = order.index(label)
                if position == target:
                    break
                up = translate("order.up", language, n=position + 1)
                box.get_by_role("button", name=up, exact=True).click()
                deadline = time.monotonic() + 30
                while shown_order(box) == order:
                    assert time.monotonic() < deadline, f"{widget_id} did not move"
                    time.sleep(0.1)
        box.get_by_role("button", name=translate("order.confirm", language)).click()
    elif kind == "ReflectionJournal":
        # One text box per prompt, in the prompts' order; typed prose, saved when it loses focus.
        boxes = box.locator("textarea")
        for number, key in enumerate(sorted(value)):
            boxes.nth(number).fill(value[key])
            boxes.nth(number).press("Tab")
    else:
        raise AssertionError(f"no way to give {kind} {widget_id} in this test")


def shown_order(box) -> list[str]:
    """The row labels of an ordering item, top to bottom (each row's text is ``N. label``)."""
    rows = box.locator(".widget-html-content").all_inner_texts()
    return [re.sub(r"^\d+\.\s*", "", row.strip()) for row in rows if re.match(r"^\d+\.", row)]


def saved_answers(path: Path, timeout: float = 30) -> dict:
    """Widget id -> value in an answers file (waits for the file to exist)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            answers = json.loads(path.read_text("utf-8"))["answers"]
            return {key: entry["value"] for key, entry in answers.items()}
        except (FileNotFoundError, ValueError):
            assert time.monotonic() < deadline, f"no answers file at {path}"
            time.sleep(0.2)


def wait_saved(path: Path, widget_id: str, value, timeout: float = 30) -> None:
    """Wait until the answers file at ``path`` holds ``value`` for ``widget_id``."""
    deadline = time.monotonic() + timeout
    while saved_answers(path).get(widget_id) != value:
        assert time.monotonic() < deadline, (widget_id, value, saved_answers(path))
        time.sleep(0.2)
