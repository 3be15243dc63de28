"""Public apps in Chromium: each app opens, its widget answers, no request leaves the machine."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.browser

APPS_SETTINGS = {"pool_size": 1, "max_kernels": 8, "cull_idle_timeout": 120}
APPS = [
    ("planner/planner.en.ipynb", "You typed: "),
    ("planner/planner.fr.ipynb", "Vous avez tapé : "),
]


@pytest.mark.parametrize(("path", "said"), APPS)
def test_app_widget_works_with_local_requests_only(apps_server, page, path, said):
    """Does the app's widget answer through the kernel, with every request sent to the apps server?

    The page must render, typed text must come back from the kernel, no request may go elsewhere.
    """
    page.goto(apps_server.url + "voila/render/" + path, wait_until="load", timeout=60_000)
    box = page.locator(".widget-text input")
    box.wait_for(timeout=60_000)
    echo = page.locator(".atelier-echo")
    box.fill("3")
    echo.filter(has_text=said + "3").wait_for(timeout=30_000)
    # Inputs are data: a visitor's code is echoed as text, never run.
    hostile = "__import__('os').system('id') ../../etc/passwd"
    box.fill(hostile)
    echo.filter(has_text=said + hostile).wait_for(timeout=30_000)
    assert "uid=" not in page.content()
    assert page.requests_seen, "the page made no request at all"
    outside = [url for url in page.requests_seen if not url.startswith(apps_server.url)]
    assert not [url for url in outside if not url.startswith(("data:", "blob:"))], outside


def test_index_links_open_apps(apps_server, page):
    """Does the index page link to each app, and does a link open it?"""
    page.goto(apps_server.url, wait_until="load")
    page.get_by_role("link", name="Planificateur").click()
    page.locator(".widget-text input").wait_for(timeout=60_000)
    assert all(url.startswith(apps_server.url) for url in page.requests_seen)
