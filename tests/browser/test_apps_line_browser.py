"""The public apps' line in Chromium: the waiting page asks again by itself and opens the app."""

from __future__ import annotations

import pytest
import requests
from harness import kernel_id_of

pytestmark = pytest.mark.browser

# Two places, both taken by visitors who stay; none culled during the test.
APPS_SETTINGS = {"pool_size": 0, "max_kernels": 2, "cull_idle_timeout": 600, "cull_interval": 5}
PLANNER = "voila/render/planner/planner.en.ipynb"


def test_a_waiting_visitor_gets_the_app_without_reloading(apps_server, page):
    """Does a visitor beyond the bound see their place, then the app once a place frees?

    The browser is left alone on the waiting page: it must ask again by itself (keeping its
    place through its cookie) and show the working app, never an error page.
    """
    holders = []
    for _ in range(APPS_SETTINGS["max_kernels"]):
        visitor = requests.Session()
        answer = visitor.get(apps_server.url + PLANNER, timeout=60)
        assert answer.status_code == 200
        holders.append((visitor, kernel_id_of(answer.text)))

    page.goto(apps_server.url + PLANNER, wait_until="load", timeout=60_000)
    text = page.locator("body").inner_text()
    assert "You are number 1 in line" in text
    assert "Vous êtes numéro 1 dans la file d'attente" in text

    visitor, kernel = holders.pop()
    shutdown = apps_server.url + f"voila/api/shutdown/{kernel}"
    assert visitor.post(shutdown, data={"_xsrf": visitor.cookies.get("_xsrf")}, timeout=30).ok
    # No reload here: the waiting page's own refresh brings the app.
    box = page.locator(".widget-text input")
    box.wait_for(timeout=60_000)
    box.fill("3")
    page.locator(".atelier-echo").filter(has_text="You typed: 3").wait_for(timeout=30_000)
