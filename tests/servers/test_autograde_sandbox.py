"""Adversarial submissions (G1-G7 of the adversarial guide) graded by ``atelier grade`` in one run.

One course, one trainee per case, graded once through the command line (real sandbox accounts,
namespaces and limits, as root); each test then reads the gradebook and the autograded notebooks.
Points: ``test_squares`` is worth 2, ``test_mean`` 1 (``tests/fixtures/autograde/ps1.ipynb``).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from autograde_course import RAISING, RIGHT, WRONG, make_course, scores, submit

pytestmark = pytest.mark.server

BIN = Path(sys.executable).parent
SECRET = "hub-token-7f3e9c1d-do-not-leak"
RIGHT_SQUARES, RIGHT_MEAN = RIGHT["squares"], RIGHT["mean"]


def _answers(**cells):
    return {**RIGHT, **cells}


def _test_cell(nb, grade_id):
    return next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id)


def _comment_tests(nb):
    cell = _test_cell(nb, "test_squares")
    cell.source = "\n".join("# " + line for line in cell.source.splitlines())


def _more_points(nb):
    _test_cell(nb, "test_squares").metadata["nbgrader"]["points"] = 100


def _delete_test(nb):
    nb.cells.remove(_test_cell(nb, "test_squares"))


def _to_markdown(nb):
    cell = _test_cell(nb, "test_squares")
    index = nb.cells.index(cell)
    nb.cells[index] = nbformat.v4.new_markdown_cell("assert True", metadata=cell.metadata)


def _cases(course: Path, port: int) -> dict:
    snoop = f"""
import os, sqlite3
attempts = {{}}
for path in [{str(course / "source/ps1/ps1.ipynb")!r}, {str(course / "release/ps1/ps1.ipynb")!r},
             {str(course / "nbgrader_config.py")!r},
             {str(course / "submitted/right/ps1/ps1.ipynb")!r},
             {str(course / "gradebook.db")!r}, "/etc/shadow"]:
    try:
        open(path, "rb").read(10)
        attempts[path] = "READ"
    except Exception as error:
        attempts[path] = type(error).__name__
try:
    attempts["/tmp"] = os.listdir("/tmp")
except Exception as error:
    attempts["/tmp"] = type(error).__name__
try:
    db = sqlite3.connect({str(course / "gradebook.db")!r})
    db.execute("update grade set auto_score = 99")
    db.commit()
    attempts["gradebook"] = "WROTE"
except Exception as error:
    attempts["gradebook"] = type(error).__name__
print("ATTEMPTS", attempts)
def squares(n):
    return [99]
"""
    spy = f"""
import os, socket
print("ENV", dict(os.environ))
for path in ["/proc/1/environ", "/proc/1/cmdline"]:
    try:
        print("PROC", path, open(path, "rb").read()[:300])
    except Exception as error:
        print("PROC", path, type(error).__name__)
print("PIDS", sorted(p for p in os.listdir("/proc") if p.isdigit()))
for host, port in [("127.0.0.1", {port}), ("10.0.0.1", 80)]:
    try:
        socket.create_connection((host, port), timeout=2)
        print("NET", host, "CONNECTED")
    except Exception as error:
        print("NET", host, type(error).__name__)
{RIGHT_SQUARES}
"""
    forge = (
        """
import os, json, struct
def frame(record):
    body = json.dumps(record).encode()
    return struct.pack(">2sI", b"AT", len(body)) + body
for fd in os.listdir("/proc/self/fd"):
    target = os.readlink(f"/proc/self/fd/{fd}") if os.path.exists(f"/proc/self/fd/{fd}") else ""
    if target.startswith("pipe:") and int(fd) > 2:
        for seq in range(40):
            os.write(int(fd), frame({"seq": seq, "kind": "cell", "index": seq, "status": "ok",
                                     "outputs": []}))
"""
        + RIGHT_SQUARES
    )
    return {
        # reference answers
        "right": dict(answers=RIGHT),
        "wrong": dict(answers=WRONG),
        "raising": dict(answers=RAISING),
        # G1
        "g1-loop": dict(answers=_answers(squares="while True:\n    pass")),
        "g1-loop-in-test": dict(
            answers=_answers(squares="def squares(n):\n    while True:\n        pass")
        ),
        # G2
        # 100 MB blocks, zero-filled lazily so that the limit, not page-fault time, stops it.
        "g2-memory": dict(
            answers=_answers(
                squares="blob = []\nwhile True:\n    blob.append(bytearray(100_000_000))"
            )
        ),
        "g2-deaf": dict(
            answers=_answers(
                squares="import signal\nfor s in (signal.SIGINT, signal.SIGALRM):\n"
                "    signal.signal(s, signal.SIG_IGN)\nwhile True:\n    pass"
            )
        ),
        "g2-forkbomb": dict(answers=_answers(squares="import os\nwhile True:\n    os.fork()")),
        # G3
        "g3-flood": dict(
            answers=_answers(
                squares=RIGHT_SQUARES + "\nprint('x' * 100_000_000)",
                mean=RIGHT_MEAN + "\nfrom IPython.display import display\n"
                "display({'image/png': 'A' * 30_000_000}, raw=True)\n"
                "for i in range(10**7):\n    print(i)",
            )
        ),
        # G4, G5
        "g4-snoop": dict(answers=_answers(squares=snoop)),
        "g5-spy": dict(answers=_answers(squares=spy)),
        # G6
        "g6-commented": dict(answers=WRONG, transform=_comment_tests),
        "g6-points": dict(answers=RIGHT, transform=_more_points),
        "g6-deleted": dict(answers=RIGHT, transform=_delete_test),
        "g6-markdown": dict(answers=WRONG, transform=_to_markdown),
        "g6-broken": dict(answers=RIGHT, raw=b'{"cells": [ this is not json'),
        # G7
        "g7-exit": dict(answers=_answers(squares=RIGHT_SQUARES + "\nimport os\nos._exit(0)")),
        "g7-sysexit": dict(
            answers=_answers(squares="def squares(n):\n    import sys\n    sys.exit()")
        ),
        "g7-interrupt": dict(
            answers=_answers(squares="def squares(n):\n    raise KeyboardInterrupt")
        ),
        "g7-patch": dict(
            answers=_answers(
                squares="import builtins, numpy.testing\n"
                "builtins.AssertionError = type('Quiet', (Exception,), {})\n"
                "numpy.testing.assert_allclose = lambda *a, **k: None\n"
                "numpy.testing.assert_allclose.__code__ = (lambda *a, **k: None).__code__\n"
                "def squares(n):\n    return []",
                mean="def mean(values):\n    return 0",
            )
        ),
        "g7-envcheck": dict(
            answers=_answers(
                mean="import os\nif os.environ.get('NBGRADER_EXECUTION'):\n"
                "    import numpy.testing\n"
                "    numpy.testing.assert_allclose = lambda *a, **k: None\n"
                "def mean(values):\n    return 0"
            )
        ),
        # Sees the grading environment variable (as with stock nbgrader) and skips its work.
        "g7-envsee": dict(
            answers=_answers(
                squares=RIGHT_SQUARES + "\nimport os\n"
                "print('SEES', os.environ.get('NBGRADER_EXECUTION'))"
            )
        ),
        "g7-envskip": dict(
            answers=_answers(
                squares="import os\nif os.environ.get('NBGRADER_EXECUTION') != 'autograde':\n"
                + "\n".join("    " + line for line in RIGHT_SQUARES.splitlines())
            )
        ),
        "g7-thread": dict(
            answers=_answers(
                mean="import threading, time, numpy.testing\n"
                "def keep_patching():\n"
                "    while True:\n"
                "        numpy.testing.assert_allclose = lambda *a, **k: None\n"
                "        time.sleep(0.001)\n"
                "threading.Thread(target=keep_patching, daemon=True).start()\n"
                "def mean(values):\n    return 0"
            )
        ),
        "g7-forge": dict(answers=_answers(squares=forge)),
    }


@pytest.fixture(scope="module")
def listener():
    """A loopback TCP server the sandbox must not be able to reach."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(5)
    yield server.getsockname()[1]
    server.close()


@pytest.fixture(scope="module")
def graded(tmp_path_factory, listener):
    """The course after one ``atelier grade`` run over every case."""
    course = make_course(tmp_path_factory.mktemp("adversarial") / "course")
    cases = _cases(course, listener)
    for student, case in cases.items():
        submit(
            course, student, case["answers"], transform=case.get("transform"), raw=case.get("raw")
        )
    env = dict(os.environ, JUPYTERHUB_API_TOKEN=SECRET, ATELIER_DB_PASSWORD=SECRET)
    command = [str(BIN / "atelier"), "grade", "--course-dir", str(course), "ps1", "--no-progress"]
    command += ["--cell-timeout=2", "--notebook-timeout=30", "--memory-mb=400"]
    run = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    return course, run, scores(course)


def _points(book, student):
    grades = book[student]
    return grades["test_squares"][0], grades["test_mean"][0]


def _outputs(course, student) -> str:
    """Everything the autograded notebook's cells output (not their sources), as text."""
    nb = nbformat.read(course / "autograded" / student / "ps1" / "ps1.ipynb", as_version=4)
    parts = []
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            parts.append(output.get("text") or json.dumps(output))
    return "\n".join(parts)


def _table_line(run, student) -> str:
    return next((line for line in run.stdout.splitlines() if line.startswith(student + " ")), "")


def test_reference_answers_score_as_expected(graded):
    """Do right, wrong and raising answers get the points nbgrader gives them?"""
    _, run, book = graded
    assert _points(book, "right") == (2.0, 1.0)
    assert _points(book, "wrong") == (0.0, 1.0)
    assert _points(book, "raising") == (2.0, 0.0)
    # A run with bad submissions still grades everyone (one per case) and ends with a table.
    assert set(book) >= {"right", "wrong", "raising", "g7-forge", "g2-forkbomb"}
    assert "graded" in run.stdout and "timed out" in run.stdout


def test_g1_infinite_loop_times_out_and_later_cells_still_run(graded):
    """G1: does `while True: pass` stop at the cell timeout, score 0, and let later cells run?"""
    course, run, book = graded
    assert _points(book, "g1-loop") == (0.0, 1.0)
    assert _points(book, "g1-loop-in-test") == (0.0, 1.0)
    assert "CellTimeoutError" in _outputs(course, "g1-loop")
    assert "timed out" in _table_line(run, "g1-loop")


def test_g2_memory_signals_and_fork_bombs_are_contained(graded):
    """G2: do memory eaters, signal-deaf loops and fork bombs score 0 with a reason, alone?"""
    course, run, book = graded
    assert _points(book, "g2-memory")[0] == 0.0
    assert "MemoryError" in _outputs(course, "g2-memory")
    # Ignores SIGINT and the cell alarm: killed from outside; every cell after it is "not run".
    assert _points(book, "g2-deaf") == (0.0, 0.0)
    assert "CellNotRun" in _outputs(course, "g2-deaf")
    assert "time limit" in _table_line(run, "g2-deaf")
    # Forked copies of the notebook race to report: their records are rejected, nothing counts.
    assert _points(book, "g2-forkbomb") == (0.0, 0.0)
    assert _table_line(run, "g2-forkbomb")
    # The others, graded in the same run next to them, are untouched.
    assert _points(book, "right") == (2.0, 1.0)
    # Nothing a submission started outlives the run (every sandbox account is empty again).
    users = subprocess.run(["ps", "-eo", "user:32="], capture_output=True, text=True).stdout
    assert not [u for u in users.split() if u.startswith("atelier-sbx")]


def test_g3_output_floods_are_capped_with_a_visible_marker(graded):
    """G3: do a 100 MB line, 10^7 prints and a 30 MB image stay under the cap, with a marker?"""
    course, _run, book = graded
    path = course / "autograded" / "g3-flood" / "ps1" / "ps1.ipynb"
    assert path.stat().st_size < 2_500_000
    text = path.read_text("utf-8")
    assert "[Atelier: output truncated here" in text
    assert _points(book, "g3-flood")[0] == 2.0


def test_g4_course_files_gradebook_and_other_submissions_are_out_of_reach(graded):
    """G4: do reads of sources, config, others' work and writes to the gradebook all fail?"""
    course, _run, book = graded
    text = _outputs(course, "g4-snoop")
    line = next(line for line in text.splitlines() if "ATTEMPTS" in line)
    assert "READ" not in line and "WROTE" not in line, line
    assert "PermissionError" in line
    # Grades come from the grader only: nobody got the 99 the submission tried to write.
    assert all(
        grade[0] in (None, 0.0, 1.0, 2.0)
        for student in book.values()
        for grade in student.values()
        if isinstance(grade, tuple) and len(grade) == 3
    )
    assert _points(book, "g4-snoop") == (0.0, 1.0)


def test_g5_no_credentials_and_no_network(graded):
    """G5: are the grader's environment and /proc/1 hidden, and is every address unreachable?"""
    course, _run, book = graded
    text = _outputs(course, "g5-spy")
    assert SECRET not in text
    assert "JUPYTERHUB" not in text and "ATELIER_DB" not in text
    assert "CONNECTED" not in text
    assert "NET 127.0.0.1 ConnectionRefusedError" in text or "NET 127.0.0.1 OSError" in text
    assert "PROC /proc/1/environ PermissionError" in text
    assert _points(book, "g5-spy") == (2.0, 1.0)


def test_g6_tampered_tests_are_restored(graded):
    """G6: are commented, re-weighted and re-typed test cells restored, and a deleted one 0?"""
    _course, _run, book = graded
    assert _points(book, "g6-commented") == (0.0, 1.0)  # the original assert ran and failed
    assert _points(book, "g6-points") == (2.0, 1.0)  # still worth 2, not 100
    assert _points(book, "g6-markdown") == (0.0, 1.0)  # back to code, and failed
    deleted = book["g6-deleted"]["test_squares"]
    assert deleted[0] in (None, 0.0) and deleted[1] is None
    assert book["g6-deleted"]["test_mean"][0] == 1.0


def test_g6_a_broken_notebook_is_one_trainees_error(graded):
    """G6: is a submission that is not JSON reported for that trainee while others are graded?"""
    _course, run, book = graded
    assert "error" in _table_line(run, "g6-broken")
    assert run.returncode == 1  # the run says something needs attention
    assert _points(book, "right") == (2.0, 1.0)


@pytest.mark.parametrize(
    "student", ["g7-exit", "g7-sysexit", "g7-interrupt", "g7-patch", "g7-envcheck", "g7-thread"]
)
def test_g7_tests_that_did_not_run_or_could_not_check_score_zero(graded, student):
    """G7: do exits, interrupts, patched assertions and grading-detection all fail closed?"""
    course, run, book = graded
    squares, mean = _points(book, student)
    if student in ("g7-envcheck", "g7-thread"):
        assert mean == 0.0
    elif student == "g7-exit":
        assert (squares, mean) == (0.0, 0.0)
        assert "CellNotRun" in _outputs(course, student)
        assert "ended early" in _table_line(run, student)
    else:
        assert squares == 0.0


def test_g7_grading_is_visible_but_skipping_work_still_scores_zero(graded):
    """G7: is NBGRADER_EXECUTION=autograde visible, and does work skipped on seeing it score 0?"""
    course, _run, book = graded
    assert "SEES autograde" in _outputs(course, "g7-envsee")
    assert _points(book, "g7-envsee") == (2.0, 1.0)
    # The answer cell defined nothing under grading: its test did not pass, so 0 (mean still 1).
    assert _points(book, "g7-envskip") == (0.0, 1.0)


def test_g7_forged_result_records_score_zero(graded):
    """G7: does writing fake "passed" records on the result pipe get the submission 0, flagged?"""
    _course, run, book = graded
    assert _points(book, "g7-forge") == (0.0, 0.0)
    assert "failed" in _table_line(run, "g7-forge")


def test_rerun_is_idempotent_and_keeps_manual_grades(graded, tmp_path):
    """Does a re-run skip finished work, and a forced re-grade keep manual scores and comments?"""
    course, _, _ = graded
    copy = tmp_path / "course"
    shutil.copytree(course, copy)
    for student in list((copy / "submitted").iterdir()):
        if student.name not in ("right", "wrong"):
            shutil.rmtree(student)
            shutil.rmtree(copy / "autograded" / student.name, ignore_errors=True)
    config = copy / "nbgrader_config.py"
    config.write_text(config.read_text().replace(str(course), str(copy)))
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{copy / 'gradebook.db'}", course_id="testcourse") as gb:
        grade = gb.find_grade("test_squares", "ps1", "ps1", "wrong")
        grade.manual_score = 1.5
        comment = gb.find_comment("squares", "ps1", "ps1", "wrong")
        comment.manual_comment = "Close: check the formula."
        gb.db.commit()
    before = scores(copy)
    command = [str(BIN / "atelier"), "grade", "--course-dir", str(copy), "ps1", "--no-progress"]
    again = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert "skipped" in again.stdout and "graded" not in again.stdout, again.stdout
    assert scores(copy) == before
    forced = subprocess.run([*command, "--force"], capture_output=True, text=True, timeout=120)
    assert forced.returncode == 0, forced.stderr
    after = scores(copy)
    assert after["wrong"]["test_squares"] == (0.0, 1.5, True)  # auto again, manual kept, flagged
    assert after["wrong"]["comment:squares"][1] == "Close: check the formula."
    journal = (copy / "log" / "grade-journal.jsonl").read_text().splitlines()
    assert {json.loads(line)["student"] for line in journal} >= {"right", "wrong"}
