"""Formgrader in Chromium: a facilitator opens it from the hub and grades a reflection by hand.

The reflection carries hostile HTML, which formgrader must show as text.
"""

from __future__ import annotations

import json
from urllib.parse import urlparse

import pytest
from harness import FIXTURES

pytestmark = pytest.mark.browser

WORKBOOK = FIXTURES / "grading" / "01-quiz"
REFLECTION = "I would print the page for students without data."
#: True once formgrader's page has loaded its grades and comments and MathJax has typeset it.
READY = """() => window.formgrader && formgrader.loaded && formgrader.grades.loaded
    && formgrader.comments.loaded && (!window.MathJax || MathJax.loaded !== false)"""
#: What a hostile trainee appends: it must show as text and never run in formgrader's origin.
HOSTILE = """ <img src="x" onerror="document.title='pwned'"> [click](javascript:alert(1))"""


@pytest.fixture(scope="module")
def graded(hub):
    """Cohort x has the quiz; bob submitted it from his server; it is collected and autograded."""
    hub.atelier("release", str(WORKBOOK), "--cohort=x")
    session = hub.login("bob")
    hub.start_server(session, "bob")
    base = f"{hub.url}/user/bob"
    headers = {"X-XSRFToken": session.cookies.get("_xsrf", path="/user/bob/") or ""}
    form = {"course_id": "x", "assignment_id": "quiz-en"}
    session.post(f"{base}/assignments/fetch", data=form, headers=headers, timeout=60)
    path = f"{base}/api/contents/x/quiz-en/quiz.en.ipynb"
    model = session.get(path, timeout=30).json()
    for cell in model["content"]["cells"]:
        if cell["metadata"].get("nbgrader", {}).get("grade_id") == "reflection":
            cell["source"] = REFLECTION + HOSTILE
    body = json.dumps({"type": "notebook", "content": model["content"]})
    assert session.put(path, data=body, headers=headers, timeout=30).status_code == 200
    done = session.post(f"{base}/assignments/submit", data=form, headers=headers, timeout=60)
    assert done.json()["success"], done.text
    hub.atelier("collect", "--cohort=x", "quiz")
    hub.atelier("grade", "--cohort=x", "quiz-en", "--force", "--no-progress")
    return hub


def test_a_facilitator_grades_a_reflection_in_formgrader_opened_from_the_hub(graded, page):
    """Does fiona open formgrader from the hub's Services menu and save a score and a comment?"""
    hub = graded
    page.set_default_timeout(120_000)
    hosts = set()
    page.on("request", lambda request: hosts.add(urlparse(request.url).hostname))
    page.goto(f"{hub.url}/hub/login")
    page.fill("input[name=username]", "fiona")
    page.fill("input[name=password]", hub.passwords["fiona"])
    page.click("[type=submit]")
    page.wait_for_load_state()
    page.goto(f"{hub.url}/hub/home")
    page.get_by_text("Services", exact=True).first.click()
    page.locator('a[href$="/services/x/"]').first.click()
    page.wait_for_url(f"{hub.url}/services/x/formgrader**")
    # Its own page, not a frame inside JupyterLab: nothing to weaken on trainee servers.
    assert page.main_frame.url.startswith(f"{hub.url}/services/x/formgrader")
    page.goto(f"{hub.url}/services/x/formgrader/gradebook/quiz-en/quiz.en")
    account = hub.account("bob")
    page.locator("td.name a").first.wait_for()
    links = page.locator("td.name a")
    # Names are hidden by default; open bob's submission through the API's id.
    api = f"{hub.url}/services/x/formgrader/api/submitted_notebooks/quiz-en/quiz.en"
    submissions = page.context.request.get(api).json()
    (mine,) = [s for s in submissions if s["student"] == account]
    assert links.count() >= 1
    page.goto(f"{hub.url}/services/x/formgrader/submissions/{mine['id']}/")
    page.get_by_text(REFLECTION).wait_for()
    assert page.locator('img[src="x"]').count() == 0
    assert page.locator('a[href^="javascript"]').count() == 0
    assert "onerror" in page.get_by_text(REFLECTION).first.inner_text()
    assert page.title() != "pwned"
    # Formgrader binds its inputs to the saved grades only once it has fetched them, and MathJax
    # moves the focus when it finishes typesetting: typing earlier loses the keystrokes.
    page.wait_for_function(READY)
    score = page.locator("input.score#reflection")
    comment = page.locator("textarea#reflection-comment")
    # Formgrader saves each field when it changes (a PUT per model); reloading before a save has
    # answered would cancel it, so wait for each save's answer, however long the machine takes.
    with page.expect_response(lambda r: "/api/grade/" in r.url and r.request.method == "PUT"):
        score.fill("2")
        score.press("Tab")
    with page.expect_response(lambda r: "/api/comment/" in r.url and r.request.method == "PUT"):
        comment.fill("Clear and practical.")
        comment.press("Tab")
    page.reload()
    page.wait_for_function(READY)
    assert page.locator("input.score#reflection").input_value() == "2"
    from atelier.grading.course import Course
    from atelier.settings import load_settings

    course = Course.from_settings(load_settings(hub.settings_path), "x")
    with course.gradebook() as gb:
        grade = gb.find_grade("reflection", "quiz.en", "quiz-en", account)
        comment = gb.find_comment("reflection", "quiz.en", "quiz-en", account)
        assert grade.manual_score == 2
        assert comment.manual_comment == "Clear and practical."
    # MathJax included, every script and style came from the machine (graders may be offline).
    assert hosts == {"127.0.0.1"}


def test_trainee_servers_keep_refusing_to_be_framed(graded):
    """Do trainees' servers still send frame-ancestors 'none' (formgrader needed no weakening)?"""
    hub = graded
    session = hub.login("bob")
    lab = session.get(f"{hub.url}/user/bob/lab", timeout=60)
    assert lab.status_code == 200
    assert "frame-ancestors 'none'" in lab.headers.get("Content-Security-Policy", "")
