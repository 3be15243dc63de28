"""One course's queue and its warm grading processes, as the ``atelier-instant`` service holds them.

A :class:`CourseRoom` takes :class:`Job` requests into one bounded queue and gives every free
:class:`Worker` (the service's end of a forked grading process, :mod:`.worker`) all the jobs waiting
as one batch, so that a deadline burst costs one nbgrader set-up per batch, not per trainee. HTML
feedback is tagged per grading, so that an older HTML is never returned for a newer submission.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import sys
import threading
from dataclasses import dataclass, field

log = logging.getLogger("atelier-instant")


@dataclass
class Job:
    """One request: a trainee's newest submission of an assignment, to grade and release."""

    account: str
    assignment: str
    regrade: bool
    done: asyncio.Future = field(repr=False, default=None)
    #: Which grading of this (account, assignment) it is: HTML feedback made for an older one
    #: is never returned for a newer one.
    tag: int = 0


class Worker:
    """The service's side of one warm grading process: a pid and two pipes, one batch at a time."""

    #: The service's ends of every grading process's pipes: a newer process closes them all, so
    #: that each sees the end of its requests when the service stops.
    open_ends: list[int] = []

    def __init__(self, course, run_as, slots: int, config, hidden, variants=None):
        from atelier.grading.instant.worker import main_in_child

        to_child_r, to_child_w = os.pipe()
        from_child_r, from_child_w = os.pipe()
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            from atelier.processes.forking import stop_with_parent

            for fd in (to_child_w, from_child_r, *Worker.open_ends):
                os.close(fd)
            stop_with_parent()
            main_in_child(course.root, run_as, slots, config, hidden, to_child_r, from_child_w,
                          variants)  # fmt: skip
        os.close(to_child_r)
        os.close(from_child_w)
        Worker.open_ends += [to_child_w, from_child_r]
        self.pid = pid
        self.course = course
        self.requests = open(to_child_w, "w", encoding="utf-8")  # noqa: SIM115
        self.replies = open(from_child_r, encoding="utf-8")  # noqa: SIM115
        self.batches = 0

    def wait_ready(self) -> None:
        """Block until the process's sandboxes run (its first line)."""
        line = self.replies.readline()
        if not line or not json.loads(line).get("ready"):
            raise RuntimeError(f"the grading process of {self.course.cohort} did not start")

    def listen(self, loop, on_feedback) -> None:
        """Read the process's replies in a thread: batches to their futures, feedback to a call."""
        self.loop, self.waiting = loop, {}
        self.on_feedback = on_feedback
        threading.Thread(target=self._read, name=f"instant-{self.pid}", daemon=True).start()

    def _read(self) -> None:
        for line in self.replies:
            reply = json.loads(line)
            if "batch" in reply:
                future = self.waiting.pop(reply["batch"], None)
                if future is not None:
                    self.loop.call_soon_threadsafe(_settle, future, reply)
            elif "feedback" in reply:
                self.loop.call_soon_threadsafe(self.on_feedback, reply)
        gone = RuntimeError(f"the grading process of {self.course.cohort} stopped")
        for future in list(self.waiting.values()):
            self.loop.call_soon_threadsafe(_settle, future, {"error": str(gone)})

    async def call(self, jobs: list[Job]) -> dict:
        """Send one batch, wait for its results: ``(account, assignment) -> result``."""
        self.batches += 1
        future = self.loop.create_future()
        self.waiting[self.batches] = future
        request = {
            "batch": self.batches,
            "regrade": any(job.regrade for job in jobs),
            "jobs": [
                {"assignment": j.assignment, "student": j.account, "tag": j.tag} for j in jobs
            ],
        }
        self.requests.write(json.dumps(request) + "\n")
        self.requests.flush()
        reply = await future
        if "error" in reply:
            raise RuntimeError(reply["error"])
        return {(r["student"], r["assignment"]): r for r in reply["results"]}

    def stop(self) -> None:
        """Close its pipes (it ends its sandboxes and exits) and reap it."""
        with contextlib.suppress(OSError):
            self.requests.close()
        with contextlib.suppress(ChildProcessError, OSError):
            os.waitpid(self.pid, 0)


def _settle(future: asyncio.Future, reply: dict) -> None:
    if not future.done():
        future.set_result(reply)


class CourseRoom:
    """One course's queue, its grading processes, and a lock per trainee."""

    def __init__(self, course, workers: list[Worker], queue_size: int):
        self.course = course
        self.workers = workers
        self.queue_size = queue_size
        self.queue: asyncio.Queue[Job] = asyncio.Queue()
        self.free: asyncio.Queue[Worker] = asyncio.Queue()
        for worker in workers:
            self.free.put_nowait(worker)
        self.locks: dict[str, asyncio.Lock] = {}
        #: (account, assignment) of requests waiting for their trainee's turn.
        self.waiting: set[tuple[str, str]] = set()
        #: HTML feedback, by (account, assignment): the tag of the latest grading, whether its
        #: HTML is made, and the trainee to return it to once the policy allowed it.
        self.tags: dict[tuple[str, str], int] = {}
        self.html_made: set[tuple[str, str]] = set()
        self.html_wanted: dict[tuple[str, str], object] = {}
        self.return_html = None
        loop = asyncio.get_running_loop()
        for worker in workers:
            worker.listen(loop, self.feedback_made)
        self.task = asyncio.get_running_loop().create_task(self.dispatch())

    def next_tag(self, key: tuple[str, str]) -> int:
        """A new grading of ``key``: its HTML is not made yet, nor wanted."""
        self.tags[key] = self.tags.get(key, 0) + 1
        self.html_made.discard(key)
        self.html_wanted.pop(key, None)
        return self.tags[key]

    def feedback_made(self, reply: dict) -> None:
        """A grading process made HTML feedback: return it now if the release asked for it."""
        if reply.get("error"):
            log.error("feedback of %s: %s", reply["feedback"], reply["error"][-500:])
            return
        for student, tag in reply["students"].items():
            key = (student, reply["feedback"])
            if self.tags.get(key) != tag:
                continue  # made for an older submission
            trainee = self.html_wanted.pop(key, None)
            if trainee is None:
                self.html_made.add(key)
            else:
                self.return_html(self.course, trainee, key[1])

    def want_html(self, trainee, assignment: str) -> None:
        """The policy lets ``trainee`` see the HTML: return it once made (or now)."""
        key = (trainee.account, assignment)
        if key in self.html_made:
            self.html_made.discard(key)
            self.return_html(self.course, trainee, assignment)
        else:
            self.html_wanted[key] = trainee

    def lock(self, account: str) -> asyncio.Lock:
        """The lock that keeps one trainee's requests in order (collect, grade, release)."""
        return self.locks.setdefault(account, asyncio.Lock())

    def full(self) -> bool:
        """Whether the queue holds as many jobs as it may."""
        return self.queue.qsize() >= self.queue_size

    async def dispatch(self) -> None:
        """Give every free grading process all the jobs waiting, as one batch."""
        while True:
            worker = await self.free.get()
            jobs = [await self.queue.get()]
            while not self.queue.empty():
                jobs.append(self.queue.get_nowait())
            asyncio.get_running_loop().create_task(self.run(worker, jobs))

    async def run(self, worker: Worker, jobs: list[Job]) -> None:
        """Grade one batch in ``worker``; each job's future gets its result (or the error)."""
        try:
            results = await worker.call(jobs)
        except Exception as error:
            log.error("grading %s: %s", self.course.cohort, error)
            results = {}
            reason = str(error)[:500]
        else:
            reason = "not graded"
        finally:
            self.free.put_nowait(worker)
        for job in jobs:
            result = results.get((job.account, job.assignment))
            if result is None:
                result = {"student": job.account, "assignment": job.assignment,
                          "status": "error", "reason": reason}  # fmt: skip
            if not job.done.done():
                job.done.set_result(result)
