"""nbgrader's ``autograde`` app for one assignment of a course, configured as nbgrader does it.

Rule: the course's configuration is loaded the way ``nbgrader autograde`` loads it (from the
course folder, or root's trusted copy when another account can change that one), then the command
line's nbgrader options go over it.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path


def nbgrader_app(course_root: Path, assignment: str, log_level: int, nbgrader_config=None):
    """The ``autograde`` app, configured as ``nbgrader autograde`` configures it.

    ``nbgrader_config`` (the command line's nbgrader options) goes over the course's
    configuration files, as options on nbgrader's own command line do.
    """
    from nbgrader.apps.autogradeapp import AutogradeApp

    bindir = str(Path(sys.executable).parent)
    if os.environ.get("PATH", "").split(os.pathsep)[0] != bindir:
        # nbgrader runs alembic
        os.environ["PATH"] = bindir + os.pathsep + os.environ.get("PATH", "")
    from atelier.grading.courses.trustedconfig import config_folder, without_foreign_config

    # nbgrader loads the course folder's config too: never one another account can change.
    app = without_foreign_config(AutogradeApp)()
    cwd = os.getcwd()
    # nbgrader reads nbgrader_config.py from the working directory: the course's, or (when another
    # account can change that one, as the grader account can in a cohort's course) root's copy.
    os.chdir(config_folder(course_root))
    try:
        app.initialize([f"--CourseDirectory.root={course_root}", "--log-level=WARN", assignment])
    finally:
        os.chdir(cwd)
    if nbgrader_config:
        app.cli_config.merge(nbgrader_config)
        app.update_config(nbgrader_config)
    app.log.setLevel(log_level)
    app.coursedir.assignment_id = assignment
    return app
