"""Root never trusts what a course's grader account can write: its config file, its gradebook.

The course folder belongs to the grader account (formgrader runs as it). Before issue 15, root's
``atelier grade`` ran the ``nbgrader_config.py`` found there (code that account wrote, run as
root), and root's course set-up followed links at the gradebook's names (``chown`` of whatever
file the link pointed to). Each test plants what the grader account could plant, as that
account, and checks root does not act on it.
"""

from __future__ import annotations

import os
import pwd
import subprocess
import tempfile
from pathlib import Path

import pytest
from harness import FIXTURES
from hubs import HUB_ROSTER, running_hub

pytestmark = pytest.mark.server


@pytest.fixture(scope="module")
def course_x():
    """A hub (not started) whose cohort x has the quiz released: a real course and grader."""
    from atelier.grading.course import Course
    from atelier.settings import load_settings

    with running_hub(roster=HUB_ROSTER, start=False) as hub:
        hub.atelier("release", str(FIXTURES / "grading" / "01-quiz"), "--cohort=x")
        yield hub, Course.from_settings(load_settings(hub.settings_path), "x")


def as_grader(course, *command: str) -> None:
    """Run ``command`` as the course's grader account (what its own code could do)."""
    subprocess.run(["/usr/sbin/runuser", "-u", course.grader_account, "--", *command], check=True)


@pytest.fixture
def root_only(tmp_path_factory):
    """A folder only root can write: anything appearing in it was written by root."""
    folder = Path(tempfile.mkdtemp(prefix="atelier-rootonly-"))
    folder.chmod(0o700)
    yield folder
    for child in folder.iterdir():
        child.unlink()
    folder.rmdir()


def test_root_grading_never_runs_the_graders_config_file(course_x, root_only):
    """Does `atelier grade` as root load root's copy, not the config the grader account wrote?"""
    hub, course = course_x
    marker = root_only / "ran-as-root"
    hostile = f"open({str(marker)!r}, 'w').write('pwned')\nc = get_config()  # noqa\n"
    write = f"open({str(course.config_file)!r}, 'w').write({hostile!r})"
    as_grader(course, "/usr/bin/python3", "-c", write)
    assert course.config_file.stat().st_uid == pwd.getpwnam(course.grader_account).pw_uid
    result = hub.atelier("grade", "quiz-en", "--cohort=x", "--no-progress", check=False)
    assert not marker.exists(), "root ran the grader account's nbgrader_config.py"
    assert "Traceback" not in result.stderr, result.stderr[-2000:]


@pytest.mark.parametrize("suffix", ["-shm", "-wal", "-journal", ""])
def test_root_never_follows_a_link_at_the_gradebooks_names(course_x, root_only, suffix):
    """Is a link the grader planted at gradebook.db{suffix} refused, its target left alone?"""
    from atelier.errors import AtelierError
    from atelier.grading.courses.folders import ensure

    _, course = course_x
    target = root_only / "secret"
    target.write_text("root's\n")
    before = os.stat(target)
    path = Path(f"{course.gradebook_path}{suffix}")
    saved = None
    if suffix == "":
        saved = path.with_name("gradebook.saved")
        as_grader(course, "mv", str(path), str(saved))
    else:
        as_grader(course, "rm", "-f", str(path))
    as_grader(course, "ln", "-s", str(target), str(path))
    try:
        with pytest.raises(AtelierError, match="gradebook"):
            ensure(course)
        after = os.stat(target)
        assert (after.st_uid, after.st_gid, after.st_mode) == (
            before.st_uid,
            before.st_gid,
            before.st_mode,
        ), "root changed the file the link points to"
        assert target.read_text() == "root's\n"
    finally:
        path.unlink()
        if saved is not None:
            saved.rename(path)
    ensure(course)  # the course is sound again
