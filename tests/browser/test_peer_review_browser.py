"""Peer review in Chromium: four trainees review each other's reflection, the facilitator decides.

A hub of its own; the trainees' submissions go through the real exchange with nbgrader's own
commands (``tests/peer_cohort.py``), not through JupyterLab, which other browser tests cover, and
``atelier grade`` grades them. Then, in the browser: three trainees write their reviews (dan
misses his), the facilitator closes the review from her page, an author reads her reviews, the
facilitator accepts one peer score, overrides another and awards the marks for reviewing; the
gradebook holds the result.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from accessibility import serious_violations
from harness import REPO
from hubs import running_hub
from peer_cohort import REFLECTIONS, ROSTER, SERVICE, author_of, record, reviews_by
from peer_cohort import submit_reflections as submit

pytestmark = pytest.mark.browser
STEP_TIMEOUT = 60_000


@pytest.fixture(scope="module")
def artifacts() -> Path:
    """``$ATELIER_TEST_ARTIFACTS/peer-review/`` (default ``tests/artifacts/``)."""
    root = Path(os.environ.get("ATELIER_TEST_ARTIFACTS") or REPO / "tests" / "artifacts")
    folder = root / "peer-review"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def peer_hub(test_database):
    """Cohort p's reflections submitted, collected, graded and opened for peer review."""
    settings = {
        "grading": {"instant": False, "peer_review": {"review_points": 1}},
        **test_database(),
    }
    with running_hub(settings, roster=ROSTER) as hub:
        submit(hub)
        hub.atelier("grade", "--cohort=p", "reflect")
        hub.atelier("peer", "open", "--cohort=p", "reflect", "--reviewers=2", "--seed=b")
        yield hub


def person(browser, hub, username: str, locale: str = "en-GB"):
    """A browser context logged in as ``username`` at the service's page."""
    # bypass_csp: axe-core is injected as a script, which the pages' policy refuses.
    context = browser.new_context(locale=locale, bypass_csp=True)
    context.set_default_timeout(STEP_TIMEOUT)
    page = context.new_page()
    page.goto(f"{hub.url}/hub/login?next={SERVICE}")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", hub.passwords[username])
    page.click("[type=submit]")
    page.wait_for_url(f"**{SERVICE}")
    return page


def test_peer_review_from_reviews_to_the_gradebook(browser, peer_hub, artifacts):
    """Can a cohort review, the author read it and the facilitator accept and override it?"""
    hub = peer_hub
    rec = record(hub)
    scores = {"ana": ("2", "1"), "ben": ("1", "0"), "chi": ("2", "0")}
    for username, (first, second) in scores.items():
        page = person(browser, hub, username, "fr-FR" if username == "chi" else "en-GB")
        links = page.locator("#to-write a")
        assert links.count() == 2
        for index in range(2):
            page.locator("#to-write a").nth(index).click()
            heading = "Évaluer une réflexion" if username == "chi" else "Review a reflection"
            assert page.locator("h1").inner_text() == heading
            page.check(f"input[name=score-0][value='{first}']")
            page.check(f"input[name=score-1][value='{second}']")
            page.fill("#comment", f"Review by someone, number {index + 1}.")
            page.click("button[type=submit]")
            page.locator("#saved").wait_for()
            assert not serious_violations(page, "main")
            page.goto(f"{hub.url}{SERVICE}")
        page.screenshot(path=artifacts / f"{username}-home.png")
        page.context.close()

    fay = person(browser, hub, "fay")
    fay.goto(f"{hub.url}{SERVICE}cohort/p/reflect")
    fay.click("button[value=close]")
    fay.locator("#notice").wait_for()
    late = fay.locator("#reviewers tr.late")
    assert late.count() == 1 and "Dan Kariuki" in late.inner_text()
    fay.screenshot(path=artifacts / "facilitator-closed.png")

    # ana reads the reviews of her reflection: the scores her two reviewers gave, no name.
    ana_reviewers = [
        u for u in scores for _, r in reviews_by(hub, u, rec) if author_of(hub, rec, r) == "ana"
    ]
    ana = person(browser, hub, "ana")
    ana.click("#results a")
    reviews = ana.locator("section.review")
    assert reviews.count() == len(ana_reviewers)
    page_text = ana.locator("main").inner_text()
    for name in ("Ben Osei", "Chioma", "Dan Kariuki", "Fay Mbeki"):
        assert name not in page_text
    ana.screenshot(path=artifacts / "author-results.png")
    ana.context.close()

    # The facilitator accepts the peer score of ana's reflection and overrides ben's.
    expected_ana = _median([sum(int(s) for s in scores[u]) for u in ana_reviewers])
    row = fay.locator("tr[data-author$='-ana']")
    row.locator("button[value=accept]").click()
    fay.locator("#notice").wait_for()
    assert "gradebook" in fay.locator("#notice").inner_text()
    row = fay.locator("tr[data-author$='-ben']")
    row.locator("input[name=score]").fill("2.5")
    row.locator("button[value=override]").click()
    fay.locator("#notice").wait_for()
    fay.click("button[value=award]")
    fay.locator("#notice").wait_for()
    assert "Not done" not in fay.locator("#notice").inner_text()
    assert (
        fay.locator("tr[data-author$='-ana'] td.own")
        .inner_text()
        .startswith(str(expected_ana).removesuffix(".0"))
    )
    fay.screenshot(path=artifacts / "facilitator-decided.png")
    fay.context.close()

    from atelier.grading.course import Course
    from atelier.settings import load_settings

    course = Course.from_settings(load_settings(hub.settings_path), "p")
    with course.gradebook() as gb:
        grade = gb.find_grade("reflect-answer", "reflect.en", "reflect-en", hub.account("ana"))
        assert grade.manual_score == expected_ana and not grade.needs_manual_grade
        grade = gb.find_grade("reflect-answer", "reflect.en", "reflect-en", hub.account("ben"))
        assert grade.manual_score == 2.5
        assert grade.extra_credit == 1, "ben reviewed all his: his mark for reviewing"
        grade = gb.find_grade("reflect-answer", "reflect.en", "reflect-en", hub.account("dan"))
        assert not grade.extra_credit, "dan missed his reviews: no mark"
    assert set(REFLECTIONS) == {"ana", "ben", "chi", "dan"}


def _median(values: list[int]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return float(ordered[middle])
    return (ordered[middle - 1] + ordered[middle]) / 2
