"""The login page and the home page ("My workbooks") in Chromium, on a phone and on a desktop."""

from __future__ import annotations

from urllib.parse import urlparse

import pytest
from accessibility import serious_violations
from harness import FIXTURES

pytestmark = pytest.mark.browser

PROGRESS = FIXTURES / "home" / "01-progress"
#: What would put code in front of a trainee: an editor (CodeMirror 5 or 6), a notebook, a text box.
CODE = ".cm-editor, .CodeMirror, .jp-Notebook, .jp-CodeCell, textarea"


@pytest.fixture(scope="module")
def released(hub):
    """The progress workbook released to cohorts x (English) and y (French)."""
    hub.atelier("release", str(PROGRESS), "--cohort=x")
    hub.atelier("release", str(PROGRESS), "--cohort=y")
    return hub


def _log_in(page, hub, username):
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", hub.passwords[username])
    page.click("[type=submit]")
    page.wait_for_url(f"{hub.url}/user/{username}/atelier/home**", timeout=180_000)


def test_a_french_trainee_on_a_phone_logs_in_and_lands_on_her_workbooks(released, page):
    """At 360x740 in French: login page, then "Mes cahiers", no code, nothing serious for axe?"""
    hub = released
    page.set_default_timeout(120_000)
    page.set_viewport_size({"width": 360, "height": 740})
    page.set_extra_http_headers({"Accept-Language": "fr-FR,fr;q=0.9"})
    page.goto(f"{hub.url}/hub/login")
    page.get_by_role("heading", name="Connexion").wait_for()
    assert page.get_by_label("Mot de passe").count() == 1
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    assert serious_violations(page) == []
    _log_in(page, hub, "chloe")
    page.get_by_role("heading", name="Mes cahiers", level=1).wait_for()
    card = page.locator('li.card[data-assignment="progress-fr"]')
    assert card.get_by_role("link", name="Commencer : Liaisons lentes").is_visible()
    assert "Pas commencé" in card.inner_text()
    assert page.locator(CODE).count() == 0
    # Phone first: nothing wider than the screen.
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    assert serious_violations(page) == []
    hosts = {urlparse(url).hostname for url in page.requests_seen if url.startswith("http")}
    assert hosts == {"127.0.0.1"}, hosts


def test_an_english_trainee_on_a_desktop_lands_on_her_workbooks(released, page):
    """At 1280x800 in English: after login, "My workbooks" with its button, no code, axe clean?"""
    hub = released
    page.set_default_timeout(120_000)
    page.set_viewport_size({"width": 1280, "height": 800})
    page.set_extra_http_headers({"Accept-Language": "en-GB,en;q=0.9"})
    page.goto(f"{hub.url}/hub/login")
    page.get_by_role("heading", name="Sign in").wait_for()
    _log_in(page, hub, "alice")
    page.get_by_role("heading", name="My workbooks", level=1).wait_for()
    card = page.locator('li.card[data-assignment="progress-en"]')
    card.get_by_role("link", name="Open in JupyterLab: Slow links").wait_for()
    assert page.locator(CODE).count() == 0
    assert serious_violations(page) == []
    hosts = {urlparse(url).hostname for url in page.requests_seen if url.startswith("http")}
    assert hosts == {"127.0.0.1"}, hosts
