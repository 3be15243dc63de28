"""The atelier-peer service on a real hub: who may see which review, and nothing more.

One cohort (``p``: four trainees, a facilitator) wrote reflections through the real exchange;
``atelier peer open`` gave each submission to two reviewers. Every request goes through the hub's
proxy with a browser-like session (the hub's login form, then the service's OAuth). The tests run
in file order on one hub.
"""

from __future__ import annotations

import re

import pytest
import requests
from hubs import running_hub
from peer_cohort import (
    REFLECTIONS,
    ROSTER,
    SERVICE,
    author_of,
    record,
    reviews_by,
    submit_reflections,
)

pytestmark = pytest.mark.server
NAMES = ("Ana Lopes", "Ben Osei", "Chioma", "Dan Kariuki", "Quinn", "Fay Mbeki")


@pytest.fixture(scope="module")
def hub(test_database):
    """A hub with cohorts p and q, reflections of p collected and opened for peer review."""
    settings = {"grading": {"instant": False}, **test_database()}
    with running_hub(settings, roster=ROSTER) as instance:
        submit_reflections(instance)
        opened = instance.atelier(
            "peer",
            "open",
            "--cohort=p",
            "reflect",
            "--reviewers=2",
            "--seed=s1",
            "--due=2099-01-01",
        )
        assert "4 submissions" in opened.stdout
        instance.sessions = {}
        yield instance


def session(hub, username: str) -> requests.Session:
    if username not in hub.sessions:
        hub.sessions[username] = hub.login(username)
    return hub.sessions[username]


def get(hub, username: str, path: str) -> requests.Response:
    return session(hub, username).get(f"{hub.url}{SERVICE}{path}", timeout=60)


def xsrf_of(page: requests.Response) -> str:
    return re.search(r'name="_xsrf" value="([^"]+)"', page.text).group(1)


def test_each_trainee_is_given_two_reviews_none_their_own(hub):
    """Does the record give each trainee two submissions of others, and the home page list them?"""
    rec = record(hub)
    for username in REFLECTIONS:
        mine = reviews_by(hub, username, rec)
        assert len(mine) == 2
        assert username not in {author_of(hub, rec, r) for _, r in mine}
        home = get(hub, username, "")
        assert home.status_code == 200
        listed = set(re.findall(r"review/([0-9a-f]{16})", home.text))
        assert listed == {rid for rid, _ in mine}


def test_a_reviewer_sees_the_reflection_as_text_and_no_name(hub):
    """Does a review page show the author's text escaped, the rubric, and nobody's name?"""
    rec = record(hub)
    reviewer = next(
        u
        for u in REFLECTIONS
        if "chi" in {author_of(hub, rec, r) for _, r in reviews_by(hub, u, rec)}
    )
    rid = next(rid for rid, r in reviews_by(hub, reviewer, rec) if author_of(hub, rec, r) == "chi")
    page = get(hub, reviewer, f"review/{rid}")
    assert page.status_code == 200
    assert "&lt;script&gt;alert(" in page.text and "<script>" not in page.text
    assert 'name="score-0"' in page.text and 'name="score-1"' in page.text
    for name in NAMES:
        assert name not in page.text
    assert hub.prefix not in page.text, "an account name is on the page"


def test_nobody_opens_a_review_not_given_to_them(hub):
    """Do another's review id, a made-up id, another cohort and a facilitator all get nothing?"""
    rec = record(hub)
    ana_ids = {rid for rid, _ in reviews_by(hub, "ana", rec)}
    other = next(rid for rid, r in sorted(rec["reviews"].items()) if rid not in ana_ids)
    text = REFLECTIONS[author_of(hub, rec, rec["reviews"][other])]
    for who, rid in (
        ("ana", other),
        ("ana", "0123456789abcdef"),
        ("quinn", other),
        ("fay", other),
        ("fred", other),
    ):
        page = get(hub, who, f"review/{rid}")
        assert page.status_code == 404, (who, rid)
        assert text.split()[1] not in page.text


def test_an_anonymous_request_is_sent_to_the_login_page(hub):
    """Does a request with no hub login get no review, only the way to log in?"""
    rid = next(iter(record(hub)["reviews"]))
    page = requests.get(f"{hub.url}{SERVICE}review/{rid}", timeout=60, allow_redirects=False)
    assert page.status_code == 302 and "/hub/api/oauth2/authorize" in page.headers["Location"]
    followed = requests.get(f"{hub.url}{SERVICE}review/{rid}", timeout=60)
    assert "/hub/login" in followed.url
    assert not any(t.split()[1] in followed.text for t in REFLECTIONS.values())


def test_a_post_without_the_xsrf_token_is_refused(hub):
    """Is a forged form (no token, or a wrong one) refused and nothing saved?"""
    rid, _ = reviews_by(hub, "ben", record(hub))[0]
    url = f"{hub.url}{SERVICE}review/{rid}"
    form = {"score-0": "2", "score-1": "1", "comment": "forged"}
    for extra in ({}, {"_xsrf": "2|00000000|00000000000000000000000000000000|1700000000"}):
        done = session(hub, "ben").post(url, data={**form, **extra}, timeout=60)
        assert done.status_code == 403
    assert record(hub)["reviews"][rid]["state"] == "pending"


def test_a_reviewer_saves_their_review_and_only_theirs(hub):
    """Is a complete review saved; an incomplete one refused; another's id a 404?"""
    rec = record(hub)
    rid, _ = reviews_by(hub, "ben", rec)[0]
    page = get(hub, "ben", f"review/{rid}")
    url = f"{hub.url}{SERVICE}review/{rid}"
    token = xsrf_of(page)
    half = session(hub, "ben").post(url, data={"_xsrf": token, "score-0": "2"}, timeout=60)
    assert half.status_code == 400 and "every line of the rubric" in half.text
    done = session(hub, "ben").post(
        url,
        data={"_xsrf": token, "score-0": "2", "score-1": "1", "comment": "Clear <b>plan</b>."},
        timeout=60,
    )
    assert done.status_code == 200 and 'id="saved"' in done.text
    saved = record(hub)["reviews"][rid]
    assert (saved["state"], saved["scores"], saved["comment"]) == (
        "done",
        [2, 1],
        "Clear <b>plan</b>.",
    )
    ana_rid, _ = reviews_by(hub, "ana", rec)[0]
    stolen = session(hub, "ben").post(
        f"{hub.url}{SERVICE}review/{ana_rid}",
        data={"_xsrf": token, "score-0": "0", "score-1": "0"},
        timeout=60,
    )
    assert stolen.status_code == 404
    assert record(hub)["reviews"][ana_rid]["state"] == "pending"


def test_results_wait_for_the_close_and_are_the_authors_own(hub):
    """Before the close nobody sees results; after it each author sees theirs, anonymous."""
    assert get(hub, "ana", "results/p/reflect").status_code == 409
    assert get(hub, "quinn", "results/p/reflect").status_code == 404
    assert get(hub, "fay", "results/p/reflect").status_code == 404
    hub.atelier("peer", "close", "--cohort=p", "reflect")
    rec = record(hub)
    rid = reviews_by(hub, "ben", rec)[0][0]
    author = author_of(hub, rec, rec["reviews"][rid])
    page = get(hub, author, "results/p/reflect")
    assert page.status_code == 200
    assert "Clear &lt;b&gt;plan&lt;/b&gt;." in page.text
    for name in NAMES:
        assert name not in page.text
    assert hub.prefix not in page.text
    # Closed: a review can no longer be written.
    late = reviews_by(hub, "dan", rec)[0][0]
    assert get(hub, "dan", f"review/{late}").status_code == 409


def test_only_the_cohorts_facilitators_open_its_page(hub):
    """Do a trainee and another cohort's facilitator get 403, and the facilitator the table?"""
    assert get(hub, "ana", "cohort/p/reflect").status_code == 403
    assert get(hub, "fred", "cohort/p/reflect").status_code == 403
    page = get(hub, "fay", "cohort/p/reflect")
    assert page.status_code == 200
    assert "Ana Lopes" in page.text and page.text.count("data-author=") == 4
    form = {"_xsrf": xsrf_of(page), "action": "close"}
    get(hub, "ana", "")  # ana's own token, as a page of the service sets it in her cookie
    token = session(hub, "ana").cookies.get("_xsrf", path=SERVICE)
    assert token
    trainee = session(hub, "ana").post(
        f"{hub.url}{SERVICE}cohort/p/reflect", data={**form, "_xsrf": token}, timeout=60
    )
    assert trainee.status_code == 403
    refused = session(hub, "fred").post(
        f"{hub.url}{SERVICE}cohort/p/reflect", data=form, timeout=60
    )
    assert refused.status_code == 403


def test_status_reports_who_missed_the_review(hub):
    """Does ``atelier peer status`` name the reviewers who did not review by the close?"""
    status = hub.atelier("peer", "status", "--cohort=p", "reflect").stdout
    assert "closed" in status
    assert f"missed: {hub.account('ana')}" in status
    assert f"{hub.account('ben')}: 1 done" in status
