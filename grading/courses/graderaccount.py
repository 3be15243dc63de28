"""The course's grader account: creating it, and running nbgrader's steps as it.

Rule: the course belongs to its grader account ``<prefix>grader-C`` (marked as a grader, never a
trainee's account); root runs nbgrader's own steps in the course as that account
(:func:`as_grader`), in a forked child whose result comes back as JSON, never pickle.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
from collections.abc import Callable
from typing import Any

from atelier.errors import AtelierError
from atelier.grading.course import Course, GradingError


def course_owners(course: Course) -> set[int]:
    """Who may own a folder of the course: root, this process and the course's grader account."""
    owners = {0, os.geteuid()}
    with contextlib.suppress(KeyError):  # a course made by hand has no grader account
        owners.add(pwd.getpwnam(course.grader_account).pw_uid)
    return owners


def as_grader(course: Course, func: Callable[..., Any], *args: Any) -> Any:
    """``func(*args)`` run as the course's grader account: in a forked child when root, else here.

    nbgrader's own steps (making student versions, feedback) read and write the course, which is
    the grader's: run as the grader, whatever that account put there (a link, say) can make them
    do only what the grader could do itself. The result, and an error's message, come back as
    JSON (never pickle: root would run what the child sent).
    """
    try:
        entry = pwd.getpwnam(course.grader_account)
    except KeyError:
        entry = None  # a course made by hand with no grader account: root's alone
    if os.geteuid() != 0 or entry is None:
        return func(*args)
    import sys

    uid, gid = entry.pw_uid, entry.pw_gid
    sys.stdout.flush()
    sys.stderr.flush()
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: become the grader, run, report
        status = 1
        try:
            os.close(read_fd)
            os.setgroups([gid])
            os.setgid(gid)
            os.setuid(uid)
            os.chdir(course.root)
            os.environ.update({"HOME": str(course.root), "USER": course.grader_account})
            try:
                outcome = {"value": func(*args)}
            except Exception as error:  # reported to the parent, which raises it as a message
                outcome = {"error": f"{type(error).__name__}: {error}"}
            with os.fdopen(write_fd, "w", encoding="utf-8") as channel:
                channel.write(json.dumps(outcome, default=str))
            status = 0
        finally:
            os._exit(status)
    os.close(write_fd)
    with os.fdopen(read_fd, encoding="utf-8") as channel:
        text = channel.read()
    _, status = os.waitpid(pid, 0)
    try:
        outcome = json.loads(text)
    except ValueError:
        raise GradingError(
            f"a step run as {course.grader_account} stopped without a result "
            f"(exit status {os.waitstatus_to_exitcode(status)}); see the messages above"
        ) from None
    if "error" in outcome:
        raise GradingError(f"as {course.grader_account}: {outcome['error']}")
    return outcome.get("value")


def ensure_grader_account(course: Course) -> tuple[int, int]:
    """Create the course's grader Unix account if missing; return its (uid, gid).

    The account must be one Atelier created as a grader (its marker, see
    :func:`atelier.accounts.check_marked`): a trainee's account or any other existing
    account of that name is refused, never made the owner of the course. An unmarked system
    account that already owns the course folder was made by an Atelier without markers; it is
    marked and kept.
    """
    from atelier.accounts import check_marked, create_system_account

    def legacy(entry) -> bool:
        try:
            owner = os.lstat(course.root).st_uid
        except OSError:
            return False
        return not entry.pw_gecos and entry.pw_uid < 1000 and owner == entry.pw_uid != 0

    try:
        entry = check_marked(course.grader_account, "grader", legacy)
    except AtelierError as error:
        raise GradingError(f"cohort {course.cohort}: {error}") from None
    if entry is None:
        if os.geteuid() != 0:
            raise GradingError(
                f"the grader account {course.grader_account} does not exist; "
                "run this command as root once to create the course"
            ) from None
        entry = create_system_account(course.grader_account, "grader", str(course.root))
    return entry.pw_uid, entry.pw_gid


def account_ids(account: str) -> tuple[int, int]:
    """The (uid, gid) of a Unix account, or a :class:`GradingError` naming it."""
    try:
        entry = pwd.getpwnam(account)
    except KeyError:
        raise GradingError(f"no Unix account named '{account}' on this machine") from None
    return entry.pw_uid, entry.pw_gid
