"""Widgets in Chromium, in real JupyterLab and Voila servers: answer through the page, see it saved.

One server of each kind per module (subprocesses from the hub's environment, on random loopback
ports, each over its own copy of the fixture notebooks); one test per widget family and server:
the questions (choice, number, text, ordering, card sort) and the tools (calculator, planner,
self-assessment, journal, schedule; in French, the language taken from the notebook's metadata).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import time
import types
from pathlib import Path

import pytest
from harness import BIN, start_server, stop_process

from atelier.processes.ports import free_port

pytestmark = pytest.mark.browser

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "widgets"
NOTEBOOKS = ("browser-questions.ipynb", "browser-tools.ipynb")
ANSWERS = ".atelier-answers.json"
PHONE = {"width": 360, "height": 800}

QUESTIONS = {
    "b-q1": "b",
    "b-q2": 270.0,
    "b-q3": "affordability",
    "b-q4": ["d", "p", "r"],
    "b-q5": {"zoom": "sync"},
}
TOOLS_PARTICIPANTS = 40


def answer_questions(page) -> None:
    """A trainee answers the five questions by clicking and typing, finding controls by label."""
    page.get_by_label("540 MB").check()
    number = page.get_by_label("Your answer (MB)")
    number.fill("270")
    number.press("Enter")
    text = page.get_by_label("Your answer", exact=True)
    text.fill("affordability")
    text.press("Enter")
    page.get_by_role("button", name="Move 1 down").click()
    page.get_by_label("Live lecture").select_option(label="Synchronous")


def answer_tools(page) -> None:
    """A trainee uses four tools, in French."""
    participants = page.get_by_label("Participants")
    participants.fill(str(TOOLS_PARTICIPANTS))
    participants.press("Enter")
    page.get_by_role("button", name="Ajouter une étape").click()
    page.get_by_label("Culture numérique (Acquisition des connaissances)").select_option(
        label="2 – je suis à l’aise"
    )
    journal = page.get_by_label("Votre réflexion 1")
    journal.fill("Le sondage a réveillé tout le monde.")
    journal.press("Tab")


def tools_saved(answers: dict) -> bool:
    return (
        answers.get("b-bw", {}).get("participants") == TOOLS_PARTICIPANTS
        and len(answers.get("b-plan") or []) == 2
        and answers.get("b-self") == {"6.KA": 2}
        and answers.get("b-journal") == {"a": "Le sondage a réveillé tout le monde."}
    )


def saved_answers(folder: Path) -> dict:
    try:
        document = json.loads((folder / ANSWERS).read_text("utf-8"))
    except (FileNotFoundError, ValueError):
        return {}
    return {key: entry["value"] for key, entry in document["answers"].items()}


def wait_saved(folder: Path, check, timeout: float = 30) -> dict:
    """Poll the answers file until ``check(answers)`` holds (the kernel saves asynchronously)."""
    deadline = time.monotonic() + timeout
    while True:
        answers = saved_answers(folder)
        if check(answers):
            return answers
        assert time.monotonic() < deadline, f"answers not saved as expected; file has {answers}"
        time.sleep(0.2)


def start(name: str, command: list[str], url: str, probe: str, folder: Path):
    """Start ``command`` (logging to ``folder/name.log``) until ``url + probe`` answers 200."""
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    env.pop("ATELIER_LANGUAGE", None)
    return start_server(
        command, url + probe, folder / f"{name}.log", cwd=folder, env=env, timeout=90
    )


def notebook_folder(tmp_path_factory, name: str) -> Path:
    root = tmp_path_factory.mktemp(name)
    for notebook in NOTEBOOKS:
        shutil.copy(FIXTURES / notebook, root / notebook)
    return root


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """A real JupyterLab with a token, offline settings, over a temporary root folder."""
    root = notebook_folder(tmp_path_factory, "lab-root")
    state = tmp_path_factory.mktemp("lab-state")
    settings = state / "user-settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True)
    # Offline machine: no news or update checks (they would also pop a question over the page).
    (settings / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False})
    )
    # Render every cell (no windowing), so that widgets below the fold exist on the page.
    tracker = state / "user-settings" / "@jupyterlab" / "notebook-extension"
    tracker.mkdir(parents=True)
    (tracker / "tracker.jupyterlab-settings").write_text(json.dumps({"windowingMode": "none"}))
    port, token = free_port(), secrets.token_hex(16)
    url = f"http://127.0.0.1:{port}/"
    proc = start(
        "jupyterlab",
        [
            str(BIN / "jupyter-lab"),
            "--no-browser",
            "--allow-root",
            "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.port={port}",
            "--ServerApp.port_retries=0",
            f"--IdentityProvider.token={token}",
            f"--ServerApp.root_dir={root}",
            f"--LabApp.user_settings_dir={state / 'user-settings'}",
            f"--LabApp.workspaces_dir={state / 'workspaces'}",
        ],
        url,
        f"api/status?token={token}",
        state,
    )
    yield types.SimpleNamespace(url=url, token=token, root=root, log=state / "jupyterlab.log")
    stop_process(proc)


@pytest.fixture(scope="module")
def voila(tmp_path_factory):
    """A real Voila serving a temporary folder of notebooks."""
    root = notebook_folder(tmp_path_factory, "voila-root")
    state = tmp_path_factory.mktemp("voila-state")
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    proc = start(
        "voila",
        [
            str(BIN / "voila"),
            str(root),
            "--no-browser",
            "--Voila.ip=127.0.0.1",
            f"--Voila.port={port}",
            "--Voila.port_retries=0",
        ],
        url,
        "",
        state,
    )
    yield types.SimpleNamespace(url=url, root=root, log=state / "voila.log")
    stop_process(proc)


def run_all_cells(page, restart: bool = False) -> None:
    """Run > Run All Cells (or Restart Kernel and Run All Cells, confirming the question)."""
    page.get_by_role("menuitem", name="Run", exact=True).click()
    page.locator(
        f"li[data-command='runmenu:{'restart-and-run-all' if restart else 'run-all'}']"
    ).click()


def open_in_lab(page, lab, notebook: str, widgets: int) -> None:
    """Open ``notebook`` in JupyterLab and run all its cells from the Run menu, as a trainee does.

    On a busy machine the first kernel connection can fail: JupyterLab then asks which kernel to
    use, or the cells wait forever. The trainee answers with the preferred kernel, or restarts the
    kernel and runs all cells again, as a person would.
    """
    # ``reset``: a fresh workspace, so that the notebook of an earlier test is not open behind.
    page.goto(
        f"{lab.url}lab/tree/{notebook}?token={lab.token}&reset", wait_until="load", timeout=90_000
    )
    page.locator(".jp-Notebook .jp-Cell").first.wait_for(timeout=90_000)
    idle = page.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']")
    idle.wait_for(timeout=90_000)
    last = page.locator(".jp-OutputArea .atelier").nth(widgets - 1)
    dialog = page.locator(".jp-Dialog")
    # "[*]" (queued or running) or "[1]": the command reached the kernel's queue.
    started = page.locator(".jp-InputPrompt", has_text=re.compile(r"\[[0-9*]+\]"))
    ran = page.locator(".jp-InputPrompt", has_text=re.compile(r"\[[0-9]+\]"))
    questions = []
    for attempt in range(4):
        # Focus the notebook first: Run menu items act on the current notebook only.
        page.locator(".jp-Notebook .jp-Cell").first.click()
        run_all_cells(page, restart=attempt >= 2)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and not started.count():
            if dialog.is_visible():
                questions.append(dialog.inner_text())
                dialog.locator("button.jp-mod-accept").click()
            page.wait_for_timeout(250)
        if not started.count():
            continue
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not ran.count():
            page.wait_for_timeout(250)
        if ran.count():
            try:
                # Generous: on a loaded 2-core machine a kernel may take a minute for 100 models.
                last.wait_for(timeout=180_000)
            except Exception as error:
                outputs = page.locator(".jp-OutputArea-output").all_inner_texts()
                raise AssertionError(f"{notebook}: widgets missing; outputs: {outputs}") from error
            return
    raise AssertionError(f"JupyterLab never ran {notebook} (dialogs: {questions}); see {lab.log}")


def open_in_voila(page, voila, notebook: str, widgets: int) -> None:
    """Open ``notebook`` as a Voila page on a phone-width screen."""
    page.set_viewport_size(PHONE)
    page.goto(f"{voila.url}voila/render/{notebook}", wait_until="load", timeout=90_000)
    page.locator(".atelier").nth(widgets - 1).wait_for(timeout=90_000)


def assert_fits_a_phone(page) -> None:
    """Nothing on the page is wider than a 360 px screen (no sideways scrolling)."""
    width = page.evaluate("document.documentElement.scrollWidth")
    widest = page.evaluate(
        "Math.max(...Array.from(document.querySelectorAll('.atelier'),"
        " e => e.getBoundingClientRect().right))"
    )
    assert width <= PHONE["width"] and widest <= PHONE["width"], (width, widest)


def assert_every_control_labelled(page) -> None:
    """Every input, list and button in a widget has a name a screen reader can say."""
    unnamed = page.evaluate(
        """() => Array.from(document.querySelectorAll(
                '.atelier input, .atelier select, .atelier textarea, .atelier button'))
            .filter(e => {
                if (e.tagName === 'BUTTON') return !e.innerText.trim();
                const byFor = e.id && document.querySelector(`label[for="${e.id}"]`);
                const byParent = e.closest('label');
                const label = byFor || byParent || {};
                const text = label.innerText || e.getAttribute('aria-label') || '';
                return !text.trim();
            })
            .map(e => e.outerHTML.slice(0, 120))"""
    )
    assert not unnamed, unnamed


#: The widgets whose labels are long (options, cards, matrix cells, activities): checked on a phone.
LONG_LABELLED = ".atelier-choice, .atelier-matching, .atelier-selfassessment, .atelier-schedule"


def assert_labels_clear_of_controls(page) -> None:
    """No label's text overlaps its control, and no radio or check box sits below its own text.

    Compares boxes as drawn: the text of each ``<label for>`` (a DOM range over its contents, so
    overflowing text counts) against its list or box; for an option, the text beside the button
    against the button, whose middle must be on the text's first line.
    """
    problems = page.evaluate(
        """(scope) => {
            const box = r => ({l: r.left, t: r.top, r: r.right, b: r.bottom});
            const overlap = (a, b) => Math.min(a.r, b.r) - Math.max(a.l, b.l) > 1
                && Math.min(a.b, b.b) - Math.max(a.t, b.t) > 1;
            const textBoxes = el => {
                const walk = document.createTreeWalker(el, NodeFilter.SHOW_TEXT);
                const boxes = [];
                for (let n = walk.nextNode(); n; n = walk.nextNode()) {
                    if (!n.textContent.trim()) continue;
                    const range = document.createRange();
                    range.selectNodeContents(n);
                    boxes.push(...Array.from(range.getClientRects(), box));
                }
                return boxes;
            };
            const problems = [];
            const widgets = Array.from(document.querySelectorAll(scope));
            for (const control of widgets.flatMap(w => Array.from(
                    w.querySelectorAll('select, input:not([type=radio]):not([type=checkbox])')))) {
                const label = control.id && document.querySelector(`label[for="${control.id}"]`);
                if (!label) continue;
                const own = box(control.getBoundingClientRect());
                if (textBoxes(label).some(t => overlap(t, own)))
                    problems.push(`label over its control: ${label.innerText.slice(0, 60)}`);
            }
            for (const button of widgets.flatMap(w => Array.from(
                    w.querySelectorAll('input[type=radio], input[type=checkbox]')))) {
                const label = button.closest('label');
                if (!label) continue;
                const own = box(button.getBoundingClientRect());
                const texts = textBoxes(label);
                const first = texts.reduce((a, b) => (b.t < a.t ? b : a));
                if (texts.some(t => overlap(t, own)) || (own.t + own.b) / 2 > first.b)
                    problems.push(`option text on or above its button: ${label.innerText}`);
            }
            return problems;
        }""",
        LONG_LABELLED,
    )
    assert not problems, problems


def assert_schedule_words_whole(page) -> None:
    """In the schedule's daily table, no word (a day name, a heading) is broken across lines."""
    broken = page.evaluate(
        """() => {
            const cells = document.querySelectorAll('.atelier-schedule th, .atelier-schedule td');
            const broken = [];
            for (const cell of cells) {
                if (cell.scrollWidth > cell.clientWidth) broken.push(`too wide: ${cell.innerText}`);
                const walk = document.createTreeWalker(cell, NodeFilter.SHOW_TEXT);
                for (let n = walk.nextNode(); n; n = walk.nextNode()) {
                    for (const word of n.textContent.matchAll(/\\S+/g)) {
                        const range = document.createRange();
                        range.setStart(n, word.index);
                        range.setEnd(n, word.index + word[0].length);
                        const tops = new Set(Array.from(range.getClientRects(),
                                                        r => Math.round(r.top)));
                        if (tops.size > 1) broken.push(`broken: ${word[0]}`);
                    }
                }
            }
            return cells.length ? broken : ['no schedule table on the page'];
        }"""
    )
    assert not broken, broken


def test_questions_in_jupyterlab(lab, page):
    """In JupyterLab, are answers given by clicking and typing saved beside the notebook?"""
    open_in_lab(page, lab, "browser-questions.ipynb", widgets=5)
    answer_questions(page)
    page.get_by_text("Correct.").wait_for(
        timeout=30_000
    )  # formative feedback came back from the kernel
    wait_saved(lab.root, lambda answers: all(answers.get(k) == v for k, v in QUESTIONS.items()))


def test_tools_in_jupyterlab_speak_the_notebook_language(lab, page):
    """In JupyterLab, do the tools speak the notebook's language (French) and save entries?"""
    open_in_lab(page, lab, "browser-tools.ipynb", widgets=5)
    answer_tools(page)
    wait_saved(lab.root, tools_saved)
    assert page.get_by_text("Données par participant").count() == 1


def test_questions_in_voila_fit_a_phone_and_survive_a_reload(voila, page):
    """In Voila at 360 px: nothing too wide, labels clear of boxes, answers saved and reloaded?"""
    open_in_voila(page, voila, "browser-questions.ipynb", widgets=5)
    assert_fits_a_phone(page)
    assert_every_control_labelled(page)
    assert_labels_clear_of_controls(page)
    answer_questions(page)
    wait_saved(voila.root, lambda answers: all(answers.get(k) == v for k, v in QUESTIONS.items()))
    page.reload(wait_until="load")
    page.locator(".atelier").nth(4).wait_for(timeout=90_000)
    assert page.get_by_label("540 MB").is_checked()
    assert page.get_by_label("Your answer (MB)").input_value() == "270"
    assert page.get_by_label("Live lecture").input_value() != ""


def test_tools_in_voila_fit_a_phone(voila, page):
    """In Voila at 360 px, do the French tools fit, with labels clear and whole day names?"""
    open_in_voila(page, voila, "browser-tools.ipynb", widgets=5)
    assert_fits_a_phone(page)
    assert_every_control_labelled(page)
    assert_labels_clear_of_controls(page)
    assert_schedule_words_whole(page)
    answer_tools(page)
    wait_saved(voila.root, tools_saved)
    assert_fits_a_phone(page)
