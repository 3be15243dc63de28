"""Feedback: nbgrader writes each trainee's HTML feedback; Atelier returns it to that trainee only.

Rule: feedback reaches its trainee through ``feedback/<account>/`` in the exchange, a folder the
trainee may read and nobody else may enter (see :mod:`atelier.grading.exchange`). File names are
nbgrader's (a hash of the submission secret and notebook id), so JupyterLab's assignment list finds
and fetches them as usual; the folder, not the name, is what keeps them private.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from nbgrader.preprocessors import ClearHiddenTests
from nbgrader.utils import notebook_hash

from atelier.grading.course import (
    Course,
    GradingError,
    Trainee,
    account_ids,
    atomic_write,
    course_umask,
    jupyter_path,
    nbgrader_api,
)


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


def generate_feedback(course: Course, assignment: str) -> None:
    """Run nbgrader's generate_feedback for every graded submission of ``assignment``."""
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
    """Copy each trainee's feedback into their own exchange folder; returns files per account."""
    grader_uid, _ = account_ids(course.grader_account)
    returned: dict[str, int] = {}
    for trainee in trainees:
        source = course.feedback / trainee.account / assignment
        secret_file = course.submission_dir(trainee.account, assignment) / "submission_secret.txt"
        if not source.is_dir() or not secret_file.is_file():
            returned[trainee.account] = 0
            continue
        secret = secret_file.read_text("utf-8")
        _, gid = account_ids(trainee.account)
        target = course.feedback_of(trainee.account)
        count = 0
        for html in sorted(source.glob("*.html")):
            name = notebook_hash(secret=secret, notebook_id=html.stem) + ".html"
            path = target / name
            atomic_write(path, html.read_bytes(), 0o640)
            if os.geteuid() == 0:
                os.chown(path, grader_uid, gid)
            count += 1
        returned[trainee.account] = count
        progress(f"  {trainee.account}: {count} feedback file(s) returned")
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
