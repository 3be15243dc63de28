"""nbgrader on the real hub: the assignment list on trainees' servers, formgrader per cohort.

Trainees use JupyterLab's assignment list on their own servers, and only a cohort's facilitators
reach that cohort's formgrader service.

Uses the session ``hub`` (cohort x: alice and bob in English, facilitator fiona; cohort y: chloe
in French). The hub's grading plugin configured the course of each cohort at start.
"""

from __future__ import annotations

import json
import pwd
import re

import pytest
from harness import FIXTURES

pytestmark = pytest.mark.server

WORKBOOK = FIXTURES / "grading" / "01-quiz"


@pytest.fixture(scope="module")
def released(hub):
    """The fixture quiz released to cohorts x and y."""
    for cohort in ("x", "y"):
        hub.atelier("release", str(WORKBOOK), f"--cohort={cohort}")
    return hub


def _xsrf(session, hub, user):
    return session.cookies.get("_xsrf", path=f"/user/{user}/") or session.cookies.get("_xsrf")


def _server(hub, user):
    session = hub.login(user)
    lab = hub.start_server(session, user)
    base = f"{hub.url}/user/{user}"
    session.lab_page = lab.text
    return session, base


def test_a_trainee_fetches_and_submits_from_the_assignment_list(released):
    """Does alice's assignment list show the English quiz only, and do fetch and submit work?"""
    hub = released
    session, base = _server(hub, "alice")
    # Formgrader belongs to the course's service: trainees' JupyterLab does not offer it.
    found = re.search(r'id="jupyter-config-data"[^>]*>(.*?)</script>', session.lab_page, re.S)
    config = json.loads(found.group(1))
    assert "@jupyter/nbgrader:formgrader" in config["disabledExtensions"]
    listing = session.get(f"{base}/assignments", params={"course_id": "x"}, timeout=60).json()
    assert listing["success"], listing
    # Other modules release their own workbooks to the session hub's cohorts: the quiz's
    # languages are what this test is about.
    names = {a["assignment_id"] for a in listing["value"] if a["assignment_id"].startswith("quiz-")}
    assert names == {"quiz-en"}
    headers = {"X-XSRFToken": _xsrf(session, hub, "alice")}
    form = {"course_id": "x", "assignment_id": "quiz-en"}
    fetched = session.post(f"{base}/assignments/fetch", data=form, headers=headers, timeout=60)
    assert fetched.status_code == 200
    statuses = {a["assignment_id"]: a["status"] for a in fetched.json()["value"]}
    assert statuses["quiz-en"] == "fetched"
    path = "x/quiz-en/quiz.en.ipynb"
    model = session.get(f"{base}/api/contents/{path}", timeout=30).json()
    for cell in model["content"]["cells"]:
        if cell["metadata"].get("nbgrader", {}).get("grade_id") == "square":
            cell["source"] = "def square(x):\n    return x * x"
    saved = session.put(
        f"{base}/api/contents/{path}",
        data=json.dumps({"type": "notebook", "content": model["content"]}),
        headers=headers,
        timeout=30,
    )
    assert saved.status_code == 200
    submitted = session.post(f"{base}/assignments/submit", data=form, headers=headers, timeout=60)
    assert submitted.status_code == 200 and submitted.json()["success"], submitted.text
    from atelier.grading.course import Course
    from atelier.settings import load_settings

    course = Course.from_settings(load_settings(hub.settings_path), "x")
    (folder,) = list(course.inbound_of(hub.account("alice")).iterdir())
    assert folder.stat().st_uid == pwd.getpwnam(hub.account("alice")).pw_uid


def test_a_french_trainee_sees_the_french_quiz_of_her_cohort_only(released):
    """Does chloe (cohort y, French) see quiz-fr of y, and nothing of cohort x?"""
    hub = released
    session, base = _server(hub, "chloe")
    own = session.get(f"{base}/assignments", params={"course_id": "y"}, timeout=60).json()
    quiz = {a["assignment_id"] for a in own["value"] if a["assignment_id"].startswith("quiz-")}
    assert quiz == {"quiz-fr"}
    other = session.get(f"{base}/assignments", params={"course_id": "x"}, timeout=60).json()
    assert other["value"] == []


def test_only_the_cohorts_facilitators_open_its_formgrader(released):
    """Does fiona open cohort x's formgrader as a page of its own, while alice and chloe cannot?"""
    hub = released
    fiona = hub.login("fiona")
    page = fiona.get(f"{hub.url}/services/x/formgrader", timeout=120)
    assert page.status_code == 200, page.text[:500]
    assert page.url.startswith(f"{hub.url}/services/x/formgrader")
    assert "formgrader" in page.text.lower()
    for intruder in ("alice", "chloe"):
        session = hub.login(intruder)
        denied = session.get(f"{hub.url}/services/x/formgrader", timeout=60)
        assert denied.status_code in (403, 404), (intruder, denied.status_code)
    # fiona facilitates x only: cohort y's formgrader is closed to her too.
    other = fiona.get(f"{hub.url}/services/y/formgrader", timeout=60)
    assert other.status_code in (403, 404)


def test_formgraders_collect_button_uses_the_hardened_collect(released):
    """Does formgrader's Collect (run as the grader account) take alice's checked submission?"""
    hub = released
    fiona = hub.login("fiona")
    fiona.get(f"{hub.url}/services/x/formgrader", timeout=120)
    xsrf = fiona.cookies.get("_xsrf", path="/services/x/") or fiona.cookies.get("_xsrf")
    done = fiona.post(
        f"{hub.url}/services/x/formgrader/api/assignment/quiz-en/collect",
        headers={"X-XSRFToken": xsrf},
        timeout=120,
    )
    assert done.status_code == 200, done.text[:500]
    assert done.json()["success"], done.json()
    from atelier.grading.course import Course
    from atelier.settings import load_settings

    course = Course.from_settings(load_settings(hub.settings_path), "x")
    receipt = course.submission_dir(hub.account("alice"), "quiz-en") / "atelier_receipt.json"
    assert json.loads(receipt.read_text())["decision"] == "kept"


def test_formgrader_shows_what_is_released_as_released(released):
    """Does cohort x's formgrader list the released quiz as released, with the exchange found?"""
    hub = released
    fiona = hub.login("fiona")
    base = f"{hub.url}/services/x/formgrader"
    listing = fiona.get(f"{base}/api/assignments", timeout=120)
    assert listing.status_code == 200, listing.text[:500]
    statuses = {a["name"]: a["status"] for a in listing.json()}
    assert statuses.get("quiz-en") == "released", statuses
    page = fiona.get(f"{base}/manage_assignments", timeout=120)
    assert page.status_code == 200
    assert 'id="warning-exchange"' not in page.text, "formgrader says the exchange is missing"
