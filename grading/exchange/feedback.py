"""Feedback: nbgrader writes each trainee's HTML feedback; Atelier returns it to that trainee only.

Rule: feedback reaches its trainee through ``feedback/<account>/`` in the exchange, a folder the
trainee may read and nobody else may enter (see :mod:`atelier.grading.exchange.trainee`). File names
are nbgrader's (a hash of the submission secret and notebook id), so JupyterLab's assignment list
finds and fetches them as usual; the folder, not the name, is what keeps them private.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from nbgrader.preprocessors import ClearHiddenTests
from nbgrader.utils import notebook_hash

from atelier.grading import safefs
from atelier.grading.course import Course, GradingError, jupyter_path, nbgrader_api
from atelier.grading.courses.folders import course_umask
from atelier.grading.courses.graderaccount import account_ids, as_grader, course_owners
from atelier.grading.courses.people import Trainee


class HideHiddenTests(ClearHiddenTests):
    """Feedback shows the tests a trainee could see, never the hidden ones (the answer key).

    nbgrader's feedback is the autograded notebook, where hidden tests are back in their cells.
    This step removes the hidden regions again and, in those cells, keeps only the name and
    message of an error: a traceback would quote the hidden line (a widget's key, say).
    """

    def preprocess_cell(self, cell, resources, cell_index):
        """Strip the hidden region and shorten error outputs of a cell that had one."""
        if cell.cell_type != "code" or self.begin_test_delimeter not in cell.source:
            return cell, resources
        self._remove_hidden_test_region(cell)
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                output["traceback"] = [
                    f"{output.get('ename', 'Error')}: {output.get('evalue', '')}"
                ]
        return cell, resources


def _generate(course: Course, assignment: str) -> dict:
    # A language version nobody has been graded on yet (released because the cohort has a trainee
    # in that language) has nothing to give: nbgrader would fail on it, and with it the command.
    if not any(Path(course.root, "autograded").glob(f"*/{assignment}")):
        return {"success": True, "log": f"{assignment}: nothing graded yet\n", "error": ""}
    # nbconvert looks its templates up when the exporter is made: the local-MathJax macro
    # (atelier.grading.course.JUPYTER_DATA) must be on the path by then.
    saved = os.environ.get("JUPYTER_PATH")
    os.environ["JUPYTER_PATH"] = jupyter_path(saved)
    try:
        result = nbgrader_api(course).generate_feedback(assignment, force=True)
    finally:
        if saved is None:
            os.environ.pop("JUPYTER_PATH", None)
        else:
            os.environ["JUPYTER_PATH"] = saved
    return {key: result.get(key, "") for key in ("success", "log", "error")}


def generate_feedback(course: Course, assignment: str) -> None:
    """Run nbgrader's generate_feedback for every graded submission of ``assignment``.

    It reads ``autograded/`` and writes ``feedback/``, the grader account's folders: it runs as
    that account (:func:`atelier.grading.courses.graderaccount.as_grader`), so no link there leads
    root anywhere.
    """
    if os.geteuid() == 0:
        owners = course_owners(course)
        with safefs.opened_dir(course.root, ["feedback"], owners) as generated:
            for student in safefs.entries(generated):
                try:
                    folder = safefs.open_dir_at(generated, student, course.feedback / student)
                except (OSError, safefs.UnsafePath):
                    continue  # not a folder: nbgrader's own business (it runs as the grader)
                try:
                    safefs.remove_roots_leftover(folder, assignment)
                finally:
                    os.close(folder)
    result = as_grader(course, _generate, course, assignment)
    if not result["success"]:
        raise GradingError(
            f"nbgrader could not generate feedback for {assignment}:\n"
            f"{result.get('log', '')}{result.get('error', '')}"
        )


def return_feedback(
    course: Course,
    assignment: str,
    trainees: list[Trainee],
    progress: Callable[[str], None] = print,
) -> dict[str, int]:
    """Copy each trainee's feedback into their own exchange folder; returns files per account.

    The generated feedback and the submission's secret are in the course, which the grader
    account can change: they are read from descriptors opened without following links, and a
    link, pipe or hard link found there is not returned (the message names it). Each file is
    written into the trainee's feedback folder as a new file, owner and mode set on its
    descriptor, then renamed over the old one: nothing there is followed either.
    """
    grader_uid, _ = account_ids(course.grader_account)
    owners = course_owners(course)
    returned: dict[str, int] = {}
    for trainee in trainees:
        account = trainee.account
        returned[account] = 0
        source_dir = course.feedback / account / assignment
        try:
            with safefs.opened_dir(course.root, ["submitted", account, assignment], owners) as sub:
                secret = safefs.read_at(
                    sub, "submission_secret.txt", course.submission_dir(account, assignment)
                    / "submission_secret.txt", 1 << 16, owners,
                ).decode("utf-8")  # fmt: skip
            source = safefs.open_dir(course.root, ["feedback", account, assignment], owners)
        except FileNotFoundError:
            continue  # nothing collected or nothing generated for this trainee
        except safefs.UnsafePath as error:
            progress(f"  {account}: feedback not returned: {error}")
            continue
        try:
            _, gid = account_ids(account)
            target = safefs.open_dir(course.exchange_feedback, [account], {grader_uid})
            try:
                for html in safefs.entries(source):
                    if not html.endswith(".html"):
                        continue
                    try:
                        data = safefs.read_at(source, html, source_dir / html, owners=owners)
                    except (OSError, safefs.UnsafePath) as error:
                        progress(f"  {account}: {html} not returned: {error}")
                        continue
                    name = notebook_hash(secret=secret, notebook_id=html[: -len(".html")])
                    path = course.feedback_of(account) / f"{name}.html"
                    safefs.write_at(target, path.name, data, 0o640, path, grader_uid, gid)
                    returned[account] += 1
            finally:
                os.close(target)
        finally:
            os.close(source)
        progress(f"  {account}: {returned[account]} feedback file(s) returned")
    return returned


def feedback(
    course: Course,
    assignment: str,
    trainees: list[Trainee],
    progress: Callable[[str], None] = print,
) -> dict[str, int]:
    """Generate and return the feedback of ``assignment``."""
    with course_umask():
        generate_feedback(course, assignment)
        return return_feedback(course, assignment, trainees, progress)


def feedback_files(course: Course, account: str) -> list[Path]:
    """The feedback files released to ``account`` (for checks and tests)."""
    folder = course.feedback_of(account)
    return sorted(folder.glob("*.html")) if folder.is_dir() else []
