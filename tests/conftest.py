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
    saved = {
        k: os.environ.get(k)
        for k in ("JUPYTER_CONFIG_DIR", "JUPYTER_DATA_DIR", "JUPYTER_RUNTIME_DIR")
    }
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


def kernel_processes(pid: int) -> list:
    """The ipykernel processes started by the process ``pid`` (a Voila or Jupyter server)."""
    import psutil

    try:
        children = psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []
    kernels = []
    for child in children:
        try:
            if "ipykernel_launcher" in " ".join(child.cmdline()):
                kernels.append(child)
        except psutil.NoSuchProcess:
            pass
    return kernels


@pytest.fixture(scope="module")
def apps_server(tmp_path_factory, request):
    """``atelier apps`` over the fixture apps on a free port; a module may set ``APPS_SETTINGS``.

    Yields an object with ``url`` (ending in /), ``proc`` and ``settings`` (the apps section used).
    """
    import subprocess
    import time
    import types

    import requests
    import yaml

    apps = {"pool_size": 1, "max_kernels": 8, "cull_idle_timeout": 10, "cull_interval": 1}
    apps.update(getattr(request.module, "APPS_SETTINGS", {}))
    tmp = tmp_path_factory.mktemp("apps")
    settings = tmp / "settings.yaml"
    settings.write_text(yaml.safe_dump({"apps": apps}))
    port = free_port()
    log = (tmp / "apps.log").open("w")
    proc = subprocess.Popen(
        [
            str(BIN / "atelier"),
            "apps",
            f"--settings={settings}",
            f"--port={port}",
            f"--workbooks={FIXTURES / 'apps'}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=tmp,
    )
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 60
    while True:
        assert proc.poll() is None, f"atelier apps exited: {(tmp / 'apps.log').read_text()[-2000:]}"
        try:
            if requests.get(url, timeout=2).status_code == 200:
                break
        except requests.ConnectionError:
            pass
        assert time.monotonic() < deadline, "atelier apps did not answer within 60 s"
        time.sleep(0.2)
    yield types.SimpleNamespace(url=url, proc=proc, settings=apps, log=tmp / "apps.log")
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    log.close()
