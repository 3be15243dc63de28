"""The real workbook apps in Chromium: each opens, the planner answers, nothing leaves the host."""

from __future__ import annotations

import time

import pytest
from accessibility import serious_violations
from harness import WORKBOOKS

pytestmark = pytest.mark.browser

APPS_WORKBOOKS = WORKBOOKS
# No preheating: a cold render per app costs less than starting a pool per app for one visit;
# every app's kernel stays until the module ends, so there is room for all of them.
APPS_SETTINGS = {"pool_size": 0, "max_kernels": 16, "cull_idle_timeout": 300}
APPS = [
    "00-ictcft-self-assessment/ictcft-self-assessment.en.ipynb",
    "00-ictcft-self-assessment/ictcft-self-assessment.fr.ipynb",
    "02-low-bandwidth-planner/low-bandwidth-planner.en.ipynb",
    "02-low-bandwidth-planner/low-bandwidth-planner.fr.ipynb",
    "07-home-learning/home-learning.en.ipynb",
    "07-home-learning/home-learning.fr.ipynb",
    "09-smart-classroom/smart-classroom.en.ipynb",
    "09-smart-classroom/smart-classroom.fr.ipynb",
    "10-accessibility-inclusion/accessibility-inclusion.en.ipynb",
    "10-accessibility-inclusion/accessibility-inclusion.fr.ipynb",
    "11-low-tech-delivery/low-tech-delivery.en.ipynb",
    "11-low-tech-delivery/low-tech-delivery.fr.ipynb",
]
#: What the apps' widgets show (their HTML outputs), to see a change come back from the kernel.
SHOWN = (
    "() => Array.from(document.querySelectorAll('.widget-html')).map(e => e.innerText).join('|')"
)


def test_every_app_workbook_is_served():
    """Are exactly the workbooks marked as apps (both languages of each) the ones served?"""
    from atelier.public.apps import find_apps

    assert sorted(p.as_posix() for p in find_apps(WORKBOOKS)) == sorted(APPS)


@pytest.mark.parametrize("path", APPS)
def test_app_opens_with_widgets_and_local_requests_only(apps_server, page, path):
    """Does each app render its widgets, error-free and accessible, asking only the apps server?"""
    page.goto(apps_server.url + "voila/render/" + path, timeout=120_000)
    page.locator("#rendered_cells .widget-dropdown select").first.wait_for(timeout=120_000)
    assert "There was an error" not in page.content()
    issues = serious_violations(page)
    assert not issues, issues
    outside = [u for u in page.requests_seen if not u.startswith(apps_server.url)]
    assert not [u for u in outside if not u.startswith(("data:", "blob:"))], outside


@pytest.mark.parametrize("path", [p for p in APPS if p.startswith("02-")])
def test_planner_answers_a_choice(apps_server, page, path):
    """Does choosing another option in the planner change the figures it shows?"""
    page.goto(apps_server.url + "voila/render/" + path, timeout=120_000)
    select = page.locator("#rendered_cells .widget-dropdown select").first
    select.wait_for(timeout=120_000)
    before = page.evaluate(SHOWN)
    count = select.locator("option").count()
    select.select_option(index=(select.evaluate("s => s.selectedIndex") + 1) % count)
    deadline = time.monotonic() + 30
    while page.evaluate(SHOWN) == before:
        assert time.monotonic() < deadline, "the planner did not answer the choice"
        page.wait_for_timeout(200)
