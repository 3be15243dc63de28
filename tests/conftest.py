"""Fixtures shared by every test tier.

Tests never touch the host's Jupyter configuration: each session gets temporary ``JUPYTER_CONFIG_DIR``,
``JUPYTER_DATA_DIR`` and ``JUPYTER_RUNTIME_DIR``. Servers listen on random free loopback ports.
Tier fixtures (a running hub, Chromium) live here too so that every tier reuses the same ones.
"""

from __future__ import annotations

import os
import shutil
import socket
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "tests" / "fixtures"
WORKBOOKS = REPO / "workbooks"
#: The hub's environment: trainee accounts run its Python, so tests use the same one.
PREFIX = Path(os.environ.get("ATELIER_PREFIX", "/opt/atelier"))
BIN = Path(sys.executable).parent

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


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session", autouse=True)
def isolated_jupyter(tmp_path_factory):
    """Keep the host's Jupyter config and runtime files out of every test."""
    root = tmp_path_factory.mktemp("jupyter")
    saved = {k: os.environ.get(k) for k in ("JUPYTER_CONFIG_DIR", "JUPYTER_DATA_DIR", "JUPYTER_RUNTIME_DIR")}
    for name in saved:
        path = root / name.lower()
        path.mkdir()
        os.environ[name] = str(path)
    os.environ["JUPYTER_PLATFORM_DIRS"] = "1"
    yield root
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


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
    """A fresh browser page (own cookies); every request it makes is recorded in ``page.requests_seen``."""
    context = browser.new_context()
    page = context.new_page()
    seen: list[str] = []
    page.on("request", lambda request: seen.append(request.url))
    page.requests_seen = seen
    yield page
    context.close()
