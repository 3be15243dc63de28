"""``atelier-peer``: the hub service of peer review pages, for trainees and facilitators.

Rule: who is asking comes from the hub's login (OAuth, :class:`HubOAuthenticated`), never from the
request; the roster says what they are. Every page is checked against that person:

- ``review/<id>``: the review must be one given to the caller (else 404, the same answer as an
  id that does not exist), while the review is open; it shows the reflection's text (escaped),
  the rubric as choices and a comment box, and no name (anonymous by default);
- ``results/<cohort>/<workbook>``: the caller's own submission's reviews, once the review closed;
- ``cohort/<cohort>/<workbook>``: facilitators of that cohort only (403 for anyone else): peer
  scores beside the gradebook's, accept or override, close, reassign, award marks for reviewing.

Every form carries the hub's XSRF token (a POST without it is refused by JupyterHub's own check).

Every handler is a coroutine whose file and gradebook work runs in the service's thread pool
(:meth:`PeerHandler.off_loop`): a gradebook call is a process of the grader account (about a
second) and a change waits for the cohort's lock, so on the event loop one facilitator's accept
would freeze every reviewer's page; off it, the loop keeps serving the others.
Why a service run as root and not pages of the trainee's own server: a reviewer reads another
trainee's reflection, which the reviewer's account must never be able to read; root copies the
text into the review's record (root's state directory) when the review opens, and this service
shows each person only their part of it.
"""

from __future__ import annotations

import functools
import logging
import os
import re
import secrets
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlparse

from jupyterhub.services.auth import HubOAuthCallbackHandler, HubOAuthenticated
from tornado import web
from tornado.ioloop import IOLoop

from atelier.grading.course import Course, GradingError
from atelier.grading.peerreview import review, state

SERVICE = "atelier-peer"
PACKAGE = "atelier.grading.peerreview"
log = logging.getLogger(SERVICE)
COHORT = r"([a-z0-9][a-z0-9-]{0,29})"
WORKBOOK = r"([a-z0-9][a-z0-9-]{0,63})"
REVIEW_ID = r"([0-9a-f]{16})"
#: Threads doing the pages' file and gradebook work (the event loop only answers requests).
WORKERS = 8


def when(stamp: str | None) -> str:
    """A stored time as people read it: ``2026-12-11 12:36 UTC``."""
    return f"{stamp[:16].replace('T', ' ')} UTC" if stamp else ""


class Person:
    """The caller as the roster says: username, account, language, role and cohorts."""

    def __init__(self, settings: Mapping, username: str):
        from atelier.accounts import AccountPolicy, load_people

        person = load_people(settings["hub"]["state_dir"]).get(username)
        self.username = username
        self.known = person is not None
        self.language = person.language if person else "en"
        self.role = person.role if person else ""
        self.cohorts = tuple(person.cohorts) if person else ()
        self.account = AccountPolicy.from_settings(settings).account(username)

    def facilitates(self, cohort: str) -> bool:
        """Whether the roster makes this person a facilitator of ``cohort``."""
        return self.known and self.role == "facilitator" and cohort in self.cohorts

    def trainee_of(self) -> tuple[str, ...]:
        """The cohorts this person is a trainee of."""
        return self.cohorts if self.known and self.role != "facilitator" else ()


class PeerHandler(HubOAuthenticated, web.RequestHandler):
    """A page of the service: the caller from the hub, the words in their language."""

    @property
    def peer_settings(self) -> Mapping:
        """The validated Atelier settings."""
        return self.settings["atelier_settings"]

    async def off_loop(self, func: Callable[..., Any], *args: Any) -> Any:
        """``func(*args)`` in the service's thread pool, awaited (the module's rule)."""
        call = functools.partial(func, *args)
        return await IOLoop.current().run_in_executor(self.settings["executor"], call)

    @property
    def person(self) -> Person:
        """The roster's view of the caller (after ``@web.authenticated``)."""
        if not hasattr(self, "_person"):
            self._person = Person(self.peer_settings, self.current_user["name"])
        return self._person

    def words(self) -> dict[str, str]:
        """The service's words in the caller's language."""
        from atelier.languages import words

        language = self.person.language if self.current_user else "en"
        return words(PACKAGE, "peer", language)

    def page(self, name: str, **context) -> None:
        """Render a template of this sub-room (escaped) with the common variables."""
        from atelier.pages import render

        prefix = self.settings["prefix"]
        token = self.xsrf_token
        self.set_header(
            "Content-Security-Policy",
            "default-src 'none'; style-src 'unsafe-inline'; "
            "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        )
        self.set_header("Cache-Control", "no-store")
        self.finish(
            render(
                PACKAGE,
                name,
                text=self.words(),
                prefix=prefix,
                language=self.person.language,
                when=when,
                hub_home="/hub/home",
                xsrf=token.decode() if isinstance(token, bytes) else token,
                **context,
            )
        )

    def refuse(self, status: int, key: str) -> None:
        """A refusal as a page in the caller's language (never a traceback)."""
        self.set_status(status)
        self.page("peer-message.html.j2", message=self.words()[key])

    def write_error(self, status_code: int, **kwargs) -> None:
        """Errors (403 of the hub's checks, 404, 500) as short text, never a traceback."""
        self.set_header("Content-Type", "text/plain; charset=utf-8")
        self.finish(f"{status_code}: {self._reason}\n")

    def record(self, cohort: str, workbook: str):
        """The peer review's record advanced to now, or ``None``."""
        try:
            return review.current(self.peer_settings, cohort, workbook)
        except GradingError:
            return None

    def names(self, cohort: str) -> dict[str, str]:
        """Account -> full name of a cohort's trainees (shown only when not anonymous)."""
        from atelier.grading.courses.people import cohort_people

        trainees, _ = cohort_people(self.peer_settings, cohort)
        return {t.account: t.full_name or t.username for t in trainees}


class HomeHandler(PeerHandler):
    """``/``: my reviews to write, my results, and for facilitators their cohorts' reviews."""

    @web.authenticated
    async def get(self):
        """List what the caller may open, nothing else."""
        to_write, results, cohorts = await self.off_loop(self.listing)
        self.page("peer-home.html.j2", to_write=to_write, results=results, cohorts=cohorts)

    def listing(self) -> tuple[list, list, list]:
        """(reviews to write, results, the facilitator's reviews): file work, off the loop."""
        state_dir = review.records_dir(self.peer_settings)
        to_write, results, cohorts = [], [], []
        for cohort in self.person.trainee_of():
            for workbook in state.reviews_of_cohort(state_dir, cohort):
                record = self.record(cohort, workbook)
                if record is None:
                    continue
                mine = state.to_do(record, self.person.account)
                for number, (rid, each) in enumerate(mine, 1):
                    to_write.append(
                        {
                            "id": rid,
                            "workbook": workbook,
                            "number": number,
                            "done": each["state"] == "done",
                            "due": record["due"],
                        }
                    )
                if state.submission_of(record, self.person.account):
                    results.append(
                        {
                            "cohort": cohort,
                            "workbook": workbook,
                            "closed": state.is_closed(record),
                            "due": record["due"],
                        }
                    )
        for cohort in self.person.cohorts:
            if self.person.facilitates(cohort):
                for workbook in state.reviews_of_cohort(state_dir, cohort):
                    cohorts.append({"cohort": cohort, "workbook": workbook})
        return to_write, results, cohorts


class ReviewHandler(PeerHandler):
    """``review/<id>``: one review given to the caller, to write or change while open."""

    def find(self, rid: str):
        """``(record, review)`` if ``rid`` was given to the caller, else ``(None, None)``."""
        state_dir = review.records_dir(self.peer_settings)
        for cohort in self.person.trainee_of():
            for workbook in state.reviews_of_cohort(state_dir, cohort):
                record = self.record(cohort, workbook)
                each = record and record["reviews"].get(rid)
                if each and each["reviewer"] == self.person.account:
                    return record, each
        return None, None

    def show(self, record, rid: str, each: dict, problem: str = "", saved: bool = False) -> None:
        """The review page: the reflection as text, the rubric as choices, the comment box."""
        submission = record["submissions"][each["submission"]]
        rubric = state.rubric_of(record, each["submission"])
        criteria = [
            {
                **c,
                "choices": state.choices(c["points"]),
                "chosen": each["scores"][i] if i < len(each["scores"]) else None,
            }
            for i, c in enumerate(rubric["criteria"])
        ]
        author = (
            ""
            if record["anonymous"]
            else self.names(record["cohort"]).get(submission["author"], "")
        )
        self.page(
            "peer-review.html.j2",
            rid=rid,
            review=each,
            record=record,
            text_of=submission,
            prompt=rubric["prompt"],
            criteria=criteria,
            author=author,
            problem=problem,
            saved=saved,
        )

    @web.authenticated
    async def get(self, rid: str):
        """The review, or 404 for anyone it was not given to."""
        record, each = await self.off_loop(self.find, rid)
        if record is None:
            return self.refuse(404, "not_found")
        if state.is_closed(record) or each["state"] == "missed":
            return self.refuse(409, "closed")
        self.show(record, rid, each)

    @web.authenticated
    async def post(self, rid: str):
        """Save the review (scores and comment) for the caller only."""
        record, each = await self.off_loop(self.find, rid)
        if record is None:
            return self.refuse(404, "not_found")
        count = len(state.rubric_of(record, each["submission"])["criteria"])
        scores = [self.get_body_argument(f"score-{i}", None) for i in range(count)]
        comment = self.get_body_argument("comment", "")
        try:
            rec, saved = await self.off_loop(self.save, record, rid, scores, comment)
        except GradingError as error:
            key = str(error) if str(error) in ("closed", "incomplete", "too_long") else "invalid"
            if key == "closed":
                return self.refuse(409, "closed")
            self.set_status(400)
            each = {
                **each,
                "scores": [s for s in scores if s not in (None, "")],
                "comment": comment[: state.MAX_COMMENT],
            }
            return self.show(record, rid, each, problem=self.words()[key])
        except PermissionError:
            return self.refuse(404, "not_found")
        self.show(rec, rid, saved, saved=True)

    def save(self, record, rid: str, scores: list, comment: str) -> tuple[dict, dict]:
        """``(record, review)`` after saving the caller's review, under the cohort's lock."""
        with review.changing(self.peer_settings, record["cohort"], record["workbook"]) as rec:
            saved = state.record_review(rec, rid, self.person.account, scores, comment, state.now())
        return rec, saved


class ResultsHandler(PeerHandler):
    """``results/<cohort>/<workbook>``: the reviews of the caller's own reflection, once closed."""

    @web.authenticated
    async def get(self, cohort: str, workbook: str):
        """The author's reviews, anonymous; before the close, a sentence saying when."""
        if cohort not in self.person.trainee_of():
            return self.refuse(404, "not_found")
        record = await self.off_loop(self.record, cohort, workbook)
        if record is None or state.submission_of(record, self.person.account) is None:
            return self.refuse(404, "not_found")
        mine = state.received(record, self.person.account)
        if mine is None:
            return self.refuse(409, "not_closed")
        names = {} if record["anonymous"] else self.names(cohort)
        for each in mine["reviews"]:
            each["name"] = names.get(each.pop("reviewer"), "")
        self.page("peer-results.html.j2", workbook=workbook, mine=mine, record=record)


class CohortHandler(PeerHandler):
    """``cohort/<cohort>/<workbook>``: the facilitator's page of one peer review."""

    def allowed(self, cohort: str) -> bool:
        """Only the roster's facilitators of ``cohort``."""
        if not self.person.facilitates(cohort):
            self.refuse(403, "facilitators_only")
            return False
        return True

    def scores(self, cohort: str, workbook: str) -> tuple[dict | None, dict]:
        """``(record, the gradebook's scores)``: the lock and the grader's process, off the loop."""
        record = self.record(cohort, workbook)
        if record is None:
            return None, {}
        course = Course.from_settings(self.peer_settings, cohort)
        try:
            return record, review.facilitator_scores(course, record)
        except GradingError as error:
            log.error("%s %s: %s", cohort, workbook, error)
            return record, {}

    async def show(self, cohort: str, workbook: str, notice: str = "") -> None:
        """Every submission: peer scores, the gradebook's score, the decision; the reviewers."""
        record, own = await self.off_loop(self.scores, cohort, workbook)
        if record is None:
            return self.refuse(404, "not_found")
        names = await self.off_loop(self.names, cohort)
        counts = state.reviewer_counts(record)
        points = review.options(self.peer_settings)["review_points"]
        self.page(
            "peer-cohort.html.j2",
            record=record,
            rows=state.rows(record),
            own=own,
            names=names,
            counts=counts,
            closed=state.is_closed(record),
            notice=notice,
            review_points=points,
            cohort=cohort,
            workbook=workbook,
        )

    @web.authenticated
    async def get(self, cohort: str, workbook: str):
        """The page, for the cohort's facilitators."""
        if self.allowed(cohort):
            await self.show(cohort, workbook)

    @web.authenticated
    async def post(self, cohort: str, workbook: str):
        """Accept, override, close, reassign or award, then the page again with a notice."""
        if not self.allowed(cohort):
            return
        words = self.words()
        action = self.get_body_argument("action", "")
        arguments = {
            "submission": self.get_body_argument("submission", ""),
            "score": self.get_body_argument("score", ""),
        }
        try:
            notice = await self.off_loop(self.act, cohort, workbook, action, arguments)
        except (GradingError, ValueError) as error:
            self.set_status(400)
            notice = f"{words['failed']} {error}"
        await self.show(cohort, workbook, notice)

    def act(self, cohort: str, workbook: str, action: str, arguments: Mapping) -> str:
        """Do the facilitator's ``action`` (gradebook and lock, off the loop); the notice."""
        words = self.words()
        course = Course.from_settings(self.peer_settings, cohort)
        who = self.current_user["name"]
        if action in ("accept", "override"):
            sid = arguments["submission"]
            raw = arguments["score"].replace(",", ".").strip()
            score = float(raw) if action == "override" and raw else None
            review.decide(self.peer_settings, course, workbook, sid, action, score, who)
            notice = words[f"done_{action}"]
        elif action == "close":
            with review.changing(self.peer_settings, cohort, workbook) as record:
                state.close(record, state.now())
            notice = words["done_close"]
        elif action == "reassign":
            from datetime import timedelta

            days = max(1, review.options(self.peer_settings)["grace_days"])
            at = state.now()
            with review.changing(self.peer_settings, cohort, workbook, at) as record:
                state.reassign(record, at, at + timedelta(days=days))
            notice = words["done_reassign"]
        elif action == "award":
            review.award_marks(self.peer_settings, course, workbook, who)
            notice = words["done_award"]
        else:
            raise GradingError(words["invalid"])
        return notice


def make_app(settings: Mapping, prefix: str) -> web.Application:
    """The Tornado application under the service's prefix."""
    prefix = "/" + prefix.strip("/") + "/"
    return web.Application(
        [
            (rf"{re.escape(prefix)}oauth_callback", HubOAuthCallbackHandler),
            (rf"{re.escape(prefix)}review/{REVIEW_ID}", ReviewHandler),
            (rf"{re.escape(prefix)}results/{COHORT}/{WORKBOOK}", ResultsHandler),
            (rf"{re.escape(prefix)}cohort/{COHORT}/{WORKBOOK}", CohortHandler),
            (rf"{re.escape(prefix)}?", HomeHandler),
        ],
        atelier_settings=settings,
        prefix=prefix,
        executor=ThreadPoolExecutor(WORKERS, thread_name_prefix=SERVICE),
        cookie_secret=secrets.token_bytes(32),
        # Tornado calls check_xsrf_cookie on every POST; HubOAuthenticated makes it the hub's.
        xsrf_cookies=True,
    )


def main() -> None:
    """``python -m atelier.grading.peerreview.service``: run as the hub starts it (root)."""
    import asyncio
    import signal

    from atelier.settings import DEFAULT_SETTINGS_PATH, load_settings

    logging.basicConfig(level=logging.INFO, format="[atelier-peer %(levelname)s] %(message)s")
    settings = load_settings(os.environ.get("ATELIER_SETTINGS") or DEFAULT_SETTINGS_PATH)
    os.umask(0o077)
    url = urlparse(os.environ.get("JUPYTERHUB_SERVICE_URL", "http://127.0.0.1:0"))
    prefix = os.environ.get("JUPYTERHUB_SERVICE_PREFIX", f"/services/{SERVICE}/")

    async def serve():
        make_app(settings, prefix).listen(url.port, url.hostname or "127.0.0.1")
        log.info("peer review pages at %s", url.geturl())
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()

    asyncio.run(serve())


if __name__ == "__main__":
    main()


def hub_service(settings: Mapping, groups: list[str]) -> tuple[dict, dict]:
    """The ``atelier-peer`` service (root, like ``atelier-instant``) and the role opening it.

    ``groups``: the hub groups allowed in (every cohort's trainees and facilitators); what each
    may see inside is the service's own check (the module's rule).
    """
    from atelier.grading.hubconfig import root_service
    from atelier.processes.ports import free_port

    port = settings["grading"].get("peer_review", {}).get("port", 0) or free_port()
    service = root_service(
        SERVICE,
        "atelier.grading.peerreview.service",
        port,
        display=True,
        oauth_no_confirm=True,
    )
    return service, hub_role(groups)


def hub_role(groups: list[str]) -> dict:
    """The role letting ``groups`` open the service (one machine's hub and a cluster's alike)."""
    return {
        "name": f"{SERVICE}-user",
        "description": "Open the peer review pages (each person sees only their own part).",
        "scopes": [f"access:services!service={SERVICE}"],
        "groups": sorted(groups),
    }
