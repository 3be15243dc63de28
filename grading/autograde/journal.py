"""The grading journal: what makes a run resumable and a finished grade trusted as still current.

Rule: a journal (``log/grade-journal.jsonl`` in the course, :class:`GradeJournal`) records when a
submission's grading starts (before anything of it is deleted) and when it is complete (after its
gradebook entries and autograded notebooks are written), with a digest of the submitted files and
of each autograded notebook. A submission is skipped only when its last record says complete for
these same files and its autograded notebooks are still those it wrote: an interrupted run (even
``kill -9``) resumes, and a deleted or altered autograded notebook is graded again. Nothing is
opened through a symbolic link (the course is another account's; the command runs as root).
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import json
import os
from pathlib import Path

from atelier.errors import AtelierError
from atelier.grading.autograde.outcome import Outcome

#: Bumped when a change to the engine can change grades: journal entries of older engines are
#: redone.
ENGINE_VERSION = "3"


class JournalError(AtelierError):
    """The grading journal cannot be opened safely: the message names the path and the fix."""


def submission_digest(submitted: Path, source: Path) -> str:
    """A digest of a submission's files and of the assignment's source: what a grade depends on.

    Nothing is followed or waited on (these folders are the grader account's): a link counts by
    the path it holds, anything but a folder or a regular file by its name.
    """
    digest = hashlib.sha256(ENGINE_VERSION.encode())
    for root in (submitted, source):
        if not root.is_dir():
            continue
        found = []
        for folder, _, names in os.walk(root):
            found += [os.path.join(folder, name) for name in names]
        for path in sorted(found, key=Path):  # as before: journals of older runs still match
            digest.update(os.path.relpath(path, root).encode() + b"\0")
            _digest_file(digest, path)
    return digest.hexdigest()


def _digest_file(digest, path: str) -> None:
    """Add a regular file's bytes to ``digest``; a link adds the path it holds, others a mark."""
    import stat

    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        if not os.path.islink(path):
            raise
        digest.update(b"\0link:" + os.readlink(path).encode() + b"\0")
        return
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            digest.update(b"\0not a regular file\0")
            return
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)


def file_digest(path: str) -> str | None:
    """The sha256 of a regular file's bytes, or ``None`` if it is not one or cannot be read.

    Autograded folders are writable by the course's grader account: a link or a pipe put in a
    notebook's place is never followed or waited on (it is simply not the notebook written).
    """
    import stat

    digest = hashlib.sha256()
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        try:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        except OSError:
            return None
    return digest.hexdigest()


class GradeJournal:
    """Append-only record of grading runs, notebook by notebook, so an interrupted run resumes.

    Two kinds of line, each written in one ``write`` call (lines never interleave between
    processes) and synced: ``start`` (the notebooks of a submission about to be graded again: from
    then on they are not done) and ``done`` (written after the gradebook entries and the autograded
    notebooks are complete, with the digest of the submission and of each autograded notebook).
    The last line about a notebook wins. A line cut by a crash, or in an older engine's format, is
    ignored: that submission is graded again.

    The journal is opened without following a symbolic link: its folder is writable by the
    course's grader account and ``atelier grade`` runs as root.
    """

    def __init__(self, path: Path):
        self.path = path
        #: (student, assignment, notebook id) -> the ``done`` line, or ``None`` once started.
        self.notebooks: dict[tuple[str, str, str], dict | None] = {}
        text = ""
        with contextlib.suppress(FileNotFoundError):
            fd = self._open(os.O_RDONLY)
            with os.fdopen(fd, encoding="utf-8", errors="replace") as handle:
                text = handle.read()
        for line in text.splitlines():
            try:
                self._apply(json.loads(line))
            except (ValueError, KeyError, TypeError, AttributeError):
                continue

    def _apply(self, entry: dict) -> None:
        key = (entry["student"], entry["assignment"])
        if entry.get("event") == "start":
            for notebook in entry["notebooks"]:
                self.notebooks[(*key, str(notebook))] = None
        elif entry.get("event") == "done" and entry.get("engine") == ENGINE_VERSION:
            for notebook in entry["outputs"]:
                self.notebooks[(*key, str(notebook))] = entry

    def done(self, student: str, assignment: str, digest: str, notebooks, dest: str):
        """The ``done`` line if these notebooks are graded and their outputs intact, else None.

        Each of ``notebooks`` must have been graded from this exact submission (``digest``) and
        its autograded copy in ``dest`` must be the one written then.
        """
        found = None
        for notebook in notebooks:
            entry = self.notebooks.get((student, assignment, notebook))
            if entry is None or entry.get("digest") != digest:
                return None
            written = entry["outputs"][notebook]
            path = os.path.join(dest, f"{notebook}.ipynb")
            if written is not None and file_digest(path) != written:
                return None  # deleted, cut short or changed since: grade it again
            if found is None or entry.get("status") != "graded":
                found = entry
        return found

    def start(self, student: str, assignment: str, notebooks) -> None:
        """Record that these notebooks are being graded again (before any file of them goes)."""
        self._write(
            {
                "event": "start",
                "student": student,
                "assignment": assignment,
                "notebooks": sorted(notebooks),
            }
        )

    def record(self, outcome: Outcome, digest: str, outputs: dict) -> None:
        """Record a complete grading: ``outputs`` maps notebook ids to their autograded digest."""
        self._write(
            {
                "event": "done",
                "engine": ENGINE_VERSION,
                "student": outcome.student,
                "assignment": outcome.assignment,
                "digest": digest,
                "status": outcome.status,
                "reason": outcome.reason,
                "outputs": outputs,
            }
        )

    def _open(self, flags: int) -> int:
        """Open the journal; neither its folder nor the file itself may be a symbolic link."""
        try:
            folder = os.open(self.path.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
        except FileNotFoundError:
            raise
        except OSError as error:
            raise JournalError(
                f"{self.path.parent}: not a plain folder ({error.strerror}); the grading journal "
                "is never opened through a symbolic link: replace it with a folder"
            ) from None
        try:
            return os.open(self.path.name, flags | os.O_NOFOLLOW, 0o660, dir_fd=folder)
        except FileNotFoundError:
            raise
        except OSError as error:
            raise JournalError(
                f"{self.path}: cannot be opened ({error.strerror}); the grading journal is never "
                "opened through a symbolic link: move it away"
            ) from None
        finally:
            os.close(folder)

    def _write(self, entry: dict) -> None:
        entry["at"] = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = self._open(os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        try:
            os.write(fd, (json.dumps(entry, sort_keys=True) + "\n").encode("utf-8"))
            os.fsync(fd)
        finally:
            os.close(fd)
        self._apply(entry)
