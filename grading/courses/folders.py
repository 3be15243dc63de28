"""A cohort's course on disk: its folders, owners and modes, its logs, its config copies.

Rule: :func:`ensure` makes (and repairs) everything a course needs, idempotently, before any verb
works: the grader account, the course and exchange folders with their owners and modes, the
generated ``nbgrader_config.py`` and root's trusted copy of it, the gradebook. Every folder is
opened and changed through descriptors, following no link (:mod:`atelier.grading.safefs`): the
course is the grader account's.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from atelier.grading import safefs
from atelier.grading.course import TRUSTED_CONFIG, Course
from atelier.grading.courses.gradebook import ensure_gradebook
from atelier.grading.courses.graderaccount import ensure_grader_account


def append_record(path: Path, record: dict) -> None:
    """Append one JSON line to a course log (``<course>/log/<name>``) in one ``write`` call.

    The log's folder and the log are the grader account's to change: they are opened from the
    course folder without following links (:mod:`atelier.grading.safefs`), so a link put in place
    of either is refused, never written through.
    """
    line = json.dumps(record, sort_keys=True, ensure_ascii=False) + "\n"
    with safefs.opened_dir(path.parent.parent, [path.parent.name]) as folder:
        safefs.append_at(folder, path.name, line.encode("utf-8"), path)


def check_log(course: Course) -> None:
    """Refuse, before anything is done, a receipts log the grader replaced with a link."""
    with safefs.opened_dir(course.root, ["log"]) as folder:
        safefs.append_at(folder, course.receipts_log.name, b"", course.receipts_log)


def ensure_dir(path: Path, mode: int, uid: int = -1, gid: int = -1) -> None:
    """Create ``path`` if needed and set its mode and owner (idempotent), following no link.

    ``path``'s parent is opened by path (every folder given here has a parent only root can
    change); ``path`` itself is opened without following a link and changed through that
    descriptor. Only root sets owners; another account (the grader, running formgrader) leaves
    folders it does not own as they are.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    with safefs.opened_dir(path.parent) as parent:
        os.close(safefs.ensure_dir_at(parent, path.name, mode, path, uid, gid))


def ensure(course: Course) -> Course:
    """Create the course and exchange folders with their owners and modes, the config and gradebook.

    Idempotent: run by every verb before it works, so a course repairs itself.
    """
    uid, gid = ensure_grader_account(course)
    ensure_dir(course.courses_root, 0o755, 0, 0)
    # The course folder is the grader's: everything below it is opened from its descriptor,
    # without following links, and changed through descriptors.
    with safefs.opened_dir(course.courses_root) as top:
        root = safefs.ensure_dir_at(top, course.cohort, 0o2770, course.root, uid, gid)
    try:
        for step in ("source", "release", "submitted", "autograded", "feedback", "log"):
            os.close(safefs.ensure_dir_at(root, step, 0o2770, course.root / step, uid, gid))
        text = course.nbgrader_config_text()
        try:
            current = safefs.read_at(root, course.config_file.name, course.config_file)
        except (FileNotFoundError, safefs.UnsafePath):
            current = None  # missing, or not a plain file: replaced (a rename, never followed)
        if current != text.encode("utf-8"):
            safefs.write_at(
                root, course.config_file.name, text, 0o640, course.config_file, uid, gid
            )
    finally:
        os.close(root)
    ensure_dir(course.exchange_root, 0o755, 0, 0)
    ensure_dir(course.exchange, 0o755, 0, 0)
    # The grader account publishes (formgrader's release button); everyone reads.
    ensure_dir(course.outbound, 0o755, uid, gid)
    ensure_dir(course.inbound, 0o711, 0, 0)
    ensure_dir(course.exchange_feedback, 0o711, 0, 0)
    ensure_gradebook(course, uid, gid)
    ensure_trusted_config(course, gid)
    return course


def ensure_trusted_config(course: Course, gid: int) -> None:
    """Write the course's config where only root can change it (:attr:`Course.trusted_config_dir`).

    Root (``atelier grade``) and the formgrader service load this copy, never the one in the
    course folder, which the grader account can change. Readable by the grader group.
    """
    if os.geteuid() != 0:
        return
    ensure_dir(course.courses_root / TRUSTED_CONFIG, 0o755, 0, 0)
    ensure_dir(course.trusted_config_dir, 0o750, 0, gid)
    text = course.nbgrader_config_text()
    with safefs.opened_dir(course.trusted_config_dir) as folder:
        name = course.trusted_config_file.name
        try:
            current = safefs.read_at(folder, name, course.trusted_config_file)
        except (FileNotFoundError, safefs.UnsafePath):
            current = None
        if current != text.encode("utf-8"):
            safefs.write_at(folder, name, text, 0o640, course.trusted_config_file, 0, gid)


@contextmanager
def course_umask() -> Iterator[None]:
    """Files made inside a course are group-writable by its grader group (SQLite WAL files too)."""
    old = os.umask(0o007)
    try:
        yield
    finally:
        os.umask(old)
