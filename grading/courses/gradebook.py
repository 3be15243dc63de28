"""The course's gradebook: created once, switched to WAL once, never through a planted link.

Rule: WAL is a property of the database file, so it is set by one process (the verb that makes
the course, or ``atelier grade`` before its grading processes fork) and every later connection
uses it; on PostgreSQL the gradebook is the cohort's schema.
"""

from __future__ import annotations

import os
import sqlite3
import stat
from pathlib import Path

from atelier.grading import safefs
from atelier.grading.course import BUSY_TIMEOUT, Course, GradingError


def ensure_gradebook(course: Course, uid: int = -1, gid: int = -1) -> None:
    """Create the gradebook if missing and switch it to WAL, so readers never block a writer.

    WAL is a property of the database file, so it is set once here and every later connection
    (formgrader, ``atelier grade``, exports) uses it; the busy timeout is in :attr:`Course.db_url`.
    On PostgreSQL the gradebook is the cohort's schema, created here; there is no file to set up.
    """
    if course.database_url:
        from atelier.database import ensure_schema

        ensure_schema(course.db_url)
        with course.gradebook():
            return
    names = [f"{course.gradebook_path.name}{suffix}" for suffix in ("", "-wal", "-shm", "-journal")]
    # SQLite opens these by name: refuse to start on one the grader replaced with a link.
    with safefs.opened_dir(course.root) as root:
        for name in names:
            try:
                info = os.stat(name, dir_fd=root, follow_symlinks=False)
            except FileNotFoundError:
                continue
            if not stat.S_ISREG(info.st_mode) or info.st_nlink != 1:
                what = (
                    f"has {info.st_nlink} hard links"
                    if stat.S_ISREG(info.st_mode)
                    else (f"is {safefs.kind(info.st_mode)}")
                )
                raise safefs.refusal(course.root / name, what)
    with course.gradebook():
        pass
    use_wal(course.gradebook_path)
    if os.geteuid() == 0:
        with safefs.opened_dir(course.root) as root:
            for name in names:
                try:
                    fd = os.open(name, safefs.READ_FLAGS, dir_fd=root)
                except FileNotFoundError:
                    continue
                except OSError as error:
                    raise safefs.refusal(course.root / name, safefs.describe(error)) from None
                try:
                    safefs.check_plain_file(fd, course.root / name)
                    os.fchown(fd, uid, gid)
                    os.fchmod(fd, 0o660)
                finally:
                    os.close(fd)


def use_wal(path: Path, timeout: float = BUSY_TIMEOUT) -> None:
    """Switch the SQLite database at ``path`` to WAL, once, from one process.

    Changing the journal mode needs the database to itself: two processes switching a gradebook
    that nbgrader made (rollback journal) at the same moment deadlock, and SQLite answers one of
    them "database is locked" at once, without waiting for its busy timeout. So the switch is made
    by one process before any other starts (``atelier grade`` does it before its grading processes
    fork; they never issue it), and is retried here while someone else (formgrader reading) holds
    the file. Already WAL: nothing to do, and no lock is taken.
    """
    import time

    deadline = time.monotonic() + timeout
    con = sqlite3.connect(path, timeout=timeout)
    try:
        while True:
            try:
                if con.execute("PRAGMA journal_mode").fetchone()[0].lower() == "wal":
                    return
                con.execute("PRAGMA journal_mode=WAL").fetchone()
                return
            except sqlite3.OperationalError as error:
                if "locked" not in str(error) or time.monotonic() > deadline:
                    raise GradingError(
                        f"{path}: could not switch the gradebook to WAL ({error}); "
                        "stop what holds it (formgrader, another atelier grade) and try again"
                    ) from None
                time.sleep(0.05)
    finally:
        con.close()
