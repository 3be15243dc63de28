"""``atelier grade`` honours nbgrader's options or refuses them, and deletes only what it regrades.

Issue 15, items 12-16: nbgrader options on the command line (honoured as nbgrader does, or refused
by name, never ignored), ``Execute.timeout = None`` (no per-cell limit), the gradebook's switch to
WAL (once, before the grading processes start), a notebook filter (only the chosen notebooks'
files are deleted; a deleted autograded notebook is graded again) and notebooks whose kernel is
not Python (refused by name, the others graded).
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import nbformat
import pytest
from autograde_course import FIXTURE, RIGHT, WRONG, make_course, scores, stock_autograde, submit

pytestmark = pytest.mark.server

BIN = Path(sys.executable).parent
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "autograde"
#: A right answer that takes 3 s: scores full marks with a 5 s cell limit, 0 with a 2 s one.
SLOW = {**RIGHT, "squares": "import time\ntime.sleep(3)\n" + RIGHT["squares"]}
#: A right answer only while the per-cell limit it runs under (read from the sandbox's
#: interval timer) is above ``{low}`` and at most ``{high}`` seconds; prints what it saw.
TIMED = (
    "import signal\n"
    "_left = signal.getitimer(signal.ITIMER_REAL)[0]\n"
    "print('cell limit', _left)\n"
    "def squares(n):\n"
    "    ok = {low} < _left <= {high}\n"
    "    return [i * i for i in range(1, n + 1)] if ok else []"
)


def grade(course: Path, *args: str, assignments=("ps1",)) -> subprocess.CompletedProcess:
    command = [str(BIN / "atelier"), "grade", "--course-dir", str(course), *assignments]
    return subprocess.run(
        [*command, "--no-progress", *args], capture_output=True, text=True, timeout=300
    )


def count(run: subprocess.CompletedProcess, status: str) -> int:
    for line in run.stdout.splitlines():
        if line.startswith(status):
            return int(line.split()[-1])
    return 0


def square_scores(course: Path) -> dict:
    return {student: grades["test_squares"][0] for student, grades in scores(course).items()}


@pytest.fixture
def four(tmp_path_factory):
    """A course factory: ana right, ben right but slow, chloe wrong, dan right; not graded."""

    def make(name: str) -> Path:
        course = make_course(tmp_path_factory.mktemp(name) / "course")
        submit(course, "ana", RIGHT)
        submit(course, "ben", SLOW)
        submit(course, "chloe", WRONG)
        submit(course, "dan", RIGHT)
        return course

    return make


# -- item 12: nbgrader's options -----------------------------------------------------------------


def test_nbgrader_options_give_the_same_scores_as_stock_nbgrader(four):
    """With --Execute.timeout=2 and a student excluded, are scores those of stock nbgrader's?"""
    options = ["--Execute.timeout=2", "--CourseDirectory.student_id_exclude=chloe"]
    ours, theirs = four("ours"), four("stock")
    run = grade(ours, *options)
    assert run.returncode == 0, run.stderr
    done = stock_autograde(theirs, *options)
    assert done.returncode == 0, done.stderr
    assert scores(ours) == scores(theirs)
    # The course says 5 s (ben's answer would pass): the command line's 2 s applied.
    assert square_scores(ours) == {"ana": 2.0, "ben": 0.0, "dan": 2.0}
    assert not (ours / "autograded" / "chloe").exists()


def test_student_assignment_and_force_aliases_mean_what_they_mean_in_nbgrader(four):
    """Do --student (a glob), --assignment and -f select and regrade as nbgrader's do?"""
    course = four("aliases")
    run = grade(course, "--student=[ab]*", "--assignment=ps1", assignments=())
    assert run.returncode == 0, run.stderr
    assert set(scores(course)) == {"ana", "ben"}
    again = grade(course, "--student=ana", "-f")
    assert (count(again, "graded"), count(again, "skipped")) == (1, 0), again.stdout
    both = grade(course, "--assignment=ps2")
    assert both.returncode != 0 and "name the assignment once" in both.stderr


def test_no_execute_is_honoured(four):
    """Does --no-execute grade without running anything, as nbgrader's does (tests do not fail)?"""
    course = four("noexec")
    run = grade(course, "--no-execute", "--student=chloe")
    assert run.returncode == 0, run.stderr
    nb = nbformat.read(course / "autograded" / "chloe" / "ps1" / "ps1.ipynb", as_version=4)
    assert all(not cell.get("outputs") for cell in nb.cells if cell.cell_type == "code")


def _nothing_graded(course: Path) -> None:
    assert not (course / "autograded").exists()
    assert scores(course) == {}


def test_unknown_and_unsupported_command_line_options_are_refused_by_name(four):
    """Is every option atelier grade cannot honour named, and is nothing graded?"""
    course = four("refused")
    cli = [
        "--Foo.bar=1",  # no such class
        "--Execute.timout=2",  # a typo: no such option
        "--nonsense=1",  # not an option at all
        "--GenerateFeedback.force=True",  # a class autograding does not use
        "--CourseDirectory.root=/elsewhere",  # the course is --course-dir's
        "--SandboxLimits.cell_timout=3",  # a typo in one of Atelier's own
    ]
    run = grade(course, *cli)
    assert run.returncode != 0
    named = ["--Foo.bar", "--Execute.timout", "--nonsense", "--GenerateFeedback.force"]
    for option in [*named, "--SandboxLimits.cell_timout"]:
        assert option in run.stderr, (option, run.stderr)
    assert "--CourseDirectory.root" in run.stderr and "--course-dir" in run.stderr
    execute = ["--Execute.interrupt_on_timeout=False", "--ExecutePreprocessor.kernel_name=ir"]
    run = grade(course, *execute, "--Execute.execute_retries=0")
    assert run.returncode != 0
    assert "Execute.interrupt_on_timeout (on the command line)" in run.stderr, run.stderr
    assert "kernel 'ir' is not Python" in run.stderr
    assert "execute_retries" not in run.stderr  # nbgrader's default: it changes nothing
    _nothing_graded(course)


def test_unsupported_execute_option_in_the_course_config_is_refused(four):
    """Is an Execute option in nbgrader_config.py that the sandbox cannot honour refused there?"""
    course = four("config")
    with open(course / "nbgrader_config.py", "a") as config:
        config.write("c.Execute.execute_retries = 3\nc.Execute.interrupt_on_timeout = True\n")
    run = grade(course)
    assert run.returncode != 0
    assert f"Execute.execute_retries ({course / 'nbgrader_config.py'})" in run.stderr, run.stderr
    assert "interrupt_on_timeout" not in run.stderr  # nbgrader's default: nothing changes
    _nothing_graded(course)


def test_sandbox_steps_cannot_be_swapped_for_an_unsandboxed_execute(four):
    """Is a configured ExecutePreprocessor (which would run code as root) refused?"""
    course = four("steps")
    steps = "['nbconvert.preprocessors.ExecutePreprocessor']"
    run = grade(course, f"--Autograde.autograde_preprocessors={steps}")
    assert run.returncode != 0
    assert "ExecutePreprocessor would run trainee code outside the sandbox" in run.stderr
    _nothing_graded(course)


# -- item 13: Execute.timeout = None and numbers, from the config file and the command line --------


@pytest.mark.parametrize(
    ("config", "cli", "low", "high"),
    [
        ("c.Execute.timeout = None\n", [], 1e6, 1e10),
        ("", ["--Execute.timeout=None"], 1e6, 1e10),
        ("del c.Execute['timeout']\nc.ExecutePreprocessor.timeout = None\n", [], 1e6, 1e10),
        ("c.Execute.timeout = None\n", ["--Execute.timeout=12"], 8, 12),
    ],
    ids=["file-none", "cli-none", "file-executepreprocessor", "cli-over"],
)
def test_cell_limit_follows_nbgrader_timeout(tmp_path, config, cli, low, high):
    """Does each cell run under nbgrader's timeout, with None (or 0) meaning no per-cell limit?"""
    course = make_course(tmp_path / "course", config=config)
    submit(course, "ana", {**RIGHT, "squares": TIMED.format(low=low, high=high)})
    run = grade(course, *cli)
    assert run.returncode == 0, run.stderr
    output = (course / "autograded" / "ana" / "ps1" / "ps1.ipynb").read_text()
    assert square_scores(course) == {"ana": 2.0}, output[output.find("cell limit") :][:80]


# -- item 14: WAL, switched once, before the grading processes ----------------------------------

TRACED = """
import json, os, re, sys
from sqlalchemy import event
from sqlalchemy.pool import Pool
from atelier.grading.gradeapp import grade_assignments

log = sys.argv[2]

@event.listens_for(Pool, "connect")
def trace(dbapi_connection, record):
    def seen(statement):
        if re.search(r"journal_mode\\s*=", statement, re.I):
            with open(log, "a") as out:
                out.write(json.dumps([os.getpid(), statement]) + "\\n")
    dbapi_connection.set_trace_callback(seen)

outcomes = grade_assignments(sys.argv[1], ["ps1"], workers=4, shards=4,
                             config={"SandboxOptions": {}})
print(json.dumps([o.__dict__ for o in outcomes]))
"""


def test_stock_gradebook_graded_by_several_processes_is_switched_to_wal_once(tmp_path):
    """Graded by 4 processes, is a stock gradebook switched to WAL once, never by a process?

    Grading processes switching it at once raced ("database is locked" made a trainee an error).
    """
    for run in range(2):
        course = make_course(tmp_path / f"course{run}")
        db = course / "gradebook.db"
        with sqlite3.connect(db) as con:
            assert con.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
        for student in ("ana", "ben", "chloe", "dan"):
            submit(course, student, RIGHT if student < "d" else WRONG)
        log = tmp_path / f"pragmas{run}.jsonl"
        done = subprocess.run(
            [str(BIN / "python"), "-c", textwrap.dedent(TRACED), str(course), str(log)],
            capture_output=True,
            text=True,
            timeout=300,
            env=dict(os.environ, PATH=f"{BIN}:{os.environ['PATH']}"),
        )
        assert done.returncode == 0, done.stderr
        outcomes = json.loads(done.stdout.strip().splitlines()[-1])
        assert sorted(o["status"] for o in outcomes) == ["graded"] * 4, outcomes
        switches = (
            [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
        )
        assert switches == [], "grading processes switched the journal mode themselves"
        with sqlite3.connect(db) as con:
            assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert len(scores(course)) == 4


# -- item 15: a notebook filter deletes only what it regrades --------------------------------------


def notebook_scores(course: Path) -> dict:
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}", course_id="testcourse") as gb:
        return {
            (submission.student.id, notebook.name): notebook.score
            for submission in gb.find_assignment("ps1").submissions
            for notebook in submission.notebooks
        }


@pytest.fixture
def two_notebooks(tmp_path):
    """A course whose assignment has two notebooks, a and b; ana answers a right and b wrong."""
    course = make_course(tmp_path / "course", notebooks={"a": FIXTURE, "b": FIXTURE})
    submit(course, "ana", RIGHT, notebook="a")
    submit(course, "ana", WRONG, notebook="b")
    return course


def test_notebook_filter_deletes_only_the_chosen_notebook(two_notebooks):
    """Does --notebook=a --force regrade a and leave b's autograded file and scores alone?"""
    course = two_notebooks
    assert grade(course).returncode == 0
    folder = course / "autograded" / "ana" / "ps1"
    before = notebook_scores(course)
    b_before = (folder / "b.ipynb").read_bytes()
    (folder / "a.ipynb").write_text("{}")  # so that a rewrite shows
    run = grade(course, "--notebook=a", "--force")
    assert run.returncode == 0, run.stderr
    assert (folder / "b.ipynb").read_bytes() == b_before
    assert nbformat.read(folder / "a.ipynb", as_version=4).cells
    assert (folder / "timestamp.txt").exists()
    assert notebook_scores(course) == before
    assert before[("ana", "a")] > before[("ana", "b")]
    # The same through the course's configuration (CourseDirectory.notebook_id).
    with open(course / "nbgrader_config.py", "a") as config:
        config.write("c.CourseDirectory.notebook_id = 'b'\n")
    run = grade(course, "--force")
    assert run.returncode == 0, run.stderr
    assert (folder / "a.ipynb").exists() and (folder / "b.ipynb").exists()


def test_deleted_or_altered_autograded_notebook_is_graded_again(two_notebooks):
    """Is an autograded notebook that was deleted or changed graded again without --force?"""
    course = two_notebooks
    assert grade(course).returncode == 0
    folder = course / "autograded" / "ana" / "ps1"
    expected = notebook_scores(course)
    (folder / "b.ipynb").unlink()
    run = grade(course)
    assert (count(run, "graded"), count(run, "skipped")) == (1, 0), run.stdout
    assert (folder / "b.ipynb").exists() and notebook_scores(course) == expected
    with open(folder / "a.ipynb", "a") as handle:
        handle.write(" ")
    run = grade(course)
    assert (count(run, "graded"), count(run, "skipped")) == (1, 0), run.stdout
    run = grade(course)
    assert (count(run, "graded"), count(run, "skipped")) == (0, 1), run.stdout
    # A notebook left out by a filter is not graded; the next unfiltered run grades it.
    (folder / "b.ipynb").unlink()
    run = grade(course, "--notebook=a")
    assert (count(run, "graded"), count(run, "skipped")) == (0, 1), run.stdout
    assert not (folder / "b.ipynb").exists()
    assert count(grade(course), "graded") == 1 and (folder / "b.ipynb").exists()


# -- item 16: a notebook whose kernel is not Python ---------------------------------------------


def test_notebook_with_another_kernel_is_refused_by_name_and_others_graded(tmp_path):
    """Is an R notebook refused with its file named, while Python notebooks are graded?"""
    course = make_course(tmp_path / "course")
    make_course(course, assignment="rk", notebooks={"rk": FIXTURES / "rk.ipynb"})
    submit(course, "ana", RIGHT)
    submit(course, "ana", {"double": "double <- function(x) 2 * x"}, assignment="rk")

    def claims_r(nb):
        nb.metadata.kernelspec = {"name": "ir", "language": "R", "display_name": "R"}

    # A trainee's own kernelspec is replaced by the assignment's (nbgrader's OverwriteKernelspec).
    submit(course, "ben", RIGHT, transform=claims_r)
    run = grade(course, assignments=("ps1", "rk"))
    assert run.returncode == 1
    assert count(run, "graded") == 2 and count(run, "error") == 1, run.stdout
    line = next(
        line for line in run.stdout.splitlines() if line.startswith("ana ") and "error" in line
    )
    assert "submitted/ana/rk/rk.ipynb" in line and "not Python" in line, line
    assert square_scores(course) == {"ana": 2.0, "ben": 2.0}
    assert not (course / "autograded" / "ana" / "rk").exists()
    # Not recorded as done: the next run refuses it again rather than skipping it.
    again = grade(course, assignments=("rk",))
    assert count(again, "error") == 1 and count(again, "skipped") == 0, again.stdout
