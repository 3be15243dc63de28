"""JupyterLab on the hub, in Chromium: the interface speaks the trainee's language, offline."""

from __future__ import annotations

from urllib.parse import urlparse

import pytest

pytestmark = pytest.mark.browser


def test_a_french_trainee_gets_jupyterlab_in_french_and_nothing_leaves_the_machine(hub, page):
    """Does Chloé (roster language fr) log in and see JupyterLab's menus in French, offline?"""
    page.set_default_timeout(120_000)
    page.goto(f"{hub.url}/hub/login")
    page.fill("input[name=username]", "chloe")
    page.fill("input[name=password]", hub.passwords["chloe"])
    page.click("[type=submit]")
    # Trainees land on their home page; JupyterLab is its link "all my files".
    page.wait_for_url(f"{hub.url}/user/chloe/atelier/home**")
    page.get_by_role("link", name="Tous mes fichiers dans JupyterLab").click()
    page.wait_for_url(f"{hub.url}/user/chloe/lab**")
    page.get_by_text("Fichier", exact=True).first.wait_for()
    assert page.get_by_text("Affichage", exact=True).count() >= 1
    page.goto(f"{hub.url}/user/chloe/lab/tree/workbooks/sample/sample.fr.ipynb")
    page.locator(".jp-RenderedMarkdown h1", has_text="Cahier d'exemple").first.wait_for()
    hosts = {urlparse(url).hostname for url in page.requests_seen if url.startswith("http")}
    assert hosts == {"127.0.0.1"}, hosts
