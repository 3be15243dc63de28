"""The workbook view in Chromium on a real hub: a phone, no code, answers saved and kept.

One hub for the module (its own accounts and ports), with a two-question workbook delivered to
every trainee; a French and an English trainee each open it in the view at 360×740.
"""

from __future__ import annotations

import json
import pwd
import re
import shutil
import time
from pathlib import Path
from urllib.parse import urlparse

import pytest
from accessibility import serious_violations
from harness import FIXTURES
from hubs import running_hub
from playwright.sync_api import expect

from atelier.hub_config.view.workbook import page_words

pytestmark = pytest.mark.browser

PHONE = {"width": 360, "height": 740}
#: Per language: the workbook, the right option of question 1, the label of question 2's box.
TRAINEES = {
    "chloe": ("fr", "fr-FR", "Quatre", "Votre réponse"),
    "alice": ("en", "en-GB", "Four", "Your answer"),
}
#: What a code editor or a code cell's source looks like in the DOM of JupyterLab, Notebook or
#: Voila (a Markdown cell's text sits in an input area too: that is prose, and allowed).
EDITORS = (
    ".jp-CodeMirrorEditor, .cm-editor, .CodeMirror, .jp-InputArea-editor, "
    ".jp-CodeCell .jp-InputArea"
)


#: The page's kernel id, from the page's own configuration.
KERNEL_ID = """() =>
    JSON.parse(document.getElementById("jupyter-config-data").textContent).kernelId"""


def kill_kernel(kernel_id: str) -> int:
    """Kill the kernel process of ``kernel_id`` (as a memory limit or a crash does); its pid.

    The server's restarter starts a new kernel and tells every open page ("restarting"). A
    kernel started by Voila names its connection file after its id.
    """
    import psutil

    for process in psutil.process_iter(["cmdline"]):
        command = " ".join(process.info["cmdline"] or [])
        if "ipykernel" in command and kernel_id in command:
            process.kill()
            return process.pid
    raise AssertionError(f"no kernel process for {kernel_id}")


@pytest.fixture(scope="module")
def view_hub():
    """A hub whose trainees get the quiz workbook (tests/fixtures/view/quiz/) delivered."""
    with running_hub(start=False) as hub:
        shutil.copytree(FIXTURES / "view" / "quiz", hub.workbooks / "quiz")
        hub.publish_workbooks()
        hub.launch()
        yield hub


def answers_file(hub, username: str) -> Path:
    home = Path(pwd.getpwnam(hub.account(username)).pw_dir)
    return home / "workbooks" / "quiz" / ".atelier-answers.json"


def saved(hub, username: str, widget_id: str, timeout: float = 30):
    """The value saved for ``widget_id`` in the trainee's answers file (waits for it)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            answers = json.loads(answers_file(hub, username).read_text("utf-8"))["answers"]
            if widget_id in answers:
                return answers[widget_id]["value"]
        except (FileNotFoundError, ValueError):
            pass
        assert time.monotonic() < deadline, f"{widget_id} was not saved in {timeout}s"
        time.sleep(0.2)


@pytest.mark.parametrize("username", sorted(TRAINEES))
def test_a_trainee_answers_a_workbook_in_the_view_on_a_phone(view_hub, browser, username):
    """Does a trainee on a phone get the workbook without code, see "saved", and keep answers?"""
    hub = view_hub
    language, locale, right, box_label = TRAINEES[username]
    words = page_words(language)
    context = browser.new_context(viewport=PHONE, locale=locale)
    page = context.new_page()
    page.set_default_timeout(120_000)
    seen: list[str] = []
    page.on("request", lambda request: seen.append(request.url))
    try:
        page.goto(f"{hub.url}/hub/login")
        page.fill("input[name=username]", username)
        page.fill("input[name=password]", hub.passwords[username])
        page.click("[type=submit]")
        page.wait_for_url(f"{hub.url}/user/{username}/**")
        path = f"workbooks/quiz/quiz.{language}.ipynb"
        page.goto(f"{hub.url}/user/{username}/atelier/view/{path}")
        option = page.get_by_label(right, exact=True)
        option.wait_for()
        expect(page.locator("html")).to_have_attribute("lang", language)
        lab = page.get_by_role("link", name=words["lab"])
        assert lab.get_attribute("href") == f"/user/{username}/lab/tree/{path}"
        assert page.locator(EDITORS).count() == 0, "a code editor is in the view"
        assert page.locator("textarea").count() == 0
        assert "import" not in page.locator("main").inner_text()

        option.check()
        expect(page.locator("#atelier-save")).to_have_text(words["saved"])
        assert saved(hub, username, "v-q1") == "b"
        issues = serious_violations(page)
        assert not issues, issues

        page.reload()
        page.get_by_label(right, exact=True).wait_for()
        expect(page.get_by_label(right, exact=True)).to_be_checked()
        assert page.locator(EDITORS).count() == 0
        # The live widget, never the answer as text that its output carries for pages without
        # widget state (formgrader, feedback): nothing of that stand-in reaches the trainee's page.
        assert page.locator(".atelier-answer").count() == 0
        assert page.get_by_text(re.compile("Answer given|Réponse donnée")).count() == 0

        # A link that drops while the trainee answers: the answer goes when it is back.
        box = page.get_by_label(box_label, exact=True)
        context.set_offline(True)
        box.fill("7")
        box.press("Enter")
        page.wait_for_timeout(1000)
        context.set_offline(False)
        expect(page.locator("#atelier-save")).to_have_text(words["saved"], timeout=60_000)
        assert saved(hub, username, "v-q2") == 7
        # The kernel dies and the server restarts it (its widgets are gone): the page says so;
        # a reload brings it all back.
        kill_kernel(page.evaluate(KERNEL_ID))
        expect(page.locator("#atelier-save")).to_have_attribute(
            "data-state", "stale", timeout=60_000
        )
        expect(page.locator("#atelier-save")).to_have_text(words["stale"])
        page.get_by_role("button", name=words["reload"]).click()
        expect(page.get_by_label(right, exact=True)).to_be_checked()
        expect(page.get_by_label(box_label, exact=True)).to_have_value(re.compile(r"^7(\.0)?$"))
        hosts = {urlparse(url).hostname for url in seen if url.startswith(("http", "ws"))}
        assert hosts == {"127.0.0.1"}, hosts
    finally:
        context.close()


def test_the_view_costs_under_a_megabyte_first_and_almost_nothing_again(view_hub, browser):
    """Does the view stay within its byte budgets: first visit ≤ 1 MB, repeat visit a few kB?

    Budgets (tests/budgets.json, +10% tolerance, as test_page_budgets.py) hold what
    bench_slowlink.py measures: Voila's code as brotli, immutable, no MathJax for this workbook.
    """
    from harness import Meter

    budgets = json.loads((Path(__file__).resolve().parents[1] / "budgets.json").read_text())
    hub = view_hub
    session = hub.login("bob")
    hub.start_server(session, "bob")
    context = browser.new_context()
    context.add_cookies(
        [
            {"name": c.name, "value": c.value, "domain": "127.0.0.1", "path": c.path or "/"}
            for c in session.cookies
        ]
    )
    page = context.new_page()
    page.set_default_timeout(120_000)
    meter = Meter(context, page)
    saved_text = page_words("en")["saved"]
    seen: set[str] = set()
    try:
        for visit, answer in (("view_first", "Four"), ("view_repeat", "Three")):
            meter.reset()
            page.goto(f"{hub.url}/user/bob/atelier/view/workbooks/quiz/quiz.en.ipynb")
            page.get_by_label(answer, exact=True).check()
            expect(page.locator("#atelier-save")).to_have_text(saved_text)
            page.wait_for_timeout(2000)
            budget = budgets[visit]["bytes"]
            served = {urlparse(e["url"]).path.split("/atelier/", 1)[-1] for e in meter.log}
            seen |= served
            assert meter.bytes <= budget * 1.10, (
                f"{visit}: {meter.bytes} bytes in {meter.requests} requests, over its budget of "
                f"{budget} (+10%): {sorted(served)}"
            )
            page.goto("about:blank")
        assert not any("mathjax" in url.lower() for url in seen), "MathJax for a page with no math"
    finally:
        context.close()


#: Kernel culling of the culling hub: short, so that the test waits well under a minute.
CULL_SETTINGS = {"hub": {"culler": {"kernel_timeout": 15, "kernel_every": 3}}}


@pytest.fixture(scope="module")
def culling_hub():
    """A hub whose trainees' servers cull kernels idle for 15 s (``hub.culler.kernel_timeout``)."""
    with running_hub(extra_settings=CULL_SETTINGS, start=False) as hub:
        shutil.copytree(FIXTURES / "view" / "quiz", hub.workbooks / "quiz")
        hub.publish_workbooks()
        hub.launch()
        yield hub


def kernel_running(kernel_id: str) -> bool:
    """Whether a kernel process of ``kernel_id`` runs (Voila names its connection file after it)."""
    import psutil

    for process in psutil.process_iter(["cmdline"]):
        command = " ".join(process.info["cmdline"] or [])
        if "ipykernel" in command and kernel_id in command:
            return True
    return False


def test_a_page_left_open_loses_its_kernel_but_no_answer(culling_hub, browser):
    """Is an open page's idle kernel culled, the trainee told so, and every answer back on Reload?

    The load case: a workbook left open in a tab keeps its kernel (~41 MiB) unless connected
    kernels are culled too. The page says so in the trainee's language (chloe: French), takes no
    more answers, and Reload starts a new kernel that restores what was saved.
    """
    hub = culling_hub
    language, locale, right, _box_label = TRAINEES["chloe"]
    words = page_words(language)
    context = browser.new_context(viewport=PHONE, locale=locale)
    page = context.new_page()
    page.set_default_timeout(120_000)
    try:
        page.goto(f"{hub.url}/hub/login")
        page.fill("input[name=username]", "chloe")
        page.fill("input[name=password]", hub.passwords["chloe"])
        page.click("[type=submit]")
        page.wait_for_url(f"{hub.url}/user/chloe/**")
        page.goto(f"{hub.url}/user/chloe/atelier/view/workbooks/quiz/quiz.{language}.ipynb")
        option = page.get_by_label(right, exact=True)
        option.check()
        status = page.locator("#atelier-save")
        expect(status).to_have_text(words["saved"])
        assert saved(hub, "chloe", "v-q1") == "b"
        first = page.evaluate(KERNEL_ID)
        assert kernel_running(first)

        # Idle, page open and connected: the server culls the kernel after 15 s (+ a 3 s pass).
        expect(status).to_have_attribute("data-state", "culled", timeout=90_000)
        expect(status).to_have_text(words["culled"])
        deadline = time.monotonic() + 30
        while kernel_running(first):
            assert time.monotonic() < deadline, "the page says culled, the kernel still runs"
            time.sleep(0.5)
        # No answer given now could be saved: the widgets take none.
        assert page.locator("#rendered_cells").evaluate("el => el.inert") is True
        assert saved(hub, "chloe", "v-q1") == "b"

        page.get_by_role("button", name=words["reload"]).click()
        expect(page.get_by_label(right, exact=True)).to_be_checked()
        expect(status).not_to_have_attribute("data-state", "culled")
        second = page.evaluate(KERNEL_ID)
        assert second != first and kernel_running(second)
    finally:
        context.close()
