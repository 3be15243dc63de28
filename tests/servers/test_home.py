"""The trainee's home page ("My workbooks") and the login page, on the real hub.

Trainees land on ``/user/<name>/atelier/home``, served by their own server as their own account.
The workbooks are released with ``atelier release`` through the hardened exchange; the trainee
fetches and submits with what JupyterLab's assignment list runs; the facilitator collects, grades
(sandboxed) and returns feedback with the verbs. The tests of this module form one scenario and
run in file order.

Uses the session ``hub`` (cohort x: alice and bob in English; cohort y: chloe in French).
"""

from __future__ import annotations

import html
import json
import os
import pwd
import re

import pytest
from harness import FIXTURES

pytestmark = pytest.mark.server

PROGRESS = FIXTURES / "home" / "01-progress"
HOSTILE = FIXTURES / "home" / "02-hostile"
HOSTILE_TITLE = '<script>alert("title")</script> & <b>bold</b>'


@pytest.fixture(scope="module")
def released(hub):
    """The progress workbook released to cohorts x and y, the hostile one to x."""
    hub.atelier("release", str(PROGRESS), "--cohort=x")
    hub.atelier("release", str(PROGRESS), "--cohort=y")
    hub.atelier("release", str(HOSTILE), "--cohort=x")
    return hub


def _server(hub, user):
    session = hub.login(user)
    hub.start_server(session, user)
    return session


def _home(hub, session, user):
    page = session.get(f"{hub.url}/user/{user}/atelier/home", timeout=60)
    assert page.status_code == 200, page.text[:500]
    return page.text


def _card(page: str, assignment: str) -> str:
    """The text of one workbook's card (tags removed, entities decoded)."""
    found = re.search(rf'<li class="card" data-assignment="{assignment}"(.*?)</li>', page, re.S)
    assert found, f"no card for {assignment} in:\n{page}"
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", found.group(0))).split())


def _state(page: str, assignment: str) -> str:
    found = re.search(rf'data-assignment="{assignment}" data-state="([a-z_]+)"', page)
    assert found, page
    return found.group(1)


def _xsrf(session, user):
    return session.cookies.get("_xsrf", path=f"/user/{user}/") or session.cookies.get("_xsrf")


def _as_owner(path, account):
    entry = pwd.getpwnam(account)
    os.chown(path, entry.pw_uid, entry.pw_gid)


def test_after_login_a_trainee_lands_on_the_home_page(released):
    """Does alice, once her server runs, land on "My workbooks" rather than JupyterLab?"""
    hub = released
    session = _server(hub, "alice")
    landing = session.get(f"{hub.url}/user/alice/", timeout=60)
    assert landing.status_code == 200
    assert landing.url == f"{hub.url}/user/alice/atelier/home"
    assert "<h1>My workbooks</h1>" in landing.text
    assert 'lang="en"' in landing.text
    # No code anywhere: no editor, no notebook cell, no script on the page.
    assert "<script" not in landing.text.replace("&lt;script", "")
    assert "<textarea" not in landing.text


def test_a_workbook_not_opened_yet_is_not_started(released):
    """Does a released workbook alice never opened show "Not started", with no due date?"""
    hub = released
    page = _home(hub, _server(hub, "alice"), "alice")
    assert _state(page, "progress-en") == "not_started"
    card = _card(page, "progress-en")
    assert "Slow links" in card and "Not started" in card and "No due date" in card
    assert "Start" in card and "Open in JupyterLab" in card


def test_a_hostile_title_is_shown_as_text(released):
    """Is a workbook title holding HTML shown as the text it is, never as markup?"""
    hub = released
    page = _home(hub, _server(hub, "alice"), "alice")
    assert HOSTILE_TITLE not in page
    assert "<script>alert" not in page and "<b>bold</b>" not in page
    assert "&lt;script&gt;alert(" in page and "&lt;b&gt;bold&lt;/b&gt;" in page
    assert HOSTILE_TITLE in _card(page, "hostile-en")


def test_opening_fetches_the_workbook_into_the_trainees_home(released):
    """Does Start fetch the workbook into alice's home, as alice, and go to the workbook view?"""
    hub = released
    session = _server(hub, "alice")
    page = _home(hub, session, "alice")
    start = re.search(r'<a class="button" href="([^"]+/open/x/progress-en)"', page).group(1)
    opened = session.get(f"{hub.url}{html.unescape(start)}", allow_redirects=False, timeout=60)
    assert opened.status_code == 302, opened.text[:500]
    assert opened.headers["Location"] == "/user/alice/atelier/view/x/progress-en/progress.en.ipynb"
    lab = session.get(f"{hub.url}{html.unescape(start)}?to=lab", allow_redirects=False, timeout=60)
    assert lab.headers["Location"] == "/user/alice/lab/tree/x/progress-en/progress.en.ipynb"
    notebook = hub.root / "home" / hub.account("alice") / "x" / "progress-en" / "progress.en.ipynb"
    assert notebook.stat().st_uid == pwd.getpwnam(hub.account("alice")).pw_uid
    # Another cohort's workbook is not hers to open.
    foreign = session.get(f"{hub.url}/user/alice/atelier/home/open/y/progress-fr", timeout=60)
    assert foreign.status_code == 404
    assert not (hub.root / "home" / hub.account("alice") / "y").exists()
    # Once fetched, the card links straight to the view and to Lab, and is still not started.
    page = _home(hub, session, "alice")
    assert _state(page, "progress-en") == "not_started"
    assert 'href="/user/alice/atelier/view/x/progress-en/progress.en.ipynb"' in page
    assert 'href="/user/alice/lab/tree/x/progress-en/progress.en.ipynb"' in page


def test_answers_saved_make_the_workbook_in_progress_n_of_m(released):
    """With two of the three questions answered, does the card say "2 of 3 answered"?"""
    from atelier.widgets.store import AnswerStore

    hub = released
    folder = hub.root / "home" / hub.account("alice") / "x" / "progress-en"
    store = AnswerStore(folder, notebook="progress.en.ipynb")
    store.save("progress-q1", ["b"], "choice")
    store.save("progress-q3", ["a"], "choice")
    store.save("not-an-item", ["a"], "choice")  # an answer of no item of this workbook
    _as_owner(store.path, hub.account("alice"))
    page = _home(hub, _server(hub, "alice"), "alice")
    assert _state(page, "progress-en") == "in_progress"
    assert "In progress: 2 of 3 answered" in _card(page, "progress-en")
    assert '<progress max="3" value="2"' in page


def test_the_due_date_and_attempts_come_from_the_released_policy(released):
    """With a policy beside the released workbook, does the card show its due date and attempts?"""
    from atelier.grading.course import Course
    from atelier.settings import load_settings

    hub = released
    course = Course.from_settings(load_settings(hub.settings_path), "x")
    policy = course.outbound / "progress-en" / "policy.json"
    policy.write_text(
        json.dumps({"due": "2026-12-01T17:00:00+00:00", "mode": "assessed", "attempts": 2})
    )
    policy.chmod(0o644)
    try:
        page = _home(hub, _server(hub, "alice"), "alice")
        card = _card(page, "progress-en")
        assert "Due 1 Dec 2026, 17:00 UTC" in card
    finally:
        policy.unlink()


def test_a_submission_shows_as_submitted_with_its_time(released):
    """After alice submits (JupyterLab's assignment list), does the card say when?"""
    hub = released
    session = _server(hub, "alice")
    base = f"{hub.url}/user/alice"
    form = {"course_id": "x", "assignment_id": "progress-en"}
    headers = {"X-XSRFToken": _xsrf(session, "alice")}
    done = session.post(f"{base}/assignments/submit", data=form, headers=headers, timeout=120)
    assert done.status_code == 200 and done.json()["success"], done.text[:500]
    page = _home(hub, session, "alice")
    assert _state(page, "progress-en") == "submitted"
    assert re.search(
        r"Submitted on \d{1,2} [A-Z][a-z]{2} 20\d\d, \d\d:\d\d UTC", _card(page, "progress-en")
    )


def test_another_trainee_sees_only_their_own_status(released):
    """Does bob see the workbook as not started, and is alice's home page closed to him?"""
    hub = released
    session = _server(hub, "bob")
    page = _home(hub, session, "bob")
    assert _state(page, "progress-en") == "not_started"
    theirs = session.get(f"{hub.url}/user/alice/atelier/home", allow_redirects=True, timeout=60)
    assert "data-assignment" not in theirs.text
    assert theirs.status_code in (403, 404) or "/hub/" in theirs.url


def test_feedback_shows_as_ready_with_the_score(released):
    """After collect, grade and feedback, does alice's card say feedback is ready (score)?"""
    hub = released
    hub.atelier("collect", "--cohort=x", "progress")
    hub.atelier("grade", "--cohort=x", "--no-progress", "progress")
    hub.atelier("feedback", "--cohort=x", "progress")
    page = _home(hub, _server(hub, "alice"), "alice")
    assert _state(page, "progress-en") == "feedback"
    card = _card(page, "progress-en")
    assert "Feedback ready" in card and "Score: 1 out of 1" in card
    assert "See feedback" in card


def test_a_french_trainee_gets_her_home_page_in_french(released):
    """Does chloe see "Mes cahiers" with the French workbook of her cohort only?"""
    hub = released
    page = _home(hub, _server(hub, "chloe"), "chloe")
    assert 'lang="fr"' in page and "<h1>Mes cahiers</h1>" in page
    assert _state(page, "progress-fr") == "not_started"
    card = _card(page, "progress-fr")
    assert "Liaisons lentes" in card and "Pas commencé" in card and "Commencer" in card
    assert "Ouvrir dans JupyterLab" in card and "Pas de date limite" in card
    assert "progress-en" not in page and "hostile" not in page


def test_a_french_trainee_in_progress_reads_it_in_french(released):
    """With one answer saved, does chloe's card say "En cours : 1 sur 3 répondues"?"""
    from atelier.widgets.store import AnswerStore

    hub = released
    session = _server(hub, "chloe")
    page = _home(hub, session, "chloe")
    start = re.search(r'<a class="button" href="([^"]+/open/y/progress-fr)"', page).group(1)
    assert session.get(f"{hub.url}{start}", allow_redirects=False, timeout=60).status_code == 302
    folder = hub.root / "home" / hub.account("chloe") / "y" / "progress-fr"
    store = AnswerStore(folder, notebook="progress.fr.ipynb")
    store.save("progress-q2", ["a"], "choice")
    _as_owner(store.path, hub.account("chloe"))
    card = _card(_home(hub, session, "chloe"), "progress-fr")
    assert "En cours : 1 sur 3 répondues" in card


# --- the login page -------------------------------------------------------------------------------


def _login_page(hub, **headers):
    import requests

    return _utf8(requests.get(f"{hub.url}/hub/login", headers=headers, timeout=30))


def _utf8(response):
    """The response, its text read as UTF-8 (JupyterHub's pages are; they do not say so)."""
    response.encoding = "utf-8"
    return response


def test_the_login_page_speaks_the_browsers_language(hub):
    """Is the login page French for a French browser and English for an English one?"""
    french = _login_page(hub, **{"Accept-Language": "fr-FR,fr;q=0.9,en;q=0.5"})
    assert french.status_code == 200
    assert 'lang="fr"' in french.text and "Connexion" in french.text
    assert "Mot de passe" in french.text and 'value="Se connecter"' in french.text
    assert "English" in french.text  # the switch to the other language
    english = _login_page(hub, **{"Accept-Language": "en-GB,en;q=0.9"})
    assert 'lang="en"' in english.text and "Password" in english.text
    assert 'value="Sign in"' in english.text and "Français" in english.text
    other = _login_page(hub, **{"Accept-Language": "de-DE,de;q=0.9"})
    assert 'class="atelier-login" lang="en"' in other.text


def test_the_login_pages_switch_changes_and_keeps_the_language(hub):
    """Does the switch show the page in French, and keep it on the next visit and a failed login?"""
    import requests

    session = requests.Session()
    english = {"Accept-Language": "en"}
    first = session.get(f"{hub.url}/hub/login", headers=english, timeout=30)
    switch = re.search(r'<a id="language-switch" href="([^"]+)"', first.text).group(1)
    french = session.get(f"{hub.url}{html.unescape(switch)}", headers=english, timeout=30)
    assert 'class="atelier-login" lang="fr"' in french.text
    again = session.get(f"{hub.url}/hub/login", headers=english, timeout=30)
    assert 'class="atelier-login" lang="fr"' in again.text
    failed = _utf8(
        session.post(
            f"{hub.url}/hub/login",
            data={"username": "alice", "password": "wrong", "_xsrf": session.cookies.get("_xsrf")},
            headers=english,
            timeout=30,
        )
    )
    assert "La connexion a échoué" in failed.text
