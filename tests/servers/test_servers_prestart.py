"""``atelier servers start`` on a real hub: a cohort's servers started ahead of its session.

Its own hub (not the session's): cohort ``w`` has ana (no server yet), ben (already logged in,
his server running) and cam (whose Unix account is gone: his start must fail, with the reason);
cohort ``v``'s val must be left alone. The tests run in file order: the start, then ana's login.
"""

from __future__ import annotations

import subprocess

import pytest
from harness import FIXTURES
from hubs import running_hub

pytestmark = pytest.mark.server

ROSTER = """username,full name,email,institution,country,language,role,cohort
ana,Ana Silva,ana@example.org,U,Kenya,en,trainee,w
ben,Ben Diop,ben@example.org,U,Senegal,en,trainee,w
cam,Cam Osei,cam@example.org,U,Ghana,en,trainee,w
fay,Fay Ali,fay@example.org,U,Ghana,en,facilitator,w
val,Val Nkosi,val@example.org,U,Nigeria,en,trainee,v
"""


@pytest.fixture(scope="module")
def cohort_hub():
    """The hub; ``progress`` released to w; ben's server running; cam's account gone."""
    with running_hub(roster=ROSTER) as hub:
        hub.atelier("release", str(FIXTURES / "home" / "01-progress"), "--cohort=w")
        ben = hub.login("ben")
        hub.start_server(ben, "ben")
        hub.ben_started = server_model(hub, ben, "ben")["started"]
        subprocess.run(["userdel", hub.account("cam")], check=True, capture_output=True)
        yield hub


def server_model(hub, session, username) -> dict:
    """The user's default server as the hub's API shows it to that user ({} if none)."""
    answer = hub.api(session, "GET", f"/users/{username}")
    assert answer.status_code == 200, answer.text
    return answer.json()["servers"].get("", {})


def test_the_cohorts_servers_are_started_as_their_trainees(cohort_hub):
    """Are ana's server started (as ana), ben's kept, cam's failure told with why, val's left?"""
    hub = cohort_hub
    result = hub.atelier("servers", "start", "--cohort=w", "--no-progress", check=False)
    # One failure (cam) makes the command fail, after doing all it could.
    assert result.returncode == 1, result.stdout + result.stderr
    assert "1 started, 1 already running, 1 failed." in result.stdout
    failure = next(line for line in result.stdout.splitlines() if "failed: cam" in line)
    assert hub.account("cam") in failure or "account" in failure, failure
    assert "Trainees must log in by" in result.stdout
    # The server runs as ana's own Unix account, as after her own login.
    assert hub.server_processes("ana")
    assert not hub.server_processes("val")
    # ben's server was not started again.
    ben = hub.login("ben")
    assert server_model(hub, ben, "ben")["started"] == hub.ben_started
    status = hub.atelier("servers", "status", "--cohort=w")
    assert "cam: stopped" in status.stdout
    assert "w: 2 running, 1 stopped" in status.stdout


def test_again_starts_none_of_the_running_ones(cohort_hub):
    """Run again (e.g. just before the session), are the running servers left as they are?"""
    result = cohort_hub.atelier("servers", "start", "--cohort=w", "--no-progress", check=False)
    assert "0 started, 2 already running, 1 failed." in result.stdout


def test_the_trainee_then_reaches_the_view_without_a_spawn(cohort_hub):
    """Does ana, logging in at the session, land on her running server and open the view?"""
    hub = cohort_hub
    session = hub.login("ana")
    before = server_model(hub, session, "ana")
    assert before.get("ready"), before
    landing = session.get(f"{hub.url}/hub/", timeout=60)
    assert landing.status_code == 200
    assert landing.url == f"{hub.url}/user/ana/atelier/home"
    view = session.get(f"{hub.url}/user/ana/atelier/home/open/w/progress-en", timeout=120)
    assert view.status_code == 200, view.text[:500]
    assert view.url == f"{hub.url}/user/ana/atelier/view/w/progress-en/progress.en.ipynb"
    # The same server: started by the command, not by her login.
    assert server_model(hub, session, "ana")["started"] == before["started"]


def test_an_unknown_cohort_is_refused_before_anything_starts(cohort_hub):
    """Does a misspelt cohort name the known ones, with no server started?"""
    result = cohort_hub.atelier("servers", "start", "--cohort=W", "--no-progress", check=False)
    assert result.returncode == 2
    assert "unknown cohort 'W'; the roster's cohorts: v, w" in result.stderr
    assert not cohort_hub.server_processes("val")
