"""Submit from the workbook view on a hub without instant grading (as on Kubernetes).

Where the ``atelier-instant`` service cannot run (``grading.instant`` off; a Kubernetes cluster,
whose trainees' servers have no sandbox next to them), Submit still goes through the hardened
exchange, the trainee reads that their feedback comes when their facilitator grades it, and the
facilitator's ``atelier collect``, ``atelier grade`` and ``atelier feedback`` bring it to the same
workbook view. A real hub with real accounts and exchange, on its own (the session hub grades
instantly).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from harness import FIXTURES
from hubs import running_hub
from instant_trainee import Trainee

pytestmark = pytest.mark.server

QUIZ = FIXTURES / "grading" / "01-quiz"
RIGHT_QUIZ = {"square": "def square(x):\n    return x * x", "reflection": "Weekly, on paper too."}
#: What each trainee reads after Submit and until the facilitator has graded.
LATER = {
    "en": "Submitted: your feedback comes when your facilitator grades it.",
    "fr": (
        "Travail rendu : votre retour arrivera quand votre formateur ou formatrice l'aura corrigé."
    ),
}


@pytest.fixture(scope="module")
def hub_without_instant():
    """A hub with grading.instant off; the quiz released to cohorts x (English) and y (French)."""
    with running_hub({"grading": {"instant": False}}) as hub:
        for cohort in ("x", "y"):
            hub.atelier("release", str(QUIZ), f"--cohort={cohort}")
        yield hub


@pytest.mark.parametrize(
    ("username", "cohort", "language"), [("bob", "x", "en"), ("chloe", "y", "fr")]
)
def test_submit_works_and_says_the_facilitator_grades_it(
    hub_without_instant, username, cohort, language
):
    """Without instant grading, is a submission received and said so in the trainee's language?

    And is its feedback shown once the facilitator has graded it and returned it?
    """
    hub = hub_without_instant
    trainee = Trainee(hub, username)
    assignment = f"quiz-{language}"
    trainee.fetch(cohort, assignment)
    trainee.answer(cohort, assignment, f"quiz.{language}.ipynb", RIGHT_QUIZ, {"quiz-q1": "b"})
    done = trainee.submit(assignment)
    assert done.status_code == 200, done.text[:500]
    receipt = done.json()
    assert receipt["state"] == "submitted" and receipt["grading"] == "off", receipt
    assert receipt["message"].startswith(LATER[language]), receipt["message"]
    exchange = Path(hub.settings["grading"]["exchange_root"])
    submitted = exchange / cohort / "inbound" / hub.account(username) / receipt["receipt"]["folder"]
    assert submitted.is_dir()
    waiting = trainee.feedback(assignment).json()
    assert waiting["state"] == "by_facilitator" and waiting["message"] == LATER[language], waiting
    hub.atelier("collect", f"--cohort={cohort}", "quiz")
    hub.atelier("grade", f"--cohort={cohort}", assignment, "--no-progress")
    hub.atelier("feedback", f"--cohort={cohort}", "quiz")
    shown = trainee.wait_feedback(assignment, timeout=60)
    assert shown["score"] == 3.0, shown
