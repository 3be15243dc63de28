"""Peer scores into the gradebook, as the course's grader account.

Reads the facilitator's own scores, writes an accepted or overridden score and the mark for
reviewing.

Rule: the gradebook lives in the course, the grader account's folder; root never opens it (a
SQLite file there could be a link the grader planted). :func:`run` starts this module as a process
of the grader account (``subprocess`` with ``user=``, not a fork: the service has threads), sends
the request as JSON on standard input and reads the answer as JSON, never pickle. The grade
written is nbgrader's ``manual_score`` of the reflection's cell (what formgrader writes when a
facilitator types a score); the mark for reviewing is the ``extra_credit`` of the reviewer's own
reflection cell, so nbgrader's totals, the export and the feedback count it.
"""

from __future__ import annotations

import json
import os
import pwd
import subprocess
import sys
from pathlib import Path

from atelier.grading.course import Course, GradingError


def run(course: Course, op: str, items: list[dict]) -> list[dict]:
    """Do ``op`` (``read`` or ``write``) on ``items`` in the course's gradebook, as its grader."""
    request = {"db_url": course.db_url, "course_id": course.course_id, "op": op, "items": items}
    options = {}
    if os.geteuid() == 0:
        try:
            entry = pwd.getpwnam(course.grader_account)
        except KeyError:
            raise GradingError(f"the grader account {course.grader_account} is missing") from None
        options = {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}
    env = {
        "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
        "HOME": str(course.root),
        "LANG": "C.UTF-8",
    }
    done = subprocess.run(
        [sys.executable, "-P", "-m", "atelier.grading.peerreview.marks"],
        input=json.dumps(request),
        capture_output=True,
        text=True,
        cwd=course.root,
        env=env,
        timeout=120,
        check=False,
        **options,
    )
    try:
        answer = json.loads(done.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise GradingError(
            f"the gradebook of cohort {course.cohort} could not be read or written "
            f"(exit {done.returncode}): {done.stderr.strip()[-500:]}"
        ) from None
    if "error" in answer:
        raise GradingError(answer["error"])
    return answer["items"]


def _work(request: dict) -> list[dict]:
    from nbgrader.api import Gradebook, MissingEntry

    out = []
    with Gradebook(request["db_url"], course_id=request["course_id"]) as gb:
        for item in request["items"]:
            key = (item["grade_id"], item["notebook"], item["assignment"], item["student"])
            try:
                grade = gb.find_grade(*key)
            except MissingEntry:
                out.append({**item, "missing": True})
                continue
            if request["op"] == "write":
                if "manual_score" in item:
                    if not 0 <= float(item["manual_score"]) <= grade.max_score:
                        raise ValueError(f"{item['manual_score']} is outside 0-{grade.max_score}")
                    grade.manual_score = float(item["manual_score"])
                    grade.needs_manual_grade = False
                if "extra_credit" in item:
                    grade.extra_credit = float(item["extra_credit"]) or None
                gb.db.commit()
            out.append(
                {
                    **item,
                    "manual_score": grade.manual_score,
                    "auto_score": grade.auto_score,
                    "max_score": grade.max_score,
                    "extra_credit": grade.extra_credit,
                    "needs_manual_grade": grade.needs_manual_grade,
                }
            )
    return out


def main() -> None:
    """The grader-side process: one request on standard input, one JSON line out."""
    try:
        answer = {"items": _work(json.loads(sys.stdin.read()))}
    except Exception as error:  # reported to root as a message, never as a traceback object
        answer = {"error": f"{type(error).__name__}: {error}"[:1000]}
    print(json.dumps(answer, default=str))


if __name__ == "__main__":
    main()
