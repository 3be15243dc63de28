"""A warm grading process of one course: sandboxes running, nbgrader loaded, waiting for work.

Rule: it is ``atelier grade``'s grading process kept alive. Forked from the service (root) once
nbgrader is loaded, it starts its sandbox slots as root, then becomes the course's grader account
for good (:func:`atelier.grading.autograde.account.become`) before nbgrader touches the course,
exactly as a share of ``atelier grade`` does (:mod:`atelier.grading.autograde.share`). Each batch
of (assignment, trainee) pairs is graded by the same engine (:func:`plan` once per assignment, then
``_grade_assignment``: :class:`~atelier.grading.autograde.converter.SandboxedAutograde`), so the
scores are ``atelier grade``'s, and the per-item results are read at once
(:mod:`atelier.grading.instant.items`) and sent back: that is what the workbook view shows. Then,
whenever no batch is waiting, nbgrader's ``generate_feedback`` makes those trainees' HTML
feedback (the file JupyterLab's assignment list fetches), and a second line says it is ready:
during a deadline burst grading comes first, HTML after. Requests and replies are JSON lines on
two pipes (text and plain data: the service, root, never loads an object this process made).
"""

from __future__ import annotations

import json
import logging
import os
import sys
import traceback
from pathlib import Path

#: The name given to nbgrader's app while the pool warms up, before any assignment is asked for.
WARMUP = "atelier-instant-warmup"
#: Trainees whose HTML feedback is made in one go between two batches.
FEEDBACK_CHUNK = 4


def serve(course_root: Path, run_as, slots: int, config, extra_hidden, requests, replies,
          variants=None) -> None:  # fmt: skip
    """The worker's life: warm up, then answer every batch read from ``requests`` on ``replies``.

    ``requests`` is the pipe's descriptor, ``replies`` a text file on the other pipe: one JSON
    line per batch each way, then one per assignment whose HTML feedback is made. ``variants``:
    the cohort's variant keys, read by the service as root (each submission runs with its
    trainee's seed).
    """
    from atelier.grading.autograde.nbgrader_autograde import nbgrader_app
    from atelier.grading.autograde.share import _isolating, _make_pool
    from atelier.grading.course import jupyter_path

    # nbconvert finds the feedback template with the local-MathJax macro from here.
    os.environ["JUPYTER_PATH"] = jupyter_path(os.environ.get("JUPYTER_PATH"))
    log_level = logging.WARNING
    warm = nbgrader_app(course_root, WARMUP, log_level)
    early = run_as is not None and not _isolating(warm, config)
    if early:
        from atelier.grading.autograde.account import become

        become(run_as)
    pool = _make_pool(warm, course_root, slots, "", config, extra_hidden)
    if run_as is not None and not early:
        from atelier.grading.autograde.account import become

        become(run_as)
    send(replies, {"ready": True})
    state = _State(course_root, config, log_level, variants)
    lines = LineReader(requests)
    #: Feedback still to generate: assignment -> student -> the service's tag of the grading.
    feedback: dict[str, dict[str, int]] = {}
    try:
        while True:
            line = lines.next(block=not feedback)
            if line is None:  # nothing waiting: make the oldest assignment's HTML feedback
                assignment = next(iter(feedback))
                waiting = feedback[assignment]
                # A few at a time: a batch that arrives meanwhile waits for these only.
                students = {s: waiting.pop(s) for s in sorted(waiting)[:FEEDBACK_CHUNK]}
                if not waiting:
                    del feedback[assignment]
                error = state.feedback(assignment, sorted(students))
                send(replies, {"feedback": assignment, "students": students, "error": error})
                continue
            if line == b"":
                break
            batch = json.loads(line)
            try:
                results = state.grade_batch(pool, batch["jobs"], batch.get("regrade", False))
                reply = {"batch": batch["batch"], "results": results}
                tags = {(j["student"], j["assignment"]): j.get("tag", 0) for j in batch["jobs"]}
                for result in results:
                    if result["status"] != "error":
                        key = (result["student"], result["assignment"])
                        feedback.setdefault(key[1], {})[key[0]] = tags.get(key, 0)
            except Exception as error:  # one batch's failure is reported, the worker goes on
                traceback.print_exc()
                reply = {"batch": batch["batch"], "error": f"{type(error).__name__}: {error}"}
            send(replies, reply)
    finally:
        pool.close()


def send(replies, message: dict) -> None:
    """One JSON line to the service."""
    replies.write(json.dumps(message) + "\n")
    replies.flush()


class LineReader:
    """Lines from a pipe, read by descriptor, so that one can ask whether a line is waiting."""

    def __init__(self, fd: int):
        self.fd, self.buffer = fd, b""

    def next(self, block: bool) -> bytes | None:
        """The next line; ``None`` if none waits and not ``block``; ``b""`` at the end."""
        import select

        while b"\n" not in self.buffer:
            if not block and not select.select([self.fd], [], [], 0)[0]:
                return None
            chunk = os.read(self.fd, 1 << 16)
            if not chunk:
                return b""
            self.buffer += chunk
        line, _, self.buffer = self.buffer.partition(b"\n")
        return line


class _State:
    """What the worker keeps between batches: nbgrader's app and options per assignment."""

    def __init__(self, course_root: Path, config, log_level: int, variants=None):
        self.course_root, self.config, self.log_level = course_root, config, log_level
        self.variants = variants
        self.apps: dict = {}

    def app(self, assignment: str):
        """The autograde app of ``assignment``; options checked once, as grade does."""
        from atelier.grading.autograde.nbgrader_autograde import nbgrader_app
        from atelier.grading.autograde.plan import plan

        if assignment not in self.apps:
            from traitlets.config import Configurable

            from atelier.grading.gradeapp import GradeApp

            own = {
                cls.__name__: cls
                for cls in (*GradeApp.mro(), *GradeApp.classes)
                if isinstance(cls, type) and issubclass(cls, Configurable)
            }
            nbgrader_config, _ = plan(self.course_root, [assignment], [], self.config, own,
                                      self.log_level)  # fmt: skip
            self.apps[assignment] = nbgrader_app(
                self.course_root, assignment, self.log_level, nbgrader_config
            )
        return self.apps[assignment]

    def feedback(self, assignment: str, students: list[str]) -> str:
        """Make the HTML feedback of ``students``; nbgrader's error text, empty if none."""
        try:
            return generate_feedback(self.app(assignment), assignment, students)
        except Exception as error:
            return f"{type(error).__name__}: {error}"[:2000]

    def grade_batch(self, pool, jobs: list[dict], regrade: bool) -> list[dict]:
        """Grade every job (assignment, student) and read the per-item results."""
        from atelier.grading.autograde.share import _grade_assignment
        from atelier.grading.instant.items import item_results
        from atelier.upstream.nbgrader import fast_gradebook

        by_assignment: dict[str, list[str]] = {}
        for job in jobs:
            by_assignment.setdefault(job["assignment"], []).append(job["student"])
        results = []
        for assignment, students in by_assignment.items():
            try:
                app = self.app(assignment)
                # nbgrader's converters leave the last trainee graded in the shared course
                # directory; every batch starts from "every trainee" and filters.
                app.coursedir.student_id = "*"
                outcomes = _grade_assignment(app, assignment, sorted(set(students)), pool,
                                             regrade, False, None, True,
                                             self.variants)  # fmt: skip
            except Exception as error:
                reason = f"{type(error).__name__}: {error}"[:500]
                results += [_result(s, assignment, "error", reason) for s in students]
                continue
            done = {o.student: o for o in outcomes}
            with fast_gradebook():
                for student in students:
                    outcome = done.get(student)
                    if outcome is None:
                        results.append(_result(student, assignment, "error", "not graded"))
                        continue
                    result = _result(student, assignment, outcome.status, outcome.reason)
                    if outcome.status != "error":
                        try:
                            result.update(item_results(app.coursedir, assignment, student))
                        except Exception as error:
                            result["reason"] = f"results unreadable: {error}"[:500]
                    results.append(result)
        return results


def _result(student: str, assignment: str, status: str, reason: str = "") -> dict:
    return {"student": student, "assignment": assignment, "status": status, "reason": reason}


def generate_feedback(app, assignment: str, students: list[str]) -> str:
    """Run nbgrader's ``generate_feedback`` for ``students`` only, as ``atelier feedback`` runs it.

    The course's feedback options (hidden tests removed, trainee HTML inert) are the course's
    configuration (:meth:`atelier.grading.course.Course.nbgrader_config`), which ``app`` loaded.
    Returns nbgrader's error text, empty when it succeeded.
    """
    from nbgrader.converters import GenerateFeedback
    from nbgrader.utils import capture_log
    from traitlets.config import Config

    from atelier.grading.autograde.share import only_students

    config = Config()
    config.HTMLExporter.template_name = "feedback"
    app.coursedir.assignment_id = assignment
    app.coursedir.student_id = "*"
    converter = GenerateFeedback(coursedir=app.coursedir, parent=app)
    converter.update_config(config)
    converter.force = True
    only_students(converter, students)
    result = capture_log(converter)
    if result.get("success"):
        return ""
    return f"{result.get('log', '')}{result.get('error', '')}"[-2000:]


def main_in_child(course_root, run_as, slots, config, extra_hidden, read_fd, write_fd,
                  variants=None) -> None:  # fmt: skip
    """The forked child's entry: serve, then exit without returning into the service's code."""
    status = 1
    try:
        with open(write_fd, "w", encoding="utf-8") as replies:
            serve(Path(course_root), run_as, slots, config, extra_hidden, read_fd, replies,
                  variants)  # fmt: skip
        status = 0
    except BaseException:
        traceback.print_exc()
    finally:
        sys.stderr.flush()
        os._exit(status)
