"""Planning a grading run, in the command before any grading process starts.

Rule: every option is checked (honoured or refused, :mod:`atelier.grading.autograde.grade_options`)
and the submissions to grade are listed as nbgrader would list them, and the gradebook is made
ready for them (trainees added, WAL switched on) once, here; with a course another account owns,
the listing and the gradebook work happen as that account
(:func:`atelier.grading.autograde.account.as_account`).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from atelier.errors import AtelierError
from atelier.grading.autograde.account import as_account
from atelier.grading.autograde.nbgrader_autograde import nbgrader_app
from atelier.grading.autograde.processes import load_before_fork


def plan(course_root: Path, assignments, students, config, own, log_level, run_as=None):
    """Check the options and prepare the gradebook; return nbgrader's options and the submissions.

    Runs in the command, before any grading process starts: an option that cannot be honoured
    stops the run before anything is graded; the gradebook gets the trainees about to be graded
    and is switched to WAL here, once (grading processes never switch it: see
    :func:`atelier.grading.courses.gradebook.use_wal`). The submissions of each assignment are
    those nbgrader itself would grade (``--student``, ``CourseDirectory.student_id_exclude``,
    ``--notebook``), limited to ``students`` if given. With ``run_as`` the course's folders are
    listed and its gradebook prepared as that account (:func:`as_account`): root only reads the
    names it reports, never the course (where that account may have planted links).
    """
    from nbgrader.converters.autograde import Autograde

    from atelier.grading.autograde import grade_options

    load_before_fork()
    nbgrader_config = None
    converters = []
    app = None
    for assignment in assignments:
        if nbgrader_config is None:
            bare = nbgrader_app(course_root, assignment, log_level)
            nbgrader_config = grade_options.check_command_line(
                config, own, Autograde(coursedir=bare.coursedir, parent=bare)
            )
        app = nbgrader_app(course_root, assignment, log_level, nbgrader_config)
        converter = Autograde(coursedir=app.coursedir, parent=app)
        grade_options.check_execute(
            app.config, nbgrader_config, str(course_root / "nbgrader_config.py")
        )
        grade_options.check_steps(converter)
        converters.append((assignment, converter))
    if app is None:
        return nbgrader_config, {}
    from atelier.grading.autograde.journal import GradeJournal

    # Refused here, once, if its folder is a link (rather than by every grading process).
    GradeJournal(Path(app.coursedir.root) / "log" / "grade-journal.jsonl")
    found = as_account(run_as, _list_and_prepare, app, converters, sorted(students))
    if not isinstance(found, dict) or any(
        not isinstance(names, list) or not all(isinstance(n, str) for n in names)
        for names in found.values()
    ):
        raise AtelierError(f"as {run_as.pw_name}: an unexpected list of submissions")
    return nbgrader_config, {a: found.get(a, []) for a in assignments}


def _list_and_prepare(app, converters, students) -> dict:
    """The trainees with a submission of each assignment; the gradebook made ready for them.

    A submission folder this process finds but may not list (a link to a folder the account
    grading the course may not read) is counted too, so that its trainee gets an error naming it
    rather than silence.
    """
    import glob

    from nbgrader.converters.base import NbGraderException

    wanted = set(students)
    submitted: dict[str, list[str]] = {}
    for assignment, converter in converters:
        exclude = set(filter(None, converter.coursedir.student_id_exclude.split(",")))
        try:
            converter.init_notebooks()
            paths = {path for path, notebooks in converter.assignments.items() if notebooks}
        except NbGraderException:
            paths = set()  # graded alone, so that nbgrader's message is the one shown
        pattern = converter._format_source(assignment, converter.coursedir.student_id)
        for path in glob.glob(pattern):
            try:
                os.listdir(path)
            except PermissionError:
                paths.add(path)
            except OSError:
                pass
        found = {_student_of(converter, path) for path in paths if os.path.isdir(path)}
        submitted[assignment] = sorted(
            s for s in found if s not in exclude and (not wanted or s in wanted)
        )
    everyone = sorted({s for names in submitted.values() for s in names})
    _prepare_gradebook(app, everyone)
    return submitted


def _student_of(converter, path: str) -> str:
    regexp = converter._format_source("(?P<assignment_id>.*)", "(?P<student_id>.*)", escape=True)
    return re.match(regexp, path).group("student_id")


def _prepare_gradebook(app, students) -> None:
    """Add the trainees about to be graded and switch to WAL, once, before grading processes start.

    Each grading process adds a missing trainee itself (nbgrader checks, then inserts): two
    processes grading one trainee's different assignments would both insert, and one would fail.
    Switching the journal mode needs the database to itself: grading processes doing it at once
    failed with "database is locked".
    """
    from nbgrader.api import Gradebook
    from nbgrader.converters.autograde import Autograde
    from sqlalchemy.engine import make_url

    from atelier.grading.course import ensure_env_on_path
    from atelier.grading.courses.gradebook import use_wal

    ensure_env_on_path()
    create = Autograde(coursedir=app.coursedir, parent=app).create_student
    with Gradebook(app.coursedir.db_url, app.coursedir.course_id) as gradebook:
        known = {student.id for student in gradebook.students}
        # The course only grades trainees registered by release when create_student is off.
        for student in sorted(set(students) - known) if create else ():
            gradebook.add_student(student)
    url = make_url(app.coursedir.db_url)
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        use_wal(Path(url.database))
