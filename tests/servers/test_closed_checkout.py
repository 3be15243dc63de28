"""A checkout only root can enter (a clone under /root, a ``mktemp -d`` folder) still serves a hub.

The hub's services and trainees' servers run as their own accounts, which cannot read such a
checkout: what they need is staged where they can read it (the public apps beside the workbook
repository, the workbooks in the repository), and a folder they would need but cannot enter
stops ``atelier start`` with a message naming the folder and the fix, before anyone's server
fails.
"""

from __future__ import annotations

import os
import pwd
import shutil
import stat
import subprocess
import tempfile
from pathlib import Path

import pytest
import requests
import yaml
from harness import PREFIX, REPO, get_whole_page
from hubs import running_hub

from atelier.processes.ports import free_port

pytestmark = pytest.mark.server


@pytest.fixture(scope="module")
def checkout():
    """A copy of this repository in a fresh ``mktemp -d`` folder (mode 700, root's)."""
    closed = Path(tempfile.mkdtemp(prefix="atelier-closed-"))
    assert stat.S_IMODE(closed.stat().st_mode) == 0o700
    copy = closed / "atelier"
    ignore = shutil.ignore_patterns(".git", "artifacts", "__pycache__", "*.egg-info", ".*_cache")
    shutil.copytree(REPO, copy, ignore=ignore)
    yield copy
    shutil.rmtree(closed, ignore_errors=True)


def test_a_hub_run_from_a_closed_checkout_serves_its_apps_and_trainees(checkout):
    """Settings, workbooks, apps in a folder only root enters: do the hub and its services run?"""
    extra = {
        "apps": {
            "on_hub": True,
            "dashboard": True,
            "workbooks_dir": str(checkout / "tests" / "fixtures" / "apps" / "planner"),
            "port": free_port(),
            "dashboard_port": free_port(),
            "max_kernels": 4,
        }
    }
    with running_hub(extra, start=False) as hub:
        # What `bash hub_config/bootstrap.sh start` run in that checkout reads: its settings
        # file and its workbooks.
        hub.settings_path = checkout / "settings.yaml"
        hub.settings_path.write_text(yaml.safe_dump(hub.settings))
        hub.workbooks = checkout / "tests" / "fixtures" / "hub_workbooks"
        hub.publish_workbooks()
        hub.launch()
        public = requests.get(f"{hub.url}/services/apps/", timeout=30)
        assert public.status_code == 200, public.text[:500]
        assert "planner" in public.text
        staged = Path(hub.settings["hub"]["workbooks_repo"]).parent / "apps-workbooks"
        assert any(staged.rglob("*.ipynb")), "the apps were not staged beside the repository"
        fiona = hub.login("fiona")
        status, dashboard = get_whole_page(fiona, f"{hub.url}/services/dashboard/", 120)
        assert status == 200, status
        assert "window.voila_finish();" in dashboard, dashboard[-2000:]
        alice = hub.login("alice")
        lab = hub.start_server(alice, "alice")
        assert "JupyterLab" in lab.text
        account = pwd.getpwnam(hub.account("alice"))
        assert any((Path(account.pw_dir) / "workbooks").iterdir()), "no workbooks delivered"


def test_a_repository_trainees_cannot_read_stops_the_start_with_the_folder_and_the_fix(checkout):
    """hub.workbooks_repo inside the closed folder: does `atelier start` name it and the fix?"""
    closed = checkout.parent
    root = Path(tempfile.mkdtemp(prefix="atelier-closed-start-"))
    try:
        settings = {
            "hub": {
                "port": free_port(),
                "hub_port": free_port(),
                "proxy_api_port": free_port(),
                "state_dir": str(root / "state"),
                "workbooks_repo": str(checkout / "workbooks.git"),
                "config_d": "",
            },
            "apps": {"on_hub": False, "dashboard": False},
        }
        path = root / "settings.yaml"
        path.write_text(yaml.safe_dump(settings))
        result = subprocess.run(
            [str(PREFIX / "env" / "bin" / "atelier"), "start", "--settings", str(path)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode != 0
        message = result.stdout + result.stderr
        assert f"hub.workbooks_repo ({checkout / 'workbooks.git'})" in message, message
        assert f"{closed} (mode 700) lets no other account in" in message, message
        assert f"chmod o+rx {closed}" in message, message
        assert "Traceback" not in message, message
        assert not (root / "state" / "proxy.pid").exists(), "a proxy was started anyway"
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_the_apps_command_names_a_folder_its_account_cannot_read(checkout):
    """`atelier apps` run by an account that cannot enter the checkout: a message, no traceback?"""
    nobody = pwd.getpwnam("nobody")
    settings = Path(tempfile.mkdtemp(prefix="atelier-closed-apps-")) / "settings.yaml"
    try:
        settings.parent.chmod(0o755)
        settings.write_text(yaml.safe_dump({"apps": {"on_hub": False}}))
        settings.chmod(0o644)
        result = subprocess.run(
            [str(PREFIX / "env" / "bin" / "atelier"), "apps", f"--settings={settings}",
             f"--port={free_port()}", f"--workbooks={checkout / 'tests' / 'fixtures' / 'apps'}"],
            user=nobody.pw_uid, group=nobody.pw_gid, extra_groups=[], cwd="/",
            env={**os.environ, "HOME": "/tmp"}, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        message = result.stdout + result.stderr
        assert result.returncode != 0, message
        assert f"{checkout.parent} lets it no further" in message, message
        assert "Traceback" not in message, message
    finally:
        shutil.rmtree(settings.parent, ignore_errors=True)
