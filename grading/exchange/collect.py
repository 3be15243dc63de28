"""Collect: take each trainee's latest valid submission from the exchange into the course.

Rule: a submission belongs to the account that owns it on disk, and it was received when the
server's file system says so. Collect trusts neither the folder name nor ``timestamp.txt``, which
the trainee wrote. For every folder in ``inbound/<account>/`` it checks, in order (:data:`CHECKS`):

1. owner: the folder is named for ``<account>`` (a folder named for another trainee is rejected as
   impersonation), and it and all in it belong to the identity's uid. ``grading.identity`` says
   what proves who wrote it: ``owner`` (one machine) -- the trainee's own Unix account owns
   everything; ``folder`` (Kubernetes, where every pod runs as the same uid) -- the per-trainee
   ``inbound/<account>/`` folder, which only that trainee's pod mounts, and everything in it is
   owned by ``grading.exchange_uid``;
2. contents: only plain files (one hard link each) and folders (no symbolic links, devices or
   pipes, which a root-run copy could follow or block on), at most ``grading.max_submission_files``
   files (and as many folders), :data:`MAX_DEPTH` levels and ``grading.max_submission_bytes`` bytes;
3. count: at most ``grading.max_submissions`` submissions of that assignment (later ones ignored),
   fewer when the workbook's policy counts attempts; a submission received after the due date of a
   workbook that closes then is refused (:func:`atelier.grading.exchange.policy.limits_for`).

The trainee can change their folder at any moment, so nothing in it is ever looked up twice by
name: the check and the copy each walk it by file descriptor (:class:`Walk`: ``O_NOFOLLOW``,
``O_NONBLOCK``, ``fstat`` of what was opened), and the copy reads from the descriptors it checked
and must find what the check found. A submission that changed in between is refused for that
trainee alone, with the path in the message; every other trainee is collected.

The receipt time is the newest *change time* (``st_ctime``) in the folder: the kernel sets it on
every write, rename or chmod, and no unprivileged call can set it back, so it cannot be backdated.
The kept submission is copied to ``submitted/<account>/<assignment>/`` with ``timestamp.txt`` set to
the receipt time (the trainee's own is kept as ``client_timestamp.txt``), staged under a temporary
name in a folder only root can enter and renamed into place, so a collect killed at any point
leaves every earlier copy whole and a rerun neither loses nor doubles anything. Every decision is
appended to ``log/receipts.jsonl``. ``submitted/`` and ``log/`` are the grader account's: they are
opened without following links too (:mod:`atelier.grading.safefs`).

Why one module of about 500 lines: the checks, the walk by descriptor and the copy are one
pipeline whose parts must agree (the copy must find exactly what the check found), and
:func:`collect_trainee`, the unit the instant grading service calls for one trainee, is that
same pipeline; split, the agreement would span files.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from atelier.grading import safefs
from atelier.grading.course import Course
from atelier.grading.courses.folders import append_record, check_log, course_umask, ensure
from atelier.grading.courses.graderaccount import account_ids, course_owners
from atelier.grading.courses.people import Trainee

#: nbgrader's timestamp format (``timestamp.txt``), always in UTC here.
TIMESTAMP_FORMAT = "%Y-%m-%d %H:%M:%S.%f UTC"
RECEIPT_FILE = "atelier_receipt.json"

#: Test-only: called with the kept :class:`Candidate` after collect has checked it and before it
#: copies it, so that a test can change the submission exactly there (the race a trainee runs
#: with a loop of renames). Always ``None`` outside tests.
before_copy: Callable[[Candidate], None] | None = None


@dataclass(frozen=True)
class Limits:
    """Bounds on one submission and on how many a trainee may make (the ``grading`` settings)."""

    max_bytes: int = 20_000_000
    max_files: int = 200
    max_submissions: int = 20
    #: What proves who submitted (``grading.identity``): ``owner`` or ``folder`` (see the rule).
    identity: str = "owner"
    #: The uid every exchange file has in ``folder`` mode (``grading.exchange_uid``).
    exchange_uid: int = 1000
    #: Receipt time (seconds since the epoch) after which a submission is refused: the due date
    #: of a workbook released with ``--close-at-due``; None: never.
    closes_at: float | None = None

    @classmethod
    def from_settings(cls, settings) -> Limits:
        """The limits of the ``grading`` settings section."""
        return cls(
            max_bytes=settings.get_path("grading.max_submission_bytes", cls.max_bytes),
            max_files=settings.get_path("grading.max_submission_files", cls.max_files),
            max_submissions=settings.get_path("grading.max_submissions", cls.max_submissions),
            identity=settings.get_path("grading.identity", cls.identity),
            exchange_uid=settings.get_path("grading.exchange_uid", cls.exchange_uid),
        )

    def owner_uid(self, account: str) -> int:
        """The uid that must own ``account``'s submissions under this identity rule."""
        if self.identity == "folder":
            return self.exchange_uid
        return account_ids(account)[0]


@dataclass
class Candidate:
    """One folder found in a trainee's inbound folder, and what collect made of it."""

    account: str
    folder: str
    path: Path
    received: float = 0.0
    size: int = 0
    files: int = 0
    problem: str = ""
    decision: str = ""
    #: What the check found (relative path -> (inode, type)); the copy must find the same.
    checked: dict | None = field(default=None, repr=False, compare=False)

    def record(self, assignment: str) -> dict:
        """The line written to the receipts log."""
        data = asdict(self)
        data.pop("checked", None)
        data["path"] = str(self.path)
        data["assignment"] = assignment
        data["received"] = receipt_text(self.received)
        return data


@dataclass
class CollectResult:
    """What a collect run did, per trainee: ``new``, ``unchanged``, ``none`` or ``rejected``."""

    assignment: str
    outcome: dict[str, str] = field(default_factory=dict)
    rejected: list[Candidate] = field(default_factory=list)


def receipt_text(when: float) -> str:
    """A receipt time (seconds since the epoch) as nbgrader writes timestamps."""
    return datetime.fromtimestamp(when, UTC).strftime(TIMESTAMP_FORMAT)


# --- the checks, in order -------------------------------------------------------------------------


def check_owner(candidate: Candidate, uid: int, limits: Limits) -> None:
    """The folder must be named for and owned by the trainee whose inbound folder holds it."""
    claimed = candidate.folder.split("+", 1)[0]
    if claimed != candidate.account:
        candidate.problem = f"named for {claimed!r}, found in {candidate.account!r}'s folder"
        return
    if limits.identity == "folder":
        # The inbound folder itself is the identity: it must be the real per-trainee folder
        # (not a link to someone else's) that the exchange uid owns.
        parent = os.lstat(candidate.path.parent)
        if not stat.S_ISDIR(parent.st_mode) or parent.st_uid != uid:
            candidate.problem = f"inbound folder of {candidate.account!r} is not the exchange's own"
            return
    info = os.lstat(candidate.path)
    if info.st_uid != uid:
        candidate.problem = f"owned by uid {info.st_uid}, not by {candidate.account}"


#: Folders nested deeper than this are refused: no honest submission needs it, and a deeper one
#: could outgrow what a path can name or the descriptors a walk holds open.
MAX_DEPTH = 16


class SubmissionChanged(Exception):
    """A submission is not what collect may take: the message names the path and what it is."""


class Walk:
    """One pass over a submission by file descriptor, never by path: the check, then the copy.

    Every entry is looked at with ``fstatat`` (no link followed), opened relative to its open
    parent with ``O_NOFOLLOW | O_NONBLOCK`` only if it is a plain file or folder, and checked again
    on the descriptor (same inode, same type, owned by the trainee, one hard link). Limits count
    what is actually found and read. With ``target`` (an open folder root owns) the contents read
    from those descriptors are written there; nothing is looked up twice by name.
    """

    def __init__(self, candidate: Candidate, uid: int, limits: Limits):
        self.candidate, self.uid, self.limits = candidate, uid, limits
        self.files = self.folders = self.size = 0
        self.newest = 0.0
        #: What this walk found: relative path -> (inode, type).
        self.found: dict[str, tuple[int, int]] = {}
        #: What the check found, that the copy must find again (``None`` for the check itself).
        self.expected: dict[str, tuple[int, int]] | None = None

    def refuse(self, relpath: str, what: str) -> SubmissionChanged:
        """The refusal of entry ``relpath``, named from the submission's own folder."""
        shown = f"{self.candidate.folder}/{relpath}" if relpath else self.candidate.folder
        return SubmissionChanged(f"{shown} {what}")

    def open_top(self) -> int:
        """The submission folder itself, opened from the trainee's inbound folder without links."""
        try:
            parent = os.open(self.candidate.path.parent, safefs.DIR_FLAGS)
        except OSError as error:
            raise self.refuse("", f"(its inbound folder) {safefs.describe(error)}") from None
        try:
            fd = self.open_entry(parent, self.candidate.folder, "")[0]
        finally:
            os.close(parent)
        info = os.fstat(fd)
        self.found[""] = (info.st_ino, stat.S_IFMT(info.st_mode))
        if self.expected is not None and self.expected.get("") != self.found[""]:
            os.close(fd)
            raise self.refuse("", "was replaced after collect checked it")
        return fd

    def open_entry(self, dir_fd: int, name: str, relpath: str):
        """``(fd, is_folder)`` of entry ``name`` of ``dir_fd``, checked before and after opening."""
        try:
            seen = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        except FileNotFoundError:
            raise self.refuse(relpath, "does not exist (it was removed or renamed)") from None
        if not (stat.S_ISREG(seen.st_mode) or stat.S_ISDIR(seen.st_mode)):
            raise self.refuse(
                relpath, f"is {safefs.kind(seen.st_mode)}, not a plain file or folder"
            )
        flags = safefs.DIR_FLAGS if stat.S_ISDIR(seen.st_mode) else safefs.READ_FLAGS
        try:
            fd = os.open(name, flags | os.O_NONBLOCK, dir_fd=dir_fd)
        except OSError as error:
            raise self.refuse(relpath, safefs.describe(error)) from None
        try:
            info = os.fstat(fd)
            if (info.st_dev, info.st_ino) != (seen.st_dev, seen.st_ino) or (
                stat.S_IFMT(info.st_mode) != stat.S_IFMT(seen.st_mode)
            ):
                raise self.refuse(relpath, "was replaced while it was being collected")
            if info.st_uid != self.uid:
                raise self.refuse(relpath, f"is owned by uid {info.st_uid}, not the trainee")
            if stat.S_ISREG(info.st_mode) and info.st_nlink != 1:
                raise self.refuse(relpath, f"has {info.st_nlink} hard links")
            self.newest = max(self.newest, info.st_ctime)
        except BaseException:
            os.close(fd)
            raise
        return fd, stat.S_ISDIR(info.st_mode)

    def tree(self, src_fd: int, target: int | None, relpath: str = "", depth: int = 0) -> None:
        """Check (and with ``target``, copy) the folder open as ``src_fd``."""
        if depth > MAX_DEPTH:
            raise self.refuse(relpath, f"is nested deeper than {MAX_DEPTH} folders")
        for name in safefs.entries(src_fd):
            path = f"{relpath}{name}"
            fd, is_folder = self.open_entry(src_fd, name, path)
            try:
                info = os.fstat(fd)
                self.found[path] = (info.st_ino, stat.S_IFMT(info.st_mode))
                if is_folder:
                    self.folders += 1
                    if self.folders > self.limits.max_files:
                        raise self.refuse(path, f"makes more than {self.limits.max_files} folders")
                    if depth + 1 > MAX_DEPTH:
                        raise self.refuse(path, f"is nested deeper than {MAX_DEPTH} folders")
                else:
                    self.files += 1
                    if self.files > self.limits.max_files:
                        raise self.refuse(path, f"makes more than {self.limits.max_files} files")
                if self.expected is not None and self.expected.get(path) != self.found[path]:
                    raise self.refuse(path, "appeared or was replaced after collect checked it")
                if is_folder:
                    sub = None
                    if target is not None:
                        os.mkdir(name, 0o700, dir_fd=target)
                        sub = os.open(name, safefs.DIR_FLAGS, dir_fd=target)
                    try:
                        self.tree(fd, sub, f"{path}/", depth + 1)
                        if sub is not None:
                            os.fchmod(sub, 0o2770)
                    finally:
                        if sub is not None:
                            os.close(sub)
                else:
                    self.file(fd, name, path, target)
            finally:
                os.close(fd)

    def file(self, fd: int, name: str, relpath: str, target: int | None) -> None:
        """Count a file's size; with ``target``, copy what is read from ``fd``, within the limit."""
        most = self.limits.max_bytes
        if target is None:
            self.size += os.fstat(fd).st_size
        else:
            out = os.open(name, safefs.CREATE_FLAGS, 0o600, dir_fd=target)
            try:
                # The bytes read count, not the size fstat gave: the file may grow as it is read.
                while self.size <= most:
                    chunk = os.read(fd, min(1 << 20, most - self.size + 1))
                    if not chunk:
                        break
                    self.size += len(chunk)
                    view = memoryview(chunk)
                    while view and self.size <= most:
                        view = view[os.write(out, view) :]
                os.fchmod(out, 0o660)
            finally:
                os.close(out)
        if self.size > most:
            raise self.refuse(relpath, f"makes the submission larger than {most} bytes")


def check_contents(candidate: Candidate, uid: int, limits: Limits) -> None:
    """Walk the folder by descriptor, following no link: owner, types, count, size, receipt time."""
    walk = Walk(candidate, uid, limits)
    try:
        top = walk.open_top()
        try:
            walk.tree(top, None)
        finally:
            os.close(top)
    except SubmissionChanged as problem:
        candidate.problem = str(problem)
        return
    candidate.files, candidate.size = walk.files, walk.size
    candidate.received = walk.newest
    candidate.checked = walk.found


#: Checks on each candidate, in order; the first problem found rejects it. Ownership comes first:
#: what a trainee does not own is not looked into at all.
CHECKS: list[Callable[[Candidate, int, Limits], None]] = [check_owner, check_contents]


def candidates(course: Course, account: str, assignment: str) -> list[Candidate]:
    """Every submission folder of ``assignment`` in ``inbound/<account>/``, sorted by name."""
    inbound = course.inbound_of(account)
    if not inbound.is_dir():
        return []
    found = []
    for entry in sorted(os.listdir(inbound)):
        parts = entry.split("+")
        if len(parts) >= 3 and parts[1] == assignment:
            found.append(Candidate(account, entry, inbound / entry))
    return found


def choose(found: list[Candidate], uid: int, limits: Limits) -> Candidate | None:
    """Check every candidate; the newest valid one among the first ``max_submissions`` is kept."""
    for candidate in found:
        for check in CHECKS:
            try:
                check(candidate, uid, limits)
            except OSError as error:  # removed or changed by its trainee while being checked
                candidate.problem = f"{candidate.folder} could not be checked: {error.strerror}"
            if candidate.problem:
                candidate.decision = "rejected"
                break
    if limits.closes_at is not None:
        for candidate in found:
            if not candidate.problem and candidate.received > limits.closes_at:
                candidate.problem = f"received {receipt_text(candidate.received)}, after the due "
                candidate.problem += "date, when submission closed"
                candidate.decision = "rejected"
    valid = sorted((c for c in found if not c.problem), key=lambda c: (c.received, c.folder))
    for extra in valid[limits.max_submissions :]:
        extra.decision = "ignored"
        extra.problem = f"more than {limits.max_submissions} submissions"
    valid = valid[: limits.max_submissions]
    if not valid:
        return None
    kept = valid[-1]
    kept.decision = "kept"
    for older in valid[:-1]:
        older.decision = "superseded"
    return kept


def _course_owners(course: Course) -> set[int]:
    """Who may own a folder of the course: root and the course's grader account."""
    return course_owners(course)


def _already_collected(course: Course, candidate: Candidate, assignment: str) -> bool:
    try:
        with safefs.opened_dir(
            course.root, ["submitted", candidate.account, assignment], _course_owners(course)
        ) as folder:
            data = json.loads(safefs.read_at(folder, RECEIPT_FILE, RECEIPT_FILE, 1 << 20))
    except (OSError, ValueError, safefs.UnsafePath):
        return False
    return data.get("folder") == candidate.folder and data.get("received") == receipt_text(
        candidate.received
    )


def copy_submission(course: Course, candidate: Candidate, assignment: str, uid: int = -1,
                    limits: Limits | None = None) -> None:  # fmt: skip
    """Copy the kept folder by descriptor into a folder root owns, then rename it into place.

    The submission is walked again as it is copied (:class:`Walk`): what is copied is what was
    checked, read from the descriptors that were checked. A submission that changed since the
    check raises :class:`SubmissionChanged` and leaves nothing behind. ``submitted/`` is the
    grader's: its folders are opened without following links, and the copy is staged in a folder
    only root can enter until it is complete.
    """
    limits = limits or Limits()
    uid = uid if uid != -1 else limits.owner_uid(candidate.account)
    owners = _course_owners(course)
    shown = course.submitted / candidate.account
    try:
        submitted = safefs.open_dir(course.root, ["submitted"], owners)
    except safefs.UnsafePath as error:
        raise SubmissionChanged(str(error)) from None
    try:
        try:
            student = safefs.ensure_dir_at(submitted, candidate.account, 0o2770, shown)
            if os.fstat(student).st_uid not in owners:
                os.close(student)
                raise safefs.refusal(shown, "is not owned by root or the course")
        except safefs.UnsafePath as error:
            raise SubmissionChanged(str(error)) from None
    finally:
        os.close(submitted)
    try:
        safefs.recover_swaps_at(student)
        with safefs.replacing_dir_at(student, assignment, shown / assignment) as target:
            walk = Walk(candidate, uid, limits)
            walk.expected = candidate.checked
            top = walk.open_top()
            try:
                walk.tree(top, target)
            finally:
                os.close(top)
            if walk.expected is not None:
                for gone in sorted(set(walk.expected) - set(walk.found)):
                    raise walk.refuse(gone, "was removed after collect checked it")
            # A change made after the check is part of what was received.
            candidate.received = max(candidate.received, walk.newest)
            candidate.files, candidate.size = walk.files, walk.size
            with contextlib.suppress(FileNotFoundError):
                os.rename("timestamp.txt", "client_timestamp.txt",
                          src_dir_fd=target, dst_dir_fd=target)  # fmt: skip
            safefs.write_at(target, "timestamp.txt", receipt_text(candidate.received), 0o660,
                            "timestamp.txt")  # fmt: skip
            record = json.dumps(candidate.record(assignment), indent=1, sort_keys=True)
            safefs.write_at(target, RECEIPT_FILE, record, 0o660, RECEIPT_FILE)
            # The copy belongs to the course: the grader group reads and writes it.
            os.fchmod(target, 0o2770)
    finally:
        os.close(student)


def recover_copies(course: Course) -> None:
    """Finish what a killed collect left in ``submitted/<account>/`` (see ``safefs.swap_at``)."""
    owners = _course_owners(course)
    with safefs.opened_dir(course.root, ["submitted"], owners) as submitted:
        for name in safefs.entries(submitted):
            try:
                folder = safefs.open_dir_at(submitted, name, course.submitted / name, owners)
            except (OSError, safefs.UnsafePath):
                continue  # not a trainee's folder of root's or the course's: left alone
            try:
                safefs.recover_swaps_at(folder)
            finally:
                os.close(folder)


def collect(
    course: Course,
    assignment: str,
    trainees: list[Trainee],
    limits: Limits,
    progress: Callable[[str], None] = print,
) -> CollectResult:
    """Collect the latest valid submission of ``assignment`` from every trainee of the course."""
    ensure(course)
    result = CollectResult(assignment)
    with course_umask():
        check_log(course)
        recover_copies(course)
        run = datetime.now(UTC).strftime(TIMESTAMP_FORMAT)
        for number, trainee in enumerate(trainees, 1):
            outcome, found, kept = collect_trainee(course, assignment, trainee, limits, run)
            result.outcome[trainee.account] = outcome
            result.rejected += [candidate for candidate in found if candidate.problem]
            line = f"  [{number}/{len(trainees)}] {trainee.account}: {outcome}"
            if kept is not None and kept.decision == "rejected":
                line += f" ({kept.problem})"
            progress(line)
    return result


def collect_trainee(course: Course, assignment: str, trainee: Trainee, limits: Limits, run: str):
    """Collect one trainee's latest valid submission; ``(outcome, candidates, kept)``.

    The unit of :func:`collect`, also called alone by the instant grading service (which has run
    :func:`~atelier.grading.courses.folders.ensure`, ``check_log`` and :func:`recover_copies`
    once); ``run`` names the run in the receipts log. Every decision about a new submission, and
    every refusal, is recorded there.
    """
    uid = limits.owner_uid(trainee.account)
    found = candidates(course, trainee.account, assignment)
    kept = choose(found, uid, limits)
    if kept is None:
        outcome = "rejected" if found else "none"
    elif _already_collected(course, kept, assignment):
        outcome = "unchanged"
    else:
        if before_copy is not None:
            before_copy(kept)
        try:
            copy_submission(course, kept, assignment, uid, limits)
            outcome = "new"
        except (SubmissionChanged, OSError) as error:
            # This trainee's submission changed under collect (or cannot be read): refused
            # for them alone; their earlier copy, if any, stays, and the others go on.
            kept.problem = f"changed while being collected: {error}"
            kept.decision = "rejected"
            outcome = "rejected"
    for candidate in found:
        if outcome == "new" or candidate.problem:
            append_record(course.receipts_log, {"run": run, **candidate.record(assignment)})
    return outcome, found, kept


def counted(found: list[Candidate]) -> int:
    """How many of a trainee's submissions count as attempts (kept or superseded, not refused)."""
    return sum(1 for candidate in found if candidate.decision in ("kept", "superseded"))
