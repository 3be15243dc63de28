"""``atelier-instant``: the hub service that grades a trainee's submission as soon as it arrives.

Rule: who is asking comes from the hub, never from the request: the caller's token (the trainee
server's own API token, whose scopes include ``access:services!service=atelier-instant``) is
turned into a user by the hub's API (:class:`jupyterhub.services.auth.HubAuth`), and that user may
only have their own newest submission graded, in a cohort the roster says they are a trainee of.
For one request the service does, in order, what the facilitators' verbs do for a cohort, with
their code:

1. collect that trainee's submissions of that assignment with collect's checks
   (:func:`atelier.grading.exchange.collect.collect_trainee`), under the workbook's policy
   (attempts counted, closed at the due date: :func:`~atelier.grading.exchange.policy.limits_for`);
2. grade it in a warm grading process of the course (:mod:`atelier.grading.instant.worker`:
   ``atelier grade``'s engine, sandboxes already running, nbgrader loaded), which also runs
   nbgrader's ``generate_feedback`` and reads the per-item results;
3. release what the policy allows into the trainee's own feedback folder: nbgrader's HTML
   feedback (:func:`~atelier.grading.exchange.feedback.return_feedback`, as ``atelier feedback``)
   and the per-item results (:func:`atelier.grading.instant.items.release_results`); with
   instant feedback off, the results stay in the course until ``atelier feedback`` releases them.

Work waits in one bounded queue per course; a grading process takes everything waiting as one
batch (its sandboxes run the batch's notebooks in parallel), so a deadline burst costs one
nbgrader set-up per batch, not per trainee. A full queue answers 503 with ``Retry-After``. The
service runs as root (sandboxes need it); its grading processes give root up for the course's
grader account before nbgrader touches the course, as ``atelier grade``'s do.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from urllib.parse import urlparse

from tornado import web

from atelier.grading.instant.rooms import CourseRoom, Job, Worker

SERVICE = "atelier-instant"
log = logging.getLogger(SERVICE)


class Refused(Exception):
    """A request the service answers with an HTTP error and a message."""

    def __init__(self, status: int, message: str, **extra):
        super().__init__(message)
        self.status, self.extra = status, extra


class InstantGrader:
    """The service's work, apart from HTTP: rooms per course, and one request end to end."""

    def __init__(self, settings: Mapping, executor: ThreadPoolExecutor):
        from atelier.grading.exchange.collect import Limits

        self.settings = settings
        self.executor = executor
        self.limits = Limits.from_settings(settings)
        self.rooms: dict[str, CourseRoom] = {}
        self.workers: dict[str, list[Worker]] = {}
        self._roster = (None, {})

    # -- start-up (before the event loop: forking is safe only without threads) ----------------
    def start_workers(self, cohorts: list[str]) -> None:
        """Prepare each course and fork its warm grading processes, then wait until they run."""
        from traitlets.config import Config

        from atelier.grading.autograde.account import grading_account
        from atelier.grading.autograde.processes import load_before_fork
        from atelier.grading.course import Course
        from atelier.grading.courses.folders import check_log, ensure
        from atelier.grading.exchange.collect import recover_copies
        from atelier.variants import CohortVariants

        load_before_fork()
        grading = self.settings["grading"]
        per_course = grading.get("instant_processes", 1)
        slots = grading.get("instant_sandboxes", 0) or os.cpu_count() or 1
        config = Config()
        if grading.get("sandbox_scratch_mb"):
            config.SandboxLimits.scratch_mb = grading["sandbox_scratch_mb"]
        hidden = [str(self.settings["hub"]["state_dir"]), str(grading["courses_root"]),
                  str(grading["exchange_root"])]  # fmt: skip
        for cohort in cohorts:
            try:
                course = Course.from_settings(self.settings, cohort)
                ensure(course)
                check_log(course)
                recover_copies(course)
                run_as = grading_account(course.root, course.grader_account)
                # Read as root now: the grading processes give root up before they grade.
                variants = CohortVariants.load(
                    self.settings["hub"]["state_dir"], cohort, course.account_prefix
                )
                self.workers[cohort] = [
                    Worker(course, run_as, max(1, slots // per_course), config, hidden, variants)
                    for _ in range(per_course)
                ]
            except Exception as error:
                # One broken course must not keep the other cohorts from instant grading.
                log.error("cohort %s: no instant grading (%s)", cohort, error)
        for cohort, workers in list(self.workers.items()):
            try:
                for worker in workers:
                    worker.wait_ready()
            except Exception as error:
                log.error("cohort %s: %s", cohort, error)
                for worker in workers:
                    worker.stop()
                del self.workers[cohort]

    def open_rooms(self) -> None:
        """A room per course with running grading processes (inside the event loop)."""
        size = self.settings["grading"].get("instant_queue", 400)
        for cohort, workers in self.workers.items():
            self.rooms[cohort] = CourseRoom(workers[0].course, workers, size)
            self.rooms[cohort].return_html = self.return_html

    def stop(self) -> None:
        """End every grading process."""
        for workers in self.workers.values():
            for worker in workers:
                worker.stop()

    # -- who is asking ----------------------------------------------------------------------------
    def trainee(self, username: str, cohort: str):
        """The roster's trainee ``username`` of ``cohort``, or :class:`Refused` (403)."""
        from atelier.accounts import load_people
        from atelier.grading.courses.people import cohort_people

        state = os.path.join(self.settings["hub"]["state_dir"], "roster.json")
        try:
            stamp = os.stat(state).st_mtime_ns
        except OSError:
            stamp = None
        if self._roster[0] != stamp or cohort not in self._roster[1]:
            people = {}
            for each in sorted({c for p in load_people(self.settings["hub"]["state_dir"]).values()
                                for c in p.cohorts}):  # fmt: skip
                people[each] = {t.username: t for t in cohort_people(self.settings, each)[0]}
            self._roster = (stamp, people)
        found = self._roster[1].get(cohort, {}).get(username)
        if found is None:
            raise Refused(403, f"{username} is not a trainee of cohort {cohort}")
        return found

    # -- one request --------------------------------------------------------------------------
    async def submit(self, username: str, cohort: str, assignment: str, wait: bool) -> dict:
        """Collect, grade and release ``username``'s newest submission of ``assignment``."""
        from atelier.grading.course import split_assignment

        room = self.rooms.get(cohort)
        if room is None:
            raise Refused(404, f"no instant grading for cohort {cohort}")
        trainee = self.trainee(username, cohort)
        try:
            split_assignment(assignment)
        except Exception:
            raise Refused(404, f"no assignment {assignment!r}") from None
        if not (room.course.outbound / assignment).is_dir():
            raise Refused(404, f"{assignment} is not released to cohort {cohort}")
        if room.full():
            raise Refused(503, "grading is busy: try again in a few seconds", retry_after=5)
        key = (trainee.account, assignment)
        if key in room.waiting and not wait:
            # One request of theirs waits already: it will collect the newest submission.
            return {"state": "queued", "assignment": assignment}
        room.waiting.add(key)
        task = asyncio.get_running_loop().create_task(self._in_turn(room, trainee, assignment))
        if wait:
            return await task
        return {"state": "queued", "assignment": assignment}

    async def _in_turn(self, room: CourseRoom, trainee, assignment: str) -> dict:
        """One trainee's requests one after the other (collect, grade, release)."""
        async with room.lock(trainee.account):
            room.waiting.discard((trainee.account, assignment))
            return await self._submit(room, trainee, assignment, asyncio.get_running_loop())

    async def _submit(self, room: CourseRoom, trainee, assignment: str, loop) -> dict:
        try:
            return await self._work(room, trainee, assignment, loop)
        except Refused as refused:
            return {"state": "refused", "reason": str(refused), "http": refused.status}
        except Exception as error:
            log.exception("%s %s", trainee.account, assignment)
            return {"state": "error", "reason": f"{type(error).__name__}: {error}"[:500]}

    async def _work(self, room: CourseRoom, trainee, assignment: str, loop) -> dict:
        from atelier.grading.instant import items

        course = room.course
        collected = await loop.run_in_executor(self.executor, self._collect, course, trainee,
                                               assignment)  # fmt: skip
        outcome, used, problem, policy = collected
        if outcome == "none":
            raise Refused(404, f"no submission of {assignment} from {trainee.username}")
        if outcome == "rejected":
            document = items.state_document(assignment, "refused", problem,
                                            attempts_used=used)  # fmt: skip
            await loop.run_in_executor(self.executor, items.release_results, course,
                                       trainee.account, assignment, document)  # fmt: skip
            raise Refused(409, problem)
        if outcome == "new":
            document = items.state_document(assignment, "grading", attempts_used=used)
            await loop.run_in_executor(self.executor, items.release_results, course,
                                       trainee.account, assignment, document)  # fmt: skip
        job = Job(trainee.account, assignment, regrade=False, done=loop.create_future())
        job.tag = room.next_tag((trainee.account, assignment))
        room.queue.put_nowait(job)
        result = await job.done
        reply, html = await loop.run_in_executor(self.executor, self._release, course, trainee,
                                                 assignment, result, policy, used)  # fmt: skip
        if html:
            room.want_html(trainee, assignment)
        return reply

    def _collect(self, course, trainee, assignment: str):
        from atelier.grading.courses.folders import course_umask
        from atelier.grading.exchange.collect import (
            TIMESTAMP_FORMAT,
            collect_trainee,
            counted,
        )
        from atelier.grading.exchange.policy import limits_for, read_policy

        policy = read_policy(course, assignment)
        limits = limits_for(policy, self.limits)
        run = "instant " + datetime.now(UTC).strftime(TIMESTAMP_FORMAT)
        with course_umask():
            outcome, found, kept = collect_trainee(course, assignment, trainee, limits, run)
        problem = ""
        if outcome == "rejected":
            refused = kept if kept is not None else found[-1]
            problem = refused.problem
        return outcome, counted(found), problem, policy

    def _release(self, course, trainee, assignment: str, result: dict, policy, used: int):
        """Write the results the policy allows now; ``(reply, whether HTML may be returned)``."""
        from atelier.grading.instant import items

        html = False

        if result.get("status") == "error":
            document = items.state_document(
                assignment, "error", "Your submission could not be graded automatically; "
                "your facilitator will grade it.", attempts_used=used,
            )  # fmt: skip
            log.error("%s %s: %s", trainee.account, assignment, result.get("reason"))
        elif not policy.instant_feedback:
            document = items.state_document(assignment, "held", attempts_used=used)
        else:
            document = items.for_trainee({**result, "assignment": assignment}, policy, used)
            html = document["diagnostics"]
        items.release_results(course, trainee.account, assignment, document)
        return {key: document.get(key) for key in ("state", "score", "max_score", "reason")}, html

    def return_html(self, course, trainee, assignment: str) -> None:
        """Return nbgrader's HTML feedback to the trainee, as ``atelier feedback`` does."""
        from atelier.grading.exchange.feedback import return_feedback

        def run():
            try:
                return_feedback(course, assignment, [trainee], progress=log.info)
            except Exception as error:
                log.error("%s %s: HTML feedback not returned: %s", trainee.account, assignment,
                          error)  # fmt: skip

        self.executor.submit(run)


# -- HTTP ---------------------------------------------------------------------------------------


class BaseHandler(web.RequestHandler):
    """Who is asking, from the hub: the token in the ``Authorization`` header, checked there."""

    async def prepare(self):
        """Identify the caller with the hub; a caller without the service's scope gets 403."""
        auth = self.settings["hub_auth"]
        token = auth.get_token(self, in_cookie=False)
        model = await auth.user_for_token(token, sync=False) if token else None
        if not model:
            raise web.HTTPError(403, "a hub token is required")
        if model.get("kind", "user") != "user" or not auth.check_scopes(auth.access_scopes, model):
            raise web.HTTPError(403, "this token may not use the instant grading service")
        self.current_user = model

    def write_error(self, status_code, **kwargs):
        """Errors as JSON, with the reason."""
        self.finish({"state": "refused", "reason": self._reason})


class SubmissionHandler(BaseHandler):
    """``POST .../submissions/<cohort>/<assignment>``: grade my newest submission."""

    async def post(self, cohort: str, assignment: str):
        """Queue (or with ``?wait=1``, do) the caller's own grading; never anybody else's."""
        grader: InstantGrader = self.settings["grader"]
        wait = self.get_argument("wait", "") == "1"
        try:
            reply = await grader.submit(self.current_user["name"], cohort, assignment, wait)
        except Refused as refused:
            reply = {"state": "refused", "reason": str(refused), "http": refused.status,
                     **refused.extra}  # fmt: skip
        status = reply.pop("http", 202 if reply.get("state") == "queued" else 200)
        if "retry_after" in reply:
            self.set_header("Retry-After", str(reply["retry_after"]))
        self.set_status(status)
        self.finish(reply)


class HealthHandler(web.RequestHandler):
    """The service's root: answers so that the hub knows it is up."""

    def get(self):
        """Which cohorts grade instantly (no one's data)."""
        self.finish({"service": SERVICE, "cohorts": sorted(self.settings["grader"].rooms)})


def make_app(grader: InstantGrader, prefix: str) -> web.Application:
    """The Tornado application under the service's prefix."""
    from jupyterhub.services.auth import HubAuth

    prefix = "/" + prefix.strip("/") + "/"
    # Only this scope lets a token use the service (trainees' servers' tokens carry it).
    hub_auth = HubAuth(cache_max_age=60, access_scopes={f"access:services!service={SERVICE}"})
    name = r"([a-z0-9][a-z0-9-]{0,29})"
    return web.Application(
        [
            (rf"{prefix}submissions/{name}/([a-z0-9][a-z0-9-]*)", SubmissionHandler),
            (rf"{prefix}?", HealthHandler),
        ],
        grader=grader,
        hub_auth=hub_auth,
    )


def main() -> None:
    """``python -m atelier.grading.instant.service``: run as the hub starts it (root)."""
    from atelier.accounts import load_people
    from atelier.settings import load_settings

    logging.basicConfig(level=logging.INFO, format="[atelier-instant %(levelname)s] %(message)s")
    from atelier.settings import DEFAULT_SETTINGS_PATH

    settings = load_settings(os.environ.get("ATELIER_SETTINGS") or DEFAULT_SETTINGS_PATH)
    os.umask(0o007)
    cohorts = sorted({c for p in load_people(settings["hub"]["state_dir"]).values()
                      for c in p.cohorts})  # fmt: skip
    executor = ThreadPoolExecutor(4, "atelier-instant")
    grader = InstantGrader(settings, executor)
    grader.start_workers(cohorts)
    url = urlparse(os.environ.get("JUPYTERHUB_SERVICE_URL", "http://127.0.0.1:0"))
    prefix = os.environ.get("JUPYTERHUB_SERVICE_PREFIX", f"/services/{SERVICE}/")

    async def serve():
        grader.open_rooms()
        app = make_app(grader, prefix)
        app.listen(url.port, url.hostname or "127.0.0.1")
        log.info("grading %s at %s", ", ".join(sorted(grader.rooms)) or "no cohort", url.geturl())
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()

    try:
        asyncio.run(serve())
    finally:
        grader.stop()
        executor.shutdown(wait=False)


if __name__ == "__main__":
    main()
