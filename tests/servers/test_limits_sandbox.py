"""A grading job cannot fill the machine's disk: everything it writes goes to a small private tmpfs.

Issue 15 item 5: a grading job wrote 12.6 GB to the root filesystem in 20 s (job folders under
``/var/tmp`` with only a per-file limit). Each case below writes without end to one place a job
can reach (its folder, ``/var/tmp``, ``/dev/shm``, ``/run/lock``, many empty files, a big file of
its own submission); ``atelier grade`` runs them all in one slot, with a 32 MiB scratch space, so
the space a case fills is the space the next one needs: each writer must fail with "no space"
early, score 0 for that answer alone, leave nothing on the host, and everyone else must be graded.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from autograde_course import RIGHT, make_course, scores, submit

pytestmark = pytest.mark.server

BIN = Path(sys.executable).parent
SCRATCH_MB = 32
#: Writes 1 MiB files into PLACE until something stops it (at most 200 MiB), then says how far it
#: got; the cell's error is left to propagate, as a real attack's would.
FILL = """
import os
written = 0
try:
    for i in range(200):
        with open(os.path.join({place!r}, f"blob-{{os.getpid()}}-{{i}}"), "wb") as handle:
            handle.write(b"x" * (1 << 20))
        written += 1
finally:
    print("WROTE", written, "MiB in", {place!r})
"""
#: Many empty files (no blocks at all): inodes are space too.
EMPTY = """
import os
made = 0
try:
    for i in range(100_000):
        open(f"empty-{i}", "w").close()
        made += 1
finally:
    print("MADE", made, "files")
"""
#: Needs 24 MiB of the 32 after the writers: only true if every job's leftovers are gone.
AFTER = (
    RIGHT["squares"]
    + """
import os
for place in (".", "/var/tmp"):
    with open(os.path.join(place, "room"), "wb") as handle:
        handle.write(b"y" * (12 << 20))
"""
)
WRITERS = {
    "fill-job": ".",
    "fill-vartmp": "/var/tmp",
    "fill-shm": "/dev/shm",
    "fill-runlock": "/run/lock",
}


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    course = make_course(tmp_path_factory.mktemp("limits") / "course")
    for student, place in WRITERS.items():
        submit(course, student, {**RIGHT, "squares": FILL.format(place=place)})
    submit(course, "many-empty", {**RIGHT, "squares": EMPTY})
    big = submit(course, "big-files", RIGHT)
    (big.parent / "data.bin").write_bytes(os.urandom(1 << 20) * (SCRATCH_MB + 8))
    for student in ("right", "zz-after"):
        submit(course, student, {**RIGHT, "squares": AFTER} if student == "zz-after" else RIGHT)
    command = [str(BIN / "atelier"), "grade", "--course-dir", str(course), "ps1", "--no-progress"]
    command += ["--workers=1", "--cell-timeout=20", f"--SandboxLimits.scratch_mb={SCRATCH_MB}"]
    run = subprocess.run(command, capture_output=True, text=True, timeout=300)
    return course, run, scores(course)


def _outputs(course: Path, student: str) -> str:
    nb = nbformat.read(course / "autograded" / student / "ps1" / "ps1.ipynb", as_version=4)
    return "\n".join(
        output.get("text") or output.get("evalue") or ""
        for cell in nb.cells
        for output in cell.get("outputs", [])
    )


def _points(book, student):
    return book[student]["test_squares"][0], book[student]["test_mean"][0]


@pytest.mark.parametrize("student", sorted(WRITERS))
def test_a_job_writing_without_end_stops_at_its_scratch_space(graded, student):
    """Does writing to a job's folder, /var/tmp, /dev/shm or /run/lock stop at 32 MiB, alone?"""
    course, run, book = graded
    out = _outputs(course, student)
    assert "No space left on device" in out, out[-2000:]
    written = int(out.split("WROTE", 1)[1].split()[0])
    assert written < SCRATCH_MB, out[-500:]
    # That answer fails; the trainee's other answer still counts.
    assert _points(book, student) == (0.0, 1.0), run.stdout[-3000:]


def test_many_empty_files_stop_too(graded):
    """Do 100,000 empty files (no blocks, only inodes) stop early, in the job's space only?"""
    course, _run, book = graded
    out = _outputs(course, "many-empty")
    assert "No space left on device" in out, out[-2000:]
    assert int(out.split("MADE", 1)[1].split()[0]) < 20_000
    assert _points(book, "many-empty") == (0.0, 1.0)


def test_a_submission_too_big_for_the_sandbox_is_that_trainees_error(graded):
    """Is a submission whose own files exceed the space refused with a message, for it alone?"""
    _course, run, book = graded
    line = next(x for x in run.stdout.splitlines() if x.startswith("big-files "))
    assert "do not fit" in line, run.stdout[-3000:]
    assert _points(book, "big-files") == (0.0, 0.0)


def test_everyone_else_is_graded_and_the_host_keeps_nothing(graded):
    """Are the others graded right after the writers, and is nothing left on the machine?"""
    _course, run, book = graded
    assert run.returncode == 0 or "error" in run.stdout, run.stderr[-3000:]
    assert _points(book, "right") == (2.0, 1.0)
    # Needs 24 of the slot's 32 MiB: the writers' leftovers were cleared after each of them.
    assert _points(book, "zz-after") == (2.0, 1.0), run.stdout[-3000:]
    leftovers = subprocess.run(
        ["find", "/var/tmp", "/run/lock", "/tmp", "-xdev", "-maxdepth", "2", "-name", "blob-*"],
        capture_output=True,
        text=True,
    ).stdout
    assert not leftovers, leftovers
