"""Submit and feedback in the workbook view, in Chromium, on the session's hub with instant grading.

Workbook 07 (code-free) is released to cohort y in practice mode under its own id; Chloé (French)
opens it on a 360×740 phone, answers part of it, submits from the view and reads her feedback.
"""

from __future__ import annotations

import json
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlparse

import pytest
from accessibility import serious_violations
from harness import WORKBOOKS
from playwright.sync_api import expect

from atelier.hub_config.view.submit import words as submit_words
from atelier.hub_config.view.workbook import page_words

pytestmark = pytest.mark.browser

PHONE = {"width": 360, "height": 740}
ASSIGNMENT = "viewsubmit-fr"
#: A code editor, a code cell's input, or a box to type code in (JupyterLab, Notebook, Voila).
#: The reflection journal's box (an ipywidgets Textarea) is for prose, and allowed.
EDITORS = (
    ".jp-CodeMirrorEditor, .cm-editor, .CodeMirror, .jp-InputArea-editor, "
    "textarea:not(.widget-textarea > textarea)"
)
#: The start of the diagnostic of option "b" of question 2 (w7-case), from the hidden test.
DIAGNOSTIC_B = "Plus de ressources ne rééquilibrent pas une journée"


def _release(hub, root: Path, order: str, new_id: str, *options: str) -> None:
    """Release French workbook 07 to cohort y under ``new_id``, with the policy ``options``."""
    folder = root / f"{order}-{new_id}"
    folder.mkdir()
    nb = json.loads((WORKBOOKS / "07-home-learning" / "home-learning.fr.ipynb").read_text())
    nb["metadata"].setdefault("atelier", {})["id"] = new_id
    (folder / f"{new_id}.fr.ipynb").write_text(json.dumps(nb), "utf-8")
    hub.atelier("release", str(folder), "--cohort=y", *options)


@pytest.fixture(scope="module")
def released(hub):
    """Workbook 07 in French for cohort y: ``viewsubmit`` in practice, ``viewclosed`` closed."""
    root = Path(tempfile.mkdtemp(prefix="atelier-viewsubmit-", dir="/tmp"))
    root.chmod(0o755)
    _release(hub, root, "30", "viewsubmit", "--mode=practice")
    past = (datetime.now(UTC) - timedelta(hours=1)).isoformat(timespec="seconds")
    _release(hub, root, "31", "viewclosed", f"--due={past}", "--close-at-due")
    return hub


def _log_in(page, hub, username: str) -> None:
    page.goto(f"{hub.url}/hub/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", hub.passwords[username])
    page.click("[type=submit]")
    page.wait_for_url(f"{hub.url}/user/{username}/**", timeout=180_000)


def test_a_french_trainee_submits_from_the_view_and_reads_her_feedback_beside_the_questions(
    released, page
):
    """On a phone in French: does Submit list what is unanswered, give a receipt, then feedback?

    Chloé answers question 2 wrongly (option b) and question 3 rightly, presses Remettre: the
    confirm dialog names the questions she left (by their headings, never an id), she confirms,
    the receipt shows, and within seconds each question's result is under it, with the
    diagnostic of the option she chose; no code editor at any step; axe finds nothing serious.
    """
    hub = released
    words = page_words("fr")
    page.set_default_timeout(120_000)
    page.set_viewport_size(PHONE)
    page.set_extra_http_headers({"Accept-Language": "fr-FR,fr;q=0.9"})
    _log_in(page, hub, "chloe")
    # What the home page's button does: fetch the workbook, then open it in the view.
    page.goto(f"{hub.url}/user/chloe/atelier/home/open/y/{ASSIGNMENT}")
    page.wait_for_url(f"**/atelier/view/y/{ASSIGNMENT}/viewsubmit.fr.ipynb", timeout=180_000)
    case = page.locator(".atelier-id-w7-case")
    case.get_by_label("Lui envoyer davantage de cours enregistrés", exact=False).check()
    data = page.locator(".atelier-id-w7-data")
    data.locator("input[type=radio]").nth(2).check()
    expect(page.locator("#atelier-save")).to_have_text(words["saved"])
    assert page.locator(EDITORS).count() == 0, "a code editor is in the view"
    # The graded checks of questions left unanswered are not run in the view (no broken part).
    assert words["cell_error"] not in page.locator("main").inner_text()

    submit = page.locator("#atelier-submit")
    expect(submit).to_have_text("Remettre")
    submit.click()
    dialog = page.locator("#atelier-confirm")
    expect(dialog).to_be_visible()
    expect(dialog).to_have_attribute("role", "dialog")
    focused = "document.getElementById('atelier-confirm').contains(document.activeElement)"
    assert page.evaluate(focused), "the focus is not in the confirm dialog"
    missing = page.locator("#atelier-unanswered li")
    expect(missing.first).to_be_visible()
    listed = missing.all_inner_texts()
    assert any("De quel élément s'agit-il" in text for text in listed), listed
    assert any("Réfléchissez" in text for text in listed), listed
    assert not any("Un étudiant qui travaille trop" in text for text in listed), listed
    assert not any(text.strip() in ("w7-match", "reflection", "w7-week") for text in listed)
    assert "Entraînement" in page.locator("#atelier-attempts").inner_text()
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    issues = serious_violations(page)
    assert not issues, issues

    page.locator("#atelier-confirm-yes").click()
    receipt = page.locator("#atelier-receipt")
    expect(receipt).to_contain_text("Reçu le")
    expect(dialog).to_be_hidden()
    submitted = time.monotonic()

    wrong = page.locator('.atelier-result[data-item="test-w7-case"]')
    expect(wrong).to_have_class("atelier-result atelier-wrong", timeout=30_000)
    feedback_after = time.monotonic() - submitted
    expect(wrong).to_contain_text(DIAGNOSTIC_B)
    # Beside the question it grades: right after that widget.
    assert wrong.evaluate("b => b.previousElementSibling.classList.contains('atelier-id-w7-case')")
    right = page.locator('.atelier-result[data-item="test-w7-data"]')
    expect(right).to_have_class("atelier-result atelier-right")
    expect(page.locator("#atelier-score")).to_contain_text("Votre note")
    expect(page.locator("#atelier-attempts-left")).to_have_text(words["receipt_practice"])
    # The reflection waits for the facilitator, said under the journal it is written in.
    reflection = page.locator('.atelier-result[data-item="reflection"]')
    expect(reflection).to_have_class("atelier-result atelier-waiting")
    expect(reflection).to_contain_text(submit_words("fr")["waiting"])
    assert reflection.evaluate(
        "b => b.previousElementSibling.classList.contains('atelier-id-w7-reflect')"
    )
    panel = page.locator("#atelier-feedback")
    expect(panel.locator('li[data-item="test-w7-case"]')).to_contain_text("Un étudiant")
    assert page.locator(EDITORS).count() == 0, "a code editor is in the view"
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    issues = serious_violations(page)
    assert not issues, issues
    # Opening the page again shows the feedback again.
    page.reload()
    expect(page.locator('.atelier-result[data-item="test-w7-case"]')).to_contain_text(DIAGNOSTIC_B)
    expect(page.locator("#atelier-receipt")).to_be_hidden()
    hosts = {urlparse(url).hostname for url in page.requests_seen if url.startswith("http")}
    assert hosts == {"127.0.0.1"}, hosts
    print(f"feedback shown {feedback_after:.1f} s after the receipt")


def test_a_submission_closed_at_the_due_date_is_said_in_the_trainee_s_language(released, page):
    """Past the due date of a workbook closed then: does Submit say so in French, and only that?

    The dialog gives the reason as a sentence, offers no way to submit, and closing it gives the
    focus back to the Submit button.
    """
    hub = released
    page.set_default_timeout(120_000)
    page.set_viewport_size(PHONE)
    page.set_extra_http_headers({"Accept-Language": "fr-FR,fr;q=0.9"})
    _log_in(page, hub, "chloe")
    page.goto(f"{hub.url}/user/chloe/atelier/home/open/y/viewclosed-fr")
    page.wait_for_url("**/atelier/view/y/viewclosed-fr/viewclosed.fr.ipynb", timeout=180_000)
    page.locator(".atelier-id-w7-case").wait_for()
    page.locator("#atelier-submit").click()
    status = page.locator("#atelier-confirm-status")
    expect(status).to_have_text(submit_words("fr")["closed"])
    expect(page.locator("#atelier-confirm-yes")).to_be_hidden()
    close = page.locator("#atelier-confirm-no")
    expect(close).to_have_text(page_words("fr")["close"])
    issues = serious_violations(page)
    assert not issues, issues
    close.click()
    expect(page.locator("#atelier-confirm")).to_be_hidden()
    assert page.evaluate("document.activeElement.id") == "atelier-submit"
