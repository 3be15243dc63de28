"""Instant grading on the real hub: submit from the workbook view, feedback within seconds.

The session ``hub`` runs the ``atelier-instant`` service (cohort x: alice and bob in English;
cohort y: chloe in French). Trainees act through their own servers' endpoints
(``/atelier/submit``, ``/atelier/feedback``) with their browser login, as the workbook view does;
the service grades in real sandboxes, as root, with real Unix accounts and the real exchange.
Every workbook is released under its own id, so each test has its own policy.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests
from harness import FIXTURES, WORKBOOKS
from instant_trainee import Trainee, copy_workbook

pytestmark = pytest.mark.server

QUIZ = FIXTURES / "grading" / "01-quiz"
PS1 = FIXTURES / "autograde" / "ps1.ipynb"
CHEATS = FIXTURES / "autograde" / "cheats"
HOME_LEARNING = WORKBOOKS / "07-home-learning"
#: Cheats that end quickly (no timeout to wait for); each must score 0 as in ``atelier grade``.
HOSTILE = ["excepthook", "sys-modules", "settrace", "recorder"]
RIGHT_QUIZ = {"square": "def square(x):\n    return x * x", "reflection": "Weekly, on paper too."}


def _course(hub, cohort: str):
    from atelier.grading.course import Course
    from atelier.settings import load_settings

    return Course.from_settings(load_settings(hub.settings_path), cohort)


def _grades(hub, cohort: str, assignment: str, account: str) -> dict:
    with _course(hub, cohort).gradebook() as gb:
        submission = gb.find_submission(assignment, account)
        return {g.name: g.score for nb in submission.notebooks for g in nb.grades}


@pytest.fixture(scope="module")
def workbooks(hub):
    """Copies of the fixture quiz and of ps1 under their own ids, each released with a policy."""
    root = Path(tempfile.mkdtemp(prefix="atelier-instant-", dir="/tmp"))
    root.chmod(0o755)
    ps1 = root / "source-ps1"
    ps1.mkdir()
    nb = json.loads(PS1.read_text())
    nb["metadata"]["atelier"] = {"id": "instant-cheats", "language": "en", "title": "Cheats"}
    (ps1 / "instant-cheats.en.ipynb").write_text(json.dumps(nb))
    # Cohort x of the session hub may have French trainees (other modules add them): a French
    # version too, or release refuses the workbook.
    nb["metadata"]["atelier"] = {"id": "instant-cheats", "language": "fr", "title": "Triches"}
    (ps1 / "instant-cheats.fr.ipynb").write_text(json.dumps(nb))
    past = (datetime.now(UTC) - timedelta(hours=1)).isoformat(timespec="seconds")
    releases = {
        "practice": (copy_workbook(QUIZ, root, "11", "practice"), ["--mode=practice"]),
        "once": (copy_workbook(QUIZ, root, "12", "once"), []),
        "twice": (copy_workbook(QUIZ, root, "13", "twice"), ["--attempts=2"]),
        "closed": (copy_workbook(QUIZ, root, "14", "closed"), [f"--due={past}", "--close-at-due"]),
        "held": (copy_workbook(QUIZ, root, "15", "held"), ["--no-instant-feedback"]),
        "cheats": (root / "90-instant-cheats", ["--mode=practice"]),
    }
    ps1.rename(root / "90-instant-cheats")
    for folder, options in releases.values():
        hub.atelier("release", str(folder), "--cohort=x", *options)
    for cohort in ("x", "y"):
        hub.atelier("release", str(HOME_LEARNING), f"--cohort={cohort}", "--mode=practice")
    return root


@pytest.fixture(scope="module")
def alice(hub, workbooks):
    return Trainee(hub, "alice")


@pytest.fixture(scope="module")
def bob(hub, workbooks):
    return Trainee(hub, "bob")


@pytest.fixture(scope="module")
def chloe(hub, workbooks):
    return Trainee(hub, "chloe")


@pytest.mark.parametrize("language", ["en", "fr"])
def test_the_instant_path_scores_every_answer_set_as_atelier_grade_does(
    hub, workbooks, alice, chloe, language
):
    """Submitted from the view, is 07's answer set scored as ``atelier grade`` scores it?

    The score the trainee sees, each item right or wrong, and the gradebook are those of the
    answer set; ``atelier grade --force`` on the same submission then writes the same grades.
    """
    answer_set = json.loads(
        (HOME_LEARNING / "answers" / f"home-learning.{language}.json").read_text()
    )
    trainee, cohort = (alice, "x") if language == "en" else (chloe, "y")
    assignment = f"home-learning-{language}"
    trainee.fetch(cohort, assignment)
    trainee.answer(cohort, assignment, answer_set["notebook"], answer_set["cells"],
                   answer_set["widgets"])  # fmt: skip
    confirm = trainee.submit(assignment, confirm=False)
    assert confirm.status_code == 200, confirm.text
    assert confirm.json()["state"] == "confirm"
    done = trainee.submit(assignment)
    assert done.status_code == 200, done.text
    assert done.json()["receipt"]["received"]
    shown = trainee.wait_feedback(assignment)
    assert shown["score"] == answer_set["expected_score"], shown
    failing = sorted(i["id"] for i in shown["items"] if i["status"] in ("wrong", "partial"))
    assert failing == sorted(answer_set["expected"]["failing_tests"])
    waiting = [i for i in shown["items"] if i["status"] == "waiting"]
    assert waiting and all(i["note"] for i in waiting), "reflections wait for the facilitator"
    account = hub.account(trainee.username)
    instant = _grades(hub, cohort, assignment, account)
    hub.atelier("grade", f"--cohort={cohort}", assignment, "--force", "--no-progress")
    assert _grades(hub, cohort, assignment, account) == instant


def test_a_hostile_submission_is_handled_as_atelier_grade_handles_it(hub, workbooks, bob):
    """Does every cheat fixture score 0 through the instant path, and the honest one full marks?

    ``atelier grade`` run on the last submission afterwards agrees.
    """
    bob.fetch("x", "instant-cheats-en")
    for attempt, name in enumerate([*HOSTILE, "honest"], 1):
        raw = (CHEATS / f"{name}.ipynb").read_bytes()
        bob.answer("x", "instant-cheats-en", "instant-cheats.en.ipynb", {}, raw=raw)
        done = bob.submit("instant-cheats-en")
        assert done.status_code == 200, (name, done.text)
        shown = _attempt(bob, "instant-cheats-en", attempt)
        tests = {i["id"]: i["score"] for i in shown["items"] if i["kind"] == "auto"}
        expected = {"test_squares": 2.0, "test_mean": 1.0} if name == "honest" else {
            "test_squares": 0.0, "test_mean": 0.0}  # fmt: skip
        assert {k: tests.get(k) for k in expected} == expected, (name, shown)
    account = hub.account("bob")
    instant = _grades(hub, "x", "instant-cheats-en", account)
    hub.atelier("grade", "--cohort=x", "instant-cheats-en", "--force", "--no-progress")
    assert _grades(hub, "x", "instant-cheats-en", account) == instant


def _attempt(trainee: Trainee, assignment: str, attempt: int, timeout: float = 180) -> dict:
    """The feedback of the trainee's ``attempt``-th submission, once it is graded."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        shown = trainee.wait_feedback(assignment, states=("graded", "error"), timeout=timeout)
        if shown.get("attempts_used") == attempt:
            return shown
        time.sleep(0.25)
    raise AssertionError(f"{assignment}: attempt {attempt} not graded: {shown}")


def _token(hub, trainee: Trainee, scopes=None) -> str:
    body = {"note": "test"} if scopes is None else {"note": "test", "scopes": scopes}
    made = hub.api(trainee.session, "POST", f"/users/{trainee.username}/tokens", json=body)
    assert made.status_code in (200, 201), made.text
    return made.json()["token"]


def _instant_url(hub) -> str:
    from atelier.grading.instant.service import SERVICE

    return f"{hub.url}/services/{SERVICE}"


def test_a_trainee_cannot_grade_or_read_anothers_work(hub, workbooks, alice, bob, chloe):
    """Can bob have alice's work graded, or read her results, by any request? No.

    The service takes the caller from the hub: bob's token grades bob's work only (a name in the
    request is ignored); a token without the service's scope, or no token, is refused; chloe is
    not a trainee of cohort x. On disk, alice's feedback folder is closed to bob.
    """
    alice.fetch("x", "practice-en")
    alice.answer("x", "practice-en", "practice.en.ipynb", RIGHT_QUIZ, {"quiz-q1": "b"})
    assert alice.submit("practice-en").status_code == 200
    alice.wait_feedback("practice-en")
    url = f"{_instant_url(hub)}/submissions/x/practice-en?wait=1"
    claim = {"student": hub.account("alice"), "user": "alice"}
    as_bob = requests.post(url, headers={"Authorization": f"token {_token(hub, bob)}"},
                           json=claim, timeout=60)  # fmt: skip
    assert as_bob.status_code == 404, as_bob.text  # bob has submitted nothing
    assert "bob" in as_bob.json()["reason"]
    narrow = _token(hub, bob, scopes=["read:users:name!user"])
    refused = requests.post(url, headers={"Authorization": f"token {narrow}"}, timeout=60)
    assert refused.status_code == 403
    assert requests.post(url, timeout=60).status_code == 403
    as_chloe = requests.post(url, headers={"Authorization": f"token {_token(hub, chloe)}"},
                             timeout=60)  # fmt: skip
    assert as_chloe.status_code == 403, as_chloe.text
    # bob's server shows bob's own state, never alice's results.
    shown = bob.feedback("practice-en").json()
    assert shown["state"] == "none", shown
    from atelier.grading.instant.items import results_name

    theirs = _course(hub, "x").feedback_of(hub.account("alice")) / results_name("practice-en")
    assert theirs.exists()
    peek = subprocess.run(["runuser", "-u", hub.account("bob"), "--", "cat", str(theirs)],
                          capture_output=True, text=True)  # fmt: skip
    assert peek.returncode != 0 and "Permission denied" in peek.stderr


def _submit_as_account(hub, username: str, assignment: str, course: str = "x") -> None:
    """Submit with nbgrader's own command as the trainee (one who skips the view)."""
    from harness import BIN

    from atelier.grading.hubconfig import trainee_config_dir
    from atelier.settings import load_settings

    config = trainee_config_dir(load_settings(hub.settings_path))
    home = Path(hub.settings["accounts"]["home_root"]) / hub.account(username)
    done = subprocess.run(
        ["runuser", "-u", hub.account(username), "--", "env", "-i", f"HOME={home}",
         f"PATH={BIN}:/usr/bin:/bin", "LANG=C.UTF-8", f"JUPYTER_CONFIG_PATH={config}",
         str(BIN / "nbgrader"), "submit", assignment,
         f"--course={course}"],
        cwd=home, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr


def _call_as(hub, trainee: Trainee, assignment: str):
    url = f"{_instant_url(hub)}/submissions/x/{assignment}?wait=1"
    return requests.post(url, headers={"Authorization": f"token {_token(hub, trainee)}"},
                         timeout=120)  # fmt: skip


def test_attempts_are_enforced(hub, workbooks, alice):
    """With one attempt, is a second submission refused by the view and ignored by grading?

    Submitted around the view (nbgrader's own command), the second is not collected: the score
    stays that of the first attempt. Between attempts of an assessed workbook, items show right
    or wrong without diagnostics; after the last attempt the diagnostic shows.
    """
    alice.fetch("x", "twice-en")
    alice.answer("x", "twice-en", "twice.en.ipynb", RIGHT_QUIZ, {"quiz-q1": "a"})
    assert alice.submit("twice-en").status_code == 200
    first = alice.wait_feedback("twice-en")
    wrong = [i for i in first["items"] if i["status"] == "wrong"]
    assert [i["id"] for i in wrong] == ["test-q1"] and first["attempts_left"] == 1
    assert not first["diagnostics"] and "diagnostic" not in wrong[0]
    assert alice.submit("twice-en").status_code == 200
    second = _attempt(alice, "twice-en", 2)
    assert second["diagnostics"] and second["items"][1].get("diagnostic"), second
    # One attempt: the view refuses the second; around it, grading ignores it.
    alice.fetch("x", "once-en")
    alice.answer("x", "once-en", "once.en.ipynb", RIGHT_QUIZ, {"quiz-q1": "a"})
    assert alice.submit("once-en").status_code == 200
    once = alice.wait_feedback("once-en")
    assert once["score"] == 2.0 and once["attempts_left"] == 0
    alice.answer("x", "once-en", "once.en.ipynb", RIGHT_QUIZ, {"quiz-q1": "b"})
    refused = alice.submit("once-en")
    assert refused.status_code == 409, refused.text
    _submit_as_account(hub, "alice", "once-en")
    assert _call_as(hub, alice, "once-en").status_code == 200
    assert alice.wait_feedback("once-en")["score"] == 2.0


def test_submission_closes_at_the_due_date(hub, workbooks, bob):
    """Released with --close-at-due and a past due date: is a submission refused, however made?"""
    bob.fetch("x", "closed-en")
    refused = bob.submit("closed-en")
    assert refused.status_code == 409, refused.text
    _submit_as_account(hub, "bob", "closed-en")
    called = _call_as(hub, bob, "closed-en")
    assert called.status_code == 409, called.text
    assert "due date" in called.json()["reason"]
    shown = bob.feedback("closed-en").json()
    assert shown["state"] == "refused" and "due date" in shown["message"]


def test_instant_feedback_off_holds_results_until_released(hub, workbooks, bob):
    """With --no-instant-feedback, are results held until ``atelier feedback`` releases them?"""
    bob.fetch("x", "held-en")
    bob.answer("x", "held-en", "held.en.ipynb", RIGHT_QUIZ, {"quiz-q1": "b"})
    assert bob.submit("held-en").status_code == 200
    held = bob.wait_feedback("held-en", states=("held",))
    assert "score" not in held or held.get("score") is None
    assert "items" not in held
    hub.atelier("feedback", "--cohort=x", "held")
    shown = bob.wait_feedback("held-en")
    assert shown["score"] == 3.0, shown
    assert [i["status"] for i in shown["items"]][-1] == "waiting"


def test_a_server_that_outlives_a_hub_restart_still_grades_at_once(hub, workbooks, bob):
    """After the hub restarts (an upgrade), does a server started before it still get grading?

    Trainees' servers keep running through a hub restart, with the service's address in their
    environment: the service comes back at the same address.
    """
    bob.fetch("x", "practice-en")
    bob.answer("x", "practice-en", "practice.en.ipynb", RIGHT_QUIZ, {"quiz-q1": "b"})
    assert bob.submit("practice-en").status_code == 200
    assert bob.wait_feedback("practice-en")["score"] == 3.0
    hub.restart()
    deadline = time.monotonic() + 120
    while requests.get(f"{_instant_url(hub)}/", timeout=10).status_code != 200:
        assert time.monotonic() < deadline, "the service did not come back"
        time.sleep(0.5)
    bob.answer("x", "practice-en", "practice.en.ipynb", RIGHT_QUIZ, {"quiz-q1": "a"})
    submitted = bob.submit("practice-en")
    assert submitted.status_code == 200, submitted.text
    assert submitted.json()["grading"] == "queued", submitted.json()
    assert _attempt(bob, "practice-en", 2)["score"] == 2.0
