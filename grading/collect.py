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
2. contents: only plain files and folders (no symbolic links, devices or pipes, which a root-run
   copy could follow or block on), at most ``grading.max_submission_files`` files and
   ``grading.max_submission_bytes`` bytes;
3. count: at most ``grading.max_submissions`` submissions of that assignment (later ones ignored).

The receipt time is the newest *change time* (``st_ctime``) in the folder: the kernel sets it on
every write, rename or chmod, and no unprivileged call can set it back, so it cannot be backdated.
The kept submission is copied to ``submitted/<account>/<assignment>/`` with ``timestamp.txt`` set to
the receipt time (the trainee's own is kept as ``client_timestamp.txt``), staged under a temporary
name and renamed into place, so a collect killed at any point leaves every earlier copy whole and a
rerun neither loses nor doubles anything. Every decision is appended to ``log/receipts.jsonl``.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from atelier.grading.course import (
    Course,
    Trainee,
    account_ids,
    append_record,
    atomic_write,
    course_umask,
    ensure,
)
from atelier.grading.release import _staging, recover_swaps, swap_into_place

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

    def record(self, assignment: str) -> dict:
        """The line written to the receipts log."""
        data = asdict(self)
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


def check_contents(candidate: Candidate, uid: int, limits: Limits) -> None:
    """Walk the folder without following links: owner, file types, count, size, receipt time."""
    newest = os.lstat(candidate.path).st_ctime
    for dirpath, dirnames, filenames in os.walk(candidate.path):
        for name in dirnames + filenames:
            info = os.lstat(os.path.join(dirpath, name))
            newest = max(newest, info.st_ctime)
            if not (stat.S_ISREG(info.st_mode) or stat.S_ISDIR(info.st_mode)):
                candidate.problem = f"{name!r} is not a plain file or folder"
                return
            if info.st_uid != uid:
                candidate.problem = f"{name!r} is owned by uid {info.st_uid}, not the trainee"
                return
            if stat.S_ISREG(info.st_mode):
                candidate.files += 1
                candidate.size += info.st_size
        if candidate.files > limits.max_files:
            candidate.problem = f"more than {limits.max_files} files"
            return
        if candidate.size > limits.max_bytes:
            candidate.problem = f"larger than {limits.max_bytes} bytes"
            return
    candidate.received = newest


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
            check(candidate, uid, limits)
            if candidate.problem:
                candidate.decision = "rejected"
                break
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


def _already_collected(course: Course, candidate: Candidate, assignment: str) -> bool:
    receipt = course.submission_dir(candidate.account, assignment) / RECEIPT_FILE
    try:
        data = json.loads(receipt.read_text("utf-8"))
    except (OSError, ValueError):
        return False
    return data.get("folder") == candidate.folder and data.get("received") == receipt_text(
        candidate.received
    )


def copy_submission(course: Course, candidate: Candidate, assignment: str) -> None:
    """Stage a copy of the kept folder with server-side timestamps, then rename it into place."""
    student_dir = course.submitted / candidate.account
    student_dir.mkdir(exist_ok=True)
    staged = _staging(student_dir, assignment)
    # symlinks=True copies a link as a link rather than following it; the checks already rejected
    # links, so this only guards against a link created between the check and the copy.
    shutil.copytree(candidate.path, staged, symlinks=True)
    # The copy belongs to the course: the grader group reads and writes it whatever modes the
    # trainee chose.
    for dirpath, _, filenames in os.walk(staged):
        os.chmod(dirpath, 0o2770)
        for name in filenames:
            path = Path(dirpath) / name
            if path.is_symlink():
                path.unlink()
            else:
                os.chmod(path, 0o660)
    client = staged / "timestamp.txt"
    if client.exists():
        os.replace(client, staged / "client_timestamp.txt")
    atomic_write(staged / "timestamp.txt", receipt_text(candidate.received), 0o660)
    atomic_write(
        staged / RECEIPT_FILE,
        json.dumps(candidate.record(assignment), indent=1, sort_keys=True),
        0o660,
    )
    swap_into_place(staged, course.submission_dir(candidate.account, assignment))


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
        if course.submitted.is_dir():
            for student_dir in course.submitted.iterdir():
                recover_swaps(student_dir)
        run = datetime.now(UTC).strftime(TIMESTAMP_FORMAT)
        for number, trainee in enumerate(trainees, 1):
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
                copy_submission(course, kept, assignment)
                outcome = "new"
            result.outcome[trainee.account] = outcome
            for candidate in found:
                if candidate.problem:
                    result.rejected.append(candidate)
                if outcome == "new" or candidate.problem:
                    append_record(course.receipts_log, {"run": run, **candidate.record(assignment)})
            progress(f"  [{number}/{len(trainees)}] {trainee.account}: {outcome}")
    return result
