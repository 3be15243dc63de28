"""Working as the course's account: which account grades a course, and giving up root for it.

Rule: root grades a course only as the account that owns it (:func:`grading_account`); a grading
process becomes that account for good once its sandboxes run (:func:`become`), and the command
itself reads the course only through a child that did (:func:`as_account`), whose reply is JSON
(text and plain data, never an object root would load).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from atelier.errors import AtelierError


def grading_account(course_root: Path, cohort_account: str = ""):
    """The account grading processes become (a ``pwd`` entry), or ``None`` to stay as they are.

    Only root changes account. A cohort's course is graded as its grader account
    (``cohort_account``), which owns it and can write all of it; any other course as the owner of
    its folder, unless that is root (a course only root can change is graded as root, as before).
    """
    import pwd

    if os.geteuid() != 0:
        return None
    if cohort_account:
        try:
            return pwd.getpwnam(cohort_account)
        except KeyError:
            pass  # a course made by hand, with no grader account: its folder's owner decides
    owner = os.stat(course_root).st_uid
    if owner == 0:
        return None
    try:
        return pwd.getpwuid(owner)
    except KeyError:
        raise AtelierError(
            f"{course_root} belongs to uid {owner}, which has no account on this machine; "
            "root grades a course only as the account that owns it: chown it to an account"
        ) from None


def become(entry) -> None:
    """Give up root for good in this process: become ``entry``'s account, with its groups.

    Called in a grading process once its sandbox slots are running (their fork servers stay
    root; this process keeps only pipes to them). Real, effective and saved ids all change, so
    there is no way back; the process is kept undumpable, so that the account's other processes
    cannot trace it or open its descriptors.
    """
    import ctypes

    uid, gid = entry.pw_uid, entry.pw_gid
    os.setgroups(os.getgrouplist(entry.pw_name, gid))
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)
    try:
        os.setuid(0)
    except PermissionError:
        pass
    else:
        # Not an AtelierError: nothing may catch this and grade on as root.
        raise RuntimeError(f"could not give up root for {entry.pw_name}")
    ctypes.CDLL(None, use_errno=True).prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE, 0
    os.environ.update({"HOME": entry.pw_dir, "USER": entry.pw_name, "LOGNAME": entry.pw_name})
    os.chdir("/")


def as_account(run_as, func, *args):
    """``func(*args)`` as ``run_as`` (a ``pwd`` entry) in a forked child, or here if ``None``.

    The child's result comes back as JSON, its error as its message (text and plain data, never
    an object root would load), at most :data:`ACCOUNT_REPLY_LIMIT` bytes.
    """
    if run_as is None:
        return func(*args)
    sys.stdout.flush()
    sys.stderr.flush()
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:
        status = 1
        try:
            os.close(read_fd)
            become(run_as)
            try:
                reply = {"result": func(*args)}
            except AtelierError as error:
                reply = {"error": str(error) or type(error).__name__}
            except Exception as error:
                reply = {"error": f"{type(error).__name__}: {error}"}
            data = json.dumps(reply).encode("utf-8", "replace")
            if len(data) > ACCOUNT_REPLY_LIMIT:
                data = json.dumps({"error": "its reply was too long"}).encode()
            with os.fdopen(write_fd, "wb") as channel:
                channel.write(data)
            status = 0
        finally:
            os._exit(status)
    os.close(write_fd)
    with os.fdopen(read_fd, "rb") as channel:
        data = channel.read(ACCOUNT_REPLY_LIMIT + 1)
    _, status = os.waitpid(pid, 0)
    try:
        reply = json.loads(data) if len(data) <= ACCOUNT_REPLY_LIMIT else {}
    except ValueError:
        reply = {}
    if status != 0 or not isinstance(reply, dict) or "result" not in reply:
        message = reply.get("error") if isinstance(reply, dict) else None
        raise AtelierError(
            f"as {run_as.pw_name}: {str(message or 'stopped without a result')[:4000]} (listing "
            "the submissions and preparing the gradebook)"
        )
    return reply["result"]


#: The most bytes root reads back from a child working as the course's account.
ACCOUNT_REPLY_LIMIT = 16 << 20
