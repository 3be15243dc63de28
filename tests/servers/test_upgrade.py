"""An install made before the rooms moved (issue 16) keeps working after the upgrade.

A course's ``nbgrader_config.py`` names Atelier's exchange classes and preprocessors by module path,
and 0.1 wrote paths that no longer exist (``atelier.grading.course_exchange``). No alias keeps
them: every verb and the hub's start run :func:`atelier.grading.courses.folders.ensure`, which
writes the file again, in the course folder and in root's trusted copy. Here, a real course
(grader account, folders, gradebook) is given the file as 0.1 wrote it, then repaired as the hub's
start does.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path

import pytest
import yaml
from harness import atelier_paths
from traitlets.utils.importstring import import_item

pytestmark = pytest.mark.server

OLD_COURSE_CONFIG = (
    Path(__file__).resolve().parents[1] / "fixtures" / "upgrade" / "course-nbgrader_config.py"
)


@pytest.fixture
def course_of_0_1():
    """A course on disk whose two config files are as Atelier 0.1 wrote them."""
    from atelier.grading.course import Course
    from atelier.grading.courses.folders import ensure
    from atelier.settings import load_settings

    base = Path(tempfile.mkdtemp(prefix="atelier-upgrade-", dir="/tmp"))
    os.chmod(base, 0o755)
    prefix = f"u{uuid.uuid4().hex[:5]}-"
    settings_file = base / "settings.yaml"
    settings_file.write_text(
        yaml.safe_dump(
            {
                "hub": {"state_dir": str(base / "state")},
                "accounts": {"prefix": prefix, "home_root": str(base / "home")},
                "grading": {
                    "courses_root": str(base / "courses"),
                    "exchange_root": str(base / "exchange"),
                },
            }
        )
    )
    course = Course.from_settings(load_settings(settings_file), "x")
    try:
        ensure(course)
        old = OLD_COURSE_CONFIG.read_text("utf-8").replace("/srv/atelier/x", str(base / "exchange"))
        old = old.replace("/srv/atelier/courses", str(base / "courses"))
        for path in (course.config_file, course.trusted_config_file):
            path.write_text(old, "utf-8")
        yield course
    finally:
        subprocess.run(["userdel", "--remove", course.grader_account], capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


def test_a_course_configured_by_0_1_is_repaired_by_the_hubs_start(course_of_0_1):
    """Does ensure() (every verb, the hub's start) turn a 0.1 course config into loading classes?"""
    from atelier.grading.courses.folders import ensure

    course = course_of_0_1
    stale = atelier_paths(course.trusted_config_file)
    assert "atelier.grading.course_exchange.AtelierCollect" in stale
    with pytest.raises(ImportError):
        import_item("atelier.grading.course_exchange.AtelierCollect")

    ensure(course)

    expected = course.nbgrader_config_text()
    for path in (course.config_file, course.trusted_config_file):
        assert path.read_text("utf-8") == expected, path
        paths = atelier_paths(path)
        assert "atelier.grading.exchange.course.AtelierCollect" in paths
        for dotted in paths:
            assert import_item(dotted) is not None, dotted
