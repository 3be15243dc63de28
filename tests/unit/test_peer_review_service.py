"""The atelier-peer service keeps serving while a gradebook call is in flight.

A real Tornado server of :func:`atelier.grading.peerreview.service.make_app` on a loopback port,
a real peer review record on disk; only what needs a hub is replaced: who is asking (the hub's
OAuth login), the roster's view of them, and the gradebook's process, which here waits until the
test lets it go, standing for a grader process that takes its time.
"""

from __future__ import annotations

import asyncio
import threading
from datetime import timedelta

import pytest
from tornado import httpclient, testing

from atelier.grading.peerreview import review, service, state

USERS = {"fay": ("facilitator", ("c",)), "t1": ("trainee", ("c",))}


class FakePerson:
    """The roster's view of the two people of the test."""

    def __init__(self, settings, username):
        role, cohorts = USERS[username]
        self.username = self.account = username
        self.known, self.language, self.role, self.cohorts = True, "en", role, cohorts

    facilitates = service.Person.facilitates
    trainee_of = service.Person.trainee_of


@pytest.fixture
def peer_server(tmp_path, monkeypatch):
    """(port, gradebook gate) of a running service with cohort c's review of w open."""
    at = state.now()
    record = state.create(
        "c",
        "w",
        {f"t{i}": ("w-en", f"text {i}") for i in range(4)},
        {
            "w-en": {
                "assignment": "w-en",
                "notebook": "w.en",
                "grade_id": "g",
                "points": 2,
                "widget": "r",
                "prompt": "",
                "criteria": [{"text": "a", "points": 2}],
            }
        },
        k=2,
        due=at + timedelta(days=7),
        grace_days=2,
        seed="x",
        anonymous=True,
        how="median",
        at=at,
    )
    state.save(tmp_path, record)
    settings = {
        "hub": {"state_dir": str(tmp_path)},
        "grading": {
            "peer_review": {"grace_days": 2, "review_points": 0, "reviewers": 2, "due_days": 7}
        },
    }
    monkeypatch.setattr(service, "Person", FakePerson)
    monkeypatch.setattr(
        service.PeerHandler,
        "get_current_user",
        lambda self: {"name": self.request.headers["X-Test-User"]},
    )
    monkeypatch.setattr(service.PeerHandler, "xsrf_token", property(lambda self: "token"))
    monkeypatch.setattr(service.PeerHandler, "names", lambda self, cohort: {})
    monkeypatch.setattr(service.Course, "from_settings", staticmethod(lambda s, c: object()))
    gate = {"started": threading.Event(), "release": threading.Event()}

    def slow_gradebook(course, record):
        gate["started"].set()
        # The grader's process, still running until the test says so (never longer than 20 s).
        gate["release"].wait(20)
        return {}

    monkeypatch.setattr(review, "facilitator_scores", slow_gradebook)
    sock, port = testing.bind_unused_port()
    server = service.make_app(settings, "/services/atelier-peer/")
    return sock, port, server, gate


def test_a_reviewers_page_is_served_while_a_gradebook_call_is_in_flight(peer_server):
    """Does a trainee get their page while the facilitator's page waits for the gradebook?

    The service's loop runs in a thread of its own: in a whole run, Playwright's sync API (the
    browser tier) keeps an event loop running in pytest's main thread.
    """
    outcome = {}

    def serve():
        try:
            asyncio.run(both_pages(peer_server))
        except BaseException as exc:  # re-raised in the test's thread below
            outcome["error"] = exc

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    thread.join(60)
    assert not thread.is_alive(), "the pages did not come back within 60 s"
    if "error" in outcome:
        raise outcome["error"]


async def both_pages(peer_server):
    """The facilitator's page holding a gradebook call, then a trainee's page meanwhile."""
    from tornado.httpserver import HTTPServer

    sock, port, app, gate = peer_server
    http = HTTPServer(app)
    http.add_sockets([sock])
    client = httpclient.AsyncHTTPClient()
    base = f"http://127.0.0.1:{port}/services/atelier-peer/"
    try:
        facilitator = asyncio.ensure_future(
            client.fetch(f"{base}cohort/c/w", headers={"X-Test-User": "fay"}, request_timeout=30)
        )
        for _ in range(200):
            if gate["started"].is_set():
                break
            await asyncio.sleep(0.05)
        assert gate["started"].is_set(), "the facilitator's page never called the gradebook"
        # The gradebook call is in flight (it waits for the release): the trainee's home page
        # must come back anyway, well before the call ends.
        trainee = await client.fetch(base, headers={"X-Test-User": "t1"}, request_timeout=5)
        assert trainee.code == 200
        assert "review/" in trainee.body.decode()
        assert not facilitator.done(), "the facilitator's page did not wait for the gradebook"
        gate["release"].set()
        page = await facilitator
        assert page.code == 200
    finally:
        gate["release"].set()
        http.stop()
        client.close()


def test_every_page_handler_is_a_coroutine():
    """Are the handlers coroutines (work sent to the pool), so no page blocks the loop?"""
    import inspect

    for handler in (
        service.HomeHandler,
        service.ReviewHandler,
        service.ResultsHandler,
        service.CohortHandler,
    ):
        for verb in ("get", "post"):
            method = handler.__dict__.get(verb)
            if method is not None:
                assert inspect.iscoroutinefunction(inspect.unwrap(method)), (handler, verb)
