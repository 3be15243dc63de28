"""Public access through a real hub, in Chromium: apps for anyone, dashboard for facilitators."""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import random
import shutil
import string
import subprocess
import tempfile
import time
import types
from pathlib import Path

import pytest
import requests
import yaml
from harness import BIN, FIXTURES, PREFIX, channel_sockets, sockets_of, stop_process
from playwright.sync_api import TimeoutError as PlaywrightTimeout
from seeds import seed_dashboard_cohort

from atelier.processes.ports import free_port
from atelier.public import apps
from atelier.settings import load_settings

pytestmark = pytest.mark.browser

HUB_CONFIG = """
from atelier.public import apps
from atelier.grading.dashboard import dashboard
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
def public_hub():
    """A hub with the dashboard and public apps services, over a seeded cohort c1."""
    # World-readable: the apps service runs as its own account and reads the settings and apps here.
    root = Path(tempfile.mkdtemp(prefix="atelier-public-"))
    root.chmod(0o755)
    account = "atapps-" + "".join(random.choices(string.ascii_lowercase, k=4))
    seed_dashboard_cohort(root)
    add_hostile_roster_values(root / "state")
    ports = {name: free_port() for name in ("port", "hub_port", "api_port")}
    settings = yaml.safe_load((root / "settings.yaml").read_text())
    # The hub stages the apps beside the workbook repository: this hub's, not the machine's.
    settings["hub"]["workbooks_repo"] = str(root / "workbooks.git")
    settings["apps"] = {
        "workbooks_dir": str(FIXTURES / "apps"),
        "port": free_port(),
        "dashboard_port": free_port(),
        "service_user": account,
        "max_kernels": 8,
    }
    (root / "settings.yaml").write_text(yaml.safe_dump(settings))
    assert apps.ensure_service_account(load_settings(root / "settings.yaml"))
    hub = None
    try:
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
        deadline = time.monotonic() + 180
        while True:
            assert hub.poll() is None, (root / "hub.log").read_text()[-3000:]
            try:
                # Both services answer through the proxy once up (the dashboard: a login redirect).
                dash = requests.get(f"{url}/services/dashboard/", timeout=5, allow_redirects=False)
                public = requests.get(f"{url}/services/apps/", timeout=5, allow_redirects=False)
                if dash.status_code in (302, 303) and public.status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            assert time.monotonic() < deadline, (root / "hub.log").read_text()[-3000:]
            time.sleep(0.5)
        yield types.SimpleNamespace(
            url=url, account=account, apps_port=settings["apps"]["port"], log=root / "hub.log"
        )
    finally:
        if hub is not None:
            # The hub alone first: it stops its services (each in a session of its own), as an
            # administrator's stop does; then the proxy it leaves running by design.
            stop_process(hub, grace=60)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(hub.pid, 9)
            log.close()
        # Whatever the apps account still runs (its kernels) ends before the account goes.
        subprocess.run(["pkill", "-KILL", "-u", account], capture_output=True)
        subprocess.run(["userdel", "--remove", account], capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


#: A roster column header and a name that ran script on the dashboard before issue 15 (item 6).
HOSTILE_HEADER = "<img src=x onerror=alert('header')>"
HOSTILE_NAME = "<script>alert('name')</script>\"><svg onload=alert('svg')>"


def add_hostile_roster_values(state) -> None:
    """Give every trainee a column with a hostile header, and one trainee a hostile name.

    Written to the hub's people file directly, as a roster imported before header validation
    (or edited by hand) would leave it: the page must escape them whatever the import checked.
    """
    import dataclasses

    from atelier.accounts import load_people, save_people

    people = load_people(state)
    for name, person in people.items():
        if person.role == "trainee":
            changes = {"extra": {**person.extra, HOSTILE_HEADER: f"{{{{7*7}}}} {name}"}}
            if name == "dara":
                changes["full_name"] = HOSTILE_NAME
            people[name] = dataclasses.replace(person, **changes)
    save_people(state, people)


def log_in(page, url: str, username: str) -> None:
    page.goto(f"{url}/hub/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", "pw")
    page.click("[type=submit]")
    page.wait_for_url(lambda u: "/hub/login" not in u, timeout=60_000)


def open_dashboard(page, public_hub) -> None:
    """Open the dashboard as the logged-in page, and wait for its numbers.

    Voila streams the page while its kernel runs the dashboard: wait for the numbers themselves
    rather than the page's load event. The first render must end: a render that stopped at
    "Executing 2 of 3" (a cell's reply pyzmq never announced, upstream/jupyter_client.py) fails
    here, after the page, its console and the hub's log are kept in
    tests/artifacts/dashboard-stall/.
    """
    console = []
    page.on("console", lambda message: console.append(f"{message.type}: {message.text}"))
    page.goto(f"{public_hub.url}/services/dashboard/", timeout=240_000, wait_until="commit")
    try:
        page.locator("#cohort-summary").wait_for(timeout=120_000)
    except PlaywrightTimeout:
        stalled = Path(__file__).parent.parent / "artifacts" / "dashboard-stall"
        stalled.mkdir(parents=True, exist_ok=True)
        (stalled / "page.html").write_text(page.content())
        (stalled / "console.txt").write_text("\n".join(console))
        shutil.copy(public_hub.log, stalled / "hub.log")
        raise


def test_facilitator_sees_the_cohorts_numbers(public_hub, page):
    """Does a facilitator who logs in see cohort c1's true numbers, and a CSV to download?"""
    url = public_hub.url
    log_in(page, url, "fac")
    open_dashboard(page, public_hub)
    assert page.locator("#cohort-summary").inner_text() == "Cohort c1: 4 trainees, 2 completed"
    text = page.locator("#rendered_cells").inner_text()
    assert "Univ A" in text and "83.3" in text
    assert page.locator("a[download='c1-progress.csv']").count() == 1
    # Participation: 4 trainees, one per country, so by country all four are suppressed.
    assert page.locator("#participation-participants").inner_text() == "4"
    by_country = page.locator("#participation-by-country").inner_text()
    assert "other/suppressed" in by_country and "Senegal" not in by_country
    assert page.locator("a[download='c1-participation.csv']").count() == 1
    assert all(u.startswith(url) or u.startswith("data:") for u in page.requests_seen)


def test_hostile_roster_header_and_name_run_no_script(public_hub, page):
    """Does a roster header or a name holding script run in the hub's origin on the dashboard?"""
    url = public_hub.url
    dialogs = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    log_in(page, url, "fac")
    open_dashboard(page, public_hub)
    # Break the cohort down by the hostile column: its header becomes the section's title.
    page.locator(".widget-dropdown select").nth(1).select_option(label=HOSTILE_HEADER)
    title = page.locator("#breakdown-title", has_text=HOSTILE_HEADER)
    deadline = time.monotonic() + 60
    while not dialogs and not title.count():
        assert time.monotonic() < deadline, "the breakdown by the hostile column never showed"
        page.wait_for_timeout(250)
    page.wait_for_timeout(1000)  # an injected handler (onerror, onload) fires by then
    assert dialogs == [], f"script ran in the hub's origin: {dialogs}"
    assert title.inner_text() == f"By {HOSTILE_HEADER}"
    text = page.locator("#rendered_cells").inner_text()
    assert HOSTILE_NAME in text and "{{7*7}} amina" in text
    injected = "#rendered_cells [onerror], #rendered_cells [onload], #rendered_cells img[src=x]"
    assert page.locator(injected).count() == 0


def test_trainee_cannot_open_the_dashboard(public_hub, page):
    """Is a trainee who logs in refused the dashboard (403), without seeing any number?"""
    url = public_hub.url
    log_in(page, url, "amina")
    response = page.goto(f"{url}/services/dashboard/", timeout=120_000)
    assert response.status == 403
    assert "Cohort c1" not in page.content()


def test_anyone_opens_an_app_without_login(public_hub, page):
    """Does a visitor with no account open an app through the hub, its widget answering?"""
    url = public_hub.url
    response = page.goto(f"{url}/services/apps/", timeout=60_000)
    assert response.status == 200 and "/hub/login" not in page.url
    page.get_by_role("link", name="Planificateur").click()
    box = page.locator(".widget-text input")
    box.wait_for(timeout=120_000)
    box.fill("4")
    page.locator(".atelier-echo").filter(has_text="Vous avez tapé : 4").wait_for(timeout=60_000)
    assert all(u.startswith(url) for u in page.requests_seen)


def test_apps_run_as_their_own_account(public_hub):
    """Do the public apps server and its kernels run as the apps account, never as root?"""
    import psutil

    uid = pwd.getpwnam(public_hub.account).pw_uid
    servers = [
        p
        for p in psutil.process_iter(["cmdline", "uids"])
        if f"--port={public_hub.apps_port}" in (p.info["cmdline"] or [])
    ]
    assert len(servers) == 1
    kernels = [
        k
        for k in servers[0].children(recursive=True)
        if "ipykernel_launcher" in " ".join(k.cmdline())
    ]
    assert kernels, "the apps server should have preheated kernels"
    for process in [servers[0], *kernels]:
        assert process.uids().real == uid and process.uids().effective == uid
        # Under a full machine the hub and trainees go first (apps.nice).
        assert process.nice() == 10, (process.cmdline(), process.nice())
    for kernel in kernels:
        # Visitors' kernels talk to the apps server over Unix sockets (kernelsockets.py): a burst
        # of visitors cannot lose a kernel to a TCP port another process took first.
        argv = kernel.cmdline()
        connection = json.loads(Path(argv[argv.index("-f") + 1]).read_text())
        assert connection["transport"] == "ipc"
        assert channel_sockets(connection) <= set(sockets_of(kernel.pid)["unix"])
