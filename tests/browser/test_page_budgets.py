"""Byte budgets: what each page Atelier serves costs on the wire, measured in Chromium.

Each page's transferred bytes (compressed bodies plus headers, as Chromium's network layer counts
them: ``Network.loadingFinished`` ``encodedDataLength``) must stay within its budget in
``tests/budgets.json`` plus 10%. A page that grows past that (an extension enabled, compression
lost, an asset no longer cached) fails here, in CI, before a trainee on a metered link pays for it.
Budgets are bytes, not times: they do not drift with the machine's load.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from harness import Meter
from playwright.sync_api import TimeoutError as PlaywrightTimeout

pytestmark = pytest.mark.browser

BUDGETS = json.loads((Path(__file__).resolve().parent.parent / "budgets.json").read_text("utf-8"))
#: How far past its budget a page may grow before the test fails.
TOLERANCE = 1.10
APPS_SETTINGS = {"pool_size": 1, "max_kernels": 8, "cull_idle_timeout": 120}


def within_budget(name: str, meter: Meter) -> None:
    """Fail if the page measured by ``meter`` went past budget ``name`` by more than 10%."""
    budget = BUDGETS[name]["bytes"]
    print(f"{name}: {meter.bytes} bytes, {meter.requests} requests")
    assert meter.bytes <= budget * TOLERANCE, (
        f"{name}: {meter.bytes} bytes in {meter.requests} requests, over its budget of {budget} "
        f"bytes (+10%) in tests/budgets.json; find what grew (or raise the budget, with a reason)"
    )


def open_workbook(page, url: str) -> None:
    """Open a workbook in JupyterLab and run its first code cell (what makes a workbook usable)."""
    page.goto(url)
    cell = page.locator(".jp-CodeCell").first
    output = cell.locator(".jp-OutputArea-output").first
    # Run pressed before Lab has connected the notebook's kernel opens Lab's "Select Kernel"
    # dialog, which then takes every click: wait for the kernel as a trainee waits for "Idle".
    page.get_by_text(re.compile(r"\| (Idle|Inactif)$")).wait_for()
    # A key pressed while Lab is still starting its kernel can be lost: press Run again until the
    # cell has run, as a trainee would, within the page's own timeout.
    for _attempt in range(12):
        dialog = page.locator(".jp-Dialog")
        if dialog.count():  # a dialog that still came up is accepted (its default: the kernel)
            dialog.locator(".jp-mod-accept").first.click()
        cell.locator(".jp-InputArea-editor").click()
        page.keyboard.press("Shift+Enter")
        try:
            output.wait_for(timeout=10_000)
            return
        except PlaywrightTimeout:
            continue
    output.wait_for()


@pytest.fixture
def context(browser):
    """A fresh browser context (empty cache, no cookies)."""
    context = browser.new_context()
    yield context
    context.close()


def test_hub_login_page_stays_within_budget(hub, context):
    """Does the hub's login page (what every trainee loads first) stay within its byte budget?"""
    page = context.new_page()
    meter = Meter(context, page)
    page.goto(f"{hub.url}/hub/login", wait_until="load")
    within_budget("hub_login", meter)


def test_jupyterlab_first_and_repeat_loads_stay_within_budget(hub, context):
    """Do a trainee's first and repeat loads of a workbook in JupyterLab stay within budget?"""
    session = hub.login("bob")
    hub.start_server(session, "bob")
    context.add_cookies(
        [
            {"name": c.name, "value": c.value, "domain": "127.0.0.1", "path": c.path or "/"}
            for c in session.cookies
        ]
    )
    page = context.new_page()
    page.set_default_timeout(120_000)
    meter = Meter(context, page)
    url = f"{hub.url}/user/bob/lab/tree/workbooks/sample/sample.en.ipynb"
    open_workbook(page, url)
    page.wait_for_load_state("networkidle")
    within_budget("lab_first", meter)
    meter.reset()
    open_workbook(page, url)
    page.wait_for_load_state("networkidle")
    within_budget("lab_repeat", meter)


def test_public_app_first_load_stays_within_budget(apps_server, context):
    """Does a public app's first load, until its widget answers, stay within its byte budget?"""
    page = context.new_page()
    meter = Meter(context, page)
    page.goto(apps_server.url + "voila/render/planner/planner.en.ipynb", timeout=60_000)
    box = page.locator(".widget-text input")
    box.wait_for(timeout=60_000)
    box.fill("3")
    page.locator(".atelier-echo", has_text="3").wait_for(timeout=30_000)
    within_budget("app_first", meter)
