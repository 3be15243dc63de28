"""A trainee's per-item results: what the feedback page shows, and what the policy lets it show.

Rule: the results come from nbgrader's own records, read as the course's grader account: each
graded cell's score from the gradebook (manual marks and comments included), and the message of
a failed check from the autograded notebook (the text ``atelier.widgets.grading.check_*`` raise: a
wrong option's diagnostic). :func:`for_trainee` cuts them to what the workbook's policy allows now
(:meth:`atelier.grading.exchange.policy.Policy.shows_diagnostics`): between attempts of an
assessed workbook, which items are right, never why. :func:`release_results` writes that into the
trainee's own feedback folder (``atelier-<assignment>.json``), the way feedback files are
returned: by descriptor, never following a link, owned by the grader account and readable by the
trainee's group only.
"""

from __future__ import annotations

import json
import os
import re
from datetime import UTC, datetime

#: The checks whose first argument names the widget a graded cell marks.
WIDGET_CALL = re.compile(r"\b(?:check|score)_\w+\(\s*['\"]([^'\"]+)['\"]")
#: A widget made with its id (``ReflectionJournal("w7-reflect", ...)``): where a task is answered.
WIDGET_MADE = re.compile(r"\b[A-Z]\w*\(\s*['\"]([A-Za-z0-9][A-Za-z0-9_.-]{0,63})['\"]")
RESULTS_FORMAT = "atelier-results"


def results_name(assignment: str) -> str:
    """The file of ``assignment``'s results in a trainee's feedback folder."""
    return f"atelier-{assignment}.json"


def item_results(coursedir, assignment: str, student: str) -> dict:
    """Score, lateness and one entry per graded cell of ``student``'s graded ``assignment``.

    Run as the course's grader account (the gradebook and ``autograded/`` are its).
    """
    from nbgrader.api import Gradebook

    with Gradebook(coursedir.db_url, coursedir.course_id) as gb:
        submission = gb.find_submission(assignment, student)
        items = []
        for notebook in sorted(submission.notebooks, key=lambda nb: nb.name):
            messages = _failure_messages(coursedir, assignment, student, notebook.name)
            comments = {c.name: c.manual_comment or "" for c in notebook.comments}
            for grade in sorted(notebook.grades, key=lambda g: _position(messages, g.name)):
                items.append(_item(notebook.name, grade, messages, comments))
        return {
            "score": float(submission.score),
            "max_score": float(submission.max_score),
            "late": bool(submission.total_seconds_late > 0),
            "received": submission.timestamp.isoformat() if submission.timestamp else "",
            "items": items,
        }


def _position(messages: dict, name: str) -> int:
    return messages.get(name, {}).get("position", 1 << 20)


def _item(notebook: str, grade, messages: dict, comments: dict) -> dict:
    found = messages.get(grade.name, {})
    # A written answer (nbgrader's graded solution cell) is the facilitator's to mark; nbgrader
    # scores one left as released 0 at once, which is "unanswered", not "wrong".
    manual = grade.auto_score is None or found.get("written", False)
    item = {
        "id": grade.name,
        "notebook": notebook,
        "widgets": found.get("widgets", []),
        "max": float(grade.max_score),
        "score": float(grade.score),
        "kind": "manual" if manual else "auto",
    }
    if manual:
        # A reflection: waiting until a facilitator marks it, then their score and comment.
        marked = grade.manual_score is not None and not grade.needs_manual_grade
        if marked:
            item["status"] = "marked"
            item["comment"] = comments.get(grade.name, "")
        elif grade.needs_manual_grade:
            item["status"], item["score"] = "waiting", None
        else:
            item["status"] = "unanswered"
        return item
    if grade.manual_score is not None:  # a facilitator overrode the automatic score
        item["comment"] = comments.get(grade.name, "")
    score, most = float(grade.score), float(grade.max_score)
    item["status"] = "right" if score >= most else ("wrong" if score <= 0 else "partial")
    if item["status"] != "right":
        item["diagnostic"] = found.get("message", "")
    return item


def _failure_messages(coursedir, assignment: str, student: str, notebook: str) -> dict:
    """By grade id: position, widgets checked and the failure message, from the autograded copy."""
    import nbformat

    path = os.path.join(
        coursedir.format_path(coursedir.autograded_directory, student, assignment),
        f"{notebook}.ipynb",
    )
    try:
        nb = nbformat.read(path, as_version=4)
    except (OSError, ValueError):
        return {}
    found = {}
    task = None  # the manually graded task whose answer widgets follow it
    for position, cell in enumerate(nb.cells):
        meta = cell.get("metadata", {}).get("nbgrader", {})
        name = meta.get("grade_id")
        if task and cell.get("cell_type") == "code" and not meta.get("grade"):
            # A task (a reflection) is answered in the widget cells right below it: its result
            # goes under them in the view.
            found[task]["widgets"] += WIDGET_MADE.findall(cell.get("source", ""))
            continue
        task = None
        if not name:
            continue
        entry = {
            "position": position,
            "widgets": WIDGET_CALL.findall(cell.get("source", "")),
            "written": bool(meta.get("solution")),
        }
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                # Name and message only, as the HTML feedback shows them: a traceback would quote
                # the hidden test's lines (its key).
                entry["message"] = str(output.get("evalue", ""))[:2000] or str(
                    output.get("ename", "")
                )
        found[name] = entry
        if meta.get("task"):
            task = name
    return found


def for_trainee(results: dict, policy, used: int, *, now: float | None = None) -> dict:
    """What the trainee may see of ``results`` now, under ``policy``, after ``used`` attempts."""
    shows = policy.shows_diagnostics(used, now)
    items = []
    for item in results.get("items", []):
        shown = dict(item)
        if not shows:
            shown.pop("diagnostic", None)
        items.append(shown)
    waiting = [i["id"] for i in items if i.get("status") == "waiting"]
    return {
        "format": RESULTS_FORMAT,
        "version": 1,
        "state": "graded",
        "assignment": results.get("assignment", ""),
        "status": results.get("status", ""),
        "reason": results.get("reason", "") if results.get("status") == "error" else "",
        "score": results.get("score"),
        "max_score": results.get("max_score"),
        "late": results.get("late", False),
        "received": results.get("received", ""),
        "attempts_used": used,
        "attempts_left": policy.attempts_left(used),
        "mode": policy.mode,
        "diagnostics": shows,
        "waiting": waiting,
        "items": items,
        "released": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def state_document(assignment: str, state: str, reason: str = "", **extra) -> dict:
    """A results file that says where the submission is: queued, held or refused."""
    return {
        "format": RESULTS_FORMAT,
        "version": 1,
        "state": state,
        "assignment": assignment,
        "reason": reason,
        **extra,
        "released": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def release_results(course, account: str, assignment: str, document: dict) -> None:
    """Write ``document`` as ``atelier-<assignment>.json`` into ``account``'s feedback folder.

    As :func:`atelier.grading.exchange.feedback.return_feedback`: the folder is opened without
    following a link and must be the grader account's; the file is a new one, owner and mode set
    on its descriptor, renamed over the old one.
    """
    from atelier.grading import safefs
    from atelier.grading.courses.graderaccount import account_ids

    grader_uid, _ = account_ids(course.grader_account)
    _, gid = account_ids(account)
    name = results_name(assignment)
    data = json.dumps(document, indent=1, sort_keys=True, ensure_ascii=False)
    with safefs.opened_dir(course.exchange_feedback, [account], {grader_uid}) as target:
        safefs.write_at(target, name, data, 0o640, course.feedback_of(account) / name,
                        grader_uid, gid)  # fmt: skip


def read_results(folder: str | os.PathLike, assignment: str) -> dict | None:
    """The results file of ``assignment`` in a feedback folder (the trainee's side), or None."""
    try:
        with open(os.path.join(folder, results_name(assignment)), encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("format") == RESULTS_FORMAT else None


def _graded_results(course, assignment: str, accounts: list[str]) -> dict:
    """Results by account, of those graded (run as the grader account: the gradebook is its)."""
    from nbgrader.coursedir import CourseDirectory

    from atelier.grading.course import ensure_env_on_path

    ensure_env_on_path()
    coursedir = CourseDirectory(config=course.nbgrader_config())
    found = {}
    for account in accounts:
        try:
            found[account] = item_results(coursedir, assignment, account)
        except Exception:  # MissingEntry: nothing graded for this trainee
            continue
    return found


def release_all(course, assignment: str, trainees, limits, progress=print) -> int:
    """Write every graded trainee's results, as the policy allows now; returns how many.

    What ``atelier feedback`` adds to nbgrader's HTML feedback: results held back by a workbook
    released with ``--no-instant-feedback`` are released here, and reflections marked by hand
    since the last release show their marks.
    """
    from atelier.grading.courses.graderaccount import as_grader
    from atelier.grading.exchange.collect import candidates, choose, counted
    from atelier.grading.exchange.policy import limits_for, read_policy

    policy = read_policy(course, assignment)
    own = limits_for(policy, limits)
    graded = as_grader(course, _graded_results, course, assignment, [t.account for t in trainees])
    released = 0
    for trainee in trainees:
        results = (graded or {}).get(trainee.account)
        if results is None:
            continue
        found = candidates(course, trainee.account, assignment)
        choose(found, own.owner_uid(trainee.account), own)
        document = for_trainee({**results, "assignment": assignment}, policy, counted(found))
        try:
            release_results(course, trainee.account, assignment, document)
            released += 1
        except Exception as error:
            progress(f"  {trainee.account}: results not returned: {error}")
    return released
