"""``atelier grade`` against stock ``nbgrader autograde``, on a Dask cluster, and after a crash.

One small cohort (right, wrong, raising, timing out, late) is built once; each test grades its own
copy of the course, so the gradebooks can be compared trainee by trainee.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from autograde_course import RAISING, RIGHT, WRONG, make_course, scores, stock_autograde, submit

pytestmark = pytest.mark.server

BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def cohort(tmp_path_factory) -> Path:
    """A course with five submissions, not yet graded."""
    course = make_course(
        tmp_path_factory.mktemp("cohort") / "course", config="c.Execute.timeout = 2\n"
    )
    submit(course, "ana", RIGHT)
    submit(course, "ben", WRONG)
    submit(course, "chloe", RAISING)
    submit(course, "dev", {**RIGHT, "squares": "import time\ntime.sleep(30)"})
    submit(course, "eva", WRONG, late=True)
    return course


def copy_course(course: Path, target: Path) -> Path:
    """A copy of ``course`` at ``target`` whose config points at the copy."""
    shutil.copytree(course, target)
    config = target / "nbgrader_config.py"
    config.write_text(config.read_text().replace(str(course), str(target)))
    return target


def atelier_grade(course: Path, *extra: str, timeout: int = 180) -> subprocess.CompletedProcess:
    command = [str(BIN / "atelier"), "grade", "--course-dir", str(course), "ps1", "--no-progress"]
    return subprocess.run([*command, *extra], capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def graded_by_atelier(cohort, tmp_path_factory) -> Path:
    """The cohort graded by ``atelier grade``."""
    course = copy_course(cohort, tmp_path_factory.mktemp("atelier") / "course")
    run = atelier_grade(course)
    assert run.returncode == 0, run.stderr
    return course


def test_same_gradebook_entries_as_stock_nbgrader(cohort, graded_by_atelier, tmp_path):
    """Does every trainee get the same scores, comments, review flags and lateness as with stock?"""
    stock = copy_course(cohort, tmp_path / "course")
    run = stock_autograde(stock)
    assert run.returncode == 0, run.stderr
    expected = scores(stock)
    assert scores(graded_by_atelier) == expected
    assert expected["ana"]["test_squares"][0] == 2.0 and expected["eva"]["late"] > 0
    # The autograded notebooks and their timestamps exist where formgrader and feedback look.
    for student in expected:
        folder = graded_by_atelier / "autograded" / student / "ps1"
        assert (folder / "ps1.ipynb").exists() and (folder / "timestamp.txt").exists()


def test_dask_cluster_grades_the_same(cohort, graded_by_atelier, tmp_path):
    """Given a Dask scheduler address, do separate worker processes grade with the same results?"""
    from distributed import LocalCluster

    course = copy_course(cohort, tmp_path / "course")
    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None
    ) as cluster:
        run = atelier_grade(course, f"--dask={cluster.scheduler_address}")
    assert run.returncode == 0, run.stderr
    assert scores(course) == scores(graded_by_atelier)


def test_interrupted_run_resumes_where_it_stopped(cohort, tmp_path):
    """After kill -9 mid-run, does the next run grade only what was not finished, and correctly?"""
    course = copy_course(cohort, tmp_path / "course")
    for index in range(6):
        submit(course, f"slow{index}", {**RIGHT, "written": "x"}, transform=_sleepy)
    journal = course / "log" / "grade-journal.jsonl"
    command = [str(BIN / "atelier"), "grade", "--course-dir", str(course), "ps1", "--no-progress"]
    process = subprocess.Popen(
        [*command, "--workers=1"],
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if journal.exists() and _done_lines(journal) >= 3:
            break
        time.sleep(0.1)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    done_before = _done_lines(journal)
    assert 3 <= done_before < 11
    rerun = atelier_grade(course)
    assert rerun.returncode == 0, rerun.stderr
    skipped = next(line for line in rerun.stdout.splitlines() if line.startswith("skipped"))
    assert int(skipped.split()[-1]) == done_before
    book = scores(course)
    assert len(book) == 11
    assert all(book[f"slow{i}"]["test_squares"][0] == 2.0 for i in range(6))


def _sleepy(nb):
    """Make a submission take about a second to run, so a run can be interrupted midway."""
    nb.cells[1].source = "import time\ntime.sleep(0.7)\n" + nb.cells[1].source


def _done_lines(journal: Path) -> int:
    """Submissions the journal records as completely graded."""
    return sum('"event": "done"' in line for line in journal.read_text().splitlines())


def _kill_midway(course: Path, rng: random.Random, *extra: str) -> None:
    """Start ``atelier grade``, and kill -9 its process group at a random point of the grading."""
    journal = course / "log" / "grade-journal.jsonl"
    lines = len(journal.read_text().splitlines()) if journal.exists() else 0
    command = [str(BIN / "atelier"), "grade", "--course-dir", str(course), "ps1", "--no-progress"]
    process = subprocess.Popen(
        [*command, *extra],
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    # Once the grading has begun (its first journal line), wait a random while more.
    while time.monotonic() < deadline and process.poll() is None:
        if journal.exists() and len(journal.read_text().splitlines()) > lines:
            break
        time.sleep(0.05)
    time.sleep(rng.uniform(0.0, 1.5))
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def _graded_notebooks(course: Path) -> dict:
    """Every autograded notebook: its cells' sources and outputs (not tracebacks: timings)."""
    found = {}
    for path in sorted((course / "autograded").glob("*/ps1/*.ipynb")):
        cells = json.loads(path.read_text())["cells"]
        found[str(path.relative_to(course))] = [
            (
                cell["source"],
                [
                    {k: v for k, v in output.items() if k != "traceback"}
                    for output in cell.get("outputs", [])
                ],
            )
            for cell in cells
        ]
    return found


def test_killed_at_random_points_the_rerun_matches_an_uninterrupted_run(
    cohort, graded_by_atelier, tmp_path
):
    """After kill -9 at random points, does a rerun give the scores and notebooks of one run?

    Killed: a first run, or a --force run over a graded course; the rerun is without --force.

    A --force run killed midway used to leave sanitized, never executed notebooks that the journal
    of the earlier run vouched for: "graded 1, skipped 39".
    """
    expected_scores = scores(graded_by_atelier)
    expected_notebooks = _graded_notebooks(graded_by_atelier)
    assert len(expected_notebooks) == len(expected_scores) == 5
    rng = random.Random(15)
    for attempt in range(3):
        if attempt == 0:
            course = copy_course(cohort, tmp_path / f"course{attempt}")
            _kill_midway(course, rng)
        else:
            course = copy_course(graded_by_atelier, tmp_path / f"course{attempt}")
            _kill_midway(course, rng, "--force")
        rerun = atelier_grade(course)
        assert rerun.returncode == 0, rerun.stderr
        assert scores(course) == expected_scores, f"attempt {attempt}: {rerun.stdout}"
        assert _graded_notebooks(course) == expected_notebooks, f"attempt {attempt}"
