"""Autograding cannot be talked into full marks: one fixture notebook per way of trying.

Every notebook in ``tests/fixtures/autograde/cheats/`` is a submission of ``ps1`` (see
``autograde_course.py``) whose answers are wrong (``squares`` doubles, ``mean`` returns 0) and whose
answer cells then try, in plain Python, to make the tests pass anyway: by swallowing errors, by
changing what the tests import or how later cells are parsed, by code that runs in the middle of a
test (threads, signal handlers, tracing, audit hooks, finalizers, the shell's events), or by
rewriting the grader's own state. ``honest.ipynb`` is right, and uses what honest work uses (a
magic, prints, a display). All are graded by one ``atelier grade`` run (real sandbox accounts,
namespaces and limits, as root).

Each cheat must score 0 on both tests; the honest notebook full marks. Where stock nbgrader is not
fooled either, its scores must be the same (``STOCK_AGREES``). The others are left out of that
comparison, and Atelier's honest 0 stands: stock nbgrader gives full marks for the test the cheat
aims at in ``ast-transformers``, ``audit-hook``, ``cell-events``, ``finalizer``, ``import-hook``,
``input-transformers``, ``meta-path`` and ``settrace`` (they run in its kernel as in ours); its
kernel breaks on ``stdout-forge`` (the forged frames go to its own sockets); and ``fd-thread``
and ``signal-handler`` (no descriptors left, a process signalling without end) are not run on it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from autograde_course import make_course, scores, stock_autograde, submit

pytestmark = pytest.mark.server

BIN = Path(sys.executable).parent
CHEATS = Path(__file__).resolve().parents[1] / "fixtures" / "autograde" / "cheats"
CASES = sorted(path.stem for path in CHEATS.glob("*.ipynb") if path.stem != "honest")
#: Cheats stock nbgrader also scores 0: Atelier must agree with it on these (and on honest work).
#: ``custom-exc``: ipykernel reports the swallowed error as a failed execution. ``recorder`` and
#: ``gc-job`` reach for Atelier's own machinery, which a stock kernel does not have.
STOCK_AGREES = [
    "honest", "atexit-exit", "custom-exc", "excepthook", "gc-job", "recorder", "sys-modules",
]  # fmt: skip


def _submit_all(course: Path, names) -> None:
    for name in names:
        submit(course, name, {}, raw=(CHEATS / f"{name}.ipynb").read_bytes())


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """The course after one ``atelier grade`` run over every fixture."""
    course = make_course(tmp_path_factory.mktemp("cheats") / "course")
    _submit_all(course, ["honest", *CASES])
    command = [str(BIN / "atelier"), "grade", "--course-dir", str(course), "ps1", "--no-progress"]
    command += ["--cell-timeout=5", "--notebook-timeout=60"]
    run = subprocess.run(command, capture_output=True, text=True, timeout=600)
    return course, run, scores(course)


def _points(book, student):
    return book[student]["test_squares"][0], book[student]["test_mean"][0]


def _test_outputs(course: Path, student: str) -> dict:
    nb = nbformat.read(course / "autograded" / student / "ps1" / "ps1.ipynb", as_version=4)
    return {
        cell.metadata["nbgrader"]["grade_id"]: cell.outputs
        for cell in nb.cells
        if cell.metadata.get("nbgrader", {}).get("grade_id", "").startswith("test_")
    }


def test_honest_work_scores_full_marks(graded):
    """Does a right notebook (a magic, prints, a display) get every point, with no error shown?"""
    course, run, book = graded
    assert _points(book, "honest") == (2.0, 1.0), run.stdout + run.stderr
    for outputs in _test_outputs(course, "honest").values():
        assert not [o for o in outputs if o["output_type"] == "error"]


@pytest.mark.parametrize("case", CASES)
def test_cheat_scores_zero(graded, case):
    """Do wrong answers that try to make the tests pass still score 0 on every test?"""
    course, run, book = graded
    assert case in book, run.stdout + run.stderr
    assert _points(book, case) == (0.0, 0.0), _test_outputs(course, case)
    # Each test shows why it scored 0 (an error output, as nbgrader reads it).
    for grade_id, outputs in _test_outputs(course, case).items():
        kinds = [o["output_type"] for o in outputs]
        assert "error" in kinds, (grade_id, outputs)


def test_a_swallowed_error_is_a_failed_test(graded):
    """With the shell's custom exception handler set, is a failing test still shown as failed?"""
    course, _run, _book = graded
    outputs = _test_outputs(course, "custom-exc")["test_squares"]
    assert outputs[0]["ename"] == "AssertionError"


def test_threads_and_exhausted_descriptors_fail_closed(graded):
    """With a thread running and no descriptor left, is the test refused rather than run?"""
    course, _run, _book = graded
    outputs = _test_outputs(course, "fd-thread")["test_mean"]
    assert outputs[0]["ename"] == "GradingRefused"
    assert "threads" in outputs[0]["evalue"]


def test_stock_nbgrader_agrees_where_it_is_not_fooled(graded, tmp_path):
    """On honest work and the cheats stock nbgrader also scores 0, are the gradebooks the same?"""
    _course, _run, book = graded
    stock = make_course(tmp_path / "course")
    _submit_all(stock, STOCK_AGREES)
    run = stock_autograde(stock)
    assert run.returncode == 0, run.stderr
    expected = scores(stock)
    assert {name: book[name] for name in STOCK_AGREES} == expected
    assert _points(expected, "honest") == (2.0, 1.0)


def test_fixtures_are_submissions_of_ps1():
    """Is every fixture a valid notebook with ps1's graded cells (so the cheats are graded)?"""
    for path in CHEATS.glob("*.ipynb"):
        nb = nbformat.read(path, as_version=4)
        ids = {c.metadata.get("nbgrader", {}).get("grade_id") for c in nb.cells}
        assert {"squares", "test_squares", "mean", "test_mean"} <= ids, path.name
        assert json.loads(path.read_text())["metadata"]["atelier_fixture"] == path.stem
