"""Public access through a real hub, in Chromium: apps for anyone, dashboard for facilitators."""

from __future__ import annotations

import os
import subprocess
import time

import pytest
import requests
import yaml
from conftest import BIN, FIXTURES, PREFIX, free_port, seed_dashboard_cohort

pytestmark = pytest.mark.browser

HUB_CONFIG = """
from atelier.hub_config import apps, dashboard
from atelier.settings import load_settings

c = get_config()  # noqa: F821
c.JupyterHub.ip = "127.0.0.1"
c.JupyterHub.port = {port}
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = {hub_port}
c.JupyterHub.db_url = "sqlite:///{root}/hub.sqlite"
c.JupyterHub.cookie_secret_file = "{root}/cookie_secret"
c.ConfigurableHTTPProxy.command = ["{proxy}"]
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{api_port}"
c.JupyterHub.authenticator_class = "dummy"
c.DummyAuthenticator.password = "pw"
c.Authenticator.allowed_users = {{"fac", "amina"}}
c.JupyterHub.load_groups = {{"facilitators-c1": {{"users": ["fac"]}}}}
settings = load_settings("{root}/settings.yaml")
dashboard.apply(c, settings)
apps.apply(c, settings)
"""


@pytest.fixture(scope="module")
def dashboard_hub(tmp_path_factory):
    """A JupyterHub with the dashboard service, over a seeded cohort c1; yields the hub's URL."""
    root = tmp_path_factory.mktemp("dashhub")
    seed_dashboard_cohort(root)
    ports = {name: free_port() for name in ("port", "hub_port", "api_port")}
    settings = yaml.safe_load((root / "settings.yaml").read_text())
    settings["apps"] = {
        "workbooks_dir": str(FIXTURES / "apps"),
        "port": free_port(),
        "dashboard_port": free_port(),
        "service_user": "",  # the test hub runs every service as itself
        "max_kernels": 8,
    }
    (root / "settings.yaml").write_text(yaml.safe_dump(settings))
    proxy = PREFIX / "node" / "node_modules" / ".bin" / "configurable-http-proxy"
    assert proxy.exists(), "configurable-http-proxy is missing: run hub_config/bootstrap.sh"
    config = root / "jupyterhub_config.py"
    config.write_text(HUB_CONFIG.format(root=root, proxy=proxy, **ports))
    env = dict(os.environ, ATELIER_SETTINGS=str(root / "settings.yaml"))
    log = (root / "hub.log").open("w")
    hub = subprocess.Popen(
        [str(BIN / "jupyterhub"), "-f", str(config)],
        cwd=root,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{ports['port']}"
    deadline = time.monotonic() + 120
    while True:
        assert hub.poll() is None, (root / "hub.log").read_text()[-3000:]
        try:
            # Both services answer through the proxy once up (the dashboard: a redirect to login).
            dash = requests.get(f"{url}/services/dashboard/", timeout=5, allow_redirects=False)
            public = requests.get(f"{url}/services/apps/", timeout=5, allow_redirects=False)
            if dash.status_code in (302, 303) and public.status_code == 200:
                break
        except requests.ConnectionError:
            pass
        assert time.monotonic() < deadline, (root / "hub.log").read_text()[-3000:]
        time.sleep(0.5)
    yield url
    os.killpg(hub.pid, 15)
    try:
        hub.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(hub.pid, 9)
        hub.wait()
    log.close()


def log_in(page, url: str, username: str) -> None:
    page.goto(f"{url}/hub/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", "pw")
    page.click("[type=submit]")
    page.wait_for_url(lambda u: "/hub/login" not in u, timeout=60_000)


def test_facilitator_sees_the_cohorts_numbers(dashboard_hub, page):
    """Does a facilitator who logs in see cohort c1's true numbers, and a CSV to download?"""
    log_in(page, dashboard_hub, "fac")
    page.goto(f"{dashboard_hub}/services/dashboard/", timeout=120_000)
    page.locator("#cohort-summary").wait_for(timeout=120_000)
    assert page.locator("#cohort-summary").inner_text() == "Cohort c1: 4 trainees, 2 completed"
    text = page.locator("#rendered_cells").inner_text()
    assert "Univ A" in text and "83.3" in text
    assert page.locator("a[download='c1-progress.csv']").count() == 1
    assert all(u.startswith(dashboard_hub) or u.startswith("data:") for u in page.requests_seen)


def test_trainee_cannot_open_the_dashboard(dashboard_hub, page):
    """Is a trainee who logs in refused the dashboard (403), without seeing any number?"""
    log_in(page, dashboard_hub, "amina")
    response = page.goto(f"{dashboard_hub}/services/dashboard/", timeout=120_000)
    assert response.status == 403
    assert "Cohort c1" not in page.content()


def test_anyone_opens_an_app_without_login(dashboard_hub, page):
    """Does a visitor with no account open an app through the hub, its widget answering?"""
    response = page.goto(f"{dashboard_hub}/services/apps/", timeout=60_000)
    assert response.status == 200 and "/hub/login" not in page.url
    page.get_by_role("link", name="Planificateur").click()
    box = page.locator(".widget-text input")
    box.wait_for(timeout=120_000)
    box.fill("4")
    page.locator(".atelier-echo").filter(has_text="Vous avez tapé : 4").wait_for(timeout=60_000)
    assert all(u.startswith(dashboard_hub) for u in page.requests_seen)
