"""The grading processes: shares forked from the command, their outcomes read back as JSON lines.

Rule: what every grading process needs is loaded once before forking, so forks share it; each
process grades its share (:mod:`atelier.grading.autograde.share`) and writes each outcome as one
JSON line on its pipe; the command reads all pipes with a selector, shows progress, and turns the
unreported submissions of a process that died into errors (not journaled: the next run grades
them).
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from pathlib import Path

from atelier.grading.autograde.share import grade_share


def load_before_fork() -> None:
    """Import and set up, once, what every grading process needs, so that forks share it."""
    import nbformat
    from nbgrader.apps.autogradeapp import AutogradeApp  # noqa: F401
    from sqlalchemy.orm import configure_mappers

    import atelier.grading.autograde.converter
    import atelier.grading.sandbox.pool  # noqa: F401

    configure_mappers()  # nbgrader's gradebook classes
    nbformat.validate(nbformat.v4.new_notebook())  # compiles nbformat's schema validator


def grade_in_forks(course_root: Path, shares, workers: int, progress: bool, options) -> list:
    """Grade each share in a process forked from this one; gather outcomes as they come.

    Each process reports its outcomes, one JSON line each, on a pipe. A process that dies leaves
    its unreported submissions as errors (not journaled: the next run grades them).
    """
    import selectors
    import signal
    import traceback

    from atelier.grading.autograde.outcome import Outcome

    load_before_fork()
    sys.stdout.flush()
    sys.stderr.flush()
    children: dict[int, tuple] = {}
    for share in shares:
        read_fd, write_fd = os.pipe()
        pid = os.fork()
        if pid == 0:  # the grading process
            status = 1
            try:
                os.close(read_fd)
                for other_fd, *_ in children.values():
                    os.close(other_fd)
                with open(write_fd, "w", encoding="utf-8") as channel:
                    reported = set()

                    def report(outcome, channel=channel, reported=reported):
                        reported.add(id(outcome))
                        channel.write(json.dumps(outcome.__dict__) + "\n")
                        channel.flush()

                    # One pool for the whole share: once it runs, the process may have given
                    # up root (``run_as``) and could not start another.
                    done = grade_share(course_root, share, workers=workers, progress=False,
                                        report=report, errors_as_outcomes=True,
                                        **options)  # fmt: skip
                    for outcome in done:  # those not graded now (skipped as already done)
                        if id(outcome) not in reported:
                            report(outcome)
                status = 0
            except BaseException:
                traceback.print_exc()
            finally:
                os._exit(status)
        os.close(write_fd)
        expected = {(a, student) for a, students in share for student in students}
        children[pid] = (read_fd, expected, bytearray())
    bar = None
    if progress:
        from tqdm import tqdm

        total = sum(len(expected) for _, expected, _ in children.values())
        bar = tqdm(total=total, unit="trainee", desc="grading", file=sys.stderr)
    outcomes = []
    selector = selectors.DefaultSelector()
    for pid, (read_fd, _, _) in children.items():
        selector.register(read_fd, selectors.EVENT_READ, pid)
    try:
        while selector.get_map():
            for key, _ in selector.select():
                pid = key.data
                read_fd, expected, buffer = children[pid]
                chunk = os.read(read_fd, 1 << 16)
                buffer += chunk
                *lines, rest = buffer.split(b"\n")
                buffer[:] = rest
                for line in lines:
                    outcome = Outcome(**json.loads(line))
                    expected.discard((outcome.assignment, outcome.student))
                    outcomes.append(outcome)
                    if bar is not None:
                        bar.update(1)
                        bar.set_postfix_str(f"{outcome.student}: {outcome.status}", refresh=False)
                if chunk:
                    continue
                selector.unregister(read_fd)
                os.close(read_fd)
                _, status = os.waitpid(pid, 0)
                code = os.waitstatus_to_exitcode(status)
                if code == 0:
                    continue  # all reported (nbgrader leaves out excluded students, as here)
                reason = f"grading process failed (exit status {code})"
                for assignment, student in sorted(expected):
                    outcomes.append(Outcome(student, assignment, "error", reason))
    except KeyboardInterrupt:
        for pid in children:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGTERM)
        raise
    finally:
        if bar is not None:
            bar.close()
        selector.close()
    return outcomes
