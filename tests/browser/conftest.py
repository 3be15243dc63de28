"""Fixtures of the browser tier: one headless Chromium per session, a fresh page per test.

Chromium is Debian's (``tests/run.sh`` installs it), driven by Playwright; its absence fails.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]


@pytest.fixture(scope="session")
def chromium_path() -> str:
    """Debian's Chromium; the test command installs it, so its absence is a failure, not a skip."""
    path = shutil.which("chromium") or "/usr/bin/chromium"
    assert Path(path).exists(), "Chromium is missing: run the tests with `bash tests/run.sh`"
    return path


@pytest.fixture(scope="session")
def browser(chromium_path):
    """A headless Chromium driven by Playwright, shared by the browser tests of one session."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, tmp_path):
    """A fresh browser page (own cookies); ``page.requests_seen`` records every request it makes."""
    context = browser.new_context()
    page = context.new_page()
    seen: list[str] = []
    page.on("request", lambda request: seen.append(request.url))
    page.requests_seen = seen
    yield page
    context.close()
