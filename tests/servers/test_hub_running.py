"""A running hub: trainee servers start without Node.js, and rosters apply without a manual restart.

Uses the session hub (``tests/conftest.py``). The tests import their own people (``nour`` into the
existing cohort ``x``; ``zara`` and ``zack`` into a new cohort ``z``), so the other hub tests'
people and cohorts are left as they were. The new-cohort test restarts the hub (as
``atelier roster import`` does by itself), so it runs last in this module.
"""

from __future__ import annotations

import pwd
import subprocess
import threading
import time
from pathlib import Path

import pytest
from harness import PREFIX

pytestmark = pytest.mark.server

ROSTER_HEADER = "username,full name,email,institution,country,language,role,cohort\n"


class NodeWatch:
    """Records every Node.js process (node, npm, yarn) of one Unix account while it is running.

    /proc is scanned every 10 ms: Node.js takes far longer than that to start and run even
    ``yarn config``, so no such process slips through.
    """

    def __init__(self, uid: int):
        self.uid = uid
        self.seen: set[str] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def _watch(self) -> None:
        while not self._stop.is_set():
            for entry in Path("/proc").iterdir():
                if not entry.name.isdigit():
                    continue
                try:
                    if entry.stat().st_uid != self.uid:
                        continue
                    argv = (entry / "cmdline").read_bytes().decode(errors="replace").split("\0")
                except OSError:
                    continue
                if argv and Path(argv[0]).name in ("node", "nodejs"):
                    self.seen.add(" ".join(argv).strip())
            time.sleep(0.01)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def uid_of(hub, username: str) -> int:
    return pwd.getpwnam(hub.account(username)).pw_uid


def test_a_trainee_server_starts_without_running_node(hub):
    """Does a trainee's server start (JupyterLab ready) without spawning Node.js (yarn, npm)?"""
    nour = "nour,Nour Haddad,nour@example.org,U,KE,en,trainee,x\n"
    result = hub.import_roster(ROSTER_HEADER + nour)
    assert result.returncode == 0, result.stderr
    uid = uid_of(hub, "nour")
    # The watch catches what stock JupyterLab does at import: `node yarn.js config --json`.
    with NodeWatch(uid) as control:
        subprocess.run(
            ["runuser", "-u", hub.account("nour"), "--", str(PREFIX / "env" / "bin" / "python"),
             "-c", "import jupyterlab.labapp"],
            cwd="/", capture_output=True, timeout=120, check=True,
        )  # fmt: skip
    assert any("yarn" in command for command in control.seen), control.seen
    session = hub.login("nour")
    with NodeWatch(uid) as watch:
        lab = hub.start_server(session, "nour")
    assert "JupyterLab" in lab.text
    assert not watch.seen, f"a trainee server start ran Node.js: {sorted(watch.seen)}"


def test_new_people_of_a_known_cohort_reach_the_running_hub_without_a_restart(hub):
    """Are new trainees of a known cohort in its group, seen by its facilitator, with no restart?"""
    hub_pid = (hub.state_dir / "jupyterhub.pid").read_text()
    result = hub.import_roster(ROSTER_HEADER + "omar,Omar Sy,omar@example.org,U,KE,fr,trainee,x\n")
    assert "no restart was needed" in result.stdout, result.stdout
    assert (hub.state_dir / "jupyterhub.pid").read_text() == hub_pid
    fiona = hub.login("fiona")
    names = {user["name"] for user in hub.api(fiona, "GET", "/users").json()}
    assert "omar" in names
    members = hub.api(fiona, "GET", "/groups/cohort-x").json()["users"]
    assert "omar" in members
    omar = hub.login("omar")
    assert omar.login_response.status_code == 302


def test_a_new_cohort_restarts_the_hub_safely_and_applies_its_rights(hub):
    """Does a new cohort restart the hub by itself, keep servers running, and apply its roles?"""
    nour_uid = uid_of(hub, "nour") if _exists(hub, "nour") else None
    server_before = _server_pids(nour_uid)
    proxy_before = (hub.state_dir / "proxy.pid").read_text()
    result = hub.import_roster(
        ROSTER_HEADER
        + "zara,Zara Ali,zara@example.org,U,KE,en,trainee,z\n"
        + "zack,Zack Obi,zack@example.org,U,KE,en,facilitator,z\n"
    )
    assert "restarted to add cohort(s) z" in result.stdout, result.stdout
    assert (hub.state_dir / "proxy.pid").read_text() == proxy_before
    if server_before:
        assert _server_pids(nour_uid) == server_before, "a trainee's server did not survive"
    zack = hub.login("zack")
    names = {user["name"] for user in hub.api(zack, "GET", "/users").json()}
    assert "zara" in names and "alice" not in names
    # "Restarted" means usable: the new cohort's formgrader is already there for its facilitator.
    formgrader = zack.get(f"{hub.url}/services/z/formgrader", timeout=60)
    assert formgrader.status_code == 200, formgrader.status_code
    fiona = hub.login("fiona")
    assert hub.api(fiona, "GET", "/users/zara").status_code == 404


def _exists(hub, username: str) -> bool:
    try:
        pwd.getpwnam(hub.account(username))
    except KeyError:
        return False
    return True


def _server_pids(uid: int | None) -> set[int]:
    if uid is None:
        return set()
    pids = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if entry.stat().st_uid == uid:
                    pids.add(int(entry.name))
            except OSError:
                continue
    return pids
